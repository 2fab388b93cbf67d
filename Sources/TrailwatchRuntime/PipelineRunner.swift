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
public final class PipelineRunner: Sendable {
    public let plan: PipelinePlan
    public let once: Bool
    public let log: RuntimeLog
    public let metrics: [ComponentMetrics]
    private let outputs = Mutex<[SourceOutput]>([])
    private let failures = Mutex<[String]>([])
    private let stopping = Atomic<Bool>(false)
    /// Sources whose ``Source/finalize()`` runs once the sinks are done.
    private let finishedSources = Mutex<[SourceBox]>([])

    public init(plan: PipelinePlan, once: Bool, log: RuntimeLog) {
        self.plan = plan
        self.once = once
        self.log = log
        self.metrics = plan.components.map {
            ComponentMetrics(id: $0.id, type: $0.declaration.type, section: $0.declaration.section.singular)
        }
    }

    /// Asks sources to stop; the pipeline then drains and flushes. Safe from any thread, repeatable.
    public func requestStop() {
        stopping.store(true, ordering: .relaxed)
        for output in outputs.withLock({ $0 }) { output.requestStop() }
    }

    public var isStopping: Bool { stopping.load(ordering: .relaxed) }

    /// Component failures so far (for `/health`).
    public var currentFailures: [String] { failures.withLock { $0 } }

    private func fail(_ component: String, _ message: String) {
        failures.withLock { $0.append("\(component): \(message)") }
        log.log(.error, component, message)
    }

    private func context(for component: PlannedComponent, metrics: ComponentMetrics) -> StageContext {
        let settings = plan.document.settings
        return StageContext(id: component.id, settings: settings, once: once,
                            stateDirectory: settings.dataDir + "/state/" + component.id, metrics: metrics, log: log,
                            pipelineDirectory: plan.pipelineDirectory)
    }

    /// Runs until every source ended (`--once`) or a stop was requested and everything drained.
    public func run() async -> RunSummary {
        let started = MonotonicClock.nanos()
        let capacity = plan.document.settings.bufferBatches
        let metricsByID = Dictionary(uniqueKeysWithValues: metrics.map { ($0.id, $0) })
        var channels: [String: BoundedChannel<StageMessage>] = [:]
        var inboxes: [String: StageInbox] = [:]
        var spools: [DiskSpool] = []
        for component in plan.components where component.declaration.section != .sources {
            let producers = Set(component.declaration.inputs.map(\.component)).count
            let buffer = component.stage.buffer
            let channel = BoundedChannel<StageMessage>(capacity: buffer.maxBatches ?? capacity,
                                                       producers: buffer.isolate ? 1 : producers)
            channels[component.id] = channel
            var spool: DiskSpool?
            if buffer.isolate {
                do {
                    spool = try DiskSpool(directory: plan.document.settings.dataDir + "/spool/" + component.id,
                                          maxBytes: buffer.maxSpoolBytes.bytes, retryBackoff: buffer.retryBackoff.milliseconds,
                                          channel: channel, upstreamProducers: producers, log: log, component: component.id,
                                          metrics: metricsByID[component.id]!)
                    spools.append(spool!)
                } catch {
                    fail(component.id, "\(error)")
                }
            }
            inboxes[component.id] = StageInbox(channel: channel, dropWhenFull: buffer.whenFull == .dropNewest,
                                               metrics: metricsByID[component.id]!, spool: spool)
        }
        // Who reads each (component, port): a component fed twice by the same input gets it once.
        var downstream: [String: [String?: [StageInbox]]] = [:]
        for component in plan.components where component.declaration.section != .sources {
            var seen = Set<String>()
            for input in component.declaration.inputs where seen.insert(input.text).inserted {
                downstream[input.component, default: [:]][input.port, default: []].append(inboxes[component.id]!)
            }
        }

        // Ticks go only where there is room: a busy stage does not need reminding.
        let allChannels = Array(channels.values)
        let ticker: Task<Void, Never>? = once ? nil : Task {
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: 1_000_000_000)
                let now = MonotonicClock.wallMillis()
                for channel in allChannels { _ = channel.trySend(.tick(now)) }
            }
        }
        await withTaskGroup(of: Void.self) { group in
            for spool in spools { group.addTask { await spool.feed() } }
            for component in plan.components {
                let metrics = metricsByID[component.id]!
                let context = self.context(for: component, metrics: metrics)
                let outs = downstream[component.id] ?? [:]
                switch component.stage.factory {
                case .source(let make):
                    let output = SourceOutput(downstream: outs[nil] ?? [], metrics: metrics)
                    outputs.withLock { $0.append(output) }
                    if isStopping { output.requestStop() }
                    group.addTask {
                        await self.runSource(make: make, context: context, output: output, downstream: outs.values.flatMap { $0 })
                    }
                case .transform(let make):
                    let input = channels[component.id]!
                    group.addTask {
                        await self.runTransform(make: make, context: context, input: input, downstream: outs)
                    }
                case .sink(let make):
                    let input = channels[component.id]!
                    group.addTask { await self.runSink(make: make, context: context, input: input) }
                }
            }
        }
        ticker?.cancel()
        for box in finishedSources.withLock({ $0 }) { box.source.finalize() }
        return RunSummary(
            components: metrics.map {
                .init(id: $0.id, type: $0.type, section: $0.section, eventsIn: $0.eventsIn, eventsOut: $0.eventsOut,
                      bytesIn: $0.bytesIn, bytesOut: $0.bytesOut, errors: $0.errors, seconds: $0.seconds, damaged: $0.damaged)
            },
            seconds: Double(MonotonicClock.nanos() - started) / 1e9,
            failures: failures.withLock { $0 })
    }

    private func runSource(make: @escaping @Sendable (StageContext) throws -> any Source, context: StageContext,
                           output: SourceOutput, downstream: [StageInbox]) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let thread = Thread {
                context.metrics.markStarted()
                do {
                    let source = try make(context)
                    self.finishedSources.withLock { $0.append(SourceBox(source: source)) }
                    try source.run(output)
                } catch {
                    self.fail(context.id, "\(error)")
                }
                context.metrics.markFinished()
                for channel in downstream { channel.producerFinished() }
                done.resume()
            }
            thread.name = "source:\(context.id)"
            thread.stackSize = 1 << 20
            thread.start()
        }
    }

    private func runTransform(make: @Sendable (StageContext) throws -> any Transform, context: StageContext,
                              input: BoundedChannel<StageMessage>, downstream: [String?: [StageInbox]]) async {
        context.metrics.markStarted()
        defer {
            context.metrics.markFinished()
            for channels in downstream.values { for c in channels { c.producerFinished() } }
        }
        let transform: any Transform
        do {
            transform = try make(context)
        } catch {
            fail(context.id, "\(error)")
            for await message in input { if case .batch(let b) = message { b.acks.release(success: false) } }
            return
        }
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
                context.metrics.recordError()
                log.log(.error, context.id, "\(error)")
            }
            await deliver(output, inheriting: holds ? nil : acks, metrics: context.metrics, downstream: downstream)
        }
        var output = TransformOutput()
        do { try transform.finish(into: &output) } catch {
            context.metrics.recordError()
            log.log(.error, context.id, "\(error)")
        }
        await deliver(output, inheriting: holds ? nil : Acknowledgements(), metrics: context.metrics, downstream: downstream)
    }

    /// Sends what a transform emitted. With `inheriting`, the runtime owns acknowledgement: the
    /// input's tokens move to the outputs, or are released when nothing went out.
    private func deliver(_ output: TransformOutput, inheriting: Acknowledgements?,
                         metrics: ComponentMetrics, downstream: [String?: [StageInbox]]) async {
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


/// Hands a source object to the runner's final step. The source thread has ended by then, so
/// only one thread ever touches it at a time.
private struct SourceBox: @unchecked Sendable {
    let source: any Source
}
