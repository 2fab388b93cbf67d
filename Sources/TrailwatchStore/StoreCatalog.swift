/// The log group and stream catalog the CloudWatch Logs API keeps (creation times, streams
/// created before their first event, retention, metric filters), beside what the `sqlite` sink
/// writes. Groups and streams that only ever received events through a pipeline are part of it
/// too: they are read from `log_streams`.
extension SQLiteStore {
    /// A log group as the catalog knows it.
    public struct CatalogGroup: Sendable, Equatable {
        public var name: String
        public var creationTime: Int64
        public var retentionDays: Int?
        public var metricFilterCount: Int
        public var storedBytes: Int64
    }

    public struct CatalogStream: Sendable, Equatable {
        public var group: String
        public var name: String
        public var creationTime: Int64
        public var firstEvent: Int64?
        public var lastEvent: Int64?
        public var lastIngestion: Int64?
        public var storedBytes: Int64
    }

    public struct CatalogMetricFilter: Sendable, Equatable {
        public var group: String
        public var name: String
        public var pattern: String
        /// The metric transformations as the API's JSON.
        public var transformations: String
        public var creationTime: Int64
        public init(group: String, name: String, pattern: String, transformations: String, creationTime: Int64) {
            self.group = group
            self.name = name
            self.pattern = pattern
            self.transformations = transformations
            self.creationTime = creationTime
        }
    }

    /// A stored log event with its row id (the order key pagination continues from).
    public struct CatalogEvent: Sendable, Equatable {
        public var id: Int64
        public var stream: String
        public var timestamp: Int64
        public var ingestionTime: Int64
        public var message: String
    }

    /// Creates the catalog tables when missing (they are additive: older stores gain them).
    public func ensureCatalog() throws(StoreError) {
        try db.execute("""
            CREATE TABLE IF NOT EXISTS api_log_groups(name TEXT PRIMARY KEY, creation_time INTEGER NOT NULL);
            CREATE TABLE IF NOT EXISTS api_log_streams(log_group TEXT NOT NULL, log_stream TEXT NOT NULL, creation_time INTEGER NOT NULL,
                first_event INTEGER, last_event INTEGER, last_ingestion INTEGER, stored_bytes INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY(log_group, log_stream));
            CREATE TABLE IF NOT EXISTS api_metric_filters(log_group TEXT NOT NULL, name TEXT NOT NULL, pattern TEXT NOT NULL,
                transformations TEXT NOT NULL, creation_time INTEGER NOT NULL, PRIMARY KEY(log_group, name));
            """)
    }

    private static let groupsSQL = """
        SELECT name, MIN(creation_time), (SELECT retention_days FROM log_groups r WHERE r.name = g.name),
          (SELECT count(*) FROM api_metric_filters f WHERE f.log_group = g.name),
          (SELECT COALESCE(SUM(stored_bytes), 0) FROM api_log_streams s WHERE s.log_group = g.name)
        FROM (SELECT name, creation_time FROM api_log_groups
              UNION ALL SELECT name, created FROM log_groups
              UNION ALL SELECT log_group, MIN(first_event) FROM log_streams GROUP BY log_group) g
        """

    private func readGroups(_ statement: Statement) throws(StoreError) -> [CatalogGroup] {
        var out: [CatalogGroup] = []
        while try statement.step() {
            out.append(CatalogGroup(name: statement.text(0) ?? "", creationTime: statement.optionalInt(1) ?? 0,
                                    retentionDays: statement.optionalInt(2).map { Int($0) }, metricFilterCount: Int(statement.int(3)),
                                    storedBytes: statement.int(4)))
        }
        return out
    }

    /// Groups whose name starts with `prefix` (or contains `pattern`), after `after` in name order.
    public func catalogGroups(prefix: String?, contains pattern: String?, after: String?, limit: Int) throws(StoreError) -> [CatalogGroup] {
        let statement = try db.prepare(Self.groupsSQL + """
             WHERE (?1 IS NULL OR substr(name, 1, length(?1)) = ?1) AND (?2 IS NULL OR instr(name, ?2) > 0) AND (?3 IS NULL OR name > ?3)
            GROUP BY name ORDER BY name LIMIT ?4
            """)
        statement.bind(1, prefix)
        statement.bind(2, pattern)
        statement.bind(3, after)
        statement.bind(4, Int64(limit))
        return try readGroups(statement)
    }

    public func catalogGroup(_ name: String) throws(StoreError) -> CatalogGroup? {
        let statement = try db.prepare(Self.groupsSQL + " WHERE name = ?1 GROUP BY name")
        statement.bind(1, name)
        return try readGroups(statement).first
    }

    /// Adds a group; false when it exists already.
    public func createCatalogGroup(_ name: String, creationTime: Int64) throws(StoreError) -> Bool {
        if try catalogGroup(name) != nil { return false }
        let statement = try db.prepare("INSERT OR IGNORE INTO api_log_groups(name, creation_time) VALUES (?1, ?2)")
        statement.bind(1, name)
        statement.bind(2, creationTime)
        try statement.run()
        return db.changes > 0
    }

    /// Removes a group with its streams, events, retention and metric filters; false when unknown.
    public func deleteCatalogGroup(_ name: String) throws(StoreError) -> Bool {
        guard try catalogGroup(name) != nil else { return false }
        try delete(["api_log_groups WHERE name = ?1", "api_log_streams WHERE log_group = ?1", "api_metric_filters WHERE log_group = ?1",
                    "log_groups WHERE name = ?1", "log_streams WHERE log_group = ?1", "log_events WHERE log_group = ?1"], [name])
        return true
    }

    private static let streamsSQL = """
        SELECT log_group, log_stream, MIN(creation_time), MIN(first_event), MAX(last_event), MAX(last_ingestion), SUM(stored_bytes)
        FROM (SELECT log_group, log_stream, creation_time, first_event, last_event, last_ingestion, stored_bytes FROM api_log_streams
              UNION ALL SELECT log_group, log_stream, first_event, first_event, last_event, NULL, 0 FROM log_streams)
        """

    private func readStreams(_ statement: Statement) throws(StoreError) -> [CatalogStream] {
        var out: [CatalogStream] = []
        while try statement.step() {
            out.append(CatalogStream(group: statement.text(0) ?? "", name: statement.text(1) ?? "", creationTime: statement.optionalInt(2) ?? 0,
                                     firstEvent: statement.optionalInt(3), lastEvent: statement.optionalInt(4),
                                     lastIngestion: statement.optionalInt(5), storedBytes: statement.optionalInt(6) ?? 0))
        }
        return out
    }

    /// Streams of `group`, by name (after `after`) or by last event time.
    public func catalogStreams(group: String, prefix: String?, byLastEvent: Bool, descending: Bool, offset: Int, limit: Int) throws(StoreError) -> [CatalogStream] {
        let order = byLastEvent ? "COALESCE(MAX(last_event), 0)" : "log_stream"
        let statement = try db.prepare(Self.streamsSQL + """
             WHERE log_group = ?1 AND (?2 IS NULL OR substr(log_stream, 1, length(?2)) = ?2)
            GROUP BY log_group, log_stream ORDER BY \(order) \(descending ? "DESC" : "ASC"), log_stream LIMIT ?3 OFFSET ?4
            """)
        statement.bind(1, group)
        statement.bind(2, prefix)
        statement.bind(3, Int64(limit))
        statement.bind(4, Int64(offset))
        return try readStreams(statement)
    }

    public func catalogStream(group: String, name: String) throws(StoreError) -> CatalogStream? {
        let statement = try db.prepare(Self.streamsSQL + " WHERE log_group = ?1 AND log_stream = ?2 GROUP BY log_group, log_stream")
        statement.bind(1, group)
        statement.bind(2, name)
        return try readStreams(statement).first
    }

    public func createCatalogStream(group: String, name: String, creationTime: Int64) throws(StoreError) -> Bool {
        if try catalogStream(group: group, name: name) != nil { return false }
        let statement = try db.prepare("INSERT OR IGNORE INTO api_log_streams(log_group, log_stream, creation_time) VALUES (?1, ?2, ?3)")
        statement.bind(1, group)
        statement.bind(2, name)
        statement.bind(3, creationTime)
        try statement.run()
        return db.changes > 0
    }

    public func deleteCatalogStream(group: String, name: String) throws(StoreError) -> Bool {
        guard try catalogStream(group: group, name: name) != nil else { return false }
        try delete(["api_log_streams", "log_streams", "log_events"].map { "\($0) WHERE log_group = ?1 AND log_stream = ?2" }, [group, name])
        return true
    }

    /// `DELETE FROM` each of `targets` (table and condition) with `values` bound, in one transaction.
    private func delete(_ targets: [String], _ values: [String]) throws(StoreError) {
        try begin()
        do {
            for target in targets {
                let statement = try db.prepare("DELETE FROM \(target)")
                for (i, value) in values.enumerated() { statement.bind(Int32(i + 1), value) }
                try statement.run()
            }
            try commit()
        } catch {
            rollback()
            throw error
        }
    }

    /// Records an accepted PutLogEvents batch on its stream (event span, ingestion time, bytes).
    public func recordIngestion(group: String, stream: String, first: Int64, last: Int64, ingestion: Int64, bytes: Int64) throws(StoreError) {
        let statement = try db.prepare("""
            INSERT INTO api_log_streams(log_group, log_stream, creation_time, first_event, last_event, last_ingestion, stored_bytes)
            VALUES (?1, ?2, ?5, ?3, ?4, ?5, ?6)
            ON CONFLICT(log_group, log_stream) DO UPDATE SET first_event = min(COALESCE(first_event, ?3), ?3),
              last_event = max(COALESCE(last_event, ?4), ?4), last_ingestion = ?5, stored_bytes = stored_bytes + ?6
            """)
        statement.bind(1, group)
        statement.bind(2, stream)
        statement.bind(3, first)
        statement.bind(4, last)
        statement.bind(5, ingestion)
        statement.bind(6, bytes)
        try statement.run()
    }

    // MARK: Metric filters

    public func putCatalogMetricFilter(_ filter: CatalogMetricFilter) throws(StoreError) {
        let statement = try db.prepare("""
            INSERT INTO api_metric_filters(log_group, name, pattern, transformations, creation_time) VALUES (?1, ?2, ?3, ?4, ?5)
            ON CONFLICT(log_group, name) DO UPDATE SET pattern = ?3, transformations = ?4
            """)
        statement.bind(1, filter.group)
        statement.bind(2, filter.name)
        statement.bind(3, filter.pattern)
        statement.bind(4, filter.transformations)
        statement.bind(5, filter.creationTime)
        try statement.run()
    }

    public func catalogMetricFilters(group: String?) throws(StoreError) -> [CatalogMetricFilter] {
        let statement = try db.prepare("""
            SELECT log_group, name, pattern, transformations, creation_time FROM api_metric_filters
            WHERE ?1 IS NULL OR log_group = ?1 ORDER BY log_group, name
            """)
        statement.bind(1, group)
        var out: [CatalogMetricFilter] = []
        while try statement.step() {
            out.append(CatalogMetricFilter(group: statement.text(0) ?? "", name: statement.text(1) ?? "", pattern: statement.text(2) ?? "",
                                           transformations: statement.text(3) ?? "[]", creationTime: statement.int(4)))
        }
        return out
    }

    public func deleteCatalogMetricFilter(group: String, name: String) throws(StoreError) -> Bool {
        let statement = try db.prepare("DELETE FROM api_metric_filters WHERE log_group = ?1 AND name = ?2")
        statement.bind(1, group)
        statement.bind(2, name)
        try statement.run()
        return db.changes > 0
    }

    // MARK: Events

    /// Events of `group` (only `streams` when given) with `start <= timestamp < end`, in
    /// (timestamp, id) order after `cursor`, or before it with `newestFirst`.
    public func catalogEvents(group: String, streams: [String]?, streamPrefix: String?, start: Int64?, end: Int64?,
                              after cursor: (timestamp: Int64, id: Int64)?, newestFirst: Bool, limit: Int) throws(StoreError) -> [CatalogEvent] {
        var sql = "SELECT id, log_stream, timestamp, ingestion_time, message FROM log_events WHERE log_group = ?1 AND timestamp >= ?2 AND timestamp < ?3"
        if let cursor {
            sql += newestFirst ? " AND (timestamp < \(cursor.timestamp) OR (timestamp = \(cursor.timestamp) AND id < \(cursor.id)))"
                : " AND (timestamp > \(cursor.timestamp) OR (timestamp = \(cursor.timestamp) AND id > \(cursor.id)))"
        }
        if let streams { sql += " AND log_stream IN (" + streams.indices.map { "?\($0 + 6)" }.joined(separator: ",") + ")" }
        if streamPrefix != nil { sql += " AND substr(log_stream, 1, length(?5)) = ?5" }
        sql += newestFirst ? " ORDER BY timestamp DESC, id DESC LIMIT ?4" : " ORDER BY timestamp, id LIMIT ?4"
        let statement = try db.prepare(sql)
        statement.bind(1, group)
        statement.bind(2, start ?? Int64.min)
        statement.bind(3, end ?? Int64.max)
        statement.bind(4, Int64(limit))
        statement.bind(5, streamPrefix)
        for (i, stream) in (streams ?? []).enumerated() { statement.bind(Int32(i + 6), stream) }
        var out: [CatalogEvent] = []
        while try statement.step() {
            out.append(CatalogEvent(id: statement.int(0), stream: statement.text(1) ?? "", timestamp: statement.int(2),
                                    ingestionTime: statement.int(3), message: statement.text(4) ?? ""))
        }
        return out
    }

    /// Events and message bytes of `groups` in [start, end) (query statistics).
    public func eventStatistics(groups: [String], start: Int64, end: Int64) throws(StoreError) -> (events: Int64, bytes: Int64) {
        let placeholders = groups.indices.map { "?\($0 + 3)" }.joined(separator: ",")
        let statement = try db.prepare("""
            SELECT count(*), COALESCE(SUM(length(CAST(message AS BLOB))), 0) FROM log_events
            WHERE log_group IN (\(placeholders.isEmpty ? "NULL" : placeholders)) AND timestamp >= ?1 AND timestamp < ?2
            """)
        statement.bind(1, start)
        statement.bind(2, end)
        for (i, group) in groups.enumerated() { statement.bind(Int32(i + 3), group) }
        guard try statement.step() else { return (0, 0) }
        return (statement.int(0), statement.int(1))
    }
}
