import Foundation
import Testing
import TrailwatchConfig
import TrailwatchDashboard
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStages
import TrailwatchTestSupport

/// Every registered stage kind, one loop: its least config validates, it handles an empty batch,
/// and the README documents it exactly as `trailwatch stages` does.
@Suite("Every stage kind") struct StageKindTests {
    /// The least each kind needs (flow YAML, without `type` and `inputs`). A kind registered
    /// without an entry here fails `everyKindHasAMinimalConfigThatValidates`.
    static func minimalSettings(_ dir: TemporaryDirectory) -> [String: String] {
        let email = "\"arn:aws:dataprotection::aws:data-identifier/EmailAddress\""
        return [
            "sources/stdin": "{}",
            "sources/file": "{ include: \(dir.path)/*.log }",
            "sources/archive": "{ include: \(dir.path)/*.jsonl.zst }",
            "sources/cloudtrail": "{ include: \(dir.path)/*.json.gz }",
            "sources/cloudwatch_logs_api": "{}",
            "sources/cloudwatch_api": "{ store: \(dir.path)/api.db }",
            "transforms/filter": "{ contains: ERROR }",
            "transforms/metric_filter": "{ metric_namespace: App, metric_name: Lines }",
            "transforms/route": "{ routes: { errors: ERROR } }",
            "transforms/parse": "{ format: json }",
            "transforms/patterns": "{}",
            "transforms/insights": "{}",
            "transforms/alarm": "{ definition: { AlarmName: Lines, Namespace: App, MetricName: Lines, Statistic: Sum, Period: 60, "
                + "EvaluationPeriods: 1, Threshold: 1, ComparisonOperator: GreaterThanThreshold } }",
            "transforms/mask": "{ policy: { Name: p, Version: \"2021-06-01\", Statement: ["
                + "{ Sid: audit, DataIdentifier: [\(email)], Operation: { Audit: { FindingsDestination: {} } } }, "
                + "{ Sid: redact, DataIdentifier: [\(email)], Operation: { Deidentify: { MaskConfig: {} } } } ] } }",
            "transforms/rule": "{ rules: { launches: { event_pattern: { source: [aws.ec2] } } } }",
            "transforms/trail_select": "{ event_selectors: { EventSelectors: [ { ReadWriteType: All } ] } }",
            "sinks/console": "{}",
            "sinks/file": "{ path: \(dir.path)/out.jsonl }",
            "sinks/archive": "{ directory: \(dir.path)/archive }",
            "sinks/store": "{ path: \(dir.path)/store.db }",
            "sinks/sqlite": "{ path: \(dir.path)/sqlite.db }",
            "sinks/notifier": "{ console: true }",
            // Credentials come from the environment; PATH stands in for both (nothing is sent).
            "sinks/cloudwatch_logs": "{ endpoint: \"http://127.0.0.1:9\", access_key_id_env: PATH, secret_access_key_env: PATH }",
        ]
    }

    struct Kind: CustomStringConvertible {
        var section: ComponentSection
        var descriptor: StageDescriptor
        var description: String { "\(section.rawValue)/\(descriptor.type)" }
    }

    static var kinds: [Kind] {
        ComponentSection.allCases.flatMap { section in
            BuiltinStages.registry.types(in: section).map { Kind(section: section, descriptor: BuiltinStages.registry.descriptor(section: section, type: $0)!) }
        }
    }

    /// Decodes `kind` from its minimal settings and runs its checks.
    static func resolve(_ kind: Kind, in dir: TemporaryDirectory) throws -> ResolvedStage {
        let settings = try #require(minimalSettings(dir)[kind.description], "no minimal config for \(kind) in StageKindTests.minimalSettings")
        let inputs = kind.section == .sources ? "" : "inputs: [x], "
        let yaml = "\(kind.section.rawValue):\n  c: { type: \(kind.descriptor.type), \(inputs)\(settings.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)) }\n"
        let (document, loading) = PipelineLoader(environment: [:]).load(text: yaml, file: "p.yaml")
        #expect(loading.isEmpty, "\(kind): \(loading)")
        let declaration = try #require(document?.components.first)
        switch kind.descriptor.decode(declaration.settings, "p.yaml", "c") {
        case .failure(let error):
            Issue.record("\(kind): \(error)")
            throw error
        case .success(let stage):
            let context = ValidationContext(file: "p.yaml", component: "c", location: declaration.location, pipelineDirectory: dir.path, environment: [:])
            let problems = stage.check(context).filter { $0.severity == .error }
            #expect(problems.isEmpty, "\(kind): \(problems)")
            return stage
        }
    }

    static func context(_ kind: Kind, _ dir: TemporaryDirectory) -> StageContext {
        StageContext(id: "c", settings: GlobalSettings(), once: true, stateDirectory: dir.file("state/c"),
                     metrics: ComponentMetrics(id: "c", type: kind.descriptor.type, section: kind.section.rawValue),
                     log: .silent, pipelineDirectory: dir.path)
    }

    static func emptyBatch(of kind: EventKind, acks: Acknowledgements = Acknowledgements()) -> Batch {
        switch kind {
        case .log:
            Batch(.logs(LogBatch(storage: ByteStorage(capacity: 0), defaultTimestamp: 0, ingestionTime: 0, origin: Origin(logGroup: "g", logStream: "s"))),
                  acks: acks)
        case .metric: Batch(.metrics([]), acks: acks)
        default: Batch(.events(kind, []), acks: acks)
        }
    }

    @Test("every kind has a minimal config that validates", arguments: kinds)
    func everyKindHasAMinimalConfigThatValidates(_ kind: Kind) throws {
        let dir = TemporaryDirectory()
        _ = try Self.resolve(kind, in: dir)
    }

    @Test("every transform lets an empty batch of each kind it takes through without events or errors",
          arguments: kinds.filter { $0.section == .transforms })
    func transformsPassEmptyBatches(_ kind: Kind) throws {
        let dir = TemporaryDirectory()
        let stage = try Self.resolve(kind, in: dir)
        guard case .transform(let make) = stage.factory else { Issue.record("\(kind) is no transform"); return }
        #expect(!stage.accepts.isEmpty, "\(kind) takes nothing")
        for accepted in stage.accepts.sorted() {
            let transform = try make(Self.context(kind, dir))
            var output = TransformOutput()
            try transform.process(Self.emptyBatch(of: accepted), into: &output)
            try transform.finish(into: &output)
            #expect(output.emitted.allSatisfy { $0.batch.count == 0 }, "\(kind) made events out of an empty \(accepted) batch")
        }
    }

    @Test("every sink writes an empty batch of each kind it takes and acknowledges it",
          arguments: kinds.filter { $0.section == .sinks })
    func sinksAcknowledgeEmptyBatches(_ kind: Kind) async throws {
        let dir = TemporaryDirectory()
        let stage = try Self.resolve(kind, in: dir)
        guard case .sink(let make) = stage.factory else { Issue.record("\(kind) is no sink"); return }
        #expect(!stage.accepts.isEmpty, "\(kind) takes nothing")
        let outcomes = OutcomeLog()
        let sink = try make(Self.context(kind, dir))
        try await sink.open()
        for accepted in stage.accepts.sorted() {
            try await sink.write(Self.emptyBatch(of: accepted, acks: Acknowledgements([AckToken { outcomes.record(accepted, $0) }])))
        }
        try await sink.finish()
        #expect(outcomes.all == Dictionary(uniqueKeysWithValues: stage.accepts.map { ($0, true) }), "\(kind)")
    }

    @Test("the README's stage reference is what `trailwatch stages --format markdown` prints")
    func readmeStageReferenceIsGenerated() throws {
        let readme = try String(contentsOf: TestPaths.repositoryRoot.appendingPathComponent("README.md"), encoding: .utf8)
        let generated = StageReference.markdown(StageReference.document(BuiltinStages.registry, dashboards: DashboardDefinition.settings.reference()))
        let regenerate = "Regenerate it with scripts/update-stage-reference.sh (it writes `trailwatch stages --format markdown` into README.md)."
        guard let block = StageReferenceBlock.extract(from: readme) else {
            Issue.record("README.md lacks the stage reference block (\(StageReferenceBlock.begin) … \(StageReferenceBlock.end)). \(regenerate)")
            return
        }
        if block != generated {
            let have = block.split(separator: "\n", omittingEmptySubsequences: false)
            let want = generated.split(separator: "\n", omittingEmptySubsequences: false)
            let line = zip(have, want).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(have.count, want.count)
            Issue.record("""
                README.md's stage reference differs from the stage kinds' own settings and summaries, first at line \(line + 1) of the block:
                  README:             \(line < have.count ? have[line] : "(end)")
                  trailwatch stages:  \(line < want.count ? want[line] : "(end)")
                \(regenerate)
                """)
        }
        for kind in Self.kinds {
            #expect(readme.contains("#### `\(kind.descriptor.type)` \(kind.section.singular)\n"), "README has no reference entry for \(kind)")
        }
    }
}

@Suite("trailwatch stages") struct StageReferenceTests {
    @Test("the JSON form carries every kind of a name with types, defaults, notes and nested settings")
    func json() throws {
        let json = try StageReference.json(StageReference.document(BuiltinStages.registry, type: "file"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let sources = try #require(object["sources"] as? [[String: Any]])
        let sinks = try #require(object["sinks"] as? [[String: Any]])
        #expect(sources.map { $0["type"] as? String } == ["file"] && sinks.map { $0["type"] as? String } == ["file"])
        #expect((object["transforms"] as? [Any])?.isEmpty == true)
        #expect((object["sinkSettings"] as? [[String: Any]])?.first?["key"] as? String == "buffer")
        let settings = try #require(sources.first?["settings"] as? [[String: Any]])
        let include = try #require(settings.first { $0["key"] as? String == "include" })
        #expect(include["required"] as? Bool == true && include["type"] as? String == "string or list of strings")
        let rotateWait = try #require(settings.first { $0["key"] as? String == "rotate_wait" })
        #expect(rotateWait["default"] as? String == "5s" && rotateWait["type"] as? String == "duration")
        let logGroup = try #require(settings.first { $0["key"] as? String == "log_group" })
        #expect(logGroup["default"] == nil && logGroup["defaultNote"] as? String == "the component id")
        let multiline = try #require(settings.first { $0["key"] as? String == "multiline" }?["settings"] as? [[String: Any]])
        #expect(multiline.contains { $0["key"] as? String == "multiline.start_pattern" && $0["required"] as? Bool == true })
    }
}

/// The README's generated stage reference sits between these two lines.
enum StageReferenceBlock {
    static let begin = "<!-- BEGIN GENERATED: trailwatch stages --format markdown (edit the stage kinds, then run scripts/update-stage-reference.sh) -->"
    static let end = "<!-- END GENERATED: trailwatch stages -->"

    static func extract(from readme: String) -> String? {
        guard let start = readme.range(of: begin + "\n"), let stop = readme.range(of: "\n" + end, range: start.upperBound..<readme.endIndex) else { return nil }
        return String(readme[start.upperBound..<stop.lowerBound]) + "\n"
    }
}

/// Acknowledgement outcomes by event kind.
final class OutcomeLog: @unchecked Sendable {   // guarded by lock
    private let lock = NSLock()
    private var outcomes: [EventKind: Bool] = [:]
    func record(_ kind: EventKind, _ success: Bool) { lock.withLock { outcomes[kind] = success } }
    var all: [EventKind: Bool] { lock.withLock { outcomes } }
}
