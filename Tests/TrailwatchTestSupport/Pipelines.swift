import Foundation
import Glibc
import Testing
import TrailwatchConfig
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStages

// Pipelines in this process, polling and small text helpers the test targets share.

/// Plans `yaml` (as `t.yaml`) with `registry`; a pipeline with errors throws them.
public func plan(_ yaml: String, registry: StageRegistry) throws -> PipelinePlan {
    let (plan, diagnostics) = PipelinePlanner(registry: registry, environment: [:]).plan(text: yaml, file: "t.yaml", pipelineDirectory: ".")
    guard let plan else { throw ConfigError(diagnostics) }
    return plan
}

/// Runs `yaml` with `--once` semantics in-process.
public func runOnce(_ yaml: String) async throws -> RunSummary {
    let summary = await PipelineRunner(plan: try plan(yaml, registry: BuiltinStages.registry), once: true, log: .silent).run()
    #expect(summary.failures.isEmpty, "\(summary.failures)")
    return summary
}

/// Plans `yaml` as `p.yaml` with a fixed environment and returns the rendered diagnostics.
public func diagnostics(_ yaml: String, environment: [String: String] = ["HOME_DIR": "/tmp", "SECRET_TOKEN": "hunter2"]) -> [String] {
    let planner = PipelinePlanner(registry: BuiltinStages.registry, environment: environment)
    return planner.plan(text: yaml, file: "p.yaml", pipelineDirectory: ".").1.map(\.description)
}

/// A pipeline running live (following files) in this process.
public final class LivePipeline: @unchecked Sendable {
    public let runner: PipelineRunner
    private let task: Task<RunSummary, Never>

    public init(_ yaml: String) throws {
        let runner = PipelineRunner(plan: try plan(yaml, registry: BuiltinStages.registry), once: false, log: .silent)
        self.runner = runner
        task = Task { await runner.run() }
    }

    public func stop() async -> RunSummary {
        runner.requestStop()
        return await task.value
    }

    /// Waits until the file source `id` follows at least `count` files: what was in them when it
    /// started is then behind its starting point, whatever the machine's load.
    public func following(_ count: Int = 1, source id: String = "app") async -> Bool {
        await eventually {
            (runner.metrics.first { $0.id == id }?.gaugeValues["files_followed"] ?? 0) >= Double(count)
        }
    }
}

/// Polls until `condition` holds or `seconds` pass, without blocking a cooperative thread (the
/// pipeline under test runs on the same pool).
public func eventually(_ seconds: Double = 60, _ condition: () async -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if await condition() { return true }
        try? await Task.sleep(nanoseconds: 20_000_000)
    }
    return await condition()
}

/// Sleeps without blocking a cooperative thread.
public func pause(_ seconds: Double) async {
    try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
}

public func appendText(_ path: String, _ text: String) {
    let fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
    _ = text.withCString { write(fd, $0, strlen($0)) }
    close(fd)
}

public func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }


extension String {
    /// Zero-padded on the left to `width` characters (numbers in generated log lines).
    public func leftPad(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
