import Foundation
import TrailwatchCore
import TrailwatchConfig

/// A component ready to run: its declaration, resolved stage and the event kinds it emits.
public struct PlannedComponent: Sendable {
    public var declaration: ComponentDeclaration
    public var stage: ResolvedStage
    public var producedKinds: Set<EventKind>
    public var id: String { declaration.id }
}

/// A checked pipeline: components in dependency order, every input resolved.
public struct PipelinePlan: Sendable {
    public var document: PipelineDocument
    /// Topologically ordered: every component comes after its inputs.
    public var components: [PlannedComponent]
    public var pipelineDirectory: String
}

/// Decodes every component through the registry and checks the wiring, collecting every
/// problem: unknown types and inputs, cycles, kinds a stage cannot take, sinks fed by nothing.
public struct PipelinePlanner: Sendable {
    public var registry: StageRegistry
    public var environment: [String: String]
    /// Checks of top-level sections other modules own (`dashboards:`), run on every document
    /// planned; their diagnostics count like the stages'.
    public var documentChecks: [@Sendable (PipelineDocument) -> [ConfigDiagnostic]]

    public init(registry: StageRegistry, environment: [String: String], documentChecks: [@Sendable (PipelineDocument) -> [ConfigDiagnostic]] = []) {
        self.registry = registry
        self.environment = environment
        self.documentChecks = documentChecks
    }

    /// Loads, decodes and checks the pipeline in `text`. The plan is nil when any error was found.
    public func plan(text: String, file: String, pipelineDirectory: String) -> (PipelinePlan?, [ConfigDiagnostic]) {
        let (loaded, loadDiagnostics) = PipelineLoader(environment: environment).load(text: text, file: file)
        guard let document = loaded else { return (nil, loadDiagnostics) }
        var diagnostics = loadDiagnostics
        let plan = plan(document: document, pipelineDirectory: pipelineDirectory, diagnostics: &diagnostics)
        diagnostics = diagnostics.map(document.redact)
        diagnostics.sort { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) }
        let hasError = diagnostics.contains { $0.severity == .error }
        return (hasError ? nil : plan, diagnostics)
    }

    /// Checks a document built or rewritten in code (`backtest` rewires a pipeline this way).
    public func plan(document: PipelineDocument, pipelineDirectory: String) -> (PipelinePlan?, [ConfigDiagnostic]) {
        var diagnostics: [ConfigDiagnostic] = []
        let plan = plan(document: document, pipelineDirectory: pipelineDirectory, diagnostics: &diagnostics)
        return (diagnostics.contains { $0.severity == .error } ? nil : plan, diagnostics.map(document.redact))
    }

    /// The phases, in order; each adds what it finds to `diagnostics` and works on what the
    /// earlier ones could resolve, so one run reports every problem.
    func plan(document: PipelineDocument, pipelineDirectory: String, diagnostics: inout [ConfigDiagnostic]) -> PipelinePlan? {
        let resolved = decodeComponents(document, pipelineDirectory: pipelineDirectory, diagnostics: &diagnostics)
        checkExclusiveFiles(document, resolved, diagnostics: &diagnostics)
        // Looked up by id for every input: a dictionary keeps planning linear in the component count.
        let byID = Dictionary(document.components.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let edges = resolveInputs(document, resolved, byID: byID, diagnostics: &diagnostics)
        let order = dependencyOrder(document, edges: edges, byID: byID, diagnostics: &diagnostics)
        let planned = propagateEventKinds(order: order, resolved, diagnostics: &diagnostics)
        checkOutputsAndSinks(document, diagnostics: &diagnostics)
        for check in documentChecks { diagnostics += check(document) }
        return PipelinePlan(document: document, components: planned, pipelineDirectory: pipelineDirectory)
    }

    typealias Resolved = [String: (declaration: ComponentDeclaration, stage: ResolvedStage)]

    /// Phase 1: every component's type is looked up and its settings decoded and checked.
    func decodeComponents(_ document: PipelineDocument, pipelineDirectory: String, diagnostics: inout [ConfigDiagnostic]) -> Resolved {
        let file = document.file
        var resolved: Resolved = [:]
        for declaration in document.components {
            guard let descriptor = registry.descriptor(section: declaration.section, type: declaration.type) else {
                let known = registry.types(in: declaration.section)
                var message = "unknown \(declaration.section.singular) type '\(declaration.type)'"
                if let other = ComponentSection.allCases.first(where: { $0 != declaration.section && registry.descriptor(section: $0, type: declaration.type) != nil }) {
                    message += " ('\(declaration.type)' is a \(other.singular) type)"
                }
                diagnostics.append(ConfigDiagnostic(location: declaration.typeLocation, component: declaration.id, setting: "type",
                                                    message: message, expected: "one of " + known.joined(separator: ", "),
                                                    suggestion: Suggestions.closest(to: declaration.type, among: known)))
                continue
            }
            switch descriptor.decode(declaration.settings, file, declaration.id) {
            case .success(let stage):
                let context = ValidationContext(file: file, component: declaration.id, location: declaration.location,
                                                pipelineDirectory: pipelineDirectory, environment: environment)
                diagnostics.append(contentsOf: stage.check(context))
                resolved[declaration.id] = (declaration, stage)
            case .failure(let error):
                diagnostics.append(contentsOf: error.diagnostics)
            }
        }
        return resolved
    }

    /// Phase 2: a file written by two sinks would interleave their records.
    func checkExclusiveFiles(_ document: PipelineDocument, _ resolved: Resolved, diagnostics: inout [ConfigDiagnostic]) {
        let file = document.file
        var writers: [String: String] = [:]
        for declaration in document.components {
            guard let stage = resolved[declaration.id]?.stage else { continue }
            for (setting, path) in stage.exclusiveFiles {
                let key = PipelinePlanner.canonicalPath(path)
                if let other = writers[key] {
                    diagnostics.append(ConfigDiagnostic(location: ConfigDecoding.location(ofSetting: [setting], in: declaration.settings, file: file),
                                                        component: declaration.id, setting: setting,
                                                        message: "'\(path)' is already written by sink '\(other)'",
                                                        expected: "a file no other sink writes"))
                } else {
                    writers[key] = declaration.id
                }
            }
        }
    }

    /// Phase 3: inputs must name producing components (and existing ports); returns each
    /// component's inputs by id.
    func resolveInputs(_ document: PipelineDocument, _ resolved: Resolved, byID: [String: ComponentDeclaration],
                       diagnostics: inout [ConfigDiagnostic]) -> [String: [String]] {
        let allIds = document.components.map(\.id)
        var edges: [String: [String]] = [:]
        for declaration in document.components where declaration.section != .sources {
            for input in declaration.inputs {
                guard let target = byID[input.component] else {
                    diagnostics.append(ConfigDiagnostic(location: input.location, component: declaration.id, setting: "inputs",
                                                        message: "'\(input.text)' is not a component of this pipeline",
                                                        expected: "a source or transform id",
                                                        // Suggestions compare against every id: only where that stays cheap.
                                                        suggestion: allIds.count > 2_000 ? nil
                                                            : Suggestions.closest(to: input.component, among: allIds.filter { $0 != declaration.id })))
                    continue
                }
                if target.section == .sinks {
                    diagnostics.append(ConfigDiagnostic(location: input.location, component: declaration.id, setting: "inputs",
                                                        message: "'\(input.component)' is a sink and has no output", expected: "a source or transform id"))
                    continue
                }
                if input.component == declaration.id {
                    diagnostics.append(ConfigDiagnostic(location: input.location, component: declaration.id, setting: "inputs",
                                                        message: "a component cannot feed itself"))
                    continue
                }
                if let port = input.port, let stage = resolved[target.id]?.stage, !stage.ports.contains(port) {
                    diagnostics.append(ConfigDiagnostic(location: input.location, component: declaration.id, setting: "inputs",
                                                        message: "'\(target.id)' has no output named '\(port)'",
                                                        expected: stage.ports.isEmpty ? "'\(target.id)' alone" : "one of " + stage.ports.map { "\(target.id).\($0)" }.joined(separator: ", "),
                                                        suggestion: Suggestions.closest(to: port, among: stage.ports).map { "\(target.id).\($0)" }))
                    continue
                }
                edges[declaration.id, default: []].append(target.id)
            }
        }
        return edges
    }

    /// Where a component is in the depth-first walk of ``dependencyOrder``.
    enum Visit {
        case onPath
        case done
    }

    /// Phase 4: order by dependencies (depth first, without recursion: a chain of 85,000
    /// components must neither overflow the stack nor copy paths); whatever cannot be ordered
    /// sits on a cycle, reported once per cycle.
    func dependencyOrder(_ document: PipelineDocument, edges: [String: [String]], byID: [String: ComponentDeclaration],
                         diagnostics: inout [ConfigDiagnostic]) -> [String] {
        var order: [String] = []
        var state: [String: Visit] = [:]
        var reportedCycles = Set<String>()
        for declaration in document.components where state[declaration.id] == nil {
            // The current path, each entry with the index of its next input to visit.
            var path: [(id: String, next: Int)] = [(declaration.id, 0)]
            var onPath: [String: Int] = [declaration.id: 0]
            state[declaration.id] = .onPath
            while let top = path.last {
                let inputs = edges[top.id] ?? []
                if top.next < inputs.count {
                    path[path.count - 1].next += 1
                    let input = inputs[top.next]
                    if state[input] == .done { continue }
                    if let start = onPath[input] {
                        let cycle = path[start...].map(\.id) + [input]
                        let key = Set(cycle).sorted().joined(separator: ",")
                        if reportedCycles.insert(key).inserted, let culprit = byID[input] {
                            diagnostics.append(ConfigDiagnostic(location: culprit.location, component: input, setting: "inputs",
                                                                message: "inputs form a cycle: " + cycle.joined(separator: " -> "),
                                                                expected: "data to flow one way, from sources to sinks"))
                        }
                        continue
                    }
                    state[input] = .onPath
                    onPath[input] = path.count
                    path.append((input, 0))
                } else {
                    path.removeLast()
                    onPath[top.id] = nil
                    state[top.id] = .done
                    order.append(top.id)
                }
            }
        }
        return order
    }

    /// Phase 5: event kinds flow along the order; a stage must accept everything it is fed.
    func propagateEventKinds(order: [String], _ resolved: Resolved, diagnostics: inout [ConfigDiagnostic]) -> [PlannedComponent] {
        var produced: [String: Set<EventKind>] = [:]
        var fedWith: [String: Set<EventKind>] = [:]
        var planned: [PlannedComponent] = []
        for id in order {
            guard let (declaration, stage) = resolved[id] else { continue }
            var fed: Set<EventKind> = []
            for input in declaration.inputs {
                guard produced[input.component] != nil, let upstream = resolved[input.component]?.stage else { continue }
                let kinds = upstream.produces(fedWith[input.component] ?? [], input.port)
                fed.formUnion(kinds)
                let refused = kinds.subtracting(stage.accepts)
                if !refused.isEmpty && !kinds.isEmpty {
                    diagnostics.append(ConfigDiagnostic(
                        location: input.location, component: id, setting: "inputs",
                        message: "'\(input.text)' produces \(Self.describe(kinds)) events but a \(declaration.type) \(declaration.section.singular) cannot take \(Self.describe(refused)) events",
                        expected: "an input producing \(Self.describe(stage.accepts)) events"))
                }
            }
            let kinds = declaration.section == .sinks ? [] : stage.produces(fed, nil)
            produced[id] = kinds
            fedWith[id] = fed
            planned.append(PlannedComponent(declaration: declaration, stage: stage, producedKinds: kinds))
        }
        return planned
    }

    /// Phase 6: outputs nobody reads are allowed but usually a mistake; a pipeline needs a sink.
    func checkOutputsAndSinks(_ document: PipelineDocument, diagnostics: inout [ConfigDiagnostic]) {
        let file = document.file
        let consumed = Set(document.components.flatMap { $0.inputs.map(\.component) })
        for declaration in document.components where declaration.section != .sinks && !consumed.contains(declaration.id) {
            diagnostics.append(ConfigDiagnostic(location: declaration.location, component: declaration.id,
                                                message: "nothing reads this \(declaration.section.singular)'s output",
                                                expected: "a sink or transform listing it in inputs", severity: .warning))
        }
        if !document.components.contains(where: { $0.section == .sinks }) {
            diagnostics.append(ConfigDiagnostic(location: SourceLocation(file: file, line: 1, column: 1),
                                                message: "the pipeline has no sinks", expected: "at least one sink"))
        }
    }

    /// `path` made absolute and free of `.`, `..` and symbolic links in the parts that exist.
    static func canonicalPath(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }

    static func describe(_ kinds: Set<EventKind>) -> String {
        kinds.sorted().map(\.rawValue).joined(separator: "/")
    }
}
