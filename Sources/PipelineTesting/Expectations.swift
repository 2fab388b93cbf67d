import ByteJSON
import TrailwatchConfig
import TrailwatchCore

/// One event that came out of a component, as tests see it: log events by their message, metric
/// datapoints and detector events by their JSON (the same JSON a `file` sink writes).
public struct ObservedEvent: Sendable {
    public var kind: EventKind
    public var message: [UInt8]
    public var timestamp: Int64
    public var origin: Origin?
    public var fields: Fields?

    public var text: String { String(decoding: message, as: UTF8.self) }

    static func all(in payload: Payload) -> [ObservedEvent] {
        switch payload {
        case .logs(let logs):
            return (0..<logs.count).map { i in
                ObservedEvent(kind: .log, message: Array(logs.message(i).assumingMemoryBound(to: UInt8.self)), timestamp: logs.timestamp(i),
                              origin: logs.origin(i), fields: logs.fields(i))
            }
        case .metrics(let data):
            return data.map { datum in
                var out = ByteBuffer()
                EventEncoder.appendMetric(datum, to: &out)
                return ObservedEvent(kind: .metric, message: out.bytes, timestamp: datum.timestamp)
            }
        case .events(let kind, let events):
            return events.map { ObservedEvent(kind: kind, message: $0.body, timestamp: $0.timestamp) }
        }
    }

    /// A field's value: `@message`, `@timestamp`, `@logStream`, `@log`/`@logGroup`, an extracted
    /// field by name, a `$.json.path` into the message, or a bare name as `$.name`.
    func value(of name: String) -> ExpectedValue? {
        switch name {
        case "@message": return .string(text)
        case "@timestamp": return .string(Timestamps.iso8601(timestamp))
        case "@logStream": return origin.map { .string($0.logStream) }
        case "@log", "@logGroup": return origin.map { .string($0.logGroup) }
        default: break
        }
        if !name.hasPrefix("$"), let value = fields?[name] {
            switch value {
            case .string(let s): return .string(s)
            case .number(let n): return .number(n)
            case .bool(let b): return .bool(b)
            case .null: return .null
            case .json(let bytes): return .string(String(decoding: bytes, as: UTF8.self))
            }
        }
        guard let path = try? JSONPath(name.hasPrefix("$") ? name : "$." + name) else { return nil }
        return message.withUnsafeBytes { bytes -> ExpectedValue? in
            switch lookup(path, in: bytes) {
            case .null: return .null
            case .bool(let b): return .bool(b)
            case .number: return lookup(path, in: bytes).double(in: bytes).map { .number($0) }
            case .string: return lookup(path, in: bytes).stringBytes(in: bytes).map { .string(String(decoding: $0, as: UTF8.self)) }
            case .array(let r), .object(let r): return .string(String(decoding: bytes[r], as: UTF8.self))
            case .missing, .notJSON: return nil
            }
        }
    }
}

extension EventConditions {
    func holds(for event: ObservedEvent) -> Bool {
        if let pattern, !event.message.withUnsafeBytes({ pattern.pattern.matches($0) }) { return false }
        if let message, event.text != message { return false }
        for (name, expected) in fields {
            guard let actual = event.value(of: name), Self.same(actual, expected) else { return false }
        }
        return true
    }

    /// Equal values; a number and the text of the same number count as equal.
    static func same(_ a: ExpectedValue, _ b: ExpectedValue) -> Bool {
        switch (a, b) {
        case (.number(let x), .string(let s)), (.string(let s), .number(let x)): return Double(s) == x
        default: return a == b
        }
    }

    var summary: String {
        var parts: [String] = []
        if let pattern { parts.append("pattern '\(pattern.text)'") }
        if let message { parts.append("message \"\(message)\"") }
        if !fields.isEmpty { parts.append("fields {" + fields.map { "\($0.name): \($0.value)" }.joined(separator: ", ") + "}") }
        return parts.joined(separator: " and ")
    }
}

/// Why an expectation was not met.
public struct ExpectationFailure: Sendable {
    public var location: SourceLocation
    public var from: String
    public var expected: String
    public var got: String
    /// What came out (up to a few events).
    public var events: [String]
}

extension OutputExpectation {
    func check(_ events: [ObservedEvent]) -> ExpectationFailure? {
        let matching = conditions.isEmpty ? events.count : events.filter { conditions.holds(for: $0) }.count
        let what = conditions.isEmpty ? "" : " matching " + conditions.summary
        var expected: String?
        if nothing {
            if !events.isEmpty { expected = "nothing" }
        } else if let messages {
            if events.map(\.text) != messages { expected = "messages " + messages.map { "\"\($0)\"" }.joined(separator: ", ") }
        }
        if expected == nil, !nothing {
            if let count {
                if matching != count { expected = "exactly \(count) event\(count == 1 ? "" : "s")" + what }
            } else if every {
                if events.isEmpty || matching != events.count { expected = "every event" + what + " (and at least one)" }
            } else if messages == nil && matching == 0 {
                expected = "at least one event" + what
            }
        }
        guard let expected else { return nil }
        var got = events.isEmpty ? "nothing" : "\(events.count) event\(events.count == 1 ? "" : "s")"
        if !conditions.isEmpty && !events.isEmpty { got += ", \(matching) matching" }
        let shown = events.prefix(10).map { event -> String in
            let text = event.text
            return text.count > 400 ? String(text.prefix(400)) + "…" : text
        } + (events.count > 10 ? ["… \(events.count - 10) more"] : [])
        return ExpectationFailure(location: location, from: from, expected: expected, got: got, events: shown)
    }
}
