/// A JSON selector in the CloudWatch Logs filter-pattern notation: `$.a.b[0].c`.
///
/// Accepted steps after the leading `$`:
/// - `.name` — an object member; names are runs of letters, digits and `_ - @ :` plus any non-ASCII byte;
/// - `.['any key']` or `['any key']` — a member whose name contains other characters (e.g. a period);
/// - `[n]` — a zero-based array index; `[*]` — any element; `.*` — any member (wildcards).
public struct JSONPath: Sendable, Hashable, CustomStringConvertible {
    public enum Step: Sendable, Hashable {
        /// An object member, by its (unescaped) UTF-8 name.
        case key([UInt8])
        case index(Int)
        /// `.*`: every member of an object.
        case anyKey
        /// `[*]`: every element of an array.
        case anyIndex
    }

    public var steps: [Step]

    public init(steps: [Step]) { self.steps = steps }

    /// Parses a whole selector such as `$.a.b[0]`.
    public init(_ text: String) throws(JSONPathError) {
        let bytes = Array(text.utf8)
        let parsed: Result<(JSONPath, Int), JSONPathError> = bytes.withUnsafeBufferPointer { buf in
            guard let base = buf.baseAddress else {
                return .failure(JSONPathError(offset: 0, message: "empty selector", expected: "'$'"))
            }
            do throws(JSONPathError) { return .success(try JSONPath.parsePrefix(base, 0, buf.count)) }
            catch { return .failure(error) }
        }
        let (path, stop) = try parsed.get()
        guard stop == bytes.count else {
            throw JSONPathError(offset: stop, message: "unexpected character in selector", expected: "'.', '[' or end")
        }
        self = path
    }

    /// True when any step is `.*` or `[*]`.
    public var hasWildcard: Bool { wildcardCount > 0 }

    public var wildcardCount: Int {
        steps.reduce(0) { n, s in
            switch s { case .anyKey, .anyIndex: return n + 1; default: return n }
        }
    }

    public var description: String {
        var s = "$"
        for step in steps {
            switch step {
            case .key(let k):
                let name = String(decoding: k, as: UTF8.self)
                if !k.isEmpty && k.allSatisfy(JSONPath.isNameByte) { s += "." + name } else { s += ".['" + name + "']" }
            case .index(let n): s += "[\(n)]"
            case .anyKey: s += ".*"
            case .anyIndex: s += "[*]"
            }
        }
        return s
    }

    @inlinable
    static func isNameByte(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"),
             UInt8(ascii: "@"), UInt8(ascii: ":"):
            return true
        default:
            return b >= 0x80
        }
    }

    /// Parses a selector that starts at `p[start]` (which must be `$`) and stops at the first byte that cannot
    /// continue it. Returns the path and the index just past it. Used by pattern parsers that embed selectors.
    public static func parsePrefix(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) throws(JSONPathError) -> (JSONPath, Int) {
        var i = start
        guard i < end, p[i] == UInt8(ascii: "$") else {
            throw JSONPathError(offset: i, message: "a selector starts with '$'", expected: "'$'")
        }
        i += 1
        var steps: [Step] = []
        while i < end {
            let b = p[i]
            if b == UInt8(ascii: ".") {
                i += 1
                guard i < end else { throw JSONPathError(offset: i, message: "selector ends after '.'", expected: "a property name") }
                if p[i] == UInt8(ascii: "*") {
                    steps.append(.anyKey); i += 1
                } else if p[i] == UInt8(ascii: "[") {
                    let (step, next) = try bracket(p, i, end)
                    steps.append(step); i = next
                } else {
                    let nameStart = i
                    while i < end && isNameByte(p[i]) { i += 1 }
                    guard i > nameStart else {
                        throw JSONPathError(offset: i, message: "missing property name after '.'", expected: "a property name")
                    }
                    steps.append(.key(Array(UnsafeBufferPointer(start: p + nameStart, count: i - nameStart))))
                }
            } else if b == UInt8(ascii: "[") {
                let (step, next) = try bracket(p, i, end)
                steps.append(step); i = next
            } else {
                break
            }
        }
        guard !steps.isEmpty else {
            throw JSONPathError(offset: i, message: "selector has no property", expected: "'.' followed by a property name")
        }
        return (JSONPath(steps: steps), i)
    }

    /// `[n]`, `[*]` or `['key']` starting at the `[`.
    static func bracket(_ p: UnsafePointer<UInt8>, _ open: Int, _ end: Int) throws(JSONPathError) -> (Step, Int) {
        var i = open + 1
        guard i < end else { throw JSONPathError(offset: i, message: "selector ends after '['", expected: "an index, '*' or a quoted key") }
        if p[i] == UInt8(ascii: "*") {
            i += 1
            guard i < end, p[i] == UInt8(ascii: "]") else { throw JSONPathError(offset: i, message: "unclosed '[*'", expected: "']'") }
            return (.anyIndex, i + 1)
        }
        if p[i] == UInt8(ascii: "'") || p[i] == UInt8(ascii: "\"") {
            let quote = p[i]
            i += 1
            let keyStart = i
            while i < end && p[i] != quote { i += 1 }
            guard i < end else { throw JSONPathError(offset: i, message: "unterminated quoted key", expected: "a closing quote") }
            let key = Array(UnsafeBufferPointer(start: p + keyStart, count: i - keyStart))
            i += 1
            guard i < end, p[i] == UInt8(ascii: "]") else { throw JSONPathError(offset: i, message: "unclosed quoted key", expected: "']'") }
            return (.key(key), i + 1)
        }
        var n = 0
        let digitsStart = i
        while i < end, p[i] &- UInt8(ascii: "0") < 10 {
            if n < 100_000_000 { n = n * 10 + Int(p[i] - UInt8(ascii: "0")) }
            i += 1
        }
        guard i > digitsStart else { throw JSONPathError(offset: i, message: "invalid array index", expected: "a non-negative integer, '*' or a quoted key") }
        guard i < end, p[i] == UInt8(ascii: "]") else { throw JSONPathError(offset: i, message: "unclosed array index", expected: "']'") }
        return (.index(n), i + 1)
    }
}

/// Why a selector could not be parsed: zero-based byte offset, message and what was expected there.
public struct JSONPathError: Error, Sendable, Equatable, CustomStringConvertible {
    public var offset: Int
    public var message: String
    public var expected: String
    public init(offset: Int, message: String, expected: String) {
        self.offset = offset
        self.message = message
        self.expected = expected
    }
    public var description: String { "\(message) at offset \(offset) (expected \(expected))" }
}

extension JSONValue {
    /// The value at a selector without wildcards (nil when absent). Wildcard steps never match here; use
    /// ``select(_:)`` for those.
    public func value(at path: JSONPath) -> JSONValue? {
        var current = self
        for step in path.steps {
            switch step {
            case .key(let k):
                guard case .object(let members) = current else { return nil }
                let key = String(decoding: k, as: UTF8.self)
                guard let found = members.first(where: { $0.key == key }) else { return nil }
                current = found.value
            case .index(let n):
                guard let next = current[n] else { return nil }
                current = next
            case .anyKey, .anyIndex:
                return nil
            }
        }
        return current
    }

    /// Every value a selector reaches, expanding `.*` and `[*]` (document order). Empty when nothing matches.
    public func select(_ path: JSONPath) -> [JSONValue] {
        var out: [JSONValue] = []
        collect(path.steps[...], into: &out)
        return out
    }

    private func collect(_ steps: ArraySlice<JSONPath.Step>, into out: inout [JSONValue]) {
        guard let step = steps.first else { out.append(self); return }
        let rest = steps.dropFirst()
        switch step {
        case .key(let k):
            guard case .object(let members) = self else { return }
            let key = String(decoding: k, as: UTF8.self)
            if let found = members.first(where: { $0.key == key }) { found.value.collect(rest, into: &out) }
        case .index(let n):
            if let next = self[n] { next.collect(rest, into: &out) }
        case .anyKey:
            guard case .object(let members) = self else { return }
            for m in members { m.value.collect(rest, into: &out) }
        case .anyIndex:
            guard case .array(let elements) = self else { return }
            for e in elements { e.collect(rest, into: &out) }
        }
    }
}
