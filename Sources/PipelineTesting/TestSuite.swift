import Foundation
import TrailwatchConfig
import TrailwatchCore
import TrailwatchRuntime
import Yams

/// A pipeline and its unit tests: the `tests:` section of the pipeline file and those of
/// `NAME.tests.yaml` beside it.
public struct PipelineTestSuite {
    public var plan: PipelinePlan
    public var tests: [PipelineTest]

    /// The tests file that belongs to `pipelinePath` (`pipelines/demo.yaml` → `pipelines/demo.tests.yaml`).
    public static func testsFile(for pipelinePath: String) -> String {
        let base = pipelinePath.hasSuffix(".yaml") ? String(pipelinePath.dropLast(5))
            : pipelinePath.hasSuffix(".yml") ? String(pipelinePath.dropLast(4)) : pipelinePath
        return base + ".tests.yaml"
    }

    /// Reads the tests of a planned pipeline (and of `testsText`, the tests file, when given) and
    /// checks that they name components that exist and feed them what they take.
    public static func load(plan: PipelinePlan, testsText: String?, testsPath: String) -> (PipelineTestSuite?, [ConfigDiagnostic]) {
        var diagnostics: [ConfigDiagnostic] = []
        var tests: [PipelineTest] = []
        if let node = plan.document.tests {
            var reader = TestDefinitionReader(file: plan.document.file)
            tests += reader.tests(node)
            diagnostics += reader.diagnostics
        }
        if let testsText {
            var reader = TestDefinitionReader(file: testsPath)
            do {
                // The same bounds as a pipeline file: size, and aliases counted as they would expand.
                let (root, refused) = try YAMLBounds.compose(testsText, file: testsPath)
                if let refused {
                    reader.diagnostics.append(refused)
                } else if let root {
                    if let section = root.mapping?["tests"] {
                        for (key, _) in root.mapping! where key.string != "tests" {
                            reader.problem(key, key.string ?? "?", "unknown top-level key", expected: "tests")
                        }
                        tests += reader.tests(section)
                    } else {
                        reader.problem(root, "tests", "is missing", expected: "a file with a top-level 'tests:' list")
                    }
                }
            } catch let error as YamlError {
                reader.diagnostics.append(PipelineLoader.diagnostic(for: error, file: testsPath))
            } catch {
                reader.diagnostics.append(ConfigDiagnostic(location: SourceLocation(file: testsPath, line: 1, column: 1), message: "\(error)"))
            }
            diagnostics += reader.diagnostics
        }
        diagnostics += check(tests, against: plan)
        var seen: [String: SourceLocation] = [:]
        for test in tests {
            if let previous = seen[test.name] {
                diagnostics.append(ConfigDiagnostic(location: test.location, setting: "name",
                                                    message: "another test is named '\(test.name)' (\(previous))", expected: "unique test names"))
            }
            seen[test.name] = test.location
        }
        diagnostics.sort { ($0.location.file, $0.location.line, $0.location.column) < ($1.location.file, $1.location.line, $1.location.column) }
        if diagnostics.contains(where: { $0.severity == .error }) { return (nil, diagnostics) }
        return (PipelineTestSuite(plan: plan, tests: tests), diagnostics)
    }

    static func check(_ tests: [PipelineTest], against plan: PipelinePlan) -> [ConfigDiagnostic] {
        var diagnostics: [ConfigDiagnostic] = []
        let byID = Dictionary(plan.components.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let ids = plan.components.map(\.id)
        for test in tests {
            for input in test.inputs {
                guard let component = byID[input.target] else {
                    diagnostics.append(ConfigDiagnostic(location: input.location, setting: "insert_at",
                                                        message: "'\(input.target)' is not a component of this pipeline",
                                                        expected: "a source or transform id", suggestion: Suggestions.closest(to: input.target, among: ids)))
                    continue
                }
                if component.declaration.section == .sinks {
                    diagnostics.append(ConfigDiagnostic(location: input.location, setting: "insert_at",
                                                        message: "'\(input.target)' is a sink; tests read what sinks receive with outputs: [{from: \(input.target)}]",
                                                        expected: "a source or transform id"))
                    continue
                }
                let takes = component.declaration.section == .sources ? component.producedKinds : component.stage.accepts
                for kind in Set(input.events.map(\.kind)) where !takes.contains(kind) {
                    diagnostics.append(ConfigDiagnostic(location: input.location, setting: "insert_at",
                                                        message: "'\(input.target)' cannot take \(kind.rawValue) events",
                                                        expected: "\(kind == .log ? "metrics" : "lines or events") for a component taking \(takes.sorted().map(\.rawValue).joined(separator: "/")) events"))
                }
            }
            for output in test.outputs {
                guard let component = byID[output.component] else {
                    diagnostics.append(ConfigDiagnostic(location: output.location, setting: "from",
                                                        message: "'\(output.component)' is not a component of this pipeline",
                                                        expected: "a component id, component.output or a sink id",
                                                        suggestion: Suggestions.closest(to: output.component, among: ids)))
                    continue
                }
                if let port = output.port, !component.stage.ports.contains(port) {
                    diagnostics.append(ConfigDiagnostic(location: output.location, setting: "from",
                                                        message: "'\(output.component)' has no output named '\(port)'",
                                                        expected: component.stage.ports.isEmpty ? "'\(output.component)' alone"
                                                            : "one of " + component.stage.ports.map { "\(output.component).\($0)" }.joined(separator: ", "),
                                                        suggestion: Suggestions.closest(to: port, among: component.stage.ports).map { "\(output.component).\($0)" }))
                }
            }
        }
        return diagnostics
    }

    /// Runs every test (or those whose names contain `filter`).
    public func run(filter: String? = nil) -> [TestResult] {
        let harness = TestHarness(plan: plan)
        return tests.filter { filter.map($0.name.contains) ?? true }.map { test in
            let started = ContinuousClock.now
            let observed = harness.run(test)
            var failures: [ExpectationFailure] = observed.errors.map {
                ExpectationFailure(location: test.location, from: "", expected: "no stage errors", got: $0, events: [])
            }
            for output in test.outputs {
                if let failure = output.check(observed.outputs[output.from] ?? []) { failures.append(failure) }
            }
            let elapsed = ContinuousClock.now - started
            return TestResult(test: test, failures: failures,
                              seconds: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
        }
    }
}

/// How one test went.
public struct TestResult: Sendable {
    public var test: PipelineTest
    public var failures: [ExpectationFailure]
    public var seconds: Double
    public var passed: Bool { failures.isEmpty }
}
