import FilterPatterns
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `route`: one named output per filter pattern; an event goes to every route it matches, and
/// events matching none go to `_unmatched`. Read a route as `component.route`.
struct RouteTransform: TransformKind {
    static let unmatched = "_unmatched"

    struct Config: StageConfig {
        var routes: [(name: String, pattern: FilterPattern)] = []

        static let settings = SettingsSchema<Config>(
            .custom("routes", type: "mapping of names to filter patterns", "`NAME: PATTERN` pairs. Read a route as `component.NAME`; an "
                    + "event goes to every route it matches, and events matching none go to `component._unmatched`. Names are letters, "
                    + "digits, `_` and `-`, not starting with `_`.", required: true) { config, c, key in
                let nested = try c.nestedContainer(keyedBy: AnyCodingKey.self, forKey: key)
                for name in nested.allKeys.sorted(by: { $0.stringValue < $1.stringValue }) {
                    guard name.stringValue.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }), !name.stringValue.hasPrefix("_") else {
                        throw SettingError(codingPath: c.codingPath + [key, name], message: "'\(name.stringValue)' is not a route name",
                                           expected: "letters, digits, '_' and '-', not starting with '_'")
                    }
                    let text = try nested.decode(String.self, forKey: name)
                    config.routes.append((name.stringValue, try FilterPattern.decoded(text, codingPath: c.codingPath + [key, name])))
                }
                guard !config.routes.isEmpty else {
                    throw SettingError(codingPath: c.codingPath + [key], message: "is empty", expected: "at least one NAME: PATTERN")
                }
            }
        )
    }

    static let type = "route"
    static let summary = "Sends log events to named outputs by CloudWatch filter pattern."
    static func accepts(_ config: Config) -> Set<EventKind> { [.log] }
    static func produces(_ config: Config, fedWith inputs: Set<EventKind>) -> Set<EventKind> { [.log] }
    static func ports(_ config: Config) -> [String] { config.routes.map(\.name) + [unmatched] }

    /// Each batch on its own: instances may run in parallel (`workers:`).
    static let instancesAreIndependent = true

    static func make(_ config: Config, _ context: StageContext) throws -> any Transform {
        Runner(routes: config.routes.map { ($0.name, PatternMatcher($0.pattern)) }, metrics: context.metrics)
    }

    final class Runner: Transform {
        let routes: [(name: String, matcher: PatternMatcher)]
        let metrics: ComponentMetrics

        init(routes: [(name: String, matcher: PatternMatcher)], metrics: ComponentMetrics) {
            self.routes = routes
            self.metrics = metrics
        }

        func process(_ batch: Batch, into output: inout TransformOutput) throws {
            guard case .logs(let logs) = batch.payload else { return }
            var routed = [Bool](repeating: false, count: logs.count)
            var tooDeep = 0
            for (name, matcher) in routes {
                let (indices, deep) = matcher.matching(logs)
                tooDeep = max(tooDeep, deep)
                for i in indices { routed[i] = true }
                if indices.count == logs.count {
                    output.emit(Batch(.logs(logs)), port: name)
                } else if !indices.isEmpty {
                    output.emit(Batch(.logs(logs.selecting(indices))), port: name)
                }
            }
            if tooDeep > 0 { metrics.addToGauge(PatternMatcher.tooDeepGauge, Double(tooDeep)) }
            let rest = routed.indices.filter { !routed[$0] }
            if !rest.isEmpty { output.emit(Batch(.logs(rest.count == logs.count ? logs : logs.selecting(rest))), port: RouteTransform.unmatched) }
        }
    }
}
