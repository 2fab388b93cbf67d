import PostgresNIO
import TrailwatchStore

/// Reads: dashboards' metrics and events, CloudTrail lookups, and the APIs' resources.
extension PostgresStore {
    public func datapoints(namespace: String, name: String, dimensions: String?, start: Int64, end: Int64,
                           limit: Int) async throws(StoreError) -> [StoredDatapoint] {
        // Contributions of several writers to one period merge into one statistic set.
        let rows = try await run("""
            SELECT timestamp, period::bigint, sum(sample_count), sum(sum), min(minimum), max(maximum), dimensions FROM metric_datapoints
            WHERE \(Self.metricSelection)
            GROUP BY timestamp, period, dimensions ORDER BY timestamp LIMIT $6
            """, Self.metricBindings(namespace, name, dimensions, start, end, limit))
        return try rows.map { row throws(StoreError) in
            let (t, p, c, s, mi, ma, d) = try decode(row, (Int64, Int64, Double, Double, Double, Double, String).self)
            return StoredDatapoint(timestamp: t, period: Int(p), sampleCount: c, sum: s, minimum: mi, maximum: ma, dimensions: d)
        }
    }

    /// Summed per hour by the server (this store keeps no hourly sets): a week of one metric name
    /// comes back as a row per series and hour instead of every datapoint.
    public func hourlyDatapoints(namespace: String, name: String, dimensions: String?, start: Int64, end: Int64,
                                 limit: Int) async throws(StoreError) -> [StoredDatapoint] {
        // The hour's start with floor division (times before 1970 too), as StoredDatapoint.hourly.
        let rows = try await run("""
            SELECT hour, sum(sample_count), sum(sum), min(minimum), max(maximum), dimensions FROM (
              SELECT timestamp - ((timestamp % 3600000) + 3600000) % 3600000 AS hour, sample_count, sum, minimum, maximum, dimensions
              FROM metric_datapoints WHERE \(Self.metricSelection)) d
            GROUP BY dimensions, hour ORDER BY dimensions COLLATE "C", hour LIMIT $6
            """, Self.metricBindings(namespace, name, dimensions, start, end, limit))
        return try rows.map { row throws(StoreError) in
            let (t, c, s, mi, ma, d) = try decode(row, (Int64, Double, Double, Double, Double, String).self)
            return StoredDatapoint(timestamp: t, period: 3600, sampleCount: c, sum: s, minimum: mi, maximum: ma, dimensions: d)
        }
    }

    /// One metric's datapoints in [start, end), with `dimensions` only that set: parameters $1–$5
    /// of ``metricBindings(_:_:_:_:_:_:)``, whose $6 is the row limit.
    static let metricSelection = "namespace = $1 AND metric_name = $2 AND timestamp >= $3 AND timestamp < $4 AND ($5::text IS NULL OR dimensions = $5)"

    static func metricBindings(_ namespace: String, _ name: String, _ dimensions: String?, _ start: Int64, _ end: Int64, _ limit: Int) -> PostgresBindings {
        var binds = PostgresBindings()
        binds.append(namespace); binds.append(name); binds.append(start); binds.append(end); binds.append(dimensions)
        binds.append(Int64(max(1, limit)))
        return binds
    }

    public func metrics(start: Int64, end: Int64, limit: Int) async throws(StoreError) -> [StoredMetric] {
        var binds = PostgresBindings()
        binds.append(start); binds.append(end); binds.append(Int64(max(1, limit)))
        let rows = try await run("""
            SELECT DISTINCT namespace, metric_name, dimensions FROM metric_datapoints
            WHERE timestamp >= $1 AND timestamp < $2 ORDER BY namespace, metric_name, dimensions LIMIT $3
            """, binds)
        return try rows.map { row throws(StoreError) in
            let (n, m, d) = try decode(row, (String, String, String).self)
            return StoredMetric(namespace: n, name: m, dimensions: d)
        }
    }

    public func events(kinds: [String], start: Int64, end: Int64, limit: Int) async throws(StoreError) -> [StoredEvent] {
        var binds = PostgresBindings()
        binds.append(start); binds.append(end); binds.append(Int64(max(1, limit))); binds.append(kinds)
        let rows = try await run("""
            SELECT kind, key, timestamp, body FROM (
              SELECT kind, key, timestamp, body, written FROM detector_events
              WHERE timestamp >= $1 AND timestamp < $2 AND kind = ANY($4::text[])
              ORDER BY timestamp DESC, written DESC LIMIT $3) newest ORDER BY timestamp, written
            """, binds)
        return try rows.map { row throws(StoreError) in
            let (kind, key, t, body) = try decode(row, (String, String, Int64, String).self)
            return StoredEvent(kind: kind, key: key, timestamp: t, body: body)
        }
    }

    /// Cheap on any size: the streams' last events, and the newest datapoint and detector event by index.
    public func newestTimestamp() async throws(StoreError) -> Int64? {
        let rows = try await run("""
            SELECT greatest((SELECT max(last_event) FROM log_streams), (SELECT max(timestamp) FROM metric_datapoints),
                            (SELECT max(timestamp) FROM detector_events))
            """)
        guard let row = rows.first else { return nil }
        return try decode(row, Int64?.self)
    }

    public func lookupEvents(_ request: LookupEventsRequest) async throws(StoreError) -> LookupEventsPage {
        let cursor = try request.nextToken.map { token throws(StoreError) in try PageCursor(token: token) }
        let pageSize = max(1, request.maxResults)
        var binds = PostgresBindings()
        binds.append(request.start ?? Int64.min); binds.append(request.end ?? Int64.max)
        binds.append(cursor?.timestamp ?? Int64.max); binds.append(cursor?.tiebreak ?? Int64.max)
        binds.append(Int64(pageSize + 1))
        // No attribute: every record, by its one EventId row. The attribute is written into the
        // SQL (not bound, not OR-ed with the value) so the planner picks `cloudtrail_lookup_by_time`
        // for it and the value index for the others. The page is cut from the lookup rows before
        // any event is read: joined first, a frequent value had every match read and sorted.
        let selection: String
        if request.attribute.isEmpty {
            selection = "attribute = 'EventId'"
        } else {
            binds.append(request.attribute); binds.append(request.value)
            selection = "attribute = $6 AND value = $7"
        }
        let rows = try await run("""
            SELECT e.message, l.timestamp, l.event_key FROM (
              SELECT timestamp, event_key, log_group FROM cloudtrail_lookup
              WHERE \(selection) AND timestamp >= $1 AND timestamp < $2 AND (timestamp, event_key) < ($3, $4)
              ORDER BY timestamp DESC, event_key DESC LIMIT $5) l
            LEFT JOIN log_events e ON e.timestamp = l.timestamp AND e.event_key = l.event_key AND e.log_group = l.log_group
            ORDER BY l.timestamp DESC, l.event_key DESC
            """, binds)
        var records: [String] = []
        var last = PageCursor(timestamp: 0, tiebreak: 0)
        for row in rows.prefix(pageSize) {
            let (message, t, k) = try decode(row, (String?, Int64, Int64).self)
            // A lookup row whose event is gone (deleted between the two) is skipped; the cursor
            // still moves past it.
            if let message { records.append(message) }
            last = PageCursor(timestamp: t, tiebreak: k)
        }
        return LookupEventsPage(records: records, nextToken: rows.count > pageSize ? last.token : nil)
    }

    // MARK: Groups, streams, paged events

    public func createLogGroup(_ name: String, retentionDays: Int?, now: Int64) async throws(StoreError) -> Bool {
        var binds = PostgresBindings()
        binds.append(name); binds.append(retentionDays.map(Int64.init)); binds.append(now)
        return try await changed("INSERT INTO log_groups(name, retention_days, created) VALUES ($1, $2::bigint, $3) ON CONFLICT DO NOTHING RETURNING 1", binds)
    }

    public func deleteLogGroup(_ name: String) async throws(StoreError) -> Bool {
        var binds = PostgresBindings()
        binds.append(name)
        return try await transaction { () throws(StoreError) -> Bool in
            try await run("DELETE FROM log_events WHERE log_group = $1", binds)
            try await run("DELETE FROM cloudtrail_lookup WHERE log_group = $1", binds)
            let streams = try await changed("DELETE FROM log_streams WHERE log_group = $1 RETURNING 1", binds)
            let group = try await changed("DELETE FROM log_groups WHERE name = $1 RETURNING 1", binds)
            return streams || group
        }
    }

    public func logGroups(prefix: String?, after: String?, limit: Int) async throws(StoreError) -> [StoredLogGroup] {
        var binds = PostgresBindings()
        binds.append(after ?? ""); binds.append(prefix ?? ""); binds.append(Int64(max(1, limit)))
        let rows = try await run("""
            SELECT name, retention_days::bigint, coalesce(created, 0),
              (SELECT coalesce(sum(stored_bytes), 0)::bigint FROM log_streams s WHERE s.log_group = g.name) FROM log_groups g
            WHERE name COLLATE "C" > $1 AND starts_with(name, $2) ORDER BY name COLLATE "C" LIMIT $3
            """, binds)
        return try rows.map { row throws(StoreError) in
            let (name, days, created, bytes) = try decode(row, (String, Int64?, Int64, Int64).self)
            return StoredLogGroup(name: name, retentionDays: days.map(Int.init), creationTime: created, storedBytes: bytes)
        }
    }

    public func createLogStream(group: String, stream: String, now: Int64) async throws(StoreError) -> Bool {
        var binds = PostgresBindings()
        binds.append(group); binds.append(stream); binds.append(now)
        return try await changed("INSERT INTO log_streams(log_group, log_stream, created) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING 1", binds)
    }

    public func deleteLogStream(group: String, stream: String) async throws(StoreError) -> Bool {
        var binds = PostgresBindings()
        binds.append(group); binds.append(stream)
        return try await transaction { () throws(StoreError) -> Bool in
            try await run("""
                DELETE FROM cloudtrail_lookup l USING log_events e WHERE e.log_group = $1 AND e.log_stream = $2
                  AND l.timestamp = e.timestamp AND l.event_key = e.event_key AND l.log_group = e.log_group
                """, binds)
            try await run("DELETE FROM log_events WHERE log_group = $1 AND log_stream = $2", binds)
            return try await changed("DELETE FROM log_streams WHERE log_group = $1 AND log_stream = $2 RETURNING 1", binds)
        }
    }

    public func logStreams(_ request: LogStreamsRequest) async throws(StoreError) -> LogStreamsPage {
        let position = try request.nextToken.map { token throws(StoreError) in try LogStreamsRequest.position(token) }
        var binds = PostgresBindings()
        binds.append(request.group); binds.append(request.prefix ?? "")
        var conditions = ["log_group = $1", "starts_with(log_stream, $2)"]
        let direction = request.descending ? "<" : ">"
        let order = request.descending ? "DESC" : "ASC"
        if let position {
            binds.append(position.lastEvent); binds.append(position.name)
            conditions.append(request.byLastEvent ? "(coalesce(last_event, 0), log_stream COLLATE \"C\") \(direction) ($3, $4)"
                                                  : "log_stream COLLATE \"C\" \(direction) $4")
        }
        let pageSize = max(1, request.limit)
        binds.append(Int64(pageSize + 1))
        let orderBy = (request.byLastEvent ? "coalesce(last_event, 0) \(order), " : "") + "log_stream COLLATE \"C\" \(order)"
        let rows = try await run("""
            SELECT log_stream, coalesce(created, first_event, 0), first_event, last_event, last_ingestion, stored_bytes FROM log_streams
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY \(orderBy) LIMIT $\(binds.count)
            """, binds)
        let streams = try rows.prefix(pageSize).map { row throws(StoreError) in
            let (name, created, first, last, ingestion, bytes) = try decode(row, (String, Int64, Int64?, Int64?, Int64?, Int64).self)
            return StoredLogStream(name: name, creationTime: created, firstEvent: first, lastEvent: last, lastIngestion: ingestion, storedBytes: bytes)
        }
        let next = rows.count > pageSize ? streams.last.map { LogStreamsRequest.token(after: $0.name, lastEvent: $0.lastEvent) } : nil
        return LogStreamsPage(streams: streams, nextToken: next)
    }

    public func logEvents(_ request: LogEventsRequest) async throws(StoreError) -> LogEventsPage {
        let cursor = try request.nextToken.map { token throws(StoreError) in try PageCursor(token: token) }
        var binds = PostgresBindings()
        binds.append(request.logGroup); binds.append(request.start ?? Int64.min); binds.append(request.end ?? Int64.max)
        var conditions = ["log_group = $1", "timestamp >= $2", "timestamp < $3"]
        if !request.logStreams.isEmpty {
            binds.append(request.logStreams)
            conditions.append("log_stream = ANY($\(binds.count)::text[])")
        }
        if let prefix = request.logStreamPrefix {
            binds.append(prefix)
            conditions.append("starts_with(log_stream, $\(binds.count))")
        }
        for needle in request.messageContains {
            binds.append(needle)
            conditions.append("strpos(message, $\(binds.count)) > 0")
        }
        if let cursor {
            binds.append(cursor.timestamp); binds.append(cursor.tiebreak)
            conditions.append("(timestamp, event_key) \(request.newestFirst ? "<" : ">") ($\(binds.count - 1), $\(binds.count))")
        }
        let pageSize = max(1, request.limit)
        binds.append(Int64(pageSize + 1))
        let order = request.newestFirst ? "DESC" : "ASC"
        let rows = try await run("""
            SELECT timestamp, ingestion_time, log_stream, message, event_key FROM log_events
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY timestamp \(order), event_key \(order) LIMIT $\(binds.count)
            """, binds)
        var events: [StoredLogEvent] = []
        for row in rows.prefix(pageSize) {
            let (t, ingestion, stream, message, key) = try decode(row, (Int64, Int64, String, String, Int64).self)
            events.append(StoredLogEvent(timestamp: t, ingestionTime: ingestion, logStream: stream, message: message, eventKey: key))
        }
        let next = rows.count > pageSize ? events.last.map { PageCursor(timestamp: $0.timestamp, tiebreak: $0.eventKey).token } : nil
        return LogEventsPage(events: events, nextToken: next)
    }

    public func scanStatistics(logGroups: [String], start: Int64?, end: Int64?) async throws(StoreError) -> ScanStatistics {
        var binds = PostgresBindings()
        binds.append(start ?? Int64.min); binds.append(end ?? Int64.max)
        var sql = "SELECT count(*), coalesce(sum(octet_length(message)), 0)::bigint FROM log_events WHERE timestamp >= $1 AND timestamp < $2"
        if !logGroups.isEmpty {
            binds.append(logGroups)
            sql += " AND log_group = ANY($3::text[])"
        }
        let rows = try await run(sql, binds)
        guard let row = rows.first else { return ScanStatistics(events: 0, bytes: 0) }
        let (events, bytes) = try decode(row, (Int64, Int64).self)
        return ScanStatistics(events: events, bytes: bytes)
    }

    // MARK: Documents

    public func putDocument(_ document: StoredDocument) async throws(StoreError) {
        var binds = PostgresBindings()
        binds.append(document.kind); binds.append(document.name); binds.append(document.body); binds.append(document.updated)
        try await run("""
            INSERT INTO documents(kind, name, body, updated) VALUES ($1, $2, $3, $4)
            ON CONFLICT (kind, name) DO UPDATE SET body = excluded.body, updated = excluded.updated
            """, binds)
    }

    public func document(kind: String, name: String) async throws(StoreError) -> StoredDocument? {
        var binds = PostgresBindings()
        binds.append(kind); binds.append(name)
        let rows = try await run("SELECT body, updated FROM documents WHERE kind = $1 AND name = $2", binds)
        return try rows.first.map { row throws(StoreError) in
            let (body, updated) = try decode(row, (String, Int64).self)
            return StoredDocument(kind: kind, name: name, body: body, updated: updated)
        }
    }

    public func documents(kind: String, prefix: String?, after: String?, limit: Int) async throws(StoreError) -> [StoredDocument] {
        var binds = PostgresBindings()
        binds.append(kind); binds.append(after ?? ""); binds.append(prefix ?? ""); binds.append(Int64(max(1, limit)))
        let rows = try await run("""
            SELECT name, body, updated FROM documents WHERE kind = $1 AND name COLLATE "C" > $2 AND starts_with(name, $3)
            ORDER BY name COLLATE "C" LIMIT $4
            """, binds)
        return try rows.map { row throws(StoreError) in
            let (name, body, updated) = try decode(row, (String, String, Int64).self)
            return StoredDocument(kind: kind, name: name, body: body, updated: updated)
        }
    }

    public func deleteDocument(kind: String, name: String) async throws(StoreError) -> Bool {
        var binds = PostgresBindings()
        binds.append(kind); binds.append(name)
        return try await changed("DELETE FROM documents WHERE kind = $1 AND name = $2 RETURNING 1", binds)
    }

    /// True when a statement with `RETURNING 1` touched a row.
    private func changed(_ sql: String, _ binds: PostgresBindings) async throws(StoreError) -> Bool {
        !(try await run(sql, binds)).isEmpty
    }
}
