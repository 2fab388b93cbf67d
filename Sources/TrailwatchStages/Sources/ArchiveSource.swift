#if canImport(Glibc)
import Glibc
#endif
import ByteJSON
import Foundation
import TrailwatchArchive
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `archive`: replays archived records (`.jsonl.zst`, `.zst`, `.gz` or plain files) in time
/// order, restoring each event's time, ingestion time, log group and stream, fields and flags.
/// Lines that are not trailwatch records are read as plain log lines.
struct ArchiveSource: SourceKind {
    struct Config: StageConfig {
        var include: [String]
        var exclude: [String] = []
        /// For plain lines (not records): their log group; records keep their own.
        var logGroup: String?
        var maxLineBytes = ByteSize(bytes: 256 << 10)

        enum CodingKeys: String, CodingKey, CaseIterable {
            case include, exclude, logGroup = "log_group", maxLineBytes = "max_line_bytes"
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            include = try c.decodeStringList(.include)
            exclude = try c.decodeIfPresent([String].self, forKey: .exclude) ?? []
            logGroup = try c.decodeIfPresent(String.self, forKey: .logGroup)
            maxLineBytes = try c.decodeIfPresent(ByteSize.self, forKey: .maxLineBytes) ?? maxLineBytes
            try SourceLimits.checkLineCap(maxLineBytes, c.codingPath + [CodingKeys.maxLineBytes])
        }
    }

    static let type = "archive"
    static let summary = "Replays archived records (.jsonl.zst, .zst, .gz, plain) in time order."
    static func produces(_ config: Config) -> Set<EventKind> { [.log] }

    static func make(_ config: Config, _ context: StageContext) throws -> any Source {
        Runner(config: config, context: context)
    }

    /// Archive files in time order: by the start time in CloudTrail-style names, then by path.
    static func ordered(_ paths: [String]) -> [String] {
        func start(_ path: String) -> String {
            let name = (path as NSString).lastPathComponent
            let parts = name.split(separator: "_")
            return parts.first { $0.count == 16 && $0.hasSuffix("Z") && $0.dropFirst(8).first == "T" }.map(String.init) ?? ""
        }
        return paths.map { (start($0), $0) }.sorted { $0 < $1 }.map(\.1)
    }

    final class Runner: TrailwatchRuntime.Source {
        let config: Config
        let context: StageContext
        let decoder = RecordDecoder()

        init(config: Config, context: StageContext) {
            self.config = config
            self.context = context
        }

        func run(_ output: SourceOutput) throws {
            let paths = ArchiveSource.ordered(PathGlob.expand(include: config.include, exclude: config.exclude)
                .filter { !$0.hasSuffix(".partial") })
            if paths.isEmpty { context.log.log(.warning, context.id, "no file matches " + config.include.joined(separator: ", ")) }
            let sizes = paths.map { path -> Int64 in
                var st = stat()
                return stat(path, &st) == 0 ? Int64(st.st_size) : 0
            }
            let progress = ProgressMeter(label: context.id, totalFiles: paths.count, totalBytes: sizes.reduce(0, +), enabled: context.once)
            var builder = LogBatchBuilder()
            for (path, size) in zip(paths, sizes) {
                if output.isStopping { break }
                let plainOrigin = Origin(logGroup: config.logGroup ?? context.id, logStream: path)
                let now = MonotonicClock.wallMillis()
                var count = 0
                do {
                    try ArchiveReader(path: path).lines { line in
                        if output.isStopping { return }
                        count += 1
                        var cut = line
                        if cut.count > config.maxLineBytes.bytes { cut = UnsafeRawBufferPointer(rebasing: line[0..<config.maxLineBytes.bytes]) }
                        let finished: LogBatch?
                        if let record = decoder.decode(line) {
                            finished = record.message.withUnsafeBytes {
                                builder.append($0, timestamp: record.timestamp, ingestionTime: record.ingestionTime ?? now,
                                               origin: record.origin, flags: record.flags, fields: record.fields)
                            }
                        } else {
                            finished = builder.append(cut, timestamp: now, ingestionTime: now, origin: plainOrigin,
                                                      flags: cut.count < line.count ? [.split] : [])
                        }
                        if let finished {
                            output.emit(Batch(.logs(finished)))
                            progress.advance(events: finished.count)
                        }
                    }
                } catch {
                    // Every complete record before the damage went out; say where it stopped.
                    output.metrics.recordError()
                    context.log.log(.error, context.id, "\(error) (\(count) records read before it)")
                }
                if let rest = builder.take() {
                    output.emit(Batch(.logs(rest)))
                    progress.advance(events: rest.count)
                }
                progress.advance(bytes: size, file: true)
            }
        }
    }
}

/// Decodes the JSON-lines record shape trailwatch writes (``LogRecordEncoder``).
final class RecordDecoder {
    struct Record {
        var timestamp: Int64
        var ingestionTime: Int64?
        var origin: Origin
        var message: [UInt8]
        var flags: EventFlags
        var fields: Fields?
    }

    private let lookup: JSONMultiLookup
    private var results: [JSONLookup] = []
    private var lastGroup: ([UInt8], String) = ([], "")
    private var lastStream: ([UInt8], String) = ([], "")

    init() {
        lookup = JSONMultiLookup(["$.timestamp", "$.group", "$.stream", "$.message", "$.ingestion_time", "$.fields", "$.flags"]
            .map { try! JSONPath($0) })
    }

    func decode(_ line: UnsafeRawBufferPointer) -> Record? {
        guard line.count > 14, line[0] == UInt8(ascii: "{") else { return nil }
        guard lookup.resolve(in: line, into: &results) == .object,
              let timeText = results[0].stringBytes(in: line),
              let timestamp = timeText.withUnsafeBytes({ Timestamps.parseISO8601($0) }),
              let message = results[3].stringBytes(in: line) else { return nil }
        let group = cached(results[1].stringBytes(in: line) ?? [], &lastGroup)
        let stream = cached(results[2].stringBytes(in: line) ?? [], &lastStream)
        let ingestion = results[4].stringBytes(in: line).flatMap { $0.withUnsafeBytes { Timestamps.parseISO8601($0) } }
        var fields: Fields?
        if case .object(let range) = results[5], let value = try? JSONValue.parse(UnsafeRawBufferPointer(rebasing: line[range])),
           case .object(let members) = value {
            fields = Fields(members.map { member in
                switch member.value {
                case .string(let s): (member.key, .string(s))
                case .number(let d, _): (member.key, .number(d))
                case .bool(let b): (member.key, .bool(b))
                case .null: (member.key, .null)
                default: (member.key, FieldValue.json({ var out: [UInt8] = []; JSONWriter.append(member.value, to: &out); return out }()))
                }
            })
        }
        var flags: EventFlags = []
        if case .array(let range) = results[6] {
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: line[range]), as: UTF8.self)
            if text.contains("\"split\"") { flags.insert(.split) }
            if text.contains("\"continuation\"") { flags.insert(.continuation) }
            if text.contains("\"invalid_utf8\"") { flags.insert(.invalidUTF8) }
            if text.contains("\"timestamp_fallback\"") { flags.insert(.timestampFallback) }
        }
        return Record(timestamp: timestamp, ingestionTime: ingestion, origin: Origin(logGroup: group, logStream: stream),
                      message: message, flags: flags, fields: fields)
    }

    private func cached(_ bytes: [UInt8], _ cache: inout ([UInt8], String)) -> String {
        if bytes == cache.0 { return cache.1 }
        cache = (bytes, String(decoding: bytes, as: UTF8.self))
        return cache.1
    }
}
