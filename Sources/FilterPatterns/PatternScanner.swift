/// Byte cursor over a pattern's text, shared by the term, JSON and space-delimited parsers.
struct PatternScanner {
    let bytes: [UInt8]
    var i: Int

    init(_ bytes: [UInt8], at start: Int = 0) {
        self.bytes = bytes
        self.i = start
    }

    var atEnd: Bool { i >= bytes.count }
    var peek: UInt8? { i < bytes.count ? bytes[i] : nil }

    static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0B || b == 0x0C }

    mutating func skipSpaces() {
        while i < bytes.count && PatternScanner.isSpace(bytes[i]) { i += 1 }
    }

    func startsWith(_ text: StaticString) -> Bool {
        let n = text.utf8CodeUnitCount
        guard i + n <= bytes.count else { return false }
        let t = text.utf8Start
        for k in 0..<n where bytes[i + k] != t[k] { return false }
        return true
    }

    /// A keyword: `text` followed by a byte that cannot continue a word.
    func startsWithKeyword(_ text: StaticString) -> Bool {
        guard startsWith(text) else { return false }
        let after = i + text.utf8CodeUnitCount
        guard after < bytes.count else { return true }
        let b = bytes[after]
        return !(isWordByte(b))
    }

    func isWordByte(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
            || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9")) || b == UInt8(ascii: "_")
    }

    /// A double-quoted string starting at the quote; `\"` and `\\` are escapes, other backslashes are literal.
    mutating func quoted() throws(PatternSyntaxError) -> [UInt8] {
        let open = i
        i += 1
        var out: [UInt8] = []
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\\"), i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "\"") || bytes[i + 1] == UInt8(ascii: "\\") {
                out.append(bytes[i + 1]); i += 2; continue
            }
            if b == UInt8(ascii: "\"") { i += 1; return out }
            out.append(b); i += 1
        }
        throw PatternSyntaxError(open, "unterminated quoted string", expected: "a closing '\"'")
    }

    /// A `%regex%` starting at the first `%`.
    mutating func regex() throws(PatternSyntaxError) -> FilterRegex {
        let open = i
        i += 1
        let bodyStart = i
        while i < bytes.count && bytes[i] != UInt8(ascii: "%") { i += 1 }
        guard i < bytes.count else { throw PatternSyntaxError(open, "unterminated regular expression", expected: "a closing '%'") }
        let body = bytes[bodyStart..<i]
        i += 1
        return try FilterRegex(body, offset: bodyStart)
    }

    /// A comparison operator (`!= <= >= = < >`), or nil (nothing consumed).
    mutating func comparisonOperator() -> ComparisonOperator? {
        for (text, op) in [("!=", ComparisonOperator.notEqual), ("<=", .lessOrEqual), (">=", .greaterOrEqual),
                           ("=", .equal), ("<", .less), (">", .greater)] {
            let bytes = Array(text.utf8)
            if i + bytes.count <= self.bytes.count && Array(self.bytes[i..<(i + bytes.count)]) == bytes {
                i += bytes.count
                return op
            }
        }
        return nil
    }

    /// The value after an operator: a quoted string, a `%regex%` (counted in `regexes`), or a bare
    /// value ending at a blank, `&&`, `||` or one of `stopAt`; ordering operators need a number.
    mutating func comparisonValue(for op: ComparisonOperator, stopAt: [UInt8], regexes: inout Int) throws(PatternSyntaxError) -> ValueLiteral {
        skipSpaces()
        let valueStart = i
        guard let b = peek else { throw PatternSyntaxError(i, "missing value after the operator", expected: "a value") }
        let value: ValueLiteral
        if b == UInt8(ascii: "\"") {
            value = PatternValues.stringLiteral(try quoted())
        } else if b == UInt8(ascii: "%") {
            value = .regex(try regex())
            regexes += 1
        } else {
            let text = PatternValues.bareValue(&self, stopAt: stopAt)
            guard !text.isEmpty else { throw PatternSyntaxError(valueStart, "missing value after the operator", expected: "a value") }
            value = PatternValues.bareLiteral(text)
        }
        switch (op, value) {
        case (.equal, _), (.notEqual, _), (_, .number): return value
        default: throw PatternSyntaxError(valueStart, "ordering comparisons need a number", expected: "a number such as 100, -2.5 or 1e3")
        }
    }
}
