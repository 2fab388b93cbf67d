/// Bounded counts of attribute values (e.g. which `userIdentityArn` made the calls).
///
/// At most ``capacity`` values are kept per attribute; when a new value arrives at capacity, the smallest count is
/// replaced and the newcomer inherits that count (the Space-Saving heavy-hitter scheme), so frequent values are never
/// lost and memory stays bounded. Values are found by a precomputed ``FastHash`` digest to keep the hot path cheap.
struct AttributionTable: Sendable, Codable, Equatable {
    static let attributes = ["userIdentityArn", "userAgent", "errorCode"]

    /// Values and counts of one attribute.
    struct Column: Sendable, Codable, Equatable {
        var digests: [UInt64] = []
        var values: [String] = []
        var counts: [Double] = []
        var index: [UInt64: Int32] = [:]

        private enum CodingKeys: String, CodingKey { case values, counts }

        init() {}

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            values = try c.decode([String].self, forKey: .values)
            counts = try c.decode([Double].self, forKey: .counts)
            digests = values.map { FastHash.hash($0) }
            for (i, d) in digests.enumerated() { index[d] = Int32(i) }
        }

        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(values, forKey: .values)
            try c.encode(counts, forKey: .counts)
        }

        static func == (a: Column, b: Column) -> Bool { a.values == b.values && a.counts == b.counts }
    }

    var capacity: Int
    private(set) var columns: [Column]
    /// Minutes the counts were accumulated over (for averages).
    var minutes: Double = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        columns = Array(repeating: Column(), count: Self.attributes.count)
    }

    /// Adds `count` to `value` (whose ``FastHash`` digest is `digest`) of attribute number `attribute`.
    mutating func add(attribute: Int, value: String, digest: UInt64, count: Double) {
        if let slot = columns[attribute].index[digest] {
            columns[attribute].counts[Int(slot)] += count
            return
        }
        if columns[attribute].values.count < capacity {
            columns[attribute].index[digest] = Int32(columns[attribute].values.count)
            columns[attribute].digests.append(digest)
            columns[attribute].values.append(value)
            columns[attribute].counts.append(count)
            return
        }
        // Replace the smallest (ties: the lexically smallest value, for determinism).
        var smallest = 0
        let column = columns[attribute]
        for i in 1..<column.counts.count where column.counts[i] < column.counts[smallest]
            || (column.counts[i] == column.counts[smallest] && column.values[i] < column.values[smallest]) {
            smallest = i
        }
        columns[attribute].index.removeValue(forKey: column.digests[smallest])
        columns[attribute].index[digest] = Int32(smallest)
        columns[attribute].digests[smallest] = digest
        columns[attribute].values[smallest] = value
        columns[attribute].counts[smallest] += count
    }

    /// Multiplies every count and the minute total by `factor` (exponential forgetting of old history).
    mutating func scale(by factor: Double) {
        for a in columns.indices {
            var kept = Column()
            let column = columns[a]
            for i in column.values.indices where column.counts[i] * factor >= 0.01 {
                kept.index[column.digests[i]] = Int32(kept.values.count)
                kept.digests.append(column.digests[i])
                kept.values.append(column.values[i])
                kept.counts.append(column.counts[i] * factor)
            }
            columns[a] = kept
        }
        minutes *= factor
    }

    /// The top `limit` values of an attribute with their per-minute averages over `minutes`.
    func top(attribute: Int, limit: Int, overMinutes minutes: Double) -> [InsightAttributionValue] {
        guard minutes > 0 else { return [] }
        let column = columns[attribute]
        return column.values.indices
            .sorted { column.counts[$0] != column.counts[$1] ? column.counts[$0] > column.counts[$1]
                : column.values[$0] < column.values[$1] }
            .prefix(limit)
            .map { InsightAttributionValue(value: column.values[$0], average: Self.round(column.counts[$0] / minutes)) }
    }

    /// Averages are reported with 4 decimals, enough for rates and stable in JSON.
    static func round(_ v: Double) -> Double { (v * 10_000).rounded() / 10_000 }
}
