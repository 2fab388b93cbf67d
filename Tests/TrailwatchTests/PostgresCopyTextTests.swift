import Testing
import TrailwatchCore
@testable import TrailwatchPostgres
import TrailwatchStore
import TrailwatchTestSupport

/// The COPY text rows the PostgreSQL store sends: escaping (also eight bytes at a time), numbers,
/// repair of invalid UTF-8, and rows in (timestamp, key) order with the keys of the SQLite store.
@Suite("PostgreSQL COPY rows")
struct PostgresCopyTextTests {
    static func encoded(_ bytes: [UInt8]) -> [UInt8] {
        var text = CopyText(capacity: 0)
        text.text(bytes, last: true)
        return Array(text.buffer.readableBytesView)
    }

    /// The escaping, one byte at a time, as the COPY text format defines it.
    static func reference(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b >= 0x80 {
                let n = bytes.withUnsafeBufferPointer { CopyText.sequenceLength($0.baseAddress!, i, bytes.count) }
                if n > 0 { out += bytes[i..<i + n]; i += n } else { out += CopyText.replacement; i += -n }
                continue
            }
            switch b {
            case UInt8(ascii: "\\"): out += Array(#"\\"#.utf8)
            case UInt8(ascii: "\t"): out += Array(#"\t"#.utf8)
            case UInt8(ascii: "\n"): out += Array(#"\n"#.utf8)
            case UInt8(ascii: "\r"): out += Array(#"\r"#.utf8)
            case 0: out += CopyText.replacement
            default: out.append(b)
            }
            i += 1
        }
        return out + [UInt8(ascii: "\n")]
    }

    @Test("text values are escaped byte for byte as the COPY format wants, at any position in a word")
    func escaping() {
        let cases: [[UInt8]] = [
            [], Array("plain ascii text that is longer than eight bytes".utf8),
            Array("tab\there, newline\nthere, cr\r, backslash \\ end".utf8),
            Array("ünïcödé ✓ 日本語 and 😀 mixed in with ascii".utf8),
            [0x41, 0x00, 0x42, 0xFF, 0xC3, 0x28, 0xE2, 0x82, 0x41, 0x7F, 0x01, 0x1F, 0x20, 0x5B, 0x5D, 0x5C],
        ]
        for bytes in cases { #expect(Self.encoded(bytes) == Self.reference(bytes)) }
        // Every byte value at every offset of an eight-byte word.
        for special in 0...255 {
            for offset in 0..<9 {
                var bytes = Array(repeating: UInt8(ascii: "a"), count: 17)
                bytes[offset] = UInt8(special)
                #expect(Self.encoded(bytes) == Self.reference(bytes), "byte \(special) at \(offset)")
            }
        }
    }

    @Test("numbers: zero, signs, every length up to Int64's bounds")
    func numbers() {
        var values: [Int64] = [0, 1, -1, 9, 10, 99, 100, 101, Int64.max, Int64.min, Int64.min + 1]
        var power: Int64 = 1
        for _ in 0..<18 { power *= 10; values += [power - 1, power, power + 1, -power] }
        for value in values {
            var text = CopyText(capacity: 0)
            text.number(value, last: true)
            #expect(String(decoding: text.buffer.readableBytesView, as: UTF8.self) == "\(value)\n")
        }
    }

    @Test("rows go in (timestamp, key) order with the SQLite store's keys; repeats get their own keys")
    func rowOrder() {
        var builder = LogBatchBuilderLite()
        for i in 0..<200 {
            builder.add(group: "/app", stream: i % 3 == 0 ? "a" : "b\tc", time: 1_000 + Int64(i % 7), message: i % 50 == 0 ? "same" : "line \(i)")
        }
        let batch = builder.batch(ingestionTime: 5_000)
        let rows = LogRows(batch, cloudTrail: CloudTrailAttributes(), dayMillis: PostgresStore.dayMillis)
        // In pieces of about 500 bytes, as they are sent.
        var lines: [Substring] = []
        var next = 0
        while next < rows.count {
            var piece = CopyText(capacity: 0)
            next = rows.encode(from: next, into: &piece, maxBytes: 500)
            lines += String(decoding: piece.buffer.readableBytesView, as: UTF8.self).split(separator: "\n")
        }
        #expect(lines.count == 200)
        let columns = lines.map { $0.split(separator: "\t", omittingEmptySubsequences: false) }
        let order = columns.map { (Int64($0[0])!, Int64($0[1])!) }
        #expect(zip(order, order.dropFirst()).allSatisfy { $0 < $1 })
        #expect(Set(order.map(\.1)).count == 200)
        // The keys are the SQLite store's: the same events get the same keys in either backend.
        var seen = OccurrenceCounter(capacity: 200)
        var expected: Set<Int64> = []
        for i in 0..<batch.count {
            let origin = batch.origin(i)
            var key = Array(origin.logGroup.utf8).withUnsafeBytes { g in Array(origin.logStream.utf8).withUnsafeBytes { s in
                StoreConventions.key([g, s, batch.message(i)], [batch.timestamp(i)])
            } }
            let occurrence = seen.next(key)
            if occurrence > 0 { key = StoreConventions.key([], [key, Int64(occurrence)]) }
            expected.insert(key)
        }
        #expect(Set(order.map(\.1)) == expected)
        #expect(columns.allSatisfy { $0.count == 7 && $0[2] == "/app" && ($0[3] == "a" || $0[3] == #"b\tc"#) && $0[4] == "5000" && $0[6] == #"\N"# })
    }
}
