import TrailwatchConfig

/// What a reload changes, component by component.
///
/// A component is *unchanged* when its section, type and settings (the YAML as parsed, `buffer:`
/// included; locations and formatting do not count) are the same and the pipeline-wide settings
/// it runs with (`data_dir`, `buffer_batches`, `batch_timeout`) are too. Its `inputs` may differ:
/// an unchanged component keeps running and is only rewired. Everything else with the same id is
/// *changed* (drained, then restarted with the new settings); ids only in the old plan are
/// *removed*, ids only in the new one *added*.
public struct PipelineDiff: Sendable, Equatable {
    public var unchanged: [String] = []
    /// Unchanged components whose inputs differ (a subset of ``unchanged``).
    public var rewired: [String] = []
    public var changed: [String] = []
    public var added: [String] = []
    public var removed: [String] = []

    public init(old: PipelinePlan, new: PipelinePlan) {
        let oldSettings = old.document.settings
        let newSettings = new.document.settings
        let sameSettings = oldSettings.dataDir == newSettings.dataDir && oldSettings.bufferBatches == newSettings.bufferBatches
            && oldSettings.batchTimeout.milliseconds == newSettings.batchTimeout.milliseconds
            && old.pipelineDirectory == new.pipelineDirectory
        let before = Dictionary(old.components.map { ($0.id, $0.declaration) }, uniquingKeysWith: { a, _ in a })
        for component in new.components {
            let declaration = component.declaration
            guard let previous = before[component.id] else {
                added.append(component.id)
                continue
            }
            if sameSettings && previous.section == declaration.section && previous.type == declaration.type
                && previous.settings == declaration.settings {
                unchanged.append(component.id)
                if previous.inputs.map(\.text) != declaration.inputs.map(\.text) { rewired.append(component.id) }
            } else {
                changed.append(component.id)
            }
        }
        let now = Set(new.components.map(\.id))
        removed = old.components.map(\.id).filter { !now.contains($0) }
    }

    public var changesNothing: Bool { changed.isEmpty && added.isEmpty && removed.isEmpty && rewired.isEmpty }

    /// `1 changed (errors), 1 added (audit), 3 unchanged`.
    public var summary: String {
        if changesNothing { return "nothing changed" }
        var parts: [String] = []
        for (name, ids) in [("changed", changed), ("added", added), ("removed", removed), ("rewired", rewired)] where !ids.isEmpty {
            parts.append("\(ids.count) \(name) (\(ids.joined(separator: ", ")))")
        }
        parts.append("\(unchanged.count - rewired.count) unchanged")
        return parts.joined(separator: ", ")
    }
}

/// How reloads went, for `/metrics`, `/health` and the status line.
public struct ReloadStatus: Sendable, Equatable {
    /// The pipeline file.
    public var file = ""
    /// Reloads applied (including those that changed nothing).
    public var succeeded = 0
    /// Reloads refused because the new file had errors (the old pipeline kept running).
    public var failed = 0
    /// The newest refusal's messages (`file:line:column: …`), until a reload succeeds.
    public var lastError: String?
    /// Wall-clock ms of the newest reload attempt (0: none yet).
    public var lastAttemptMillis: Int64 = 0

    public init() {}

    public var attempts: Int { succeeded + failed }
}
