import AWSWire
import AsyncHTTPClient
import Foundation
import Synchronization
import TrailwatchConfig
import TrailwatchCore
import TrailwatchRuntime

/// `cloudwatch_logs`: ships log events with PutLogEvents (SigV4-signed, over async-http-client)
/// to another trailwatch's `cloudwatch_logs_api` source or to AWS itself. Batches are split the
/// way the API demands (at most 10,000 events and 1,048,576 bytes counting 26 per event, spanning
/// at most 24 hours, in time order); throttling, 5xx and connection failures are retried with
/// exponential backoff and full jitter; a batch is acknowledged only once every request for it
/// was answered 200, so a file source's checkpoint never passes what the receiver has. Up to
/// `max_in_flight` requests run at once, so the receiver's durable write (its fsync) overlaps
/// the next requests instead of setting the pace.
struct CloudWatchLogsSink: SinkKind {
    struct Config: StageConfig {
        var endpoint = ""
        var region = "us-east-1"
        var logGroup: String?
        var logStream: String?
        var createMissing = true
        var accessKeyIDEnv = "AWS_ACCESS_KEY_ID"
        var secretAccessKeyEnv = "AWS_SECRET_ACCESS_KEY"
        var sessionTokenEnv = "AWS_SESSION_TOKEN"
        var caFile: String?
        var timeout = ConfigDuration(milliseconds: 30_000)
        var retryInitial = ConfigDuration(milliseconds: 200)
        var retryMax = ConfigDuration(milliseconds: 30_000)
        var maxInFlight = 4

        static let settings = SettingsSchema<Config>(
            .required("endpoint", \.endpoint, "The receiver: a trailwatch aggregator (`https://aggregator:4566`) or AWS "
                      + "(`https://logs.us-east-1.amazonaws.com`).", check: { endpoint in
                guard let url = URL(string: endpoint), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http",
                      url.host != nil, url.query == nil else {
                    return SettingIssue("'\(endpoint)' is not an http(s) URL", expected: "https://logs.us-east-1.amazonaws.com or http://127.0.0.1:4566")
                }
                return nil
            }),
            .setting("region", \.region, "The region requests are signed for (SigV4)."),
            .setting("log_group", \.logGroup, "A fixed log group for every event.", default: "each event's own (its source's `log_group`)"),
            .setting("log_stream", \.logStream, "A fixed log stream for every event.", default: "each event's own"),
            .setting("create_missing", \.createMissing, "CreateLogGroup/CreateLogStream when the receiver says they do not exist."),
            .setting("access_key_id_env", \.accessKeyIDEnv, "The environment variable holding the access key id."),
            .setting("secret_access_key_env", \.secretAccessKeyEnv, "The environment variable holding the secret access key."),
            .setting("session_token_env", \.sessionTokenEnv, "The environment variable holding a session token, when set."),
            .setting("ca_file", \.caFile, "PEM CA certificates to trust besides the system's (a self-signed aggregator)."),
            .setting("timeout", \.timeout, "Per request."),
            .setting("retry_initial", \.retryInitial, "Throttling, 5xx and connection failures are retried with backoff and full jitter, "
                     + "doubling from `retry_initial` up to `retry_max`."),
            .setting("retry_max", \.retryMax, "The longest backoff step; at least `retry_initial`."),
            .setting("max_in_flight", \.maxInFlight, "PutLogEvents requests under way at once (each batch is acknowledged when all of its "
                     + "requests are answered 200). 1–64.", check: SettingIssue.outside(1...64, expected: "1 to 64"))
        )

        mutating func validate(at codingPath: [any CodingKey]) throws {
            guard retryInitial.milliseconds >= 1, retryMax.milliseconds >= retryInitial.milliseconds else {
                throw SettingError(codingPath: codingPath + [Self.key(\Config.retryMax)], message: "retry_max is below retry_initial", expected: "retry_initial ≤ retry_max")
            }
        }
    }

    static let type = "cloudwatch_logs"
    static let summary = "Ships log events with PutLogEvents (SigV4) to a trailwatch API source or to AWS CloudWatch Logs."
    static func accepts(_ config: Config) -> Set<EventKind> { [.log] }

    static func make(_ config: Config, _ context: StageContext) throws -> any Sink {
        let environment = ProcessInfo.processInfo.environment
        guard let id = environment[config.accessKeyIDEnv], !id.isEmpty else {
            throw StageError("the environment variable \(config.accessKeyIDEnv) (access_key_id_env) is not set")
        }
        guard let secret = environment[config.secretAccessKeyEnv], !secret.isEmpty else {
            throw StageError("the environment variable \(config.secretAccessKeyEnv) (secret_access_key_env) is not set")
        }
        let token = environment[config.sessionTokenEnv].flatMap { $0.isEmpty ? nil : $0 }
        let client = try HTTPClientStack.client(caFile: config.caFile, timeout: config.timeout.seconds)
        return Runner(config: config, credentials: AccessKey(id: id, secret: secret), sessionToken: token, client: client, context: context)
    }

    /// One PutLogEvents request's worth of events.
    struct Chunk {
        var group: String
        var stream: String
        var body: [UInt8]
        var count: Int
    }

    /// Splits `logs` into requests AWS accepts: per group and stream, in time order, at most
    /// 10,000 events, 1,048,576 bytes (message + 26 each) and 24 hours each. Empty messages
    /// (which AWS refuses) are left out; longer than one request allows are cut.
    static func chunks(_ logs: LogBatch, group fixedGroup: String?, stream fixedStream: String?) -> (chunks: [Chunk], skipped: Int, truncated: Int) {
        let maxBytes = 1_048_576, overhead = 26, maxEvents = 10_000, maxSpan: Int64 = 86_400_000
        var byOrigin: [Origin: [Int]] = [:]
        var skipped = 0, truncated = 0
        for i in 0..<logs.count {
            guard logs.lengths[i] > 0 else { skipped += 1; continue }
            let origin = logs.origin(i)
            byOrigin[Origin(logGroup: fixedGroup ?? origin.logGroup, logStream: fixedStream ?? origin.logStream), default: []].append(i)
        }
        var out: [Chunk] = []
        for origin in byOrigin.keys.sorted(by: { ($0.logGroup, $0.logStream) < ($1.logGroup, $1.logStream) }) {
            let indices = byOrigin[origin]!.sorted { (logs.timestamp($0), $0) < (logs.timestamp($1), $1) }
            var body = ByteBuffer(reservingCapacity: 64 * 1024)
            var count = 0, size = 0
            var first: Int64 = 0
            func open() {
                body.removeAll()
                body.append("{\"logGroupName\":")
                JSONEscaping.appendString(origin.logGroup, to: &body)
                body.append(",\"logStreamName\":")
                JSONEscaping.appendString(origin.logStream, to: &body)
                body.append(",\"logEvents\":[")
                count = 0
                size = 0
            }
            func close() {
                guard count > 0 else { return }
                body.append("]}")
                out.append(Chunk(group: origin.logGroup, stream: origin.logStream, body: body.bytes, count: count))
            }
            open()
            for i in indices {
                var message = logs.message(i)
                if message.count + overhead > maxBytes {
                    var cut = maxBytes - overhead
                    while cut > 0 && (message[cut] & 0xC0) == 0x80 { cut -= 1 }   // not inside a UTF-8 sequence
                    message = UnsafeRawBufferPointer(rebasing: message[0..<cut])
                    truncated += 1
                }
                let time = logs.timestamp(i)
                if count > 0 && (count == maxEvents || size + message.count + overhead > maxBytes || time - first > maxSpan) {
                    close()
                    open()
                }
                if count == 0 { first = time } else { body.append(UInt8(ascii: ",")) }
                body.append("{\"timestamp\":")
                body.appendDecimal(max(0, time))
                body.append(",\"message\":")
                JSONEscaping.appendString(message, to: &body)
                body.append(UInt8(ascii: "}"))
                count += 1
                size += message.count + overhead
            }
            close()
        }
        return (out, skipped, truncated)
    }

    final class Runner: Sink, Sendable {
        let config: Config
        let credentials: AccessKey
        let sessionToken: String?
        let client: HTTPClient
        let context: StageContext
        let url: String
        let path: String
        let host: String
        let inFlight: InFlightLimit

        init(config: Config, credentials: AccessKey, sessionToken: String?, client: HTTPClient, context: StageContext) {
            self.config = config
            self.credentials = credentials
            self.sessionToken = sessionToken
            self.client = client
            self.context = context
            let parsed = URL(string: config.endpoint)!
            path = parsed.path.isEmpty ? "/" : parsed.path
            url = parsed.path.isEmpty ? config.endpoint + "/" : config.endpoint
            let defaultPort = parsed.scheme?.lowercased() == "https" ? 443 : 80
            host = parsed.host! + (parsed.port.map { $0 == defaultPort ? "" : ":\($0)" } ?? "")
            inFlight = InFlightLimit(config.maxInFlight)
        }

        func write(_ batch: Batch) async throws {
            guard case .logs(let logs) = batch.payload else {
                batch.acks.release()
                return
            }
            let (chunks, skipped, truncated) = CloudWatchLogsSink.chunks(logs, group: config.logGroup, stream: config.logStream)
            if skipped > 0 { context.metrics.addToGauge("skipped_empty_events", Double(skipped)) }
            if truncated > 0 { context.metrics.addToGauge("truncated_events", Double(truncated)) }
            guard !chunks.isEmpty else {
                batch.acks.release()
                return
            }
            // The batch is acknowledged once its last request is answered 200 (failed if any was refused).
            let parts = PartsOutcome(acks: batch.acks, parts: chunks.count)
            for chunk in chunks {
                await inFlight.acquire()
                Task { [self] in
                    defer { inFlight.release() }
                    do {
                        try await deliver(chunk)
                        context.metrics.recordOut(events: chunk.count, bytes: chunk.body.count)
                        parts.done(success: true)
                    } catch {
                        context.metrics.recordError()
                        context.log.log(.error, context.id, "write failed: \(error)")
                        parts.done(success: false)
                    }
                }
            }
        }

        func finish() async throws {
            await inFlight.waitIdle()
            try? await client.shutdown()
        }

        /// What an AWS JSON error said.
        static func errorType(_ body: [UInt8]) -> (type: String, message: String) {
            let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
            var type = object?["__type"] as? String ?? ""
            if let hash = type.lastIndex(of: "#") { type = String(type[type.index(after: hash)...]) }
            return (type, object?["message"] as? String ?? object?["Message"] as? String ?? String(decoding: body.prefix(200), as: UTF8.self))
        }

        func call(_ operation: String, _ body: [UInt8]) async throws -> HTTPClientStack.Answer {
            var headers: [(name: String, value: String)] = [("Host", host), ("Content-Type", "application/x-amz-json-1.1"),
                                                            ("X-Amz-Target", "Logs_20140328.\(operation)")]
            let request = SigV4.Request(method: "POST", path: path, headers: headers,
                                        payloadHash: body.withUnsafeBytes { SigV4.sha256Hex($0) })
            headers += SigV4.sign(request, credentials: credentials, region: config.region, service: "logs",
                                  now: AWSTimestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)), sessionToken: sessionToken)
            return try await HTTPClientStack.send(client, url: url, headers: headers.map { ($0.name, $0.value) }, body: body, timeout: config.timeout.seconds)
        }

        func createMissing(_ group: String, _ stream: String) async throws {
            for (operation, body) in [("CreateLogGroup", "{\"logGroupName\":\(AWSJSONText.quote(group))}"),
                                      ("CreateLogStream", "{\"logGroupName\":\(AWSJSONText.quote(group)),\"logStreamName\":\(AWSJSONText.quote(stream))}")] {
                let answer = try await call(operation, Array(body.utf8))
                let (type, message) = Self.errorType(answer.body)
                guard answer.status == 200 || type == "ResourceAlreadyExistsException" else {
                    throw StageError("\(operation) \(group)\(operation == "CreateLogStream" ? " " + stream : ""): HTTP \(answer.status) \(type): \(message)")
                }
            }
        }

        func deliver(_ chunk: Chunk) async throws {
            var attempt = 0
            var triedCreating = false
            while true {
                var reason: String
                var retryAfter: Double?
                do {
                    let answer = try await call("PutLogEvents", chunk.body)
                    let (type, message) = answer.status == 200 ? ("", "") : Self.errorType(answer.body)
                    switch (answer.status, type) {
                    case (200, _):
                        noteRejections(answer.body, chunk)
                        return
                    case (_, "DataAlreadyAcceptedException"), (_, "InvalidSequenceTokenException"):
                        return   // accepted before (legacy sequence-token semantics)
                    case (_, "ResourceNotFoundException") where config.createMissing && !triedCreating:
                        triedCreating = true
                        try await createMissing(chunk.group, chunk.stream)
                        continue
                    case (429, _), (500..., _), (_, "ThrottlingException"), (_, "ServiceUnavailableException"), (_, "RequestLimitExceeded"):
                        reason = "HTTP \(answer.status) \(type): \(message)"
                        retryAfter = answer.retryAfter
                    default:
                        throw StageError("PutLogEvents to \(config.endpoint) for \(chunk.group)/\(chunk.stream) refused: HTTP \(answer.status) \(type): \(message)")
                    }
                } catch let error as StageError {
                    throw error
                } catch {
                    reason = "\(error)"
                }
                attempt += 1
                let ceiling = min(Double(config.retryMax.milliseconds), Double(config.retryInitial.milliseconds) * pow(2, Double(min(attempt - 1, 30))))
                let delay = max(retryAfter.map { $0 * 1000 } ?? 0, Double.random(in: 0...ceiling))
                context.metrics.addToGauge("sink_retries", 1)
                if attempt == 1 || attempt % 10 == 0 {
                    context.log.log(.warning, context.id, "PutLogEvents to \(config.endpoint): \(reason); attempt \(attempt), retrying in \(Int(delay))ms")
                }
                await context.clock.sleep(milliseconds: Int64(delay))
            }
        }

        func noteRejections(_ body: [UInt8], _ chunk: Chunk) {
            guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
                  let info = object["rejectedLogEventsInfo"] as? [String: Any], !info.isEmpty else { return }
            context.metrics.addToGauge("rejected_batches", 1)
            context.log.log(.warning, context.id, "the receiver rejected part of a batch for \(chunk.group)/\(chunk.stream) (too old or too new): \(info)")
        }
    }
}

/// Releases a batch's acknowledgements once each of its parts (requests) is done: successfully
/// if every part succeeded.
final class PartsOutcome: Sendable {
    private let acks: Acknowledgements
    private let remaining: Atomic<Int>
    private let failed = Atomic<Bool>(false)

    init(acks: Acknowledgements, parts: Int) {
        self.acks = acks
        remaining = Atomic(parts)
    }

    func done(success: Bool) {
        if !success { failed.store(true, ordering: .relaxed) }
        if remaining.wrappingSubtract(1, ordering: .acquiringAndReleasing).newValue == 0 {
            acks.release(success: !failed.load(ordering: .relaxed))
        }
    }
}
