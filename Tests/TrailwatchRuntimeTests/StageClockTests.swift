import Foundation
import Glibc
import Synchronization
import Testing
import TrailwatchRuntime
import TrailwatchTestSupport

@Suite("Stage clocks: the system clock, and a virtual one tests move by hand")
struct StageClockTests {
    @Test("a task sleeping on a virtual clock wakes when the clock passes its deadline, not before")
    func taskSleeper() async throws {
        let clock = VirtualClock(startMillis: 1_000)
        let woke = Atomic<Bool>(false)
        let sleeper = Task {
            try await clock.sleep(for: .seconds(5))
            woke.store(true, ordering: .sequentiallyConsistent)
        }
        #expect(await eventually(30) { clock.sleepers == 1 })
        clock.advance(by: .milliseconds(4_999))
        #expect(clock.nowMillis() == 5_999)
        #expect(clock.sleepers == 1 && !woke.load(ordering: .sequentiallyConsistent))
        clock.advance(by: .milliseconds(1))
        try await sleeper.value
        #expect(woke.load(ordering: .sequentiallyConsistent) && clock.sleepers == 0)
    }

    @Test("a thread sleeping on a virtual clock wakes on advance; a readable descriptor wakes it early")
    func threadSleeper() async throws {
        let clock = VirtualClock(startMillis: 0)
        let done = DispatchSemaphore(value: 0)
        let readable = Atomic<Int>(-1)
        Thread.detachNewThread {
            clock.sleepBlocking(for: .milliseconds(250))
            done.signal()
        }
        #expect(await eventually(30) { clock.sleepers == 1 })
        clock.advance(to: 249)
        #expect(done.wait(timeout: .now() + .milliseconds(50)) == .timedOut)
        clock.advance(to: 250)
        #expect(done.wait(timeout: .now() + .seconds(30)) == .success)

        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let readEnd = fds[0]
        Thread.detachNewThread {
            readable.store(clock.sleepBlocking(for: .seconds(3600), wakingOnReadable: readEnd) ? 1 : 0, ordering: .sequentiallyConsistent)
            done.signal()
        }
        #expect(await eventually(30) { clock.sleepers == 1 })
        _ = write(fds[1], "x", 1)
        #expect(done.wait(timeout: .now() + .seconds(30)) == .success)
        #expect(readable.load(ordering: .sequentiallyConsistent) == 1 && clock.sleepers == 0)
        #expect(clock.nowMillis() == 250, "a descriptor does not move the clock")
    }

    @Test("cancelling a task that sleeps on a virtual clock ends its sleep with CancellationError")
    func cancellation() async throws {
        let clock = VirtualClock(startMillis: 0)
        let sleeper = Task { try await clock.sleep(for: .seconds(60)) }
        #expect(await eventually(30) { clock.sleepers == 1 })
        sleeper.cancel()
        await #expect(throws: CancellationError.self) { try await sleeper.value }
        #expect(clock.sleepers == 0)
        // Already cancelled before it sleeps: it does not sleep at all.
        let late = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            try await clock.sleep(for: .seconds(60))
        }
        await #expect(throws: CancellationError.self) { try await late.value }
    }

    @Test("the system clock sleeps for real and wakes on a readable descriptor")
    func systemClock() async throws {
        let clock = SystemClock()
        let start = ContinuousClock.now
        try await clock.sleep(for: .milliseconds(20))
        clock.sleepBlocking(for: .milliseconds(20))
        #expect(ContinuousClock.now - start >= .milliseconds(40))
        var fds: [Int32] = [0, 0]
        try #require(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        _ = write(fds[1], "x", 1)
        let before = ContinuousClock.now
        #expect(clock.sleepBlocking(for: .seconds(60), wakingOnReadable: fds[0]))
        #expect(ContinuousClock.now - before < .seconds(30))
        #expect(abs(clock.nowMillis() - Int64(Date().timeIntervalSince1970 * 1000)) < 5_000)
    }
}
