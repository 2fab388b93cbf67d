import Dispatch
import Glibc
import Synchronization
import TrailwatchCore

/// Where stages and the runner read wall-clock time and wait for it to pass. Event time comes
/// from events; this is the other time — ticks, poll and save intervals, retry backoff, drain
/// timeouts — so tests and `trailwatch test` can move it by hand instead of sleeping
/// (the seam swift-nio and Hummingbird give their timers).
///
/// Production uses ``SystemClock``; tests use ``VirtualClock`` and ``VirtualClock/advance(by:)``.
public protocol StageClock: Sendable {
    /// Milliseconds since the epoch.
    func nowMillis() -> Int64
    /// Suspends the calling task until `duration` has passed on this clock. Throws
    /// `CancellationError` when the task is cancelled first.
    func sleep(for duration: Duration) async throws
    /// Blocks the calling thread (a source's: sources do blocking reads) until `duration` has
    /// passed on this clock or, when `descriptor` is not negative, until it is readable (inotify).
    /// Returns true when the descriptor became readable.
    @discardableResult
    func sleepBlocking(for duration: Duration, wakingOnReadable descriptor: Int32) -> Bool
}

extension StageClock {
    /// Blocks the calling thread until `duration` has passed on this clock.
    public func sleepBlocking(for duration: Duration) { sleepBlocking(for: duration, wakingOnReadable: -1) }

    /// Suspends for `milliseconds` on this clock; returns false when the task was cancelled.
    @discardableResult
    public func sleep(milliseconds: Int64) async -> Bool {
        (try? await sleep(for: .milliseconds(max(0, milliseconds)))) != nil
    }
}

extension Duration {
    /// Whole milliseconds, rounded up, at least 0 (timeouts for `poll`).
    var roundedUpMillis: Int64 {
        let (seconds, attoseconds) = components
        guard seconds >= 0 else { return 0 }
        let (millis, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        guard !overflow else { return .max }
        return millis &+ (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
    }
}

/// The system's real-time clock: what every pipeline runs on.
public struct SystemClock: StageClock {
    public init() {}

    public func nowMillis() -> Int64 { MonotonicClock.wallMillis() }

    public func sleep(for duration: Duration) async throws {
        try await Task.sleep(for: duration)
    }

    public func sleepBlocking(for duration: Duration, wakingOnReadable descriptor: Int32) -> Bool {
        let millis = Int32(clamping: duration.roundedUpMillis)
        if descriptor >= 0 {
            var pfd = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            return poll(&pfd, 1, millis) > 0
        }
        var left = timespec(tv_sec: Int(millis / 1000), tv_nsec: Int(millis % 1000) * 1_000_000)
        var remaining = timespec()
        while nanosleep(&left, &remaining) != 0 && errno == EINTR { left = remaining }
        return false
    }
}

/// A clock that moves only when told to: deterministic time for tests and `trailwatch test`.
/// Whatever sleeps on it (the runner's ticker, a tailer's poll, a sink's retry backoff) wakes when
/// ``advance(by:)`` or ``advance(to:)`` moves it past the sleeper's deadline, and not before.
public final class VirtualClock: StageClock {
    private enum Waker {
        case task(CheckedContinuation<Void, any Error>)
        case thread(DispatchSemaphore)
    }

    private struct State {
        var now: Int64
        var nextID = 0
        var sleepers: [Int: (deadline: Int64, waker: Waker)] = [:]
        /// Tasks cancelled before their sleep registered.
        var cancelled = Set<Int>()
    }

    private let state: Mutex<State>

    public init(startMillis: Int64) { state = Mutex(State(now: startMillis)) }

    /// Starts at the system clock's time now (ages of real files' modification times stay sensible).
    public convenience init() { self.init(startMillis: MonotonicClock.wallMillis()) }

    public func nowMillis() -> Int64 { state.withLock { $0.now } }

    /// How many tasks and threads are sleeping on this clock now.
    public var sleepers: Int { state.withLock { $0.sleepers.count } }

    /// Moves the clock to `millis` (never backwards) and wakes every sleeper whose time has come.
    public func advance(to millis: Int64) {
        let due: [Waker] = state.withLock { s in
            guard millis > s.now else { return [] }
            s.now = millis
            let ids = s.sleepers.filter { $0.value.deadline <= millis }.map(\.key)
            return ids.compactMap { s.sleepers.removeValue(forKey: $0)?.waker }
        }
        for waker in due {
            switch waker {
            case .task(let continuation): continuation.resume()
            case .thread(let semaphore): semaphore.signal()
            }
        }
    }

    /// Moves the clock on by `duration` and wakes every sleeper whose time has come.
    public func advance(by duration: Duration) {
        advance(to: nowMillis() + duration.roundedUpMillis)
    }

    public func sleep(for duration: Duration) async throws {
        let id = state.withLock { s in
            s.nextID += 1
            return s.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome: Result<Void, any Error>? = state.withLock { s in
                    if s.cancelled.remove(id) != nil { return .failure(CancellationError()) }
                    let deadline = s.now + duration.roundedUpMillis
                    if deadline <= s.now { return .success(()) }
                    s.sleepers[id] = (deadline, .task(continuation))
                    return nil
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        } onCancel: {
            let waker = state.withLock { s in
                if let sleeper = s.sleepers.removeValue(forKey: id) { return Optional(sleeper.waker) }
                s.cancelled.insert(id)
                return nil
            }
            if case .task(let continuation) = waker { continuation.resume(throwing: CancellationError()) }
        }
        // A sleep that ended normally leaves no mark behind.
        state.withLock { _ = $0.cancelled.remove(id) }
    }

    public func sleepBlocking(for duration: Duration, wakingOnReadable descriptor: Int32) -> Bool {
        let semaphore = DispatchSemaphore(value: 0)
        let id: Int? = state.withLock { s in
            let deadline = s.now + duration.roundedUpMillis
            guard deadline > s.now else { return nil }
            s.nextID += 1
            s.sleepers[s.nextID] = (deadline, .thread(semaphore))
            return s.nextID
        }
        guard let id else { return false }
        guard descriptor >= 0 else {
            semaphore.wait()
            return false
        }
        // Readiness of a descriptor is the operating system's business: look at it between short
        // waits for the clock.
        while semaphore.wait(timeout: .now() + .milliseconds(5)) == .timedOut {
            var pfd = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            if poll(&pfd, 1, 0) > 0 {
                let removed = state.withLock { $0.sleepers.removeValue(forKey: id) != nil }
                if !removed { semaphore.wait() }  // advanced meanwhile: take its signal
                return true
            }
        }
        return false
    }
}
