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

/// `insights`: CloudTrail-Insights-style detection on any JSON log stream. Per key (by default
/// CloudTrail's eventSource/eventName/region/account) it learns per-minute call and error rates
/// and emits Start and End insight events, shaped like CloudTrail's, when a rate departs from its
/// baseline. Everything runs on event time, so replays find the same insights.
struct InsightsTransform: TransformKind {
    struct Config: StageConfig {
        /// JSON selector naming the thing whose rate is watched (default `$.eventName`).
        var key = "$.eventName"
        /// Optional selectors that refine the key (CloudTrail: source, region, account).
        var eventSource = "$.eventSource"
        var region = "$.awsRegion"
        var account = "$.recipientAccountId"
        /// An event is an error when this filter pattern matches (default: an errorCode is present).
        var errorPattern: FilterPattern?
        var errorCode = "$.errorCode"
        var userIdentity = "$.userIdentity.arn"
        var userAgent = "$.userAgent"
        /// Where the event time is (RFC 3339); when absent or unreadable, the event's own time is used.
        var eventTime = "$.eventTime"
        var baselineDays = 7
        var minimumHistory = ConfigDuration(milliseconds: 6 * 3_600_000)
        var deviations = 6.0
        var minimumCount = 10.0
        var types: [InsightType] = [.apiCallRate, .apiErrorRate]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case key, eventSource = "event_source", region, account, errorPattern = "error_pattern", errorCode = "error_code"
            case userIdentity = "user_identity", userAgent = "user_agent", eventTime = "event_time", baselineDays = "baseline_days"
            case minimumHistory = "minimum_history", deviations, minimumCount = "minimum_count", types
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            key = try c.decodeIfPresent(String.self, forKey: .key) ?? key
            eventSource = try c.decodeIfPresent(String.self, forKey: .eventSource) ?? eventSource
            region = try c.decodeIfPresent(String.self, forKey: .region) ?? region
            account = try c.decodeIfPresent(String.self, forKey: .account) ?? account
            errorPattern = try c.decodeFilterPatternIfPresent(.errorPattern)
            errorCode = try c.decodeIfPresent(String.self, forKey: .errorCode) ?? errorCode
            userIdentity = try c.decodeIfPresent(String.self, forKey: .userIdentity) ?? userIdentity
            userAgent = try c.decodeIfPresent(String.self, forKey: .userAgent) ?? userAgent
            eventTime = try c.decodeIfPresent(String.self, forKey: .eventTime) ?? eventTime
            baselineDays = try c.decodeIfPresent(Int.self, forKey: .baselineDays) ?? baselineDays
            minimumHistory = try c.decodeIfPresent(ConfigDuration.self, forKey: .minimumHistory) ?? minimumHistory
            deviations = try c.decodeIfPresent(Double.self, forKey: .deviations) ?? deviations
            minimumCount = try c.decodeIfPresent(Double.self, forKey: .minimumCount) ?? minimumCount
            if let names = try c.decodeIfPresent([String].self, forKey: .types) {
                types = try names.map { name in
                    guard let type = InsightType(rawValue: name) else {
                        throw SettingError(codingPath: c.codingPath + [CodingKeys.types], message: "unknown insight type '\(name)'",
                                           expected: "ApiCallRateInsight or ApiErrorRateInsight")
                    }
                    return type
                }
            }
            for (setting, text) in [(CodingKeys.key, key), (.eventSource, eventSource), (.region, region), (.account, account),
                                    (.errorCode, errorCode), (.userIdentity, userIdentity), (.userAgent, userAgent), (.eventTime, eventTime)] {
                do { _ = try JSONPath(text) } catch {
                    throw SettingError(codingPath: c.codingPath + [setting], message: "invalid JSON selector '\(text)': \(error.message)",
                                       expected: "a selector such as $.eventName")
                }
            }
            guard (1...90).contains(baselineDays) else {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.baselineDays], message: "\(baselineDays) is out of range", expected: "1 to 90 days")
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

    final class Runner: Transform {
        let config: Config
        let context: StageContext
        var detector: InsightsDetector
        let lookup: JSONMultiLookup
        var results: [JSONLookup] = []
        var watermark: Int64 = .min
        var lastSave = MonotonicClock.wallMillis()
        var skipped = 0
        var statePath: String { context.stateDirectory + "/insights.json" }
        private var cache: [[UInt8]: String] = [:]

        init(config: Config, context: StageContext) throws {
            self.config = config
            self.context = context
            detector = InsightsDetector(configuration: .init(
                types: Set(config.types), baselineDays: config.baselineDays,
                minimumHistoryMinutes: Int(config.minimumHistory.milliseconds / 60_000),
                minimumCount: config.minimumCount, deviations: config.deviations))
            lookup = JSONMultiLookup(try [config.key, config.eventSource, config.region, config.account, config.errorCode,
                                          config.userIdentity, config.userAgent, config.eventTime].map { try JSONPath($0) })
            if !context.once, let data = FileManager.default.contents(atPath: statePath),
               let saved = try? JSONDecoder().decode(InsightsDetector.self, from: data) {
                detector = saved
                context.log.log(.info, context.id, "restored baselines of \(detector.keyCount) keys from \(statePath)")
            }
        }

        /// Interned text of a selector's value: keys repeat endlessly, so each distinct text becomes a
        /// String once, found again by a hash of its bytes (checked byte for byte).
        private var interned: [UInt64: (bytes: [UInt8], text: String)] = [:]

        /// FNV-1a of a plain string or number value (0 when there is none to intern).
        static func hash(_ found: JSONLookup, _ message: UnsafeRawBufferPointer) -> UInt64 {
            switch found {
            case .string(let r, escaped: false), .number(let r):
                var hash: UInt64 = 0xcbf29ce484222325
                for b in UnsafeRawBufferPointer(rebasing: message[r]) { hash = (hash ^ UInt64(b)) &* 0x100000001b3 }
                return hash
            default:
                return 0
            }
        }

        private func text(_ found: JSONLookup, _ message: UnsafeRawBufferPointer, hash: UInt64) -> String? {
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
               known.bytes.withUnsafeBytes({ memcmp($0.baseAddress!, slice.baseAddress!, slice.count) == 0 }) || slice.isEmpty {
                return known.text
            }
            let text = String(decoding: slice, as: UTF8.self)
            if interned.count < 100_000 { interned[hash] = (Array(slice), text) }
            return text
        }

        private var lastTimeText: [UInt8] = []
        private var lastTime: Int64 = 0

        private func eventTime(_ found: JSONLookup, _ message: UnsafeRawBufferPointer) -> Int64? {
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

        func process(_ batch: Batch, into output: inout TransformOutput) throws {
            guard case .logs(let logs) = batch.payload else { return }
            var insights: [InsightEvent] = []
            // The JSON scans (the expensive part) run on both cores; the detector then takes the
            // events in order on this one.
            let width = lookup.paths.count
            let scans = ScanResults(events: logs.count, width: width)
            let lookup = self.lookup
            let parts = logs.count >= 2048 ? 2 : 1
            DispatchQueue.concurrentPerform(iterations: parts) { part in
                let lower = logs.count * part / parts, upper = logs.count * (part + 1) / parts
                for i in lower..<upper {
                    let slots = UnsafeMutableBufferPointer(rebasing: scans.lookups[(i * width)..<((i + 1) * width)])
                    let message = logs.message(i)
                    scans.isObject[i] = lookup.resolve(in: message, into: slots) == .object
                    for k in 0..<width { scans.hashes[i * width + k] = Runner.hash(slots[k], message) }
                }
            }
            defer { scans.release() }
            for i in 0..<logs.count {
                let message = logs.message(i)
                let found = UnsafeMutableBufferPointer(rebasing: scans.lookups[(i * width)..<((i + 1) * width)])
                let hashes = UnsafeMutableBufferPointer(rebasing: scans.hashes[(i * width)..<((i + 1) * width)])
                func text(_ k: Int) -> String? { self.text(found[k], message, hash: hashes[k]) }
                guard scans.isObject[i], let name = text(0) else {
                    skipped += 1
                    continue
                }
                let key = InsightKey(eventSource: text(1) ?? "", eventName: name,
                                     awsRegion: text(2) ?? "", recipientAccountId: text(3) ?? "")
                let code = text(4)
                let isError = config.errorPattern.map { $0.matches(message) } ?? (code != nil)
                let time = eventTime(found[7], message) ?? logs.timestamp(i)
                if time > watermark { watermark = time }
                insights += detector.observe(timestampMs: time, key: key, isError: isError, errorCode: code,
                                             userIdentityArn: text(5), userAgent: text(6))
            }
            if watermark != .min { insights += detector.advance(toMs: watermark) }
            emit(insights, into: &output)
            context.metrics.setGauge("insight_keys", Double(detector.keyCount))
            if skipped > 0 { context.metrics.setGauge("events_without_key", Double(skipped)) }
        }

        private func emit(_ insights: [InsightEvent], into output: inout TransformOutput) {
            guard !insights.isEmpty else { return }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            output.emit(Batch(.events(.insight, insights.map { event in
                StructuredEvent(kind: .insight, timestamp: event.timestampMs, key: event.sharedEventID,
                                body: (try? encoder.encode(event)).map { [UInt8]($0) } ?? [])
            })))
        }

        func tick(nowMillis: Int64, into output: inout TransformOutput) throws {
            // A quiet stream still ends its episodes once event time has clearly moved on.
            if watermark != .min { emit(detector.advance(toMs: max(watermark, nowMillis - 120_000)), into: &output) }
            if nowMillis - lastSave >= 60_000 { save(); lastSave = nowMillis }
        }

        func finish(into output: inout TransformOutput) throws {
            if watermark != .min { emit(detector.advance(toMs: watermark + 60_000), into: &output) }
            if !context.once { save() }
        }

        private func save() {
            guard let data = try? JSONEncoder().encode(detector) else { return }
            try? FileManager.default.createDirectory(atPath: context.stateDirectory, withIntermediateDirectories: true,
                                                     attributes: [.posixPermissions: 0o750])
            let temporary = statePath + ".tmp"
            if FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o640]) {
                _ = rename(temporary, statePath)
            }
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
