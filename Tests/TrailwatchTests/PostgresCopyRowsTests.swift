import ByteJSON
import Testing
import TrailwatchCore
@testable import TrailwatchPostgres
import TrailwatchStore
import TrailwatchTestSupport

/// The binary COPY rows the PostgreSQL store sends: the format (read back here as the server
/// reads it), repair of invalid UTF-8 and NUL (also eight bytes at a time), and rows in
/// (timestamp, key) order with the keys of the SQLite store.
@Suite("PostgreSQL COPY rows")
struct PostgresCopyRowsTests {
    /// Reads a binary COPY stream: its rows, each a list of columns (nil for NULL). Fails the
    /// test on anything the server would refuse.
    static func rows(_ bytes: [UInt8]) -> [[[UInt8]?]] {
        #expect(Array(bytes.prefix(CopyRows.header.count)) == CopyRows.header)
        var i = CopyRows.header.count
        func integer(_ size: Int) -> Int64 {
            defer { i += size }
            return bytes[i..<i + size].reduce(Int64(0)) { $0 << 8 | Int64($1) }
        }
        var rows: [[[UInt8]?]] = []
        while i < bytes.count {
            let columns = Int16(truncatingIfNeeded: integer(2))
            if columns == -1 { break }
            var row: [[UInt8]?] = []
            for _ in 0..<columns {
                let length = Int32(truncatingIfNeeded: integer(4))
                if length == -1 { row.append(nil); continue }
                row.append(Array(bytes[i..<i + Int(length)]))
                i += Int(length)
            }
            rows.append(row)
        }
        #expect(i == bytes.count, "the trailer ends the stream")
        return rows
    }

    static func bigint(_ column: [UInt8]?) -> Int64 {
        guard let column, column.count == 8 else { Issue.record("not a bigint column: \(String(describing: column))"); return 0 }
        return column.reduce(Int64(0)) { $0 << 8 | Int64($1) }
    }

    static func encoded(_ bytes: [UInt8]) -> [UInt8] {
        var copy = CopyRows(capacity: 0)
        copy.start()
        copy.row(columns: 1)
        copy.text(bytes)
        copy.end()
        return Self.rows(Array(copy.buffer.readableBytesView))[0][0] ?? []
    }

    /// The repair, one byte at a time: invalid UTF-8 and NUL become U+FFFD, the rest stays.
    static func reference(_ bytes: [UInt8]) -> [UInt8] {
        let replacement: [UInt8] = [0xEF, 0xBF, 0xBD]
        var out: [UInt8] = []
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b >= 0x80 {
                let n = bytes.withUnsafeBufferPointer { UTF8Sequence.length($0.baseAddress!, i, bytes.count) }
                if n > 0 { out += bytes[i..<i + n]; i += n } else { out += replacement; i += -n }
                continue
            }
            out += b == 0 ? replacement : [b]
            i += 1
        }
        return out
    }

    @Test("text values go as they are, invalid UTF-8 and NUL repaired, at any position in a word")
    func repair() {
        let cases: [[UInt8]] = [
            [], Array("plain ascii text that is longer than eight bytes".utf8),
            Array("tab\there, newline\nthere, cr\r, backslash \\ end".utf8),
            Array("ünïcödé ✓ 日本語 and 😀 mixed in with ascii".utf8),
            [0x41, 0x00, 0x42, 0xFF, 0xC3, 0x28, 0xE2, 0x82, 0x41, 0x7F, 0x01, 0x1F, 0x20, 0x5B, 0x5D, 0x5C],
        ]
        for bytes in cases { #expect(Self.encoded(bytes) == Self.reference(bytes)) }
        #expect(Self.encoded(Array("tab\there \\ \n".utf8)) == Array("tab\there \\ \n".utf8))
        // Every byte value at every offset of an eight-byte word.
        for special in 0...255 {
            for offset in 0..<9 {
                var bytes = Array(repeating: UInt8(ascii: "a"), count: 17)
                bytes[offset] = UInt8(special)
                #expect(Self.encoded(bytes) == Self.reference(bytes), "byte \(special) at \(offset)")
            }
        }
        #expect(CopyRows.repaired([0x61, 0x00, 0xFF, 0x62]) == "a\u{FFFD}\u{FFFD}b")
        #expect(CopyRows.repaired([]) == "")
    }

    @Test("bigints: eight bytes big endian, signs and bounds")
    func bigints() {
        for value: Int64 in [0, 1, -1, 255, 256, 1_764_000_000_000, Int64.max, Int64.min] {
            var copy = CopyRows(capacity: 0)
            copy.start()
            copy.row(columns: 1)
            copy.bigint(value)
            copy.end()
            #expect(Self.bigint(Self.rows(Array(copy.buffer.readableBytesView))[0][0]) == value)
        }
    }

    @Test("the radix order is the comparison sort's: signs, shared bytes, repeats, one time or many")
    func radixOrder() {
        var generator = SystemRandomNumberGenerator()
        for n in [0, 1, 2, 3, 17, 256, 1000, 8000] {
            for spread in [Int64(0), 1, 255, 70_000, Int64.max] {
                let times = (0..<n).map { _ in 1_764_000_000_000 + (spread == 0 ? 0 : Int64.random(in: 0...min(spread, 1 << 42), using: &generator)) - (spread == Int64.max ? 1 << 41 : 0) }
                var keys = (0..<n).map { _ in Int64.random(in: Int64.min...Int64.max, using: &generator) }
                // Equal keys, keys sharing high bytes, the extremes; negative times with the widest spread.
                if n > 10 { keys[3] = keys[5]; keys[7] = keys[5] & 0xFF; keys[8] = Int64.min; keys[9] = Int64.max; keys[10] = -1 }
                let expectedByKey = (0..<n).sorted { (keys[$0], $0) < (keys[$1], $1) }.map(Int32.init)
                #expect(LogRows.order(keys: keys, times: nil) == expectedByKey, "n \(n)")
                let expected = (0..<n).sorted { (times[$0], keys[$0], $0) < (times[$1], keys[$1], $1) }.map(Int32.init)
                #expect(LogRows.order(keys: keys, times: times) == expected, "n \(n), spread \(spread)")
            }
        }
    }

    @Test("rows go in (timestamp, key) order with the SQLite store's keys; repeats get their own keys")
    func rowOrder() {
        var builder = LogBatchBuilderLite()
        for i in 0..<200 {
            builder.add(group: "/app", stream: i % 3 == 0 ? "a" : "b\tc", time: 1_000 + Int64(i % 7), message: i % 50 == 0 ? "same" : "line \(i)")
        }
        let batch = builder.batch(ingestionTime: 5_000)
        let logRows = LogRows(batch, cloudTrail: CloudTrailAttributes())
        // In pieces of about 500 bytes, as they are sent: one COPY stream.
        var stream: [UInt8] = []
        var next = 0
        var pieces = 0
        while next < logRows.count {
            var piece = CopyRows(capacity: 0)
            next = logRows.encode(from: next, into: &piece, maxBytes: 500)
            stream += piece.buffer.readableBytesView
            pieces += 1
        }
        #expect(pieces > 3)
        let columns = Self.rows(stream)
        #expect(columns.count == 200)
        let order = columns.map { (Self.bigint($0[0]), Self.bigint($0[1])) }
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
        #expect(columns.allSatisfy {
            $0.count == PostgresStore.eventColumns.count && $0[2] == Array("/app".utf8) && ($0[3] == Array("a".utf8) || $0[3] == Array("b\tc".utf8))
                && Self.bigint($0[4]) == 5_000 && $0[6] == nil
        })
        #expect(Set(columns.compactMap { $0[5].map { String(decoding: $0, as: UTF8.self) } }).contains("same"))
    }
}
