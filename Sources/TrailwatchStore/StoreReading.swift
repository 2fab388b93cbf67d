/// Reads for the dashboard: metric series, the metrics present, and detector events.
/// Datapoints for the same metric, period and time (written by several instances, or late data)
/// come back merged into one statistic set.
extension SQLiteStore {
    /// Datapoints of a metric in [start, end), oldest first; with `dimensions` only that exact set.
    public func datapoints(namespace: String, name: String, dimensions: String? = nil, start: Int64, end: Int64,
                           limit: Int) throws(StoreError) -> [StoredDatapoint] {
        let statement = try db.prepare("""
            SELECT timestamp, period, sum(sample_count), sum(sum), min(minimum), max(maximum), dimensions FROM metric_datapoints
            WHERE namespace = ?1 AND metric_name = ?2 AND timestamp >= ?3 AND timestamp < ?4 AND (?5 IS NULL OR dimensions = ?5)
            GROUP BY timestamp, period, dimensions ORDER BY timestamp LIMIT ?6
            """)
        statement.bind(1, namespace)
        statement.bind(2, name)
        statement.bind(3, start)
        statement.bind(4, end)
        statement.bind(5, dimensions)
        statement.bind(6, Int64(limit))
        var out: [StoredDatapoint] = []
        while try statement.step() {
            out.append(StoredDatapoint(timestamp: statement.int(0), period: Int(statement.int(1)), sampleCount: statement.double(2),
                                       sum: statement.double(3), minimum: statement.double(4), maximum: statement.double(5),
                                       dimensions: statement.text(6) ?? "{}"))
        }
        return out
    }

    /// Every metric (namespace, name, dimension set) with a datapoint in [start, end).
    public func metrics(start: Int64, end: Int64, limit: Int) throws(StoreError) -> [StoredMetric] {
        let statement = try db.prepare("""
            SELECT DISTINCT namespace, metric_name, dimensions FROM metric_datapoints
            WHERE timestamp >= ?1 AND timestamp < ?2 ORDER BY namespace, metric_name, dimensions LIMIT ?3
            """)
        statement.bind(1, start)
        statement.bind(2, end)
        statement.bind(3, Int64(limit))
        var out: [StoredMetric] = []
        while try statement.step() {
            out.append(StoredMetric(namespace: statement.text(0) ?? "", name: statement.text(1) ?? "", dimensions: statement.text(2) ?? "{}"))
        }
        return out
    }

    /// Detector events of the given kinds in [start, end), oldest first (at most `limit`, the newest kept).
    public func events(kinds: [String], start: Int64, end: Int64, limit: Int) throws(StoreError) -> [StoredEvent] {
        let placeholders = kinds.indices.map { "?\($0 + 4)" }.joined(separator: ",")
        let statement = try db.prepare("""
            SELECT kind, key, timestamp, body FROM (
              SELECT kind, key, timestamp, body, id FROM detector_events
              WHERE timestamp >= ?1 AND timestamp < ?2 AND kind IN (\(placeholders.isEmpty ? "NULL" : placeholders))
              ORDER BY timestamp DESC, id DESC LIMIT ?3) ORDER BY timestamp, id
            """)
        statement.bind(1, start)
        statement.bind(2, end)
        statement.bind(3, Int64(limit))
        for (i, kind) in kinds.enumerated() { statement.bind(Int32(i + 4), kind) }
        var out: [StoredEvent] = []
        while try statement.step() {
            out.append(StoredEvent(kind: statement.text(0) ?? "", key: statement.text(1) ?? "", timestamp: statement.int(2), body: statement.text(3) ?? "{}"))
        }
        return out
    }

    /// The newest event time among log events, datapoints and detector events (nil for an empty store).
    /// Cheap on any size: log streams keep their last event time, and datapoints and detector events
    /// arrive in time order, so the last row written stands for its table.
    public func newestTimestamp() throws(StoreError) -> Int64? {
        let statement = try db.prepare("""
            SELECT MAX(t) FROM (SELECT MAX(last_event) AS t FROM log_streams
            UNION ALL SELECT (SELECT timestamp FROM metric_datapoints ORDER BY id DESC LIMIT 1)
            UNION ALL SELECT (SELECT timestamp FROM detector_events ORDER BY id DESC LIMIT 1))
            """)
        guard try statement.step() else { return nil }
        let value = statement.int(0)
        return value == 0 ? nil : value
    }
}
