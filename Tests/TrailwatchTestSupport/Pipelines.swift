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
///
/// With a ``VirtualClock`` its time-based behaviour (poll, scan, rotation and checkpoint
/// intervals, sink syncs and flushes, ticks, retry backoff) moves only when the test calls
/// ``advance(by:step:)``: what waits for an interval is then tested without sleeping.
public final class LivePipeline: @unchecked Sendable {
    public let runner: PipelineRunner
    /// The clock the pipeline runs on, when the test drives it.
    public let clock: VirtualClock?
    private let task: Task<RunSummary, Never>

    public init(_ yaml: String, clock: VirtualClock? = nil) throws {
        let runner = PipelineRunner(plan: try plan(yaml, registry: BuiltinStages.registry), once: false, log: .silent,
                                    clock: clock ?? SystemClock())
        self.runner = runner
        self.clock = clock
        task = Task { await runner.run() }
    }

    public func stop() async -> RunSummary {
        runner.requestStop()
        guard let clock else { return await task.value }
        // What sleeps on the virtual clock (a tailer between polls, the ticker) wakes only when it
        // moves: keep it moving until the run has drained.
        let mover = Task {
            while !Task.isCancelled {
                clock.advance(by: .milliseconds(100))
                try? await Task.sleep(nanoseconds: 2_000_000)
            }
        }
        let summary = await task.value
        mover.cancel()
        return summary
    }

    /// Moves the virtual clock on by `duration` in steps of `step`; after each step, waits until
    /// everything it woke (a tailer's poll, the ticker) has done its work and sleeps on the clock
    /// again. Effects on other tasks (a sink writing what a source emitted) are checked with
    /// ``eventually(_:_:)``.
    public func advance(by duration: Duration, step: Duration = .milliseconds(100)) async {
        guard let clock else { preconditionFailure("advance(by:) needs a pipeline started with a VirtualClock") }
        var moved = Duration.zero
        while moved < duration {
            let asleep = clock.sleepers
            clock.advance(by: min(step, duration - moved))
            moved += step
            let deadline = ContinuousClock.now + .seconds(30)
            while clock.sleepers < asleep && ContinuousClock.now < deadline { try? await Task.sleep(nanoseconds: 1_000_000) }
        }
    }

    /// Moves the virtual clock on a step at a time (see ``advance(by:step:)``) until `condition`
    /// holds; false if it still does not after `limit` of virtual time.
    public func advance(until condition: () async -> Bool, step: Duration = .milliseconds(100), limit: Duration = .seconds(300)) async -> Bool {
        var moved = Duration.zero
        while moved <= limit {
            if await condition() { return true }
            await advance(by: step, step: step)
            moved += step
            try? await Task.sleep(nanoseconds: 1_000_000)   // room for the tasks downstream
        }
        return await condition()
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
public func eventually(_ seconds: Double = 120, _ condition: () async -> Bool) async -> Bool {
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
