import Synchronization
import TrailwatchCore

/// Where one component's output goes: for each output port (nil is the main one), the inboxes of
/// the stages that read it.
///
/// A reload rewires a running pipeline, so the routes can be replaced while batches flow. Each
/// distinct inbox counts its producers: the router adds itself as a producer of inboxes it starts
/// feeding at once, and finishes as a producer of inboxes it stops feeding only when no send that
/// began with the old routes is still under way — so a stage that is drained on reload sees its
/// input end exactly after the last batch meant for it.
final class OutputRouter: Sendable {
    typealias Routes = [String?: [StageInbox]]

    private struct State {
        var routes: Routes
        var generation = 0
        /// Sends under way, by the generation of the routes they use.
        var users: [Int: Int] = [:]
        /// Inboxes to finish once the generation's sends are done.
        var pendingFinish: [Int: [StageInbox]] = [:]
        var closed = false
    }

    private let state: Mutex<State>
    /// Where taps attached to the component sample what it emits.
    let tap: TapPoint

    /// Starts with `routes`, counting as a producer of each of their inboxes.
    init(_ routes: Routes = [:], tap: TapPoint = TapPoint(component: "")) {
        for inbox in Self.distinct(routes) { inbox.addProducer() }
        state = Mutex(State(routes: routes))
        self.tap = tap
    }

    static func distinct(_ routes: Routes) -> [StageInbox] {
        var seen = Set<ObjectIdentifier>()
        var out: [StageInbox] = []
        for inboxes in routes.values {
            for inbox in inboxes where seen.insert(ObjectIdentifier(inbox)).inserted { out.append(inbox) }
        }
        return out
    }

    /// The routes for one send; pair with ``release(_:)``.
    func acquire() -> (routes: Routes, generation: Int) {
        state.withLock { s in
            s.users[s.generation, default: 0] += 1
            return (s.routes, s.generation)
        }
    }

    func release(_ generation: Int) {
        let finish: [StageInbox] = state.withLock { s in
            let left = (s.users[generation] ?? 1) - 1
            if left > 0 {
                s.users[generation] = left
                return []
            }
            s.users[generation] = nil
            return s.pendingFinish.removeValue(forKey: generation) ?? []
        }
        for inbox in finish { inbox.producerFinished() }
    }

    /// Swaps in new routes (a reload).
    func replace(with routes: Routes) {
        let finishNow: [StageInbox] = state.withLock { s in
            guard !s.closed else { return [] }
            let old = Self.distinct(s.routes)
            let new = Self.distinct(routes)
            let oldIDs = Set(old.map(ObjectIdentifier.init))
            let newIDs = Set(new.map(ObjectIdentifier.init))
            for inbox in new where !oldIDs.contains(ObjectIdentifier(inbox)) { inbox.addProducer() }
            let dropped = old.filter { !newIDs.contains(ObjectIdentifier($0)) }
            let previous = s.generation
            s.routes = routes
            s.generation += 1
            if (s.users[previous] ?? 0) > 0 {
                s.pendingFinish[previous, default: []].append(contentsOf: dropped)
                return []
            }
            return dropped
        }
        for inbox in finishNow { inbox.producerFinished() }
    }

    /// The component will send nothing more: it stops being a producer of every inbox.
    func close() {
        let finish: [StageInbox] = state.withLock { s in
            guard !s.closed else { return [] }
            s.closed = true
            return Self.distinct(s.routes)
        }
        for inbox in finish { inbox.producerFinished() }
    }
}
