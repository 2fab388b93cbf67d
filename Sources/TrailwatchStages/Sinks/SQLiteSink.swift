import Foundation
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime
import TrailwatchStore

/// `sqlite`: the store — log events, metric datapoints, alarm/insight/pattern events — in one
/// SQLite file. Each batch is one transaction; acknowledgements are released after COMMIT.
struct SQLiteSink: SinkKind {
    struct Config: StageConfig {
        var path: String
        /// Days to keep each log group's events (`{ "/app": 7 }`); others are kept.
        var retentionDays: [String: Int] = [:]

        enum CodingKeys: String, CodingKey, CaseIterable { case path, retentionDays = "retention_days" }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            path = try c.decode(String.self, forKey: .path)
            retentionDays = try c.decodeIfPresent([String: Int].self, forKey: .retentionDays) ?? [:]
            for (group, days) in retentionDays where days < 1 || days > 3650 {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.retentionDays], message: "\(days) days for \(group) is out of range",
                                   expected: "1 to 3650 days")
            }
        }
    }

    static let type = "sqlite"
    static let summary = "Stores log events, metric datapoints and detector events in an SQLite file."
    static func exclusiveFiles(_ config: Config) -> [(setting: String, path: String)] { [("path", config.path)] }
    static func accepts(_ config: Config) -> Set<EventKind> { Set(EventKind.allCases) }

    static func make(_ config: Config, _ context: StageContext) throws -> any Sink {
        let directory = (config.path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        }
        let store = try Store(path: config.path)
        for (group, days) in config.retentionDays { try store.setRetention(logGroup: group, days: days) }
        return Runner(store: store, context: context, retention: !config.retentionDays.isEmpty)
    }

    final class Runner: Sink {
        let store: Store
        let context: StageContext
        let retention: Bool
        var lastRetention: Int64 = 0

        init(store: Store, context: StageContext, retention: Bool) {
            self.store = store
            self.context = context
            self.retention = retention
        }

        func write(_ batch: Batch) async throws {
            try store.begin()
            do {
                let added: Int
                switch batch.payload {
                case .logs(let logs): added = try store.write(logs)
                case .metrics(let data): added = try store.write(data)
                case .events(_, let events): added = try store.write(events)
                }
                try store.commit()
                context.metrics.recordOut(events: added, bytes: batch.payload.byteCount)
            } catch {
                store.rollback()
                throw error
            }
            batch.acks.release()
        }

        func tick(nowMillis: Int64) async throws {
            guard retention, nowMillis - lastRetention >= 60_000 else { return }
            lastRetention = nowMillis
            let removed = try store.enforceRetention(now: nowMillis)
            if removed > 0 { context.metrics.addToGauge("retention_deleted_events", Double(removed)) }
        }

        func finish() async throws {
            if retention { try store.enforceRetention(now: MonotonicClock.wallMillis()) }
        }
    }
}
