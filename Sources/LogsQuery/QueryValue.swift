import ByteJSON

/// One field value inside a query row or a result cell.
///
/// Timestamps are epoch milliseconds (UTC). Numbers are `Double`, as in Logs Insights, where every
/// numeric field is a 64-bit float. A missing field and a JSON `null` are both `.null`. Maps and lists
/// (from `jsonParse`) are `.json`.
///
/// **Equality is byte equality.** Two strings are equal only when their UTF-8 bytes are: a precomposed
/// `é` and `e` + combining acute are different values everywhere — in `filter`, `stats … by`,
/// `count_distinct`, `dedup` and `in [...]` alike (Swift's own `String ==` would call them equal).
public enum QueryValue: Sendable, Hashable, CustomStringConvertible {
    case null
    case string(String)
    case number(Double)
    case timestamp(Int64)
    case bool(Bool)
    /// A map or list, e.g. from `jsonParse`; shown as compact JSON.
    case json(JSONValue)

    /// True for `.null`.
    @inlinable public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    public static func == (a: QueryValue, b: QueryValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.string(let x), .string(let y)): return QueryValue.sameBytes(x, y)
        case (.number(let x), .number(let y)): return x == y || (x.isNaN && y.isNaN)
        case (.timestamp(let x), .timestamp(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.json(let x), .json(let y)): return x.serialized() == y.serialized()
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0 as UInt8)
        case .string(let s):
            hasher.combine(1 as UInt8)
            QueryValue.hashBytes(s, into: &hasher)
        case .number(let d):
            hasher.combine(2 as UInt8)
            hasher.combine(d.isNaN ? Double.nan.bitPattern : (d == 0 ? 0 : d.bitPattern))
        case .timestamp(let t):
            hasher.combine(3 as UInt8)
            hasher.combine(t)
        case .bool(let b):
            hasher.combine(4 as UInt8)
            hasher.combine(b)
        case .json(let j):
            hasher.combine(5 as UInt8)
            hasher.combine(j.serialized())
        }
    }

    /// Byte equality of two strings (no Unicode normalisation).
    @inlinable public static func sameBytes(_ a: String, _ b: String) -> Bool {
        if a.utf8.count != b.utf8.count { return false }
        return a.utf8.elementsEqual(b.utf8)
    }

    static func hashBytes(_ s: String, into hasher: inout Hasher) {
        if let done: Void = s.utf8.withContiguousStorageIfAvailable({ hasher.combine(bytes: UnsafeRawBufferPointer($0)) }) {
            return done
        }
        var copy = s
        copy.withUTF8 { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
    }

    /// The value as a number when it is one, or can be read as one: numbers, timestamps (milliseconds),
    /// booleans (1/0) and strings holding a plain decimal number (see `QueryValue.parseNumber`).
    @inlinable public var numericValue: Double? {
        switch self {
        case .number(let d): return d
        case .timestamp(let t): return Double(t)
        case .bool(let b): return b ? 1 : 0
        case .string(let s): return QueryValue.parseNumber(s)
        case .null, .json: return nil
        }
    }

    /// The value as text, the way functions such as `concat` and `strlen` see it.
    public var stringValue: String? {
        switch self {
        case .null: return nil
        case .string(let s): return s
        case .number(let d): return QueryValue.formatNumber(d)
        case .timestamp(let t): return QueryTime.format(milliseconds: t)
        case .bool(let b): return b ? "true" : "false"
        case .json(let j): return String(decoding: j.serialized(), as: UTF8.self)
        }
    }

    /// Text used in result tables: `""` for null, timestamps as `yyyy-MM-dd HH:mm:ss.SSS` (UTC),
    /// integral numbers without a fractional part.
    public var description: String { stringValue ?? "" }

    /// Formats a number the way result tables show it: integral values without `.0`.
    public static func formatNumber(_ d: Double) -> String {
        if d.isFinite, d == d.rounded(), Swift.abs(d) < 1e15 { return String(Int64(d)) }
        return String(d)
    }

    /// Parses a plain decimal number: optional sign, digits, optional fraction, optional exponent.
    /// No surrounding spaces, no hex, no `inf`/`nan` (this keeps string-to-number coercion predictable and
    /// identical wherever it happens). Values beyond the range of a Double are not numbers.
    public static func parseNumber(_ s: String) -> Double? {
        if let parsed = s.utf8.withContiguousStorageIfAvailable({ parseNumber(bytes: $0) }) { return parsed }
        var s = s
        return s.withUTF8 { parseNumber(bytes: $0) }
    }

    /// Byte-level variant of `parseNumber(_:)`.
    public static func parseNumber(bytes: UnsafeBufferPointer<UInt8>) -> Double? {
        let n = bytes.count
        if n == 0 || n > 64 { return nil }
        var i = 0
        if bytes[0] == UInt8(ascii: "-") || bytes[0] == UInt8(ascii: "+") { i = 1 }
        var digits = 0
        var intPart: Int64 = 0
        var simple = true
        while i < n, bytes[i] >= 48, bytes[i] <= 57 {
            if digits < 18 { intPart = intPart * 10 + Int64(bytes[i] - 48) } else { simple = false }
            digits += 1; i += 1
        }
        if i < n, bytes[i] == UInt8(ascii: ".") {
            simple = false
            i += 1
            while i < n, bytes[i] >= 48, bytes[i] <= 57 { digits += 1; i += 1 }
        }
        if digits == 0 { return nil }
        if i < n, bytes[i] == UInt8(ascii: "e") || bytes[i] == UInt8(ascii: "E") {
            simple = false
            i += 1
            if i < n, bytes[i] == UInt8(ascii: "-") || bytes[i] == UInt8(ascii: "+") { i += 1 }
            var expDigits = 0
            while i < n, bytes[i] >= 48, bytes[i] <= 57 { expDigits += 1; i += 1 }
            if expDigits == 0 { return nil }
        }
        if i != n { return nil }
        if simple { return bytes[0] == UInt8(ascii: "-") ? -Double(intPart) : Double(intPart) }
        guard let d = Double(String(decoding: bytes, as: UTF8.self)), d.isFinite else { return nil }
        return d
    }
}

/// The key under which `stats … by`, `count_distinct` and `dedup` tell values apart: two values are
/// the same when they *show* the same — the same UTF-8 bytes as text. So the number `200` and the string
/// `"200"` (a number stored as a string) are one group, `"200.0"` is another, and `"é"` written
/// precomposed or decomposed are two. Timestamps are keyed by their time.
struct GroupKey: Hashable {
    enum Kind: Hashable {
        case null
        case number(Double)
        case text(String)
        case time(Int64)
        case bool(Bool)
    }

    let kind: Kind

    init(_ value: QueryValue) {
        switch value {
        case .null: kind = .null
        case .number(let d): kind = d.isFinite && d == 0 ? .number(0) : .number(d)
        case .timestamp(let t): kind = .time(t)
        case .bool(let b): kind = .bool(b)
        case .json: kind = .text(value.stringValue ?? "")
        case .string(let s):
            let utf8 = s.utf8
            if let first = utf8.first, (first >= 48 && first <= 57) || first == UInt8(ascii: "-"),
               let d = QueryValue.parseNumber(s), QueryValue.sameBytes(QueryValue.formatNumber(d), s) {
                kind = .number(d)
            } else if s == "true" {
                kind = .bool(true)
            } else if s == "false" {
                kind = .bool(false)
            } else {
                kind = .text(s)
            }
        }
    }

    static func == (a: GroupKey, b: GroupKey) -> Bool {
        switch (a.kind, b.kind) {
        case (.null, .null): return true
        case (.number(let x), .number(let y)): return x == y || (x.isNaN && y.isNaN)
        case (.text(let x), .text(let y)): return QueryValue.sameBytes(x, y)
        case (.time(let x), .time(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        default: return false
        }
    }

    func hash(into hasher: inout Hasher) {
        switch kind {
        case .null: hasher.combine(0 as UInt8)
        case .number(let d): hasher.combine(d.isNaN ? Double.nan.bitPattern : d.bitPattern)
        case .text(let s): QueryValue.hashBytes(s, into: &hasher)
        case .time(let t): hasher.combine(t)
        case .bool(let b): hasher.combine(b)
        }
    }
}

/// A row flowing through a query given by name: field name to value (what ``QueryExecutor/push(_:)``
/// takes from callers that already hold values). System fields are `@timestamp` (`.timestamp`),
/// `@ingestionTime` (`.timestamp`), `@message`, `@logStream` and `@log` (`.string`).
public typealias QueryRow = [String: QueryValue]

/// Names of the system fields.
public enum SystemField {
    public static let timestamp = "@timestamp"
    public static let message = "@message"
    public static let logStream = "@logStream"
    public static let log = "@log"
    public static let ingestionTime = "@ingestionTime"

    public static let all: Set<String> = [timestamp, message, logStream, log, ingestionTime]
}

extension QueryRow {
    /// Builds a row holding the system fields of one log event.
    public static func event(timestamp: Int64, message: String, logStream: String? = nil, log: String? = nil,
                             ingestionTime: Int64? = nil) -> QueryRow {
        var row: QueryRow = [SystemField.timestamp: .timestamp(timestamp), SystemField.message: .string(message)]
        if let logStream { row[SystemField.logStream] = .string(logStream) }
        if let log { row[SystemField.log] = .string(log) }
        if let ingestionTime { row[SystemField.ingestionTime] = .timestamp(ingestionTime) }
        return row
    }
}
