/// The SQLite store's log group and stream registry, paged event reads and documents (what the
/// CloudWatch Logs, CloudWatch and CloudTrail APIs need beyond writing and querying).
extension SQLiteStore {
    public func createLogGroup(_ name: String, retentionDays: Int?, now: Int64) throws(StoreError) -> Bool {
        let statement = try db.prepare("INSERT OR IGNORE INTO log_groups(name, retention_days, created) VALUES (?1, ?2, ?3)")
        statement.bind(1, name)
        if let retentionDays { statement.bind(2, Int64(retentionDays)) } else { statement.bind(2, nil as String?) }
        statement.bind(3, now)
        try statement.run()
        return db.changes > 0
    }

    public func deleteLogGroup(_ name: String) throws(StoreError) -> Bool {
        try begin()
        do {
            var found = false
            for sql in ["DELETE FROM log_events WHERE log_group = ?1", "DELETE FROM log_streams WHERE log_group = ?1",
                        "DELETE FROM log_groups WHERE name = ?1"] {
                let statement = try db.prepare(sql)
                statement.bind(1, name)
                try statement.run()
                if sql.contains("log_groups") || sql.contains("log_streams") { found = found || db.changes > 0 }
            }
            try commit()
            return found
        } catch {
            rollback()
            throw error
        }
    }

    public func logGroups(prefix: String?, after: String?, limit: Int) throws(StoreError) -> [StoredLogGroup] {
        // Groups written to without being created have no row of their own until their first batch registers them.
        let statement = try db.prepare("""
            SELECT name, retention_days, coalesce(created, 0),
              (SELECT coalesce(sum(stored_bytes), 0) FROM log_streams s WHERE s.log_group = log_groups.name) FROM log_groups
            WHERE name > ?1 AND substr(name, 1, length(?2)) = ?2 ORDER BY name LIMIT ?3
            """)
        statement.bind(1, after ?? "")
        statement.bind(2, prefix ?? "")
        statement.bind(3, Int64(max(1, limit)))
        var out: [StoredLogGroup] = []
        while try statement.step() {
            let days: Int? = statement.isNull(1) ? nil : Int(statement.int(1))
            out.append(StoredLogGroup(name: statement.text(0) ?? "", retentionDays: days, creationTime: statement.int(2), storedBytes: statement.int(3)))
        }
        return out
    }

    public func createLogStream(group: String, stream: String, now: Int64) throws(StoreError) -> Bool {
        let statement = try db.prepare("INSERT OR IGNORE INTO log_streams(log_group, log_stream, created) VALUES (?1, ?2, ?3)")
        statement.bind(1, group)
        statement.bind(2, stream)
        statement.bind(3, now)
        try statement.run()
        return db.changes > 0
    }

    public func deleteLogStream(group: String, stream: String) throws(StoreError) -> Bool {
        try begin()
        do {
            for sql in ["DELETE FROM log_events WHERE log_group = ?1 AND log_stream = ?2", "DELETE FROM log_streams WHERE log_group = ?1 AND log_stream = ?2"] {
                let statement = try db.prepare(sql)
                statement.bind(1, group)
                statement.bind(2, stream)
                try statement.run()
            }
            let found = db.changes > 0
            try commit()
            return found
        } catch {
            rollback()
            throw error
        }
    }

    public func logStreams(_ request: LogStreamsRequest) throws(StoreError) -> LogStreamsPage {
        let position = try request.nextToken.map { token throws(StoreError) in try LogStreamsRequest.position(token) }
        let direction = request.descending ? "<" : ">"
        let order = request.descending ? "DESC" : "ASC"
        var conditions = ["log_group = ?1", "substr(log_stream, 1, length(?2)) = ?2"]
        if position != nil {
            conditions.append(request.byLastEvent ? "(coalesce(last_event, 0), log_stream) \(direction) (?4, ?5)" : "log_stream \(direction) ?5")
        }
        let orderBy = request.byLastEvent ? "coalesce(last_event, 0) \(order), log_stream \(order)" : "log_stream \(order)"
        let statement = try db.prepare("""
            SELECT log_stream, coalesce(created, first_event, 0), first_event, last_event, last_ingestion, stored_bytes FROM log_streams
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY \(orderBy) LIMIT ?3
            """)
        let pageSize = max(1, request.limit)
        statement.bind(1, request.group)
        statement.bind(2, request.prefix ?? "")
        statement.bind(3, Int64(pageSize + 1))
        if let position {
            statement.bind(4, position.lastEvent)
            statement.bind(5, position.name)
        }
        var out: [StoredLogStream] = []
        var more = false
        while try statement.step() {
            if out.count == pageSize { more = true; break }
            out.append(StoredLogStream(name: statement.text(0) ?? "", creationTime: statement.int(1),
                                       firstEvent: statement.optionalInt(2), lastEvent: statement.optionalInt(3),
                                       lastIngestion: statement.optionalInt(4), storedBytes: statement.int(5)))
        }
        let next = more ? out.last.map { LogStreamsRequest.token(after: $0.name, lastEvent: $0.lastEvent) } : nil
        return LogStreamsPage(streams: out, nextToken: next)
    }

    public func logEvents(_ request: LogEventsRequest) throws(StoreError) -> LogEventsPage {
        let cursor = try request.nextToken.map { token throws(StoreError) in try PageCursor(token: token) }
        var conditions = ["log_group = ?", "timestamp >= ?", "timestamp < ?"]
        if !request.logStreams.isEmpty {
            conditions.append("log_stream IN (" + request.logStreams.map { _ in "?" }.joined(separator: ",") + ")")
        }
        if request.logStreamPrefix != nil { conditions.append("substr(log_stream, 1, length(?)) = ?") }
        for _ in request.messageContains { conditions.append("instr(message, ?) > 0") }
        let order = request.newestFirst ? "DESC" : "ASC"
        if cursor != nil { conditions.append(request.newestFirst ? "(timestamp, event_key) < (?, ?)" : "(timestamp, event_key) > (?, ?)") }
        let statement = try db.prepare("""
            SELECT timestamp, ingestion_time, log_stream, message, event_key FROM log_events
            WHERE \(conditions.joined(separator: " AND ")) ORDER BY timestamp \(order), event_key \(order) LIMIT ?
            """)
        var index: Int32 = 1
        statement.bind(index, request.logGroup); index += 1
        statement.bind(index, request.start ?? Int64.min); index += 1
        statement.bind(index, request.end ?? Int64.max); index += 1
        for stream in request.logStreams { statement.bind(index, stream); index += 1 }
        if let prefix = request.logStreamPrefix {
            statement.bind(index, prefix); index += 1
            statement.bind(index, prefix); index += 1
        }
        for needle in request.messageContains { statement.bind(index, needle); index += 1 }
        if let cursor {
            statement.bind(index, cursor.timestamp); index += 1
            statement.bind(index, cursor.tiebreak); index += 1
        }
        let pageSize = max(1, request.limit)
        statement.bind(index, Int64(pageSize + 1))
        var events: [StoredLogEvent] = []
        var more = false
        while try statement.step() {
            if events.count == pageSize { more = true; break }
            events.append(StoredLogEvent(timestamp: statement.int(0), ingestionTime: statement.int(1), logStream: statement.text(2) ?? "",
                                         message: statement.text(3) ?? "", eventKey: statement.int(4)))
        }
        let next = more ? events.last.map { PageCursor(timestamp: $0.timestamp, tiebreak: $0.eventKey).token } : nil
        return LogEventsPage(events: events, nextToken: next)
    }

    public func scanStatistics(logGroups: [String], start: Int64?, end: Int64?) throws(StoreError) -> ScanStatistics {
        let groups = logGroups.isEmpty ? "" : " AND log_group IN (" + logGroups.map { _ in "?" }.joined(separator: ",") + ")"
        let statement = try db.prepare("""
            SELECT count(*), coalesce(sum(length(CAST(message AS BLOB))), 0) FROM log_events WHERE timestamp >= ? AND timestamp < ?\(groups)
            """)
        statement.bind(1, start ?? Int64.min)
        statement.bind(2, end ?? Int64.max)
        for (i, group) in logGroups.enumerated() { statement.bind(Int32(i + 3), group) }
        guard try statement.step() else { return ScanStatistics(events: 0, bytes: 0) }
        return ScanStatistics(events: statement.int(0), bytes: statement.int(1))
    }

    public func putDocument(_ document: StoredDocument) throws(StoreError) {
        let statement = try db.prepare("""
            INSERT INTO documents(kind, name, body, updated) VALUES (?1, ?2, ?3, ?4)
            ON CONFLICT(kind, name) DO UPDATE SET body = ?3, updated = ?4
            """)
        statement.bind(1, document.kind)
        statement.bind(2, document.name)
        statement.bind(3, document.body)
        statement.bind(4, document.updated)
        try statement.run()
    }

    public func document(kind: String, name: String) throws(StoreError) -> StoredDocument? {
        try documents(kind: kind, exactly: name, prefix: nil, after: nil, limit: 1).first
    }

    public func documents(kind: String, prefix: String?, after: String?, limit: Int) throws(StoreError) -> [StoredDocument] {
        try documents(kind: kind, exactly: nil, prefix: prefix, after: after, limit: limit)
    }

    private func documents(kind: String, exactly name: String?, prefix: String?, after: String?, limit: Int) throws(StoreError) -> [StoredDocument] {
        let statement = try db.prepare("""
            SELECT name, body, updated FROM documents WHERE kind = ?1 AND (?2 IS NULL OR name = ?2) AND name > ?3
              AND substr(name, 1, length(?4)) = ?4 ORDER BY name LIMIT ?5
            """)
        statement.bind(1, kind)
        statement.bind(2, name)
        statement.bind(3, after ?? "")
        statement.bind(4, prefix ?? "")
        statement.bind(5, Int64(max(1, limit)))
        var out: [StoredDocument] = []
        while try statement.step() {
            out.append(StoredDocument(kind: kind, name: statement.text(0) ?? "", body: statement.text(1) ?? "", updated: statement.int(2)))
        }
        return out
    }

    public func deleteDocument(kind: String, name: String) throws(StoreError) -> Bool {
        let statement = try db.prepare("DELETE FROM documents WHERE kind = ?1 AND name = ?2")
        statement.bind(1, kind)
        statement.bind(2, name)
        try statement.run()
        return db.changes > 0
    }
}
