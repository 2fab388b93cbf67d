/// Token kinds of the query language.
enum TokenKind: Equatable {
    /// A field name or keyword. `quoted` when any part was back-quoted (then it is never a keyword).
    case identifier(String, quoted: Bool)
    case string(String)
    case number(Double)
    case period(TimePeriod)
    case regex(String)
    case symbol(String)
    case end
}

/// A token with its position: `offset` indexes the query's Unicode scalars; `line`/`column` are 1-based.
struct Token {
    var kind: TokenKind
    var offset: Int
    var endOffset: Int
    var line: Int
    var column: Int

    /// How the token is named in error messages.
    var display: String {
        switch kind {
        case .identifier(let s, _): return "'\(s)'"
        case .string(let s): return "string \"\(s)\""
        case .number(let d): return "number \(QueryValue.formatNumber(d))"
        case .period(let p): return "period \(p)"
        case .regex(let r): return "regex /\(r)/"
        case .symbol(let s): return "'\(s)'"
        case .end: return "end of query"
        }
    }

    /// Lower-cased keyword text when the token is an unquoted identifier.
    var keyword: String? {
        if case .identifier(let s, false) = kind { return s.lowercased() }
        return nil
    }

    func isSymbol(_ s: String) -> Bool { kind == .symbol(s) }
}

/// Splits query text into tokens on demand. `/` starts a regex literal where an operand is expected
/// (after an operator, keyword, `(`, `,` or `[`) and is the division operator elsewhere; the parser can
/// re-read a `/` token as a regex with `relexRegex(at:)`.
struct Lexer {
    let scalars: [Unicode.Scalar]
    var position = 0
    var line = 1
    var lineStart = 0
    /// Whether the previous token ended an operand (so `/` means division).
    var previousEndsOperand = false

    init(_ text: String) { scalars = Array(text.unicodeScalars) }

    private static let keywordsBeforeOperand: Set<String> = [
        "and", "or", "not", "like", "in", "by", "as", "filter", "fields", "stats", "sort", "display", "dedup",
        "parse", "limit",
    ]

    static func isIdentifierScalar(_ c: Unicode.Scalar) -> Bool {
        c.properties.isAlphabetic || (c >= "0" && c <= "9") || c == "_" || c == "@" || c == "." || c == "$"
    }

    func error(_ message: String, at offset: Int) -> QueryParseError {
        // Recompute line/column for `offset` (errors are rare; a scan is fine).
        var line = 1, start = 0
        for i in 0..<min(offset, scalars.count) where scalars[i] == "\n" {
            line += 1
            start = i + 1
        }
        return QueryParseError(line: line, column: offset - start + 1, message: message)
    }

    mutating func skipSpaceAndComments() {
        while position < scalars.count {
            let c = scalars[position]
            if c == "\n" {
                position += 1
                line += 1
                lineStart = position
            } else if c == " " || c == "\t" || c == "\r" {
                position += 1
            } else if c == "#" {
                while position < scalars.count, scalars[position] != "\n" { position += 1 }
            } else {
                return
            }
        }
    }

    mutating func next() throws(QueryParseError) -> Token {
        skipSpaceAndComments()
        let start = position
        let column = start - lineStart + 1
        func make(_ kind: TokenKind) -> Token {
            Token(kind: kind, offset: start, endOffset: position, line: line, column: column)
        }
        guard position < scalars.count else { return make(.end) }
        let c = scalars[position]
        let token: Token
        if c == "\"" || c == "'" {
            token = make(.string(try readString(quote: c)))
        } else if c >= "0" && c <= "9" {
            token = make(try readNumberOrPeriod())
        } else if Lexer.isIdentifierScalar(c) || c == "`" {
            let (name, quoted) = try readIdentifier()
            token = make(.identifier(name, quoted: quoted))
        } else if c == "/" && !previousEndsOperand {
            token = make(.regex(try readRegex()))
        } else {
            token = make(.symbol(try readSymbol()))
        }
        switch token.kind {
        case .identifier(let s, let quoted):
            previousEndsOperand = quoted || !Lexer.keywordsBeforeOperand.contains(s.lowercased())
        case .string, .number, .period, .regex: previousEndsOperand = true
        case .symbol(let s): previousEndsOperand = s == ")" || s == "]"
        case .end: previousEndsOperand = false
        }
        var result = token
        result.endOffset = position
        return result
    }

    /// Re-reads the token starting at `offset` (a `/` symbol) as a regex literal.
    mutating func relexRegex(at offset: Int, line: Int, column: Int) throws(QueryParseError) -> Token {
        position = offset
        let body = try readRegex()
        previousEndsOperand = true
        return Token(kind: .regex(body), offset: offset, endOffset: position, line: line, column: column)
    }

    private mutating func readString(quote: Unicode.Scalar) throws(QueryParseError) -> String {
        let start = position
        position += 1
        var out = String.UnicodeScalarView()
        while position < scalars.count {
            let c = scalars[position]
            if c == quote {
                position += 1
                return String(out)
            }
            if c == "\\", position + 1 < scalars.count {
                let e = scalars[position + 1]
                switch e {
                case "n": out.append("\n")
                case "t": out.append("\t")
                case "r": out.append("\r")
                case "\\", "\"", "'": out.append(e)
                default:
                    // Unknown escapes stay as written, so regex-like text inside strings survives.
                    out.append("\\")
                    out.append(e)
                }
                position += 2
                continue
            }
            out.append(c)
            position += 1
        }
        throw error("unterminated string: expected a closing \(quote == "\"" ? "\"" : "'")", at: start)
    }

    private mutating func readRegex() throws(QueryParseError) -> String {
        let start = position
        position += 1
        var out = String.UnicodeScalarView()
        var inClass = false
        while position < scalars.count {
            let c = scalars[position]
            if c == "\n" { break }
            if c == "\\", position + 1 < scalars.count {
                if scalars[position + 1] != "/" { out.append(c) }
                out.append(scalars[position + 1])
                position += 2
                continue
            }
            if c == "[" { inClass = true } else if c == "]" { inClass = false }
            if c == "/" && !inClass {
                position += 1
                return String(out)
            }
            out.append(c)
            position += 1
        }
        throw error("unterminated regex: expected a closing /", at: start)
    }

    private mutating func readNumberOrPeriod() throws(QueryParseError) -> TokenKind {
        let start = position
        while position < scalars.count, scalars[position] >= "0", scalars[position] <= "9" { position += 1 }
        var isInteger = true
        if position + 1 < scalars.count, scalars[position] == ".", scalars[position + 1] >= "0", scalars[position + 1] <= "9" {
            isInteger = false
            position += 1
            while position < scalars.count, scalars[position] >= "0", scalars[position] <= "9" { position += 1 }
        }
        // Exponent: `e` followed by a digit, or by a sign and a digit.
        if position < scalars.count, scalars[position] == "e" || scalars[position] == "E" {
            var p = position + 1
            if p < scalars.count, scalars[p] == "+" || scalars[p] == "-" { p += 1 }
            if p < scalars.count, scalars[p] >= "0", scalars[p] <= "9" {
                isInteger = false
                position = p
                while position < scalars.count, scalars[position] >= "0", scalars[position] <= "9" { position += 1 }
            }
        }
        let text = String(String.UnicodeScalarView(scalars[start..<position]))
        // A number directly followed by letters is a period such as `5m` or `2hours`.
        if position < scalars.count, scalars[position].properties.isAlphabetic {
            let unitStart = position
            while position < scalars.count, scalars[position].properties.isAlphabetic { position += 1 }
            let unitText = String(String.UnicodeScalarView(scalars[unitStart..<position]))
            guard isInteger else {
                throw error("expected an integer before the time unit '\(unitText)'", at: start)
            }
            guard let unit = TimePeriod.Unit(spelling: unitText) else {
                throw error("unknown time unit '\(unitText)': expected ms, s, m, h, d, w, mo, q or y", at: unitStart)
            }
            guard let count = Int64(text), let period = TimePeriod.checked(count: count, unit: unit) else {
                throw error("the time period \(text)\(unitText) is out of range: it must be at least 1 and at most 10000 years", at: start)
            }
            return .period(period)
        }
        guard let value = Double(text), value.isFinite else {
            throw error("the number \(text) is out of range (larger than a 64-bit float holds)", at: start)
        }
        return .number(value)
    }

    private mutating func readIdentifier() throws(QueryParseError) -> (String, Bool) {
        var out = String.UnicodeScalarView()
        var quoted = false
        while position < scalars.count {
            let c = scalars[position]
            if c == "`" {
                let start = position
                quoted = true
                position += 1
                while position < scalars.count, scalars[position] != "`" {
                    out.append(scalars[position])
                    position += 1
                }
                guard position < scalars.count else {
                    throw error("unterminated field name: expected a closing `", at: start)
                }
                position += 1
            } else if Lexer.isIdentifierScalar(c) {
                out.append(c)
                position += 1
            } else {
                break
            }
        }
        return (String(out), quoted)
    }

    private mutating func readSymbol() throws(QueryParseError) -> String {
        let c = scalars[position]
        let next: Unicode.Scalar? = position + 1 < scalars.count ? scalars[position + 1] : nil
        let two: [(Unicode.Scalar, Unicode.Scalar)] = [("!", "="), ("<", "="), (">", "="), ("=", "~"), ("=", "="), ("<", ">")]
        if let next, two.contains(where: { $0.0 == c && $0.1 == next }) {
            position += 2
            let s = String(String.UnicodeScalarView([c, next]))
            return s == "==" ? "=" : s == "<>" ? "!=" : s
        }
        if "|,()[]+-*/%^=<>:".unicodeScalars.contains(c) {
            position += 1
            return String(c)
        }
        throw error("unexpected character '\(c)'", at: position)
    }
}
