import Synchronization

/// What a batch carries.
public enum Payload: Sendable {
    case logs(LogBatch)
    case metrics([MetricDatum])
    case events(EventKind, [StructuredEvent])

    public var kind: EventKind {
        switch self {
        case .logs: .log
        case .metrics: .metric
        case .events(let kind, _): kind
        }
    }

    public var count: Int {
        switch self {
        case .logs(let b): b.count
        case .metrics(let m): m.count
        case .events(_, let e): e.count
        }
    }

    /// Approximate payload size in bytes, for self-metrics.
    public var byteCount: Int {
        switch self {
        case .logs(let b): b.messageBytes
        case .metrics(let m): m.count * 64
        case .events(_, let e): e.reduce(0) { $0 + $1.body.count }
        }
    }
}

/// The unit that crosses task boundaries: a payload plus the acknowledgements it owes its sources.
public struct Batch: Sendable {
    public var payload: Payload
    public var acks: Acknowledgements

    public init(_ payload: Payload, acks: Acknowledgements = Acknowledgements()) {
        self.payload = payload
        self.acks = acks
    }

    public var count: Int { payload.count }
}

/// A source's claim on one batch: completes once every sink downstream has durably handled
/// every part of the batch, or reports failure if any part could not be written.
///
/// The count starts at one (the source's own reference). Fan-out retains one per extra branch;
/// each sink releases after a durable write; a transform that drops everything releases too.
public final class AckToken: Sendable {
    private let pending = Atomic<Int>(1)
    private let failed = Atomic<Bool>(false)
    private let completion: @Sendable (_ success: Bool) -> Void
    /// Someone is waiting for this acknowledgement right now (a client's PutLogEvents request),
    /// rather than merely advancing a checkpoint: sinks make such batches durable at once
    /// (grouping whatever else is ready into the same fsync or commit) instead of on their
    /// `sync_interval`.
    public let awaited: Bool

    public init(awaited: Bool = false, completion: @escaping @Sendable (_ success: Bool) -> Void) {
        self.awaited = awaited
        self.completion = completion
    }

    public func retain(_ count: Int = 1) {
        pending.wrappingAdd(count, ordering: .relaxed)
    }

    public func release(success: Bool = true) {
        if !success { failed.store(true, ordering: .relaxed) }
        let (_, remaining) = pending.wrappingSubtract(1, ordering: .acquiringAndReleasing)
        if remaining == 0 {
            completion(!failed.load(ordering: .relaxed))
        }
    }
}

/// The set of tokens a batch must release. Transforms that merge batches merge their sets.
public struct Acknowledgements: Sendable {
    public private(set) var tokens: [AckToken]

    public init(_ tokens: [AckToken] = []) { self.tokens = tokens }

    public var isEmpty: Bool { tokens.isEmpty }

    /// True when a client waits for one of these acknowledgements (see ``AckToken/awaited``).
    public var awaited: Bool { tokens.contains { $0.awaited } }

    /// One more holder for every token (fan-out to another branch).
    public func retain(_ count: Int = 1) { for t in tokens { t.retain(count) } }

    /// This holder is done with every token.
    public func release(success: Bool = true) { for t in tokens { t.release(success: success) } }

    public mutating func merge(_ other: Acknowledgements) { tokens.append(contentsOf: other.tokens) }

    /// Takes the tokens out, leaving this set empty (ownership moves to the caller).
    public mutating func take() -> Acknowledgements {
        defer { tokens = [] }
        return Acknowledgements(tokens)
    }
}
