#if canImport(Glibc)
import Glibc
#endif
import ByteJSON
import FilterPatterns
import Foundation
import InsightsDetection
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime
import TrailwatchStore

/// `insights`: CloudTrail-Insights-style detection on any JSON log stream. Per key (by default
/// CloudTrail's eventSource/eventName/region/account) it learns per-minute call and error rates
/// and emits Start and End insight events, shaped like CloudTrail's, when a rate departs from its
/// baseline. Everything runs on event time, so replays find the same insights.
struct InsightsTransform: TransformKind {
    struct Config: StageConfig {
        var key = "$.eventName"
        var eventSource = "$.eventSource"
        var region = "$.awsRegion"
        var account = "$.recipientAccountId"
        var errorCode = "$.errorCode"
        var errorPattern: FilterPattern?
        var userIdentity = "$.userIdentity.arn"
        var userAgent = "$.userAgent"
        var eventTime = "$.eventTime"
        var baselineDays = 7
        var minimumHistory = ConfigDuration(milliseconds: 6 * 3_600_000)
        var coldStartErrorShare = 0.5
        var deviations = 6.0
        var minimumCount = 10.0
        var types: [InsightType] = [.apiCallRate, .apiErrorRate]
        var sharedStore: StoreLocation?

        static let settings = SettingsSchema<Config>(
            .setting("key", \.key, "JSON selector of what is counted (with `event_source`, `region` and `account` refining it).", check: selector),
            .setting("event_source", \.eventSource, "JSON selector refining the key.", check: selector),
            .setting("region", \.region, "JSON selector refining the key.", check: selector),
            .setting("account", \.account, "JSON selector refining the key.", check: selector),
            .setting("error_code", \.errorCode, "JSON selector: an event is an error when this is present…", check: selector),
            FilterPattern.setting("error_pattern", \.errorPattern, "…or, when given, when this filter pattern matches (`{ $.status >= 500 }`)."),
            .setting("user_identity", \.userIdentity, "JSON selector of the caller, for attributions.", check: selector),
            .setting("user_agent", \.userAgent, "JSON selector of the user agent, for attributions.", check: selector),
            .setting("event_time", \.eventTime, "JSON selector of the event time (RFC 3339); when absent or unreadable, the event's own time is used.",
                     check: selector),
            .setting("baseline_days", \.baselineDays, "History the baselines learn from. 1–90.", check: SettingIssue.outside(1...90, expected: "1 to 90 days")),
            .setting("minimum_history", \.minimumHistory, "No call-rate insight before this much history (warm-up)."),
            .setting("cold_start_error_share", \.coldStartErrorShare, "Meanwhile, error bursts that are at least this share of the key's calls "
                     + "in a minute are reported anyway (0: off).",
                     check: { (0...1).contains($0) ? nil : SettingIssue("\($0) is not a share", expected: "a number from 0 (no cold start) to 1") }),
            .setting("deviations", \.deviations, "How many robust deviations above the baseline a minute must be."),
            .setting("minimum_count", \.minimumCount, "How many calls (or errors) a minute must have at least."),
            .custom("types", type: "list of ApiCallRateInsight or ApiErrorRateInsight", "Which insights are detected.",
                    default: "[ApiCallRateInsight, ApiErrorRateInsight]", storedAt: \Config.types) { config, c, key in
                guard let names = try c.decodeIfPresent([String].self, forKey: key) else { return }
                config.types = try names.map { name in
                    guard let type = InsightType(rawValue: name) else {
                        throw SettingError(codingPath: c.codingPath + [key], message: "unknown insight type '\(name)'",
                                           expected: "ApiCallRateInsight or ApiErrorRateInsight")
                    }
                    return type
                }
            },
            StoreSettings.sharedStore(\.sharedStore, "A fleet's shared PostgreSQL store: only the instance holding this detector's lease "
                                      + "emits (see [PostgreSQL](#postgresql-one-store-for-a-fleet)).")
        )

        static let selector: @Sendable (String) -> SettingIssue? = { text in
            do throws(JSONPathError) { _ = try JSONPath(text); return nil } catch {
                return SettingIssue("invalid JSON selector '\(text)': \(error.message)", expected: "a selector such as $.eventName")
            }
        }
    }

    static let type = "insights"
    static let summary = "CloudTrail-Insights-style call-rate and error-rate insights on any JSON log stream."
    static func accepts(_ config: Config) -> Set<EventKind> { [.log] }
    static func produces(_ config: Config, fedWith inputs: Set<EventKind>) -> Set<EventKind> { [.insight] }

    static func make(_ config: Config, _ context: StageContext) throws -> any Transform {
        try Runner(config: config, context: context)
    }

    /// One independent part of the detector: keys are split between shards by a hash of the key,
    /// so each shard sees all events of its keys, in order, and shards run on separate cores.
    final class Shard: @unchecked Sendable {
        var detector: InsightsDetector
        var found: [InsightEvent] = []
        var skipped = 0
        /// Newest event time this shard has seen.
        var newest: Int64 = .min
        private var interned: [UInt64: (bytes: [UInt8], text: String)] = [:]
        /// Keys by the hash of their four fields' bytes, so a known key costs no string work.
        var keys: [UInt64: InsightKey] = [:]
        private var lastTimeText: [UInt8] = []
        private var lastTime: Int64 = 0

        init(detector: InsightsDetector) { self.detector = detector }

        /// Interned text of a selector's value: each distinct text becomes a String once.
        func text(_ found: JSONLookup, _ message: UnsafeRawBufferPointer, hash: UInt64) -> String? {
            let range: Range<Int>
            switch found {
            case .string(let r, escaped: false), .number(let r): range = r
            case .missing, .notJSON: return nil
            default:
                guard let bytes = found.scalarText(in: message) else { return nil }
                return String(decoding: bytes, as: UTF8.self)
            }
            let slice = UnsafeRawBufferPointer(rebasing: message[range])
            if let known = interned[hash], known.bytes.count == slice.count,
               slice.isEmpty || known.bytes.withUnsafeBytes({ memcmp($0.baseAddress!, slice.baseAddress!, slice.count) == 0 }) {
                return known.text
            }
            let text = String(decoding: slice, as: UTF8.self)
            if interned.count < 100_000 { interned[hash] = (Array(slice), text) }
            return text
        }

        func eventTime(_ found: JSONLookup, _ message: UnsafeRawBufferPointer) -> Int64? {
            guard case .string(let range, escaped: false) = found else { return nil }
            let slice = UnsafeRawBufferPointer(rebasing: message[range])
            if lastTimeText.count == slice.count, !slice.isEmpty,
               lastTimeText.withUnsafeBytes({ memcmp($0.baseAddress!, slice.baseAddress!, slice.count) == 0 }) {
                return lastTime
            }
            guard let time = Timestamps.parseISO8601(slice) else { return nil }
            lastTimeText = Array(slice)
            lastTime = time
            return time
        }
    }

    /// What is persisted between runs (live mode).
    struct SavedState: Codable {
        var shards: [InsightsDetector]
    }

    final class Runner: Transform {
        static let shardCount = 2
        let config: Config
        let context: StageContext
        var shards: [Shard]
        let lookup: JSONMultiLookup
        var watermark: Int64 = .min
        var lastSave: Int64
        var statePath: String { context.stateDirectory + "/insights.json" }
        /// Fleet mode: emits only while this instance holds the detector's lease.
        let gate: LeaseGate?

        init(config: Config, context: StageContext) throws {
            self.config = config
            self.context = context
            lastSave = context.clock.nowMillis()
            gate = config.sharedStore.flatMap { location in
                context.once ? nil : LeaseGate(location: location, lease: "insights:" + context.id, kind: .insight, log: context.log, component: context.id,
                                            clock: context.clock)
            }
            let configuration = InsightsDetector.Configuration(
                types: Set(config.types), baselineDays: config.baselineDays,
                minimumHistoryMinutes: Int(config.minimumHistory.milliseconds / 60_000),
                minimumCount: config.minimumCount, deviations: config.deviations,
                maxKeys: 10_000 / Runner.shardCount, coldStartErrorShare: config.coldStartErrorShare)
            shards = (0..<Runner.shardCount).map { _ in Shard(detector: InsightsDetector(configuration: configuration)) }
            lookup = JSONMultiLookup(try [config.key, config.eventSource, config.region, config.account, config.errorCode,
                                          config.userIdentity, config.userAgent, config.eventTime].map { try JSONPath($0) })
            if !context.once, let data = FileManager.default.contents(atPath: statePath),
               let saved = try? JSONDecoder().decode(SavedState.self, from: data), saved.shards.count == Runner.shardCount {
                shards = saved.shards.map { Shard(detector: $0) }
                context.log.log(.info, context.id, "restored baselines of \(shards.map(\.detector.keyCount).reduce(0, +)) keys from \(statePath)")
            }
        }

        /// A 64-bit hash of a plain string or number value (0 when there is none to intern), eight bytes a step.
        static func hash(_ found: JSONLookup, _ message: UnsafeRawBufferPointer) -> UInt64 {
            switch found {
            case .string(let r, escaped: false), .number(let r):
                let h = FastHash.hash(bytes: UnsafeRawBufferPointer(rebasing: message[r]))
                return h == 0 ? 1 : h
            default:
                return 0
            }
        }

        /// A scanned batch whose events the detectors have not seen yet.
        private var pending: (logs: LogBatch, scans: ScanResults)?

        func process(_ batch: Batch, into output: inout TransformOutput) throws {
            guard case .logs(let logs) = batch.payload else { return }
            let width = lookup.paths.count
            let scans = ScanResults(events: logs.count, width: width)
            let lookup = self.lookup
            // More parts than cores: when the source thread takes a core for a while, the other one takes more parts.
            let parts = logs.count >= 512 ? 8 : 1
            let previous = pending
            let shards = self.shards
            let config = self.config
            // Scanning this batch overlaps detecting the previous one: the detectors' shards and the
            // scan's parts are one set of work items, so neither core waits at a barrier between them.
            DispatchQueue.concurrentPerform(iterations: parts + (previous == nil ? 0 : shards.count)) { item in
                if item < parts {
                    let lower = logs.count * item / parts, upper = logs.count * (item + 1) / parts
                    for i in lower..<upper {
                        let slots = UnsafeMutableBufferPointer(rebasing: scans.lookups[(i * width)..<((i + 1) * width)])
                        let message = logs.message(i)
                        scans.isObject[i] = lookup.resolve(in: message, into: slots) == .object
                        for k in 0..<width { scans.hashes[i * width + k] = Runner.hash(slots[k], message) }
                    }
                } else if let previous {
                    Runner.detect(previous.logs, previous.scans, shard: item - parts, of: shards, config: config, width: width)
                }
            }
            previous?.scans.release()
            pending = (logs, scans)
            finishRound(into: &output)
        }

        /// Feeds the pending scanned batch to the detectors (end of input, or a quiet moment live).
        private func detectPending() {
            guard let (logs, scans) = pending else { return }
            pending = nil
            let shards = self.shards, config = self.config, width = lookup.paths.count
            DispatchQueue.concurrentPerform(iterations: shards.count) { index in
                Runner.detect(logs, scans, shard: index, of: shards, config: config, width: width)
            }
            scans.release()
        }

        /// Shard `index` takes its keys' events of a scanned batch, in order.
        static func detect(_ logs: LogBatch, _ scans: ScanResults, shard index: Int, of shards: [Shard], config: Config, width: Int) {
            let shardCount = shards.count
            let shard = shards[index]
            for i in 0..<logs.count {
                let base = i * width
                let keyHash = scans.hashes[base] ^ (scans.hashes[base + 1] &* 31) ^ (scans.hashes[base + 2] &* 17) ^ (scans.hashes[base + 3] &* 7)
                // Mixed before the modulo, so no bit pattern of the field hashes can favour one shard.
                guard Int(((keyHash &* 0x9E37_79B9_7F4A_7C15) >> 32) % UInt64(shardCount)) == index else { continue }
                let message = logs.message(i)
                let found = UnsafeMutableBufferPointer(rebasing: scans.lookups[base..<(base + width)])
                func text(_ k: Int) -> String? { shard.text(found[k], message, hash: scans.hashes[base + k]) }
                guard scans.isObject[i], found[0].isPresent else {
                    shard.skipped += 1
                    continue
                }
                // Plain (unescaped) values have byte hashes; then a 64-bit hash of the four names the key.
                let plain = (0..<4).allSatisfy { k in scans.hashes[base + k] != 0 || !found[k].isPresent }
                let key: InsightKey
                if plain, let known = shard.keys[keyHash] {
                    key = known
                } else {
                    guard let name = text(0) else {
                        shard.skipped += 1
                        continue
                    }
                    key = InsightKey(eventSource: text(1) ?? "", eventName: name, awsRegion: text(2) ?? "", recipientAccountId: text(3) ?? "")
                    if plain && shard.keys.count < 100_000 { shard.keys[keyHash] = key }
                }
                let code = text(4)
                let isError = config.errorPattern.map { $0.matches(message) } ?? (code != nil)
                let time = shard.eventTime(found[7], message) ?? logs.timestamp(i)
                if time > shard.newest { shard.newest = time }
                let attributesPlain = (4..<7).allSatisfy { k in scans.hashes[base + k] != 0 || !found[k].isPresent }
                let attributeDigest = attributesPlain
                    ? scans.hashes[base + 4] &* 0x100000001b3 ^ (scans.hashes[base + 5] &* 31) ^ (scans.hashes[base + 6] &* 0x9E3779B1) ^ (found[4].isPresent ? 1 : 0)
                    : nil
                shard.found += shard.detector.observe(timestampMs: time, key: key, isError: isError, errorCode: code,
                                                      userIdentityArn: text(5), userAgent: text(6), attributeDigest: attributeDigest)
            }
        }

        /// Moves the watermark and emits what the detectors found.
        private func finishRound(into output: inout TransformOutput) {
            for shard in shards where shard.newest > watermark { watermark = shard.newest }
            var insights = collect()
            if watermark != .min { insights += advance(to: watermark) }
            emit(insights, into: &output)
            context.metrics.setGauge("insight_keys", Double(shards.map(\.detector.keyCount).reduce(0, +)))
            let skipped = shards.map(\.skipped).reduce(0, +)
            if skipped > 0 { context.metrics.setGauge("events_without_key", Double(skipped)) }
        }

        private func collect() -> [InsightEvent] {
            var all: [InsightEvent] = []
            for shard in shards {
                all += shard.found
                shard.found = []
            }
            return all
        }

        private func advance(to ms: Int64) -> [InsightEvent] {
            var all: [InsightEvent] = []
            for shard in shards { all += shard.detector.advance(toMs: ms) }
            return all
        }

        private func emit(_ insights: [InsightEvent], into output: inout TransformOutput) {
            guard !insights.isEmpty else { return }
            // The same order whatever the sharding: by time, then id.
            let ordered = insights.sorted { ($0.eventTime, $0.eventID) < ($1.eventTime, $1.eventID) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            var events = ordered.map { event in
                StructuredEvent(kind: .insight, timestamp: event.timestampMs, key: event.sharedEventID,
                                body: (try? encoder.encode(event)).map { [UInt8]($0) } ?? [])
            }
            if let gate { events = gate.pass(events) }
            if !events.isEmpty { output.emit(Batch(.events(.insight, events))) }
        }

        func tick(nowMillis: Int64, into output: inout TransformOutput) throws {
            if let released = gate?.drainReleased(), !released.isEmpty { output.emit(Batch(.events(.insight, released))) }
            // A batch waits for the next one only while batches keep coming.
            if pending != nil {
                detectPending()
                finishRound(into: &output)
            }
            // A quiet stream still ends its episodes once event time has clearly moved on.
            if watermark != .min { emit(advance(to: max(watermark, nowMillis - 120_000)), into: &output) }
            if nowMillis - lastSave >= 60_000 { save(); lastSave = nowMillis }
        }

        func finish(into output: inout TransformOutput) throws {
            defer { gate?.stop() }
            detectPending()
            finishRound(into: &output)
            if watermark != .min { emit(advance(to: watermark + 60_000), into: &output) }
            if !context.once { save() }
        }

        private func save() {
            guard let data = try? JSONEncoder().encode(SavedState(shards: shards.map(\.detector))) else { return }
            StageStateFile.write(data, to: statePath, directory: context.stateDirectory)
        }
    }
}

/// Per-event lookup results filled by several threads, each on its own range of events.
final class ScanResults: @unchecked Sendable {
    let lookups: UnsafeMutableBufferPointer<JSONLookup>
    let isObject: UnsafeMutableBufferPointer<Bool>
    let hashes: UnsafeMutableBufferPointer<UInt64>

    init(events: Int, width: Int) {
        hashes = .allocate(capacity: max(1, events * width))
        hashes.initialize(repeating: 0)
        lookups = .allocate(capacity: max(1, events * width))
        lookups.initialize(repeating: .missing)
        isObject = .allocate(capacity: max(1, events))
        isObject.initialize(repeating: false)
    }

    func release() {
        lookups.deallocate()
        isObject.deallocate()
        hashes.deallocate()
    }
}

extension JSONLookup {
    /// Whether the selector reached a value (of any kind).
    fileprivate var isPresent: Bool {
        switch self {
        case .missing, .notJSON: false
        default: true
        }
    }
}
