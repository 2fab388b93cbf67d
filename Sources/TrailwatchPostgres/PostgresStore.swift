import Foundation
import Logging
import LogsQuery
import NIOCore
import PostgresNIO
import TrailwatchCore
import TrailwatchStore

/// The PostgreSQL store: the same tables as the SQLite store, with log events and their
/// CloudTrail lookup rows partitioned by day (declarative range partitions on `timestamp`,
/// created ahead and on demand; retention drops whole partitions), and a `log_group` column on
/// every big table so the schema can be sharded by it.
///
/// Log batches go in with one COPY per transaction straight into `log_events`: almost every
/// batch is new, and COPY's multi-row inserts cost the server a third of an `INSERT … SELECT`.
/// The unique key (timestamp, event_key, log_group) keeps every write idempotent: batches
/// holding an event already stored (a replay, or two instances writing the same events at once)
/// fail that COPY with a unique violation, are rolled back and go, in a new transaction, through
/// a per-connection staging table and `INSERT … SELECT … ON CONFLICT DO NOTHING` instead, which
/// stores and counts only the new rows. A write returns after COMMIT.
public final class PostgresStore: Store {
    public static let schemaVersion = 3
    public let location: StoreLocation
    let settings: PostgresSettings
    let connection: PostgresConnection
    /// The connection's channel, for COPY writes to wait on (see ``ChannelWritability``).
    let writability: ChannelWritability
    let logger: Logger
    /// Names this writer in datapoint keys (see ``SQLiteStore/writer``).
    let writer: String
    /// Day partitions known to exist (start of the day, ms).
    private var partitions = Set<Int64>()
    private var stagingReady = false
    private let cloudTrail = CloudTrailAttributes()
    /// How log batches are merged into `log_events` (measured in `make bench`; see the README).
    var ingest: IngestMethod

    enum IngestMethod: String {
        /// One COPY per transaction into `log_events`; on a unique violation, rolled back and `onConflict` (the default).
        case copyFirst = "copy-first"
        /// COPY into staging, then INSERT … SELECT … ON CONFLICT DO NOTHING (what replays take).
        case onConflict = "on-conflict"
        /// COPY into staging, then MERGE … WHEN NOT MATCHED THEN INSERT (measured: slower than ON CONFLICT).
        case merge
    }
    /// Whether the next batch tries COPY straight into `log_events`: cleared by a batch that met
    /// stored events (a replay usually goes on for a few batches, and each failed COPY is work
    /// thrown away), set again by a batch whose rows were all new.
    private(set) var expectNewRows = true
    /// Log batches that went through staging (for tests and the benchmark's note).
    private(set) var batchesThroughStaging = 0

    static let dayMillis: Int64 = 86_400_000
    /// Partitions made ahead of the newest day written or of today.
    static let daysAhead: Int64 = 2

    /// Registers the backend with ``StoreOpener`` (`postgres://` and `postgresql://` locations).
    public static func register() {
        StoreOpener.register("postgres") { location, access, writer throws(StoreError) in
            guard case .postgres(let url) = location else { throw StoreError("\(location) is not a PostgreSQL URL") }
            return try await PostgresStore.connect(url: url, access: access, writer: writer)
        }
        registerLeases()
    }

    private static let connectionIDs = LockedCounter()

    /// Connects, and for writers creates or migrates the schema.
    public static func connect(url: String, access: StoreAccess, writer: String = "") async throws(StoreError) -> PostgresStore {
        try await connect(url: url, access: access, writer: writer, sendBufferBytes: nil)
    }

    /// `sendBufferBytes`: see ``PostgresSettings/connect(id:logger:sendBufferBytes:)`` (tests only).
    static func connect(url: String, access: StoreAccess, writer: String = "", sendBufferBytes: Int?) async throws(StoreError) -> PostgresStore {
        let settings = try PostgresSettings(url: url)
        var logger = Logger(label: "trailwatch.postgres")
        logger.logLevel = .critical
        let connection: PostgresConnection
        let writability: ChannelWritability
        do {
            (connection, writability) = try await settings.connect(id: connectionIDs.next(), logger: logger, sendBufferBytes: sendBufferBytes)
        } catch {
            throw StoreError.postgres(error, store: settings.redacted, doing: "cannot connect")
        }
        let store = PostgresStore(url: url, settings: settings, connection: connection, writability: writability, logger: logger, writer: writer)
        do {
            if access == .readWrite {
                try await store.migrate()
                try await store.ensurePartitions(covering: [Self.today()])
            } else {
                try await store.requireSchema()
            }
        } catch {
            await store.close()
            throw error
        }
        return store
    }

    init(url: String, settings: PostgresSettings, connection: PostgresConnection, writability: ChannelWritability, logger: Logger, writer: String) {
        self.settings = settings
        self.writability = writability
        // The location keeps the password (to connect again); its description never shows it.
        self.location = .postgres(url: url)
        self.connection = connection
        self.logger = logger
        self.writer = writer
        self.ingest = IngestMethod(rawValue: ProcessInfo.processInfo.environment["TRAILWATCH_PG_INGEST"] ?? "") ?? .copyFirst
    }

    public func close() async {
        try? await connection.close()
    }

    static func today() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) / dayMillis * dayMillis }

    // MARK: Running statements

    /// Runs SQL (with `$n` binds) and returns its rows.
    @discardableResult
    func run(_ sql: String, _ binds: PostgresBindings = PostgresBindings(), doing action: String = "query failed") async throws(StoreError) -> [PostgresRow] {
        // A connection the server closed while it was idle does not fail new queries: check first.
        guard !connection.isClosed else { throw StoreError("\(settings.redacted): \(action): the server closed the connection", transient: true) }
        do {
            return try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger).collect()
        } catch {
            throw StoreError.postgres(error, store: settings.redacted, doing: action)
        }
    }

    /// Runs SQL and hands its rows to `row` as they arrive (memory stays bounded: the driver reads
    /// from the server as rows are taken), until the end or until `row` returns false.
    func stream(_ sql: String, _ binds: PostgresBindings, _ row: (PostgresRow) throws(QueryRunError) -> Bool) async throws {
        guard !connection.isClosed else { throw StoreError("\(settings.redacted): query failed: the server closed the connection", transient: true) }
        let rows: PostgresRowSequence
        do {
            rows = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
        } catch {
            throw StoreError.postgres(error, store: settings.redacted, doing: "query failed")
        }
        do {
            for try await next in rows {
                guard try row(next) else { break }
            }
        } catch let error as QueryRunError {
            throw error
        } catch {
            throw StoreError.postgres(error, store: settings.redacted, doing: "query failed")
        }
    }

    /// Runs `body` in a transaction; rolls back when it throws.
    func transaction<T>(_ body: () async throws(StoreError) -> T) async throws(StoreError) -> T {
        try await run("BEGIN")
        do {
            let value = try await body()
            try await run("COMMIT", doing: "commit failed")
            return value
        } catch {
            _ = try? await run("ROLLBACK")
            throw error
        }
    }

    /// A transaction that `body` can give up: nil rolls it back.
    func transactionUnlessNil<T>(_ body: () async throws(StoreError) -> T?) async throws(StoreError) -> T? {
        try await run("BEGIN")
        do {
            guard let value = try await body() else {
                try await run("ROLLBACK", doing: "cannot roll back a batch of replayed events")
                return nil
            }
            try await run("COMMIT", doing: "commit failed")
            return value
        } catch {
            _ = try? await run("ROLLBACK")
            throw error
        }
    }

    // MARK: Schema

    /// A lock key for schema changes, so instances starting together migrate once.
    static let schemaLock: Int64 = 0x7472_6169_6C77_0001

    private func migrate() async throws(StoreError) {
        try await transaction { () throws(StoreError) in
            try await run("SELECT pg_advisory_xact_lock(\(Self.schemaLock))")
            try await run("CREATE TABLE IF NOT EXISTS schema_version(version integer NOT NULL)")
            let current = try await run("SELECT coalesce(max(version), 0)::bigint FROM schema_version").first.map { row throws(StoreError) in
                try decode(row, Int64.self)
            } ?? 0
            guard current < Self.schemaVersion else { return }
            for (version, statements) in Self.migrations where version > current {
                for statement in statements {
                    try await run(statement, doing: "cannot migrate the schema to version \(version)")
                }
            }
            try await run("INSERT INTO schema_version(version) VALUES (\(Self.schemaVersion))")
        }
    }

    private func requireSchema() async throws(StoreError) {
        let rows = try await run("SELECT to_regclass('log_events') IS NOT NULL")
        guard let row = rows.first, try decode(row, Bool.self) else {
            throw StoreError("\(settings.redacted): no trailwatch store in this database (a store sink creates it)")
        }
    }

    /// Each version's statements, run in order from the store's version up (one transaction).
    static let migrations: [(version: Int, statements: [String])] = [
        (1, schema),
        // Version 2: streams keep their last ingestion time and stored bytes (the CloudWatch Logs API).
        (2, ["ALTER TABLE log_streams ADD COLUMN IF NOT EXISTS last_ingestion bigint",
             "ALTER TABLE log_streams ADD COLUMN IF NOT EXISTS stored_bytes bigint NOT NULL DEFAULT 0"]),
        // Version 3: LookupEvents without an attribute reads every record's EventId row newest
        // first; the value index would have to be read whole and sorted.
        (3, [cloudTrailByTime]),
    ]

    /// Every record's EventId row by time (a partial index: one row per record).
    static let cloudTrailByTime = "CREATE INDEX IF NOT EXISTS cloudtrail_lookup_by_time ON cloudtrail_lookup(timestamp, event_key) WHERE attribute = 'EventId'"

    /// Version 1. Big tables carry `log_group` (for sharding by it, e.g. with Citus); events and
    /// lookup rows are range-partitioned by day on `timestamp`.
    static let schema = [
        "CREATE TABLE IF NOT EXISTS log_groups(name text PRIMARY KEY, retention_days integer, created bigint)",
        """
        CREATE TABLE IF NOT EXISTS log_streams(log_group text NOT NULL, log_stream text NOT NULL, first_event bigint,
            last_event bigint, created bigint, PRIMARY KEY(log_group, log_stream))
        """,
        """
        CREATE TABLE IF NOT EXISTS log_events(timestamp bigint NOT NULL, event_key bigint NOT NULL, log_group text NOT NULL,
            log_stream text NOT NULL, ingestion_time bigint NOT NULL, message text NOT NULL, fields text) PARTITION BY RANGE (timestamp)
        """,
        // One index: idempotency, newest-first reads (backwards) and time ranges.
        "CREATE UNIQUE INDEX IF NOT EXISTS log_events_key ON log_events(timestamp, event_key, log_group)",
        """
        CREATE TABLE IF NOT EXISTS cloudtrail_lookup(attribute text NOT NULL, value text NOT NULL, timestamp bigint NOT NULL,
            event_key bigint NOT NULL, log_group text NOT NULL) PARTITION BY RANGE (timestamp)
        """,
        "CREATE UNIQUE INDEX IF NOT EXISTS cloudtrail_lookup_by_value ON cloudtrail_lookup(attribute, value, timestamp, event_key, log_group)",
        """
        CREATE TABLE IF NOT EXISTS metric_datapoints(datapoint_key bigint PRIMARY KEY, namespace text NOT NULL,
            metric_name text NOT NULL, dimensions text NOT NULL, timestamp bigint NOT NULL, period integer NOT NULL, unit text,
            sample_count double precision, sum double precision, minimum double precision, maximum double precision,
            log_group text NOT NULL DEFAULT '', written bigserial)
        """,
        "CREATE INDEX IF NOT EXISTS metric_datapoints_by_metric ON metric_datapoints(namespace, metric_name, timestamp)",
        "CREATE INDEX IF NOT EXISTS metric_datapoints_by_time ON metric_datapoints(timestamp)",
        """
        CREATE TABLE IF NOT EXISTS detector_events(event_key bigint PRIMARY KEY, kind text NOT NULL, key text NOT NULL,
            timestamp bigint NOT NULL, body text NOT NULL, log_group text NOT NULL DEFAULT '', written bigserial)
        """,
        "CREATE INDEX IF NOT EXISTS detector_events_by_kind_time ON detector_events(kind, timestamp)",
        "CREATE INDEX IF NOT EXISTS detector_events_by_time ON detector_events(timestamp)",
        """
        CREATE TABLE IF NOT EXISTS documents(kind text NOT NULL, name text NOT NULL, body text NOT NULL, updated bigint NOT NULL,
            PRIMARY KEY(kind, name))
        """,
    ]

    static func partitionName(_ table: String, day: Int64) -> String {
        let date = Date(timeIntervalSince1970: Double(day) / 1000)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day], from: date)
        let year = c.year! < 0 ? "m\(-c.year!)" : String(format: "%04d", c.year!)
        return "\(table)_p\(year)\(String(format: "%02d%02d", c.month!, c.day!))"
    }

    /// Makes sure the day partitions holding `days` (day starts, ms) exist, and those
    /// ``daysAhead`` after the newest. Instances creating the same partition at once take turns.
    func ensurePartitions(covering days: Set<Int64>) async throws(StoreError) {
        guard let newest = days.max() else { return }
        var wanted = days
        for ahead in 1...Self.daysAhead { wanted.insert(newest + ahead * Self.dayMillis) }
        let missing = wanted.subtracting(partitions).sorted()
        guard !missing.isEmpty else { return }
        try await transaction { () throws(StoreError) in
            try await run("SELECT pg_advisory_xact_lock(\(Self.schemaLock))")
            for day in missing {
                for table in ["log_events", "cloudtrail_lookup"] {
                    try await run("""
                        CREATE TABLE IF NOT EXISTS \(Self.partitionName(table, day: day)) PARTITION OF \(table)
                        FOR VALUES FROM (\(day)) TO (\(day + Self.dayMillis))
                        """, doing: "cannot create a partition")
                }
            }
        }
        partitions.formUnion(missing)
    }

    // MARK: Writing

    @discardableResult
    public func write(_ payload: Payload) async throws(StoreError) -> Int {
        try await withWriteDeadline { () throws(StoreError) -> Int in
            switch payload {
            case .logs(let logs): return try await write([logs])
            case .metrics(let data): return try await write(data)
            case .events(_, let events): return try await write(events)
            }
        }
    }

    /// Several log batches in one transaction (the store sink's coalesced batches): one COMMIT
    /// and one flush of the server's log for all of them.
    @discardableResult
    public func write(logs batches: [LogBatch]) async throws(StoreError) -> Int {
        try await withWriteDeadline { () throws(StoreError) -> Int in try await write(batches) }
    }

    /// A server that goes away in the middle of a COPY can leave the driver waiting for an
    /// answer that never comes: past the deadline the connection is closed, which fails the
    /// write (transient: the sink reconnects and writes the batch again).
    private func withWriteDeadline(_ body: () async throws(StoreError) -> Int) async throws(StoreError) -> Int {
        let deadline = Self.close(connection, after: Self.writeDeadline)
        defer { deadline.cancel() }
        do {
            return try await body()
        } catch {
            throw StoreError(error.message, transient: error.isTransient || connection.isClosed)
        }
    }

    private static func close(_ connection: PostgresConnection, after nanoseconds: UInt64) -> Task<Void, Never> {
        Task.detached {
            guard (try? await Task.sleep(nanoseconds: nanoseconds)) != nil else { return }
            try? await connection.close()
        }
    }

    /// How long one batch's transaction may take before the connection is given up (ns).
    static let writeDeadline: UInt64 = 30_000_000_000

    private func prepareStaging() async throws(StoreError) {
        guard !stagingReady else { return }
        try await run("""
            CREATE TEMP TABLE IF NOT EXISTS staging_log_events(timestamp bigint, event_key bigint, log_group text, log_stream text,
                ingestion_time bigint, message text, fields text) ON COMMIT DELETE ROWS
            """)
        try await run("""
            CREATE TEMP TABLE IF NOT EXISTS staging_lookup(attribute text, value text, timestamp bigint, event_key bigint,
                log_group text) ON COMMIT DELETE ROWS
            """)
        stagingReady = true
    }

    /// One COPY of the rows in `parts` (each without header and trailer). Returns false when a
    /// row's unique key is already stored (SQLSTATE 23505: the transaction must roll back).
    @discardableResult
    private func copy(_ parts: [CopyRows], into table: String, columns: [String]) async throws(StoreError) -> Bool {
        try await copy(into: table, columns: columns) { writer in
            try await writer.write(Self.streamHeader)
            for part in parts { try await writer.write(part.buffer) }
            try await writer.write(Self.streamTrailer)
        }
    }

    /// The batches' log events in one COPY, sent in pieces of about ``copyPieceBytes``, so the
    /// server parses and inserts one piece while the next is being made; each piece is made on
    /// another task while the one before is written, and each batch's rows are awaited only when
    /// the COPY reaches them.
    private func copy(_ prepared: [Task<LogRows, Never>], into table: String) async throws(StoreError) -> Bool {
        try await copy(into: table, columns: Self.eventColumns) { writer in
            try await writer.write(Self.streamHeader)
            for task in prepared {
                let rows = await task.value
                guard rows.count > 0 else { continue }
                var (piece, next) = Self.piece(of: rows, from: 0)
                while next < rows.count {
                    // Off the connection's event loop, which the COPY itself runs on.
                    async let following = withTaskExecutorPreference(globalConcurrentExecutor) { Self.piece(of: rows, from: next) }
                    try await writer.write(piece.buffer)
                    (piece, next) = await following
                }
                try await writer.write(piece.buffer)
            }
            try await writer.write(Self.streamTrailer)
        }
    }

    /// The rows from `start` on, up to about ``copyPieceBytes``, and where the next piece starts.
    private static func piece(of rows: LogRows, from start: Int) -> (CopyRows, Int) {
        var piece = CopyRows(capacity: copyPieceBytes + copyPieceBytes / 4)
        let next = rows.encode(from: start, into: &piece, maxBytes: copyPieceBytes)
        return (piece, next)
    }

    /// A binary COPY stream's header and trailer.
    private static let streamHeader: NIOCore.ByteBuffer = {
        var header = CopyRows(capacity: CopyRows.header.count)
        header.start()
        return header.buffer
    }()
    private static let streamTrailer: NIOCore.ByteBuffer = {
        var trailer = CopyRows(capacity: 2)
        trailer.end()
        return trailer.buffer
    }()

    static let copyPieceBytes = 128 << 10

    /// The head of a `COPY … FROM STDIN` in the binary format, passed to postgres-nio as the
    /// table name. postgres-nio 1.33 offers only the text format, but writes the table name into
    /// the statement as passed: `COPY "<table>" FROM STDIN WITH (FORMAT text)`. So the name
    /// closes its quote, names the columns and the binary format, and ends in a comment that
    /// takes the library's own format clause. (Our own constants only; a library that quoted
    /// the name would fail every COPY with a syntax error, which the store's tests would show.)
    static func binaryCopy(into table: String, columns: [String]) -> String {
        "\(table)\" (\(columns.map { "\"\($0)\"" }.joined(separator: ", "))) FROM STDIN WITH (FORMAT binary) --"
    }

    /// postgres-nio 1.33's COPY writer, refusing to write once the channel has closed: between
    /// the channel's close (the server dropped the connection) and the removal of its handlers,
    /// a write would reach the driver's state machine after it left copy mode, which traps.
    struct GuardedCopyWriter {
        let writer: PostgresCopyFromWriter
        let connection: PostgresConnection
        let writability: ChannelWritability

        struct ConnectionClosed: Error, CustomStringConvertible {
            var description: String { "the server closed the connection during COPY" }
        }

        /// Runs on the connection's event loop (the COPY's task executor), so the check and the
        /// driver's own write run in one event-loop job.
        func write(_ buffer: NIOCore.ByteBuffer) async throws {
            assert(connection.eventLoop.inEventLoop, "a COPY write off the connection's event loop")
            await writability.waitUntilWritable()
            guard !connection.isClosed else { throw ConnectionClosed() }
            try await writer.write(buffer)
        }
    }

    private func copy(into table: String, columns: [String], _ writeData: (GuardedCopyWriter) async throws -> Void) async throws(StoreError) -> Bool {
        let connection = self.connection
        let writability = self.writability
        let logger = self.logger
        do {
            // The whole COPY runs on the connection's event loop. Its start is then checked and
            // queued in one event-loop job: postgres-nio 1.33 drops (never resumes) a COPY queued
            // on a channel that has just closed, which left the sink waiting for good.
            try await withTaskExecutorPreference(EventLoopTaskExecutor(connection.eventLoop)) {
                guard !connection.isClosed else { throw GuardedCopyWriter.ConnectionClosed() }
                try await connection.copyFrom(table: Self.binaryCopy(into: table, columns: columns), logger: logger) { writer in
                    do {
                        try await writeData(GuardedCopyWriter(writer: writer, connection: connection, writability: writability))
                    } catch {
                        // postgres-nio 1.33 answers a failed COPY with CopyFail, and traps (a
                        // precondition) when the server has dropped the connection (a restart,
                        // `pg_ctl stop`) but the channel is not closed yet. Waiting for it to close
                        // first makes CopyFail a plain "connection closed" error.
                        await Self.waitForClose(connection, after: error)
                        throw error
                    }
                }
            }
            return true
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            return false
        } catch {
            throw StoreError.postgres(error, store: settings.redacted, doing: "COPY failed")
        }
    }

    /// After a COPY write failed for a reason that ends the connection (a driver error without a
    /// server error, or a server error of class 08 connection exception or 57 operator
    /// intervention), waits up to 5 s for the channel to close. A plain server error (a unique
    /// violation) leaves the connection open and returns at once.
    static func waitForClose(_ connection: PostgresConnection, after error: any Error) async {
        if let error = error as? PSQLError {
            let state = error.serverInfo?[.sqlState]
            guard state == nil || state!.hasPrefix("08") || state!.hasPrefix("57") else { return }
        } else {
            guard error is GuardedCopyWriter.ConnectionClosed else { return }
        }
        for _ in 0..<500 where !connection.isClosed {
            try? await Task.sleep(nanoseconds: 10_000_000)
        }
        // The channel's handlers are removed just after it closes.
        try? await Task.sleep(nanoseconds: 20_000_000)
    }

    static let lookupColumns = ["attribute", "value", "timestamp", "event_key", "log_group"]

    static let eventColumns = ["timestamp", "event_key", "log_group", "log_stream", "ingestion_time", "message", "fields"]

    private func write(_ batches: [LogBatch]) async throws(StoreError) -> Int {
        let batches = batches.filter { !$0.isEmpty }
        guard !batches.isEmpty else { return 0 }
        // Keys as in the SQLite store, the rows' order, CloudTrail records' lookup rows: worked
        // out for every batch at once on the other threads, so that each batch after the first
        // is ready while the one before is copied (the server waits on the client less).
        let cloudTrail = self.cloudTrail
        let prepared = batches.map { batch in Task { LogRows(batch, cloudTrail: cloudTrail) } }
        try await ensurePartitions(covering: batches.reduce(into: Set<Int64>()) { $0.formUnion(LogRows.days(of: $1, dayMillis: Self.dayMillis)) })
        if ingest == .copyFirst && expectNewRows, let added = try await copyAllNew(prepared) {
            return added
        }
        try await prepareStaging()
        return try await transaction { () throws(StoreError) -> Int in
            var added = 0
            var activity: [StreamActivity] = []
            var stagingUsed = false
            for rows in prepared {
                added += try await insertThroughStaging(await rows.value, activity: &activity, stagingUsed: &stagingUsed)
            }
            try await record(activity)
            return added
        }
    }

    /// The batches straight into `log_events` when they are all new: one transaction of one COPY
    /// for all their rows (and one for their lookup rows), the streams' activity and COMMIT — a
    /// few round trips and one COPY per transaction, not per batch. Nil, with the transaction
    /// rolled back, when a row is already stored (a replay): the caller merges through staging.
    private func copyAllNew(_ prepared: [Task<LogRows, Never>]) async throws(StoreError) -> Int? {
        try await transactionUnlessNil { () throws(StoreError) -> Int? in
            guard try await copy(prepared, into: "log_events") else {
                expectNewRows = false
                return nil
            }
            var all: [LogRows] = []
            for task in prepared { all.append(await task.value) }
            // An event that is new has new lookup rows: their key holds the event's.
            let lookups = all.map(\.lookups).filter { !$0.isEmpty }
            if !lookups.isEmpty, !(try await copy(lookups, into: "cloudtrail_lookup", columns: Self.lookupColumns)) {
                expectNewRows = false
                return nil
            }
            try await record(all.flatMap { $0.activity(addedBytes: nil) })
            return all.reduce(0) { $0 + $1.count }
        }
    }

    /// One batch's rows through staging (inside the caller's transaction): the rows not stored
    /// yet are added. Adds the batch's stream activity; returns the rows added.
    private func insertThroughStaging(_ rows: LogRows, activity: inout [StreamActivity], stagingUsed: inout Bool) async throws(StoreError) -> Int {
        let logs = rows.logs
        batchesThroughStaging += 1
        // Staging empties at COMMIT; a second batch of the same transaction empties it first.
        if stagingUsed { try await run("TRUNCATE staging_log_events, staging_lookup") }
        stagingUsed = true
        _ = try await copy([Task { rows }], into: "staging_log_events")
        let columns = Self.eventColumns.joined(separator: ", ")
        let added: Int
        // Rows and message bytes added per stream (replayed events add neither).
        var addedBytes: [String: Int64]? = [:]
        switch ingest {
        case .copyFirst, .onConflict:
            let rows = try await run("""
                WITH added AS (INSERT INTO log_events(\(columns)) SELECT \(columns) FROM staging_log_events ON CONFLICT DO NOTHING
                  RETURNING log_group, log_stream, octet_length(message) AS bytes)
                SELECT log_group, log_stream, count(*), sum(bytes)::bigint FROM added GROUP BY 1, 2
                """, doing: "cannot write log events")
            var total = 0
            for row in rows {
                let (group, stream, count, bytes) = try decode(row, (String, String, Int64, Int64).self)
                addedBytes?[LogRows.streamKey(group, stream)] = bytes
                total += Int(count)
            }
            added = total
            expectNewRows = added == logs.count
        case .merge:
            // MERGE has no RETURNING before PostgreSQL 17: the batch counts whole.
            try await run("""
                MERGE INTO log_events e USING staging_log_events s
                ON e.timestamp = s.timestamp AND e.event_key = s.event_key AND e.log_group = s.log_group
                WHEN NOT MATCHED THEN INSERT (\(columns)) VALUES (\(Self.eventColumns.map { "s." + $0 }.joined(separator: ", ")))
                """, doing: "cannot write log events")
            addedBytes = nil
            added = logs.count
        }
        if !rows.lookups.isEmpty {
            try await copy([rows.lookups], into: "staging_lookup", columns: Self.lookupColumns)
            try await run("""
                INSERT INTO cloudtrail_lookup(attribute, value, timestamp, event_key, log_group)
                SELECT attribute, value, timestamp, event_key, log_group FROM staging_lookup ON CONFLICT DO NOTHING
                """, doing: "cannot index CloudTrail records")
        }
        activity += rows.activity(addedBytes: addedBytes)
        return added
    }

    public func recordStreamActivity(_ activity: [StreamActivity]) async throws(StoreError) {
        guard !activity.isEmpty else { return }
        try await transaction { () throws(StoreError) in try await record(activity) }
    }

    /// Registers streams and their groups and adds the activity to the streams' statistics, in
    /// a fixed order so that concurrent writers never deadlock (inside the caller's transaction).
    private func record(_ activity: [StreamActivity]) async throws(StoreError) {
        let merged = StreamActivity.merged(activity)
        let items = merged.values.sorted { ($0.group, $0.stream) < ($1.group, $1.stream) }
        var binds = PostgresBindings()
        binds.append(items.map(\.group))
        binds.append(items.map(\.stream))
        binds.append(items.map(\.firstEvent))
        binds.append(items.map(\.lastEvent))
        binds.append(items.map(\.ingestionTime))
        binds.append(items.map(\.bytes))
        try await run("""
            INSERT INTO log_groups(name, created) SELECT g, min(i) FROM unnest($1::text[], $5::bigint[]) AS u(g, i) GROUP BY g ORDER BY g
            ON CONFLICT DO NOTHING
            """, binds)
        try await run("""
            INSERT INTO log_streams(log_group, log_stream, first_event, last_event, created, last_ingestion, stored_bytes)
            SELECT g, s, f, l, i, i, b FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[]) AS u(g, s, f, l, i, b)
            ORDER BY g, s
            ON CONFLICT (log_group, log_stream) DO UPDATE SET first_event = least(log_streams.first_event, excluded.first_event),
                last_event = greatest(log_streams.last_event, excluded.last_event),
                last_ingestion = greatest(log_streams.last_ingestion, excluded.last_ingestion),
                stored_bytes = log_streams.stored_bytes + excluded.stored_bytes
            """, binds, doing: "cannot record log streams")
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    private func write(_ data: [MetricDatum]) async throws(StoreError) -> Int {
        guard !data.isEmpty else { return 0 }
        var keys: [Int64] = [], namespaces: [String] = [], names: [String] = [], dimensions: [String] = [], times: [Int64] = []
        var periods: [Int64] = [], units: [String] = [], counts: [Double] = [], sums: [Double] = [], minimums: [Double] = [], maximums: [Double] = []
        for d in data {
            let text = StoreConventions.dimensionsText(d.metric.dimensions)
            keys.append(StoreConventions.datapointKey(d, dimensions: text, writer: writer))
            namespaces.append(d.metric.namespace)
            names.append(d.metric.name)
            dimensions.append(text)
            times.append(d.timestamp)
            periods.append(Int64(d.period))
            units.append(d.unit ?? "")
            counts.append(d.sampleCount)
            sums.append(d.sum)
            minimums.append(d.minimum)
            maximums.append(d.maximum)
        }
        var binds = PostgresBindings()
        binds.append(keys); binds.append(namespaces); binds.append(names); binds.append(dimensions); binds.append(times)
        binds.append(periods); binds.append(units); binds.append(counts); binds.append(sums); binds.append(minimums); binds.append(maximums)
        let rows = try await run("""
            WITH added AS (INSERT INTO metric_datapoints(datapoint_key, namespace, metric_name, dimensions, timestamp, period, unit,
                sample_count, sum, minimum, maximum)
              SELECT k, n, m, d, t, p, nullif(u, ''), c, s, mi, ma
              FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::float8[],
                          $9::float8[], $10::float8[], $11::float8[]) AS x(k, n, m, d, t, p, u, c, s, mi, ma)
              ON CONFLICT DO NOTHING RETURNING 1)
            SELECT count(*) FROM added
            """, binds, doing: "cannot write metric datapoints")
        return Int(try rows.first.map { row throws(StoreError) in try decode(row, Int64.self) } ?? 0)
    }

    private func write(_ events: [StructuredEvent]) async throws(StoreError) -> Int {
        guard !events.isEmpty else { return 0 }
        var binds = PostgresBindings()
        binds.append(events.map(StoreConventions.eventKey))
        binds.append(events.map(\.kind.rawValue))
        binds.append(events.map(\.key))
        binds.append(events.map(\.timestamp))
        binds.append(events.map { CopyRows.repaired($0.body) })
        let rows = try await run("""
            WITH added AS (INSERT INTO detector_events(event_key, kind, key, timestamp, body)
              SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[]) ON CONFLICT DO NOTHING RETURNING 1)
            SELECT count(*) FROM added
            """, binds, doing: "cannot write detector events")
        return Int(try rows.first.map { row throws(StoreError) in try decode(row, Int64.self) } ?? 0)
    }

    // MARK: Retention

    public func setRetention(logGroup: String, days: Int?) async throws(StoreError) {
        var binds = PostgresBindings()
        binds.append(logGroup)
        binds.append(days.map(Int64.init))
        binds.append(Int64(Date().timeIntervalSince1970 * 1000))
        try await run("""
            INSERT INTO log_groups(name, retention_days, created) VALUES ($1, $2::bigint, $3)
            ON CONFLICT (name) DO UPDATE SET retention_days = excluded.retention_days
            """, binds)
    }

    /// Drops each day partition once every group with events in it has outlived its retention
    /// there (no DELETE); within partitions still kept for other groups, an expired group's
    /// events are deleted by range. Returns the events removed.
    @discardableResult
    public func enforceRetention(now: Int64) async throws(StoreError) -> Int {
        let retention = try await run("SELECT name, retention_days::bigint FROM log_groups WHERE retention_days IS NOT NULL")
        var days: [String: Int64] = [:]
        for row in retention {
            let (name, value) = try decode(row, (String, Int64).self)
            days[name] = value
        }
        guard let shortest = days.values.min() else { return 0 }
        var removed = 0
        let existing = try await run("""
            SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'log_events'::regclass ORDER BY 1
            """)
        for row in existing {
            let name = try decode(row, String.self)
            guard let day = Self.day(ofPartition: name, table: "log_events") else { continue }
            let end = day + Self.dayMillis
            guard end <= now - shortest * Self.dayMillis else { continue }
            var binds = PostgresBindings()
            binds.append(day)
            binds.append(end)
            // The groups with events in this day, from the stream table (cheap on any size).
            let present = try await run("SELECT DISTINCT log_group FROM log_streams WHERE first_event < $2 AND last_event >= $1", binds)
            let groups = try present.map { row throws(StoreError) in try decode(row, String.self) }
            let expired = groups.allSatisfy { group in days[group].map { end <= now - $0 * Self.dayMillis } ?? false }
            guard expired else { continue }
            let count = try await run("SELECT count(*) FROM \(name)")
            removed += Int(try count.first.map { row throws(StoreError) in try decode(row, Int64.self) } ?? 0)
            try await transaction { () throws(StoreError) in
                try await run("DROP TABLE IF EXISTS \(name)", doing: "cannot drop an expired partition")
                try await run("DROP TABLE IF EXISTS \(Self.partitionName("cloudtrail_lookup", day: day))", doing: "cannot drop an expired partition")
            }
            partitions.remove(day)
        }
        // Partitions kept for other groups: the expired group's rows go by range.
        for (group, retentionDays) in days {
            var binds = PostgresBindings()
            binds.append(group)
            binds.append(now - retentionDays * Self.dayMillis)
            let rows = try await transaction { () throws(StoreError) -> [PostgresRow] in
                try await run("DELETE FROM cloudtrail_lookup WHERE log_group = $1 AND timestamp < $2", binds)
                return try await run("WITH gone AS (DELETE FROM log_events WHERE log_group = $1 AND timestamp < $2 RETURNING 1) SELECT count(*) FROM gone", binds)
            }
            removed += Int(try rows.first.map { row throws(StoreError) in try decode(row, Int64.self) } ?? 0)
        }
        return removed
    }

    static func day(ofPartition name: String, table: String) -> Int64? {
        let prefix = table + "_p"
        guard name.hasPrefix(prefix) else { return nil }
        let digits = name.dropFirst(prefix.count)
        guard digits.count == 8, let year = Int(digits.prefix(4)), let month = Int(digits.dropFirst(4).prefix(2)),
              let dayOfMonth = Int(digits.suffix(2)) else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard let date = calendar.date(from: DateComponents(year: year, month: month, day: dayOfMonth)) else { return nil }
        return Int64(date.timeIntervalSince1970 * 1000)
    }

    public func count(_ table: StoreTable) async throws(StoreError) -> Int {
        let rows = try await run("SELECT count(*) FROM \(table.rawValue)")
        return Int(try rows.first.map { row throws(StoreError) in try decode(row, Int64.self) } ?? 0)
    }

    // MARK: Decoding

    func decode<each Column: PostgresDecodable>(_ row: PostgresRow, _ types: (repeat each Column).Type) throws(StoreError) -> (repeat each Column) {
        do { return try row.decode(types) } catch {
            throw StoreError("\(settings.redacted): unexpected column types: \(String(reflecting: error).prefix(300))")
        }
    }

    func decode<Column: PostgresDecodable>(_ row: PostgresRow, _ type: Column.Type) throws(StoreError) -> Column {
        do { return try row.decode(type) } catch {
            throw StoreError("\(settings.redacted): unexpected column type: \(String(reflecting: error).prefix(300))")
        }
    }
}

/// Connection ids for the driver's log metadata.
final class LockedCounter: @unchecked Sendable {
    private var value = 0
    private let lock = NSLock()
    func next() -> Int {
        lock.lock()
        defer { lock.unlock() }
        value += 1
        return value
    }
}
