import Testing
import FilterPatterns

/// Thousands of random patterns and events, built from the language's own pieces so most of them
/// parse: nothing may crash, hang or disagree with itself.
@Suite("Filter pattern fuzzing")
struct FuzzTests {
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        mutating func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }
        mutating func chance(_ percent: UInt64) -> Bool { next() % 100 < percent }
    }

    static let pieces = ["{", "}", "[", "]", "(", ")", "$.", "$.a", "$.b[0]", "$.*", "[*]", "=", "!=", "<", ">=", "&&", "||",
                         "\"", "\"x y\"", "%", "%a|b%", "%[0-9]+%", "...", ",", "IS", "NULL", "TRUE", "NOT", "EXISTS", "*",
                         "ERROR", "-", "?", " ", "  ", "1e3", "-2.5", "\\", "\\x3A", "{2,3}", "é", "\u{0}", "\t", "'"]
    static let events = ["", "ERROR x", "{\"a\":1,\"b\":[2,3]}", "{\"a\":\"x y\"}", "[", "{", "a \"b c\" [d e] 4",
                         "\u{FF}\u{FE}", "{\"a\":{\"a\":{\"a\":null}}}", String(repeating: "[", count: 600),
                         String(repeating: "{\"a\":", count: 700), "1 2 3 4 5 6 7 8 9", "\"unterminated", "tab\tseparated\tline"]

    @Test("random patterns over hostile events never crash and match consistently")
    func randomPatterns() {
        var g = Generator(state: 0x5EED)
        var parsed = 0
        for _ in 0..<20_000 {
            var text = ""
            let length = 1 + Int(g.next() % 12)
            for _ in 0..<length { text += g.pick(Self.pieces) + (g.chance(40) ? " " : "") }
            if g.chance(30) { text = "{ " + text + " }" } else if g.chance(20) { text = "[" + text + "]" }
            guard let pattern = try? FilterPattern(text) else { continue }
            parsed += 1
            for event in Self.events {
                let bytes = Array(event.utf8)
                let matched = bytes.withUnsafeBytes { pattern.matches($0) }
                let extracted = bytes.withUnsafeBytes { pattern.extractedValues($0) }
                #expect(matched == (extracted != nil), "\(text) on \(event)")
            }
        }
        #expect(parsed > 2_000, "the generator should produce many valid patterns (got \(parsed))")
    }

    @Test("random bytes as patterns are rejected or accepted, never a crash")
    func randomBytes() {
        var g = Generator(state: 42)
        for _ in 0..<5_000 {
            let bytes = (0..<Int(g.next() % 40)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            let text = String(decoding: bytes, as: UTF8.self)
            if let pattern = try? FilterPattern(text) {
                _ = pattern.matches(text)
            }
        }
    }

    @Test("a pathological regex stays linear")
    func regexIsLinear() throws {
        let pattern = try FilterPattern("%a*a*a*a*a*a*a*a*b%")
        let event = String(repeating: "a", count: 100_000)
        #expect(pattern.matches(event) == false)
    }
}
