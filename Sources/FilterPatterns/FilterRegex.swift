/// The regular-expression subset CloudWatch Logs accepts between `%…%` in filter patterns.
///
/// Accepted: letters, digits, space, the symbols `: _ # = @ / ; , -`, and the operators `^ $ ? [ ] { } | \ * + .`
/// (`[a-z]` classes with ranges and `[^…]` negation, `{m,n}` with either bound optional, `\d \D \s \S \w \W`,
/// `\xhh`, `\` before an operator). Rejected like AWS rejects them: parentheses (no groups), any other symbol,
/// multi-byte characters. With no groups, `|` always splits the whole expression (`gra|ey` = "gra" or "ey").
///
/// Matching is an unanchored search over bytes (`.` matches one byte) simulated as a Thompson NFA: time is
/// linear in the input for a given expression, there is no backtracking and no recursion.
struct FilterRegex: Sendable {
    /// The text between the `%` delimiters.
    let source: String
    let nodes: [Node]
    let starts: [Int]
    /// Sets referenced by consuming nodes.
    let sets: [ByteSet]
    /// Non-nil when the whole expression is a plain literal, searched with memmem.
    let literal: [UInt8]?

    enum Node: Sendable {
        case one(Int)        // consume one byte of sets[i]
        case optional(Int)   // consume zero or one
        case star(Int)       // consume zero or more
        case lineStart
        case lineEnd
        case accept
    }

    /// Upper bound on NFA size after expanding `{m,n}`; keeps matching cost bounded.
    static let maximumNodes = 2_000

    /// Parses the bytes between `%` delimiters. `offset` is where they start in the pattern (for errors).
    init(_ body: ArraySlice<UInt8>, offset: Int) throws(PatternSyntaxError) {
        let b = Array(body)
        source = String(decoding: b, as: UTF8.self)
        guard !b.isEmpty else { throw PatternSyntaxError(offset, "empty regular expression", expected: "a regular expression between '%' signs") }
        for (k, c) in b.enumerated() {
            if c >= 0x80 { throw PatternSyntaxError(offset + k, "multi-byte characters are not allowed in a regular expression", expected: "an ASCII character or a \\xhh escape") }
            if c == UInt8(ascii: "(") || c == UInt8(ascii: ")") {
                throw PatternSyntaxError(offset + k, "parentheses (groups) are not supported in regular expressions", expected: "\\x28 or \\x29 to match a parenthesis")
            }
            if !FilterRegex.isAllowed(c) {
                throw PatternSyntaxError(offset + k, "character '\(Character(Unicode.Scalar(c)))' is not allowed in a regular expression", expected: "letters, digits, ': _ # = @ / ; , -', operators, or a \\xhh escape")
            }
        }
        var nodes: [Node] = []
        var starts: [Int] = []
        var sets: [ByteSet] = []
        var i = 0
        var isLiteral = true
        var literalBytes: [UInt8] = []
        var alternatives = 0
        starts.append(0)
        while true {
            // Parse one alternative up to '|' or end.
            var atomCount = 0
            while i < b.count && b[i] != UInt8(ascii: "|") {
                let c = b[i]
                let atomOffset = offset + i
                if c == UInt8(ascii: "^") { nodes.append(.lineStart); i += 1; isLiteral = false; continue }
                if c == UInt8(ascii: "$") { nodes.append(.lineEnd); i += 1; isLiteral = false; continue }
                if c == UInt8(ascii: "*") || c == UInt8(ascii: "+") || c == UInt8(ascii: "?") || c == UInt8(ascii: "{") {
                    throw PatternSyntaxError(atomOffset, "nothing to repeat before '\(Character(Unicode.Scalar(c)))'", expected: "a character, '.', a class or an escape before a repetition")
                }
                var set: ByteSet
                var literalByte: UInt8? = nil
                if c == UInt8(ascii: ".") {
                    set = ByteSet.all; i += 1
                } else if c == UInt8(ascii: "[") {
                    (set, i) = try FilterRegex.parseClass(b, i, offset: offset)
                } else if c == UInt8(ascii: "\\") {
                    let (s, next, lit) = try FilterRegex.parseEscape(b, i, offset: offset)
                    set = s; i = next; literalByte = lit
                } else {
                    set = ByteSet(byte: c); literalByte = c; i += 1
                }
                sets.append(set)
                let setIndex = sets.count - 1
                atomCount += 1
                // Quantifier?
                var minCount = 1
                var maxCount: Int? = 1
                if i < b.count {
                    switch b[i] {
                    case UInt8(ascii: "?"): minCount = 0; maxCount = 1; i += 1
                    case UInt8(ascii: "*"): minCount = 0; maxCount = nil; i += 1
                    case UInt8(ascii: "+"): minCount = 1; maxCount = nil; i += 1
                    case UInt8(ascii: "{"): (minCount, maxCount, i) = try FilterRegex.parseBraces(b, i, offset: offset)
                    default: break
                    }
                    if i < b.count, [UInt8(ascii: "?"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "{")].contains(b[i]),
                       minCount != 1 || maxCount != 1 {
                        throw PatternSyntaxError(offset + i, "a repetition cannot follow another repetition", expected: "a character or the end of the expression")
                    }
                }
                if minCount == 1 && maxCount == 1, let lit = literalByte { literalBytes.append(lit) } else { isLiteral = false }
                for _ in 0..<minCount { nodes.append(.one(setIndex)) }
                if let maxCount {
                    for _ in minCount..<maxCount { nodes.append(.optional(setIndex)) }
                } else {
                    nodes.append(.star(setIndex))
                }
                if nodes.count > FilterRegex.maximumNodes {
                    throw PatternSyntaxError(atomOffset, "regular expression is too large after expanding repetitions", expected: "smaller {m,n} bounds")
                }
            }
            _ = atomCount
            nodes.append(.accept)
            alternatives += 1
            if i < b.count {
                i += 1 // skip '|'
                starts.append(nodes.count)
                isLiteral = false
            } else {
                break
            }
        }
        self.nodes = nodes
        self.starts = starts
        self.sets = sets
        self.literal = (isLiteral && alternatives == 1 && !literalBytes.isEmpty) ? literalBytes : nil
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

    /// `\d`, `\xhh`, `\.` … starting at the backslash. Returns the set, the next index and, for escapes of a
    /// single character, that byte.
    static func parseEscape(_ b: [UInt8], _ at: Int, offset: Int) throws(PatternSyntaxError) -> (ByteSet, Int, UInt8?) {
        let i = at + 1
        guard i < b.count else { throw PatternSyntaxError(offset + at, "regular expression ends with '\\'", expected: "an escaped character") }
        let c = b[i]
        switch c {
        case UInt8(ascii: "d"): return (ByteSet.digits, i + 1, nil)
        case UInt8(ascii: "D"): return (ByteSet.digits.inverted, i + 1, nil)
        case UInt8(ascii: "s"): return (ByteSet.space, i + 1, nil)
        case UInt8(ascii: "S"): return (ByteSet.space.inverted, i + 1, nil)
        case UInt8(ascii: "w"): return (ByteSet.word, i + 1, nil)
        case UInt8(ascii: "W"): return (ByteSet.word.inverted, i + 1, nil)
        case UInt8(ascii: "x"):
            guard i + 2 < b.count, let h = hexValue(b[i + 1]), let l = hexValue(b[i + 2]) else {
                throw PatternSyntaxError(offset + at, "invalid \\x escape", expected: "two hexadecimal digits after \\x")
            }
            let byte = h << 4 | l
            return (ByteSet(byte: byte), i + 3, byte)
        case UInt8(ascii: "t"): return (ByteSet(byte: 0x09), i + 1, 0x09)
        case UInt8(ascii: "n"): return (ByteSet(byte: 0x0A), i + 1, 0x0A)
        case UInt8(ascii: "r"): return (ByteSet(byte: 0x0D), i + 1, 0x0D)
        default:
            let isLetterOrDigit = (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
            if isLetterOrDigit {
                throw PatternSyntaxError(offset + at, "unsupported escape '\\\(Character(Unicode.Scalar(c)))'", expected: "\\d \\D \\s \\S \\w \\W \\xhh or an escaped operator")
            }
            return (ByteSet(byte: c), i + 1, c)
        }
    }

    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// `[...]` starting at `[`.
    static func parseClass(_ b: [UInt8], _ at: Int, offset: Int) throws(PatternSyntaxError) -> (ByteSet, Int) {
        var i = at + 1
        var negate = false
        if i < b.count && b[i] == UInt8(ascii: "^") { negate = true; i += 1 }
        var set = ByteSet()
        var first = true
        while true {
            guard i < b.count else { throw PatternSyntaxError(offset + at, "unterminated character class", expected: "']'") }
            let c = b[i]
            if c == UInt8(ascii: "]") && !first { i += 1; break }
            first = false
            var lowByte: UInt8
            if c == UInt8(ascii: "\\") {
                let (s, next, lit) = try parseEscape(b, i, offset: offset)
                i = next
                guard let lit else { set.formUnion(s); continue }
                lowByte = lit
            } else {
                lowByte = c; i += 1
            }
            // Range a-z (a '-' before ']' is literal).
            if i + 1 < b.count && b[i] == UInt8(ascii: "-") && b[i + 1] != UInt8(ascii: "]") {
                var highByte: UInt8
                if b[i + 1] == UInt8(ascii: "\\") {
                    let (_, next, lit) = try parseEscape(b, i + 1, offset: offset)
                    guard let lit else { throw PatternSyntaxError(offset + i + 1, "a class like \\d cannot end a range", expected: "a character") }
                    highByte = lit; i = next
                } else {
                    highByte = b[i + 1]; i += 2
                }
                guard lowByte <= highByte else { throw PatternSyntaxError(offset + i - 1, "character range is out of order", expected: "a range whose first character is not after its last") }
                for x in lowByte...highByte { set.insert(x) }
            } else {
                set.insert(lowByte)
            }
        }
        return (negate ? set.inverted : set, i)
    }

    /// `{m}`, `{m,}`, `{,n}`, `{m,n}` starting at `{`.
    static func parseBraces(_ b: [UInt8], _ at: Int, offset: Int) throws(PatternSyntaxError) -> (Int, Int?, Int) {
        var i = at + 1
        func number(_ i: inout Int) -> Int? {
            var n = 0
            var any = false
            while i < b.count, b[i] >= UInt8(ascii: "0"), b[i] <= UInt8(ascii: "9") {
                if n < 100_000 { n = n * 10 + Int(b[i] - UInt8(ascii: "0")) }
                any = true
                i += 1
            }
            return any ? n : nil
        }
        let low = number(&i)
        var high: Int?
        if i < b.count && b[i] == UInt8(ascii: ",") {
            i += 1
            high = number(&i)
            guard low != nil || high != nil else { throw PatternSyntaxError(offset + at, "repetition needs a bound", expected: "{m}, {m,}, {,n} or {m,n}") }
        } else {
            guard low != nil else { throw PatternSyntaxError(offset + at, "invalid repetition", expected: "{m}, {m,}, {,n} or {m,n}") }
            high = low
        }
        guard i < b.count, b[i] == UInt8(ascii: "}") else { throw PatternSyntaxError(offset + i, "unterminated repetition", expected: "'}'") }
        let m = low ?? 0
        if let h = high, h < m { throw PatternSyntaxError(offset + at, "repetition bounds are out of order", expected: "{m,n} with m ≤ n") }
        if m > maximumNodes || (high ?? 0) > maximumNodes {
            throw PatternSyntaxError(offset + at, "repetition bound is too large", expected: "a bound up to \(maximumNodes)")
        }
        return (m, high, i + 1)
    }

    /// True when the expression matches somewhere in `p[start..<end]`; `^`/`$` anchor at `start`/`end`.
    func search(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        if let literal {
            return ByteSearch.find(literal, in: p, start, end) != nil
        }
        let n = nodes.count
        return withUnsafeTemporaryAllocation(of: Bool.self, capacity: 2 * n) { buf -> Bool in
            let base = buf.baseAddress!
            var cur = base
            var next = base + n
            for k in 0..<n { cur[k] = false; next[k] = false }
            var pos = start
            while true {
                // Start a new attempt at every position (unanchored search).
                for s in starts { cur[s] = true }
                // Epsilon closure: edges only go forward, so one ascending pass is enough.
                var any = false
                for s in 0..<n where cur[s] {
                    switch nodes[s] {
                    case .accept: return true
                    case .optional, .star: cur[s + 1] = true
                    case .lineStart: if pos == start { cur[s + 1] = true }
                    case .lineEnd: if pos == end { cur[s + 1] = true }
                    case .one: break
                    }
                    any = true
                }
                guard pos < end else { return false }
                _ = any
                let byte = p[pos]
                for s in 0..<n where cur[s] {
                    cur[s] = false
                    switch nodes[s] {
                    case .one(let k), .optional(let k): if sets[k].contains(byte) { next[s + 1] = true }
                    case .star(let k): if sets[k].contains(byte) { next[s] = true }
                    default: break
                    }
                }
                swap(&cur, &next)
                pos += 1
            }
        }
    }

    /// Convenience over a byte array.
    func search(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { buf in
            guard let base = buf.baseAddress else {
                // Empty subject: only expressions that can match the empty string at position 0.
                let one: [UInt8] = [0]
                return one.withUnsafeBufferPointer { search($0.baseAddress!, 0, 0) }
            }
            return search(base, 0, buf.count)
        }
    }
}

/// A set of bytes as a 256-bit bitmap.
struct ByteSet: Sendable, Equatable {
    var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0, w3: UInt64 = 0

    init() {}
    init(byte: UInt8) { insert(byte) }

    mutating func insert(_ b: UInt8) {
        let bit = UInt64(1) << UInt64(b & 63)
        switch b >> 6 {
        case 0: w0 |= bit
        case 1: w1 |= bit
        case 2: w2 |= bit
        default: w3 |= bit
        }
    }

    @inline(__always)
    func contains(_ b: UInt8) -> Bool {
        let bit = UInt64(1) << UInt64(b & 63)
        switch b >> 6 {
        case 0: return w0 & bit != 0
        case 1: return w1 & bit != 0
        case 2: return w2 & bit != 0
        default: return w3 & bit != 0
        }
    }

    mutating func formUnion(_ o: ByteSet) { w0 |= o.w0; w1 |= o.w1; w2 |= o.w2; w3 |= o.w3 }
    var inverted: ByteSet { var s = ByteSet(); s.w0 = ~w0; s.w1 = ~w1; s.w2 = ~w2; s.w3 = ~w3; return s }

    static let all = ByteSet().inverted
    static let digits: ByteSet = { var s = ByteSet(); for c in UInt8(ascii: "0")...UInt8(ascii: "9") { s.insert(c) }; return s }()
    /// `\s`: space, tab, newline, carriage return, form feed, vertical tab.
    static let space: ByteSet = { var s = ByteSet(); for c: UInt8 in [0x20, 0x09, 0x0A, 0x0D, 0x0C, 0x0B] { s.insert(c) }; return s }()
    static let word: ByteSet = {
        var s = digits
        for c in UInt8(ascii: "a")...UInt8(ascii: "z") { s.insert(c) }
        for c in UInt8(ascii: "A")...UInt8(ascii: "Z") { s.insert(c) }
        s.insert(UInt8(ascii: "_"))
        return s
    }()
}
