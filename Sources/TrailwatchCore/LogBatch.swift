/// A batch of log events that share one or more ``ByteStorage`` blocks.
///
/// Per-event data live in parallel arrays so a batch of thousands of lines costs a handful of
/// allocations. Optional columns (timestamps, flags, origins, fields) stay empty when every event
/// has the default, which keeps the common "read lines, filter, write" path cheap.
public struct LogBatch: Sendable {
    /// The byte block messages point into.
    public var storage: ByteStorage
    /// Offset of each message in ``storage``.
    public var starts: [UInt32]
    /// Length of each message (line terminator excluded).
    public var lengths: [UInt32]
    /// Event time of each message in ms; empty means every event has ``defaultTimestamp``.
    public var timestamps: [Int64]
    public var defaultTimestamp: Int64
    /// When the batch entered the pipeline (ms since the epoch).
    public var ingestionTime: Int64
    /// Flags per event; empty means none.
    public var flags: [EventFlags]
    /// Distinct origins in this batch; events refer to them by index.
    public var origins: [Origin]
    /// Origin index per event; empty means every event has origin 0.
    public var originIndices: [UInt16]
    /// Extracted fields per event; empty means none were extracted.
    public var fields: [Fields?]

    public init(storage: ByteStorage, starts: [UInt32] = [], lengths: [UInt32] = [],
                defaultTimestamp: Int64, ingestionTime: Int64, origin: Origin) {
        self.storage = storage
        self.starts = starts
        self.lengths = lengths
        self.timestamps = []
        self.defaultTimestamp = defaultTimestamp
        self.ingestionTime = ingestionTime
        self.flags = []
        self.origins = [origin]
        self.originIndices = []
        self.fields = []
    }

    @inlinable public var count: Int { starts.count }
    @inlinable public var isEmpty: Bool { starts.isEmpty }

    /// Total message bytes (terminators excluded).
    public var messageBytes: Int { lengths.reduce(0) { $0 + Int($1) } }

    /// The message bytes of event `i`. Valid while this batch (or its storage) is alive.
    @inlinable
    public func message(_ i: Int) -> UnsafeRawBufferPointer {
        storage.bytes(at: Int(starts[i]), count: Int(lengths[i]))
    }

    public func messageString(_ i: Int) -> String {
        String(decoding: message(i), as: UTF8.self)
    }

    @inlinable public func timestamp(_ i: Int) -> Int64 { timestamps.isEmpty ? defaultTimestamp : timestamps[i] }
    @inlinable public func flags(_ i: Int) -> EventFlags { flags.isEmpty ? [] : flags[i] }
    @inlinable public func origin(_ i: Int) -> Origin { origins[originIndices.isEmpty ? 0 : Int(originIndices[i])] }
    @inlinable public func fields(_ i: Int) -> Fields? { fields.isEmpty ? nil : fields[i] }

    /// Sets the timestamp of event `i`, materialising the column on first use.
    public mutating func setTimestamp(_ value: Int64, at i: Int) {
        if timestamps.isEmpty {
            if value == defaultTimestamp { return }
            timestamps = Array(repeating: defaultTimestamp, count: count)
        }
        timestamps[i] = value
    }

    public mutating func insertFlags(_ value: EventFlags, at i: Int) {
        if flags.isEmpty { flags = Array(repeating: [], count: count) }
        flags[i].insert(value)
    }

    public mutating func setFields(_ value: Fields?, at i: Int) {
        if fields.isEmpty {
            if value == nil { return }
            fields = Array(repeating: nil, count: count)
        }
        fields[i] = value
    }

    /// Appends one event pointing at `start..<start+length` of ``storage``.
    public mutating func append(start: Int, length: Int, flags eventFlags: EventFlags = [],
                                timestamp: Int64? = nil, originIndex: Int = 0) {
        let index = count
        starts.append(UInt32(truncatingIfNeeded: start))
        lengths.append(UInt32(truncatingIfNeeded: length))
        if !timestamps.isEmpty || (timestamp != nil && timestamp != defaultTimestamp) {
            if timestamps.isEmpty { timestamps = Array(repeating: defaultTimestamp, count: index) }
            timestamps.append(timestamp ?? defaultTimestamp)
        }
        if !flags.isEmpty || !eventFlags.isEmpty {
            if flags.isEmpty { flags = Array(repeating: [], count: index) }
            flags.append(eventFlags)
        }
        if !originIndices.isEmpty || originIndex != 0 {
            if originIndices.isEmpty { originIndices = Array(repeating: 0, count: index) }
            originIndices.append(UInt16(truncatingIfNeeded: originIndex))
        }
        if !fields.isEmpty { fields.append(nil) }
    }

    /// Index of `origin` in ``origins``, adding it when new.
    public mutating func originIndex(for origin: Origin) -> Int {
        if let i = origins.firstIndex(of: origin) { return i }
        origins.append(origin)
        return origins.count - 1
    }

    /// A batch holding only the events at `indices` (ascending), sharing the same storage.
    public func selecting(_ indices: [Int]) -> LogBatch {
        var out = self
        out.starts = indices.map { starts[$0] }
        out.lengths = indices.map { lengths[$0] }
        if !timestamps.isEmpty { out.timestamps = indices.map { timestamps[$0] } }
        if !flags.isEmpty { out.flags = indices.map { flags[$0] } }
        if !originIndices.isEmpty { out.originIndices = indices.map { originIndices[$0] } }
        if !fields.isEmpty { out.fields = indices.map { fields[$0] } }
        return out
    }
}
