import LinearRegex

/// The regular-expression subset CloudWatch Logs accepts between `%…%` in filter patterns.
///
/// Accepted: letters, digits, space, the symbols `: _ # = @ / ; , -`, and the operators `^ $ ? [ ] { } | \ * + .`
/// (`[a-z]` classes with ranges and `[^…]` negation, `{m,n}` with either bound optional, `\d \D \s \S \w \W`,
/// `\xhh`, `\` before an operator). Rejected like AWS rejects them: parentheses (no groups), any other symbol,
/// multi-byte characters. With no groups, `|` always splits the whole expression (`gra|ey` = "gra" or "ey").
///
/// This is only the dialect's front door: the character check AWS makes, then the project's one regex
/// engine (``RegularExpression``) in byte mode, where `.` is any byte and `\xhh` the byte hh. Matching is
/// an unanchored search, linear in the input.
struct FilterRegex: Sendable {
    /// The text between the `%` delimiters.
    let source: String
    let regex: RegularExpression

    /// Parses the bytes between `%` delimiters. `offset` is where they start in the pattern (for errors).
    init(_ body: ArraySlice<UInt8>, offset: Int) throws(PatternSyntaxError) {
        let b = Array(body)
        source = String(decoding: b, as: UTF8.self)
        guard !b.isEmpty else { throw PatternSyntaxError(offset, "empty regular expression", expected: "a regular expression between '%' signs") }
        for (k, c) in b.enumerated() {
            if c >= 0x80 { throw PatternSyntaxError(offset + k, "multi-byte characters are not allowed in a regular expression", expected: "an ASCII character or a \\xhh escape") }
            if c == UInt8(ascii: "(") || c == UInt8(ascii: ")") {
                // `\(` is an escaped operator-less symbol AWS refuses too; only \x28 / \x29 name a parenthesis.
                throw PatternSyntaxError(offset + k, "parentheses (groups) are not supported in regular expressions", expected: "\\x28 or \\x29 to match a parenthesis")
            }
            if !FilterRegex.isAllowed(c) {
                throw PatternSyntaxError(offset + k, "character '\(Character(Unicode.Scalar(c)))' is not allowed in a regular expression", expected: "letters, digits, ': _ # = @ / ; , -', operators, or a \\xhh escape")
            }
        }
        do {
            regex = try RegularExpression(bytes: b, options: [.bytes, .dotMatchesNewline])
        } catch {
            throw PatternSyntaxError(offset + error.offset, error.message, expected: error.expected)
        }
    }

    static func isAllowed(_ c: UInt8) -> Bool {
        switch c {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: ":"), UInt8(ascii: "_"), UInt8(ascii: "#"), UInt8(ascii: "="), UInt8(ascii: "@"), UInt8(ascii: "/"),
             UInt8(ascii: ";"), UInt8(ascii: ","), UInt8(ascii: "-"), UInt8(ascii: " "):
            return true
        case UInt8(ascii: "^"), UInt8(ascii: "$"), UInt8(ascii: "?"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "{"),
             UInt8(ascii: "}"), UInt8(ascii: "|"), UInt8(ascii: "\\"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "."):
            return true
        default:
            return false
        }
    }

    /// True when the expression matches somewhere in `p[start..<end]`; `^`/`$` anchor at `start`/`end`.
    func search(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        regex.matches(UnsafeRawBufferPointer(start: p + start, count: end - start))
    }

    /// Convenience over a byte array.
    func search(_ bytes: [UInt8]) -> Bool { regex.matches(bytes) }
}
