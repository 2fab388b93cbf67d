import Foundation
import Glibc
import Testing
import LogsQuery
import TrailwatchCore
import TrailwatchDashboard
@testable import TrailwatchPostgres
import TrailwatchStages
import TrailwatchStore
import TrailwatchTestSupport

/// The PostgreSQL backend against a real server (one throw-away cluster per test process, a
/// database per test): the store conformance suite, the query conformance table, CloudTrail
/// event history, dashboards, partitions and retention, errors, and a server restart mid-ingest.
@Suite("PostgreSQL store", .serialized)
struct PostgresStoreTests {
    /// The cluster and a fresh database, or nil after saying why the test is skipped.
    static func database(_ prefix: String = "t") async throws -> (PostgresCluster, String)? {
        guard let cluster = await PostgresCluster.sharedStarted() else {
            print(PostgresCluster.skipMessage)
            return nil
        }
        return (cluster, try await PostgresCluster.offPool { try cluster.makeDatabase(prefix) })
    }

    @Test("groups, streams, paged event reads, documents; datapoints from several instances merge as statistic sets")
    func conformance() async throws {
        guard let (_, url) = try await Self.database() else { return }
        let store = try await PostgresStore.connect(url: url, access: .readWrite, writer: "host-a")
        let second = try await PostgresStore.connect(url: url, access: .readWrite, writer: "host-b")
        try await StoreConformance.fill(store)
        try await StoreConformance.checkSecondWriter(second)
        try await StoreConformance.check(store)
        await second.close()
        await store.close()
    }

    /// The query conformance dataset loaded through a pipeline into PostgreSQL (once per process;
    /// awaited, never waited for on a thread, so no test blocks the ones running beside it).
    static let queryStoreLoad = Task<String?, Never> {
        guard let (_, url) = try? await database("q") else { return nil }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("trailwatch-pgquery-\(UUID().uuidString)").path
        await loadQueryDatasetAsync(directory: dir, sink: "{ type: store, inputs: [app, web, edge, svc], url: \"\(url)\" }")
        try? FileManager.default.removeItem(atPath: dir)
        return url
    }

    static func render(_ result: QueryResult) -> String {
        result.rows.map { row in
            row.map { value -> String in
                if case .timestamp(let ms) = value { return Timestamps.iso8601(ms) }
                return value.stringValue ?? ""
            }.joined(separator: ",")
        }.joined(separator: ";")
    }

    @Test("the query conformance table gives the same rows on PostgreSQL", arguments: queryCases)
    func query(_ text: String, _ expected: String) async throws {
        guard let url = await Self.queryStoreLoad.value else { print(PostgresCluster.skipMessage); return }
        let store = try await PostgresStore.connect(url: url, access: .readOnly)
        let result = try await store.query(LogQueryRequest(text: text, now: 1_795_600_000_000))
        await store.close()
        #expect(QueryConformance.text(result) == expected, "\(text)")
    }

    @Test("pattern, diff and anomaly over a fixed range give the same rows on PostgreSQL", arguments: rangedQueryCases)
    func rangedQuery(_ text: String, _ start: String, _ end: String, _ expected: String) async throws {
        guard let url = await Self.queryStoreLoad.value else { print(PostgresCluster.skipMessage); return }
        let store = try await PostgresStore.connect(url: url, access: .readOnly)
        let request = LogQueryRequest(text: text, start: QueryConformance.time(start), end: QueryConformance.time(end), now: 1_795_600_000_000)
        let result = try await store.query(request)
        await store.close()
        #expect(QueryConformance.text(result) == expected, "\(text)")
    }

    @Test("time range and log groups are pushed down; `query` takes a postgres:// URL")
    func pushdownAndCommand() async throws {
        guard let url = await Self.queryStoreLoad.value else { print(PostgresCluster.skipMessage); return }
        let store = try await PostgresStore.connect(url: url, access: .readOnly)
        let start = Array("2026-11-24T10:05:00Z".utf8).withUnsafeBytes { Timestamps.parseISO8601($0) }!
        let result = try await store.query(LogQueryRequest(text: "stats count(*)", start: start, logGroups: ["/web"], now: 0))
        #expect(result.rows.first?.first?.stringValue == "2")
        await store.close()
        // The command gives the same answer from PostgreSQL as from SQLite over the same events.
        let text = "stats count(*) as n by bin(5m) as t | sort t asc"
        let (status, out, err) = try await runTool(trailwatchBinary(), ["query", url, text, "--format", "csv"])
        let (_, sqlite, _) = try await runTool(trailwatchBinary(), ["query", await QueryConformance.sqliteStore, text, "--format", "csv"])
        #expect(status == 0, "\(err)")
        #expect(out == sqlite && out.hasPrefix("t,n\n2026-11-24T10:00:00.000Z,6\n"), "\(out)")
        #expect(!err.contains(PostgresCluster.password))
    }

    @Test("CloudTrail event history: idempotent loads, every lookup attribute, pages, `events` with a URL")
    func eventHistory() async throws {
        guard let (_, url) = try await Self.database() else { return }
        let samples = TestPaths.repositoryRoot.appendingPathComponent("samples/cloudtrail").path
        let pipeline = """
            sources:
              trail: { type: cloudtrail, include: '\(samples)/**/*.json.gz' }
            sinks:
              db: { type: store, inputs: [trail], url: "\(url)" }
            """
        _ = try await runOnce(pipeline)
        _ = try await runOnce(pipeline)   // the same records again
        let store = try await PostgresStore.connect(url: url, access: .readOnly)
        #expect(try await store.count(.logEvents) == 768)
        let (status, out, err) = try await runTool(trailwatchBinary(), ["events", url, "--lookup", "EventName=GetPasswordData", "--max-results", "5", "--format", "json"])
        #expect(status == 0, "\(err)")
        let records = try #require((try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])?["Records"] as? [[String: Any]])
        #expect(records.count == 5 && records.allSatisfy { $0["eventName"] as? String == "GetPasswordData" })
        let sample = try #require(records.first)
        let identity = sample["userIdentity"] as? [String: Any] ?? [:]
        var probes: [(String, String)] = [("EventId", sample["eventID"] as! String), ("EventSource", sample["eventSource"] as! String),
                                         ("ReadOnly", String(describing: sample["readOnly"] as? Bool ?? false))]
        if let key = identity["accessKeyId"] as? String { probes.append(("AccessKeyId", key)) }
        for (attribute, value) in probes {
            let found = try await store.lookupEvents(attribute: attribute, value: value, start: nil, end: nil, maxResults: 1000)
            #expect(found.contains { $0.contains(sample["eventID"] as! String) }, "\(attribute)=\(value)")
        }
        // Pages: all of them together are the whole answer, newest first, each record once.
        let all = try await store.lookupEvents(attribute: "EventName", value: "GetPasswordData", start: nil, end: nil, maxResults: 1000)
        var paged: [String] = []
        var token: String?
        repeat {
            let page = try await store.lookupEvents(LookupEventsRequest(attribute: "EventName", value: "GetPasswordData", maxResults: 7, nextToken: token))
            paged += page.records
            token = page.nextToken
        } while token != nil
        #expect(paged == all && all.count > 7)
        // No attribute: every record, newest first (LookupEvents without LookupAttributes).
        let everything = try await store.lookupEvents(attribute: "", value: "", start: nil, end: nil, maxResults: 1000)
        #expect(everything.count == 768 && everything.contains { $0.contains(sample["eventID"] as! String) })
        var pagedEverything: [String] = []
        token = nil
        repeat {
            let page = try await store.lookupEvents(LookupEventsRequest(attribute: "", value: "", maxResults: 50, nextToken: token))
            #expect(page.records.count <= 50)
            pagedEverything += page.records
            token = page.nextToken
        } while token != nil
        #expect(pagedEverything == everything)
        let times = everything.compactMap { record in
            (try? JSONSerialization.jsonObject(with: Data(record.utf8)) as? [String: Any])?["eventTime"] as? String
        }
        #expect(times.count == 768 && times == times.sorted(by: >), "newest first")
        await store.close()
    }

    @Test("dashboards over PostgreSQL: charts with bands, alarms, events, logs and the query API")
    func dashboard() async throws {
        guard let (_, url) = try await Self.database() else { return }
        let dir = TemporaryDirectory()
        _ = dir.write("logs/app.log", dashboardLog())
        let yaml = """
            data_dir: \(dir.file("state"))
            sources:
              app: { type: file, include: \(dir.file("logs"))/app.log, timestamp: { field: $.time } }
            \(dashboardPipelineBody)
            sinks:
              store: { type: store, inputs: [app, latency, errors, slow, slow.bands], url: "\(url)" }
            """
        let plan = try plan(yaml, registry: BuiltinStages.registry)
        _ = try await runOnce(yaml)
        let site = DashboardSite(store: url, dashboards: try DashboardDefinition.all(in: plan.document).get())
        let page = try #require(await site.page(path: "/dashboards/shop", query: [:]))
        #expect(page.status == 200)
        let points = try #require(page.body.firstMatch(of: /class="chart"[^>]*data-points="(\d+)" data-band-points="(\d+)"/))
        #expect(Int(points.1)! > 50 && Int(points.2)! > 10)
        #expect(page.body.contains("SlowCheckout") && page.body.contains("class=\"anomaly\""))
        #expect(page.body.contains("data-value=\"\(Double(dashboardErrors))\""))
        let api = try #require(await site.page(path: "/api/query", query: ["q": "filter level = \"ERROR\" | stats count(*) as n", "range": "1d"]))
        #expect(api.status == 200 && api.body.contains("\"n\":\(dashboardErrors)"), "\(api.body)")
        let overview = try #require(await DashboardSite(store: url, dashboards: []).page(path: "/", query: [:]))
        #expect(overview.status == 200 && overview.body.contains("Shop Latency"))
    }

    @Test("events are partitioned by day, partitions are made ahead, retention drops whole partitions")
    func partitionsAndRetention() async throws {
        guard let (cluster, url) = try await Self.database() else { return }
        let day: Int64 = 86_400_000
        let now = Int64(Date().timeIntervalSince1970 * 1000) / day * day
        let store = try await PostgresStore.connect(url: url, access: .readWrite)
        var old = LogBatchBuilderLite()
        for d in [40, 39, 2] { old.add(group: "/short", stream: "s", time: now - Int64(d) * day + 1000, message: "short \(d)") }
        old.add(group: "/kept", stream: "s", time: now - 39 * day + 5000, message: "kept 39")
        try await store.write(.logs(old.batch(ingestionTime: now)))
        let database = String(url.split(separator: "/").last!.split(separator: "?").first!)
        let partitions = try await cluster.psqlAsync("SELECT count(*) FROM pg_inherits WHERE inhparent = 'log_events'::regclass", database: database)
        // Three days written, plus days made ahead of the newest.
        #expect(Int(partitions.trimmingCharacters(in: .whitespacesAndNewlines))! >= 5)
        try await store.setRetention(logGroup: "/short", days: 30)
        let removed = try await store.enforceRetention(now: now)
        #expect(removed == 2)
        // Day -40 held only /short: dropped. Day -39 is kept for /kept; /short's row there was deleted.
        let name = PostgresStoreTests.partitionName(now - 40 * day)
        #expect(try await cluster.psqlAsync("SELECT to_regclass('\(name)') IS NULL", database: database).contains("t"))
        let left = try await store.query(LogQueryRequest(text: "fields @message | sort @message asc", now: now))
        #expect(Self.render(left) == "kept 39;short 2")
        await store.close()
    }

    /// A store on a new database taking the given ingest path, with the cluster and the
    /// database's name (for psql).
    static func store(ingest method: PostgresStore.IngestMethod) async throws -> (PostgresCluster, String, PostgresStore)? {
        guard let (cluster, url) = try await database() else { return nil }
        let store = try await PostgresStore.connect(url: url, access: .readWrite)
        store.ingest = method
        return (cluster, String(url.split(separator: "/").last!.split(separator: "?").first!), store)
    }

    @Test("a replayed batch is stored and counted once on either ingest path; a partly new batch adds its new rows only",
          arguments: [PostgresStore.IngestMethod.copyFirst, .onConflict])
    func replaysStoredOnce(_ method: PostgresStore.IngestMethod) async throws {
        guard let (cluster, database, store) = try await Self.store(ingest: method) else { return }
        let base: Int64 = 1_795_000_000_000
        // A CloudTrail record naming two resources of one type: one lookup row for that pair.
        let record = #"{"eventID":"e-1","eventName":"RunInstances","eventSource":"ec2.amazonaws.com","userIdentity":{"userName":"ann"},"#
            + #""resources":[{"type":"AWS::EC2::Instance","ARN":"arn:a"},{"type":"AWS::EC2::Instance","ARN":"arn:b"}]}"#
        func batch(_ range: Range<Int>) -> LogBatch {
            var builder = LogBatchBuilderLite()
            for i in range {
                builder.add(group: "/app", stream: i % 2 == 0 ? "a" : "b", time: base + Int64(i) * 1000, message: i == 3 ? record : "line \(i)")
            }
            return builder.batch(ingestionTime: base + 100_000)
        }
        func bytes(_ range: Range<Int>, stream: String) -> Int64 {
            Int64(range.filter { ($0 % 2 == 0) == (stream == "a") }.map { $0 == 3 ? record.utf8.count : "line \($0)".utf8.count }.reduce(0, +))
        }
        func storedBytes() async throws -> [Int64] {
            try await store.logStreams(LogStreamsRequest(group: "/app")).streams.map(\.storedBytes)
        }
        #expect(try await store.write(.logs(batch(0..<20))) == 20)
        #expect(store.batchesThroughStaging == (method == .copyFirst ? 0 : 1))
        #expect(try await store.write(.logs(batch(0..<20))) == 0)
        #expect(!store.expectNewRows)
        // Ten stored, ten new: exactly the new ones count, and their bytes only.
        #expect(try await store.write(.logs(batch(10..<30))) == 10)
        #expect(!store.expectNewRows)
        // All new again (through staging, after a replay); the batch after goes straight in.
        #expect(try await store.write(.logs(batch(30..<40))) == 10)
        #expect(store.expectNewRows)
        #expect(try await store.write(.logs(batch(40..<50))) == 10)
        #expect(store.batchesThroughStaging == (method == .copyFirst ? 3 : 5))
        #expect(try await store.count(.logEvents) == 50)
        #expect(try await storedBytes() == [bytes(0..<50, stream: "a"), bytes(0..<50, stream: "b")])
        let lookupRows = try await cluster.psqlAsync("SELECT count(*) FROM cloudtrail_lookup WHERE attribute = 'ResourceType'", database: database)
        #expect(lookupRows.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        let found = try await store.lookupEvents(attribute: "ResourceName", value: "arn:b", start: nil, end: nil, maxResults: 10)
        #expect(found.count == 1)
        // A replay of the CloudTrail record alone (its lookup rows stored too) adds nothing.
        #expect(try await store.write(.logs(batch(3..<4))) == 0)
        await store.close()
    }

    @Test("batches written together share one COPY; a replayed batch among them sends them all through staging, each new row once",
          arguments: [PostgresStore.IngestMethod.copyFirst, .onConflict])
    func batchesTogether(_ method: PostgresStore.IngestMethod) async throws {
        guard let (cluster, database, store) = try await Self.store(ingest: method) else { return }
        let base: Int64 = 1_795_000_000_000
        func record(_ i: Int) -> String {
            #"{"eventID":"e-\#(i)","eventName":"RunInstances","eventSource":"ec2.amazonaws.com","userIdentity":{"userName":"ann"}}"#
        }
        func batch(_ range: Range<Int>, stream: String) -> LogBatch {
            var builder = LogBatchBuilderLite()
            for i in range { builder.add(group: "/app", stream: stream, time: base + Int64(i) * 1000, message: i % 4 == 0 ? record(i) : "line \(i)") }
            return builder.batch(ingestionTime: base + 100_000)
        }
        func stored() async throws -> (events: Int, lookups: String, bytes: [Int64]) {
            let lookups = try await cluster.psqlAsync("SELECT count(*) FROM cloudtrail_lookup WHERE attribute = 'EventId'", database: database)
            return (try await store.count(.logEvents), lookups.trimmingCharacters(in: .whitespacesAndNewlines),
                    try await store.logStreams(LogStreamsRequest(group: "/app")).streams.map(\.storedBytes))
        }
        func bytes(_ ranges: Range<Int>...) -> Int64 {
            var total = 0
            for i in ranges.flatMap({ Array($0) }) { total += i % 4 == 0 ? record(i).utf8.count : "line \(i)".utf8.count }
            return Int64(total)
        }
        #expect(try await store.write(logs: [batch(0..<10, stream: "a"), batch(10..<30, stream: "b"), batch(30..<35, stream: "a")]) == 35)
        #expect(store.batchesThroughStaging == (method == .copyFirst ? 0 : 3))
        var now = try await stored()
        #expect(now.events == 35 && now.lookups == "9" && now.bytes == [bytes(0..<10, 30..<35), bytes(10..<30)])
        // The middle batch was written before: nothing of the first COPY stays, and each batch is
        // merged through staging — the new rows once, the replayed ones not again.
        #expect(try await store.write(logs: [batch(35..<40, stream: "a"), batch(10..<30, stream: "b"), batch(40..<48, stream: "b")]) == 13)
        #expect(store.batchesThroughStaging == (method == .copyFirst ? 3 : 6))
        now = try await stored()
        #expect(now.events == 48 && now.lookups == "12" && now.bytes == [bytes(0..<10, 30..<40), bytes(10..<30, 40..<48)])
        // All new again: after a staging batch that added all of its rows, straight in.
        #expect(try await store.write(logs: [batch(48..<50, stream: "a"), batch(50..<52, stream: "a")]) == 4)
        #expect(store.batchesThroughStaging == (method == .copyFirst ? 3 : 8))
        #expect(try await stored().events == 52)
        await store.close()
    }

    @Test("a replay of large batches whose COPY waits for the server when the unique violation comes goes through staging and adds nothing",
          arguments: [nil, 4096])
    func largeReplay(sendBufferBytes: Int?) async throws {
        guard let (_, url) = try await Self.database() else { return }
        // With a small send buffer every COPY piece waits for the server to read the one before,
        // so the replay's unique violation arrives while a write waits: postgres-nio 1.33 then
        // forgets the write (it never returns) unless trailwatch waits for the channel itself.
        let store = try await PostgresStore.connect(url: url, access: .readWrite, sendBufferBytes: sendBufferBytes)
        let base: Int64 = 1_795_000_000_000
        let filler = String(repeating: "x", count: 100)
        let batches = (0..<3).map { part in
            var builder = LogBatchBuilderLite()
            for i in (part * 12_000)..<((part + 1) * 12_000) { builder.add(group: "/app", stream: "s", time: base + Int64(i), message: "line \(i) \(filler)") }
            return builder.batch(ingestionTime: base)
        }
        #expect(try await store.write(logs: batches) == 36_000)
        // Watched with a deadline, so that a write that never returns fails the test (and is
        // left behind) instead of stalling the run.
        let done = LockedFlag()
        nonisolated(unsafe) let writer = store  // used by this task alone until it is done
        let replay = Task {
            defer { done.set() }
            return try await writer.write(logs: batches)
        }
        var finished = false
        for _ in 0..<200 where !finished {
            try await Task.sleep(nanoseconds: 100_000_000)
            finished = done.isSet
        }
        #expect(finished, "the replay's write did not return")
        guard finished else { return }
        #expect(try await replay.value == 0)
        #expect(try await store.write(logs: [batches[1]]) == 0)
        #expect(try await store.count(.logEvents) == 36_000)
        await store.close()
    }

    @Test("awkward bytes go in by binary COPY and come back: tabs, newlines, backslashes, unicode; NUL and invalid UTF-8 as U+FFFD",
          arguments: [PostgresStore.IngestMethod.copyFirst, .onConflict])
    func awkwardBytes(_ method: PostgresStore.IngestMethod) async throws {
        guard let (_, url) = try await Self.database() else { return }
        let store = try await PostgresStore.connect(url: url, access: .readWrite)
        store.ingest = method
        let messages: [[UInt8]] = [
            Array("tab\there, newline\nthere, cr\r, backslash \\ and \\N, a \\. line".utf8),
            Array("ünïcödé ✓ 日本語 😀".utf8),
            [0x41, 0x00, 0x42, 0xFF, 0xC3, 0x28, 0xE2, 0x82, 0x41, 0x7F, 0x01],
            [], Array(repeating: UInt8(ascii: "x"), count: 70_000),
        ]
        let expected = ["tab\there, newline\nthere, cr\r, backslash \\ and \\N, a \\. line", "ünïcödé ✓ 日本語 😀",
                        "A\u{FFFD}B\u{FFFD}\u{FFFD}(\u{FFFD}A\u{7F}\u{01}", "", String(repeating: "x", count: 70_000)]
        let base: Int64 = 1_795_000_000_000
        var batch = LogBatch(storage: ByteStorage(copying: messages.flatMap { $0 }), defaultTimestamp: 0, ingestionTime: base + 5,
                             origin: Origin(logGroup: "/awk\tward", logStream: "stream\\one"))
        var offset = 0
        for (i, message) in messages.enumerated() {
            batch.append(start: offset, length: message.count, timestamp: base + Int64(i), originIndex: 0)
            offset += message.count
        }
        #expect(try await store.write(.logs(batch)) == messages.count)
        #expect(try await store.write(.logs(batch)) == 0)
        let page = try await store.logEvents(LogEventsRequest(logGroup: "/awk\tward"))
        #expect(page.events.map(\.message) == expected)
        #expect(page.events.allSatisfy { $0.logStream == "stream\\one" && $0.ingestionTime == base + 5 })
        #expect(page.events.map(\.timestamp) == (0..<Int64(messages.count)).map { base + $0 })
        await store.close()
    }

    @Test("several batches in one transaction (the sink's coalesced batches): each adds its new rows only, on either ingest path",
          arguments: [PostgresStore.IngestMethod.copyFirst, .onConflict])
    func coalescedBatches(_ method: PostgresStore.IngestMethod) async throws {
        guard let (_, url) = try await Self.database() else { return }
        let store = try await PostgresStore.connect(url: url, access: .readWrite)
        store.ingest = method
        let base: Int64 = 1_795_000_000_000
        func batch(_ range: Range<Int>, day: Int64 = 0) -> LogBatch {
            var builder = LogBatchBuilderLite()
            for i in range { builder.add(group: "/app", stream: "s\(i % 3)", time: base + day * PostgresStore.dayMillis + Int64(i), message: "line \(i)") }
            return builder.batch(ingestionTime: base)
        }
        let empty = LogBatch(storage: ByteStorage(copying: []), defaultTimestamp: 0, ingestionTime: 0, origin: Origin(logGroup: "/app", logStream: "s0"))
        #expect(try await store.write(logs: [batch(0..<100), batch(100..<200, day: 1), empty]) == 200)
        // A replayed batch, a partly new one and a new one: staging serves two batches of one transaction.
        #expect(try await store.write(logs: [batch(0..<100), batch(150..<250, day: 1), batch(300..<350)]) == 100)
        #expect(try await store.count(.logEvents) == 300)
        let streams = try await store.logStreams(LogStreamsRequest(group: "/app")).streams
        let stored: [Int] = Array(0..<250) + Array(300..<350)
        let bytes: Int = stored.map { "line \($0)".utf8.count }.reduce(0, +)
        #expect(streams.map(\.storedBytes).reduce(0, +) == Int64(bytes))
        await store.close()
    }

    static func partitionName(_ day: Int64) -> String {
        let date = Date(timeIntervalSince1970: Double(day) / 1000)
        let formatter = DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd"
        return "log_events_p" + formatter.string(from: date)
    }

    @Test("a wrong password or an unreachable server: a clear error naming the store, never the password")
    func connectionErrors() async throws {
        guard let (cluster, url) = try await Self.database() else { return }
        let wrong = url.replacingOccurrences(of: PostgresCluster.password, with: "not-the-password")
        let (status, out, err) = try await runTool(trailwatchBinary(), ["query", wrong, "stats count(*)"])
        #expect(status != 0)
        #expect(err.contains("password authentication failed") && err.contains("127.0.0.1:\(cluster.port)"), "\(err)")
        #expect(!(out + err).contains("not-the-password"))
        let closed = "postgres://trailwatch:sekrit@127.0.0.1:\(PostgresCluster.freePort())/nowhere?sslmode=disable"
        let (status2, out2, err2) = try await runTool(trailwatchBinary(), ["events", closed, "--lookup", "EventName=x"])
        #expect(status2 != 0 && err2.contains("cannot connect") && err2.contains("127.0.0.1"), "\(err2)")
        #expect(!(out2 + err2).contains("sekrit"))
        // A run whose store refuses the password stops with the error, naming the store.
        let dir = TemporaryDirectory()
        _ = dir.write("a.log", "one\n")
        let pipeline = dir.write("p.yaml", """
            data_dir: \(dir.file("state"))
            sources: { app: { type: file, include: \(dir.file("a.log")) } }
            sinks: { db: { type: store, inputs: [app], url: "\(wrong)" } }
            """)
        let (status3, out3, err3) = try await runTool(trailwatchBinary(), ["run", pipeline, "--once"])
        #expect(status3 != 0 && err3.contains("password authentication failed"), "\(err3)")
        #expect(!(out3 + err3).contains("not-the-password"))
    }

    @Test("the server stops mid-ingest and comes back: the sink retries with backoff, checkpoints wait, nothing is lost or doubled")
    func serverRestartMidIngest() async throws {
        guard let (cluster, url) = try await Self.database() else { return }
        let dir = TemporaryDirectory()
        // Several of the sink's transactions (up to 4 MiB each), so the server stops between them.
        let total = 600_000
        _ = dir.write("logs/app.log", (0..<total).map { "2026-11-24T10:00:00.\(String($0 % 1000).leftPad(3))Z line \($0)\n" }.joined())
        let pipeline = dir.write("p.yaml", """
            data_dir: \(dir.file("state"))
            sources:
              app: { type: file, include: \(dir.file("logs"))/app.log, timestamp: { regex: '^([^ ]+)' }, checkpoint_interval: 50ms }
            sinks:
              db: { type: store, inputs: [app], url: "\(url)" }
            """)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: trailwatchBinary())
        process.arguments = ["run", pipeline]
        let errors = dir.file("stderr.log")
        _ = FileManager.default.createFile(atPath: errors, contents: nil)
        process.standardError = FileHandle(forWritingAtPath: errors)
        process.standardOutput = FileHandle.nullDevice
        try launchProcess(process)
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        func stored() async -> Int {
            guard let store = try? await PostgresStore.connect(url: url, access: .readOnly) else { return -1 }
            let n = (try? await store.count(.logEvents)) ?? -1
            await store.close()
            return n
        }
        // Stop the server once some, not all, events are in; bring it back while the sink retries.
        var before = 0
        for _ in 0..<1000 where before == 0 {
            before = max(0, await stored())
            await pause(0.01)
        }
        try await cluster.stopAsync()
        await pause(2)
        try await cluster.startAsync()
        #expect(before > 0 && before < total, "stopped the server after \(before) of \(total) events")
        var count = 0
        for _ in 0..<600 where count < total {
            count = await stored()
            await pause(0.1)
        }
        kill(process.processIdentifier, SIGTERM)
        await Child.exit(of: process)
        let log = dir.read("stderr.log")
        #expect(log.contains("retrying in"), "\(log.suffix(2000))")
        #expect(!log.contains(PostgresCluster.password))
        let after = try await PostgresStore.connect(url: url, access: .readOnly)
        #expect(try await after.count(.logEvents) == total)
        await after.close()
    }
}

/// A flag one task sets and another reads.
final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
