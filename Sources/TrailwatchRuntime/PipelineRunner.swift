import AWSWire
import TrailwatchCore
import TrailwatchConfig
import Synchronization
import Foundation

/// What flows through a stage's input buffer.
enum StageMessage: Sendable {
    case batch(Batch)
    /// Live mode only: wall-clock time for time-based flushing.
    case tick(Int64)
}

/// How a run ended, per component and overall.
public struct RunSummary: Sendable {
    public struct Component: Sendable, Codable {
        public var id: String
        public var type: String
        public var section: String
        public var eventsIn: Int
        public var eventsOut: Int
        public var bytesIn: Int
        public var bytesOut: Int
        public var errors: Int
        public var seconds: Double
        /// Damaged input files and batches that could not be written (see ``ComponentMetrics/recordDamage(_:)``).
        public var damaged: Int = 0
    }

    public var components: [Component]
    public var seconds: Double
    /// Stage failures that stopped a component (construction errors, fatal I/O).
    public var failures: [String]

    /// Components that reported damaged input or failed writes: a batch run that had any did not
    /// deliver everything it read.
    public var damagedComponents: [String] { components.filter { $0.damaged > 0 }.map(\.id) }
}

/// Runs a ``PipelinePlan``: a thread per source, a task per transform and sink, bounded channels
/// between them. Stop with ``requestStop()``: sources stop reading, everything drains and flushes.
///
/// In live mode ``reload(_:)`` swaps in a new plan while data flows (SIGHUP, `--watch-config`):
/// components whose configuration is unchanged keep running untouched (positions, buffers and
/// state kept; only their outputs are rewired), changed ones are drained and restarted, removed
/// ones drained and stopped, new ones started. See ``PipelineDiff``.
public final class PipelineRunner: Sendable {
    public let once: Bool
    public let log: RuntimeLog
    /// Wall-clock time for ticks and stages.
    public let clock: any StageClock
    private let graph: Mutex<Graph>
    /// The AWS APIs the pipeline's API sources serve; the HTTP server dispatches to them.
    public let awsServices = AWSServiceDirectory()
    /// Taps attached to components' outputs (`trailwatch tap`); see ``attachTap(_:options:)``.
    public let taps = PipelineTaps()
    private let failures = Mutex<[String]>([])
    private let stopping = Atomic<Bool>(false)
    /// Sources whose ``Source/finalize()`` runs once the sinks are done, by instance.
    private let finishedSources = Mutex<[ObjectIdentifier: SourceBox]>([:])
    /// Channels that get wall-clock ticks: those of every running or draining instance.
    private let tickedChannels = Mutex<[ObjectIdentifier: BoundedChannel<StageMessage>]>([:])
    private let reloads = Mutex(ReloadStatus())
    private let reloadRequests: AsyncStream<PipelinePlan>
    private let reloadContinuation: AsyncStream<PipelinePlan>.Continuation
    private let runningTasks = Atomic<Int>(0)

    /// The running components and the plan they came from.
    private struct Graph {
        var plan: PipelinePlan
        var live: [String: LiveComponent] = [:]
        /// Instances being drained after a reload, by id: a successor starts once they are done.
        var draining: [String: Completion] = [:]
        var metricsByID: [String: ComponentMetrics] = [:]
    }

    public init(plan: PipelinePlan, once: Bool, log: RuntimeLog, clock: any StageClock = SystemClock()) {
        self.clock = clock
        self.once = once
        self.log = log
        var graph = Graph(plan: plan)
        for component in plan.components {
            graph.metricsByID[component.id] = ComponentMetrics(id: component.id, type: component.declaration.type,
                                                               section: component.declaration.section.singular)
        }
        self.graph = Mutex(graph)
        reloads.withLock { $0.file = plan.document.file }
        (reloadRequests, reloadContinuation) = AsyncStream.makeStream(of: PipelinePlan.self)
        if once { reloadContinuation.finish() }
    }

    /// The plan running now (the newest one a reload applied).
    public var plan: PipelinePlan { graph.withLock { $0.plan } }

    /// The current components' counters, in plan order.
    public var metrics: [ComponentMetrics] {
        graph.withLock { g in g.plan.components.compactMap { g.metricsByID[$0.id] } }
    }

    /// Asks sources to stop; the pipeline then drains and flushes. Safe from any thread, repeatable.
    public func requestStop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        reloadContinuation.finish()
        let outputs = graph.withLock { g in g.live.values.compactMap(\.output) }
        for output in outputs { output.requestStop() }
    }

    public var isStopping: Bool { stopping.load(ordering: .sequentiallyConsistent) }

    /// Component failures so far (for `/health`).
    public var currentFailures: [String] { failures.withLock { $0 } }

    // MARK: Reload

    /// Applies `plan` to the running pipeline (live mode). Returns at once; the change is applied
    /// in order with other reloads, and counted in ``reloadStatus``.
    public func reload(_ plan: PipelinePlan) {
        guard !once, !isStopping else { return }
        reloadContinuation.yield(plan)
    }

    /// A reload was refused (the new file did not load): the running pipeline stays as it is.
    public func reloadFailed(_ message: String) {
        reloads.withLock { r in
            r.failed += 1
            r.lastError = message
            r.lastAttemptMillis = MonotonicClock.wallMillis()
        }
        log.log(.error, "reload", "the pipeline was not reloaded; the running one stays:\n" + message)
    }

    /// How reloads went so far.
    public var reloadStatus: ReloadStatus { reloads.withLock { $0 } }

    private func fail(_ component: String, _ message: String) {
        failures.withLock { $0.append("\(component): \(message)") }
        log.log(.error, component, message)
    }

    private func context(for component: PlannedComponent, in plan: PipelinePlan, metrics: ComponentMetrics) -> StageContext {
        let settings = plan.document.settings
        return StageContext(id: component.id, settings: settings, once: once,
                            stateDirectory: settings.dataDir + "/state/" + component.id, metrics: metrics, log: log,
                            pipelineDirectory: plan.pipelineDirectory, awsServices: awsServices, clock: clock)
    }

    // MARK: Running

    /// Runs until every source ended (`--once`) or a stop was requested and everything drained.
    public func run() async -> RunSummary {
        let started = MonotonicClock.nanos()
        let initial = install(plan)
        let ticker = startTicker()
        await supervise(initial)
        ticker?.cancel()
        finalizeSources()
        return summary(since: started)
    }

    /// Live mode: a wall-clock tick a second to every stage input, for time-based flushes. Ticks
    /// go only where there is room: a busy stage does not need reminding.
    private func startTicker() -> Task<Void, Never>? {
        guard !once else { return nil }
        return Task { [self] in
            while !Task.isCancelled {
                await self.clock.sleep(milliseconds: 1000)
                let now = self.clock.nowMillis()
                for channel in self.tickedChannels.withLock({ Array($0.values) }) { _ = channel.trySend(.tick(now)) }
            }
        }
    }

    /// Runs the first plan's tasks and applies reloads as they come, until every task ended
    /// (reload requests end with the last task, or with a stop).
    private func supervise(_ initial: [@Sendable () async -> Void]) async {
        await withTaskGroup(of: Void.self) { group in
            for task in initial { spawn(task, in: &group) }
            if runningTasks.load(ordering: .sequentiallyConsistent) == 0 { reloadContinuation.finish() }
            for await plan in reloadRequests {
                for task in apply(plan) { spawn(task, in: &group) }
            }
        }
    }

    /// Every sink is done: sources save their final positions.
    private func finalizeSources() {
        for box in finishedSources.withLock({ Array($0.values) }) { box.source.finalize() }
    }

    /// Each component's counters, the run's duration and the failures.
    private func summary(since started: Int64) -> RunSummary {
        RunSummary(
            components: metrics.map {
                .init(id: $0.id, type: $0.type, section: $0.section, eventsIn: $0.eventsIn, eventsOut: $0.eventsOut,
                      bytesIn: $0.bytesIn, bytesOut: $0.bytesOut, errors: $0.errors, seconds: $0.seconds, damaged: $0.damaged)
            },
            seconds: Double(MonotonicClock.nanos() - started) / 1e9,
            failures: failures.withLock { $0 })
    }

    /// Adds a task; when the last one ends (every component finished by itself), no reload can
    /// bring the pipeline back and the run ends.
    private func spawn(_ task: @escaping @Sendable () async -> Void, in group: inout TaskGroup<Void>) {
        runningTasks.wrappingAdd(1, ordering: .sequentiallyConsistent)
        group.addTask { [self] in
            await task()
            if runningTasks.wrappingSubtract(1, ordering: .sequentiallyConsistent).newValue == 0 { reloadContinuation.finish() }
        }
    }

    /// Builds and wires the first plan; returns the tasks that run it.
    private func install(_ plan: PipelinePlan) -> [@Sendable () async -> Void] {
        var live: [String: LiveComponent] = [:]
        let metricsByID = graph.withLock { $0.metricsByID }
        for component in plan.components {
            live[component.id] = makeLive(component, plan: plan, metrics: metricsByID[component.id]!, adoptSpool: true)
        }
        wire(plan, live)
        graph.withLock { $0.live = live }
        if isStopping { for instance in live.values { instance.output?.requestStop() } }
        return plan.components.flatMap { tasks(for: live[$0.id]!, plan: plan, predecessor: nil) }
    }

    /// Swaps in a new plan (see the type's documentation); returns the tasks of what it starts.
    private func apply(_ new: PipelinePlan) -> [@Sendable () async -> Void] {
        guard !isStopping else { return [] }
        let (old, live, metricsByID) = graph.withLock { ($0.plan, $0.live, $0.metricsByID) }
        let diff = PipelineDiff(old: old, new: new)
        var next: [String: LiveComponent] = [:]
        var nextMetrics: [String: ComponentMetrics] = [:]
        for id in diff.unchanged {
            next[id] = live[id]
            nextMetrics[id] = metricsByID[id]
        }
        var started: [LiveComponent] = []
        for component in new.components where next[component.id] == nil {
            let previous = live[component.id]
            let sameKind = previous.map { $0.component.declaration.type == component.declaration.type
                && $0.component.declaration.section == component.declaration.section } ?? false
            let metrics = sameKind ? metricsByID[component.id]! :
                ComponentMetrics(id: component.id, type: component.declaration.type, section: component.declaration.section.singular)
            nextMetrics[component.id] = metrics
            let drainingBefore = graph.withLock { $0.draining[component.id] != nil }
            let instance = makeLive(component, plan: new, metrics: metrics, adoptSpool: previous == nil && !drainingBefore)
            next[component.id] = instance
            started.append(instance)
        }
        let retiring = live.filter { next[$0.key] !== $0.value }.map(\.value)
        wire(new, next)
        var tasks: [@Sendable () async -> Void] = []
        var predecessors: [String: Completion] = [:]
        graph.withLock { g in
            for instance in retiring {
                instance.retired.store(true, ordering: .sequentiallyConsistent)
                g.draining[instance.component.id] = instance.done
            }
            for instance in started { predecessors[instance.component.id] = g.draining[instance.component.id] }
            g.plan = new
            g.live = next
            g.metricsByID = nextMetrics
        }
        for instance in retiring {
            if let output = instance.output {
                output.requestStop()
                tasks.append { [self] in await retireSource(instance) }
            }
        }
        for instance in started {
            tasks += self.tasks(for: instance, plan: new, predecessor: predecessors[instance.component.id])
        }
        if isStopping { for instance in started { instance.output?.requestStop() } }
        reloads.withLock { r in
            r.succeeded += 1
            r.lastError = nil
            r.lastAttemptMillis = MonotonicClock.wallMillis()
        }
        log.log(.info, "reload", "reloaded \(new.document.file): " + diff.summary)
        return tasks
    }

    /// The pieces of one running component instance.
    private func makeLive(_ component: PlannedComponent, plan: PipelinePlan, metrics: ComponentMetrics, adoptSpool: Bool) -> LiveComponent {
        guard component.declaration.section != .sources else {
            let router = OutputRouter(tap: taps.point(for: component.id))
            return LiveComponent(component: component, metrics: metrics, inbox: nil, spool: nil, router: router,
                                 output: SourceOutput(router: router, metrics: metrics))
        }
        let buffer = component.stage.buffer
        let channel = BoundedChannel<StageMessage>(capacity: buffer.maxBatches ?? plan.document.settings.bufferBatches,
                                                   producers: buffer.isolate ? 1 : 0)
        var spool: DiskSpool?
        if buffer.isolate {
            do {
                spool = try DiskSpool(directory: plan.document.settings.dataDir + "/spool/" + component.id,
                                      maxBytes: buffer.maxSpoolBytes.bytes, retryBackoff: buffer.retryBackoff.milliseconds,
                                      channel: channel, upstreamProducers: 0, log: log, component: component.id,
                                      metrics: metrics, adoptExisting: adoptSpool, clock: clock)
            } catch {
                fail(component.id, "\(error)")
            }
        }
        let inbox = StageInbox(channel: channel, dropWhenFull: buffer.whenFull == .dropNewest, metrics: metrics, spool: spool)
        return LiveComponent(component: component, metrics: metrics, inbox: inbox, spool: spool,
                             router: component.declaration.section == .sinks ? nil : OutputRouter(tap: taps.point(for: component.id)),
                             output: nil)
    }

    /// Points every component's outputs at the inboxes `plan` says read them. A component fed
    /// twice by the same input gets it once.
    private func wire(_ plan: PipelinePlan, _ live: [String: LiveComponent]) {
        var routes: [String: OutputRouter.Routes] = [:]
        for component in plan.components where component.declaration.section != .sources {
            guard let inbox = live[component.id]?.inbox else { continue }
            var seen = Set<String>()
            for input in component.declaration.inputs where seen.insert(input.text).inserted {
                routes[input.component, default: [:]][input.port, default: []].append(inbox)
            }
        }
        for component in plan.components {
            live[component.id]?.router?.replace(with: routes[component.id] ?? [:])
        }
    }

    /// What runs one instance: its stage (after `predecessor`, the instance it replaces, is
    /// done), and an isolated sink's spool feeder.
    private func tasks(for instance: LiveComponent, plan: PipelinePlan, predecessor: Completion?) -> [@Sendable () async -> Void] {
        let context = self.context(for: instance.component, in: plan, metrics: instance.metrics)
        var tasks: [@Sendable () async -> Void] = []
        if let spool = instance.spool { tasks.append { await spool.feed() } }
        if let channel = instance.inbox?.channel {
            tickedChannels.withLock { $0[ObjectIdentifier(channel)] = channel }
        }
        switch instance.component.stage.factory {
        case .source(let make):
            tasks.append { [self] in
                await predecessor?.wait()
                await runSource(make: make, context: context, instance: instance)
            }
        case .transform(let make):
            tasks.append { [self] in
                await predecessor?.wait()
                await runTransform(make: make, parallel: instance.component.stage.parallel, context: context,
                                   input: instance.inbox!.channel, router: instance.router!)
                finished(instance)
            }
        case .sink(let make):
            tasks.append { [self] in
                await predecessor?.wait()
                await runSink(make: make, context: context, input: instance.inbox!.channel)
                finished(instance)
            }
        }
        return tasks
    }

    private func finished(_ instance: LiveComponent) {
        if let channel = instance.inbox?.channel { _ = tickedChannels.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) } }
        instance.done.signal()
    }

    private func runSource(make: @escaping @Sendable (StageContext) throws -> any Source, context: StageContext,
                           instance: LiveComponent) async {
        let output = instance.output!
        if isStopping { output.requestStop() }
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let thread = Thread {
                context.metrics.markStarted()
                do {
                    let source = try make(context)
                    self.finishedSources.withLock { $0[ObjectIdentifier(instance)] = SourceBox(source: source) }
                    try source.run(output)
                } catch {
                    self.fail(context.id, "\(error)")
                }
                context.metrics.markFinished()
                instance.router?.close()
                done.resume()
            }
            thread.name = "source:\(context.id)"
            thread.stackSize = 1 << 20
            thread.start()
        }
        instance.threadEnded.signal()
        if !instance.retired.load(ordering: .sequentiallyConsistent) { instance.done.signal() }
    }

    /// A source a reload changed or removed: once its thread ended and what it sent was
    /// acknowledged (or `shutdown_timeout` passed), its final positions are saved; only then may
    /// a successor with the same id start reading from them.
    private func retireSource(_ instance: LiveComponent) async {
        await instance.threadEnded.wait()
        let deadline = MonotonicClock.nanos() + plan.document.settings.shutdownTimeout.milliseconds * 1_000_000
        while instance.output!.inFlight > 0 && MonotonicClock.nanos() < deadline {
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        let box = finishedSources.withLock { $0.removeValue(forKey: ObjectIdentifier(instance)) }
        box?.source.finalize()
        instance.done.signal()
    }

    private func runTransform(make: @Sendable (StageContext) throws -> any Transform, parallel: ParallelTransformSpec?,
                              context: StageContext, input: BoundedChannel<StageMessage>, router: OutputRouter) async {
        context.metrics.markStarted()
        defer {
            context.metrics.markFinished()
            router.close()
        }
        let log = self.log
        @Sendable func report(_ error: any Error) {
            context.metrics.recordError()
            log.log(.error, context.id, "\(error)")
        }
        var single: (any Transform)?
        var pool: TransformWorkerPool?
        do {
            // Several instances only where the kind's are independent and more than one worker is asked for.
            if let parallel, case let workers = parallel.workers.resolved(), workers > 1 {
                pool = try TransformWorkerPool(parallel, workers: workers, context: context)
            } else {
                single = try make(context)
            }
        } catch {
            fail(context.id, "\(error)")
            for await message in input { if case .batch(let b) = message { b.acks.release(success: false) } }
            return
        }
        if let pool {
            await pool.run(input: input, metrics: context.metrics, report: report) { [self] output, inherited in
                await deliver(output, inheriting: inherited, metrics: context.metrics, router: router)
            }
            return
        }
        let transform = single!
        let holds = transform.holdsAcknowledgements
        for await message in input {
            var output = TransformOutput()
            var acks = Acknowledgements()
            do {
                switch message {
                case .batch(let batch):
                    context.metrics.recordIn(events: batch.count, bytes: batch.payload.byteCount)
                    acks = batch.acks
                    try transform.process(batch, into: &output)
                case .tick(let now):
                    try transform.tick(nowMillis: now, into: &output)
                }
            } catch {
                report(error)
            }
            await deliver(output, inheriting: holds ? nil : acks, metrics: context.metrics, router: router)
        }
        var output = TransformOutput()
        do { try transform.finish(into: &output) } catch { report(error) }
        await deliver(output, inheriting: holds ? nil : Acknowledgements(), metrics: context.metrics, router: router)
    }

    /// Sends what a transform emitted. With `inheriting`, the runtime owns acknowledgement: the
    /// input's tokens move to the outputs, or are released when nothing went out.
    private func deliver(_ output: TransformOutput, inheriting: Acknowledgements?,
                         metrics: ComponentMetrics, router: OutputRouter) async {
        for (port, batch) in output.emitted where batch.count > 0 { router.tap.offer(batch.payload, port: port) }
        let (downstream, generation) = router.acquire()
        defer { router.release(generation) }
        var emitted = output.emitted.filter { $0.batch.count > 0 || !$0.batch.acks.isEmpty }
        if let inherited = inheriting {
            for i in emitted.indices { emitted[i].batch.acks = Acknowledgements() }
            let routed = emitted.filter { !(downstream[$0.port] ?? []).isEmpty && $0.batch.count > 0 }
            if routed.isEmpty {
                inherited.release()
            } else {
                if routed.count > 1 { inherited.retain(routed.count - 1) }
                emitted = routed.map { (port: $0.port, batch: Batch($0.batch.payload, acks: inherited)) }
            }
            if routed.isEmpty { return }
        }
        for (port, batch) in emitted {
            let targets = downstream[port] ?? []
            metrics.recordOut(events: batch.count, bytes: batch.payload.byteCount)
            guard !targets.isEmpty else {
                batch.acks.release()
                continue
            }
            if targets.count > 1 { batch.acks.retain(targets.count - 1) }
            for target in targets { await target.send(.batch(batch)) }
        }
    }

    private func runSink(make: @Sendable (StageContext) throws -> any Sink, context: StageContext,
                         input: BoundedChannel<StageMessage>) async {
        context.metrics.markStarted()
        defer { context.metrics.markFinished() }
        let sink: any Sink
        do {
            sink = try make(context)
            try await sink.open()
        } catch {
            fail(context.id, "\(error)")
            for await message in input { if case .batch(let b) = message { b.acks.release(success: false) } }
            return
        }
        for await message in input {
            switch message {
            case .batch(let batch):
                context.metrics.recordIn(events: batch.count, bytes: batch.payload.byteCount)
                do { try await sink.write(batch) } catch {
                    // Not written: the batch is failed (no acknowledgement) and the run knows data was lost.
                    context.metrics.recordDamage()
                    log.log(.error, context.id, "write failed: \(error)")
                    batch.acks.release(success: false)
                }
            case .tick(let now):
                do { try await sink.tick(nowMillis: now) } catch {
                    context.metrics.recordError()
                    log.log(.error, context.id, "\(error)")
                }
            }
        }
        do { try await sink.finish() } catch {
            context.metrics.recordError()
            fail(context.id, "flush failed: \(error)")
        }
    }
}


/// One running instance of a component.
final class LiveComponent: Sendable {
    let component: PlannedComponent
    let metrics: ComponentMetrics
    /// Transforms and sinks: where their input arrives.
    let inbox: StageInbox?
    let spool: DiskSpool?
    /// Sources and transforms: where their output goes.
    let router: OutputRouter?
    let output: SourceOutput?
    /// A reload replaced or removed it: it drains, and a successor waits for ``done``.
    let retired = Atomic<Bool>(false)
    /// A source's thread has ended.
    let threadEnded = Completion()
    /// Finished: drained, flushed, positions saved.
    let done = Completion()

    init(component: PlannedComponent, metrics: ComponentMetrics, inbox: StageInbox?, spool: DiskSpool?, router: OutputRouter?,
         output: SourceOutput?) {
        self.component = component
        self.metrics = metrics
        self.inbox = inbox
        self.spool = spool
        self.router = router
        self.output = output
    }
}

/// A one-shot signal async code can wait for.
final class Completion: Sendable {
    private let state = Mutex<(done: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func signal() {
        let waiters = state.withLock { s in
            s.done = true
            defer { s.waiters = [] }
            return s.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s in
                if s.done { return true }
                s.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }
}

/// Hands a source object to the runner's final step. The source thread has ended by then, so
/// only one thread ever touches it at a time.
private struct SourceBox: @unchecked Sendable {
    let source: any Source
}
