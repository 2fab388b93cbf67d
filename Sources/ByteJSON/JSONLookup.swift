#if canImport(Glibc)
import Glibc
#endif
/// What a selector found in a JSON document, without building the document tree.
///
/// Ranges are byte offsets into the buffer that was scanned; use the accessors to read values from it.
public enum JSONLookup: Sendable, Equatable {
    /// The input is not a complete, well-formed JSON document.
    case notJSON
    /// The document is JSON but the selector reaches nothing.
    case missing
    case null
    case bool(Bool)
    /// A number; the range covers its text (e.g. `1e-3`).
    case number(Range<Int>)
    /// A string; the range covers the bytes between the quotes, `escaped` says whether any `\` escape occurs.
    case string(Range<Int>, escaped: Bool)
    /// An array value; the range covers it from `[` to `]`.
    case array(Range<Int>)
    /// An object value; the range covers it from `{` to `}`.
    case object(Range<Int>)

    /// True for `null`, booleans, numbers and strings.
    public var isScalar: Bool {
        switch self {
        case .null, .bool, .number, .string: return true
        default: return false
        }
    }

    /// The number's value (nil for non-numbers). Read from `bytes`, the buffer that was scanned.
    public func double(in bytes: UnsafeRawBufferPointer) -> Double? {
        guard case .number(let r) = self, let base = bytes.baseAddress else { return nil }
        return JSONNumberParsing.parseDouble(base.assumingMemoryBound(to: UInt8.self), r.lowerBound, r.upperBound)
    }

    /// The string's decoded UTF-8 bytes (nil for non-strings).
    public func stringBytes(in bytes: UnsafeRawBufferPointer) -> [UInt8]? {
        guard case .string(let r, let escaped) = self, let base = bytes.baseAddress else { return nil }
        let p = base.assumingMemoryBound(to: UInt8.self)
        var out: [UInt8] = []
        out.reserveCapacity(r.count)
        if escaped {
            JSONStringDecoding.appendDecoded(p, r.lowerBound, r.upperBound, to: &out)
        } else {
            UTF8Repair.appendRepaired(p, r.lowerBound, r.upperBound, to: &out)
        }
        return out
    }

    /// A textual form of a scalar: decoded string contents, the number's text, `true`/`false`, or `null`.
    /// nil for arrays, objects, missing values and non-JSON input.
    public func scalarText(in bytes: UnsafeRawBufferPointer) -> [UInt8]? {
        switch self {
        case .string: return stringBytes(in: bytes)
        case .number(let r): return Array(UnsafeRawBufferPointer(rebasing: bytes[r]))
        case .bool(let b): return Array((b ? "true" : "false").utf8)
        case .null: return Array("null".utf8)
        default: return nil
        }
    }
}

/// The kind of a document's top-level value, reported by ``JSONMultiLookup``.
public enum JSONRootKind: Sendable, Equatable {
    case object, array, scalar
}

/// Looks up one selector in a JSON document by scanning it once (see ``JSONMultiLookup``).
/// Builds the selector's tables on every call: code that looks up the same selectors in many
/// documents should hold a ``JSONMultiLookup`` instead.
public func lookup(_ path: JSONPath, in bytes: UnsafeRawBufferPointer) -> JSONLookup {
    JSONMultiLookup([path]).lookup(in: bytes)[0]
}

/// Looks up several selectors in one scan of a JSON document (see ``JSONMultiLookup``).
public func lookup(paths: [JSONPath], in bytes: UnsafeRawBufferPointer) -> [JSONLookup] {
    JSONMultiLookup(paths).lookup(in: bytes)
}

/// Resolves a fixed set of selectors against many documents, each in a single forward scan that validates the
/// whole document and skips subtrees no selector enters. No tree is built and nothing is allocated per document
/// when ``resolve(in:into:)`` is given a reused results array.
///
/// - Duplicate keys: the first occurrence wins (as in ``JSONValue/value(at:)``).
/// - Wildcard steps (`.*`, `[*]`) never match here; evaluate such selectors on a parsed ``JSONValue``.
/// - The whole document is validated: trailing garbage or a syntax error anywhere makes every result
///   ``JSONLookup/notJSON``, so a lookup agrees with ``JSONValue/parse(_:)`` about what is JSON.
public struct JSONMultiLookup: Sendable {
    public let paths: [JSONPath]
    /// Steps per path, flattened for the scanner.
    let steps: [[JSONPath.Step]]
    /// Bit k of `targets[level]` is set when path k ends at nesting level `level`.
    let targets: [UInt64]
    let chunks: Int
    /// Key steps laid out flat for the scanner's hot loop (no array copies per comparison).
    let keys: KeyTable

    public init(_ paths: [JSONPath]) {
        self.paths = paths
        self.steps = paths.map(\.steps)
        self.keys = KeyTable(paths)
        self.chunks = (paths.count + 63) / 64
        let maxLevel = paths.map(\.steps.count).max() ?? 0
        var t = [UInt64](repeating: 0, count: (maxLevel + 1) * max(chunks, 1))
        for (k, path) in paths.enumerated() {
            t[path.steps.count * max(chunks, 1) + k / 64] |= 1 << UInt64(k % 64)
        }
        self.targets = t
    }

    /// Results in the order of ``paths``.
    public func lookup(in bytes: UnsafeRawBufferPointer) -> [JSONLookup] {
        var results: [JSONLookup] = []
        _ = resolve(in: bytes, into: &results)
        return results
    }

    /// Fills `results` (resized to `paths.count`) and returns the kind of the top-level value, or nil when the
    /// input is not JSON (all results are then ``JSONLookup/notJSON``).
    @discardableResult
    public func resolve(in bytes: UnsafeRawBufferPointer, into results: inout [JSONLookup]) -> JSONRootKind? {
        if results.count != paths.count { results = [JSONLookup](repeating: .missing, count: paths.count) }
        return results.withUnsafeMutableBufferPointer { resolve(in: bytes, into: $0) }
    }

    /// Allocation-free variant: `results` must have exactly `paths.count` elements (e.g. from
    /// `withUnsafeTemporaryAllocation`); every element is overwritten.
    @discardableResult
    public func resolve(in bytes: UnsafeRawBufferPointer, into results: UnsafeMutableBufferPointer<JSONLookup>) -> JSONRootKind? {
        var tooDeep = false
        return resolve(in: bytes, into: results, tooDeep: &tooDeep)
    }

    /// ``resolve(in:into:)`` that also says when the input was refused only for nesting deeper than
    /// ``JSONValue/maximumDepth`` (so callers can count such events instead of losing them silently).
    @discardableResult
    public func resolve(in bytes: UnsafeRawBufferPointer, into results: UnsafeMutableBufferPointer<JSONLookup>,
                        tooDeep: inout Bool) -> JSONRootKind? {
        precondition(results.count == paths.count, "results buffer must have one element per path")
        for k in results.indices { results.initializeElement(at: k, to: .missing) }
        guard let base = bytes.baseAddress, bytes.count > 0 else {
            for k in results.indices { results[k] = .notJSON }
            return nil
        }
        var root: JSONRootKind? = nil
        let p = base.assumingMemoryBound(to: UInt8.self)
        let chunkCount = max(chunks, 1)
        for chunk in 0..<chunkCount {
            let count = paths.isEmpty ? 0 : min(64, paths.count - chunk * 64)
            let mask: UInt64 = count == 64 ? ~0 : (1 << UInt64(count)) - 1
            var scanner = LazyScanner(p: p, end: bytes.count, steps: steps, targets: targets,
                                      chunks: chunkCount, chunk: chunk, results: results, keys: keys)
            scanner.skipWhitespace()
            var ok = scanner.i < scanner.end
            if ok {
                let first = p[scanner.i]
                root = first == UInt8(ascii: "{") ? .object : first == UInt8(ascii: "[") ? .array : .scalar
                ok = scanner.value(level: 0, mask: mask)
                scanner.skipWhitespace()
                ok = ok && scanner.i == scanner.end
            }
            if !ok {
                tooDeep = scanner.tooDeep
                for k in results.indices { results[k] = .notJSON }
                return nil
            }
        }
        return root
    }
}

@usableFromInline
struct LazyScanner {
    let p: UnsafePointer<UInt8>
    let end: Int
    let steps: [[JSONPath.Step]]
    let targets: [UInt64]
    let chunks: Int
    let chunk: Int
    let results: UnsafeMutableBufferPointer<JSONLookup>
    let keys: KeyTable
    var i = 0
    /// Set when the scan stopped at the nesting limit.
    var tooDeep = false

    init(p: UnsafePointer<UInt8>, end: Int, steps: [[JSONPath.Step]], targets: [UInt64], chunks: Int, chunk: Int,
         results: UnsafeMutableBufferPointer<JSONLookup>, keys: KeyTable) {
        self.keys = keys
        self.p = p
        self.end = end
        self.steps = steps
        self.targets = targets
        self.chunks = chunks
        self.chunk = chunk
        self.results = results
    }

    @inline(__always)
    mutating func skipWhitespace() { i = JSONByteScan.skipWhitespace(p, i, end) }

    @inline(__always)
    func quoteOrBackslash(from start: Int) -> Int { JSONByteScan.quoteOrBackslash(p, from: start, end) }

    @inline(__always)
    func targetMask(_ level: Int) -> UInt64 {
        let idx = level * chunks + chunk
        return idx < targets.count ? targets[idx] : 0
    }

    @inline(__always)
    func record(_ mask: UInt64, _ value: JSONLookup) {
        var m = mask
        while m != 0 {
            let k = chunk * 64 + m.trailingZeroBitCount
            m &= m - 1
            if case .missing = results[k] { results[k] = value }
        }
    }

    /// Scans one value at nesting `level`; `mask` holds the paths whose first `level` steps led here.
    mutating func value(level: Int, mask: UInt64) -> Bool {
        guard i < end else { return false }
        let start = i
        let targets = mask == 0 ? 0 : mask & targetMask(level)
        let deeper = mask & ~targets
        switch p[i] {
        case UInt8(ascii: "{"):
            guard level < JSONValue.maximumDepth else { tooDeep = true; return false }
            i += 1
            skipWhitespace()
            if i < end && p[i] == UInt8(ascii: "}") {
                i += 1
            } else {
                while true {
                    skipWhitespace()
                    guard i < end, p[i] == UInt8(ascii: "\"") else { return false }
                    let keyStart = i + 1
                    var k = keyStart
                    var escaped = false
                    while true {
                        k = quoteOrBackslash(from: k)
                        guard k < end, p[k] != UInt8(ascii: "\"") else { break }
                        escaped = true
                        k += 2
                    }
                    guard k < end else { return false }
                    i = k + 1
                    skipWhitespace()
                    guard i < end, p[i] == UInt8(ascii: ":") else { return false }
                    i += 1
                    skipWhitespace()
                    let child = deeper == 0 ? 0 : matchKey(level, deeper, keyStart, k, escaped)
                    guard value(level: level + 1, mask: child) else { return false }
                    skipWhitespace()
                    guard i < end else { return false }
                    if p[i] == UInt8(ascii: ",") { i += 1; continue }
                    if p[i] == UInt8(ascii: "}") { i += 1; break }
                    return false
                }
            }
            if targets != 0 { record(targets, .object(start..<i)) }
        case UInt8(ascii: "["):
            guard level < JSONValue.maximumDepth else { tooDeep = true; return false }
            i += 1
            skipWhitespace()
            if i < end && p[i] == UInt8(ascii: "]") {
                i += 1
            } else {
                var index = 0
                while true {
                    skipWhitespace()
                    let child = deeper == 0 ? 0 : matchIndex(level, deeper, index)
                    guard value(level: level + 1, mask: child) else { return false }
                    index += 1
                    skipWhitespace()
                    guard i < end else { return false }
                    if p[i] == UInt8(ascii: ",") { i += 1; continue }
                    if p[i] == UInt8(ascii: "]") { i += 1; break }
                    return false
                }
            }
            if targets != 0 { record(targets, .array(start..<i)) }
        case UInt8(ascii: "\""):
            var k = i + 1
            var escaped = false
            while true {
                k = quoteOrBackslash(from: k)
                guard k < end, p[k] != UInt8(ascii: "\"") else { break }
                escaped = true
                k += 2
            }
            guard k < end else { return false }
            i = k + 1
            if targets != 0 { record(targets, .string(start + 1..<k, escaped: escaped)) }
        case UInt8(ascii: "t"):
            guard literal(0x74, 0x72, 0x75, 0x65) else { return false }
            if targets != 0 { record(targets, .bool(true)) }
        case UInt8(ascii: "n"):
            guard literal(0x6E, 0x75, 0x6C, 0x6C) else { return false }
            if targets != 0 { record(targets, .null) }
        case UInt8(ascii: "f"):
            guard i + 5 <= end, p[i + 1] == 0x61, p[i + 2] == 0x6C, p[i + 3] == 0x73, p[i + 4] == 0x65 else { return false }
            i += 5
            if targets != 0 { record(targets, .bool(false)) }
        default:
            guard let stop = JSONNumberParsing.scan(p, i, end) else { return false }
            i = stop
            if targets != 0 { record(targets, .number(start..<stop)) }
        }
        return true
    }

    @inline(__always)
    mutating func literal(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) -> Bool {
        guard i + 4 <= end, p[i] == a, p[i + 1] == b, p[i + 2] == c, p[i + 3] == d else { return false }
        i += 4
        return true
    }

    /// Paths among `mask` whose step at `level` names the key `p[ks..<ke]`.
    /// Byte equality of two short runs, a word at a time (keys are short: a call to memcmp costs more).
    @inlinable @inline(__always)
    static func equalBytes(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
        var i = 0
        while i + 8 <= count {
            if UnsafeRawPointer(a + i).loadUnaligned(as: UInt64.self) != UnsafeRawPointer(b + i).loadUnaligned(as: UInt64.self) { return false }
            i += 8
        }
        while i < count {
            if a[i] != b[i] { return false }
            i += 1
        }
        return true
    }

    func matchKey(_ level: Int, _ mask: UInt64, _ ks: Int, _ ke: Int, _ escaped: Bool) -> UInt64 {
        var out: UInt64 = 0
        var m = mask
        var decoded: [UInt8]? = nil
        let length = ke - ks
        let keyHead = escaped ? 0 : KeyTable.head(p + ks, length)
        // Most keys of a document are no selector's: one probe by (length, first word) rules them out.
        if !escaped { m &= keys.candidates(chunk: chunk, level: level, length: length, head: keyHead) }
        while m != 0 {
            let bit = m.trailingZeroBitCount
            m &= m - 1
            let entry = keys.entry(path: chunk * 64 + bit, level: level)
            guard entry.length >= 0 else { continue }
            if escaped {
                if decoded == nil {
                    var d: [UInt8] = []
                    JSONStringDecoding.appendDecoded(p, ks, ke, to: &d)
                    decoded = d
                }
                if decoded!.count == entry.length,
                   decoded!.withUnsafeBytes({ memcmp($0.baseAddress!, keys.bytes + entry.offset, entry.length) == 0 }) || entry.length == 0 {
                    out |= 1 << UInt64(bit)
                }
            } else if length <= 8 || Self.equalBytes(p + ks + 8, keys.bytes + entry.offset + 8, length - 8) {
                // The candidate probe already matched the length and the first eight bytes.
                out |= 1 << UInt64(bit)
            }
        }
        return out
    }

    /// Paths among `mask` whose step at `level` is the array index `index`.
    func matchIndex(_ level: Int, _ mask: UInt64, _ index: Int) -> UInt64 {
        var out: UInt64 = 0
        var m = mask
        while m != 0 {
            let bit = m.trailingZeroBitCount
            m &= m - 1
            let pathSteps = steps[chunk * 64 + bit]
            if level < pathSteps.count, case .index(let n) = pathSteps[level], n == index { out |= 1 << UInt64(bit) }
        }
        return out
    }
}

/// Every path's key steps, by level, as offsets into one byte block: what ``LazyScanner/matchKey``
/// compares against without touching Swift arrays in its loop. Immutable once built.
final class KeyTable: @unchecked Sendable {
    struct Entry {
        /// -1 when the step at this level is not a key (or the path is shorter).
        var length: Int
        var offset: Int
        /// The key's first eight bytes (zero-padded), compared before anything else.
        var head: UInt64 = 0
    }

    /// The first eight bytes of `count` bytes at `p`, zero-padded, as one word.
    @inline(__always)
    static func head(_ p: UnsafePointer<UInt8>, _ count: Int) -> UInt64 {
        if count >= 8 { return UnsafeRawPointer(p).loadUnaligned(as: UInt64.self) }
        var word: UInt64 = 0
        for i in 0..<count { word |= UInt64(p[i]) << (8 * UInt64(i)) }
        return word
    }

    let bytes: UnsafeMutablePointer<UInt8>
    let entries: UnsafeMutablePointer<Entry>
    let levels: Int
    let count: Int

    init(_ paths: [JSONPath]) {
        levels = (paths.map(\.steps.count).max() ?? 0) + 1
        count = paths.count
        var block: [UInt8] = []
        var table = [Entry](repeating: Entry(length: -1, offset: 0), count: max(1, levels * count))
        for (k, path) in paths.enumerated() {
            for (level, step) in path.steps.enumerated() {
                if case .key(let name) = step {
                    let head = name.withUnsafeBufferPointer { KeyTable.head($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, name.count) }
                    table[k * levels + level] = Entry(length: name.count, offset: block.count, head: head)
                    block += name
                }
            }
        }
        bytes = .allocate(capacity: max(1, block.count))
        bytes.initialize(from: block, count: block.count)
        entries = .allocate(capacity: table.count)
        entries.initialize(from: table, count: table.count)
        // Per (chunk, level): an open-addressing table from (length, first word) to the paths
        // whose key at that level starts so (several paths may share a slot's key).
        chunks = (paths.count + 63) / 64
        var slots = [Slot](repeating: Slot(length: -1, head: 0, mask: 0), count: max(1, chunks * levels * Self.slotsPerTable))
        for (k, path) in paths.enumerated() {
            for (level, step) in path.steps.enumerated() {
                guard case .key = step else { continue }
                let entry = table[k * levels + level]
                let base = ((k / 64) * levels + level) * Self.slotsPerTable
                var i = Self.slot(entry.length, entry.head)
                while slots[base + i].length >= 0 && !(slots[base + i].length == entry.length && slots[base + i].head == entry.head) {
                    i = (i + 1) & (Self.slotsPerTable - 1)
                }
                slots[base + i].length = entry.length
                slots[base + i].head = entry.head
                slots[base + i].mask |= 1 << UInt64(k % 64)
            }
        }
        self.slots = .allocate(capacity: slots.count)
        self.slots.initialize(from: slots, count: slots.count)
    }

    struct Slot {
        var length: Int
        var head: UInt64
        var mask: UInt64
    }

    /// At most 64 paths per chunk, so at most 64 keys per level: 128 slots keep probes short.
    static let slotsPerTable = 128
    let chunks: Int
    let slots: UnsafeMutablePointer<Slot>

    @inline(__always)
    static func slot(_ length: Int, _ head: UInt64) -> Int {
        Int(truncatingIfNeeded: ((head ^ UInt64(truncatingIfNeeded: length)) &* 0x9E37_79B9_7F4A_7C15) >> 57)
    }

    /// The paths (bits of the chunk) whose key at `level` has this length and first word.
    @inline(__always)
    func candidates(chunk: Int, level: Int, length: Int, head: UInt64) -> UInt64 {
        guard level < levels else { return 0 }
        let base = (chunk * levels + level) * Self.slotsPerTable
        var i = Self.slot(length, head)
        while true {
            let s = slots[base + i]
            if s.length < 0 { return 0 }
            if s.length == length && s.head == head { return s.mask }
            i = (i + 1) & (Self.slotsPerTable - 1)
        }
    }

    deinit {
        bytes.deallocate()
        entries.deallocate()
        slots.deallocate()
    }

    @inline(__always)
    func entry(path: Int, level: Int) -> Entry {
        level < levels ? entries[path * levels + level] : Entry(length: -1, offset: 0)
    }
}
