/// Reads for the dashboard: metric series, the metrics present, and detector events.
/// Datapoints for the same metric, period and time (written by several instances, or late data)
/// come back merged into one statistic set.
extension SQLiteStore {
    /// Datapoints of a metric in [start, end), oldest first; with `dimensions` only that exact set.
    public func datapoints(namespace: String, name: String, dimensions: String? = nil, start: Int64, end: Int64,
                           limit: Int) throws(StoreError) -> [StoredDatapoint] {
        let statement = try db.prepare(fileSchemaVersion < 4 ? """
            SELECT timestamp, period, sum(sample_count), sum(sum), min(minimum), max(maximum), dimensions FROM metric_datapoints
            WHERE namespace = ?1 AND metric_name = ?2 AND timestamp >= ?3 AND timestamp < ?4 AND (?5 IS NULL OR dimensions = ?5)
            GROUP BY timestamp, period, dimensions ORDER BY timestamp LIMIT ?6
            """ : """
            SELECT v.timestamp, v.period, sum(v.sample_count), sum(v.sum), min(v.minimum), max(v.maximum), s.dimensions
            FROM metric_series s JOIN metric_values v ON v.series = s.id
            WHERE s.namespace = ?1 AND s.metric_name = ?2 AND (?5 IS NULL OR s.dimensions = ?5) AND v.timestamp >= ?3 AND v.timestamp < ?4
            GROUP BY v.timestamp, v.period, s.dimensions ORDER BY v.timestamp LIMIT ?6
            """)
        Self.bindMetricRange(statement, namespace, name, dimensions, start, end, limit)
        return try Self.readDatapoints(statement, period: nil)
    }

    /// ?1 namespace, ?2 name, ?3–?4 the time range, ?5 the dimensions (NULL: all), ?6 the row limit.
    private static func bindMetricRange(_ statement: Statement, _ namespace: String, _ name: String, _ dimensions: String?,
                                        _ start: Int64, _ end: Int64, _ limit: Int) {
        statement.bind(1, namespace)
        statement.bind(2, name)
        statement.bind(3, start)
        statement.bind(4, end)
        statement.bind(5, dimensions)
        statement.bind(6, Int64(limit))
    }

    /// Rows of (timestamp, period, count, sum, minimum, maximum, dimensions); with `period` the
    /// rows have no period column and dimensions are column 5. Equal dimension texts share one string.
    private static func readDatapoints(_ statement: Statement, period: Int?) throws(StoreError) -> [StoredDatapoint] {
        var out: [StoredDatapoint] = []
        var dimensions = "{}"
        var dimensionBytes: [UInt8] = Array(dimensions.utf8)
        let shift: Int32 = period == nil ? 0 : 1
        while try statement.step() {
            if let raw = statement.bytes(6 - shift), !raw.elementsEqual(dimensionBytes) {
                dimensionBytes = Array(raw)
                dimensions = String(decoding: raw, as: UTF8.self)
            }
            out.append(StoredDatapoint(timestamp: statement.int(0), period: period ?? Int(statement.int(1)), sampleCount: statement.double(2 - shift),
                                       sum: statement.double(3 - shift), minimum: statement.double(4 - shift), maximum: statement.double(5 - shift),
                                       dimensions: dimensions))
        }
        return out
    }

    /// Statistic sets of a metric per hour in [start, end), grouped by dimension set and oldest
    /// first within each: whole hours come from `metric_hours`, the parts of hours that `start` or
    /// `end` cut from the datapoints.
    public func hourlyDatapoints(namespace: String, name: String, dimensions: String?, start: Int64, end: Int64,
                                 limit: Int) throws(StoreError) -> [StoredDatapoint] {
        let hour = SQLiteMetricTables.hour
        let firstWhole = SQLiteMetricTables.hourStart(start) == start ? start : SQLiteMetricTables.hourStart(start) + hour
        let lastWhole = SQLiteMetricTables.hourStart(end)
        guard fileSchemaVersion >= 4, firstWhole < lastWhole else {
            return StoredDatapoint.hourly(try datapoints(namespace: namespace, name: name, dimensions: dimensions, start: start, end: end, limit: limit))
        }
        func edge(_ from: Int64, _ to: Int64) throws(StoreError) -> [String: StoredDatapoint] {
            guard from < to else { return [:] }
            let rows = StoredDatapoint.hourly(try datapoints(namespace: namespace, name: name, dimensions: dimensions, start: from, end: to, limit: limit))
            return Dictionary(rows.map { ($0.dimensions, $0) }, uniquingKeysWith: { a, _ in a })
        }
        var leading = try edge(start, firstWhole)
        var trailing = try edge(lastWhole, end)
        let statement = try db.prepare("""
            SELECT h.hour, sum(h.sample_count), sum(h.sum), min(h.minimum), max(h.maximum), s.dimensions
            FROM metric_series s JOIN metric_hours h ON h.series = s.id
            WHERE s.namespace = ?1 AND s.metric_name = ?2 AND (?5 IS NULL OR s.dimensions = ?5) AND h.hour >= ?3 AND h.hour < ?4
            GROUP BY s.dimensions, h.hour ORDER BY s.dimensions, h.hour LIMIT ?6
            """)
        Self.bindMetricRange(statement, namespace, name, dimensions, firstWhole, lastWhole, limit)
        let whole = try Self.readDatapoints(statement, period: 3600)
        var out: [StoredDatapoint] = []
        out.reserveCapacity(whole.count + leading.count + trailing.count)
        var group: String?
        for row in whole {
            if row.dimensions != group {
                if let group, let last = trailing.removeValue(forKey: group) { out.append(last) }
                group = row.dimensions
                if let first = leading.removeValue(forKey: row.dimensions) { out.append(first) }
            }
            out.append(row)
        }
        if let group, let last = trailing.removeValue(forKey: group) { out.append(last) }
        for rest in Set(leading.keys).union(trailing.keys).sorted() {
            if let first = leading[rest] { out.append(first) }
            if let last = trailing[rest] { out.append(last) }
        }
        return out
    }

    /// Every metric (namespace, name, dimension set) with a datapoint in [start, end).
    public func metrics(start: Int64, end: Int64, limit: Int) throws(StoreError) -> [StoredMetric] {
        let statement = try db.prepare(fileSchemaVersion < 4 ? """
            SELECT DISTINCT namespace, metric_name, dimensions FROM metric_datapoints
            WHERE timestamp >= ?1 AND timestamp < ?2 ORDER BY namespace, metric_name, dimensions LIMIT ?3
            """ : """
            SELECT DISTINCT namespace, metric_name, dimensions FROM metric_series s
            WHERE EXISTS (SELECT 1 FROM metric_values v WHERE v.series = s.id AND v.timestamp >= ?1 AND v.timestamp < ?2)
            ORDER BY namespace, metric_name, dimensions LIMIT ?3
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
    /// Cheap on any size: log streams and metric series keep their last event time, and detector
    /// events arrive in time order, so the last row written stands for its table.
    public func newestTimestamp() throws(StoreError) -> Int64? {
        let newestDatapoint = fileSchemaVersion < 4 ? "SELECT timestamp FROM metric_datapoints ORDER BY id DESC LIMIT 1"
            : "SELECT max(last_timestamp) FROM metric_series"
        let statement = try db.prepare("""
            SELECT MAX(t) FROM (SELECT MAX(last_event) AS t FROM log_streams
            UNION ALL SELECT (\(newestDatapoint))
            UNION ALL SELECT (SELECT timestamp FROM detector_events ORDER BY id DESC LIMIT 1))
            """)
        guard try statement.step() else { return nil }
        let value = statement.int(0)
        return value == 0 ? nil : value
    }
}
