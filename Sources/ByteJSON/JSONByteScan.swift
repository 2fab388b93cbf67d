/// The byte loops every JSON scanner here shares.
@usableFromInline
enum JSONByteScan {
    /// The index of the first byte at or after `i` that is not JSON whitespace (or `end`).
    @inlinable @inline(__always)
    static func skipWhitespace(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> Int {
        var i = i
        while i < end {
            let b = p[i]
            if b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { i += 1 } else { break }
        }
        return i
    }

    /// The index of the next `"` or `\\` at or after `start` (or `end`), eight bytes at a time: strings
    /// are most of a JSON document, and this is where a scan spends its time.
    @inlinable @inline(__always)
    static func quoteOrBackslash(_ p: UnsafePointer<UInt8>, from start: Int, _ end: Int) -> Int {
        var k = start
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while k + 8 <= end {
            let word = UnsafeRawPointer(p + k).loadUnaligned(as: UInt64.self)
            let quotes = word ^ 0x2222_2222_2222_2222
            let backslashes = word ^ 0x5C5C_5C5C_5C5C_5C5C
            // A zero byte in either marks a match; the lowest flagged byte is always a real one.
            let flags = (((quotes &- ones) & ~quotes) | ((backslashes &- ones) & ~backslashes)) & highs
            if flags != 0 { return k + flags.trailingZeroBitCount / 8 }
            k += 8
        }
        while k < end {
            let b = p[k]
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "\\") { return k }
            k += 1
        }
        return end
    }

    /// The index of the closing quote of the string whose contents start at `start` (or `end` when
    /// there is none), and whether the string holds an escape.
    @inlinable @inline(__always)
    static func stringEnd(_ p: UnsafePointer<UInt8>, from start: Int, _ end: Int) -> (Int, escaped: Bool) {
        var k = start
        var escaped = false
        while true {
            k = quoteOrBackslash(p, from: k, end)
            guard k < end, p[k] != UInt8(ascii: "\"") else { return (k, escaped) }
            escaped = true
            k += 2
        }
    }
}
