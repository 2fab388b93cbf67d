import Foundation
import Synchronization
import Testing
import TrailwatchConfig
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStages
import TrailwatchTestSupport

// MARK: - Test-only stage kinds

/// Emits `batches` batches of `perBatch` numbered lines, each with an ack token that records completion.
struct CountingSource: SourceKind {
    struct Config: StageConfig {
        var batches = 0
        var perBatch = 0
        static let settings = SettingsSchema<Config>(
            .required("batches", \.batches, "Batches to emit."),
            .required("per_batch", \.perBatch, "Lines per batch.")
        )
    }
    static let type = "counting"
    static let summary = "test"
    static func produces(_ config: Config) -> Set<EventKind> { [.log] }
    static func make(_ config: Config, _ context: StageContext) throws -> any Source { Runner(config: config) }

    /// Acknowledged batch numbers, per successful/failed outcome.
    static let acked = Mutex<[Int: Bool]>([:])
    static let emitted = Atomic<Int>(0)

    final class Runner: TrailwatchRuntime.Source {
        let config: Config
        init(config: Config) { self.config = config }
        func run(_ output: SourceOutput) throws {
            for b in 0..<config.batches {
                if output.isStopping { break }
                var text = ""
                for i in 0..<config.perBatch { text += "batch \(b) line \(i)\n" }
                let storage = ByteStorage(copying: Array(text.utf8))
                var batch = LogBatch(storage: storage, defaultTimestamp: 0, ingestionTime: 0, origin: Origin(logGroup: "g", logStream: "s"))
                var framer = LineFramer(maxLineBytes: 1000)
                _ = framer.frame(UnsafeRawPointer(storage.mutableBase), from: 0, end: storage.capacity, into: &batch)
                let token = AckToken { ok in CountingSource.acked.withLock { $0[b] = ok } }
                CountingSource.emitted.add(1, ordering: .relaxed)
                output.emit(Batch(.logs(batch), acks: Acknowledgements([token])))
            }
        }
    }
}

/// A transform that turns each log batch into one metric datapoint (to exercise kind checks).
struct CountToMetric: TransformKind {
    struct Config: StageConfig {
        var unused: String?
        static let settings = SettingsSchema<Config>(.setting("unused", \.unused, "Not used."))
    }
    static let type = "count_to_metric"
    static let summary = "test"
    static func accepts(_ config: Config) -> Set<EventKind> { [.log] }
    static func produces(_ config: Config, fedWith inputs: Set<EventKind>) -> Set<EventKind> { [.metric] }
    static func make(_ config: Config, _ context: StageContext) throws -> any Transform { Runner() }
    final class Runner: Transform {
        func process(_ batch: Batch, into output: inout TransformOutput) throws {
            let d = MetricDatum(metric: MetricIdentity(namespace: "T", name: "Lines"), timestamp: 0, period: 60,
                                sampleCount: Double(batch.count), sum: Double(batch.count), minimum: 1, maximum: 1)
            output.emit(Batch(.metrics([d])))
        }
    }
}

/// Collects everything it is sent; optionally waits on a gate before each write (a slow sink).
struct CollectingSink: SinkKind {
    struct Config: StageConfig {
        var name = ""
        var slow: Bool?
        /// The first this many writes fail (a sink that is down, then recovers).
        var failures: Int?
        static let settings = SettingsSchema<Config>(
            .required("name", \.name, "Where the collected lines are kept."),
            .setting("slow", \.slow, "Wait on the gate before each write."),
            .setting("failures", \.failures, "The first this many writes fail.")
        )
    }
    static let type = "collect"
    static let summary = "test"
    static func accepts(_ config: Config) -> Set<EventKind> { Set(EventKind.allCases) }
    static func make(_ config: Config, _ context: StageContext) throws -> any Sink { Runner(name: config.name, slow: config.slow ?? false, failures: config.failures ?? 0) }

    static let collected = Mutex<[String: [String]]>([:])
    static let gateOpen = Atomic<Bool>(true)
    static let failedWrites = Atomic<Int>(0)

    struct Down: Error {}

    final class Runner: Sink {
        let name: String
        let slow: Bool
        var failures: Int
        init(name: String, slow: Bool, failures: Int) { self.name = name; self.slow = slow; self.failures = failures }
        func write(_ batch: Batch) async throws {
            while slow && !CollectingSink.gateOpen.load(ordering: .relaxed) { try await Task.sleep(nanoseconds: 1_000_000) }
            if failures > 0 {
                failures -= 1
                CollectingSink.failedWrites.add(1, ordering: .relaxed)
                throw Down()
            }
            var lines: [String] = []
            switch batch.payload {
            case .logs(let logs): for i in 0..<logs.count { lines.append(logs.messageString(i)) }
            case .metrics(let m): lines = m.map { "metric \($0.sum)" }
            case .events(_, let e): lines = e.map { String(decoding: $0.body, as: UTF8.self) }
            }
            CollectingSink.collected.withLock { $0[name, default: []].append(contentsOf: lines) }
            batch.acks.release()
        }
        func finish() async throws {}
    }
}

let testRegistry: StageRegistry = {
    var r = BuiltinStages.registry
    r.register(CountingSource.self)
    r.register(CountToMetric.self)
    r.register(CollectingSink.self)
    return r
}()

/// Plans `yaml` with the test-only kinds registered next to the built-in ones.
func plan(_ yaml: String) throws -> PipelinePlan { try plan(yaml, registry: testRegistry) }

// MARK: - Tests

/// These tests share static collectors, so they run one at a time.
@Suite("Runtime", .serialized)
struct RuntimeTests {
    init() {
        CollectingSink.collected.withLock { $0 = [:] }
        CountingSource.acked.withLock { $0 = [:] }
        CountingSource.emitted.store(0, ordering: .relaxed)
        CollectingSink.gateOpen.store(true, ordering: .relaxed)
        CollectingSink.failedWrites.store(0, ordering: .relaxed)
    }

    @Test("fan-out and fan-in deliver every event, and acks complete only after every sink wrote")
    func fanOutFanIn() async throws {
        let p = try plan("""
            sources:
              a: { type: counting, batches: 5, per_batch: 10 }
              b: { type: counting, batches: 3, per_batch: 2 }
            transforms:
              keep: { type: filter, inputs: [a, b], contains: "line" }
              odd: { type: filter, inputs: [a], contains: "1" }
            sinks:
              all: { type: collect, inputs: [keep], name: all }
              both: { type: collect, inputs: [keep, odd], name: both }
            """)
        let summary = await PipelineRunner(plan: p, once: true, log: .silent).run()
        #expect(summary.failures.isEmpty)
        let collected = CollectingSink.collected.withLock { $0 }
        #expect(collected["all"]?.count == 56)
        let oddCount = (0..<5).flatMap { b in (0..<10).map { "batch \(b) line \($0)" } }.filter { $0.contains("1") }.count
        #expect(collected["both"]?.count == 56 + oddCount)
        #expect(summary.components.first { $0.id == "keep" }?.eventsIn == 56)
        let acked = CountingSource.acked.withLock { $0 }
        #expect(acked.count == 5)   // batch numbers 0..<5 (b's 0..<3 share keys)
        #expect(acked.values.allSatisfy { $0 })
    }

    @Test("a batch fully dropped by a transform still gets acknowledged")
    func droppedBatchesAreAcknowledged() async throws {
        let p = try plan("""
            sources:
              a: { type: counting, batches: 4, per_batch: 3 }
            transforms:
              none: { type: filter, inputs: [a], contains: "absent" }
            sinks:
              out: { type: collect, inputs: [none], name: out }
            """)
        _ = await PipelineRunner(plan: p, once: true, log: .silent).run()
        #expect(CollectingSink.collected.withLock { $0["out"] } == nil)
        #expect(CountingSource.acked.withLock { $0 }.count == 4)
    }

    @Test("a stage fed a kind it cannot take is a wiring error")
    func kindMismatch() {
        let (planned, diagnostics) = PipelinePlanner(registry: testRegistry, environment: [:]).plan(text: """
            sources:
              a: { type: counting, batches: 1, per_batch: 1 }
            transforms:
              m: { type: count_to_metric, inputs: [a] }
              f: { type: filter, inputs: [m], contains: x }
            sinks:
              out: { type: collect, inputs: [f, m], name: x }
            """, file: "t.yaml", pipelineDirectory: ".")
        #expect(planned == nil)
        #expect(diagnostics.map(\.description).contains(
            "t.yaml:5:31: component 'f': setting 'inputs': 'm' produces metric events but a filter transform cannot take metric events (expected an input producing log events)"))
    }

    @Test("a slow sink holds the source back: in-flight batches are bounded by the buffers")
    func backpressure() async throws {
        CollectingSink.gateOpen.store(false, ordering: .relaxed)
        let p = try plan("""
            buffer_batches: 2
            sources:
              a: { type: counting, batches: 200, per_batch: 1 }
            sinks:
              out: { type: collect, inputs: [a], name: out, slow: true }
            """)
        let runner = PipelineRunner(plan: p, once: true, log: .silent)
        async let summary = runner.run()
        try await Task.sleep(nanoseconds: 300_000_000)
        let emittedWhileBlocked = CountingSource.emitted.load(ordering: .relaxed)
        // 2 buffered + 1 held by the sink + 1 the source is blocked on.
        #expect(emittedWhileBlocked <= 4)
        CollectingSink.gateOpen.store(true, ordering: .relaxed)
        let result = await summary
        #expect(result.components.first { $0.id == "out" }?.eventsIn == 200)
    }

    @Test("requestStop stops sources, drains and flushes")
    func stopDrains() async throws {
        let p = try plan("""
            sources:
              a: { type: counting, batches: 1000000, per_batch: 1 }
            sinks:
              out: { type: collect, inputs: [a], name: out }
            """)
        let runner = PipelineRunner(plan: p, once: false, log: .silent)
        async let summary = runner.run()
        #expect(await eventually { CountingSource.emitted.load(ordering: .relaxed) >= 100 })
        runner.requestStop()
        let result = await summary
        let emitted = CountingSource.emitted.load(ordering: .relaxed)
        #expect(emitted < 1_000_000)
        #expect(result.components.first { $0.id == "out" }?.eventsIn == emitted)
        #expect(CountingSource.acked.withLock { $0 }.count == emitted)
    }
}

@Suite("Bounded channel")
struct ChannelTests {
    @Test("delivers in order from several producers and finishes when all are done")
    func ordering() async {
        let channel = BoundedChannel<Int>(capacity: 3, producers: 2)
        async let a: Void = { for i in 0..<100 { await channel.send(i) }; channel.producerFinished() }()
        let thread = Thread { for i in 100..<200 { channel.sendBlocking(i) }; channel.producerFinished() }
        thread.start()
        var received: [Int] = []
        for await v in channel { received.append(v) }
        await a
        #expect(received.count == 200)
        #expect(received.filter { $0 < 100 } == Array(0..<100))
        #expect(received.filter { $0 >= 100 } == Array(100..<200))
    }

    @Test("trySend refuses when full")
    func trySend() {
        let channel = BoundedChannel<Int>(capacity: 1, producers: 1)
        #expect(channel.trySend(1))
        #expect(!channel.trySend(2))
        #expect(channel.bufferedCount == 1)
    }
}
