import ByteJSON

/// The leaf values one event has at the fields a ``RuleSet`` reads, gathered before matching.
///
/// Plain memory, no Swift arrays: this is filled and read for every event, and array appends cost
/// a uniqueness check and reference counting each. A leaf is a pointer and a length: into the
/// document itself (strings without escapes, the common case), into ``arena`` (decoded strings,
/// values derived from the event) or into ``LeafConstants`` — nothing is copied for most leaves.
/// Pointers into the document are valid while the document is; an ``EventMatcher`` fills and
/// reads one event's values within one call. Reused from event to event: ``reset()`` costs only
/// the fields the last event touched. The owner calls ``deallocate()``.
struct EventValues {
    /// One leaf: its kind, bytes, number value, and the field's previous leaf.
    struct Record {
        var bytes: UnsafeRawPointer
        var length: Int
        var number: Double
        var next: Int32
        var kind: LeafKind
    }

    let fieldCount: Int
    /// Last leaf of each field (-1: none), leaves chained newest first through ``Record/next``.
    let head: UnsafeMutablePointer<Int32>
    private(set) var records: UnsafeMutablePointer<Record>
    private(set) var recordCount = 0
    private var recordCapacity = 64
    /// Fields that have leaves (each once), so ``reset()`` clears only those.
    private let touched: UnsafeMutablePointer<Int32>
    private var touchedCount = 0
    var arena = LeafArena()

    init(fieldCount: Int) {
        self.fieldCount = fieldCount
        head = .allocate(capacity: max(1, fieldCount))
        head.initialize(repeating: -1, count: max(1, fieldCount))
        touched = .allocate(capacity: max(1, fieldCount))
        records = .allocate(capacity: recordCapacity)
    }

    func deallocate() {
        head.deallocate()
        touched.deallocate()
        records.deallocate()
        arena.deallocate()
    }

    var leafCount: Int { recordCount }

    mutating func reset() {
        for k in 0..<touchedCount { head[Int(touched[k])] = -1 }
        touchedCount = 0
        recordCount = 0
        arena.reset()
    }

    /// True when the field has at least one leaf.
    @inline(__always) func has(_ field: Int) -> Bool { head[field] >= 0 }

    @inline(__always)
    mutating func link(_ field: Int, kind: LeafKind, bytes: UnsafeRawPointer, length: Int, number: Double) {
        if recordCount == recordCapacity { growRecords() }
        let previous = head[field]
        if previous < 0 {
            touched[touchedCount] = Int32(truncatingIfNeeded: field)
            touchedCount += 1
        }
        head[field] = Int32(truncatingIfNeeded: recordCount)
        records[recordCount] = Record(bytes: bytes, length: length, number: number, next: previous, kind: kind)
        recordCount += 1
    }

    private mutating func growRecords() {
        let bigger = UnsafeMutablePointer<Record>.allocate(capacity: recordCapacity * 2)
        bigger.moveInitialize(from: records, count: recordCount)
        records.deallocate()
        records = bigger
        recordCapacity *= 2
    }

    /// A string leaf whose bytes stay where they are (the document, the arena or a constant).
    @inline(__always)
    mutating func appendString(_ field: Int, pointing bytes: UnsafeRawBufferPointer) {
        link(field, kind: .string, bytes: bytes.baseAddress ?? LeafConstants.empty, length: bytes.count, number: .nan)
    }

    /// A string leaf copied into the arena (for bytes that do not outlive the call).
    mutating func appendString(_ field: Int, copying bytes: UnsafeRawBufferPointer) {
        appendString(field, pointing: arena.store(bytes))
    }

    /// Files a scalar found by a ByteJSON scan of `document`: strings without escapes point into
    /// the document, escaped ones are decoded into the arena.
    @inline(__always)
    mutating func append(_ field: Int, _ value: JSONLookup, in document: UnsafeRawPointer) {
        switch value {
        case .string(let r, let escaped):
            if escaped {
                appendDecoded(field, document, r)
            } else {
                link(field, kind: .string, bytes: document + r.lowerBound, length: r.count, number: .nan)
            }
        case .number(let r):
            let value = JSONNumberParsing.parseDouble(document.assumingMemoryBound(to: UInt8.self), r.lowerBound, r.upperBound) ?? .nan
            link(field, kind: .number, bytes: document + r.lowerBound, length: r.count, number: value)
        case .bool(let b):
            link(field, kind: .bool, bytes: b ? LeafConstants.true : LeafConstants.false, length: b ? 4 : 5, number: .nan)
        case .null:
            link(field, kind: .null, bytes: LeafConstants.null, length: 4, number: .nan)
        default: break
        }
    }

    private mutating func appendDecoded(_ field: Int, _ document: UnsafeRawPointer, _ r: Range<Int>) {
        var decoded: [UInt8] = []
        decoded.reserveCapacity(r.count)
        JSONStringDecoding.appendDecoded(document.assumingMemoryBound(to: UInt8.self), r.lowerBound, r.upperBound, to: &decoded)
        let stored = decoded.withUnsafeBytes { arena.store($0) }
        link(field, kind: .string, bytes: stored.baseAddress ?? LeafConstants.empty, length: stored.count, number: .nan)
    }

    /// The first string leaf of `field` in document order (leaves are chained newest first).
    func firstString(_ field: Int) -> UnsafeRawBufferPointer? {
        var k = head[field]
        var found: Int32 = -1
        while k >= 0 {
            if records[Int(k)].kind == .string { found = k }
            k = records[Int(k)].next
        }
        guard found >= 0 else { return nil }
        let record = records[Int(found)]
        return UnsafeRawBufferPointer(start: record.bytes, count: record.length)
    }

    /// ``firstString(_:)`` as a `String`.
    func firstText(_ field: Int) -> String? {
        firstString(field).map { String(decoding: $0, as: UTF8.self) }
    }
}

/// Bytes for leaves that are not in the document: booleans, null, envelope values. Never freed.
enum LeafConstants {
    nonisolated(unsafe) static let `true` = make("true")
    nonisolated(unsafe) static let `false` = make("false")
    nonisolated(unsafe) static let null = make("null")
    nonisolated(unsafe) static let empty = make("")

    /// Immortal copy of `text`'s bytes.
    static func make(_ text: String) -> UnsafeRawPointer {
        let bytes = Array(text.utf8)
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes.count), alignment: 8)
        bytes.withUnsafeBytes { if let base = $0.baseAddress { p.copyMemory(from: base, byteCount: bytes.count) } }
        return UnsafeRawPointer(p)
    }

    /// Immortal copies of `texts`, as buffers.
    static func make(_ texts: [String]) -> [UnsafeRawBufferPointer] {
        texts.map { UnsafeRawBufferPointer(start: make($0), count: $0.utf8.count) }
    }
}

/// Bytes that must stay where they are until the next ``reset()``: stores never move earlier ones.
/// One block normally; when an event needs more, further blocks are chained in front of it, and
/// the next reset replaces them all by one block as large as their sum. Plain memory (a block
/// starts with a link to the block before it), so copying an arena counts no references.
struct LeafArena {
    /// The current block: [link to the previous block, or nil][capacity bytes].
    private var block: UnsafeMutableRawPointer
    private var capacity = 4096
    private var used = 0
    /// Capacity of all blocks before the current one (0: there are none).
    private var retiredBytes = 0
    private static let header = 16

    init() {
        block = LeafArena.allocate(capacity, previous: nil)
    }

    private static func allocate(_ capacity: Int, previous: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer {
        let b = UnsafeMutableRawPointer.allocate(byteCount: header + capacity, alignment: 16)
        b.storeBytes(of: previous, as: UnsafeMutableRawPointer?.self)
        return b
    }

    /// Frees the current block and every block before it.
    private func freeAll() {
        var b: UnsafeMutableRawPointer? = block
        while let current = b {
            b = current.load(as: UnsafeMutableRawPointer?.self)
            current.deallocate()
        }
    }

    func deallocate() { freeAll() }

    mutating func reset() {
        used = 0
        if retiredBytes > 0 {
            freeAll()
            capacity += retiredBytes
            retiredBytes = 0
            block = LeafArena.allocate(capacity, previous: nil)
        }
    }

    /// Copies `bytes` in and returns where they now are.
    mutating func store(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        let p = reserve(bytes.count)
        if let base = bytes.baseAddress, bytes.count > 0 { p.copyMemory(from: base, byteCount: bytes.count) }
        return UnsafeRawBufferPointer(start: p, count: bytes.count)
    }

    /// `count` bytes to write into, valid until the next reset.
    mutating func reserve(_ count: Int) -> UnsafeMutableRawPointer {
        if used + count > capacity {
            retiredBytes += capacity
            capacity = max(capacity, count)
            block = LeafArena.allocate(capacity, previous: block)
            used = 0
        }
        defer { used += count }
        return block + LeafArena.header + used
    }
}

/// A ``JSONLeafVisitor`` that files leaves into ``EventValues`` through a map from scanner path to
/// field. Holds pointers so the values are filled in place.
struct EventValuesCollector: JSONLeafVisitor {
    let values: UnsafeMutablePointer<EventValues>
    /// For each scanner path, the field it fills (-1: none).
    let fieldOfPath: UnsafePointer<Int>
    let document: UnsafeRawPointer

    @inline(__always)
    mutating func leaf(path: Int, value: JSONLookup) {
        let field = fieldOfPath[path]
        if field >= 0 { values.pointee.append(field, value, in: document) }
    }
}
