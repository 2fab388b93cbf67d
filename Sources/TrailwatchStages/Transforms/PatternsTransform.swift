import Foundation
import PatternMining
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `patterns`: online log template mining. Every log event gets `template_id`, `template` and
/// `parameters` fields; after the learning period, a template seen for the first time and a
/// template whose rate shifts sharply become pattern events on the `events` output.
struct PatternsTransform: TransformKind {
    static let eventsPort = "events"

    struct Config: StageConfig {
        var maxTemplates = 10_000
        var similarity = TemplateMiner.Configuration().similarityThreshold
        var distinctWords = TemplateMiner.Configuration().distinctWordsForVariable
        var distinctValues = TemplateMiner.Configuration().distinctValuesForVariable
        var distinctShare = TemplateMiner.Configuration().distinctShareForVariable
        var learningPeriod = ConfigDuration(milliseconds: 3_600_000)
        var window = ConfigDuration(milliseconds: 300_000)
        var increaseFactor = 5.0
        var decreaseFactor = 5.0
        var minimumCount = 20.0
        var annotate = true

        enum CodingKeys: String, CodingKey, CaseIterable {
            case maxTemplates = "max_templates", similarity, distinctWords = "distinct_words", distinctValues = "distinct_values"
            case distinctShare = "distinct_share"
            case learningPeriod = "learning_period", window
            case increaseFactor = "increase_factor", decreaseFactor = "decrease_factor", minimumCount = "minimum_count", annotate
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            maxTemplates = try c.decodeIfPresent(Int.self, forKey: .maxTemplates) ?? maxTemplates
            similarity = try c.decodeIfPresent(Double.self, forKey: .similarity) ?? similarity
            distinctWords = try c.decodeIfPresent(Int.self, forKey: .distinctWords) ?? distinctWords
            distinctValues = try c.decodeIfPresent(Int.self, forKey: .distinctValues) ?? distinctValues
            distinctShare = try c.decodeIfPresent(Double.self, forKey: .distinctShare) ?? distinctShare
            learningPeriod = try c.decodeIfPresent(ConfigDuration.self, forKey: .learningPeriod) ?? learningPeriod
            window = try c.decodeIfPresent(ConfigDuration.self, forKey: .window) ?? window
            increaseFactor = try c.decodeIfPresent(Double.self, forKey: .increaseFactor) ?? increaseFactor
            decreaseFactor = try c.decodeIfPresent(Double.self, forKey: .decreaseFactor) ?? decreaseFactor
            minimumCount = try c.decodeIfPresent(Double.self, forKey: .minimumCount) ?? minimumCount
            annotate = try c.decodeIfPresent(Bool.self, forKey: .annotate) ?? annotate
            guard (1...1_000_000).contains(maxTemplates) else {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.maxTemplates], message: "\(maxTemplates) is out of range", expected: "1 to 1000000")
            }
            guard similarity > 0 && similarity <= 1 else {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.similarity], message: "\(similarity) is out of range", expected: "a fraction in (0, 1]")
            }
            for (key, value) in [(CodingKeys.distinctWords, distinctWords), (.distinctValues, distinctValues)] where !(2...1000).contains(value) {
                throw SettingError(codingPath: c.codingPath + [key], message: "\(value) is out of range", expected: "2 to 1000")
            }
            guard (0...1).contains(distinctShare) else {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.distinctShare], message: "\(distinctShare) is out of range", expected: "a fraction in [0, 1]")
            }
            guard window.milliseconds >= 1000 else {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.window], message: "\(window) is too short", expected: "at least 1s")
            }
        }
    }

    static let type = "patterns"
    static let summary = "Mines log templates; annotates events and emits new-pattern and rate-shift events."
    static func accepts(_ config: Config) -> Set<EventKind> { [.log] }
    static func produces(_ config: Config, fedWith inputs: Set<EventKind>) -> Set<EventKind> { [.log, .pattern] }
    static func ports(_ config: Config) -> [String] { [eventsPort] }

    static func make(_ config: Config, _ context: StageContext) throws -> any Transform {
        Runner(config: config, context: context)
    }

    /// What is persisted between runs (live mode).
    struct State: Codable {
        var miner: TemplateMiner
        var detector: PatternShiftDetector
    }

    final class Runner: Transform {
        let config: Config
        let context: StageContext
        var miner: TemplateMiner
        var detector: PatternShiftDetector
        var watermark: Int64 = .min
        var lastSave: Int64
        var statePath: String { context.stateDirectory + "/patterns.json" }
        /// Field values per template, built once.
        private var labels: [UInt64: (template: String, id: FieldValue, text: FieldValue)] = [:]

        init(config: Config, context: StageContext) {
            self.config = config
            self.context = context
            lastSave = context.clock.nowMillis()
            miner = TemplateMiner(configuration: .init(similarityThreshold: config.similarity, maxTemplates: config.maxTemplates,
                                                       distinctWordsForVariable: config.distinctWords,
                                                       distinctValuesForVariable: config.distinctValues,
                                                       distinctShareForVariable: config.distinctShare))
            detector = PatternShiftDetector(configuration: .init(
                learningPeriodMs: config.learningPeriod.milliseconds, windowMs: config.window.milliseconds,
                increaseFactor: config.increaseFactor, decreaseFactor: config.decreaseFactor, minimumCount: config.minimumCount,
                maxTracked: config.maxTemplates))
            // Batch runs start fresh so they give the same results every time; live runs continue.
            if !context.once, let data = FileManager.default.contents(atPath: statePath),
               let state = try? JSONDecoder().decode(State.self, from: data) {
                miner = state.miner
                detector = state.detector
                context.log.log(.info, context.id, "restored \(miner.templateCount) templates from \(statePath)")
            }
        }

        func process(_ batch: Batch, into output: inout TransformOutput) throws {
            guard case .logs(var logs) = batch.payload else { return }
            var events: [PatternEvent] = []
            for i in 0..<logs.count {
                let message = logs.message(i)
                let mined = miner.add(message)
                let time = logs.timestamp(i)
                if time > watermark { watermark = time }
                events += detector.observe(templateID: mined.templateID, template: mined.template, timestampMs: time)
                if config.annotate {
                    // Template texts and ids are shared strings; parameters are escaped straight from the message.
                    let names: (id: FieldValue, text: FieldValue)
                    if let cached = labels[mined.templateID], cached.template == mined.template {
                        names = (cached.id, cached.text)
                    } else {
                        names = (.string(mined.templateIDString), .string(mined.template))
                        if labels.count > config.maxTemplates * 2 { labels.removeAll(keepingCapacity: true) }
                        labels[mined.templateID] = (mined.template, names.id, names.text)
                    }
                    var parameters = ByteBuffer(reservingCapacity: 64)
                    parameters.append(UInt8(ascii: "["))
                    for (k, range) in mined.parameterRanges.enumerated() where range.upperBound <= message.count {
                        if k > 0 { parameters.append(UInt8(ascii: ",")) }
                        JSONEscaping.appendString(UnsafeRawBufferPointer(rebasing: message[range]), to: &parameters)
                    }
                    parameters.append(UInt8(ascii: "]"))
                    var fields = logs.fields(i) ?? Fields()
                    fields.set("template_id", names.id)
                    fields.set("template", names.text)
                    fields.set("parameters", .json(parameters.bytes))
                    logs.setFields(fields, at: i)
                }
            }
            if watermark != .min { events += detector.advance(toMs: watermark) }
            output.emit(Batch(.logs(logs)))
            emit(events, into: &output)
            context.metrics.setGauge("templates", Double(miner.templateCount))
        }

        private func emit(_ events: [PatternEvent], into output: inout TransformOutput) {
            guard !events.isEmpty else { return }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let structured = events.map { event in
                StructuredEvent(kind: .pattern, timestamp: event.timestampMs, key: event.templateID,
                                body: (try? encoder.encode(event)).map { [UInt8]($0) } ?? [])
            }
            output.emit(Batch(.events(.pattern, structured)), port: PatternsTransform.eventsPort)
        }

        func tick(nowMillis: Int64, into output: inout TransformOutput) throws {
            if nowMillis - lastSave >= 60_000 { save(); lastSave = nowMillis }
        }

        func finish(into output: inout TransformOutput) throws {
            if watermark != .min { emit(detector.advance(toMs: watermark + config.window.milliseconds), into: &output) }
            if !context.once { save() }
        }

        private func save() {
            guard let data = try? JSONEncoder().encode(State(miner: miner, detector: detector)) else { return }
            StageStateFile.write(data, to: statePath, directory: context.stateDirectory)
        }
    }
}
