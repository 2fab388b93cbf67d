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

        static let settings = SettingsSchema<Config>(
            .setting("max_templates", \.maxTemplates, "Memory bound: beyond it the least recently seen templates are evicted. 1–1000000.",
                     check: SettingIssue.outside(1...1_000_000, expected: "1 to 1000000")),
            .setting("similarity", \.similarity, "How alike a message must be to join a template, a fraction in (0, 1].",
                     check: { $0 > 0 && $0 <= 1 ? nil : SettingIssue("\($0) is out of range", expected: "a fraction in (0, 1]") }),
            .setting("distinct_words", \.distinctWords, "Distinct plain words seen at a position before it becomes `<*>`. 2–1000.",
                     check: SettingIssue.outside(2...1000, expected: "2 to 1000")),
            .setting("distinct_values", \.distinctValues, "Distinct value-shaped words (ids glued to words, host names, `key=value` "
                     + "values) seen at a position before it becomes `<*>`… 2–1000.", check: SettingIssue.outside(2...1000, expected: "2 to 1000")),
            .setting("distinct_share", \.distinctShare, "…when they are at least this share of the messages there (0: no share test).",
                     check: { (0...1).contains($0) ? nil : SettingIssue("\($0) is out of range", expected: "a fraction in [0, 1]") }),
            .setting("learning_period", \.learningPeriod, "No \"new pattern\" events before this much event time."),
            .setting("window", \.window, "The rate-shift window. At least 1s.",
                     check: { $0.milliseconds < 1000 ? SettingIssue("\($0) is too short", expected: "at least 1s") : nil }),
            .setting("increase_factor", \.increaseFactor, "A window this many times above the template's smoothed rate is a `RateIncrease` event."),
            .setting("decrease_factor", \.decreaseFactor, "A window this many times below it is a `RateDecrease` event."),
            .setting("minimum_count", \.minimumCount, "Fewest events in a window for a rate shift."),
            .setting("annotate", \.annotate, "Add `template_id`, `template` and `parameters` to each event's fields.")
        )
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
