import ByteJSON

/// What a rule's target receives for a matched event, as EventBridge's target settings say:
/// the event itself, a constant (`Input`), a part of the event (`InputPath`), or an input
/// transformer's output (`InputPathsMap` + `InputTemplate`).
public enum TargetInput: Sendable {
    case event
    /// Constant JSON text.
    case constant([UInt8])
    /// The value at a JSON path of the event (nothing when absent).
    case path(JSONPath)
    case transformer(InputTransformer)

    /// Parses an `InputPath` (`$.detail`, `$.detail.resources[0]`).
    public static func inputPath(_ text: String) throws(EventPatternError) -> TargetInput {
        .path(try InputTransformer.path(text, key: "InputPath"))
    }

    /// Validates constant `Input` text (it must be JSON).
    public static func constant(_ text: String) throws(EventPatternError) -> TargetInput {
        guard text.utf8.count <= 8192 else { throw EventPatternError("Input is longer than 8192 characters") }
        do { _ = try JSONValue.parse(text) } catch { throw EventPatternError("Input is not valid JSON: \(error.message) at byte \(error.offset)") }
        return .constant(Array(text.utf8))
    }

    /// The bytes the target receives, or nil when there is nothing to send (an `InputPath` that
    /// reaches nothing). `event` is the EventBridge-shaped event as JSON.
    public func render(event: [UInt8], context: RuleContext) -> [UInt8]? {
        switch self {
        case .event: return event
        case .constant(let bytes): return bytes
        case .path(let path):
            guard let parsed = try? JSONValue.parse(event), let value = parsed.value(at: path) else { return nil }
            return value.serialized()
        case .transformer(let transformer): return transformer.render(event: event, context: context)
        }
    }
}

/// What the predefined `aws.events.*` variables of an input template stand for.
public struct RuleContext: Sendable {
    public var ruleName: String
    public var ruleARN: String
    /// ISO 8601 time the event entered the pipeline.
    public var ingestionTime: String

    public init(ruleName: String, ruleARN: String, ingestionTime: String) {
        self.ruleName = ruleName
        self.ruleARN = ruleARN
        self.ingestionTime = ingestionTime
    }
}

/// EventBridge's input transformer: `InputPathsMap` names values of the event by JSON path,
/// `InputTemplate` places them with `<name>`.
///
/// - A template that is JSON (after placeholders) yields JSON: a placeholder outside quotes becomes
///   the value as JSON (a string gets its quotes; a missing value is `null`), a placeholder inside
///   a string becomes the value's text, escaped for the string (a missing value is empty).
/// - Any other template yields text: placeholders become the value's text (missing: empty).
/// - `<aws.events.rule-name>`, `<aws.events.rule-arn>`, `<aws.events.event.ingestion-time>`,
///   `<aws.events.event>` (the event without `detail`) and `<aws.events.event.json>` (the whole
///   event) are predefined; the last two only as JSON values, as AWS requires.
/// - `<name>` with a name the map does not define is left as written.
/// Validation follows AWS: at most 100 keys of `[A-Za-z0-9_-]`, paths in dot notation, a template
/// of at most 8192 characters that, if it looks like JSON, is JSON with no placeholder as a key.
public struct InputTransformer: Sendable {
    public let paths: [(name: String, path: JSONPath)]
    let pieces: [Piece]
    /// True when the template is JSON (the output is JSON); false for a text template.
    public let producesJSON: Bool

    enum Piece: Sendable {
        case literal([UInt8])
        /// A placeholder; `quoted` when it stands inside a JSON string.
        case variable(String, quoted: Bool)
    }

    static let predefined = ["aws.events.rule-name", "aws.events.rule-arn", "aws.events.event.ingestion-time",
                             "aws.events.event", "aws.events.event.json"]

    public init(pathsMap: [(String, String)], template: String) throws(EventPatternError) {
        guard pathsMap.count <= 100 else { throw EventPatternError("InputPathsMap has \(pathsMap.count) keys; at most 100 are allowed", path: ["InputPathsMap"]) }
        var paths: [(String, JSONPath)] = []
        for (name, text) in pathsMap {
            guard !name.isEmpty, name.utf8.count <= 256,
                  name.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSetASCII.isAlnum($0) || $0 == "_" || $0 == "-") }) else {
                throw EventPatternError("'\(name)' is not a valid InputPathsMap key (letters, digits, '_' and '-', at most 256)", path: ["InputPathsMap", name])
            }
            do { paths.append((name, try InputTransformer.path(text, key: name))) } catch {
                var e = error
                e.path = ["InputPathsMap", name]
                throw e
            }
        }
        self.paths = paths
        guard !template.isEmpty, template.count <= 8192 else {
            throw EventPatternError("InputTemplate must be 1 to 8192 characters long", path: ["InputTemplate"])
        }
        let names = Set(paths.map(\.0)).union(InputTransformer.predefined)
        let trimmed = template.drop(while: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" })
        let looksJSON = trimmed.first == "{" || trimmed.first == "[" || trimmed.first == "\""
        let pieces = InputTransformer.split(Array(template.utf8), names: names, trackQuotes: looksJSON)
        self.pieces = pieces
        producesJSON = looksJSON
        if looksJSON, let key = InputTransformer.placeholderUsedAsKey(pieces) {
            throw EventPatternError("the placeholder <\(key)> cannot be used as an object key in InputTemplate", path: ["InputTemplate"])
        }
        if looksJSON {
            // Check the template as AWS does: with every placeholder filled, it must be JSON.
            var probe: [UInt8] = []
            for piece in pieces {
                switch piece {
                case .literal(let bytes): probe += bytes
                case .variable(_, let quoted): probe += Array((quoted ? "x" : "null").utf8)
                }
            }
            do { _ = try JSONValue.parse(probe) } catch {
                throw EventPatternError("InputTemplate looks like JSON but is not valid JSON: \(error.message)", path: ["InputTemplate"])
            }
        }
        for case .variable(let name, let quoted) in pieces where quoted && (name == "aws.events.event" || name == "aws.events.event.json") {
            throw EventPatternError("<\(name)> can only be used as a JSON value, not inside a string", path: ["InputTemplate"])
        }
        if !looksJSON, pieces.contains(where: { if case .variable(let n, _) = $0 { return n == "aws.events.event" || n == "aws.events.event.json" }; return false }) {
            throw EventPatternError("<aws.events.event> and <aws.events.event.json> can only be used as JSON values, in a JSON InputTemplate", path: ["InputTemplate"])
        }
    }

    /// A JSON path in dot notation: `$`, `$.detail.state`, `$.detail.resources[0]`.
    static func path(_ text: String, key: String) throws(EventPatternError) -> JSONPath {
        guard text.utf8.count <= 256 else { throw EventPatternError("the path for '\(key)' is longer than 256 characters") }
        guard text.hasPrefix("$") else { throw EventPatternError("'\(text)' is not a JSON path (expected $ or $.field.field)") }
        let path: JSONPath
        do { path = try JSONPath(text) } catch {
            throw EventPatternError("'\(text)' is not a valid JSON path: \(error.message) at character \(error.offset + 1) (expected \(error.expected))")
        }
        guard !path.hasWildcard else { throw EventPatternError("'\(text)': wildcards are not allowed in input paths") }
        return path
    }

    /// Cuts the template into literals and placeholders, noting which stand inside JSON strings.
    static func split(_ bytes: [UInt8], names: Set<String>, trackQuotes: Bool) -> [Piece] {
        var pieces: [Piece] = []
        var literal: [UInt8] = []
        var inString = false
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "<"), let close = bytes[(i + 1)...].firstIndex(of: UInt8(ascii: ">")) {
                let name = String(decoding: bytes[(i + 1)..<close], as: UTF8.self)
                if names.contains(name) {
                    if !literal.isEmpty { pieces.append(.literal(literal)); literal = [] }
                    pieces.append(.variable(name, quoted: trackQuotes && inString))
                    i = close + 1
                    continue
                }
            }
            if trackQuotes {
                if b == UInt8(ascii: "\\") && inString && i + 1 < bytes.count {
                    literal += [b, bytes[i + 1]]
                    i += 2
                    continue
                }
                if b == UInt8(ascii: "\"") { inString.toggle() }
            }
            literal.append(b)
            i += 1
        }
        if !literal.isEmpty { pieces.append(.literal(literal)) }
        return pieces
    }

    /// A placeholder standing where an object key belongs (`{<k>: 1}` or `{"<k>": 1}`), if any.
    static func placeholderUsedAsKey(_ pieces: [Piece]) -> String? {
        for (k, piece) in pieces.enumerated() {
            guard case .variable(let name, let quoted) = piece else { continue }
            // What follows the placeholder (skipping the closing quote when quoted) must not be ':'.
            var after: [UInt8] = []
            if k + 1 < pieces.count, case .literal(let bytes) = pieces[k + 1] { after = bytes }
            var rest = after[...]
            if quoted {
                // Up to the end of the string.
                guard let close = rest.firstIndex(of: UInt8(ascii: "\"")) else { continue }
                // A key is a whole string: the placeholder is a key only if the string holds it alone.
                let before: [UInt8]
                if k > 0, case .literal(let b) = pieces[k - 1] { before = b } else { before = [] }
                guard before.last == UInt8(ascii: "\""), close == rest.startIndex else { continue }
                rest = rest[(close + 1)...]
            }
            if rest.first(where: { $0 != 0x20 && $0 != 0x0A && $0 != 0x09 && $0 != 0x0D }) == UInt8(ascii: ":") { return name }
        }
        return nil
    }

    /// Fills the template for `event` (the EventBridge-shaped event as JSON).
    public func render(event: [UInt8], context: RuleContext) -> [UInt8] {
        let parsed = try? JSONValue.parse(event)
        var out: [UInt8] = []
        for piece in pieces {
            switch piece {
            case .literal(let bytes): out += bytes
            case .variable(let name, let quoted):
                let value = self.value(name, parsed: parsed, event: event, context: context)
                if producesJSON && !quoted {
                    if let value { out += value.serialized() } else { out += Array("null".utf8) }
                } else if let value {
                    let text = InputTransformer.text(of: value)
                    if producesJSON {
                        // Inside a JSON string: escaped, without the quotes.
                        var escaped: [UInt8] = []
                        JSONWriter.appendString(text, to: &escaped)
                        out += escaped.dropFirst().dropLast()
                    } else {
                        out += text
                    }
                }
            }
        }
        return out
    }

    func value(_ name: String, parsed: JSONValue?, event: [UInt8], context: RuleContext) -> JSONValue? {
        switch name {
        case "aws.events.rule-name": return .string(context.ruleName)
        case "aws.events.rule-arn": return .string(context.ruleARN)
        case "aws.events.event.ingestion-time": return .string(context.ingestionTime)
        case "aws.events.event.json": return parsed
        case "aws.events.event":
            guard case .object(let members) = parsed else { return parsed }
            return .object(members.filter { $0.key != "detail" })
        default:
            guard let parsed, let path = paths.first(where: { $0.name == name })?.path else { return nil }
            return parsed.value(at: path)
        }
    }

    /// A value as text: a string's contents, anything else as JSON.
    static func text(of value: JSONValue) -> [UInt8] {
        if case .string(let s) = value { return Array(s.utf8) }
        return value.serialized()
    }
}

enum CharacterSetASCII {
    static func isAlnum(_ s: Unicode.Scalar) -> Bool {
        (s >= "a" && s <= "z") || (s >= "A" && s <= "Z") || (s >= "0" && s <= "9")
    }
}

/// EventBridge's "CloudWatch Alarm State Change" event around an alarm event as the `alarm`
/// transform writes it (`alarmName`, `state`, `previousState`, `configuration` at the top level):
/// those move under `detail`, and the envelope gets `source: aws.cloudwatch`, the alarm's ARN in
/// `resources`, and `detail.configuration.metrics` in AWS's own shape.
public enum AlarmStateChangeEnvelope {
    public static func wrap(body: [UInt8], account: String, region: String) -> [UInt8]? {
        guard let parsed = try? JSONValue.parse(body), case .object(let members) = parsed else { return nil }
        let name = parsed["alarmName"]?.stringValue ?? ""
        let time = parsed["time"]?.stringValue ?? ""
        var detail: [JSONMember] = []
        for member in members where member.key != "detail-type" && member.key != "time" {
            if member.key == "configuration", case .object(var configuration) = member.value {
                configuration.append(JSONMember(key: "metrics", value: metrics(from: member.value)))
                detail.append(JSONMember(key: "configuration", value: .object(configuration)))
            } else {
                detail.append(member)
            }
        }
        let arn = "arn:aws:cloudwatch:\(region):\(account):alarm:\(name)"
        let envelope: JSONValue = .object([
            JSONMember(key: "version", value: .string("0")),
            JSONMember(key: "id", value: .string(StableID.uuid(of: body))),
            JSONMember(key: "detail-type", value: .string("CloudWatch Alarm State Change")),
            JSONMember(key: "source", value: .string("aws.cloudwatch")),
            JSONMember(key: "account", value: .string(account)),
            JSONMember(key: "time", value: .string(time)),
            JSONMember(key: "region", value: .string(region)),
            JSONMember(key: "resources", value: .array([.string(arn)])),
            JSONMember(key: "detail", value: .object(detail)),
        ])
        return envelope.serialized()
    }

    /// `[{"id":"m1","metricStat":{"metric":{"namespace","name","dimensions"},"period","stat"},"returnData":true}]`.
    static func metrics(from configuration: JSONValue) -> JSONValue {
        let metric: JSONValue = .object([
            JSONMember(key: "namespace", value: configuration["namespace"] ?? .null),
            JSONMember(key: "name", value: configuration["metricName"] ?? .null),
            JSONMember(key: "dimensions", value: configuration["dimensions"] ?? .object([])),
        ])
        return .array([.object([
            JSONMember(key: "id", value: .string("m1")),
            JSONMember(key: "metricStat", value: .object([
                JSONMember(key: "metric", value: metric),
                JSONMember(key: "period", value: configuration["period"] ?? .null),
                JSONMember(key: "stat", value: configuration["statistic"] ?? .null),
            ])),
            JSONMember(key: "returnData", value: .bool(true)),
        ])])
    }
}

/// Deterministic UUID-shaped ids (so a replay gives the same ids as the live run).
public enum StableID {
    public static func uuid(of bytes: [UInt8]) -> String {
        var a: UInt64 = 0xcbf2_9ce4_8422_2325, b: UInt64 = 0x8422_2325_cbf2_9ce4
        for byte in bytes {
            a = (a ^ UInt64(byte)) &* 0x100_0000_01b3
            b = (b ^ UInt64(byte)) &* 0x9E37_79B9_7F4A_7C15
            b ^= b >> 29
        }
        func hex(_ v: UInt64, _ digits: Int) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: max(0, digits - s.count)) + s.suffix(digits)
        }
        return "\(hex(a >> 32, 8))-\(hex((a >> 16) & 0xFFFF, 4))-\(hex(a & 0xFFFF, 4))-\(hex(b >> 48, 4))-\(hex(b & 0xFFFF_FFFF_FFFF, 12))"
    }
}
