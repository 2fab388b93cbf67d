import AWSWire
import TrailwatchCore
import TrailwatchConfig
import Synchronization

/// What every stage gets to know about where it runs.
public struct StageContext: Sendable {
    /// The component id from the pipeline file.
    public var id: String
    /// Pipeline-wide settings (data dir, buffer sizes).
    public var settings: GlobalSettings
    /// `--once`: read inputs to their end and stop, instead of following them.
    public var once: Bool
    /// Where this stage may keep state (`<data_dir>/<id>`); created on demand by the stage.
    public var stateDirectory: String
    public var metrics: ComponentMetrics
    /// Diagnostics the stage reports while running (bad records, retries). Never secrets.
    public var log: RuntimeLog
    /// The directory the pipeline file is in, for resolving paths a stage reads (alarm definitions).
    public var pipelineDirectory: String
    /// Wall-clock time as the stage should read it (the system clock, or `trailwatch test`'s virtual one).
    public var clock: any StageClock = SystemClock()
    /// The AWS services (APIs) this process serves on its HTTP server; API sources register
    /// theirs here while they run.
    public var awsServices = AWSServiceDirectory()

    public init(id: String, settings: GlobalSettings, once: Bool, stateDirectory: String, metrics: ComponentMetrics,
                log: RuntimeLog, pipelineDirectory: String, awsServices: AWSServiceDirectory = AWSServiceDirectory(),
                clock: any StageClock = SystemClock()) {
        self.id = id
        self.settings = settings
        self.once = once
        self.stateDirectory = stateDirectory
        self.metrics = metrics
        self.log = log
        self.pipelineDirectory = pipelineDirectory
        self.awsServices = awsServices
        self.clock = clock
    }
}

/// A stage that brings events in from outside. Runs on its own thread because sources do
/// blocking reads; it hands batches downstream with ``SourceOutput/emit(_:)``, which blocks
/// while downstream buffers are full.
public protocol Source: AnyObject {
    /// Reads until the input ends (in `--once` mode) or ``SourceOutput/isStopping`` turns true.
    func run(_ output: SourceOutput) throws
    /// Called once every sink has finished (flushed and acknowledged what it could), after
    /// ``run(_:)`` returned: the moment to persist final positions.
    func finalize()
}

extension Source {
    public func finalize() {}
}

/// A stage that turns batches into batches. Lives inside one task; it needs no locking.
public protocol Transform: AnyObject {
    /// Handles one batch, emitting any number of batches.
    ///
    /// Unless ``holdsAcknowledgements`` is true, the runtime hands the input's acknowledgements
    /// to what was emitted (or releases them when nothing was), so stateless transforms never
    /// touch them.
    func process(_ batch: Batch, into output: inout TransformOutput) throws
    /// The input has ended: emit whatever is still pending.
    func finish(into output: inout TransformOutput) throws
    /// A wall-clock tick in live mode (once a second), for time-based flushing. Not called in `--once` mode.
    func tick(nowMillis: Int64, into output: inout TransformOutput) throws
    /// True when the transform keeps batches' acknowledgements itself (aggregations that emit later).
    var holdsAcknowledgements: Bool { get }
}

extension Transform {
    public func finish(into output: inout TransformOutput) throws {}
    public func tick(nowMillis: Int64, into output: inout TransformOutput) throws {}
    public var holdsAcknowledgements: Bool { false }
}

/// A stage that writes events out. Lives inside one task.
///
/// A sink must release each batch's acknowledgements only once the batch is durably written
/// (after fsync, commit, or a delivered request) — that is what lets sources checkpoint.
public protocol Sink: AnyObject {
    /// Called once before the first write: the moment to connect (an error here stops the component).
    func open() async throws
    func write(_ batch: Batch) async throws
    /// A wall-clock tick in live mode (once a second), for time-based flushes.
    func tick(nowMillis: Int64) async throws
    /// The input has ended: write and sync everything still buffered, releasing its acknowledgements.
    func finish() async throws
}

extension Sink {
    public func open() async throws {}
    public func tick(nowMillis: Int64) async throws {}
}

/// Where a transform puts what it emits. `port` names one of the transform's named outputs
/// (`route`); nil is the main output.
public struct TransformOutput: Sendable {
    public internal(set) var emitted: [(port: String?, batch: Batch)] = []

    public init() {}

    public mutating func emit(_ batch: Batch, port: String? = nil) {
        emitted.append((port, batch))
    }
}

/// A source's handle on the pipeline.
public final class SourceOutput: Sendable {
    let router: OutputRouter
    let stopFlag: Atomic<Bool>
    /// Batches emitted and not yet acknowledged or failed by every sink.
    let inFlightCounter = Atomic<Int>(0)
    public let metrics: ComponentMetrics

    init(router: OutputRouter, metrics: ComponentMetrics) {
        self.router = router
        self.stopFlag = Atomic(false)
        self.metrics = metrics
    }

    /// True once the pipeline is shutting down: stop reading, emit what you have, return.
    public var isStopping: Bool { stopFlag.load(ordering: .relaxed) }

    func requestStop() { stopFlag.store(true, ordering: .relaxed) }

    /// Batches this source emitted that are still on their way through the pipeline.
    var inFlight: Int { inFlightCounter.load(ordering: .relaxed) }

    /// Sends a batch to every consumer, blocking while their buffers are full.
    public func emit(_ batch: Batch) {
        guard batch.count > 0 else {
            batch.acks.release()
            return
        }
        metrics.recordOut(events: batch.count, bytes: batch.payload.byteCount)
        router.tap.offer(batch.payload, port: nil)
        let (routes, generation) = router.acquire()
        defer { router.release(generation) }
        let downstream = routes[nil] ?? []
        if downstream.isEmpty {
            batch.acks.release()
            return
        }
        var batch = batch
        inFlightCounter.wrappingAdd(1, ordering: .relaxed)
        batch.acks.merge(Acknowledgements([AckToken { [self] _ in inFlightCounter.wrappingSubtract(1, ordering: .relaxed) }]))
        if downstream.count > 1 { batch.acks.retain(downstream.count - 1) }
        for inbox in downstream { inbox.sendBlocking(batch) }
    }
}

/// Messages stages report while running, printed to stderr by the CLI.
public final class RuntimeLog: Sendable {
    public enum Level: Int, Sendable, Comparable {
        case debug, info, warning, error
        public static func < (a: Level, b: Level) -> Bool { a.rawValue < b.rawValue }
    }

    private let handler: @Sendable (Level, String, String) -> Void

    public init(handler: @escaping @Sendable (_ level: Level, _ component: String, _ message: String) -> Void) {
        self.handler = handler
    }

    public func log(_ level: Level, _ component: String, _ message: String) { handler(level, component, message) }

    /// A log that drops everything (tests).
    public static let silent = RuntimeLog { _, _, _ in }
}
