import Foundation
import PipelineTesting
import Testing
import TrailwatchConfig
import TrailwatchRuntime
import TrailwatchStages

func suite(_ yaml: String, tests: String? = nil, directory: String = ".") -> (PipelineTestSuite?, [ConfigDiagnostic]) {
    let (plan, diagnostics) = PipelinePlanner(registry: BuiltinStages.registry, environment: [:]).plan(text: yaml, file: "p.yaml", pipelineDirectory: directory)
    guard let plan else { return (nil, diagnostics) }
    return PipelineTestSuite.load(plan: plan, testsText: tests, testsPath: "p.tests.yaml")
}
