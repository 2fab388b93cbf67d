import Foundation
import Synchronization
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStore

/// A detector in a fleet (`shared_store: postgres://…`): every instance runs it over the same
/// input and keeps its state warm, but only the holder of its lease emits. The others hold back
/// what they found (bounded: the last hour, at most 10,000 events); when one takes over — within
/// a second of the holder dying — it emits what it held back that the store does not have yet,
/// so nothing is missed and nothing the old holder stored is repeated.
final class LeaseGate: Sendable {
    struct State {
        var holding = false
        var heldBack: [StructuredEvent] = []
        var released: [StructuredEvent] = []
    }

    static let heldBackLimit = 10_000
    static let heldBackSpan: Int64 = 3_600_000

    private let state = Mutex(State())
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(location: StoreLocation, lease: String, kind: EventKind, log: RuntimeLog, component: String, interval: Int64 = 1000,
         clock: any StageClock = SystemClock()) {
        let loop = Task { [self] in
            await run(location: location, lease: lease, kind: kind, log: log, component: component, interval: interval, clock: clock)
        }
        task.withLock { $0 = loop }
    }

    var isHolding: Bool { state.withLock { $0.holding } }

    /// Events to emit now: all of them while holding; none otherwise (they are held back).
    func pass(_ events: [StructuredEvent]) -> [StructuredEvent] {
        state.withLock { s in
            if s.holding { return events }
            s.heldBack += events
            if let newest = s.heldBack.last?.timestamp { s.heldBack.removeAll { $0.timestamp < newest - Self.heldBackSpan } }
            if s.heldBack.count > Self.heldBackLimit { s.heldBack.removeFirst(s.heldBack.count - Self.heldBackLimit) }
            return []
        }
    }

    /// Held-back events found missing from the store when this instance took over.
    func drainReleased() -> [StructuredEvent] {
        state.withLock { s in
            defer { s.released = [] }
            return s.released
        }
    }

    func stop() { task.withLock { $0?.cancel() } }

    private func run(location: StoreLocation, lease: String, kind: EventKind, log: RuntimeLog, component: String, interval: Int64, clock: any StageClock) async {
        var leases: (any LeaseHolding)?
        var warned = false
        while !Task.isCancelled {
            do {
                if leases == nil { leases = try await StoreOpener.leases(location) }
                let held = try await leases!.hold(lease)
                let wasHolding = state.withLock { $0.holding }
                if held && !wasHolding {
                    try await takeOver(location: location, kind: kind)
                    log.log(.info, component, "took the lease '\(lease)': this instance emits now")
                } else if !held && wasHolding {
                    state.withLock { $0.holding = false }
                }
                warned = false
            } catch {
                if !warned { log.log(.warning, component, "lease '\(lease)': \(error); retrying") }
                warned = true
                state.withLock { $0.holding = false }
                if let open = leases { await open.close() }
                leases = nil
            }
            await clock.sleep(milliseconds: interval)
        }
        if let open = leases { await open.close() }
    }

    /// Releases the held-back events the store lacks, then starts emitting.
    private func takeOver(location: StoreLocation, kind: EventKind) async throws {
        let candidates = state.withLock { $0.heldBack }
        var missing: [StructuredEvent] = []
        if let first = candidates.map(\.timestamp).min(), let last = candidates.map(\.timestamp).max() {
            let store = try await StoreOpener.open(location, access: .readOnly)
            let stored = try await store.events(kinds: [kind.rawValue], start: first, end: last + 1, limit: Self.heldBackLimit * 2)
            await store.close()
            let present = Set(stored.map { StoreConventions.eventKey(StructuredEvent(kind: kind, timestamp: $0.timestamp, key: $0.key, body: Array($0.body.utf8))) })
            missing = candidates.filter { !present.contains(StoreConventions.eventKey($0)) }
        }
        state.withLock { s in
            s.released += missing
            s.heldBack = []
            s.holding = true
        }
    }
}
