/// The expected value of a metric at one time and the band around it.
public struct AnomalyBand: Sendable, Equatable, Codable {
    public var expected: Double
    public var lower: Double
    public var upper: Double

    public init(expected: Double, lower: Double, upper: Double) {
        self.expected = expected
        self.lower = lower
        self.upper = upper
    }
}

/// An anomaly-detection model trained on a metric's own history, in the spirit of CloudWatch's
/// `ANOMALY_DETECTION_BAND` (whose algorithm is not published; this one is ours):
///
/// - **level**: the median of the last `levelWindow` of history;
/// - **trend**: the median day-to-day change of the daily medians (needs 3 days);
/// - **seasonality**: an hour-of-day profile (after 2 days) or an hour-of-week profile (after
///   2 weeks) of medians, kept only when it explains the history clearly better than none;
/// - **spread**: the 99th percentile of the absolute residuals, scaled to a normal standard
///   deviation, so one band width `k` means "k standard deviations" on heavy-tailed metrics too.
///
/// Robust to past anomalies three times over: every statistic is a median or a quantile; values
/// are trained clipped to twice the reach of the band they were judged against; and a value
/// outside its band counts towards the spread only up to that band's reach — so an incident does
/// not teach the model that incidents are normal, while a trend or season not learned yet still
/// gets through. The model is refitted every `refitInterval` of event time.
/// Pure: no clocks, no I/O; time is whatever the caller says (milliseconds).
public struct AnomalyBandModel: Sendable, Codable {
    public struct Settings: Sendable, Codable, Equatable {
        /// How much history is kept for training (CloudWatch: up to two weeks).
        public var history: Int64 = 14 * day
        /// The window whose median is the level.
        public var levelWindow: Int64 = 7 * day
        /// No band before this much history (and at least `minimumDatapoints`).
        public var minimumHistory: Int64 = 3 * hour
        public var minimumDatapoints = 12
        public var refitInterval: Int64 = hour
        /// The residual quantile that sets the spread.
        public var tailQuantile = 0.99

        public init() {}
    }

    static let hour: Int64 = 3_600_000
    static let day: Int64 = 86_400_000
    static let week: Int64 = 7 * day
    /// The standard normal quantile of 0.99, turning the residual quantile into a deviation.
    static let normalQuantile99 = 2.326
    static let clipFactor = 2.0

    enum Seasonality: String, Codable { case none, daily, weekly }

    struct Fit: Codable {
        var level: Double
        var slopePerMs: Double
        var center: Int64
        var seasonality: Seasonality
        var profile: [Double]
        var spread: Double
        var nonNegative: Bool
        var fittedAt: Int64
    }

    public let settings: Settings
    /// Training history, oldest first: times (ms) and values as trained (clipped).
    private var times: [Int64] = []
    private var values: [Double] = []
    /// The reach of the band each value was judged against (the largest Double before there was a band; JSON has no infinity):
    /// what a value may contribute to the spread.
    private var reaches: [Double] = []
    private var fit: Fit?

    public init(settings: Settings = Settings()) { self.settings = settings }

    /// How many datapoints the model holds.
    public var historyCount: Int { times.count }

    /// The band at `time` for width `k`, or nil while the model has too little history.
    /// Refits when the last fit is older than the refit interval.
    public mutating func band(at time: Int64, width k: Double) -> AnomalyBand? {
        guard let first = times.first, times.count >= settings.minimumDatapoints,
              time - first >= settings.minimumHistory else { return nil }
        if fit == nil || time - fit!.fittedAt >= settings.refitInterval {
            fit = Self.fit(times: times, values: values, reaches: reaches, at: time, settings: settings)
        }
        let f = fit!
        var expected = f.level + f.slopePerMs * Double(time - f.center)
        switch f.seasonality {
        case .none: break
        case .daily: expected += Self.seasonal(f.profile, at: time, cycle: Self.day)
        case .weekly: expected += Self.seasonal(f.profile, at: time, cycle: Self.week)
        }
        var lower = expected - k * f.spread
        let upper = expected + k * f.spread
        // A metric that has never been negative (counts, bytes, percentages) cannot be expected to be.
        if f.nonNegative && lower < 0 { lower = 0 }
        return AnomalyBand(expected: expected, lower: lower, upper: upper)
    }

    /// Adds a datapoint to the history: clipped to `band` when one was given (what the value was
    /// judged against), so anomalies do not widen future bands.
    public mutating func train(at time: Int64, value: Double, band: AnomalyBand?) {
        guard value.isFinite else { return }
        var trained = value
        let reach = band.map { max($0.upper - $0.expected, $0.expected - $0.lower) } ?? .greatestFiniteMagnitude
        reaches.append(reach)
        if let band {
            // Clip at twice the band's reach: far enough that a trend or a season the model has
            // not learned yet still gets through, near enough that an incident does not.
            trained = min(max(value, band.expected - Self.clipFactor * reach), band.expected + Self.clipFactor * reach)
        }
        times.append(time)
        values.append(trained)
        let horizon = time - settings.history
        if let drop = times.firstIndex(where: { $0 > horizon }), drop > 0, drop >= times.count / 4 {
            // Compact in chunks so trimming stays amortised O(1) per datapoint.
            times.removeFirst(drop)
            values.removeFirst(drop)
            reaches.removeFirst(drop)
        }
    }

    /// The seasonal profile (one median per hour of the cycle) at `t`, interpolated linearly
    /// between hour midpoints so the expected value does not jump on the hour.
    static func seasonal(_ profile: [Double], at t: Int64, cycle: Int64) -> Double {
        let position = Double(floorMod(t, cycle)) / Double(hour) - 0.5
        let slots = profile.count
        let below = Int(position.rounded(.down))
        let fraction = position - Double(below)
        let a = profile[(below % slots + slots) % slots]
        let b = profile[((below + 1) % slots + slots) % slots]
        return a + (b - a) * fraction
    }

    static func hourOfDay(_ t: Int64) -> Int { Int(floorMod(t, day) / hour) }
    static func hourOfWeek(_ t: Int64) -> Int { Int(floorMod(t, week) / hour) }
    static func floorMod(_ a: Int64, _ m: Int64) -> Int64 { let r = a % m; return r < 0 ? r + m : r }

    static func fit(times allTimes: [Int64], values allValues: [Double], reaches allReaches: [Double], at time: Int64,
                    settings: Settings) -> Fit {
        // Everything the model holds precedes `time` (values are judged before they are trained).
        let horizon = time - settings.history
        let start = allTimes.firstIndex(where: { $0 >= horizon }) ?? 0
        let times = Array(allTimes[start...])
        let values = Array(allValues[start...])
        let reaches = Array(allReaches[start...])
        let newest = times.last!
        let span = newest - times.first!

        let recent = times.indices.filter { times[$0] > newest - settings.levelWindow }
        let level = Stats.median(recent.map { values[$0] })
        // Times are in order: the median time is the middle one.
        let center = recent.isEmpty ? newest : (times[recent[(recent.count - 1) / 2]] + times[recent[recent.count / 2]]) / 2

        var slope = 0.0
        if span >= 3 * day {
            var daily: [Double] = []
            var bucket: [Double] = []
            var currentDay: Int64 = 0
            for (t, v) in zip(times, values) {
                let d = (t - times[0]) / day
                if d != currentDay { daily.append(Stats.median(bucket)); bucket = []; currentDay = d }
                bucket.append(v)
            }
            daily.append(Stats.median(bucket))
            if daily.count >= 3 {
                slope = Stats.median(zip(daily.dropFirst(), daily).map { $0 - $1 }) / Double(day)
            }
        }

        let residuals = zip(times, values).map { $1 - (level + slope * Double($0 - center)) }
        var seasonality = Seasonality.none
        var profile: [Double] = []
        var best = Stats.median(residuals.map(abs))
        if span >= 2 * day {
            let candidates: [(Seasonality, Int, (Int64) -> Int)] =
                span >= 2 * week ? [(.daily, 24, hourOfDay), (.weekly, 168, hourOfWeek)] : [(.daily, 24, hourOfDay)]
            for (kind, slots, slot) in candidates {
                var bySlot = [[Double]](repeating: [], count: slots)
                for (t, r) in zip(times, residuals) { bySlot[slot(t)].append(r) }
                let candidate = bySlot.map { $0.isEmpty ? 0 : Stats.median($0) }
                let remaining = Stats.median(zip(times, residuals).map { abs($1 - candidate[slot($0)]) })
                // A profile must explain the history clearly better than what it would replace.
                if remaining < 0.9 * best {
                    seasonality = kind
                    profile = candidate
                    best = remaining
                }
            }
        }
        var deviations = residuals
        switch seasonality {
        case .none: break
        case .daily: for i in times.indices { deviations[i] -= seasonal(profile, at: times[i], cycle: day) }
        case .weekly: for i in times.indices { deviations[i] -= seasonal(profile, at: times[i], cycle: week) }
        }
        let floor = 1e-9 + 1e-6 * abs(Stats.median(values))
        // A value outside its band (an incident, or a change not learned yet) shapes the level,
        // trend and seasons, but widens the band no further than the band it broke.
        let bounded = zip(deviations, reaches).map { min(abs($0.0), $0.1) }
        let spread = max(Stats.quantile(bounded, settings.tailQuantile) / normalQuantile99, floor)
        return Fit(level: level, slopePerMs: slope, center: center, seasonality: seasonality, profile: profile,
                   spread: spread, nonNegative: !values.contains(where: { $0 < 0 }), fittedAt: time)
    }
}

/// Order statistics with NumPy's conventions (median of an even count is the mean of the middle
/// two; quantiles interpolate linearly), so figures can be checked against a notebook. Selection,
/// not sorting: a refit takes many of these over two weeks of datapoints.
enum Stats {
    static func median(_ values: [Double]) -> Double { quantile(values, 0.5) }

    static func quantile(_ values: [Double], _ q: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        var a = values
        let position = q * Double(a.count - 1)
        let below = Int(position.rounded(.down))
        let fraction = position - Double(below)
        a.withUnsafeMutableBufferPointer { select(below, in: $0) }
        let low = a[below]
        guard fraction > 0, below + 1 < a.count else { return low }
        // After selection everything right of `below` is at least a[below]: the next order statistic is their minimum.
        let high = a[(below + 1)...].min()!
        return low + (high - low) * fraction
    }

    /// Rearranges `a` so that `a[k]` is the k-th smallest, smaller values left of it and larger right (quickselect).
    static func select(_ k: Int, in a: UnsafeMutableBufferPointer<Double>) {
        var low = 0
        var high = a.count - 1
        while high > low {
            // Median of three as the pivot keeps sorted and constant inputs linear.
            let mid = low + (high - low) / 2
            if a[mid] < a[low] { a.swapAt(mid, low) }
            if a[high] < a[low] { a.swapAt(high, low) }
            if a[high] < a[mid] { a.swapAt(high, mid) }
            let pivot = a[mid]
            var i = low
            var j = high
            while i <= j {
                while a[i] < pivot { i += 1 }
                while a[j] > pivot { j -= 1 }
                if i <= j {
                    a.swapAt(i, j)
                    i += 1
                    j -= 1
                }
            }
            if k <= j { high = j } else if k >= i { low = i } else { return }
        }
    }
}
