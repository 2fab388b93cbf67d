import TrailwatchCore

/// Aggregates metric samples into one datapoint per metric and period, on event time.
///
/// A period is emitted once the newest event time seen (the watermark) or, in live mode, the wall
/// clock is `lateness` past its end, so live runs and batch runs over the same events produce the
/// same datapoints. A sample older than an already emitted period still counts: it goes out as a
/// second datapoint for that period, which consumers merge (CloudWatch merges statistic sets the
/// same way). Raw values are kept for percentiles up to `maximumValues` per datapoint; beyond that
/// a deterministic reservoir keeps a uniform sample, so replays keep identical results.
public struct MetricAggregator: Sendable {
    struct Key: Hashable {
        var metric: MetricIdentity
        var unit: String?
        var periodStart: Int64
    }

    struct Accumulator {
        var count = 0.0
        var sum = 0.0
        var minimum = Double.infinity
        var maximum = -Double.infinity
        var values: [Double] = []
        var seen: UInt64 = 0
    }

    public let periodSeconds: Int
    public let latenessMillis: Int64
    public let maximumValues: Int
    private var open: [Key: Accumulator] = [:]
    /// Newest event time seen.
    public private(set) var watermark: Int64 = .min

    public init(periodSeconds: Int = 60, latenessMillis: Int64 = 60_000, maximumValues: Int = 10_000) {
        self.periodSeconds = max(1, periodSeconds)
        self.latenessMillis = latenessMillis
        self.maximumValues = max(1, maximumValues)
    }

    var periodMillis: Int64 { Int64(periodSeconds) * 1000 }

    /// Start of the period `time` falls in.
    public func periodStart(_ time: Int64) -> Int64 {
        let p = periodMillis
        let (quotient, remainder) = time.quotientAndRemainder(dividingBy: p)
        // Floor division; times near the ends of Int64 clamp instead of overflowing.
        let (start, overflow) = (remainder < 0 ? quotient - 1 : quotient).multipliedReportingOverflow(by: p)
        return overflow ? Int64.min : start
    }

    /// The accumulator samples went to last, kept out of the dictionary: consecutive samples of
    /// one metric and period (the common case) then cost no hashing.
    ///
    /// Returns false, adding nothing, when the value is not finite or would carry the period's sum
    /// beyond what a Double holds: datapoints never hold infinities (they would publish as `null`).
    @discardableResult
    public mutating func add(_ value: Double, metric: MetricIdentity, unit: String?, at time: Int64) -> Bool {
        guard value.isFinite else { return false }
        let key = Key(metric: metric, unit: unit, periodStart: periodStart(time))
        // Updated in place in the dictionary: one hash lookup, and the values array is never copied.
        guard Self.accumulate(value, into: &open[key, default: Accumulator()], maximumValues: maximumValues) else { return false }
        if time > watermark { watermark = time }
        return true
    }

    private static func accumulate(_ value: Double, into acc: inout Accumulator, maximumValues: Int) -> Bool {
        guard (acc.sum + value).isFinite else { return false }
        acc.count += 1
        acc.sum += value
        acc.minimum = min(acc.minimum, value)
        acc.maximum = max(acc.maximum, value)
        acc.seen &+= 1
        if acc.values.count < maximumValues {
            acc.values.append(value)
        } else {
            // Algorithm R with a fixed-seed generator: the same input order keeps the same values.
            var x = acc.seen &* 0x9E37_79B9_7F4A_7C15
            x ^= x >> 31
            let slot = Int(x % acc.seen)
            if slot < maximumValues { acc.values[slot] = value }
        }
        return true
    }

    /// The oldest period still open, if any.
    public var oldestOpenPeriod: Int64? {
        open.keys.lazy.map(\.periodStart).min()
    }

    /// Datapoints of every period that ended `lateness` before `now` (event time or wall clock).
    public mutating func closePeriods(before now: Int64) -> [MetricDatum] {
        let boundary = now - latenessMillis
        let due = open.keys.filter { $0.periodStart + periodMillis <= boundary }
        return emit(due)
    }

    /// Datapoints of the periods the watermark has passed.
    public mutating func closeByWatermark() -> [MetricDatum] {
        watermark == .min ? [] : closePeriods(before: watermark)
    }

    /// Every open period (end of input).
    public mutating func closeAll() -> [MetricDatum] {
        return emit(Array(open.keys))
    }

    private mutating func emit(_ keys: [Key]) -> [MetricDatum] {
        let ordered = keys.sorted {
            if $0.periodStart != $1.periodStart { return $0.periodStart < $1.periodStart }
            if $0.metric.namespace != $1.metric.namespace { return $0.metric.namespace < $1.metric.namespace }
            if $0.metric.name != $1.metric.name { return $0.metric.name < $1.metric.name }
            return $0.metric.dimensions.lexicographicallyPrecedes($1.metric.dimensions)
        }
        return ordered.map { key in
            let acc = open.removeValue(forKey: key)!
            return MetricDatum(metric: key.metric, unit: key.unit, timestamp: key.periodStart, period: periodSeconds,
                               sampleCount: acc.count, sum: acc.sum, minimum: acc.minimum, maximum: acc.maximum, values: acc.values)
        }
    }
}

extension MetricDatum {
    /// The p-th percentile (0–100) of the raw values, by nearest rank; nil without values.
    public func percentile(_ p: Double) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }
}
