import Testing
import TrailwatchCore

@Suite("Timestamp formats")
struct TimestampFormatTests {
    static let reference: Int64 = 1_795_564_800_000  // 2026-11-25T00:00:00Z

    @Test("layouts parse to UTC milliseconds", arguments: [
        ("rfc3339", "2026-11-25T10:00:00.5Z", "2026-11-25T10:00:00.500Z"),
        ("rfc3339", "2026-11-25T10:00:00+01:00", "2026-11-25T09:00:00.000Z"),
        ("%Y-%m-%d %H:%M:%S,%f", "2026-11-25 10:00:00,123456", "2026-11-25T10:00:00.123Z"),
        ("%d/%b/%Y:%H:%M:%S %z", "25/Nov/2026:10:00:05 -0230", "2026-11-25T12:30:05.000Z"),
        ("%b %e %H:%M:%S", "Nov  5 07:08:09", "2026-11-05T07:08:09.000Z"),
        ("%b %e %H:%M:%S", "Dec 31 23:59:59", "2025-12-31T23:59:59.000Z"),
        ("%F %T", "2026-01-02 03:04:05", "2026-01-02T03:04:05.000Z"),
        ("unix", "1795564800", "2026-11-25T00:00:00.000Z"),
        ("unix_ms", "1795564800123", "2026-11-25T00:00:00.123Z"),
        ("%s", "1795564800", "2026-11-25T00:00:00.000Z"),
    ])
    func parses(layout: String, text: String, expected: String) throws {
        let format = try TimestampFormat(layout)
        let parsed = Array(text.utf8).withUnsafeBytes { format.parse($0, referenceMillis: Self.reference) }
        #expect(parsed.map(Timestamps.iso8601) == expected)
    }

    @Test("text that does not fit the layout is nil, never a guess", arguments: [
        ("%Y-%m-%d %H:%M:%S", "2026-13-01 00:00:00"),
        ("%Y-%m-%d %H:%M:%S", "2026-11-25 10:00:00 trailing"),
        ("%d/%b/%Y:%H:%M:%S %z", "25/Foo/2026:10:00:05 +0000"),
        ("rfc3339", "yesterday"),
        ("unix", ""),
    ])
    func rejects(layout: String, text: String) throws {
        let format = try TimestampFormat(layout)
        #expect(Array(text.utf8).withUnsafeBytes { format.parse($0, referenceMillis: Self.reference) } == nil)
    }

    @Test("an unknown directive is an error naming it")
    func badLayout() {
        #expect(throws: TimestampFormat.ParseError.self) { try TimestampFormat("%Y-%Q") }
    }
}
