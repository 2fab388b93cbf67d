import Foundation

/// An alarm as PutMetricAlarm takes it (the same keys in JSON or YAML): a single-metric alarm
/// (`MetricName`, `Namespace`, `Statistic`/`ExtendedStatistic`, `Period`, `Threshold`) or a
/// metric-math alarm (`Metrics`, with `ThresholdMetricId` for anomaly bands).
public struct AlarmDefinition: Codable, Sendable {
    public struct Dimension: Codable, Sendable, Hashable {
        public var name: String
        public var value: String
        enum CodingKeys: String, CodingKey { case name = "Name", value = "Value" }
    }

    public struct Metric: Codable, Sendable {
        public var namespace: String
        public var metricName: String
        public var dimensions: [Dimension]
        enum CodingKeys: String, CodingKey { case namespace = "Namespace", metricName = "MetricName", name = "Name", dimensions = "Dimensions" }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            namespace = try c.decode(String.self, forKey: .namespace)
            // AWS writes MetricName; some tools write Name.
            metricName = try c.decodeIfPresent(String.self, forKey: .metricName) ?? c.decode(String.self, forKey: .name)
            dimensions = try c.decodeIfPresent([Dimension].self, forKey: .dimensions) ?? []
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(namespace, forKey: .namespace)
            try c.encode(metricName, forKey: .metricName)
            try c.encode(dimensions, forKey: .dimensions)
        }
    }

    public struct MetricStat: Codable, Sendable {
        public var metric: Metric
        public var period: Int
        public var stat: String
        enum CodingKeys: String, CodingKey { case metric = "Metric", period = "Period", stat = "Stat" }
    }

    public struct MetricDataQuery: Codable, Sendable {
        public var id: String
        public var expression: String?
        public var metricStat: MetricStat?
        public var label: String?
        public var returnData: Bool?
        enum CodingKeys: String, CodingKey { case id = "Id", expression = "Expression", metricStat = "MetricStat", label = "Label", returnData = "ReturnData" }
    }

    public var alarmName: String
    public var namespace: String?
    public var metricName: String?
    public var dimensions: [Dimension]?
    public var period: Int?
    public var statistic: String?
    public var extendedStatistic: String?
    public var threshold: Double?
    public var evaluationPeriods: Int
    public var datapointsToAlarm: Int?
    public var comparisonOperator: ComparisonOperator
    public var treatMissingData: TreatMissingData?
    public var metrics: [MetricDataQuery]?
    public var thresholdMetricId: String?
    public var actionsEnabled: Bool?
    /// PutMetricAlarm's `Tags`. trailwatch reads one of them: ``bandModelTag`` chooses the anomaly band model.
    public var tags: [Tag]?

    public struct Tag: Codable, Sendable, Hashable {
        public var key: String
        public var value: String
        enum CodingKeys: String, CodingKey { case key = "Key", value = "Value" }
        public init(key: String, value: String) {
            self.key = key
            self.value = value
        }
    }

    /// The tag that selects the anomaly band model (a trailwatch extension: PutMetricAlarm has no such
    /// field, but any alarm may carry tags, so a definition with it is still one AWS accepts as it is).
    public static let bandModelTag = "trailwatch:band-model"

    /// The band model the definition asks for (``bandModelTag``), nil for the default.
    public var bandModel: AnomalyBandModel.Kind? {
        get throws(Invalid) {
            guard let value = tags?.last(where: { $0.key == Self.bandModelTag })?.value else { return nil }
            guard let kind = AnomalyBandModel.Kind(rawValue: value) else {
                let known = AnomalyBandModel.Kind.allCases.map(\.rawValue).joined(separator: ", ")
                throw Invalid(key: "Tags", message: "unknown \(Self.bandModelTag) '\(value)' (known: \(known))")
            }
            return kind
        }
    }

    enum CodingKeys: String, CodingKey {
        case alarmName = "AlarmName", namespace = "Namespace", metricName = "MetricName", dimensions = "Dimensions"
        case period = "Period", statistic = "Statistic", extendedStatistic = "ExtendedStatistic", threshold = "Threshold"
        case evaluationPeriods = "EvaluationPeriods", datapointsToAlarm = "DatapointsToAlarm"
        case comparisonOperator = "ComparisonOperator", treatMissingData = "TreatMissingData", metrics = "Metrics"
        case thresholdMetricId = "ThresholdMetricId", actionsEnabled = "ActionsEnabled", tags = "Tags"
    }

    /// A definition that is not usable, with the key at fault.
    public struct Invalid: Error, Sendable, CustomStringConvertible {
        public var key: String
        public var message: String
        public var description: String { "\(key): \(message)" }
    }

    /// An `ANOMALY_DETECTION_BAND(id, k)` expression.
    public struct BandExpression: Sendable, Equatable {
        public var metricID: String
        public var width: Double
    }

    /// Parses the only metric math supported: `ANOMALY_DETECTION_BAND(m1)` or `(m1, k)` (k defaults to 2).
    public static func band(_ expression: String) -> BandExpression? {
        let text = expression.replacingOccurrences(of: " ", with: "")
        guard text.hasPrefix("ANOMALY_DETECTION_BAND("), text.hasSuffix(")") else { return nil }
        let inner = text.dropFirst("ANOMALY_DETECTION_BAND(".count).dropLast()
        let parts = inner.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard (1...2).contains(parts.count), !parts[0].isEmpty else { return nil }
        if parts.count == 1 { return BandExpression(metricID: parts[0], width: 2) }
        guard let k = Double(parts[1]), k > 0, k.isFinite else { return nil }
        return BandExpression(metricID: parts[0], width: k)
    }

    /// Checks what PutMetricAlarm would reject, and what trailwatch cannot evaluate.
    public func validate() throws(Invalid) {
        _ = try bandModel
        guard evaluationPeriods >= 1 else { throw Invalid(key: "EvaluationPeriods", message: "must be at least 1") }
        if let m = datapointsToAlarm, !(1...evaluationPeriods).contains(m) {
            throw Invalid(key: "DatapointsToAlarm", message: "\(m) must be between 1 and EvaluationPeriods (\(evaluationPeriods))")
        }
        // CloudWatch bounds how far back an alarm looks: a week, or a day with periods under an hour.
        // Every period, single metric or MetricStat: what CloudWatch accepts (and never zero, which
        // evaluation divides by).
        for seconds in [period].compactMap({ $0 }) + (metrics?.compactMap(\.metricStat?.period) ?? []) {
            guard seconds == 10 || seconds == 20 || seconds == 30 || (seconds >= 60 && seconds % 60 == 0) else {
                throw Invalid(key: "Period", message: "\(seconds) must be 10, 20, 30 or a multiple of 60")
            }
        }
        if let seconds = period ?? metrics?.compactMap(\.metricStat?.period).first {
            // Checked: huge user numbers are refused, never overflow.
            let (product, overflow) = seconds.multipliedReportingOverflow(by: evaluationPeriods)
            let span = overflow ? Int.max : product
            let limit = seconds < 3600 ? 86_400 : 604_800
            if span > limit {
                throw Invalid(key: "EvaluationPeriods", message: "\(evaluationPeriods) periods of \(seconds) s span \(span) s, more than the \(limit) s CloudWatch allows")
            }
        }
        if let metrics {
            for query in metrics {
                if let expression = query.expression, AlarmDefinition.band(expression) == nil {
                    throw Invalid(key: "Metrics", message: "unsupported metric math expression '\(expression)' (only ANOMALY_DETECTION_BAND(id, k) is supported)")
                }
                if query.expression == nil && query.metricStat == nil {
                    throw Invalid(key: "Metrics", message: "query '\(query.id)' has neither Expression nor MetricStat")
                }
            }
            if comparisonOperator.usesBand {
                guard let id = thresholdMetricId else {
                    throw Invalid(key: "ThresholdMetricId", message: "is required with \(comparisonOperator.rawValue)")
                }
                guard let bandQuery = metrics.first(where: { $0.id == id }), let expression = bandQuery.expression,
                      let band = AlarmDefinition.band(expression) else {
                    throw Invalid(key: "ThresholdMetricId", message: "'\(id)' is not an ANOMALY_DETECTION_BAND expression of Metrics")
                }
                guard metrics.contains(where: { $0.id == band.metricID && $0.metricStat != nil }) else {
                    throw Invalid(key: "Metrics", message: "the band's metric '\(band.metricID)' is not a MetricStat query")
                }
            }
        } else {
            guard metricName != nil, namespace != nil else {
                throw Invalid(key: "MetricName", message: "a single-metric alarm needs MetricName and Namespace (or Metrics)")
            }
            guard let period = period, period == 10 || period == 20 || period == 30 || (period >= 60 && period % 60 == 0) else {
                throw Invalid(key: "Period", message: "must be 10, 20, 30 or a multiple of 60")
            }
            guard (statistic == nil) != (extendedStatistic == nil) else {
                throw Invalid(key: "Statistic", message: "give exactly one of Statistic and ExtendedStatistic")
            }
            if comparisonOperator.usesBand {
                throw Invalid(key: "ComparisonOperator", message: "\(comparisonOperator.rawValue) needs Metrics with an ANOMALY_DETECTION_BAND")
            }
            guard threshold != nil else { throw Invalid(key: "Threshold", message: "is required") }
        }
    }
}
