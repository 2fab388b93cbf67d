extension JSONValue {
    /// Deepest nesting of arrays/objects the readers accept; deeper input is rejected, never a stack overflow.
    public static let maximumDepth = 512

    /// Parses a complete JSON document (surrounding whitespace allowed, nothing else after the value).
    ///
    /// Never traps: malformed input, excessive nesting (> ``maximumDepth``), and numbers out of `Double`'s range
    /// (they become ±infinity but keep their text) are handled. Invalid UTF-8 inside strings is replaced by U+FFFD;
    /// raw control characters inside strings are accepted as they are (a deliberate leniency: log lines in the wild
    /// contain raw tabs).
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONError) -> JSONValue {
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            throw JSONError(offset: 0, message: "empty input")
        }
        var parser = TreeParser(p: base.assumingMemoryBound(to: UInt8.self), end: bytes.count)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        if parser.i != parser.end {
            throw JSONError(offset: parser.i, message: "unexpected data after the JSON value")
        }
        return value
    }

    /// Parses JSON from an array of bytes.
    public static func parse(_ bytes: [UInt8]) throws(JSONError) -> JSONValue {
        let result: Result<JSONValue, JSONError> = bytes.withUnsafeBytes { raw in
            do throws(JSONError) { return .success(try parse(raw)) } catch { return .failure(error) }
        }
        return try result.get()
    }

    /// Parses JSON from the UTF-8 of a string.
    public static func parse(_ text: String) throws(JSONError) -> JSONValue {
        try parse(Array(text.utf8))
    }
}

struct TreeParser {
    let p: UnsafePointer<UInt8>
    let end: Int
    var i = 0

    init(p: UnsafePointer<UInt8>, end: Int) {
        self.p = p
        self.end = end
    }

    mutating func skipWhitespace() {
        while i < end {
            let b = p[i]
            if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { i += 1 } else { break }
        }
    }

    func fail(_ message: String) -> JSONError { JSONError(offset: i, message: message) }

    mutating func parseValue(depth: Int) throws(JSONError) -> JSONValue {
        guard i < end else { throw fail("unexpected end of input, expected a value") }
        switch p[i] {
        case UInt8(ascii: "{"):
            guard depth < JSONValue.maximumDepth else { throw fail("nesting deeper than \(JSONValue.maximumDepth)") }
            i += 1
            var members: [JSONMember] = []
            skipWhitespace()
            if i < end && p[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
            while true {
                skipWhitespace()
                guard i < end, p[i] == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let key = try parseString()
                skipWhitespace()
                guard i < end, p[i] == UInt8(ascii: ":") else { throw fail("expected ':' after an object key") }
                i += 1
                skipWhitespace()
                let value = try parseValue(depth: depth + 1)
                members.append(JSONMember(key: key, value: value))
                skipWhitespace()
                guard i < end else { throw fail("unexpected end of input inside an object") }
                if p[i] == UInt8(ascii: ",") { i += 1; continue }
                if p[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                throw fail("expected ',' or '}' in an object")
            }
        case UInt8(ascii: "["):
            guard depth < JSONValue.maximumDepth else { throw fail("nesting deeper than \(JSONValue.maximumDepth)") }
            i += 1
            var elements: [JSONValue] = []
            skipWhitespace()
            if i < end && p[i] == UInt8(ascii: "]") { i += 1; return .array(elements) }
            while true {
                skipWhitespace()
                elements.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                guard i < end else { throw fail("unexpected end of input inside an array") }
                if p[i] == UInt8(ascii: ",") { i += 1; continue }
                if p[i] == UInt8(ascii: "]") { i += 1; return .array(elements) }
                throw fail("expected ',' or ']' in an array")
            }
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"):
            try literal("true"); return .bool(true)
        case UInt8(ascii: "f"):
            try literal("false"); return .bool(false)
        case UInt8(ascii: "n"):
            try literal("null"); return .null
        default:
            guard let stop = JSONNumberParsing.scan(p, i, end) else { throw fail("expected a value") }
            let value = JSONNumberParsing.parseDouble(p, i, stop) ?? .nan
            let text = String(decoding: UnsafeBufferPointer(start: p + i, count: stop - i), as: UTF8.self)
            i = stop
            return .number(value, text: text)
        }
    }

    mutating func literal(_ word: StaticString) throws(JSONError) {
        let n = word.utf8CodeUnitCount
        guard i + n <= end else { throw fail("unexpected end of input, expected \(word)") }
        let w = word.utf8Start
        for k in 0..<n where p[i + k] != w[k] { throw fail("expected \(word)") }
        i += n
    }

    /// Parses a string starting at the opening quote.
    mutating func parseString() throws(JSONError) -> String {
        let start = i + 1
        guard let close = JSONScanning.stringEnd(p, start, end) else {
            throw fail("unterminated string")
        }
        i = close + 1
        return JSONStringDecoding.decode(p, start, close)
    }
}

/// Low-level scanning helpers shared by the tree parser and the lazy lookup.
enum JSONScanning {
    /// Index of the closing quote of a string whose body starts at `start`, or nil when unterminated.
    /// Sets nothing else; escapes are skipped (their validity is checked when decoding).
    @inline(__always)
    static func stringEnd(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int? {
        var i = start
        while i < end {
            let b = p[i]
            if b == UInt8(ascii: "\"") { return i }
            if b == UInt8(ascii: "\\") { i += 2 } else { i += 1 }
        }
        return nil
    }
}
