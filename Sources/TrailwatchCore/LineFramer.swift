#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Cuts a byte stream into lines: LF-terminated, CR before LF dropped, lines longer than
/// ``maxLineBytes`` cut into flagged pieces so one runaway line cannot grow memory.
public struct LineFramer: Sendable {
    /// Longest message emitted as one event; longer lines become several events flagged `.split`.
    public let maxLineBytes: Int
    /// Whether the previous emitted piece ended mid-line (the next piece is a continuation).
    public private(set) var inSplitLine = false

    public init(maxLineBytes: Int) {
        precondition(maxLineBytes > 0)
        self.maxLineBytes = maxLineBytes
    }

    /// Frames the complete lines in `buffer[from..<end]`, appending them to `batch`
    /// (whose storage must be the block `buffer` points into).
    ///
    /// - Returns: the offset where the unterminated tail starts (equal to `end` when none).
    public mutating func frame(_ base: UnsafeRawPointer, from: Int, end: Int, into batch: inout LogBatch) -> Int {
        var lineStart = from
        while lineStart < end {
            let remaining = end - lineStart
            let window = Swift.min(remaining, maxLineBytes + 1)
            guard let hit = memchr(base + lineStart, 0x0A, window) else {
                if remaining > maxLineBytes {
                    // No newline within the cap: emit a piece and keep going.
                    let length = LineFramer.pieceLength(base + lineStart, available: remaining, limit: maxLineBytes)
                    appendPiece(base, start: lineStart, length: length, endsLine: false, into: &batch)
                    lineStart += length
                    continue
                }
                return lineStart
            }
            let newline = base.distance(to: UnsafeRawPointer(hit))
            var length = newline - lineStart
            if length > 0 && base.load(fromByteOffset: newline - 1, as: UInt8.self) == 0x0D { length -= 1 }
            if length > maxLineBytes {
                // Only reachable when the CR-stripped line is exactly maxLineBytes + 1 long.
                let first = LineFramer.pieceLength(base + lineStart, available: length, limit: maxLineBytes)
                appendPiece(base, start: lineStart, length: first, endsLine: false, into: &batch)
                appendPiece(base, start: lineStart + first, length: length - first, endsLine: true, into: &batch)
            } else {
                appendPiece(base, start: lineStart, length: length, endsLine: true, into: &batch)
            }
            lineStart = newline + 1
        }
        return lineStart
    }

    /// Emits a final unterminated line (end of input), dropping a trailing CR.
    public mutating func finish(_ base: UnsafeRawPointer, from: Int, end: Int, into batch: inout LogBatch) {
        var start = from
        while end - start > maxLineBytes {
            let length = LineFramer.pieceLength(base + start, available: end - start, limit: maxLineBytes)
            appendPiece(base, start: start, length: length, endsLine: false, into: &batch)
            start += length
        }
        var length = end - start
        if length > 0 && base.load(fromByteOffset: end - 1, as: UInt8.self) == 0x0D { length -= 1 }
        if length > 0 || inSplitLine {
            appendPiece(base, start: start, length: length, endsLine: true, into: &batch)
        }
    }

    /// How much of a too-long line goes into one piece: `limit` bytes, moved back to the start of a
    /// UTF-8 character when the cut would fall inside one (so pieces put back together give the
    /// line, and none carries half a character). Bytes that are not valid UTF-8 are cut anywhere.
    public static func pieceLength(_ p: UnsafeRawPointer, available: Int, limit: Int) -> Int {
        guard available > limit, limit >= 4 else { return Swift.min(available, limit) }
        // The byte after the cut: a continuation byte means the cut may split a character.
        var cut = limit
        var back = 0
        while back < 3, p.load(fromByteOffset: cut, as: UInt8.self) & 0xC0 == 0x80 {
            cut -= 1
            back += 1
        }
        guard back > 0 else { return limit }
        // `cut` now points at the lead byte; move the cut there only if that character really
        // extends past the limit.
        let lead = p.load(fromByteOffset: cut, as: UInt8.self)
        let length = lead >= 0xF0 && lead <= 0xF4 ? 4 : lead >= 0xE0 && lead <= 0xEF ? 3 : lead >= 0xC2 && lead <= 0xDF ? 2 : 0
        return length > back && cut > 0 ? cut : limit
    }

    @inline(__always)
    private mutating func appendPiece(_ base: UnsafeRawPointer, start: Int, length: Int, endsLine: Bool, into batch: inout LogBatch) {
        var flags: EventFlags = []
        if inSplitLine { flags = [.split, .continuation] } else if !endsLine { flags = .split }
        batch.append(start: start, length: length, flags: flags)
        inSplitLine = !endsLine
    }
}
