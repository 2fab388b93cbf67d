/// Byte classes and small readers the matchers share. Messages are bytes; identifiers are ASCII,
/// so a byte outside ASCII is simply "not part of an identifier".
enum ByteClass {
    static let digit: UInt8 = 1, upper: UInt8 = 2, lower: UInt8 = 4, emailLocal: UInt8 = 8, base64Symbol: UInt8 = 16
    static let letter: UInt8 = 6    // upper | lower, as a literal so it needs no initialisation
    static let alnum: UInt8 = 7     // digit | letter

    /// The classes of byte `c`, by arithmetic: a lookup table would be a global, and reading a
    /// global in the per-byte loops costs a once-check every time.
    @inline(__always) static func of(_ c: UInt8) -> UInt8 {
        var r: UInt8 = 0
        if c &- 48 < 10 { r |= digit }
        if c &- 65 < 26 { r |= upper }
        if c &- 97 < 26 { r |= lower }
        if c == 0x2E || c == 0x5F || c == 0x25 || c == 0x2B || c == 0x2D { r |= emailLocal }   // . _ % + -
        if c == 0x2F || c == 0x2B { r |= base64Symbol }                                        // / +
        return r
    }
}

/// A message being scanned: bounds-checked reads that return 0 outside the message, so a matcher
/// can look one byte past either end without testing.
struct ByteText {
    let p: UnsafePointer<UInt8>
    let count: Int

    init?(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return nil }
        p = base.assumingMemoryBound(to: UInt8.self)
        count = bytes.count
    }

    @inline(__always) subscript(_ i: Int) -> UInt8 { i >= 0 && i < count ? p[i] : 0 }

    @inline(__always) func classOf(_ i: Int) -> UInt8 { ByteClass.of(self[i]) }
    @inline(__always) func isDigit(_ i: Int) -> Bool { self[i] &- 48 < 10 }
    @inline(__always) func isAlnum(_ i: Int) -> Bool { let c = self[i]; return c &- 48 < 10 || (c | 0x20) &- 97 < 26 }
    @inline(__always) func isLetter(_ i: Int) -> Bool { (self[i] | 0x20) &- 97 < 26 }
    @inline(__always) func isUpper(_ i: Int) -> Bool { self[i] &- 65 < 26 }
    @inline(__always) func digitValue(_ i: Int) -> Int { Int(self[i]) - 48 }

    /// True when the `n` bytes at `i` are all digits.
    @inline(__always) func allDigits(_ i: Int, _ n: Int) -> Bool {
        guard i >= 0, i + n <= count else { return false }
        for k in i..<(i + n) where p[k] &- 48 >= 10 { return false }
        return true
    }

    /// Position of the next digit at or after `from` (or `count`).
    @inline(__always) func nextDigit(from: Int) -> Int {
        var i = from
        while i < count && p[i] &- 48 >= 10 { i += 1 }
        return i
    }

    /// Position of the next byte at or after `from` whose class intersects `mask` (or `count`).
    @inline(__always) func next(_ mask: UInt8, from: Int) -> Int {
        var i = from
        while i < count && ByteClass.of(p[i]) & mask == 0 { i += 1 }
        return i
    }

    /// A number-like token starts at `i`: the byte before is not a letter or digit, nor a `.`,
    /// `,` or `-` that continues a number (so `1.5` and `12-34` do not split into pieces).
    @inline(__always) func numberStartsAt(_ i: Int) -> Bool {
        if isAlnum(i - 1) { return false }
        let before = self[i - 1]
        if (before == UInt8(ascii: ".") || before == UInt8(ascii: ",") || before == UInt8(ascii: "-") || before == UInt8(ascii: "/")) && isDigit(i - 2) { return false }
        return true
    }

    /// A number-like token ends before `i`: the byte there is not a letter or digit, nor a
    /// `.`, `,`, `-` or `/` followed by a digit.
    @inline(__always) func numberEndsBefore(_ i: Int) -> Bool {
        if isAlnum(i) { return false }
        let after = self[i]
        if (after == UInt8(ascii: ".") || after == UInt8(ascii: ",") || after == UInt8(ascii: "-") || after == UInt8(ascii: "/")) && isDigit(i + 1) { return false }
        return true
    }

    /// True when the ASCII text at `i` equals `word`, ignoring case.
    func hasWord(_ word: [UInt8], at i: Int) -> Bool {
        guard i >= 0, i + word.count <= count else { return false }
        for k in 0..<word.count where p[i + k] | 0x20 != word[k] | 0x20 { return false }
        return true
    }

    /// Reads `n` digits at `i` as a number, or nil when one of them is not a digit.
    func digits(_ i: Int, _ n: Int) -> Int? {
        var v = 0
        for k in 0..<n {
            guard isDigit(i + k) else { return nil }
            v = v * 10 + digitValue(i + k)
        }
        return v
    }
}

/// Which bytes may separate digit groups.
struct Separators: OptionSet, Sendable {
    let rawValue: UInt8
    static let space = Separators(rawValue: 1), dash = Separators(rawValue: 2), dot = Separators(rawValue: 4)

    @inline(__always) func contains(byte c: UInt8) -> Bool {
        (c == 0x20 && contains(.space)) || (c == 0x2D && contains(.dash)) || (c == 0x2E && contains(.dot))
    }
}

/// Digit groups separated by one separator byte (`202 555 0123`, `4111-1111-1111-1111`), the shape
/// most numeric identifiers are printed in. Read at every number in every message, so it keeps
/// only positions and group lengths (no allocation); ``digits`` reads the digits for candidates.
struct DigitGroups {
    let text: ByteText
    let start: Int
    private(set) var digitCount = 0
    private(set) var groupCount = 0
    /// Group lengths, four bits each (the first 16 groups).
    private var packedGroups: UInt64 = 0
    /// The separator used between groups (0 when there is a single group).
    var separator: UInt8 = 0
    /// One past the last digit read.
    var end = 0

    /// Reads digits from `start`, with at most `maxDigits` + 1, allowing one of `separators`
    /// between groups (the same one throughout).
    init(_ text: ByteText, at start: Int, separators: Separators, maxDigits: Int) {
        self.text = text
        self.start = start
        var i = start
        while true {
            var group = 0
            while text.isDigit(i) && digitCount <= maxDigits {
                digitCount += 1
                group += 1
                i += 1
            }
            if groupCount < 16 { packedGroups |= UInt64(min(group, 15)) << (4 * UInt64(groupCount)) }
            groupCount += 1
            end = i
            let c = text[i]
            guard digitCount <= maxDigits, group > 0, groupCount < 16, separators.contains(byte: c), text.isDigit(i + 1),
                  separator == 0 || separator == c else { break }
            separator = c
            i += 1
        }
    }

    /// The digits read (for candidates only: this allocates).
    var digits: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(digitCount)
        for i in start..<end where text.isDigit(i) { out.append(UInt8(text.digitValue(i))) }
        return out
    }

    func groupLength(_ k: Int) -> Int { Int((packedGroups >> (4 * UInt64(k))) & 15) }
    var groupLengths: [Int] { (0..<min(groupCount, 16)).map(groupLength) }

    /// True when the groups' lengths are exactly `lengths`.
    func groupsAre(_ lengths: [Int]) -> Bool {
        guard groupCount == lengths.count else { return false }
        for (k, length) in lengths.enumerated() where groupLength(k) != length { return false }
        return true
    }
}
