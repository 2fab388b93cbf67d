/// A request or reply document independent of the wire protocol: what the CBOR, JSON and query
/// codecs decode to and encode from, so a service is written once and served in all three.
///
/// Scalars keep the form they arrived in (the query protocol sends every scalar as a string);
/// the typed accessors convert, so `"5"` from a form and `5` from CBOR read the same.
public enum AWSValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case blob([UInt8])
    /// Seconds since the epoch (CBOR tag 1, JSON epoch seconds, query ISO 8601).
    case timestamp(Double)
    case list([AWSValue])
    /// A structure or a map: member names to values.
    case map([String: AWSValue])

    public subscript(key: String) -> AWSValue? {
        if case .map(let members) = self, let value = members[key], value != .null { return value }
        return nil
    }

    public var isNull: Bool { self == .null }

    public var stringValue: String? {
        switch self {
        case .string(let text): text
        default: nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .double(let value): value
        case .int(let value): Double(value)
        case .string(let text): Self.parseDouble(text)
        default: nil
        }
    }

    /// Whole numbers only (a double with a fraction is not an integer).
    public var int64Value: Int64? {
        switch self {
        case .int(let value): value
        case .double(let value): value.rounded() == value && abs(value) < 9.2e18 ? Int64(value) : nil
        case .string(let text): Int64(text)
        default: nil
        }
    }

    public var boolValue: Bool? {
        switch self {
        case .bool(let value): value
        case .string("true"): true
        case .string("false"): false
        default: nil
        }
    }

    /// A list; the query protocol's empty list (`Name=`) is the empty string.
    public var listValue: [AWSValue]? {
        switch self {
        case .list(let items): items
        case .string(""): []
        default: nil
        }
    }

    public var mapValue: [String: AWSValue]? {
        if case .map(let members) = self { return members }
        return nil
    }

    /// Seconds since the epoch from a timestamp, a number, or an ISO 8601 / epoch string.
    public var timestampValue: Double? {
        switch self {
        case .timestamp(let seconds), .double(let seconds): seconds
        case .int(let seconds): Double(seconds)
        case .string(let text): AWSTimestamp.parseISO8601(text) ?? Self.parseDouble(text)
        default: nil
        }
    }

    /// Decimal text to a double; nil for anything else (no hex, no `nan` spellings from forms).
    static func parseDouble(_ text: String) -> Double? {
        guard !text.isEmpty, text.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2E || $0 == 0x2D || $0 == 0x2B || $0 == 0x65 || $0 == 0x45 })
        else {
            switch text {
            case "NaN": return .nan
            case "Infinity": return .infinity
            case "-Infinity": return -.infinity
            default: return nil
            }
        }
        return Double(text)
    }
}

extension AWSValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: AWSValue...) { self = .list(elements) }
    public init(dictionaryLiteral elements: (String, AWSValue)...) {
        self = .map(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

extension AWSTimestamp {
    /// `2026-11-30T12:00:00Z`, with optional fractional seconds and a `±hh:mm` offset; nil otherwise.
    public static func parseISO8601(_ text: String) -> Double? {
        let b = Array(text.utf8)
        guard b.count >= 19, b[4] == 0x2D, b[7] == 0x2D, b[10] == 0x54 || b[10] == 0x74 || b[10] == 0x20, b[13] == 0x3A, b[16] == 0x3A
        else { return nil }
        func number(_ range: Range<Int>) -> Int64? {
            var value: Int64 = 0
            for i in range {
                guard b[i] >= 0x30 && b[i] <= 0x39 else { return nil }
                value = value * 10 + Int64(b[i] - 0x30)
            }
            return value
        }
        guard let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
              let minute = number(14..<16), let second = number(17..<19), (1...12).contains(month), (1...31).contains(day),
              hour < 24, minute < 60, second < 61 else { return nil }
        var i = 19
        var fraction = 0.0
        if i < b.count, b[i] == 0x2E {
            i += 1
            var scale = 0.1
            let start = i
            while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 {
                fraction += Double(b[i] - 0x30) * scale
                scale /= 10
                i += 1
            }
            guard i > start else { return nil }
        }
        var offset: Int64 = 0
        if i == b.count {
            // No zone: UTC, as botocore writes it.
        } else if b[i] == 0x5A || b[i] == 0x7A {
            i += 1
        } else if b[i] == 0x2B || b[i] == 0x2D, b.count - i == 6, b[i + 3] == 0x3A, let h = number(i + 1..<i + 3), let m = number(i + 4..<i + 6) {
            offset = (h * 3600 + m * 60) * (b[i] == 0x2D ? -1 : 1)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        let seconds = days(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second - offset
        return Double(seconds) + fraction
    }

    /// `2026-11-30T12:00:00Z` or, with a fraction, `2026-11-30T12:00:00.250Z` (milliseconds).
    public static func iso8601(_ seconds: Double) -> String {
        let millis = Int64((seconds * 1000).rounded(.down))
        let whole = millis >= 0 ? millis / 1000 : (millis - 999) / 1000
        let rest = millis - whole * 1000
        let days = whole >= 0 ? whole / 86_400 : (whole - 86_399) / 86_400
        let inDay = whole - days * 86_400
        let (year, month, day) = civil(days: days)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        var text = String(year) + "-" + two(month) + "-" + two(day) + "T" + two(inDay / 3600) + ":" + two(inDay / 60 % 60) + ":" + two(inDay % 60)
        if rest != 0 {
            let digits = String(rest)
            text += "." + String(repeating: "0", count: 3 - digits.count) + digits
        }
        return text + "Z"
    }
}
