import FilterPatterns
import LinearRegex
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `filter`: keeps (or drops) log events by CloudWatch filter pattern, substring or regular expression.
struct FilterTransform: TransformKind {
    enum Action: String, ConfigEnum { case keep, drop }

    struct Config: StageConfig {
        var pattern: FilterPattern?
        var contains: [String]?
        var regex: RegularExpression?
        var action: Action = .keep

        static let settings = SettingsSchema<Config>(
            FilterPattern.setting("pattern", \.pattern, "A CloudWatch filter pattern ([the language](#filter-patterns-and-metric-filters))."),
            .strings("contains", \.contains, "A string or a list of strings; matches when the message contains any of them (case-sensitive, bytes)."),
            UserRegex.setting("regex", \.regex, "A [regular expression](#regular-expressions) searched in the message (linear time; a "
                              + "literal it requires is found with one memmem pass over the batch first)."),
            .setting("action", \.action, "`keep` matching events, or `drop` them.")
        )

        mutating func validate(at codingPath: [any CodingKey]) throws {
            if contains == nil && regex == nil && pattern == nil {
                throw SettingError(codingPath: codingPath, message: "has no condition", expected: "pattern, contains or regex")
            }
        }
    }

    static let type = "filter"
    static let summary = "Keeps or drops log events by CloudWatch filter pattern, substring or regular expression; at least one of "
        + "`pattern`, `contains` and `regex`, and with several an event matches when it satisfies all."
    static func accepts(_ config: Config) -> Set<EventKind> { [.log] }
    static func produces(_ config: Config, fedWith inputs: Set<EventKind>) -> Set<EventKind> { [.log] }

    /// Each batch on its own: instances may run in parallel (`workers:`).
    static let instancesAreIndependent = true

    static func make(_ config: Config, _ context: StageContext) throws -> any Transform {
        Runner(metrics: context.metrics, needles: (config.contains ?? []).map { Array($0.utf8) },
               regex: config.regex?.makeMatcher(),
               pattern: config.pattern,
               keep: config.action == .keep)
    }

    final class Runner: Transform {
        let metrics: ComponentMetrics
        let needles: [[UInt8]]
        let regex: RegexMatcher?
        let pattern: PatternMatcher?
        let keep: Bool
        private var mask: [Bool] = []
        private var literalMask: [Bool] = []
        private var kept: [Int] = []

        init(metrics: ComponentMetrics, needles: [[UInt8]], regex: RegexMatcher?, pattern: FilterPattern?, keep: Bool) {
            self.metrics = metrics
            self.needles = needles
            self.regex = regex
            self.pattern = pattern.map(PatternMatcher.init)
            self.keep = keep
        }

        func process(_ batch: Batch, into output: inout TransformOutput) throws {
            guard case .logs(let logs) = batch.payload else { return }
            let count = logs.count
            mask.removeAll(keepingCapacity: true)
            if needles.isEmpty {
                mask.append(contentsOf: repeatElement(true, count: count))
            } else {
                mask.append(contentsOf: repeatElement(false, count: count))
                for needle in needles { ByteSearch.markContaining(needle, in: logs, mask: &mask) }
            }
            if let regex {
                if let literal = regex.exactLiteral ?? regex.requiredLiteral {
                    // One memmem pass over the batch finds the lines that can match at all.
                    literalMask.removeAll(keepingCapacity: true)
                    literalMask.append(contentsOf: repeatElement(false, count: count))
                    ByteSearch.markContaining(literal, in: logs, mask: &literalMask)
                    let decided = regex.exactLiteral != nil
                    for i in 0..<count where mask[i] {
                        mask[i] = literalMask[i] && (decided || regex.matchesWithoutPrefilter(logs.message(i)))
                    }
                } else {
                    for i in 0..<count where mask[i] { mask[i] = regex.matchesWithoutPrefilter(logs.message(i)) }
                }
            }
            if let tooDeep = pattern?.refine(logs, mask: &mask), tooDeep > 0 {
                metrics.addToGauge(PatternMatcher.tooDeepGauge, Double(tooDeep))
            }
            kept.removeAll(keepingCapacity: true)
            for i in 0..<count where mask[i] == keep { kept.append(i) }
            if kept.count == count {
                output.emit(batch)
            } else if !kept.isEmpty {
                output.emit(Batch(.logs(logs.selecting(kept))))
            }
        }
    }
}
