import Foundation
import Glibc
import Testing
import TrailwatchTestSupport

/// CloudTrail records for LookupEvents: 120 events a minute apart from 2023-11-14T22:13:20Z;
/// every third a ConsoleLogin, every second by alice, each touching bucket-(i % 10).
func cloudTrailRecords() -> String {
    var records: [String] = []
    for i in 0..<120 {
        let time = Date(timeIntervalSince1970: 1_700_000_000 + Double(i) * 60)
        let formatter = ISO8601DateFormatter()
        let name = i % 3 == 0 ? "ConsoleLogin" : "GetObject"
        let source = i % 3 == 0 ? "signin.amazonaws.com" : "s3.amazonaws.com"
        let user = i % 2 == 0 ? "alice" : "bob"
        records.append("""
            {"eventVersion":"1.08","eventID":"ev-\(i)","eventTime":"\(formatter.string(from: time))","eventName":"\(name)","eventSource":"\(source)",\
            "readOnly":\(i % 3 != 0),"awsRegion":"us-east-1","recipientAccountId":"123456789012",\
            "userIdentity":{"type":"IAMUser","userName":"\(user)","accessKeyId":"AKID\(user.uppercased())"},\
            "resources":[{"type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::bucket-\(i % 10)"}]}
            """)
    }
    return "{\"Records\":[" + records.joined(separator: ",") + "]}"
}

/// The environment the AWS CLI and boto3 run in: dummy credentials, no proxy, no metadata lookups.
let awsClientEnvironment = ["AWS_ACCESS_KEY_ID": apiKeyID, "AWS_SECRET_ACCESS_KEY": apiSecret, "AWS_DEFAULT_REGION": "us-east-1",
                            "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null", "AWS_EC2_METADATA_DISABLED": "true",
                            "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost", "AWS_PAGER": ""]

extension NetworkEdgeProcessTests {
@Suite("CloudWatch metrics and alarms API, CloudTrail LookupEvents with real clients (boto3, AWS CLI)", .serialized)
struct CloudWatchAPITests {
    func pipeline(_ dir: TemporaryDirectory, webhook: String) -> String {
        _ = dir.write("trail/records.json", cloudTrailRecords())
        let store = dir.file("store.db")
        return dir.write("cloudwatch.yaml", """
            data_dir: \(dir.file("state"))
            http:
              listen: "127.0.0.1:0"
              access_key_id_env: TW_KEY_ID
              secret_access_key_env: TW_SECRET
            sources:
              cw: { type: cloudwatch_api, store: \(store) }
              trail: { type: cloudtrail, include: '\(dir.file("trail"))/*.json' }
            transforms:
              api_alarms: { type: alarm, inputs: [cw], api_alarms: \(store), evaluation_delay: 1s }
            sinks:
              store: { type: sqlite, inputs: [cw, trail, api_alarms], path: \(store) }
              page: { type: notifier, inputs: [api_alarms], webhook: { url: "\(webhook)" }, states: [ALARM], retry_initial: 100ms }
            """)
    }

    func client(_ port: Int, _ phase: String) async throws -> [String: Any] {
        let script = TestPaths.repositoryRoot.appendingPathComponent("Tests/clients/cloudwatch_api_client.py").path
        let (status, output, errors) = try await runProgram(["python3", script, "http://127.0.0.1:\(port)", apiKeyID, apiSecret, phase],
                                                      environment: awsClientEnvironment, timeout: 240)
        #expect(status == 0, "\(phase): \(errors)")
        return try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], "\(phase): \(output)\n\(errors)")
    }

    func aws(_ port: Int, _ arguments: [String]) async throws -> (Int32, String, String) {
        try await runProgram(["aws"] + arguments + ["--endpoint-url", "http://127.0.0.1:\(port)", "--output", "json"],
                       environment: awsClientEnvironment, timeout: 120)
    }

    @Test("the CloudWatch user's workflow: put-metric-data, an anomaly-band alarm from JSON, ALARM with a webhook, history, restart, lookup-events")
    func workflow() async throws {
        guard haveAWSClients else { print("skipped: boto3/awscli not installed (pip install boto3 awscli)"); return }
        let dir = TemporaryDirectory()
        let webhook = try TestHTTPServer { _ in .status(200) }
        defer { webhook.stop() }
        let yaml = pipeline(dir, webhook: webhook.url)
        var (process, port) = try await startServing(["run", yaml, "--quiet"], environment: apiEnvironment)
        defer { kill(process.processIdentifier, SIGTERM); process.waitUntilExit() }
        try #require(port > 0)

        // 1. Metrics go in and come back out, in every protocol; bad input raises the SDK's exceptions.
        let metrics = try await client(port, "metrics")
        let statistics = metrics["statistics"] as? [[String: Any]] ?? []
        #expect(statistics.count == 2, "\(metrics)")
        if statistics.count == 2 {
            #expect(statistics[0]["SampleCount"] as? Double == 5 && statistics[0]["Sum"] as? Double == 110)
            #expect(statistics[0]["Minimum"] as? Double == 1 && statistics[0]["Maximum"] as? Double == 100 && statistics[0]["Average"] as? Double == 22)
            #expect((statistics[0]["ExtendedStatistics"] as? [String: Double]) == ["p50": 3, "p99": 100])
            #expect(statistics[1]["SampleCount"] as? Double == 4 && statistics[1]["Sum"] as? Double == 40 && statistics[1]["Maximum"] as? Double == 15)
            // A statistic set of several values has no exact percentiles.
            #expect(statistics[1]["ExtendedStatistics"] == nil)
        }
        #expect(metrics["values_counts"] as? [[Double]] == [[4, 3, 2]])
        let data = metrics["metric_data"] as? [String: [String: Any]] ?? [:]
        #expect(data["m1"]?["values"] as? [Double] == [110, 40], "\(data)")
        #expect(data["m2"] == nil)
        #expect(data["avg"]?["values"] as? [Double] == [22, 10] && data["avg"]?["label"] as? String == "mean")
        #expect(data["p"]?["values"] as? [Double] == [4])
        #expect(metrics["band_results"] as? [[AnyHashable]] == [["m1", "InferenceLatency", 12], ["e1", "e1 Lower", 12], ["e1", "e1 Upper", 12]])
        #expect(metrics["band_newest_above"] as? Bool == true && metrics["band_older_inside"] as? Bool == true)
        #expect(metrics["paged_points"] as? Int == 12 && (metrics["pages"] as? Int ?? 0) >= 4)
        #expect(metrics["metrics"] as? [String] == ["Errors/", "Latency/Host=a"])
        #expect(metrics["metrics_by_dimension"] as? [String] == ["InferenceLatency"])
        #expect(metrics["default_protocol"] as? String == "json")
        for proto in ["query", "cbor"] {
            #expect(metrics[proto + "_bulk"] as? [[Double]] == [[1000, 499_500]], "\(proto)")
            #expect(metrics[proto + "_sum"] as? [Double] == [7], "\(proto)")
            #expect(metrics[proto + "_error"] as? String == "ResourceNotFound", "\(proto)")
            #expect(metrics[proto + "_listed"] as? [String] == [proto], "\(proto)")
        }
        #expect(metrics["both_value_kinds"] as? String == "InvalidParameterCombination")
        #expect(metrics["bad_resolution"] as? String == "InvalidParameterValue")
        #expect(metrics["too_old"] as? String == "InvalidParameterValue")
        #expect(metrics["too_many_points"] as? String == "InvalidParameterCombination")
        #expect(metrics["bad_period"] as? String == "InvalidParameterValue")
        #expect(metrics["bad_expression"] as? String == "InvalidParameterValue")
        #expect(metrics["bad_token"] as? String == "InvalidParameterValue")
        #expect(metrics["unknown_alarm_delete"] as? String == "ResourceNotFound")
        #expect(metrics["unknown_alarm_class"] as? String == "ResourceNotFound")
        #expect(metrics["invalid_class"] as? String == "InvalidParameterValueException")
        #expect(metrics["wrong_secret"] as? String == "InvalidSignatureException")
        #expect(metrics["detectors"] as? [[String]] == [["InferenceLatency", "Average", "TRAINED"]])
        #expect(metrics["delete_missing_detector"] as? String == "ResourceNotFoundException")
        #expect(metrics["bad_detector_config"] as? String == "InvalidParameterValue")

        // 2. The reference alarm, as the AWS CLI takes it: the file's "Name" is refused before sending, "MetricName" works.
        let reference = TestPaths.repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/reference/high-inference-latency.json").path
        let original = (try? String(contentsOfFile: reference, encoding: .utf8)) ?? referenceAlarmJSON
        _ = dir.write("alarm-as-published.json", original)
        let refused = try await aws(port, ["cloudwatch", "put-metric-alarm", "--cli-input-json", "file://" + dir.file("alarm-as-published.json")])
        #expect(refused.0 != 0 && refused.2.contains("Name"), "\(refused)")
        _ = dir.write("alarm.json", original.replacingOccurrences(of: "\"Name\": \"InferenceLatency\"", with: "\"MetricName\": \"InferenceLatency\""))
        let put = try await aws(port, ["cloudwatch", "put-metric-alarm", "--cli-input-json", "file://" + dir.file("alarm.json")])
        #expect(put.0 == 0, "\(put.2)")

        // 3. It goes to ALARM, the webhook hears it, describe-alarms and the history show it.
        let alarm = try await client(port, "alarm")
        #expect(alarm["state"] as? String == "ALARM", "\(alarm)")
        #expect(alarm["by_state"] as? [String] == ["HighInferenceLatency"])
        #expect(alarm["threshold_metric"] as? String == "e1")
        #expect(alarm["arn"] as? String == "arn:aws:cloudwatch:us-east-1:000000000000:alarm:HighInferenceLatency")
        #expect(alarm["for_metric"] as? [String] == ["HighInferenceLatency"])
        #expect(alarm["ok_alarms"] as? [String] == [])
        #expect((alarm["history"] as? [String])?.first == "Alarm updated from OK to ALARM", "\(alarm)")
        #expect(alarm["history_data"] as? String == "ALARM")
        _ = await eventually(30) { !webhook.accepted.isEmpty }
        let notified = webhook.accepted.map { String(decoding: $0.body, as: UTF8.self) }
        #expect(notified.contains { $0.contains("HighInferenceLatency") && $0.contains("ALARM") }, "\(notified)")
        let described = try await aws(port, ["cloudwatch", "describe-alarms", "--alarm-names", "HighInferenceLatency"])
        #expect(described.0 == 0 && described.1.contains("\"StateValue\": \"ALARM\""), "\(described)")

        // 4. A restart keeps the alarm and its state; SetAlarmState and the rest of the alarm operations.
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        (process, port) = try await startServing(["run", yaml, "--quiet"], environment: apiEnvironment)
        try #require(port > 0)
        let restarted = try await client(port, "restarted")
        #expect(restarted["state_after_restart"] as? String == "ALARM", "\(restarted)")
        #expect(restarted["state_after_set"] as? String == "OK")
        #expect(restarted["reason_after_set"] as? String == "maintenance")
        #expect(restarted["actions_enabled"] as? Bool == false)
        #expect(restarted["alarm_pages"] as? [Int] == [3, 3, 1])
        #expect(restarted["bad_alarm"] as? String == "InvalidParameterValue")
        #expect(restarted["band_without_metrics"] as? String == "InvalidParameterValue")
        #expect(restarted["after_delete"] as? [String] == ["HighInferenceLatency"])

        // 5. CloudTrail: lookup-events pages through the stored events with next tokens.
        let trail = try await client(port, "cloudtrail")
        #expect(trail["console_logins"] as? Int == 40, "\(trail)")
        #expect(trail["pages"] as? Int == 6)
        #expect(trail["newest_first"] as? Bool == true)
        let first = trail["first"] as? [String: Any]
        #expect(first?["EventName"] as? String == "ConsoleLogin" && first?["Username"] as? String == "bob" && first?["has_record"] as? String == "ConsoleLogin")
        #expect((first?["Resources"] as? [[String: String]])?.first?["ResourceName"] == "arn:aws:s3:::bucket-7")
        #expect(trail["by_user"] as? Int == 50)
        #expect(trail["by_resource"] as? Int == 12)
        #expect(trail["all"] as? Int == 120)
        #expect(trail["time_range"] as? Int == 10)
        #expect(trail["two_attributes"] as? String == "InvalidLookupAttributesException")
        #expect(trail["bad_range"] as? String == "InvalidTimeRangeException")
        #expect(trail["bad_token"] as? String == "InvalidNextTokenException")
        #expect(trail["bad_max"] as? String == "InvalidMaxResultsException")
        #expect(trail["insights"] as? Int == 0)
        let lookup = try await aws(port, ["cloudtrail", "lookup-events", "--lookup-attributes", "AttributeKey=EventName,AttributeValue=ConsoleLogin",
                                    "--page-size", "7"])
        #expect(lookup.0 == 0, "\(lookup.2)")
        let events = (try? JSONSerialization.jsonObject(with: Data(lookup.1.utf8)) as? [String: Any])?["Events"] as? [Any]
        #expect(events?.count == 40)
        let cliStats = try await aws(port, ["cloudwatch", "get-metric-statistics", "--namespace", "Legacy", "--metric-name", "query",
                                      "--dimensions", "Name=Via,Value=query", "--start-time", "2000-01-01T00:00:00Z",
                                      "--end-time", "2000-01-01T01:00:00Z", "--period", "60", "--statistics", "Sum"])
        #expect(cliStats.0 == 0 && cliStats.1.contains("\"Datapoints\": []"), "\(cliStats)")
    }
}
}

/// `../shared/reference/high-inference-latency.json`, for machines without ../shared.
let referenceAlarmJSON = """
    {
      "AlarmName": "HighInferenceLatency",
      "Metrics": [
        { "Id": "e1", "Expression": "ANOMALY_DETECTION_BAND(m1, 2)", "Label": "Inference Latency (Expected)" },
        { "Id": "m1", "MetricStat": { "Metric": { "Namespace": "AWS/SageMaker", "Name": "InferenceLatency",
            "Dimensions": [ { "Name": "EndpointName", "Value": "YourEndpointName" } ] }, "Period": 300, "Stat": "Average" },
          "ReturnData": false }
      ],
      "EvaluationPeriods": 2,
      "ComparisonOperator": "GreaterThanUpperThreshold",
      "ThresholdMetricId": "e1",
      "ActionsEnabled": true
    }
    """
