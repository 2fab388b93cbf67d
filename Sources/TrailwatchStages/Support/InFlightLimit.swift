import Synchronization

/// At most `limit` operations at once, for async code: ``acquire()`` suspends while every slot is
/// taken (backpressure onto the sink's input), ``waitIdle()`` until every slot is free again.
final class InFlightLimit: Sendable {
    private struct State {
        var free: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
        var idleWaiters: [CheckedContinuation<Void, Never>] = []
    }

    let limit: Int
    private let state: Mutex<State>

    init(_ limit: Int) {
        self.limit = max(1, limit)
        state = Mutex(State(free: max(1, limit)))
    }

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { s -> Bool in
                if s.free > 0 {
                    s.free -= 1
                    return true
                }
                s.waiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    func release() {
        let (next, idle): (CheckedContinuation<Void, Never>?, [CheckedContinuation<Void, Never>]) = state.withLock { s in
            // The slot passes straight to the first waiter.
            if !s.waiters.isEmpty { return (s.waiters.removeFirst(), []) }
            s.free += 1
            guard s.free == limit else { return (nil, []) }
            defer { s.idleWaiters = [] }
            return (nil, s.idleWaiters)
        }
        next?.resume()
        for waiter in idle { waiter.resume() }
    }

    /// Returns once nothing is in flight.
    func waitIdle() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = state.withLock { s -> Bool in
                if s.free == limit { return true }
                s.idleWaiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
    }

    var inFlight: Int { state.withLock { limit - $0.free } }
}
