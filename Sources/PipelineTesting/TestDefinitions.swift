import FilterPatterns
import TrailwatchConfig
import TrailwatchCore
import Yams

/// One unit test of a pipeline: events fed into components, expectations on what comes out.
public struct PipelineTest: Sendable {
    public var name: String
    /// Where the test is written (its `name:` line).
    public var location: SourceLocation
    public var inputs: [TestInput]
    public var outputs: [OutputExpectation]
    /// After the inputs, the virtual clock moves on this much (silence: alarms on missing data, flushes).
    public var advanceMillis: Int64
}

/// Events fed into one component.
public struct TestInput: Sendable {
    /// A source id (the events are what the source emits) or a transform id (what it is fed).
    public var target: String
    public var location: SourceLocation
    public var events: [TestEvent]
}

/// One event a test feeds in, with its time resolved.
public enum TestEvent: Sendable {
    case log(message: [UInt8], time: Int64, origin: Origin)
    case metric(MetricDatum)

    public var time: Int64 {
        switch self {
        case .log(_, let time, _): time
        case .metric(let datum): datum.timestamp
        }
    }

    public var kind: EventKind {
        switch self {
        case .log: .log
        case .metric: .metric
        }
    }
}

/// What must come out of one component, port or sink.
public struct OutputExpectation: Sendable {
    /// As written: `component`, `component.port` or a sink id.
    public var from: String
    public var component: String
    public var port: String?
    public var location: SourceLocation
    /// Exactly this many events satisfy the conditions (all events when there are none).
    public var count: Int?
    /// Nothing at all comes out.
    public var nothing = false
    /// Every event that comes out satisfies the conditions (and at least one comes out).
    public var every = false
    /// The messages that come out, exactly and in order.
    public var messages: [String]?
    public var conditions = EventConditions()
}

/// Conditions one event must meet; every given condition must hold.
public struct EventConditions: Sendable {
    public var pattern: (text: String, pattern: FilterPattern)?
    public var message: String?
    public var fields: [(name: String, value: ExpectedValue)] = []
    public var isEmpty: Bool { pattern == nil && message == nil && fields.isEmpty }
}

/// A value a field must have, typed as the YAML wrote it.
public enum ExpectedValue: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    public var description: String {
        switch self {
        case .string(let s): "\"\(s)\""
        case .number(let n): n == n.rounded() && abs(n) < 1e15 ? String(Int64(n)) : String(n)
        case .bool(let b): String(b)
        case .null: "null"
        }
    }
}

/// Reads `tests:` sections from YAML nodes, collecting located diagnostics for every problem.
struct TestDefinitionReader {
    let file: String
    var diagnostics: [ConfigDiagnostic] = []
    static let defaultStart: Int64 = 1_704_067_200_000   // 2024-01-01T00:00:00Z

    init(file: String) { self.file = file }

    func at(_ node: Node) -> SourceLocation {
        SourceLocation(file: file, line: node.mark?.line ?? 1, column: node.mark?.column ?? 1)
    }

    mutating func problem(_ node: Node, _ setting: String, _ message: String, expected: String? = nil, suggestion: String? = nil) {
        diagnostics.append(ConfigDiagnostic(location: at(node), setting: setting, message: message, expected: expected, suggestion: suggestion))
    }

    /// The pairs of a mapping, reporting keys not in `known`.
    mutating func pairs(_ node: Node, _ setting: String, known: [String]) -> [String: (key: Node, value: Node)]? {
        guard let mapping = node.mapping else {
            problem(node, setting, "is not a mapping", expected: "settings: " + known.joined(separator: ", "))
            return nil
        }
        var result: [String: (Node, Node)] = [:]
        for (key, value) in mapping {
            let name = key.string ?? ""
            guard known.contains(name) else {
                problem(key, setting.isEmpty ? name : "\(setting).\(name)", "unknown setting", expected: "one of " + known.joined(separator: ", "),
                        suggestion: Suggestions.closest(to: name, among: known))
                continue
            }
            result[name] = (key, value)
        }
        return result
    }

    mutating func string(_ node: Node, _ setting: String) -> String? {
        guard let scalar = node.scalar else {
            problem(node, setting, "is not a single value", expected: "a string")
            return nil
        }
        return scalar.string
    }

    mutating func list(_ node: Node, _ setting: String) -> [Node] {
        if let sequence = node.sequence { return Array(sequence) }
        problem(node, setting, "is not a list", expected: "a list")
        return []
    }

    mutating func time(_ node: Node, _ setting: String) -> Int64? {
        guard let text = string(node, setting) else { return nil }
        if let seconds = Double(text), seconds.isFinite, seconds >= 0 {
            return Int64(seconds < 1e11 ? seconds * 1000 : seconds)
        }
        var iso = text.count >= 19 && Array(text.utf8)[10] == UInt8(ascii: " ") ? String(text.prefix(10)) + "T" + text.dropFirst(11) : text
        if iso.count == 10 { iso += "T00:00:00Z" }
        if !iso.hasSuffix("Z") && !iso.dropFirst(19).contains(where: { $0 == "+" || $0 == "-" }) { iso += "Z" }
        if let ms = Timestamps.parseISO8601(iso) { return ms }
        problem(node, setting, "'\(text)' is not a time", expected: "RFC 3339 like 2024-05-01T12:00:00Z, or epoch seconds")
        return nil
    }

    mutating func duration(_ node: Node, _ setting: String) -> Int64? {
        guard let text = string(node, setting) else { return nil }
        guard let d = ConfigDuration.parse(text) else {
            problem(node, setting, "'\(text)' is not a duration", expected: "a duration like 500ms, 10s, 5m, 1h or 7d")
            return nil
        }
        return d.milliseconds
    }

    mutating func count(_ node: Node, _ setting: String, range: ClosedRange<Int>) -> Int? {
        guard let text = string(node, setting), let n = Int(text), range.contains(n) else {
            problem(node, setting, "'\(node.string ?? "")' is not a whole number from \(range.lowerBound) to \(range.upperBound)")
            return nil
        }
        return n
    }

    /// Every test in a `tests:` list.
    mutating func tests(_ node: Node) -> [PipelineTest] {
        var tests: [PipelineTest] = []
        for (index, item) in list(node, "tests").enumerated() {
            if let test = test(item, "tests[\(index)]") { tests.append(test) }
        }
        return tests
    }

    static let testKeys = ["name", "start", "inputs", "outputs", "advance"]
    static let inputKeys = ["insert_at", "log_group", "log_stream", "start", "interval", "events", "lines", "metrics"]
    static let eventKeys = ["message", "json", "time", "log_group", "log_stream", "repeat"]
    static let metricKeys = ["namespace", "name", "dimensions", "value", "unit", "time", "period", "repeat"]
    static let outputKeys = ["from", "count", "nothing", "every", "messages", "pattern", "message", "fields"]

    mutating func test(_ node: Node, _ path: String) -> PipelineTest? {
        guard let settings = pairs(node, path, known: Self.testKeys) else { return nil }
        var name = path
        if let n = settings["name"] { name = string(n.value, "\(path).name") ?? path } else {
            problem(node, "\(path).name", "is missing", expected: "a name for the test")
        }
        let start = settings["start"].flatMap { time($0.value, "\(path).start") } ?? Self.defaultStart
        var inputs: [TestInput] = []
        if let node = settings["inputs"]?.value {
            for (k, item) in list(node, "\(path).inputs").enumerated() {
                if let input = input(item, "\(path).inputs[\(k)]", start: start) { inputs.append(input) }
            }
        } else {
            problem(node, "\(path).inputs", "is missing", expected: "events to feed: inputs: [{insert_at: ID, lines: [...]}]")
        }
        var outputs: [OutputExpectation] = []
        if let node = settings["outputs"]?.value {
            for (k, item) in list(node, "\(path).outputs").enumerated() {
                if let output = output(item, "\(path).outputs[\(k)]") { outputs.append(output) }
            }
        } else {
            problem(node, "\(path).outputs", "is missing", expected: "what must come out: outputs: [{from: ID, ...}]")
        }
        let advance = settings["advance"].flatMap { duration($0.value, "\(path).advance") } ?? 0
        let location = settings["name"].map { at($0.key) } ?? at(node)
        return PipelineTest(name: name, location: location, inputs: inputs, outputs: outputs, advanceMillis: advance)
    }

    mutating func input(_ node: Node, _ path: String, start testStart: Int64) -> TestInput? {
        guard let settings = pairs(node, path, known: Self.inputKeys) else { return nil }
        guard let targetNode = settings["insert_at"]?.value, let target = string(targetNode, "\(path).insert_at") else {
            problem(node, "\(path).insert_at", "is missing", expected: "the id of a source or transform to feed")
            return nil
        }
        let logGroup = settings["log_group"].flatMap { string($0.value, "\(path).log_group") }
        let logStream = settings["log_stream"].flatMap { string($0.value, "\(path).log_stream") } ?? "test"
        var clock = settings["start"].flatMap { time($0.value, "\(path).start") } ?? testStart
        let interval = settings["interval"].flatMap { duration($0.value, "\(path).interval") } ?? 1000
        var first = true
        /// The next event's time: its own, or the previous one's plus the interval.
        func nextTime(_ explicit: Int64?) -> Int64 {
            if let explicit { clock = explicit } else if !first { clock += interval }
            first = false
            return clock
        }
        // Log events default to the source's log group; the harness fills it in when nil.
        let origin = Origin(logGroup: logGroup ?? "", logStream: logStream)
        var events: [TestEvent] = []
        if let lines = settings["lines"]?.value {
            let texts: [String]
            if let block = lines.scalar?.string {
                texts = block.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).dropLastIfEmpty()
            } else {
                texts = list(lines, "\(path).lines").compactMap { string($0, "\(path).lines") }
            }
            for text in texts { events.append(.log(message: Array(text.utf8), time: nextTime(nil), origin: origin)) }
        }
        if let list = settings["events"]?.value {
            for (k, item) in self.list(list, "\(path).events").enumerated() {
                let itemPath = "\(path).events[\(k)]"
                if let text = item.scalar?.string {
                    events.append(.log(message: Array(text.utf8), time: nextTime(nil), origin: origin))
                    continue
                }
                guard let fields = pairs(item, itemPath, known: Self.eventKeys) else { continue }
                var message: [UInt8]?
                switch (fields["message"], fields["json"]) {
                case (let m?, nil): message = string(m.value, "\(itemPath).message").map { Array($0.utf8) }
                case (nil, let j?): message = Array(JSONFromYAML.render(j.value).utf8)
                case (_?, _?): problem(item, itemPath, "has both 'message' and 'json'", expected: "one of them")
                case (nil, nil): problem(item, itemPath, "has neither 'message' nor 'json'", expected: "message: TEXT or json: {…}")
                }
                guard let message else { continue }
                let explicit = fields["time"].flatMap { time($0.value, "\(itemPath).time") }
                let repeats = fields["repeat"].flatMap { count($0.value, "\(itemPath).repeat", range: 1...1_000_000) } ?? 1
                var eventOrigin = origin
                if let g = fields["log_group"] { eventOrigin.logGroup = string(g.value, "\(itemPath).log_group") ?? "" }
                if let s = fields["log_stream"] { eventOrigin.logStream = string(s.value, "\(itemPath).log_stream") ?? origin.logStream }
                for r in 0..<repeats { events.append(.log(message: message, time: nextTime(r == 0 ? explicit : nil), origin: eventOrigin)) }
            }
        }
        if let list = settings["metrics"]?.value {
            for (k, item) in self.list(list, "\(path).metrics").enumerated() {
                let itemPath = "\(path).metrics[\(k)]"
                guard let fields = pairs(item, itemPath, known: Self.metricKeys) else { continue }
                guard let nameNode = fields["name"]?.value, let name = string(nameNode, "\(itemPath).name"),
                      let valueNode = fields["value"]?.value, let valueText = string(valueNode, "\(itemPath).value") else {
                    problem(item, itemPath, "needs 'name' and 'value'", expected: "{namespace: N, name: M, value: 1, dimensions: {…}}")
                    continue
                }
                guard let value = Double(valueText) else {
                    problem(valueNode, "\(itemPath).value", "'\(valueText)' is not a number")
                    continue
                }
                var dimensions: [Dimension] = []
                if let d = fields["dimensions"]?.value, let mapping = pairs(d, "\(itemPath).dimensions", known: d.mapping?.compactMap { $0.key.string } ?? []) {
                    for (key, pair) in mapping { dimensions.append(Dimension(name: key, value: string(pair.value, "\(itemPath).dimensions.\(key)") ?? "")) }
                }
                let namespace = fields["namespace"].flatMap { string($0.value, "\(itemPath).namespace") } ?? ""
                let unit = fields["unit"].flatMap { string($0.value, "\(itemPath).unit") }
                let period = fields["period"].flatMap { duration($0.value, "\(itemPath).period") } ?? 60_000
                let explicit = fields["time"].flatMap { time($0.value, "\(itemPath).time") }
                let repeats = fields["repeat"].flatMap { count($0.value, "\(itemPath).repeat", range: 1...1_000_000) } ?? 1
                for r in 0..<repeats {
                    let t = nextTime(r == 0 ? explicit : nil)
                    events.append(.metric(MetricDatum(metric: MetricIdentity(namespace: namespace, name: name, dimensions: dimensions), unit: unit,
                                                      timestamp: t - t % max(1, period), period: Int(max(1, period / 1000)),
                                                      sampleCount: 1, sum: value, minimum: value, maximum: value, values: [value])))
                }
            }
        }
        if settings["lines"] == nil && settings["events"] == nil && settings["metrics"] == nil {
            problem(node, path, "feeds nothing", expected: "lines, events or metrics")
        }
        return TestInput(target: target, location: at(targetNode), events: events)
    }

    mutating func output(_ node: Node, _ path: String) -> OutputExpectation? {
        guard let settings = pairs(node, path, known: Self.outputKeys) else { return nil }
        guard let fromNode = settings["from"]?.value, let from = string(fromNode, "\(path).from") else {
            problem(node, "\(path).from", "is missing", expected: "a component id, component.output or a sink id")
            return nil
        }
        let parts = from.split(separator: ".", maxSplits: 1)
        var expectation = OutputExpectation(from: from, component: parts.first.map(String.init) ?? from,
                                            port: parts.count > 1 ? String(parts[1]) : nil, location: at(fromNode))
        expectation.count = settings["count"].flatMap { count($0.value, "\(path).count", range: 0...100_000_000) }
        expectation.nothing = settings["nothing"].map { $0.value.string == "true" } ?? false
        expectation.every = settings["every"].map { $0.value.string == "true" } ?? false
        if let m = settings["messages"]?.value {
            expectation.messages = list(m, "\(path).messages").compactMap { string($0, "\(path).messages") }
        }
        if let p = settings["pattern"]?.value, let text = string(p, "\(path).pattern") {
            do { expectation.conditions.pattern = (text, try FilterPattern(text)) } catch {
                var d = ConfigDiagnostic(location: at(p), setting: "\(path).pattern", message: "invalid filter pattern: \(error.message)",
                                         expected: error.expected)
                let quoted = p.scalar?.style == .singleQuoted || p.scalar?.style == .doubleQuoted
                d.location.column += error.column - 1 + (quoted ? 1 : 0)
                diagnostics.append(d)
            }
        }
        expectation.conditions.message = settings["message"].flatMap { string($0.value, "\(path).message") }
        if let f = settings["fields"]?.value {
            if let mapping = f.mapping {
                for (key, value) in mapping {
                    guard let name = key.string, let scalar = value.scalar else {
                        problem(value, "\(path).fields", "is not a single value", expected: "field: value")
                        continue
                    }
                    expectation.conditions.fields.append((name, JSONFromYAML.typed(scalar)))
                }
            } else {
                problem(f, "\(path).fields", "is not a mapping", expected: "field names (or $.json.paths) mapped to values")
            }
        }
        if expectation.nothing && (expectation.count != nil || expectation.every || expectation.messages != nil || !expectation.conditions.isEmpty) {
            problem(node, path, "'nothing: true' is combined with other expectations", expected: "nothing alone, or count: 0 with conditions")
        }
        if expectation.every && expectation.conditions.isEmpty {
            problem(node, "\(path).every", "has no conditions to hold for every event", expected: "pattern, message or fields")
        }
        return expectation
    }
}

/// YAML written under `json:` (or as an expected field value), turned into JSON text and values.
enum JSONFromYAML {
    static func typed(_ scalar: Node.Scalar) -> ExpectedValue {
        let text = scalar.string
        guard scalar.style == .plain else { return .string(text) }
        switch text {
        case "null", "~", "": return .null
        case "true": return .bool(true)
        case "false": return .bool(false)
        default: return Double(text).map { $0.isFinite ? .number($0) : .string(text) } ?? .string(text)
        }
    }

    static func render(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar):
            switch typed(scalar) {
            case .string(let s): return quote(s)
            case .number: return scalar.string
            case .bool(let b): return String(b)
            case .null: return "null"
            }
        case .mapping(let mapping):
            return "{" + mapping.map { quote($0.key.string ?? "") + ":" + render($0.value) }.joined(separator: ",") + "}"
        case .sequence(let sequence):
            return "[" + sequence.map(render).joined(separator: ",") + "]"
        case .alias:
            return "null"
        }
    }

    static func quote(_ s: String) -> String {
        var out = ByteBuffer()
        JSONEscaping.appendString(s, to: &out)
        return String(decoding: out.bytes, as: UTF8.self)
    }
}

extension Array where Element == String {
    /// A block scalar ends with a newline; that does not make one more line.
    func dropLastIfEmpty() -> [String] { last == "" ? Array(dropLast()) : self }
}
