import FilterPatterns
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `metric_filter`: CloudWatch metric filters. Each log event the pattern matches publishes one
/// sample (`metric_value`), non-matching events publish `default_value` when set, and samples
/// aggregate per `period` on event time into datapoints (SampleCount, Sum, Minimum, Maximum,
/// raw values for percentiles).
struct MetricFilterTransform: TransformKind {
    struct Config: StageConfig {
        var pattern: FilterPattern
        var transformation: MetricTransformation
        var period = ConfigDuration(milliseconds: 60_000)
        var lateness = ConfigDuration(milliseconds: 60_000)
        /// Only events of these log groups (all when empty), like a filter attached to log groups.
        var logGroups: [String] = []

        enum CodingKeys: String, CodingKey, CaseIterable {
            case pattern, metricNamespace = "metric_namespace", metricName = "metric_name", metricValue = "metric_value"
            case defaultValue = "default_value", dimensions, unit, period, lateness, logGroups = "log_groups"
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            pattern = try c.decodeFilterPatternIfPresent(.pattern) ?? FilterPattern("")
            let namespace = try c.decode(String.self, forKey: .metricNamespace)
            let name = try c.decode(String.self, forKey: .metricName)
            let value: String
            if let number = try? c.decode(Double.self, forKey: .metricValue) { value = "\(number)" } else {
                value = try c.decodeIfPresent(String.self, forKey: .metricValue) ?? "1"
            }
            let defaultValue = try c.decodeIfPresent(Double.self, forKey: .defaultValue)
            let dimensions = try c.decodeIfPresent([String: String].self, forKey: .dimensions) ?? [:]
            let unit = try c.decodeIfPresent(String.self, forKey: .unit)
            period = try c.decodeIfPresent(ConfigDuration.self, forKey: .period) ?? period
            lateness = try c.decodeIfPresent(ConfigDuration.self, forKey: .lateness) ?? lateness
            logGroups = try c.decodeStringListIfPresent(.logGroups) ?? []
            guard period.milliseconds >= 1000, period.milliseconds % 1000 == 0 else {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.period], message: "\(period) is not a whole number of seconds",
                                   expected: "a period such as 10s, 60s or 5m")
            }
            do {
                transformation = try MetricTransformation(namespace: namespace, name: name, value: value, defaultValue: defaultValue,
                                                          dimensions: dimensions.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                                                          unit: unit, for: pattern)
            } catch {
                let key: CodingKeys = switch error.setting {
                case "metric_namespace": .metricNamespace
                case "metric_name": .metricName
                case "metric_value": .metricValue
                case "default_value": .defaultValue
                case "unit": .unit
                default: .dimensions
                }
                throw SettingError(codingPath: c.codingPath + [key], message: error.message, expected: error.expected)
            }
        }
    }

    static let type = "metric_filter"
    static let summary = "Turns log events into metric datapoints with a CloudWatch filter pattern and metric transformation."
    static func accepts(_ config: Config) -> Set<EventKind> { [.log] }
    static func produces(_ config: Config, fedWith inputs: Set<EventKind>) -> Set<EventKind> { [.metric] }

    static func make(_ config: Config, _ context: StageContext) throws -> any Transform {
        Runner(config: config, context: context)
    }

    final class Runner: Transform {
        let pattern: FilterPattern
        let transformation: MetricTransformation
        let logGroups: Set<String>
        var aggregator: MetricAggregator
        /// Input acknowledgements waiting for the periods their samples went into.
        private var pending = PeriodAcknowledgements()
        /// The identity of a metric without dimensions, built once.
        private let plainIdentity: MetricIdentity
        private let metrics: ComponentMetrics

        init(config: Config, context: StageContext) {
            pattern = config.pattern
            transformation = config.transformation
            logGroups = Set(config.logGroups)
            aggregator = MetricAggregator(periodSeconds: Int(config.period.milliseconds / 1000), latenessMillis: config.lateness.milliseconds)
            plainIdentity = MetricIdentity(namespace: config.transformation.namespace, name: config.transformation.name)
            metrics = context.metrics
        }

        var holdsAcknowledgements: Bool { true }

        func process(_ batch: Batch, into output: inout TransformOutput) throws {
            guard case .logs(let logs) = batch.payload else {
                batch.acks.release()
                return
            }
            var newest: Int64?
            var skippedValues = 0
            var tooDeep = 0
            let candidates = candidateMask(logs)
            for i in 0..<logs.count {
                if !logGroups.isEmpty && !logGroups.contains(logs.origin(i).logGroup) { continue }
                let message = logs.message(i)
                let sample: (value: Double, dimensions: [Dimension])
                if candidates?[i] == false {
                    guard let value = transformation.defaultValue else { continue }
                    sample = (value, [])
                } else {
                    var deep = false
                    let outcome = transformation.evaluate(message, pattern: pattern, tooDeep: &deep)
                    if deep { tooDeep += 1 }
                    switch outcome {
                    case .sample(let value, let dimensions): sample = (value, dimensions)
                    case .noMatch: continue
                    case .noValue: skippedValues += 1; continue
                    }
                }
                let time = logs.timestamp(i)
                let identity = sample.dimensions.isEmpty ? plainIdentity
                    : MetricIdentity(namespace: plainIdentity.namespace, name: plainIdentity.name, dimensions: sample.dimensions)
                // A value the period's sum cannot hold is refused like one that is not a number.
                guard aggregator.add(sample.value, metric: identity, unit: transformation.unit, at: time) else { skippedValues += 1; continue }
                let period = aggregator.periodStart(time)
                if newest.map({ period > $0 }) ?? true { newest = period }
            }
            if skippedValues > 0 { metrics.addToGauge("unextractable_values", Double(skippedValues)) }
            if tooDeep > 0 { metrics.addToGauge(PatternMatcher.tooDeepGauge, Double(tooDeep)) }
            pending.hold(batch.acks, newestPeriod: newest)
            emit(aggregator.closeByWatermark(), into: &output)
        }

        /// For term patterns: which events can match at all, from one memmem pass per batch.
        private func candidateMask(_ logs: LogBatch) -> [Bool]? {
            guard pattern.anchor != nil else { return nil }
            var mask = [Bool](repeating: true, count: logs.count)
            PatternMatcher(pattern).refine(logs, mask: &mask)
            return mask
        }

        func tick(nowMillis: Int64, into output: inout TransformOutput) throws {
            emit(aggregator.closePeriods(before: nowMillis), into: &output)
        }

        func finish(into output: inout TransformOutput) throws {
            emit(aggregator.closeAll(), into: &output)
        }

        /// Sends closed datapoints with the acknowledgements of every batch whose samples are all in
        /// closed periods; those acknowledgements complete when the datapoints are written.
        private func emit(_ data: [MetricDatum], into output: inout TransformOutput) {
            let acks = pending.takeSettled(oldestOpen: aggregator.oldestOpenPeriod)
            if data.isEmpty {
                acks.release()
            } else {
                metrics.recordDatapoints(data)
                output.emit(Batch(.metrics(data), acks: acks))
            }
        }
    }
}
