import Dispatch
import Foundation
import Synchronization

/// Threads for blocking work (SQLite queries), as a Swift `TaskExecutor`: work runs in a task
/// preferring this executor, so it neither blocks a NIO event loop nor one of the few threads of
/// Swift's cooperative pool, and it sees `Task.isCancelled` when its deadline passes.
/// Call ``shutdown()`` when done: the threads hold the pool until then.
public final class BlockingPool: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var head = 0
    private var stopping = false
    private var threads: [Thread] = []

    public init(threads count: Int, name: String = "blocking") {
        for i in 0..<max(1, count) {
            // Threads keep the pool alive until shutdown() lets them end.
            let thread = Thread { self.work() }
            thread.name = "\(name)-\(i)"
            thread.stackSize = 4 << 20
            threads.append(thread)
        }
        for thread in threads { thread.start() }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    private func work() {
        while true {
            condition.lock()
            while head == jobs.count && !stopping { condition.wait() }
            if head == jobs.count && stopping {
                condition.unlock()
                return
            }
            let job = jobs[head]
            head += 1
            if head > 256 && head * 2 > jobs.count {
                jobs.removeFirst(head)
                head = 0
            }
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }

    /// Lets the threads end once the queue is empty.
    public func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
    }

    /// The work took longer than its deadline; it was cancelled and its result is discarded.
    public struct Timeout: Error, CustomStringConvertible {
        public var seconds: Double
        public var description: String { "timed out after \(seconds.formatted()) s" }
    }

    /// Runs `work` on the pool and returns its result, or throws ``Timeout`` once `seconds`
    /// passed (the work's task is cancelled; work that checks `Task.isCancelled` stops early, the
    /// rest finishes in the background). Cancelling the caller cancels the work too.
    public func run<T: Sendable>(timeout seconds: Double, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
        let state = RaceState<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
                state.install(continuation)
                let task = Task(executorPreference: self) {
                    do { state.finish(.success(try await work())) } catch { state.finish(.failure(error)) }
                }
                // The deadline is kept by Dispatch, not by a task: a busy cooperative pool must not
                // delay it. Once the work has finished first, the late timeout is a no-op.
                DispatchQueue.global().asyncAfter(deadline: .now() + max(0, seconds)) {
                    state.finish(.failure(Timeout(seconds: seconds)))
                }
                state.attach(work: task)
            }
        } onCancel: {
            state.finish(.failure(CancellationError()))
        }
    }
}

/// The first result wins; the loser is cancelled.
private final class RaceState<T: Sendable>: Sendable {
    private struct Inner {
        var continuation: CheckedContinuation<T, any Error>?
        var pending: Result<T, any Error>?
        var done = false
        var work: Task<Void, Never>?
    }
    private let inner = Mutex(Inner())

    func install(_ continuation: CheckedContinuation<T, any Error>) {
        let pending: Result<T, any Error>? = inner.withLock { s in
            if let p = s.pending { s.pending = nil; return p }
            s.continuation = continuation
            return nil
        }
        if let pending { continuation.resume(with: pending) }
    }

    func attach(work: Task<Void, Never>) {
        let finished = inner.withLock { s -> Bool in
            s.work = work
            return s.done
        }
        if finished { work.cancel() }
    }

    func finish(_ result: Result<T, any Error>) {
        let (continuation, work): (CheckedContinuation<T, any Error>?, Task<Void, Never>?) = inner.withLock { s in
            guard !s.done else { return (nil, nil) }
            s.done = true
            guard let c = s.continuation else {
                s.pending = result
                return (nil, s.work)
            }
            s.continuation = nil
            return (c, s.work)
        }
        work?.cancel()
        continuation?.resume(with: result)
    }
}
