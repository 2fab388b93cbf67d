import Foundation
import Testing
@testable import TrailwatchAPI

@Suite("PutLogEvents decoder")
struct PutLogEventsDecoderTests {
    /// The string scanner skips eight bytes at a time until a quote, a backslash or a control
    /// character: put each of those at every offset of messages of many lengths and compare with
    /// Foundation's JSON parser.
    @Test("escapes and control characters at every offset around the eight-byte scan agree with Foundation")
    func specialsAtEveryOffset() throws {
        let specials: [(json: String, valid: Bool)] = [(#"\""#, true), (#"\\"#, true), (#"\n"#, true), (#"\u00e9"#, true), ("é", true),
                                                       ("\u{01}", false), ("\u{1F}", false), ("\t", false), (#"\q"#, false)]
        for length in 0..<20 {
            for offset in 0...length {
                for (special, valid) in specials {
                    let plain = String(repeating: "a", count: length)
                    let text = String(plain.prefix(offset)) + special + String(plain.dropFirst(offset))
                    let body = #"{"logGroupName":"g","logStreamName":"s","logEvents":[{"timestamp":1,"message":"\#(text)"}]}"#
                    let decoded = try? PutLogEventsDecoder.decode(Array(body.utf8))
                    #expect((decoded != nil) == valid, "\(length)/\(offset) \(special.debugDescription)")
                    guard let decoded, valid else { continue }
                    let reference = try JSONSerialization.jsonObject(with: Data(body.utf8)) as! [String: Any]
                    let message = ((reference["logEvents"] as! [[String: Any]])[0]["message"] as! String)
                    let start = Int(decoded.starts[0]), count = Int(decoded.lengths[0])
                    #expect(Array(decoded.messages[start..<start + count]) == Array(message.utf8), "\(length)/\(offset) \(special.debugDescription)")
                }
            }
        }
    }
}
