import TrailwatchCore
import TrailwatchStore

/// One log batch prepared for `log_events`: each event's idempotency key (as in the SQLite
/// store), the batch's days, per-stream spans and bytes, its CloudTrail lookup rows — and the
/// rows themselves, written in COPY text format piece by piece while earlier pieces are on their
/// way to the server.
///
/// Rows go in (timestamp, event_key) order, the order of the unique index: a batch's keys are
/// hashes, and in file order every row would land on a random page of the index's newest part
/// (a descent from the root each); in key order PostgreSQL appends to the rightmost leaf
/// directly and splits it as an append-only index (measured: a quarter less server CPU per
/// row). No read depends on the order rows were written in: ordered reads sort by
/// (timestamp, event_key), unordered ones are for aggregates.
struct LogRows {
    let logs: LogBatch
    /// Each event's key, in batch order.
    private(set) var keys: [Int64]
    /// Event indices in (timestamp, key) order.
    private(set) var order: [Int32] = []
    /// Day starts (ms) the events fall in.
    private(set) var days = Set<Int64>()
    /// Per origin: the first and last event time, and the message bytes.
    private(set) var spans: [(Int64, Int64)?]
    private(set) var originBytes: [Int64]
    /// CloudTrail records' rows for `cloudtrail_lookup`.
    private(set) var lookups = CopyText(capacity: 0)
    /// Per origin, the columns between the key and the message, escaped once per batch:
    /// TAB log_group TAB log_stream TAB ingestion_time TAB.
    private let middles: [[UInt8]]

    var count: Int { logs.count }

    init(_ logs: LogBatch, cloudTrail: CloudTrailAttributes, dayMillis: Int64) {
        self.logs = logs
        let names = logs.origins.map { (group: Array($0.logGroup.utf8), stream: Array($0.logStream.utf8)) }
        var ingestion = [UInt8](repeating: 0, count: 21)
        let ingestionDigits = ingestion.withUnsafeMutableBufferPointer { CopyText.writeNumber(logs.ingestionTime, to: $0.baseAddress!) }
        middles = names.map { name in
            [CopyText.tab] + CopyText.escaped(name.group) + [CopyText.tab] + CopyText.escaped(name.stream) + [CopyText.tab]
                + ingestion[..<ingestionDigits] + [CopyText.tab]
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
        var lastDay = Int64.min
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
            let day = PostgresStore.floorDiv(time, dayMillis) * dayMillis
            if day != lastDay {
                days.insert(day)
                lastDay = day
            }
            let span = spans[originIndex]
            spans[originIndex] = (min(span?.0 ?? time, time), max(span?.1 ?? time, time))
            originBytes[originIndex] += Int64(message.count)
            if let attributes = cloudTrail.attributes(of: message) {
                // A record naming two resources of one type gives that pair twice: one row (the
                // lookup key would refuse the second).
                for (n, (attribute, value)) in attributes.enumerated() where !attributes[..<n].contains(where: { $0 == (attribute, value) }) {
                    lookups.text(Array(attribute.utf8))
                    lookups.text(Array(value.utf8))
                    lookups.number(time)
                    lookups.number(key)
                    lookups.text(names[originIndex].group, last: true)
                }
            }
        }
        if sortedAlready {
            order = Array(0..<Int32(logs.count))
        } else if logs.timestamps.isEmpty {
            // One time for the whole batch (the time it was read): by key alone.
            var entries = (0..<logs.count).map { (key: keys[$0], index: Int32($0)) }
            entries.sort { $0.key < $1.key }
            order = entries.map(\.index)
        } else {
            var entries = (0..<logs.count).map { (time: logs.timestamps[$0], key: keys[$0], index: Int32($0)) }
            entries.sort { ($0.time, $0.key) < ($1.time, $1.key) }
            order = entries.map(\.index)
        }
    }

    /// Writes the rows from position `start` (in row order) until `rows` holds about `maxBytes`;
    /// returns the position after the last row written.
    func encode(from start: Int, into rows: inout CopyText, maxBytes: Int) -> Int {
        var position = start
        var fieldsText = TrailwatchCore.ByteBuffer()
        while position < order.count && rows.byteCount < maxBytes {
            let i = Int(order[position])
            position += 1
            let originIndex = logs.originIndices.isEmpty ? 0 : Int(logs.originIndices[i])
            rows.number(logs.timestamp(i))
            rows.number(keys[i], then: middles[originIndex])
            if let fields = logs.fields(i), !fields.entries.isEmpty {
                rows.text(logs.message(i))
                fieldsText.removeAll()
                LogRecordEncoder.appendFields(fields, to: &fieldsText)
                fieldsText.bytes.withUnsafeBytes { rows.text($0, last: true) }
            } else {
                rows.text(logs.message(i))
                rows.null(last: true)
            }
        }
        return position
    }
}
