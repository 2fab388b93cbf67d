/// The JSON-lines shape of a log event, shared by every sink that writes records
/// (console, file, archive) so that an archive replays into exactly what went in:
///
///     {"timestamp":"2026-11-24T10:00:00.000Z","group":"/app","stream":"host-1","message":"…",
///      "ingestion_time":"…","fields":{…},"flags":["split"]}
///
/// `fields` and `flags` appear only when present.
public enum LogRecordEncoder {
    public static func append(_ batch: LogBatch, event i: Int, includeIngestionTime: Bool = true, to out: inout ByteBuffer) {
        out.append(contentsOf: #"{"timestamp":""#.utf8)
        Timestamps.appendISO8601(batch.timestamp(i), to: &out)
        out.append(contentsOf: #"","group":"#.utf8)
        let origin = batch.origin(i)
        JSONEscaping.appendString(origin.logGroup, to: &out)
        out.append(contentsOf: #","stream":"#.utf8)
        JSONEscaping.appendString(origin.logStream, to: &out)
        out.append(contentsOf: #","message":"#.utf8)
        let replaced = JSONEscaping.appendString(batch.message(i), to: &out)
        if includeIngestionTime {
            out.append(contentsOf: #","ingestion_time":""#.utf8)
            Timestamps.appendISO8601(batch.ingestionTime, to: &out)
            out.append(UInt8(ascii: "\""))
        }
        appendFieldsAndFlags(batch, event: i, extraFlags: replaced ? .invalidUTF8 : [], to: &out)
        out.append(UInt8(ascii: "}"))
    }

    /// `,"fields":{…}` and `,"flags":[…]` when the event has them. `extraFlags` adds what writing
    /// found (`invalid_utf8` when the message's invalid bytes were replaced).
    public static func appendFieldsAndFlags(_ batch: LogBatch, event i: Int, extraFlags: EventFlags = [], to out: inout ByteBuffer) {
        if let fields = batch.fields(i), !fields.entries.isEmpty {
            out.append(contentsOf: #","fields":"#.utf8)
            appendFields(fields, to: &out)
        }
        var flags = batch.flags(i)
        flags.formUnion(extraFlags)
        if !flags.isEmpty {
            out.append(contentsOf: #","flags":["#.utf8)
            for (k, name) in flags.names.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                JSONEscaping.appendString(name, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
    }

    public static func appendFields(_ fields: Fields, to out: inout ByteBuffer) {
        out.append(UInt8(ascii: "{"))
        for (k, entry) in fields.entries.enumerated() {
            if k > 0 { out.append(UInt8(ascii: ",")) }
            JSONEscaping.appendString(entry.name, to: &out)
            out.append(UInt8(ascii: ":"))
            appendValue(entry.value, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    public static func appendValue(_ value: FieldValue, to out: inout ByteBuffer) {
        switch value {
        case .string(let s): JSONEscaping.appendString(s, to: &out)
        case .number(let d): appendNumber(d, to: &out)
        case .bool(let b): out.append(b ? "true" : "false")
        case .null: out.append("null")
        case .json(let raw): out.append(contentsOf: raw)
        }
    }

    /// JSON has no NaN or infinity; they are written as null.
    public static func appendNumber(_ d: Double, to out: inout ByteBuffer) {
        if !d.isFinite { out.append("null"); return }
        if d == d.rounded(), abs(d) < 1e15 { out.appendDecimal(Int64(d)); return }
        out.append(d.description)
    }
}

/// JSON for every payload kind, one object per event: what console and file sinks write.
public enum EventEncoder {
    /// Appends event `i` of `payload` as one JSON object (no newline).
    public static func appendJSON(_ payload: Payload, event i: Int, to out: inout ByteBuffer) {
        switch payload {
        case .logs(let batch): LogRecordEncoder.append(batch, event: i, to: &out)
        case .metrics(let data): appendMetric(data[i], to: &out)
        case .events(_, let events): out.append(contentsOf: events[i].body)
        }
    }

    public static func appendMetric(_ d: MetricDatum, to out: inout ByteBuffer) {
        out.append(contentsOf: #"{"timestamp":""#.utf8)
        Timestamps.appendISO8601(d.timestamp, to: &out)
        out.append(contentsOf: #"","namespace":"#.utf8)
        JSONEscaping.appendString(d.metric.namespace, to: &out)
        out.append(contentsOf: #","metric_name":"#.utf8)
        JSONEscaping.appendString(d.metric.name, to: &out)
        out.append(contentsOf: #","dimensions":{"#.utf8)
        for (k, dim) in d.metric.dimensions.enumerated() {
            if k > 0 { out.append(UInt8(ascii: ",")) }
            JSONEscaping.appendString(dim.name, to: &out)
            out.append(UInt8(ascii: ":"))
            JSONEscaping.appendString(dim.value, to: &out)
        }
        out.append(contentsOf: #"},"period":"#.utf8)
        out.appendDecimal(Int64(d.period))
        if let unit = d.unit {
            out.append(contentsOf: #","unit":"#.utf8)
            JSONEscaping.appendString(unit, to: &out)
        }
        for (name, value) in [("sample_count", d.sampleCount), ("sum", d.sum), ("minimum", d.minimum), ("maximum", d.maximum), ("average", d.average)] {
            out.append(contentsOf: #",""#.utf8)
            out.append(name)
            out.append(contentsOf: #"":"#.utf8)
            LogRecordEncoder.appendNumber(value, to: &out)
        }
        out.append(UInt8(ascii: "}"))
    }
}

/// Encodes whole log batches as JSON lines, fast: the per-origin `group`/`stream` text and the
/// batch's ingestion time are rendered once, timestamps are cached while they repeat, and message
/// bytes are scanned eight at a time for anything that needs escaping.
public struct LogBatchJSONEncoder {
    private var lastTimestamp: Int64 = .min
    private var timestampText = ByteBuffer(reservingCapacity: 32)

    public init() {}

    /// Appends every event of `batch` as one JSON object and a newline.
    public mutating func append(_ batch: LogBatch, to out: inout ByteBuffer) {
        guard batch.count > 0 else { return }
        // `","group":"…","stream":"…","message":"` for each origin.
        var prefixes: [ByteBuffer] = []
        prefixes.reserveCapacity(batch.origins.count)
        for origin in batch.origins {
            var p = ByteBuffer(reservingCapacity: 64)
            p.append(contentsOf: #"","group":"#.utf8)
            JSONEscaping.appendString(origin.logGroup, to: &p)
            p.append(contentsOf: #","stream":"#.utf8)
            JSONEscaping.appendString(origin.logStream, to: &p)
            p.append(contentsOf: #","message":""#.utf8)
            prefixes.append(p)
        }
        var ingestion = ByteBuffer(reservingCapacity: 48)
        ingestion.append(contentsOf: #"","ingestion_time":""#.utf8)
        Timestamps.appendISO8601(batch.ingestionTime, to: &ingestion)
        ingestion.append(UInt8(ascii: "\""))
        out.reserveCapacity(out.count + batch.messageBytes + batch.count * (96 + prefixes[0].count))
        let simple = batch.fields.isEmpty && batch.flags.isEmpty
        let opening: StaticString = #"{"timestamp":""#
        let opener = UnsafeRawBufferPointer(start: opening.utf8Start, count: opening.utf8CodeUnitCount)
        let closing: StaticString = "}\n"
        let closer = UnsafeRawBufferPointer(start: closing.utf8Start, count: closing.utf8CodeUnitCount)
        for i in 0..<batch.count {
            out.append(opener)
            let ts = batch.timestamp(i)
            if ts != lastTimestamp {
                lastTimestamp = ts
                timestampText.removeAll()
                Timestamps.appendISO8601(ts, to: &timestampText)
            }
            timestampText.withUnsafeBytes { out.append($0) }
            let prefix = prefixes[batch.originIndices.isEmpty ? 0 : Int(batch.originIndices[i])]
            prefix.withUnsafeBytes { out.append($0) }
            let replaced = JSONEscaping.appendEscapedFast(batch.message(i), to: &out)
            ingestion.withUnsafeBytes { out.append($0) }
            if !simple {
                LogRecordEncoder.appendFieldsAndFlags(batch, event: i, extraFlags: replaced ? .invalidUTF8 : [], to: &out)
            } else if replaced {
                out.append(contentsOf: #","flags":["invalid_utf8"]"#.utf8)
            }
            out.append(closer)
        }
    }
}

extension JSONEscaping {
    /// ``appendEscaped(_:to:)`` with a word-at-a-time scan: eight bytes are checked at once for
    /// control bytes, `"`, `\` and non-ASCII, so long plain runs cost a load and a few operations.
    /// Returns true when invalid UTF-8 was replaced with U+FFFD.
    @discardableResult
    public static func appendEscapedFast(_ raw: UnsafeRawBufferPointer, to out: inout ByteBuffer) -> Bool {
        let n = raw.count
        guard let base = raw.baseAddress else { return false }
        var replaced = false
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quotes = ones &* 0x22
        let backslashes = ones &* 0x5C
        @inline(__always) func hasZero(_ x: UInt64) -> UInt64 { (x &- ones) & ~x & highs }
        var i = 0
        var runStart = 0
        @inline(__always) func flush(_ upTo: Int) {
            if upTo > runStart { out.append(UnsafeRawBufferPointer(start: base + runStart, count: upTo - runStart)) }
        }
        while i < n {
            if i + 8 <= n {
                let w = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                let special = ((w &- ones &* 0x20) & ~w & highs) | hasZero(w ^ quotes) | hasZero(w ^ backslashes) | (w & highs)
                if special == 0 { i += 8; continue }
            }
            let c = base.load(fromByteOffset: i, as: UInt8.self)
            if c >= 0x20 && c < 0x80 && c != UInt8(ascii: "\"") && c != UInt8(ascii: "\\") { i += 1; continue }
            if c < 0x80 {
                flush(i)
                switch c {
                case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "\""))
                case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "\\"))
                case 0x0A: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
                case 0x0D: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
                case 0x09: out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
                default: appendControlEscape(c, to: &out)
                }
                i += 1
                runStart = i
                continue
            }
            let length = validUTF8SequenceLength(raw, at: i)
            if length > 0 {
                i += length
            } else {
                flush(i)
                out.append(contentsOf: [0xEF, 0xBF, 0xBD])
                replaced = true
                i += 1
                runStart = i
            }
        }
        flush(n)
        return replaced
    }
}
