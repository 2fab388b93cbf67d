import Synchronization
import TrailwatchCore

// `trailwatch tap`: a sample of the events leaving a component of a running pipeline.
//
// The data path pays for taps only while one is attached. Every component's output router holds
// a ``TapPoint``; with no tap attached, offering a batch to it is one relaxed atomic load. With a
// tap attached, the producer (a source's thread, a transform's task) samples the batch — one in
// `sampleEvery` events, at most `eventsPerSecond`, counted with a lock-free rate limiter — encodes
// the sampled events as JSON and pushes them into the tap's bounded lock-free ring. When the ring
// is full (the client reads too slowly) the events are dropped and counted; the producer never
// waits for the tap. The HTTP side (``TapStream``) drains the ring and writes NDJSON.

/// Which outputs of a component a tap reads.
public enum TapPort: Sendable, Equatable {
    /// Every output: the main one and each named one (`route`).
    case all
    /// One named output (`component.port`).
    case named(String)

    func includes(_ port: String?) -> Bool {
        switch self {
        case .all: true
        case .named(let name): port == name
        }
    }
}

/// How much a tap takes.
public struct TapOptions: Sendable, Equatable {
    /// Take one event in this many (1: every event, up to the rate).
    public var sampleEvery: Int
    /// At most this many events per second (a burst of up to one second's worth).
    public var eventsPerSecond: Int
    /// Stop after this many events; nil: until the client goes away.
    public var limit: Int?
    /// Slots of the ring between the data path and the client; past it, events are dropped and counted.
    public var capacity: Int
    /// Bytes of encoded events the ring may hold (large events fill it before its slots do).
    public var capacityBytes: Int

    public static let maximumEventsPerSecond = 10_000
    public static let maximumCapacity = 16_384

    public init(sampleEvery: Int = 1, eventsPerSecond: Int = 100, limit: Int? = nil, capacity: Int = 1024, capacityBytes: Int = 4 << 20) {
        self.sampleEvery = sampleEvery
        self.eventsPerSecond = eventsPerSecond
        self.limit = limit
        self.capacity = capacity
        self.capacityBytes = capacityBytes
    }
}

/// One sampled event: the output it left by (nil: the main one), its kind, and the event as the
/// JSON object sinks write (``EventEncoder``).
public struct TapEvent: Sendable {
    public var port: String?
    public var kind: EventKind
    public var json: [UInt8]
}

/// Why a tap cannot be attached.
public enum TapError: Error, Sendable, Equatable, CustomStringConvertible {
    case unknownComponent(String, tappable: [String])
    case sinkHasNoOutput(String, inputs: [String])
    case unknownPort(component: String, port: String, ports: [String])
    case tooManyTaps(Int)
    case invalid(String)

    public var description: String {
        switch self {
        case .unknownComponent(let id, let tappable):
            "no component '\(id)' in the running pipeline" + (tappable.isEmpty ? "" : " (tappable: \(tappable.joined(separator: ", ")))")
        case .sinkHasNoOutput(let id, let inputs):
            "'\(id)' is a sink: nothing leaves it; tap what feeds it (\(inputs.joined(separator: ", ")))"
        case .unknownPort(let id, let port, let ports):
            "'\(id)' has no output named '\(port)'" + (ports.isEmpty ? " (it has only its main output)" : " (outputs: \(ports.map { "\(id).\($0)" }.joined(separator: ", ")))")
        case .tooManyTaps(let n): "\(n) taps are attached already (the most at once); try again when one ends"
        case .invalid(let message): message
        }
    }
}

/// A bounded multi-producer, multi-consumer queue without locks (Dmitry Vyukov's design): each
/// cell carries a sequence number saying whose turn it is, so a push or a pop is one
/// compare-and-swap on a position and never waits for another thread.
final class TapRing<Element: Sendable>: @unchecked Sendable {
    private final class Cell: @unchecked Sendable {
        let sequence: Atomic<Int>
        /// Written only by the producer that claimed the cell, read only by the consumer that claimed
        /// it; the sequence's release/acquire orders the two.
        var value: Element?
        init(_ sequence: Int) { self.sequence = Atomic(sequence) }
    }

    private let cells: [Cell]
    private let mask: Int
    private let enqueuePosition = Atomic<Int>(0)
    private let dequeuePosition = Atomic<Int>(0)

    /// `capacity` is rounded up to a power of two.
    init(capacity: Int) {
        var size = 2
        while size < capacity { size <<= 1 }
        cells = (0..<size).map { Cell($0) }
        mask = size - 1
    }

    var capacity: Int { cells.count }

    /// False when the ring is full.
    func push(_ element: Element) -> Bool {
        var position = enqueuePosition.load(ordering: .relaxed)
        while true {
            let cell = cells[position & mask]
            let sequence = cell.sequence.load(ordering: .acquiring)
            let difference = sequence - position
            if difference == 0 {
                let (exchanged, current) = enqueuePosition.weakCompareExchange(expected: position, desired: position + 1,
                                                                               ordering: .relaxed)
                if exchanged {
                    cell.value = element
                    cell.sequence.store(position + 1, ordering: .releasing)
                    return true
                }
                position = current
            } else if difference < 0 {
                return false
            } else {
                position = enqueuePosition.load(ordering: .relaxed)
            }
        }
    }

    /// Nil when the ring is empty.
    func pop() -> Element? {
        var position = dequeuePosition.load(ordering: .relaxed)
        while true {
            let cell = cells[position & mask]
            let sequence = cell.sequence.load(ordering: .acquiring)
            let difference = sequence - (position + 1)
            if difference == 0 {
                let (exchanged, current) = dequeuePosition.weakCompareExchange(expected: position, desired: position + 1,
                                                                               ordering: .relaxed)
                if exchanged {
                    let value = cell.value
                    cell.value = nil
                    cell.sequence.store(position + mask + 1, ordering: .releasing)
                    return value
                }
                position = current
            } else if difference < 0 {
                return nil
            } else {
                position = dequeuePosition.load(ordering: .relaxed)
            }
        }
    }
}

/// One attached tap: its ring, its sampling and rate, and what it saw, took and dropped.
public final class TapSubscription: Sendable {
    public let component: String
    public let port: TapPort
    public let options: TapOptions
    let ring: TapRing<TapEvent>
    private let seenCounter = Atomic<Int>(0)
    private let takenCounter = Atomic<Int>(0)
    private let droppedCounter = Atomic<Int>(0)
    /// Bytes of the events in the ring (bounded by ``TapOptions/capacityBytes``).
    private let queuedBytes = Atomic<Int>(0)
    /// The rate limiter's "theoretical arrival time" (GCRA) in monotonic nanoseconds: the moment
    /// by which every event granted so far is paid for.
    private let paidUntil = Atomic<Int64>(0)
    private let intervalNanos: Int64
    private let burstNanos: Int64 = 1_000_000_000

    init(component: String, port: TapPort, options: TapOptions) {
        self.component = component
        self.port = port
        self.options = options
        ring = TapRing(capacity: options.capacity)
        intervalNanos = max(1, 1_000_000_000 / Int64(max(1, options.eventsPerSecond)))
    }

    /// Events that left the tapped outputs since the tap was attached.
    public var seen: Int { seenCounter.load(ordering: .relaxed) }
    /// Events sampled into the ring.
    public var taken: Int { takenCounter.load(ordering: .relaxed) }
    /// Events sampled while the ring was full (the client read too slowly): lost to the tap only.
    public var dropped: Int { droppedCounter.load(ordering: .relaxed) }

    /// The next sampled event, nil when none is waiting.
    public func next() -> TapEvent? {
        guard let event = ring.pop() else { return nil }
        queuedBytes.wrappingSubtract(event.json.count, ordering: .relaxed)
        return event
    }

    /// Samples `payload` (called on the data path, never blocks).
    func offer(_ payload: Payload, port: String?, now: Int64) {
        guard self.port.includes(port) else { return }
        let count = payload.count
        guard count > 0 else { return }
        let every = options.sampleEvery
        let before = seenCounter.wrappingAdd(count, ordering: .relaxed).oldValue
        // Events at positions ≡ 0 (mod every) in the tap's whole stream are candidates.
        let first = (every - before % every) % every
        guard first < count else { return }
        let candidates = (count - first - 1) / every + 1
        var wanted = candidates
        if let limit = options.limit {
            let left = limit - takenCounter.load(ordering: .relaxed)
            guard left > 0 else { return }
            wanted = min(wanted, left)
        }
        let granted = reserve(wanted, now: now)
        guard granted > 0 else { return }
        for j in 0..<granted {
            // Spread what the rate allows over the whole batch rather than its start.
            let candidate = granted == candidates ? j : j * candidates / granted
            var json = ByteBuffer(reservingCapacity: 256)
            EventEncoder.appendJSON(payload, event: first + candidate * every, to: &json)
            let size = json.count
            let queued = queuedBytes.wrappingAdd(size, ordering: .relaxed).newValue
            if queued - size > 0 && queued > options.capacityBytes {
                // Over the byte budget (one event alone always fits, however large).
                queuedBytes.wrappingSubtract(size, ordering: .relaxed)
                droppedCounter.wrappingAdd(granted - j, ordering: .relaxed)
                return
            }
            if ring.push(TapEvent(port: port, kind: payload.kind, json: json.bytes)) {
                takenCounter.wrappingAdd(1, ordering: .relaxed)
            } else {
                queuedBytes.wrappingSubtract(size, ordering: .relaxed)
                droppedCounter.wrappingAdd(granted - j, ordering: .relaxed)
                return
            }
        }
    }

    /// Grants up to `wanted` events under the rate (generic cell rate algorithm, lock-free).
    private func reserve(_ wanted: Int, now: Int64) -> Int {
        var paid = paidUntil.load(ordering: .relaxed)
        while true {
            let start = max(paid, now)
            let room = (now + burstNanos - start) / intervalNanos
            let granted = min(Int64(wanted), max(0, room))
            guard granted > 0 else { return 0 }
            let (exchanged, current) = paidUntil.weakCompareExchange(expected: paid, desired: start + granted * intervalNanos,
                                                                     ordering: .relaxed)
            if exchanged { return Int(granted) }
            paid = current
        }
    }
}

/// Where a component's output meets the taps attached to it. The runtime's output routing calls
/// ``offer(_:port:)`` for every batch the component emits.
public final class TapPoint: Sendable {
    public let component: String
    /// Taps attached: the data path's only cost while it is zero is loading it.
    private let attached = Atomic<Int>(0)
    private let subscriptions = Mutex<[TapSubscription]>([])

    init(component: String) { self.component = component }

    /// Hands a batch leaving the component to the attached taps, if any.
    @inline(__always)
    func offer(_ payload: Payload, port: String?) {
        guard attached.load(ordering: .relaxed) > 0 else { return }
        offerToSubscriptions(payload, port: port)
    }

    private func offerToSubscriptions(_ payload: Payload, port: String?) {
        // Only a try-lock: attaching or detaching holds the lock for an array swap; a batch that
        // meets it then is simply not sampled, so the data path never waits.
        guard let subscriptions = subscriptions.withLockIfAvailable({ $0 }) else { return }
        let now = MonotonicClock.nanos()
        for subscription in subscriptions { subscription.offer(payload, port: port, now: now) }
    }

    func add(_ subscription: TapSubscription) {
        subscriptions.withLock { $0.append(subscription) }
        attached.wrappingAdd(1, ordering: .relaxed)
    }

    func remove(_ subscription: TapSubscription) -> Bool {
        let removed = subscriptions.withLock { list in
            guard let index = list.firstIndex(where: { $0 === subscription }) else { return false }
            list.remove(at: index)
            return true
        }
        if removed { attached.wrappingSubtract(1, ordering: .relaxed) }
        return removed
    }
}

/// The tap points of a pipeline, by component id; they outlive reloads, so a tap stays attached
/// to a component a reload restarts.
public final class PipelineTaps: Sendable {
    /// Taps attached at once in a process, over all components.
    public static let maximumTaps = 16
    private let points = Mutex<[String: TapPoint]>([:])
    private let count = Atomic<Int>(0)

    public init() {}

    /// The point of component `id` (made on first use).
    func point(for id: String) -> TapPoint {
        points.withLock { points in
            if let point = points[id] { return point }
            let point = TapPoint(component: id)
            points[id] = point
            return point
        }
    }

    /// Taps attached now.
    public var attachedCount: Int { count.load(ordering: .relaxed) }

    func attach(component: String, port: TapPort, options: TapOptions) throws(TapError) -> TapSubscription {
        guard count.wrappingAdd(1, ordering: .relaxed).newValue <= Self.maximumTaps else {
            count.wrappingSubtract(1, ordering: .relaxed)
            throw .tooManyTaps(Self.maximumTaps)
        }
        let subscription = TapSubscription(component: component, port: port, options: options)
        point(for: component).add(subscription)
        return subscription
    }

    /// Detaches a tap; repeatable.
    public func detach(_ subscription: TapSubscription) {
        if point(for: subscription.component).remove(subscription) { count.wrappingSubtract(1, ordering: .relaxed) }
    }
}

extension PipelineRunner {
    /// Attaches a tap to `target` (`component` or `component.port`) of the running pipeline.
    /// `component` alone taps every output of it.
    public func attachTap(_ target: String, options: TapOptions) throws(TapError) -> TapSubscription {
        guard options.sampleEvery >= 1 else { throw .invalid("sample must be at least 1 (one event in N)") }
        guard (1...TapOptions.maximumEventsPerSecond).contains(options.eventsPerSecond) else {
            throw .invalid("rate must be between 1 and \(TapOptions.maximumEventsPerSecond) events per second")
        }
        guard (1...TapOptions.maximumCapacity).contains(options.capacity) else {
            throw .invalid("capacity must be between 1 and \(TapOptions.maximumCapacity)")
        }
        if let limit = options.limit, limit < 1 { throw .invalid("limit must be at least 1") }
        let parts = target.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        let id = parts[0]
        let components = plan.components
        guard let component = components.first(where: { $0.id == id }) else {
            throw .unknownComponent(id, tappable: components.filter { $0.declaration.section != .sinks }.map(\.id))
        }
        guard component.declaration.section != .sinks else {
            throw .sinkHasNoOutput(id, inputs: component.declaration.inputs.map(\.text))
        }
        var port = TapPort.all
        if parts.count > 1 {
            let name = parts[1]
            guard component.stage.ports.contains(name) else {
                throw .unknownPort(component: id, port: name, ports: component.stage.ports)
            }
            port = .named(name)
        }
        return try taps.attach(component: id, port: port, options: options)
    }
}
