#if canImport(Glibc)
import Glibc
#endif
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `file`: lines from the files matching `include` globs (minus `exclude`).
struct FileSource: SourceKind {
    struct Config: StageConfig {
        var include: [String]
        var exclude: [String] = []
        var logGroup: String?
        /// Defaults to the file's path.
        var logStream: String?
        var maxLineBytes: ByteSize = ByteSize(bytes: 256 << 10)

        enum CodingKeys: String, CodingKey, CaseIterable {
            case include, exclude, logGroup = "log_group", logStream = "log_stream", maxLineBytes = "max_line_bytes"
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
        }
    }

    static let type = "file"
    static let summary = "Lines from files matching glob patterns."
    static func produces(_ config: Config) -> Set<EventKind> { [.log] }

    static func make(_ config: Config, _ context: StageContext) throws -> any Source {
        Runner(config: config, logGroup: config.logGroup ?? context.id, log: context.log, id: context.id)
    }

    final class Runner: TrailwatchRuntime.Source {
        let config: Config
        let logGroup: String
        let log: RuntimeLog
        let id: String

        init(config: Config, logGroup: String, log: RuntimeLog, id: String) {
            self.config = config
            self.logGroup = logGroup
            self.log = log
            self.id = id
        }

        func run(_ output: SourceOutput) throws {
            let paths = PathGlob.expand(include: config.include, exclude: config.exclude)
            if paths.isEmpty {
                log.log(.warning, id, "no file matches " + config.include.joined(separator: ", "))
            }
            for path in paths {
                if output.isStopping { break }
                let fd = open(path, O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else {
                    output.metrics.recordError()
                    log.log(.error, id, "\(SourceError.open(path: path, errno: errno))")
                    continue
                }
                defer { close(fd) }
                posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_SEQUENTIAL))
                let origin = Origin(logGroup: logGroup, logStream: config.logStream ?? path)
                var reader = LineReader(fd: fd, origin: origin, maxLineBytes: config.maxLineBytes.bytes, chunkSize: SourceLimits.chunkSize)
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
