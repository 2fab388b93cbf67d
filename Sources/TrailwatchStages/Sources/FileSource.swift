#if canImport(Glibc)
import Glibc
#endif
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `file`: lines from the files matching `include` globs (minus `exclude`).
///
/// With `--once` every matching file is read to its end. Otherwise the source follows the files:
/// it discovers new ones, survives rotation and truncation, and checkpoints how far every sink
/// downstream has durably written, so a restart (even after kill -9) resumes without loss.
struct FileSource: SourceKind {
    enum StartAt: String, ConfigEnum { case beginning, end }
    /// How new data and new files are noticed: inotify (Linux), or polling (network file systems
    /// and other places where inotify sees nothing).
    enum Watch: String, ConfigEnum { case inotify, poll }

    struct Config: StageConfig {
        var include: [String] = []
        var exclude: [String] = []
        var logGroup: String?
        var logStream: String?
        var maxLineBytes = SourceLimits.defaultLineCap
        var startAt: StartAt = .beginning
        var ignoreOlder: ConfigDuration?
        var rotateWait = ConfigDuration(milliseconds: 5000)
        var globInterval = ConfigDuration(milliseconds: 1000)
        var pollInterval = ConfigDuration(milliseconds: 250)
        var checkpointInterval = ConfigDuration(milliseconds: 1000)
        var closeIdle = ConfigDuration(milliseconds: 300_000)
        var watch: Watch = .inotify
        var shaping = EventShapingConfig()

        static let settings = SettingsSchema<Config>(
            .strings("include", \.include, "Paths or globs (`*`, `?`, `[...]`, `**` for any depth); a single string or a list.",
                     required: true, check: { $0.isEmpty ? SettingIssue("is empty", expected: "at least one path or glob") : nil }),
            .setting("exclude", \.exclude, "Globs of paths to skip."),
            .setting("log_group", \.logGroup, "Log group of the events.", default: "the component id"),
            .setting("log_stream", \.logStream, "Log stream of the events (a rotated file keeps the stream of the path it was found under).",
                     default: "the file's path"),
            SourceLimits.maxLineBytesSetting(\.maxLineBytes),
            .setting("start_at", \.startAt, "Where to start in files found at the very first start (no checkpoint yet). "
                     + "Files that appear later are always read from their beginning."),
            .setting("ignore_older", \.ignoreOlder, "Files not modified for this long (`24h`) are not picked up, unless a checkpoint names them."),
            .setting("rotate_wait", \.rotateWait, "How long a file that was renamed away or deleted is still read after it last grew."),
            .setting("glob_interval", \.globInterval, "How often the globs are expanded again (inotify wakes the source at once when it can). 10ms–1h.",
                     check: Config.interval),
            .setting("poll_interval", \.pollInterval, "Longest sleep when nothing changed. 10ms–1h.", check: Config.interval),
            .setting("checkpoint_interval", \.checkpointInterval, "How often positions are written to disk at the latest; they are also "
                     + "written as soon as acknowledgements move them (at most five times a second), so a sink's sync is durable in the "
                     + "positions at once. 10ms–1h.", check: Config.interval),
            .setting("close_idle", \.closeIdle, "A file read to its end, acknowledged and not grown for this long is closed; its position "
                     + "is remembered and it is opened again when it grows (see [positions](#positions-of-every-file-ever-read)). At least 10ms.",
                     check: { $0.milliseconds < 10 ? SettingIssue("\($0) is out of range", expected: "a duration of at least 10ms") : nil }),
            .setting("watch", \.watch, "`inotify`, or `poll` for file systems where inotify sees nothing (NFS, some container mounts): "
                     + "files are then checked every `poll_interval` and globs every `glob_interval`."),
            EventShapingConfig.multilineSetting(\.shaping.multiline),
            EventShapingConfig.timestampSetting(\.shaping.timestamp)
        )

        static let interval: @Sendable (ConfigDuration) -> SettingIssue? = {
            $0.milliseconds < 10 || $0.milliseconds > 3_600_000 ? SettingIssue("\($0) is out of range", expected: "a duration from 10ms to 1h") : nil
        }
    }

    static let type = "file"
    static let summary = "Lines from files matching glob patterns; follows, rotates and checkpoints unless --once."
    static func produces(_ config: Config) -> Set<EventKind> { [.log] }

    static func make(_ config: Config, _ context: StageContext) throws -> any Source {
        let logGroup = config.logGroup ?? context.id
        if context.once { return OnceRunner(config: config, logGroup: logGroup, context: context) }
        return FileTailer(config: config, logGroup: logGroup, context: context)
    }

    /// `--once`: every matching file from its beginning to its end, no checkpoints.
    final class OnceRunner: TrailwatchRuntime.Source {
        let config: Config
        let logGroup: String
        let context: StageContext

        init(config: Config, logGroup: String, context: StageContext) {
            self.config = config
            self.logGroup = logGroup
            self.context = context
        }

        func run(_ output: SourceOutput) throws {
            let paths = PathGlob.expand(include: config.include, exclude: config.exclude)
            if paths.isEmpty {
                context.log.log(.warning, context.id, "no file matches " + config.include.joined(separator: ", "))
            }
            for path in paths {
                if output.isStopping { break }
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else {
                    output.metrics.recordError()
                    context.log.log(.error, context.id, "\(SourceError.open(path: path, errno: errno))")
                    continue
                }
                defer { close(fd) }
                posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_SEQUENTIAL))
                let origin = Origin(logGroup: logGroup, logStream: config.logStream ?? path)
                let shaper = try EventShaper(config.shaping, maxLineBytes: config.maxLineBytes.bytes, metrics: context.metrics)
                var reader = LineReader(fd: fd, origin: origin, maxLineBytes: config.maxLineBytes.bytes,
                                        chunkSize: SourceLimits.chunkSize, shaper: shaper, clock: context.clock)
                while !output.isStopping {
                    let (batch, outcome) = try reader.readChunk(flushTail: true)
                    if let batch { output.emit(Batch(.logs(batch))) }
                    if outcome == .endOfInput { break }
                }
            }
        }
    }
}
