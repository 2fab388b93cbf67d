import FilterPatterns
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `filter`: keeps (or drops) log events by CloudWatch filter pattern, substring or regular expression.
struct FilterTransform: TransformKind {
    enum Action: String, ConfigEnum { case keep, drop }

    struct Config: StageConfig {
        /// Matches when the message contains any of these strings (case-sensitive).
        var contains: [String]?
        /// Matches when the message matches this POSIX extended regular expression.
        var regex: String?
        /// Matches when the message matches this CloudWatch filter pattern.
        var pattern: FilterPattern?
        var action: Action = .keep

        enum CodingKeys: String, CodingKey, CaseIterable { case pattern, contains, regex, action }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            contains = try c.decodeStringListIfPresent(.contains)
            regex = try c.decodeIfPresent(String.self, forKey: .regex)
            action = try c.decodeIfPresent(Action.self, forKey: .action) ?? .keep
            pattern = try c.decodeFilterPatternIfPresent(.pattern)
            if contains == nil && regex == nil && pattern == nil {
                throw SettingError(codingPath: c.codingPath, message: "has no condition", expected: "pattern, contains or regex")
            }
            if let regex {
                do { _ = try PosixRegex(regex) } catch {
                    throw SettingError(codingPath: c.codingPath + [CodingKeys.regex], message: "invalid regular expression: \(error.message)",
                                       expected: "a POSIX extended regular expression")
                }
            }
        }
    }

    static let type = "filter"
    static let summary = "Keeps or drops log events by substring or regular expression."
    static func accepts(_ config: Config) -> Set<EventKind> { [.log] }
    static func produces(_ config: Config, fedWith inputs: Set<EventKind>) -> Set<EventKind> { [.log] }

    static func make(_ config: Config, _ context: StageContext) throws -> any Transform {
        Runner(needles: (config.contains ?? []).map { Array($0.utf8) },
               regex: try config.regex.map { pattern in try PosixRegex(pattern) },
               pattern: config.pattern,
               keep: config.action == .keep)
    }

    final class Runner: Transform {
        let needles: [[UInt8]]
        let regex: PosixRegex?
        let pattern: PatternMatcher?
        let keep: Bool
        private var mask: [Bool] = []
        private var kept: [Int] = []

        init(needles: [[UInt8]], regex: PosixRegex?, pattern: FilterPattern?, keep: Bool) {
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
                for i in 0..<count where mask[i] { mask[i] = regex.matches(logs.message(i)) }
            }
            pattern?.refine(logs, mask: &mask)
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
