import Testing
import TrailwatchCore

@Suite("JSON encoding")
struct EncoderTests {
    @Test("the word-at-a-time escaper writes exactly what the byte-at-a-time one does")
    func fastEscaperAgrees() {
        var state: UInt64 = 7
        let alphabet: [UInt8] = Array("abcXYZ 019{}[]:,".utf8) + [0x22, 0x5C, 0x0A, 0x0D, 0x09, 0x00, 0x1F, 0x7F, 0xC3, 0xA9, 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80, 0xFF, 0xC0, 0xED, 0xA0]
        for _ in 0..<5_000 {
            state = state &* 6364136223846793005 &+ 1
            let length = Int(state >> 58)
            var bytes: [UInt8] = []
            for _ in 0..<length {
                state = state &* 6364136223846793005 &+ 1
                bytes.append(alphabet[Int(state >> 33) % alphabet.count])
            }
            var slow = ByteBuffer(), fast = ByteBuffer()
            bytes.withUnsafeBytes {
                JSONEscaping.appendEscaped($0, to: &slow)
                JSONEscaping.appendEscapedFast($0, to: &fast)
            }
            #expect(slow.bytes == fast.bytes, "\(bytes)")
        }
    }

    @Test("a batch encodes to the same lines as event-by-event encoding")
    func batchEncoderAgrees() {
        let text = "plain line\nwith \"quotes\" and \\ and \u{e9}\n\u{1}control\n"
        let storage = ByteStorage(copying: Array(text.utf8))
        var batch = LogBatch(storage: storage, defaultTimestamp: 1_000, ingestionTime: 2_000, origin: Origin(logGroup: "g\"", logStream: "s"))
        var framer = LineFramer(maxLineBytes: 100)
        _ = framer.frame(UnsafeRawPointer(storage.mutableBase), from: 0, end: storage.capacity, into: &batch)
        batch.setTimestamp(5_000, at: 1)
        batch.insertFlags(.split, at: 2)
        batch.setFields(Fields([("n", .number(1))]), at: 0)
        var one = ByteBuffer()
        for i in 0..<batch.count { LogRecordEncoder.append(batch, event: i, to: &one); one.append(0x0A) }
        var all = ByteBuffer()
        var encoder = LogBatchJSONEncoder()
        encoder.append(batch, to: &all)
        #expect(String(decoding: all.bytes, as: UTF8.self) == String(decoding: one.bytes, as: UTF8.self))
    }
}
