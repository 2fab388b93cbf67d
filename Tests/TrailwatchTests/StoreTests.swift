import Foundation
import Synchronization
import Glibc
import Testing
import TrailwatchCore
import TrailwatchStore
import TrailwatchTestSupport

@Suite("SQLite store", .serialized)
struct StoreTests {
    @Test("the sqlite sink is idempotent, indexes CloudTrail records, and events looks them up newest first")
    func sinkAndLookup() async throws {
        let dir = TemporaryDirectory()
        let samples = TestPaths.repositoryRoot.appendingPathComponent("samples/cloudtrail").path
        let pipeline = """
            sources:
              trail: { type: cloudtrail, include: '\(samples)/**/*.json.gz' }
            sinks:
              db: { type: sqlite, inputs: [trail], path: \(dir.file("store.db")) }
            """
        _ = try await runOnce(pipeline)
        _ = try await runOnce(pipeline)   // the same records again
        let store = try SQLiteStore(path: dir.file("store.db"))
        #expect(try store.count(.logEvents) == 768)
        var st = stat()
        stat(dir.file("store.db"), &st)
        #expect(st.st_mode & 0o777 == 0o640)
        let (status, out, _) = try await runTool(trailwatchBinary(), ["events", dir.file("store.db"), "--lookup", "EventName=GetPasswordData",
                                                                 "--max-results", "5", "--format", "json"])
        #expect(status == 0)
        let records = try #require((try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])?["Records"] as? [[String: Any]])
        #expect(records.count == 5)
        #expect(records.allSatisfy { $0["eventName"] as? String == "GetPasswordData" })
        let times = records.compactMap { $0["eventTime"] as? String }
        #expect(times == times.sorted(by: >))
        // Every LookupEvents attribute finds the record it was taken from.
        let sample = try #require(records.first)
        let identity = sample["userIdentity"] as? [String: Any] ?? [:]
        var probes: [(String, String)] = [("EventId", sample["eventID"] as! String), ("EventSource", sample["eventSource"] as! String),
                                         ("ReadOnly", String(describing: sample["readOnly"] as? Bool ?? false))]
        if let key = identity["accessKeyId"] as? String { probes.append(("AccessKeyId", key)) }
        // CloudTrail's Username: userName, else the session issuer's user name, else the ARN's last part.
        let issuer = ((identity["sessionContext"] as? [String: Any])?["sessionIssuer"] as? [String: Any])?["userName"] as? String
        if let user = (identity["userName"] as? String) ?? issuer ?? (identity["arn"] as? String)?.split(separator: "/").last.map(String.init) {
            probes.append(("Username", user))
        }
        for (attribute, value) in probes {
            let found = try await store.lookupEvents(attribute: attribute, value: value, start: nil, end: nil, maxResults: 1000)
            #expect(found.contains { $0.contains(sample["eventID"] as! String) }, "\(attribute)=\(value)")
        }
        // Resources: every record with resources is found by its type and by its ARN.
        let withResources = try await store.lookupEvents(attribute: "ResourceType", value: "AWS::EC2::Instance", start: nil, end: nil, maxResults: 1000)
            + (try await store.lookupEvents(attribute: "ResourceType", value: "AWS::S3::Bucket", start: nil, end: nil, maxResults: 1000))
        for record in withResources.prefix(5) {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(record.utf8)) as? [String: Any])
            let arn = try #require((object["resources"] as? [[String: Any]])?.first?["ARN"] as? String)
            #expect(try await store.lookupEvents(attribute: "ResourceName", value: arn, start: nil, end: nil, maxResults: 1000).contains(record))
        }
        let early = try await store.lookupEvents(attribute: "EventName", value: "GetPasswordData", start: nil,
                                           end: Array("2026-11-16T13:07:16Z".utf8).withUnsafeBytes { Timestamps.parseISO8601($0) }, maxResults: 1000)
        #expect(early.allSatisfy { !$0.contains("2026-11-16T13:07:16Z") })
        let (badStatus, _, err) = try await runTool(trailwatchBinary(), ["events", dir.file("store.db"), "--lookup", "Colour=blue"])
        #expect(badStatus != 0 && err.contains("EventName"))
    }

    @Test("metrics and detector events are stored once; retention deletes old events of its group only")
    func metricsEventsRetention() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("logs/app.log", """
            {"time":"2020-01-01T00:00:00Z","level":"ERROR"}
            {"time":"2020-01-01T00:00:30Z","level":"INFO"}
            {"time":"2099-01-01T00:00:00Z","level":"ERROR"}

            """)
        _ = dir.write("logs/other.log", "{\"time\":\"2020-01-01T00:00:00Z\"}\n")
        let pipeline = """
            sources:
              app: { type: file, include: \(dir.file("logs"))/app.log, log_group: /app, timestamp: { field: $.time } }
              other: { type: file, include: \(dir.file("logs"))/other.log, log_group: /other, timestamp: { field: $.time } }
            transforms:
              errors: { type: metric_filter, inputs: [app], pattern: '{ $.level = "ERROR" }', metric_namespace: T, metric_name: Errors, metric_value: 1 }
            sinks:
              db: { type: sqlite, inputs: [app, other, errors], path: \(dir.file("store.db")), retention_days: { /app: 30 } }
            """
        _ = try await runOnce(pipeline)
        _ = try await runOnce(pipeline)
        let store = try SQLiteStore(path: dir.file("store.db"))
        #expect(try store.count(.metricDatapoints) == 2)
        // /app keeps only its 2099 event; /other has no retention.
        #expect(try store.count(.logEvents) == 2)
    }

    @Test("kill -9 during ingest loses no acknowledged batch")
    func crashDuringIngest() async throws {
        let dir = TemporaryDirectory()
        let total = 200_000
        _ = dir.write("logs/app.log", (0..<total).map { "2026-11-24T10:00:00.\(String($0 % 1000).leftPad(3))Z line \($0)\n" }.joined())
        let pipeline = dir.write("p.yaml", """
            data_dir: \(dir.file("state"))
            sources:
              app: { type: file, include: \(dir.file("logs"))/app.log, timestamp: { regex: '^([^ ]+)' }, checkpoint_interval: 50ms }
            sinks:
              db: { type: sqlite, inputs: [app], path: \(dir.file("store.db")) }
            """)
        for _ in 0..<3 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: trailwatchBinary())
            process.arguments = ["run", pipeline, "--quiet"]
            process.standardError = FileHandle.nullDevice
            try launchProcess(process)
            await pause(Double.random(in: 0.3...0.8))
            kill(process.processIdentifier, SIGKILL)
            await Child.exit(of: process)
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: trailwatchBinary())
        process.arguments = ["run", pipeline, "--quiet"]
        process.standardError = FileHandle.nullDevice
        try launchProcess(process)
        #expect(await eventually(120) { ((try? SQLiteStore(path: dir.file("store.db")).count(.logEvents)) ?? 0) >= total })
        kill(process.processIdentifier, SIGTERM)
        await Child.exit(of: process)
        // Every line once: replays after the kills were absorbed by the idempotent keys.
        #expect(try SQLiteStore(path: dir.file("store.db")).count(.logEvents) == total)
    }

    @Test("openers of a new file at the same moment all succeed: the schema is migrated once, under one lock")
    func concurrentFirstOpen() throws {
        // An API source's catalog and a store sink open the same new file when a pipeline starts;
        // both used to add the version-2 columns, and the second died on "duplicate column name".
        for _ in 0..<25 {
            let dir = TemporaryDirectory()
            let path = dir.file("store.db")
            let failures = Mutex<[String]>([])
            DispatchQueue.concurrentPerform(iterations: 4) { _ in
                do { _ = try SQLiteStore(path: path) } catch { failures.withLock { $0.append("\(error)") } }
            }
            #expect(failures.withLock { $0 } == [])
            let store = try SQLiteStore(path: path)
            #expect(try store.count(.logEvents) == 0)
        }
    }
}
