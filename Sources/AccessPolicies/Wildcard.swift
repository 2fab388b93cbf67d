/// IAM's wildcards: `*` stands for any run of characters (also none, also `:` and `/`), `?` for
/// exactly one. Actions compare without regard to case, resources with it.
///
/// Matching simulates the pattern as an automaton over the set of pattern positions reachable so
/// far, so it runs in O(pattern × text) whatever the input, and the same simulation answers the two
/// set questions requests about many resources need (``covers(prefix:)`` and ``intersects(prefix:)``).
public struct Wildcard: Sendable, Hashable, CustomStringConvertible {
    public let pattern: String
    let bytes: [UInt8]
    let ignoreCase: Bool

    public init(_ pattern: String, ignoreCase: Bool = false) {
        self.pattern = pattern
        self.ignoreCase = ignoreCase
        bytes = ignoreCase ? Array(pattern.utf8).map(Self.lower) : Array(pattern.utf8)
    }

    public var description: String { pattern }

    /// True when the pattern has no wildcard (it names one thing).
    public var isLiteral: Bool { !bytes.contains(UInt8(ascii: "*")) && !bytes.contains(UInt8(ascii: "?")) }

    @inline(__always)
    static func lower(_ b: UInt8) -> UInt8 { b >= 0x41 && b <= 0x5A ? b | 0x20 : b }

    /// The pattern positions reachable after consuming `text` (position `bytes.count` is the end).
    /// `?` consumes one UTF-8 byte: the texts here (ARNs, action names) are ASCII in practice, and a
    /// byte-wise `?` never lets more through than a character-wise one would for them.
    func reachable(after text: some Sequence<UInt8>) -> [Bool] {
        let n = bytes.count
        var current = [Bool](repeating: false, count: n + 1)
        current[0] = true
        closeOverStars(&current)
        var next = [Bool](repeating: false, count: n + 1)
        for raw in text {
            let c = ignoreCase ? Self.lower(raw) : raw
            for j in 0...n { next[j] = false }
            var any = false
            for j in 0..<n where current[j] {
                switch bytes[j] {
                case UInt8(ascii: "*"): next[j] = true; any = true
                case UInt8(ascii: "?"): next[j + 1] = true; any = true
                case c: next[j + 1] = true; any = true
                default: break
                }
            }
            guard any else { return next }
            closeOverStars(&next)
            swap(&current, &next)
        }
        return current
    }

    /// A `*` may match nothing: wherever a position before a star is reachable, so is the one after it.
    func closeOverStars(_ state: inout [Bool]) {
        for j in 0..<bytes.count where state[j] && bytes[j] == UInt8(ascii: "*") { state[j + 1] = true }
    }

    /// Whether the pattern matches all of `text`.
    public func matches(_ text: String) -> Bool {
        reachable(after: text.utf8)[bytes.count]
    }

    /// Whether the pattern matches every text starting with `prefix` (a request about all log
    /// groups under `/app/` is allowed only by a pattern that allows each of them).
    public func covers(prefix: String) -> Bool {
        let state = reachable(after: prefix.utf8)
        // Some reachable position must be followed by nothing but stars.
        var j = bytes.count
        while true {
            if state[j] { return true }
            guard j > 0, bytes[j - 1] == UInt8(ascii: "*") else { return false }
            j -= 1
        }
    }

    /// Whether the pattern matches at least one text starting with `prefix` and going on without
    /// `excluded` (a deny about any group under `/app/` applies to a request about all of them; a
    /// group's name has no `:`, so `…:log-group:/app/web` followed by a name never reaches
    /// `…:log-group:/app/secret` through the pattern's region wildcard).
    public func intersects(prefix: String, continuationExcluding excluded: UInt8? = nil) -> Bool {
        let state = reachable(after: prefix.utf8)
        // From a reachable position, the rest of the pattern is satisfiable unless it needs an
        // excluded byte literally (wildcards can always take something else).
        var satisfiable = true
        for j in stride(from: bytes.count, through: 0, by: -1) {
            if j < bytes.count, let excluded, bytes[j] == excluded { satisfiable = false }
            if state[j] && satisfiable { return true }
        }
        return false
    }
}
