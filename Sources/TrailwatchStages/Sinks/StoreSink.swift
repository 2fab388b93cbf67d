import Foundation
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime
import TrailwatchStore

/// `store` (also `sqlite`): the store — log events, metric datapoints, alarm/insight/pattern
/// events — in an SQLite file (`path:`) or a PostgreSQL database (`url: postgres://…`). Each
/// batch is one transaction (with PostgreSQL, large log batches arriving back to back share one,
/// up to 4 MiB); acknowledgements are released after COMMIT. When the database is
/// unreachable, the batch is retried with backoff and nothing is acknowledged meanwhile, so
/// sources stop advancing their checkpoints until it is back.
struct StoreSink: SinkKind {
    struct Config: StageConfig {
        var location = StoreLocation("")
        var retentionDays: [String: Int] = [:]
        var instance: String?

        static let settings = SettingsSchema<Config>(
            .custom("path", type: "string", "An SQLite file (created with mode 0640) holding the store.", storedAt: \Config.location) { config, c, key in
                config.location = StoreLocation(try c.decode(String.self, forKey: key))
            },
            .custom("url", type: "string", "A PostgreSQL database holding the store (`postgres://USER@HOST:PORT/DATABASE`; see "
                    + "[PostgreSQL](#postgresql-one-store-for-a-fleet)). Exactly one of `path` and `url`.") { config, c, key in
                guard !c.contains(Config.key("path")) else {
                    throw SettingError(codingPath: c.codingPath, message: "give exactly one of 'path' and 'url'",
                                       expected: "path: var/store.db (SQLite) or url: postgres://USER@HOST:PORT/DATABASE")
                }
                let url = try c.decode(String.self, forKey: key)
                config.location = StoreLocation(url)
                guard case .postgres = config.location else {
                    throw SettingError(codingPath: c.codingPath + [key], message: "'\(StoreLocation.redacted(url))' is not a PostgreSQL URL",
                                       expected: "postgres://USER@HOST:PORT/DATABASE (or path: FILE for SQLite)")
                }
            },
            .setting("retention_days", \.retentionDays, "Days to keep each log group's events (`{ /app/access: 30 }`); other groups are kept. 1–3650.",
                     check: { days in
                         days.sorted { $0.key < $1.key }.first { $0.value < 1 || $0.value > 3650 }
                             .map { SettingIssue("\($0.value) days for \($0.key) is out of range", expected: "1 to 3650 days") }
                     }),
            .setting("instance", \.instance, "This writer's name in datapoint keys: equal datapoints from two instances both count, a replay "
                     + "from the same one does not.", default: "the host name with PostgreSQL, none with SQLite")
        )

        mutating func validate(at codingPath: [any CodingKey]) throws {
            if case .sqlite(path: "") = location {
                throw SettingError(codingPath: codingPath, message: "give exactly one of 'path' and 'url'",
                                   expected: "path: var/store.db (SQLite) or url: postgres://USER@HOST:PORT/DATABASE")
            }
        }

        var writer: String {
            if let instance { return instance }
            if case .postgres = location { return ProcessInfo.processInfo.hostName }
            return ""
        }
    }

    static let type = "store"
    static let summary = "Stores log events, metric datapoints and detector events in SQLite (path:) or PostgreSQL (url:)."
    static func accepts(_ config: Config) -> Set<EventKind> { Set(EventKind.allCases) }
    static func exclusiveFiles(_ config: Config) -> [(setting: String, path: String)] {
        if case .sqlite(let path) = config.location { return [("path", path)] }
        return []
    }

    static func make(_ config: Config, _ context: StageContext) throws -> any Sink {
        if case .sqlite(let path) = config.location {
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
            }
        }
        return Runner(config: config, context: context)
    }

    final class Runner: Sink {
        let config: Config
        let context: StageContext
        var store: (any Store)?
        var lastRetention: Int64 = 0
        /// Retry pause after a lost connection: doubles up to `maximumBackoff`.
        var backoff: Int64 = 100
        static let maximumBackoff: Int64 = 10_000

        init(config: Config, context: StageContext) {
            self.config = config
            self.context = context
        }

        /// Opens the store at start, so a wrong password or a missing database stops the run with its error.
        func open() async throws {
            store = try await connect()
        }

        private func connect() async throws(StoreError) -> any Store {
            let store = try await StoreOpener.open(config.location, access: .readWrite, writer: config.writer)
            for (group, days) in config.retentionDays { try await store.setRetention(logGroup: group, days: days) }
            return store
        }

        /// Large log batches held to go into PostgreSQL in one transaction with the next ones (a
        /// source catching up reads 1 MiB batches back to back; each COMMIT waits for the
        /// server's log to reach the disk). Written when they reach ``coalescedBytes``, when a
        /// smaller batch or another payload comes, on the next tick, and at the end; their
        /// acknowledgements are released after that COMMIT, as always.
        private var held: [Batch] = []
        private var heldBytes = 0
        static let coalescedBytes = 4 << 20
        /// Smaller batches (a tailer keeping up, an API request) are written at once.
        static let bulkBatchBytes = 256 << 10

        private var coalesces: Bool {
            if case .postgres = config.location { return true }
            return false
        }

        func write(_ batch: Batch) async throws {
            if case .logs(let logs) = batch.payload, coalesces {
                let bytes = logs.messageBytes
                held.append(batch)
                heldBytes += bytes
                if bytes < Self.bulkBatchBytes || heldBytes >= Self.coalescedBytes || batch.acks.awaited {
                    try await writeHeld(lastIsCurrent: true)
                }
                return
            }
            try await writeHeld(lastIsCurrent: false)
            let added = try await withReconnects { store in try await store.write(batch.payload) }
            context.metrics.recordOut(events: added, bytes: batch.payload.byteCount)
            batch.acks.release()
        }

        /// Writes the held log batches in one transaction. When that fails, they are failed (no
        /// acknowledgement) — all but the batch being written, which the caller fails.
        private func writeHeld(lastIsCurrent: Bool) async throws {
            guard !held.isEmpty else { return }
            let batches = held
            held = []
            heldBytes = 0
            let logs = batches.compactMap { batch -> LogBatch? in
                if case .logs(let logs) = batch.payload { return logs }
                return nil
            }
            do {
                let added = try await withReconnects { store in try await store.write(logs: logs) }
                context.metrics.recordOut(events: added, bytes: batches.reduce(0) { $0 + $1.payload.byteCount })
                for batch in batches { batch.acks.release() }
            } catch {
                for batch in batches.dropLast(lastIsCurrent ? 1 : 0) {
                    context.metrics.recordDamage()
                    batch.acks.release(success: false)
                }
                throw error
            }
        }

        /// Runs `body` against the store; while the server is unreachable, waits with backoff and
        /// tries again (acknowledging nothing meanwhile). Other errors are thrown.
        private func withReconnects<T>(_ body: (any Store) async throws -> T) async throws -> T {
            while true {
                do {
                    let current: any Store
                    if let store { current = store } else {
                        current = try await connect()
                        store = current
                        context.log.log(.info, context.id, "connected to \(config.location) again")
                    }
                    let result = try await body(current)
                    backoff = 100
                    return result
                } catch let error as StoreError where error.isTransient {
                    if let store { await store.close() }
                    store = nil
                    context.metrics.addToGauge("sink_retries", 1)
                    context.log.log(.warning, context.id, "\(error); retrying in \(backoff) ms")
                    try await context.clock.sleep(for: .milliseconds(backoff))
                    backoff = min(backoff * 2, Self.maximumBackoff)
                }
            }
        }

        func tick(nowMillis: Int64) async throws {
            try await writeHeld(lastIsCurrent: false)
            guard !config.retentionDays.isEmpty, nowMillis - lastRetention >= 60_000 else { return }
            lastRetention = nowMillis
            let removed = try await withReconnects { store in try await store.enforceRetention(now: nowMillis) }
            if removed > 0 { context.metrics.addToGauge("retention_deleted_events", Double(removed)) }
        }

        func finish() async throws {
            try await writeHeld(lastIsCurrent: false)
            if !config.retentionDays.isEmpty {
                let now = context.clock.nowMillis()
                _ = try await withReconnects { store in try await store.enforceRetention(now: now) }
            }
            await store?.close()
            store = nil
        }
    }
}

/// `sqlite`: the store sink's first name, kept for existing pipelines.
struct SQLiteSink: SinkKind {
    typealias Config = StoreSink.Config
    static let type = "sqlite"
    static let summary = "The store sink under its first name (the same settings as `store`)."
    static func accepts(_ config: Config) -> Set<EventKind> { StoreSink.accepts(config) }
    static func exclusiveFiles(_ config: Config) -> [(setting: String, path: String)] { StoreSink.exclusiveFiles(config) }
    static func make(_ config: Config, _ context: StageContext) throws -> any Sink { try StoreSink.make(config, context) }
}
