import TrailwatchCore

/// A few connections to one store for a server's request handlers (the AWS APIs). Each
/// connection serves one call at a time; calls run on the pool's own threads, because an SQLite
/// call blocks its thread and must block neither the event loops nor Swift's cooperative pool
/// (a PostgreSQL call suspends and frees the thread). At most `maximum` connections are open;
/// further calls wait for one to come free. A connection that failed with a transient error
/// (the server went away) is closed, not reused, and the call is tried once more on a new one.
public final class StorePool: @unchecked Sendable {
    public typealias Open = @Sendable () async throws(StoreError) -> any Store

    private struct State {
        var idle: [any Store] = []
        var opened = 0
        var waiters: [CheckedContinuation<Void, Never>] = []
        var closed = false
    }

    private let open: Open
    private let maximum: Int
    private let threads: BlockingPool
    private let state = LockedBox(State())

    public init(maximum: Int = 2, threads: Int = 2, name: String = "store", open: @escaping Open) {
        self.open = open
        self.maximum = max(1, maximum)
        self.threads = BlockingPool(threads: max(1, threads), name: name)
    }

    /// Connections to the store at `location` (created and migrated as needed with `.readWrite`).
    public convenience init(location: StoreLocation, access: StoreAccess, maximum: Int = 2, threads: Int = 2, name: String = "store") {
        self.init(maximum: maximum, threads: threads, name: name) { () throws(StoreError) in
            try await StoreOpener.open(location, access: access)
        }
    }

    deinit { threads.shutdown() }

    /// Runs `body` with a connection of its own on the pool's threads. After `timeout` seconds
    /// the call throws ``BlockingPool/Timeout`` (the body's task is cancelled; the connection comes
    /// back when the body has ended).
    public func with<T: Sendable>(timeout: Double = 300, _ body: @escaping @Sendable (any Store) async throws -> T) async throws -> T {
        try await threads.run(timeout: timeout) { [self] in
            var attempt = 0
            while true {
                attempt += 1
                let store = try await checkout()
                do {
                    let result = try await body(store)
                    await checkin(store, broken: false)
                    return result
                } catch let error as StoreError where error.isTransient {
                    await checkin(store, broken: true)
                    if attempt >= 2 { throw error }
                } catch {
                    await checkin(store, broken: false)
                    throw error
                }
            }
        }
    }

    /// Closes the idle connections; those in use close when their call ends. The pool is not used afterwards.
    public func shutdown() async {
        let idle = state.withLock { s -> [any Store] in
            s.closed = true
            defer { s.idle = [] }
            return s.idle
        }
        for store in idle { await store.close() }
        threads.shutdown()
    }

    private enum Next {
        case use(StoreBox)
        case open
        case wait
    }

    private func checkout() async throws -> any Store {
        while true {
            let next = state.withLock { s -> Next in
                if let store = s.idle.popLast() { return .use(StoreBox(store)) }
                if s.opened < maximum {
                    s.opened += 1
                    return .open
                }
                return .wait
            }
            switch next {
            case .use(let box):
                return box.store
            case .open:
                do { return try await open() } catch {
                    release()
                    throw error
                }
            case .wait:
                await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                    let ready = state.withLock { s -> Bool in
                        if !s.idle.isEmpty || s.opened < maximum { return true }
                        s.waiters.append(continuation)
                        return false
                    }
                    if ready { continuation.resume() }
                }
            }
        }
    }

    private func checkin(_ store: any Store, broken: Bool) async {
        let keep = state.withLock { s -> Bool in
            guard !broken && !s.closed else { return false }
            s.idle.append(store)
            return true
        }
        if keep {
            wakeOne()
        } else {
            await store.close()
            release()
        }
    }

    /// One connection fewer is open: a waiter may open one.
    private func release() {
        state.withLock { $0.opened -= 1 }
        wakeOne()
    }

    private func wakeOne() {
        let waiter = state.withLock { s -> CheckedContinuation<Void, Never>? in
            s.waiters.isEmpty ? nil : s.waiters.removeFirst()
        }
        waiter?.resume()
    }
}

/// Carries a store out of a lock (it is only used by the call that checked it out).
private struct StoreBox: @unchecked Sendable {
    let store: any Store
    init(_ store: any Store) { self.store = store }
}
