#if canImport(Glibc)
import Glibc
#endif
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `console`: events to standard output, as JSON lines or as text (the raw message).
struct ConsoleSink: SinkKind {
    enum Format: String, ConfigEnum { case json, text }

    struct Config: StageConfig {
        var format: Format = .text

        static let settings = SettingsSchema<Config>(
            .setting("format", \.format, "`text`: the raw message of log events and the JSON of other events; `json`: every event as a JSON line.")
        )
    }

    static let type = "console"
    static let summary = "Writes events to standard output as text or JSON lines."
    static func accepts(_ config: Config) -> Set<EventKind> { Set(EventKind.allCases) }

    static func make(_ config: Config, _ context: StageContext) throws -> any Sink {
        Runner(writer: RecordWriter(fd: STDOUT_FILENO, format: config.format == .json ? .json : .raw, path: "stdout"),
               metrics: context.metrics)
    }

    final class Runner: Sink {
        var writer: RecordWriter
        let metrics: ComponentMetrics

        init(writer: RecordWriter, metrics: ComponentMetrics) {
            self.writer = writer
            self.metrics = metrics
        }

        func write(_ batch: Batch) async throws {
            let bytes = try writer.write(batch.payload)
            metrics.recordOut(events: batch.count, bytes: bytes)
            batch.acks.release()
        }

        func finish() async throws {}
    }
}
