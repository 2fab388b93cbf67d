import NIOCore

/// Runs a task's nonisolated async code on one NIO event loop (SE-0417 task executor preference).
///
/// Why: postgres-nio 1.33's COPY writer traps (a precondition in its state machine) when a write
/// reaches the connection after the server dropped it but before the channel's handlers are
/// removed. Run on the connection's own event loop, a check that the channel is still active and
/// the driver's write happen in one event-loop job, so no server message can be handled between
/// them: either the connection is seen closed and the write is not made, or the write is made
/// while the connection is still in copy mode.
final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {
    let loop: any EventLoop

    init(_ loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
