import AWSWire
import Foundation
import Synchronization
import TrailwatchAPI
import TrailwatchConfig
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStore

/// `cloudwatch_logs_api`: serves the CloudWatch Logs API (`Logs_20140328`, awsJson 1.1) on the
/// pipeline's `http:` server. PutLogEvents batches enter the pipeline like any source's events,
/// and the request is answered only once every sink downstream acknowledged the batch (for a
/// sink with `buffer: { isolate: true }`, once it is in the durable spool). When the pipeline
/// has no room, requests are refused with ThrottlingException (503) instead of queueing without
/// bound. Metric filters created through the API run here, per minute, like YAML ones.
struct CloudWatchLogsAPISource: SourceKind {
    struct Config: StageConfig {
        var store: String?
        var storeConnections = 4
        var maxPendingBatches = 16
        var queryTimeout = ConfigDuration(milliseconds: 900_000)
        var region = "us-east-1"

        static let settings = SettingsSchema<Config>(
            .setting("store", \.store, "The store holding log groups, streams and metric filters and the events the read operations "
                     + "return: the store sink's `path:` (SQLite) or `url:` (`postgres://…`). Without it they live in an SQLite file in "
                     + "the source's state directory and the read operations (GetLogEvents, FilterLogEvents, StartQuery) are refused."),
            .setting("store_connections", \.storeConnections, "Connections to the store the API's requests share. 1–64.",
                     check: SettingIssue.outside(1...64, expected: "1 to 64")),
            .setting("max_pending_batches", \.maxPendingBatches, "Accepted batches waiting for the pipeline; beyond, ThrottlingException "
                     + "(HTTP 503). 1–4096.", check: SettingIssue.outside(1...4096, expected: "1 to 4096")),
            .setting("query_timeout", \.queryTimeout, "StartQuery runs at most this long (status `Timeout`)."),
            .setting("region", \.region, "The region in ARNs the API returns.")
        )
    }

    static let type = "cloudwatch_logs_api"
    static let summary = "Serves the CloudWatch Logs API (PutLogEvents and friends, SigV4) on the http: server; events enter the pipeline."
    static func produces(_ config: Config) -> Set<EventKind> { [.log, .metric] }

    static func make(_ config: Config, _ context: StageContext) throws -> any Source {
        let location: StoreLocation
        if let store = config.store {
            location = StoreLocation(store)
        } else {
            try FileManager.default.createDirectory(atPath: context.stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
            location = .sqlite(path: context.stateDirectory + "/catalog.db")
        }
        if case .sqlite(let path) = location {
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
            }
        }
        let queue = IngestQueue(capacity: config.maxPendingBatches)
        var settings = CloudWatchLogsService.Settings()
        settings.storeHoldsEvents = config.store != nil
        settings.queryTimeoutSeconds = config.queryTimeout.seconds
        settings.region = config.region
        let pool = StorePool(location: location, access: .readWrite, maximum: config.storeConnections, name: "logs-api-store")
        let service = CloudWatchLogsService(settings: settings, pool: pool, ingest: queue)
        return Runner(service: service, queue: queue, holdsEvents: config.store != nil, context: context)
    }

    final class Runner: TrailwatchRuntime.Source {
        let service: CloudWatchLogsService
        let queue: IngestQueue
        let holdsEvents: Bool
        let context: StageContext
        var evaluator = MetricFilterEvaluator()
        var lastRetention: Int64 = 0
        /// When the metric filters were last loaded: other instances sharing the store may change them.
        var lastFilterLoad: Int64 = 0
        /// Set while a retention pass runs (it runs off the source thread).
        private let enforcing = Flag()

        init(service: CloudWatchLogsService, queue: IngestQueue, holdsEvents: Bool, context: StageContext) {
            self.service = service
            self.queue = queue
            self.holdsEvents = holdsEvents
            self.context = context
        }

        /// Retention set with PutRetentionPolicy: events older than their group's retention leave
        /// the store (every ten minutes, and at start), off the source thread.
        func enforceRetention(now: Int64) {
            guard holdsEvents, now - lastRetention >= 600_000, !enforcing.value.exchange(true, ordering: .acquiringAndReleasing) else { return }
            lastRetention = now
            Task { [service, context, enforcing] in
                defer { enforcing.value.store(false, ordering: .releasing) }
                do {
                    let removed = try await service.pool.with { store in try await store.enforceRetention(now: now) }
                    if removed > 0 { context.metrics.addToGauge("retention_deleted_events", Double(removed)) }
                } catch {
                    context.log.log(.warning, context.id, "retention: \(error)")
                }
            }
        }

        /// Loads the API's metric filters; at start a store that cannot be reached stops the run.
        func reloadFilters(atStart: Bool = false) throws {
            let service = self.service
            let loaded = Blocking.wait { () async -> Result<[APIMetricFilter], AWSError> in
                do throws(AWSError) { return .success(try await service.loadMetricFilters()) } catch { return .failure(error) }
            }
            lastFilterLoad = context.clock.nowMillis()
            switch loaded {
            case .success(let filters): evaluator.reload(filters)
            case .failure(let error):
                if atStart { throw StageError("cannot open the store: \(error.message)") }
                context.log.log(.error, context.id, "cannot load metric filters: \(error.message)")
            }
        }

        func emitMetrics(_ data: [MetricDatum], _ output: SourceOutput) {
            guard !data.isEmpty else { return }
            context.metrics.recordDatapoints(data)
            output.emit(Batch(.metrics(data)))
        }

        func run(_ output: SourceOutput) throws {
            guard context.awsServices.register(service) else {
                throw StageError("another source already serves \(service.targetPrefix) on this process's http: server")
            }
            defer {
                context.awsServices.unregister(targetPrefix: service.targetPrefix)
                let service = self.service
                Blocking.wait { await service.shutdown() }
            }
            try reloadFilters(atStart: true)
            var lastTick = context.clock.nowMillis()
            while true {
                if queue.takeFiltersChanged() { try reloadFilters() }
                if output.isStopping { queue.stopAccepting() }
                // Also under a steady stream of batches: other instances sharing the store may change filters.
                let clock = context.clock.nowMillis()
                enforceRetention(now: clock)
                if clock - lastFilterLoad >= 60_000 { try reloadFilters() }
                guard let (batch, token) = queue.take(waitMillis: 200) else {
                    if output.isStopping { break }
                    let now = context.clock.nowMillis()
                    if now - lastTick >= 1000 {
                        lastTick = now
                        emitMetrics(evaluator.close(before: now), output)
                    }
                    continue
                }
                emitMetrics(evaluator.add(batch), output)
                output.emit(Batch(.logs(batch), acks: Acknowledgements([token])))
            }
            emitMetrics(evaluator.closeAll(), output)
        }
    }
}

/// Accepted PutLogEvents batches on their way from request handlers (async) to the source thread.
final class IngestQueue: APIIngestQueue<LogBatch>, LogsIngest, @unchecked Sendable {
    // A reference to the atomic, not the atomic itself: a non-copyable stored property in a
    // subclass of a generic class crashes Swift 6.3's optimizer (CopyPropagation, in the deinit).
    private let filtersChanged = Flag()

    func metricFiltersChanged() { filtersChanged.value.store(true, ordering: .relaxed) }

    func takeFiltersChanged() -> Bool { filtersChanged.value.exchange(false, ordering: .relaxed) }

    func ingest(_ batch: LogBatch) async throws(AWSError) {
        try await submit(batch, what: "the batch", retry: "it")
    }
}

/// What an API request handler (async) hands to its source's thread: bounded, refused with
/// AWS's throttling error when full and with ServiceUnavailable while stopping; the handler
/// answers only once every sink made the item durable (at-least-once acknowledgement).
class APIIngestQueue<Item: Sendable>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [(Item, AckToken)] = []
    private var accepting = true
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func stopAccepting() {
        condition.lock()
        accepting = false
        condition.unlock()
    }

    /// Queues the item for the source thread; the error to answer when it cannot be taken.
    private func enqueue(_ item: Item, _ token: AckToken) -> AWSError? {
        condition.lock()
        defer { condition.unlock() }
        guard accepting else { return AWSError.serviceUnavailable("The server is shutting down; retry against another endpoint or later.") }
        guard items.count < capacity else { return AWSError.throttling("Rate exceeded: the pipeline is busy; retry with backoff.") }
        items.append((item, token))
        condition.signal()
        return nil
    }

    func take(waitMillis: Int) -> (Item, AckToken)? {
        condition.lock()
        defer { condition.unlock() }
        if items.isEmpty { _ = condition.wait(until: Date(timeIntervalSinceNow: Double(waitMillis) / 1000)) }
        guard !items.isEmpty else { return nil }
        return items.removeFirst()
    }

    /// Everything queued, up to `limit` items (waiting up to `waitMillis` for the first): requests
    /// that arrived together become one batch, so a sink commits them in one transaction.
    func takeAll(waitMillis: Int, limit: Int) -> [(Item, AckToken)] {
        condition.lock()
        defer { condition.unlock() }
        if items.isEmpty { _ = condition.wait(until: Date(timeIntervalSinceNow: Double(waitMillis) / 1000)) }
        let taken = Array(items.prefix(limit))
        items.removeFirst(taken.count)
        return taken
    }

    /// Queues `item` and waits until the sinks made it durable; `what` and `retry` name it in the
    /// errors ("the batch" / "it").
    func submit(_ item: Item, what: String, retry: String) async throws(AWSError) {
        let outcome = Once<Bool>()
        // A client waits on this one: sinks make it durable at once (group commit), not on their sync interval.
        let token = AckToken(awaited: true) { success in outcome.complete(success) }
        if let refusal = enqueue(item, token) { throw refusal }
        let durable = await withTaskCancellationHandler {
            await outcome.wait()
        } onCancel: {
            outcome.complete(nil)
        }
        switch durable {
        case true?: return
        case false?: throw AWSError.serviceUnavailable("A sink could not write \(what); retry \(retry).")
        case nil: throw AWSError.serviceUnavailable("\(what.prefix(1).uppercased() + what.dropFirst()) was not acknowledged in time; retry \(retry).")
        }
    }
}

/// A value set once and awaited.
final class Once<T: Sendable>: Sendable {
    private let state = Mutex<(value: T??, waiter: CheckedContinuation<T?, Never>?)>((nil, nil))

    /// Sets the value (nil: abandoned) unless it was set already.
    func complete(_ value: T?) {
        let waiter: CheckedContinuation<T?, Never>? = state.withLock { s in
            guard s.value == nil else { return nil }
            s.value = .some(value)
            let w = s.waiter
            s.waiter = nil
            return w
        }
        waiter?.resume(returning: value)
    }

    func wait() async -> T? {
        await withCheckedContinuation { continuation in
            let ready: T?? = state.withLock { s in
                if let v = s.value { return .some(v) }
                s.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}

/// Waits on a source's own thread for async work (never call it from a task).
enum Blocking {
    static func wait<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let result = Mutex<T?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let value = await body()
            result.withLock { $0 = value }
            done.signal()
        }
        done.wait()
        return result.withLock { $0! }
    }
}
