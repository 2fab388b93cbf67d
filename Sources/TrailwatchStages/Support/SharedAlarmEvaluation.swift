import Alarms
import Foundation
import Synchronization
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStore

/// The `alarm` transform in a fleet (`shared_store: postgres://…`): every instance runs the
/// same alarms, and each alarm is evaluated by exactly one of them at a time — the holder of its
/// lease. The holder reads the alarm's datapoints from the shared store, where the datapoints
/// of every instance merge as statistic sets, judges each period once it is `evaluation_delay`
/// old, and keeps the alarm's state in the store (a document per alarm) together with the state
/// changes not yet delivered downstream (an outbox). A new holder resumes from that state and
/// first re-sends what the outbox holds, so a holder dying (kill -9) causes neither a missed
/// nor a repeated notification, except for changes delivered in the last instant before it
/// died and not yet marked (those carry the same event, so receivers can tell).
final class SharedAlarmEvaluator: Sendable {
    /// What the holder produced, for the transform to emit on its next tick.
    struct Output: Sendable {
        var events: [StructuredEvent] = []
        var bands: [MetricDatum] = []
        var acks = Acknowledgements()
    }

    /// An alarm's saved state: the alarm itself, how far datapoints were read, the outbox.
    struct SavedAlarm: Codable {
        var definition: String
        var alarm: MetricAlarm
        var readUntil: Int64?
        var outbox: [OutboxEntry]
        /// The last change's reason and time (ms), for DescribeAlarms (``AlarmStateView``).
        var stateReason: String?
        var stateUpdated: Int64?
    }

    typealias Definition = (name: String, fingerprint: String, make: @Sendable () throws -> MetricAlarm)

    struct OutboxEntry: Codable, Equatable {
        var key: Int64
        var timestamp: Int64
        var body: String
    }

    struct Shared {
        var output = Output()
        /// Outbox keys whose delivery was acknowledged, per alarm, not yet saved as such.
        var delivered: [String: Set<Int64>] = [:]
        var holding = Set<String>()
    }

    /// The state the evaluation task and the transform share.
    final class SharedState: Sendable {
        private let lock = Mutex(Shared())
        func withLock<T>(_ body: (inout Shared) -> T) -> T { lock.withLock { body(&$0) } }
    }

    static let documentKind = "alarm-state"

    private let shared = SharedState()
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    /// - Parameter history: how far back an anomaly-band alarm new to the store learns from.
    convenience init(location: StoreLocation, definitions: [Definition],
                     evaluationDelay: Int64, history: Int64, log: RuntimeLog, component: String, interval: Int64 = 1000,
                     clock: any StageClock = SystemClock()) {
        self.init(location: location, leases: true, definitions: { _ in definitions }, applySetState: false, evaluationDelay: evaluationDelay,
                  history: history, log: log, component: component, interval: interval, clock: clock)
    }

    /// - Parameters:
    ///   - leases: whether alarms are leased (a fleet's PostgreSQL store); without, this instance evaluates every alarm.
    ///   - definitions: the alarms to evaluate, read every round (API alarms live in the store).
    ///   - applySetState: whether SetAlarmState requests (``CloudWatchService/Documents/setState``) are applied.
    init(location: StoreLocation, leases: Bool, definitions: @escaping @Sendable (any Store) async throws -> [Definition], applySetState: Bool,
         evaluationDelay: Int64, history: Int64, log: RuntimeLog, component: String, interval: Int64 = 1000,
         clock: any StageClock = SystemClock()) {
        let loop = Task { [shared] in
            await Self.run(location: location, useLeases: leases, definitions: definitions, applySetState: applySetState, delay: evaluationDelay,
                           history: history, interval: interval, clock: clock, log: log, component: component, shared: shared)
        }
        task.withLock { $0 = loop }
    }


    /// Alarms this instance holds the lease of right now.
    var holding: Set<String> { shared.withLock { $0.holding } }

    /// Takes what the holder produced since the last call.
    func drain() -> Output {
        shared.withLock { state in
            defer { state.output = Output() }
            return state.output
        }
    }

    func stop() {
        task.withLock { $0?.cancel() }
    }

    private static func run(location: StoreLocation, useLeases: Bool, definitions provider: @Sendable (any Store) async throws -> [Definition],
                            applySetState: Bool, delay: Int64, history: Int64, interval: Int64, clock: any StageClock, log: RuntimeLog, component: String,
                            shared: SharedState) async {
        var leases: (any LeaseHolding)?
        var store: (any Store)?
        var owned: [String: SavedAlarm] = [:]
        var warned = false
        while !Task.isCancelled {
            do {
                if useLeases && leases == nil { leases = try await StoreOpener.leases(location) }
                if store == nil { store = try await StoreOpener.open(location, access: .readWrite) }
                let definitions = try await provider(store!)
                // Alarms deleted or redefined since the last round.
                for name in Array(owned.keys) {
                    guard let current = definitions.first(where: { $0.name == name }), current.fingerprint == owned[name]?.definition else {
                        owned.removeValue(forKey: name)
                        shared.withLock { _ = $0.holding.remove(name) }
                        if let held = leases, !definitions.contains(where: { $0.name == name }) { await held.release(name) }
                        continue
                    }
                }
                for definition in definitions {
                    if let held = leases, try await held.hold(definition.name) == false {
                        if owned.removeValue(forKey: definition.name) != nil {
                            log.log(.info, component, "alarm '\(definition.name)' is evaluated by another instance now")
                        }
                        shared.withLock { _ = $0.holding.remove(definition.name) }
                        continue
                    }
                    let now = clock.nowMillis()
                    var record: SavedAlarm
                    var resend: [OutboxEntry] = []
                    if let known = owned[definition.name] {
                        record = known
                    } else {
                        record = try await load(definition, from: store!)
                        resend = record.outbox   // not known to be delivered: send again
                        log.log(.info, component, "evaluating alarm '\(definition.name)' (lease taken\(resend.isEmpty ? "" : ", re-sending \(resend.count) undelivered state change(s)"))")
                        shared.withLock { _ = $0.holding.insert(definition.name) }
                    }
                    var setState: (state: AlarmState, reason: String, time: Int64)?
                    if applySetState, let document = try await store!.document(kind: setStateKind, name: definition.name) {
                        setState = decodeSetState(document.body)
                    }
                    let (changed, output) = try await evaluate(&record, until: now - delay, history: history, store: store!,
                                                               resend: resend, name: definition.name, shared: shared, setState: setState)
                    // Saved (with its outbox) before anything goes out.
                    if changed {
                        let body = try JSONEncoder().encode(record)
                        try await store!.putDocument(StoredDocument(kind: documentKind, name: definition.name,
                                                                    body: String(decoding: body, as: UTF8.self), updated: now))
                    }
                    if applySetState, setState != nil { try await store!.deleteDocument(kind: setStateKind, name: definition.name) }
                    owned[definition.name] = record
                    if let output {
                        shared.withLock { state in
                            state.output.events += output.events
                            state.output.bands += output.bands
                            state.output.acks.merge(output.acks)
                        }
                    }
                }
                warned = false
            } catch {
                if !warned { log.log(.warning, component, "shared alarm evaluation: \(error); retrying") }
                warned = true
                owned.removeAll()
                shared.withLock { $0.holding.removeAll() }
                if let held = leases { await held.close() }
                if let opened = store { await opened.close() }
                leases = nil
                store = nil
            }
            await clock.sleep(milliseconds: interval)
        }
        if let held = leases { await held.close() }
        if let opened = store { await opened.close() }
    }

    /// SetAlarmState requests waiting for the evaluator (written by the CloudWatch API).
    static let setStateKind = "alarm-set-state"

    static func decodeSetState(_ body: String) -> (state: AlarmState, reason: String, time: Int64)? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
              let value = (object["StateValue"] as? String).flatMap(AlarmState.init(rawValue:)) else { return nil }
        return (value, object["StateReason"] as? String ?? "", (object["Timestamp"] as? NSNumber)?.int64Value ?? MonotonicClock.wallMillis())
    }

    private static func load(_ definition: Definition, from store: any Store) async throws -> SavedAlarm {
        if let document = try await store.document(kind: documentKind, name: definition.name),
           let saved = try? JSONDecoder().decode(SavedAlarm.self, from: Data(document.body.utf8)),
           saved.definition == definition.fingerprint {
            return saved
        }
        // A new or changed definition starts afresh.
        return SavedAlarm(definition: definition.fingerprint, alarm: try definition.make(), readUntil: nil, outbox: [], stateReason: nil, stateUpdated: nil)
    }

    /// Reads the periods that completed since the last round, judges them, queues the changes.
    /// True when the record changed (and must be saved before its changes go out).
    private static func evaluate(_ record: inout SavedAlarm, until time: Int64, history: Int64, store: any Store, resend: [OutboxEntry],
                                 name: String, shared: SharedState,
                                 setState: (state: AlarmState, reason: String, time: Int64)? = nil) async throws -> (changed: Bool, output: Output?) {
        var changed = false
        // Outbox entries whose delivery was acknowledged leave the outbox.
        let delivered = shared.withLock { $0.delivered.removeValue(forKey: name) } ?? []
        if !delivered.isEmpty {
            record.outbox.removeAll { delivered.contains($0.key) }
            changed = true
        }
        let alarm = record.alarm
        let until = alarm.periodStart(time)
        // The first round reads enough history for the evaluation range (and band models their history).
        let from = record.readUntil ?? (until - Int64(alarm.evaluationPeriods + 2) * alarm.periodMs - (isBand(alarm) ? history : 0))
        var fresh: [StructuredEvent] = []
        var bands: [MetricDatum] = []
        if let setState {
            changed = true
            if let change = record.alarm.setState(setState.state, reason: setState.reason, at: setState.time) {
                fresh.append(AlarmEventBody.event(for: change, alarm: record.alarm))
                record.stateReason = change.reason
                record.stateUpdated = change.timestamp
            }
        }
        if until > from {
            let points = try await store.datapoints(namespace: alarm.metric.namespace, name: alarm.metric.name,
                                                    dimensions: StoreConventions.dimensionsText(alarm.metric.dimensions),
                                                    start: from, end: until, limit: 1_000_000)
            for p in points {
                record.alarm.add(MetricDatum(metric: alarm.metric, timestamp: p.timestamp, period: p.period, sampleCount: p.sampleCount,
                                             sum: p.sum, minimum: p.minimum, maximum: p.maximum))
            }
            var steps = AlarmTransform.Runner.Steps()
            let step = record.alarm.advance(until: until)
            if let last = step.changes.last {
                record.stateReason = last.reason
                record.stateUpdated = last.timestamp
            }
            steps.add(step, of: record.alarm)
            fresh += steps.events
            bands = steps.bands
            record.readUntil = until
            changed = true
        }
        let entries = fresh.map { OutboxEntry(key: StoreConventions.eventKey($0), timestamp: $0.timestamp, body: String(decoding: $0.body, as: UTF8.self)) }
        record.outbox += entries
        let outgoing = resend + entries
        guard !outgoing.isEmpty || !bands.isEmpty else { return (changed, nil) }
        let keys = Set(outgoing.map(\.key))
        let token = AckToken { success in
            guard success else { return }
            shared.withLock { $0.delivered[name, default: []].formUnion(keys) }
        }
        let events = outgoing.map { StructuredEvent(kind: .alarm, timestamp: $0.timestamp, key: name, body: Array($0.body.utf8)) }
        return (true, Output(events: events, bands: bands, acks: outgoing.isEmpty ? Acknowledgements() : Acknowledgements([token])))
    }

    private static func isBand(_ alarm: MetricAlarm) -> Bool {
        if case .band = alarm.threshold { return true }
        return false
    }
}
