import ByteJSON
import NIOCore

/// Rows in PostgreSQL's COPY text format, written byte by byte (hand-written: this is the
/// ingest hot path, one pass per message). Columns are tab-separated, rows end with a newline;
/// backslash, tab, newline and carriage return are escaped; invalid UTF-8 and NUL bytes — which
/// a `text` column cannot hold — become U+FFFD, as everywhere else in trailwatch.
///
/// (postgres-nio's `copyFrom` speaks the text format only; binary COPY would need the driver's
/// internals. Text costs one escaping pass here and number parsing on the server.)
///
/// Each value is written straight into the buffer's free space (reserved for the worst case:
/// an escaped byte takes at most three), and plain ASCII goes eight bytes at a time.
struct CopyText {
    private(set) var buffer: NIOCore.ByteBuffer
    private(set) var isEmpty = true

    init(capacity: Int) {
        buffer = ByteBufferAllocator().buffer(capacity: max(capacity, 256))
    }

    /// Bytes written so far.
    var byteCount: Int { buffer.readableBytes }

    static let tab = UInt8(ascii: "\t")
    static let newline = UInt8(ascii: "\n")

    mutating func number(_ value: Int64, last: Bool = false) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 21) { raw in
            let out = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let n = Self.writeNumber(value, to: out)
            out[n] = last ? Self.newline : Self.tab
            return n + 1
        }
        isEmpty = false
    }

    /// A number, then bytes already in COPY text format (delimiters included): the columns a
    /// batch's rows share, escaped once.
    mutating func number(_ value: Int64, then columns: [UInt8]) {
        columns.withUnsafeBufferPointer { suffix in
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 20 + suffix.count) { raw in
                let out = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
                let n = Self.writeNumber(value, to: out)
                if let base = suffix.baseAddress { (out + n).update(from: base, count: suffix.count) }
                return n + suffix.count
            }
        }
        isEmpty = false
    }

    mutating func null(last: Bool = false) {
        buffer.writeInteger(UInt8(ascii: "\\"))
        buffer.writeInteger(UInt8(ascii: "N"))
        buffer.writeInteger(last ? Self.newline : Self.tab)
        isEmpty = false
    }

    mutating func text(_ bytes: [UInt8], last: Bool = false) {
        bytes.withUnsafeBytes { text($0, last: last) }
    }

    mutating func text(_ bytes: UnsafeRawBufferPointer, last: Bool = false) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: bytes.count * 3 + 1) { raw in
            let out = raw.baseAddress!.assumingMemoryBound(to: UInt8.self)
            let n = Self.escape(bytes, to: out)
            out[n] = last ? Self.newline : Self.tab
            return n + 1
        }
        isEmpty = false
    }

    /// Writes the decimal digits of `value` at `out`; returns their count (at most 20).
    @inline(__always)
    static func writeNumber(_ value: Int64, to out: UnsafeMutablePointer<UInt8>) -> Int {
        var v = value.magnitude
        var digits = 1
        var bound: UInt64 = 10
        while digits < 20 && v >= bound { digits += 1; bound &*= 10 }
        let sign = value < 0 ? 1 : 0
        if sign == 1 { out[0] = UInt8(ascii: "-") }
        // Two digits per division, from the end.
        var end = sign + digits
        digitPairs.withUnsafeBufferPointer { pairs in
            while v >= 10 {
                let pair = Int(v % 100) * 2
                v /= 100
                out[end - 1] = pairs[pair + 1]
                out[end - 2] = pairs[pair]
                end -= 2
            }
            if end > sign { out[end - 1] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v) }
        }
        return sign + digits
    }

    /// "00", "01", …, "99".
    private static let digitPairs: [UInt8] = (0..<100).flatMap { [UInt8(ascii: "0") + UInt8($0 / 10), UInt8(ascii: "0") + UInt8($0 % 10)] }

    /// Writes `bytes` escaped for a COPY text column at `out` (room for three times their count);
    /// returns the bytes written.
    static func escape(_ bytes: UnsafeRawBufferPointer, to out: UnsafeMutablePointer<UInt8>) -> Int {
        guard let p = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return 0 }
        let count = bytes.count
        var i = 0
        var o = 0
        while i < count {
            // Eight bytes at a time while none needs a look (control, backslash, non-ASCII).
            while i + 8 <= count {
                let word = UnsafeRawPointer(p + i).loadUnaligned(as: UInt64.self)
                guard isPlain(word) else { break }
                UnsafeMutableRawPointer(out + o).storeBytes(of: word, as: UInt64.self)
                i += 8
                o += 8
            }
            guard i < count else { break }
            let b = p[i]
            if b >= 0x20 && b < 0x80 && b != UInt8(ascii: "\\") {
                out[o] = b
                i += 1
                o += 1
                continue
            }
            if b >= 0x80 {
                let n = sequenceLength(p, i, count)
                if n > 0 {
                    (out + o).update(from: p + i, count: n)
                    i += n
                    o += n
                } else {
                    o += writeReplacement(out + o)
                    i += -n
                }
                continue
            }
            switch b {
            case UInt8(ascii: "\\"): out[o] = UInt8(ascii: "\\"); out[o + 1] = UInt8(ascii: "\\"); o += 2
            case UInt8(ascii: "\t"): out[o] = UInt8(ascii: "\\"); out[o + 1] = UInt8(ascii: "t"); o += 2
            case UInt8(ascii: "\n"): out[o] = UInt8(ascii: "\\"); out[o + 1] = UInt8(ascii: "n"); o += 2
            case UInt8(ascii: "\r"): out[o] = UInt8(ascii: "\\"); out[o + 1] = UInt8(ascii: "r"); o += 2
            case 0: o += writeReplacement(out + o)
            default: out[o] = b; o += 1   // other control characters are fine in text
            }
            i += 1
        }
        return o
    }

    /// True when no byte of `word` is a control character, a backslash or non-ASCII (the usual
    /// zero-byte tricks: a borrow reaches a byte's top bit only where the byte was below the bound).
    @inline(__always)
    static func isPlain(_ word: UInt64) -> Bool {
        let high: UInt64 = 0x8080_8080_8080_8080
        let control = (word &- 0x2020_2020_2020_2020) & ~word & high
        let slashes = word ^ 0x5C5C_5C5C_5C5C_5C5C
        let backslash = (slashes &- 0x0101_0101_0101_0101) & ~slashes & high
        return (word & high) | control | backslash == 0
    }

    @inline(__always)
    static func writeReplacement(_ out: UnsafeMutablePointer<UInt8>) -> Int {
        out[0] = 0xEF
        out[1] = 0xBF
        out[2] = 0xBD
        return 3
    }

    static let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]

    /// `bytes` escaped for a COPY text column, without a delimiter.
    static func escaped(_ bytes: [UInt8]) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: bytes.count * 3) { out, initialized in
            initialized = bytes.withUnsafeBytes { escape($0, to: out.baseAddress!) }
        }
    }

    /// Valid UTF-8 text of `bytes` (invalid sequences and NUL replaced), for bound parameters.
    static func repaired(_ bytes: [UInt8]) -> String {
        var copy = CopyText(capacity: bytes.count)
        bytes.withUnsafeBytes { raw in
            guard let p = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
            var i = 0
            var runStart = 0
            while i < raw.count {
                let b = p[i]
                if b != 0 && b < 0x80 { i += 1; continue }
                let n = b == 0 ? -1 : sequenceLength(p, i, raw.count)
                if n > 0 { i += n; continue }
                if runStart < i { copy.buffer.writeBytes(UnsafeRawBufferPointer(start: p + runStart, count: i - runStart)) }
                copy.buffer.writeBytes(replacement)
                i += -n
                runStart = i
            }
            if runStart < raw.count { copy.buffer.writeBytes(UnsafeRawBufferPointer(start: p + runStart, count: raw.count - runStart)) }
        }
        return copy.buffer.readString(length: copy.buffer.readableBytes) ?? ""
    }

    @inline(__always)
    static func sequenceLength(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Int { UTF8Sequence.length(p, i, end) }
}
