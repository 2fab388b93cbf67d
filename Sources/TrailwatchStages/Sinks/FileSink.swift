#if canImport(Glibc)
import Glibc
#endif
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `file`: appends events to a file as JSON lines or raw lines. Acknowledges batches after
/// fsync: batches a client waits for (PutLogEvents) at once, several to an fsync (group
/// commit); others — a tailed file's checkpoints — at most every `sync_interval`.
struct FileSink: SinkKind {
    struct Config: StageConfig {
        var path: String
        var format: LineFormatSetting = .json
        var syncInterval: ConfigDuration = ConfigDuration(milliseconds: 1000)

        enum CodingKeys: String, CodingKey, CaseIterable { case path, format, syncInterval = "sync_interval" }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            path = try c.decode(String.self, forKey: .path)
            if path.isEmpty { throw SettingError(codingPath: c.codingPath + [CodingKeys.path], message: "is empty", expected: "a file path") }
            format = try c.decodeIfPresent(LineFormatSetting.self, forKey: .format) ?? .json
            syncInterval = try c.decodeIfPresent(ConfigDuration.self, forKey: .syncInterval) ?? syncInterval
        }
    }

    enum LineFormatSetting: String, ConfigEnum { case json, raw }

    static let type = "file"
    static let summary = "Appends events to a file as JSON lines or raw lines (fsync before acknowledging)."
    static func exclusiveFiles(_ config: Config) -> [(setting: String, path: String)] { [("path", config.path)] }
    static func accepts(_ config: Config) -> Set<EventKind> { Set(EventKind.allCases) }

    static func make(_ config: Config, _ context: StageContext) throws -> any Sink {
        FileIO.makeParentDirectories(config.path)
        let cut = try FileIO.truncateTornRecord(path: config.path)
        if cut > 0 {
            context.log.log(.warning, context.id, "\(config.path) ended in a partly written record (\(cut) bytes after the last newline); cut back to the last whole record")
        }
        let fd = open(config.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw SinkError.open(path: config.path, errno: errno) }
        return Runner(fd: fd, config: config, metrics: context.metrics, once: context.once)
    }

    final class Runner: Sink {
        let config: Config
        let metrics: ComponentMetrics
        let once: Bool
        var writer: RecordWriter
        /// Runs the fsyncs and releases what they made durable; owns the descriptor.
        let commit: GroupCommit
        var lastSync = MonotonicClock.wallMillis()
        /// Written since the last sync was asked for.
        var dirty = false

        init(fd: Int32, config: Config, metrics: ComponentMetrics, once: Bool) {
            self.config = config
            self.metrics = metrics
            self.once = once
            self.writer = RecordWriter(fd: fd, format: config.format == .json ? .json : .raw, path: config.path)
            self.commit = GroupCommit(fd: fd, path: config.path)
        }

        func write(_ batch: Batch) async throws {
            // An earlier fsync failed (its batches were refused): say so, and refuse this one too,
            // since what the kernel still holds of the file is in doubt.
            if let failure = commit.takeFailure() { throw failure }
            let before = lseek(commit.fd, 0, SEEK_END)
            let bytes: Int
            do { bytes = try writer.write(batch.payload) } catch {
                // A batch is written whole or not at all (a full disk leaves no torn record behind);
                // the runner then fails it: no acknowledgement.
                if before >= 0 { _ = ftruncate(commit.fd, before) }
                throw error
            }
            metrics.recordOut(events: batch.count, bytes: bytes)
            commit.written(batch.acks)
            dirty = true
            if once { return }
            if batch.acks.awaited {
                requestSync(now: MonotonicClock.wallMillis())
            } else {
                syncIfDue(now: MonotonicClock.wallMillis())
            }
        }

        /// Ticks come once a second: a sync that falls due before the next one is done now, so
        /// acknowledgements (and the sources' positions) lag by one `sync_interval`, not up to two.
        func tick(nowMillis: Int64) async throws {
            syncIfDue(now: nowMillis + Self.tickSlackMillis)
            if let failure = commit.takeFailure() { throw failure }
        }

        static let tickSlackMillis: Int64 = 500

        func finish() async throws {
            dirty = false
            try await commit.sync()
        }

        private func syncIfDue(now: Int64) {
            if now - lastSync >= config.syncInterval.milliseconds && dirty { requestSync(now: now) }
        }

        private func requestSync(now: Int64) {
            lastSync = now
            dirty = false
            commit.requestSync()
        }
    }
}
