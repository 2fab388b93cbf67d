/// Bounded counts of attribute values (e.g. which `userIdentityArn` made the calls).
///
/// At most ``capacity`` values are kept per attribute; when a new value arrives at capacity, the smallest count is
/// replaced and the newcomer inherits that count (the Space-Saving heavy-hitter scheme), so frequent values are never
/// lost and memory stays bounded.
struct AttributionTable: Sendable, Codable, Equatable {
    static let attributes = ["userIdentityArn", "userAgent", "errorCode"]

    var capacity: Int
    /// Counts per attribute, indexed like ``attributes``.
    private(set) var counts: [[String: Double]]
    /// Minutes the counts were accumulated over (for averages).
    var minutes: Double = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        counts = Array(repeating: [:], count: Self.attributes.count)
    }

    mutating func add(attribute: Int, value: String, count: Double) {
        if counts[attribute][value] != nil || counts[attribute].count < capacity {
            counts[attribute][value, default: 0] += count
            return
        }
        var smallest: (String, Double)?
        for (k, v) in counts[attribute] where smallest == nil || v < smallest!.1 || (v == smallest!.1 && k < smallest!.0) {
            smallest = (k, v)
        }
        if let (k, v) = smallest {
            counts[attribute].removeValue(forKey: k)
            counts[attribute][value] = v + count
        }
    }

    /// Multiplies every count and the minute total by `factor` (exponential forgetting of old history).
    mutating func scale(by factor: Double) {
        for i in counts.indices {
            for k in counts[i].keys { counts[i][k]! *= factor }
            counts[i] = counts[i].filter { $0.value >= 0.01 }
        }
        minutes *= factor
    }

    /// The top `limit` values of an attribute with their per-minute averages over `minutes`.
    func top(attribute: Int, limit: Int, overMinutes minutes: Double) -> [InsightAttributionValue] {
        guard minutes > 0 else { return [] }
        return counts[attribute]
            .sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
            .prefix(limit)
            .map { InsightAttributionValue(value: $0.key, average: Self.round($0.value / minutes)) }
    }

    /// Averages are reported with 4 decimals, enough for rates and stable in JSON.
    static func round(_ v: Double) -> Double { (v * 10_000).rounded() / 10_000 }
}
