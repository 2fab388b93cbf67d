import Foundation
import Glibc
import Testing
import TrailwatchTestSupport

/// Runs a program (looked up in PATH) to its end; (status, stdout, stderr).
@discardableResult
func runProgram(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 120) async throws -> (Int32, String, String) {
    let result = try await Child.run(arguments[0], Array(arguments.dropFirst()), environment: environment, timeout: timeout)
    return (result.status, result.output, result.errors)
}

/// The AWS CLI and boto3 are there (installed with pip). Checked once per test process.
let haveAWSClients: Bool = {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", "import boto3, awscli"]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return false }
    process.waitUntilExit()
    return process.terminationStatus == 0
}()

let apiKeyID = "AKIDTRAILWATCHTEST"
let apiSecret = "trailwatch/test+SECRET/key"

/// An aggregator: the CloudWatch Logs API into a store — an SQLite file, or the PostgreSQL
/// database at `url` — (and a file of what arrived).
func aggregatorPipeline(_ dir: TemporaryDirectory, listen: String = "127.0.0.1:0", extra: String = "", url: String? = nil) -> String {
    let store = url ?? dir.file("store.db")
    let sink = url.map { "{ type: store, inputs: [api], url: \"\($0)\" }" } ?? "{ type: sqlite, inputs: [api], path: \(store) }"
    return dir.write("aggregator.yaml", """
        data_dir: \(dir.file("aggregator-state"))
        http:
          listen: "\(listen)"
          access_key_id_env: TW_KEY_ID
          secret_access_key_env: TW_SECRET
        \(extra)
        sources:
          api: { type: cloudwatch_logs_api, store: "\(store)" }
        sinks:
          store: \(sink)
          lines: { type: file, inputs: [api], path: \(dir.file("received.log")), format: raw }
        """)
}

let apiEnvironment = ["TW_KEY_ID": apiKeyID, "TW_SECRET": apiSecret]

/// The suites that start trailwatch servers and real clients run one after another: on a
/// 2-core machine, several at once starve each other's clients into timeouts.
@Suite(.serialized) enum NetworkEdgeProcessTests {}

extension NetworkEdgeProcessTests {
@Suite("CloudWatch Logs API with real clients (boto3, AWS CLI)", .serialized)
struct CloudWatchLogsAPITests {
    @Test("boto3: groups, streams, PutLogEvents with rejected events, filters, queries, metric filters, retention, auth errors",
          arguments: ["sqlite", "postgres"])
    func boto3Scenario(backend: String) async throws {
        guard haveAWSClients else { print("skipped: boto3/awscli not installed (pip install boto3 awscli)"); return }
        let dir = TemporaryDirectory()
        var url: String?
        if backend == "postgres" {
            guard let (_, database) = try await PostgresStoreTests.database("boto") else { return }
            url = database
        }
        let (process, port) = try await startServing(["run", aggregatorPipeline(dir, url: url), "--quiet"], environment: apiEnvironment)
        defer { kill(process.processIdentifier, SIGTERM); process.waitUntilExit() }
        #expect(port > 0)
        let script = TestPaths.repositoryRoot.appendingPathComponent("Tests/clients/logs_api_client.py").path
        let (status, output, errors) = try await runProgram(["python3", script, "http://127.0.0.1:\(port)", apiKeyID, apiSecret])
        #expect(status == 0, "\(errors)")
        let result = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], "\(output)\n\(errors)")
        #expect(result["create_again"] as? String == "ResourceAlreadyExistsException")
        #expect(result["stream_in_missing_group"] as? String == "ResourceNotFoundException")
        #expect(result["put_missing_stream"] as? String == "ResourceNotFoundException")
        let rejected = result["rejected"] as? [String: Int]
        #expect(rejected?["tooOldLogEventEndIndex"] == 0 && rejected?["tooNewLogEventStartIndex"] == 31, "\(String(describing: rejected))")
        #expect(result["big_batch"] as? String == "InvalidParameterException")
        #expect(result["span"] as? String == "InvalidParameterException")
        #expect(result["groups"] as? [String] == ["/app/web"])
        #expect(result["streams"] as? [String] == ["host-1"])
        #expect(result["filtered"] as? Int == 10)
        #expect((result["filtered_first"] as? String)?.hasPrefix("ERROR 500") == true)
        #expect(result["paged_info"] as? Int == 20)
        #expect((result["get_head"] as? [String])?.count == 5)
        #expect(result["query_status"] as? String == "Complete")
        let rows = result["query_results"] as? [[[String: String]]]
        #expect(rows?.first?.first == ["field": "errors", "value": "10"], "\(String(describing: rows))")
        #expect((result["query_statistics"] as? [String: Double])?["recordsScanned"] == 30)
        #expect(result["bad_query"] as? String == "MalformedQueryException")
        #expect(result["metric_filters"] as? [String] == ["errors"])
        let matches = result["test_matches"] as? [[Any]]
        #expect(matches?.count == 1 && matches?.first?.first as? Int == 1)
        #expect(result["bad_pattern"] as? String == "InvalidParameterException")
        #expect(result["retention"] as? Int == 7)
        #expect(result["bad_retention"] as? String == "InvalidParameterException")
        #expect(result["wrong_secret"] as? String == "InvalidSignatureException")
        #expect(result["unknown_key"] as? String == "UnrecognizedClientException")
        #expect(result["missing_group_describe"] as? String == "ResourceNotFoundException")
        // Every accepted event reached the file sink once; the rejected ones did not.
        let received = dir.read("received.log").split(separator: "\n")
        #expect(received.count == 30)
        #expect(!received.contains("ancient") && !received.contains("from the future"))
    }

    @Test("AWS CLI: put-log-events, filter-log-events and describe-log-groups with --endpoint-url")
    func awsCLI() async throws {
        guard haveAWSClients else { print("skipped: awscli not installed"); return }
        let dir = TemporaryDirectory()
        let (process, port) = try await startServing(["run", aggregatorPipeline(dir), "--quiet"], environment: apiEnvironment)
        defer { kill(process.processIdentifier, SIGTERM); process.waitUntilExit() }
        let environment = ["AWS_ACCESS_KEY_ID": apiKeyID, "AWS_SECRET_ACCESS_KEY": apiSecret, "AWS_DEFAULT_REGION": "eu-west-1",
                           "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"]
        func aws(_ arguments: [String]) async throws -> (Int32, String, String) {
            try await runProgram(["aws", "logs"] + arguments + ["--endpoint-url", "http://127.0.0.1:\(port)"], environment: environment)
        }
        let group = try await aws(["create-log-group", "--log-group-name", "cli"])
        #expect(group.0 == 0, "\(group.2)")
        let stream = try await aws(["create-log-stream", "--log-group-name", "cli", "--log-stream-name", "s1"])
        #expect(stream.0 == 0, "\(stream.2)")
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let put = try await aws(["put-log-events", "--log-group-name", "cli", "--log-stream-name", "s1", "--log-events",
                           "timestamp=\(now),message=hello from the cli", "timestamp=\(now + 1),message=second ERROR line"])
        #expect(put.0 == 0, "\(put.2)")
        #expect(await eventually(60) {
            (try? await aws(["filter-log-events", "--log-group-name", "cli", "--filter-pattern", "ERROR"]).1.contains("second ERROR line")) == true
        })
        let groups = try await aws(["describe-log-groups"])
        #expect(groups.1.contains("\"logGroupName\": \"cli\""))
        let wrong = try await runProgram(["aws", "logs", "describe-log-groups", "--endpoint-url", "http://127.0.0.1:\(port)"],
                                   environment: environment.merging(["AWS_SECRET_ACCESS_KEY": "wrong"]) { $1 })
        #expect(wrong.0 != 0 && wrong.2.contains("InvalidSignatureException"), "\(wrong.2)")
    }

    @Test("PutLogEvents is answered once the file sink's fsync is done, not at its sync_interval: concurrent clients, group commit")
    func acknowledgedAtTheFsync() async throws {
        let dir = TemporaryDirectory()
        // A sync interval no request could wait for: only the event-driven group commit can answer in time.
        let pipeline = dir.write("p.yaml", """
            data_dir: \(dir.file("state"))
            http: { listen: "127.0.0.1:0", access_key_id_env: TW_KEY_ID, secret_access_key_env: TW_SECRET }
            sources:
              api: { type: cloudwatch_logs_api }
            sinks:
              out: { type: file, inputs: [api], path: \(dir.file("out.log")), format: raw, sync_interval: 1h }
            """)
        let (process, port) = try await startServing(["run", pipeline, "--quiet"], environment: apiEnvironment)
        defer { kill(process.processIdentifier, SIGTERM); process.waitUntilExit() }
        let load = TestPaths.repositoryRoot.appendingPathComponent("bench/putlogevents_load.py").path
        let (status, output, errors) = try await runProgram(["python3", load, "http://127.0.0.1:\(port)", apiKeyID, apiSecret,
                                                       "--requests", "40", "--connections", "8", "--events", "250"])
        #expect(status == 0, "\(output)\n\(errors)")
        let stats = try #require(try JSONSerialization.jsonObject(with: Data((output.split(separator: "\n").last ?? "").utf8)) as? [String: Any],
                                 "\(output)\n\(errors)")
        #expect(stats["requests"] as? Int == 40)
        // Each answer came after an fsync, well before the hour (or the server's 60 s request timeout).
        let slowest = try #require(stats["max_ms"] as? Double)
        #expect(slowest < 15_000, "slowest acknowledgement \(slowest) ms")
        // Every acknowledged event is in the file, once.
        let lines = dir.read("out.log").split(separator: "\n")
        #expect(lines.count == 40 * 250)
    }

    @Test("PutLogEvents is not answered 200 when a sink cannot write: the client gets a retryable ServiceUnavailableException")
    func notDurableNotAcknowledged() async throws {
        guard haveAWSClients else { print("skipped: boto3 not installed"); return }
        let dir = TemporaryDirectory()
        let pipeline = dir.write("p.yaml", """
            data_dir: \(dir.file("state"))
            http: { listen: "127.0.0.1:0", access_key_id_env: TW_KEY_ID, secret_access_key_env: TW_SECRET }
            sources:
              api: { type: cloudwatch_logs_api }
            sinks:
              good: { type: file, inputs: [api], path: \(dir.file("good.log")), format: raw }
              broken: { type: file, inputs: [api], path: /proc/no-such-dir/out.log, format: raw }
            """)
        let (process, port) = try await startServing(["run", pipeline, "--quiet"], environment: apiEnvironment)
        defer { kill(process.processIdentifier, SIGTERM); process.waitUntilExit() }
        let script = """
            import boto3, sys, time
            from botocore.config import Config
            from botocore.exceptions import ClientError
            logs = boto3.client("logs", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id=sys.argv[2],
                                aws_secret_access_key=sys.argv[3], config=Config(retries={"max_attempts": 1}))
            logs.create_log_group(logGroupName="g"); logs.create_log_stream(logGroupName="g", logStreamName="s")
            try:
                logs.put_log_events(logGroupName="g", logStreamName="s", logEvents=[{"timestamp": int(time.time() * 1000), "message": "m"}])
                print("accepted")
            except ClientError as e:
                print(e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
            """
        let (status, output, errors) = try await runProgram(["python3", "-c", script, "http://127.0.0.1:\(port)", apiKeyID, apiSecret])
        #expect(status == 0, "\(errors)")
        #expect(output.trimmingCharacters(in: .whitespacesAndNewlines) == "ServiceUnavailableException 503", "\(output)")
    }
}
}
