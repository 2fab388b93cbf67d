import Alarms
import AWSWire
import Foundation
import Synchronization
import TrailwatchAPI
import TrailwatchConfig
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStore

/// `cloudwatch_api`: serves the CloudWatch API (metrics, alarms, anomaly detectors; RPC v2
/// CBOR, awsJson 1.0 and query) and CloudTrail's LookupEvents on the pipeline's `http:` server.
///
/// PutMetricData datapoints enter the pipeline as metric batches (to the store sink, `alarm`
/// transforms, anything downstream) and the request is answered once they are durable. Reads
/// (GetMetricData, ListMetrics, …) and LookupEvents come from `store:`, the store the
/// pipeline's store sink writes, so metric-filter datapoints and PutMetricData datapoints are
/// one set of metrics. Alarms created with PutMetricAlarm are documents in that store; an
/// `alarm` transform with `api_alarms: STORE` evaluates them with the same engine as YAML
/// alarms and emits the same state-change events (to the notifier, the store — where
/// DescribeAlarmHistory reads them back). They survive restarts; on a PostgreSQL store each
/// alarm is evaluated by one instance of the fleet at a time.
struct CloudWatchAPISource: SourceKind {
    struct Config: StageConfig {
        var store = StoreLocation("")
        var maxPendingBatches = 64
        var bandMinimumHistory = ConfigDuration(milliseconds: 3 * 3_600_000)
        var bandHistory = ConfigDuration(milliseconds: 14 * 86_400_000)
        var cloudTrail = true
        var region = "us-east-1"
        var maxAlarms = 5000

        static let settings = SettingsSchema<Config>(
            StoreSettings.location("store", \.store, "The store sink's store (SQLite path or PostgreSQL URL): metrics, alarms "
                                   + "and the CloudTrail event history are read there."),
            .setting("max_pending_batches", \.maxPendingBatches, "Accepted PutMetricData requests waiting for the pipeline; beyond "
                     + "that ThrottlingException. 1–4096.", check: SettingIssue.outside(1...4096, expected: "1 to 4096")),
            .setting("band_minimum_history", \.bandMinimumHistory, "GetMetricData's anomaly bands appear after this much history."),
            .setting("band_history", \.bandHistory, "History GetMetricData's band model trains on. At least 1h.",
                     check: { $0.milliseconds < 3_600_000 ? SettingIssue("\($0) is too short", expected: "at least 1h") : nil }),
            .setting("cloudtrail", \.cloudTrail, "Also serve CloudTrail's LookupEvents over the store's event history."),
            .setting("region", \.region, "The region in alarm ARNs."),
            .setting("max_alarms", \.maxAlarms, "PutMetricAlarm answers LimitExceeded beyond this many alarms. 1–1000000.",
                     check: SettingIssue.outside(1...1_000_000, expected: "1 to 1000000"))
        )

        var bandSettings: AnomalyBandModel.Settings {
            var settings = AnomalyBandModel.Settings()
            settings.minimumHistory = bandMinimumHistory.milliseconds
            settings.history = bandHistory.milliseconds
            settings.levelWindow = min(settings.levelWindow, bandHistory.milliseconds)
            return settings
        }
    }

    static let type = "cloudwatch_api"
    static let summary = "Serves the CloudWatch metrics and alarms API and CloudTrail LookupEvents (SigV4) on the http: server; PutMetricData enters the pipeline."
    static func produces(_ config: Config) -> Set<EventKind> { [.metric] }

    static func make(_ config: Config, _ context: StageContext) throws -> any Source {
        if case .sqlite(let path) = config.store {
            let directory = (path as NSString).deletingLastPathComponent
            if !directory.isEmpty {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
            }
        }
        let location = config.store
        let open: @Sendable () async throws(StoreError) -> any Store = { () async throws(StoreError) -> any Store in
            try await StoreOpener.open(location, access: .readWrite)
        }
        let queue = MetricIngestQueue(capacity: config.maxPendingBatches)
        var settings = CloudWatchService.Settings()
        settings.region = config.region
        settings.maxAlarms = config.maxAlarms
        settings.bandSettings = config.bandSettings
        let service = CloudWatchService(settings: settings, open: open, ingest: queue)
        return Runner(config: config, service: service, cloudTrail: config.cloudTrail ? CloudTrailService(open: open) : nil, queue: queue, context: context)
    }

    final class Runner: TrailwatchRuntime.Source {
        let config: Config
        let service: CloudWatchService
        let cloudTrail: CloudTrailService?
        let queue: MetricIngestQueue
        let context: StageContext

        init(config: Config, service: CloudWatchService, cloudTrail: CloudTrailService?, queue: MetricIngestQueue, context: StageContext) {
            self.config = config
            self.service = service
            self.cloudTrail = cloudTrail
            self.queue = queue
            self.context = context
        }

        func run(_ output: SourceOutput) throws {
            // Create the store (and its schema) before the first request needs it.
            let location = config.store
            let opened = Once<StoreError?>()
            Task {
                do throws(StoreError) {
                    let store = try await StoreOpener.open(location, access: .readWrite)
                    await store.close()
                    opened.complete(.some(nil))
                } catch {
                    opened.complete(.some(error))
                }
            }
            if case let failure?? = opened.waitBlocking() { throw StageError("cannot open the store \(location): \(failure)") }

            guard context.awsServices.register(service) else {
                throw StageError("another source already serves \(service.targetPrefix) on this process's http: server")
            }
            defer { context.awsServices.unregister(targetPrefix: service.targetPrefix) }
            if let cloudTrail {
                guard context.awsServices.register(cloudTrail) else {
                    throw StageError("another source already serves \(cloudTrail.targetPrefix) on this process's http: server")
                }
            }
            defer { if let cloudTrail { context.awsServices.unregister(targetPrefix: cloudTrail.targetPrefix) } }

            while true {
                if output.isStopping { queue.stopAccepting() }
                // Requests waiting together go out as one batch (one store transaction for all).
                let taken = queue.takeAll(waitMillis: 200, limit: 16)
                guard !taken.isEmpty else {
                    if output.isStopping { break }
                    continue
                }
                let data = taken.count == 1 ? taken[0].0 : taken.flatMap(\.0)
                context.metrics.recordDatapoints(data)
                output.emit(Batch(.metrics(data), acks: Acknowledgements(taken.map(\.1))))
            }
        }
    }
}

/// Accepted PutMetricData datapoints on their way from request handlers (async) to the source thread.
final class MetricIngestQueue: APIIngestQueue<[MetricDatum]>, MetricsIngest, @unchecked Sendable {
    /// API alarms live in the store, where the `alarm` transform with `api_alarms` reloads them every second.
    func alarmsChanged() {}

    func ingest(_ data: [MetricDatum]) async throws(AWSError) {
        try await submit(data, what: "the datapoints", retry: "them")
    }
}

extension SharedAlarmEvaluator {
    /// The alarms created through the CloudWatch API, from the store (the `alarm` transform's `api_alarms`).
    static func apiDefinitions(_ store: any Store, bandSettings: AnomalyBandModel.Settings) async throws -> [Definition] {
        var out: [Definition] = []
        var after: String?
        while true {
            let page = try await store.documents(kind: CloudWatchService.Documents.alarm, prefix: nil, after: after, limit: 1000)
            for document in page {
                guard let definition = try? JSONDecoder().decode(AlarmDefinition.self, from: Data(document.body.utf8)) else { continue }
                out.append((definition.alarmName, definition.fingerprint, { try MetricAlarm(definition: definition, bandSettings: bandSettings) }))
            }
            guard page.count == 1000, let last = page.last else { return out }
            after = last.name
        }
    }
}

extension Once {
    /// Blocks the calling (non-async) thread until the value is set.
    func waitBlocking() -> T? {
        let semaphore = DispatchSemaphore(value: 0)
        let box = Mutex<T??>(nil)
        Task {
            let value = await wait()
            box.withLock { $0 = .some(value) }
            semaphore.signal()
        }
        semaphore.wait()
        return box.withLock { $0 } ?? nil
    }
}
