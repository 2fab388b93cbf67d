/// A compact binary form of a batch's payload, for the disk spool in front of isolated sinks.
///
/// Little-endian, length-prefixed; every column of a log batch survives (messages, times,
/// origins, flags, fields), so a spooled batch reaches its sink exactly as it would have live.
public enum BatchCodec {
    static let magic: UInt32 = 0x3142_5754  // "TWB1"

    public struct DecodeError: Error, Sendable, CustomStringConvertible {
        public var offset: Int
        public var message: String
        public var description: String { "damaged spooled batch at byte \(offset): \(message)" }
    }

    public static func encode(_ payload: Payload) -> [UInt8] {
        var w = ByteWriter()
        w.u32(magic)
        switch payload {
        case .logs(let logs):
            w.u8(0)
            w.u32(UInt32(logs.count))
            w.i64(logs.defaultTimestamp)
            w.i64(logs.ingestionTime)
            w.u32(UInt32(logs.origins.count))
            for origin in logs.origins { w.string(origin.logGroup); w.string(origin.logStream) }
            for i in 0..<logs.count {
                w.bytes(logs.message(i))
                w.i64(logs.timestamp(i))
                w.u8(logs.flags(i).rawValue)
                w.u16(logs.originIndices.isEmpty ? 0 : logs.originIndices[i])
                if let fields = logs.fields(i) {
                    w.u32(UInt32(fields.entries.count))
                    for (name, value) in fields.entries { w.string(name); w.fieldValue(value) }
                } else {
                    w.u32(UInt32.max)
                }
            }
        case .metrics(let data):
            w.u8(1)
            w.u32(UInt32(data.count))
            for d in data {
                w.string(d.metric.namespace)
                w.string(d.metric.name)
                w.u32(UInt32(d.metric.dimensions.count))
                for dim in d.metric.dimensions { w.string(dim.name); w.string(dim.value) }
                w.string(d.unit ?? "\u{0}")
                w.i64(d.timestamp)
                w.i64(Int64(d.period))
                for v in [d.sampleCount, d.sum, d.minimum, d.maximum] { w.f64(v) }
                w.u32(UInt32(d.values.count))
                for v in d.values { w.f64(v) }
            }
        case .events(let kind, let events):
            w.u8(2)
            w.string(kind.rawValue)
            w.u32(UInt32(events.count))
            for e in events {
                w.string(e.kind.rawValue)
                w.i64(e.timestamp)
                w.string(e.key)
                w.u32(UInt32(e.body.count))
                w.out.append(contentsOf: e.body)
            }
        }
        return w.out
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> Payload {
        var r = ByteReader(bytes: bytes)
        guard try r.u32() == magic else { throw DecodeError(offset: 0, message: "not a spooled batch") }
        switch try r.u8() {
        case 0:
            let count = Int(try r.u32())
            let defaultTimestamp = try r.i64()
            let ingestion = try r.i64()
            let originCount = Int(try r.u32())
            var origins: [Origin] = []
            for _ in 0..<originCount { origins.append(Origin(logGroup: try r.string(), logStream: try r.string())) }
            guard !origins.isEmpty else { throw DecodeError(offset: r.offset, message: "no origin") }
            // Messages are copied into one storage block, like a source would have produced.
            var records: [(message: ArraySlice<UInt8>, time: Int64, flags: UInt8, origin: UInt16, fields: Fields?)] = []
            records.reserveCapacity(count)
            var total = 0
            for _ in 0..<count {
                let message = try r.byteSlice()
                let time = try r.i64()
                let flags = try r.u8()
                let origin = try r.u16()
                let fieldCount = try r.u32()
                var fields: Fields?
                if fieldCount != UInt32.max {
                    var f = Fields()
                    for _ in 0..<fieldCount { f.entries.append((try r.string(), try r.fieldValue())) }
                    fields = f
                }
                guard Int(origin) < origins.count else { throw DecodeError(offset: r.offset, message: "origin index out of range") }
                total += message.count
                records.append((message, time, flags, origin, fields))
            }
            let storage = ByteStorage(capacity: max(total, 1))
            var batch = LogBatch(storage: storage, defaultTimestamp: defaultTimestamp, ingestionTime: ingestion, origin: origins[0])
            for origin in origins.dropFirst() { _ = batch.originIndex(for: origin) }
            var at = 0
            for (i, record) in records.enumerated() {
                record.message.withUnsafeBytes { storage.mutableBase.advanced(by: at).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                batch.append(start: at, length: record.message.count, flags: EventFlags(rawValue: record.flags),
                             timestamp: record.time, originIndex: Int(record.origin))
                if let fields = record.fields { batch.setFields(fields, at: i) }
                at += record.message.count
            }
            return .logs(batch)
        case 1:
            let count = Int(try r.u32())
            var data: [MetricDatum] = []
            for _ in 0..<count {
                let namespace = try r.string(), name = try r.string()
                var dimensions: [Dimension] = []
                for _ in 0..<Int(try r.u32()) { dimensions.append(Dimension(name: try r.string(), value: try r.string())) }
                let unitText = try r.string()
                let timestamp = try r.i64()
                let period = Int(try r.i64())
                let sampleCount = try r.f64(), sum = try r.f64(), minimum = try r.f64(), maximum = try r.f64()
                var values: [Double] = []
                for _ in 0..<Int(try r.u32()) { values.append(try r.f64()) }
                let datum = MetricDatum(metric: MetricIdentity(namespace: namespace, name: name, dimensions: dimensions),
                                        unit: unitText == "\u{0}" ? nil : unitText, timestamp: timestamp, period: period,
                                        sampleCount: sampleCount, sum: sum, minimum: minimum, maximum: maximum, values: values)
                data.append(datum)
            }
            return .metrics(data)
        case 2:
            guard let kind = EventKind(rawValue: try r.string()) else { throw DecodeError(offset: r.offset, message: "unknown event kind") }
            var events: [StructuredEvent] = []
            for _ in 0..<Int(try r.u32()) {
                guard let eventKind = EventKind(rawValue: try r.string()) else { throw DecodeError(offset: r.offset, message: "unknown event kind") }
                let timestamp = try r.i64()
                let key = try r.string()
                let body = Array(try r.byteSlice())
                events.append(StructuredEvent(kind: eventKind, timestamp: timestamp, key: key, body: body))
            }
            return .events(kind, events)
        default:
            throw DecodeError(offset: 4, message: "unknown payload kind")
        }
    }
}

private struct ByteWriter {
    var out: [UInt8] = []

    mutating func u8(_ v: UInt8) { out.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    mutating func i64(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
    mutating func f64(_ v: Double) { i64(Int64(bitPattern: v.bitPattern)) }
    mutating func bytes(_ b: UnsafeRawBufferPointer) { u32(UInt32(b.count)); out.append(contentsOf: b) }
    mutating func string(_ s: String) { var s = s; s.withUTF8 { bytes(UnsafeRawBufferPointer($0)) } }

    mutating func fieldValue(_ v: FieldValue) {
        switch v {
        case .string(let s): u8(0); string(s)
        case .number(let d): u8(1); f64(d)
        case .bool(let b): u8(2); u8(b ? 1 : 0)
        case .null: u8(3)
        case .json(let j): u8(4); j.withUnsafeBytes { bytes($0) }
        }
    }
}

private struct ByteReader {
    let bytes: [UInt8]
    var offset = 0

    mutating func take(_ n: Int) throws(BatchCodec.DecodeError) -> ArraySlice<UInt8> {
        guard n >= 0, offset + n <= bytes.count else {
            throw BatchCodec.DecodeError(offset: offset, message: "truncated (wanted \(n) more bytes)")
        }
        defer { offset += n }
        return bytes[offset..<offset + n]
    }

    mutating func integer<T: FixedWidthInteger>(_: T.Type) throws(BatchCodec.DecodeError) -> T {
        let slice = try take(MemoryLayout<T>.size)
        var v: T = 0
        for (i, b) in slice.enumerated() { v |= T(truncatingIfNeeded: b) << (8 * i) }
        return v
    }

    mutating func u8() throws(BatchCodec.DecodeError) -> UInt8 { try integer(UInt8.self) }
    mutating func u16() throws(BatchCodec.DecodeError) -> UInt16 { try integer(UInt16.self) }
    mutating func u32() throws(BatchCodec.DecodeError) -> UInt32 { try integer(UInt32.self) }
    mutating func i64() throws(BatchCodec.DecodeError) -> Int64 { try integer(Int64.self) }
    mutating func f64() throws(BatchCodec.DecodeError) -> Double { Double(bitPattern: UInt64(bitPattern: try i64())) }
    mutating func byteSlice() throws(BatchCodec.DecodeError) -> ArraySlice<UInt8> { try take(Int(try u32())) }
    mutating func string() throws(BatchCodec.DecodeError) -> String { String(decoding: try byteSlice(), as: UTF8.self) }

    mutating func fieldValue() throws(BatchCodec.DecodeError) -> FieldValue {
        switch try u8() {
        case 0: return .string(try string())
        case 1: return .number(try f64())
        case 2: return .bool(try u8() != 0)
        case 3: return .null
        case 4: return .json(Array(try byteSlice()))
        default: throw BatchCodec.DecodeError(offset: offset, message: "unknown field value kind")
        }
    }
}
