#if canImport(Glibc)
import Glibc
#endif
import AWSWire
import ByteJSON
import TrailwatchCore

/// A decoded PutLogEvents request: messages unescaped into one block, ready to become a
/// ``LogBatch`` without a per-event allocation.
public struct PutLogEventsRequest: Sendable {
    public var logGroupName = ""
    public var logStreamName = ""
    public var sequenceToken: String?
    /// Decoded messages, each followed by a newline that is not part of it.
    public var messages: [UInt8] = []
    public var starts: [UInt32] = []
    public var lengths: [UInt32] = []
    public var timestamps: [Int64] = []

    public var count: Int { starts.count }
}

/// Hand-written decoder for the one hot request: 10,000 events a call at hundreds of calls a
/// second would cost a JSON tree of ~50,000 nodes each with a general parser. Strict JSON: any
/// syntax error is a SerializationException naming the byte offset; unknown members are skipped
/// (as AWS does), wrong types are refused. Invalid UTF-8 in a message becomes U+FFFD.
public enum PutLogEventsDecoder {
    public static func decode(_ body: [UInt8]) throws(AWSError) -> PutLogEventsRequest {
        try body.withUnsafeBufferPointer { (buffer) throws(AWSError) -> PutLogEventsRequest in
            guard let base = buffer.baseAddress, !buffer.isEmpty else { throw AWSError.serialization("The request body is empty; expected a JSON object.") }
            var scanner = JSONScanner(p: base, end: buffer.count)
            var request = PutLogEventsRequest()
            request.messages.reserveCapacity(buffer.count)
            var sawGroup = false, sawStream = false, sawEvents = false
            try scanner.object { (scanner, key) throws(AWSError) in
                switch key {
                case "logGroupName": request.logGroupName = try scanner.string("logGroupName"); sawGroup = true
                case "logStreamName": request.logStreamName = try scanner.string("logStreamName"); sawStream = true
                case "sequenceToken": request.sequenceToken = try scanner.nullableString("sequenceToken")
                case "logEvents":
                    sawEvents = true
                    try scanner.array("logEvents") { (scanner) throws(AWSError) in
                        var timestamp: Int64?
                        var start = -1, length = 0
                        try scanner.object { (scanner, member) throws(AWSError) in
                            switch member {
                            case "timestamp": timestamp = try scanner.integer("logEvents.member.timestamp")
                            case "message":
                                let (s, e) = try scanner.stringBounds("logEvents.member.message")
                                start = request.messages.count
                                JSONStringDecoding.appendDecoded(scanner.p, s, e, to: &request.messages)
                                length = request.messages.count - start
                                // Each message ends with a newline outside its length, as lines read from a file
                                // do: a raw file sink then writes a whole batch with one writev entry.
                                request.messages.append(0x0A)
                            default: try scanner.skipValue()
                            }
                        }
                        guard let timestamp else { throw AWSError("InvalidParameterException", "1 validation error detected: Value null at 'logEvents.\(request.count + 1).member.timestamp' failed to satisfy constraint: Member must not be null") }
                        guard start >= 0 else { throw AWSError("InvalidParameterException", "1 validation error detected: Value null at 'logEvents.\(request.count + 1).member.message' failed to satisfy constraint: Member must not be null") }
                        guard request.count < 10_000 else {
                            throw AWSError("InvalidParameterException", "1 validation error detected: Value at 'logEvents' failed to satisfy constraint: Member must have length less than or equal to 10000")
                        }
                        request.starts.append(UInt32(start))
                        request.lengths.append(UInt32(length))
                        request.timestamps.append(timestamp)
                    }
                default: try scanner.skipValue()
                }
            }
            try scanner.finish()
            guard sawGroup else { throw AWSError("InvalidParameterException", "1 validation error detected: Value null at 'logGroupName' failed to satisfy constraint: Member must not be null") }
            guard sawStream else { throw AWSError("InvalidParameterException", "1 validation error detected: Value null at 'logStreamName' failed to satisfy constraint: Member must not be null") }
            guard sawEvents else { throw AWSError("InvalidParameterException", "1 validation error detected: Value null at 'logEvents' failed to satisfy constraint: Member must not be null") }
            return request
        }
    }
}

/// A strict, allocation-light JSON reader over a byte buffer.
struct JSONScanner {
    let p: UnsafePointer<UInt8>
    let end: Int
    var i = 0
    var depth = 0

    init(p: UnsafePointer<UInt8>, end: Int) {
        self.p = p
        self.end = end
    }

    func fail(_ message: String) -> AWSError {
        AWSError.serialization("Malformed JSON at byte \(i): \(message).")
    }

    mutating func skipSpace() {
        while i < end, p[i] == 0x20 || p[i] == 0x0A || p[i] == 0x0D || p[i] == 0x09 { i += 1 }
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(AWSError) {
        skipSpace()
        guard i < end, p[i] == byte else { throw fail("expected \(what)") }
        i += 1
    }

    mutating func finish() throws(AWSError) {
        skipSpace()
        guard i == end else { throw fail("unexpected data after the JSON value") }
    }

    /// The bounds of a string's body (between the quotes), validating its escapes.
    mutating func rawString() throws(AWSError) -> (Int, Int) {
        skipSpace()
        guard i < end, p[i] == UInt8(ascii: "\"") else { throw fail("expected a string") }
        i += 1
        let start = i
        while i < end {
            // Eight bytes at a time while none is a quote, a backslash or a control character
            // (SWAR tests; a false alarm only sends the word through the byte loop below).
            if i &+ 8 <= end {
                let w = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
                let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
                let quote = w ^ (ones &* 0x22), backslash = w ^ (ones &* 0x5C)
                let special = (((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((w &- ones &* 0x20) & ~w)) & highs
                if special == 0 {
                    i &+= 8
                    continue
                }
            }
            let c = p[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                return (start, i - 1)
            }
            if c == UInt8(ascii: "\\") {
                guard i + 1 < end else { throw fail("unterminated string") }
                switch p[i + 1] {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                     UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                    i += 2
                case UInt8(ascii: "u"):
                    guard i + 5 < end, (2...5).allSatisfy({ Self.isHex(p[i + $0]) }) else { throw fail("invalid \\u escape") }
                    i += 6
                default:
                    throw fail("invalid escape")
                }
                continue
            }
            if c < 0x20 { throw fail("control character in a string") }
            i += 1
        }
        throw fail("unterminated string")
    }

    static func isHex(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
    }

    mutating func stringBounds(_ field: String) throws(AWSError) -> (Int, Int) {
        skipSpace()
        if i < end, p[i] != UInt8(ascii: "\"") {
            throw AWSError.serialization("Expected a string for '\(field)' at byte \(i).")
        }
        return try rawString()
    }

    mutating func string(_ field: String) throws(AWSError) -> String {
        let (s, e) = try stringBounds(field)
        return JSONStringDecoding.decode(p, s, e)
    }

    mutating func nullableString(_ field: String) throws(AWSError) -> String? {
        skipSpace()
        if literal("null") { return nil }
        return try string(field)
    }

    mutating func literal(_ word: StaticString) -> Bool {
        let n = word.utf8CodeUnitCount
        guard i + n <= end else { return false }
        for k in 0..<n where p[i + k] != word.utf8Start[k] { return false }
        i += n
        return true
    }

    mutating func integer(_ field: String) throws(AWSError) -> Int64 {
        skipSpace()
        let start = i
        if i < end, p[i] == UInt8(ascii: "-") { i += 1 }
        while i < end, (p[i] >= 0x30 && p[i] <= 0x39) || p[i] == UInt8(ascii: ".") || p[i] == UInt8(ascii: "e")
                || p[i] == UInt8(ascii: "E") || p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-") { i += 1 }
        guard i > start else { throw AWSError.serialization("Expected a number for '\(field)' at byte \(start).") }
        var value: Int64 = 0
        var negative = false
        var k = start
        if p[k] == UInt8(ascii: "-") { negative = true; k += 1 }
        // JSON allows no leading zeros ("0790…" is not a number).
        if k + 1 < i, p[k] == 0x30, p[k + 1] >= 0x30 && p[k + 1] <= 0x39 {
            throw AWSError.serialization("The number for '\(field)' at byte \(start) has a leading zero, which JSON does not allow.")
        }
        var integral = k < i
        while k < i {
            let c = p[k]
            guard c >= 0x30 && c <= 0x39 else { integral = false; break }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(Int64(c - 0x30))
            guard !o1 && !o2 else { throw AWSError.serialization("The number for '\(field)' at byte \(start) is out of range.") }
            value = a
            k += 1
        }
        if !integral {
            guard let d = JSONNumberParsing.parseDouble(p, start, i), d.rounded() == d, abs(d) < 9.2e18 else {
                throw AWSError.serialization("Expected an integer for '\(field)' at byte \(start).")
            }
            return Int64(d)
        }
        return negative ? -value : value
    }

    /// Calls `member` for each key; `member` must consume the value.
    mutating func object(_ member: (inout JSONScanner, JSONKey) throws(AWSError) -> Void) throws(AWSError) {
        skipSpace()
        guard i < end, p[i] == UInt8(ascii: "{") else { throw fail("expected an object") }
        i += 1
        depth += 1
        guard depth < 64 else { throw fail("nesting deeper than 64") }
        skipSpace()
        if i < end, p[i] == UInt8(ascii: "}") { i += 1; depth -= 1; return }
        while true {
            let (s, e) = try rawString()
            let key = JSONKey(p: p, start: s, end: e)
            try expect(UInt8(ascii: ":"), "':'")
            try member(&self, key)
            skipSpace()
            guard i < end else { throw fail("unterminated object") }
            if p[i] == UInt8(ascii: ",") { i += 1; continue }
            if p[i] == UInt8(ascii: "}") { i += 1; depth -= 1; return }
            throw fail("expected ',' or '}'")
        }
    }

    mutating func array(_ field: String, _ element: (inout JSONScanner) throws(AWSError) -> Void) throws(AWSError) {
        skipSpace()
        guard i < end, p[i] == UInt8(ascii: "[") else { throw AWSError.serialization("Expected a list for '\(field)' at byte \(i).") }
        i += 1
        depth += 1
        guard depth < 64 else { throw fail("nesting deeper than 64") }
        skipSpace()
        if i < end, p[i] == UInt8(ascii: "]") { i += 1; depth -= 1; return }
        while true {
            try element(&self)
            skipSpace()
            guard i < end else { throw fail("unterminated list") }
            if p[i] == UInt8(ascii: ",") { i += 1; continue }
            if p[i] == UInt8(ascii: "]") { i += 1; depth -= 1; return }
            throw fail("expected ',' or ']'")
        }
    }

    mutating func skipValue() throws(AWSError) {
        skipSpace()
        guard i < end else { throw fail("expected a value") }
        switch p[i] {
        case UInt8(ascii: "{"): try object { (s, _) throws(AWSError) in try s.skipValue() }
        case UInt8(ascii: "["): try array("value") { (s) throws(AWSError) in try s.skipValue() }
        case UInt8(ascii: "\""): _ = try rawString()
        case UInt8(ascii: "t"): guard literal("true") else { throw fail("invalid literal") }
        case UInt8(ascii: "f"): guard literal("false") else { throw fail("invalid literal") }
        case UInt8(ascii: "n"): guard literal("null") else { throw fail("invalid literal") }
        default:
            let start = i
            while i < end, (p[i] >= 0x30 && p[i] <= 0x39) || p[i] == UInt8(ascii: "-") || p[i] == UInt8(ascii: "+")
                    || p[i] == UInt8(ascii: ".") || p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E") { i += 1 }
            guard i > start, JSONNumberParsing.parseDouble(p, start, i) != nil else { throw fail("invalid value") }
        }
    }
}

/// An object member's name as it stands in the body: compared against the names the decoder
/// knows without making a `String` (ten thousand events carry twenty thousand names).
struct JSONKey {
    let p: UnsafePointer<UInt8>
    let start: Int
    let end: Int

    static func ~= (name: StaticString, key: JSONKey) -> Bool {
        let count = name.utf8CodeUnitCount
        var escaped = false
        for i in key.start..<key.end where key.p[i] == UInt8(ascii: "\\") { escaped = true; break }
        if escaped {
            // Rare: a name spelled with escapes is compared decoded.
            return Array(JSONStringDecoding.decode(key.p, key.start, key.end).utf8).elementsEqual(
                UnsafeBufferPointer(start: name.utf8Start, count: count))
        }
        guard key.end - key.start == count else { return false }
        return memcmp(key.p + key.start, name.utf8Start, count) == 0
    }
}
