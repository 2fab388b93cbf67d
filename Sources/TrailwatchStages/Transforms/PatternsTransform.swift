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

        /// Buffers kept from batch to batch, so mining a batch allocates little: the masked messages, the
        /// parameter ranges of all messages (each message's end in `rangeEnds`) and the label values per message.
        private var premasked = PremaskedMessages()
        private var ranges: [Range<Int>] = []
        private var rangeEnds: [Int] = []
        /// The field values of the templates met in this batch, and which of them each event gets.
        private var batchLabels: [(id: FieldValue, text: FieldValue)] = []
        private var batchLabelIndex: [UInt64: Int32] = [:]
        private var eventLabels: [Int32] = []
        private var labelsVersion: UInt64 = .max
        /// Parts a batch is cut into for the work that runs on all cores (more than cores, so a core that the
        /// source or a sink takes for a while only delays its own parts).
        static let parts = 8

        func process(_ batch: Batch, into output: inout TransformOutput) throws {
            guard case .logs(var logs) = batch.payload else { return }
            let count = logs.count
            // Masking depends on the message alone: on all cores. Grouping needs the miner's state: in order.
            // The grouping of a part overlaps the masking of the parts after it.
            let view = logs
            ranges.removeAll(keepingCapacity: true)
            rangeEnds.removeAll(keepingCapacity: true)
            batchLabels.removeAll(keepingCapacity: true)
            batchLabelIndex.removeAll(keepingCapacity: true)
            eventLabels.removeAll(keepingCapacity: true)
            var events: [PatternEvent] = []
            miner.mine(&premasked, count: count, parts: Self.parts, message: { view.message($0) },
                       parameterRanges: &ranges) { i, mined, ranges in
                rangeEnds.append(ranges.count)
                let time = view.timestamp(i)
                if time > watermark { watermark = time }
                let observed = detector.observe(templateID: mined.templateID, template: mined.template, timestampMs: time)
                if !observed.isEmpty { events += observed }
                if config.annotate { eventLabels.append(label(mined)) }
            }
            if config.annotate { annotate(&logs) }
            if watermark != .min { events += detector.advance(toMs: watermark) }
            output.emit(Batch(.logs(logs)))
            emit(events, into: &output)
            context.metrics.setGauge("templates", Double(miner.templateCount))
        }

        /// The index in ``batchLabels`` of the field values for the template a message was given. Looked up by id
        /// alone while no template text has changed (``TemplateMiner/textVersion``); values are made once per
        /// template and text, and shared by its events.
        private func label(_ mined: TemplateMiner.Assignment) -> Int32 {
            if mined.textVersion != labelsVersion {
                labelsVersion = mined.textVersion
                batchLabelIndex.removeAll(keepingCapacity: true)
            }
            if let k = batchLabelIndex[mined.templateID] { return k }
            let values: (id: FieldValue, text: FieldValue)
            if let cached = labels[mined.templateID], cached.template == mined.template {
                values = (cached.id, cached.text)
            } else {
                values = (.string(TemplateMiner.idString(mined.templateID)), .string(mined.template))
                if labels.count > config.maxTemplates * 2 { labels.removeAll(keepingCapacity: true) }
                labels[mined.templateID] = (mined.template, values.id, values.text)
            }
            let k = Int32(batchLabels.count)
            batchLabels.append(values)
            batchLabelIndex[mined.templateID] = k
            return k
        }

        /// Adds `template_id`, `template` and `parameters` (the values, escaped straight from the message) to each
        /// event's fields, on all cores.
        private func annotate(_ logs: inout LogBatch) {
            let count = logs.count
            var column = logs.fields
            logs.fields = []
            if column.isEmpty { column = Array(repeating: nil, count: count) }
            let view = logs, ranges = self.ranges, rangeEnds = self.rangeEnds
            let labels = batchLabels, eventLabels = self.eventLabels
            let parts = count >= 512 ? Self.parts : 1
            column.withUnsafeMutableBufferPointer { column in
                // Each part writes only its own events' slots.
                nonisolated(unsafe) let slots = column
                DispatchQueue.concurrentPerform(iterations: parts) { part in
                    for i in (count * part / parts)..<(count * (part + 1) / parts) {
                        let message = view.message(i)
                        let first = i == 0 ? 0 : rangeEnds[i - 1]
                        var size = 2
                        for k in first..<rangeEnds[i] { size += ranges[k].count + 3 }
                        var parameters = ByteBuffer(reservingCapacity: size)
                        parameters.append(UInt8(ascii: "["))
                        for k in first..<rangeEnds[i] where ranges[k].upperBound <= message.count {
                            if k > first { parameters.append(UInt8(ascii: ",")) }
                            JSONEscaping.appendString(UnsafeRawBufferPointer(rebasing: message[ranges[k]]), to: &parameters)
                        }
                        parameters.append(UInt8(ascii: "]"))
                        let label = labels[Int(eventLabels[i])]
                        if var fields = slots[i] {
                            fields.set("template_id", label.id)
                            fields.set("template", label.text)
                            fields.set("parameters", .json(parameters.bytes))
                            slots[i] = fields
                        } else {
                            slots[i] = Fields([("template_id", label.id), ("template", label.text),
                                               ("parameters", .json(parameters.bytes))])
                        }
                    }
                }
            }
            logs.fields = column
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
