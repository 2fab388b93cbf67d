#if canImport(Glibc)
import Glibc
#endif
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `stdin`: lines from standard input until it closes (or the pipeline stops).
struct StdinSource: SourceKind {
    struct Config: StageConfig {
        var logGroup: String?
        var logStream = "stdin"
        var maxLineBytes = SourceLimits.defaultLineCap
        var shaping = EventShapingConfig()

        static let settings = SettingsSchema<Config>(
            .setting("log_group", \.logGroup, "Log group of the events.", default: "the component id"),
            .setting("log_stream", \.logStream, "Log stream of the events."),
            SourceLimits.maxLineBytesSetting(\.maxLineBytes),
            EventShapingConfig.multilineSetting(\.shaping.multiline),
            EventShapingConfig.timestampSetting(\.shaping.timestamp)
        )
    }

    static let type = "stdin"
    static let summary = "Lines from standard input until it closes (or the pipeline stops; a partial last line is still emitted)."
    static func produces(_ config: Config) -> Set<EventKind> { [.log] }

    static func make(_ config: Config, _ context: StageContext) throws -> any Source {
        Runner(origin: Origin(logGroup: config.logGroup ?? context.id, logStream: config.logStream),
               maxLineBytes: config.maxLineBytes.bytes,
               shaper: try EventShaper(config.shaping, maxLineBytes: config.maxLineBytes.bytes, metrics: context.metrics),
               once: context.once, clock: context.clock)
    }

    final class Runner: TrailwatchRuntime.Source {
        let origin: Origin
        let maxLineBytes: Int
        let shaper: EventShaper
        let once: Bool
        let clock: any StageClock

        init(origin: Origin, maxLineBytes: Int, shaper: EventShaper, once: Bool, clock: any StageClock) {
            self.clock = clock
            self.origin = origin
            self.maxLineBytes = maxLineBytes
            self.shaper = shaper
            self.once = once
        }

        func run(_ output: SourceOutput) throws {
            var reader = LineReader(fd: STDIN_FILENO, origin: origin, maxLineBytes: maxLineBytes,
                                    chunkSize: SourceLimits.chunkSize, shaper: shaper, clock: clock)
            while true {
                if output.isStopping {
                    // Whatever was read of an unterminated line still goes out.
                    if let tail = reader.takeTail() { output.emit(Batch(.logs(tail))) }
                    break
                }
                // Poll so a stop request is noticed even while nothing arrives.
                var pfd = pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0)
                if poll(&pfd, 1, 200) <= 0 {
                    // A multiline event waiting for a next line that is not coming (live mode only).
                    if !once, let held = reader.flushHeldEvent(now: clock.nowMillis()) { output.emit(Batch(.logs(held))) }
                    continue
                }
                let (batch, outcome) = try reader.readChunk(flushTail: true)
                if let batch { output.emit(Batch(.logs(batch))) }
                if outcome == .endOfInput { break }
            }
        }
    }
}

enum SourceLimits {
    /// Bytes read per system call; one chunk becomes at most one batch.
    static let chunkSize = 1 << 20

    /// Longest event a line-reading source emits, unless `max_line_bytes` says otherwise.
    static let defaultLineCap = ByteSize(bytes: 256 << 10)

    /// `max_line_bytes`, the same on every source that reads lines.
    static func maxLineBytesSetting<C: SettingsSection>(_ keyPath: WritableKeyPath<C, ByteSize> & Sendable) -> Setting<C> {
        .setting("max_line_bytes", keyPath, "Longest event; a longer line is cut into pieces of at most this size, between UTF-8 "
                 + "characters (so the pieces put back together give the line), each flagged `split` (later pieces also "
                 + "`continuation`). 64B–16MiB.",
                 check: { $0.bytes >= 64 && $0.bytes <= 16 << 20 ? nil : SettingIssue("\($0) is out of range", expected: "a size from 64B to 16MiB") })
    }
}
