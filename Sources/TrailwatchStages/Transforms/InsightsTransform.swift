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
        var baselineDays = 7
        var minimumHistory = ConfigDuration(milliseconds: 6 * 3_600_000)
        var deviations = 6.0
        var minimumCount = 10.0
        var types: [InsightType] = [.apiCallRate, .apiErrorRate]

        enum CodingKeys: String, CodingKey, CaseIterable {
            case key, eventSource = "event_source", region, account, errorPattern = "error_pattern", errorCode = "error_code"
            case userIdentity = "user_identity", userAgent = "user_agent", baselineDays = "baseline_days"
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
                                    (.errorCode, errorCode), (.userIdentity, userIdentity), (.userAgent, userAgent)] {
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
                                          config.userIdentity, config.userAgent].map { try JSONPath($0) })
            if !context.once, let data = FileManager.default.contents(atPath: statePath),
               let saved = try? JSONDecoder().decode(InsightsDetector.self, from: data) {
                detector = saved
                context.log.log(.info, context.id, "restored baselines of \(detector.keyCount) keys from \(statePath)")
            }
        }

        /// Interned text of a selector's value (keys repeat endlessly; strings are built once).
        private func text(_ found: JSONLookup, _ message: UnsafeRawBufferPointer) -> String? {
            guard let bytes = found.scalarText(in: message) else { return nil }
            if let known = cache[bytes] { return known }
            let string = String(decoding: bytes, as: UTF8.self)
            if cache.count < 100_000 { cache[bytes] = string }
            return string
        }

        func process(_ batch: Batch, into output: inout TransformOutput) throws {
            guard case .logs(let logs) = batch.payload else { return }
            var insights: [InsightEvent] = []
            for i in 0..<logs.count {
                let message = logs.message(i)
                guard lookup.resolve(in: message, into: &results) == .object, let name = text(results[0], message) else {
                    skipped += 1
                    continue
                }
                let key = InsightKey(eventSource: text(results[1], message) ?? "", eventName: name,
                                     awsRegion: text(results[2], message) ?? "", recipientAccountId: text(results[3], message) ?? "")
                let code = text(results[4], message)
                let isError = config.errorPattern.map { $0.matches(message) } ?? (code != nil)
                let time = logs.timestamp(i)
                if time > watermark { watermark = time }
                insights += detector.observe(timestampMs: time, key: key, isError: isError, errorCode: code,
                                             userIdentityArn: text(results[5], message), userAgent: text(results[6], message))
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
