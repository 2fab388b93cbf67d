import Alarms
import ArgumentParser
import Foundation
import TrailwatchConfig
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStages
import TrailwatchStore

/// `trailwatch backtest`: runs an alarm over history and lists when it would have fired and cleared.
struct BacktestCommand: AsyncParsableCommand {
    @OptionGroup var logging: LoggingOptions

    static let configuration = CommandConfiguration(
        commandName: "backtest",
        abstract: "Run an alarm over history: when would it have fired and cleared?",
        discussion: """
            With --from, FILE is a pipeline: the alarm (an `alarm` transform's id or an AlarmName) is fed by \
            the same transforms as in the pipeline, with the archives matching the globs as the only source.
            With --metrics, FILE holds alarm definitions (PutMetricAlarm JSON or YAML) and the series is a \
            CSV of timestamp,value rows (one datapoint per row, in the alarm's metric).
            With --store, FILE holds alarm definitions and the series is the alarm's metric as a store holds it \
            (an SQLite file or a postgres:// URL): the datapoints every instance wrote, merged as statistic sets.
            """)

    @Argument(help: "A pipeline YAML file (with --from) or an alarm definition file (with --metrics).")
    var file: String

    @Option(help: "The alarm: an alarm transform's id or an AlarmName (optional when there is only one).")
    var alarm: String?

    @Option(name: .customLong("from"), parsing: .upToNextOption, help: "Archive files or globs to replay.")
    var from: [String] = []

    @Option(help: "A file holding a key for encrypted archives (base64); repeatable. The pipeline's archive sinks' own AES-256 keys are used as well.")
    var keyFile: [String] = []

    @Option(help: "An environment variable holding a key for encrypted archives; repeatable.")
    var keyEnv: [String] = []

    @Option(help: "A CSV metric series (timestamp,value) to evaluate the alarm definitions on.")
    var metrics: String?

    @Option(help: "A store (SQLite file or postgres:// URL) whose datapoints of the alarm's metric to evaluate the alarm definitions on.")
    var store: String?

    @Option(help: "With --store: the earliest datapoint time (RFC 3339); default: the oldest.")
    var start: String?

    @Option(help: "With --store: the latest datapoint time, exclusive (RFC 3339); default: the newest.")
    var end: String?

    @Option(name: [.customLong("format"), .customLong("output")], help: "Output: text, json or csv.")
    var format: BacktestFormat = .text

    @Option(name: .customLong("band-settings"),
            help: "Anomaly band model settings to try, as JSON (e.g. '{\"shiftDatapoints\":12,\"tailQuantile\":0.995}'); unnamed settings keep their defaults.")
    var bandSettings: String?

    /// The model settings to replay with: the defaults, overridden by the keys of `json`.
    static func parseBandSettings(_ json: String?) throws -> AnomalyBandModel.Settings {
        guard let json else { return AnomalyBandModel.Settings() }
        do {
            return try JSONDecoder().decode(AnomalyBandModel.Settings.self, from: Data(json.utf8))
        } catch {
            throw ValidationError("--band-settings: not valid settings JSON (\(error))")
        }
    }

    func run() async throws {
        guard [!from.isEmpty, metrics != nil, store != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give one of --from ARCHIVE_GLOB... (with a pipeline), --metrics SERIES.csv or --store PATH|URL (with alarm definitions)")
        }
        if store == nil && (start != nil || end != nil) { throw ValidationError("--start and --end go with --store") }
        let transitions: [BacktestTransition]
        if let metrics {
            transitions = try Self.replaySeries(definitionsFile: file, series: metrics, alarm: alarm,
                                                bandSettings: try Self.parseBandSettings(bandSettings))
        } else if let store {
            let range = try [start, end].map { text throws -> Int64? in
                guard let text else { return nil }
                guard let time = Self.parseTime(text) else { throw ValidationError("'\(text)' is not a time (RFC 3339, 'YYYY-MM-DD HH:MM:SS' or epoch seconds)") }
                return time
            }
            transitions = try await Self.replayStore(definitionsFile: file, store: store, alarm: alarm, start: range[0], end: range[1],
                                                     bandSettings: try Self.parseBandSettings(bandSettings))
        } else {
            transitions = try await Self.replayArchives(pipeline: file, alarm: alarm, globs: from, keyEnv: keyEnv, keyFile: keyFile)
        }
        print(BacktestReport(transitions: transitions).render(format), terminator: "")
    }

    // MARK: Metric series

    /// The chosen alarm of a definitions file, ready to evaluate.
    static func loadAlarm(definitionsFile: String, alarm name: String?, bandSettings: AnomalyBandModel.Settings = .init()) throws -> MetricAlarm {
        let definitions: [AlarmDefinition]
        do {
            definitions = try AlarmDefinitionFile.load(definitionsFile)
        } catch {
            CLILog.error(error.description)
            throw ExitStatus.invalidInput
        }
        let chosen = try choose(definitions.map(\.alarmName), name)
        guard let definition = definitions.first(where: { $0.alarmName == chosen }) else { throw ExitStatus.invalidInput }
        return try MetricAlarm(definition: definition, bandSettings: bandSettings)
    }

    /// Evaluates the periods before `datum`'s, then adds it; the state changes on the way.
    static func feed(_ metricAlarm: inout MetricAlarm, _ datum: MetricDatum) -> [BacktestTransition] {
        let changes = metricAlarm.advance(until: metricAlarm.periodStart(datum.timestamp)).changes
        metricAlarm.add(datum)
        return changes.map { BacktestTransition($0, periodMs: metricAlarm.periodMs) }
    }

    /// Evaluates what is still open after the last datapoint.
    static func finish(_ metricAlarm: inout MetricAlarm) -> [BacktestTransition] {
        guard let end = metricAlarm.newestOpenPeriodEnd else { return [] }
        return metricAlarm.advance(until: end).changes.map { BacktestTransition($0, periodMs: metricAlarm.periodMs) }
    }

    // MARK: Datapoints in a store

    /// The alarm over the datapoints a store holds for its metric, oldest first, read in pages
    /// (memory stays bounded by the page, not the history).
    static func replayStore(definitionsFile: String, store location: String, alarm name: String?, start: Int64?, end: Int64?,
                            bandSettings: AnomalyBandModel.Settings = .init()) async throws -> [BacktestTransition] {
        var metricAlarm = try loadAlarm(definitionsFile: definitionsFile, alarm: name, bandSettings: bandSettings)
        BuiltinStages.registerStoreBackends()
        let store: any Store
        do { store = try await StoreOpener.open(location, access: .readOnly) } catch {
            CLILog.error("\(error)")
            throw ExitStatus.failure
        }
        let metric = metricAlarm.metric
        let dimensions = StoreConventions.dimensionsText(metric.dimensions)
        var transitions: [BacktestTransition] = []
        var from = start ?? Int64.min / 2
        let until = end ?? Int64.max / 2
        let page = 10_000
        do {
            while from < until {
                let points = try await store.datapoints(namespace: metric.namespace, name: metric.name, dimensions: dimensions, start: from, end: until, limit: page)
                for point in points {
                    transitions += feed(&metricAlarm, MetricDatum(metric: metric, timestamp: point.timestamp, period: point.period, sampleCount: point.sampleCount,
                                                                  sum: point.sum, minimum: point.minimum, maximum: point.maximum))
                }
                guard points.count == page, let last = points.last else { break }
                from = last.timestamp + 1
            }
        } catch {
            await store.close()
            CLILog.error("\(error)")
            throw ExitStatus.failure
        }
        await store.close()
        return transitions + finish(&metricAlarm)
    }

    // MARK: A CSV series

    static func replaySeries(definitionsFile: String, series: String, alarm name: String?,
                             bandSettings: AnomalyBandModel.Settings = .init()) throws -> [BacktestTransition] {
        var metricAlarm = try loadAlarm(definitionsFile: definitionsFile, alarm: name, bandSettings: bandSettings)
        guard let data = FileManager.default.contents(atPath: series) else {
            CLILog.error("\(series): cannot read the file")
            throw ExitStatus.failure
        }
        var transitions: [BacktestTransition] = []
        var lineNumber = 0
        for line in String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline) {
            lineNumber += 1
            let columns = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard columns.count >= 2 else { continue }
            guard let time = parseTime(columns[0]) else {
                if lineNumber == 1 { continue }   // the header
                CLILog.error("\(series):\(lineNumber): '\(columns[0])' is not a timestamp (expected RFC 3339, 'YYYY-MM-DD HH:MM:SS' or epoch seconds)")
                throw ExitStatus.invalidInput
            }
            guard let value = Double(columns[1]) else {
                CLILog.error("\(series):\(lineNumber): '\(columns[1])' is not a number")
                throw ExitStatus.invalidInput
            }
            transitions += feed(&metricAlarm, MetricDatum(metric: metricAlarm.metric, timestamp: time, period: Int(metricAlarm.periodMs / 1000),
                                                          sampleCount: 1, sum: value, minimum: value, maximum: value, values: [value]))
        }
        return transitions + finish(&metricAlarm)
    }

    static func parseTime(_ text: String) -> Int64? {
        if let seconds = Double(text), text.count <= 14 { return Int64(seconds * 1000) }
        let normalized = text.count >= 19 && text[text.index(text.startIndex, offsetBy: 10)] == " "
            ? String(text.prefix(10)) + "T" + String(text.dropFirst(11)) : text
        var bytes = Array(normalized.utf8)
        if !normalized.hasSuffix("Z") && !normalized.dropFirst(19).contains(where: { $0 == "+" || $0 == "-" }) { bytes.append(UInt8(ascii: "Z")) }
        return bytes.withUnsafeBytes { Timestamps.parseISO8601($0) }
    }

    static func choose(_ names: [String], _ wanted: String?) throws -> String {
        if let wanted {
            guard names.contains(wanted) else {
                CLILog.error("no alarm named '\(wanted)' (there are: \(names.joined(separator: ", ")))")
                throw ExitStatus.invalidInput
            }
            return wanted
        }
        guard names.count == 1 else {
            CLILog.error("\(names.count) alarms are defined; choose one with --alarm (\(names.joined(separator: ", ")))")
            throw ExitStatus.usage
        }
        return names[0]
    }

    // MARK: Pipelines over archives

    static func replayArchives(pipeline: String, alarm wanted: String?, globs: [String], keyEnv: [String] = [],
                               keyFile: [String] = []) async throws -> [BacktestTransition] {
        let (planned, diagnostics) = PipelineFiles.plan(path: pipeline)
        for d in diagnostics where d.severity == .error { CLILog.error(d.description) }
        guard let plan = planned else { throw ExitStatus.invalidInput }

        let (target, alarmName) = try chooseAlarmTransform(plan, wanted: wanted, pipeline: pipeline)

        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("trailwatch-backtest-\(getpid())-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let changesFile = scratch + "/changes.jsonl"

        var document = plan.document
        document.settings.dataDir = scratch + "/data"
        document.settings.http = nil
        document.components = Self.rewire(plan: plan, alarm: target.id, globs: globs, output: changesFile, keyEnv: keyEnv, keyFile: keyFile)
        let planner = PipelinePlanner(registry: BuiltinStages.registry, environment: ProcessInfo.processInfo.environment)
        let (rewired, problems) = planner.plan(document: document, pipelineDirectory: plan.pipelineDirectory)
        for d in problems where d.severity == .error { CLILog.error(d.description) }
        guard let rewired else { throw ExitStatus.invalidInput }

        let log = RuntimeLog { level, component, message in
            if level != .info { CLILog.runtime(level, component, message) }
        }
        let summary = await PipelineRunner(plan: rewired, once: true, log: log).run()
        if let failure = summary.failures.first {
            CLILog.error("backtest failed: \(failure)")
            throw ExitStatus.failure
        }
        let text = (FileManager.default.contents(atPath: changesFile)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        var transitions: [BacktestTransition] = []
        for line in text.split(separator: "\n") {
            guard let transition = BacktestTransition(eventJSON: Data(line.utf8)) else { continue }
            if let alarmName, transition.alarm != alarmName { continue }
            transitions.append(transition)
        }
        return transitions
    }

    /// The alarm transform to replay: by id, or the one whose definitions name the alarm (then
    /// only that alarm's changes are reported), or the only one.
    static func chooseAlarmTransform(_ plan: PipelinePlan, wanted: String?, pipeline: String) throws -> (PlannedComponent, alarmName: String?) {
        let alarmComponents = plan.components.filter(\.isAlarmTransform)
        guard !alarmComponents.isEmpty else {
            CLILog.error("\(pipeline): the pipeline has no alarm transform")
            throw ExitStatus.invalidInput
        }
        guard let wanted else {
            guard alarmComponents.count == 1 else {
                CLILog.error("the pipeline has \(alarmComponents.count) alarm transforms; choose one with --alarm (\(alarmComponents.map(\.id).joined(separator: ", ")))")
                throw ExitStatus.usage
            }
            return (alarmComponents[0], nil)
        }
        if let byID = alarmComponents.first(where: { $0.id == wanted }) { return (byID, nil) }
        if let byName = alarmComponents.first(where: { $0.alarmNames(pipelineDirectory: plan.pipelineDirectory).contains(wanted) }) {
            return (byName, wanted)
        }
        CLILog.error("no alarm transform or AlarmName '\(wanted)' in \(pipeline)")
        throw ExitStatus.invalidInput
    }

    /// The alarm's upstream transforms, fed by one archive source, and one file sink after the alarm.
    static func rewire(plan: PipelinePlan, alarm: String, globs: [String], output: String, keyEnv: [String] = [],
                       keyFile: [String] = []) -> [ComponentDeclaration] {
        let byID = Dictionary(plan.components.map { ($0.id, $0.declaration) }, uniquingKeysWith: { a, _ in a })
        var needed = Set<String>()
        var stack = [alarm]
        while let id = stack.popLast() {
            guard let declaration = byID[id], declaration.section == .transforms, needed.insert(id).inserted else { continue }
            stack += declaration.inputs.map(\.component)
        }
        let sourceID = "backtest_history"
        let here = SourceLocation(file: plan.document.file, line: 1, column: 1)
        // Encrypted archives: the keys given, and the AES-256 keys the pipeline's archive sinks write with.
        var envs = keyEnv, files = keyFile
        for planned in plan.components {
            let keys = planned.archiveDecryptionKeys
            envs += keys.environment
            files += keys.files
        }
        var components = [ComponentDeclaration.archiveSource(id: sourceID, include: globs, decryptionKeyEnv: envs, decryptionKeyFile: files, at: here)]
        for planned in plan.components where needed.contains(planned.id) {
            var declaration = planned.declaration
            var inputs: [InputReference] = []
            for input in declaration.inputs {
                if byID[input.component]?.section == .sources {
                    if !inputs.contains(where: { $0.component == sourceID }) {
                        inputs.append(InputReference(component: sourceID, location: input.location))
                    }
                } else {
                    inputs.append(input)
                }
            }
            declaration.inputs = inputs
            components.append(declaration)
        }
        components.append(.jsonFileSink(id: "backtest_changes", input: alarm, path: output, at: here))
        return components
    }
}

enum BacktestFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, csv
}

/// One state change found by a backtest.
struct BacktestTransition: Equatable {
    var alarm: String
    /// When the alarm changed state (end of the period that decided it).
    var time: Int64
    /// Start of the newest period evaluated.
    var periodStart: Int64
    var from: String
    var to: String
    var value: Double?

    init(_ change: AlarmStateChange, periodMs: Int64) {
        alarm = change.alarmName
        time = change.timestamp
        periodStart = change.timestamp - periodMs
        from = change.oldState.rawValue
        to = change.newState.rawValue
        value = change.datapoints.last?.value
    }

    init?(eventJSON: Data) {
        guard let object = try? JSONSerialization.jsonObject(with: eventJSON) as? [String: Any],
              let name = object["alarmName"] as? String,
              let state = object["state"] as? [String: Any], let to = state["value"] as? String,
              let previous = object["previousState"] as? [String: Any], let from = previous["value"] as? String,
              let timeText = object["time"] as? String,
              let time = Array(timeText.utf8).withUnsafeBytes({ Timestamps.parseISO8601($0) }) else { return nil }
        let newest = ((state["reasonData"] as? [String: Any])?["evaluatedDatapoints"] as? [[String: Any]])?.first
        alarm = name
        self.time = time
        periodStart = (newest?["timestamp"] as? String).flatMap { Array($0.utf8).withUnsafeBytes { Timestamps.parseISO8601($0) } } ?? time
        self.from = from
        self.to = to
        value = newest?["value"] as? Double
    }
}

/// Renders a backtest: every transition, then how noisy the alarm would have been.
struct BacktestReport {
    var transitions: [BacktestTransition]

    struct Episode {
        var alarm: String
        var start: Int64
        var end: Int64?
    }

    var episodes: [Episode] {
        var open: [String: Int64] = [:]
        var result: [Episode] = []
        for t in transitions {
            if t.to == "ALARM" { open[t.alarm] = t.time }
            if t.from == "ALARM", let start = open.removeValue(forKey: t.alarm) { result.append(Episode(alarm: t.alarm, start: start, end: t.time)) }
        }
        for (alarm, start) in open.sorted(by: { $0.value < $1.value }) { result.append(Episode(alarm: alarm, start: start, end: nil)) }
        return result.sorted { $0.start < $1.start }
    }

    func render(_ format: BacktestFormat) -> String {
        switch format {
        case .csv:
            return "time,alarm,from,to,value\n" + transitions.map {
                "\(Timestamps.iso8601($0.time)),\(csvField($0.alarm)),\($0.from),\($0.to),\($0.value.map { "\($0)" } ?? "")\n"
            }.joined()
        case .json:
            let rows: [[String: Any]] = transitions.map {
                var row: [String: Any] = ["time": Timestamps.iso8601($0.time), "periodStart": Timestamps.iso8601($0.periodStart),
                                          "alarm": $0.alarm, "from": $0.from, "to": $0.to]
                if let value = $0.value { row["value"] = value }
                return row
            }
            let fired = episodes
            let object: [String: Any] = [
                "transitions": rows, "fired": fired.count,
                "secondsInAlarm": fired.compactMap { e in e.end.map { Double($0 - e.start) / 1000 } }.reduce(0, +),
            ]
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])) ?? Data()
            return String(decoding: data, as: UTF8.self) + "\n"
        case .text:
            guard !transitions.isEmpty else { return "no state changes: the alarm never left its initial state\n" }
            var out = ""
            for t in transitions {
                out += "\(Timestamps.iso8601(t.time))  \(t.alarm)  \(t.from) -> \(t.to)"
                if let value = t.value { out += "  (value \(Self.number(value)))" }
                out += "\n"
            }
            let fired = episodes
            let durations = fired.compactMap { e in e.end.map { $0 - e.start } }
            out += "\nfired \(fired.count) time\(fired.count == 1 ? "" : "s")"
            if !durations.isEmpty {
                out += "; in ALARM for \(Self.duration(durations.reduce(0, +))) in total, longest \(Self.duration(durations.max()!))"
            }
            if fired.contains(where: { $0.end == nil }) { out += "; still in ALARM at the end of the history" }
            return out + "\n"
        }
    }

    private func csvField(_ text: String) -> String {
        text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(format: "%.4g", value)
    }

    static func duration(_ ms: Int64) -> String {
        let minutes = ms / 60_000
        if minutes < 60 { return "\(minutes)m" }
        let hours = minutes / 60
        return hours < 48 ? "\(hours)h\(minutes % 60 > 0 ? "\(minutes % 60)m" : "")" : "\(hours / 24)d\(hours % 24 > 0 ? "\(hours % 24)h" : "")"
    }
}
