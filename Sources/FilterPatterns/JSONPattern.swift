import ByteJSON

/// A JSON pattern `{ $.a = "x" && ($.n > 5 || $.c IS NULL) }`.
///
/// Evaluation: the whole message must be a JSON object, otherwise nothing matches (not even `NOT EXISTS`).
/// Selectors without wildcards are resolved together in one lazy scan of the message (``JSONMultiLookup``);
/// a pattern with `.*` / `[*]` selectors parses the message into a tree and treats those conditions
/// existentially (true when any selected value satisfies them).
struct JSONPattern: Sendable {
    indirect enum Expr: Sendable {
        case and([Expr])
        case or([Expr])
        case condition(Int)
    }

    enum Test: Sendable {
        case compare(ComparisonOperator, ValueLiteral)
        case isNull, isTrue, isFalse, notExists
    }

    struct Condition: Sendable {
        let path: JSONPath
        /// Index into `lookup.paths`, or -1 for wildcard selectors.
        let slot: Int
        let test: Test
    }

    let expr: Expr
    let conditions: [Condition]
    let lookup: JSONMultiLookup
    let needsTree: Bool
    let regexCount: Int

    // MARK: Parsing

    init(_ bytes: [UInt8]) throws(PatternSyntaxError) {
        var parser = Parser(s: PatternScanner(bytes))
        parser.s.skipSpaces()
        guard parser.s.peek == UInt8(ascii: "{") else { throw PatternSyntaxError(parser.s.i, "a JSON pattern starts with '{'", expected: "'{'") }
        parser.s.i += 1
        let expr = try parser.orExpr()
        parser.s.skipSpaces()
        guard parser.s.peek == UInt8(ascii: "}") else {
            throw PatternSyntaxError(parser.s.i, parser.s.atEnd ? "JSON pattern is not closed" : "unexpected text in JSON pattern",
                                     expected: "'&&', '||' or '}'")
        }
        parser.s.i += 1
        parser.s.skipSpaces()
        guard parser.s.atEnd else { throw PatternSyntaxError(parser.s.i, "unexpected text after the closing '}'", expected: "end of pattern") }
        if parser.wildcardSelectors > 3 {
            throw PatternSyntaxError(0, "a JSON pattern may use at most 3 wildcard selectors", expected: "at most 3 selectors with '*'")
        }
        if parser.regexCount > 2 {
            throw PatternSyntaxError(0, "a JSON pattern may contain at most 2 regular expressions", expected: "at most 2 %regex% values")
        }
        self.expr = expr
        self.regexCount = parser.regexCount
        // Assign lookup slots to distinct concrete selectors.
        var paths: [JSONPath] = []
        var slotOf: [JSONPath: Int] = [:]
        var conditions: [Condition] = []
        for c in parser.conditions {
            if c.path.hasWildcard {
                conditions.append(Condition(path: c.path, slot: -1, test: c.test))
            } else {
                let slot: Int
                if let existing = slotOf[c.path] { slot = existing } else { slot = paths.count; slotOf[c.path] = slot; paths.append(c.path) }
                conditions.append(Condition(path: c.path, slot: slot, test: c.test))
            }
        }
        self.conditions = conditions
        self.lookup = JSONMultiLookup(paths)
        self.needsTree = parser.wildcardSelectors > 0
    }

    struct Parser {
        var s: PatternScanner
        var conditions: [Condition] = []
        var wildcardSelectors = 0
        var regexCount = 0

        mutating func orExpr() throws(PatternSyntaxError) -> Expr {
            var terms = [try andExpr()]
            while true {
                s.skipSpaces()
                guard s.startsWith("||") else { break }
                s.i += 2
                terms.append(try andExpr())
            }
            return terms.count == 1 ? terms[0] : .or(terms)
        }

        mutating func andExpr() throws(PatternSyntaxError) -> Expr {
            var terms = [try primary()]
            while true {
                s.skipSpaces()
                guard s.startsWith("&&") else { break }
                s.i += 2
                terms.append(try primary())
            }
            return terms.count == 1 ? terms[0] : .and(terms)
        }

        mutating func primary() throws(PatternSyntaxError) -> Expr {
            s.skipSpaces()
            guard let b = s.peek else { throw PatternSyntaxError(s.i, "JSON pattern ends early", expected: "a condition such as $.field = \"value\"") }
            if b == UInt8(ascii: "(") {
                s.i += 1
                let inner = try orExpr()
                s.skipSpaces()
                guard s.peek == UInt8(ascii: ")") else { throw PatternSyntaxError(s.i, "unbalanced parenthesis", expected: "')'") }
                s.i += 1
                return inner
            }
            guard b == UInt8(ascii: "$") else {
                throw PatternSyntaxError(s.i, "expected a selector", expected: "'$.' followed by a property name, or '('")
            }
            let path = try selector()
            s.skipSpaces()
            let test = try test()
            conditions.append(Condition(path: path, slot: -1, test: test))
            return .condition(conditions.count - 1)
        }

        mutating func selector() throws(PatternSyntaxError) -> JSONPath {
            let start = s.i
            let result: Result<(JSONPath, Int), JSONPathError> = s.bytes.withUnsafeBufferPointer { buf in
                do throws(JSONPathError) { return .success(try JSONPath.parsePrefix(buf.baseAddress!, start, buf.count)) }
                catch { return .failure(error) }
            }
            switch result {
            case .failure(let e): throw PatternSyntaxError(e.offset, e.message, expected: e.expected)
            case .success(let (path, next)):
                s.i = next
                let w = path.wildcardCount
                if w > 1 { throw PatternSyntaxError(start, "a selector may contain at most one wildcard", expected: "one '*' per selector") }
                if w == 1 { wildcardSelectors += 1 }
                return path
            }
        }

        mutating func test() throws(PatternSyntaxError) -> Test {
            let opStart = s.i
            if s.startsWithKeyword("IS") {
                s.i += 2
                s.skipSpaces()
                if s.startsWithKeyword("NULL") { s.i += 4; return .isNull }
                if s.startsWithKeyword("TRUE") { s.i += 4; return .isTrue }
                if s.startsWithKeyword("FALSE") { s.i += 5; return .isFalse }
                if s.startsWithKeyword("NOT") { throw PatternSyntaxError(s.i, "'IS NOT' is not supported", expected: "NULL, TRUE or FALSE (use != or NOT EXISTS)") }
                throw PatternSyntaxError(s.i, "unknown IS test", expected: "NULL, TRUE or FALSE")
            }
            if s.startsWithKeyword("NOT") {
                s.i += 3
                s.skipSpaces()
                guard s.startsWithKeyword("EXISTS") else { throw PatternSyntaxError(s.i, "unknown NOT test", expected: "EXISTS") }
                s.i += 6
                return .notExists
            }
            if s.startsWithKeyword("EXISTS") {
                throw PatternSyntaxError(s.i, "'EXISTS' is not supported", expected: "= * to test that a field exists, or NOT EXISTS")
            }
            guard let op = s.comparisonOperator() else {
                throw PatternSyntaxError(opStart, "expected a comparison after the selector", expected: "=, !=, <, >, <=, >=, IS NULL, IS TRUE, IS FALSE or NOT EXISTS")
            }
            let literal = try s.comparisonValue(for: op, stopAt: [UInt8(ascii: ")"), UInt8(ascii: "}")], regexes: &regexCount)
            return .compare(op, literal)
        }
    }

    // MARK: Evaluation

    func matches(_ message: UnsafeRawBufferPointer) -> Bool {
        var tooDeep = false
        return matches(message, tooDeep: &tooDeep)
    }

    /// ``matches(_:)``, setting `tooDeep` when the message was no match only because it nests deeper
    /// than ``JSONValue/maximumDepth``.
    func matches(_ message: UnsafeRawBufferPointer, tooDeep: inout Bool) -> Bool {
        if needsTree { return matchesTree(message, tooDeep: &tooDeep) }
        let n = lookup.paths.count
        return withUnsafeTemporaryAllocation(of: JSONLookup.self, capacity: max(n, 1)) { buf -> Bool in
            let results = UnsafeMutableBufferPointer(rebasing: buf[0..<n])
            guard lookup.resolve(in: message, into: results, tooDeep: &tooDeep) == .object else { return false }
            guard let base = message.baseAddress else { return false }
            let p = base.assumingMemoryBound(to: UInt8.self)
            return evaluate(expr) { c in
                JSONPattern.test(c.test, results[c.slot], p)
            }
        }
    }

    func evaluate(_ e: Expr, _ leaf: (Condition) -> Bool) -> Bool {
        switch e {
        case .condition(let k): return leaf(conditions[k])
        case .and(let terms):
            for t in terms where !evaluate(t, leaf) { return false }
            return true
        case .or(let terms):
            for t in terms where evaluate(t, leaf) { return true }
            return false
        }
    }

    static func test(_ test: Test, _ found: JSONLookup, _ p: UnsafePointer<UInt8>) -> Bool {
        switch test {
        case .notExists: if case .missing = found { return true } else { return false }
        case .isNull: if case .null = found { return true } else { return false }
        case .isTrue: if case .bool(true) = found { return true } else { return false }
        case .isFalse: if case .bool(false) = found { return true } else { return false }
        case .compare(let op, let literal):
            switch found {
            case .number(let r):
                return literal.jsonCompare(op, .number(p, r.lowerBound, r.upperBound))
            case .string(let r, let escaped):
                if !escaped { return literal.jsonCompare(op, .string(p, r.lowerBound, r.upperBound)) }
                var decoded: [UInt8] = []
                JSONStringDecoding.appendDecoded(p, r.lowerBound, r.upperBound, to: &decoded)
                return decoded.withUnsafeBufferPointer { d in
                    literal.jsonCompare(op, .string(d.baseAddress ?? p, 0, d.count))
                }
            case .null: return literal.jsonCompare(op, .null)
            case .bool(let b): return literal.jsonCompare(op, .bool(b))
            default: return literal.jsonCompare(op, .container)
            }
        }
    }

    /// Slow path for wildcard selectors: parse the message and evaluate on the tree.
    func matchesTree(_ message: UnsafeRawBufferPointer, tooDeep: inout Bool) -> Bool {
        let root: JSONValue
        do { root = try JSONValue.parse(message) } catch {
            tooDeep = error.isTooDeep
            return false
        }
        guard case .object = root else { return false }
        return evaluate(expr) { c in
            if c.path.hasWildcard {
                let values = root.select(c.path)
                if case .notExists = c.test { return values.isEmpty }
                return values.contains { JSONPattern.test(c.test, on: $0) }
            }
            guard let v = root.value(at: c.path) else {
                if case .notExists = c.test { return true }
                return false
            }
            return JSONPattern.test(c.test, on: v)
        }
    }

    static func test(_ test: Test, on v: JSONValue) -> Bool {
        switch test {
        case .notExists: return false
        case .isNull: return v.isNull
        case .isTrue: return v.boolValue == true
        case .isFalse: return v.boolValue == false
        case .compare(let op, let literal):
            switch v {
            case .null: return literal.jsonCompare(op, .null)
            case .bool(let b): return literal.jsonCompare(op, .bool(b))
            case .array, .object: return literal.jsonCompare(op, .container)
            case .string(let s):
                var s = s
                return s.withUTF8 { u in
                    let one: [UInt8] = [0]
                    if let base = u.baseAddress { return literal.jsonCompare(op, .string(base, 0, u.count)) }
                    return one.withUnsafeBufferPointer { literal.jsonCompare(op, .string($0.baseAddress!, 0, 0)) }
                }
            case .number(let d, let text):
                var bytes = Array(text.utf8)
                if bytes.isEmpty { JSONWriter.appendNumber(d, to: &bytes) }
                return bytes.withUnsafeBufferPointer { literal.jsonCompare(op, .number($0.baseAddress!, 0, $0.count)) }
            }
        }
    }
}

/// Reading literal values shared by JSON and space-delimited patterns.
enum PatternValues {
    /// A quoted literal: a glob, remembering its numeric value when it has no wildcard.
    static func stringLiteral(_ text: [UInt8]) -> ValueLiteral {
        let glob = StringGlob(text)
        let number = glob.hasWildcard ? nil : text.withUnsafeBufferPointer { b -> Double? in
            guard let base = b.baseAddress else { return nil }
            return JSONNumberParsing.parseDouble(base, 0, b.count, lenient: true)
        }
        return .glob(glob, number: number)
    }

    /// A bare literal: a number when it reads as one, otherwise a glob.
    static func bareLiteral(_ text: [UInt8]) -> ValueLiteral {
        let number = text.withUnsafeBufferPointer { b -> Double? in
            guard let base = b.baseAddress else { return nil }
            return JSONNumberParsing.parseDouble(base, 0, b.count, lenient: true)
        }
        if let number, number.isFinite { return .number(number, text: text) }
        return .glob(StringGlob(text), number: nil)
    }

    /// An unquoted value: up to a blank, `&&`, `||`, or one of `stopAt`.
    static func bareValue(_ s: inout PatternScanner, stopAt: [UInt8]) -> [UInt8] {
        let start = s.i
        while let b = s.peek {
            if PatternScanner.isSpace(b) || stopAt.contains(b) { break }
            if s.startsWith("&&") || s.startsWith("||") { break }
            s.i += 1
        }
        return Array(s.bytes[start..<s.i])
    }
}
