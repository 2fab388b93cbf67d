import Foundation
import Testing
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStages
import TrailwatchTestSupport

@Suite("Pattern stages: filter pattern, metric_filter, route, parse, test-pattern")
struct PatternStageTests {
    static let events = [
        #"{"time":"2026-11-24T10:00:05Z","level":"INFO","latency_ms":150,"service":"api"}"#,
        #"{"time":"2026-11-24T10:00:30Z","level":"INFO","latency_ms":50,"service":"api"}"#,
        #"{"time":"2026-11-24T10:00:59Z","level":"INFO","latency_ms":300,"service":"web"}"#,
        #"{"time":"2026-11-24T10:01:10Z","level":"ERROR","latency_ms":900,"service":"api"}"#,
        #"{"time":"2026-11-24T10:01:20Z","level":"INFO","latency_ms":120,"service":"api"}"#,
        "not json at all",
    ]

    func write(_ dir: TemporaryDirectory) -> String {
        dir.write("logs/app.log", Self.events.joined(separator: "\n") + "\n")
    }

    @Test("metric_filter: a JSON pattern, values from a selector, per-minute datapoints on event time")
    func metricFilter() async throws {
        let dir = TemporaryDirectory()
        let log = write(dir)
        _ = try await runOnce("""
            sources:
              app:
                type: file
                include: \(log)
                timestamp: { field: $.time }
            transforms:
              slow:
                type: metric_filter
                inputs: [app]
                pattern: '{ $.latency_ms > 100 && $.level = "INFO" }'
                metric_namespace: App
                metric_name: SlowLatency
                metric_value: $.latency_ms
                unit: Milliseconds
            sinks:
              out: { type: file, inputs: [slow], path: \(dir.file("metrics.json")) }
            """)
        let lines = lines(dir.read("metrics.json"))
        #expect(lines.count == 2)
        #expect(lines[0].contains(#""timestamp":"2026-11-24T10:00:00.000Z""#) && lines[0].contains(#""sample_count":2"#)
                && lines[0].contains(#""sum":450"#) && lines[0].contains(#""maximum":300"#), "\(lines[0])")
        #expect(lines[1].contains(#""timestamp":"2026-11-24T10:01:00.000Z""#) && lines[1].contains(#""sum":120"#), "\(lines[1])")
        #expect(lines[0].contains(#""unit":"Milliseconds""#))
    }

    @Test("metric_filter: count with default 0 and dimensions; live mode gives the same datapoints as --once")
    func liveEqualsOnce() async throws {
        let dir = TemporaryDirectory()
        let log = write(dir)
        func pipeline(_ out: String) -> String {
            """
            data_dir: \(dir.file("state"))
            sources:
              app:
                type: file
                include: \(log)
                timestamp: { field: $.time }
            transforms:
              byService:
                type: metric_filter
                inputs: [app]
                pattern: '{ $.level = "INFO" }'
                metric_namespace: App
                metric_name: InfoLines
                metric_value: 1
                dimensions: { Service: $.service }
                lateness: 1s
            sinks:
              out: { type: file, inputs: [byService], path: \(dir.file(out)), sync_interval: 50ms }
            """
        }
        _ = try await runOnce(pipeline("once.json"))
        let live = try LivePipeline(pipeline("live.json"))
        // Wall-clock ticks close every period of these 2026 events.
        #expect(await eventually { lines(dir.read("live.json")).count == 3 })
        _ = await live.stop()
        let once = lines(dir.read("once.json")).sorted()
        #expect(once.count == 3)
        #expect(once == lines(dir.read("live.json")).sorted())
        #expect(once.contains { $0.contains(#""dimensions":{"Service":"web"}"#) && $0.contains(#""sum":1"#) })
    }

    @Test("filter pattern: keep and drop with term, JSON and space-delimited patterns")
    func filterPattern() async throws {
        let dir = TemporaryDirectory()
        let log = write(dir)
        _ = try await runOnce("""
            sources:
              app: { type: file, include: \(log) }
            transforms:
              errors: { type: filter, inputs: [app], pattern: '{ $.level = "ERROR" || $.latency_ms >= 300 }' }
              notjson: { type: filter, inputs: [app], pattern: '%^[^{]%' }
              quiet: { type: filter, inputs: [app], pattern: '?ERROR ?json', action: drop }
            sinks:
              e: { type: file, inputs: [errors], path: \(dir.file("e.log")), format: raw }
              n: { type: file, inputs: [notjson], path: \(dir.file("n.log")), format: raw }
              q: { type: file, inputs: [quiet], path: \(dir.file("q.log")), format: raw }
            """)
        #expect(lines(dir.read("e.log")) == [Self.events[2], Self.events[3]])
        #expect(lines(dir.read("n.log")) == ["not json at all"])
        #expect(lines(dir.read("q.log")).count == 4)
    }

    @Test("route: one output per pattern, _unmatched for the rest, an event may take several routes")
    func route() async throws {
        let dir = TemporaryDirectory()
        let log = write(dir)
        _ = try await runOnce("""
            sources:
              app: { type: file, include: \(log) }
            transforms:
              split:
                type: route
                inputs: [app]
                routes:
                  api: '{ $.service = "api" }'
                  slow: '{ $.latency_ms > 200 }'
            sinks:
              api: { type: file, inputs: [split.api], path: \(dir.file("api.log")), format: raw }
              slow: { type: file, inputs: [split.slow], path: \(dir.file("slow.log")), format: raw }
              rest: { type: file, inputs: [split._unmatched], path: \(dir.file("rest.log")), format: raw }
            """)
        #expect(lines(dir.read("api.log")).count == 4)
        #expect(lines(dir.read("slow.log")) == [Self.events[2], Self.events[3]])
        #expect(lines(dir.read("rest.log")) == ["not json at all"])
    }

    @Test("parse: named regex groups, JSON and space-delimited fields; numbers become numbers")
    func parse() async throws {
        let dir = TemporaryDirectory()
        let access = dir.write("logs/access.log", apacheLines)
        _ = try await runOnce("""
            sources:
              web: { type: file, include: \(access) }
            transforms:
              re:
                type: parse
                inputs: [web]
                format: regex
                pattern: '^(?<ip>[^ ]+) [^ ]+ (?<user>[^ ]+) \\[[^]]+\\] "(?<method>[A-Z]+) (?<path>[^ ]+)[^"]*" (?<status>[0-9]+) (?<bytes>[0-9-]+)$'
              sd:
                type: parse
                inputs: [web]
                format: delimited
                pattern: '[ip, ident, user, time, request, status, bytes]'
                on_error: drop
            sinks:
              reOut: { type: file, inputs: [re], path: \(dir.file("re.json")) }
              sdOut: { type: file, inputs: [sd], path: \(dir.file("sd.json")) }
            """)
        let re = lines(dir.read("re.json"))
        #expect(re.count == 3)
        #expect(re[0].contains(#""fields":{"ip":"127.0.0.1","user":"frank","method":"GET","path":"/apache_pb.gif","status":200,"bytes":1534}"#), "\(re[0])")
        #expect(!re[2].contains("\"fields\""))
        let sd = lines(dir.read("sd.json"))
        #expect(sd.count == 2)
        #expect(sd[1].contains(#""request":"GET /index.html HTTP/1.0","status":404"#), "\(sd[1])")

        let json = dir.write("logs/app.log", Self.events.joined(separator: "\n") + "\n")
        _ = try await runOnce("""
            sources:
              app: { type: file, include: \(json) }
            transforms:
              fields: { type: parse, inputs: [app], format: json }
            sinks:
              out: { type: file, inputs: [fields], path: \(dir.file("json.json")) }
            """)
        let parsed = lines(dir.read("json.json"))
        #expect(parsed[0].contains(#""fields":{"time":"2026-11-24T10:00:05Z","level":"INFO","latency_ms":150,"service":"api"}"#), "\(parsed[0])")
    }

    @Test("a bad pattern in a pipeline is located inside the YAML value")
    func badPatternLocation() {
        let found = diagnostics("""
            sources:
              app: { type: stdin }
            transforms:
              f: { type: filter, inputs: [app], pattern: '{ $.a = }' }
              m: { type: metric_filter, inputs: [app], pattern: ERROR, metric_namespace: A, metric_name: B, dimensions: { X: $.x } }
            sinks:
              out: { type: console, inputs: [f, m] }
            """)
        #expect(found.contains("p.yaml:4:55: component 'f': setting 'pattern': invalid filter pattern at column 9: missing value after the operator (expected a value)"), "\(found)")
        #expect(found.contains { $0.hasPrefix("p.yaml:5:") && $0.contains("setting 'dimensions': the filter pattern does not support dimensions") }, "\(found)")
    }

    @Test("trailwatch test-pattern prints matches and extracted values, like test-metric-filter")
    func testPatternCommand() async throws {
        let result = try await Child.trailwatch(["test-pattern", "[ip, user, username, timestamp, request, status_code=4*, bytes]", "--format", "json",
                                                 apache404, "127.0.0.1 - frank [t] \"GET /\" 200 1"])
        let text = result.output
        #expect(result.status == 0)
        let body = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
        let matches = body?["matches"] as? [[String: Any]]
        #expect(matches?.count == 2)
        #expect(matches?[0]["matched"] as? Bool == true)
        #expect((matches?[0]["extractedValues"] as? [String: String])?["$status_code"] == "404")
        #expect(matches?[1]["matched"] as? Bool == false)
    }
}

let apache404 = #"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 2326"#
let apacheLines = #"""
127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534
10.0.0.2 - - [10/Oct/2000:13:25:16 -0700] "GET /index.html HTTP/1.0" 404 2326
garbage line

"""#
