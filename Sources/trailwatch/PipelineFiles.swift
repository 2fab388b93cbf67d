import Foundation
import TrailwatchConfig
import TrailwatchDashboard
import TrailwatchRuntime
import TrailwatchStages

/// Reading pipeline files and planning them, shared by `run`, `validate` and friends.
enum PipelineFiles {
    static func plan(path: String) -> (PipelinePlan?, [ConfigDiagnostic]) {
        let text: String
        do { text = try YAMLBounds.readDocument(atPath: path) } catch {
            return (nil, [ConfigDiagnostic(location: SourceLocation(file: path, line: 1, column: 1),
                                           message: error.description, expected: "a readable pipeline YAML file")])
        }
        let directory = (path as NSString).deletingLastPathComponent
        let planner = PipelinePlanner(registry: BuiltinStages.registry, environment: ProcessInfo.processInfo.environment,
                                      documentChecks: [DashboardDefinition.check])
        return planner.plan(text: text, file: path, pipelineDirectory: directory.isEmpty ? "." : directory)
    }
}
