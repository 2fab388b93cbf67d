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
        JSONEscaping.appendString(batch.message(i), to: &out)
        if includeIngestionTime {
            out.append(contentsOf: #","ingestion_time":""#.utf8)
            Timestamps.appendISO8601(batch.ingestionTime, to: &out)
            out.append(UInt8(ascii: "\""))
        }
        if let fields = batch.fields(i), !fields.entries.isEmpty {
            out.append(contentsOf: #","fields":"#.utf8)
            appendFields(fields, to: &out)
        }
        let flags = batch.flags(i)
        if !flags.isEmpty {
            out.append(contentsOf: #","flags":["#.utf8)
            for (k, name) in flags.names.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                JSONEscaping.appendString(name, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        }
        out.append(UInt8(ascii: "}"))
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
