#if canImport(Glibc)
import Glibc
#endif

/// The kind of a leaf value in an event: what the pattern language tells apart.
public enum LeafKind: UInt8, Sendable {
    case string, number, bool, null
}

/// One leaf value of an event as a matcher sees it: strings decoded (UTF-8), numbers with their
/// value and text, booleans and null as their JSON text.
public struct Leaf {
    public var kind: LeafKind
    public var bytes: UnsafeRawBufferPointer
    /// The number's value (numbers only).
    public var number: Double

    public init(kind: LeafKind, bytes: UnsafeRawBufferPointer, number: Double = .nan) {
        self.kind = kind
        self.bytes = bytes
        self.number = number
    }
}

/// An exact value in a pattern (`"running"`, `5`, `true`, `null`): compared by kind, strings by
/// bytes and numbers by value (`300` and `3e2` are the same number).
public enum ExactValue: Hashable, Sendable {
    case string([UInt8])
    case number(Double)
    case bool(Bool)
    case null

    /// The canonical key bytes this value is indexed under (see ``ExactIndex``).
    var indexKey: (tag: UInt8, bytes: [UInt8]) {
        switch self {
        case .string(let b): return (LeafKind.string.rawValue, b)
        case .number(let d): return (LeafKind.number.rawValue, ExactValue.numberKey(d))
        case .bool(let b): return (LeafKind.bool.rawValue, [b ? 1 : 0])
        case .null: return (LeafKind.null.rawValue, [])
        }
    }

    static func numberKey(_ d: Double) -> [UInt8] {
        let bits = (d == 0 ? 0.0 : d).bitPattern
        return (0..<8).map { UInt8(truncatingIfNeeded: bits >> (8 * UInt64($0))) }
    }

    func matches(_ leaf: Leaf) -> Bool {
        switch self {
        case .string(let s): return leaf.kind == .string && ByteOps.equal(leaf.bytes, s)
        case .number(let d): return leaf.kind == .number && leaf.number == d
        case .bool(let b): return leaf.kind == .bool && leaf.bytes.count == (b ? 4 : 5)
        case .null: return leaf.kind == .null
        }
    }
}

/// A numeric range: `{"numeric": [">", 0, "<=", 5]}`.
public struct NumericRange: Sendable, Equatable {
    public var lower: Double?
    public var lowerInclusive = false
    public var upper: Double?
    public var upperInclusive = false

    /// EventBridge compares numbers between -5.0e9 and +5.0e9 (documented limit).
    public static let limit = 5.0e9

    func contains(_ value: Double) -> Bool {
        guard value.isFinite, abs(value) <= NumericRange.limit else { return false }
        if let lower { if lowerInclusive ? value < lower : value <= lower { return false } }
        if let upper { if upperInclusive ? value > upper : value >= upper { return false } }
        return true
    }
}

/// A `wildcard` pattern: `*` stands for any run of characters (also none); `\*` and `\\` are a
/// literal star and backslash. Matching is a left-to-right search for each literal piece.
public struct Wildcard: Sendable, Equatable {
    /// The literal pieces between stars.
    var pieces: [[UInt8]]

    init(pieces: [[UInt8]]) { self.pieces = pieces }

    /// Parses the pattern text; the error message says what is wrong and at which character.
    static func parse(_ text: String) -> Result<Wildcard, EventPatternError> {
        var pieces: [[UInt8]] = [[]]
        let bytes = Array(text.utf8)
        var i = 0
        var lastWasStar = false
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\\") {
                guard i + 1 < bytes.count, bytes[i + 1] == UInt8(ascii: "*") || bytes[i + 1] == UInt8(ascii: "\\") else {
                    return .failure(EventPatternError("invalid escape at character \(i + 1) of the wildcard pattern (only \\* and \\\\ are escapes)"))
                }
                pieces[pieces.count - 1].append(bytes[i + 1])
                i += 2
                lastWasStar = false
                continue
            }
            if b == UInt8(ascii: "*") {
                if lastWasStar { return .failure(EventPatternError("consecutive wildcard characters at character \(i + 1) of the wildcard pattern")) }
                pieces.append([])
                lastWasStar = true
            } else {
                pieces[pieces.count - 1].append(b)
                lastWasStar = false
            }
            i += 1
        }
        return .success(Wildcard(pieces: pieces))
    }

    func matches(_ s: UnsafeRawBufferPointer) -> Bool {
        let n = s.count
        if pieces.count == 1 { return ByteOps.equal(s, pieces[0]) }
        let first = pieces[0], last = pieces[pieces.count - 1]
        guard n >= first.count + last.count, ByteOps.hasPrefix(s, first), ByteOps.hasSuffix(s, last) else { return false }
        var position = first.count
        let limit = n - last.count
        for piece in pieces[1..<(pieces.count - 1)] where !piece.isEmpty {
            guard let found = ByteOps.find(piece, in: s, from: position, to: limit) else { return false }
            position = found + piece.count
        }
        return true
    }
}

/// An IP address range for `cidr`.
public struct CIDRRange: Sendable, Equatable {
    /// 4 bytes for IPv4, 16 for IPv6.
    var network: [UInt8]
    var prefixLength: Int

    static func parse(_ text: String) -> CIDRRange? {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let address = IPAddress.parse(Substring(parts[0])),
              let length = Int(parts[1]), parts[1].allSatisfy(\.isASCII), length >= 0, length <= address.count * 8 else { return nil }
        var network = address
        for bit in length..<(address.count * 8) { network[bit / 8] &= ~(0x80 >> UInt8(bit % 8)) }
        return CIDRRange(network: network, prefixLength: length)
    }

    func contains(v4 address: UInt32) -> Bool {
        guard network.count == 4 else { return false }
        let net = UInt32(network[0]) << 24 | UInt32(network[1]) << 16 | UInt32(network[2]) << 8 | UInt32(network[3])
        let mask: UInt32 = prefixLength == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefixLength)
        return address & mask == net & mask
    }

    func contains(_ address: [UInt8]) -> Bool {
        guard address.count == network.count else { return false }
        var bit = 0
        while bit < prefixLength {
            let byte = bit / 8
            if prefixLength - bit >= 8 {
                if address[byte] != network[byte] { return false }
                bit += 8
            } else {
                let mask: UInt8 = ~(0xFF >> UInt8(prefixLength - bit))
                return address[byte] & mask == network[byte]
            }
        }
        return true
    }
}

/// IPv4 (`10.0.0.1`) and IPv6 (`2001:db8::1`, with an embedded IPv4 tail) text to bytes.
enum IPAddress {
    /// An IPv4 address written `a.b.c.d` (decimal, no leading `+`, at most three digits each).
    static func v4(_ bytes: UnsafeRawBufferPointer) -> UInt32? {
        var value: UInt32 = 0
        var part: UInt32 = 0
        var digits = 0
        var dots = 0
        for b in bytes {
            if b >= 0x30 && b <= 0x39 {
                part = part * 10 + UInt32(b - 0x30)
                digits += 1
                guard digits <= 3, part <= 255 else { return nil }
            } else if b == UInt8(ascii: ".") {
                guard digits > 0, dots < 3 else { return nil }
                value = value << 8 | part
                part = 0
                digits = 0
                dots += 1
            } else {
                return nil
            }
        }
        guard dots == 3, digits > 0 else { return nil }
        return value << 8 | part
    }

    static func parse(_ text: Substring) -> [UInt8]? {
        if text.contains(":") { return parseV6(text) }
        return parseV4(text)
    }

    static func parseV4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0 >= "0" && $0 <= "9" }), let v = Int(part), v <= 255 else { return nil }
            out.append(UInt8(v))
        }
        return out
    }

    static func parseV6(_ text: Substring) -> [UInt8]? {
        var head: [UInt16] = [], tail: [UInt16] = []
        var sawGap = false
        var rest = text
        var tailV4: [UInt8]?
        if rest.hasPrefix("::") { sawGap = true; rest = rest.dropFirst(2) }
        else if rest.hasPrefix(":") { return nil }
        while !rest.isEmpty {
            let end = rest.firstIndex(of: ":") ?? rest.endIndex
            let group = rest[rest.startIndex..<end]
            if group.contains(".") {
                guard end == rest.endIndex, let v4 = parseV4(group) else { return nil }
                tailV4 = v4
            } else {
                guard !group.isEmpty, group.count <= 4, let v = UInt16(group, radix: 16) else { return nil }
                if sawGap { tail.append(v) } else { head.append(v) }
            }
            rest = rest[end...]
            if rest.hasPrefix("::") {
                if sawGap { return nil }
                sawGap = true
                rest = rest.dropFirst(2)
            } else if rest.hasPrefix(":") {
                rest = rest.dropFirst()
                if rest.isEmpty { return nil }
            }
        }
        var groups = head
        let v4Groups = tailV4 == nil ? 0 : 2
        let total = head.count + tail.count + v4Groups
        if sawGap {
            guard total < 8 else { return nil }
            groups += Array(repeating: 0, count: 8 - total)
        } else {
            guard total == 8 else { return nil }
        }
        groups += tail
        var out: [UInt8] = []
        for g in groups { out.append(UInt8(g >> 8)); out.append(UInt8(g & 0xFF)) }
        if let tailV4 { out += tailV4 }
        return out.count == 16 ? out : nil
    }
}

/// `anything-but`: a leaf matches when it is of the listed kind and none of the listed forms fits it.
/// Values compare like with like: a string list judges string values, a number list judges numbers.
public enum AnythingBut: Sendable, Equatable {
    case strings(Set<[UInt8]>)
    case numbers([Double])
    case prefixes([[UInt8]])
    case suffixes([[UInt8]])
    case ignoringCase(Set<[UInt8]>)
    case wildcards([Wildcard])

    func matches(_ leaf: Leaf) -> Bool {
        switch self {
        case .numbers(let values):
            return leaf.kind == .number && !values.contains(leaf.number)
        case .strings(let values):
            return leaf.kind == .string && !values.contains(Array(leaf.bytes))
        case .prefixes(let values):
            return leaf.kind == .string && !values.contains { ByteOps.hasPrefix(leaf.bytes, $0) }
        case .suffixes(let values):
            return leaf.kind == .string && !values.contains { ByteOps.hasSuffix(leaf.bytes, $0) }
        case .ignoringCase(let values):
            return leaf.kind == .string && !values.contains(CaseFolding.fold(leaf.bytes))
        case .wildcards(let values):
            return leaf.kind == .string && !values.contains { $0.matches(leaf.bytes) }
        }
    }
}

/// One element of a field's array in a pattern: what a single leaf value must be.
public enum ValueMatcher: Sendable, Equatable {
    case exact(ExactValue)
    case prefix([UInt8], ignoringCase: Bool)
    case suffix([UInt8], ignoringCase: Bool)
    case equalsIgnoreCase([UInt8])
    case wildcard(Wildcard)
    case numeric(NumericRange)
    /// `exists: true` is a matcher of leaves; `exists: false` is judged on the field as a whole.
    case exists(Bool)
    case cidr(CIDRRange)
    case anythingBut(AnythingBut)

    func matches(_ leaf: Leaf) -> Bool {
        switch self {
        case .exact(let value): return value.matches(leaf)
        case .prefix(let p, let ignoringCase):
            guard leaf.kind == .string else { return false }
            return ignoringCase ? ByteOps.hasPrefix(CaseFolding.fold(leaf.bytes), p) : ByteOps.hasPrefix(leaf.bytes, p)
        case .suffix(let s, let ignoringCase):
            guard leaf.kind == .string else { return false }
            return ignoringCase ? ByteOps.hasSuffix(CaseFolding.fold(leaf.bytes), s) : ByteOps.hasSuffix(leaf.bytes, s)
        case .equalsIgnoreCase(let folded):
            return leaf.kind == .string && CaseFolding.fold(leaf.bytes) == folded
        case .wildcard(let w): return leaf.kind == .string && w.matches(leaf.bytes)
        case .numeric(let range): return leaf.kind == .number && range.contains(leaf.number)
        case .exists(let wanted): return wanted
        case .cidr(let range):
            guard leaf.kind == .string else { return false }
            if range.network.count == 4 {
                // IPv4 at byte level: this runs for every candidate event.
                guard let address = IPAddress.v4(leaf.bytes) else { return false }
                return range.contains(v4: address)
            }
            guard let address = IPAddress.parse(Substring(decoding: leaf.bytes, as: UTF8.self)) else { return false }
            return range.contains(address)
        case .anythingBut(let rule): return rule.matches(leaf)
        }
    }
}

/// Case-insensitive comparison: ASCII letters fold directly; other text is lower-cased by Unicode rules.
enum CaseFolding {
    static func fold(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        if bytes.allSatisfy({ $0 < 0x80 }) {
            return bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }
        }
        return Array(String(decoding: bytes, as: UTF8.self).lowercased().utf8)
    }

    static func fold(_ text: String) -> [UInt8] {
        Array(text.utf8).withUnsafeBytes { fold($0) }
    }

    static func fold(_ bytes: [UInt8]) -> [UInt8] { bytes.withUnsafeBytes { fold($0) } }
}

/// Small byte comparisons on raw buffers.
enum ByteOps {
    @inline(__always)
    static func equal(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return b.withUnsafeBytes { bb in a.count == 0 || memcmp(a.baseAddress!, bb.baseAddress!, a.count) == 0 }
    }

    static func hasPrefix(_ a: UnsafeRawBufferPointer, _ p: [UInt8]) -> Bool {
        guard a.count >= p.count else { return false }
        return p.withUnsafeBytes { pb in p.isEmpty || memcmp(a.baseAddress!, pb.baseAddress!, p.count) == 0 }
    }

    static func hasSuffix(_ a: UnsafeRawBufferPointer, _ s: [UInt8]) -> Bool {
        guard a.count >= s.count else { return false }
        return s.withUnsafeBytes { sb in s.isEmpty || memcmp(a.baseAddress! + (a.count - s.count), sb.baseAddress!, s.count) == 0 }
    }

    static func hasPrefix(_ a: [UInt8], _ p: [UInt8]) -> Bool { a.count >= p.count && a[0..<p.count].elementsEqual(p) }
    static func hasSuffix(_ a: [UInt8], _ s: [UInt8]) -> Bool { a.count >= s.count && a[(a.count - s.count)...].elementsEqual(s) }

    /// The first index ≥ `from` where `needle` occurs in `hay` and ends by `to`.
    static func find(_ needle: [UInt8], in hay: UnsafeRawBufferPointer, from: Int, to: Int) -> Int? {
        guard needle.count <= to - from else { return nil }
        let first = needle[0]
        var i = from
        while i + needle.count <= to {
            if hay[i] == first {
                var k = 1
                while k < needle.count && hay[i + k] == needle[k] { k += 1 }
                if k == needle.count { return i }
            }
            i += 1
        }
        return nil
    }
}
