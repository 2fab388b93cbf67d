import Dispatch
import Synchronization

/// A bounded multi-producer, single-consumer queue of batches: the buffer between two stages.
///
/// When full, senders wait: async senders suspend, thread-bound senders (sources doing blocking
/// reads) block. That is the backpressure that keeps memory bounded by configuration. The
/// channel finishes when every registered producer has called ``producerFinished()`` and the
/// buffer is drained.
public final class BoundedChannel<Element: Sendable>: AsyncSequence, Sendable {
    public typealias Failure = Never

    private enum Waiter {
        case task(CheckedContinuation<Void, Never>)
        case thread(DispatchSemaphore)

        func resume() {
            switch self {
            case .task(let c): c.resume()
            case .thread(let s): s.signal()
            }
        }
    }

    private struct State {
        /// Slots before `head` are nil: a taken element must not stay referenced (batches pin storage).
        var buffer: [Element?] = []
        var head = 0
        var producers: Int
        var consumer: CheckedContinuation<Element?, Never>?
        var senders: [Waiter] = []
        var count: Int { buffer.count - head }

        mutating func pop() -> Element {
            let e = buffer[head].take()!
            head += 1
            if head == buffer.count {
                buffer.removeAll(keepingCapacity: true)
                head = 0
            } else if head > 64 && head * 2 > buffer.count {
                buffer.removeFirst(head)
                head = 0
            }
            return e
        }
    }

    public let capacity: Int
    private let state: Mutex<State>

    /// - Parameters:
    ///   - capacity: elements held before senders wait (≥ 1).
    ///   - producers: how many producers will call ``producerFinished()``.
    public init(capacity: Int, producers: Int) {
        self.capacity = Swift.max(1, capacity)
        self.state = Mutex(State(producers: producers))
    }

    /// Sends from async code, suspending while the channel is full.
    public func send(_ element: Element) async {
        while true {
            let outcome: (accepted: Bool, wake: CheckedContinuation<Element?, Never>?) = state.withLock { s in
                if let consumer = s.consumer {
                    s.consumer = nil
                    return (true, consumer)
                }
                if s.count < capacity {
                    s.buffer.append(element)
                    return (true, nil)
                }
                return (false, nil)
            }
            if outcome.accepted {
                outcome.wake?.resume(returning: element)
                return
            }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if s.count < capacity || s.consumer != nil { return true }
                    s.senders.append(.task(continuation))
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }

    /// Sends only if there is room right now; never waits. Returns false when full or finished.
    public func trySend(_ element: Element) -> Bool {
        let outcome: (accepted: Bool, wake: CheckedContinuation<Element?, Never>?) = state.withLock { s in
            if s.producers <= 0 { return (false, nil) }
            if let consumer = s.consumer {
                s.consumer = nil
                return (true, consumer)
            }
            if s.count < capacity {
                s.buffer.append(element)
                return (true, nil)
            }
            return (false, nil)
        }
        outcome.wake?.resume(returning: element)
        return outcome.accepted
    }

    /// Sends from a plain thread (never from async code), blocking while the channel is full.
    public func sendBlocking(_ element: Element) {
        let semaphore = DispatchSemaphore(value: 0)
        while true {
            let outcome: (accepted: Bool, wake: CheckedContinuation<Element?, Never>?) = state.withLock { s in
                if let consumer = s.consumer {
                    s.consumer = nil
                    return (true, consumer)
                }
                if s.count < capacity {
                    s.buffer.append(element)
                    return (true, nil)
                }
                s.senders.append(.thread(semaphore))
                return (false, nil)
            }
            if outcome.accepted {
                outcome.wake?.resume(returning: element)
                return
            }
            semaphore.wait()
        }
    }

    /// One more producer (a reload wired a new upstream to this stage). Must come before the
    /// last producer finishes.
    public func addProducer() {
        state.withLock { $0.producers += 1 }
    }

    /// One producer is done. The last one lets the consumer finish once the buffer is empty.
    public func producerFinished() {
        let wake: CheckedContinuation<Element?, Never>? = state.withLock { s in
            s.producers -= 1
            if s.producers <= 0, s.count == 0, let c = s.consumer {
                s.consumer = nil
                return c
            }
            return nil
        }
        wake?.resume(returning: nil)
    }

    /// True once every producer finished (elements may still be buffered).
    public var isFinished: Bool { state.withLock { $0.producers <= 0 } }

    /// Elements waiting in the buffer right now.
    public var bufferedCount: Int { state.withLock { $0.count } }

    /// Takes the next element, suspending while the channel is empty; nil once finished.
    public func receive() async -> Element? {
        let immediate: (Element??, Waiter?) = state.withLock { s in
            if s.count > 0 {
                let e = s.pop()
                let waiter = s.senders.isEmpty ? nil : s.senders.removeFirst()
                return (.some(e), waiter)
            }
            if s.producers <= 0 { return (.some(nil), nil) }
            return (nil, nil)
        }
        if let element = immediate.0 {
            immediate.1?.resume()
            return element
        }
        return await withCheckedContinuation { (continuation: CheckedContinuation<Element?, Never>) in
            let action: (Element??, Waiter?) = state.withLock { s in
                if s.count > 0 {
                    let e = s.pop()
                    return (.some(e), s.senders.isEmpty ? nil : s.senders.removeFirst())
                }
                if s.producers <= 0 { return (.some(nil), nil) }
                s.consumer = continuation
                // A sender may be parked waiting for room; the buffer is empty, so let it in.
                return (nil, s.senders.isEmpty ? nil : s.senders.removeFirst())
            }
            action.1?.resume()
            if let element = action.0 { continuation.resume(returning: element) }
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let channel: BoundedChannel
        public mutating func next() async -> Element? { await channel.receive() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(channel: self) }
}
