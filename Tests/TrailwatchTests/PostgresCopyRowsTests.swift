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
        // Every length around the 32- and 8-byte steps and the overlapping last word, with an
        // awkward byte (or a sequence crossing a word's edge) at every offset.
        let specials: [[UInt8]] = [[0x00], [0x7F], [0x80], [0xFF], [0xC3], [0xC3, 0xA9], [0xE2, 0x9C, 0x93], [0xF0, 0x9F, 0x98, 0x80], [0xE2, 0x82]]
        for length in 1...72 {
            let plain = (0..<length).map { UInt8(ascii: "a") + UInt8($0 % 26) }
            #expect(Self.encoded(plain) == plain, "plain, length \(length)")
            for special in specials {
                for offset in 0..<length {
                    var bytes = plain
                    bytes.replaceSubrange(offset..<min(offset + special.count, length), with: special)
                    #expect(Self.encoded(bytes) == Self.reference(bytes), "\(special) at \(offset) of \(length)")
                }
            }
            // Two replacements, the second within a word of the end.
            if length >= 10 {
                var bytes = plain
                bytes[1] = 0xFF
                bytes[length - 3] = 0x00
                #expect(Self.encoded(bytes) == Self.reference(bytes), "two at length \(length)")
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
        var stream = CopyRows.header
        var next = 0
        var pieces = 0
        while next < logRows.count {
            var piece = CopyRows(capacity: 0)
            next = logRows.encode(from: next, into: &piece, maxBytes: 500)
            stream += piece.buffer.readableBytesView
            pieces += 1
        }
        stream += [0xFF, 0xFF]
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

    @Test("rows are the same whether written many per buffer call or one at a time (with fields), in pieces of any size")
    func rowWriters() {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        var spans: [(Int, Int)] = []
        for n in 0..<300 {
            let length = n == 7 ? 70_000 : Int.random(in: 0...400, using: &generator)
            var message = (0..<length).map { _ in UInt8.random(in: 0x20...0x7E, using: &generator) }
            if length > 0 && n % 3 == 0 { message[Int.random(in: 0..<length, using: &generator)] = [0x00, 0xFF, 0xC3, 0xE2][n % 4] }
            spans.append((bytes.count, length))
            bytes += message
        }
        func batch(withFields: Bool) -> LogBatch {
            var batch = LogBatch(storage: ByteStorage(copying: bytes), defaultTimestamp: 0, ingestionTime: 9,
                                 origin: Origin(logGroup: "/g", logStream: "s1"))
            batch.origins.append(Origin(logGroup: "/other", logStream: "s\u{FFFD}2"))
            for (n, span) in spans.enumerated() {
                batch.append(start: span.0, length: span.1, timestamp: 1_000 + Int64(n % 5), originIndex: n % 2)
            }
            if withFields { batch.fields = (0..<spans.count).map { $0 == 4 ? Fields([("level", .string("ERROR"))]) : nil } }
            return batch
        }
        func stream(_ rows: LogRows, maxBytes: Int) -> [[[UInt8]?]] {
            var stream = CopyRows.header
            var next = 0
            repeat {
                var piece = CopyRows(capacity: 0)
                let after = rows.encode(from: next, into: &piece, maxBytes: maxBytes)
                #expect(after > next || rows.count == 0, "every piece holds a row")
                next = after
                stream += piece.buffer.readableBytesView
            } while next < rows.count
            return Self.rows(stream + [0xFF, 0xFF])
        }
        let plain = LogRows(batch(withFields: false), cloudTrail: CloudTrailAttributes())
        let withFields = LogRows(batch(withFields: true), cloudTrail: CloudTrailAttributes())
        let expected = stream(plain, maxBytes: 1 << 30)
        #expect(expected.count == spans.count)
        // Messages repaired as the reference does, in (time, key) order.
        let byKey = Dictionary(uniqueKeysWithValues: plain.keys.enumerated().map { ($1, $0) })
        for row in expected {
            let n = byKey[Self.bigint(row[1])]!
            #expect(row[5] == Self.reference(Array(bytes[spans[n].0..<spans[n].0 + spans[n].1])))
            #expect(row[2] == Array((n % 2 == 0 ? "/g" : "/other").utf8) && row[6] == nil)
        }
        for maxBytes in [1, 64, 500, 4_096, 128 << 10] {
            #expect(stream(plain, maxBytes: maxBytes) == expected, "max \(maxBytes)")
            let rows = stream(withFields, maxBytes: maxBytes)
            #expect(rows.map { Array($0.prefix(6)) } == expected.map { Array($0.prefix(6)) }, "with fields, max \(maxBytes)")
            #expect(rows.filter { $0[6] != nil }.count == 1)
        }
    }
}
