import Foundation
import Testing
import TrailwatchCore
import TrailwatchStore

/// Keys are stored: they must not change between versions, and building one part by part (as the
/// PostgreSQL writer does per stream) gives the same key as hashing all parts at once.
@Suite("Idempotency keys and CloudTrail detection")
struct StoreKeyTests {
    @Test("keys are stable across versions and the same built part by part")
    func stableKeys() {
        let parts = ["/app/access", "web-1", "GET /index.html 200"].map { Array($0.utf8) }
        let whole = parts[0].withUnsafeBytes { a in parts[1].withUnsafeBytes { b in parts[2].withUnsafeBytes { c in
            StoreConventions.key([a, b, c], [1_700_000_000_123])
        } } }
        // Values computed by the original implementation (FNV basis, multiply-xorshift mix).
        #expect(whole == -6_562_309_229_238_020_188)
        #expect(StoreConventions.key([], [whole, 1]) == -6_945_426_011_822_183_185)
        var stream = StoreKey()
        parts[0].withUnsafeBytes { stream.add($0) }
        parts[1].withUnsafeBytes { stream.add($0) }
        var event = stream
        parts[2].withUnsafeBytes { event.add($0) }
        event.add(1_700_000_000_123)
        #expect(event.value == whole)
    }

    @Test("CloudTrail records are recognised, also with escaped member names; other JSON lines are not")
    func cloudTrailRecords() {
        let attributes = CloudTrailAttributes()
        func found(_ text: String) -> [String]? {
            Array(text.utf8).withUnsafeBytes { attributes.attributes(of: $0) }?.map { "\($0.0)=\($0.1)" }
        }
        let record = #"{"eventID":"e-1","eventName":"GetObject","eventSource":"s3.amazonaws.com","readOnly":true}"#
        #expect(found(record) == ["EventId=e-1", "EventName=GetObject", "EventSource=s3.amazonaws.com", "ReadOnly=true"])
        // A member name spelled with an escape is the same name.
        let escaped = #"{"event\u0049D":"e-2","eventName":"PutObject","eventSource":"s3.amazonaws.com"}"#
        #expect(found(escaped) == ["EventId=e-2", "EventName=PutObject", "EventSource=s3.amazonaws.com"])
        #expect(found(#"{"timestamp":"2026-11-24T10:00:00Z","level":"INFO","eventName":"x","eventSource":"y"}"#) == nil)
        #expect(found(#"{"eventIDs":"e-3","eventName":"x","eventSource":"y","Iteration":1}"#) == nil)
        #expect(found(#"{"message":"eventID","eventName":"x","eventSource":"y"}"#) == nil)
    }
}

@Suite("Stored metric dimensions")
struct DimensionsTextTests {
    @Test("dimensions are stored as a JSON object: plain values as before, quotes, backslashes and controls escaped")
    func escaped() throws {
        #expect(StoreConventions.dimensionsText([]) == "{}")
        #expect(StoreConventions.dimensionsText([Dimension(name: "Host", value: "a"), Dimension(name: "Service", value: "api")])
                == #"{"Host":"a","Service":"api"}"#)
        let hostile = [Dimension(name: "Path", value: "C:\\logs \"x\"\n"), Dimension(name: "Über", value: "ü")]
        let text = StoreConventions.dimensionsText(hostile)
        let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String]
        #expect(parsed == ["Path": "C:\\logs \"x\"\n", "Über": "ü"], "\(text)")
    }
}
