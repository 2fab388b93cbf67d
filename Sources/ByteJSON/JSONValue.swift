/// A fully materialised JSON document.
///
/// Produced by ``JSONValue/parse(_:)``; objects keep their members in document order (duplicate keys are kept
/// as they appear; ``JSONValue/subscript(_:)-(String)`` returns the first one, matching the lazy lookup).
/// Strings are always valid Unicode: invalid UTF-8 in the input and lone surrogate escapes become U+FFFD.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    /// A number: its `Double` value plus the exact text it was written with (e.g. `"1e-3"`), so that large
    /// integers and decimal forms survive a round trip. `text` may be empty for values built in code; the
    /// writer then formats `value`.
    case number(Double, text: String)
    case string(String)
    case array([JSONValue])
    /// Object members in document order.
    case object([JSONMember])

    /// Convenience for building a number from code (`text` is left empty, the writer formats the value).
    public static func number(_ value: Double) -> JSONValue { .number(value, text: "") }

    /// The first member named `key`, or nil when this is not an object or has no such member.
    public subscript(_ key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        for member in members where member.key == key { return member.value }
        return nil
    }

    /// The element at `index`, or nil when this is not an array or the index is out of range.
    public subscript(_ index: Int) -> JSONValue? {
        guard case .array(let elements) = self, index >= 0, index < elements.count else { return nil }
        return elements[index]
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var doubleValue: Double? {
        if case .number(let d, _) = self { return d }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

/// One `"key": value` pair of a JSON object.
public struct JSONMember: Sendable, Equatable {
    public var key: String
    public var value: JSONValue
    public init(key: String, value: JSONValue) {
        self.key = key
        self.value = value
    }
}

/// Why a byte sequence is not JSON: the byte offset where reading stopped and a human-readable reason.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Zero-based byte offset into the input.
    public var offset: Int
    public var message: String
    public init(offset: Int, message: String) {
        self.offset = offset
        self.message = message
    }
    public var description: String { "invalid JSON at byte \(offset): \(message)" }
    /// The input was refused only for nesting deeper than ``JSONValue/maximumDepth``.
    public var isTooDeep: Bool { message.hasPrefix("nesting deeper than") }
}
