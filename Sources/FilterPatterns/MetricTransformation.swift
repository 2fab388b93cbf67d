import ByteJSON
import TrailwatchCore

/// What a metric filter publishes for each event: PutMetricFilter's `metricTransformations[0]`.
public struct MetricTransformation: Sendable {
    /// Where a metric value or a dimension value comes from.
    public enum Source: Sendable, Equatable, CustomStringConvertible {
        /// A number written in the filter (`"1"`, `2.5`).
        case literal(Double)
        /// A JSON selector (`$.latency_ms`), for JSON patterns.
        case json(JSONPath)
        /// A space-delimited field, by name (`$bytes`) or position (`$7`).
        case field(String)

        public var description: String {
            switch self {
            case .literal(let v): "\(v)"
            case .json(let p): p.description
            case .field(let f): "$" + f
            }
        }
    }

    public var namespace: String
    public var name: String
    public var value: Source
    /// Published for events the pattern does not match (one sample per such event).
    public var defaultValue: Double?
    /// Up to three, each read from the event; a dimension whose field is absent is left out.
    public var dimensions: [(name: String, source: Source)]
    public var unit: String?
    /// For JSON patterns without wildcards: one lookup resolving the pattern's selectors, the value
    /// and the dimensions in a single scan of each message.
    private var jsonPlan: JSONPlan?
    /// For JSON patterns with wildcards: one lookup resolving the value and the dimensions.
    private var selectorPlan: JSONPlan?

    struct JSONPlan: Sendable {
        let lookup: JSONMultiLookup
        let valueSlot: Int?
        let dimensionSlots: [Int]
    }

    /// What one event contributes.
    public enum Outcome: Sendable {
        case sample(value: Double, dimensions: [Dimension])
        /// The pattern did not match and there is no default value.
        case noMatch
        /// The pattern matched but the value is absent or not a number: nothing is published.
        case noValue
    }

    /// CloudWatch's StandardUnit names.
    public static let units: [String] = [
        "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
        "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
        "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
        "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
    ]

    /// A transformation that did not validate: which setting and why.
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public var setting: String
        public var message: String
        public var expected: String
        public var description: String { "\(setting): \(message) (expected \(expected))" }
    }

    /// Checks the transformation against AWS's rules for `pattern`.
    public init(namespace: String, name: String, value: String, defaultValue: Double? = nil,
                dimensions: [(name: String, value: String)] = [], unit: String? = nil,
                for pattern: FilterPattern) throws(Invalid) {
        for (setting, text) in [("metric_namespace", namespace), ("metric_name", name)] {
            guard !text.isEmpty, text.count <= 255, !text.contains(where: { $0 == ":" || $0 == "*" || $0 == "$" }) else {
                throw Invalid(setting: setting, message: "'\(text)' is not a valid name", expected: "1 to 255 characters without ':', '*' or '$'")
            }
        }
        self.namespace = namespace
        self.name = name
        self.value = try MetricTransformation.source(value, setting: "metric_value", pattern: pattern, allowLiteral: true)
        self.defaultValue = defaultValue
        guard dimensions.count <= 3 else {
            throw Invalid(setting: "dimensions", message: "\(dimensions.count) dimensions", expected: "at most 3")
        }
        if !dimensions.isEmpty {
            guard pattern.kind == .json || pattern.kind == .delimited else {
                throw Invalid(setting: "dimensions", message: "the filter pattern does not support dimensions",
                              expected: "a JSON or space-delimited pattern")
            }
            guard defaultValue == nil else {
                throw Invalid(setting: "default_value", message: "cannot be combined with dimensions", expected: "either default_value or dimensions")
            }
        }
        self.dimensions = try dimensions.map { (name, text) throws(Invalid) in
            guard !name.isEmpty, name.count <= 255 else {
                throw Invalid(setting: "dimensions", message: "'\(name)' is not a valid dimension name", expected: "1 to 255 characters")
            }
            return (name, try MetricTransformation.source(text, setting: "dimensions.\(name)", pattern: pattern, allowLiteral: false))
        }
        if let unit, !MetricTransformation.units.contains(unit) {
            throw Invalid(setting: "unit", message: "unknown unit '\(unit)'", expected: "a CloudWatch unit such as Count, Milliseconds, Bytes or None")
        }
        self.unit = unit
        if case .json(let j) = pattern.body {
            // Without wildcards, one scan resolves the pattern's selectors, the value and the
            // dimensions; with them, the pattern needs a tree and one scan resolves the value and dimensions.
            var paths = j.needsTree ? [] : j.lookup.paths
            func slot(_ source: Source) -> Int? {
                guard case .json(let path) = source else { return nil }
                if let existing = paths.firstIndex(of: path) { return existing }
                paths.append(path)
                return paths.count - 1
            }
            let valueSlot = slot(self.value)
            let dimensionSlots = self.dimensions.map { slot($0.source) ?? -1 }
            let plan = JSONPlan(lookup: JSONMultiLookup(paths), valueSlot: valueSlot, dimensionSlots: dimensionSlots)
            if j.needsTree { selectorPlan = plan } else { jsonPlan = plan }
        }
    }

    private static func source(_ text: String, setting: String, pattern: FilterPattern, allowLiteral: Bool) throws(Invalid) -> Source {
        if text.hasPrefix("$.") || text.hasPrefix("$[") {
            guard pattern.kind == .json else {
                throw Invalid(setting: setting, message: "'\(text)' is a JSON selector but the pattern is not a JSON pattern",
                              expected: pattern.kind == .delimited ? "a field of the pattern such as $\(pattern.fieldNames.first ?? "name")" : "a number")
            }
            do { return .json(try JSONPath(text)) } catch {
                throw Invalid(setting: setting, message: "invalid selector '\(text)': \(error.message)", expected: error.expected)
            }
        }
        if text.hasPrefix("$") {
            let field = String(text.dropFirst())
            guard pattern.kind == .delimited else {
                throw Invalid(setting: setting, message: "'\(text)' names a space-delimited field but the pattern is not space-delimited",
                              expected: pattern.kind == .json ? "a selector such as $.field" : "a number")
            }
            guard Int(field) != nil || pattern.fieldNames.contains(field) else {
                throw Invalid(setting: setting, message: "the pattern has no field '\(field)'",
                              expected: "one of " + pattern.fieldNames.map { "$" + $0 }.joined(separator: ", ") + " or a position like $1")
            }
            return .field(field)
        }
        if allowLiteral, let number = Double(text), number.isFinite { return .literal(number) }
        throw Invalid(setting: setting, message: "'\(text)' is not a number or a field reference",
                      expected: allowLiteral ? "a number, $.selector or $field" : "$.selector or $field")
    }

    /// One sample for one event, or nil when the event publishes nothing (no match and no
    /// default, or the value is absent or not a number — AWS publishes nothing then either).
    public func sample(_ message: UnsafeRawBufferPointer, pattern: FilterPattern) -> (value: Double, dimensions: [Dimension])? {
        if case .sample(let value, let dimensions) = evaluate(message, pattern: pattern) { return (value, dimensions) }
        return nil
    }

    /// What one event contributes, telling a non-match from a match without a usable value.
    public func evaluate(_ message: UnsafeRawBufferPointer, pattern: FilterPattern) -> Outcome {
        var tooDeep = false
        return evaluate(message, pattern: pattern, tooDeep: &tooDeep)
    }

    /// ``evaluate(_:pattern:)`` that also sets `tooDeep` when a JSON message nested deeper than
    /// ``JSONValue/maximumDepth`` could not be judged.
    public func evaluate(_ message: UnsafeRawBufferPointer, pattern: FilterPattern, tooDeep: inout Bool) -> Outcome {
        if let plan = jsonPlan, case .json(let j) = pattern.body { return evaluate(message, j, plan, tooDeep: &tooDeep) }
        guard let found = legacySample(message, pattern: pattern) else {
            return pattern.matches(message, tooDeep: &tooDeep) ? .noValue : .noMatch
        }
        return .sample(value: found.value, dimensions: found.dimensions)
    }

    private func evaluate(_ message: UnsafeRawBufferPointer, _ j: JSONPattern, _ plan: JSONPlan, tooDeep: inout Bool) -> Outcome {
        let n = plan.lookup.paths.count
        return withUnsafeTemporaryAllocation(of: JSONLookup.self, capacity: max(n, 1)) { buffer -> Outcome in
            let results = UnsafeMutableBufferPointer(rebasing: buffer[0..<n])
            guard plan.lookup.resolve(in: message, into: results, tooDeep: &tooDeep) == .object, let base = message.baseAddress else {
                return defaultOutcome
            }
            let p = base.assumingMemoryBound(to: UInt8.self)
            guard j.evaluate(j.expr, { c in JSONPattern.test(c.test, results[c.slot], p) }) else { return defaultOutcome }
            let value: Double
            switch self.value {
            case .literal(let v): value = v
            default:
                guard let slot = plan.valueSlot, let v = MetricTransformation.jsonNumber(results[slot], message) else { return .noValue }
                value = v
            }
            var dims: [Dimension] = []
            for (k, slot) in plan.dimensionSlots.enumerated() where slot >= 0 {
                if let text = results[slot].scalarText(in: message) {
                    dims.append(Dimension(name: dimensions[k].name, value: String(decoding: text, as: UTF8.self)))
                }
            }
            return .sample(value: value, dimensions: dims)
        }
    }

    private var defaultOutcome: Outcome {
        defaultValue.map { .sample(value: $0, dimensions: []) } ?? .noMatch
    }

    private func legacySample(_ message: UnsafeRawBufferPointer, pattern: FilterPattern) -> (value: Double, dimensions: [Dimension])? {
        switch pattern.body {
        case .delimited(let d):
            var tokens: [DelimitedPattern.Token] = []
            guard let fields = d.extract(message, tokens: &tokens, collect: true) else { return defaultSample }
            // Extracted values come in token order, so `$N` is the N-th one whatever its name.
            func text(_ name: String) -> [UInt8]? {
                if let position = Int(name) { return position >= 1 && position <= fields.count ? fields[position - 1].1 : nil }
                return fields.first { $0.0 == "$" + name }?.1
            }
            let value: Double
            switch self.value {
            case .literal(let v): value = v
            case .field(let name):
                guard let bytes = text(name), let v = MetricTransformation.number(bytes) else { return nil }
                value = v
            case .json: return nil
            }
            var dims: [Dimension] = []
            for (name, source) in dimensions {
                if case .field(let field) = source, let bytes = text(field) {
                    dims.append(Dimension(name: name, value: String(decoding: bytes, as: UTF8.self)))
                }
            }
            return (value, dims)
        case .json:
            guard pattern.matches(message) else { return defaultSample }
            guard let plan = selectorPlan else { return nil }
            let found = plan.lookup.lookup(in: message)
            let value: Double
            switch self.value {
            case .literal(let v): value = v
            case .json:
                guard let slot = plan.valueSlot, let v = MetricTransformation.jsonNumber(found[slot], message) else { return nil }
                value = v
            case .field: return nil
            }
            var dims: [Dimension] = []
            for (k, slot) in plan.dimensionSlots.enumerated() where slot >= 0 {
                if let text = found[slot].scalarText(in: message) {
                    dims.append(Dimension(name: dimensions[k].name, value: String(decoding: text, as: UTF8.self)))
                }
            }
            return (value, dims)
        case .terms:
            guard pattern.matches(message) else { return defaultSample }
            guard case .literal(let v) = value else { return nil }
            return (v, [])
        }
    }

    private var defaultSample: (value: Double, dimensions: [Dimension])? {
        defaultValue.map { ($0, []) }
    }

    static func number(_ bytes: [UInt8]) -> Double? {
        bytes.withUnsafeBufferPointer { b -> Double? in
            guard let base = b.baseAddress else { return nil }
            return JSONNumberParsing.parseDouble(base, 0, b.count, lenient: true).flatMap { $0.isFinite ? $0 : nil }
        }
    }

    /// A JSON number, or a JSON string holding one (`"250"`).
    static func jsonNumber(_ found: JSONLookup, _ message: UnsafeRawBufferPointer) -> Double? {
        switch found {
        // 1e400 reads as infinity: not a value CloudWatch could publish.
        case .number: return found.double(in: message).flatMap { $0.isFinite ? $0 : nil }
        case .string: return found.stringBytes(in: message).flatMap(number)
        default: return nil
        }
    }
}
