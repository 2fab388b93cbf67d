/// An unstructured pattern: space-separated terms, `"quoted phrases"`, `%regex%`, with `-` (exclude) and `?`
/// (any-of) prefixes. Matching is case-sensitive substring search in the raw message.
struct TermPattern: Sendable {
    enum Atom: Sendable {
        case literal([UInt8])
        case regex(FilterRegex)
        /// A phrase made only of blanks (`" "`): AWS documents it as "match everything".
        case everything

        func occurs(in p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
            switch self {
            case .literal(let bytes): return ByteSearch.find(bytes, in: p, start, end) != nil
            case .regex(let r): return r.search(p, start, end)
            case .everything: return true
            }
        }
    }

    /// Terms that must all occur.
    let required: [Atom]
    /// Terms that must not occur.
    let excluded: [Atom]
    /// `?` terms; they only count when the pattern has no other kind of term (then at least one must occur).
    let optional: [Atom]

    /// The literal used to find candidate lines in a whole buffer, when the pattern has one.
    let anchor: [UInt8]?
    /// True when `anchor` occurring in a line is all the pattern asks for.
    let anchorDecides: Bool

    init(_ bytes: [UInt8]) throws(PatternSyntaxError) {
        var s = PatternScanner(bytes)
        var required: [Atom] = []
        var excluded: [Atom] = []
        var optional: [Atom] = []
        while true {
            s.skipSpaces()
            guard let b = s.peek else { break }
            let itemStart = s.i
            var prefix: UInt8? = nil
            if b == UInt8(ascii: "?") || b == UInt8(ascii: "-") {
                prefix = b
                s.i += 1
                guard let next = s.peek, !PatternScanner.isSpace(next) else {
                    throw PatternSyntaxError(s.i, "'\(Character(Unicode.Scalar(b)))' must be followed by a term", expected: "a term, a quoted phrase or a %regex%")
                }
            }
            let atom: Atom
            switch s.peek! {
            case UInt8(ascii: "\""):
                let text = try s.quoted()
                atom = text.allSatisfy(PatternScanner.isSpace) ? .everything : .literal(text)
            case UInt8(ascii: "%"):
                atom = .regex(try s.regex())
            default:
                let wordStart = s.i
                while let c = s.peek, !PatternScanner.isSpace(c) {
                    if c == UInt8(ascii: "\"") {
                        throw PatternSyntaxError(s.i, "a quote inside a term", expected: "a space before the quoted phrase, or the whole term in quotes")
                    }
                    s.i += 1
                }
                atom = .literal(Array(bytes[wordStart..<s.i]))
            }
            if let c = s.peek, !PatternScanner.isSpace(c) {
                throw PatternSyntaxError(s.i, "unexpected character after a term", expected: "a space between terms")
            }
            _ = itemStart
            switch prefix {
            case UInt8(ascii: "?"): optional.append(atom)
            case UInt8(ascii: "-"): excluded.append(atom)
            default: required.append(atom)
            }
        }
        self.required = required
        self.excluded = excluded
        self.optional = (required.isEmpty && excluded.isEmpty) ? optional : []
        // Anchor: the longest required literal (longer needles are rarer and memmem skips faster).
        var best: [UInt8]? = nil
        for case .literal(let l) in required where l.count > (best?.count ?? 0) { best = l }
        anchor = best
        anchorDecides = best != nil && required.count == 1 && excluded.isEmpty
    }

    /// True for the empty pattern and patterns made only of blank phrases.
    var matchesEverything: Bool {
        excluded.isEmpty && optional.isEmpty && required.allSatisfy { if case .everything = $0 { return true } else { return false } }
    }

    var regexCount: Int {
        (required + excluded + optional).reduce(0) { n, a in if case .regex = a { return n + 1 } else { return n } }
    }

    func matches(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        for a in required where !a.occurs(in: p, start, end) { return false }
        for a in excluded where a.occurs(in: p, start, end) { return false }
        if optional.isEmpty { return true }
        for a in optional where a.occurs(in: p, start, end) { return true }
        return false
    }
}
