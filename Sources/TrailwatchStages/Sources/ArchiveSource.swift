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
        /// Environment variables and files holding keys for encrypted archives (base64).
        var decryptionKeyEnv: [String] = []
        var decryptionKeyFile: [String] = []

        enum CodingKeys: String, CodingKey, CaseIterable {
            case include, exclude, logGroup = "log_group", maxLineBytes = "max_line_bytes"
            case decryptionKeyEnv = "decryption_key_env", decryptionKeyFile = "decryption_key_file"
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            include = try c.decodeStringList(.include)
            exclude = try c.decodeIfPresent([String].self, forKey: .exclude) ?? []
            logGroup = try c.decodeIfPresent(String.self, forKey: .logGroup)
            maxLineBytes = try c.decodeIfPresent(ByteSize.self, forKey: .maxLineBytes) ?? maxLineBytes
            try SourceLimits.checkLineCap(maxLineBytes, c.codingPath + [CodingKeys.maxLineBytes])
            decryptionKeyEnv = try c.decodeStringListIfPresent(.decryptionKeyEnv) ?? []
            decryptionKeyFile = try c.decodeStringListIfPresent(.decryptionKeyFile) ?? []
        }
    }

    static let type = "archive"
    static let summary = "Replays archived records (.jsonl.zst, .zst, .gz, plain) in time order."
    static func produces(_ config: Config) -> Set<EventKind> { [.log] }

    static func make(_ config: Config, _ context: StageContext) throws -> any Source {
        let keys = try ArchiveKeyring.load(environmentVariables: config.decryptionKeyEnv, files: config.decryptionKeyFile)
        return Runner(config: config, keys: keys, context: context)
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
        let keys: ArchiveKeyring

        init(config: Config, keys: ArchiveKeyring, context: StageContext) {
            self.config = config
            self.keys = keys
            self.context = context
        }

        func run(_ output: SourceOutput) throws {
            let files = BatchInputFiles(include: config.include, exclude: config.exclude, context: context, order: ArchiveSource.ordered)
            let progress = files.progress(context)
            // Two parsers work on alternate chunks of lines at once; batches go out in file order.
            let parsers = [RecordChunkParser(maxLineBytes: config.maxLineBytes.bytes), RecordChunkParser(maxLineBytes: config.maxLineBytes.bytes)]
            for (path, size) in zip(files.paths, files.sizes) {
                if output.isStopping { break }
                let plainOrigin = Origin(logGroup: config.logGroup ?? context.id, logStream: path)
                let now = MonotonicClock.wallMillis()
                var chunks: [[UInt8]] = []
                var current: [UInt8] = []
                current.reserveCapacity(RecordChunkParser.chunkBytes + (256 << 10))
                var records = 0
                // While one round of chunks is parsed on worker threads, the next is decompressed here.
                var inFlight: (group: DispatchGroup, results: ParseResults)?
                func collect() {
                    guard let (group, results) = inFlight else { return }
                    group.wait()
                    for batches in results.slots {
                        for batch in batches {
                            records += batch.count
                            output.emit(Batch(.logs(batch)))
                            progress.advance(events: batch.count)
                        }
                    }
                    results.release()
                    inFlight = nil
                }
                func launch(all: Bool) {
                    while chunks.count >= parsers.count || (all && !chunks.isEmpty) {
                        let round = Array(chunks.prefix(parsers.count))
                        chunks.removeFirst(round.count)
                        collect()
                        let results = ParseResults(count: round.count)
                        let group = DispatchGroup()
                        for k in round.indices {
                            let parser = parsers[k], chunk = round[k]
                            DispatchQueue.global().async(group: group) {
                                results.slots[k] = parser.parse(chunk, now: now, plainOrigin: plainOrigin)
                            }
                        }
                        inFlight = (group, results)
                    }
                }
                var failure: Error?
                do {
                    try ArchiveReader(path: path, keys: keys).read { piece in
                        if output.isStopping { return }
                        current.append(contentsOf: piece.assumingMemoryBound(to: UInt8.self))
                        if current.count >= RecordChunkParser.chunkBytes, let lastLF = current.lastIndex(of: 0x0A) {
                            // Hand the block over as it is; only the unfinished line is copied.
                            var next: [UInt8] = []
                            next.reserveCapacity(RecordChunkParser.chunkBytes + (256 << 10))
                            next.append(contentsOf: current[(lastLF + 1)...])
                            current.removeSubrange((lastLF + 1)...)
                            chunks.append(current)
                            current = next
                            launch(all: false)
                        }
                    }
                    // A plain file may end without a newline; its last line still counts.
                    if let last = current.last, last != 0x0A { current.append(0x0A) }
                } catch {
                    failure = error
                    // A cut-off last line of a damaged file is not a record.
                    if let lastLF = current.lastIndex(of: 0x0A) { current.removeSubrange(current.index(after: lastLF)...) } else { current = [] }
                }
                if !current.isEmpty { chunks.append(current) }
                launch(all: true)
                collect()
                if let failure {
                    // Every complete record before the damage went out; say where it stopped.
                    output.metrics.recordError()
                    context.log.log(.error, context.id, "\(path): \(failure) (\(records) records read before it)")
                }
                progress.advance(bytes: size, file: true)
            }
        }
    }
}

/// Result slots for parallel parsing: each thread writes only its own slot.
final class ParseResults: @unchecked Sendable {
    let slots: UnsafeMutableBufferPointer<[LogBatch]>
    init(count: Int) {
        slots = .allocate(capacity: count)
        slots.initialize(repeating: [])
    }
    func release() {
        slots.deinitialize()
        slots.deallocate()
    }
}

/// Turns a block of complete lines into log batches: trailwatch records (fast path first),
/// other JSON records, or plain lines. One per parsing thread.
final class RecordChunkParser: @unchecked Sendable {
    static let chunkBytes = 2 << 20
    let maxLineBytes: Int
    let decoder = RecordDecoder()
    let fastParser = FastRecordParser()

    init(maxLineBytes: Int) { self.maxLineBytes = maxLineBytes }

    func parse(_ chunk: [UInt8], now: Int64, plainOrigin: Origin) -> [LogBatch] {
        var builder = LogBatchBuilder()
        var out: [LogBatch] = []
        chunk.withUnsafeBytes { raw in
            var start = 0
            while start < raw.count {
                guard let hit = memchr(raw.baseAddress! + start, 0x0A, raw.count - start) else { break }
                let end = raw.baseAddress!.distance(to: UnsafeRawPointer(hit))
                var stop = end
                if stop > start && raw[stop - 1] == 0x0D { stop -= 1 }
                let line = UnsafeRawBufferPointer(rebasing: raw[start..<stop])
                start = end + 1
                let finished: LogBatch?
                if let fast = fastParser.parse(line) {
                    finished = fastParser.append(fast, line: line, to: &builder, now: now)
                } else if let record = decoder.decode(line) {
                    finished = record.message.withUnsafeBytes {
                        builder.append($0, timestamp: record.timestamp, ingestionTime: record.ingestionTime ?? now,
                                       origin: record.origin, flags: record.flags, fields: record.fields)
                    }
                } else {
                    let cut = line.count > maxLineBytes ? UnsafeRawBufferPointer(rebasing: line[0..<maxLineBytes]) : line
                    finished = builder.append(cut, timestamp: now, ingestionTime: now, origin: plainOrigin,
                                              flags: cut.count < line.count ? [.split] : [])
                }
                if let finished { out.append(finished) }
            }
        }
        if let rest = builder.take() { out.append(rest) }
        return out
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

/// The records trailwatch itself writes have a fixed key order (timestamp, group, stream,
/// message, ingestion_time); this reads exactly that layout without a general JSON scan and
/// copies messages without escapes straight into the batch. Anything else (fields, flags, other
/// layouts) goes to ``RecordDecoder``.
final class FastRecordParser {
    struct Parsed {
        var timestamp: Range<Int>
        var group: Range<Int>
        var stream: Range<Int>
        var message: Range<Int>
        var messageEscaped: Bool
        var ingestion: Range<Int>
    }

    private var scratch: [UInt8] = []
    /// Decoded bytes of the last escaped message (valid until the next parse).
    private var decoded = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 16)
    private var decodedCapacity = 1 << 16
    private var decodedCount = 0
    private var decodedOK = false

    deinit { decoded.deallocate() }

    /// Scans the message string in one pass, decoding the simple escapes into `decoded` as it goes.
    private func scanMessage(_ line: UnsafeRawBufferPointer, _ at: inout Int) -> (Range<Int>, Bool)? {
        let p = line.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let start = at
        let n = line.count
        if n - start > decodedCapacity {
            decoded.deallocate()
            decodedCapacity = n - start
            decoded = .allocate(capacity: decodedCapacity)
        }
        var i = start
        var out = 0
        var escaped = false
        decodedOK = true
        while i < n {
            let c = p[i]
            if c == 0x22 {
                at = i + 1
                decodedCount = out
                return (start..<i, escaped)
            }
            if c == 0x5C {
                escaped = true
                guard i + 1 < n else { return nil }
                switch p[i + 1] {
                case 0x22: decoded[out] = 0x22
                case 0x5C: decoded[out] = 0x5C
                case UInt8(ascii: "n"): decoded[out] = 0x0A
                case UInt8(ascii: "r"): decoded[out] = 0x0D
                case UInt8(ascii: "t"): decoded[out] = 0x09
                case UInt8(ascii: "/"): decoded[out] = 0x2F
                default:
                    // \u…: the general decoder takes it; keep scanning for the closing quote.
                    decodedOK = false
                    decoded[out] = p[i + 1]
                }
                out += 1
                i += 2
                continue
            }
            decoded[out] = c
            out += 1
            i += 1
        }
        return nil
    }
    private var times: [(text: [UInt8], ms: Int64)] = [([], 0), ([], 0)]
    private var lastGroup: ([UInt8], String) = ([], "")
    private var lastStream: ([UInt8], String) = ([], "")

    private static func expect(_ line: UnsafeRawBufferPointer, _ at: inout Int, _ literal: StaticString) -> Bool {
        let n = literal.utf8CodeUnitCount
        guard at + n <= line.count, memcmp(line.baseAddress! + at, literal.utf8Start, n) == 0 else { return false }
        at += n
        return true
    }

    /// A JSON string body starting at `at` (after the opening quote): its range and whether it has escapes.
    private static func string(_ line: UnsafeRawBufferPointer, _ at: inout Int) -> (Range<Int>, Bool)? {
        let base = line.baseAddress!
        let start = at
        var escaped = false
        var position = at
        while true {
            guard position < line.count, let hit = memchr(base + position, 0x22, line.count - position) else { return nil }
            let quote = base.distance(to: UnsafeRawPointer(hit))
            var backslashes = 0
            var k = quote - 1
            while k >= start && line[k] == 0x5C { backslashes += 1; k -= 1 }
            if backslashes % 2 == 0 {
                if !escaped { escaped = memchr(base + start, 0x5C, quote - start) != nil }
                at = quote + 1
                return (start..<quote, escaped)
            }
            escaped = true
            position = quote + 1
        }
    }

    static func same(_ a: [UInt8], _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard let other = b.baseAddress, !a.isEmpty else { return true }
        return a.withUnsafeBytes { memcmp($0.baseAddress!, other, b.count) == 0 }
    }

    func parse(_ line: UnsafeRawBufferPointer) -> Parsed? {
        guard line.count > 100, line.baseAddress != nil else { return nil }
        var at = 0
        guard FastRecordParser.expect(line, &at, #"{"timestamp":""#) else { return nil }
        let tsStart = at
        at += 24
        guard FastRecordParser.expect(line, &at, #"","group":""#) else { return nil }
        let timestamp = tsStart..<(tsStart + 24)
        guard let (group, groupEscaped) = FastRecordParser.string(line, &at), !groupEscaped,
              FastRecordParser.expect(line, &at, #","stream":""#),
              let (stream, streamEscaped) = FastRecordParser.string(line, &at), !streamEscaped,
              FastRecordParser.expect(line, &at, #","message":""#),
              let (message, messageEscaped) = scanMessage(line, &at),
              FastRecordParser.expect(line, &at, #","ingestion_time":""#) else { return nil }
        let ingestion = at..<(at + 24)
        at += 24
        guard FastRecordParser.expect(line, &at, #""}"#), at == line.count else { return nil }
        return Parsed(timestamp: timestamp, group: group, stream: stream, message: message, messageEscaped: messageEscaped, ingestion: ingestion)
    }

    private func time(_ line: UnsafeRawBufferPointer, _ range: Range<Int>, slot: Int) -> Int64? {
        let text = UnsafeRawBufferPointer(rebasing: line[range])
        if FastRecordParser.same(times[slot].text, text) { return times[slot].ms }
        guard let ms = Timestamps.parseISO8601(text) else { return nil }
        times[slot] = (Array(text), ms)
        return ms
    }

    private func name(_ line: UnsafeRawBufferPointer, _ range: Range<Int>, _ cache: inout ([UInt8], String)) -> String {
        let bytes = UnsafeRawBufferPointer(rebasing: line[range])
        if FastRecordParser.same(cache.0, bytes) { return cache.1 }
        cache = (Array(bytes), String(decoding: bytes, as: UTF8.self))
        return cache.1
    }

    func append(_ record: Parsed, line: UnsafeRawBufferPointer, to builder: inout LogBatchBuilder, now: Int64) -> LogBatch? {
        let timestamp = time(line, record.timestamp, slot: 0) ?? now
        let ingestion = time(line, record.ingestion, slot: 1) ?? now
        let origin = Origin(logGroup: name(line, record.group, &lastGroup), logStream: name(line, record.stream, &lastStream))
        if !record.messageEscaped {
            return builder.append(UnsafeRawBufferPointer(rebasing: line[record.message]), timestamp: timestamp,
                                  ingestionTime: ingestion, origin: origin)
        }
        if decodedOK {
            return builder.append(UnsafeRawBufferPointer(start: decoded, count: decodedCount), timestamp: timestamp,
                                  ingestionTime: ingestion, origin: origin)
        }
        scratch.removeAll(keepingCapacity: true)
        let base = line.baseAddress!.assumingMemoryBound(to: UInt8.self)
        JSONStringDecoding.appendDecoded(base, record.message.lowerBound, record.message.upperBound, to: &scratch)
        return scratch.withUnsafeBytes { builder.append($0, timestamp: timestamp, ingestionTime: ingestion, origin: origin) }
    }
}
