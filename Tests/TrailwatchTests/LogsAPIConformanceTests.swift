import AWSWire
import Foundation
import Testing
import TrailwatchAPI
import TrailwatchCore
import TrailwatchPostgres
import TrailwatchStages
import TrailwatchStore
import TrailwatchTestSupport

/// The CloudWatch Logs API over each store backend, the same calls and answers: groups and
/// streams with their statistics, paged event reads, queries, metric filters, retention and
/// deletes. The ingest writes accepted batches to the store as the pipeline's store sink does.
enum LogsAPIConformance {
    static let now: Int64 = 1_795_000_000_000

    /// What a pipeline with a store sink does with accepted batches: writes them, then answers.
    final class StoreIngest: LogsIngest, @unchecked Sendable {
        let location: StoreLocation
        init(_ location: StoreLocation) { self.location = location }
        func ingest(_ batch: LogBatch) async throws(AWSError) {
            do {
                let store = try await StoreOpener.open(location, access: .readWrite)
                try await store.write(.logs(batch))
                await store.close()
            } catch {
                throw AWSError.serviceUnavailable("\(error)")
            }
        }
        func metricFiltersChanged() {}
    }

    struct Client {
        let service: CloudWatchLogsService
        func call(_ operation: String, _ body: [String: Any]) async -> (status: Int, json: [String: Any]) {
            let data = try! JSONSerialization.data(withJSONObject: body)
            let reply = await service.handle(AWSOperationCall(wireProtocol: .awsJSON1_1, service: "Logs_20140328", operation: operation,
                                                              body: Array(data), principal: .anonymous, requestID: "r"))
            return (reply.status, (try? JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any]) ?? [:])
        }
        func ok(_ operation: String, _ body: [String: Any], sourceLocation: SourceLocation = #_sourceLocation) async -> [String: Any] {
            let (status, json) = await call(operation, body)
            #expect(status == 200, "\(operation): \(json)", sourceLocation: sourceLocation)
            return json
        }
        func error(_ operation: String, _ body: [String: Any]) async -> String? {
            await call(operation, body).json["__type"] as? String
        }
    }

    static func run(_ location: StoreLocation) async throws {
        BuiltinStages.registerStoreBackends()
        let pool = StorePool(location: location, access: .readWrite, maximum: 3)
        let service = CloudWatchLogsService(pool: pool, ingest: StoreIngest(location), now: { now })
        let api = Client(service: service)

        // Groups and streams.
        _ = await api.ok("CreateLogGroup", ["logGroupName": "/app"])
        #expect(await api.error("CreateLogGroup", ["logGroupName": "/app"]) == "ResourceAlreadyExistsException")
        _ = await api.ok("CreateLogGroup", ["logGroupName": "/other"])
        _ = await api.ok("CreateLogGroup", ["logGroupName": "/zeta"])
        for stream in ["web-1", "web-2", "idle"] { _ = await api.ok("CreateLogStream", ["logGroupName": "/app", "logStreamName": stream]) }
        #expect(await api.error("CreateLogStream", ["logGroupName": "/app", "logStreamName": "idle"]) == "ResourceAlreadyExistsException")
        #expect(await api.error("CreateLogStream", ["logGroupName": "/missing", "logStreamName": "s"]) == "ResourceNotFoundException")

        // Events: 30 in web-1 (every fifth an ERROR), 10 in web-2, a second apart.
        func events(_ range: Range<Int>) -> [[String: Any]] {
            range.map { ["timestamp": now - 100_000 + Int64($0) * 1000, "message": "request \($0) \($0 % 5 == 0 ? "ERROR" : "ok")"] }
        }
        let first = events(0..<30), second = events(30..<40)
        _ = await api.ok("PutLogEvents", ["logGroupName": "/app", "logStreamName": "web-1", "logEvents": first])
        _ = await api.ok("PutLogEvents", ["logGroupName": "/app", "logStreamName": "web-2", "logEvents": second])
        // A client retrying a batch: stored once, counted once.
        _ = await api.ok("PutLogEvents", ["logGroupName": "/app", "logStreamName": "web-2", "logEvents": second])
        let bytes = { (list: [[String: Any]]) in list.reduce(0) { $0 + ($1["message"] as! String).utf8.count } }

        // DescribeLogGroups: prefix, pattern, pages, stored bytes.
        let app = (await api.ok("DescribeLogGroups", ["logGroupNamePrefix": "/app"])["logGroups"] as? [[String: Any]])?.first
        #expect(app?["logGroupName"] as? String == "/app")
        #expect(app?["storedBytes"] as? Int == bytes(first) + bytes(second))
        #expect(app?["creationTime"] as? Int64 == now)
        let patterned = await api.ok("DescribeLogGroups", ["logGroupNamePattern": "ther"])["logGroups"] as? [[String: Any]]
        #expect(patterned?.compactMap { $0["logGroupName"] as? String } == ["/other"])
        var names: [String] = []
        var token: String?
        repeat {
            var body: [String: Any] = ["limit": 2]
            if let token { body["nextToken"] = token }
            let page = await api.ok("DescribeLogGroups", body)
            names += (page["logGroups"] as? [[String: Any]] ?? []).compactMap { $0["logGroupName"] as? String }
            token = page["nextToken"] as? String
        } while token != nil
        #expect(names == ["/app", "/other", "/zeta"])

        // DescribeLogStreams: statistics, orders, pages.
        let streams = await api.ok("DescribeLogStreams", ["logGroupName": "/app"])["logStreams"] as? [[String: Any]] ?? []
        #expect(streams.compactMap { $0["logStreamName"] as? String } == ["idle", "web-1", "web-2"])
        let web1 = streams.first { $0["logStreamName"] as? String == "web-1" }
        #expect(web1?["firstEventTimestamp"] as? Int64 == now - 100_000)
        #expect(web1?["lastEventTimestamp"] as? Int64 == now - 100_000 + 29_000)
        #expect(web1?["lastIngestionTime"] as? Int64 == now)
        #expect(web1?["storedBytes"] as? Int == bytes(first))
        #expect(streams.first?["firstEventTimestamp"] == nil && streams.first?["storedBytes"] as? Int == 0)
        var byTime: [String] = []
        token = nil
        repeat {
            var body: [String: Any] = ["logGroupName": "/app", "orderBy": "LastEventTime", "descending": true, "limit": 1]
            if let token { body["nextToken"] = token }
            let page = await api.ok("DescribeLogStreams", body)
            byTime += (page["logStreams"] as? [[String: Any]] ?? []).compactMap { $0["logStreamName"] as? String }
            token = page["nextToken"] as? String
        } while token != nil
        #expect(byTime == ["web-2", "web-1", "idle"])
        #expect(await api.error("DescribeLogStreams", ["logGroupName": "/app", "nextToken": "garbage"]) == "InvalidParameterException")

        // GetLogEvents: from the head in pages, then back.
        let head = await api.ok("GetLogEvents", ["logGroupName": "/app", "logStreamName": "web-1", "startFromHead": true, "limit": 10])
        #expect((head["events"] as? [[String: Any]])?.compactMap { $0["message"] as? String } == first.prefix(10).map { $0["message"] as! String })
        let next = await api.ok("GetLogEvents", ["logGroupName": "/app", "logStreamName": "web-1", "limit": 10,
                                                 "nextToken": head["nextForwardToken"] as! String])
        #expect((next["events"] as? [[String: Any]])?.first?["message"] as? String == "request 10 ERROR")
        let back = await api.ok("GetLogEvents", ["logGroupName": "/app", "logStreamName": "web-1", "limit": 5,
                                                 "nextToken": next["nextBackwardToken"] as! String])
        #expect((back["events"] as? [[String: Any]])?.compactMap { $0["message"] as? String } == first[5..<10].map { $0["message"] as! String })
        let tail = await api.ok("GetLogEvents", ["logGroupName": "/app", "logStreamName": "web-1", "limit": 3])
        #expect((tail["events"] as? [[String: Any]])?.last?["message"] as? String == "request 29 ok")

        // FilterLogEvents: a pattern over the group, pages, a stream prefix.
        var matched: [String] = []
        token = nil
        repeat {
            var body: [String: Any] = ["logGroupName": "/app", "filterPattern": "ERROR", "limit": 3]
            if let token { body["nextToken"] = token }
            let page = await api.ok("FilterLogEvents", body)
            matched += (page["events"] as? [[String: Any]] ?? []).compactMap { $0["message"] as? String }
            token = page["nextToken"] as? String
        } while token != nil
        #expect(matched == stride(from: 0, to: 40, by: 5).map { "request \($0) ERROR" })
        let prefixed = await api.ok("FilterLogEvents", ["logGroupName": "/app", "logStreamNamePrefix": "web-2"])["events"] as? [[String: Any]]
        #expect(prefixed?.count == 10 && prefixed?.allSatisfy { $0["logStreamName"] as? String == "web-2" } == true)

        // StartQuery / GetQueryResults.
        let started = await api.ok("StartQuery", ["logGroupName": "/app", "startTime": (now - 200_000) / 1000, "endTime": now / 1000,
                                                  "queryString": "filter @message like /ERROR/ | stats count(*) as errors"])
        let id = try #require(started["queryId"] as? String)
        var results: [String: Any] = [:]
        for _ in 0..<200 {
            results = await api.ok("GetQueryResults", ["queryId": id])
            if results["status"] as? String != "Running" { break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        #expect(results["status"] as? String == "Complete", "\(results)")
        #expect((results["results"] as? [[[String: String]]])?.first?.first == ["field": "errors", "value": "8"])
        #expect((results["statistics"] as? [String: Double])?["recordsScanned"] == 40)

        // Metric filters: kept as documents, counted on their group, listed, deleted.
        let transformation: [String: Any] = ["metricName": "Errors", "metricNamespace": "App", "metricValue": "1"]
        _ = await api.ok("PutMetricFilter", ["logGroupName": "/app", "filterName": "errors", "filterPattern": "ERROR", "metricTransformations": [transformation]])
        _ = await api.ok("PutMetricFilter", ["logGroupName": "/other", "filterName": "all", "filterPattern": "", "metricTransformations": [transformation]])
        let counted = (await api.ok("DescribeLogGroups", ["logGroupNamePrefix": "/app"])["logGroups"] as? [[String: Any]])?.first
        #expect(counted?["metricFilterCount"] as? Int == 1)
        #expect(try await service.loadMetricFilters().map { "\($0.group) \($0.name)" } == ["/app errors", "/other all"])
        let described = await api.ok("DescribeMetricFilters", ["logGroupName": "/app"])["metricFilters"] as? [[String: Any]]
        #expect(described?.first?["filterPattern"] as? String == "ERROR" && described?.first?["creationTime"] as? Int64 == now)
        _ = await api.ok("DeleteMetricFilter", ["logGroupName": "/other", "filterName": "all"])
        #expect(await api.error("DeleteMetricFilter", ["logGroupName": "/other", "filterName": "all"]) == "ResourceNotFoundException")

        // Retention.
        _ = await api.ok("PutRetentionPolicy", ["logGroupName": "/app", "retentionInDays": 7])
        let retained = (await api.ok("DescribeLogGroups", ["logGroupNamePrefix": "/app"])["logGroups"] as? [[String: Any]])?.first
        #expect(retained?["retentionInDays"] as? Int == 7)
        _ = await api.ok("DeleteRetentionPolicy", ["logGroupName": "/app"])

        // Deletes take events, streams and metric filters along.
        _ = await api.ok("DeleteLogStream", ["logGroupName": "/app", "logStreamName": "web-2"])
        #expect(await api.error("DeleteLogStream", ["logGroupName": "/app", "logStreamName": "web-2"]) == "ResourceNotFoundException")
        let remaining = await api.ok("FilterLogEvents", ["logGroupName": "/app"])["events"] as? [[String: Any]]
        #expect(remaining?.count == 30)
        _ = await api.ok("DeleteLogGroup", ["logGroupName": "/app"])
        #expect(await api.error("DescribeLogStreams", ["logGroupName": "/app"]) == "ResourceNotFoundException")
        #expect(try await service.loadMetricFilters().isEmpty)
        let left = await api.ok("DescribeLogGroups", [:])["logGroups"] as? [[String: Any]]
        #expect(left?.compactMap { $0["logGroupName"] as? String } == ["/other", "/zeta"])
        await service.shutdown()
    }
}

@Suite("CloudWatch Logs API over a store", .serialized)
struct LogsAPIConformanceTests {
    @Test("SQLite: groups, streams, reads, queries, metric filters, retention and deletes")
    func sqlite() async throws {
        let dir = TemporaryDirectory()
        try await LogsAPIConformance.run(.sqlite(path: dir.file("store.db")))
    }

    @Test("PostgreSQL: the same calls give the same answers")
    func postgres() async throws {
        guard let (_, url) = try await PostgresStoreTests.database("api") else { return }
        try await LogsAPIConformance.run(.postgres(url: url))
    }
}

@Suite("SQLite store migration")
struct SQLiteCatalogMigrationTests {
    @Test("a version-2 store with the API's former api_* tables: they move into the store's tables and documents, then go")
    func formerCatalogTables() async throws {
        let dir = TemporaryDirectory()
        let path = dir.file("store.db")
        _ = try SQLiteStore(path: path)
        // Make it what version 2 with the API's own catalog tables looked like.
        let (status, _, errors) = try await runProgram(["sqlite3", path, """
            DELETE FROM schema_version WHERE version >= 3;
            ALTER TABLE log_streams DROP COLUMN last_ingestion;
            ALTER TABLE log_streams DROP COLUMN stored_bytes;
            CREATE TABLE api_log_groups(name TEXT PRIMARY KEY, creation_time INTEGER NOT NULL);
            CREATE TABLE api_log_streams(log_group TEXT NOT NULL, log_stream TEXT NOT NULL, creation_time INTEGER NOT NULL,
                first_event INTEGER, last_event INTEGER, last_ingestion INTEGER, stored_bytes INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY(log_group, log_stream));
            CREATE TABLE api_metric_filters(log_group TEXT NOT NULL, name TEXT NOT NULL, pattern TEXT NOT NULL,
                transformations TEXT NOT NULL, creation_time INTEGER NOT NULL, PRIMARY KEY(log_group, name));
            INSERT INTO api_log_groups VALUES ('/app', 1000);
            INSERT INTO api_log_streams VALUES ('/app', 'web-1', 1500, 2000, 3000, 3500, 1234);
            INSERT INTO api_metric_filters VALUES ('/app', 'errors', 'ERROR', '[{"metricName":"E","metricNamespace":"A","metricValue":"1"}]', 1600);
            """])
        #expect(status == 0, "\(errors)")
        let store = try SQLiteStore(path: path)
        #expect(try store.logGroups(prefix: nil, after: nil, limit: 10) == [StoredLogGroup(name: "/app", retentionDays: nil, creationTime: 1000, storedBytes: 1234)])
        #expect(try await store.logStreams(group: "/app", prefix: nil, after: nil, limit: 10)
                == [StoredLogStream(name: "web-1", creationTime: 1500, firstEvent: 2000, lastEvent: 3000, lastIngestion: 3500, storedBytes: 1234)])
        let filter = try #require(try store.document(kind: MetricFilterRecord.kind, name: "/app:errors"))
        let record = try #require(MetricFilterRecord(filter))
        #expect(record == MetricFilterRecord(group: "/app", name: "errors", pattern: "ERROR",
                                             transformations: #"[{"metricName":"E","metricNamespace":"A","metricValue":"1"}]"#, creationTime: 1600))
        let tables = try await runProgram(["sqlite3", path, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'api_%'"]).1
        #expect(tables.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
    }
}
