/// The regular-expression language CloudWatch Logs accepts in filter patterns (`%…%`) and in data
/// protection policies' custom data identifiers, standing alone: same syntax, same linear-time
/// matching (a Thompson NFA, no backtracking), plus the position of matches so callers can mask them.
public struct CloudWatchRegex: Sendable {
    let regex: FilterRegex
    /// Bytes a match can begin with, so the search skips positions that cannot start one.
    private let firstBytes: ByteSet
    /// True when the expression can match the empty string (then every position may start a match).
    private let acceptsEmpty: Bool
    private let anchoredAtStart: Bool

    /// The expression text as written.
    public var source: String { regex.source }

    /// Compiles `text`; errors carry a 1-based column into `text`.
    public init(_ text: String) throws(FilterPatternError) {
        let bytes = Array(text.utf8)
        do {
            regex = try FilterRegex(bytes[...], offset: 0)
        } catch {
            throw FilterPatternError(column: FilterPattern.column(ofByte: error.offset, in: bytes), message: error.message,
                                     expected: error.expected)
        }
        var first = ByteSet()
        var empty = false
        var anchored = true
        for start in regex.starts {
            var s = start
            var sawAnchor = false
            scan: while s < regex.nodes.count {
                switch regex.nodes[s] {
                case .one(let k): first.formUnion(regex.sets[k]); break scan
                case .optional(let k), .star(let k): first.formUnion(regex.sets[k]); s += 1
                case .lineStart: sawAnchor = true; s += 1
                case .lineEnd: s += 1
                case .accept: empty = true; break scan
                }
            }
            if !sawAnchor { anchored = false }
        }
        firstBytes = first
        acceptsEmpty = empty
        anchoredAtStart = anchored
    }

    /// True when the expression matches anywhere in `bytes`.
    public func matches(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let base = bytes.baseAddress else { return regex.search([]) }
        return regex.search(base.assumingMemoryBound(to: UInt8.self), 0, bytes.count)
    }

    /// The leftmost match at or after `from` that is not empty, extended as far as it goes
    /// (leftmost-longest, like POSIX). `^` and `$` anchor at the start and end of `bytes`.
    public func firstMatch(in bytes: UnsafeRawBufferPointer, from: Int = 0) -> Range<Int>? {
        guard let base = bytes.baseAddress, from < bytes.count else { return nil }
        let p = base.assumingMemoryBound(to: UInt8.self)
        let end = bytes.count
        if let literal = regex.literal {
            guard let at = ByteSearch.find(literal, in: p, from, end) else { return nil }
            return at..<(at + literal.count)
        }
        if anchoredAtStart && from > 0 { return nil }
        let nodes = regex.nodes
        let n = nodes.count
        // Each live NFA state remembers the earliest position its thread started at (-1: not live).
        return withUnsafeTemporaryAllocation(of: Int.self, capacity: 2 * n) { buffer -> Range<Int>? in
            var current = buffer.baseAddress!
            var next = current + n
            for k in 0..<(2 * n) { buffer[k] = -1 }
            var best: Range<Int>?
            var live = 0
            var pos = from
            @inline(__always) func enter(_ state: UnsafeMutablePointer<Int>, _ s: Int, _ start: Int) {
                if state[s] < 0 || start < state[s] { state[s] = start }
            }
            while true {
                // A new thread may start here while no match has been found yet.
                if best == nil && (live > 0 || acceptsEmpty || (pos < end && firstBytes.contains(p[pos]))) {
                    for s in regex.starts { enter(current, s, pos) }
                }
                // Epsilon closure: edges only go forward, so one ascending pass settles it.
                live = 0
                for s in 0..<n where current[s] >= 0 {
                    let start = current[s]
                    if let found = best, start > found.lowerBound { current[s] = -1; continue }
                    switch nodes[s] {
                    case .accept:
                        current[s] = -1
                        if pos > start, best == nil || start < best!.lowerBound || (start == best!.lowerBound && pos > best!.upperBound) {
                            best = start..<pos
                        }
                        continue
                    case .optional, .star: enter(current, s + 1, start)
                    case .lineStart: if pos == 0 { enter(current, s + 1, start) }
                    case .lineEnd: if pos == end { enter(current, s + 1, start) }
                    case .one: break
                    }
                    live += 1
                }
                guard pos < end, live > 0 || (best == nil && !anchoredAtStart) else { return best }
                let byte = p[pos]
                var survivors = 0
                for s in 0..<n where current[s] >= 0 {
                    let start = current[s]
                    current[s] = -1
                    switch nodes[s] {
                    case .one(let k), .optional(let k):
                        if regex.sets[k].contains(byte) { enter(next, s + 1, start); survivors += 1 }
                    case .star(let k):
                        if regex.sets[k].contains(byte) { enter(next, s, start); survivors += 1 }
                    default: break
                    }
                }
                swap(&current, &next)
                live = survivors
                pos += 1
                if best != nil && live == 0 { return best }
                // Nothing live and nothing found: jump to the next byte that can begin a match.
                if live == 0 && best == nil && !acceptsEmpty {
                    if anchoredAtStart { return nil }
                    while pos < end && !firstBytes.contains(p[pos]) { pos += 1 }
                }
            }
        }
    }
}
