import Foundation
import PipelineTesting
import Testing
import TrailwatchConfig
import TrailwatchRuntime
import TrailwatchStages

func suite(_ yaml: String, tests: String? = nil, directory: String = ".") -> (PipelineTestSuite?, [ConfigDiagnostic]) {
    let (plan, diagnostics) = PipelinePlanner(registry: BuiltinStages.registry, environment: [:]).plan(text: yaml, file: "p.yaml", pipelineDirectory: directory)
    guard let plan else { return (nil, diagnostics) }
    return PipelineTestSuite.load(plan: plan, testsText: tests, testsPath: "p.tests.yaml")
}

let alarmPipeline = """
    sources:
      app: { type: stdin, log_group: /app }
    transforms:
      errors:
        type: metric_filter
        inputs: [app]
        pattern: ERROR
        metric_namespace: T
        metric_name: Errors
        metric_value: 1
      alarm:
        type: alarm
        inputs: [errors]
        definition: { AlarmName: E, Namespace: T, MetricName: Errors, Statistic: Sum, Period: 60, EvaluationPeriods: 1,
                      Threshold: 2, ComparisonOperator: GreaterThanThreshold, TreatMissingData: notBreaching }
    sinks:
      out: { type: console, inputs: [alarm] }
    """

@Suite("trailwatch test: definitions, harness, reports")
struct PipelineTestTests {
    @Test("a failing expectation shows expected against got, with the expectation's file and line")
    func failureReport() throws {
        let (loaded, diagnostics) = suite(alarmPipeline, tests: """
            tests:
              - name: three errors in a minute raise the alarm
                start: 2024-05-01T12:00:00Z
                inputs:
                  - insert_at: app
                    interval: 10s
                    lines: ["ERROR a", "ERROR b", "ERROR c", "INFO d"]
                outputs:
                  - from: alarm
                    pattern: '{ $.state.value = "ALARM" }'
                  - from: errors
                    count: 1
                    fields: { sum: 4 }
            """)
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let results = try #require(loaded).run()
        #expect(results.count == 1)
        let failures = results[0].failures
        #expect(failures.count == 1)
        #expect(failures.first?.location.line == 11)
        #expect(failures.first?.expected == "exactly 1 event matching fields {sum: 4}")
        #expect(failures.first?.got == "1 event, 0 matching")
        #expect(failures.first?.events.first?.contains(#""sum":3"#) == true)
        let report = TestReport(results: results)
        #expect(report.text().contains("FAIL  three errors in a minute raise the alarm  (p.tests.yaml:2)"))
        #expect(report.text().contains("p.tests.yaml:11: from 'errors': expected exactly 1 event matching fields {sum: 4}"))
        #expect(report.text().hasSuffix("0 passed, 1 failed\n"))
        let json = try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any]
        #expect(json?["failed"] as? Int == 1)
        let test = (json?["tests"] as? [[String: Any]])?.first
        #expect(test?["line"] as? Int == 2)
        #expect(((test?["failures"] as? [[String: Any]])?.first?["line"]) as? Int == 11)
        let junit = report.junit()
        #expect(junit.contains(#"<testcase name="three errors in a minute raise the alarm" classname="p.tests.yaml" file="p.tests.yaml" line="2""#))
        #expect(junit.contains("<failure message=\"p.tests.yaml:11: from &apos;errors&apos;: expected exactly 1 event matching fields {sum: 4}; got 1 event, 0 matching\""))
    }

    @Test("the virtual clock: silence after a burst lets the alarm clear only when time is advanced")
    func virtualClock() throws {
        func transitions(advance: String) throws -> [String] {
            let (loaded, diagnostics) = suite(alarmPipeline, tests: """
                tests:
                  - name: burst
                    start: 2024-05-01T12:00:00Z
                    inputs: [{ insert_at: app, interval: 5s, events: [{ message: ERROR, repeat: 5 }] }]
                    \(advance)
                    outputs: [{ from: out }]
                """)
            #expect(diagnostics.isEmpty, "\(diagnostics)")
            let results = try #require(loaded).run()
            #expect(results.first?.passed == true, "\(results.first?.failures.map(\.expected) ?? [])")
            return (TestHarness(plan: loaded!.plan).run(loaded!.tests[0]).outputs["out"] ?? []).map { event in
                let object = try? JSONSerialization.jsonObject(with: Data(event.message)) as? [String: Any]
                return ((object?["state"] as? [String: Any])?["value"] as? String) ?? "?"
            }
        }
        let quiet = try transitions(advance: "")
        let later = try transitions(advance: "advance: 10m")
        #expect(quiet == ["ALARM"])
        #expect(later == ["ALARM", "OK"])
        // The same test gives the same result every time.
        #expect(try transitions(advance: "advance: 10m") == later)
    }

    @Test("test definitions get located errors with suggestions")
    func locatedErrors() {
        let (_, diagnostics) = suite(alarmPipeline, tests: """
            tests:
              - name: typos
                inputs:
                  - insert_at: ap
                    lines: [x]
                  - insert_at: alarm
                    lines: [x]
                  - insert_at: app
                    evnts: [x]
                outputs:
                  - from: alarm.band
                  - from: errors
                    pattern: '{ $.x = }'
                  - from: out
                    nothing: true
                    count: 2
            """)
        let text = diagnostics.map(\.description)
        #expect(text.contains("p.tests.yaml:4:20: setting 'insert_at': 'ap' is not a component of this pipeline (expected a source or transform id; did you mean 'app'?)"))
        #expect(text.contains { $0.hasPrefix("p.tests.yaml:6:20: setting 'insert_at': 'alarm' cannot take log events") })
        #expect(text.contains { $0.hasPrefix("p.tests.yaml:9:9: setting 'tests[0].inputs[2].evnts': unknown setting") && $0.contains("did you mean 'events'?") })
        #expect(text.contains { $0.hasPrefix("p.tests.yaml:11:15: setting 'from': 'alarm' has no output named 'band'") && $0.contains("did you mean 'alarm.bands'?") })
        #expect(text.contains { $0.hasPrefix("p.tests.yaml:13:27: setting 'tests[0].outputs[1].pattern': invalid filter pattern") })
        #expect(text.contains { $0.hasPrefix("p.tests.yaml:14:9: setting 'tests[0].outputs[2]': 'nothing: true' is combined") })
    }

    @Test("a billion-laughs tests file fails fast with a located error, like a pipeline file")
    func billionLaughsTestsFile() {
        var yaml = #"a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]"# + "\n"
        for k in 1...9 { yaml += "a\(k): &a\(k) [" + Array(repeating: "*a\(k - 1)", count: 9).joined(separator: ",") + "]\n" }
        yaml += "tests: [{ name: t, inputs: [{ insert_at: app, lines: *a9 }], outputs: [{ from: out, count: 1 }] }]\n"
        let started = ContinuousClock.now
        let (_, diagnostics) = suite(alarmPipeline, tests: yaml)
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(diagnostics.map(\.description).contains { $0.hasPrefix("p.tests.yaml:") && $0.contains("expands to more than 1000000 nodes") },
                "\(diagnostics)")
    }

    @Test("tests in the pipeline file itself, metrics fed straight into an alarm, fields and exact messages")
    func inlineTestsAndMetrics() throws {
        let (loaded, diagnostics) = suite(alarmPipeline + """

            tests:
              - name: datapoints over the threshold
                inputs:
                  - insert_at: alarm
                    start: 2024-05-01T12:00:00Z
                    metrics:
                      - { namespace: T, name: Errors, value: 5 }
                      - { namespace: T, name: Errors, value: 1, time: 2024-05-01T12:01:00Z }
                outputs:
                  - from: alarm
                    count: 2
                  - from: out
                    every: true
                    fields: { alarmName: E, "$.configuration.threshold": 2 }
              - name: lines keep their group, stream and time
                inputs:
                  - insert_at: app
                    log_stream: web-1
                    events: [{ message: "ERROR x", time: 2024-05-01T12:00:07Z }]
                outputs:
                  - from: app
                    messages: ["ERROR x"]
                    fields: { "@log": /app, "@logStream": web-1, "@timestamp": "2024-05-01T12:00:07.000Z" }
                  - from: errors
                    count: 1
            """)
        #expect(diagnostics.isEmpty, "\(diagnostics)")
        let results = try #require(loaded).run()
        #expect(results.map(\.passed) == [true, true], "\(results.flatMap(\.failures).map { "\($0.expected) / \($0.got) \($0.events)" })")
        #expect(results.first?.test.location.line == 19)
    }
}
