/// Why a regular expression was refused: what, where (a byte offset into the pattern's UTF-8) and
/// what would have been accepted there.
public struct RegexSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Byte offset into the pattern where the problem starts.
    public var offset: Int
    public var message: String
    public var expected: String?

    public init(_ offset: Int, _ message: String, expected: String? = nil) {
        self.offset = offset
        self.message = message
        self.expected = expected
    }

    /// `at character N: message (expected …)`, N counted from 1 in bytes.
    public var description: String {
        "at character \(offset + 1): \(message)" + (expected.map { " (expected \($0))" } ?? "")
    }
}

/// Compile-time choices that change what the syntax means.
public struct RegexOptions: OptionSet, Sendable, Hashable {
    public let rawValue: Int
    public init(rawValue: Int) { self.rawValue = rawValue }

    /// `(?i)`: letters match regardless of case (ASCII and Unicode simple case mappings).
    public static let caseInsensitive = RegexOptions(rawValue: 1 << 0)
    /// `(?m)`: `^` and `$` also match after and before every `\n`.
    public static let multiLine = RegexOptions(rawValue: 1 << 1)
    /// `(?s)`: `.` also matches `\n`.
    public static let dotMatchesNewline = RegexOptions(rawValue: 1 << 2)
    /// Bytes instead of UTF-8 characters: `.` and classes match one byte, `\xhh` is the byte hh. The
    /// CloudWatch filter-pattern dialect uses this.
    public static let bytes = RegexOptions(rawValue: 1 << 3)
}

/// Zero-width assertions. Look-behind needs only the previous byte and look-ahead only the next
/// one, which is what keeps them inside a linear-time automaton.
enum RegexAssertion: UInt8, Sendable {
    /// `\A`, or `^` without `(?m)`.
    case textStart
    /// `\z`, or `$` without `(?m)`.
    case textEnd
    /// `^` with `(?m)`: at the start or after `\n`.
    case lineStart
    /// `$` with `(?m)`: at the end or before `\n`.
    case lineEnd
    /// `\b` (ASCII word characters).
    case wordBoundary
    /// `\B`.
    case notWordBoundary
}

/// A set of characters as sorted, disjoint, non-adjacent closed ranges of Unicode scalars (bytes
/// in byte mode).
struct CharRanges: Sendable, Equatable {
    var ranges: [ClosedRange<UInt32>] = []

    init() {}
    init(_ ranges: [ClosedRange<UInt32>]) { self.ranges = ranges; normalize() }

    static let maxScalar: UInt32 = 0x10FFFF

    mutating func add(_ r: ClosedRange<UInt32>) { ranges.append(r) }
    mutating func add(_ c: UInt32) { ranges.append(c...c) }
    mutating func add(_ other: CharRanges) { ranges.append(contentsOf: other.ranges) }

    mutating func normalize() {
        guard ranges.count > 1 else { return }
        ranges.sort { $0.lowerBound < $1.lowerBound }
        var out: [ClosedRange<UInt32>] = []
        out.reserveCapacity(ranges.count)
        for r in ranges {
            if let last = out.last, r.lowerBound <= last.upperBound &+ 1 {
                out[out.count - 1] = last.lowerBound...max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        ranges = out
    }

    /// The complement within `0...maximum`.
    func inverted(maximum: UInt32) -> CharRanges {
        var out: [ClosedRange<UInt32>] = []
        var next: UInt32 = 0
        for r in ranges {
            if r.lowerBound > next { out.append(next...(r.lowerBound - 1)) }
            if r.upperBound >= maximum { next = maximum &+ 1; break }
            next = r.upperBound + 1
        }
        if next <= maximum { out.append(next...maximum) }
        var c = CharRanges()
        c.ranges = out
        return c
    }

    func contains(_ c: UInt32) -> Bool {
        var lo = 0, hi = ranges.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            if c < ranges[mid].lowerBound { hi = mid - 1 } else if c > ranges[mid].upperBound { lo = mid + 1 } else { return true }
        }
        return false
    }

    var isEmpty: Bool { ranges.isEmpty }

    /// Adds the other-case forms of every letter in the set (simple, one-scalar case mappings).
    mutating func addCaseVariants() {
        normalize()
        var extra: [ClosedRange<UInt32>] = []
        for r in ranges {
            // ASCII letters directly; beyond ASCII only the blocks that have case at all, so a huge
            // range costs a bounded number of property look-ups.
            let asciiLow = max(r.lowerBound, 0x41), asciiHigh = min(r.upperBound, 0x7A)
            if asciiLow <= asciiHigh {
                for c in asciiLow...asciiHigh {
                    if c >= 0x41 && c <= 0x5A { extra.append((c + 32)...(c + 32)) } else if c >= 0x61 && c <= 0x7A { extra.append((c - 32)...(c - 32)) }
                }
                // U+017F (long s) and U+212A (Kelvin) fold to ASCII letters.
                if asciiLow <= 0x73 && asciiHigh >= 0x53 && (0x53...0x73).overlaps(asciiLow...asciiHigh) { extra.append(0x17F...0x17F) }
                if (0x4B...0x6B).overlaps(asciiLow...asciiHigh) { extra.append(0x212A...0x212A) }
            }
            for block in CharRanges.casedBlocks where block.overlaps(r) {
                let low = max(block.lowerBound, r.lowerBound), high = min(block.upperBound, r.upperBound)
                for c in low...high {
                    guard let scalar = Unicode.Scalar(c) else { continue }
                    for variant in CharRanges.simpleCaseVariants(scalar) { extra.append(variant...variant) }
                }
            }
        }
        ranges.append(contentsOf: extra)
        normalize()
    }

    /// Other-case forms of one scalar (only mappings to a single scalar).
    static func simpleCaseVariants(_ s: Unicode.Scalar) -> [UInt32] {
        var out: [UInt32] = []
        let p = s.properties
        guard p.changesWhenCaseMapped else { return out }
        for mapped in [p.lowercaseMapping, p.uppercaseMapping, p.titlecaseMapping] {
            let scalars = mapped.unicodeScalars
            if scalars.count == 1, let m = scalars.first, m.value != s.value { out.append(m.value) }
        }
        return out
    }

    /// Non-ASCII blocks containing cased letters (Latin-1 and Latin Extended, Greek, Cyrillic,
    /// Armenian, Georgian, Cherokee, Latin Extended Additional, Greek Extended, letterlike symbols,
    /// enclosed letters, Glagolitic, Coptic, Cyrillic/Latin extensions, fullwidth forms, Deseret,
    /// Osage, Vithkuqi, Old Hungarian, Warang Citi, Medefaidrin, Adlam).
    static let casedBlocks: [ClosedRange<UInt32>] = [
        0xB5...0x58F, 0x10A0...0x10FF, 0x13A0...0x13FD, 0x1C80...0x1CBF, 0x1D79...0x1D8E, 0x1E00...0x1FFF,
        0x2126...0x2184, 0x24B6...0x24E9, 0x2C00...0x2D2D, 0xA640...0xA7FF, 0xAB53...0xABBF, 0xFF21...0xFF5A,
        0x10400...0x104FF, 0x10570...0x105BC, 0x10C80...0x10CFF, 0x118A0...0x118DF, 0x16E40...0x16E7F, 0x1E900...0x1E943,
    ]
}

/// A character class after parsing: what it matches, and whether it also matches bytes that are not
/// valid UTF-8 (negated classes and `.` do, so invalid input never blocks a match).
struct CharClass: Sendable, Equatable {
    var set: CharRanges
    var matchesInvalidBytes: Bool
}

/// The parsed form of an expression.
indirect enum RegexNode: Sendable {
    case empty
    /// A literal character (a scalar, or a byte in byte mode), already case-folded into a class
    /// when case-insensitive.
    case literal(UInt32)
    case charClass(CharClass)
    case assertion(RegexAssertion)
    /// A group; `capture` is its number (1-based) when it captures.
    case group(RegexNode, capture: Int?)
    case concat([RegexNode])
    case alternate([RegexNode])
    /// `min`…`max` repetitions (`max` nil: unbounded); `offset` locates it for size errors.
    case repetition(RegexNode, min: Int, max: Int?, greedy: Bool, offset: Int)
}

/// Parses the syntax users write (the common Perl/RE2 subset) into a ``RegexNode``. Constructs that
/// cannot run in linear time — backreferences, look-around, atomic groups, possessive quantifiers,
/// recursion, conditionals — are refused with their location and name.
struct RegexParser {
    let bytes: [UInt8]
    var i = 0
    var options: RegexOptions
    let byteMode: Bool
    /// Names of the capture groups, index 0 unused (the whole match).
    var groupNames: [String?] = [nil]

    /// Largest `{m,n}` bound.
    static let maximumRepetition = 1000
    /// Deepest nesting of groups (keeps the recursive parser and compiler far from the stack's end).
    static let maximumNesting = 200

    init(_ pattern: [UInt8], options: RegexOptions) {
        bytes = pattern
        self.options = options
        byteMode = options.contains(.bytes)
    }

    mutating func parse() throws(RegexSyntaxError) -> RegexNode {
        let node = try parseAlternation(depth: 0)
        if i < bytes.count {
            // Only an unbalanced ')' stops the top level early.
            throw RegexSyntaxError(i, "unmatched ')'", expected: "a '(' before it, or \\) for a literal parenthesis")
        }
        return node
    }

    private var atEnd: Bool { i >= bytes.count }
    private func peek(_ k: Int = 0) -> UInt8? { i + k < bytes.count ? bytes[i + k] : nil }

    private mutating func parseAlternation(depth: Int) throws(RegexSyntaxError) -> RegexNode {
        var alternatives = [try parseConcatenation(depth: depth)]
        while peek() == UInt8(ascii: "|") {
            i += 1
            alternatives.append(try parseConcatenation(depth: depth))
        }
        return alternatives.count == 1 ? alternatives[0] : .alternate(alternatives)
    }

    private mutating func parseConcatenation(depth: Int) throws(RegexSyntaxError) -> RegexNode {
        var items: [RegexNode] = []
        while let c = peek(), c != UInt8(ascii: "|"), c != UInt8(ascii: ")") {
            if c == UInt8(ascii: "\\"), peek(1) == UInt8(ascii: "Q") {
                // \Q…\E: everything literal; a quantifier after it applies to the last character.
                i += 2
                while !atEnd {
                    if bytes[i] == UInt8(ascii: "\\") && peek(1) == UInt8(ascii: "E") { i += 2; break }
                    let characterStart = i
                    let character = literal(try nextCharacter())
                    if atEnd || (bytes[i] == UInt8(ascii: "\\") && peek(1) == UInt8(ascii: "E")) {
                        if !atEnd { i += 2 }
                        items.append(try parseQuantifiers(character, atomStart: characterStart))
                        break
                    }
                    items.append(character)
                }
                continue
            }
            let atomStart = i
            guard let atom = try parseAtom(depth: depth) else { continue }
            items.append(try parseQuantifiers(atom, atomStart: atomStart))
        }
        return items.count == 1 ? items[0] : (items.isEmpty ? .empty : .concat(items))
    }

    /// One atom, or nil for a flag group like `(?i)` that only changes options.
    private mutating func parseAtom(depth: Int) throws(RegexSyntaxError) -> RegexNode? {
        let start = i
        let c = bytes[i]
        switch c {
        case UInt8(ascii: "("):
            return try parseGroup(depth: depth)
        case UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "?"):
            throw RegexSyntaxError(start, "nothing to repeat before '\(Character(Unicode.Scalar(c)))'",
                                   expected: "a character, '.', a class or a group before a repetition")
        case UInt8(ascii: "{"):
            if quantifierBraces(at: i) != nil {
                throw RegexSyntaxError(start, "nothing to repeat before '{'", expected: "a character, '.', a class or a group before a repetition")
            }
            i += 1
            return literal(UInt32(c))
        case UInt8(ascii: "^"):
            i += 1
            return .assertion(options.contains(.multiLine) ? .lineStart : .textStart)
        case UInt8(ascii: "$"):
            i += 1
            return .assertion(options.contains(.multiLine) ? .lineEnd : .textEnd)
        case UInt8(ascii: "."):
            i += 1
            return .charClass(dotClass())
        case UInt8(ascii: "["):
            return .charClass(try parseClass())
        case UInt8(ascii: "\\"):
            return try parseEscape()
        default:
            return literal(try nextCharacter())
        }
    }

    /// The scalar at `i` (or the byte, in byte mode), advancing past it.
    private mutating func nextCharacter() throws(RegexSyntaxError) -> UInt32 {
        let c = bytes[i]
        if byteMode || c < 0x80 { i += 1; return UInt32(c) }
        let start = i
        guard let (scalar, length) = RegexParser.decodeUTF8(bytes, at: i) else {
            throw RegexSyntaxError(start, "the pattern is not valid UTF-8", expected: "UTF-8 text, or \\xhh for a byte")
        }
        i += length
        return scalar
    }

    static func decodeUTF8(_ b: [UInt8], at k: Int) -> (UInt32, Int)? {
        let c0 = b[k]
        func cont(_ j: Int) -> UInt32? { j < b.count && b[j] & 0xC0 == 0x80 ? UInt32(b[j] & 0x3F) : nil }
        switch c0 {
        case 0xC2...0xDF:
            guard let c1 = cont(k + 1) else { return nil }
            return (UInt32(c0 & 0x1F) << 6 | c1, 2)
        case 0xE0...0xEF:
            guard let c1 = cont(k + 1), let c2 = cont(k + 2) else { return nil }
            let v = UInt32(c0 & 0x0F) << 12 | c1 << 6 | c2
            guard v >= 0x800, !(0xD800...0xDFFF).contains(v) else { return nil }
            return (v, 3)
        case 0xF0...0xF4:
            guard let c1 = cont(k + 1), let c2 = cont(k + 2), let c3 = cont(k + 3) else { return nil }
            let v = UInt32(c0 & 0x07) << 18 | c1 << 12 | c2 << 6 | c3
            guard v >= 0x10000, v <= 0x10FFFF else { return nil }
            return (v, 4)
        default:
            return nil
        }
    }

    private var maximumCharacter: UInt32 { byteMode ? 0xFF : CharRanges.maxScalar }

    private func literal(_ c: UInt32) -> RegexNode {
        guard options.contains(.caseInsensitive) else { return .literal(c) }
        var set = CharRanges([c...c])
        if byteMode { set.addCaseVariantsASCII() } else { set.addCaseVariants() }
        return set.ranges.count == 1 && set.ranges[0].count == 1 ? .literal(c) : .charClass(CharClass(set: set, matchesInvalidBytes: false))
    }

    private func dotClass() -> CharClass {
        var set = CharRanges()
        if options.contains(.dotMatchesNewline) {
            set.add(0...maximumCharacter)
        } else {
            set.add(0...0x09)
            set.add(0x0B...maximumCharacter)
        }
        return CharClass(set: set, matchesInvalidBytes: !byteMode)
    }

    /// A class from its positive set (case-folded if needed), negated when asked.
    private func finishClass(_ set: CharRanges, negated: Bool) -> CharClass {
        var positive = set
        if options.contains(.caseInsensitive) {
            if byteMode { positive.addCaseVariantsASCII() } else { positive.addCaseVariants() }
        }
        positive.normalize()
        if negated {
            return CharClass(set: positive.inverted(maximum: maximumCharacter), matchesInvalidBytes: !byteMode)
        }
        return CharClass(set: positive, matchesInvalidBytes: false)
    }

    // MARK: groups and flags

    private mutating func parseGroup(depth: Int) throws(RegexSyntaxError) -> RegexNode? {
        let open = i
        guard depth < RegexParser.maximumNesting else {
            throw RegexSyntaxError(open, "groups are nested more than \(RegexParser.maximumNesting) deep", expected: "fewer nested groups")
        }
        i += 1
        var capture: Int?
        let saved = options
        if peek() == UInt8(ascii: "?") {
            i += 1
            guard let c = peek() else { throw RegexSyntaxError(open, "unterminated group", expected: "')'") }
            switch c {
            case UInt8(ascii: ":"):
                i += 1
            case UInt8(ascii: "="), UInt8(ascii: "!"):
                throw RegexSyntaxError(open, "look-ahead '(?\(Character(Unicode.Scalar(c))))' is not supported: it cannot run in linear time",
                                       expected: "an expression without look-around")
            case UInt8(ascii: "<") where peek(1) == UInt8(ascii: "=") || peek(1) == UInt8(ascii: "!"):
                throw RegexSyntaxError(open, "look-behind '(?<\(Character(Unicode.Scalar(peek(1)!))))' is not supported: it cannot run in linear time",
                                       expected: "an expression without look-around")
            case UInt8(ascii: ">"):
                throw RegexSyntaxError(open, "atomic groups '(?>…)' are not supported", expected: "a group '(…)' or '(?:…)'")
            case UInt8(ascii: "("):
                throw RegexSyntaxError(open, "conditionals '(?(…)…)' are not supported", expected: "alternation with '|'")
            case UInt8(ascii: "R"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "&"), UInt8(ascii: "+"):
                throw RegexSyntaxError(open, "recursion and subroutine calls are not supported", expected: "a regular (non-recursive) expression")
            case UInt8(ascii: "#"):
                // A comment: skip to ')'.
                while let d = peek(), d != UInt8(ascii: ")") { i += 1 }
                guard peek() == UInt8(ascii: ")") else { throw RegexSyntaxError(open, "unterminated comment", expected: "')'") }
                i += 1
                return nil
            case UInt8(ascii: "<"), UInt8(ascii: "P"), UInt8(ascii: "'"):
                if c == UInt8(ascii: "P") {
                    i += 1
                    if peek() == UInt8(ascii: "=") {
                        throw RegexSyntaxError(open, "backreferences '(?P=name)' are not supported: they cannot run in linear time",
                                               expected: "an expression without backreferences")
                    }
                    if peek() == UInt8(ascii: ">") {
                        throw RegexSyntaxError(open, "recursion '(?P>name)' is not supported", expected: "a regular (non-recursive) expression")
                    }
                    guard peek() == UInt8(ascii: "<") else { throw RegexSyntaxError(open, "unknown group syntax '(?P'", expected: "(?P<name>…)") }
                }
                let close: UInt8 = peek() == UInt8(ascii: "'") ? UInt8(ascii: "'") : UInt8(ascii: ">")
                i += 1
                let nameStart = i
                while let d = peek(), d != close {
                    let ok = (d >= UInt8(ascii: "a") && d <= UInt8(ascii: "z")) || (d >= UInt8(ascii: "A") && d <= UInt8(ascii: "Z"))
                        || (d >= UInt8(ascii: "0") && d <= UInt8(ascii: "9")) || d == UInt8(ascii: "_")
                    guard ok else {
                        throw RegexSyntaxError(i, "a group name may only have letters, digits and '_'", expected: "a name like status_code")
                    }
                    i += 1
                }
                guard peek() == close else { throw RegexSyntaxError(open, "unterminated group name", expected: "'\(Character(Unicode.Scalar(close)))'") }
                let name = String(decoding: bytes[nameStart..<i], as: UTF8.self)
                guard !name.isEmpty else { throw RegexSyntaxError(nameStart, "empty group name", expected: "a name like status_code") }
                guard !(bytes[nameStart] >= UInt8(ascii: "0") && bytes[nameStart] <= UInt8(ascii: "9")) else {
                    throw RegexSyntaxError(nameStart, "a group name cannot start with a digit", expected: "a name like status_code")
                }
                guard !groupNames.contains(name) else {
                    throw RegexSyntaxError(nameStart, "the group name '\(name)' is used twice", expected: "unique group names")
                }
                i += 1
                groupNames.append(name)
                capture = groupNames.count - 1
            default:
                // Flags: (?i) (?-i) (?im-s) or scoped (?i:…).
                var on = true
                var sawFlag = false
                var flags = options
                while let d = peek(), d != UInt8(ascii: ")"), d != UInt8(ascii: ":") {
                    let flag: RegexOptions
                    switch d {
                    case UInt8(ascii: "i"): flag = .caseInsensitive
                    case UInt8(ascii: "m"): flag = .multiLine
                    case UInt8(ascii: "s"): flag = .dotMatchesNewline
                    case UInt8(ascii: "-"):
                        guard on else { throw RegexSyntaxError(i, "'-' appears twice in a flag group", expected: "flags like (?i-s)") }
                        on = false; i += 1; continue
                    default:
                        throw RegexSyntaxError(i, "unknown flag or group syntax '(?\(Character(Unicode.Scalar(d)))'",
                                               expected: "(?:…), (?<name>…), or the flags i, m, s as in (?i) or (?i:…)")
                    }
                    sawFlag = true
                    if on { flags.insert(flag) } else { flags.remove(flag) }
                    i += 1
                }
                guard sawFlag, let end = peek() else { throw RegexSyntaxError(open, "unterminated flag group", expected: "flags i, m or s and ')'") }
                i += 1
                if end == UInt8(ascii: ")") {
                    // Applies to the rest of the enclosing group.
                    options = flags
                    return nil
                }
                options = flags
                let inner = try parseAlternation(depth: depth + 1)
                guard peek() == UInt8(ascii: ")") else { throw RegexSyntaxError(open, "unterminated group", expected: "')'") }
                i += 1
                options = saved
                return .group(inner, capture: nil)
            }
        } else {
            groupNames.append(nil)
            capture = groupNames.count - 1
        }
        let inner = try parseAlternation(depth: depth + 1)
        guard peek() == UInt8(ascii: ")") else { throw RegexSyntaxError(open, "unterminated group", expected: "')'") }
        i += 1
        // Flags set inside a group end with it.
        options = saved
        return .group(inner, capture: capture)
    }

    // MARK: quantifiers

    /// `{m}`, `{m,}`, `{m,n}`, `{,n}` at `k`: (min, max, index after `}`), or nil when the braces do not
    /// form a repetition (then `{` is an ordinary character, as in Perl).
    func quantifierBraces(at k: Int) -> (Int, Int?, Int)? {
        var j = k + 1
        func number() -> Int? {
            var n = 0, any = false
            while j < bytes.count, bytes[j] >= UInt8(ascii: "0"), bytes[j] <= UInt8(ascii: "9") {
                n = min(n * 10 + Int(bytes[j] - UInt8(ascii: "0")), 1_000_000)
                any = true
                j += 1
            }
            return any ? n : nil
        }
        let low = number()
        var high: Int?
        if j < bytes.count && bytes[j] == UInt8(ascii: ",") {
            j += 1
            high = number()
            if low == nil && high == nil { return nil }
        } else {
            guard low != nil else { return nil }
            high = low
        }
        guard j < bytes.count, bytes[j] == UInt8(ascii: "}") else { return nil }
        return (low ?? 0, high, j + 1)
    }

    private mutating func parseQuantifiers(_ atom: RegexNode, atomStart: Int) throws(RegexSyntaxError) -> RegexNode {
        var node = atom
        var quantified = false
        while let c = peek() {
            let start = i
            var minimum = 0
            var maximum: Int? = nil
            switch c {
            case UInt8(ascii: "*"): i += 1
            case UInt8(ascii: "+"): minimum = 1; i += 1
            case UInt8(ascii: "?"): maximum = 1; i += 1
            case UInt8(ascii: "{"):
                guard let (low, high, next) = quantifierBraces(at: i) else { return node }
                if let high, high < low {
                    throw RegexSyntaxError(start, "repetition bounds are out of order", expected: "{m,n} with m ≤ n")
                }
                if low > RegexParser.maximumRepetition || (high ?? 0) > RegexParser.maximumRepetition {
                    throw RegexSyntaxError(start, "repetition bound is larger than \(RegexParser.maximumRepetition)",
                                           expected: "bounds up to \(RegexParser.maximumRepetition), or '*' / '+' for any number")
                }
                minimum = low; maximum = high; i = next
            default:
                return node
            }
            if quantified {
                throw RegexSyntaxError(start, "a repetition cannot follow another repetition", expected: "a group around the first, like (a+)*")
            }
            if case .assertion = node {
                throw RegexSyntaxError(start, "an anchor or \\b cannot be repeated", expected: "a character, class or group before a repetition")
            }
            quantified = true
            var greedy = true
            if peek() == UInt8(ascii: "?") { greedy = false; i += 1 } else if peek() == UInt8(ascii: "+") {
                throw RegexSyntaxError(i, "possessive quantifiers ('\(Character(Unicode.Scalar(c)))+') are not supported",
                                       expected: "a greedy or lazy ('?') repetition")
            }
            node = .repetition(node, min: minimum, max: maximum, greedy: greedy, offset: start)
        }
        return node
    }

    // MARK: escapes

    private mutating func parseEscape() throws(RegexSyntaxError) -> RegexNode {
        let start = i
        guard let c = peek(1) else { throw RegexSyntaxError(start, "the pattern ends with '\\'", expected: "a character after '\\'") }
        switch c {
        case UInt8(ascii: "b"): i += 2; return .assertion(.wordBoundary)
        case UInt8(ascii: "B"): i += 2; return .assertion(.notWordBoundary)
        case UInt8(ascii: "A"): i += 2; return .assertion(.textStart)
        case UInt8(ascii: "z"), UInt8(ascii: "Z"): i += 2; return .assertion(.textEnd)
        case UInt8(ascii: "1")...UInt8(ascii: "9"):
            throw RegexSyntaxError(start, "backreferences ('\\\(Character(Unicode.Scalar(c)))') are not supported: they cannot run in linear time",
                                   expected: "an expression without backreferences")
        case UInt8(ascii: "k"), UInt8(ascii: "g"):
            throw RegexSyntaxError(start, "backreferences ('\\\(Character(Unicode.Scalar(c)))') are not supported: they cannot run in linear time",
                                   expected: "an expression without backreferences")
        case UInt8(ascii: "G"), UInt8(ascii: "K"):
            throw RegexSyntaxError(start, "'\\\(Character(Unicode.Scalar(c)))' is not supported", expected: "an expression without match-position tricks")
        case UInt8(ascii: "E"):
            i += 2
            return .empty
        default:
            let (set, single) = try parseEscapeInClass(allowClasses: true)
            if let single { return literal(single) }
            return .charClass(finishClass(set, negated: false))
        }
    }

    /// An escape at `i` (the backslash): either a set (`\d`, `\w`…) or a single character.
    private mutating func parseEscapeInClass(allowClasses: Bool) throws(RegexSyntaxError) -> (CharRanges, UInt32?) {
        let start = i
        guard let c = peek(1) else { throw RegexSyntaxError(start, "the pattern ends with '\\'", expected: "a character after '\\'") }
        i += 2
        switch c {
        case UInt8(ascii: "d"): return (CharRanges.digits, nil)
        case UInt8(ascii: "D"): return (CharRanges.digits.inverted(maximum: maximumCharacter), nil)
        case UInt8(ascii: "w"): return (CharRanges.word, nil)
        case UInt8(ascii: "W"): return (CharRanges.word.inverted(maximum: maximumCharacter), nil)
        case UInt8(ascii: "s"): return (CharRanges.space, nil)
        case UInt8(ascii: "S"): return (CharRanges.space.inverted(maximum: maximumCharacter), nil)
        case UInt8(ascii: "h"): return (CharRanges([0x09...0x09, 0x20...0x20]), nil)
        case UInt8(ascii: "t"): return (CharRanges(), 0x09)
        case UInt8(ascii: "n"): return (CharRanges(), 0x0A)
        case UInt8(ascii: "r"): return (CharRanges(), 0x0D)
        case UInt8(ascii: "f"): return (CharRanges(), 0x0C)
        case UInt8(ascii: "v"): return (CharRanges(), 0x0B)
        case UInt8(ascii: "a"): return (CharRanges(), 0x07)
        case UInt8(ascii: "e"): return (CharRanges(), 0x1B)
        case UInt8(ascii: "0"):
            // \0 and up to two more octal digits.
            var v: UInt32 = 0
            var n = 0
            while n < 2, let d = peek(), d >= UInt8(ascii: "0"), d <= UInt8(ascii: "7") { v = v * 8 + UInt32(d - 48); i += 1; n += 1 }
            return (CharRanges(), v)
        case UInt8(ascii: "x"), UInt8(ascii: "u"):
            var digits: [UInt8] = []
            if peek() == UInt8(ascii: "{") {
                i += 1
                while let d = peek(), d != UInt8(ascii: "}") { digits.append(d); i += 1 }
                guard peek() == UInt8(ascii: "}") else { throw RegexSyntaxError(start, "unterminated \\\(Character(Unicode.Scalar(c))){…}", expected: "'}'") }
                i += 1
            } else {
                let count = c == UInt8(ascii: "x") ? 2 : 4
                for _ in 0..<count {
                    guard let d = peek() else { break }
                    digits.append(d); i += 1
                }
            }
            guard !digits.isEmpty, digits.count <= 8, digits.allSatisfy({ RegexParser.hexValue($0) != nil }) else {
                throw RegexSyntaxError(start, "invalid \\\(Character(Unicode.Scalar(c))) escape",
                                       expected: c == UInt8(ascii: "x") ? "two hexadecimal digits (\\x41) or \\x{…}" : "four hexadecimal digits (\\u00e9) or \\u{…}")
            }
            let value = digits.reduce(UInt32(0)) { $0 &* 16 &+ UInt32(RegexParser.hexValue($1)!) }
            guard value <= maximumCharacter, !(0xD800...0xDFFF).contains(value) || byteMode else {
                throw RegexSyntaxError(start, "\\\(Character(Unicode.Scalar(c))) escape is out of range",
                                       expected: byteMode ? "a byte value up to ff" : "a Unicode scalar value")
            }
            return (CharRanges(), value)
        case UInt8(ascii: "p"), UInt8(ascii: "P"):
            throw RegexSyntaxError(start, "Unicode property classes ('\\\(Character(Unicode.Scalar(c))){…}') are not supported",
                                   expected: "a character class such as [a-zA-Z] or [[:alpha:]]")
        case UInt8(ascii: "c"):
            guard let d = peek() else { throw RegexSyntaxError(start, "invalid \\c escape", expected: "a letter after \\c") }
            i += 1
            return (CharRanges(), UInt32(d & 0x1F))
        default:
            let isLetterOrDigit = (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z"))
                || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
            if isLetterOrDigit {
                throw RegexSyntaxError(start, "unknown escape '\\\(Character(Unicode.Scalar(c)))'",
                                       expected: "\\d \\D \\w \\W \\s \\S \\b \\B \\t \\n \\r \\xhh \\uhhhh, or '\\' before a symbol")
            }
            if c >= 0x80 && !byteMode {
                i -= 1
                return (CharRanges(), try nextCharacter())
            }
            return (CharRanges(), UInt32(c))
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

    // MARK: classes

    /// `[...]` at `i`.
    private mutating func parseClass() throws(RegexSyntaxError) -> CharClass {
        let open = i
        i += 1
        var negated = false
        if peek() == UInt8(ascii: "^") { negated = true; i += 1 }
        var set = CharRanges()
        var first = true
        while true {
            guard let c = peek() else { throw RegexSyntaxError(open, "unterminated character class", expected: "']'") }
            if c == UInt8(ascii: "]") && !first { i += 1; break }
            first = false
            if c == UInt8(ascii: "["), peek(1) == UInt8(ascii: ":") {
                if let (named, next) = try posixClass(at: i) {
                    set.add(named)
                    i = next
                    continue
                }
            }
            let itemStart = i
            var low: UInt32
            if c == UInt8(ascii: "\\") {
                let (s, single) = try parseEscapeInClass(allowClasses: true)
                guard let single else { set.add(s); continue }
                low = single
            } else {
                low = try nextCharacter()
            }
            // A range a-z; '-' first, last or after a range is literal.
            if peek() == UInt8(ascii: "-"), let after = peek(1), after != UInt8(ascii: "]") {
                i += 1
                var high: UInt32
                if after == UInt8(ascii: "\\") {
                    let escapeStart = i
                    let (_, single) = try parseEscapeInClass(allowClasses: false)
                    guard let single else {
                        throw RegexSyntaxError(escapeStart, "a class like \\d cannot end a range", expected: "a character")
                    }
                    high = single
                } else if after == UInt8(ascii: "["), peek(1) == UInt8(ascii: ":") {
                    throw RegexSyntaxError(i, "a class like [:alpha:] cannot end a range", expected: "a character")
                } else {
                    high = try nextCharacter()
                }
                guard low <= high else {
                    throw RegexSyntaxError(itemStart, "character range is out of order", expected: "a range whose first character is not after its last")
                }
                set.add(low...high)
            } else {
                set.add(low)
            }
        }
        return finishClass(set, negated: negated)
    }

    /// `[:name:]` or `[:^name:]` at `k` (the `[`).
    private func posixClass(at k: Int) throws(RegexSyntaxError) -> (CharRanges, Int)? {
        var j = k + 2
        var negate = false
        if j < bytes.count, bytes[j] == UInt8(ascii: "^") { negate = true; j += 1 }
        let nameStart = j
        while j < bytes.count, bytes[j] >= UInt8(ascii: "a"), bytes[j] <= UInt8(ascii: "z") { j += 1 }
        guard j + 1 < bytes.count, bytes[j] == UInt8(ascii: ":"), bytes[j + 1] == UInt8(ascii: "]") else { return nil }
        let name = String(decoding: bytes[nameStart..<j], as: UTF8.self)
        guard let set = CharRanges.posix[name] else {
            throw RegexSyntaxError(k, "unknown class '[:\(name):]'",
                                   expected: "one of " + CharRanges.posix.keys.sorted().map { "[:\($0):]" }.joined(separator: " "))
        }
        return (negate ? set.inverted(maximum: maximumCharacter) : set, j + 2)
    }
}

extension CharRanges {
    static let digits = CharRanges([0x30...0x39])
    static let word = CharRanges([0x30...0x39, 0x41...0x5A, 0x5F...0x5F, 0x61...0x7A])
    /// `\s`: space, tab, newline, vertical tab, form feed, carriage return.
    static let space = CharRanges([0x09...0x0D, 0x20...0x20])

    /// POSIX bracket classes (ASCII).
    static let posix: [String: CharRanges] = [
        "alpha": CharRanges([0x41...0x5A, 0x61...0x7A]),
        "digit": digits,
        "alnum": CharRanges([0x30...0x39, 0x41...0x5A, 0x61...0x7A]),
        "upper": CharRanges([0x41...0x5A]),
        "lower": CharRanges([0x61...0x7A]),
        "space": space,
        "blank": CharRanges([0x09...0x09, 0x20...0x20]),
        "punct": CharRanges([0x21...0x2F, 0x3A...0x40, 0x5B...0x60, 0x7B...0x7E]),
        "print": CharRanges([0x20...0x7E]),
        "graph": CharRanges([0x21...0x7E]),
        "cntrl": CharRanges([0x00...0x1F, 0x7F...0x7F]),
        "xdigit": CharRanges([0x30...0x39, 0x41...0x46, 0x61...0x66]),
        "word": word,
        "ascii": CharRanges([0x00...0x7F]),
    ]

    /// Case variants of ASCII letters only (byte mode).
    mutating func addCaseVariantsASCII() {
        normalize()
        var extra: [ClosedRange<UInt32>] = []
        for r in ranges {
            let low = max(r.lowerBound, 0x41), high = min(r.upperBound, 0x7A)
            guard low <= high else { continue }
            for c in low...high {
                if c >= 0x41 && c <= 0x5A { extra.append((c + 32)...(c + 32)) } else if c >= 0x61 && c <= 0x7A { extra.append((c - 32)...(c - 32)) }
            }
        }
        ranges.append(contentsOf: extra)
        normalize()
    }
}
