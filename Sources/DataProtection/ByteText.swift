/// Byte classes and small readers the matchers share. Messages are bytes; identifiers are ASCII,
/// so a byte outside ASCII is simply "not part of an identifier".
enum ByteClass {
    /// Per byte: digit, upper, lower, and the characters some identifiers are made of.
    static let table: [UInt8] = {
        var t = [UInt8](repeating: 0, count: 256)
        for c in UInt8(ascii: "0")...UInt8(ascii: "9") { t[Int(c)] |= digit }
        for c in UInt8(ascii: "A")...UInt8(ascii: "Z") { t[Int(c)] |= upper }
        for c in UInt8(ascii: "a")...UInt8(ascii: "z") { t[Int(c)] |= lower }
        for c in Array("._%+-".utf8) { t[Int(c)] |= emailLocal }
        for c in Array("/+".utf8) { t[Int(c)] |= base64Symbol }
        return t
    }()
    static let digit: UInt8 = 1, upper: UInt8 = 2, lower: UInt8 = 4, emailLocal: UInt8 = 8, base64Symbol: UInt8 = 16
    static let letter: UInt8 = upper | lower
    static let alnum: UInt8 = digit | letter
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

    @inline(__always) func classOf(_ i: Int) -> UInt8 { ByteClass.table[Int(self[i])] }
    @inline(__always) func isDigit(_ i: Int) -> Bool { classOf(i) & ByteClass.digit != 0 }
    @inline(__always) func isAlnum(_ i: Int) -> Bool { classOf(i) & ByteClass.alnum != 0 }
    @inline(__always) func isLetter(_ i: Int) -> Bool { classOf(i) & ByteClass.letter != 0 }
    @inline(__always) func isUpper(_ i: Int) -> Bool { classOf(i) & ByteClass.upper != 0 }
    @inline(__always) func digitValue(_ i: Int) -> Int { Int(self[i]) - 48 }

    /// Position of the next byte at or after `from` whose class intersects `mask` (or `count`).
    @inline(__always) func next(_ mask: UInt8, from: Int) -> Int {
        var i = from
        while i < count && ByteClass.table[Int(p[i])] & mask == 0 { i += 1 }
        return i
    }

    /// A number-like token starts at `i`: the byte before is not a letter or digit, nor a `.`,
    /// `,` or `-` that continues a number (so `1.5` and `12-34` do not split into pieces).
    func numberStartsAt(_ i: Int) -> Bool {
        if isAlnum(i - 1) { return false }
        let before = self[i - 1]
        if (before == UInt8(ascii: ".") || before == UInt8(ascii: ",") || before == UInt8(ascii: "-") || before == UInt8(ascii: "/")) && isDigit(i - 2) { return false }
        return true
    }

    /// A number-like token ends before `i`: the byte there is not a letter or digit, nor a
    /// `.`, `,`, `-` or `/` followed by a digit.
    func numberEndsBefore(_ i: Int) -> Bool {
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

/// Digit groups separated by one separator byte (`202 555 0123`, `4111-1111-1111-1111`), the shape
/// most numeric identifiers are printed in. Read at every number in every message, so it keeps
/// its digits inline (no allocation); ``digits`` builds an array only for candidates.
struct DigitGroups {
    static let capacity = 24
    private var digitStore = SIMD32<UInt8>()
    private var groupStore = SIMD16<UInt8>()
    private(set) var digitCount = 0
    private(set) var groupCount = 0
    /// The separator used between groups (0 when there is a single group).
    var separator: UInt8 = 0
    /// One past the last digit read.
    var end = 0

    /// Reads digits from `start`, with at most `maxDigits` (≤ 23), allowing one separator from
    /// `separators` between groups (the same one throughout).
    init(_ text: ByteText, at start: Int, separators: [UInt8], maxDigits: Int) {
        var i = start
        var group = 0
        while true {
            while text.isDigit(i) && digitCount <= maxDigits {
                digitStore[digitCount] = UInt8(text.digitValue(i))
                digitCount += 1
                group += 1
                i += 1
            }
            if groupCount < 16 { groupStore[groupCount] = UInt8(truncatingIfNeeded: group) }
            groupCount += 1
            end = i
            let c = text[i]
            guard digitCount <= maxDigits, group > 0, groupCount < 16, text.isDigit(i + 1), separators.contains(c),
                  separator == 0 || separator == c else { break }
            separator = c
            group = 0
            i += 1
        }
    }

    var digits: [UInt8] { (0..<digitCount).map { digitStore[$0] } }
    var groupLengths: [Int] { (0..<min(groupCount, 16)).map { Int(groupStore[$0]) } }
    func digit(_ k: Int) -> UInt8 { digitStore[k] }

    /// True when the groups' lengths are exactly `lengths`.
    func groupsAre(_ lengths: [Int]) -> Bool {
        guard groupCount == lengths.count else { return false }
        for (k, length) in lengths.enumerated() where Int(groupStore[k]) != length { return false }
        return true
    }
}
