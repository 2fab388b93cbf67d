import ByteJSON
import Foundation
import TrailwatchCore

/// The SQLite store: one file (WAL) holding log groups and streams, log events, metric
/// datapoints, and alarm, insight and pattern events, plus an index of CloudTrail records by
/// LookupEvents attribute. Writes are idempotent: the same event written twice is kept once.
public final class SQLiteStore: Store {
    public static let schemaVersion = 4
    public let location: StoreLocation

    let db: SQLiteDatabase
    private var insertLog: Statement!
    private var insertStream: Statement!
    private var insertGroup: Statement!
    private var metricTables: SQLiteMetricTables?
    private var insertEvent: Statement!
    private var insertLookup: Statement!
    private let cloudTrailLookup = CloudTrailAttributes()

    /// Names this writer in datapoint keys (empty for a single writer), so that equal datapoints
    /// from two instances both count while a replay from the same one does not.
    public let writer: String
    /// The file's schema version once opened: a read-only open of an older store reads its old
    /// metric table (``SQLiteMetricTables``).
    let fileSchemaVersion: Int

    /// Opens (creating and migrating as needed) the store at `path`, mode 0640. With `readOnly` (the
    /// commands that only read: query, events, dashboard) nothing is created or changed, and a file
    /// that is not a trailwatch store is refused with a message saying so.
    public init(path: String, writer: String = "", readOnly: Bool = false) throws(StoreError) {
        location = .sqlite(path: path)
        self.writer = writer
        if readOnly {
            try SQLiteStore.checkIsStoreFile(path)
            db = try SQLiteDatabase(path: path, readOnly: true)
            try db.execute("PRAGMA cache_size=-32768;")
            let version: Int
            do {
                let read = try db.prepare("SELECT max(version) FROM schema_version")
                version = try read.step() ? Int(read.int(0)) : 0
            } catch {
                throw StoreError("\(path) is not a trailwatch store (an SQLite database without trailwatch's tables)")
            }
            guard version <= SQLiteStore.schemaVersion else {
                throw StoreError("\(path) was written by a newer trailwatch (store schema \(version); this one reads up to \(SQLiteStore.schemaVersion))")
            }
            fileSchemaVersion = version
            return
        }
        let existed = FileManager.default.fileExists(atPath: path)
        db = try SQLiteDatabase(path: path)
        fileSchemaVersion = SQLiteStore.schemaVersion
        if !existed { chmod(path, 0o640) }
        // WAL with FULL sync: every commit (one per batch) is fsynced before its acknowledgements
        // are released; checkpoints run less often so bulk loads are not dominated by them.
        if !existed { try db.execute("PRAGMA page_size=32768;") }
        // Two components of one pipeline (the API source and the store sink) open a new store at the
        // same moment: switching it to WAL and migrating need locks that SQLite refuses at once,
        // without waiting out the busy timeout, while the other connection holds one. Both steps are
        // idempotent, so a refused open is tried again for up to 10 s.
        var attempts = 0
        while true {
            do {
                try db.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-32768; PRAGMA wal_autocheckpoint=8192;")
                try migrate()
                break
            } catch where attempts < 500 && error.isSQLiteLockRefused {
                attempts += 1
                usleep(20_000)
            }
        }
        insertLog = try db.prepare("""
            INSERT OR IGNORE INTO log_events(event_key, log_group, log_stream, timestamp, ingestion_time, message, fields)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
            """)
        insertGroup = try db.prepare("INSERT OR IGNORE INTO log_groups(name, created) VALUES (?1, ?2)")
        insertStream = try db.prepare("""
            INSERT INTO log_streams(log_group, log_stream, first_event, last_event, created, last_ingestion, stored_bytes)
            VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)
            ON CONFLICT(log_group, log_stream) DO UPDATE SET first_event = min(coalesce(first_event, ?3), ?3),
              last_event = max(coalesce(last_event, ?4), ?4), last_ingestion = max(coalesce(last_ingestion, ?5), ?5),
              stored_bytes = stored_bytes + ?6
            """)
        metricTables = try SQLiteMetricTables(db, writer: writer)
        insertEvent = try db.prepare("""
            INSERT OR IGNORE INTO detector_events(event_key, kind, key, timestamp, body) VALUES (?1, ?2, ?3, ?4, ?5)
            """)
        insertLookup = try db.prepare("""
            INSERT OR IGNORE INTO cloudtrail_lookup(event_id, attribute, value, timestamp) VALUES (?1, ?2, ?3, ?4)
            """)
    }

    /// Refuses what cannot be a store before SQLite sees it: a missing, empty or non-SQLite file.
    static func checkIsStoreFile(_ path: String) throws(StoreError) {
        var info = stat()
        guard stat(path, &info) == 0 else { throw StoreError("no store at \(path)") }
        guard info.st_mode & S_IFMT == S_IFREG else { throw StoreError("\(path) is not a trailwatch store (not a regular file)") }
        guard info.st_size > 0 else { throw StoreError("\(path) is not a trailwatch store (the file is empty)") }
        let header = Array("SQLite format 3\0".utf8)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { Glibc.close(fd) }
        var head = [UInt8](repeating: 0, count: header.count)
        let n = head.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard n == header.count, head == header else { throw StoreError("\(path) is not a trailwatch store (not an SQLite database)") }
    }

    /// Brings the schema to ``schemaVersion``. The version is read and the steps applied under one
    /// write lock (BEGIN IMMEDIATE): two openers of one new file — an API source's catalog and a
    /// store sink of the same pipeline, or two processes — must not both apply a step (the second
    /// `ALTER TABLE … ADD COLUMN` fails with "duplicate column name" and takes its sink down).
    private func migrate() throws(StoreError) {
        // Up to date (every open but the first): no write lock, so readers never wait for writers.
        if try schemaVersionInFile() >= SQLiteStore.schemaVersion { return }
        try db.execute("BEGIN IMMEDIATE")
        do {
            try db.execute("CREATE TABLE IF NOT EXISTS schema_version(version INTEGER NOT NULL)")
            let current = try schemaVersionInFile()
            if current < 1 { try db.execute(Self.version1) }
            if current < 2 {
                // Version 2: creation times of groups and streams, documents (the APIs' resources).
                try db.execute("""
                    ALTER TABLE log_groups ADD COLUMN created INTEGER;
                    ALTER TABLE log_streams ADD COLUMN created INTEGER;
                    CREATE TABLE IF NOT EXISTS documents(kind TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL,
                        updated INTEGER NOT NULL, PRIMARY KEY(kind, name));
                    INSERT INTO schema_version(version) VALUES (2);
                    """)
            }
            if current < 3 { try migrateToVersion3() }
            if current < 4 {
                try SQLiteMetricTables.migrate(db)
                // LookupEvents without an attribute: every record's EventId row by time.
                try db.execute(Self.cloudTrailByTime)
            }
            try db.execute("COMMIT")
        } catch {
            rollback()
            throw error
        }
    }

    /// Version 3: streams keep their last ingestion time and stored bytes (the CloudWatch Logs
    /// API's DescribeLogStreams/DescribeLogGroups), and the API's own catalog tables of earlier
    /// versions (`api_log_groups`, `api_log_streams`, `api_metric_filters`) move into the store's
    /// tables and documents, then go. Inside ``migrate()``'s transaction.
    private func migrateToVersion3() throws(StoreError) {
        do {
            let exists = try db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'api_log_groups'")
            let hasCatalog = try exists.step() && exists.int(0) > 0
            exists.reset()
            var sql = """
                ALTER TABLE log_streams ADD COLUMN last_ingestion INTEGER;
                ALTER TABLE log_streams ADD COLUMN stored_bytes INTEGER NOT NULL DEFAULT 0;
                UPDATE log_groups SET created = (SELECT min(first_event) FROM log_streams s WHERE s.log_group = log_groups.name) WHERE created IS NULL;
                UPDATE log_streams SET created = first_event WHERE created IS NULL;

                """
            if hasCatalog {
                sql += """
                    INSERT INTO log_groups(name, created) SELECT name, creation_time FROM api_log_groups WHERE true
                      ON CONFLICT(name) DO UPDATE SET created = min(coalesce(created, excluded.created), excluded.created);
                    INSERT INTO log_streams(log_group, log_stream, created, first_event, last_event, last_ingestion, stored_bytes)
                      SELECT log_group, log_stream, creation_time, first_event, last_event, last_ingestion, stored_bytes FROM api_log_streams WHERE true
                      ON CONFLICT(log_group, log_stream) DO UPDATE SET created = min(coalesce(created, excluded.created), excluded.created),
                        first_event = coalesce(first_event, excluded.first_event), last_event = coalesce(last_event, excluded.last_event),
                        last_ingestion = excluded.last_ingestion, stored_bytes = excluded.stored_bytes;
                    INSERT OR REPLACE INTO documents(kind, name, body, updated)
                      SELECT 'metric-filter', log_group || ':' || name, json_object('creationTime', creation_time, 'filterName', name,
                        'filterPattern', pattern, 'logGroupName', log_group, 'metricTransformations', json(transformations)), creation_time
                      FROM api_metric_filters;
                    DROP TABLE api_log_groups;
                    DROP TABLE api_log_streams;
                    DROP TABLE api_metric_filters;

                    """
            }
            sql += "INSERT INTO schema_version(version) VALUES (3);"
            try db.execute(sql)
        } catch {
            throw StoreError("\(location): cannot migrate the store to schema version 3: \(error)", sqliteResultCode: error.sqliteResultCode)
        }
    }

    static let cloudTrailByTime = "CREATE INDEX IF NOT EXISTS cloudtrail_lookup_by_time ON cloudtrail_lookup(timestamp) WHERE attribute = 'EventId';"

    /// The file's schema version; 0 for a new file.
    private func schemaVersionInFile() throws(StoreError) -> Int {
        let exists = try db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'")
        guard try exists.step() else { return 0 }
        let read = try db.prepare("SELECT max(version) FROM schema_version")
        defer { read.reset() }
        return try read.step() ? Int(read.int(0)) : 0
    }

    private static let version1 = """
            CREATE TABLE IF NOT EXISTS log_groups(name TEXT PRIMARY KEY, retention_days INTEGER);
            CREATE TABLE IF NOT EXISTS log_streams(log_group TEXT NOT NULL, log_stream TEXT NOT NULL,
                first_event INTEGER, last_event INTEGER, PRIMARY KEY(log_group, log_stream));
            CREATE TABLE IF NOT EXISTS log_events(id INTEGER PRIMARY KEY, event_key INTEGER NOT NULL,
                log_group TEXT NOT NULL, log_stream TEXT NOT NULL, timestamp INTEGER NOT NULL, ingestion_time INTEGER NOT NULL,
                message TEXT NOT NULL, fields TEXT);
            -- One index serves idempotency and queries: events arrive mostly in time order, so it grows at its end.
            CREATE UNIQUE INDEX IF NOT EXISTS log_events_by_group_time ON log_events(log_group, timestamp, event_key);
            CREATE TABLE IF NOT EXISTS metric_datapoints(id INTEGER PRIMARY KEY, datapoint_key INTEGER NOT NULL UNIQUE,
                namespace TEXT NOT NULL, metric_name TEXT NOT NULL, dimensions TEXT NOT NULL, timestamp INTEGER NOT NULL,
                period INTEGER NOT NULL, unit TEXT, sample_count REAL, sum REAL, minimum REAL, maximum REAL);
            CREATE INDEX IF NOT EXISTS metric_datapoints_by_metric ON metric_datapoints(namespace, metric_name, timestamp);
            CREATE TABLE IF NOT EXISTS detector_events(id INTEGER PRIMARY KEY, event_key INTEGER NOT NULL UNIQUE,
                kind TEXT NOT NULL, key TEXT NOT NULL, timestamp INTEGER NOT NULL, body TEXT NOT NULL);
            CREATE INDEX IF NOT EXISTS detector_events_by_kind_time ON detector_events(kind, timestamp);
            CREATE TABLE IF NOT EXISTS cloudtrail_lookup(event_id INTEGER NOT NULL REFERENCES log_events(id) ON DELETE CASCADE,
                attribute TEXT NOT NULL, value TEXT NOT NULL, timestamp INTEGER NOT NULL, PRIMARY KEY(event_id, attribute, value));
            CREATE INDEX IF NOT EXISTS cloudtrail_lookup_by_value ON cloudtrail_lookup(attribute, value, timestamp);
            INSERT INTO schema_version(version) VALUES (1);
            """

    public func begin() throws(StoreError) { try db.execute("BEGIN IMMEDIATE") }
    public func commit() throws(StoreError) { try db.execute("COMMIT") }
    public func rollback() {
        try? db.execute("ROLLBACK")
        metricTables?.rolledBack()
    }

    /// One batch, one transaction: durable (fsynced) when this returns.
    @discardableResult
    public func write(_ payload: Payload) throws(StoreError) -> Int {
        try begin()
        do {
            let added: Int
            switch payload {
            case .logs(let logs): added = try write(logs)
            case .metrics(let data): added = try write(data)
            case .events(_, let events): added = try write(events)
            }
            try commit()
            return added
        } catch {
            rollback()
            throw error
        }
    }

    public func close() async {}

    /// A stable key for idempotent writes (see ``StoreKey``), stored as a signed integer.
    static func key(_ parts: [UnsafeRawBufferPointer], _ numbers: [Int64]) -> Int64 {
        StoreConventions.key(parts, numbers)
    }

    /// Writes the log events of a batch (inside the caller's transaction). Returns rows added.
    @discardableResult
    public func write(_ logs: LogBatch) throws(StoreError) -> Int {
        var added = 0
        var seen = OccurrenceCounter(capacity: logs.count)
        // Group and stream bytes once per batch; rows bind them without conversions.
        func copy(_ text: String) -> UnsafeRawBufferPointer {
            let bytes = Array(text.utf8)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, bytes.count), alignment: 1)
            buffer.copyBytes(from: bytes)
            return UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<bytes.count])
        }
        let originNames = logs.origins.map { (group: copy($0.logGroup), stream: copy($0.logStream)) }
        defer {
            for names in originNames {
                UnsafeMutableRawPointer(mutating: names.group.baseAddress)?.deallocate()
                UnsafeMutableRawPointer(mutating: names.stream.baseAddress)?.deallocate()
            }
        }
        // Earliest and latest event, and message bytes added, per origin (for log_streams).
        var spans = [(Int64, Int64)?](repeating: nil, count: logs.origins.count)
        var addedBytes = [Int64](repeating: 0, count: logs.origins.count)
        for i in 0..<logs.count {
            let originIndex = logs.originIndices.isEmpty ? 0 : Int(logs.originIndices[i])
            let names = originNames[originIndex]
            let message = logs.message(i)
            let time = logs.timestamp(i)
            var key = SQLiteStore.key([names.group, names.stream, message], [time])
            // Identical lines in one batch are distinct events: number their occurrences.
            let occurrence = seen.next(key)
            if occurrence > 0 { key = SQLiteStore.key([], [key, Int64(occurrence)]) }
            insertLog.bind(1, key)
            insertLog.bind(2, bytes: names.group)
            insertLog.bind(3, bytes: names.stream)
            insertLog.bind(4, time)
            insertLog.bind(5, logs.ingestionTime)
            insertLog.bind(6, bytes: message)
            if let fields = logs.fields(i), !fields.entries.isEmpty {
                var out = ByteBuffer()
                LogRecordEncoder.appendFields(fields, to: &out)
                insertLog.bind(7, String(decoding: out.bytes, as: UTF8.self))
            } else {
                insertLog.bind(7, nil as String?)
            }
            try insertLog.run()
            if db.changes > 0 {
                added += 1
                addedBytes[originIndex] += Int64(message.count)
                try indexCloudTrail(message, rowID: db.lastInsertRowID, time: time)
            }
            let span = spans[originIndex]
            spans[originIndex] = (min(span?.0 ?? time, time), max(span?.1 ?? time, time))
        }
        for (originIndex, span) in spans.enumerated() {
            guard let span else { continue }
            let origin = logs.origins[originIndex]
            try record(StreamActivity(group: origin.logGroup, stream: origin.logStream, firstEvent: span.0, lastEvent: span.1,
                                      ingestionTime: logs.ingestionTime, bytes: addedBytes[originIndex]))
        }
        return added
    }

    /// Registers the stream (and its group) and adds the activity to its statistics.
    private func record(_ activity: StreamActivity) throws(StoreError) {
        insertGroup.bind(1, activity.group)
        insertGroup.bind(2, activity.ingestionTime)
        try insertGroup.run()
        insertStream.bind(1, activity.group)
        insertStream.bind(2, activity.stream)
        insertStream.bind(3, activity.firstEvent)
        insertStream.bind(4, activity.lastEvent)
        insertStream.bind(5, activity.ingestionTime)
        insertStream.bind(6, activity.bytes)
        try insertStream.run()
    }

    public func recordStreamActivity(_ activity: [StreamActivity]) throws(StoreError) {
        try begin()
        do {
            for item in activity { try record(item) }
            try commit()
        } catch {
            rollback()
            throw error
        }
    }

    /// CloudTrail records (JSON with eventID, eventName, eventSource) get their lookup attributes indexed.
    private func indexCloudTrail(_ message: UnsafeRawBufferPointer, rowID key: Int64, time: Int64) throws(StoreError) {
        guard let attributes = cloudTrailLookup.attributes(of: message) else { return }
        for (attribute, value) in attributes {
            insertLookup.bind(1, key)
            insertLookup.bind(2, attribute)
            insertLookup.bind(3, value)
            insertLookup.bind(4, time)
            try insertLookup.run()
        }
    }

    /// Writes metric datapoints (inside the caller's transaction). Returns rows added.
    @discardableResult
    public func write(_ data: [MetricDatum]) throws(StoreError) -> Int {
        guard let metricTables else { throw StoreError("\(location): the store is open read-only") }
        return try metricTables.write(data)
    }

    @discardableResult
    public func write(_ events: [StructuredEvent]) throws(StoreError) -> Int {
        var added = 0
        for e in events {
            let key = StoreConventions.eventKey(e)
            insertEvent.bind(1, key)
            insertEvent.bind(2, e.kind.rawValue)
            insertEvent.bind(3, e.key)
            insertEvent.bind(4, e.timestamp)
            insertEvent.bind(5, String(decoding: e.body, as: UTF8.self))
            try insertEvent.run()
            added += db.changes
        }
        return added
    }

    /// Records a log group's retention (days; nil keeps events forever).
    public func setRetention(logGroup: String, days: Int?) throws(StoreError) {
        let statement = try db.prepare("INSERT INTO log_groups(name, retention_days) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET retention_days = ?2")
        statement.bind(1, logGroup)
        if let days { statement.bind(2, Int64(days)) } else { statement.bind(2, nil as String?) }
        try statement.run()
    }

    /// Deletes log events older than their group's retention. Returns rows removed.
    @discardableResult
    public func enforceRetention(now: Int64) throws(StoreError) -> Int {
        try db.execute("""
            DELETE FROM log_events WHERE id IN (SELECT e.id FROM log_events e JOIN log_groups g ON e.log_group = g.name
                WHERE g.retention_days IS NOT NULL AND e.timestamp < \(now) - g.retention_days * 86400000);
            """)
        return db.changes
    }

    /// CloudTrail event history like LookupEvents: records matching one attribute, newest first, in pages.
    public func lookupEvents(_ request: LookupEventsRequest) throws(StoreError) -> LookupEventsPage {
        let cursor = try request.nextToken.map { token throws(StoreError) in try PageCursor(token: token) }
        // With an attribute, (attribute, value, timestamp) walks newest first; without one, every
        // record has exactly one EventId row, and the partial index of those by time walks them
        // (named, as the planner prefers the other without statistics; stores older than version 4,
        // read-only, lack it). Rows are sorted and cut by the lookup index alone, and only the page's
        // events are read.
        let byTime = fileSchemaVersion >= 4 ? "INDEXED BY cloudtrail_lookup_by_time" : ""
        let statement = try db.prepare(request.attribute.isEmpty ? """
            SELECT e.message, l.timestamp, l.event_id FROM cloudtrail_lookup l \(byTime) JOIN log_events e ON e.id = l.event_id
            WHERE l.attribute = 'EventId' AND l.timestamp >= ?3 AND l.timestamp < ?4
              AND (l.timestamp < ?6 OR (l.timestamp = ?6 AND l.event_id < ?7))
            ORDER BY l.timestamp DESC, l.event_id DESC LIMIT ?5
            """ : """
            SELECT e.message, l.timestamp, l.event_id FROM cloudtrail_lookup l JOIN log_events e ON e.id = l.event_id
            WHERE l.attribute = ?1 AND l.value = ?2 AND l.timestamp >= ?3 AND l.timestamp < ?4
              AND (l.timestamp < ?6 OR (l.timestamp = ?6 AND l.event_id < ?7))
            ORDER BY l.timestamp DESC, l.event_id DESC LIMIT ?5
            """)
        let pageSize = max(1, request.maxResults)
        if !request.attribute.isEmpty {
            statement.bind(1, request.attribute)
            statement.bind(2, request.value)
        }
        statement.bind(3, request.start ?? Int64.min)
        statement.bind(4, request.end ?? Int64.max)
        statement.bind(5, Int64(pageSize + 1))
        statement.bind(6, cursor?.timestamp ?? Int64.max)
        statement.bind(7, cursor?.tiebreak ?? Int64.max)
        var out: [String] = []
        var last = PageCursor(timestamp: 0, tiebreak: 0)
        var more = false
        while try statement.step() {
            if out.count == pageSize { more = true; break }
            out.append(statement.text(0) ?? "")
            last = PageCursor(timestamp: statement.int(1), tiebreak: statement.int(2))
        }
        return LookupEventsPage(records: out, nextToken: more ? last.token : nil)
    }

    /// Row counts per table (for summaries and tests).
    public func count(_ table: StoreTable) throws(StoreError) -> Int {
        let statement = try db.prepare("SELECT count(*) FROM \(table.rawValue)")
        return try statement.step() ? Int(statement.int(0)) : 0
    }
}

/// Counts how often each key was seen within one batch: an open-addressing table sized to the
/// batch, cheaper than a dictionary for this hot path.
public struct OccurrenceCounter {
    /// Open addressing, linear probing; a slot holds a key and how often it was seen (0: empty),
    /// side by side so a lookup touches one cache line.
    private var slots: [(key: Int64, count: Int64)]
    private let mask: Int

    public init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = Array(repeating: (0, 0), count: size)
        mask = size - 1
    }

    /// How many times `key` was seen before this call.
    public mutating func next(_ key: Int64) -> Int {
        var slot = Int(truncatingIfNeeded: UInt64(bitPattern: key) >> 17) & mask
        return slots.withUnsafeMutableBufferPointer { slots in
            while slots[slot].count > 0 {
                if slots[slot].key == key {
                    slots[slot].count += 1
                    return Int(slots[slot].count - 1)
                }
                slot = (slot + 1) & mask
            }
            slots[slot] = (key, 1)
            return 0
        }
    }
}
