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
        var path = ""
        var format: LineFormatSetting = .json
        var syncInterval = ConfigDuration(milliseconds: 1000)

        static let settings = SettingsSchema<Config>(
            .required("path", \.path, "The file to append to (created with mode 0640, parent directories 0750).",
                      check: { $0.isEmpty ? SettingIssue("is empty", expected: "a file path") : nil }),
            .setting("format", \.format, "`json`: one JSON object per line (see [the record shape](#the-json-shape-of-records)); `raw`: "
                     + "the message bytes of log events, one per line."),
            .setting("sync_interval", \.syncInterval, "In live mode the file is fsynced at most this often; batches are acknowledged only "
                     + "after the fsync. Batches a client is waiting for (PutLogEvents into a `cloudwatch_logs_api` source) are fsynced at "
                     + "once instead, every batch written while one fsync runs joining the next (group commit). With `--once`, it is "
                     + "synced once at the end.")
        )
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
        return Runner(fd: fd, config: config, metrics: context.metrics, once: context.once, clock: context.clock)
    }

    final class Runner: Sink {
        let config: Config
        let metrics: ComponentMetrics
        let once: Bool
        var writer: RecordWriter
        /// Runs the fsyncs and releases what they made durable; owns the descriptor.
        let commit: GroupCommit
        /// Reads the time sync intervals are measured on.
        let clock: any StageClock
        var lastSync: Int64
        /// Written since the last sync was asked for.
        var dirty = false

        init(fd: Int32, config: Config, metrics: ComponentMetrics, once: Bool, clock: any StageClock) {
            self.clock = clock
            self.lastSync = clock.nowMillis()
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
                requestSync(now: clock.nowMillis())
            } else {
                syncIfDue(now: clock.nowMillis())
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
