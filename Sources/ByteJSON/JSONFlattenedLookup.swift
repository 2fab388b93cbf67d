#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Looks up *flattened* field names — `a.b`, `items.0.id` — in JSON objects, the way CloudWatch Logs
/// Insights discovers the fields of a JSON event: nested keys are joined with `.`, array elements are
/// numbered from 0. One forward scan per document validates it and records the value of every wanted
/// name; no tree is built, and only the subtrees on the way to a wanted name are entered.
///
/// - A name matches every key path whose keys, joined with dots, spell it: `cluster.name` finds the key
///   `"cluster.name"` as well as `"cluster": {"name": …}` (the first in document order wins, as for
///   duplicate keys).
/// - Only the top-level object is flattened; a document that is not a JSON object yields nothing.
/// - The value found can be an object or an array (callers decide whether such values count as fields).
/// - At most 64 names per lookup (the scanner keeps them in one bit mask).
public struct JSONFlattenedLookup: Sendable {
    public static let maximumNames = 64
    public let names: [[UInt8]]
    private let blob: [UInt8]
    private let offsets: [Int]
    private let lengths: [Int]

    /// - Precondition: `names.count <= maximumNames`.
    public init(_ names: [[UInt8]]) {
        precondition(names.count <= Self.maximumNames, "at most \(Self.maximumNames) names")
        self.names = names
        var blob: [UInt8] = []
        var offsets: [Int] = []
        for name in names {
            offsets.append(blob.count)
            blob += name
        }
        self.blob = blob
        self.offsets = offsets
        self.lengths = names.map(\.count)
    }

    /// Fills `results` (one per name; `.missing` when absent) and returns true when `bytes` is a JSON
    /// object. When it is not (another JSON value, or not JSON at all), every result is `.notJSON`.
    @discardableResult
    public func resolve(in bytes: UnsafeRawBufferPointer, into results: inout [JSONLookup]) -> Bool {
        if results.count != names.count { results = [JSONLookup](repeating: .missing, count: names.count) }
        for k in results.indices { results[k] = .missing }
        guard let base = bytes.baseAddress, !bytes.isEmpty else {
            for k in results.indices { results[k] = .notJSON }
            return false
        }
        let p = base.assumingMemoryBound(to: UInt8.self)
        let ok = results.withUnsafeMutableBufferPointer { out -> Bool in
            blob.withUnsafeBufferPointer { blobBuffer -> Bool in
                offsets.withUnsafeBufferPointer { offsetBuffer -> Bool in
                    lengths.withUnsafeBufferPointer { lengthBuffer -> Bool in
                        var scanner = FlatScanner(p: p, end: bytes.count, blob: blobBuffer.baseAddress, offsets: offsetBuffer,
                                                  lengths: lengthBuffer, results: out)
                        scanner.skipWhitespace()
                        guard scanner.i < scanner.end, p[scanner.i] == UInt8(ascii: "{") else { return false }
                        let all: UInt64 = names.isEmpty ? 0 : (names.count == 64 ? ~0 : (1 << UInt64(names.count)) - 1)
                        guard scanner.value(depth: 0, mask: all, offset: 0) else { return false }
                        scanner.skipWhitespace()
                        return scanner.i == scanner.end
                    }
                }
            }
        }
        if !ok { for k in results.indices { results[k] = .notJSON } }
        return ok
    }
}

private struct FlatScanner {
    let p: UnsafePointer<UInt8>
    let end: Int
    let blob: UnsafePointer<UInt8>?
    let offsets: UnsafeBufferPointer<Int>
    let lengths: UnsafeBufferPointer<Int>
    let results: UnsafeMutableBufferPointer<JSONLookup>
    var i = 0

    init(p: UnsafePointer<UInt8>, end: Int, blob: UnsafePointer<UInt8>?, offsets: UnsafeBufferPointer<Int>,
         lengths: UnsafeBufferPointer<Int>, results: UnsafeMutableBufferPointer<JSONLookup>) {
        self.p = p
        self.end = end
        self.blob = blob
        self.offsets = offsets
        self.lengths = lengths
        self.results = results
    }

    @inline(__always)
    mutating func skipWhitespace() { i = JSONByteScan.skipWhitespace(p, i, end) }

    @inline(__always)
    func stringEnd(from start: Int) -> (Int, Bool) { JSONByteScan.stringEnd(p, from: start, end) }

    /// Names among `mask` (all of which matched the path so far, `offset` bytes into each name) that the
    /// key `key` continues: `exact` when the name ends with it, `deeper` when a `.` follows in the name.
    @inline(__always)
    func match(_ key: UnsafeBufferPointer<UInt8>, mask: UInt64, offset: Int) -> (exact: UInt64, deeper: UInt64) {
        var exact: UInt64 = 0, deeper: UInt64 = 0
        var m = mask
        guard let blob else { return (0, 0) }
        while m != 0 {
            let n = m.trailingZeroBitCount
            m &= m - 1
            let remaining = lengths[n] - offset
            guard remaining >= key.count else { continue }
            let start = blob + offsets[n] + offset
            if key.count > 0, let kb = key.baseAddress, memcmp(start, kb, key.count) != 0 { continue }
            if remaining == key.count {
                exact |= 1 << UInt64(n)
            } else if start[key.count] == UInt8(ascii: ".") {
                deeper |= 1 << UInt64(n)
            }
        }
        return (exact, deeper)
    }

    @inline(__always)
    func record(_ mask: UInt64, _ value: JSONLookup) {
        var m = mask
        while m != 0 {
            let n = m.trailingZeroBitCount
            m &= m - 1
            if case .missing = results[n] { results[n] = value }
        }
    }

    /// Scans one value. `mask` holds the names whose path so far leads here, `offset` how many of their
    /// bytes that path spelled (including the dots).
    mutating func value(depth: Int, mask: UInt64, offset: Int) -> Bool {
        guard i < end else { return false }
        switch p[i] {
        case UInt8(ascii: "{"):
            guard depth < JSONValue.maximumDepth else { return false }
            i += 1
            skipWhitespace()
            if i < end && p[i] == UInt8(ascii: "}") { i += 1; return true }
            while true {
                skipWhitespace()
                guard i < end, p[i] == UInt8(ascii: "\"") else { return false }
                let keyStart = i + 1
                let (keyEnd, escaped) = stringEnd(from: keyStart)
                guard keyEnd < end else { return false }
                i = keyEnd + 1
                skipWhitespace()
                guard i < end, p[i] == UInt8(ascii: ":") else { return false }
                i += 1
                skipWhitespace()
                var exact: UInt64 = 0, deeper: UInt64 = 0
                var keyLength = keyEnd - keyStart
                if mask != 0 {
                    if escaped {
                        var decoded: [UInt8] = []
                        JSONStringDecoding.appendDecoded(p, keyStart, keyEnd, to: &decoded)
                        keyLength = decoded.count
                        (exact, deeper) = decoded.withUnsafeBufferPointer { match($0, mask: mask, offset: offset) }
                    } else {
                        (exact, deeper) = match(UnsafeBufferPointer(start: p + keyStart, count: keyEnd - keyStart), mask: mask, offset: offset)
                    }
                }
                let valueStart = i
                guard value(depth: depth + 1, mask: deeper, offset: offset + keyLength + 1) else { return false }
                if exact != 0 { record(exact, lookupValue(valueStart, i)) }
                skipWhitespace()
                guard i < end else { return false }
                if p[i] == UInt8(ascii: ",") { i += 1; continue }
                if p[i] == UInt8(ascii: "}") { i += 1; return true }
                return false
            }
        case UInt8(ascii: "["):
            guard depth < JSONValue.maximumDepth else { return false }
            i += 1
            skipWhitespace()
            if i < end && p[i] == UInt8(ascii: "]") { i += 1; return true }
            var index = 0
            var digits: [UInt8] = []
            while true {
                skipWhitespace()
                var exact: UInt64 = 0, deeper: UInt64 = 0
                var keyLength = 0
                if mask != 0 {
                    if digits.isEmpty { digits = [UInt8](repeating: 0, count: 20) }
                    keyLength = Self.decimal(index, into: &digits)
                    (exact, deeper) = digits.withUnsafeBufferPointer {
                        match(UnsafeBufferPointer(rebasing: $0[0..<keyLength]), mask: mask, offset: offset)
                    }
                }
                let valueStart = i
                guard value(depth: depth + 1, mask: deeper, offset: offset + keyLength + 1) else { return false }
                if exact != 0 { record(exact, lookupValue(valueStart, i)) }
                index += 1
                skipWhitespace()
                guard i < end else { return false }
                if p[i] == UInt8(ascii: ",") { i += 1; continue }
                if p[i] == UInt8(ascii: "]") { i += 1; return true }
                return false
            }
        case UInt8(ascii: "\""):
            let (k, _) = stringEnd(from: i + 1)
            guard k < end else { return false }
            i = k + 1
        case UInt8(ascii: "t"):
            guard i + 4 <= end, p[i + 1] == 0x72, p[i + 2] == 0x75, p[i + 3] == 0x65 else { return false }
            i += 4
        case UInt8(ascii: "n"):
            guard i + 4 <= end, p[i + 1] == 0x75, p[i + 2] == 0x6C, p[i + 3] == 0x6C else { return false }
            i += 4
        case UInt8(ascii: "f"):
            guard i + 5 <= end, p[i + 1] == 0x61, p[i + 2] == 0x6C, p[i + 3] == 0x73, p[i + 4] == 0x65 else { return false }
            i += 5
        default:
            guard let stop = JSONNumberParsing.scan(p, i, end) else { return false }
            i = stop
        }
        return true
    }

    /// The lookup result for the value spanning `start..<stop` (already validated by the scan).
    func lookupValue(_ start: Int, _ stop: Int) -> JSONLookup {
        switch p[start] {
        case UInt8(ascii: "{"): return .object(start..<stop)
        case UInt8(ascii: "["): return .array(start..<stop)
        case UInt8(ascii: "\""):
            var escaped = false
            var k = start + 1
            while k < stop - 1 {
                if p[k] == UInt8(ascii: "\\") { escaped = true; break }
                k += 1
            }
            return .string(start + 1..<stop - 1, escaped: escaped)
        case UInt8(ascii: "t"): return .bool(true)
        case UInt8(ascii: "f"): return .bool(false)
        case UInt8(ascii: "n"): return .null
        default: return .number(start..<stop)
        }
    }

    /// Writes `value` in decimal into `buffer`; returns the digit count.
    static func decimal(_ value: Int, into buffer: inout [UInt8]) -> Int {
        if value == 0 { buffer[0] = UInt8(ascii: "0"); return 1 }
        var v = value, n = 0
        while v > 0 { buffer[n] = UInt8(ascii: "0") + UInt8(v % 10); v /= 10; n += 1 }
        buffer[0..<n].reverse()
        return n
    }
}
