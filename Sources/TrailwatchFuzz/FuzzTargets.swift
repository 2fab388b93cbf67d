import AWSWire
import ByteJSON
import DataProtection
import EventPatterns
import FilterPatterns
import Foundation
import LinearRegex
import LogsQuery
import Synchronization
import TrailwatchAPI
import TrailwatchConfig
import TrailwatchCore
import TrailwatchDashboard
import TrailwatchRuntime
import TrailwatchStages

/// A fuzz target: a name, and what to do with one input. It must never crash or hang, whatever
/// the bytes.
struct FuzzTarget: Sendable {
    let name: String
    let summary: String
    let run: @Sendable ([UInt8]) -> Void
}

/// Every target, one line each. To add one (an HTTP API decoder, say): write a function taking
/// `[UInt8]`, add a line here, and seed `fuzz/corpus/<name>/` with a few inputs.
let fuzzTargets: [FuzzTarget] = [
    FuzzTarget(name: "regex", summary: "regular expressions: compile, match and capture (pattern NUL text)", run: FuzzEntries.regex),
    FuzzTarget(name: "filter-pattern", summary: "CloudWatch filter patterns and metric values (pattern NUL event)", run: FuzzEntries.filterPattern),
    FuzzTarget(name: "query", summary: "the Logs Insights language: lexer, parser, evaluator over a few rows", run: FuzzEntries.query),
    FuzzTarget(name: "bytejson", summary: "JSON parsing and selector look-ups (selector NUL document)", run: FuzzEntries.byteJSON),
    FuzzTarget(name: "pipeline-yaml", summary: "pipeline YAML loading, decoding and planning", run: FuzzEntries.pipelineYAML),
    FuzzTarget(name: "archive-reader", summary: "the archive source's reader: zstd/gzip/plain, lines, records", run: FuzzEntries.archiveReader),
    FuzzTarget(name: "cloudtrail", summary: "CloudTrail delivery files", run: FuzzEntries.cloudTrail),
    FuzzTarget(name: "timestamp", summary: "event-time formats and texts, ISO 8601 both ways (format NUL text)", run: FuzzEntries.timestamp),
    FuzzTarget(name: "data-protection", summary: "data protection policies and masking: managed and custom identifiers (policy NUL message)", run: FuzzEntries.dataProtection),
    FuzzTarget(name: "cbor", summary: "CBOR documents (Smithy RPC v2): decode, and what decodes round-trips", run: FuzzEntries.cbor),
    FuzzTarget(name: "aws-query-form", summary: "AWS query protocol forms and AWS JSON documents", run: FuzzEntries.awsQueryForm),
    FuzzTarget(name: "event-pattern", summary: "EventBridge event patterns matched against an event (pattern NUL event)", run: FuzzEntries.eventPattern),
    // The network edge's decoders; the functions live in TrailwatchAPI (APIFuzzTargets), shared with APIFuzzTests.
    FuzzTarget(name: "put-log-events", summary: "the PutLogEvents body decoder, against Foundation's JSON parser",
               run: APIFuzzBridge.checked(APIFuzzTargets.putLogEventsBody)),
    FuzzTarget(name: "aws-json-request", summary: "CloudWatch Logs calls through the service over a scratch store (operation byte, body)",
               run: APIFuzzBridge.service(APIFuzzTargets.awsJSONRequest)),
    FuzzTarget(name: "cloudwatch-request", summary: "CloudWatch metric/alarm calls in CBOR, JSON 1.0 or query (operation byte, protocol byte, body)",
               run: APIFuzzBridge.service(APIFuzzTargets.cloudWatchRequest)),
    FuzzTarget(name: "cloudtrail-lookup", summary: "CloudTrail LookupEvents requests over a store with CloudTrail records (operation byte, body)",
               run: APIFuzzBridge.service(APIFuzzTargets.cloudTrailLookup)),
    FuzzTarget(name: "sigv4", summary: "SigV4: hostile Authorization headers, and sign-then-verify round trips (fields split by NUL)",
               run: APIFuzzBridge.checked(APIFuzzTargets.sigV4)),
]

/// Runs the API targets as libFuzzer callbacks: a broken invariant becomes a crash (libFuzzer
/// saves the input), and the async service calls are awaited from the synchronous callback.
enum APIFuzzBridge {
    /// One scratch store per process for the service targets, made on first use and removed at exit
    /// (libFuzzer ends with exit(); a crash leaves it for the post-mortem).
    static let scratch: APIFuzzTargets.Scratch = {
        do {
            let scratch = try APIFuzzTargets.Scratch()
            atexit { APIFuzzBridge.scratch.remove() }
            return scratch
        } catch {
            fatalError("trailwatch-fuzz: cannot make a scratch store: \(error)")
        }
    }()

    static func checked(_ target: @escaping @Sendable ([UInt8]) throws(APIFuzzTargets.Failure) -> Void) -> @Sendable ([UInt8]) -> Void {
        { data in
            do throws(APIFuzzTargets.Failure) { try target(data) } catch { fatalError("invariant broken: \(error)") }
        }
    }

    /// The callback runs on the thread libFuzzer (or the built-in harness) drives, never on one of
    /// Swift's cooperative threads: it starts the call as a detached task and blocks on a semaphore
    /// until the task is done, so the pool is free to run the task and everything it awaits.
    static func service(_ target: @escaping @Sendable ([UInt8], APIFuzzTargets.Scratch) async throws(APIFuzzTargets.Failure) -> Void)
        -> @Sendable ([UInt8]) -> Void {
        { data in
            let scratch = APIFuzzBridge.scratch
            let outcome = Outcome()
            Task.detached {
                do throws(APIFuzzTargets.Failure) { try await target(data, scratch) } catch { outcome.failure.withLock { $0 = error.description } }
                outcome.done.signal()
            }
            outcome.done.wait()
            if let failure = outcome.failure.withLock({ $0 }) { fatalError("invariant broken: \(failure)") }
        }
    }

    final class Outcome: Sendable {
        let done = DispatchSemaphore(value: 0)
        let failure = Mutex<String?>(nil)
    }
}

/// The code behind the targets.
enum FuzzEntries {
    /// Splits at the first NUL: (before, after). Without one, everything is the first part.
    static func split(_ data: [UInt8]) -> ([UInt8], [UInt8]) {
        guard let nul = data.firstIndex(of: 0) else { return (data, []) }
        return (Array(data[..<nul]), Array(data[(nul + 1)...]))
    }

    static func regex(_ data: [UInt8]) {
        let (pattern, text) = split(data)
        for options: RegexOptions in [[], [.caseInsensitive, .multiLine, .dotMatchesNewline], [.bytes]] {
            guard let regex = try? RegularExpression(bytes: pattern, options: options) else { continue }
            let matched = regex.matches(text)
            let found = text.withUnsafeBytes { regex.firstMatch(in: $0) }
            // The DFA, the backtracker and the Pike VM must agree.
            precondition(matched == (found != nil), "matches() and firstMatch() disagree")
            if let found {
                precondition(found.range.lowerBound >= 0 && found.range.upperBound <= text.count)
                for k in 0...regex.groupCount { if let r = found.range(k) { precondition(r.upperBound <= text.count) } }
            }
        }
    }

    static func filterPattern(_ data: [UInt8]) {
        let (patternBytes, event) = split(data)
        guard let pattern = try? FilterPattern(String(decoding: patternBytes, as: UTF8.self)) else { return }
        let matched = event.withUnsafeBytes { pattern.matches($0) }
        let extracted = event.withUnsafeBytes { pattern.extractedValues($0) }
        precondition(matched == (extracted != nil), "matches() and extractedValues() disagree")
        for value in ["1", "$.a", "$1", "$a"] {
            guard let transformation = try? MetricTransformation(namespace: "N", name: "M", value: value, for: pattern) else { continue }
            if case .sample(let v, _) = event.withUnsafeBytes({ transformation.evaluate($0, pattern: pattern) }) {
                precondition(v.isFinite, "a non-finite metric value was extracted")
            }
        }
    }

    /// A few stored events as the store hands them to the query executor: (group, stream, message, fields).
    static let events: [(group: [UInt8], stream: [UInt8], message: [UInt8], fields: [UInt8]?, time: Int64)] = [
        (Array("/app".utf8), Array("s1".utf8), Array(#"{"level":"ERROR","latency_ms":250,"user":{"id":7},"tags":["a",1]}"#.utf8), nil, 1_764_000_000_000),
        (Array("/web".utf8), Array("s2".utf8), Array("10.0.0.1 - frank [24/Nov/2026:10:00:00 +0000] \"GET /index.html HTTP/1.1\" 200 1534".utf8),
         Array(#"{"status":200,"bytes":1534}"#.utf8), 1_764_000_060_000),
        ([], [], [], nil, 0),
        (Array("/app".utf8), Array("s3".utf8), [0x00, 0xFF, 0xC3, 0x28] + Array(" é 1e308 -0 ".utf8), Array("{\"x\":".utf8), -62_135_596_800_000),
    ]

    static func query(_ data: [UInt8]) {
        guard let query = try? LogsQuery.parse(String(decoding: data, as: UTF8.self)) else { return }
        // A query that runs too long must stop with its own error well before the fuzzer calls it a hang.
        let executor = QueryExecutor(query: query, maxRows: 100, now: 1_764_000_100_000, deadline: .after(.seconds(3)))
        do {
            for event in events where !executor.isSatisfied {
                try event.group.withUnsafeBytes { group in
                    try event.stream.withUnsafeBytes { stream in
                        try event.message.withUnsafeBytes { message in
                            if let fields = event.fields {
                                try fields.withUnsafeBytes { fields in
                                    try executor.push(event: LogEventInput(timestamp: event.time, ingestionTime: event.time, logGroup: group,
                                                                           logStream: stream, message: message, fields: fields))
                                }
                            } else {
                                try executor.push(event: LogEventInput(timestamp: event.time, ingestionTime: event.time, logGroup: group,
                                                                       logStream: stream, message: message, fields: nil))
                            }
                        }
                    }
                }
            }
            _ = try executor.finish()
        } catch {
            // Query errors (a time limit, a bad value) are answers, not failures.
        }
    }

    static func byteJSON(_ data: [UInt8]) {
        let (selector, document) = split(data)
        let parsed = try? JSONValue.parse(document)
        let paths = [try? JSONPath(String(decoding: selector, as: UTF8.self)), try? JSONPath("$.a"), try? JSONPath("$.a[0].b")].compactMap { $0 }
        let lookup = JSONMultiLookup(paths)
        let results = document.withUnsafeBytes { lookup.lookup(in: $0) }
        // The look-up and the parser agree about what is JSON.
        let lookedUpAsJSON = !results.contains { if case .notJSON = $0 { return true } else { return false } }
        precondition(paths.isEmpty || lookedUpAsJSON == (parsed != nil), "lookup and parser disagree about the document")
        for result in results { _ = document.withUnsafeBytes { result.scalarText(in: $0) } }
        if let parsed {
            var out: [UInt8] = []
            JSONWriter.append(parsed, to: &out)
            precondition((try? JSONValue.parse(out)) != nil, "written JSON does not parse again")
            for path in paths { _ = parsed.select(path) }
        }
    }

    static func pipelineYAML(_ data: [UInt8]) {
        let planner = PipelinePlanner(registry: BuiltinStages.registry, environment: ["HOME": "/nonexistent", "X": "1"],
                                      documentChecks: [DashboardDefinition.check])
        _ = planner.plan(text: String(decoding: data, as: UTF8.self), file: "fuzz.yaml", pipelineDirectory: "/nonexistent")
    }

    static func archiveReader(_ data: [UInt8]) {
        // Small pieces and a small line cap reach the splitting paths with small inputs.
        let small = InputProbes.archive(data, maxLineBytes: 64, pieceSize: 7)
        let large = InputProbes.archive(data, maxLineBytes: 1 << 20, pieceSize: 1 << 16)
        precondition(small.damaged == large.damaged, "damage depends on how the input was cut")
    }

    static func timestamp(_ data: [UInt8]) {
        let (formatBytes, text) = split(data)
        var formats = TimestampFormat.defaults
        if let format = try? TimestampFormat(String(decoding: formatBytes, as: UTF8.self)) { formats.append(format) }
        for format in formats {
            for zone in [0, 50_400, -43_200] {
                guard let ms = text.withUnsafeBytes({ format.parse($0, zoneOffsetSeconds: zone, referenceMillis: 1_764_000_000_000) }) else { continue }
                // Whatever was read must print as a time again.
                _ = Timestamps.iso8601(ms)
            }
        }
        if let ms = text.withUnsafeBytes({ Timestamps.parseISO8601($0) }) {
            precondition(Timestamps.parseISO8601(Timestamps.iso8601(ms)) == ms, "ISO 8601 does not round-trip")
        }
    }

    /// A policy whose custom identifiers come from the input, plus every managed identifier over the
    /// message; findings must lie inside the message, and masking must keep everything outside them.
    static let managedScanner = DataProtectionScanner(managed: ManagedDataIdentifiers.all.map(\.name))

    static func dataProtection(_ data: [UInt8]) {
        let (policyBytes, message) = split(data)
        var scanners = [managedScanner]
        if let policy = try? JSONDecoder().decode(DataProtectionPolicy.self, from: Data(policyBytes)) {
            scanners.append(DataProtectionScanner(policy: policy))
        }
        for scanner in scanners {
            var findings: [Finding] = []
            message.withUnsafeBytes { scanner.scan($0, into: &findings) }
            for finding in findings { precondition(finding.range.lowerBound >= 0 && finding.range.upperBound <= message.count, "a finding outside the message") }
            precondition(zip(findings, findings.dropFirst()).allSatisfy { $0.range.lowerBound <= $1.range.lowerBound }, "findings out of order")
            var masked: [UInt8] = []
            message.withUnsafeBytes { DataProtectionScanner.mask($0, findings: findings, into: &masked) }
            if findings.isEmpty { precondition(masked == message, "masking changed a message without findings") }
        }
    }

    static func eventPattern(_ data: [UInt8]) {
        let (patternBytes, event) = split(data)
        guard let pattern = try? EventPattern(String(decoding: patternBytes, as: UTF8.self)) else { return }
        let matcher = EventMatcher(RuleSet([pattern]), cloudTrailEnvelope: false)
        let direct = matcher.matches(event)
        // The matcher holds no state between events: the same event gives the same answer.
        precondition(matcher.matches(event) == direct, "the same event matched differently twice")
    }

    static func cbor(_ data: [UInt8]) {
        guard let value = try? CBOR.decode(data) else { return }
        let again = try? CBOR.decode(CBOR.encode(value))
        precondition(again != nil, "an encoded document does not decode")
        // NaN is the one value unequal to itself.
        if !String(describing: value).contains("nan") { precondition(again == value, "CBOR round trip changed the document") }
    }

    static func awsQueryForm(_ data: [UInt8]) {
        if let form = try? AWSQueryProtocol.decode(data) {
            _ = AWSQueryProtocol.reply(action: "Fuzz", result: form.parameters, namespace: "ns", requestID: "r")
        }
        if let value = try? AWSJSONValue.decode(data) { precondition((try? AWSJSONValue.decode(AWSJSONValue.encode(value))) != nil) }
    }

    static func cloudTrail(_ data: [UInt8]) {
        _ = InputProbes.cloudTrail(data)
    }
}
