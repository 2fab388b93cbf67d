/// UTF-8 validation with replacement, shared by the parser, the lazy lookup and the writer.
///
/// Invalid sequences are replaced with U+FFFD following the Unicode "maximal subpart" practice: each maximal
/// prefix of a would-be sequence that cannot be completed becomes one replacement character.
@usableFromInline
enum UTF8Repair {
    /// The UTF-8 bytes of U+FFFD.
    @usableFromInline static let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]

    /// Length of the valid UTF-8 sequence starting at `p[i]` (1...4), or `-n` when the bytes `p[i..<i+n]` are the
    /// maximal invalid subpart (n ≥ 1) that must be replaced by one U+FFFD. `end` bounds the read.
    @inlinable
    static func sequenceLength(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        let b0 = p[i]
        if b0 < 0x80 { return 1 }
        var need: Int
        var lo: UInt8 = 0x80
        var hi: UInt8 = 0xBF
        switch b0 {
        case 0xC2...0xDF: need = 1
        case 0xE0: need = 2; lo = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: need = 2
        case 0xED: need = 2; hi = 0x9F
        case 0xF0: need = 3; lo = 0x90
        case 0xF1...0xF3: need = 3
        case 0xF4: need = 3; hi = 0x8F
        default: return -1
        }
        var j = i + 1
        var first = true
        while need > 0 {
            guard j < end else { return -(j - i) }
            let b = p[j]
            if first {
                guard b >= lo && b <= hi else { return -(j - i) }
                first = false
            } else {
                guard b >= 0x80 && b <= 0xBF else { return -(j - i) }
            }
            j += 1
            need -= 1
        }
        return j - i
    }

    /// Appends `p[start..<end]` to `out`, replacing invalid UTF-8 with U+FFFD.
    @inlinable
    static func appendRepaired(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, to out: inout [UInt8]) {
        var i = start
        var runStart = start
        while i < end {
            if p[i] < 0x80 { i += 1; continue }
            let n = sequenceLength(p, i, end)
            if n > 0 { i += n; continue }
            if runStart < i { out.append(contentsOf: UnsafeBufferPointer(start: p + runStart, count: i - runStart)) }
            out.append(contentsOf: replacement)
            i += -n
            runStart = i
        }
        if runStart < end { out.append(contentsOf: UnsafeBufferPointer(start: p + runStart, count: end - runStart)) }
    }

    /// True when `p[start..<end]` is valid UTF-8.
    @inlinable
    static func isValid(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        var i = start
        while i < end {
            if p[i] < 0x80 { i += 1; continue }
            let n = sequenceLength(p, i, end)
            if n < 0 { return false }
            i += n
        }
        return true
    }
}

/// UTF-8 sequence checks for byte loops in other modules (the PostgreSQL COPY encoder), the same
/// rules as the parser's.
public enum UTF8Sequence {
    /// Length of the valid sequence at `p[i]` (1...4), or `-n` for a maximal invalid subpart of n bytes.
    @inlinable
    public static func length(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Int { UTF8Repair.sequenceLength(p, i, end) }
}
