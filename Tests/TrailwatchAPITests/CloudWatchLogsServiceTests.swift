import AWSWire
import Foundation
import Synchronization
import Testing
import TrailwatchCore
import TrailwatchStore
@testable import TrailwatchAPI

/// Records what reached "the pipeline"; can refuse or hold batches.
final class RecordingIngest: LogsIngest, Sendable {
    enum Mode: Sendable { case accept, throttle, fail }
    let mode: Mode
    let batches = Mutex<[LogBatch]>([])
    let filterChanges = Atomic<Int>(0)
    init(_ mode: Mode = .accept) { self.mode = mode }

    func ingest(_ batch: LogBatch) async throws(AWSError) {
        switch mode {
        case .accept: batches.withLock { $0.append(batch) }
        case .throttle: throw AWSError.throttling("busy")
        case .fail: throw AWSError.serviceUnavailable("a sink failed")
        }
    }

    func metricFiltersChanged() { filterChanges.wrappingAdd(1, ordering: .relaxed) }
    var messages: [String] { batches.withLock { $0.flatMap { b in (0..<b.count).map { b.messageString($0) } } } }
}

struct Harness {
    let dir: String
    let service: CloudWatchLogsService
    let ingest: RecordingIngest
    static let now: Int64 = 1_790_000_000_000

    init(_ mode: RecordingIngest.Mode = .accept) throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("tw-api-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let path = dir + "/store.db"
        ingest = RecordingIngest(mode)
        service = CloudWatchLogsService(pool: StorePool(location: .sqlite(path: path), access: .readWrite, maximum: 1, threads: 1), ingest: ingest,
                                        now: { Harness.now })
    }

    func call(_ operation: String, _ body: String) async -> (status: Int, json: [String: Any]) {
        let reply = await service.handle(AWSOperationCall(wireProtocol: .awsJSON1_1, service: "Logs_20140328", operation: operation,
                                                          body: Array(body.utf8), principal: .anonymous, requestID: "r"))
        return (reply.status, (try? JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any]) ?? [:])
    }

    func setUp() async {
        _ = await call("CreateLogGroup", #"{"logGroupName":"/g"}"#)
        _ = await call("CreateLogStream", #"{"logGroupName":"/g","logStreamName":"s"}"#)
    }

    /// The pool's connections and threads go with the service.
    func cleanUp() {
        try? FileManager.default.removeItem(atPath: dir)
    }
}

func events(_ list: [(Int64, String)]) -> String {
    "[" + list.map { "{\"timestamp\":\($0.0),\"message\":\(AWSJSONText.quote($0.1))}" }.joined(separator: ",") + "]"
}

@Suite("CloudWatch Logs service over a store", .serialized)
struct CloudWatchLogsServiceTests {
    @Test("PutLogEvents: accepted events reach the pipeline with their group, stream and times; rejected ones are reported")
    func putLogEvents() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        await h.setUp()
        let now = Harness.now
        let body = #"{"logGroupName":"/g","logStreamName":"s","sequenceToken":"x","logEvents":"# + events([
            (now - 15 * 86_400_000, "too old"), (now - 2000, "one"), (now - 1000, "two \"quoted\" ünïcode"), (now + 3 * 3_600_000, "too new"),
        ]) + "}"
        let (status, json) = await h.call("PutLogEvents", body)
        #expect(status == 200)
        #expect(json["rejectedLogEventsInfo"] as? [String: Int] == ["tooOldLogEventEndIndex": 0, "tooNewLogEventStartIndex": 3])
        #expect(json["nextSequenceToken"] is String)
        #expect(h.ingest.messages == ["one", "two \"quoted\" ünïcode"])
        let batch = try #require(h.ingest.batches.withLock { $0.first })
        #expect(batch.origin(0) == Origin(logGroup: "/g", logStream: "s"))
        #expect(batch.timestamp(0) == now - 2000 && batch.timestamp(1) == now - 1000)
        #expect(batch.ingestionTime == now)
    }

    @Test("PutLogEvents limits: size counting 26 bytes an event, 10,000 events, 24 hours, empty messages, unknown group or stream")
    func limits() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        await h.setUp()
        let now = Harness.now
        func put(_ list: [(Int64, String)], group: String = "/g", stream: String = "s") async -> (Int, String?) {
            let (status, json) = await h.call("PutLogEvents", #"{"logGroupName":"\#(group)","logStreamName":"\#(stream)","logEvents":"# + events(list) + "}")
            return (status, json["__type"] as? String)
        }
        // 1,048,576 exactly fits: 4 events of 262,118 bytes + 26 each.
        let exact = (0..<4).map { _ in (now, String(repeating: "a", count: 262_144 - 26)) }
        #expect(await put(exact).0 == 200)
        let over = (0..<4).map { _ in (now, String(repeating: "a", count: 262_144 - 25)) }
        #expect(await put(over) == (400, "InvalidParameterException"))
        #expect(await put((0..<10_001).map { (now, "x\($0)") }) == (400, "InvalidParameterException"))
        #expect(await put([(now - 25 * 3_600_000, "a"), (now, "b")]) == (400, "InvalidParameterException"))
        #expect(await put([(now, "")]) == (400, "InvalidParameterException"))
        #expect(await put([]) == (400, "InvalidParameterException"))
        #expect(await put([(now, "x")], group: "/missing") == (400, "ResourceNotFoundException"))
        #expect(await put([(now, "x")], stream: "missing") == (400, "ResourceNotFoundException"))
        #expect(await put([(now, "x")], stream: "bad:name") == (400, "InvalidParameterException"))
        #expect(await put([(now, "x")], group: "bad group") == (400, "InvalidParameterException"))
    }

    @Test("malformed bodies are SerializationException, never a crash")
    func malformed() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        await h.setUp()
        for body in ["", "{", "[]", "{\"logGroupName\":", "{\"logGroupName\":\"/g\",}", "{\"logEvents\":[{\"timestamp\":\"x\",\"message\":\"m\"}]}",
                     "{\"logGroupName\":1}", "{\"logGroupName\":\"/g\",\"logStreamName\":\"s\",\"logEvents\":[{\"timestamp\":99999999999999999999999,\"message\":\"m\"}]}",
                     String(repeating: "[", count: 10_000), "{\"a\":\"\u{1}\"}", "nul\u{0}l", "{\"logGroupName\":\"/g\"} trailing"] {
            let (status, json) = await h.call("PutLogEvents", body)
            #expect(status == 400, "\(body.prefix(40))")
            #expect(json["__type"] as? String == "SerializationException" || json["__type"] as? String == "InvalidParameterException", "\(body.prefix(40)): \(json)")
        }
        for body in ["{", "[1]", "{\"logGroupName\": 5}"] {
            let (status, json) = await h.call("CreateLogGroup", body)
            #expect(status == 400 && json["__type"] as? String == "SerializationException", "\(body)")
        }
        #expect(await h.call("NoSuchOperation", "{}").json["__type"] as? String == "UnknownOperationException")
    }

    @Test("invalid UTF-8 in a message becomes U+FFFD; the event is kept")
    func invalidUTF8() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        await h.setUp()
        var body = Array(#"{"logGroupName":"/g","logStreamName":"s","logEvents":[{"timestamp":\#(Harness.now),"message":"bad "#.utf8)
        body += [0xFF, 0xC3, 0x28]
        body += Array(#" end"}]}"#.utf8)
        let reply = await h.service.handle(AWSOperationCall(wireProtocol: .awsJSON1_1, service: "Logs_20140328", operation: "PutLogEvents",
                                                            body: body, principal: .anonymous, requestID: "r"))
        #expect(reply.status == 200)
        #expect(h.ingest.messages == ["bad \u{FFFD}\u{FFFD}( end"])
    }

    @Test("backpressure and sink failures answer 503 in AWS's shape")
    func refusals() async throws {
        for (mode, type) in [(RecordingIngest.Mode.throttle, "ThrottlingException"), (.fail, "ServiceUnavailableException")] {
            let h = try Harness(mode)
            defer { h.cleanUp() }
            await h.setUp()
            let (status, json) = await h.call("PutLogEvents", #"{"logGroupName":"/g","logStreamName":"s","logEvents":"# + events([(Harness.now, "x")]) + "}")
            #expect(status == 503 && json["__type"] as? String == type)
        }
    }

    @Test("groups and streams: create, describe with prefixes and pages, delete")
    func catalog() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        for i in 0..<7 { _ = await h.call("CreateLogGroup", #"{"logGroupName":"/app/\#(i)"}"#) }
        _ = await h.call("CreateLogGroup", #"{"logGroupName":"/other"}"#)
        var names: [String] = []
        var token: String?
        repeat {
            let body = token.map { #"{"logGroupNamePrefix":"/app","limit":3,"nextToken":"\#($0)"}"# } ?? #"{"logGroupNamePrefix":"/app","limit":3}"#
            let (status, json) = await h.call("DescribeLogGroups", body)
            #expect(status == 200)
            names += (json["logGroups"] as? [[String: Any]] ?? []).compactMap { $0["logGroupName"] as? String }
            token = json["nextToken"] as? String
        } while token != nil
        #expect(names == (0..<7).map { "/app/\($0)" })
        #expect(await h.call("DescribeLogGroups", #"{"limit":51}"#).json["__type"] as? String == "InvalidParameterException")
        #expect(await h.call("DeleteLogGroup", #"{"logGroupName":"/app/3"}"#).status == 200)
        #expect(await h.call("DeleteLogGroup", #"{"logGroupName":"/app/3"}"#).json["__type"] as? String == "ResourceNotFoundException")
        _ = await h.call("CreateLogStream", #"{"logGroupName":"/other","logStreamName":"b"}"#)
        _ = await h.call("CreateLogStream", #"{"logGroupName":"/other","logStreamName":"a"}"#)
        let streams = await h.call("DescribeLogStreams", #"{"logGroupName":"/other"}"#).json["logStreams"] as? [[String: Any]]
        #expect(streams?.compactMap { $0["logStreamName"] as? String } == ["a", "b"])
        #expect(await h.call("DeleteLogStream", #"{"logGroupName":"/other","logStreamName":"a"}"#).status == 200)
        #expect(await h.call("DescribeLogStreams", #"{"logGroupName":"/missing"}"#).json["__type"] as? String == "ResourceNotFoundException")
    }

    @Test("metric filters: stored, compiled like YAML ones, evaluated per minute on accepted events")
    func metricFilters() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        await h.setUp()
        let put = await h.call("PutMetricFilter", #"{"logGroupName":"/g","filterName":"errors","filterPattern":"[level=ERROR, code, ...]","metricTransformations":[{"metricName":"Errors","metricNamespace":"App","metricValue":"1","dimensions":{"Code":"$code"}}]}"#)
        #expect(put.status == 200)
        #expect(h.ingest.filterChanges.load(ordering: .relaxed) == 1)
        let bad = await h.call("PutMetricFilter", #"{"logGroupName":"/g","filterName":"x","filterPattern":"[a","metricTransformations":[{"metricName":"E","metricNamespace":"A","metricValue":"1"}]}"#)
        #expect(bad.json["__type"] as? String == "InvalidParameterException")
        let filters = try await h.service.loadMetricFilters()
        #expect(filters.map(\.name) == ["errors"])
        var evaluator = MetricFilterEvaluator()
        evaluator.reload(filters)
        let minute: Int64 = 1_790_000_040_000
        var batch = LogBatch(storage: ByteStorage(copying: Array("ERROR 500 x\nINFO 200 y\nERROR 503 z\n".utf8)), defaultTimestamp: minute,
                             ingestionTime: minute, origin: Origin(logGroup: "/g", logStream: "s"))
        batch.append(start: 0, length: 11)
        batch.append(start: 12, length: 10)
        batch.append(start: 23, length: 11)
        #expect(evaluator.add(batch).isEmpty)
        let data = evaluator.closeAll().sorted { $0.metric.dimensions.description < $1.metric.dimensions.description }
        #expect(data.map(\.sum) == [1, 1])
        #expect(data.map { $0.metric.dimensions.first?.value } == ["500", "503"])
        let described = await h.call("DescribeMetricFilters", #"{"logGroupName":"/g"}"#).json["metricFilters"] as? [[String: Any]]
        #expect(described?.first?["filterName"] as? String == "errors")
        #expect(await h.call("DeleteMetricFilter", #"{"logGroupName":"/g","filterName":"errors"}"#).status == 200)
        #expect(await h.call("DeleteMetricFilter", #"{"logGroupName":"/g","filterName":"errors"}"#).json["__type"] as? String == "ResourceNotFoundException")
    }
}
