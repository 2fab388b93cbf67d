import Yams

/// `buffer:` on any sink: how many batches wait in front of it, what happens when they are all
/// taken, and whether a disk spool isolates it from the rest of the pipeline.
public struct SinkBufferSettings: Sendable, Decodable {
    public enum WhenFull: String, ConfigEnum {
        /// Upstream waits (backpressure reaches the sources, which stop reading; nothing is lost).
        case block
        /// The batch that does not fit is dropped for this sink only, counted, and acknowledged.
        case dropNewest = "drop_newest"
    }

    /// Batches held in memory in front of the sink (default: the pipeline's `buffer_batches`).
    public var maxBatches: Int?
    public var whenFull: WhenFull = .block
    /// Spool batches to disk in front of this sink: upstream is acknowledged once a batch is on
    /// disk, so a dead or slow sink does not hold back the others; the spool feeds the sink and
    /// retries failed writes, across restarts.
    public var isolate = false
    /// Most bytes the spool may hold; beyond it `when_full` applies.
    public var maxSpoolBytes = ByteSize(bytes: 256 << 20)
    /// First delay before a failed write is tried again (doubles up to 30 s).
    public var retryBackoff = ConfigDuration(milliseconds: 500)

    enum CodingKeys: String, CodingKey, CaseIterable {
        case maxBatches = "max_batches", whenFull = "when_full", isolate, maxSpoolBytes = "max_spool_bytes",
             retryBackoff = "retry_backoff"
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        maxBatches = try c.decodeIfPresent(Int.self, forKey: .maxBatches)
        whenFull = try c.decodeIfPresent(WhenFull.self, forKey: .whenFull) ?? whenFull
        isolate = try c.decodeIfPresent(Bool.self, forKey: .isolate) ?? isolate
        maxSpoolBytes = try c.decodeIfPresent(ByteSize.self, forKey: .maxSpoolBytes) ?? maxSpoolBytes
        retryBackoff = try c.decodeIfPresent(ConfigDuration.self, forKey: .retryBackoff) ?? retryBackoff
        if let maxBatches, !(1...4096).contains(maxBatches) {
            throw SettingError(codingPath: c.codingPath + [CodingKeys.maxBatches], message: "\(maxBatches) is out of range",
                               expected: "a whole number from 1 to 4096")
        }
        if maxSpoolBytes.bytes < 1 << 20 {
            throw SettingError(codingPath: c.codingPath + [CodingKeys.maxSpoolBytes], message: "\(maxSpoolBytes) is too small",
                               expected: "at least 1MiB")
        }
    }
}

/// The `buffer` key of a sink, decoded on its own so its errors read `setting 'buffer.x'`.
public struct SinkBufferEnvelope: StageConfig {
    public var buffer: SinkBufferSettings

    public enum CodingKeys: String, CodingKey, CaseIterable { case buffer }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        buffer = try c.decodeIfPresent(SinkBufferSettings.self, forKey: .buffer) ?? SinkBufferSettings()
    }

    /// Splits a sink's settings into its `buffer` part and the rest.
    public static func split(_ settings: Node) -> (buffer: Node, rest: Node) {
        let (selected, rest) = ConfigDecoding.split(settings, key: CodingKeys.buffer.rawValue)
        return (selected, rest)
    }
}
