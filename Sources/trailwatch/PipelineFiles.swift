import Foundation
import TrailwatchConfig
import TrailwatchRuntime
import TrailwatchStages

/// Reading pipeline files and planning them, shared by `run`, `validate` and friends.
enum PipelineFiles {
    static func plan(path: String) -> (PipelinePlan?, [ConfigDiagnostic]) {
        guard let data = FileManager.default.contents(atPath: path) else {
            return (nil, [ConfigDiagnostic(location: SourceLocation(file: path, line: 1, column: 1),
                                           message: "cannot read the file", expected: "a readable pipeline YAML file")])
        }
        let text = String(decoding: data, as: UTF8.self)
        let directory = (path as NSString).deletingLastPathComponent
        let planner = PipelinePlanner(registry: BuiltinStages.registry, environment: ProcessInfo.processInfo.environment)
        return planner.plan(text: text, file: path, pipelineDirectory: directory.isEmpty ? "." : directory)
    }
}
