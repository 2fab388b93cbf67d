import Foundation

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
/// `ANOMALY_DETECTION_BAND` (whose algorithm is not published; this one is ours).
///
/// The expected value is a **level** (median of the last `levelWindow`) + a **trend** (median day-to-day change of
/// the daily medians, after 3 days) + a **seasonal profile**; the band's spread is the tail of the residuals around
/// that prediction. Two kinds differ in how wide the band is at a given moment:
///
/// - ``Kind/likelihood`` (the default, chosen by cross-validation on NAB): judges the last few prediction errors
///   together against the distribution of its own past errors, the way NAB's best detectors (HTM's anomaly
///   likelihood, contextOSE) do: a lone value needs `pointFactor × k` spreads to breach, while a run of moderately
///   unusual values narrows the band (to no less than `narrowest × k` spreads) until the run's mean error is as
///   unusual as `k` says — sustained changes are caught early, single outliers of a noisy metric are not.
/// - ``Kind/seasonal``: `expected ± k × spread`, the same width whatever came just before.
///
/// Shared rules, each there for a kind of series the model has not seen:
///
/// - **Seasonality only where it is real**: an hour-of-day (after 2 days) or hour-of-week (after
///   2 weeks) profile of medians is kept only when, fitted on all but the newest day, it predicts the
///   newest day clearly better (residual spread 10% lower) than no profile — an out-of-sample test,
///   so noise is not mistaken for a season.
/// - **Level shifts re-baseline**: after `shiftDatapoints` consecutive values beyond the same edge of
///   their bands, the level restarts from where the run began (those values are trained as they are),
///   so a new normal alarms once instead of for days.
/// - **Noise proportional to the level** (counts, traffic): when the history's deviations grow with its level, the
///   spread is relative and the band widens with the expected value (`proportionalNoise`).
/// - **Robust to past anomalies**: every statistic is a median or a quantile; values are trained
///   clipped to twice the reach of the band they were judged against; and a value outside its band
///   counts towards the spread only up to that band's reach.
/// - **Quantised and quiet series**: the spread is never below the data's resolution (the smallest
///   step between distinct values), so a metric that sits still does not alarm on its last digit.
/// - **Sparse or irregular data**: every window is in event time, not in datapoints.
/// - **Drifts** (``Kind/likelihood``, `driftDatapoints`): the mean signed error over six hours, judged against the history
///   of such means, narrows the side of the band it leans to — slow drifts and changes of the daily shape stay inside a
///   band value by value, not on average.
/// - **Recurring excursions** (``Kind/likelihood``, `recurrenceWindow`): what the metric did at this time of day on most
///   of the last days (a nightly job) widens the band for a lone value.
/// - **Incident memory** (opt-in, `incidentMemory`): after a breach, its side of the band reaches as far as the breach
///   did for a while, so one incident does not alarm again and again.
///
/// The spread is the `tailQuantile` of the absolute residuals scaled to a normal standard deviation,
/// so a band width `k` means "k standard deviations" on heavy-tailed metrics too. Beyond that quantile the residuals'
/// tail is fitted with a generalized Pareto distribution (`tailFit`, extreme value theory's peaks over threshold):
/// a band of width `k` reaches as far as a value as rare as `k` normal deviations, which on a bursty metric is further
/// out than `k` spreads — its everyday bursts are not incidents. A metric that has
/// never been negative never gets a negative lower edge. The model is refitted every `refitInterval`
/// of event time. Pure: no clocks, no I/O; time is whatever the caller says (milliseconds).
public struct AnomalyBandModel: Sendable {
    /// How wide the band is at a given moment.
    public enum Kind: String, Sendable, Codable, CaseIterable {
        /// `expected ± k × spread`.
        case seasonal
        /// A lone value needs `pointFactor × k` spreads; a run of unusual values narrows the band.
        case likelihood
    }

    public struct Settings: Sendable, Codable, Equatable {
        /// `likelihood` cross-validates best on NAB (chosen on the nine AWS series or on NAB's 41 others, scored on
        /// the other set); `narrowest` keeps its band from collapsing on a metric that sits still.
        public var kind: Kind = .likelihood
        /// How much history is kept for training (CloudWatch: up to two weeks).
        public var history: Int64 = 14 * day
        /// The window whose median is the level (``Kind/seasonal``).
        public var levelWindow: Int64 = 7 * day
        /// No band before this much history (and at least `minimumDatapoints`).
        public var minimumHistory: Int64 = 3 * hour
        public var minimumDatapoints = 12
        public var refitInterval: Int64 = hour
        /// The residual quantile that sets the spread.
        public var tailQuantile = 0.99
        /// Consecutive values beyond the same band edge that make a level shift (0: never re-baseline).
        public var shiftDatapoints = 6
        /// How many recent prediction errors are judged together (``Kind/likelihood``).
        public var windowDatapoints = 12
        /// How many times `k` spreads a lone value needs to breach (``Kind/likelihood``).
        public var pointFactor = 1.25
        /// The narrowest a run of unusual values makes the band, as a fraction of `k` spreads (``Kind/likelihood``).
        public var narrowest = 0.5
        /// How long a breach is remembered (ms; 0: not at all): meanwhile the band on the side it broke reaches at
        /// least as far as the breach did, so the rest of one incident does not breach again and again, while a larger
        /// excursion (the incident growing, or a new one) still does.
        public var incidentMemory: Int64 = 0
        /// Recurring excursions (ms either side of the same time of day; 0: none; cross-validated on NAB): when on most of the last days the
        /// metric went beyond the lone-value band within this much of the same time of day (a nightly job, a daily
        /// batch), the band at that time reaches its usual width beyond the largest of those daily excursions —
        /// unless a run of unusual values is under way.
        public var recurrenceWindow: Int64 = hour
        /// How many recent signed prediction errors make a drift (0: none; ``Kind/likelihood``; six hours of 5-minute
        /// periods, cross-validated on NAB): their mean is judged against its own history, and a drift narrows the band
        /// to as little as `driftNarrowest × k` spreads.
        public var driftDatapoints = 72
        public var driftNarrowest = 1.0 / 6
        /// Whether the seasonal kind extrapolates a trend.
        public var trend = true
        /// Whether noise that grows with the level is modelled relative to the level (when the history shows it).
        public var proportionalNoise = true
        /// Whether a lone value's reach comes from a generalized Pareto fit of the deviations' tail when that reaches
        /// further than `k` normal deviations would (heavy-tailed metrics: bursts of traffic are not incidents).
        public var tailFit = true

        public init() {}

        public init(kind: Kind) {
            self.kind = kind
        }

        enum CodingKeys: String, CodingKey {
            case kind, history, levelWindow, minimumHistory, minimumDatapoints, refitInterval, tailQuantile
            case shiftDatapoints, windowDatapoints, pointFactor, trend, proportionalNoise, tailFit, narrowest
            case incidentMemory, recurrenceWindow, driftDatapoints, driftNarrowest
        }

        public init(from decoder: any Decoder) throws {
            // Every key is optional: saved state from older versions loads, and `backtest --band-settings` names
            // only what it changes.
            let c = try decoder.container(keyedBy: CodingKeys.self)
            kind = try c.decodeIfPresent(Kind.self, forKey: .kind) ?? kind
            history = try c.decodeIfPresent(Int64.self, forKey: .history) ?? history
            levelWindow = try c.decodeIfPresent(Int64.self, forKey: .levelWindow) ?? levelWindow
            minimumHistory = try c.decodeIfPresent(Int64.self, forKey: .minimumHistory) ?? minimumHistory
            minimumDatapoints = try c.decodeIfPresent(Int.self, forKey: .minimumDatapoints) ?? minimumDatapoints
            refitInterval = try c.decodeIfPresent(Int64.self, forKey: .refitInterval) ?? refitInterval
            tailQuantile = try c.decodeIfPresent(Double.self, forKey: .tailQuantile) ?? tailQuantile
            shiftDatapoints = try c.decodeIfPresent(Int.self, forKey: .shiftDatapoints) ?? shiftDatapoints
            windowDatapoints = try c.decodeIfPresent(Int.self, forKey: .windowDatapoints) ?? windowDatapoints
            pointFactor = try c.decodeIfPresent(Double.self, forKey: .pointFactor) ?? pointFactor
            trend = try c.decodeIfPresent(Bool.self, forKey: .trend) ?? trend
            proportionalNoise = try c.decodeIfPresent(Bool.self, forKey: .proportionalNoise) ?? proportionalNoise
            tailFit = try c.decodeIfPresent(Bool.self, forKey: .tailFit) ?? tailFit
            narrowest = try c.decodeIfPresent(Double.self, forKey: .narrowest) ?? narrowest
            incidentMemory = try c.decodeIfPresent(Int64.self, forKey: .incidentMemory) ?? incidentMemory
            recurrenceWindow = try c.decodeIfPresent(Int64.self, forKey: .recurrenceWindow) ?? recurrenceWindow
            driftDatapoints = try c.decodeIfPresent(Int.self, forKey: .driftDatapoints) ?? driftDatapoints
            driftNarrowest = try c.decodeIfPresent(Double.self, forKey: .driftNarrowest) ?? driftNarrowest
            guard (0.5..<1).contains(tailQuantile), minimumDatapoints >= 1, history > 0, levelWindow > 0,
                  refitInterval > 0, shiftDatapoints >= 0, incidentMemory >= 0, driftDatapoints >= 0, driftNarrowest >= 0, (0..<(day / 2)).contains(recurrenceWindow), windowDatapoints >= 1, pointFactor >= 1, (0...1).contains(narrowest) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription:
                    "settings out of range (tailQuantile in [0.5, 1), windowDatapoints >= 1, pointFactor >= 1, narrowest in [0, 1], positive windows)"))
            }
        }
    }

    static let hour: Int64 = 3_600_000
    static let day: Int64 = 86_400_000
    static let week: Int64 = 7 * day
    static let clipFactor = 2.0
    /// A seasonal profile must cut the out-of-sample residual spread by at least this much (to 90%).
    static let seasonalGain = 0.9
    /// How many window means the likelihood kind needs before a run may narrow the band (a day of 5-minute periods).
    static let minimumWindows = 288
    /// What one error may add to a drift, in spreads: a spike is one unusual value, not a drift.
    static let driftClip = 1.5

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
        /// Noise proportional to the level: the spread is relative, the band's width `spread × (|expected| + offset)`.
        var relative: Bool = false
        var offset: Double = 0
        /// ``Kind/likelihood``: the median and the scale (a normal deviation) of the mean standardised error over
        /// `windowDatapoints` consecutive datapoints in the history; nil until there are enough.
        var windowMedian: Double? = nil
        var windowScale: Double = 0
        /// The tail of the absolute deviations beyond their 0.97 quantile (nil when too few or `tailFit` is off).
        var tail: TailFit? = nil
        /// The median and the scales below and above it (normal deviations) of the mean signed error over
        /// `driftDatapoints` consecutive datapoints; nil until there are enough.
        var drift: Drift? = nil
    }

    public let settings: Settings
    /// Training history, oldest first: times (ms), values as trained (clipped) and as they came.
    private var times: [Int64] = []
    private var values: [Double] = []
    private var raw: [Double] = []
    /// The reach of the band each value was judged against (the largest Double before there was a band; JSON has no infinity):
    /// what a value may contribute to the spread.
    private var reaches: [Double] = []
    /// One-step prediction errors, bounded by the reach of their band, signed (negative below the expected value;
    /// NaN where there was no band).
    private var errors: [Double] = []
    /// Start of the current level (after a level shift); values before it have their own level.
    private var regimeStart: Int64 = .min
    /// The run of consecutive values beyond one band edge: +1 above, -1 below, 0 none.
    private var runSide = 0
    private var runLength = 0
    private var runStart: Int64 = 0
    private var fit: Fit?
    /// The last band before a run narrowed it or an incident widened it, its spread and its lone-value reach: what
    /// the value judged against it is trained and tracked against.
    private var lastJudged: (time: Int64, spread: Double, reach: Double, base: AnomalyBand)?
    /// The latest breach above and below the band (``Settings/incidentMemory``): when, and how far out in spreads.
    private var incidentAbove: Incident?
    private var incidentBelow: Incident?

    struct Incident: Codable, Equatable {
        var time: Int64
        var width: Double
    }
    /// Derived from the history and kept between refits, so an hourly refit does not redo what did not change
    /// (never saved: a loaded model rebuilds them). Each datapoint's place in the day and week, parallel to `times`.
    private var phases = Phases()
    /// The raw values of the last fit's window, sorted: their smallest step is the data's resolution.
    private var sortedWindow = SortedWindow()
    /// The trained values of the last fit's window by slot of the daily and the weekly cycle, sorted: the seasonal
    /// profile's slot medians.
    var slotWindows = SlotWindows()
    /// How many datapoints have been dropped from the front of the history so far (the absolute index of `times[0]`).
    private var dropped = 0

    public init(settings: Settings = Settings()) { self.settings = settings }

    /// How many datapoints the model holds.
    public var historyCount: Int { times.count }

    /// The band at `time` for width `k`, or nil while the model has too little history.
    /// Refits when the last fit is older than the refit interval.
    public mutating func band(at time: Int64, width k: Double) -> AnomalyBand? {
        guard let first = times.first, times.count >= settings.minimumDatapoints,
              time - first >= settings.minimumHistory else { return nil }
        if fit == nil || time - fit!.fittedAt >= settings.refitInterval {
            // Everything the model holds precedes `time` (values are judged before they are trained).
            let horizon = time - settings.history
            let start = times.firstIndex(where: { $0 >= horizon }) ?? 0
            let resolution = sortedWindow.resolution(of: raw, from: start, dropped: dropped)
            fit = Self.fit(times: times, values: values, reaches: reaches, errors: errors, phases: phases, from: start,
                           resolution: resolution, regimeStart: regimeStart, at: time, settings: settings,
                           slotWindows: &slotWindows, dropped: dropped)
        }
        let f = fit!
        var expected = f.level + f.slopePerMs * Double(time - f.center) + Self.seasonal(f, at: time)
        if !expected.isFinite { expected = f.level }
        let spread = f.relative ? f.spread * (abs(expected) + f.offset) : f.spread
        // The reach of a lone value, in spreads: k normal deviations, or as far as a value as rare (the tail fit);
        // the likelihood kind asks `pointFactor` times that of a value no run came before.
        let loneWidth = settings.kind == .likelihood ? f.tail?.width(k * settings.pointFactor) ?? k * settings.pointFactor
            : f.tail?.width(k) ?? k
        var above = loneWidth, below = loneWidth
        // Whether the errors just before this value were as usual (no run under way).
        var usual = true
        if settings.kind == .likelihood, let median = f.windowMedian,
           let previous = recentErrors(settings.windowDatapoints - 1, abs) {
            // The error this value may have for the window's mean error to stay within k of its usual level.
            let limit = median + k * f.windowScale
            let allowed = Double(settings.windowDatapoints) * limit - previous
            usual = previous <= Double(settings.windowDatapoints - 1) * limit
            // Never narrower than `narrowest × k`: on a metric that sits still the recent errors are all
            // zero-width, and after a spike they are used up; neither makes an ordinary value an anomaly.
            above = max(min(loneWidth, allowed), settings.narrowest * k)
            below = above
        }
        if settings.kind == .likelihood, settings.driftDatapoints > 1, let drift = f.drift,
           let previous = recentErrors(settings.driftDatapoints - 1, { Self.clipped($0, Self.driftClip) }) {
            // A drift: the mean signed error over a longer window, judged against its own history — noise averages
            // out, a shift of a fraction of a spread that lasts hours does not.
            let n = Double(settings.driftDatapoints)
            let up = n * (drift.median + k * drift.high) - previous
            let down = previous - n * (drift.median - k * drift.low)
            let floor = settings.driftNarrowest * k
            above = min(above, max(up, floor))
            below = min(below, max(down, floor))
            if up < loneWidth || down < loneWidth { usual = false }
        }
        if settings.kind == .likelihood && settings.recurrenceWindow > 0 && spread > 0 && usual {
            // What happens at this time on most days (a nightly job) is not an incident on its own: the band reaches
            // its usual width beyond the largest such excursion. A run of unusual values leading up to it still is.
            let reach = loneWidth * spread
            let (high, low) = recurringExcursions(at: time, beyond: expected - reach, expected + reach)
            if let high { above += (high - expected) / spread }
            if let low { below += (expected - low) / spread }
        }
        let base = Self.band(expected: expected, below: below * spread, above: above * spread, nonNegative: f.nonNegative)
        lastJudged = (time, spread, loneWidth * spread, base)
        // A remembered incident holds its side of the band out to where it reached.
        var widened = false
        if let incident = incidentAbove, time - incident.time < settings.incidentMemory, incident.width > above {
            above = incident.width
            widened = true
        }
        if let incident = incidentBelow, time - incident.time < settings.incidentMemory, incident.width > below {
            below = incident.width
            widened = true
        }
        guard widened else { return base }
        return Self.band(expected: expected, below: below * spread, above: above * spread, nonNegative: f.nonNegative)
    }

    /// The days of history looked back on for recurring excursions, and how many must show one.
    static let recurrenceDays = 7
    static let recurrenceMinimumDays = 3

    /// The largest excursion above `upper` (and below `lower`) within `recurrenceWindow` of this time of day on the
    /// last days, when most of those days (of at least three) had one; nil otherwise.
    private func recurringExcursions(at time: Int64, beyond lower: Double, _ upper: Double) -> (Double?, Double?) {
        var days = 0, highDays = 0, lowDays = 0
        var highest = -Double.infinity, lowest = Double.infinity
        for d in 1...Self.recurrenceDays {
            let center = time - Int64(d) * Self.day
            let from = center - settings.recurrenceWindow
            guard let first = times.first, first <= from else { break }
            var i = Self.lowerBound(times, from)
            var high = -Double.infinity, low = Double.infinity
            while i < times.count && times[i] <= center + settings.recurrenceWindow {
                high = max(high, raw[i])
                low = min(low, raw[i])
                i += 1
            }
            guard high >= low else { continue }
            days += 1
            if high > upper { highDays += 1; highest = max(highest, high) }
            if low < lower { lowDays += 1; lowest = min(lowest, low) }
        }
        guard days >= Self.recurrenceMinimumDays else { return (nil, nil) }
        return (2 * highDays > days ? highest : nil, 2 * lowDays > days ? lowest : nil)
    }

    /// The index of the first element not below `t` in ascending `sorted` (times, or a slot's values).
    static func lowerBound<T: Comparable>(_ sorted: [T], _ t: T) -> Int {
        sorted.withUnsafeBufferPointer { a in
            var low = 0, high = a.count
            while low < high {
                let mid = (low + high) / 2
                if a[mid] < t { low = mid + 1 } else { high = mid }
            }
            return low
        }
    }

    static func band(expected: Double, below: Double, above: Double, nonNegative: Bool) -> AnomalyBand {
        // A metric that has never been negative (counts, bytes, percentages) cannot be expected to be.
        let lower = expected - below
        return AnomalyBand(expected: expected, lower: nonNegative && lower < 0 ? 0 : lower, upper: expected + above)
    }

    /// Adds a datapoint to the history: clipped to `band` when one was given (what the value was
    /// judged against), so anomalies do not widen future bands — unless a run of such values turns
    /// out to be a level shift, which then becomes the new normal.
    public mutating func train(at time: Int64, value: Double, band: AnomalyBand?) {
        guard value.isFinite else { return }
        var trained = value
        var error = Double.nan
        var reach = band.map { max($0.upper - $0.expected, $0.expected - $0.lower) } ?? .greatestFiniteMagnitude
        var base = band
        if let band {
            var spread = reach
            if let judged = lastJudged, judged.time == time {
                // The band may have been narrowed by the recent errors or widened by an incident; learn against the
                // lone-value band.
                reach = judged.reach
                spread = settings.kind == .likelihood ? judged.spread : reach
                base = judged.base
                if settings.incidentMemory > 0 && judged.spread > 0 {
                    let width = abs(value - band.expected) / judged.spread
                    if value > band.upper { incidentAbove = Incident(time: time, width: width) }
                    if value < band.lower { incidentBelow = Incident(time: time, width: width) }
                }
            }
            // Clip at twice the band's reach: far enough that a trend or a season the model has
            // not learned yet still gets through, near enough that an incident does not.
            trained = min(max(value, band.expected - Self.clipFactor * reach), band.expected + Self.clipFactor * reach)
            // The error in spreads, bounded like the contributions to the spread.
            error = spread > 0 ? min(abs(value - band.expected), reach) / spread : 0
            if value < band.expected { error = -error }
        }
        times.append(time)
        phases.append(time)
        values.append(trained)
        raw.append(value)
        reaches.append(reach)
        errors.append(error)
        if let base { trackShift(at: time, value: value, band: base) }
        let horizon = time - settings.history
        if let drop = times.firstIndex(where: { $0 > horizon }), drop > 0, drop >= times.count / 4 {
            // Compact in chunks so trimming stays amortised O(1) per datapoint.
            times.removeFirst(drop)
            phases.removeFirst(drop)
            dropped += drop
            values.removeFirst(drop)
            raw.removeFirst(drop)
            reaches.removeFirst(drop)
            errors.removeFirst(drop)
        }
    }

    /// Counts consecutive values beyond the same band edge; a long enough run re-baselines the level.
    private mutating func trackShift(at time: Int64, value: Double, band: AnomalyBand) {
        guard settings.shiftDatapoints > 0 else { return }
        let side = value > band.upper ? 1 : (value < band.lower ? -1 : 0)
        if side == 0 {
            runSide = 0
            runLength = 0
            return
        }
        if side == runSide {
            runLength += 1
        } else {
            runSide = side
            runLength = 1
            runStart = time
        }
        guard runLength >= settings.shiftDatapoints else { return }
        // A new normal: the run's values are data, not incidents.
        regimeStart = runStart
        var i = times.count - 1
        slotWindows.invalidate()
        while i >= 0 && times[i] >= runStart {
            values[i] = raw[i]
            reaches[i] = .greatestFiniteMagnitude
            errors[i] = .nan
            i -= 1
        }
        runSide = 0
        runLength = 0
        fit = nil
    }

    /// The sum of `term` over the last `count` standardised prediction errors (signed), or nil when one of them is
    /// missing: their sizes for a run, the errors clipped to ±``driftClip`` for a drift.
    @inline(__always)
    private func recentErrors(_ count: Int, _ term: (Double) -> Double) -> Double? {
        guard errors.count >= count else { return nil }
        var sum = 0.0
        for i in (errors.count - count)..<errors.count {
            guard !errors[i].isNaN else { return nil }
            sum += term(errors[i])
        }
        return sum
    }

    /// A signed error as far as it counts towards a drift: at most ±`clip` spreads (a spike is one unusual value, not
    /// a drift).
    @inline(__always)
    static func clipped(_ error: Double, _ clip: Double) -> Double { min(max(error, -clip), clip) }

    static func seasonal(_ f: Fit, at t: Int64) -> Double {
        switch f.seasonality {
        case .none: 0
        case .daily: seasonal(f.profile, at: t, cycle: day)
        case .weekly: seasonal(f.profile, at: t, cycle: week)
        }
    }

    /// The seasonal profile (one median per hour of the cycle) at `t`, interpolated linearly
    /// between hour midpoints so the expected value does not jump on the hour.
    static func seasonal(_ profile: [Double], at t: Int64, cycle: Int64) -> Double {
        seasonal(profile, position: profilePosition(t, cycle: cycle))
    }

    /// Where `t` falls in a profile of hourly slots over `cycle`, in slots from the first slot's midpoint.
    static func profilePosition(_ t: Int64, cycle: Int64) -> Double { Double(floorMod(t, cycle)) / Double(hour) - 0.5 }

    static func seasonal(_ profile: [Double], position: Double) -> Double {
        profile.withUnsafeBufferPointer { seasonal($0, position: position) }
    }

    @inline(__always)
    static func seasonal(_ profile: UnsafeBufferPointer<Double>, position: Double) -> Double {
        let slots = profile.count
        // Truncation is the floor of a non-negative position, without a call into libm.
        let below = position >= 0 ? Int(position) : Int(position.rounded(.down))
        let fraction = position - Double(below)
        // A position within the cycle lies in [-0.5, slots - 0.5): the slots either side wrap around by a compare,
        // not a division (this runs for every datapoint of every refit).
        let a = below == -1 ? profile[slots - 1] : below >= 0 && below < slots ? profile[below] : profile[(below % slots + slots) % slots]
        let next = below + 1
        let b = next == slots ? profile[0] : next >= 0 && next < slots ? profile[next] : profile[(next % slots + slots) % slots]
        return a + (b - a) * fraction
    }

    static func hourOfWeek(_ t: Int64) -> Int { Int(floorMod(t, week) / hour) }
    static func floorMod(_ a: Int64, _ m: Int64) -> Int64 { let r = a % m; return r < 0 ? r + m : r }

    /// The fit on the history from index `start` (the training window) on, whose raw values' smallest step is `resolution`.
    static func fit(times allTimes: [Int64], values allValues: [Double], reaches allReaches: [Double],
                    errors allErrors: [Double], phases: Phases, from start: Int, resolution: Double,
                    regimeStart: Int64, at time: Int64, settings: Settings,
                    slotWindows: inout SlotWindows, dropped: Int) -> Fit {
        let times = Array(allTimes[start...])
        let values = Array(allValues[start...])
        let newest = times.last!
        // The current level's values; older ones (before a level shift) are measured against their own level.
        let regime = times.firstIndex(where: { $0 >= regimeStart }) ?? times.count
        let current = regime < times.count ? regime : 0

        var recent: [Double] = []
        recent.reserveCapacity(times.count - current)
        var recentFirst = times.count
        for i in current..<times.count where times[i] > newest - settings.levelWindow {
            if recentFirst == times.count { recentFirst = i }
            recent.append(values[i])
        }
        var level = Stats.median(reordering: &recent)
        let center = recent.isEmpty ? newest
            : (times[recentFirst + (recent.count - 1) / 2] + times[recentFirst + recent.count / 2]) / 2
        let formerLevel = current > 0 ? Stats.median(Array(values[0..<current])) : level

        // The trend comes from the whole history, level shifts included: the median of the day-to-day changes
        // of daily medians ignores the one day a shift happened, while a trend that the level lags behind would
        // otherwise look like a run of shifts and never be learned.
        var slope = 0.0
        if settings.kind == .seasonal && settings.trend && newest - times[0] >= 3 * day {
            var daily: [Double] = []
            var bucket: [Double] = []
            var currentDay: Int64 = 0
            for i in times.indices {
                let d = (times[i] - times[0]) / day
                if d != currentDay { daily.append(Stats.median(bucket)); bucket = []; currentDay = d }
                bucket.append(values[i])
            }
            daily.append(Stats.median(bucket))
            if daily.count >= 3 {
                slope = Stats.median(zip(daily.dropFirst(), daily).map { $0 - $1 }) / Double(day)
            }
        }

        var residuals = [Double](repeating: 0, count: times.count)
        for i in times.indices {
            residuals[i] = i < current ? values[i] - formerLevel : values[i] - (level + slope * Double(times[i] - center))
        }
        // Where every residual is its value minus the level (no trend, no level shift inside the window: the
        // likelihood kind's steady state), the slot medians are read off the slot windows. (A level of −0.0 plus the
        // zero trend term of a datapoint before the centre is −0.0, after it +0.0: not one constant.)
        let levelOnly = slotWindows.enabled && slope == 0 && current == 0 && !SlotWindow.isNegativeZero(level)
        var seasonality = Seasonality.none
        var profile: [Double] = []
        let fullSpan = newest - times[0]
        if fullSpan >= 2 * day {
            let candidates: [(Seasonality, Int, Int64)] =
                fullSpan >= 2 * week ? [(.daily, 24, day), (.weekly, 168, week)] : [(.daily, 24, day)]
            // Out of sample: profiles fitted on all but the newest day are judged on the newest day.
            let testStart = times.firstIndex(where: { $0 > newest - day }) ?? times.count
            var testSizes = residuals[testStart...].map(abs)
            var best = Stats.median(reordering: &testSizes)
            var chosen: (residuals: [Double], shift: Double)? = nil
            for (kind, slots, cycle) in candidates {
                let hours = cycle == day ? phases.hourOfDay[start...] : phases.hourOfWeek[start...]
                let positions = cycle == day ? phases.dayPosition[start...] : phases.weekPosition[start...]
                var window: SlotWindow? = nil
                if levelOnly {
                    // Updated in place (a copy first would copy every slot's array).
                    if cycle == day {
                        slotWindows.daily.update(values: allValues, slotOf: phases.hourOfDay, from: start, dropped: dropped)
                    } else {
                        slotWindows.weekly.update(values: allValues, slotOf: phases.hourOfWeek, from: start, dropped: dropped)
                    }
                    let updated = cycle == day ? slotWindows.daily : slotWindows.weekly
                    if updated.negativeZeros == 0 { window = updated }
                }
                // Without a level shift in the window there is nothing to re-estimate: the windows' profile is
                // ``regimeAdjustedProfile``'s, and the residuals stay as they are.
                var adjusted = residuals
                let trial = window?.medians(minus: level, excluding: values[testStart...], slotOf: hours.suffix(from: start + testStart))
                    ?? regimeAdjustedProfile(&adjusted, hours: hours, positions: positions, upTo: testStart,
                                             current: current, slots: slots).0
                var remaining = [Double](repeating: 0, count: times.count - testStart)
                trial.withUnsafeBufferPointer { trial in
                    for j in remaining.indices {
                        remaining[j] = abs(adjusted[testStart + j] - seasonal(trial, position: positions[start + testStart + j]))
                    }
                }
                let spread = Stats.median(reordering: &remaining)
                if spread < seasonalGain * best {
                    seasonality = kind
                    if let window {
                        profile = window.medians(minus: level)
                        chosen = (residuals, 0)
                    } else {
                        var all = residuals
                        let shift: Double
                        (profile, shift) = regimeAdjustedProfile(&all, hours: hours, positions: positions, upTo: times.count,
                                                                 current: current, slots: slots)
                        chosen = (all, shift)
                    }
                    best = spread
                }
            }
            if let chosen {
                residuals = chosen.residuals
                level += chosen.shift
            }
        }
        let fitted = Fit(level: level, slopePerMs: slope, center: center, seasonality: seasonality, profile: profile,
                         spread: 0, nonNegative: !values.contains(where: { $0 < 0 }), fittedAt: time)

        // The spread: the tail of the residuals around the prediction.
        // A value outside its band (an incident, or a change not learned yet) shapes the level,
        // trend and seasons, but widens the band no further than the band it broke.
        var result = fitted
        if settings.kind == .likelihood {
            (result.windowMedian, result.windowScale) = windowStatistics(allErrors[start...], window: settings.windowDatapoints)
            if settings.driftDatapoints > 1 {
                result.drift = driftStatistics(allErrors[start...], window: settings.driftDatapoints, clip: Self.driftClip)
            }
        }
        let floor = max(1e-9 + 1e-6 * abs(level), resolution)
        var deviations = [Double](repeating: 0, count: times.count)
        var expected = [Double](repeating: 0, count: times.count)
        let positions: [Double]? = switch fitted.seasonality {
        case .none: nil
        case .daily: phases.dayPosition
        case .weekly: phases.weekPosition
        }
        // Through buffer pointers, the profile looked up once: this runs for every datapoint of every refit.
        fitted.profile.withUnsafeBufferPointer { profile in
            for i in times.indices {
                // The fit's seasonal term for the datapoint (0 without a season).
                let term = positions.map { seasonal(profile, position: $0[start + i]) } ?? 0
                deviations[i] = residuals[i] - term
                expected[i] = values[i] - deviations[i]
            }
        }
        var bounded: [Double] = []
        bounded.reserveCapacity(times.count)
        if settings.proportionalNoise && result.nonNegative,
           let offset = proportionalOffset(expected: expected, deviations: deviations, floor: floor) {
            // Noise that grows with the level (counts, traffic): judge deviations relative to the expected value.
            result.relative = true
            result.offset = offset
            for i in times.indices {
                bounded.append(min(abs(deviations[i]), allReaches[start + i]) / (abs(expected[i]) + offset))
            }
            var levels = expected.map(abs)
            let relativeFloor = floor / max(Stats.median(reordering: &levels) + offset, 1e-12)
            (result.spread, result.tail) = spreadAndTail(&bounded, floor: relativeFloor, settings: settings)
        } else {
            for i in times.indices { bounded.append(min(abs(deviations[i]), allReaches[start + i])) }
            (result.spread, result.tail) = spreadAndTail(&bounded, floor: floor, settings: settings)
        }
        return result
    }

    /// The seasonal profile of `residuals[..<upTo]` (one median per slot), with the level of each side of a level shift
    /// re-estimated against it: a level from a few hours after a shift is as high or low as the time of day it came
    /// at, so each side's offset is the median of its residuals after the profile, and the profile is fitted again.
    /// A "shift" that was the daily rise or fall the model had not learned yet moves its level back to where it was;
    /// a real shift keeps its size. Returns the profile and how far the current level moved (`residuals` are adjusted).
    static func regimeAdjustedProfile(_ residuals: inout [Double], hours: ArraySlice<UInt8>, positions: ArraySlice<Double>,
                                      upTo: Int, current: Int, slots: Int) -> ([Double], Double) {
        var profile = slotMedians(hours.prefix(upTo), residuals[..<upTo], slots: slots)
        guard current > 0 && current < residuals.count else { return (profile, 0) }
        var moved = 0.0
        let base = positions.startIndex
        for _ in 0..<regimeRefinements {
            var former = [Double](repeating: 0, count: current)
            for i in 0..<current { former[i] = residuals[i] - seasonal(profile, position: positions[base + i]) }
            var latest = [Double](repeating: 0, count: residuals.count - current)
            for i in current..<residuals.count {
                latest[i - current] = residuals[i] - seasonal(profile, position: positions[base + i])
            }
            let formerShift = Stats.median(former), currentShift = Stats.median(latest)
            for i in 0..<current { residuals[i] -= formerShift }
            for i in current..<residuals.count { residuals[i] -= currentShift }
            moved += currentShift
            profile = slotMedians(hours.prefix(upTo), residuals[..<upTo], slots: slots)
        }
        return (profile, moved)
    }

    /// How often a level shift's sides and the profile are re-estimated against each other.
    static let regimeRefinements = 2

    /// The spread (the residuals' `tailQuantile` in standard deviations of a normal distribution: 2.326 for the 0.99
    /// quantile), at least `floor`, and the tail fit beyond the 0.97 quantile — from one selection over `deviations`
    /// (reordered), whose excesses are then all right of the threshold's position.
    static func spreadAndTail(_ deviations: inout [Double], floor: Double, settings: Settings) -> (Double, TailFit?) {
        let scale = Stats.normalQuantile(settings.tailQuantile)
        guard settings.tailFit, settings.tailQuantile >= TailFit.thresholdQuantile, deviations.count >= TailFit.minimumCount else {
            return (max(Stats.quantile(deviations, settings.tailQuantile) / scale, floor), nil)
        }
        return deviations.withUnsafeMutableBufferPointer { buffer in
            let (threshold, tail) = Stats.quantiles(inPlace: buffer, TailFit.thresholdQuantile, settings.tailQuantile)
            let spread = max(tail / scale, floor)
            let above = Int((TailFit.thresholdQuantile * Double(buffer.count - 1)).rounded(.down)) + 1
            return (spread, TailFit(excessesOf: UnsafeBufferPointer(rebasing: buffer[above...]), over: threshold,
                                    among: buffer.count, spread: spread))
        }
    }

    /// The median and the scale (the 0.99 quantile's distance from the median, in normal deviations) of the mean
    /// over `window` consecutive standardised errors; nil with fewer than `minimumWindows` such windows
    /// (until then a run cannot narrow the band: the quantile of a few dozen window means is mostly noise).
    static func windowStatistics(_ errors: ArraySlice<Double>, window: Int) -> (Double?, Double) {
        let w = max(window, 1)
        var buffer = [Double](repeating: 0, count: w)
        // Written through buffer pointers: this runs over two weeks of errors at every refit.
        var means = [Double](unsafeUninitializedCapacity: errors.count) { means, written in
            errors.withUnsafeBufferPointer { errors in
                buffer.withUnsafeMutableBufferPointer { buffer in
                    var sum = 0.0
                    var run = 0
                    // `slot` is `run % w`, kept by a compare instead of a division per error.
                    var slot = 0
                    for signed in errors {
                        guard !signed.isNaN else { sum = 0; run = 0; slot = 0; continue }
                        let e = abs(signed)
                        sum += e
                        if run >= w { sum -= buffer[slot] }
                        buffer[slot] = e
                        slot = slot + 1 == w ? 0 : slot + 1
                        run += 1
                        if run >= w {
                            means[written] = sum / Double(w)
                            written += 1
                        }
                    }
                }
            }
        }
        guard means.count >= minimumWindows else { return (nil, 0) }
        let (median, tail) = means.withUnsafeMutableBufferPointer { Stats.quantiles(inPlace: $0, 0.5, 0.99) }
        let scale = max(tail - median, 1e-9) / Stats.normalQuantile(0.99)
        return (median, scale)
    }

    struct Drift: Codable {
        var median: Double
        var low: Double
        var high: Double
    }

    /// The distribution of the mean signed error over `window` consecutive datapoints: its median and its spread
    /// below and above (the 0.005 and 0.995 quantiles' distances in normal deviations); nil with fewer than
    /// `minimumWindows` means.
    static func driftStatistics(_ errors: ArraySlice<Double>, window: Int, clip: Double) -> Drift? {
        // Written through buffer pointers: this runs over two weeks of errors at every refit.
        var means = [Double](unsafeUninitializedCapacity: errors.count) { means, written in
            errors.withUnsafeBufferPointer { errors in
                var sum = 0.0, run = 0
                for i in errors.indices {
                    let e = errors[i]
                    if e.isNaN {
                        sum = 0
                        run = 0
                    } else {
                        sum += clipped(e, clip)
                        run += 1
                        if run > window { sum -= clipped(errors[i - window], clip) }
                        if run >= window {
                            means[written] = sum / Double(window)
                            written += 1
                        }
                    }
                }
            }
        }
        // The quantiles of hours-long means need days of them.
        guard means.count >= max(minimumWindows, 8 * window) else { return nil }
        // The outer quantiles are among the few smallest and largest means: one pass keeps those (a selection over
        // every mean, refitted hourly, would cost as much as the rest of the drift).
        let low = Stats.extremeQuantile(means, 0.005)
        let high = Stats.extremeQuantile(means, 0.995)
        let median = means.withUnsafeMutableBufferPointer { Stats.median(inPlace: $0) }
        let z = Stats.normalQuantile(0.995)
        return Drift(median: median, low: max(median - low, 1e-9) / z, high: max(high - median, 1e-9) / z)
    }

    /// Whether the history's noise grows with its level — the deviations of the points with the higher half of
    /// expected values are spread wider than those of the lower half about as much as the levels differ — and if so
    /// the offset that keeps relative deviations finite near zero (a tenth of the median level).
    static func proportionalOffset(expected: [Double], deviations: [Double], floor: Double) -> Double? {
        guard expected.count >= 48 else { return nil }
        // Two scratch buffers instead of four growing arrays and their copies (this runs at every refit): the levels
        // are split into the lower and the higher half where they lie, the noise filled in from both ends. A median
        // does not depend on the order of its values (bar the sign of a zero, which adding the offset erases).
        var levels = expected
        var noise = [Double](repeating: 0, count: expected.count)
        let (middle, lowCount) = levels.withUnsafeMutableBufferPointer { levels in
            let middle = Stats.median(inPlace: levels)
            return (middle, Stats.partition(levels) { $0 <= middle })
        }
        let highCount = expected.count - lowCount
        guard lowCount >= 12, highCount >= 12 else { return nil }
        noise.withUnsafeMutableBufferPointer { noise in
            var low = 0, high = noise.count
            for i in expected.indices {
                if expected[i] <= middle {
                    noise[low] = abs(deviations[i])
                    low += 1
                } else {
                    high -= 1
                    noise[high] = abs(deviations[i])
                }
            }
        }
        let offset = max(0.1 * abs(middle), floor)
        let (lowLevel, highLevel) = levels.withUnsafeMutableBufferPointer {
            (Stats.median(inPlace: UnsafeMutableBufferPointer(rebasing: $0[..<lowCount])),
             Stats.median(inPlace: UnsafeMutableBufferPointer(rebasing: $0[lowCount...])))
        }
        let (lowNoise, highNoise) = noise.withUnsafeMutableBufferPointer {
            (Stats.median(inPlace: UnsafeMutableBufferPointer(rebasing: $0[..<lowCount])),
             Stats.median(inPlace: UnsafeMutableBufferPointer(rebasing: $0[lowCount...])))
        }
        let levelRatio = (highLevel + offset) / (lowLevel + offset)
        let noiseRatio = (highNoise + floor) / (lowNoise + floor)
        // The level must vary (a seasonal or shifted metric), and the noise must follow it more than stay flat.
        guard levelRatio >= 1.5, noiseRatio > 1 else { return nil }
        return abs(Foundation.log(noiseRatio / levelRatio)) < abs(Foundation.log(noiseRatio)) ? offset : nil
    }

    /// The smallest step between distinct values, given in ascending order: what the metric can resolve.
    static func resolution(sorted: [Double]) -> Double {
        var step = Double.infinity
        for i in sorted.indices.dropFirst() {
            let d = sorted[i] - sorted[i - 1]
            if d > 0 && d < step { step = d }
        }
        return step.isFinite ? step : 0
    }

    /// Each seasonal cycle's ``SlotWindow``, derived from the history like ``SortedWindow`` (never saved).
    struct SlotWindows: Sendable {
        var daily = SlotWindow(slots: 24)
        var weekly = SlotWindow(slots: 168)
        /// Off: every refit selects the slot medians afresh from the residuals — the straightforward computation the
        /// windows must equal, which tests compare them with.
        var enabled = true

        mutating func invalidate() {
            daily.invalidate()
            weekly.invalidate()
        }
    }

    /// The median residual of each slot of the cycle (0 where a slot has no data), grouped with a
    /// counting sort into one buffer so a refit allocates little. `slotOf` holds each datapoint's slot (below `slots`).
    static func slotMedians(_ slotOf: ArraySlice<UInt8>, _ residuals: ArraySlice<Double>, slots: Int) -> [Double] {
        let (starts, byslot) = groupedBySlot(residuals, slotOf, slots: slots)
        var grouped = byslot
        var medians = [Double](repeating: 0, count: slots)
        grouped.withUnsafeMutableBufferPointer { buffer in
            for s in 0..<slots where starts[s + 1] > starts[s] {
                let slice = UnsafeMutableBufferPointer(rebasing: buffer[starts[s]..<starts[s + 1]])
                medians[s] = Stats.median(inPlace: slice)
            }
        }
        return medians
    }

    /// `values` grouped by their slot (`slotOf`, parallel, each below `slots`) with a counting sort into one buffer, in
    /// their order within each slot: slot `s` holds `grouped[starts[s]..<starts[s + 1]]`.
    static func groupedBySlot(_ values: ArraySlice<Double>, _ slotOf: ArraySlice<UInt8>, slots: Int) -> (starts: [Int], grouped: [Double]) {
        var starts = [Int](repeating: 0, count: slots + 1)
        for s in slotOf { starts[Int(s) + 1] += 1 }
        for s in 0..<slots { starts[s + 1] += starts[s] }
        var cursor = starts
        var grouped = [Double](repeating: 0, count: slotOf.count)
        for (v, s) in zip(values, slotOf) {
            grouped[cursor[Int(s)]] = v
            cursor[Int(s)] += 1
        }
        return (starts, grouped)
    }
}

extension AnomalyBandModel {
    /// Each datapoint's hour of the day and of the week and its positions in a daily and a weekly profile, worked out
    /// once when the datapoint arrives rather than in each of the few hundred refits it takes part in.
    struct Phases: Sendable {
        var hourOfDay: [UInt8] = []
        var hourOfWeek: [UInt8] = []
        var dayPosition: [Double] = []
        var weekPosition: [Double] = []

        init() {}

        init(times: [Int64]) {
            for t in times { append(t) }
        }

        mutating func append(_ t: Int64) {
            let hour = AnomalyBandModel.hourOfWeek(t)
            // A week is whole days: the hour of the week modulo 24 is the hour of the day.
            hourOfDay.append(UInt8(hour % 24))
            hourOfWeek.append(UInt8(hour))
            dayPosition.append(AnomalyBandModel.profilePosition(t, cycle: AnomalyBandModel.day))
            weekPosition.append(AnomalyBandModel.profilePosition(t, cycle: AnomalyBandModel.week))
        }

        mutating func removeFirst(_ count: Int) {
            hourOfDay.removeFirst(count)
            hourOfWeek.removeFirst(count)
            dayPosition.removeFirst(count)
            weekPosition.removeFirst(count)
        }
    }

    /// The raw values of a window of the history in ascending order. Successive refits' windows overlap but for
    /// the hour that arrived and the hour that aged out, so the window is updated by one merge — the old window
    /// without the values that left, with the new ones — instead of sorting two weeks of values every hour; the
    /// resolution is measured in the same pass.
    struct SortedWindow: Sendable {
        var sorted: [Double] = []
        /// The window, as indices counted from the first datapoint the model held (`dropped` + index in the history).
        var from = 0
        var to = 0

        /// The resolution of the raw values from `start` on, `dropped` datapoints having left the history's front.
        mutating func resolution(of raw: [Double], from start: Int, dropped: Int) -> Double {
            let newFrom = dropped + start, newTo = dropped + raw.count
            let changes = (newFrom - from) + (newTo - to)
            let updatable = from >= dropped && newFrom >= from && newTo >= to && newFrom <= to && changes <= 64 + sorted.count / 4
            let merged = updatable ? merge(leaving: raw[(from - dropped)..<(newFrom - dropped)].sorted(),
                                           arriving: raw[(to - dropped)..<(newTo - dropped)].sorted()) : nil
            from = newFrom
            to = newTo
            if let merged { return merged }
            sorted = Array(raw[start...])
            sorted.sort()
            return AnomalyBandModel.resolution(sorted: sorted)
        }

        /// Replaces `sorted` by itself without `leaving` and with `arriving` (both ascending) and returns the result's
        /// resolution (as ``AnomalyBandModel/resolution(sorted:)`` measures it); nil, with `sorted` unchanged, when a
        /// leaving value is not there (the window is then rebuilt).
        private mutating func merge(leaving: [Double], arriving: [Double]) -> Double? {
            var step = Double.infinity
            var found = false
            // Room for every old value and every arriving one: a leaving value that is not found stays in.
            let merged = [Double](unsafeUninitializedCapacity: sorted.count + arriving.count) { out, written in
                sorted.withUnsafeBufferPointer { old in
                    var left = 0, arrived = 0
                    var previous = 0.0
                    func emit(_ v: Double) {
                        if written > 0 {
                            let d = v - previous
                            if d > 0 && d < step { step = d }
                        }
                        out[written] = v
                        written += 1
                        previous = v
                    }
                    for v in old {
                        // Both ascending: each leaving value is met where it lies (a multiset difference).
                        if left < leaving.count && v == leaving[left] {
                            left += 1
                            continue
                        }
                        while arrived < arriving.count && arriving[arrived] < v {
                            emit(arriving[arrived])
                            arrived += 1
                        }
                        emit(v)
                    }
                    while arrived < arriving.count {
                        emit(arriving[arrived])
                        arrived += 1
                    }
                    found = left == leaving.count
                }
            }
            guard found else { return nil }
            sorted = merged
            return step.isFinite ? step : 0
        }
    }
}

extension AnomalyBandModel: Codable {
    enum CodingKeys: String, CodingKey {
        case settings, times, values, raw, reaches, errors, regimeStart, runSide, runLength, runStart, fit
        case incidentAbove, incidentBelow
    }

    public init(from decoder: any Decoder) throws {
        // State saved before level shifts and prediction errors existed loads with them empty.
        let c = try decoder.container(keyedBy: CodingKeys.self)
        settings = try c.decode(Settings.self, forKey: .settings)
        times = try c.decode([Int64].self, forKey: .times)
        values = try c.decode([Double].self, forKey: .values)
        reaches = try c.decode([Double].self, forKey: .reaches)
        raw = try c.decodeIfPresent([Double].self, forKey: .raw) ?? values
        errors = try c.decodeIfPresent([Double?].self, forKey: .errors)?.map { $0 ?? .nan }
            ?? [Double](repeating: .nan, count: times.count)
        regimeStart = try c.decodeIfPresent(Int64.self, forKey: .regimeStart) ?? .min
        runSide = try c.decodeIfPresent(Int.self, forKey: .runSide) ?? 0
        runLength = try c.decodeIfPresent(Int.self, forKey: .runLength) ?? 0
        runStart = try c.decodeIfPresent(Int64.self, forKey: .runStart) ?? 0
        incidentAbove = try c.decodeIfPresent(Incident.self, forKey: .incidentAbove)
        incidentBelow = try c.decodeIfPresent(Incident.self, forKey: .incidentBelow)
        phases = Phases(times: times)
        // The fit is derived from the history: one saved by another version is simply refitted.
        fit = (try? c.decodeIfPresent(Fit.self, forKey: .fit)) ?? nil
        guard values.count == times.count, reaches.count == times.count, raw.count == times.count,
              errors.count == times.count else {
            throw DecodingError.dataCorruptedError(forKey: .times, in: c, debugDescription: "history arrays differ in length")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(settings, forKey: .settings)
        try c.encode(times, forKey: .times)
        try c.encode(values, forKey: .values)
        try c.encode(raw, forKey: .raw)
        try c.encode(reaches, forKey: .reaches)
        // JSON has no NaN: a missing error is null.
        try c.encode(errors.map { $0.isNaN ? nil : $0 }, forKey: .errors)
        try c.encode(regimeStart, forKey: .regimeStart)
        try c.encode(runSide, forKey: .runSide)
        try c.encode(runLength, forKey: .runLength)
        try c.encode(runStart, forKey: .runStart)
        try c.encodeIfPresent(incidentAbove, forKey: .incidentAbove)
        try c.encodeIfPresent(incidentBelow, forKey: .incidentBelow)
        try c.encodeIfPresent(fit, forKey: .fit)
    }
}

/// Order statistics with NumPy's conventions (median of an even count is the mean of the middle
/// two; quantiles interpolate linearly), so figures can be checked against a notebook. Selection,
/// not sorting: a refit takes many of these over two weeks of datapoints.
enum Stats {
    static func median(_ values: [Double]) -> Double { quantile(values, 0.5) }

    /// The standard normal quantile Φ⁻¹(p) for 0 < p < 1 (Acklam's rational approximation, relative error
    /// below 1.2e-9).
    static func normalQuantile(_ p: Double) -> Double {
        let a = [-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
                 -3.066479806614716e+01, 2.506628277459239e+00]
        let b = [-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
                 -1.328068155288572e+01]
        let c = [-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
                 4.374664141464968e+00, 2.938163982698783e+00]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let p = min(max(p, 1e-12), 1 - 1e-12)
        if p < 0.02425 {
            let q = (-2 * Foundation.log(p)).squareRoot()
            return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        if p > 1 - 0.02425 { return -normalQuantile(1 - p) }
        let q = p - 0.5
        let r = q * q
        return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
            / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
    }

    static func quantile(_ values: [Double], _ q: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        var a = values
        return a.withUnsafeMutableBufferPointer { quantile(inPlace: $0, q) }
    }

    static func median(inPlace a: UnsafeMutableBufferPointer<Double>) -> Double { quantile(inPlace: a, 0.5) }

    /// The median of `values`, reordering them: the same selection as ``median(_:)`` without its copy.
    static func median(reordering values: inout [Double]) -> Double {
        values.withUnsafeMutableBufferPointer { median(inPlace: $0) }
    }

    /// Moves the values satisfying `belongsFirst` to the front of `a` (in no particular order); returns their count.
    static func partition(_ a: UnsafeMutableBufferPointer<Double>, by belongsFirst: (Double) -> Bool) -> Int {
        var first = 0
        for i in a.indices where belongsFirst(a[i]) {
            a.swapAt(i, first)
            first += 1
        }
        return first
    }

    /// The median of `count` values given by their order statistics (`orderStatistic(k)` is the k-th smallest), with
    /// the very arithmetic of ``quantile(inPlace:_:)``: for values kept sorted, the same Double without a selection.
    @inline(__always)
    static func median(count: Int, orderStatistic: (Int) -> Double) -> Double {
        guard count > 0 else { return 0 }
        let position = 0.5 * Double(count - 1)
        let below = Int(position.rounded(.down))
        let fraction = position - Double(below)
        let low = orderStatistic(below)
        guard fraction > 0, below + 1 < count else { return low }
        let high = orderStatistic(below + 1)
        return low + (high - low) * fraction
    }

    /// The quantiles `q1` ≤ `q2` of `a`, reordering `a`: the second is selected only among the values right of the first.
    static func quantiles(inPlace a: UnsafeMutableBufferPointer<Double>, _ q1: Double, _ q2: Double) -> (Double, Double) {
        guard !a.isEmpty else { return (0, 0) }
        let first = quantile(inPlace: a, q1)
        // `a` is now partitioned around the first quantile's lower order statistic.
        let firstBelow = Int((q1 * Double(a.count - 1)).rounded(.down))
        let position = q2 * Double(a.count - 1)
        let below = Int(position.rounded(.down))
        let fraction = position - Double(below)
        if below > firstBelow {
            select(below - firstBelow - 1, in: UnsafeMutableBufferPointer(rebasing: a[(firstBelow + 1)...]))
        }
        let low = a[below]
        guard fraction > 0, below + 1 < a.count else { return (first, low) }
        var high = a[below + 1]
        for i in (below + 2)..<a.count where a[i] < high { high = a[i] }
        return (first, low + (high - low) * fraction)
    }

    /// A quantile near 0 or 1 of `values` (NumPy's convention, as ``quantile(_:_:)``), from the few order statistics
    /// at that end, kept sorted while the values pass once.
    static func extremeQuantile(_ values: [Double], _ q: Double) -> Double {
        guard !values.isEmpty else { return 0 }
        let upper = q > 0.5
        let position = (upper ? 1 - q : q) * Double(values.count - 1)
        let below = Int(position.rounded(.down))
        let fraction = position - Double(below)
        // The `below + 2` values nearest that end, nearest first (the smallest ascending, or the largest descending),
        // in a buffer of that size: most values are not among them and cost one compare.
        let keep = min(below + 2, values.count)
        var kept = [Double](repeating: 0, count: keep)
        values.withUnsafeBufferPointer { values in
            kept.withUnsafeMutableBufferPointer { kept in
                var count = 0
                for v in values {
                    if count == keep {
                        guard upper ? v > kept[keep - 1] : v < kept[keep - 1] else { continue }
                        count -= 1
                    }
                    // Inserted after the values it ties with.
                    var i = count
                    while i > 0 && (upper ? kept[i - 1] < v : kept[i - 1] > v) {
                        kept[i] = kept[i - 1]
                        i -= 1
                    }
                    kept[i] = v
                    count += 1
                }
            }
        }
        let a = kept[below]
        guard fraction > 0, below + 1 < kept.count else { return a }
        // From the top, the order statistic `below` places in is the larger of the two NumPy interpolates between.
        let b = kept[below + 1]
        return upper ? b + (a - b) * (1 - fraction) : a + (b - a) * fraction
    }

    /// The quantile of `a`, reordering `a`.
    static func quantile(inPlace a: UnsafeMutableBufferPointer<Double>, _ q: Double) -> Double {
        guard !a.isEmpty else { return 0 }
        let position = q * Double(a.count - 1)
        let below = Int(position.rounded(.down))
        let fraction = position - Double(below)
        select(below, in: a)
        let low = a[below]
        guard fraction > 0, below + 1 < a.count else { return low }
        // After selection everything right of `below` is at least a[below]: the next order statistic is their minimum.
        var high = a[below + 1]
        for i in (below + 2)..<a.count where a[i] < high { high = a[i] }
        return low + (high - low) * fraction
    }

    /// Rearranges `a` so that `a[k]` is the k-th smallest, smaller values left of it and larger right (quickselect).
    static func select(_ k: Int, in a: UnsafeMutableBufferPointer<Double>) {
        var low = 0
        var high = a.count - 1
        while high > low {
            if high - low < 16 {
                // A short range is sorted outright (insertion sort): fewer mispredicted branches than partitioning
                // it further — the slot medians of a weekly profile are of about twenty values each.
                for i in (low + 1)...high {
                    let x = a[i]
                    var j = i - 1
                    while j >= low && a[j] > x {
                        a[j + 1] = a[j]
                        j -= 1
                    }
                    a[j + 1] = x
                }
                return
            }
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

/// The tail of a metric's absolute deviations, as a generalized Pareto distribution over their 0.97 quantile (the
/// peaks-over-threshold method of extreme value theory, as SPOT uses it). A band of `k` normal deviations means "as rare
/// as a value k deviations out of a normal distribution": on a heavy-tailed metric that lies further out than k
/// deviations, and this says how much further.
struct TailFit: Codable, Sendable {
    /// The threshold (in spreads), the share of deviations beyond it, and the distribution's scale and shape.
    var threshold: Double
    var rate: Double
    var scale: Double
    var shape: Double

    static let thresholdQuantile = 0.97
    /// Fewer deviations, or fewer excesses, do not say enough about a tail.
    static let minimumCount = 1000
    static let minimumExcesses = 30

    /// Fitted by the method of moments to the excesses over `threshold` among `candidates` (absolute deviations, the
    /// largest of `count`), measured in `spread`s; nil with fewer than `minimumExcesses` or no spread.
    init?(excessesOf candidates: UnsafeBufferPointer<Double>, over threshold: Double, among count: Int, spread: Double) {
        guard spread > 0 else { return nil }
        var sum = 0.0, squares = 0.0, n = 0
        for d in candidates where d > threshold {
            let e = (d - threshold) / spread
            sum += e
            squares += e * e
            n += 1
        }
        guard n >= Self.minimumExcesses else { return nil }
        let mean = sum / Double(n)
        let variance = squares / Double(n) - mean * mean
        guard mean > 0, variance > 0 else { return nil }
        let ratio = mean * mean / variance
        // Shape clamped to what moments can estimate (they need shape < 1/4 for a finite fourth moment).
        shape = min(max(0.5 * (1 - ratio), -0.5), 0.45)
        scale = 0.5 * mean * (ratio + 1)
        self.threshold = threshold / spread
        rate = Double(n) / Double(count)
    }

    /// The band width (in spreads) for `k` normal deviations: never narrower than `k`, wider when the tail is heavier
    /// than a normal one.
    func width(_ k: Double) -> Double {
        // Two-sided tail probability of k normal deviations.
        let p = Foundation.erfc(k / 2.0.squareRoot())
        guard p < rate else { return k }
        let ratio = p / rate
        let x = abs(shape) < 1e-6 ? threshold - scale * Foundation.log(ratio)
            : threshold + scale / shape * (Foundation.pow(ratio, -shape) - 1)
        return x.isFinite ? max(k, x) : k
    }
}
