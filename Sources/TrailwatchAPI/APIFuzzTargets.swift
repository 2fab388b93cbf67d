import AWSWire
import Foundation
import Synchronization
import TrailwatchCore
import TrailwatchStore

/// Fuzz targets for the network edge's decoders, as plain functions of bytes: whatever the
/// input, they must not crash or hang, and what they accept must keep its invariants (a broken
/// one is thrown as ``Failure``; `trailwatch-fuzz` turns it into a crash libFuzzer saves). The
/// seed corpus is `fuzz/corpus/<name>/`; `APIFuzzTests` runs it and seconds of mutations in
/// `make test`, `make fuzz` runs the same functions under libFuzzer.
///
/// Why a public namespace inside TrailwatchAPI: the targets drive internals of this module (the
/// PutLogEvents decoder's columns, the services' dispatch) and must be callable from both the test
/// target and the `trailwatch-fuzz` executable, which is built in release mode for libFuzzer and so
/// cannot use `@testable import`. Publishing these few byte-in functions keeps the module's real API
/// as it is; making the decoder and its columns public would widen it for fuzzing's sake only.
public enum APIFuzzTargets {
    /// A broken invariant, with what broke.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    static func check(_ condition: Bool, _ message: @autoclosure () -> String) throws(Failure) {
        if !condition { throw Failure(description: message()) }
    }

    // MARK: put-log-events

    /// The hand-written PutLogEvents decoder, against Foundation's JSON parser as a reference:
    /// what the decoder accepts is JSON the reference accepts too (strictness), and its columns
    /// stay inside the decoded block.
    public static func putLogEventsBody(_ data: [UInt8]) throws(Failure) {
        guard let request = try? PutLogEventsDecoder.decode(data) else { return }
        try check(request.starts.count == request.lengths.count && request.lengths.count == request.timestamps.count, "columns of different lengths")
        try check(request.count <= 10_000, "more than 10,000 events accepted")
        for i in 0..<request.count {
            let start = Int(request.starts[i]), length = Int(request.lengths[i])
            try check(start + length < request.messages.count, "a message runs past the decoded block")
            try check(request.messages[start + length] == 0x0A, "a message is not followed by its newline")
        }
        // Messages are valid UTF-8 whatever came in.
        try check(String(validating: request.messages, as: UTF8.self) != nil, "decoded messages are not UTF-8")
        // Foundation rejects what the decoder repairs (invalid UTF-8, lone surrogates) and numbers
        // beyond a Double (1e999, valid JSON): compare only the rest.
        if String(validating: data, as: UTF8.self) != nil, !containsSurrogateEscape(data), !containsExponent(data) {
            try check((try? JSONSerialization.jsonObject(with: Data(data))) as? [String: Any] != nil,
                         "the decoder accepted what is not a JSON object")
        }
    }

    public static func containsExponent(_ data: [UInt8]) -> Bool {
        guard data.count >= 2 else { return false }
        for i in 1..<data.count where data[i] == UInt8(ascii: "e") || data[i] == UInt8(ascii: "E") {
            if data[i - 1] >= 0x30 && data[i - 1] <= 0x39 { return true }
        }
        return false
    }

    public static func containsSurrogateEscape(_ data: [UInt8]) -> Bool {
        guard data.count >= 3 else { return false }
        for i in 0..<(data.count - 2) where data[i] == UInt8(ascii: "\\") && data[i + 1] == UInt8(ascii: "u") {
            if data[i + 2] == UInt8(ascii: "d") || data[i + 2] == UInt8(ascii: "D") { return true }
        }
        return false
    }

    // MARK: aws-json-request

    /// Operations the request target reaches; the input's first byte picks one.
    static let operations = ["PutLogEvents", "CreateLogGroup", "CreateLogStream", "DeleteLogGroup", "DeleteLogStream", "DescribeLogGroups",
                             "DescribeLogStreams", "GetLogEvents", "FilterLogEvents", "StartQuery", "GetQueryResults", "StopQuery",
                             "PutMetricFilter", "DescribeMetricFilters", "DeleteMetricFilter", "TestMetricFilter", "PutRetentionPolicy",
                             "DeleteRetentionPolicy", "NoSuchOperation"]

    /// One CloudWatch Logs call through the whole service (envelope identification, parameter
    /// decoding, validation, the store): the reply is always AWS's shape — a JSON object, and on
    /// errors a `__type` with a 4xx or a retryable 503.
    public static func awsJSONRequest(_ data: [UInt8], scratch: Scratch) async throws(Failure) {
        guard let first = data.first else { return }
        let operation = operations[Int(first) % operations.count]
        let body = Array(data.dropFirst())
        // The envelope: content type and target from the input's own bytes too.
        let text = String(decoding: body.prefix(64), as: UTF8.self)
        _ = AWSJSONProtocol.identify(method: "POST", contentType: text, target: text)
        _ = AWSJSONProtocol.identify(method: "POST", contentType: "application/x-amz-json-1.1", target: "Logs_20140328." + text)
        let service = await scratch.services().logs
        let reply = await service.handle(AWSOperationCall(wireProtocol: .awsJSON1_1, service: service.targetPrefix, operation: operation,
                                                          body: body, principal: .anonymous, requestID: "fuzz"))
        try checkJSONReply(reply, operation)
    }

    static func checkJSONReply(_ reply: AWSReply, _ operation: String) throws(Failure) {
        let object = (try? JSONSerialization.jsonObject(with: Data(reply.body))) as? [String: Any]
        try check(object != nil, "\(operation) answered something that is not a JSON object")
        if reply.status != 200 {
            try check([400, 404, 413, 503].contains(reply.status), "\(operation) answered HTTP \(reply.status)")
            try check(object?["__type"] is String, "\(operation)'s error has no __type")
        }
    }

    // MARK: cloudwatch-request

    /// CloudWatch operations the metrics target reaches (the input's first byte picks one).
    static let cloudWatchOperations = ["PutMetricData", "ListMetrics", "GetMetricStatistics", "GetMetricData", "PutMetricAlarm", "DescribeAlarms",
                                       "DescribeAlarmsForMetric", "DescribeAlarmHistory", "DeleteAlarms", "SetAlarmState", "EnableAlarmActions",
                                       "DisableAlarmActions", "PutAnomalyDetector", "DescribeAnomalyDetectors", "DeleteAnomalyDetector", "NoSuchOperation"]
    static let cloudWatchProtocols: [AWSProtocol] = [.rpcV2CBOR, .awsJSON1_0, .query]

    /// One CloudWatch (metrics) call: the first byte picks the operation, the second the wire
    /// protocol (Smithy RPC v2 CBOR, awsJson 1.0, query), the rest is the body. Past the wire
    /// decoders (the `cbor` and `aws-query-form` targets) this reaches the service's parameter
    /// decoding and validation — datapoint values, dimensions, statistics, metric math
    /// expressions, alarms, anomaly detectors. Datapoints that reach the pipeline are finite with
    /// a positive count and minimum ≤ maximum; the reply is a well-formed document of the
    /// call's protocol, errors 4xx or a retryable 503.
    public static func cloudWatchRequest(_ data: [UInt8], scratch: Scratch) async throws(Failure) {
        guard data.count >= 2 else { return }
        let operation = cloudWatchOperations[Int(data[0]) % cloudWatchOperations.count]
        let wire = cloudWatchProtocols[Int(data[1]) % cloudWatchProtocols.count]
        let service = await scratch.services().cloudWatch
        let reply = await service.handle(AWSOperationCall(wireProtocol: wire, service: service.targetPrefix, operation: operation,
                                                          body: Array(data.dropFirst(2)), principal: .anonymous, requestID: "fuzz"))
        if let broken = scratch.metrics.takeFailure() { throw Failure(description: "\(operation): \(broken)") }
        if reply.status != 200 {
            try check((400..<500).contains(reply.status) || reply.status == 503, "\(operation) answered HTTP \(reply.status)")
        }
        switch wire {
        case .rpcV2CBOR:
            guard case .map(let members)? = try? CBOR.decode(reply.body) else { throw Failure(description: "\(operation) answered something that is not a CBOR map") }
            if reply.status != 200 { try check(members["__type"] != nil, "\(operation)'s CBOR error has no __type") }
        case .query:
            try check(reply.body.first == UInt8(ascii: "<"), "\(operation) answered something that is not XML")
            try check(String(validating: reply.body, as: UTF8.self) != nil, "\(operation)'s XML is not UTF-8")
            // XML 1.0 has no way to write other control characters, escaped or not: a client's parser rejects the reply.
            try check(!reply.body.contains { $0 < 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }, "\(operation)'s XML holds a control character")
        default:
            try checkJSONReply(reply, operation)
        }
    }

    // MARK: cloudtrail-lookup

    /// CloudTrail's LookupEvents request decoding (lookup attributes, time range, MaxResults,
    /// NextToken, EventCategory) over a store holding a few CloudTrail records; the first byte
    /// picks the operation (LookupEvents, or one this endpoint does not serve).
    public static func cloudTrailLookup(_ data: [UInt8], scratch: Scratch) async throws(Failure) {
        guard let first = data.first else { return }
        let operation = first % 8 == 7 ? "CreateTrail" : "LookupEvents"
        let service = await scratch.services().cloudTrail
        let reply = await service.handle(AWSOperationCall(wireProtocol: .awsJSON1_1, service: service.targetPrefix, operation: operation,
                                                          body: Array(data.dropFirst()), principal: .anonymous, requestID: "fuzz"))
        try checkJSONReply(reply, operation)
    }

    // MARK: The services over a scratch store

    /// The three API services over one scratch SQLite store in a temporary directory, made once per
    /// process and replaced by a fresh one every `renewAfter` calls, so millions of fuzzed calls
    /// (log groups, streams, metric filters, alarms, detectors) never grow it without bound.
    /// PutLogEvents and PutMetricData batches go to ingests that check and drop them (the store
    /// keeps the events written while it was set up); ``remove()`` deletes the directory.
    public final class Scratch: Sendable {
        public struct Services: Sendable {
            public let logs: CloudWatchLogsService
            public let cloudWatch: CloudWatchService
            public let cloudTrail: CloudTrailService
            let directory: String
        }

        /// The fixed clock of every service (seeds carry timestamps near it).
        public static let now: Int64 = 1_790_000_000_000
        public let root: String
        let renewAfter: Int
        let metrics = CheckingMetricsIngest()
        private let state = Mutex<(calls: Int, generation: Int, services: Services?)>((0, 0, nil))

        public init(renewAfter: Int = 20_000) throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("trailwatch-fuzz-\(getpid())-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
            self.renewAfter = renewAfter
        }

        /// The services for the next call, made (or renewed) as needed.
        public func services() async -> Services {
            let (current, generation) = state.withLock { s -> (Services?, Int?) in
                s.calls += 1
                if let services = s.services, s.calls <= renewAfter { return (services, nil) }
                s.calls = 1
                s.generation += 1
                return (s.services, s.generation)
            }
            guard let generation else { return current! }
            if let current {
                await current.logs.shutdown()
                try? FileManager.default.removeItem(atPath: current.directory)
            }
            let made = await make(generation)
            state.withLock { $0.services = made }
            return made
        }

        /// Removes the scratch directory (at exit).
        public func remove() { try? FileManager.default.removeItem(atPath: root) }

        private func make(_ generation: Int) async -> Services {
            let directory = root + "/\(generation)"
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let path = directory + "/store.db"
            let setup = SetupLogsIngest(path: path)
            let logs = CloudWatchLogsService(pool: StorePool(location: .sqlite(path: path), access: .readWrite, maximum: 1, threads: 1),
                                             ingest: setup, now: { Scratch.now })
            let open: @Sendable () async throws(StoreError) -> any Store = { () async throws(StoreError) -> any Store in try SQLiteStore(path: path) }
            let services = Services(logs: logs, cloudWatch: CloudWatchService(open: open, ingest: metrics, now: { Scratch.now }),
                                    cloudTrail: CloudTrailService(open: open), directory: directory)
            // Something to read back: a group, a stream, events (JSON, text and CloudTrail records, which
            // the store indexes for LookupEvents), a metric filter and an alarm.
            let t = Scratch.now - 60_000
            let messages = [#"{"level":"ERROR","latency":250,"user":{"id":7}}"#, "10.0.0.1 GET /index.html 200 1534", "WARN disk 91%"]
                + ["ConsoleLogin", "PutObject", "RunInstances"].enumerated().map { k, name in
                    #"{"eventVersion":"1.09","eventTime":"\#(Timestamps.iso8601(t + Int64(k) * 1000))","eventSource":"signin.amazonaws.com","eventName":"\#(name)","awsRegion":"us-east-1","eventID":"0000000\#(k)-0000-0000-0000-000000000000","readOnly":\#(k == 0),"userIdentity":{"type":"IAMUser","userName":"alice","accessKeyId":"AKIDEXAMPLE"},"resources":[{"ARN":"arn:aws:s3:::bucket/key","type":"AWS::S3::Object"}]}"#
                }
            let events = messages.enumerated().map { k, message in ["timestamp": t + Int64(k) * 1000, "message": message] as [String: Any] }
            let putBody = (try? JSONSerialization.data(withJSONObject: ["logGroupName": "/g", "logStreamName": "s", "logEvents": events])).map(Array.init) ?? []
            for (operation, body) in [
                ("CreateLogGroup", Array(#"{"logGroupName":"/g"}"#.utf8)), ("CreateLogStream", Array(#"{"logGroupName":"/g","logStreamName":"s"}"#.utf8)),
                ("PutLogEvents", putBody),
                ("PutMetricFilter", Array(#"{"logGroupName":"/g","filterName":"errors","filterPattern":"ERROR","metricTransformations":[{"metricName":"Errors","metricNamespace":"App","metricValue":"1"}]}"#.utf8)),
            ] {
                _ = await logs.handle(AWSOperationCall(wireProtocol: .awsJSON1_1, service: logs.targetPrefix, operation: operation,
                                                       body: body, principal: .anonymous, requestID: "setup"))
            }
            setup.stopWriting()
            _ = await services.cloudWatch.handle(AWSOperationCall(wireProtocol: .awsJSON1_0, service: services.cloudWatch.targetPrefix, operation: "PutMetricAlarm",
                                                                  body: Array(#"{"AlarmName":"a","Namespace":"App","MetricName":"Errors","Statistic":"Sum","Period":60,"EvaluationPeriods":1,"Threshold":1,"ComparisonOperator":"GreaterThanThreshold"}"#.utf8),
                                                                  principal: .anonymous, requestID: "setup"))
            return services
        }
    }

    /// Writes PutLogEvents batches to the scratch store while it is set up, then checks and drops them.
    final class SetupLogsIngest: LogsIngest, Sendable {
        let path: String
        private let writing = Atomic<Bool>(true)
        init(path: String) { self.path = path }
        func stopWriting() { writing.store(false, ordering: .relaxed) }

        func ingest(_ batch: LogBatch) async throws(AWSError) {
            guard writing.load(ordering: .relaxed) else { return }
            do { _ = try SQLiteStore(path: path).write(.logs(batch)) } catch { throw AWSError.serviceUnavailable("\(error)") }
        }

        func metricFiltersChanged() {}
    }

    /// Drops PutMetricData datapoints after checking what the pipeline relies on.
    final class CheckingMetricsIngest: MetricsIngest, Sendable {
        private let failure = Mutex<String?>(nil)

        func ingest(_ data: [MetricDatum]) async throws(AWSError) {
            for datum in data {
                let numbers = [datum.sampleCount, datum.sum, datum.minimum, datum.maximum] + datum.values
                if !numbers.allSatisfy(\.isFinite) || datum.sampleCount <= 0 || datum.minimum > datum.maximum {
                    failure.withLock { $0 = $0 ?? "a datapoint reached the pipeline with count \(datum.sampleCount), sum \(datum.sum), min \(datum.minimum), max \(datum.maximum)" }
                }
            }
        }

        func alarmsChanged() {}

        func takeFailure() -> String? { failure.withLock { f in defer { f = nil }; return f } }
    }

    // MARK: sigv4

    static let key = AccessKey(id: "AKIDFUZZ", secret: "fuzz/secret")
    static let now = AWSTimestamp(secondsSinceEpoch: 1_790_000_000)

    /// SigV4: the Authorization parser and the verifier over hostile headers, and a round trip —
    /// a request built from the input's method, path, query and headers, signed as botocore does,
    /// verifies; with one byte of its signature changed it does not.
    ///
    /// Input: method NUL path NUL query NUL header lines (`name: value` per line) NUL authorization NUL x-amz-date.
    public static func sigV4(_ data: [UInt8]) throws(Failure) {
        var parts = data.split(separator: 0, maxSplits: 5, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        while parts.count < 6 { parts.append("") }
        let (method, path, query, headerBlock, authorization, date) = (parts[0], parts[1], parts[2], parts[3], parts[4], parts[5])
        var headers: [(name: String, value: String)] = []
        for line in headerBlock.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
        }
        _ = SigV4.parseAuthorization(authorization)
        let verifier = SigV4Verifier(keys: AccessKeyring([key]), service: "logs")
        // Hostile as received.
        let received = SigV4.Request(method: method, path: path, query: query,
                                     headers: headers + [("authorization", authorization), ("x-amz-date", date), ("host", "h")],
                                     payloadHash: SigV4.emptyPayloadHash)
        if case .success = verifier.verify(received, now: now) { throw Failure(description: "a signature nobody made verified") }
        // Round trip: only header names an HTTP parser would deliver, none that signing itself sets.
        let reserved: Set<String> = ["authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"]
        var clean = headers.filter { header in
            !header.name.isEmpty && header.name.utf8.allSatisfy(isTokenByte) && !reserved.contains(header.name.lowercased())
        }
        if !clean.contains(where: { $0.name.lowercased() == "host" }) { clean.append(("Host", "aggregator:4566")) }
        let unsigned = SigV4.Request(method: method.isEmpty ? "POST" : method, path: path, query: query, headers: clean,
                                     payloadHash: SigV4.sha256Hex(data))
        let added = SigV4.sign(unsigned, credentials: key, region: "us-east-1", service: "logs", now: now)
        var signed = unsigned
        signed.headers += added
        guard case .success(let principal) = verifier.verify(signed, now: now) else {
            throw Failure(description: "a request signed with the key did not verify: \(verifier.verify(signed, now: now))")
        }
        try check(principal.accessKeyID == key.id, "the principal is the signing key")
        var tampered = signed
        let last = tampered.headers.count - 1
        let value = tampered.headers[last].value
        tampered.headers[last].value = String(value.dropLast()) + (value.hasSuffix("0") ? "1" : "0")
        if case .success = verifier.verify(tampered, now: now) { throw Failure(description: "a changed signature verified") }
    }

    /// RFC 9110 token characters (header names).
    static func isTokenByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || Array("!#$%&'*+-.^_`|~".utf8).contains(b)
    }
}
