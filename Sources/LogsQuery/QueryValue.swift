/// One field value inside a query row or a result cell.
///
/// Timestamps are epoch milliseconds (UTC). Numbers are `Double`, as in Logs Insights, where every
/// numeric field is a 64-bit float. A missing field and a JSON `null` are both `.null`.
public enum QueryValue: Sendable, Hashable, CustomStringConvertible {
    case null
    case string(String)
    case number(Double)
    case timestamp(Int64)
    case bool(Bool)

    /// True for `.null`.
    @inlinable public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// The value as a number when it is one, or can be read as one: numbers, timestamps (milliseconds),
    /// booleans (1/0) and strings holding a plain decimal number (see `QueryValue.parseNumber`).
    @inlinable public var numericValue: Double? {
        switch self {
        case .number(let d): return d
        case .timestamp(let t): return Double(t)
        case .bool(let b): return b ? 1 : 0
        case .string(let s): return QueryValue.parseNumber(s)
        case .null: return nil
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
        }
    }

    /// Text used in result tables: `""` for null, timestamps as `yyyy-MM-dd HH:mm:ss.SSS` (UTC),
    /// integral numbers without a fractional part.
    public var description: String { stringValue ?? "" }

    /// Formats a number the way result tables show it: integral values without `.0`.
    public static func formatNumber(_ d: Double) -> String {
        if d.isFinite, d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        return String(d)
    }

    /// Parses a plain decimal number: optional sign, digits, optional fraction, optional exponent.
    /// No surrounding spaces, no hex, no `inf`/`nan` (this keeps string-to-number coercion predictable and
    /// identical wherever it happens).
    public static func parseNumber(_ s: String) -> Double? {
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
        return Double(String(decoding: bytes, as: UTF8.self))
    }
}

/// A row flowing through a query: field name to value. System fields are `@timestamp` (`.timestamp`),
/// `@ingestionTime` (`.timestamp`), `@message`, `@logStream` and `@log` (`.string`); discovered and parsed
/// fields use their flattened names (`a.b`, `list.0`).
public typealias QueryRow = [String: QueryValue]

/// Names of the system fields.
public enum SystemField {
    public static let timestamp = "@timestamp"
    public static let message = "@message"
    public static let logStream = "@logStream"
    public static let log = "@log"
    public static let ingestionTime = "@ingestionTime"
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
