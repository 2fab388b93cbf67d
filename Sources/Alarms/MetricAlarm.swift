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

    public var name: String {
        switch self {
        case .sampleCount: "SampleCount"
        case .sum: "Sum"
        case .average: "Average"
        case .minimum: "Minimum"
        case .maximum: "Maximum"
        case .percentile(let p): p == p.rounded() ? "p\(Int(p))" : "p\(p)"
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

/// One period of an alarm's evaluation range.
public struct AlarmDatapoint: Sendable, Equatable, Codable {
    /// Period start (ms).
    public var start: Int64
    /// The period's statistic; nil when the period had no data.
    public var value: Double?
    /// The band the value was judged against (anomaly-detection alarms).
    public var band: AnomalyBand?

    public init(start: Int64, value: Double?, band: AnomalyBand? = nil) {
        self.start = start
        self.value = value
        self.band = band
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
    /// The evaluated range, oldest first.
    public var datapoints: [AlarmDatapoint]
}

/// A CloudWatch metric alarm on one metric, evaluated on event time: datapoints are merged into
/// the alarm's periods and each period, once closed, is judged — against the static threshold or
/// against the anomaly band the model predicts for it — and the alarm is evaluated over the last
/// N + 2 periods. Replaying the same datapoints gives the same transitions, live or in batch.
public struct MetricAlarm: Sendable, Codable {
    public enum Threshold: Sendable, Equatable, Codable {
        case fixed(Double)
        /// `ANOMALY_DETECTION_BAND(m, width)`.
        case band(width: Double)
    }

    /// What a step of evaluation produced.
    public struct Step: Sendable {
        public var changes: [AlarmStateChange] = []
        /// For band alarms: the band of every period judged, by period start.
        public var bands: [(start: Int64, band: AnomalyBand)] = []
    }

    public let name: String
    /// The metric the alarm reads.
    public let metric: MetricIdentity
    public let periodMs: Int64
    public let statistic: AlarmStatistic
    public let threshold: Threshold
    public let comparison: ComparisonOperator
    public let evaluationPeriods: Int
    public let datapointsToAlarm: Int
    public let treatMissingData: TreatMissingData
    public private(set) var state: AlarmState = .insufficientData
    /// Datapoints merged per open period.
    private var open: [Int64: MetricDatum] = [:]
    /// Judged periods still inside a future evaluation range: value, band and whether it breached.
    private var judged: [Int64: Judged] = [:]
    private var nextToEvaluate: Int64?
    private var model: AnomalyBandModel?
    /// Whether the band model has produced a band yet (until then a band alarm is not evaluated).
    private var bandReady = false
    /// The settings of the anomaly band model (nil for a threshold alarm).
    public var bandSettings: AnomalyBandModel.Settings? { model?.settings }

    struct Judged: Codable {
        var value: Double?
        var band: AnomalyBand?
        var breaching: Bool?
    }

    public init(definition: AlarmDefinition, bandSettings: AnomalyBandModel.Settings = .init()) throws(AlarmDefinition.Invalid) {
        try definition.validate()
        name = definition.alarmName
        comparison = definition.comparisonOperator
        evaluationPeriods = definition.evaluationPeriods
        datapointsToAlarm = definition.datapointsToAlarm ?? definition.evaluationPeriods
        treatMissingData = definition.treatMissingData ?? .missing
        if let metrics = definition.metrics {
            // validate() guarantees the band expression and its MetricStat for band operators.
            let read: AlarmDefinition.MetricStat
            if let id = definition.thresholdMetricId, let expression = metrics.first(where: { $0.id == id })?.expression,
               let band = AlarmDefinition.band(expression), let stat = metrics.first(where: { $0.id == band.metricID })?.metricStat {
                read = stat
                threshold = .band(width: band.width)
                var settings = bandSettings
                if let kind = try definition.bandModel { settings.kind = kind }
                model = AnomalyBandModel(settings: settings)
            } else {
                let stats = metrics.compactMap(\.metricStat)
                guard stats.count == 1, let only = stats.first, let value = definition.threshold else {
                    throw AlarmDefinition.Invalid(key: "Metrics", message: "a metric-math alarm needs one MetricStat and a Threshold, or an ANOMALY_DETECTION_BAND with ThresholdMetricId")
                }
                read = only
                threshold = .fixed(value)
            }
            guard let statistic = AlarmStatistic(read.stat) else {
                throw AlarmDefinition.Invalid(key: "Metrics", message: "unknown statistic '\(read.stat)'")
            }
            self.statistic = statistic
            periodMs = Int64(read.period) * 1000
            metric = MetricIdentity(namespace: read.metric.namespace, name: read.metric.metricName,
                                    dimensions: read.metric.dimensions.map { Dimension(name: $0.name, value: $0.value) })
        } else {
            guard let period = definition.period, let value = definition.threshold,
                  let statistic = AlarmStatistic(definition.statistic ?? definition.extendedStatistic ?? ""),
                  let namespace = definition.namespace, let metricName = definition.metricName else {
                throw AlarmDefinition.Invalid(key: "Statistic", message: "a threshold alarm needs Period, Threshold and a known statistic")
            }
            self.statistic = statistic
            threshold = .fixed(value)
            periodMs = Int64(period) * 1000
            metric = MetricIdentity(namespace: namespace, name: metricName,
                                    dimensions: (definition.dimensions ?? []).map { Dimension(name: $0.name, value: $0.value) })
        }
    }

    enum CodingKeys: String, CodingKey {
        case name, metric, periodMs, statistic, threshold, comparison, evaluationPeriods, datapointsToAlarm, treatMissingData
        case state, open, judged, nextToEvaluate, model, bandReady
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        metric = try c.decode(MetricIdentity.self, forKey: .metric)
        periodMs = try c.decode(Int64.self, forKey: .periodMs)
        let statisticName = try c.decode(String.self, forKey: .statistic)
        guard let statistic = AlarmStatistic(statisticName) else {
            throw DecodingError.dataCorruptedError(forKey: .statistic, in: c, debugDescription: "unknown statistic \(statisticName)")
        }
        self.statistic = statistic
        threshold = try c.decode(Threshold.self, forKey: .threshold)
        comparison = try c.decode(ComparisonOperator.self, forKey: .comparison)
        evaluationPeriods = try c.decode(Int.self, forKey: .evaluationPeriods)
        datapointsToAlarm = try c.decode(Int.self, forKey: .datapointsToAlarm)
        treatMissingData = try c.decode(TreatMissingData.self, forKey: .treatMissingData)
        state = try c.decode(AlarmState.self, forKey: .state)
        open = try c.decode([Int64: MetricDatum].self, forKey: .open)
        judged = try c.decode([Int64: Judged].self, forKey: .judged)
        nextToEvaluate = try c.decodeIfPresent(Int64.self, forKey: .nextToEvaluate)
        model = try c.decodeIfPresent(AnomalyBandModel.self, forKey: .model)
        bandReady = try c.decode(Bool.self, forKey: .bandReady)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(metric, forKey: .metric)
        try c.encode(periodMs, forKey: .periodMs)
        try c.encode(statistic.name, forKey: .statistic)
        try c.encode(threshold, forKey: .threshold)
        try c.encode(comparison, forKey: .comparison)
        try c.encode(evaluationPeriods, forKey: .evaluationPeriods)
        try c.encode(datapointsToAlarm, forKey: .datapointsToAlarm)
        try c.encode(treatMissingData, forKey: .treatMissingData)
        try c.encode(state, forKey: .state)
        try c.encode(open, forKey: .open)
        try c.encode(judged, forKey: .judged)
        try c.encodeIfPresent(nextToEvaluate, forKey: .nextToEvaluate)
        try c.encodeIfPresent(model, forKey: .model)
        try c.encode(bandReady, forKey: .bandReady)
    }

    /// Whether the alarm reads this metric: same namespace, name and exactly the same dimensions.
    public func reads(_ identity: MetricIdentity) -> Bool { identity == metric }

    public func periodStart(_ t: Int64) -> Int64 { t >= 0 ? t / periodMs * periodMs : ((t - periodMs + 1) / periodMs) * periodMs }

    /// Merges a datapoint (of any period length that fits) into the alarm's period. Datapoints
    /// for periods already judged (replayed after a restart) are ignored; returns whether it was taken.
    @discardableResult
    public mutating func add(_ d: MetricDatum) -> Bool {
        let start = periodStart(d.timestamp)
        if let next = nextToEvaluate, start < next { return false }
        if var merged = open[start] {
            merged.sampleCount += d.sampleCount
            merged.sum += d.sum
            merged.minimum = min(merged.minimum, d.minimum)
            merged.maximum = max(merged.maximum, d.maximum)
            merged.values += d.values
            open[start] = merged
        } else {
            var copy = d
            copy.timestamp = start
            open[start] = copy
        }
        if nextToEvaluate == nil { nextToEvaluate = start }
        return true
    }

    /// The end of the newest period the alarm could judge now (nil before any datapoint).
    public var newestOpenPeriodEnd: Int64? { open.keys.max().map { $0 + periodMs } }

    /// The next period the alarm will judge.
    public var nextPeriod: Int64? { nextToEvaluate }

    /// Evaluates every period that ended by `time` (event time or the wall clock), in order.
    public mutating func evaluate(until time: Int64) -> [AlarmStateChange] { advance(until: time).changes }

    /// Judges and evaluates every period that ended by `time`, in order.
    public mutating func advance(until time: Int64) -> Step {
        guard var next = nextToEvaluate else { return Step() }
        var step = Step()
        let rangeLength = Int64(evaluationPeriods + 2)
        while next + periodMs <= time {
            judge(next, into: &step)
            let starts = (0..<rangeLength).map { next - (rangeLength - 1 - $0) * periodMs }
            // A band alarm whose model is still training has nothing to say yet.
            if model == nil || bandReady {
                let range = starts.map { judged[$0]?.breaching ?? nil }
                let newState = AlarmEvaluation.state(range: range, datapointsToAlarm: datapointsToAlarm, evaluationPeriods: evaluationPeriods,
                                                     treatMissingData: treatMissingData, current: state)
                if newState != state {
                    let datapoints = starts.map { AlarmDatapoint(start: $0, value: judged[$0]?.value, band: judged[$0]?.band) }
                    step.changes.append(AlarmStateChange(alarmName: name, timestamp: next + periodMs, oldState: state, newState: newState,
                                                         reason: reason(range: range, datapoints: datapoints), datapoints: datapoints))
                    state = newState
                }
            }
            next += periodMs
            // Periods older than any future range are no longer needed.
            judged = judged.filter { $0.key > next - rangeLength * periodMs }
        }
        nextToEvaluate = next
        return step
    }

    private mutating func judge(_ start: Int64, into step: inout Step) {
        let value = open.removeValue(forKey: start).flatMap { statistic.value(of: $0) }
        switch threshold {
        case .fixed(let limit):
            judged[start] = Judged(value: value, band: nil, breaching: value.map { comparison.breaches($0, threshold: limit) })
        case .band(let width):
            let band = model?.band(at: start, width: width)
            if let band {
                step.bands.append((start, band))
                bandReady = true
            }
            var breaching: Bool?
            if let value, let band { breaching = comparison.breaches(value, lower: band.lower, upper: band.upper) }
            judged[start] = Judged(value: value, band: band, breaching: breaching)
            if let value { model?.train(at: start, value: value, band: band) }
        }
    }

    private func reason(range: [Bool?], datapoints: [AlarmDatapoint]) -> String {
        let real = datapoints.compactMap(\.value).count
        let breaching = range.compactMap { $0 }.filter { $0 }.count
        let against: String
        switch threshold {
        case .fixed(let limit): against = "\(comparison.rawValue) \(limit)"
        case .band(let width): against = "\(comparison.rawValue) of the anomaly band (width \(width))"
        }
        return "Threshold Crossed: \(real) datapoint\(real == 1 ? "" : "s") in the last \(range.count) periods "
            + "(\(breaching) breaching \(against)); \(datapointsToAlarm) of \(evaluationPeriods) needed, "
            + "missing data treated as \(treatMissingData.rawValue)."
    }
}
