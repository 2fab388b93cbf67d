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
        var include: [String] = []
        var exclude: [String] = []
        var logGroup: String?
        var maxLineBytes = SourceLimits.defaultLineCap
        var decryptionKeyEnv: [String] = []
        var decryptionKeyFile: [String] = []

        static let settings = SettingsSchema<Config>(
            .strings("include", \.include, "Paths or globs of archive files (`**` for any depth); a single string or a list. "
                     + "`.jsonl.zst`, `.zst`, `.gz` and plain files are told apart by their first bytes and read in time order "
                     + "(the start time in archive names, then path).", required: true),
            .setting("exclude", \.exclude, "Globs of paths to skip."),
            .setting("log_group", \.logGroup, "Log group of plain lines (trailwatch records keep their own group and stream).",
                     default: "the component id"),
            SourceLimits.maxLineBytesSetting(\.maxLineBytes),
            .strings("decryption_key_env", \.decryptionKeyEnv, "Environment variables holding keys (base64: AES-256 or X25519 private) "
                     + "for [encrypted archives](#encryption-at-rest); each file's header picks its key."),
            .strings("decryption_key_file", \.decryptionKeyFile, "Files holding such keys.")
        )
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
            let maxLineBytes = config.maxLineBytes.bytes
            // Two parsers work on alternate chunks of lines at once; batches go out in file order.
            let parsers = [RecordChunkParser(maxLineBytes: maxLineBytes), RecordChunkParser(maxLineBytes: maxLineBytes)]
            for (path, size) in zip(files.paths, files.sizes) {
                if output.isStopping { break }
                let plainOrigin = Origin(logGroup: config.logGroup ?? context.id, logStream: path)
                let now = MonotonicClock.wallMillis()
                var assembler = ArchiveLineAssembler(maxLineBytes: maxLineBytes)
                var chunks: [ArchiveChunk] = []
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
                        chunks.append(contentsOf: assembler.append(piece))
                        launch(all: false)
                    }
                } catch {
                    failure = error
                }
                // A damaged file's cut-off last line is not a record; a plain file's last line counts.
                chunks.append(contentsOf: assembler.finish(cleanEnd: failure == nil))
                launch(all: true)
                collect()
                if let failure {
                    // Every complete record before the damage went out; say where it stopped.
                    output.metrics.recordDamage()
                    context.log.log(.error, context.id, "\(path): \(failure) (\(records) records read before it)")
                }
                progress.advance(bytes: size, file: true)
            }
        }
    }
}

/// What the reading thread hands a parser: complete lines, or pieces of one line too long to be a
/// record (sent on as split events like the file source's, never truncated).
enum ArchiveChunk: Sendable {
    case lines([UInt8])
    case pieces([UInt8], startsLine: Bool, endsLine: Bool)
}

/// Cuts decompressed bytes into chunks of whole lines for the parsers. A line longer than
/// ``recordLimit`` cannot be a record and is passed on in pieces as it arrives, so memory stays
/// bounded whatever the input (a 500 MB run of zeros without a newline included), and every byte
/// is scanned for newlines once.
struct ArchiveLineAssembler {
    let maxLineBytes: Int
    /// Longest line kept whole to be parsed as a record.
    let recordLimit: Int
    private var current: [UInt8] = []
    /// Where the unfinished last line starts in `current`.
    private var lineStart = 0
    /// Bytes of `current` already searched for newlines.
    private var scanned = 0
    /// Inside a line longer than the limit whose first pieces went out.
    private var inLongLine = false

    static func recordLimit(maxLineBytes: Int) -> Int { Swift.max(16 << 20, 4 * maxLineBytes + (1 << 20)) }

    init(maxLineBytes: Int) {
        self.maxLineBytes = maxLineBytes
        recordLimit = ArchiveLineAssembler.recordLimit(maxLineBytes: maxLineBytes)
        current.reserveCapacity(RecordChunkParser.chunkBytes + (256 << 10))
    }

    mutating func append(_ piece: UnsafeRawBufferPointer) -> [ArchiveChunk] {
        current.append(contentsOf: piece.assumingMemoryBound(to: UInt8.self))
        var out: [ArchiveChunk] = []
        while true {
            if inLongLine {
                if let lf = nextNewline() {
                    var end = lf
                    if end > 0 && current[end - 1] == 0x0D { end -= 1 }
                    out.append(.pieces(Array(current[0..<end]), startsLine: false, endsLine: true))
                    current.removeSubrange(0...lf)
                    inLongLine = false
                    lineStart = 0
                    scanned = 0
                    continue
                }
                // Send whole pieces, keep less than one (the next bytes may finish the line).
                if current.count > 2 * maxLineBytes {
                    let cut = wholePieces()
                    out.append(.pieces(Array(current[0..<cut]), startsLine: false, endsLine: false))
                    current.removeSubrange(0..<cut)
                    scanned = current.count
                }
                return out
            }
            while let lf = nextNewline() { lineStart = lf + 1 }
            if current.count >= RecordChunkParser.chunkBytes && lineStart > 0 {
                // Hand the block over as it is; only the unfinished line is copied.
                var next: [UInt8] = []
                next.reserveCapacity(RecordChunkParser.chunkBytes + (256 << 10))
                next.append(contentsOf: current[lineStart...])
                current.removeSubrange(lineStart...)
                out.append(.lines(current))
                current = next
                scanned -= lineStart
                lineStart = 0
            }
            if current.count - lineStart > recordLimit {
                if lineStart > 0 {
                    out.append(.lines(Array(current[0..<lineStart])))
                    current.removeSubrange(0..<lineStart)
                    scanned -= lineStart
                    lineStart = 0
                }
                let cut = wholePieces()
                out.append(.pieces(Array(current[0..<cut]), startsLine: true, endsLine: false))
                current.removeSubrange(0..<cut)
                scanned = current.count
                inLongLine = true
                continue
            }
            return out
        }
    }

    /// The length of the pieces the file source would cut from `current` (which holds no newline)
    /// before it has to wait for more input: pieces end where ``LineFramer`` ends them, so a line is
    /// split the same way whatever size the decompressed blocks come in.
    private func wholePieces() -> Int {
        current.withUnsafeBytes { raw -> Int in
            var cut = 0
            while raw.count - cut > maxLineBytes {
                cut += LineFramer.pieceLength(raw.baseAddress! + cut, available: raw.count - cut, limit: maxLineBytes)
            }
            return cut
        }
    }

    /// The next newline at or after `scanned`, advancing `scanned` past it (or to the end).
    private mutating func nextNewline() -> Int? {
        guard scanned < current.count else { return nil }
        let hit = current.withUnsafeBytes { raw -> Int? in
            guard let p = memchr(raw.baseAddress! + scanned, 0x0A, raw.count - scanned) else { return nil }
            return raw.baseAddress!.distance(to: UnsafeRawPointer(p))
        }
        scanned = hit.map { $0 + 1 } ?? current.count
        return hit
    }

    /// The rest at the end of the input. After damage the cut-off last line is dropped (it is not a
    /// record), unless its first pieces already went out.
    mutating func finish(cleanEnd: Bool) -> [ArchiveChunk] {
        defer { current = []; lineStart = 0; scanned = 0; inLongLine = false }
        if inLongLine {
            var end = current.count
            if end > 0 && current[end - 1] == 0x0D { end -= 1 }
            return [.pieces(Array(current[0..<end]), startsLine: false, endsLine: true)]
        }
        while let lf = nextNewline() { lineStart = lf + 1 }
        if cleanEnd {
            // A plain file may end without a newline; its last line still counts.
            if let last = current.last, last != 0x0A { current.append(0x0A) }
        } else {
            current.removeSubrange(lineStart...)
        }
        return current.isEmpty ? [] : [.lines(current)]
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

    func parse(_ chunk: ArchiveChunk, now: Int64, plainOrigin: Origin) -> [LogBatch] {
        var builder = LogBatchBuilder()
        var out: [LogBatch] = []
        switch chunk {
        case .lines(let bytes):
            parseLines(bytes, now: now, plainOrigin: plainOrigin, builder: &builder, out: &out)
        case .pieces(let bytes, let startsLine, let endsLine):
            bytes.withUnsafeBytes { raw in
                appendPieces(raw, startsLine: startsLine, endsLine: endsLine, now: now, origin: plainOrigin, builder: &builder, out: &out)
            }
        }
        if let rest = builder.take() { out.append(rest) }
        return out
    }

    private func parseLines(_ chunk: [UInt8], now: Int64, plainOrigin: Origin, builder: inout LogBatchBuilder, out: inout [LogBatch]) {
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
                } else if line.count > maxLineBytes {
                    // A plain line longer than the cap: pieces flagged split, as the file source cuts them.
                    appendPieces(line, startsLine: true, endsLine: true, now: now, origin: plainOrigin, builder: &builder, out: &out)
                    continue
                } else {
                    finished = builder.append(line, timestamp: now, ingestionTime: now, origin: plainOrigin)
                }
                if let finished { out.append(finished) }
            }
        }
    }

    /// Cuts (part of) one plain line into events of at most `maxLineBytes`, on character boundaries:
    /// every piece flagged `split`, all but the line's first also `continuation`.
    private func appendPieces(_ bytes: UnsafeRawBufferPointer, startsLine: Bool, endsLine: Bool, now: Int64, origin: Origin,
                              builder: inout LogBatchBuilder, out: inout [LogBatch]) {
        guard let base = bytes.baseAddress else {
            if endsLine && !startsLine, let f = builder.append(bytes, timestamp: now, ingestionTime: now, origin: origin, flags: [.split, .continuation]) { out.append(f) }
            return
        }
        var offset = 0
        var first = startsLine
        while offset < bytes.count || (first && endsLine) {
            let length = LineFramer.pieceLength(base + offset, available: bytes.count - offset, limit: maxLineBytes)
            let flags: EventFlags = first ? (endsLine && length == bytes.count ? [] : .split) : [.split, .continuation]
            if let f = builder.append(UnsafeRawBufferPointer(start: base + offset, count: length), timestamp: now, ingestionTime: now,
                                      origin: origin, flags: flags) { out.append(f) }
            offset += length
            first = false
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
