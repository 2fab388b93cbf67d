import ByteJSON

/// The leaf values one event has at the fields a ``RuleSet`` reads, gathered before matching.
/// Reused from event to event: ``reset()`` costs only the fields the last event touched.
public struct EventValues {
    public let fieldCount: Int
    /// First leaf of each field (-1: none), leaves chained through ``next``.
    var head: [Int32]
    var next: [Int32] = []
    var kinds: [LeafKind] = []
    var starts: [Int32] = []
    var lengths: [Int32] = []
    var numbers: [Double] = []
    var fields: [Int32] = []
    /// Decoded bytes of every leaf.
    var arena: [UInt8] = []
    var touched: [Int32] = []

    public init(fieldCount: Int) {
        self.fieldCount = fieldCount
        head = Array(repeating: -1, count: fieldCount)
        arena.reserveCapacity(4096)
    }

    public var leafCount: Int { kinds.count }

    public mutating func reset() {
        for f in touched { head[Int(f)] = -1 }
        touched.removeAll(keepingCapacity: true)
        next.removeAll(keepingCapacity: true)
        kinds.removeAll(keepingCapacity: true)
        starts.removeAll(keepingCapacity: true)
        lengths.removeAll(keepingCapacity: true)
        numbers.removeAll(keepingCapacity: true)
        fields.removeAll(keepingCapacity: true)
        arena.removeAll(keepingCapacity: true)
    }

    /// True when the field has at least one leaf.
    @inline(__always) public func has(_ field: Int) -> Bool { head[field] >= 0 }

    @inline(__always)
    mutating func link(_ field: Int, kind: LeafKind, start: Int, number: Double) {
        if head[field] < 0 { touched.append(Int32(field)) }
        next.append(head[field])
        head[field] = Int32(kinds.count)
        kinds.append(kind)
        starts.append(Int32(start))
        lengths.append(Int32(arena.count - start))
        numbers.append(number)
        fields.append(Int32(field))
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

    /// Copies the leaves of `field` in `other` to `field` here (envelopes built from a record's values).
    public mutating func copy(_ field: Int, from other: EventValues, field source: Int) {
        var k = other.head[source]
        while k >= 0 {
            let i = Int(k)
            let start = arena.count
            arena.append(contentsOf: other.arena[Int(other.starts[i])..<Int(other.starts[i] + other.lengths[i])])
            link(field, kind: other.kinds[i], start: start, number: other.numbers[i])
            k = other.next[i]
        }
    }

    /// Replaces `out` with the first string leaf of `field`; false when there is none.
    public func copyFirstString(_ field: Int, into out: inout [UInt8]) -> Bool {
        var k = head[field]
        var first = -1
        // Leaves are chained newest first; the first written is the last in the chain.
        while k >= 0 {
            if kinds[Int(k)] == .string { first = Int(k) }
            k = next[Int(k)]
        }
        guard first >= 0 else { return false }
        out.removeAll(keepingCapacity: true)
        out.append(contentsOf: arena[Int(starts[first])..<Int(starts[first] + lengths[first])])
        return true
    }

    /// The first string leaf of `field`, decoded.
    public func firstString(_ field: Int) -> [UInt8]? {
        var k = head[field]
        var found: [UInt8]?
        // Leaves are chained newest first; the first written is the last in the chain.
        while k >= 0 {
            let i = Int(k)
            if kinds[i] == .string { found = Array(arena[Int(starts[i])..<Int(starts[i] + lengths[i])]) }
            k = next[i]
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
