#if canImport(Glibc)
import Glibc
#endif
import ByteJSON
import FilterPatterns
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `parse`: extracts fields from log messages — a regular expression with named groups, the
/// message's own JSON object, or a space-delimited pattern — into the events' `fields`.
struct ParseTransform: TransformKind {
    enum Format: String, ConfigEnum { case regex, json, delimited }
    enum OnError: String, ConfigEnum { case keep, drop }

    struct Config: StageConfig {
        var format: Format
        var pattern: String?
        var onError: OnError = .keep
        /// Captured texts that read as numbers become numbers (so queries can sum them).
        var numbers = true

        enum CodingKeys: String, CodingKey, CaseIterable { case format, pattern, onError = "on_error", numbers }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            format = try c.decode(Format.self, forKey: .format)
            pattern = try c.decodeIfPresent(String.self, forKey: .pattern)
            onError = try c.decodeIfPresent(OnError.self, forKey: .onError) ?? onError
            numbers = try c.decodeIfPresent(Bool.self, forKey: .numbers) ?? numbers
            switch format {
            case .json:
                if pattern != nil {
                    throw SettingError(codingPath: c.codingPath + [CodingKeys.pattern], message: "is not used with format: json", expected: "no pattern")
                }
            case .regex:
                guard let pattern else { throw SettingError(codingPath: c.codingPath + [CodingKeys.pattern], message: "is missing", expected: "a regular expression with named groups like (?<status>[0-9]+)") }
                do { _ = try NamedGroupRegex(pattern) } catch {
                    throw SettingError(codingPath: c.codingPath + [CodingKeys.pattern], message: error.message, expected: "a POSIX extended regular expression with (?<name>…) groups")
                }
            case .delimited:
                guard let pattern else { throw SettingError(codingPath: c.codingPath + [CodingKeys.pattern], message: "is missing", expected: "a space-delimited pattern like [ip, user, ..., status, bytes]") }
                let compiled = try FilterPattern.decoded(pattern, codingPath: c.codingPath + [CodingKeys.pattern])
                guard compiled.kind == .delimited else {
                    throw SettingError(codingPath: c.codingPath + [CodingKeys.pattern], message: "is not a space-delimited pattern", expected: "a pattern in [ ]")
                }
            }
        }
    }

    static let type = "parse"
    static let summary = "Extracts fields from log messages (regex with named groups, JSON, space-delimited)."
    static func accepts(_ config: Config) -> Set<EventKind> { [.log] }
    static func produces(_ config: Config, fedWith inputs: Set<EventKind>) -> Set<EventKind> { [.log] }

    static func make(_ config: Config, _ context: StageContext) throws -> any Transform {
        let extractor: Runner.Extractor
        switch config.format {
        case .regex: extractor = .regex(try NamedGroupRegex(config.pattern!))
        case .json: extractor = .json
        case .delimited: extractor = .delimited(try FilterPattern(config.pattern!))
        }
        return Runner(extractor: extractor, drop: config.onError == .drop, numbers: config.numbers, metrics: context.metrics)
    }

    final class Runner: Transform {
        enum Extractor {
            case regex(NamedGroupRegex)
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
            case .regex(let regex):
                guard let groups = regex.captures(message) else { return nil }
                return Fields(groups.map { ($0.name, text(message[$0.range])) })
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

/// A POSIX extended regular expression with `(?<name>…)` / `(?P<name>…)` groups: the names are
/// taken out (POSIX has no named groups) and remembered by group number.
final class NamedGroupRegex {
    private var regex = regex_t()
    private var compiled = false
    /// (group number, name) of the named groups.
    let names: [(index: Int, name: String)]
    let groupCount: Int

    struct Invalid: Error { var message: String }

    init(_ pattern: String) throws(Invalid) {
        var translated: [UInt8] = []
        var names: [(Int, String)] = []
        var groups = 0
        let bytes = Array(pattern.utf8)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\\"), i + 1 < bytes.count {
                translated.append(b); translated.append(bytes[i + 1]); i += 2; continue
            }
            if b == UInt8(ascii: "[") {
                // Copy a bracket expression whole: '(' inside it is a character.
                var j = i + 1
                if j < bytes.count && bytes[j] == UInt8(ascii: "^") { j += 1 }
                if j < bytes.count && bytes[j] == UInt8(ascii: "]") { j += 1 }
                while j < bytes.count && bytes[j] != UInt8(ascii: "]") { j += 1 }
                let end = min(j + 1, bytes.count)
                translated.append(contentsOf: bytes[i..<end])
                i = end
                continue
            }
            if b == UInt8(ascii: "(") {
                groups += 1
                var j = i + 1
                if j + 1 < bytes.count && bytes[j] == UInt8(ascii: "?") {
                    j += 1
                    if j < bytes.count && bytes[j] == UInt8(ascii: "P") { j += 1 }
                    guard j < bytes.count && bytes[j] == UInt8(ascii: "<") else {
                        throw Invalid(message: "only (?<name>…) groups are supported after '(?'")
                    }
                    let nameStart = j + 1
                    guard let close = bytes[nameStart...].firstIndex(of: UInt8(ascii: ">")), close > nameStart else {
                        throw Invalid(message: "unterminated group name")
                    }
                    let name = String(decoding: bytes[nameStart..<close], as: UTF8.self)
                    guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                        throw Invalid(message: "group name '\(name)' has characters other than letters, digits and '_'")
                    }
                    names.append((groups, name))
                    translated.append(b)
                    i = close + 1
                    continue
                }
            }
            translated.append(b)
            i += 1
        }
        guard !names.isEmpty else { throw Invalid(message: "the expression has no named group") }
        self.names = names
        self.groupCount = groups
        let rc = regcomp(&regex, String(decoding: translated, as: UTF8.self), REG_EXTENDED)
        guard rc == 0 else {
            var buffer = [CChar](repeating: 0, count: 256)
            regerror(rc, &regex, &buffer, buffer.count)
            throw Invalid(message: "invalid regular expression: " + String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        compiled = true
    }

    deinit { if compiled { regfree(&regex) } }

    /// The named groups' byte ranges in `message`, or nil when it does not match. A group that
    /// did not take part in the match is left out.
    func captures(_ message: UnsafeRawBufferPointer) -> [(name: String, range: Range<Int>)]? {
        let base = message.baseAddress?.assumingMemoryBound(to: CChar.self)
        var matches = [regmatch_t](repeating: regmatch_t(rm_so: 0, rm_eo: regoff_t(message.count)), count: groupCount + 1)
        let rc: Int32
        if let base { rc = regexec(&regex, base, matches.count, &matches, REG_STARTEND) } else { rc = regexec(&regex, "", matches.count, &matches, 0) }
        guard rc == 0 else { return nil }
        return names.compactMap { index, name in
            let m = matches[index]
            guard m.rm_so >= 0 else { return nil }
            return (name, Int(m.rm_so)..<Int(m.rm_eo))
        }
    }
}
