import ByteJSON
import NIOCore

/// Rows in PostgreSQL's COPY text format, written byte by byte (hand-written: this is the
/// ingest hot path, one pass per message). Columns are tab-separated, rows end with a newline;
/// backslash, tab, newline and carriage return are escaped; invalid UTF-8 and NUL bytes — which
/// a `text` column cannot hold — become U+FFFD, as everywhere else in trailwatch.
///
/// (postgres-nio's `copyFrom` speaks the text format only; binary COPY would need the driver's
/// internals. Text costs one escaping pass here and number parsing on the server.)
struct CopyText {
    private(set) var buffer: NIOCore.ByteBuffer
    private(set) var isEmpty = true

    init(capacity: Int) {
        buffer = ByteBufferAllocator().buffer(capacity: max(capacity, 256))
    }

    private mutating func end(_ last: Bool) {
        buffer.writeInteger(last ? UInt8(ascii: "\n") : UInt8(ascii: "\t"))
        isEmpty = false
    }

    mutating func number(_ value: Int64, last: Bool = false) {
        if value == 0 {
            buffer.writeInteger(UInt8(ascii: "0"))
        } else {
            var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
            var count = 0
            var v = value.magnitude
            withUnsafeMutableBytes(of: &digits) { raw in
                while v > 0 {
                    raw[23 - count] = UInt8(ascii: "0") + UInt8(v % 10)
                    v /= 10
                    count += 1
                }
                if value < 0 { raw[23 - count] = UInt8(ascii: "-"); count += 1 }
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: raw[(24 - count)...]))
            }
        }
        end(last)
    }

    mutating func null(last: Bool = false) {
        buffer.writeInteger(UInt8(ascii: "\\"))
        buffer.writeInteger(UInt8(ascii: "N"))
        end(last)
    }

    mutating func text(_ bytes: [UInt8], last: Bool = false) {
        bytes.withUnsafeBytes { text($0, last: last) }
    }

    mutating func text(_ bytes: UnsafeRawBufferPointer, last: Bool = false) {
        buffer.reserveCapacity(minimumWritableBytes: bytes.count + 16)
        guard let p = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { end(last); return }
        let count = bytes.count
        var runStart = 0
        var i = 0
        @inline(__always) func flush(_ upTo: Int) {
            if runStart < upTo { buffer.writeBytes(UnsafeRawBufferPointer(start: p + runStart, count: upTo - runStart)) }
        }
        while i < count {
            let b = p[i]
            if b >= 0x20 && b < 0x80 && b != UInt8(ascii: "\\") { i += 1; continue }
            if b >= 0x80 {
                let n = Self.sequenceLength(p, i, count)
                if n > 0 { i += n; continue }
                flush(i)
                buffer.writeBytes(Self.replacement)
                i += -n
                runStart = i
                continue
            }
            flush(i)
            switch b {
            case UInt8(ascii: "\\"): buffer.writeBytes([UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\t"): buffer.writeBytes([UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case UInt8(ascii: "\n"): buffer.writeBytes([UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): buffer.writeBytes([UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0: buffer.writeBytes(Self.replacement)
            default: buffer.writeInteger(b)   // other control characters are fine in text
            }
            i += 1
            runStart = i
        }
        flush(count)
        end(last)
    }

    static let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]

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
