import TrailwatchCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Counters one component keeps about itself (events and bytes in/out, errors, timing).
/// Updated once per batch, read by the summary, the status line and `/metrics`.
public final class ComponentMetrics: Sendable {
    public let id: String
    public let type: String
    public let section: String
    let eventsInCounter = Atomic<Int>(0)
    let eventsOutCounter = Atomic<Int>(0)
    let bytesInCounter = Atomic<Int>(0)
    let bytesOutCounter = Atomic<Int>(0)
    let errorsCounter = Atomic<Int>(0)
    let damageCounter = Atomic<Int>(0)
    let startNanos = Atomic<Int64>(0)
    let endNanos = Atomic<Int64>(0)
    /// Stage-specific gauges (file lag, checkpoint age, retries), by name.
    private let gauges = Mutex<[String: Double]>([:])

    public init(id: String, type: String, section: String) {
        self.id = id
        self.type = type
        self.section = section
    }

    public func recordIn(events: Int, bytes: Int) {
        eventsInCounter.wrappingAdd(events, ordering: .relaxed)
        bytesInCounter.wrappingAdd(bytes, ordering: .relaxed)
    }

    public func recordOut(events: Int, bytes: Int) {
        eventsOutCounter.wrappingAdd(events, ordering: .relaxed)
        bytesOutCounter.wrappingAdd(bytes, ordering: .relaxed)
    }

    public func recordError(_ count: Int = 1) { errorsCounter.wrappingAdd(count, ordering: .relaxed) }

    /// Data was damaged or not delivered: a truncated or malformed input file, or a batch a sink could
    /// not write. Counts as an error too; `run --once` exits 1 when any component reported damage.
    public func recordDamage(_ count: Int = 1) {
        damageCounter.wrappingAdd(count, ordering: .relaxed)
        errorsCounter.wrappingAdd(count, ordering: .relaxed)
    }

    public func setGauge(_ name: String, _ value: Double) { gauges.withLock { $0[name] = value } }

    /// The newest datapoint of each metric a stage emitted (metric filters), for `/metrics`;
    /// bounded so a runaway dimension cannot grow it without end.
    private let latestDatapoints = Mutex<[MetricIdentity: MetricDatum]>([:])
    public static let maximumTrackedMetrics = 1000

    public func recordDatapoints(_ data: [MetricDatum]) {
        latestDatapoints.withLock { latest in
            var i = 0
            while i < data.count {
                // A run of one metric (a PutMetricData request's items): only its newest counts.
                var newest = i
                var next = i + 1
                while next < data.count, data[next].metric == data[i].metric {
                    if data[next].timestamp >= data[newest].timestamp { newest = next }
                    next += 1
                }
                let d = data[newest]
                if latest[d.metric].map({ $0.timestamp <= d.timestamp }) ?? (latest.count < Self.maximumTrackedMetrics) {
                    latest[d.metric] = d
                }
                i = next
            }
        }
    }

    public var datapoints: [MetricDatum] { latestDatapoints.withLock { Array($0.values) } }
    public func addToGauge(_ name: String, _ delta: Double) { gauges.withLock { $0[name, default: 0] += delta } }

    public var eventsIn: Int { eventsInCounter.load(ordering: .relaxed) }
    public var eventsOut: Int { eventsOutCounter.load(ordering: .relaxed) }
    public var bytesIn: Int { bytesInCounter.load(ordering: .relaxed) }
    public var bytesOut: Int { bytesOutCounter.load(ordering: .relaxed) }
    public var errors: Int { errorsCounter.load(ordering: .relaxed) }
    public var damaged: Int { damageCounter.load(ordering: .relaxed) }
    public var gaugeValues: [String: Double] { gauges.withLock { $0 } }

    /// Marks the start; a component restarted by a reload keeps its first start time.
    func markStarted() {
        if startNanos.load(ordering: .relaxed) == 0 { startNanos.store(MonotonicClock.nanos(), ordering: .relaxed) }
        endNanos.store(0, ordering: .relaxed)
    }
    func markFinished() { endNanos.store(MonotonicClock.nanos(), ordering: .relaxed) }

    /// Seconds from start to finish (or to now while running).
    public var seconds: Double {
        let start = startNanos.load(ordering: .relaxed)
        guard start > 0 else { return 0 }
        var end = endNanos.load(ordering: .relaxed)
        if end == 0 { end = MonotonicClock.nanos() }
        return Double(end - start) / 1e9
    }
}

/// Monotonic and wall clocks in integers, without Foundation.
public enum MonotonicClock {
    public static func nanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    /// Wall-clock milliseconds since the epoch (ingestion time).
    public static func wallMillis() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}
