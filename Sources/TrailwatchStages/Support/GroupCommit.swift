#if canImport(Glibc)
import Glibc
#endif
import Dispatch
import Synchronization
import TrailwatchCore

/// Makes a file's writes durable off the sink's task (group commit): fsync runs on its own
/// serial queue, the sink keeps writing meanwhile, and every batch written while one fsync runs
/// is acknowledged by the next. A client waiting for its batch therefore waits about one fsync,
/// however many clients there are, and the disk sees one fsync at a time — never one per batch
/// queued behind another.
///
/// Owns the file descriptor: it is closed once the last sync has run.
final class GroupCommit: Sendable {
    private struct State {
        /// Acknowledgements of batches written (write(2) returned) and not yet covered by an fsync.
        var written = Acknowledgements()
        /// A sync was asked for since the running one started.
        var requested = false
        var running = false
        /// errno of a failed fsync, until the sink picks it up.
        var failure: Int32?
        /// ``sync()`` callers waiting for the queue to go idle.
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    let fd: Int32
    let path: String
    private let state = Mutex(State())
    private let queue: DispatchQueue
    /// fsyncs done, for the sink's metrics.
    let syncs = Atomic<Int>(0)

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
        queue = DispatchQueue(label: "trailwatch.group-commit")
    }

    deinit { close(fd) }

    /// Hands over the acknowledgements of a batch whose bytes are written.
    func written(_ acks: Acknowledgements) {
        guard !acks.isEmpty else { return }
        state.withLock { $0.written.merge(acks) }
    }

    /// Starts an fsync of everything written so far, or queues one behind the running fsync
    /// (which then covers every batch written until it starts).
    func requestSync() {
        let start = state.withLock { s -> Bool in
            s.requested = true
            if s.running { return false }
            s.running = true
            return true
        }
        if start { queue.async { [self] in drain() } }
    }

    /// Syncs everything written and returns once it is durable (end of input, shutdown).
    func sync() async throws(SinkError) {
        requestSync()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let idle = state.withLock { s -> Bool in
                if !s.running { return true }
                s.waiters.append(continuation)
                return false
            }
            if idle { continuation.resume() }
        }
        if let error = takeFailure() { throw error }
    }

    /// The error of an fsync that failed since the last call (its batches were already
    /// acknowledged as failed, so their senders retry them).
    func takeFailure() -> SinkError? {
        state.withLock { s in
            defer { s.failure = nil }
            return s.failure.map { SinkError.io(path: path, errno: $0) }
        }
    }

    /// The queue's loop: one fsync per round, each covering what was written before it started;
    /// goes idle (waking ``sync()`` callers) when no request came in meanwhile.
    private func drain() {
        while true {
            let round: (acks: Acknowledgements?, waiters: [CheckedContinuation<Void, Never>]) = state.withLock { s in
                guard s.requested else {
                    s.running = false
                    defer { s.waiters = [] }
                    return (nil, s.waiters)
                }
                s.requested = false
                return (s.written.take(), [])
            }
            guard let acks = round.acks else {
                for waiter in round.waiters { waiter.resume() }
                return
            }
            let ok = fsync(fd) == 0
            let error = errno
            syncs.wrappingAdd(1, ordering: .relaxed)
            if ok {
                acks.release()
            } else {
                state.withLock { $0.failure = error }
                acks.release(success: false)
            }
        }
    }
}
