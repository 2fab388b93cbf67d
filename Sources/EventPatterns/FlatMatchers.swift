#if canImport(Glibc)
import Glibc
#endif

/// ``ValueMatcher``s lowered to plain memory for the matching hot path: one fixed-size record per
/// matcher, with its strings, lists and numbers in shared blocks. ``ValueMatcher`` holds arrays and
/// sets, so evaluating it copies them (reference counting) and some forms allocate per leaf (an
/// `anything-but` list hashes a copy of the value, case folding builds a new array); this form
/// reads bytes in place and allocates only to fold non-ASCII text, which Unicode rules need.
/// It decides exactly what ``ValueMatcher/matches(_:)`` decides (tested against it). Immutable
/// once built, freed with its owner.
final class FlatMatchers: @unchecked Sendable {
    enum Op: UInt8 {
        case exactString, exactNumber, exactBool, exactNull
        case prefix, suffix, equalsIgnoreCase, wildcard
        case numeric, exists, cidr4, cidr6
        case butStrings, butNumbers, butPrefixes, butSuffixes, butIgnoringCase, butWildcards
    }

    /// One matcher. `start`/`count` locate its data: a byte range of ``bytes`` (strings), a range
    /// of ``spans`` (lists of strings; wildcard pieces; for `butWildcards` spans of spans) or of
    /// ``numbers``.
    struct Matcher {
        var op: Op
        /// `prefix`/`suffix`: ignoring case. `exactBool`, `exists`: the value. `numeric`: lower bound inclusive.
        var flag = false
        /// `numeric`: upper bound inclusive.
        var flag2 = false
        var start: Int32 = 0
        var count: Int32 = 0
        /// `exactNumber`: the value; `numeric`: the bounds (open sides at ∓infinity, inclusive).
        var x: Double = 0
        var y: Double = 0
        /// `cidr4`: network and mask; `cidr6`: the prefix length in `mask`.
        var net: UInt32 = 0
        var mask: UInt32 = 0
    }

    struct Span {
        var start: Int32
        var count: Int32
    }

    let count: Int
    let matchers: UnsafeMutablePointer<Matcher>
    let bytes: UnsafeMutablePointer<UInt8>
    let spans: UnsafeMutablePointer<Span>
    let numbers: UnsafeMutablePointer<Double>
    private let byteCount: Int, spanCount: Int, numberCount: Int

    init(_ list: [ValueMatcher]) {
        var b = Builder()
        let flat = list.map { b.lower($0) }
        count = flat.count
        matchers = .allocate(capacity: max(1, flat.count))
        matchers.initialize(from: flat, count: flat.count)
        byteCount = max(1, b.bytes.count)
        bytes = .allocate(capacity: byteCount)
        bytes.initialize(repeating: 0, count: byteCount)
        bytes.update(from: b.bytes, count: b.bytes.count)
        spanCount = max(1, b.spans.count)
        spans = .allocate(capacity: spanCount)
        spans.initialize(from: b.spans, count: b.spans.count)
        numberCount = max(1, b.numbers.count)
        numbers = .allocate(capacity: numberCount)
        numbers.initialize(from: b.numbers, count: b.numbers.count)
    }

    deinit {
        matchers.deallocate()
        bytes.deallocate()
        spans.deallocate()
        numbers.deallocate()
    }

    struct Builder {
        var bytes: [UInt8] = []
        var spans: [Span] = []
        var numbers: [Double] = []

        mutating func text(_ t: [UInt8]) -> Span {
            defer { bytes += t }
            return Span(start: Int32(bytes.count), count: Int32(t.count))
        }

        /// A list of strings as a range of spans.
        mutating func list(_ items: [[UInt8]]) -> Span {
            let texts = items.map { text($0) }
            defer { spans += texts }
            return Span(start: Int32(spans.count), count: Int32(texts.count))
        }

        /// A list of wildcards as a range of spans, each a range of spans (its pieces).
        mutating func wildcards(_ items: [Wildcard]) -> Span {
            let groups = items.map { list($0.pieces) }
            defer { spans += groups }
            return Span(start: Int32(spans.count), count: Int32(groups.count))
        }

        mutating func lower(_ matcher: ValueMatcher) -> Matcher {
            func with(_ op: Op, _ span: Span, flag: Bool = false) -> Matcher {
                Matcher(op: op, flag: flag, start: span.start, count: span.count)
            }
            switch matcher {
            case .exact(.string(let s)): return with(.exactString, text(s))
            case .exact(.number(let d)): return Matcher(op: .exactNumber, x: d)
            case .exact(.bool(let b)): return Matcher(op: .exactBool, flag: b)
            case .exact(.null): return Matcher(op: .exactNull)
            case .prefix(let p, let ignoringCase): return with(.prefix, text(p), flag: ignoringCase)
            case .suffix(let s, let ignoringCase): return with(.suffix, text(s), flag: ignoringCase)
            case .equalsIgnoreCase(let folded): return with(.equalsIgnoreCase, text(folded))
            case .wildcard(let w): return with(.wildcard, list(w.pieces))
            case .numeric(let range):
                return Matcher(op: .numeric, flag: range.lower == nil || range.lowerInclusive, flag2: range.upper == nil || range.upperInclusive,
                               x: range.lower ?? -.infinity, y: range.upper ?? .infinity)
            case .exists(let wanted): return Matcher(op: .exists, flag: wanted)
            case .cidr(let range):
                if range.network.count == 4 {
                    let net = range.network.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                    let mask: UInt32 = range.prefixLength == 0 ? 0 : ~UInt32(0) << UInt32(32 - range.prefixLength)
                    return Matcher(op: .cidr4, net: net & mask, mask: mask)
                }
                var m = with(.cidr6, text(range.network))
                m.mask = UInt32(range.prefixLength)
                return m
            case .anythingBut(let rule):
                switch rule {
                case .strings(let values): return with(.butStrings, list(values.sorted { $0.lexicographicallyPrecedes($1) }))
                case .numbers(let values):
                    defer { numbers += values }
                    return Matcher(op: .butNumbers, start: Int32(numbers.count), count: Int32(values.count))
                case .prefixes(let values): return with(.butPrefixes, list(values))
                case .suffixes(let values): return with(.butSuffixes, list(values))
                case .ignoringCase(let values): return with(.butIgnoringCase, list(values.sorted { $0.lexicographicallyPrecedes($1) }))
                case .wildcards(let values): return with(.butWildcards, wildcards(values))
                }
            }
        }
    }

    @inline(__always)
    func text(_ span: Span) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: bytes + Int(span.start), count: Int(span.count))
    }

    /// Whether leaf value (`kind`, `leaf`, `number`) satisfies matcher `index`.
    func matches(_ index: Int, kind: LeafKind, _ leaf: UnsafeRawBufferPointer, number: Double) -> Bool {
        let m = matchers[index]
        switch m.op {
        case .exactString:
            return kind == .string && Bytes.equal(leaf, text(Span(start: m.start, count: m.count)))
        case .exactNumber: return kind == .number && number == m.x
        case .exactBool: return kind == .bool && leaf.count == (m.flag ? 4 : 5)
        case .exactNull: return kind == .null
        case .numeric:
            guard kind == .number, number.isFinite, abs(number) <= NumericRange.limit else { return false }
            if m.flag ? number < m.x : number <= m.x { return false }
            if m.flag2 ? number > m.y : number >= m.y { return false }
            return true
        case .exists: return m.flag
        case .cidr4:
            guard kind == .string, let address = IPAddress.v4(leaf) else { return false }
            return address & m.mask == m.net
        case .butNumbers:
            guard kind == .number else { return false }
            for k in Int(m.start)..<Int(m.start + m.count) where numbers[k] == number { return false }
            return true
        default:
            guard kind == .string else { return false }
            return matchesString(m, leaf)
        }
    }

    /// The string forms (the leaf is a string).
    private func matchesString(_ m: Matcher, _ leaf: UnsafeRawBufferPointer) -> Bool {
        let data = Span(start: m.start, count: m.count)
        switch m.op {
        case .prefix, .suffix, .equalsIgnoreCase, .butIgnoringCase:
            let ignoringCase = m.flag || m.op == .equalsIgnoreCase || m.op == .butIgnoringCase
            if !ignoringCase || Bytes.isASCII(leaf) { return folded(m, leaf, data, asciiFold: ignoringCase) }
            // Unicode lower-casing may change lengths: fold a copy, as ValueMatcher does.
            let copy = CaseFolding.fold(leaf)
            return copy.withUnsafeBytes { folded(m, $0, data, asciiFold: false) }
        case .wildcard: return wildcard(data, leaf)
        case .cidr6:
            guard let address = IPAddress.parse(Substring(decoding: leaf, as: UTF8.self)) else { return false }
            return CIDRRange(network: Array(text(data)), prefixLength: Int(m.mask)).contains(address)
        case .butStrings:
            for k in Int(data.start)..<Int(data.start + data.count) where Bytes.equal(leaf, text(spans[k])) { return false }
            return true
        case .butPrefixes:
            for k in Int(data.start)..<Int(data.start + data.count) where Bytes.hasPrefix(leaf, text(spans[k]), asciiFold: false) { return false }
            return true
        case .butSuffixes:
            for k in Int(data.start)..<Int(data.start + data.count) where Bytes.hasSuffix(leaf, text(spans[k]), asciiFold: false) { return false }
            return true
        case .butWildcards:
            for k in Int(data.start)..<Int(data.start + data.count) where wildcard(spans[k], leaf) { return false }
            return true
        default:
            return false
        }
    }

    /// Prefix, suffix and case-insensitive equality on `leaf`, folding ASCII letters of the leaf
    /// on the fly when `asciiFold` (the pattern side is folded already).
    @inline(__always)
    private func folded(_ m: Matcher, _ leaf: UnsafeRawBufferPointer, _ data: Span, asciiFold: Bool) -> Bool {
        switch m.op {
        case .prefix: return Bytes.hasPrefix(leaf, text(data), asciiFold: asciiFold)
        case .suffix: return Bytes.hasSuffix(leaf, text(data), asciiFold: asciiFold)
        case .equalsIgnoreCase: return leaf.count == Int(data.count) && Bytes.hasPrefix(leaf, text(data), asciiFold: asciiFold)
        default:  // butIgnoringCase
            for k in Int(data.start)..<Int(data.start + data.count) {
                let value = text(spans[k])
                if leaf.count == value.count && Bytes.hasPrefix(leaf, value, asciiFold: asciiFold) { return false }
            }
            return true
        }
    }

    /// ``Wildcard/matches(_:)`` over pieces stored as the spans `pieces`.
    private func wildcard(_ pieces: Span, _ s: UnsafeRawBufferPointer) -> Bool {
        let firstPiece = Int(pieces.start), lastPiece = Int(pieces.start + pieces.count) - 1
        if firstPiece == lastPiece { return Bytes.equal(s, text(spans[firstPiece])) }
        let first = text(spans[firstPiece]), last = text(spans[lastPiece])
        guard s.count >= first.count + last.count, Bytes.hasPrefix(s, first, asciiFold: false),
              Bytes.hasSuffix(s, last, asciiFold: false) else { return false }
        var position = first.count
        let limit = s.count - last.count
        var k = firstPiece + 1
        while k < lastPiece {
            let piece = text(spans[k])
            k += 1
            if piece.isEmpty { continue }
            guard let found = Bytes.find(piece, in: s, from: position, to: limit) else { return false }
            position = found + piece.count
        }
        return true
    }
}

/// Comparisons of raw byte ranges.
enum Bytes {
    @inline(__always)
    static func equal(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        a.count == b.count && (a.count == 0 || memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0)
    }

    /// Whether `a` starts with `p`; with `asciiFold`, ASCII capitals of `a` count as their lower case.
    @inline(__always)
    static func hasPrefix(_ a: UnsafeRawBufferPointer, _ p: UnsafeRawBufferPointer, asciiFold: Bool) -> Bool {
        guard a.count >= p.count else { return false }
        if p.count == 0 { return true }
        return asciiFold ? foldedEqual(a.baseAddress!, p.baseAddress!, p.count) : memcmp(a.baseAddress!, p.baseAddress!, p.count) == 0
    }

    @inline(__always)
    static func hasSuffix(_ a: UnsafeRawBufferPointer, _ s: UnsafeRawBufferPointer, asciiFold: Bool) -> Bool {
        guard a.count >= s.count else { return false }
        if s.count == 0 { return true }
        let tail = a.baseAddress! + (a.count - s.count)
        return asciiFold ? foldedEqual(tail, s.baseAddress!, s.count) : memcmp(tail, s.baseAddress!, s.count) == 0
    }

    /// `a[0..<n]` with ASCII capitals lowered equals `folded[0..<n]`.
    static func foldedEqual(_ a: UnsafeRawPointer, _ folded: UnsafeRawPointer, _ n: Int) -> Bool {
        for i in 0..<n {
            var c = a.load(fromByteOffset: i, as: UInt8.self)
            if c >= 0x41 && c <= 0x5A { c |= 0x20 }
            if c != folded.load(fromByteOffset: i, as: UInt8.self) { return false }
        }
        return true
    }

    /// The first index ≥ `from` where `needle` (not empty) occurs in `hay` and ends by `to`.
    static func find(_ needle: UnsafeRawBufferPointer, in hay: UnsafeRawBufferPointer, from: Int, to: Int) -> Int? {
        let n = needle.count
        guard n > 0, n <= to - from, let base = hay.baseAddress else { return nil }
        let first = Int32(needle[0])
        var i = from
        while i + n <= to {
            guard let hit = memchr(base + i, first, to - n + 1 - i) else { return nil }
            i = UnsafeRawPointer(hit) - base
            if memcmp(base + i, needle.baseAddress!, n) == 0 { return i }
            i += 1
        }
        return nil
    }

    static func isASCII(_ a: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = a.count
        guard let p = a.baseAddress else { return true }
        while i + 8 <= n {
            if p.loadUnaligned(fromByteOffset: i, as: UInt64.self) & 0x8080_8080_8080_8080 != 0 { return false }
            i += 8
        }
        while i < n {
            if p.load(fromByteOffset: i, as: UInt8.self) >= 0x80 { return false }
            i += 1
        }
        return true
    }
}
