import Foundation
import Synchronization
import Testing
import TrailwatchArchive
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStages
import TrailwatchStore
import TrailwatchTestSupport

/// JSON log lines, six a minute from 2026-11-01T00:00Z, with `errors[m]` of them ERROR in minute m.
func errorLog(_ errors: [Int]) -> String {
    var out = ""
    for (minute, count) in errors.enumerated() {
        for i in 0..<6 {
            let level = i < count ? "ERROR" : "INFO"
            out += #"{"time":"2026-11-01T00:\#(String(format: "%02d", minute)):\#(String(format: "%02d", i * 10))Z","level":"\#(level)","msg":"m"}"# + "\n"
        }
    }
    return out
}

/// Quiet, three bad minutes, quiet again.
let flappingErrors = [1, 1, 1, 1, 1, 5, 5, 5, 1, 1, 1]

func alarmPipeline(_ dir: TemporaryDirectory, definition: String, sinks: String, extraAlarm: String = "") -> String {
    """
    data_dir: \(dir.file("state"))
    sources:
      app:
        type: file
        include: \(dir.file("logs"))/app.log
        timestamp: { field: $.time }
    transforms:
      errors:
        type: metric_filter
        inputs: [app]
        pattern: '{ $.level = "ERROR" }'
        metric_namespace: App
        metric_name: Errors
        metric_value: 1
        default_value: 0
        lateness: 1s
      error_alarm:
        type: alarm
        inputs: [errors]
    \(extraAlarm)
        definition:
    \(definition)
    sinks:
    \(sinks)
    """
}

let errorRateDefinition = """
          AlarmName: HighErrorRate
          Namespace: App
          MetricName: Errors
          Statistic: Sum
          Period: 60
          Threshold: 2
          ComparisonOperator: GreaterThanThreshold
          EvaluationPeriods: 2
          DatapointsToAlarm: 2
    """

func jsonObjects(_ text: String) -> [[String: Any]] {
    lines(text).compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
}

func transitions(_ events: [[String: Any]]) -> [String] {
    events.map { e in
        let from = (e["previousState"] as? [String: Any])?["value"] as? String ?? "?"
        let to = (e["state"] as? [String: Any])?["value"] as? String ?? "?"
        return "\(e["time"] as? String ?? "?") \(from)->\(to)"
    }
}

/// Accepted requests, keeping the first of each idempotency key.
func firstByIdempotencyKey(_ requests: [TestHTTPServer.Request]) -> [TestHTTPServer.Request] {
    var seen = Set<String>()
    return requests.filter { seen.insert($0.headers["idempotency-key"] ?? "").inserted }
}

@Suite("Alarm transform, notifier sink and backtest", .serialized)
struct AlarmStageTests {
    @Test("an error-rate alarm over a log file: transitions on event time, shaped like CloudWatch's state-change events")
    func errorRateAlarm() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("logs/app.log", errorLog(flappingErrors))
        _ = try await runOnce(alarmPipeline(dir, definition: errorRateDefinition, sinks: """
              out: { type: file, inputs: [error_alarm], path: \(dir.file("alarms.json")) }
            """))
        let events = jsonObjects(dir.read("alarms.json"))
        #expect(transitions(events) == [
            "2026-11-01T00:01:00.000Z INSUFFICIENT_DATA->OK",
            "2026-11-01T00:07:00.000Z OK->ALARM",
            "2026-11-01T00:09:00.000Z ALARM->OK",
        ])
        let alarm = try #require(events.dropFirst().first)
        #expect(alarm["alarmName"] as? String == "HighErrorRate")
        #expect(alarm["detail-type"] as? String == "CloudWatch Alarm State Change")
        let state = try #require(alarm["state"] as? [String: Any])
        #expect((state["reason"] as? String)?.contains("2 breaching GreaterThanThreshold 2.0") == true)
        let points = try #require((state["reasonData"] as? [String: Any])?["evaluatedDatapoints"] as? [[String: Any]])
        #expect(points.prefix(2).compactMap { $0["value"] as? Double } == [5, 5])
        let configuration = try #require(alarm["configuration"] as? [String: Any])
        #expect(configuration["threshold"] as? Double == 2)
        #expect(configuration["evaluationPeriods"] as? Int == 2)
    }

    @Test("live and batch give the same transitions; the state survives a restart")
    func liveEqualsBatch() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("logs/app.log", errorLog(flappingErrors))
        let sinks = """
              out: { type: file, inputs: [error_alarm], path: \(dir.file("live.json")), sync_interval: 50ms }
            """
        let live = try LivePipeline(alarmPipeline(dir, definition: errorRateDefinition, sinks: sinks, extraAlarm: "    save_interval: 100ms"))
        #expect(await eventually { lines(dir.read("live.json")).count >= 3 })
        _ = await live.stop()
        let saved = try #require(FileManager.default.contents(atPath: dir.file("state/state/error_alarm/alarms.json")))
        #expect(String(decoding: saved, as: UTF8.self).contains("HighErrorRate"))

        let batchDir = TemporaryDirectory()
        _ = batchDir.write("logs/app.log", errorLog(flappingErrors))
        _ = try await runOnce(alarmPipeline(batchDir, definition: errorRateDefinition, sinks: """
              out: { type: file, inputs: [error_alarm], path: \(batchDir.file("batch.json")) }
            """))
        // Live mode also judges the silent minutes since the log ended (by the wall clock); the
        // transitions while there was data are the batch run's.
        let liveTransitions = transitions(jsonObjects(dir.read("live.json")))
        let batchTransitions = transitions(jsonObjects(batchDir.read("batch.json")))
        #expect(Array(liveTransitions.prefix(3)) == batchTransitions)

        // Restarted on the same state, the alarm does not announce the same changes again.
        // On a virtual clock: the ticks that judge the silent minutes come when the test moves time on.
        let again = try LivePipeline(alarmPipeline(dir, definition: errorRateDefinition, sinks: sinks, extraAlarm: "    save_interval: 100ms"),
                                     clock: VirtualClock())
        #expect(await eventually { again.clock!.sleepers >= 2 })
        await again.advance(by: .seconds(3), step: .milliseconds(500))
        _ = await again.stop()
        #expect(Array(transitions(jsonObjects(dir.read("live.json"))).prefix(3)) == batchTransitions)
        #expect(transitions(jsonObjects(dir.read("live.json"))).filter { $0.hasSuffix("OK->ALARM") }.count == 1)
    }

    @Test("HighInferenceLatency (the reference PutMetricAlarm JSON) runs as is; its band goes to the store")
    func referenceBandAlarm() async throws {
        let reference = TestPaths.repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/reference/high-inference-latency.json").path
        guard FileManager.default.fileExists(atPath: reference) else {
            print("skipping: \(reference) is absent")
            return
        }
        let dir = TemporaryDirectory()
        // Five-minute latency samples for six hours around 100 ms, then two slow periods.
        var log = ""
        let start = 1_793_491_200_000 as Int64   // 2026-11-01T00:00:00Z
        for period in 0..<74 {
            for sample in 0..<5 {
                let latency = period >= 72 ? 900.0 : 100 + Double((period * 7 + sample * 3) % 9) - 4
                log += #"{"time":"\#(Timestamps.iso8601(start + Int64(period) * 300_000 + Int64(sample) * 60_000))","endpoint":"YourEndpointName","latency":\#(latency)}"# + "\n"
            }
        }
        _ = dir.write("logs/app.log", log)
        _ = try await runOnce("""
            data_dir: \(dir.file("state"))
            sources:
              app: { type: file, include: \(dir.file("logs"))/app.log, timestamp: { field: $.time } }
            transforms:
              latency:
                type: metric_filter
                inputs: [app]
                pattern: '{ $.latency >= 0 }'
                metric_namespace: AWS/SageMaker
                metric_name: InferenceLatency
                metric_value: $.latency
                dimensions: { EndpointName: $.endpoint }
                period: 5m
                lateness: 1s
              slow:
                type: alarm
                inputs: [latency]
                definition_file: \(reference)
            sinks:
              alarms: { type: file, inputs: [slow], path: \(dir.file("alarms.json")) }
              store: { type: sqlite, inputs: [slow.bands, slow], path: \(dir.file("store.db")) }
            """)
        let changes = transitions(jsonObjects(dir.read("alarms.json")))
        #expect(changes.last?.hasSuffix("OK->ALARM") == true, "\(changes)")
        #expect(changes.filter { $0.hasSuffix("->ALARM") }.count == 1, "\(changes)")
        let store = try SQLiteStore(path: dir.file("store.db"))
        // Bands start after three hours of history: 36 periods of Expected, Upper and Lower.
        #expect(try store.count(.metricDatapoints) == 3 * (74 - 36))
        #expect(try store.count(.detectorEvents) == changes.count)
    }

    @Test("invalid definitions are located errors naming what is wrong")
    func invalidDefinitions() async throws {
        let dir = TemporaryDirectory()
        let cases: [(String, String)] = [
            ("      AlarmName: x\n      Metrics: [{Id: e1, Expression: 'RATE(m1)'}]\n      EvaluationPeriods: 1\n      ComparisonOperator: GreaterThanThreshold",
             "unsupported metric math expression 'RATE(m1)'"),
            ("      AlarmName: x\n      Namespace: A\n      MetricName: B\n      Statistic: Sum\n      Period: 60\n      Threshold: 1\n      EvaluationPeriods: 2\n      DatapointsToAlarm: 3\n      ComparisonOperator: GreaterThanThreshold",
             "setting 'definition.DatapointsToAlarm': 3 must be between 1 and EvaluationPeriods (2)"),
        ]
        for (definition, expected) in cases {
            let yaml = """
                sources:
                  app: { type: stdin }
                transforms:
                  m: { type: metric_filter, inputs: [app], pattern: x, metric_namespace: A, metric_name: B, metric_value: 1 }
                  a:
                    type: alarm
                    inputs: [m]
                    definition:
                \(definition)
                sinks:
                  out: { type: console, inputs: [a] }
                """
            let path = dir.write("p.yaml", yaml)
            let (status, out, err) = try await runTool(trailwatchBinary(), ["validate", path])
            #expect(status != 0)
            #expect((out + err).contains(expected), "\(out)\(err)")
            #expect((out + err).contains("p.yaml:"), "\(out)\(err)")
        }
    }

    @Test("webhook: a receiver that fails, times out, then recovers gets every notification once, in order")
    func webhookRecovers() async throws {
        let server = try TestHTTPServer { number in
            switch number {
            case 0: .status(500)
            case 1: .hang(5)
            case 2: .status(503)
            default: .status(200)
            }
        }
        defer { server.stop() }
        let dir = TemporaryDirectory()
        _ = dir.write("logs/app.log", errorLog(flappingErrors))
        func pipeline(_ url: String) -> String {
            alarmPipeline(dir, definition: errorRateDefinition, sinks: """
                  page:
                    type: notifier
                    inputs: [error_alarm]
                    webhook: { url: "\(url)" }
                    timeout: 2s
                    retry_initial: 50ms
                    retry_max: 200ms
                """)
        }
        _ = try await runOnce(pipeline(server.url))
        // A reply that comes after the client gave up is delivered again (at least once); the
        // Idempotency-Key lets a receiver drop such repeats, and nothing else may repeat. On a
        // loaded machine any attempt may time out (its request then reaches the receiver late,
        // even after the run), so only first deliveries per key and their order are compared.
        let accepted = firstByIdempotencyKey(server.accepted)
        let bodies = accepted.compactMap { try? JSONSerialization.jsonObject(with: $0.body) as? [String: Any] }
        #expect(bodies.map { "\($0["state"] ?? "")" } == ["OK", "ALARM", "OK"])
        #expect(bodies.map { "\($0["dedupeKey"] ?? "")" } == accepted.map { $0.headers["idempotency-key"] ?? "" })
        #expect(server.requests.count >= 6)   // three failures before the first success
        #expect(accepted.allSatisfy { $0.headers["idempotency-key"] != nil && $0.headers["content-type"] == "application/json" })
        let alarm = try #require(bodies.dropFirst().first)
        #expect(alarm["subject"] as? String == "HighErrorRate")
        #expect((alarm["event"] as? [String: Any])?["alarmName"] as? String == "HighErrorRate")

        // The same history again: every notification is known by its dedupe key, so the rerun
        // sends nothing. It sends to a receiver of its own: a late request of the first run
        // (one the client gave up on) cannot be mistaken for a repeat.
        let rerunReceiver = try TestHTTPServer { _ in .status(200) }
        defer { rerunReceiver.stop() }
        _ = try await runOnce(pipeline(rerunReceiver.url))
        #expect(rerunReceiver.requests.isEmpty, "the rerun notified again: \(rerunReceiver.requests.map { $0.headers["idempotency-key"] ?? "" })")
        #expect(firstByIdempotencyKey(server.accepted).count == 3)
    }

    @Test("the spool keeps undelivered notifications across runs; Slack format")
    func spoolSurvivesRestart() async throws {
        let receiverUp = Mutex(false)
        let server = try TestHTTPServer { _ in receiverUp.withLock { $0 } ? .status(200) : .status(503) }
        defer { server.stop() }
        let dir = TemporaryDirectory()
        _ = dir.write("logs/app.log", errorLog(flappingErrors))
        let pipeline = alarmPipeline(dir, definition: errorRateDefinition, sinks: """
              page:
                type: notifier
                inputs: [error_alarm]
                webhook: { url: "\(server.url)", format: slack }
                timeout: 2s
                retry_initial: 20ms
                retry_max: 100ms
                drain_timeout: 1s
            """)
        _ = try await runOnce(pipeline)
        #expect(server.accepted.isEmpty)
        let spooled = try FileManager.default.contentsOfDirectory(atPath: dir.file("state/state/page/spool"))
        #expect(spooled.count == 3)
        let attributes = try FileManager.default.attributesOfItem(atPath: dir.file("state/state/page/spool/" + spooled.sorted()[0]))
        #expect((attributes[.posixPermissions] as? Int) == 0o640)

        receiverUp.withLock { $0 = true }
        _ = try await runOnce(pipeline)
        let texts = firstByIdempotencyKey(server.accepted).compactMap { (try? JSONSerialization.jsonObject(with: $0.body) as? [String: Any])?["text"] as? String }
        #expect(texts.count == 3)
        #expect(texts[1].contains("*HighErrorRate* ALARM"), "\(texts)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("state/state/page/spool")).isEmpty)
    }

    @Test("command: argv without a shell, hostile alarm names stay data; cooldown holds back flapping")
    func commandNotifier() async throws {
        let dir = TemporaryDirectory()
        let hostile = #"evil $(touch \#(dir.path)/pwned1) `touch \#(dir.path)/pwned2`; touch \#(dir.path)/pwned3 'q' \"d\" & | > \#(dir.path)/pwned4"#
        let definition = errorRateDefinition
            .replacingOccurrences(of: "AlarmName: HighErrorRate", with: "AlarmName: '\(hostile.replacingOccurrences(of: "'", with: "''"))'")
            .replacingOccurrences(of: "EvaluationPeriods: 2\n      DatapointsToAlarm: 2", with: "EvaluationPeriods: 1")
        // Flapping: bad, good, bad, good minutes.
        _ = dir.write("logs/app.log", errorLog([5, 1, 5, 1, 5, 1]))
        let recorder = dir.write("record.sh", "printf '%s\\n' \"$@\" >> \"$0.args\"; cat >> \"$0.stdin\"; printf '\\n' >> \"$0.stdin\"\n")
        _ = try await runOnce(alarmPipeline(dir, definition: definition, sinks: """
              run:
                type: notifier
                inputs: [error_alarm]
                command: [/bin/sh, \(recorder), "{subject}", "{state}"]
                cooldown: 1h
            """))
        for n in 1...4 { #expect(!FileManager.default.fileExists(atPath: dir.file("pwned\(n)"))) }
        // I->ALARM is sent, ALARM->OK follows it; the next ALARM within the hour is held back, and so is its OK.
        let args = lines(dir.read("record.sh.args"))
        #expect(args == [hostile, "ALARM", hostile, "OK"], "\(args)")
        let inputs = jsonObjects(dir.read("record.sh.stdin"))
        #expect(inputs.map { $0["subject"] as? String } == [hostile, hostile])
    }

    @Test("backtest over archived history lists when the alarm would have fired and cleared")
    func backtest() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("logs/app.log", errorLog(flappingErrors + flappingErrors.map { $0 }))
        // Archive the logs, as a shipping pipeline would have.
        _ = try await runOnce("""
            data_dir: \(dir.file("ship"))
            sources:
              app: { type: file, include: \(dir.file("logs"))/app.log, timestamp: { field: $.time } }
            sinks:
              arch: { type: archive, inputs: [app], directory: \(dir.file("archive")), host: h1 }
            """)
        let pipeline = dir.write("pipeline.yaml", alarmPipeline(dir, definition: errorRateDefinition, sinks: """
              page: { type: notifier, inputs: [error_alarm], console: true }
            """))
        let (status, text, err) = try await runTool(trailwatchBinary(), ["backtest", pipeline, "--alarm", "HighErrorRate", "--from", dir.file("archive") + "/**/*.zst"])
        #expect(status == 0, "\(err)")
        #expect(text.contains("HighErrorRate  OK -> ALARM"), "\(text)")
        #expect(text.contains("fired 2 times; in ALARM for 4m in total, longest 2m"), "\(text)")
        let (_, json, _) = try await runTool(trailwatchBinary(), ["backtest", pipeline, "--from", dir.file("archive") + "/**/*.zst", "--format", "json"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(report["fired"] as? Int == 2)
        // Backtests never notify and never touch the pipeline's state.
        #expect(!FileManager.default.fileExists(atPath: dir.file("state")))

        // A metric series and a definition file.
        let definitionFile = dir.write("alarm.json", #"{"AlarmName":"Hot","Namespace":"S","MetricName":"V","Statistic":"Average","Period":60,"Threshold":10,"ComparisonOperator":"GreaterThanThreshold","EvaluationPeriods":1}"#)
        let series = dir.write("series.csv", "timestamp,value\n2026-11-01 00:00:00,1\n2026-11-01 00:01:00,20\n2026-11-01 00:02:00,3\n")
        let (csvStatus, csv, csvErr) = try await runTool(trailwatchBinary(), ["backtest", definitionFile, "--metrics", series, "--format", "csv"])
        #expect(csvStatus == 0, "\(csvErr)")
        #expect(lines(csv) == ["time,alarm,from,to,value", "2026-11-01T00:01:00.000Z,Hot,INSUFFICIENT_DATA,OK,1.0",
                               "2026-11-01T00:02:00.000Z,Hot,OK,ALARM,20.0", "2026-11-01T00:03:00.000Z,Hot,ALARM,OK,3.0"])
    }

    @Test("backtest decrypts with the pipeline's archive key and finds an AlarmName in a definition file")
    func backtestEncryptedArchiveAndDefinitionFile() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("logs/app.log", errorLog(flappingErrors))
        let keyFile = dir.write("archive.key", ArchiveKey.newSymmetric().base64 + "\n")
        // Two alarms in the file: naming one reports only its changes.
        _ = dir.write("alarms.json", """
            [{"AlarmName":"HighErrorRate","Namespace":"App","MetricName":"Errors","Statistic":"Sum","Period":60,"Threshold":2,
              "ComparisonOperator":"GreaterThanThreshold","EvaluationPeriods":2,"DatapointsToAlarm":2},
             {"AlarmName":"AnyError","Namespace":"App","MetricName":"Errors","Statistic":"Sum","Period":60,"Threshold":0,
              "ComparisonOperator":"GreaterThanThreshold","EvaluationPeriods":1}]
            """)
        let yaml = alarmPipeline(dir, definition: "", sinks: """
              arch: { type: archive, inputs: [app], directory: \(dir.file("archive")), host: h1, encryption: { key_file: \(keyFile) } }
              changes: { type: file, inputs: [error_alarm], path: \(dir.file("changes.jsonl")) }
            """).replacingOccurrences(of: "    definition:\n", with: "    definition_file: alarms.json\n")
        let pipeline = dir.write("pipeline.yaml", yaml)
        let (runStatus, _, runErr) = try await runTool(trailwatchBinary(), ["run", pipeline, "--once"])
        #expect(runStatus == 0, "\(runErr)")
        let (status, text, err) = try await runTool(trailwatchBinary(), ["backtest", pipeline, "--alarm", "HighErrorRate", "--from", dir.file("archive") + "/**/*.zst"])
        #expect(status == 0, "\(err)")
        #expect(text.contains("HighErrorRate  OK -> ALARM") && !text.contains("AnyError"), "\(text)")
        #expect(text.contains("fired 1 time;"), "\(text)")
    }
}
