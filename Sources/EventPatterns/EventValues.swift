import ByteJSON

/// The leaf values one event has at the fields a ``RuleSet`` reads, gathered before matching.
/// Reused from event to event: ``reset()`` costs only the fields the last event touched.
public struct EventValues {
    /// One leaf: its field, kind, bytes in ``arena``, number value, and the field's previous leaf.
    struct Record {
        var field: Int32
        var next: Int32
        var start: Int32
        var length: Int32
        var kind: LeafKind
        var number: Double
    }

    public let fieldCount: Int
    /// Last leaf of each field (-1: none), leaves chained newest first through ``Record/next``.
    var head: [Int32]
    var records: [Record] = []
    /// Decoded bytes of every leaf.
    var arena: [UInt8] = []
    var touched: [Int32] = []

    public init(fieldCount: Int) {
        self.fieldCount = fieldCount
        head = Array(repeating: -1, count: fieldCount)
        arena.reserveCapacity(4096)
        records.reserveCapacity(64)
    }

    public var leafCount: Int { records.count }

    public mutating func reset() {
        for f in touched { head[Int(f)] = -1 }
        touched.removeAll(keepingCapacity: true)
        records.removeAll(keepingCapacity: true)
        arena.removeAll(keepingCapacity: true)
    }

    /// True when the field has at least one leaf.
    @inline(__always) public func has(_ field: Int) -> Bool { head[field] >= 0 }

    @inline(__always)
    mutating func link(_ field: Int, kind: LeafKind, start: Int, number: Double) {
        let previous = head[field]
        if previous < 0 { touched.append(Int32(field)) }
        head[field] = Int32(records.count)
        records.append(Record(field: Int32(field), next: previous, start: Int32(start), length: Int32(arena.count - start), kind: kind, number: number))
    }

    public mutating func appendString(_ field: Int, _ bytes: UnsafeRawBufferPointer) {
        let start = arena.count
        arena.append(contentsOf: bytes)
        link(field, kind: .string, start: start, number: .nan)
    }

    public mutating func appendString(_ field: Int, _ text: String) {
        let start = arena.count
        arena.append(contentsOf: text.utf8)
        link(field, kind: .string, start: start, number: .nan)
    }

    public mutating func appendNumber(_ field: Int, text: UnsafeRawBufferPointer, value: Double) {
        let start = arena.count
        arena.append(contentsOf: text)
        link(field, kind: .number, start: start, number: value)
    }

    public mutating func appendBool(_ field: Int, _ value: Bool) {
        let start = arena.count
        arena.append(contentsOf: value ? [0x74, 0x72, 0x75, 0x65] : [0x66, 0x61, 0x6C, 0x73, 0x65])
        link(field, kind: .bool, start: start, number: .nan)
    }

    public mutating func appendNull(_ field: Int) {
        let start = arena.count
        arena.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])
        link(field, kind: .null, start: start, number: .nan)
    }

    /// Appends a scalar found by a ByteJSON scan of `document` (strings decoded).
    public mutating func append(_ field: Int, _ value: JSONLookup, in document: UnsafeRawBufferPointer) {
        switch value {
        case .string(let r, let escaped):
            let start = arena.count
            if escaped {
                JSONStringDecoding.appendDecoded(document.baseAddress!.assumingMemoryBound(to: UInt8.self), r.lowerBound, r.upperBound, to: &arena)
            } else {
                arena.append(contentsOf: UnsafeRawBufferPointer(rebasing: document[r]))
            }
            link(field, kind: .string, start: start, number: .nan)
        case .number(let r):
            let text = UnsafeRawBufferPointer(rebasing: document[r])
            appendNumber(field, text: text, value: JSONNumberParsing.parseDouble(text) ?? .nan)
        case .bool(let b): appendBool(field, b)
        case .null: appendNull(field)
        default: break
        }
    }

    /// Replaces `out` with the first string leaf of `field`; false when there is none.
    public func copyFirstString(_ field: Int, into out: inout [UInt8]) -> Bool {
        guard let first = firstStringRecord(field) else { return false }
        out.removeAll(keepingCapacity: true)
        out.append(contentsOf: arena[Int(first.start)..<Int(first.start + first.length)])
        return true
    }

    /// The first string leaf of `field`, decoded.
    public func firstString(_ field: Int) -> [UInt8]? {
        firstStringRecord(field).map { Array(arena[Int($0.start)..<Int($0.start + $0.length)]) }
    }

    func firstStringRecord(_ field: Int) -> Record? {
        var k = head[field]
        var found: Record?
        // Leaves are chained newest first; the first written is the last in the chain.
        while k >= 0 {
            let record = records[Int(k)]
            if record.kind == .string { found = record }
            k = record.next
        }
        return found
    }
}

/// A ``JSONLeafVisitor`` that files leaves into ``EventValues`` through a map from scanner path to
/// field. Holds a pointer so the values are filled in place (no copy of their buffers per event).
public struct EventValuesCollector: JSONLeafVisitor {
    let values: UnsafeMutablePointer<EventValues>
    /// For each scanner path, the field it fills (-1: none).
    let fieldOfPath: UnsafeBufferPointer<Int>
    let document: UnsafeRawBufferPointer

    public init(values: UnsafeMutablePointer<EventValues>, fieldOfPath: UnsafeBufferPointer<Int>, document: UnsafeRawBufferPointer) {
        self.values = values
        self.fieldOfPath = fieldOfPath
        self.document = document
    }

    @inline(__always)
    public mutating func leaf(path: Int, value: JSONLookup) {
        let field = fieldOfPath[path]
        if field >= 0 { values.pointee.append(field, value, in: document) }
    }
}
