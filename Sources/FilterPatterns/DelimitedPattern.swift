/// A space-delimited pattern `[ip, user, ..., status = 4*, bytes > 1000]`.
///
/// The event is cut into whitespace-separated tokens; text in `"…"` or `[…]` is one token without
/// its delimiters. Without `...`, slot i binds token i and the last slot takes the rest of the
/// line; fewer tokens than slots is no match. With `...`, slots before it bind from the left,
/// slots after it from the right, and the ellipsis takes whatever is between (possibly nothing).
struct DelimitedPattern: Sendable {
    /// One condition on a slot's own field.
    struct Condition: Sendable {
        let op: ComparisonOperator
        let value: ValueLiteral
    }

    indirect enum SlotExpr: Sendable {
        case condition(Condition)
        case and([SlotExpr])
        case or([SlotExpr])
    }

    struct Slot: Sendable {
        /// nil for an unnamed slot (reported as `$<position>`).
        let name: String?
        let expr: SlotExpr?
    }

    let left: [Slot]
    let right: [Slot]
    let hasEllipsis: Bool
    let regexCount: Int

    var slotNames: [String] { (left + right).compactMap(\.name) }

    init(_ bytes: [UInt8]) throws(PatternSyntaxError) {
        var s = PatternScanner(bytes)
        s.skipSpaces()
        guard s.peek == UInt8(ascii: "[") else { throw PatternSyntaxError(s.i, "a space-delimited pattern starts with '['", expected: "'['") }
        s.i += 1
        var left: [Slot] = []
        var right: [Slot] = []
        var ellipsisAt: Int?
        var regexes = 0
        var names = Set<String>()
        while true {
            s.skipSpaces()
            let slotStart = s.i
            if s.atEnd { throw PatternSyntaxError(s.i, "space-delimited pattern is not closed", expected: "a field or ']'") }
            if s.startsWith("...") {
                if ellipsisAt != nil { throw PatternSyntaxError(s.i, "a pattern may contain '...' only once", expected: "one '...'") }
                ellipsisAt = left.count
                s.i += 3
            } else if s.peek == UInt8(ascii: ",") || s.peek == UInt8(ascii: "]") {
                (ellipsisAt == nil ? { left.append(Slot(name: nil, expr: nil)) } : { right.append(Slot(name: nil, expr: nil)) })()
            } else {
                let slot = try DelimitedPattern.slot(&s, regexes: &regexes)
                if let name = slot.name {
                    guard names.insert(name).inserted else {
                        throw PatternSyntaxError(slotStart, "field '\(name)' is named twice", expected: "distinct field names")
                    }
                }
                if ellipsisAt == nil { left.append(slot) } else { right.append(slot) }
            }
            s.skipSpaces()
            guard let b = s.peek else { throw PatternSyntaxError(s.i, "space-delimited pattern is not closed", expected: "',' or ']'") }
            s.i += 1
            if b == UInt8(ascii: "]") { break }
            guard b == UInt8(ascii: ",") else {
                throw PatternSyntaxError(s.i - 1, "unexpected character in a space-delimited pattern", expected: "',' between fields or ']'")
            }
        }
        s.skipSpaces()
        guard s.atEnd else { throw PatternSyntaxError(s.i, "unexpected text after the closing ']'", expected: "end of pattern") }
        guard regexes <= 2 else {
            throw PatternSyntaxError(0, "a space-delimited pattern may contain at most 2 regular expressions", expected: "at most 2 %regex% values")
        }
        self.left = left
        self.right = right
        self.hasEllipsis = ellipsisAt != nil
        self.regexCount = regexes
    }

    /// `name`, or `name OP value [&& / || name OP value]…` where every condition names the same field.
    private static func slot(_ s: inout PatternScanner, regexes: inout Int) throws(PatternSyntaxError) -> Slot {
        let name = try fieldName(&s)
        s.skipSpaces()
        if s.peek == UInt8(ascii: ",") || s.peek == UInt8(ascii: "]") { return Slot(name: name, expr: nil) }
        let expr = try orExpr(&s, field: name, first: true, regexes: &regexes)
        return Slot(name: name, expr: expr)
    }

    private static func fieldName(_ s: inout PatternScanner) throws(PatternSyntaxError) -> String {
        let start = s.i
        while let b = s.peek, s.isWordByte(b) || b == UInt8(ascii: "-") { s.i += 1 }
        guard s.i > start else {
            throw PatternSyntaxError(start, "expected a field name", expected: "a name of letters, digits, '_' or '-', '...', or an empty field")
        }
        return String(decoding: s.bytes[start..<s.i], as: UTF8.self)
    }

    private static func orExpr(_ s: inout PatternScanner, field: String, first: Bool, regexes: inout Int) throws(PatternSyntaxError) -> SlotExpr {
        var terms = [try andExpr(&s, field: field, first: first, regexes: &regexes)]
        while true {
            s.skipSpaces()
            guard s.startsWith("||") else { break }
            s.i += 2
            terms.append(try andExpr(&s, field: field, first: false, regexes: &regexes))
        }
        return terms.count == 1 ? terms[0] : .or(terms)
    }

    private static func andExpr(_ s: inout PatternScanner, field: String, first: Bool, regexes: inout Int) throws(PatternSyntaxError) -> SlotExpr {
        var terms = [try condition(&s, field: field, nameRead: first, regexes: &regexes)]
        while true {
            s.skipSpaces()
            guard s.startsWith("&&") else { break }
            s.i += 2
            terms.append(try condition(&s, field: field, nameRead: false, regexes: &regexes))
        }
        return terms.count == 1 ? terms[0] : .and(terms)
    }

    private static func condition(_ s: inout PatternScanner, field: String, nameRead: Bool, regexes: inout Int) throws(PatternSyntaxError) -> SlotExpr {
        s.skipSpaces()
        if !nameRead {
            let at = s.i
            let name = try fieldName(&s)
            guard name == field else {
                throw PatternSyntaxError(at, "a condition in field '\(field)' names field '\(name)'", expected: "conditions on '\(field)' only")
            }
            s.skipSpaces()
        }
        guard let op = s.comparisonOperator() else {
            throw PatternSyntaxError(s.i, "expected a comparison after field '\(field)'", expected: "=, !=, <, >, <=, >=, ',' or ']'")
        }
        let value = try s.comparisonValue(for: op, stopAt: [UInt8(ascii: ","), UInt8(ascii: "]")], regexes: &regexes)
        return .condition(Condition(op: op, value: value))
    }

    // MARK: Matching

    /// A token of the event: its value (delimiters stripped) and where it starts in the message.
    struct Token {
        var start: Int
        var end: Int
        /// Start of the token including an opening quote or bracket (for "rest of the line").
        var rawStart: Int
    }

    static func isSeparator(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }

    /// Splits the message into tokens. Stops once `limit` tokens were found when the caller only
    /// needs the first ones (the last slot takes the rest of the line).
    static func tokenize(_ p: UnsafePointer<UInt8>, _ count: Int, into tokens: inout [Token]) {
        tokens.removeAll(keepingCapacity: true)
        var i = 0
        while i < count {
            while i < count && isSeparator(p[i]) { i += 1 }
            guard i < count else { break }
            let raw = i
            let opener = p[i]
            if opener == UInt8(ascii: "\"") || opener == UInt8(ascii: "[") {
                let closer = opener == UInt8(ascii: "\"") ? UInt8(ascii: "\"") : UInt8(ascii: "]")
                var j = i + 1
                while j < count && p[j] != closer { j += 1 }
                if j < count {
                    tokens.append(Token(start: i + 1, end: j, rawStart: raw))
                    i = j + 1
                    // Text glued to the closing delimiter stays part of the next token.
                    continue
                }
                // Unbalanced: the opener is an ordinary character.
            }
            var j = i
            while j < count && !isSeparator(p[j]) { j += 1 }
            tokens.append(Token(start: i, end: j, rawStart: raw))
            i = j
        }
    }

    /// The byte range each slot binds to (value without delimiters), or nil when the event has too
    /// few tokens. `positional` receives the tokens an ellipsis or an unnamed slot covered.
    func bind(_ p: UnsafePointer<UInt8>, _ count: Int, tokens: inout [Token]) -> (slots: [Range<Int>], firstRight: Int)? {
        DelimitedPattern.tokenize(p, count, into: &tokens)
        let needed = left.count + right.count
        guard tokens.count >= needed, needed > 0 || hasEllipsis else { return nil }
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(needed)
        if !hasEllipsis {
            for k in 0..<(left.count - 1) { ranges.append(tokens[k].start..<tokens[k].end) }
            let last = left.count - 1
            if tokens.count == left.count {
                ranges.append(tokens[last].start..<tokens[last].end)
            } else {
                // The last slot takes the rest of the line, as written.
                var end = count
                while end > tokens[last].rawStart && DelimitedPattern.isSeparator(p[end - 1]) { end -= 1 }
                ranges.append(tokens[last].rawStart..<end)
            }
            return (ranges, tokens.count)
        }
        for k in 0..<left.count { ranges.append(tokens[k].start..<tokens[k].end) }
        let firstRight = tokens.count - right.count
        for k in 0..<right.count { ranges.append(tokens[firstRight + k].start..<tokens[firstRight + k].end) }
        return (ranges, firstRight)
    }

    func matches(_ message: UnsafeRawBufferPointer) -> Bool {
        var tokens: [Token] = []
        return extract(message, tokens: &tokens, collect: false) != nil
    }

    /// Matches and returns the extracted values (`$name` or `$position` → bytes), or nil.
    func extract(_ message: UnsafeRawBufferPointer, tokens: inout [Token], collect: Bool) -> [(String, [UInt8])]? {
        guard let base = message.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
            return left.isEmpty && right.isEmpty ? [] : nil
        }
        guard let (ranges, firstRight) = bind(base, message.count, tokens: &tokens) else { return nil }
        let slots = left + right
        for (slot, range) in zip(slots, ranges) {
            guard let expr = slot.expr else { continue }
            if !DelimitedPattern.holds(expr, base, range.lowerBound, range.upperBound) { return nil }
        }
        guard collect else { return [] }
        var out: [(String, [UInt8])] = []
        func value(_ r: Range<Int>) -> [UInt8] { Array(UnsafeBufferPointer(start: base + r.lowerBound, count: r.count)) }
        for (k, slot) in left.enumerated() {
            out.append((slot.name.map { "$" + $0 } ?? "$\(k + 1)", value(ranges[k])))
        }
        if hasEllipsis {
            for k in left.count..<firstRight { out.append(("$\(k + 1)", value(tokens[k].start..<tokens[k].end))) }
            for (k, slot) in right.enumerated() {
                out.append((slot.name.map { "$" + $0 } ?? "$\(firstRight + k + 1)", value(ranges[left.count + k])))
            }
        }
        return out
    }

    static func holds(_ expr: SlotExpr, _ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> Bool {
        switch expr {
        case .condition(let c): return c.value.fieldCompare(c.op, p, s, e)
        case .and(let terms):
            for t in terms where !holds(t, p, s, e) { return false }
            return true
        case .or(let terms):
            for t in terms where holds(t, p, s, e) { return true }
            return false
        }
    }
}
