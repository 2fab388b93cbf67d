import Foundation
import Testing
import TrailwatchCore

@Suite("JSON encoding")
struct EncoderTests {
    @Test("escaped strings are valid JSON that decodes back to the original text, whatever the run lengths")
    func escaperRoundTrips() throws {
        var state: UInt64 = 7
        let pieces: [String] = ["a", "bc", "XYZ 019{}[]:,", "\"", "\\", "\n", "\r", "\t", "\u{0}", "\u{1F}", "\u{7F}", "é", "€", "😀", "plain text of some length "]
        for _ in 0..<3_000 {
            state = state &* 6364136223846793005 &+ 1
            var text = ""
            for _ in 0..<Int(state >> 59) {
                state = state &* 6364136223846793005 &+ 1
                text += pieces[Int(state >> 33) % pieces.count]
            }
            var out = ByteBuffer()
            var copy = text
            _ = copy.withUTF8 { JSONEscaping.appendString(UnsafeRawBufferPointer($0), to: &out) }
            let decoded = try JSONSerialization.jsonObject(with: Data(out.bytes), options: [.fragmentsAllowed]) as? String
            #expect(decoded == text)
        }
    }

    @Test("invalid UTF-8 becomes U+FFFD and the output stays valid JSON")
    func invalidUTF8() throws {
        var out = ByteBuffer()
        _ = ([0x61, 0xFF, 0x62, 0xC0, 0xAF, 0xED, 0xA0, 0x80, 0x63] as [UInt8]).withUnsafeBytes { JSONEscaping.appendString($0, to: &out) }
        let decoded = try #require(try JSONSerialization.jsonObject(with: Data(out.bytes), options: [.fragmentsAllowed]) as? String)
        #expect(decoded.hasPrefix("a\u{FFFD}b") && decoded.hasSuffix("c"))
        #expect(!decoded.unicodeScalars.contains { (0xD800...0xDFFF).contains($0.value) })
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
