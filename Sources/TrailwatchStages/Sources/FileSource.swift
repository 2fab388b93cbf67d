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
        var include: [String]
        var exclude: [String] = []
        var logGroup: String?
        /// Defaults to the file's path.
        var logStream: String?
        var maxLineBytes: ByteSize = ByteSize(bytes: 256 << 10)
        /// Where to start in files found at the very first start (no checkpoint yet). Files that
        /// appear later are always read from their beginning.
        var startAt: StartAt = .beginning
        /// Files not modified for this long are not picked up (unless a checkpoint names them).
        var ignoreOlder: ConfigDuration?
        /// How long a file that was renamed away or deleted is still read after its last growth.
        var rotateWait: ConfigDuration = ConfigDuration(milliseconds: 5000)
        /// How often the globs are expanded again (inotify wakes the source earlier when it can).
        var globInterval: ConfigDuration = ConfigDuration(milliseconds: 1000)
        /// How long the source sleeps when nothing changed and inotify is unavailable.
        var pollInterval: ConfigDuration = ConfigDuration(milliseconds: 250)
        /// How often positions are written to the checkpoint file at the latest (they are also
        /// written as soon as acknowledgements move them, at most five times a second).
        var checkpointInterval: ConfigDuration = ConfigDuration(milliseconds: 1000)
        /// A file read to its end, acknowledged, and not grown for this long is closed; its
        /// position is remembered and it is reopened when it grows.
        var closeIdle: ConfigDuration = ConfigDuration(milliseconds: 300_000)
        var watch: Watch = .inotify
        var shaping = EventShapingConfig()

        enum CodingKeys: String, CodingKey, CaseIterable {
            case include, exclude, logGroup = "log_group", logStream = "log_stream", maxLineBytes = "max_line_bytes"
            case startAt = "start_at", ignoreOlder = "ignore_older", rotateWait = "rotate_wait"
            case globInterval = "glob_interval", pollInterval = "poll_interval", checkpointInterval = "checkpoint_interval"
            case closeIdle = "close_idle"
            case watch, multiline, timestamp
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            include = try c.decodeStringList(.include)
            guard !include.isEmpty else {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.include], message: "is empty", expected: "at least one path or glob")
            }
            exclude = try c.decodeIfPresent([String].self, forKey: .exclude) ?? []
            logGroup = try c.decodeIfPresent(String.self, forKey: .logGroup)
            logStream = try c.decodeIfPresent(String.self, forKey: .logStream)
            maxLineBytes = try c.decodeIfPresent(ByteSize.self, forKey: .maxLineBytes) ?? maxLineBytes
            try SourceLimits.checkLineCap(maxLineBytes, c.codingPath + [CodingKeys.maxLineBytes])
            startAt = try c.decodeIfPresent(StartAt.self, forKey: .startAt) ?? startAt
            ignoreOlder = try c.decodeIfPresent(ConfigDuration.self, forKey: .ignoreOlder)
            rotateWait = try c.decodeIfPresent(ConfigDuration.self, forKey: .rotateWait) ?? rotateWait
            globInterval = try c.decodeIfPresent(ConfigDuration.self, forKey: .globInterval) ?? globInterval
            pollInterval = try c.decodeIfPresent(ConfigDuration.self, forKey: .pollInterval) ?? pollInterval
            checkpointInterval = try c.decodeIfPresent(ConfigDuration.self, forKey: .checkpointInterval) ?? checkpointInterval
            closeIdle = try c.decodeIfPresent(ConfigDuration.self, forKey: .closeIdle) ?? closeIdle
            watch = try c.decodeIfPresent(Watch.self, forKey: .watch) ?? watch
            for (key, value) in [(CodingKeys.globInterval, globInterval), (.pollInterval, pollInterval), (.checkpointInterval, checkpointInterval)]
            where value.milliseconds < 10 || value.milliseconds > 3_600_000 {
                throw SettingError(codingPath: c.codingPath + [key], message: "\(value) is out of range", expected: "a duration from 10ms to 1h")
            }
            if closeIdle.milliseconds < 10 {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.closeIdle], message: "\(closeIdle) is out of range", expected: "a duration of at least 10ms")
            }
            shaping = try c.decodeShaping(multiline: .multiline, timestamp: .timestamp)
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
                                        chunkSize: SourceLimits.chunkSize, shaper: shaper)
                while !output.isStopping {
                    let (batch, outcome) = try reader.readChunk(flushTail: true)
                    if let batch { output.emit(Batch(.logs(batch))) }
                    if outcome == .endOfInput { break }
                }
            }
        }
    }
}

extension KeyedDecodingContainer {
    /// A list of strings that may also be written as a single string.
    func decodeStringList(_ key: Key) throws -> [String] {
        if let single = try? decode(String.self, forKey: key) { return [single] }
        return try decode([String].self, forKey: key)
    }

    func decodeStringListIfPresent(_ key: Key) throws -> [String]? {
        guard contains(key) else { return nil }
        return try decodeStringList(key)
    }
}
