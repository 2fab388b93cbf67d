import Testing
@testable import LinearRegex

/// A plain backtracking matcher over the parsed expression (ASCII texts only), used as the reference
/// the linear engines must agree with: Perl's leftmost-first semantics, where an iteration that
/// matches the empty string ends its loop.
final class ReferenceBacktracker {
    let text: [UInt8]
    var steps = 0
    var exhausted = false

    init(_ text: [UInt8]) { self.text = text }

    func run(_ node: RegexNode, _ pos: Int, _ k: (Int) -> Bool) -> Bool {
        steps += 1
        if steps > 2_000_000 { exhausted = true; return false }
        switch node {
        case .empty: return k(pos)
        case .literal(let c): return pos < text.count && UInt32(text[pos]) == c && k(pos + 1)
        case .charClass(let cls): return pos < text.count && cls.set.contains(UInt32(text[pos])) && k(pos + 1)
        case .assertion(let a):
            let previous = pos > 0 ? Int(text[pos - 1]) : -1
            let next = pos < text.count ? Int(text[pos]) : -1
            return assertionHolds(a, previous: previous, next: next) && k(pos)
        case .group(let inner, _): return run(inner, pos, k)
        case .concat(let items): return sequence(items[...], pos, k)
        case .alternate(let alternatives):
            for a in alternatives where run(a, pos, k) { return true }
            return false
        case .repetition(let inner, let minimum, let maximum, let greedy, _):
            return repeatNode(inner, minimum, maximum, greedy, count: 0, pos, k)
        }
    }

    func sequence(_ items: ArraySlice<RegexNode>, _ pos: Int, _ k: (Int) -> Bool) -> Bool {
        guard let first = items.first else { return k(pos) }
        return run(first, pos) { p in self.sequence(items.dropFirst(), p, k) }
    }

    func repeatNode(_ inner: RegexNode, _ minimum: Int, _ maximum: Int?, _ greedy: Bool, count: Int, _ pos: Int, _ k: (Int) -> Bool) -> Bool {
        let canStop = count >= minimum
        let canMore = maximum.map { count < $0 } ?? true
        func more() -> Bool {
            canMore && run(inner, pos) { p in
                if p == pos && count + 1 >= minimum { return k(p) }
                return self.repeatNode(inner, minimum, maximum, greedy, count: count + 1, p, k)
            }
        }
        if greedy { return more() || (canStop && k(pos)) }
        return (canStop && k(pos)) || more()
    }

    /// The leftmost-first match's range, or nil.
    func search(_ node: RegexNode) -> Range<Int>? {
        for start in 0...text.count {
            var end = -1
            if run(node, start, { p in end = p; return true }) { return start..<end }
        }
        return nil
    }
}

@Suite("Regular expressions: agreement with a backtracking reference")
struct RegexDifferentialTests {
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
        mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

        mutating func expression(_ depth: Int) -> String {
            let count = 1 + below(3)
            var parts: [String] = []
            for _ in 0..<count { parts.append(term(depth)) }
            var text = parts.joined()
            if below(5) == 0 { text += "|" + term(depth) }
            return text
        }

        mutating func term(_ depth: Int) -> String {
            var atom: String
            switch below(depth > 2 ? 6 : 8) {
            case 0, 1: atom = pick(["a", "b", "c", " ", "1"])
            case 2: atom = pick([".", "[ab]", "[^a]", "\\w", "\\d", "\\s", "[a-c]", "[[:alpha:]]"])
            case 3: atom = pick(["^", "$", "\\b", "\\B"])
            case 4: atom = pick(["ab", "ba", "abc"])
            case 5: atom = pick(["(?i)A", "(?m)^", "(?s)."])
            default: atom = pick(["(", "(?:", "(?<g\(depth)>"]) + expression(depth + 1) + ")"
            }
            if atom.hasPrefix("^") || atom.hasPrefix("$") || atom.hasPrefix("\\b") || atom.hasPrefix("\\B") || atom.hasPrefix("(?m)") { return atom }
            if below(3) == 0 {
                atom += pick(["*", "+", "?", "{1,2}", "{2}", "{0,1}", "{2,}"])
                if below(3) == 0 { atom += "?" }
            }
            return atom
        }

        mutating func text() -> [UInt8] {
            (0..<below(9)).map { _ in pick(Array("ab c1A\n".utf8)) }
        }
    }

    @Test("random expressions agree with the reference on random texts")
    func agreement() throws {
        var g = Generator(state: 0xC0FFEE)
        var compared = 0
        for _ in 0..<3_000 {
            let pattern = g.expression(0)
            guard let regex = try? RegularExpression(pattern) else { continue }
            var parser = RegexParser(Array(pattern.utf8), options: [])
            let root = try parser.parse()
            for _ in 0..<8 {
                let text = g.text()
                let reference = ReferenceBacktracker(text)
                let expected = reference.search(root)
                if reference.exhausted { continue }
                let found = text.withUnsafeBytes { regex.firstMatch(in: $0) }
                // Both capture engines, whichever the matcher picked.
                let vm = PikeVM(program: regex.program)
                let viaVM = text.withUnsafeBytes { vm.search($0) }
                let viaBacktracker = text.withUnsafeBytes { BoundedBacktracker(program: regex.program).search($0) }
                #expect(viaVM == viaBacktracker, "/\(pattern)/ on \(String(decoding: text, as: UTF8.self).debugDescription): VM \(String(describing: viaVM)) vs backtracker \(String(describing: viaBacktracker))")
                let matched = text.withUnsafeBytes { regex.matches($0) }
                #expect(found?.range == expected, "/\(pattern)/ on \(String(decoding: text, as: UTF8.self).debugDescription)")
                #expect(matched == (expected != nil), "/\(pattern)/ on \(String(decoding: text, as: UTF8.self).debugDescription)")
                compared += 1
            }
        }
        #expect(compared > 10_000)
    }
}
