/// The kinds of event that flow between stages. `validate` type-checks wiring with them.
public enum EventKind: String, Sendable, CaseIterable, Codable, Hashable, Comparable {
    case log, metric, alarm, insight, pattern
    /// A match of an EventBridge-style rule (the `rule` transform): what the rule's target receives.
    case rule

    public static func < (a: EventKind, b: EventKind) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// Where log events came from, in CloudWatch terms.
public struct Origin: Hashable, Sendable, Codable {
    public var logGroup: String
    public var logStream: String

    public init(logGroup: String, logStream: String) {
        self.logGroup = logGroup
        self.logStream = logStream
    }
}

/// Per-event marks that travel with a log event.
public struct EventFlags: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The line was longer than the source's cap and was cut into pieces; every piece carries this.
    public static let split = EventFlags(rawValue: 1 << 0)
    /// A piece of a split line other than the first.
    public static let continuation = EventFlags(rawValue: 1 << 1)
    /// The message is not valid UTF-8 (set by stages that checked; sources do not scan eagerly).
    public static let invalidUTF8 = EventFlags(rawValue: 1 << 2)
    /// The timestamp could not be parsed and a fallback was used.
    public static let timestampFallback = EventFlags(rawValue: 1 << 3)

    public var names: [String] {
        var out: [String] = []
        if contains(.split) { out.append("split") }
        if contains(.continuation) { out.append("continuation") }
        if contains(.invalidUTF8) { out.append("invalid_utf8") }
        if contains(.timestampFallback) { out.append("timestamp_fallback") }
        return out
    }
}

/// A value extracted from a log event by a parsing stage.
public enum FieldValue: Sendable, Hashable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case null
    /// An object or array, kept as its JSON text.
    case json([UInt8])
}

/// Named values extracted from one event, in extraction order.
public struct Fields: Sendable, Hashable {
    public var entries: [(name: String, value: FieldValue)]

    public init(_ entries: [(name: String, value: FieldValue)] = []) { self.entries = entries }

    public subscript(name: String) -> FieldValue? {
        entries.first(where: { $0.name == name })?.value
    }

    public mutating func set(_ name: String, _ value: FieldValue) {
        if let i = entries.firstIndex(where: { $0.name == name }) { entries[i].value = value } else { entries.append((name, value)) }
    }

    public static func == (a: Fields, b: Fields) -> Bool {
        a.entries.count == b.entries.count && zip(a.entries, b.entries).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for e in entries { hasher.combine(e.name); hasher.combine(e.value) }
    }
}

/// A metric dimension (name and value), as CloudWatch has them.
public struct Dimension: Hashable, Sendable, Codable, Comparable {
    public var name: String
    public var value: String
    public init(name: String, value: String) { self.name = name; self.value = value }
    public static func < (a: Dimension, b: Dimension) -> Bool { (a.name, a.value) < (b.name, b.value) }
}

/// Which metric a datapoint belongs to.
public struct MetricIdentity: Hashable, Sendable, Codable {
    public var namespace: String
    public var name: String
    /// Sorted by name, so equal identities compare equal.
    public var dimensions: [Dimension]

    public init(namespace: String, name: String, dimensions: [Dimension] = []) {
        self.namespace = namespace
        self.name = name
        self.dimensions = dimensions.sorted()
    }
}

/// One aggregated metric datapoint: the statistics of every sample that fell into one period.
public struct MetricDatum: Sendable, Hashable, Codable {
    public var metric: MetricIdentity
    public var unit: String?
    /// Start of the period, milliseconds since the epoch (event time).
    public var timestamp: Int64
    /// Length of the period in seconds.
    public var period: Int
    public var sampleCount: Double
    public var sum: Double
    public var minimum: Double
    public var maximum: Double
    /// The raw sample values when the producer kept them (bounded), so percentiles stay exact.
    public var values: [Double]

    public init(metric: MetricIdentity, unit: String? = nil, timestamp: Int64, period: Int,
                sampleCount: Double, sum: Double, minimum: Double, maximum: Double, values: [Double] = []) {
        self.metric = metric
        self.unit = unit
        self.timestamp = timestamp
        self.period = period
        self.sampleCount = sampleCount
        self.sum = sum
        self.minimum = minimum
        self.maximum = maximum
        self.values = values
    }

    public var average: Double { sampleCount > 0 ? sum / sampleCount : 0 }
}

/// A structured event produced by a detector (alarm state change, insight, pattern event):
/// a timestamp, a key that identifies its subject, and its JSON body.
public struct StructuredEvent: Sendable, Hashable {
    public var kind: EventKind
    /// Event time in milliseconds since the epoch.
    public var timestamp: Int64
    /// Alarm name, insight id or template id: what dedupe and the store index on.
    public var key: String
    /// The event as a JSON object (UTF-8).
    public var body: [UInt8]

    public init(kind: EventKind, timestamp: Int64, key: String, body: [UInt8]) {
        self.kind = kind
        self.timestamp = timestamp
        self.key = key
        self.body = body
    }
}
