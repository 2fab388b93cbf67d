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
        var pattern = FilterPattern.matchingEverything
        var metricNamespace = ""
        var metricName = ""
        var metricValue = "1"
        var defaultValue: Double?
        var dimensions: [String: String] = [:]
        var unit: String?
        var period = ConfigDuration(milliseconds: 60_000)
        var lateness = ConfigDuration(milliseconds: 60_000)
        var logGroups: [String] = []
        /// Built from the `metric_*` settings, `default_value`, `dimensions` and `unit` once they decoded.
        var transformation: MetricTransformation?

        static let settings = SettingsSchema<Config>(
            FilterPattern.setting("pattern", \.pattern, "The CloudWatch filter pattern an event must match ([the language](#filter-patterns-and-metric-filters)).",
                                  default: "every event"),
            .required("metric_namespace", \.metricNamespace, "The metric's namespace."),
            .required("metric_name", \.metricName, "The metric's name."),
            .custom("metric_value", type: "string or number", "What each matching event adds: `1`, a number, `$.selector` (JSON) or "
                    + "`$field` / `$N` (space-delimited patterns). A missing or non-numeric value publishes nothing (counted in the "
                    + "`unextractable_values` gauge).", default: "1", storedAt: \Config.metricValue) { config, c, key in
                if let number = try? c.decode(Double.self, forKey: key) { config.metricValue = "\(number)" } else {
                    config.metricValue = try c.decodeIfPresent(String.self, forKey: key) ?? config.metricValue
                }
            },
            .setting("default_value", \.defaultValue, "Published for every event the pattern does not match."),
            .setting("dimensions", \.dimensions, "Up to 3 dimensions from fields (`{ Service: $.service }`); not with term patterns or "
                     + "`default_value`. A dimension whose field is absent is left out."),
            .setting("unit", \.unit, "A CloudWatch unit.", default: "none"),
            .setting("period", \.period, "The datapoints' period (whole seconds); samples aggregate per period on event time.",
                     check: { $0.milliseconds >= 1000 && $0.milliseconds % 1000 == 0 ? nil
                         : SettingIssue("\($0) is not a whole number of seconds", expected: "a period such as 10s, 60s or 5m") }),
            .setting("lateness", \.lateness, "How long a period stays open for late events: it is emitted once the newest event time "
                     + "(in live mode also the wall clock) is this far past its end."),
            .strings("log_groups", \.logGroups, "Only events of these log groups (all when empty), like a filter attached to log groups.")
        )

        mutating func validate(at codingPath: [any CodingKey]) throws {
            do {
                transformation = try MetricTransformation(namespace: metricNamespace, name: metricName, value: metricValue, defaultValue: defaultValue,
                                                          dimensions: dimensions.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                                                          unit: unit, for: pattern)
            } catch {
                let key = Self.settings.keys.contains(error.setting) ? error.setting : "dimensions"
                throw SettingError(codingPath: codingPath + [Self.key(key)], message: error.message, expected: error.expected)
            }
        }
    }

    static let type = "metric_filter"
    static let summary = "Turns log events into metric datapoints with a CloudWatch filter pattern and metric transformation."
    static func accepts(_ config: Config) -> Set<EventKind> { [.log] }
    static func produces(_ config: Config, fedWith inputs: Set<EventKind>) -> Set<EventKind> { [.metric] }

    static func make(_ config: Config, _ context: StageContext) throws -> any Transform {
        guard let transformation = config.transformation else { throw StageError("metric_filter: no metric transformation") }
        return Runner(config: config, transformation: transformation, context: context)
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

        init(config: Config, transformation: MetricTransformation, context: StageContext) {
            pattern = config.pattern
            self.transformation = transformation
            logGroups = Set(config.logGroups)
            aggregator = MetricAggregator(periodSeconds: Int(config.period.milliseconds / 1000), latenessMillis: config.lateness.milliseconds)
            plainIdentity = MetricIdentity(namespace: transformation.namespace, name: transformation.name)
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
