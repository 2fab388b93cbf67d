import Dispatch
import Synchronization
import TrailwatchConfig
import TrailwatchCore

/// The part of a transform with independent instances (see ``TransformKind/instancesAreIndependent``)
/// that must see every batch, in input order: aggregations across batches, held acknowledgements.
///
/// Whichever instance handled a batch, the runtime hands what it emitted here, one batch at a time
/// and in the order the batches arrived, before sending it on. Keep the work here small: it is the
/// part that does not run in parallel.
public protocol TransformSequencer: AnyObject {
    /// `output` is what an instance emitted for `batch` (also when it threw): fold it into the
    /// state and change it in place — take datapoints out, add batches, attach acknowledgements.
    func sequence(_ batch: Batch, _ output: inout TransformOutput) throws
    /// A wall-clock tick in live mode, as ``Transform/tick(nowMillis:into:)``.
    func tick(nowMillis: Int64, into output: inout TransformOutput) throws
    /// The input has ended, as ``Transform/finish(into:)``.
    func finish(into output: inout TransformOutput) throws
    /// True when it keeps the batches' acknowledgements itself (see ``Transform/holdsAcknowledgements``).
    var holdsAcknowledgements: Bool { get }
}

extension TransformSequencer {
    public func tick(nowMillis: Int64, into output: inout TransformOutput) throws {}
    public func finish(into output: inout TransformOutput) throws {}
    public var holdsAcknowledgements: Bool { false }
}

extension TransformOutput {
    /// Takes out the batches emitted to `port` (nil: the main output), in the order they were emitted.
    public mutating func take(port: String?) -> [Batch] {
        var taken: [Batch] = []
        emitted.removeAll { entry in
            guard entry.port == port else { return false }
            taken.append(entry.batch)
            return true
        }
        return taken
    }

    /// Gives every batch emitted so far a claim on `acks` (one hold each): they are released as
    /// each of those batches is.
    public mutating func shareAcknowledgements(_ acks: Acknowledgements) {
        for index in emitted.indices {
            acks.retain()
            emitted[index].batch.acks.merge(acks)
        }
    }
}

/// How the runtime may run a transform kind whose instances are independent.
public struct ParallelTransformSpec: Sendable {
    /// The `workers:` setting.
    public var workers: TransformWorkers
    /// One independent instance (``TransformKind/make(_:_:)``).
    public var makeInstance: @Sendable (StageContext) throws -> any Transform
    /// The in-order part all instances share, if the kind has one.
    public var makeSequencer: @Sendable (StageContext) throws -> (any TransformSequencer)?
}

/// One instance and its sequencer as one transform: what runs when there is a single worker (and
/// in `trailwatch test`), so both ways go through the same code.
final class SequencedTransform: Transform {
    let instance: any Transform
    let sequencer: any TransformSequencer

    init(instance: any Transform, sequencer: any TransformSequencer) {
        self.instance = instance
        self.sequencer = sequencer
    }

    /// `instance` alone when there is no sequencer.
    static func combining(_ instance: any Transform, _ sequencer: (any TransformSequencer)?) -> any Transform {
        sequencer.map { SequencedTransform(instance: instance, sequencer: $0) } ?? instance
    }

    var holdsAcknowledgements: Bool { sequencer.holdsAcknowledgements }

    func process(_ batch: Batch, into output: inout TransformOutput) throws {
        // The sequencer sees every batch, also one the instance failed on: it may hold its acknowledgements.
        var failure: (any Error)?
        do { try instance.process(batch, into: &output) } catch { failure = error }
        try sequencer.sequence(batch, &output)
        if let failure { throw failure }
    }

    func tick(nowMillis: Int64, into output: inout TransformOutput) throws {
        try sequencer.tick(nowMillis: nowMillis, into: &output)
    }

    func finish(into output: inout TransformOutput) throws {
        try sequencer.finish(into: &output)
    }
}

/// Several independent instances of one transform, each on its own thread.
///
/// Batches go to the instances in turn (round-robin); a collector takes the results in the order
/// the batches arrived — through the sequencer, if any — and sends them on, so what leaves is
/// exactly what one instance would have emitted, in the same order on every output. At most one
/// batch per instance is in flight beyond the input buffer: the dispatcher waits for the collector.
/// Only batches cross threads; instances never see a tick or a finish (they keep no state).
final class TransformWorkerPool: Sendable {
    private let lanes: [TransformLane]
    private let sequencer: SequencerBox?

    init(_ spec: ParallelTransformSpec, workers: Int, context: StageContext) throws {
        lanes = try (0..<workers).map { index in
            TransformLane(instance: try spec.makeInstance(context), label: "transform:\(context.id)#\(index)")
        }
        sequencer = try spec.makeSequencer(context).map(SequencerBox.init)
    }

    /// What the collector hands on: a batch's result or a tick (which only a sequencer needs).
    private enum Collected: Sendable {
        case batch(TransformJob)
        case tick(Int64)
    }

    /// Processes `input` to its end, then finishes the sequencer. `report` gets each error (in
    /// input order); `deliver` sends an output on, with the acknowledgements it inherits (nil: the
    /// transform keeps them itself).
    func run(input: BoundedChannel<StageMessage>, metrics: ComponentMetrics,
             report: @escaping @Sendable (any Error) -> Void,
             deliver: @escaping @Sendable (TransformOutput, Acknowledgements?) async -> Void) async {
        // The collector holds one job while it waits for it; the channel the rest.
        let collected = BoundedChannel<Collected>(capacity: max(1, lanes.count - 1), producers: 1)
        let lanes = self.lanes
        let wantsTicks = sequencer != nil
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                var next = 0
                for await message in input {
                    switch message {
                    case .batch(let batch):
                        metrics.recordIn(events: batch.count, bytes: batch.payload.byteCount)
                        let job = TransformJob(batch)
                        await collected.send(.batch(job))
                        lanes[next].submit(job)
                        next = next + 1 == lanes.count ? 0 : next + 1
                    case .tick(let now):
                        if wantsTicks { await collected.send(.tick(now)) }
                    }
                }
                collected.producerFinished()
            }
            let holds = sequencer?.sequencer.holdsAcknowledgements ?? false
            for await item in collected {
                var output: TransformOutput
                var inherited: Acknowledgements?
                switch item {
                case .batch(let job):
                    let result = await job.result()
                    output = result.output
                    if let error = result.error { report(error) }
                    if let sequencer {
                        do { try sequencer.sequencer.sequence(job.batch, &output) } catch { report(error) }
                    }
                    inherited = holds ? nil : job.batch.acks
                case .tick(let now):
                    output = TransformOutput()
                    do { try sequencer?.sequencer.tick(nowMillis: now, into: &output) } catch { report(error) }
                    inherited = holds ? nil : Acknowledgements()
                }
                await deliver(output, inherited)
            }
            if let sequencer {
                var output = TransformOutput()
                do { try sequencer.sequencer.finish(into: &output) } catch { report(error) }
                await deliver(output, holds ? nil : Acknowledgements())
            }
        }
    }
}

/// One instance and the serial queue that runs it: only that queue ever touches the instance,
/// one batch at a time.
private final class TransformLane: @unchecked Sendable {
    private let instance: any Transform
    private let queue: DispatchQueue

    init(instance: any Transform, label: String) {
        self.instance = instance
        queue = DispatchQueue(label: label)
    }

    func submit(_ job: TransformJob) {
        queue.async { [self] in
            var output = TransformOutput()
            var failure: (any Error)?
            do { try instance.process(job.batch, into: &output) } catch { failure = error }
            job.complete(TransformJob.Result(output: output, error: failure))
        }
    }
}

/// The sequencer, touched only by the collector task (one batch at a time).
private final class SequencerBox: @unchecked Sendable {
    let sequencer: any TransformSequencer
    init(_ sequencer: any TransformSequencer) { self.sequencer = sequencer }
}

/// One batch on its way through an instance: completed on the instance's thread, awaited by the collector.
private final class TransformJob: Sendable {
    struct Result: Sendable {
        var output: TransformOutput
        var error: (any Error)?
    }

    private enum State {
        case pending
        case awaited(CheckedContinuation<Result, Never>)
        case done(Result)
    }

    let batch: Batch
    private let state = Mutex<State>(.pending)

    init(_ batch: Batch) { self.batch = batch }

    func complete(_ result: Result) {
        let waiter: CheckedContinuation<Result, Never>? = state.withLock { state in
            if case .awaited(let continuation) = state {
                state = .pending
                return continuation
            }
            state = .done(result)
            return nil
        }
        waiter?.resume(returning: result)
    }

    /// The result, once the instance is done (awaited once).
    func result() async -> Result {
        await withCheckedContinuation { (continuation: CheckedContinuation<Result, Never>) in
            let ready: Result? = state.withLock { state in
                if case .done(let result) = state {
                    state = .pending
                    return result
                }
                state = .awaited(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
