import AWSWire
import Foundation
import Testing
@testable import TrailwatchAPI

typealias FuzzFailure = APIFuzzTargets.Failure

/// Runs the API fuzz targets (``APIFuzzTargets``) over their seed corpus, then over mutations of
/// it for a couple of seconds each (byte flips, inserted tokens of the input's language, cut and
/// repeated ranges, splices of two seeds), from a fixed seed so a run can be repeated. A broken
/// invariant fails the test with the input in hex.
@Suite("API decoder fuzzing: seed corpus and mutations", .serialized)
struct APIFuzzTests {
    /// `fuzz/corpus/<name>/` of the repository.
    static func corpus(_ name: String) -> [[UInt8]] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let directory = root.appendingPathComponent("fuzz/corpus/\(name)")
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return files.sorted().compactMap { FileManager.default.contents(atPath: directory.appendingPathComponent($0).path).map(Array.init) }
    }

    /// A small deterministic mutator in the spirit of libFuzzer's.
    struct Mutator {
        var state: UInt64
        let tokens: [[UInt8]]

        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }

        mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }

        mutating func mutate(_ input: [UInt8], other: [UInt8]) -> [UInt8] {
            var out = input
            for _ in 0...below(4) {
                switch below(7) {
                case 0 where !out.isEmpty: out[below(out.count)] = UInt8(truncatingIfNeeded: next())
                case 1: out.insert(contentsOf: tokens[below(tokens.count)], at: below(out.count + 1))
                case 2 where !out.isEmpty:
                    let start = below(out.count)
                    out.removeSubrange(start..<min(out.count, start + 1 + below(16)))
                case 3 where !out.isEmpty:
                    let start = below(out.count), end = min(out.count, start + 1 + below(32))
                    out.insert(contentsOf: Array(out[start..<end]), at: below(out.count + 1))
                case 4 where !other.isEmpty:
                    let cut = below(out.count + 1), from = below(other.count)
                    out = Array(out[..<cut]) + Array(other[from...])
                case 5 where !out.isEmpty: out[below(out.count)] ^= UInt8(1 << below(8))
                default: out.append(tokens[below(tokens.count)].first ?? 0)
                }
            }
            return Array(out.prefix(1 << 16))
        }
    }

    static let jsonTokens: [[UInt8]] = ["{", "}", "[", "]", "\"", ":", ",", "\\", "\\u", "\\ud800", "\\u0000", "\\n", "0", "-1", "1e999",
                                        "9223372036854775808", "1.5", "true", "null", " ", "\"logEvents\"", "\"message\"", "\"timestamp\"",
                                        "\"logGroupName\"", "\"logStreamName\"", "\"/g\"", "\"s\"", "{\"timestamp\":1790000000000,\"message\":\"m\"}",
                                        "\u{FF}", "\u{C3}", "\u{0}"].map { Array($0.utf8) }
    static let formTokens: [[UInt8]] = ["&", "=", "Action=", "Version=2010-08-01", "MetricData.member.1.", "MetricName", "Value", "Values.member.1",
                                        "Counts.member.1", "Dimensions.member.1.Name", "StatisticValues.SampleCount", "Expression", "METRICS()",
                                        "%00", "%FF", "+", "1e308", "%0A", "%01"].map { Array($0.utf8) }
        // CBOR heads: a one-member map, null, an indefinite map and its break, a 1-byte text, the largest double, epoch tag.
        + [[0xA1], [0xF6], [0xBF], [0xFF], [0x61], [0xFB, 0x7F, 0xEF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF], [0xC1]]
    static let sigV4Tokens: [[UInt8]] = ["AWS4-HMAC-SHA256 ", "Credential=", "SignedHeaders=", "Signature=", "AKIDFUZZ", "/20260921/",
                                         "us-east-1/logs/aws4_request", "host;x-amz-date", ",", ";", "=", "/", "%2F", "%", "..", "./",
                                         "?", "&", "\n", "\u{0}", ": ", "X-Amz-Date", "20260921T120000Z", "\t", "  "].map { Array($0.utf8) }

    /// Runs `target` over the corpus and then mutations for about `seconds`.
    static func fuzz(_ name: String, tokens: [[UInt8]], seconds: Double = 2,
                     _ target: ([UInt8]) async throws(FuzzFailure) -> Void) async -> (inputs: Int, failures: [String]) {
        let seeds = corpus(name)
        var failures: [String] = []
        var inputs = 0
        func run(_ input: [UInt8]) async {
            inputs += 1
            do throws(FuzzFailure) { try await target(input) } catch {
                if failures.count < 5 { failures.append("\(error) on input \(input.map { String(format: "%02x", $0) }.joined())") }
            }
        }
        for seed in seeds { await run(seed) }
        var mutator = Mutator(state: 0x5EED_0000 &+ UInt64(name.utf8.count), tokens: tokens)
        let deadline = Date().addingTimeInterval(seconds)
        // At least 128 mutations whatever the machine's speed, then as many as the time allows.
        while (Date() < deadline || inputs < seeds.count + 128) && !seeds.isEmpty {
            for _ in 0..<64 {
                let input = mutator.mutate(seeds[mutator.below(seeds.count)], other: seeds[mutator.below(seeds.count)])
                await run(input)
            }
        }
        return (inputs, failures)
    }

    @Test("put-log-events: the PutLogEvents decoder is strict JSON and keeps its columns inside the decoded block")
    func putLogEvents() async {
        #expect(Self.corpus("put-log-events").count >= 5)
        let (inputs, failures) = await Self.fuzz("put-log-events", tokens: Self.jsonTokens) { data throws(FuzzFailure) in
            try APIFuzzTargets.putLogEventsBody(data)
        }
        #expect(failures.isEmpty, "\(failures)")
        #expect(inputs > 100, "only \(inputs) inputs ran")   // the corpus and mutations beyond it; a loaded machine runs fewer in the time
    }

    /// Runs a service target over a scratch store of its own, as trailwatch-fuzz does.
    static func fuzzService(_ name: String, seeds: Int, tokens: [[UInt8]],
                            _ target: @escaping ([UInt8], APIFuzzTargets.Scratch) async throws(FuzzFailure) -> Void) async throws {
        #expect(corpus(name).count >= seeds)
        let scratch = try APIFuzzTargets.Scratch()
        defer { scratch.remove() }
        let (inputs, failures) = await fuzz(name, tokens: tokens) { data async throws(FuzzFailure) in try await target(data, scratch) }
        #expect(failures.isEmpty, "\(failures)")
        #expect(inputs > 20, "only \(inputs) inputs ran")   // the corpus and mutations beyond it; a loaded machine runs fewer in the time
    }

    @Test("aws-json-request: every operation answers AWS's error shape to any body")
    func awsJSONRequest() async throws {
        try await Self.fuzzService("aws-json-request", seeds: 5, tokens: Self.jsonTokens, APIFuzzTargets.awsJSONRequest)
    }

    @Test("cloudwatch-request: metric, alarm and detector operations in CBOR, JSON 1.0 and query answer their protocol's shape; datapoints stay finite")
    func cloudWatchRequest() async throws {
        try await Self.fuzzService("cloudwatch-request", seeds: 5, tokens: Self.jsonTokens + Self.formTokens, APIFuzzTargets.cloudWatchRequest)
    }

    @Test("cloudtrail-lookup: LookupEvents answers AWS's shape to any request")
    func cloudTrailLookup() async throws {
        try await Self.fuzzService("cloudtrail-lookup", seeds: 4, tokens: Self.jsonTokens, APIFuzzTargets.cloudTrailLookup)
    }

    @Test("the scratch store is renewed after its calls and its directory removed")
    func scratchRenews() async throws {
        let scratch = try APIFuzzTargets.Scratch(renewAfter: 2)
        let first = await scratch.services().logs
        _ = await scratch.services()
        let third = await scratch.services().logs
        #expect(first !== third)
        // The renewed store is set up again: the seeded group is there.
        let reply = await third.handle(AWSOperationCall(wireProtocol: .awsJSON1_1, service: third.targetPrefix, operation: "DescribeLogGroups",
                                                        body: Array("{}".utf8), principal: .anonymous, requestID: "r"))
        #expect(String(decoding: reply.body, as: UTF8.self).contains("\"/g\""))
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.root) == ["2"])
        scratch.remove()
        #expect(!FileManager.default.fileExists(atPath: scratch.root))
    }

    @Test("sigv4: hostile Authorization headers never verify; what is signed verifies, and not once changed")
    func sigV4() async {
        #expect(Self.corpus("sigv4").count >= 4)
        let (inputs, failures) = await Self.fuzz("sigv4", tokens: Self.sigV4Tokens) { data throws(FuzzFailure) in
            try APIFuzzTargets.sigV4(data)
        }
        #expect(failures.isEmpty, "\(failures)")
        #expect(inputs > 100, "only \(inputs) inputs ran")   // the corpus and mutations beyond it; a loaded machine runs fewer in the time
    }

    @Test("the targets catch what they are meant to: a decoder accepting a bad escape, a tampered signature")
    func targetsCanFail() {
        // Guards that the invariants are live: feed inputs that break them through the same checks.
        #expect(throws: FuzzFailure.self) { try APIFuzzTargets.check(false, "must throw") }
        #expect(APIFuzzTargets.containsSurrogateEscape(Array(#"{"a":"\ud800"}"#.utf8)))
        #expect((try? PutLogEventsDecoder.decode(Array(#"{"logGroupName":"/g","logStreamName":"s","logEvents":[],"x":"\q"}"#.utf8))) == nil)
    }
}
