import ByteJSON
import FilterPatterns
import LinearRegex
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `parse`: extracts fields from log messages — a regular expression with named groups, the
/// message's own JSON object, or a space-delimited pattern — into the events' `fields`.
struct ParseTransform: TransformKind {
    enum Format: String, ConfigEnum { case regex, json, delimited }
    enum OnError: String, ConfigEnum { case keep, drop }

    struct Config: StageConfig {
        var format: Format = .json
        var pattern: String?
        /// The compiled expression of `format: regex`.
        var regex: RegularExpression?
        var onError: OnError = .keep
        var numbers = true

        static let settings = SettingsSchema<Config>(
            .required("format", \.format, "`regex`: a [regular expression](#regular-expressions) `pattern` with `(?<name>…)` groups; "
                      + "`json`: the message's top-level fields; `delimited`: a space-delimited `pattern` (`[ip, user, ..., status, bytes]`). "
                      + "Fields land in the events' `fields` (JSON output, the store)."),
            .setting("pattern", \.pattern, "The expression (`format: regex`) or space-delimited pattern (`format: delimited`); not with `json`."),
            .setting("on_error", \.onError, "What happens to messages that do not parse (counted in `unparsed_events`): `keep` them as they are, or `drop` them."),
            .setting("numbers", \.numbers, "Captured texts that read as numbers become numbers (so queries can sum them).")
        )

        mutating func validate(at codingPath: [any CodingKey]) throws {
            let path = codingPath + [Self.key(\Config.pattern)]
            switch format {
            case .json:
                if pattern != nil {
                    throw SettingError(codingPath: path, message: "is not used with format: json", expected: "no pattern")
                }
            case .regex:
                guard let pattern else { throw SettingError(codingPath: path, message: "is missing", expected: "a regular expression with named groups like (?<status>[0-9]+)") }
                let compiled = try UserRegex.compile(pattern, codingPath: path)
                guard !compiled.namedGroups.isEmpty else {
                    throw SettingError(codingPath: path, message: "the expression has no named group", expected: "a regular expression with (?<name>…) groups")
                }
                regex = compiled
            case .delimited:
                guard let pattern else { throw SettingError(codingPath: path, message: "is missing", expected: "a space-delimited pattern like [ip, user, ..., status, bytes]") }
                let compiled = try FilterPattern.decoded(pattern, codingPath: path)
                guard compiled.kind == .delimited else {
                    throw SettingError(codingPath: path, message: "is not a space-delimited pattern", expected: "a pattern in [ ]")
                }
            }
        }
    }

    static let type = "parse"
    static let summary = "Extracts fields from log messages (regex with named groups, JSON, space-delimited)."
    static func accepts(_ config: Config) -> Set<EventKind> { [.log] }
    static func produces(_ config: Config, fedWith inputs: Set<EventKind>) -> Set<EventKind> { [.log] }

    /// Each batch on its own: instances may run in parallel (`workers:`).
    static let instancesAreIndependent = true

    static func make(_ config: Config, _ context: StageContext) throws -> any Transform {
        let extractor: Runner.Extractor
        switch config.format {
        case .regex: extractor = .regex(config.regex!.makeMatcher())
        case .json: extractor = .json
        case .delimited: extractor = .delimited(try FilterPattern(config.pattern!))
        }
        return Runner(extractor: extractor, drop: config.onError == .drop, numbers: config.numbers, metrics: context.metrics)
    }

    final class Runner: Transform {
        enum Extractor {
            case regex(RegexMatcher)
            case json
            case delimited(FilterPattern)
        }

        let extractor: Extractor
        let drop: Bool
        let numbers: Bool
        let metrics: ComponentMetrics

        init(extractor: Extractor, drop: Bool, numbers: Bool, metrics: ComponentMetrics) {
            self.extractor = extractor
            self.drop = drop
            self.numbers = numbers
            self.metrics = metrics
        }

        func process(_ batch: Batch, into output: inout TransformOutput) throws {
            guard case .logs(var logs) = batch.payload else { return }
            var failed: [Int] = []
            for i in 0..<logs.count {
                let message = logs.message(i)
                guard let extracted = extract(message) else { failed.append(i); continue }
                var fields = logs.fields(i) ?? Fields()
                for (name, value) in extracted.entries { fields.set(name, value) }
                logs.setFields(fields, at: i)
            }
            if !failed.isEmpty { metrics.addToGauge("unparsed_events", Double(failed.count)) }
            if drop && !failed.isEmpty {
                let failedSet = Set(failed)
                let kept = (0..<logs.count).filter { !failedSet.contains($0) }
                if !kept.isEmpty { output.emit(Batch(.logs(logs.selecting(kept)))) }
            } else {
                output.emit(Batch(.logs(logs)))
            }
        }

        private func text(_ bytes: some Collection<UInt8>) -> FieldValue {
            let string = String(decoding: bytes, as: UTF8.self)
            if numbers, let number = Double(string), number.isFinite, !string.isEmpty,
               string.first.map({ $0.isNumber || $0 == "-" || $0 == "+" || $0 == "." }) == true {
                return .number(number)
            }
            return .string(string)
        }

        func extract(_ message: UnsafeRawBufferPointer) -> Fields? {
            switch extractor {
            case .regex(let matcher):
                guard let match = matcher.firstMatch(in: message) else { return nil }
                // A group that did not take part in the match is left out.
                return Fields(matcher.namedGroups.compactMap { group in
                    match.range(group.index).map { (group.name, text(message[$0])) }
                })
            case .delimited(let pattern):
                guard let values = pattern.extractedValues(message) else { return nil }
                return Fields(values.map { (String($0.name.dropFirst()), text($0.value)) })
            case .json:
                guard let root = try? JSONValue.parse(message), case .object(let members) = root else { return nil }
                return Fields(members.map { member in
                    let value: FieldValue
                    switch member.value {
                    case .string(let s): value = .string(s)
                    case .number(let d, _): value = .number(d)
                    case .bool(let b): value = .bool(b)
                    case .null: value = .null
                    default:
                        var out: [UInt8] = []
                        JSONWriter.append(member.value, to: &out)
                        value = .json(out)
                    }
                    return (member.key, value)
                })
            }
        }
    }
}
