import Foundation
import Testing
import TrailwatchCore
import TrailwatchStore
import TrailwatchTestSupport

/// What every store backend must do the same way: the resources the AWS APIs keep (log groups
/// and streams, paged event reads, documents), LookupEvents paging, statistic-set merging.
/// Run against SQLite here and against PostgreSQL in the PostgreSQL suite.
enum StoreConformance {
    /// Forty events in two streams of /api (one a second from `base`), three datapoint writers.
    static func fill(_ store: any Store, base: Int64 = 1_795_000_000_000) async throws {
        var builder = LogBatchBuilderLite()
        for i in 0..<40 {
            builder.add(group: "/api", stream: i % 2 == 0 ? "even" : "odd", time: base + Int64(i) * 1000,
                        message: "request \(i) \(i % 5 == 0 ? "ERROR" : "ok")")
        }
        try await store.write(.logs(builder.batch(ingestionTime: base + 100_000)))
        let metric = MetricIdentity(namespace: "Shop", name: "Latency", dimensions: [Dimension(name: "Endpoint", value: "ep")])
        // Three instances contributed to the same minute; one of them twice (a replay).
        let parts = [MetricDatum(metric: metric, timestamp: base, period: 60, sampleCount: 2, sum: 30, minimum: 10, maximum: 20),
                     MetricDatum(metric: metric, timestamp: base, period: 60, sampleCount: 1, sum: 5, minimum: 5, maximum: 5),
                     MetricDatum(metric: metric, timestamp: base, period: 60, sampleCount: 3, sum: 90, minimum: 25, maximum: 40)]
        try await store.write(.metrics(parts))
        try await store.write(.metrics([parts[0]]))
    }

    /// A second instance writing a datapoint equal to one already there: both count.
    static func checkSecondWriter(_ second: any Store, base: Int64 = 1_795_000_000_000) async throws {
        let metric = MetricIdentity(namespace: "Shop", name: "Latency", dimensions: [Dimension(name: "Endpoint", value: "ep")])
        try await second.write(.metrics([MetricDatum(metric: metric, timestamp: base, period: 60, sampleCount: 2, sum: 30, minimum: 10, maximum: 20)]))
        let points = try await second.datapoints(namespace: "Shop", name: "Latency", dimensions: nil, start: base, end: base + 60_000)
        #expect(points.map(\.sampleCount) == [8] && points.map(\.sum) == [155])
    }

    static func check(_ store: any Store, base: Int64 = 1_795_000_000_000) async throws {
        // Groups and streams: writing registered them; creating is idempotent.
        #expect(try await store.logGroups(prefix: nil, after: nil, limit: 10).map(\.name).contains("/api"))
        #expect(try await store.createLogGroup("/api", retentionDays: nil, now: base) == false)
        #expect(try await store.createLogGroup("/batch", retentionDays: 7, now: base) == true)
        let groups = try await store.logGroups(prefix: "/b", after: nil, limit: 10)
        #expect(groups == [StoredLogGroup(name: "/batch", retentionDays: 7, creationTime: base)])
        #expect(try await store.logGroups(prefix: nil, after: "/api", limit: 10).map(\.name) == ["/batch"])
        #expect(try await store.createLogStream(group: "/batch", stream: "s1", now: base) == true)
        #expect(try await store.createLogStream(group: "/batch", stream: "s1", now: base) == false)
        let streams = try await store.logStreams(group: "/api", prefix: nil, after: nil, limit: 10)
        #expect(streams.map(\.name) == ["even", "odd"])
        #expect(streams.first?.firstEvent == base && streams.first?.lastEvent == base + 38_000)

        // Paged reads, oldest first and newest first, with a stream and substring filter.
        var seen: [String] = []
        var token: String?
        repeat {
            let page = try await store.logEvents(LogEventsRequest(logGroup: "/api", limit: 15, nextToken: token))
            seen += page.events.map(\.message)
            token = page.nextToken
        } while token != nil
        #expect(seen.count == 40 && seen.first == "request 0 ERROR" && seen.last == "request 39 ok")
        let errors = try await store.logEvents(LogEventsRequest(logGroup: "/api", logStreams: ["even"], newestFirst: true, messageContains: ["ERROR"]))
        #expect(errors.events.map(\.message) == ["request 30 ERROR", "request 20 ERROR", "request 10 ERROR", "request 0 ERROR"])
        #expect(errors.nextToken == nil)
        let window = try await store.logEvents(LogEventsRequest(logGroup: "/api", start: base + 10_000, end: base + 12_000))
        #expect(window.events.map(\.timestamp) == [base + 10_000, base + 11_000])

        // Datapoints from several writers merge into one statistic set; the replay added nothing.
        let points = try await store.datapoints(namespace: "Shop", name: "Latency", dimensions: "{\"Endpoint\":\"ep\"}", start: base, end: base + 60_000)
        #expect(points == [StoredDatapoint(timestamp: base, period: 60, sampleCount: 8, sum: 155, minimum: 5, maximum: 40, dimensions: "{\"Endpoint\":\"ep\"}")])

        // Documents.
        try await store.putDocument(StoredDocument(kind: "metric-filter", name: "/api:errors", body: #"{"p":"ERROR"}"#, updated: base))
        try await store.putDocument(StoredDocument(kind: "metric-filter", name: "/api:errors", body: #"{"p":"ERR"}"#, updated: base + 1))
        try await store.putDocument(StoredDocument(kind: "metric-filter", name: "/web:slow", body: "{}", updated: base))
        #expect(try await store.document(kind: "metric-filter", name: "/api:errors")?.body == #"{"p":"ERR"}"#)
        #expect(try await store.documents(kind: "metric-filter", prefix: "/api", after: nil, limit: 10).count == 1)
        #expect(try await store.documents(kind: "metric-filter", prefix: nil, after: "/api:errors", limit: 10).map(\.name) == ["/web:slow"])
        #expect(try await store.deleteDocument(kind: "metric-filter", name: "/web:slow") == true)
        #expect(try await store.document(kind: "metric-filter", name: "/web:slow") == nil)

        // Deleting a group takes its events along.
        #expect(try await store.deleteLogGroup("/api") == true)
        #expect(try await store.logEvents(LogEventsRequest(logGroup: "/api")).events.isEmpty)
        #expect(try await store.deleteLogGroup("/nothing") == false)
    }
}

/// Builds a small LogBatch of given groups, streams, times and messages.
struct LogBatchBuilderLite {
    var origins: [Origin] = []
    var rows: [(origin: Int, time: Int64, message: String)] = []

    mutating func add(group: String, stream: String, time: Int64, message: String) {
        let origin = Origin(logGroup: group, logStream: stream)
        let index = origins.firstIndex(of: origin) ?? { origins.append(origin); return origins.count - 1 }()
        rows.append((index, time, message))
    }

    func batch(ingestionTime: Int64) -> LogBatch {
        let bytes = rows.flatMap { Array($0.message.utf8) }
        var batch = LogBatch(storage: ByteStorage(copying: bytes), defaultTimestamp: 0, ingestionTime: ingestionTime, origin: origins[0])
        batch.origins = origins
        var offset = 0
        for row in rows {
            let length = row.message.utf8.count
            batch.append(start: offset, length: length, timestamp: row.time, originIndex: row.origin)
            offset += length
        }
        return batch
    }
}

@Suite("Store conformance (SQLite)")
struct SQLiteStoreConformanceTests {
    @Test("groups, streams, paged event reads, documents and merged datapoints")
    func resources() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("store.db"), writer: "host-a")
        try await StoreConformance.fill(store)
        try await StoreConformance.checkSecondWriter(try SQLiteStore(path: dir.file("store.db"), writer: "host-b"))
        try await StoreConformance.check(store)
    }
}
