import Foundation
import Testing
import TrailwatchConfig
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStages
import TrailwatchTestSupport

/// `buffer:` on sinks. Part of the serialized runtime suite: they share its collectors.
extension RuntimeTests {
    @Test("when_full: drop_newest keeps a stalled sink from holding back the others, and counts what it dropped")
    func dropNewest() async throws {
        CollectingSink.gateOpen.store(false, ordering: .relaxed)
        let p = try plan("""
            sources:
              a: { type: counting, batches: 50, per_batch: 4 }
            sinks:
              fast: { type: collect, inputs: [a], name: fast }
              stuck:
                type: collect
                inputs: [a]
                name: stuck
                slow: true
                buffer: { max_batches: 1, when_full: drop_newest }
            """)
        let runner = PipelineRunner(plan: p, once: true, log: .silent)
        let run = Task { await runner.run() }
        // Everything reaches the fast sink while the other one is stuck.
        #expect(await eventually { CollectingSink.collected.withLock { $0["fast"]?.count } == 200 })
        CollectingSink.gateOpen.store(true, ordering: .relaxed)
        let summary = await run.value
        let dropped = runner.metrics.first { $0.id == "stuck" }!.gaugeValues["dropped_events"] ?? 0
        let written = CollectingSink.collected.withLock { $0["stuck"]?.count ?? 0 }
        #expect(dropped > 0)
        #expect(Int(dropped) + written == 200)
        #expect(summary.failures.isEmpty)
        // Dropped batches are acknowledged: the source is free to move on.
        #expect(CountingSource.acked.withLock { $0 }.values.filter { $0 }.count == 50)
    }

    @Test("isolate: true spools to disk, acknowledges upstream at once, and retries a failing sink until it recovers")
    func isolatedSinkRetries() async throws {
        let dir = TemporaryDirectory()
        let p = try plan("""
            data_dir: \(dir.path)
            sources:
              a: { type: counting, batches: 20, per_batch: 5 }
            sinks:
              ok: { type: collect, inputs: [a], name: ok }
              flaky:
                type: collect
                inputs: [a]
                name: flaky
                failures: 3
                buffer: { isolate: true, retry_backoff: 10ms }
            """)
        let runner = PipelineRunner(plan: p, once: true, log: .silent)
        let summary = await runner.run()
        #expect(summary.failures.isEmpty)
        let collected = CollectingSink.collected.withLock { $0 }
        #expect(collected["ok"]?.count == 100)
        #expect(Set(collected["flaky"] ?? []).count == 100)
        #expect(CollectingSink.failedWrites.load(ordering: .relaxed) == 3)
        #expect(runner.metrics.first { $0.id == "flaky" }!.gaugeValues["sink_retries"] == 3)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("spool/flaky")).isEmpty)
    }

    @Test("what an isolated sink could not write stays spooled and is sent at the next start")
    func spoolSurvivesRestart() async throws {
        let dir = TemporaryDirectory()
        func pipeline(failures: Int) throws -> PipelinePlan {
            try plan("""
                data_dir: \(dir.path)
                sources:
                  a: { type: counting, batches: \(failures > 0 ? 6 : 0), per_batch: 2 }
                sinks:
                  down:
                    type: collect
                    inputs: [a]
                    name: down
                    failures: \(failures)
                    buffer: { isolate: true, retry_backoff: 5ms }
                """)
        }
        _ = await PipelineRunner(plan: try pipeline(failures: 1000), once: true, log: .silent).run()
        #expect(CollectingSink.collected.withLock { $0["down"] } == nil)
        // Upstream was acknowledged: the data is safe on disk.
        #expect(CountingSource.acked.withLock { $0 }.values.filter { $0 }.count == 6)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("spool/down")).count == 6)
        _ = await PipelineRunner(plan: try pipeline(failures: 0), once: true, log: .silent).run()
        #expect(CollectingSink.collected.withLock { $0["down"]?.count } == 12)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("spool/down")).isEmpty)
    }

    @Test("buffer settings are checked like every other setting")
    func badBufferSettings() {
        let found = diagnostics("""
            sources:
              app: { type: stdin }
            sinks:
              out:
                type: console
                inputs: [app]
                buffer: { max_batches: 0, when_ful: block }
            """)
        #expect(found.contains("p.yaml:7:41: component 'out': setting 'buffer.when_ful': unknown setting (expected one of max_batches, when_full, isolate, max_spool_bytes, retry_backoff; did you mean 'when_full'?)") ||
                found.contains { $0.contains("setting 'buffer.max_batches': 0 is out of range") }, "\(found)")
    }
}

@Suite("Batch codec")
struct BatchCodecTests {
    @Test("every column of a log batch, metrics and structured events survive a round trip")
    func roundTrip() throws {
        let text = "first\nsecond \u{FF}\nthird"
        let storage = ByteStorage(copying: Array(text.utf8))
        var batch = LogBatch(storage: storage, defaultTimestamp: 5, ingestionTime: 7, origin: Origin(logGroup: "g", logStream: "s"))
        batch.append(start: 0, length: 5)
        batch.append(start: 6, length: 9, flags: [.invalidUTF8], timestamp: 1234, originIndex: batch.originIndex(for: Origin(logGroup: "g2", logStream: "s2")))
        batch.append(start: 16, length: 5, flags: [.split])
        batch.setFields(Fields([("n", .number(2.5)), ("s", .string("x")), ("b", .bool(true)), ("z", .null), ("j", .json(Array("[1]".utf8)))]), at: 2)
        guard case .logs(let decoded) = try BatchCodec.decode(BatchCodec.encode(.logs(batch))) else { Issue.record("not logs"); return }
        #expect(decoded.count == 3)
        #expect((0..<3).map { decoded.messageString($0) } == (0..<3).map { batch.messageString($0) })
        #expect((0..<3).map { decoded.timestamp($0) } == [5, 1234, 5])
        #expect((0..<3).map { decoded.origin($0) } == (0..<3).map { batch.origin($0) })
        #expect((0..<3).map { decoded.flags($0) } == (0..<3).map { batch.flags($0) })
        #expect(decoded.fields(2) == batch.fields(2))
        #expect(decoded.fields(0) == nil)

        let datum = MetricDatum(metric: MetricIdentity(namespace: "N", name: "M", dimensions: [Dimension(name: "d", value: "v")]),
                                unit: "Count", timestamp: 60_000, period: 60, sampleCount: 2, sum: 3, minimum: 1, maximum: 2, values: [1, 2])
        guard case .metrics(let metrics) = try BatchCodec.decode(BatchCodec.encode(.metrics([datum]))) else { Issue.record("not metrics"); return }
        #expect(metrics == [datum])
        let event = StructuredEvent(kind: .alarm, timestamp: 9, key: "k", body: Array(#"{"a":1}"#.utf8))
        guard case .events(.alarm, let events) = try BatchCodec.decode(BatchCodec.encode(.events(.alarm, [event]))) else { Issue.record("not events"); return }
        #expect(events == [event])
    }

    @Test("a damaged spool file is an error, not a crash")
    func damaged() {
        var bytes = BatchCodec.encode(.events(.alarm, [StructuredEvent(kind: .alarm, timestamp: 1, key: "k", body: [1, 2, 3])]))
        bytes.removeLast(2)
        #expect(throws: BatchCodec.DecodeError.self) { try BatchCodec.decode(bytes) }
        #expect(throws: BatchCodec.DecodeError.self) { try BatchCodec.decode([1, 2, 3]) }
    }
}
