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
        var logStream: String = "stdin"
        var maxLineBytes: ByteSize = ByteSize(bytes: 256 << 10)
        var shaping = EventShapingConfig()

        enum CodingKeys: String, CodingKey, CaseIterable {
            case logGroup = "log_group", logStream = "log_stream", maxLineBytes = "max_line_bytes", multiline, timestamp
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            logGroup = try c.decodeIfPresent(String.self, forKey: .logGroup)
            logStream = try c.decodeIfPresent(String.self, forKey: .logStream) ?? logStream
            maxLineBytes = try c.decodeIfPresent(ByteSize.self, forKey: .maxLineBytes) ?? maxLineBytes
            try SourceLimits.checkLineCap(maxLineBytes, c.codingPath + [CodingKeys.maxLineBytes])
            shaping = try c.decodeShaping(multiline: .multiline, timestamp: .timestamp)
        }
    }

    static let type = "stdin"
    static let summary = "Lines from standard input until it closes."
    static func produces(_ config: Config) -> Set<EventKind> { [.log] }

    static func make(_ config: Config, _ context: StageContext) throws -> any Source {
        Runner(origin: Origin(logGroup: config.logGroup ?? context.id, logStream: config.logStream),
               maxLineBytes: config.maxLineBytes.bytes,
               shaper: try EventShaper(config.shaping, maxLineBytes: config.maxLineBytes.bytes, metrics: context.metrics),
               once: context.once)
    }

    final class Runner: TrailwatchRuntime.Source {
        let origin: Origin
        let maxLineBytes: Int
        let shaper: EventShaper
        let once: Bool

        init(origin: Origin, maxLineBytes: Int, shaper: EventShaper, once: Bool) {
            self.origin = origin
            self.maxLineBytes = maxLineBytes
            self.shaper = shaper
            self.once = once
        }

        func run(_ output: SourceOutput) throws {
            var reader = LineReader(fd: STDIN_FILENO, origin: origin, maxLineBytes: maxLineBytes,
                                    chunkSize: SourceLimits.chunkSize, shaper: shaper)
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
                    if !once, let held = reader.flushHeldEvent(now: MonotonicClock.wallMillis()) { output.emit(Batch(.logs(held))) }
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

    static func checkLineCap(_ size: ByteSize, _ path: [any CodingKey]) throws {
        guard size.bytes >= 64 && size.bytes <= 16 << 20 else {
            throw SettingError(codingPath: path, message: "\(size) is out of range", expected: "a size from 64B to 16MiB")
        }
    }
}
