import Testing
@testable import EventPatterns

/// The matchers the rule index checks with (``FlatMatchers``, plain memory) must decide exactly
/// what ``ValueMatcher`` decides: every form of the pattern language against leaves chosen to sit
/// on the edges (case, non-ASCII folding that changes lengths, empty strings, IPv4/IPv6, number
/// spellings and limits).
struct FlatMatcherTests {
    static let matcherTexts = [
        #""abc""#, #""ABC""#, #""""#, "300", "3e2", "0", "-0", "5000000001", "true", "false", "null",
        #"{"prefix": "ab"}"#, #"{"prefix": ""}"#, #"{"prefix": {"equals-ignore-case": "AB"}}"#,
        #"{"prefix": {"equals-ignore-case": "STRASSE"}}"#, #"{"prefix": {"equals-ignore-case": "İ"}}"#, #"{"prefix": "stra"}"#,
        #"{"suffix": "bc"}"#, #"{"suffix": ""}"#, #"{"suffix": {"equals-ignore-case": "BC"}}"#, #"{"suffix": {"equals-ignore-case": "ße"}}"#,
        #"{"equals-ignore-case": "abc"}"#, #"{"equals-ignore-case": "Straße"}"#, #"{"equals-ignore-case": "İSTANBUL"}"#,
        #"{"equals-ignore-case": ""}"#, #"{"equals-ignore-case": "àbc"}"#,
        #"{"wildcard": "*"}"#, #"{"wildcard": "a*"}"#, #"{"wildcard": "*c"}"#, #"{"wildcard": "a*c"}"#, #"{"wildcard": "a*b*c"}"#,
        #"{"wildcard": "\\*x"}"#, #"{"wildcard": "ab"}"#, #"{"wildcard": "*b*"}"#, #"{"wildcard": "a*bc*bc"}"#, #"{"wildcard": "terraform/*"}"#,
        #"{"wildcard": "*a*a*"}"#, #"{"wildcard": ""}"#,
        #"{"numeric": [">", 0]}"#, #"{"numeric": ["<=", 5]}"#, #"{"numeric": [">", 0, "<=", 5]}"#, #"{"numeric": [">=", 0, "<", 300]}"#,
        #"{"numeric": ["=", 300]}"#, #"{"numeric": [">=", -5e9]}"#, #"{"numeric": ["<", 5e9]}"#,
        #"{"exists": true}"#, #"{"exists": false}"#,
        #"{"cidr": "10.0.0.0/24"}"#, #"{"cidr": "10.0.0.0/8"}"#, #"{"cidr": "0.0.0.0/0"}"#, #"{"cidr": "10.0.0.1/32"}"#,
        #"{"cidr": "2001:db8::/32"}"#, #"{"cidr": "::/0"}"#, #"{"cidr": "2001:db8::1/128"}"#,
        #"{"anything-but": "abc"}"#, #"{"anything-but": ["abc", "ABD", ""]}"#, #"{"anything-but": 300}"#, #"{"anything-but": [1, 2, 3e2]}"#,
        #"{"anything-but": {"prefix": "ab"}}"#, #"{"anything-but": {"prefix": ["ab", "x"]}}"#, #"{"anything-but": {"suffix": "c"}}"#,
        #"{"anything-but": {"suffix": ["c", "ße"]}}"#, #"{"anything-but": {"equals-ignore-case": ["ABC", "Straße"]}}"#,
        #"{"anything-but": {"equals-ignore-case": "İstanbul"}}"#, #"{"anything-but": {"wildcard": ["a*", "*z"]}}"#,
        #"{"anything-but": {"wildcard": "*b*"}}"#,
    ]

    static let strings = [
        "abc", "ABC", "abd", "ABD", "", "ab", "a", "xab", "abcabc", "aXbYc", "abcbc", "a*c", "*x", "x", "aa", "aXa", "straße", "STRASSE",
        "Straße", "strasse", "STRAẞE", "İSTANBUL", "i̇stanbul", "istanbul", "ÀBC", "àbc", "10.0.0.1", "10.0.1.1", "10.1.0.1", "10.0.0.256",
        "1.2.3", "2001:db8::1", "2001:db9::1", "::ffff:10.0.0.1", "::1", "256.0.0.1", "terraform/1.7.0", "Terraform/1", "abcz", "zebra",
    ]

    static let numbers: [(String, Double)] = [
        ("0", 0), ("-0", -0.0), ("300", 300), ("3e2", 300), ("5", 5), ("5.0", 5), ("-1", -1), ("1", 1), ("2", 2),
        ("5000000000", 5e9), ("5000000001", 5_000_000_001), ("-5000000000", -5e9), ("1e999", .infinity), ("299.9999", 299.9999),
    ]

    @Test func flatMatchersDecideWhatValueMatchersDecide() throws {
        var matchers: [ValueMatcher] = []
        for text in Self.matcherTexts {
            let pattern = try EventPattern(#"{"f": ["# + text + "]}")
            matchers += pattern.alternatives[0][0].matchers
        }
        let flat = FlatMatchers(matchers)
        var leaves: [(LeafKind, [UInt8], Double)] = Self.strings.map { (.string, Array($0.utf8), .nan) }
        leaves += Self.numbers.map { (.number, Array($0.0.utf8), $0.1) }
        leaves += [(.bool, Array("true".utf8), .nan), (.bool, Array("false".utf8), .nan), (.null, Array("null".utf8), .nan)]
        var agreed = 0, held = 0
        for (m, matcher) in matchers.enumerated() {
            for (kind, bytes, number) in leaves {
                bytes.withUnsafeBytes { raw in
                    let expected = matcher.matches(Leaf(kind: kind, bytes: raw, number: number))
                    let got = flat.matches(m, kind: kind, raw, number: number)
                    #expect(got == expected, "\(Self.matcherTexts[m]) on \(kind) \(String(decoding: bytes, as: UTF8.self))")
                    if got == expected { agreed += 1 }
                    if expected { held += 1 }
                }
            }
        }
        #expect(agreed == matchers.count * leaves.count)
        // Both outcomes occur often enough for the comparison to mean something.
        #expect(held > 300 && held < agreed - 300, "\(held) of \(agreed)")
    }

    @Test func conditionsAreCheckedCheapestFirstWithTheIndexedOneLeftOut() throws {
        let pattern = try EventPattern(#"{"a": [{"wildcard": "x*y"}], "b": ["v"], "c": [{"exists": true}], "d": [{"numeric": [">", 1]}]}"#)
        let rules = RuleSet([pattern])
        let flat = rules.flat
        #expect(flat.conditionCount[0] == 3)  // "b" is proven by the index
        let order = (0..<3).map { rules.fieldPaths[Int(flat.field[$0])] }
        #expect(order == [["c"], ["d"], ["a"]])
    }
}
