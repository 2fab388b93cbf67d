import Yams

/// `buffer:` on any sink: how many batches wait in front of it, what happens when they are all
/// taken, and whether a disk spool isolates it from the rest of the pipeline.
public struct SinkBufferSettings: SettingsSection {
    public enum WhenFull: String, ConfigEnum {
        /// Upstream waits (backpressure reaches the sources, which stop reading; nothing is lost).
        case block
        /// The batch that does not fit is dropped for this sink only, counted, and acknowledged.
        case dropNewest = "drop_newest"
    }

    /// Batches held in memory in front of the sink (nil: the pipeline's `buffer_batches`).
    public var maxBatches: Int?
    public var whenFull: WhenFull = .block
    public var isolate = false
    public var maxSpoolBytes = ByteSize(bytes: 256 << 20)
    public var retryBackoff = ConfigDuration(milliseconds: 500)

    public static let settings = SettingsSchema<SinkBufferSettings>(
        .setting("max_batches", \.maxBatches, "Batches held in memory in front of the sink.", default: "the pipeline's `buffer_batches`",
                 check: SettingIssue.outside(1...4096, expected: "a whole number from 1 to 4096")),
        .setting("when_full", \.whenFull, "`block`: upstream waits (backpressure up to the sources; nothing lost). `drop_newest`: a batch "
                 + "that does not fit is dropped for this sink only, counted in `dropped_events`, and acknowledged so the sources move on."),
        .setting("isolate", \.isolate, "Spool batches to disk (`<data_dir>/spool/<id>/`, one fsynced file per batch, mode 0640) in front of "
                 + "this sink. Upstream is acknowledged once a batch is on disk, so a dead or slow sink cannot stall the others; the spool "
                 + "feeds the sink in order, retries failed writes with exponential backoff, and whatever is still spooled at shutdown is "
                 + "sent at the next start."),
        .setting("max_spool_bytes", \.maxSpoolBytes, "Disk the spool may use; beyond it `when_full` applies. At least 1MiB.",
                 check: { $0.bytes < 1 << 20 ? SettingIssue("\($0) is too small", expected: "at least 1MiB") : nil }),
        .setting("retry_backoff", \.retryBackoff, "First retry delay of an isolated sink (doubles up to 30 s).")
    )

    public init() {}
}

/// The `buffer` key of a sink, decoded on its own so its errors read `setting 'buffer.x'`.
public struct SinkBufferEnvelope: StageConfig {
    public var buffer = SinkBufferSettings()

    public static let settings = SettingsSchema<SinkBufferEnvelope>(
        .section("buffer", \.buffer, "How many batches wait in front of the sink, what happens when they are all taken, "
                 + "and whether a disk spool isolates it from the rest of the pipeline.")
    )

    public init() {}

    /// Splits a sink's settings into its `buffer` part and the rest.
    public static func split(_ settings: Node) -> (buffer: Node, rest: Node) {
        let (selected, rest) = ConfigDecoding.split(settings, key: "buffer")
        return (selected, rest)
    }
}
