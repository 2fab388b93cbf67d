import AWSWire
import Foundation
import Synchronization
import Testing
import TrailwatchCore
import TrailwatchStore
@testable import TrailwatchAPI

/// "The pipeline" of these tests: PutMetricData datapoints go straight into the store.
final class StoreIngest: MetricsIngest, Sendable {
    let path: String
    let changes = Atomic<Int>(0)
    init(path: String) { self.path = path }

    func ingest(_ data: [MetricDatum]) async throws(AWSError) {
        do { try SQLiteStore(path: path).write(.metrics(data)) } catch { throw AWSError.serviceUnavailable("\(error)") }
    }

    func alarmsChanged() { changes.wrappingAdd(1, ordering: .relaxed) }
}

struct MetricsHarness {
    let dir: String
    let service: CloudWatchService
    let ingest: StoreIngest
    static let now: Int64 = 1_790_000_000_000

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tw-cw-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/store.db"
        _ = try SQLiteStore(path: path)
        ingest = StoreIngest(path: path)
        service = CloudWatchService(open: { () async throws(StoreError) -> any Store in try SQLiteStore(path: path) }, ingest: ingest,
                                    now: { MetricsHarness.now })
    }

    /// Calls in RPC v2 CBOR (as botocore does); the reply decoded.
    func call(_ operation: String, _ input: AWSValue) async -> (status: Int, output: AWSValue) {
        let reply = await service.handle(AWSOperationCall(wireProtocol: .rpcV2CBOR, service: service.targetPrefix, operation: operation,
                                                          body: CBOR.encode(input), principal: .anonymous, requestID: "r"))
        return (reply.status, (try? CBOR.decode(reply.body)) ?? .null)
    }

    /// Calls in the query protocol; the XML reply as text.
    func query(_ form: String) async -> (status: Int, xml: String) {
        let action = form.split(separator: "&").first { $0.hasPrefix("Action=") }.map { String($0.dropFirst(7)) } ?? ""
        let reply = await service.handle(AWSOperationCall(wireProtocol: .query, service: service.targetPrefix, operation: action,
                                                          body: Array(form.utf8), principal: .anonymous, requestID: "q"))
        return (reply.status, String(decoding: reply.body, as: UTF8.self))
    }

    func cleanUp() { try? FileManager.default.removeItem(atPath: dir) }
}

@Suite("CloudWatch API service (metrics, statistics, metric math, alarms) over a real SQLite store")
struct CloudWatchServiceTests {
    let t0 = Double(MetricsHarness.now / 1000 - 3600)

    @Test("PutMetricData values come back from GetMetricStatistics in CBOR and in the query protocol's XML")
    func putAndRead() async throws {
        let h = try MetricsHarness()
        defer { h.cleanUp() }
        let put = await h.call("PutMetricData", ["Namespace": "App", "MetricData": [
            ["MetricName": "Latency", "Timestamp": .timestamp(t0), "Value": 10], ["MetricName": "Latency", "Timestamp": .timestamp(t0 + 1), "Value": 20],
            ["MetricName": "Latency", "Timestamp": .timestamp(t0 + 2), "Values": [30], "Counts": [2]],
            ["MetricName": "Latency", "Timestamp": .timestamp(t0 + 3), "Value": 40],
            ["MetricName": "Latency", "Timestamp": .timestamp(t0 + 61), "Values": [5, 6], "Counts": [1, 3]],
        ]])
        #expect(put.status == 200)
        let stats = await h.call("GetMetricStatistics", ["Namespace": "App", "MetricName": "Latency", "StartTime": .timestamp(t0),
                                                         "EndTime": .timestamp(t0 + 180), "Period": 60,
                                                         "Statistics": ["Sum", "SampleCount", "Average"], "ExtendedStatistics": ["p50", "tm80", "IQM"]])
        let points = try #require(stats.output["Datapoints"]?.listValue)
        #expect(points.count == 2)
        #expect(points[0]["Sum"] == .double(130) && points[0]["SampleCount"] == .double(5) && points[0]["Average"] == .double(26))
        #expect(points[0]["ExtendedStatistics"]?["p50"] == .double(30))
        // tm80: the lowest 80% (10, 20, 30, 30) → 22.5.
        #expect(points[0]["ExtendedStatistics"]?["tm80"] == .double(22.5))
        // Values at one timestamp are kept as a statistic set: sums and counts, no percentiles.
        #expect(points[1]["Sum"] == .double(23) && points[1]["SampleCount"] == .double(4) && points[1]["ExtendedStatistics"] == nil)
        let xml = await h.query("Action=GetMetricStatistics&Version=2010-08-01&Namespace=App&MetricName=Latency&StartTime=\(AWSTimestamp.iso8601(t0))"
                                + "&EndTime=\(AWSTimestamp.iso8601(t0 + 180))&Period=60&Statistics.member.1=Maximum")
        #expect(xml.status == 200)
        #expect(xml.xml.contains("<GetMetricStatisticsResult><Datapoints><member><Maximum>40</Maximum><Timestamp>"), "\(xml.xml)")
    }

    @Test("PutMetricData limits and validation")
    func validation() async throws {
        let h = try MetricsHarness()
        defer { h.cleanUp() }
        func code(_ input: AWSValue) async -> String? { await h.call("PutMetricData", input).output["__type"]?.stringValue }
        #expect(await code(["MetricData": [["MetricName": "a", "Value": 1]]]) == "MissingParameter")
        #expect(await code(["Namespace": "A", "MetricData": .list(Array(repeating: ["MetricName": "a", "Value": 1], count: 1001))]) == "InvalidParameterValue")
        #expect(await code(["Namespace": "A", "MetricData": [["MetricName": "a", "Values": .list(Array(repeating: 1, count: 151))]]]) == "InvalidParameterValue")
        #expect(await code(["Namespace": "A", "MetricData": [["MetricName": "a", "Values": [1, 2], "Counts": [1]]]]) == "InvalidParameterCombination")
        #expect(await code(["Namespace": "A", "MetricData": [["MetricName": "a", "Value": .double(.nan)]]]) == "InvalidParameterValue")
        #expect(await code(["Namespace": "A", "MetricData": [["MetricName": "a", "Value": 1, "Unit": "Parsecs"]]]) == "InvalidParameterValue")
        #expect(await code(["Namespace": "A", "MetricData": [["MetricName": "a", "StatisticValues": ["SampleCount": 1, "Sum": 1, "Minimum": 2, "Maximum": 1]]]]) == "InvalidParameterValue")
        #expect(await code(["Namespace": "A", "MetricData": [["MetricName": "a", "Value": 1, "Timestamp": .timestamp(Double(MetricsHarness.now / 1000 + 3 * 3600))]]]) == "InvalidParameterValue")
        let dims: AWSValue = .list((0..<31).map { .map(["Name": .string("d\($0)"), "Value": "v"]) })
        #expect(await code(["Namespace": "A", "MetricData": [["MetricName": "a", "Value": 1, "Dimensions": dims]]]) == "InvalidParameterValue")
        #expect(await code(["Namespace": "A", "MetricData": [["MetricName": "a", "Value": 1, "Dimensions": [["Name": "x", "Value": "1"], ["Name": "x", "Value": "2"]]]]]) == "InvalidParameterValue")
        // Counts whose sum, or whose product with the value, is beyond a double.
        #expect(await code(["Namespace": "A", "MetricData": [["MetricName": "a", "Values": [.double(0x1p360)], "Counts": [.double(1e300)]]]]) == "InvalidParameterValue")
        #expect(await code(["Namespace": "A", "MetricData": [["MetricName": "a", "Values": [1, 1], "Counts": [.double(1.7e308), .double(1.7e308)]]]]) == "InvalidParameterValue")
        #expect(await h.call("NoSuchOperation", [:]).output["__type"] == "InvalidAction")
    }

    @Test("times beyond the years 1–9999 and periods beyond an Integer are validation errors, not a crash (found by fuzzing)")
    func outOfRangeTimesAndPeriods() async throws {
        let h = try MetricsHarness()
        defer { h.cleanUp() }
        func code(_ operation: String, _ input: AWSValue) async -> String? { await h.call(operation, input).output["__type"]?.stringValue }
        let stat: AWSValue = ["Metric": ["Namespace": "App", "MetricName": "Latency"], "Period": 60, "Stat": "Average"]
        // 1e93 seconds once trapped converting to Int64 milliseconds and took the process down.
        for end: Double in [1e93, 9.3e15, 253_402_300_800] {
            #expect(await code("GetMetricData", ["StartTime": .timestamp(0), "EndTime": .timestamp(end), "MetricDataQueries": [["Id": "m1", "MetricStat": stat]]]) == "InvalidParameterValue")
            #expect(await code("GetMetricStatistics", ["Namespace": "App", "MetricName": "Latency", "StartTime": .timestamp(0), "EndTime": .timestamp(end),
                                                       "Period": 60, "Statistics": ["Sum"]]) == "InvalidParameterValue")
            #expect(await code("PutMetricData", ["Namespace": "A", "MetricData": [["MetricName": "a", "Value": 1, "Timestamp": .timestamp(end)]]]) == "InvalidParameterValue")
            #expect(await code("PutMetricData", ["Namespace": "A", "MetricData": [["MetricName": "a", "Value": 1, "Timestamp": .timestamp(-end)]]]) == "InvalidParameterValue")
        }
        let huge: AWSValue = ["Metric": ["Namespace": "App", "MetricName": "Latency"], "Period": .int(9_223_372_036_854_775_800), "Stat": "Average"]
        #expect(await code("GetMetricData", ["StartTime": .timestamp(0), "EndTime": .timestamp(60), "MetricDataQueries": [["Id": "m1", "MetricStat": huge]]]) == "InvalidParameterValue")
        #expect(await code("GetMetricStatistics", ["Namespace": "App", "MetricName": "Latency", "StartTime": .timestamp(0), "EndTime": .timestamp(60),
                                                   "Period": .int(9_223_372_036_854_775_800), "Statistics": ["Sum"]]) == "InvalidParameterValue")
        // The edges of the range are times like any other.
        #expect(await h.call("GetMetricStatistics", ["Namespace": "App", "MetricName": "Latency", "StartTime": .timestamp(253_402_300_000),
                                                     "EndTime": .timestamp(253_402_300_799), "Period": 60, "Statistics": ["Sum"]]).status == 200)
        // LookupEvents reads its times the same way.
        let trail = CloudTrailService(open: { () async throws(StoreError) -> any Store in try SQLiteStore(path: h.dir + "/store.db") })
        let reply = await trail.handle(AWSOperationCall(wireProtocol: .awsJSON1_1, service: trail.targetPrefix, operation: "LookupEvents",
                                                        body: Array(#"{"StartTime":0,"EndTime":1e300}"#.utf8), principal: .anonymous, requestID: "r"))
        #expect(reply.status == 400)
    }

    @Test("GetMetricData: arithmetic between series and scalars, dropped points, descending scan and pages")
    func metricMath() async throws {
        let h = try MetricsHarness()
        defer { h.cleanUp() }
        var data: [AWSValue] = []
        for i in 0..<10 {
            data.append(["MetricName": "Requests", "Timestamp": .timestamp(t0 + Double(i * 60)), "Value": .double(Double(10 * (i + 1)))])
            if i % 2 == 0 { data.append(["MetricName": "Errors", "Timestamp": .timestamp(t0 + Double(i * 60)), "Value": .double(Double(i))]) }
        }
        _ = await h.call("PutMetricData", ["Namespace": "Web", "MetricData": .list(data)])
        func stat(_ name: String) -> AWSValue { ["Metric": ["Namespace": "Web", "MetricName": .string(name)], "Period": 60, "Stat": "Sum"] }
        let result = await h.call("GetMetricData", ["StartTime": .timestamp(t0), "EndTime": .timestamp(t0 + 600), "ScanBy": "TimestampAscending",
                                                    "MetricDataQueries": [["Id": "r", "MetricStat": stat("Requests"), "ReturnData": false],
                                                                          ["Id": "e", "MetricStat": stat("Errors"), "ReturnData": false],
                                                                          ["Id": "rate", "Expression": "100 * e / r", "Label": "error %"],
                                                                          ["Id": "twice", "Expression": "-(r + r) ^ 1 * -1"]]])
        let results = try #require(result.output["MetricDataResults"]?.listValue, "\(result)")
        #expect(results.map { $0["Id"] } == ["rate", "twice"])
        #expect(results[0]["Values"] == [0, 6.666666666666667, 8, 8.571428571428571, 8.88888888888889].map { AWSValue.double($0) }.asList)
        #expect(results[0]["Label"] == "error %")
        #expect(results[1]["Values"]?.listValue?.count == 10)
        #expect(results[1]["Values"]?.listValue?.first == .double(20))
        // Pages of 4 datapoints, newest first.
        var token: AWSValue?
        var seen: [Double] = []
        repeat {
            var input: [String: AWSValue] = ["StartTime": .timestamp(t0), "EndTime": .timestamp(t0 + 600), "MaxDatapoints": 4,
                                             "MetricDataQueries": [["Id": "r", "MetricStat": stat("Requests")]]]
            if let token { input["NextToken"] = token }
            let page = await h.call("GetMetricData", .map(input))
            seen += page.output["MetricDataResults"]?.listValue?.first?["Values"]?.listValue?.compactMap(\.doubleValue) ?? []
            token = page.output["NextToken"]
        } while token != nil && seen.count < 100
        #expect(seen == [100, 90, 80, 70, 60, 50, 40, 30, 20, 10])
        for (expression, fragment) in [("RATE(r)", "RATE"), ("r +", "ends early"), ("zz * 2", "zz")] {
            let bad = await h.call("GetMetricData", ["StartTime": .timestamp(t0), "EndTime": .timestamp(t0 + 600),
                                                     "MetricDataQueries": [["Id": "r", "MetricStat": stat("Requests")], ["Id": "x", "Expression": .string(expression)]]])
            #expect(bad.status == 400 && (bad.output["message"]?.stringValue ?? "").contains(fragment), "\(expression): \(bad.output)")
        }
    }

    @Test("GetMetricData pages across several series: results past the page are empty, PartialData when they hold data, Complete when not")
    func getMetricDataPagesAcrossSeries() async throws {
        let h = try MetricsHarness()
        defer { h.cleanUp() }
        var data: [AWSValue] = []
        // Hosts a, b, c with 6, 6 and 3 one-minute values; host d has none (and one value outside the range).
        for (host, count) in [("a", 6), ("b", 6), ("c", 3)] {
            for i in 0..<count {
                data.append(["MetricName": "Load", "Dimensions": [["Name": "Host", "Value": .string(host)]],
                             "Timestamp": .timestamp(t0 + Double(i * 60)), "Value": .double(Double(i + 1))])
            }
        }
        data.append(["MetricName": "Load", "Dimensions": [["Name": "Host", "Value": "d"]], "Timestamp": .timestamp(t0 + 3600), "Value": 9])
        #expect(await h.call("PutMetricData", ["Namespace": "Fleet", "MetricData": .list(data)]).status == 200)
        let queries: AWSValue = .list(["a", "d", "b", "c"].map { host in
            ["Id": .string("h\(host)"), "MetricStat": ["Metric": ["Namespace": "Fleet", "MetricName": "Load", "Dimensions": [["Name": "Host", "Value": .string(host)]]],
                                                        "Period": 60, "Stat": "Maximum"]]
        })
        let first = await h.call("GetMetricData", ["StartTime": .timestamp(t0), "EndTime": .timestamp(t0 + 600), "MaxDatapoints": 4, "MetricDataQueries": queries])
        let results = try #require(first.output["MetricDataResults"]?.listValue, "\(first)")
        #expect(results.map { $0["Id"] } == ["ha", "hd", "hb", "hc"])
        #expect(results.map { $0["Values"]?.listValue?.count } == [4, 0, 0, 0])
        #expect(results.map { $0["StatusCode"] } == ["PartialData", "Complete", "PartialData", "PartialData"])
        #expect(first.output["NextToken"] != nil)
        // Every page in turn gives each series' datapoints once, newest first.
        var token: AWSValue?
        var seen: [String: [Double]] = [:]
        var pages = 0
        repeat {
            var input: [String: AWSValue] = ["StartTime": .timestamp(t0), "EndTime": .timestamp(t0 + 600), "MaxDatapoints": 4, "MetricDataQueries": queries]
            if let token { input["NextToken"] = token }
            let page = await h.call("GetMetricData", .map(input))
            for result in page.output["MetricDataResults"]?.listValue ?? [] {
                seen[result["Id"]?.stringValue ?? "?", default: []] += result["Values"]?.listValue?.compactMap(\.doubleValue) ?? []
            }
            token = page.output["NextToken"]
            pages += 1
        } while token != nil && pages < 20
        #expect(pages == 4)
        #expect(seen == ["ha": [6, 5, 4, 3, 2, 1], "hd": [], "hb": [6, 5, 4, 3, 2, 1], "hc": [3, 2, 1]])
    }

    @Test("alarms: PutMetricAlarm validation, DescribeAlarms filters and pages, DeleteAlarms, SetAlarmState requests")
    func alarms() async throws {
        let h = try MetricsHarness()
        defer { h.cleanUp() }
        func alarm(_ name: String, period: Int64 = 60) -> AWSValue {
            ["AlarmName": .string(name), "Namespace": "App", "MetricName": "Errors", "Statistic": "Sum", "Period": .int(period),
             "EvaluationPeriods": 2, "Threshold": 5, "ComparisonOperator": "GreaterThanThreshold", "AlarmActions": ["arn:aws:sns:us-east-1:1:page"]]
        }
        for i in 0..<5 { #expect(await h.call("PutMetricAlarm", alarm("a\(i)")).status == 200) }
        #expect(await h.call("PutMetricAlarm", alarm("b", period: 7)).output["__type"] == "InvalidParameterValue")
        var missing = alarm("c")
        if case .map(var m) = missing { m["ComparisonOperator"] = nil; missing = .map(m) }
        #expect(await h.call("PutMetricAlarm", missing).output["__type"] == "MissingParameter")
        #expect(await h.call("PutMetricAlarm", ["AlarmName": "d", "Namespace": "A", "MetricName": "B", "Statistic": "Sum", "Period": 60,
                                                "EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanThreshold",
                                                "Tags": [["Key": "k", "Value": "v"]]]).output["__type"] == "InvalidParameterValue")
        let page1 = await h.call("DescribeAlarms", ["AlarmNamePrefix": "a", "MaxRecords": 3])
        #expect(page1.output["MetricAlarms"]?.listValue?.compactMap { $0["AlarmName"]?.stringValue } == ["a0", "a1", "a2"])
        let token = try #require(page1.output["NextToken"])
        let page2 = await h.call("DescribeAlarms", ["AlarmNamePrefix": "a", "MaxRecords": 3, "NextToken": token])
        #expect(page2.output["MetricAlarms"]?.listValue?.compactMap { $0["AlarmName"]?.stringValue } == ["a3", "a4"])
        #expect(page2.output["NextToken"] == nil)
        let first = try #require(page1.output["MetricAlarms"]?.listValue?.first)
        #expect(first["StateValue"] == "INSUFFICIENT_DATA" && first["AlarmActions"] == ["arn:aws:sns:us-east-1:1:page"] && first["Threshold"] == .double(5))
        #expect(await h.call("DescribeAlarms", ["StateValue": "ALARM"]).output["MetricAlarms"] == .list([]))
        #expect(await h.call("DescribeAlarms", ["StateValue": "BROKEN"]).output["__type"] == "InvalidParameterValue")
        #expect(await h.call("DescribeAlarmsForMetric", ["Namespace": "App", "MetricName": "Errors"]).output["MetricAlarms"]?.listValue?.count == 5)
        #expect(await h.call("SetAlarmState", ["AlarmName": "a0", "StateValue": "ALARM", "StateReason": "test", "StateReasonData": "{nope"]).output["__type"] == "InvalidFormat")
        #expect(await h.call("SetAlarmState", ["AlarmName": "a0", "StateValue": "ALARM", "StateReason": "test"]).status == 200)
        #expect(await h.call("SetAlarmState", ["AlarmName": "zz", "StateValue": "ALARM", "StateReason": "test"]).status == 404)
        #expect(await h.call("DeleteAlarms", ["AlarmNames": ["a0", "zz"]]).output["__type"] == "ResourceNotFound")
        #expect(await h.call("DeleteAlarms", ["AlarmNames": ["a0", "a1"]]).status == 200)
        #expect(await h.call("DescribeAlarms", [:]).output["MetricAlarms"]?.listValue?.count == 3)
        #expect(h.ingest.changes.load(ordering: .relaxed) >= 7)
        #expect(await h.call("DescribeAlarmHistory", ["HistoryItemType": "Action"]).output["__type"] == "InvalidParameterValue")
    }
}

extension Array where Element == AWSValue {
    var asList: AWSValue { .list(self) }
}
