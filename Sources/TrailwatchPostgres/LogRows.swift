import CShims
import TrailwatchCore
import TrailwatchStore

/// One log batch prepared for `log_events`: each event's idempotency key (as in the SQLite
/// store), per-stream spans and bytes, its CloudTrail lookup rows — and the
/// rows themselves, written in binary COPY format piece by piece while earlier pieces are on
/// their way to the server.
///
/// Rows go in (timestamp, event_key) order, the order of the unique index: a batch's keys are
/// hashes, and in file order every row would land on a random page of the index's newest part
/// (a descent from the root each); in key order PostgreSQL appends to the rightmost leaf
/// directly and splits it as an append-only index (measured: a quarter less server CPU per
/// row). No read depends on the order rows were written in: ordered reads sort by
/// (timestamp, event_key), unordered ones are for aggregates.
struct LogRows: Sendable {
    let logs: LogBatch
    /// Each event's key, in batch order.
    private(set) var keys: [Int64]
    /// Event indices in (timestamp, key) order.
    private(set) var order: [Int32] = []
    /// Per origin: the first and last event time, and the message bytes.
    private(set) var spans: [(Int64, Int64)?]
    private(set) var originBytes: [Int64]
    /// CloudTrail records' rows for `cloudtrail_lookup`, without the stream's header and trailer
    /// (empty when none).
    private(set) var lookups = CopyRows(capacity: 0)
    /// Per origin, the columns between the key and the message, encoded once per batch
    /// (log_group, log_stream, ingestion_time): origin k's are `middles[middleRanges[k]]`.
    private let middles: [UInt8]
    private let middleRanges: [Range<Int>]

    var count: Int { logs.count }

    init(_ logs: LogBatch, cloudTrail: CloudTrailAttributes) {
        self.logs = logs
        let names = logs.origins.map { (group: Array($0.logGroup.utf8), stream: Array($0.logStream.utf8)) }
        let ingestion = CopyRows.bigintColumn(logs.ingestionTime)
        let encodedMiddles = names.map { name in CopyRows.textColumn(name.group) + CopyRows.textColumn(name.stream) + ingestion }
        middles = encodedMiddles.flatMap { $0 }
        middleRanges = encodedMiddles.reduce(into: []) { ranges, middle in
            let start = ranges.last?.upperBound ?? 0
            ranges.append(start..<(start + middle.count))
        }
        // The key's state after the group and stream names, once per origin.
        let streamKeys = names.map { name in
            name.group.withUnsafeBytes { group in
                name.stream.withUnsafeBytes { stream in
                    var key = StoreKey()
                    key.add(group)
                    key.add(stream)
                    return key
                }
            }
        }
        spans = [(Int64, Int64)?](repeating: nil, count: logs.origins.count)
        originBytes = [Int64](repeating: 0, count: logs.origins.count)
        keys = [Int64](repeating: 0, count: logs.count)
        var seen = OccurrenceCounter(capacity: logs.count)
        var sortedAlready = true
        var previous = (Int64.min, Int64.min)
        for i in 0..<logs.count {
            let originIndex = logs.originIndices.isEmpty ? 0 : Int(logs.originIndices[i])
            let message = logs.message(i)
            let time = logs.timestamp(i)
            var hasher = streamKeys[originIndex]
            hasher.add(message)
            hasher.add(time)
            var key = hasher.value
            let occurrence = seen.next(key)
            if occurrence > 0 {
                var again = StoreKey()
                again.add(key)
                again.add(Int64(occurrence))
                key = again.value
            }
            keys[i] = key
            if (time, key) < previous { sortedAlready = false }
            previous = (time, key)
            let span = spans[originIndex]
            spans[originIndex] = (min(span?.0 ?? time, time), max(span?.1 ?? time, time))
            originBytes[originIndex] += Int64(message.count)
            if let attributes = cloudTrail.attributes(of: message) {
                // A record naming two resources of one type gives that pair twice: one row (the
                // lookup key would refuse the second).
                for (n, (attribute, value)) in attributes.enumerated() where !attributes[..<n].contains(where: { $0 == (attribute, value) }) {
                    lookups.row(columns: 5)
                    lookups.text(Array(attribute.utf8))
                    lookups.text(Array(value.utf8))
                    lookups.bigint(time)
                    lookups.bigint(key)
                    lookups.text(names[originIndex].group)
                }
            }
        }
        if sortedAlready {
            order = Array(0..<Int32(logs.count))
        } else {
            // Without times, one time for the whole batch (the time it was read): by key alone.
            order = Self.order(keys: keys, times: logs.timestamps.isEmpty ? nil : logs.timestamps)
        }
    }

    /// Indices `0..<keys.count` in (time, key) order (by key alone without times), both signed:
    /// a least-significant-digit radix sort, a byte a pass, each pass stable, the keys' passes
    /// first and the times' after. A byte every value shares is skipped (a batch's times mostly
    /// differ in their low bytes only). Hand-written: the comparison sort it replaces took an
    /// eighth of the client's CPU in `perf`.
    static func order(keys: [Int64], times: [Int64]?) -> [Int32] {
        let n = keys.count
        var order = [Int32](unsafeUninitializedCapacity: n) { buffer, initialized in
            for i in 0..<n { buffer[i] = Int32(i) }
            initialized = n
        }
        guard n > 1 else { return order }
        var scratch = [Int32](repeating: 0, count: n)
        var counts = [Int](repeating: 0, count: 8 * 256)
        func sort(by values: [Int64]) {
            values.withUnsafeBufferPointer { values in
                counts.withUnsafeMutableBufferPointer { counts in
                    counts.update(repeating: 0)
                    // Every byte's histogram in one read; the sign bit flipped so that negative values come first.
                    for value in values {
                        let u = UInt64(bitPattern: value) ^ (1 << 63)
                        for byte in 0..<8 { counts[byte &* 256 &+ Int(truncatingIfNeeded: (u &>> UInt64(byte &* 8)) & 0xFF)] &+= 1 }
                    }
                    for byte in 0..<8 {
                        let histogram = UnsafeMutableBufferPointer(rebasing: counts[(byte * 256)..<(byte * 256 + 256)])
                        if histogram.contains(n) { continue }
                        var start = 0
                        for digit in 0..<256 {
                            let count = histogram[digit]
                            histogram[digit] = start
                            start &+= count
                        }
                        let shift = UInt64(byte * 8)
                        order.withUnsafeBufferPointer { from in
                            scratch.withUnsafeMutableBufferPointer { to in
                                for index in from {
                                    let u = UInt64(bitPattern: values[Int(index)]) ^ (1 << 63)
                                    let digit = Int(truncatingIfNeeded: (u &>> shift) & 0xFF)
                                    to[histogram[digit]] = index
                                    histogram[digit] &+= 1
                                }
                            }
                        }
                        swap(&order, &scratch)
                    }
                }
            }
        }
        sort(by: keys)
        if let times { sort(by: times) }
        return order
    }

    /// Day starts (ms) the events of `logs` fall in.
    static func days(of logs: LogBatch, dayMillis: Int64) -> Set<Int64> {
        var days = Set<Int64>()
        var lastDay = Int64.min
        for i in 0..<logs.count {
            let day = PostgresStore.floorDiv(logs.timestamp(i), dayMillis) * dayMillis
            if day != lastDay {
                days.insert(day)
                lastDay = day
            }
        }
        return days
    }

    /// Writes the rows from position `start` (in row order) until `rows` holds about `maxBytes`
    /// (at least one row); returns the position after the last row written. The COPY stream's
    /// header and trailer are the caller's: one stream may hold several batches.
    func encode(from start: Int, into rows: inout CopyRows, maxBytes: Int) -> Int {
        logs.fields.isEmpty
            ? encodeWithoutFields(from: start, into: &rows, maxBytes: maxBytes)
            : encodeWithFields(from: start, into: &rows, maxBytes: maxBytes)
    }

    /// The batch's stream activity: each stream's first and last event time and the bytes it
    /// gained — all of its message bytes, or `addedBytes` (keyed group NUL stream) when only
    /// some rows were new.
    func activity(addedBytes: [String: Int64]?) -> [StreamActivity] {
        var addedBytes = addedBytes
        var activity: [StreamActivity] = []
        for (index, span) in spans.enumerated() {
            guard let span else { continue }
            let origin = logs.origins[index]
            let bytes: Int64
            if addedBytes == nil {
                bytes = originBytes[index]
            } else {
                // An origin listed twice in one batch counts its bytes once.
                bytes = addedBytes?.removeValue(forKey: Self.streamKey(origin.logGroup, origin.logStream)) ?? 0
            }
            activity.append(StreamActivity(group: origin.logGroup, stream: origin.logStream, firstEvent: span.0, lastEvent: span.1,
                                           ingestionTime: logs.ingestionTime, bytes: bytes))
        }
        return activity
    }

    /// A stream's key in ``activity(addedBytes:)``.
    static func streamKey(_ group: String, _ stream: String) -> String { group + "\u{0}" + stream }

    /// Rows without extracted fields (what a file or network source sends): written through raw
    /// pointers, as many rows per buffer call as fit, so that a row costs no reference counting
    /// or buffer bookkeeping (those were a fifth of the client's encoding time in `perf`).
    private func encodeWithoutFields(from start: Int, into rows: inout CopyRows, maxBytes: Int) -> Int {
        let columns = Int16(PostgresStore.eventColumns.count)
        let base = UnsafeRawPointer(logs.storage.mutableBase)
        let (timestamps, defaultTimestamp, originIndices) = (logs.timestamps, logs.defaultTimestamp, logs.originIndices)
        var position = start
        logs.starts.withUnsafeBufferPointer { starts in
        logs.lengths.withUnsafeBufferPointer { lengths in
        timestamps.withUnsafeBufferPointer { timestamps in
        originIndices.withUnsafeBufferPointer { originIndices in
        keys.withUnsafeBufferPointer { keys in
        order.withUnsafeBufferPointer { order in
        middles.withUnsafeBytes { middles in
        middleRanges.withUnsafeBufferPointer { middleRanges in
            func middle(_ i: Int) -> UnsafeRawBufferPointer {
                UnsafeRawBufferPointer(rebasing: middles[middleRanges[originIndices.isEmpty ? 0 : Int(originIndices[i])]])
            }
            func worstCase(_ i: Int) -> Int {
                CopyRows.rowHeadBytes + middle(i).count + CopyRows.textWorstCase(Int(lengths[i])) + 4
            }
            while position < order.count && (position == start || rows.byteCount < maxBytes) {
                let before = rows.byteCount
                // Room for the rest of the piece, and at least for the next row.
                let room = Swift.max(maxBytes - before, worstCase(Int(order[position])))
                rows.appendRows(room: room) { raw in
                    let out = raw.baseAddress!
                    var written = 0
                    while position < order.count && (written == 0 || before + written < maxBytes) {
                        // Rows go in key order, not file order: each message is somewhere else in
                        // the batch's storage, a cache miss the hardware cannot foresee, so the
                        // message a few rows ahead is fetched now (measured: a third of the
                        // encoding time was spent waiting for messages).
                        if position + Self.prefetchDistance < order.count {
                            let ahead = Int(order[position + Self.prefetchDistance])
                            let message = base + Int(starts[ahead])
                            tw_prefetch(message)
                            if lengths[ahead] > 64 { tw_prefetch(message + 64) }
                            if lengths[ahead] > 128 { tw_prefetch(message + 128) }
                        }
                        let i = Int(order[position])
                        guard written + worstCase(i) <= raw.count else { break }
                        let time = timestamps.isEmpty ? defaultTimestamp : timestamps[i]
                        written += CopyRows.rowHead(at: out + written, columns: columns, time, keys[i], then: middle(i))
                        written += CopyRows.textColumn(at: out + written, UnsafeRawBufferPointer(start: base + Int(starts[i]), count: Int(lengths[i])))
                        (out + written).storeBytes(of: Int32(-1).bigEndian, as: Int32.self)  // fields: NULL
                        written += 4
                        position += 1
                    }
                    return written
                }
            }
        } } } } } } } }
        return position
    }

    /// How many rows ahead messages are fetched.
    static let prefetchDistance = 8

    /// Rows of a batch with extracted fields, a row at a time.
    private func encodeWithFields(from start: Int, into rows: inout CopyRows, maxBytes: Int) -> Int {
        var position = start
        var fieldsText = TrailwatchCore.ByteBuffer()
        while position < order.count && (position == start || rows.byteCount < maxBytes) {
            let i = Int(order[position])
            position += 1
            let originIndex = logs.originIndices.isEmpty ? 0 : Int(logs.originIndices[i])
            middles.withUnsafeBytes { middles in
                rows.row(columns: Int16(PostgresStore.eventColumns.count), logs.timestamp(i), keys[i],
                         then: UnsafeRawBufferPointer(rebasing: middles[middleRanges[originIndex]]))
            }
            rows.text(logs.message(i))
            if let fields = logs.fields(i), !fields.entries.isEmpty {
                fieldsText.removeAll()
                LogRecordEncoder.appendFields(fields, to: &fieldsText)
                fieldsText.bytes.withUnsafeBytes { rows.text($0) }
            } else {
                rows.null()
            }
        }
        return position
    }
}
