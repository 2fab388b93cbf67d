import Alarms
import Foundation
import Synchronization
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime
import TrailwatchStore
import Yams

/// `alarm`: CloudWatch metric alarms over the metric datapoints it is fed. Definitions are
/// PutMetricAlarm JSON (or the same keys in YAML), inline or from a file, static thresholds or
/// `ANOMALY_DETECTION_BAND` alarms. State changes go out on the main output as alarm events;
/// anomaly bands go out on `bands` as metric datapoints (dimension `Band`: Expected/Upper/Lower).
///
/// Evaluation runs on event time: a period is judged once a datapoint of a later period arrives
/// (or, live, `evaluation_delay` after it ended), so a replay gives the same transitions.
struct AlarmTransform: TransformKind {
    struct Config: StageConfig {
        var definitions: [AlarmDefinition] = []
        var definitionFile: String?
        var evaluationDelay = ConfigDuration(milliseconds: 120_000)
        var bandMinimumHistory = ConfigDuration(milliseconds: 3 * 3_600_000)
        var bandHistory = ConfigDuration(milliseconds: 14 * 86_400_000)
        var bandIncidentMemory = ConfigDuration(milliseconds: AnomalyBandModel.Settings().incidentMemory)
        var bandRecurrenceWindow = ConfigDuration(milliseconds: AnomalyBandModel.Settings().recurrenceWindow)
        var bandDrift = true
        var saveInterval = ConfigDuration(milliseconds: 5_000)
        var sharedStore: StoreLocation?
        var apiAlarms: StoreLocation?

        static let settings = SettingsSchema<Config>(
            .custom("definition", type: "mapping or list of mappings", "One PutMetricAlarm definition (or a list of them) in YAML, with "
                    + "AWS's key names.", storedAt: \Config.definitions) { config, c, key in
                let isList = (try? c.decode([AlarmDefinition].self, forKey: key)) != nil
                config.definitions = isList ? try c.decode([AlarmDefinition].self, forKey: key) : [try c.decode(AlarmDefinition.self, forKey: key)]
                for (index, definition) in config.definitions.enumerated() {
                    do throws(AlarmDefinition.Invalid) { try definition.validate() } catch {
                        var path = c.codingPath + [key]
                        if isList { path.append(AnyCodingKey(intValue: index)) }
                        throw SettingError(codingPath: path + [AnyCodingKey(stringValue: error.key)], message: error.message,
                                           expected: "a PutMetricAlarm definition CloudWatch would accept")
                    }
                }
                try rejectDuplicateNames(config.definitions, codingPath: c.codingPath + [key])
            },
            .setting("definition_file", \.definitionFile, "A file (relative to the pipeline file) holding PutMetricAlarm JSON or YAML: one "
                     + "definition, a list, or `aws cloudwatch describe-alarms` output (`MetricAlarms`). Exactly one of `definition` and "
                     + "`definition_file`."),
            .setting("evaluation_delay", \.evaluationDelay, "Live mode: a period with no datapoint is judged (as missing data) this long after it ended."),
            .setting("band_minimum_history", \.bandMinimumHistory, "Anomaly bands appear after this much history (and at least 12 datapoints)."),
            .setting("band_history", \.bandHistory, "History the band model trains on. At least 1h.",
                     check: { $0.milliseconds < 3_600_000 ? SettingIssue("\($0) is too short", expected: "at least 1h") : nil }),
            .setting("band_incident_memory", \.bandIncidentMemory, "How long a breach holds its side of the anomaly band out to "
                     + "where it reached, so the rest of one incident does not alarm again while a larger excursion does (0s: off; "
                     + "see [the anomaly band model](#the-anomaly-band-model))."),
            .setting("band_recurrence_window", \.bandRecurrenceWindow, "Recurring excursions: what the metric did within this much "
                     + "of the same time of day on most of the last days (a nightly job) is no incident on its own (0s: off).",
                     check: { $0.milliseconds >= 43_200_000 ? SettingIssue("\($0) is too long", expected: "less than 12h") : nil }),
            .setting("band_drift", \.bandDrift, "Drifts: the last 72 datapoints' prediction errors (six hours at a 5-minute period), judged together against their own "
                     + "history, narrow the band on their side when they lean one way (catches slow drifts; `false` for a metric whose "
                     + "level wanders by itself)."),
            .setting("save_interval", \.saveInterval, "Live mode: how often the alarm state is saved; input is acknowledged only once a "
                     + "saved state covers it."),
            StoreSettings.sharedStore(\.sharedStore, "A fleet's shared PostgreSQL store: each alarm is then evaluated by one instance at a "
                                      + "time (a lease), over the datapoints every instance wrote there, with its state kept there (see "
                                      + "[PostgreSQL](#postgresql-one-store-for-a-fleet))."),
            StoreSettings.location("api_alarms", \.apiAlarms, "A store (SQLite path or PostgreSQL URL): evaluate the alarms created there "
                                   + "through the CloudWatch API (`cloudwatch_api` source, PutMetricAlarm) over the store's datapoints, "
                                   + "reloaded every second. Instead of `definition`/`definition_file`; see "
                                   + "[the CloudWatch API](#the-cloudwatch-metrics-and-alarms-api-and-cloudtrail-lookupevents).")
        )

        mutating func validate(at codingPath: [any CodingKey]) throws {
            if apiAlarms != nil {
                guard definitions.isEmpty, definitionFile == nil, sharedStore == nil else {
                    throw SettingError(codingPath: codingPath + [Self.key(\Config.apiAlarms)],
                                       message: "api_alarms evaluates the API's alarms; it takes no definition, definition_file or shared_store",
                                       expected: "api_alarms: STORE (the cloudwatch_api source's store) alone")
                }
            }
            guard definitions.isEmpty != (definitionFile == nil) || apiAlarms != nil else {
                throw SettingError(codingPath: codingPath, message: "give exactly one of 'definition' and 'definition_file'",
                                   expected: "definition: {AlarmName: …} or definition_file: alarms/name.json")
            }
        }

        static func rejectDuplicateNames(_ definitions: [AlarmDefinition], codingPath: [any CodingKey]) throws {
            var seen = Set<String>()
            for definition in definitions where !seen.insert(definition.alarmName).inserted {
                throw SettingError(codingPath: codingPath, message: "two alarms are named '\(definition.alarmName)'", expected: "unique AlarmName values")
            }
        }

        var bandSettings: AnomalyBandModel.Settings {
            var settings = AnomalyBandModel.Settings()
            settings.minimumHistory = bandMinimumHistory.milliseconds
            settings.history = bandHistory.milliseconds
            settings.levelWindow = min(settings.levelWindow, bandHistory.milliseconds)
            settings.incidentMemory = bandIncidentMemory.milliseconds
            settings.recurrenceWindow = bandRecurrenceWindow.milliseconds
            if !bandDrift { settings.driftDatapoints = 0 }
            return settings
        }

        /// Inline definitions, or the file's (relative to the pipeline file).
        func loadDefinitions(pipelineDirectory: String) throws(AlarmDefinitionFile.Failure) -> [AlarmDefinition] {
            guard let file = definitionFile else { return definitions }
            let path = file.hasPrefix("/") ? file : pipelineDirectory + "/" + file
            return try AlarmDefinitionFile.load(path)
        }
    }

    static let type = "alarm"
    static let summary = "CloudWatch metric alarms (static thresholds and anomaly bands) over metric datapoints."
    static let bandsPort = "bands"
    static func accepts(_ config: Config) -> Set<EventKind> { [.metric] }
    static func produces(_ config: Config, fedWith inputs: Set<EventKind>) -> Set<EventKind> { [.alarm, .metric] }
    static func produces(_ config: Config, fedWith inputs: Set<EventKind>, at port: String?) -> Set<EventKind> {
        port == bandsPort ? [.metric] : [.alarm]
    }
    static func ports(_ config: Config) -> [String] { [bandsPort] }

    static func check(_ config: Config, _ context: ValidationContext) -> [ConfigDiagnostic] {
        do {
            let definitions = try config.loadDefinitions(pipelineDirectory: context.pipelineDirectory)
            try Config.rejectDuplicateNames(definitions, codingPath: [])
            return []
        } catch let failure as AlarmDefinitionFile.Failure {
            return [ConfigDiagnostic(location: context.location, component: context.component, setting: "definition_file",
                                     message: failure.description, expected: "PutMetricAlarm JSON or YAML")]
        } catch {
            return [ConfigDiagnostic(location: context.location, component: context.component, setting: "definition_file",
                                     message: "\(error)", expected: "unique AlarmName values")]
        }
    }

    static func make(_ config: Config, _ context: StageContext) throws -> any Transform {
        try Runner(config: config, context: context)
    }

    /// Counts emitted alarm events not yet durably written downstream.
    final class Outstanding: Sendable {
        let count = Atomic<Int>(0)
        func token() -> AckToken {
            count.wrappingAdd(1, ordering: .relaxed)
            return AckToken { [self] _ in count.wrappingSubtract(1, ordering: .relaxed) }
        }
    }

    /// What is saved between runs (live mode), per alarm with the definition it was built from.
    struct SavedState: Codable {
        var alarms: [String: SavedAlarm]
    }

    struct SavedAlarm: Codable {
        var definition: String
        var alarm: MetricAlarm
    }

    final class Runner: Transform {
        let config: Config
        let context: StageContext
        var alarms: [MetricAlarm]
        let definitions: [AlarmDefinition]
        /// Each definition as saved with its state (a changed definition does not reuse old state).
        let fingerprints: [String: String]
        /// Input batches not yet released: for each alarm that took data from it, the newest period it touched.
        private var waiting: [(acks: Acknowledgements, periods: [Int: Int64])] = []
        /// Live mode: input whose periods were judged, released once a saved state covers it.
        private var judged: [Acknowledgements] = []
        private let outstanding = Outstanding()
        private var lastSave: Int64
        private var dirty = false
        var statePath: String { context.stateDirectory + "/alarms.json" }
        /// Fleet mode: the evaluation that runs while this instance holds an alarm's lease.
        private var shared: SharedAlarmEvaluator?

        init(config: Config, context: StageContext) throws {
            self.config = config
            self.context = context
            lastSave = context.clock.nowMillis()
            do { definitions = try config.loadDefinitions(pipelineDirectory: context.pipelineDirectory) } catch {
                throw StageError(error.description)
            }
            fingerprints = Dictionary(definitions.map { ($0.alarmName, Self.fingerprint($0)) }, uniquingKeysWith: { a, _ in a })
            alarms = try definitions.map { definition in
                do { return try MetricAlarm(definition: definition, bandSettings: config.bandSettings) } catch {
                    throw StageError("alarm '\(definition.alarmName)': \(error)")
                }
            }
            if let location = config.apiAlarms {
                if !context.once {
                    let bandSettings = config.bandSettings
                    var leases = false
                    if case .postgres = location { leases = true }
                    shared = SharedAlarmEvaluator(location: location, leases: leases,
                                                  definitions: { store in try await SharedAlarmEvaluator.apiDefinitions(store, bandSettings: bandSettings) },
                                                  applySetState: true, evaluationDelay: config.evaluationDelay.milliseconds,
                                                  history: config.bandHistory.milliseconds, log: context.log, component: context.id,
                                                  clock: context.clock)
                }
            } else if let location = config.sharedStore, !context.once {
                for alarm in alarms {
                    if case .percentile = alarm.statistic {
                        throw StageError("alarm '\(alarm.name)': shared_store alarms read merged statistic sets, which keep no samples for \(alarm.statistic.name)")
                    }
                }
                let bandSettings = config.bandSettings
                shared = SharedAlarmEvaluator(
                    location: location,
                    definitions: definitions.map { definition in
                        (definition.alarmName, Self.fingerprint(definition), { try MetricAlarm(definition: definition, bandSettings: bandSettings) })
                    },
                    evaluationDelay: config.evaluationDelay.milliseconds, history: config.bandHistory.milliseconds,
                    log: context.log, component: context.id, clock: context.clock)
            } else if !context.once {
                restore()
            }
        }

        deinit { shared?.stop() }

        var holdsAcknowledgements: Bool { true }

        func process(_ batch: Batch, into output: inout TransformOutput) throws {
            // Fleet mode evaluates from the shared store, where the store sink puts these datapoints.
            guard shared == nil, case .metrics(let data) = batch.payload else {
                batch.acks.release()
                return
            }
            var touched: [Int: Int64] = [:]
            for datum in data {
                for index in alarms.indices where alarms[index].reads(datum.metric) {
                    guard alarms[index].add(datum) else { continue }
                    let start = alarms[index].periodStart(datum.timestamp)
                    touched[index] = max(touched[index] ?? .min, start)
                }
            }
            waiting.append((batch.acks, touched))
            if !touched.isEmpty { dirty = true }
            var step = Steps()
            // Every period before the newest datapoint's period is complete.
            for (index, newest) in touched { step.add(alarms[index].advance(until: newest), of: alarms[index]) }
            emit(step, into: &output)
        }

        func tick(nowMillis: Int64, into output: inout TransformOutput) throws {
            if let shared {
                let produced = shared.drain()
                if !produced.bands.isEmpty { output.emit(Batch(.metrics(produced.bands)), port: AlarmTransform.bandsPort) }
                if !produced.events.isEmpty { output.emit(Batch(.events(.alarm, produced.events), acks: produced.acks)) } else { produced.acks.release() }
                return
            }
            var step = Steps()
            for index in alarms.indices {
                step.add(alarms[index].advance(until: nowMillis - config.evaluationDelay.milliseconds), of: alarms[index])
            }
            emit(step, into: &output)
            if nowMillis - lastSave >= config.saveInterval.milliseconds { saveIfSettled(now: nowMillis) }
        }

        func finish(into output: inout TransformOutput) throws {
            if let shared {
                shared.stop()
                for entry in waiting { entry.acks.release() }
                waiting = []
                return
            }
            var step = Steps()
            for index in alarms.indices {
                if let end = alarms[index].newestOpenPeriodEnd { step.add(alarms[index].advance(until: end), of: alarms[index]) }
            }
            emit(step, into: &output)
            if !context.once { save() }
            for entry in waiting { entry.acks.release() }
            waiting = []
        }

        /// Alarm events and band datapoints of one round of evaluation.
        struct Steps {
            var events: [StructuredEvent] = []
            var bands: [MetricDatum] = []

            mutating func add(_ step: MetricAlarm.Step, of alarm: MetricAlarm) {
                events += step.changes.map { AlarmEventBody.event(for: $0, alarm: alarm) }
                for (start, band) in step.bands {
                    for (name, value) in [("Expected", band.expected), ("Upper", band.upper), ("Lower", band.lower)] {
                        let identity = MetricIdentity(namespace: alarm.metric.namespace, name: alarm.metric.name,
                                                      dimensions: alarm.metric.dimensions + [Dimension(name: "Band", value: name)])
                        bands.append(MetricDatum(metric: identity, timestamp: start, period: Int(alarm.periodMs / 1000),
                                                 sampleCount: 1, sum: value, minimum: value, maximum: value))
                    }
                }
            }
        }

        private func emit(_ step: Steps, into output: inout TransformOutput) {
            if !step.events.isEmpty || !step.bands.isEmpty { dirty = true }
            // Input whose every period has been judged is done with this stage.
            var done = Acknowledgements()
            waiting.removeAll { entry in
                let complete = entry.periods.allSatisfy { index, start in (alarms[index].nextPeriod ?? .min) > start }
                if complete { done.merge(entry.acks) }
                return complete
            }
            if !step.bands.isEmpty { output.emit(Batch(.metrics(step.bands)), port: AlarmTransform.bandsPort) }
            if context.once {
                // Batch runs keep no state: the input completes with what it caused.
                if step.events.isEmpty { done.release() } else { output.emit(Batch(.events(.alarm, step.events), acks: done)) }
                return
            }
            if !done.isEmpty { judged.append(done) }
            if !step.events.isEmpty {
                output.emit(Batch(.events(.alarm, step.events), acks: Acknowledgements([outstanding.token()])))
            }
        }

        /// Live mode: saves once every emitted alarm event is durable, then releases the input the
        /// saved state covers — so a crash re-reads only what the saved state has not seen.
        private func saveIfSettled(now: Int64) {
            guard outstanding.count.load(ordering: .relaxed) == 0 else { return }
            lastSave = now
            if dirty || !judged.isEmpty { save() }
        }

        private func save() {
            var saved = SavedState(alarms: [:])
            for (definition, alarm) in zip(definitions, alarms) {
                saved.alarms[alarm.name] = SavedAlarm(definition: fingerprints[definition.alarmName] ?? "", alarm: alarm)
            }
            do {
                try StageStateFile.writeDurably(try JSONEncoder().encode(saved), to: statePath)
                dirty = false
                for acks in judged { acks.release() }
                judged = []
            } catch {
                context.log.log(.warning, context.id, "cannot save alarm state to \(statePath): \(error); will retry")
            }
        }

        private func restore() {
            guard let data = FileManager.default.contents(atPath: statePath),
                  let saved = try? JSONDecoder().decode(SavedState.self, from: data) else { return }
            var restored = 0
            for (index, definition) in definitions.enumerated() {
                // A changed definition starts afresh: its old state would not mean the same thing.
                if let entry = saved.alarms[definition.alarmName], entry.definition == fingerprints[definition.alarmName] {
                    alarms[index] = entry.alarm
                    restored += 1
                }
            }
            if restored > 0 { context.log.log(.info, context.id, "restored the state of \(restored) alarm(s) from \(statePath)") }
        }

        static func fingerprint(_ definition: AlarmDefinition) -> String { definition.fingerprint }
    }
}

/// The alarm event body, shaped like CloudWatch's "Alarm State Change" event.
enum AlarmEventBody {
    struct Body: Encodable {
        var detailType = "CloudWatch Alarm State Change"
        var time: String
        var alarmName: String
        var state: State
        var previousState: State
        var configuration: Configuration
        enum CodingKeys: String, CodingKey { case detailType = "detail-type", time, alarmName, state, previousState, configuration }
    }

    struct State: Encodable {
        var value: String
        var reason: String?
        var reasonData: ReasonData?
        var timestamp: String
    }

    struct ReasonData: Encodable {
        var evaluatedDatapoints: [Datapoint]
    }

    struct Datapoint: Encodable {
        var timestamp: String
        var value: Double?
        var expected: Double?
        var lower: Double?
        var upper: Double?
    }

    struct Configuration: Encodable {
        var namespace: String
        var metricName: String
        var dimensions: [String: String]
        var statistic: String
        var period: Int
        var threshold: Double?
        var bandWidth: Double?
        var comparisonOperator: String
        var evaluationPeriods: Int
        var datapointsToAlarm: Int
        var treatMissingData: String
    }

    static func event(for change: AlarmStateChange, alarm: MetricAlarm) -> StructuredEvent {
        let time = Timestamps.iso8601(change.timestamp)
        var threshold: Double?
        var width: Double?
        switch alarm.threshold {
        case .fixed(let value): threshold = value
        case .band(let k): width = k
        }
        let body = Body(
            time: time, alarmName: change.alarmName,
            state: State(value: change.newState.rawValue, reason: change.reason,
                         reasonData: ReasonData(evaluatedDatapoints: change.datapoints.reversed().map {
                             Datapoint(timestamp: Timestamps.iso8601($0.start), value: $0.value, expected: $0.band?.expected,
                                       lower: $0.band?.lower, upper: $0.band?.upper)
                         }),
                         timestamp: time),
            previousState: State(value: change.oldState.rawValue, timestamp: time),
            configuration: Configuration(
                namespace: alarm.metric.namespace, metricName: alarm.metric.name,
                dimensions: Dictionary(alarm.metric.dimensions.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a }),
                statistic: alarm.statistic.name, period: Int(alarm.periodMs / 1000), threshold: threshold, bandWidth: width,
                comparisonOperator: alarm.comparison.rawValue, evaluationPeriods: alarm.evaluationPeriods,
                datapointsToAlarm: alarm.datapointsToAlarm, treatMissingData: alarm.treatMissingData.rawValue))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let bytes = (try? encoder.encode(body)).map { [UInt8]($0) } ?? []
        return StructuredEvent(kind: .alarm, timestamp: change.timestamp, key: change.alarmName, body: bytes)
    }
}
