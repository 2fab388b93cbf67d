import ByteJSON

/// An event pattern (or any JSON the pattern language reads) as a tree whose nodes remember where
/// they were written, so validation errors can point at the offending value.
public struct PatternNode: Sendable, Equatable {
    public indirect enum Value: Sendable, Equatable {
        case object([(key: String, keyLocation: PatternLocation, value: PatternNode)])
        case array([PatternNode])
        case string(String)
        /// A number: its value and the text it was written with.
        case number(Double, text: String)
        case bool(Bool)
        case null

        public static func == (a: Value, b: Value) -> Bool {
            switch (a, b) {
            case (.object(let x), .object(let y)):
                return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
            case (.array(let x), .array(let y)): return x == y
            case (.string(let x), .string(let y)): return x == y
            case (.number(let x, _), .number(let y, _)): return x == y
            case (.bool(let x), .bool(let y)): return x == y
            case (.null, .null): return true
            default: return false
            }
        }
    }

    public var value: Value
    public var location: PatternLocation

    public init(_ value: Value, at location: PatternLocation = .unknown) {
        self.value = value
        self.location = location
    }

    public static func == (a: PatternNode, b: PatternNode) -> Bool { a.value == b.value }

    /// A short description of the kind of value, for messages.
    var kindName: String {
        switch value {
        case .object: "an object"
        case .array: "an array"
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        }
    }

    /// The node written back as compact JSON.
    public var json: String {
        var out = ""
        append(to: &out)
        return out
    }

    func append(to out: inout String) {
        switch value {
        case .object(let members):
            out += "{"
            for (k, member) in members.enumerated() {
                if k > 0 { out += "," }
                PatternNode.appendQuoted(member.key, to: &out)
                out += ":"
                member.value.append(to: &out)
            }
            out += "}"
        case .array(let elements):
            out += "["
            for (k, element) in elements.enumerated() {
                if k > 0 { out += "," }
                element.append(to: &out)
            }
            out += "]"
        case .string(let s): PatternNode.appendQuoted(s, to: &out)
        case .number(let d, let text): out += text.isEmpty ? PatternNode.format(d) : text
        case .bool(let b): out += b ? "true" : "false"
        case .null: out += "null"
        }
    }

    static func format(_ d: Double) -> String {
        if d == d.rounded(), abs(d) < 1e15 { return String(Int64(d)) }
        return String(d)
    }

    static func appendQuoted(_ s: String, to out: inout String) { JSONStringLiteral.append(s, to: &out) }
}

/// Where a pattern value was written: a byte offset with its line and column (1-based) in JSON
/// text, or unknown for trees built in code (a YAML pipeline locates by path instead).
public struct PatternLocation: Sendable, Hashable, CustomStringConvertible {
    public var offset: Int
    public var line: Int
    public var column: Int

    public init(offset: Int, line: Int, column: Int) {
        self.offset = offset
        self.line = line
        self.column = column
    }

    public static let unknown = PatternLocation(offset: -1, line: 0, column: 0)
    public var isKnown: Bool { offset >= 0 }
    public var description: String { isKnown ? "line \(line), column \(column)" : "unknown position" }
}

/// Why an event pattern (or an input transformer) was rejected: what is wrong, where it was
/// written (when the pattern came as text) and the path of keys leading to it.
public struct EventPatternError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var location: PatternLocation
    /// Keys and array indexes (`"Index 2"`) from the pattern's root to the offending value.
    public var path: [String]

    public init(_ message: String, at location: PatternLocation = .unknown, path: [String] = []) {
        self.message = message
        self.location = location
        self.path = path
    }

    /// `Event pattern is not valid. Reason: …`, as AWS words `InvalidEventPatternException`.
    public var awsMessage: String {
        "Event pattern is not valid. Reason: \(message)" + (location.isKnown ? " at line \(location.line), column \(location.column)" : "")
    }

    public var description: String {
        (location.isKnown ? "at line \(location.line), column \(location.column): " : "") + message
    }
}

/// Reads JSON text into a ``PatternNode`` tree, remembering positions. Strict JSON (RFC 8259):
/// no comments, no trailing commas; duplicate keys are rejected, since a pattern with two `source`
/// entries would mean different things to different readers.
public enum PatternJSONParser {
    public static let maximumDepth = 64

    public static func parse(_ text: String) throws(EventPatternError) -> PatternNode {
        let bytes = Array(text.utf8)
        var parser = Parser(bytes: bytes)
        parser.skipWhitespace()
        guard parser.i < bytes.count else { throw EventPatternError("the text is empty", at: parser.location(0)) }
        let node = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.i == bytes.count else {
            throw EventPatternError("unexpected text after the JSON value", at: parser.location(parser.i))
        }
        return node
    }

    struct Parser {
        let bytes: [UInt8]
        var i = 0
        /// Offsets where lines start, filled as the parser passes newlines.
        var lineStarts: [Int] = [0]
        var scannedTo = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        mutating func location(_ offset: Int) -> PatternLocation {
            while scannedTo < min(offset, bytes.count) {
                if bytes[scannedTo] == 0x0A { lineStarts.append(scannedTo + 1) }
                scannedTo += 1
            }
            var line = lineStarts.count
            while line > 1 && lineStarts[line - 1] > offset { line -= 1 }
            // Columns count characters, not bytes.
            var column = 1
            var k = lineStarts[line - 1]
            while k < offset && k < bytes.count {
                if bytes[k] & 0xC0 != 0x80 { column += 1 }
                k += 1
            }
            return PatternLocation(offset: offset, line: line, column: column)
        }

        mutating func skipWhitespace() {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0A || bytes[i] == 0x0D || bytes[i] == 0x09 { i += 1 }
        }

        mutating func fail(_ message: String, at offset: Int? = nil) -> EventPatternError {
            EventPatternError(message, at: location(offset ?? i))
        }

        mutating func value(depth: Int) throws(EventPatternError) -> PatternNode {
            guard depth < PatternJSONParser.maximumDepth else { throw fail("nested too deeply (more than \(PatternJSONParser.maximumDepth) levels)") }
            guard i < bytes.count else { throw fail("unexpected end of the text") }
            let here = location(i)
            switch bytes[i] {
            case UInt8(ascii: "{"):
                i += 1
                var members: [(key: String, keyLocation: PatternLocation, value: PatternNode)] = []
                var seen = Set<String>()
                skipWhitespace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "}") { i += 1; return PatternNode(.object([]), at: here) }
                while true {
                    skipWhitespace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { throw fail("expected a key in double quotes") }
                    let keyLocation = location(i)
                    let key = try string()
                    guard seen.insert(key).inserted else { throw EventPatternError("duplicate key \"\(key)\"", at: keyLocation) }
                    skipWhitespace()
                    guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw fail("expected ':' after the key") }
                    i += 1
                    skipWhitespace()
                    members.append((key, keyLocation, try value(depth: depth + 1)))
                    skipWhitespace()
                    guard i < bytes.count else { throw fail("unexpected end of the text inside an object") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "}") { i += 1; break }
                    throw fail("expected ',' or '}'")
                }
                return PatternNode(.object(members), at: here)
            case UInt8(ascii: "["):
                i += 1
                var elements: [PatternNode] = []
                skipWhitespace()
                if i < bytes.count, bytes[i] == UInt8(ascii: "]") { i += 1; return PatternNode(.array([]), at: here) }
                while true {
                    skipWhitespace()
                    elements.append(try value(depth: depth + 1))
                    skipWhitespace()
                    guard i < bytes.count else { throw fail("unexpected end of the text inside an array") }
                    if bytes[i] == UInt8(ascii: ",") { i += 1; continue }
                    if bytes[i] == UInt8(ascii: "]") { i += 1; break }
                    throw fail("expected ',' or ']'")
                }
                return PatternNode(.array(elements), at: here)
            case UInt8(ascii: "\""):
                return PatternNode(.string(try string()), at: here)
            case UInt8(ascii: "t"):
                try literal("true")
                return PatternNode(.bool(true), at: here)
            case UInt8(ascii: "f"):
                try literal("false")
                return PatternNode(.bool(false), at: here)
            case UInt8(ascii: "n"):
                try literal("null")
                return PatternNode(.null, at: here)
            default:
                let start = i
                let stop: Int? = bytes.withUnsafeBufferPointer { JSONNumberParsing.scan($0.baseAddress!, start, $0.count) }
                guard let stop, stop > start else { throw fail("expected a JSON value (object, array, string, number, true, false or null)") }
                let text = String(decoding: bytes[start..<stop], as: UTF8.self)
                guard let number = Double(text), number.isFinite else { throw fail("the number \(text) is out of range", at: start) }
                i = stop
                return PatternNode(.number(number, text: text), at: here)
            }
        }

        mutating func literal(_ word: String) throws(EventPatternError) {
            let w = Array(word.utf8)
            guard i + w.count <= bytes.count, Array(bytes[i..<(i + w.count)]) == w else {
                throw fail("expected a JSON value (object, array, string, number, true, false or null)")
            }
            i += w.count
        }

        /// A string starting at its opening quote; escapes resolved.
        mutating func string() throws(EventPatternError) -> String {
            let open = i
            i += 1
            var scalars = String.UnicodeScalarView()
            var run = i
            func flush(_ upTo: Int) {
                if run < upTo { scalars.append(contentsOf: String(decoding: bytes[run..<upTo], as: UTF8.self).unicodeScalars) }
            }
            while true {
                guard i < bytes.count else { throw fail("unterminated string", at: open) }
                let b = bytes[i]
                if b == UInt8(ascii: "\"") {
                    flush(i)
                    i += 1
                    return String(scalars)
                }
                if b < 0x20 { throw fail("control character in a string (escape it)") }
                if b != UInt8(ascii: "\\") { i += 1; continue }
                flush(i)
                guard i + 1 < bytes.count else { throw fail("unterminated string", at: open) }
                let c = bytes[i + 1]
                i += 2
                switch c {
                case UInt8(ascii: "\""): scalars.append("\"")
                case UInt8(ascii: "\\"): scalars.append("\\")
                case UInt8(ascii: "/"): scalars.append("/")
                case UInt8(ascii: "b"): scalars.append("\u{08}")
                case UInt8(ascii: "f"): scalars.append("\u{0C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if code >= 0xD800 && code < 0xDC00, i + 1 < bytes.count, bytes[i] == UInt8(ascii: "\\"), bytes[i + 1] == UInt8(ascii: "u") {
                        i += 2
                        let low = try hex4()
                        if low >= 0xDC00 && low < 0xE000 { code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00) }
                    }
                    scalars.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                default:
                    throw fail("invalid escape '\\\(Character(Unicode.Scalar(c)))'", at: i - 2)
                }
                run = i
            }
        }

        mutating func hex4() throws(EventPatternError) -> UInt32 {
            guard i + 4 <= bytes.count else { throw fail("incomplete \\u escape") }
            var v: UInt32 = 0
            for k in 0..<4 {
                let b = bytes[i + k]
                let d: UInt32
                switch b {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): d = UInt32(b - UInt8(ascii: "0"))
                case UInt8(ascii: "a")...UInt8(ascii: "f"): d = UInt32(b - UInt8(ascii: "a") + 10)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): d = UInt32(b - UInt8(ascii: "A") + 10)
                default: throw fail("invalid \\u escape", at: i + k)
                }
                v = v << 4 | d
            }
            i += 4
            return v
        }
    }
}
