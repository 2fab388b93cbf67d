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
        /// The store holding the catalog and the events the read operations return: the `sqlite`
        /// sink's file. Without it the catalog lives in the source's state directory and the
        /// read operations (GetLogEvents, FilterLogEvents, StartQuery) are refused.
        var store: String?
        /// Accepted batches waiting for the pipeline; beyond, ThrottlingException.
        var maxPendingBatches = 16
        var queryTimeout = ConfigDuration(milliseconds: 900_000)
        var region = "us-east-1"

        enum CodingKeys: String, CodingKey, CaseIterable {
            case store, maxPendingBatches = "max_pending_batches", queryTimeout = "query_timeout", region
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            store = try c.decodeIfPresent(String.self, forKey: .store)
            maxPendingBatches = try c.decodeIfPresent(Int.self, forKey: .maxPendingBatches) ?? maxPendingBatches
            queryTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .queryTimeout) ?? queryTimeout
            region = try c.decodeIfPresent(String.self, forKey: .region) ?? region
            guard (1...4096).contains(maxPendingBatches) else {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.maxPendingBatches], message: "\(maxPendingBatches) is out of range",
                                   expected: "1 to 4096")
            }
        }
    }

    static let type = "cloudwatch_logs_api"
    static let summary = "Serves the CloudWatch Logs API (PutLogEvents and friends, SigV4) on the http: server; events enter the pipeline."
    static func produces(_ config: Config) -> Set<EventKind> { [.log, .metric] }

    static func make(_ config: Config, _ context: StageContext) throws -> any Source {
        let path: String
        if let store = config.store {
            path = store
        } else {
            try FileManager.default.createDirectory(atPath: context.stateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
            path = context.stateDirectory + "/catalog.db"
        }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        }
        let first = try SQLiteStore(path: path)
        try first.ensureCatalog()
        let queue = IngestQueue(capacity: config.maxPendingBatches)
        var settings = CloudWatchLogsService.Settings()
        settings.storeHoldsEvents = config.store != nil
        settings.queryTimeoutSeconds = config.queryTimeout.seconds
        settings.region = config.region
        let service = CloudWatchLogsService(settings: settings, open: { try SQLiteStore(path: path) }, ingest: queue)
        return Runner(service: service, queue: queue, storePath: path, holdsEvents: config.store != nil, context: context)
    }

    final class Runner: TrailwatchRuntime.Source {
        let service: CloudWatchLogsService
        let queue: IngestQueue
        let storePath: String
        let holdsEvents: Bool
        let context: StageContext
        var evaluator = MetricFilterEvaluator()
        var lastRetention: Int64 = 0

        init(service: CloudWatchLogsService, queue: IngestQueue, storePath: String, holdsEvents: Bool, context: StageContext) {
            self.service = service
            self.queue = queue
            self.storePath = storePath
            self.holdsEvents = holdsEvents
            self.context = context
        }

        /// Retention set with PutRetentionPolicy: events older than their group's retention leave
        /// the store (every ten minutes, and at start).
        func enforceRetention(now: Int64) {
            guard holdsEvents, now - lastRetention >= 600_000 else { return }
            lastRetention = now
            do {
                let removed = try SQLiteStore(path: storePath).enforceRetention(now: now)
                if removed > 0 { context.metrics.addToGauge("retention_deleted_events", Double(removed)) }
            } catch {
                context.log.log(.warning, context.id, "retention: \(error)")
            }
        }

        func reloadFilters() {
            do {
                let store = try SQLiteStore(path: storePath)
                evaluator.reload(try store.catalogMetricFilters(group: nil).compactMap { try? APIMetricFilter.compile($0) })
            } catch {
                context.log.log(.error, context.id, "cannot load metric filters: \(error)")
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
                service.shutdown()
            }
            reloadFilters()
            var lastTick = MonotonicClock.wallMillis()
            while true {
                if queue.takeFiltersChanged() { reloadFilters() }
                if output.isStopping { queue.stopAccepting() }
                guard let (batch, token) = queue.take(waitMillis: 200) else {
                    if output.isStopping { break }
                    let now = MonotonicClock.wallMillis()
                    if now - lastTick >= 1000 {
                        lastTick = now
                        emitMetrics(evaluator.close(before: now), output)
                        enforceRetention(now: now)
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
final class IngestQueue: LogsIngest, @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [(LogBatch, AckToken)] = []
    private var accepting = true
    private let filtersChanged = Atomic<Bool>(false)
    let capacity: Int

    init(capacity: Int) { self.capacity = capacity }

    func metricFiltersChanged() { filtersChanged.store(true, ordering: .relaxed) }

    func takeFiltersChanged() -> Bool { filtersChanged.exchange(false, ordering: .relaxed) }

    func stopAccepting() {
        condition.lock()
        accepting = false
        condition.unlock()
    }

    /// Queues the batch for the source thread; the error to answer when it cannot be taken.
    private func enqueue(_ batch: LogBatch, _ token: AckToken) -> AWSError? {
        condition.lock()
        defer { condition.unlock() }
        guard accepting else { return AWSError.serviceUnavailable("The server is shutting down; retry against another endpoint or later.") }
        guard items.count < capacity else { return AWSError.throttling("Rate exceeded: the pipeline is busy; retry with backoff.") }
        items.append((batch, token))
        condition.signal()
        return nil
    }

    func take(waitMillis: Int) -> (LogBatch, AckToken)? {
        condition.lock()
        defer { condition.unlock() }
        if items.isEmpty { _ = condition.wait(until: Date(timeIntervalSinceNow: Double(waitMillis) / 1000)) }
        guard !items.isEmpty else { return nil }
        return items.removeFirst()
    }

    func ingest(_ batch: LogBatch) async throws(AWSError) {
        let outcome = Once<Bool>()
        // A client waits on this one: sinks make it durable at once (group commit), not on their sync interval.
        let token = AckToken(awaited: true) { success in outcome.complete(success) }
        if let refusal = enqueue(batch, token) { throw refusal }
        let durable = await withTaskCancellationHandler {
            await outcome.wait()
        } onCancel: {
            outcome.complete(nil)
        }
        switch durable {
        case true?: return
        case false?: throw AWSError.serviceUnavailable("A sink could not write the batch; retry it.")
        case nil: throw AWSError.serviceUnavailable("The batch was not acknowledged in time; retry it.")
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
