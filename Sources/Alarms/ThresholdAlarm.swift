import TrailwatchCore

/// The statistic an alarm reads from each period.
public enum AlarmStatistic: Sendable, Equatable {
    case sampleCount, sum, average, minimum, maximum
    case percentile(Double)

    /// `SampleCount`, `Sum`, `Average`, `Minimum`, `Maximum` or `pNN` / `pNN.N`.
    public init?(_ text: String) {
        switch text {
        case "SampleCount": self = .sampleCount
        case "Sum": self = .sum
        case "Average": self = .average
        case "Minimum": self = .minimum
        case "Maximum": self = .maximum
        default:
            guard text.hasPrefix("p"), let p = Double(text.dropFirst()), p > 0, p < 100 else { return nil }
            self = .percentile(p)
        }
    }

    func value(of d: MetricDatum) -> Double? {
        guard d.sampleCount > 0 else { return nil }
        switch self {
        case .sampleCount: return d.sampleCount
        case .sum: return d.sum
        case .average: return d.average
        case .minimum: return d.minimum
        case .maximum: return d.maximum
        case .percentile(let p):
            // Percentiles are unavailable once a value is negative, as in CloudWatch.
            guard !d.values.isEmpty, d.minimum >= 0 else { return nil }
            let sorted = d.values.sorted()
            let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
            return sorted[min(max(rank, 1), sorted.count) - 1]
        }
    }
}

/// A state change, with what decided it.
public struct AlarmStateChange: Sendable, Equatable {
    public var alarmName: String
    /// End of the newest period evaluated (ms).
    public var timestamp: Int64
    public var oldState: AlarmState
    public var newState: AlarmState
    public var reason: String
    /// The evaluated range, oldest first: period start and statistic (nil when missing).
    public var datapoints: [(start: Int64, value: Double?)]

    public static func == (a: AlarmStateChange, b: AlarmStateChange) -> Bool {
        a.alarmName == b.alarmName && a.timestamp == b.timestamp && a.oldState == b.oldState && a.newState == b.newState
            && a.reason == b.reason && a.datapoints.map(\.start) == b.datapoints.map(\.start)
            && a.datapoints.map(\.value) == b.datapoints.map(\.value)
    }
}

/// A static-threshold alarm on one metric, evaluated on event time: datapoints are merged into the
/// alarm's periods, and each period, once closed, is evaluated over the last N + 2 periods.
public struct ThresholdAlarm: Sendable {
    public let name: String
    public let periodMs: Int64
    public let statistic: AlarmStatistic
    public let threshold: Double
    public let comparison: ComparisonOperator
    public let evaluationPeriods: Int
    public let datapointsToAlarm: Int
    public let treatMissingData: TreatMissingData
    public private(set) var state: AlarmState = .insufficientData
    private var periods: [Int64: MetricDatum] = [:]
    private var nextToEvaluate: Int64?

    public init(definition: AlarmDefinition) throws(AlarmDefinition.Invalid) {
        try definition.validate()
        guard definition.metrics == nil, let period = definition.period, let threshold = definition.threshold,
              let statistic = AlarmStatistic(definition.statistic ?? definition.extendedStatistic ?? "") else {
            throw AlarmDefinition.Invalid(key: "Statistic", message: "a threshold alarm needs Period, Threshold and a known statistic")
        }
        name = definition.alarmName
        periodMs = Int64(period) * 1000
        self.statistic = statistic
        self.threshold = threshold
        comparison = definition.comparisonOperator
        evaluationPeriods = definition.evaluationPeriods
        datapointsToAlarm = definition.datapointsToAlarm ?? definition.evaluationPeriods
        treatMissingData = definition.treatMissingData ?? .missing
    }

    func periodStart(_ t: Int64) -> Int64 { t >= 0 ? t / periodMs * periodMs : ((t - periodMs + 1) / periodMs) * periodMs }

    /// Merges a datapoint (of any period length that fits) into the alarm's period.
    public mutating func add(_ d: MetricDatum) {
        let start = periodStart(d.timestamp)
        if var merged = periods[start] {
            merged.sampleCount += d.sampleCount
            merged.sum += d.sum
            merged.minimum = min(merged.minimum, d.minimum)
            merged.maximum = max(merged.maximum, d.maximum)
            merged.values += d.values
            periods[start] = merged
        } else {
            var copy = d
            copy.timestamp = start
            periods[start] = copy
        }
        if nextToEvaluate == nil { nextToEvaluate = start }
    }

    /// Evaluates every period that ended by `time` (event time or the wall clock), in order.
    public mutating func evaluate(until time: Int64) -> [AlarmStateChange] {
        guard var next = nextToEvaluate else { return [] }
        var changes: [AlarmStateChange] = []
        let rangeLength = Int64(evaluationPeriods + 2)
        while next + periodMs <= time {
            let starts = (0..<rangeLength).map { next - (rangeLength - 1 - $0) * periodMs }
            let values = starts.map { start in periods[start].flatMap { statistic.value(of: $0) } }
            let breaching = values.map { $0.map { comparison.breaches($0, threshold: threshold) } }
            let newState = AlarmEvaluation.state(range: breaching, datapointsToAlarm: datapointsToAlarm,
                                                 evaluationPeriods: evaluationPeriods, treatMissingData: treatMissingData, current: state)
            if newState != state {
                let real = values.compactMap { $0 }
                let reason = "Threshold Crossed: \(real.count) datapoint\(real.count == 1 ? "" : "s") in the last \(rangeLength) periods "
                    + "(\(breaching.compactMap { $0 }.filter { $0 }.count) breaching \(comparison.rawValue) \(threshold)); "
                    + "\(datapointsToAlarm) of \(evaluationPeriods) needed, missing data treated as \(treatMissingData.rawValue)."
                changes.append(AlarmStateChange(alarmName: name, timestamp: next + periodMs, oldState: state, newState: newState,
                                                reason: reason, datapoints: zip(starts, values).map { ($0, $1) }))
                state = newState
            }
            next += periodMs
            // Periods older than any future range are no longer needed.
            periods = periods.filter { $0.key > next - rangeLength * periodMs }
        }
        nextToEvaluate = next
        return changes
    }
}
