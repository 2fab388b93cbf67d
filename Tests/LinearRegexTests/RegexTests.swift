import Testing
@testable import LinearRegex

/// What a pattern does on a text: nil for no match, else the whole match and the groups as text.
private func run(_ pattern: String, _ text: String, _ options: RegexOptions = []) throws -> [String?]? {
    let regex = try RegularExpression(pattern, options: options)
    let bytes = Array(text.utf8)
    let found = bytes.withUnsafeBytes { regex.firstMatch(in: $0) }
    let matched = bytes.withUnsafeBytes { regex.matches($0) }
    #expect(matched == (found != nil), "matches() and firstMatch() disagree for /\(pattern)/ on \(text)")
    guard let found else { return nil }
    return (0...regex.groupCount).map { k in found.range(k).map { String(decoding: bytes[$0], as: UTF8.self) } }
}

@Suite("Regular expressions: syntax and matching")
struct RegexMatchingTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var pattern: String
        var text: String
        /// Whole match then groups; nil: no match.
        var expected: [String?]?
        var testDescription: String { "/\(pattern)/ on \(text.debugDescription)" }
    }

    static func m(_ pattern: String, _ text: String, _ expected: String?...) -> Case { Case(pattern: pattern, text: text, expected: expected) }
    static func no(_ pattern: String, _ text: String) -> Case { Case(pattern: pattern, text: text, expected: nil) }

    static let cases: [Case] = [
        m("abc", "xxabcxx", "abc"),
        no("abc", "ab c"),
        m("", "anything", ""),
        m("a|b|c", "xxc", "c"),
        m("gra|ey", "grey", "ey"),
        m("colou?r", "color", "color"),
        m("a+", "baaa", "aaa"),
        m("a+?", "baaa", "a"),
        m("a*", "baaa", ""),
        m("a{2,3}", "aaaa", "aaa"),
        m("a{2,3}?", "aaaa", "aa"),
        m("a{2}", "a aa", "aa"),
        m("a{2,}", "aaaaa", "aaaaa"),
        m("a{,2}b", "aaab", "aab"),
        m("x{0}y", "xy", "y"),
        m("a{", "a{", "a{"),
        m("a{x}", "a{x}", "a{x}"),
        m("[abc]+", "xxbcaz", "bca"),
        m("[^abc]+", "abxyzc", "xyz"),
        m("[a-c]+z$", "xaabbz", "aabbz"),
        m("[]a]+", "x]a]", "]a]"),
        m("[a-]+", "x-a-", "-a-"),
        m("[\\]]", "a]", "]"),
        m("[[:digit:]]+", "ab123c", "123"),
        m("[[:alpha:][:digit:]]+", "--ab12--", "ab12"),
        m("[[:^digit:]]+", "12ab34", "ab"),
        m("\\d+", "abc 404 def", "404"),
        m("\\D+", "12ab34", "ab"),
        m("\\w+", "  hello_1 ", "hello_1"),
        m("\\W+", "ab, cd", ", "),
        m("\\s+", "a \t b", " \t "),
        m("\\S+@\\S+", "mail me@example.com now", "me@example.com"),
        m("^abc", "abcabc", "abc"),
        no("^abc", "xabc"),
        m("abc$", "abcabc", "abc"),
        no("abc$", "abcx"),
        no("abc$", "abc\n"),
        m("(?m)^b$", "a\nb\nc", "b"),
        no("^b$", "a\nb\nc"),
        m("\\Aab", "abab", "ab"),
        m("ab\\z", "abab", "ab"),
        m("\\bfoo\\b", "a foo b", "foo"),
        no("\\bfoo\\b", "afoob"),
        m("\\Boo\\B", "afoob", "oo"),
        m("a.c", "abc", "abc"),
        no("a.c", "a\nc"),
        m("(?s)a.c", "a\nc", "a\nc"),
        m("(a)(b)?", "a", "a", "a", nil),
        m("(a|ab)(c|bcd)(d*)", "abcd", "abcd", "a", "bcd", ""),
        m("(?<year>\\d{4})-(?<month>\\d\\d)", "on 2026-11-24", "2026-11", "2026", "11"),
        m("(?P<x>a+)", "baa", "aa", "aa"),
        m("(?'x'a+)", "baa", "aa", "aa"),
        m("(?:ab)+", "xababx", "abab"),
        m("(a+)+$", "aaaa", "aaaa", "aaaa"),
        m("(.*)-(.*)", "a-b-c", "a-b-c", "a-b", "c"),
        m("(.*?)-(.*)", "a-b-c", "a-b-c", "a", "b-c"),
        m("(?i)hello", "say HeLLo", "HeLLo"),
        m("(?i)[a-c]+", "xABCx", "ABC"),
        m("a(?i)b", "aB", "aB"),
        no("a(?i)b", "AB"),
        m("(?i:a)b", "Ab", "Ab"),
        no("(?i:a)b", "AB"),
        m("(?i)straße", "STRASSE straße", "straße"),
        m("(?i)é", "CAFÉ", "É"),
        m("é+", "caféé", "éé"),
        m("[é-ë]+", "xêëx", "êë"),
        m("[^a]", "aé", "é"),
        m("^.$", "é", "é"),
        m("^...$", "日本語", "日本語"),
        m("\\x41\\u0042\\x{43}", "ABC", "ABC"),
        m("\\t\\n", "a\t\nb", "\t\n"),
        m("a\\.b", "a.b", "a.b"),
        no("a\\.b", "axb"),
        m("\\Qa.b*\\E+", "a.b**", "a.b**"),
        m("a(?#comment)b", "ab", "ab"),
        m("(a*)*b", "aab", "aab", "aa"),
        m("(a*)+b", "b", "b", ""),
        // An empty last iteration is cut (as RE2 does; PCRE would report "" for the group).
        m("(a|)+b", "aab", "aab", "a"),
        m("x*", "", ""),
        m("^$", "", ""),
        m("$", "abc", ""),
        m("[\\d\\s]+", "a1 2b", "1 2"),
        m("[.]", "a.b", "."),
        m("10.10.0.1", "10010,051", "10010,051"),
        m("(a)|b", "b", "b", nil),
        m("(a|b)*c", "abac", "abac", "a"),
    ]

    @Test("table", arguments: cases)
    func table(_ c: Case) throws {
        #expect(try run(c.pattern, c.text) == c.expected)
    }

    @Test("invalid UTF-8 in the text never blocks a match")
    func invalidBytes() throws {
        let regex = try RegularExpression("ERROR.*timeout")
        let text: [UInt8] = Array("ERROR \u{1}".utf8) + [0xFF, 0xC3, 0x28] + Array(" timeout".utf8)
        #expect(regex.matches(text))
        let negated = try RegularExpression("^[^x]+$")
        #expect(negated.matches([0x61, 0xFE, 0x62]))
    }

    @Test("byte mode: . and \\xhh are bytes")
    func byteMode() throws {
        let regex = try RegularExpression("^.\\xff$", options: [.bytes, .dotMatchesNewline])
        #expect(regex.matches([0x0A, 0xFF]))
        #expect(!regex.matches(Array("é".utf8) + [0xFF]))
    }

    @Test("literal prefilters: required and exact literals")
    func literals() throws {
        #expect(try RegularExpression("ERROR").exactLiteral == Array("ERROR".utf8))
        #expect(try RegularExpression("ERROR.*timeout").requiredLiteral == Array("timeout".utf8))
        #expect(try RegularExpression("status=5\\d\\d").requiredLiteral == Array("status=5".utf8))
        #expect(try RegularExpression("(?i)error").requiredLiteral == nil)
        #expect(try RegularExpression("a|b").requiredLiteral == nil)
        #expect(try RegularExpression("^abc").exactLiteral == nil)
        #expect(try RegularExpression("x(abc)+y").requiredLiteral == Array("abc".utf8))
    }

    @Test("an expression, its pooled matchers and their caches are freed with it (fuzzing found them leaking)")
    func noRetainCycle() throws {
        weak var core: RegexCore?
        do {
            let regex = try RegularExpression("(?<x>a+)b")
            core = regex.core
            #expect(regex.matches("xaab"))
            #expect(regex.firstMatch(in: "xaab") != nil)
        }
        #expect(core == nil, "a query's regex would leak its matchers on every query")
    }

    @Test("named groups and numbering")
    func groups() throws {
        let regex = try RegularExpression("(?<ip>\\S+) (\\S+) (?<user>\\S+)")
        #expect(regex.groupCount == 3)
        #expect(regex.namedGroups.map(\.name) == ["ip", "user"])
        #expect(regex.namedGroups.map(\.index) == [1, 3])
        let text = "10.0.0.1 - frank"
        let match = try #require(regex.firstMatch(in: text))
        let bytes = Array(text.utf8)
        #expect(match.range(named: "user").map { String(decoding: bytes[$0], as: UTF8.self) } == "frank")
    }
}

@Suite("Regular expressions: refused constructs are located and named")
struct RegexErrorTests {
    static let cases: [(String, Int, String)] = [
        ("(a)\\1", 3, "backreferences"),
        ("(?<n>a)\\k<n>", 7, "backreferences"),
        ("(?P=n)", 0, "backreferences"),
        ("a(?=b)", 1, "look-ahead"),
        ("a(?!b)", 1, "look-ahead"),
        ("(?<=a)b", 0, "look-behind"),
        ("(?<!a)b", 0, "look-behind"),
        ("(?>a)", 0, "atomic"),
        ("a*+", 2, "possessive"),
        ("(?R)", 0, "recursion"),
        ("(?(1)a|b)", 0, "conditionals"),
        ("\\p{L}", 0, "Unicode property"),
        ("a{1001}", 1, "larger than 1000"),
        ("a{3,2}", 1, "out of order"),
        ("(a", 0, "unterminated group"),
        ("a)", 1, "unmatched ')'"),
        ("[z-a]", 1, "out of order"),
        ("[abc", 0, "unterminated character class"),
        ("*a", 0, "nothing to repeat"),
        ("a**", 2, "cannot follow another repetition"),
        ("\\q", 0, "unknown escape"),
        ("[[:nope:]]", 1, "unknown class"),
        ("(?x)a", 2, "unknown flag"),
        ("(?<1a>x)", 3, "cannot start with a digit"),
        ("(?<a>x)(?<a>y)", 10, "used twice"),
        ("^*", 1, "cannot be repeated"),
        ("x\\", 1, "ends with"),
        ("(a{1000}){1000}", 9, "too large"),
    ]

    @Test("errors", arguments: cases)
    func errors(_ c: (String, Int, String)) {
        do {
            _ = try RegularExpression(c.0)
            Issue.record("/\(c.0)/ should be refused")
        } catch {
            #expect(error.offset == c.1, "/\(c.0)/: \(error)")
            #expect(error.message.contains(c.2), "/\(c.0)/: \(error)")
        }
    }

    @Test("nesting deeper than the limit is an error, not a stack overflow")
    func deepNesting() {
        let pattern = String(repeating: "(", count: 10_000) + "a" + String(repeating: ")", count: 10_000)
        #expect(throws: RegexSyntaxError.self) { try RegularExpression(pattern) }
    }
}

@Suite("Regular expressions: linear time on hostile input")
struct RegexLinearTimeTests {
    /// CPU time of `body` in seconds.
    func seconds(_ body: () -> Void) -> Double {
        let clock = ContinuousClock()
        let elapsed = clock.measure(body)
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    @Test("catastrophic-backtracking patterns stay linear", arguments: ["(a+)+$", "(a|aa)+c", "(x+x+)+y", "(a*)*b", "(.*a){20}", "^(\\w+\\s?)*$"])
    func linear(_ pattern: String) throws {
        let regex = try RegularExpression(pattern)
        // 200 KB that almost matches.
        let text = [UInt8](repeating: UInt8(ascii: pattern.contains("x") ? "x" : "a"), count: 200_000) + [0x21]
        var matched = false
        let took = seconds { matched = regex.matches(text) }
        _ = matched
        #expect(took < 2, "/\(pattern)/ took \(took) s on 200 KB")
        // Captures take the Pike VM: also linear (a backtracker needs years for this on 2 KB).
        let short = Array(text.suffix(2_000))
        let capturing = seconds { _ = short.withUnsafeBytes { regex.firstMatch(in: $0) } }
        #expect(capturing < 2, "/\(pattern)/ with captures took \(capturing) s on 2 KB")
    }

    @Test("an automaton too large for the cache is cleared and rebuilt, still correct")
    func cacheResets() throws {
        // The DFA for this has 2^13 states.
        let regex = try RegularExpression("(a|b)*a(a|b){12}x")
        var g: UInt64 = 7
        var text: [UInt8] = []
        for _ in 0..<16_000 { g = g &* 6364136223846793005 &+ 1; text.append((g >> 40) & 1 == 0 ? 0x61 : 0x62) }
        let matcher = regex.makeMatcher()
        #expect(!text.withUnsafeBytes { matcher.matches($0) })
        #expect(matcher.cacheResets > 0)
        text[10_000] = 0x61
        text[10_013] = 0x78
        #expect(text.withUnsafeBytes { matcher.matches($0) })
        #expect(text.withUnsafeBytes { regex.firstMatch(in: $0) }?.range.upperBound == 10_014)
    }
}
