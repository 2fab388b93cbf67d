import CShims
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A user regular expression, compiled once, matched in time linear in the text.
///
/// The syntax is the common Perl/RE2 subset (see the README's "Regular expressions"): literals,
/// `.`, classes with ranges, `\d \w \s` (ASCII) and `[:alpha:]`-style names, `* + ? {m} {m,} {m,n}`
/// (bounds up to 1000) and their lazy forms, `| ( ) (?: ) (?<name> )`, anchors `^ $ \A \z \b \B`
/// and the flags `(?i) (?m) (?s)`. Backreferences, look-around and other constructs that need
/// backtracking are refused at compile time with their location.
///
/// Matching runs over bytes (text is UTF-8; `.` and negated classes also match any byte that is not
/// valid UTF-8, so invalid input never blocks a match). A yes/no question runs a lazily built DFA;
/// capture positions come from a Pike VM; both are linear in the text with no backtracking. A
/// literal every match must contain is searched with memmem first.
///
/// Values are `Sendable`: the convenience methods borrow a matcher from a small pool. Code that
/// matches many texts on one thread should hold a ``RegexMatcher`` (``makeMatcher()``) instead.
public struct RegularExpression: Sendable, CustomStringConvertible {
    let core: RegexCore
    let pool: MatcherPool

    /// Compiles `pattern`, or throws where and why it is refused.
    public init(_ pattern: String, options: RegexOptions = []) throws(RegexSyntaxError) {
        try self.init(bytes: Array(pattern.utf8), options: options)
    }

    public init(bytes: [UInt8], options: RegexOptions = []) throws(RegexSyntaxError) {
        core = try RegexCore(bytes: bytes, options: options)
        pool = MatcherPool()
    }

    /// The pattern as written.
    public var pattern: String { core.pattern }
    public var options: RegexOptions { core.options }
    /// Name of each capture group by number (index 0, the whole match, is nil; unnamed groups are nil).
    public var groupNames: [String?] { core.groupNames }
    /// Bytes every match contains (the longest such literal the analysis finds), for prefilters.
    public var requiredLiteral: [UInt8]? { core.requiredLiteral }
    /// Set when the whole expression is one literal with no anchors: a plain substring search.
    public var exactLiteral: [UInt8]? { core.exactLiteral }
    var program: RegexProgram { core.program }

    public var description: String { pattern }

    /// Number of capture groups (not counting the whole match).
    public var groupCount: Int { core.groupCount }

    /// The named groups: (number, name) in order.
    public var namedGroups: [(index: Int, name: String)] { core.namedGroups }

    /// A matcher for one thread: it keeps its DFA cache and scratch space between calls.
    public func makeMatcher() -> RegexMatcher { RegexMatcher(core) }

    /// True when the expression matches somewhere in `text`.
    public func matches(_ text: UnsafeRawBufferPointer) -> Bool {
        if let exactLiteral = core.exactLiteral { return LiteralSearch.contains(text, exactLiteral) }
        if let requiredLiteral = core.requiredLiteral, !LiteralSearch.contains(text, requiredLiteral) { return false }
        return pool.with(core) { $0.matchesWithoutPrefilter(text) }
    }

    public func matches(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { matches(UnsafeRawBufferPointer($0)) }
    }

    public func matches(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { matches($0) } }

    /// The leftmost-first match in `text` with its groups, or nil.
    public func firstMatch(in text: UnsafeRawBufferPointer) -> RegexMatch? {
        if let requiredLiteral = core.requiredLiteral, !LiteralSearch.contains(text, requiredLiteral) { return nil }
        return pool.with(core) { $0.firstMatchWithoutPrefilter(text) }
    }

    public func firstMatch(in text: String) -> RegexMatch? {
        var text = text
        return text.withUTF8 { firstMatch(in: UnsafeRawBufferPointer($0)) }
    }

    /// The leftmost-longest non-empty match that starts at or after `from` (POSIX's rule; what masking
    /// needs), or nil. `^` and `\A` still mean the start of `text`.
    public func longestMatch(in text: UnsafeRawBufferPointer, from: Int = 0) -> Range<Int>? {
        pool.with(core) { $0.longestMatch(in: text, from: from) }
    }

    /// Every leftmost-longest non-empty match, left to right, none overlapping (what masking needs).
    ///
    /// Knowing where the longest match ends can mean reading past it until no thread is left, and
    /// the next search reads that stretch again: with `a|a[a-z]*y` over a run of letters every
    /// match costs the rest of the text, which makes the whole scan quadratic. So the positions
    /// stepped are bounded by `workLimit` (default 4 per byte of text plus 64 Ki). When the bound
    /// is reached the scan stops and `unscannedFrom` says where; everything before it is exact.
    public func longestMatches(in text: UnsafeRawBufferPointer, workLimit: Int? = nil) -> (matches: [Range<Int>], unscannedFrom: Int?) {
        pool.with(core) { $0.longestMatches(in: text, workLimit: workLimit) }
    }
}

/// What compiling produced, shared by an expression and its matchers (never the pool: matchers sit
/// in the pool, and a matcher holding the pool would keep both alive forever).
final class RegexCore: Sendable {
    let pattern: String
    let options: RegexOptions
    let groupNames: [String?]
    let requiredLiteral: [UInt8]?
    let exactLiteral: [UInt8]?
    let program: RegexProgram

    init(bytes: [UInt8], options: RegexOptions) throws(RegexSyntaxError) {
        pattern = String(decoding: bytes, as: UTF8.self)
        self.options = options
        var parser = RegexParser(bytes, options: options)
        let root = try parser.parse()
        groupNames = parser.groupNames
        program = try RegexCompiler.compile(root, groupCount: parser.groupNames.count - 1, byteMode: options.contains(.bytes))
        let facts = LiteralFacts.of(root, byteMode: options.contains(.bytes))
        exactLiteral = facts.exact.flatMap { $0.isEmpty ? nil : $0 }
        requiredLiteral = facts.required.flatMap { $0.isEmpty ? nil : $0 }
    }

    var groupCount: Int { groupNames.count - 1 }
    var namedGroups: [(index: Int, name: String)] { groupNames.enumerated().compactMap { k, name in name.map { (k, $0) } } }
}

/// Where a match and its groups are, as byte ranges of the text searched.
public struct RegexMatch: Sendable, Equatable {
    /// Slot pairs: start and end of group k at 2k and 2k+1 (-1 when the group did not take part).
    let slots: [Int]
    let groupNames: [String?]

    /// The whole match.
    public var range: Range<Int> { slots[0]..<slots[1] }

    /// Group `k`'s range (0 is the whole match), or nil when it did not take part.
    public func range(_ k: Int) -> Range<Int>? {
        guard 2 * k + 1 < slots.count, slots[2 * k] >= 0, slots[2 * k + 1] >= slots[2 * k] else { return nil }
        return slots[2 * k]..<slots[2 * k + 1]
    }

    /// The named group's range, or nil when there is no such group or it did not take part.
    public func range(named name: String) -> Range<Int>? {
        guard let k = groupNames.firstIndex(of: name) else { return nil }
        return range(k)
    }
}

/// A matcher owned by one thread: the lazy DFA's cache and the VM's thread lists live here.
public final class RegexMatcher {
    let core: RegexCore
    private var dfa: LazyDFA
    private var vm: PikeVM?
    private var backtracker: BoundedBacktracker?

    init(_ core: RegexCore) {
        self.core = core
        dfa = LazyDFA(program: core.program)
    }

    /// See ``RegularExpression``.
    public var exactLiteral: [UInt8]? { core.exactLiteral }
    public var requiredLiteral: [UInt8]? { core.requiredLiteral }
    public var groupCount: Int { core.groupCount }
    public var namedGroups: [(index: Int, name: String)] { core.namedGroups }

    /// True when the expression matches somewhere in `text`.
    public func matches(_ text: UnsafeRawBufferPointer) -> Bool {
        if let literal = core.exactLiteral { return LiteralSearch.contains(text, literal) }
        if let literal = core.requiredLiteral, !LiteralSearch.contains(text, literal) { return false }
        return dfa.matches(text)
    }

    /// ``matches(_:)`` for callers that already know the required literal occurs (batch prefilters).
    public func matchesWithoutPrefilter(_ text: UnsafeRawBufferPointer) -> Bool {
        if let literal = core.exactLiteral { return LiteralSearch.contains(text, literal) }
        return dfa.matches(text)
    }

    /// The leftmost-first match with its groups, or nil.
    public func firstMatch(in text: UnsafeRawBufferPointer) -> RegexMatch? {
        if let literal = core.requiredLiteral, !LiteralSearch.contains(text, literal) { return nil }
        return firstMatchWithoutPrefilter(text)
    }

    func firstMatchWithoutPrefilter(_ text: UnsafeRawBufferPointer) -> RegexMatch? {
        // The DFA answers "no" far faster than the VM finds positions; most texts do not match.
        guard dfa.matches(text) else { return nil }
        if backtracker == nil { backtracker = BoundedBacktracker(program: core.program) }
        let slots: [Int]?
        if backtracker!.accepts(count: text.count) {
            slots = backtracker!.search(text)
        } else {
            if vm == nil { vm = PikeVM(program: core.program) }
            slots = vm!.search(text)
        }
        guard let slots else { return nil }
        return RegexMatch(slots: slots, groupNames: core.groupNames)
    }

    /// See ``RegularExpression/longestMatch(in:from:)``.
    public func longestMatch(in text: UnsafeRawBufferPointer, from: Int = 0) -> Range<Int>? {
        guard from <= text.count else { return nil }
        if let literal = core.requiredLiteral,
           !LiteralSearch.contains(UnsafeRawBufferPointer(rebasing: text[from...]), literal) { return nil }
        // From the start, the DFA rules out most texts before the VM runs.
        if from == 0 && !dfa.matches(text) { return nil }
        if vm == nil { vm = PikeVM(program: core.program) }
        guard let slots = vm!.search(text, from: from, longest: true, nonEmpty: true) else { return nil }
        return slots[0]..<slots[1]
    }

    /// See ``RegularExpression/longestMatches(in:workLimit:)``.
    public func longestMatches(in text: UnsafeRawBufferPointer, workLimit: Int? = nil) -> (matches: [Range<Int>], unscannedFrom: Int?) {
        var matches: [Range<Int>] = []
        if let literal = core.requiredLiteral, !LiteralSearch.contains(text, literal) { return (matches, nil) }
        guard dfa.matches(text) else { return (matches, nil) }
        if vm == nil { vm = PikeVM(program: core.program) }
        let (work, overflow) = text.count.multipliedReportingOverflow(by: 4)
        vm!.stepBudget = workLimit ?? (overflow ? Int.max : work + 65_536)
        defer { vm!.stepBudget = Int.max }
        var from = 0
        while from < text.count {
            guard let slots = vm!.search(text, from: from, longest: true, nonEmpty: true) else {
                return (matches, vm!.exhausted ? from : nil)
            }
            matches.append(slots[0]..<slots[1])
            from = slots[1]
        }
        return (matches, nil)
    }

    /// Times the DFA cache filled up and was cleared (a sign of a very large automaton).
    public var cacheResets: Int { dfa.resets }
}

/// A few idle matchers shared by the `Sendable` convenience methods.
final class MatcherPool: Sendable {
    private let idle = Mutex<[RegexMatcherBox]>([])
    static let keep = 8

    func with<T>(_ core: RegexCore, _ body: (RegexMatcher) -> T) -> T {
        let matcher = idle.withLock { $0.popLast() }?.matcher ?? RegexMatcher(core)
        let result = body(matcher)
        let box = RegexMatcherBox(matcher: matcher)
        idle.withLock { if $0.count < MatcherPool.keep { $0.append(box) } }
        return result
    }
}

/// A matcher in the pool: only one thread uses it between `popLast` and `append`.
struct RegexMatcherBox: @unchecked Sendable {
    let matcher: RegexMatcher
}

/// memmem over byte buffers.
public enum LiteralSearch {
    /// True when `needle` occurs in `text` (an empty needle always does).
    public static func contains(_ text: UnsafeRawBufferPointer, _ needle: [UInt8]) -> Bool {
        if needle.isEmpty { return true }
        guard let base = text.baseAddress, text.count >= needle.count else { return false }
        return needle.withUnsafeBytes { n in
            if n.count == 1 { return memchr(base, Int32(n[0]), text.count) != nil }
            return tw_memmem(base, text.count, n.baseAddress!, n.count) != nil
        }
    }
}

/// What the expression says about literal text in every match: `exact` when the node matches exactly
/// one string, `required` for the longest string every match contains.
struct LiteralFacts {
    var exact: [UInt8]?
    var required: [UInt8]?

    static func longer(_ a: [UInt8]?, _ b: [UInt8]?) -> [UInt8]? {
        guard let a else { return b }
        guard let b else { return a }
        return b.count > a.count ? b : a
    }

    static func of(_ node: RegexNode, byteMode: Bool) -> LiteralFacts {
        switch node {
        case .empty:
            return LiteralFacts(exact: [], required: nil)
        case .literal(let c):
            let bytes = byteMode || c < 0x80 ? [UInt8(c)] : RegexCompiler.utf8(c)
            return LiteralFacts(exact: bytes, required: bytes)
        case .charClass(let cls):
            // A class of one character is a literal (case folding leaves several).
            if !cls.matchesInvalidBytes, cls.set.ranges.count == 1, cls.set.ranges[0].count == 1 {
                return of(.literal(cls.set.ranges[0].lowerBound), byteMode: byteMode)
            }
            return LiteralFacts(exact: nil, required: nil)
        case .assertion:
            // Zero-width but not a plain substring search.
            return LiteralFacts(exact: nil, required: nil)
        case .group(let inner, _):
            return of(inner, byteMode: byteMode)
        case .concat(let items):
            var run: [UInt8]? = []
            var best: [UInt8]? = nil
            var exact: [UInt8]? = []
            for item in items {
                let f = of(item, byteMode: byteMode)
                if let e = f.exact {
                    run?.append(contentsOf: e)
                    exact?.append(contentsOf: e)
                } else {
                    best = longer(best, run)
                    best = longer(best, f.required)
                    run = []
                    exact = nil
                }
            }
            best = longer(best, run)
            return LiteralFacts(exact: exact, required: best)
        case .alternate:
            return LiteralFacts(exact: nil, required: nil)
        case .repetition(let inner, let minimum, let maximum, _, _):
            let f = of(inner, byteMode: byteMode)
            if minimum == 0 { return LiteralFacts(exact: maximum == 0 ? [] : nil, required: nil) }
            if minimum == maximum, let e = f.exact, e.count * minimum <= 256 {
                let repeated = Array([[UInt8]](repeating: e, count: minimum).joined())
                return LiteralFacts(exact: repeated, required: repeated)
            }
            return LiteralFacts(exact: nil, required: f.required ?? f.exact)
        }
    }
}
