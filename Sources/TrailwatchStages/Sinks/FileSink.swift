#if canImport(Glibc)
import Glibc
#endif
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `file`: appends events to a file as JSON lines or raw lines. Acknowledges batches after
/// fsync, at most every `sync_interval` (and at shutdown).
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
        let fd: Int32
        let config: Config
        let metrics: ComponentMetrics
        let once: Bool
        var writer: RecordWriter
        /// Written but not yet fsynced: released at the next sync.
        var unsynced = Acknowledgements()
        var lastSync = MonotonicClock.wallMillis()
        /// Written since the last sync.
        var dirty = false

        init(fd: Int32, config: Config, metrics: ComponentMetrics, once: Bool) {
            self.fd = fd
            self.config = config
            self.metrics = metrics
            self.once = once
            self.writer = RecordWriter(fd: fd, format: config.format == .json ? .json : .raw, path: config.path)
        }

        deinit { close(fd) }

        func write(_ batch: Batch) async throws {
            let before = lseek(fd, 0, SEEK_END)
            let bytes: Int
            do { bytes = try writer.write(batch.payload) } catch {
                // A batch is written whole or not at all (a full disk leaves no torn record behind);
                // the runner then fails it: no acknowledgement.
                if before >= 0 { _ = ftruncate(fd, before) }
                throw error
            }
            metrics.recordOut(events: batch.count, bytes: bytes)
            unsynced.merge(batch.acks)
            dirty = true
            if !once { try syncIfDue(now: MonotonicClock.wallMillis()) }
        }

        /// Ticks come once a second: a sync that falls due before the next one is done now, so
        /// acknowledgements (and the sources' positions) lag by one `sync_interval`, not up to two.
        func tick(nowMillis: Int64) async throws { try syncIfDue(now: nowMillis + Self.tickSlackMillis) }

        static let tickSlackMillis: Int64 = 500

        func finish() async throws { try sync() }

        private func syncIfDue(now: Int64) throws {
            if now - lastSync >= config.syncInterval.milliseconds && dirty { try sync() }
        }

        private func sync() throws {
            lastSync = MonotonicClock.wallMillis()
            dirty = false
            if fsync(fd) != 0 {
                let error = errno
                unsynced.take().release(success: false)
                throw SinkError.io(path: config.path, errno: error)
            }
            unsynced.take().release()
        }
    }
}
