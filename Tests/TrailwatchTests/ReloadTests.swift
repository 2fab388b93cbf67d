import Foundation
import Glibc
import Testing
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStages
import TrailwatchTestSupport

/// Appends `count` numbered lines to `path` from a thread, `perBurst` every 5 ms; every third is an
/// ERROR line and every fifth a WARN line (the others INFO).
final class NumberedWriter: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)

    init(path: String, from first: Int = 0, count: Int, perBurst: Int = 20) {
        Thread {
            let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
            var n = first
            let end = first + count
            while n < end {
                var text = ""
                for _ in 0..<min(perBurst, end - n) {
                    text += "seq=\(String(n).leftPad(6)) \(NumberedWriter.level(n)) message\n"
                    n += 1
                }
                _ = text.withCString { write(fd, $0, strlen($0)) }
                usleep(5_000)
            }
            close(fd)
            self.done.signal()
        }.start()
    }

    static func level(_ n: Int) -> String { n % 3 == 0 ? "ERROR" : n % 5 == 0 ? "WARN" : "INFO" }

    func finished() async {
        while done.wait(timeout: .now()) == .timedOut { try? await Task.sleep(nanoseconds: 20_000_000) }
    }
}

/// The sequence numbers in a raw output file, in order.
func sequenceNumbers(_ text: String) -> [Int] {
    lines(text).compactMap { Int($0.dropFirst(4).prefix(6)) }
}

@Suite("Hot reload", .serialized)
struct ReloadTests {
    func yaml(_ dir: TemporaryDirectory, filter: String, extraSinks: String = "") -> String {
        """
        data_dir: \(dir.file("state"))
        sources:
          app:
            type: file
            include: \(dir.file("app.log"))
            checkpoint_interval: 100ms
        transforms:
          errors: { type: filter, inputs: [app], \(filter) }
        sinks:
          all: { type: file, inputs: [app], path: \(dir.file("all.log")), format: raw, sync_interval: 50ms }
          errs: { type: file, inputs: [errors], path: \(dir.file("errs.log")), format: raw, sync_interval: 50ms }
        \(extraSinks)
        """
    }

    @Test("while lines flow, a reload adds a sink and changes a filter: nothing lost, nothing twice in the unchanged sink")
    func addSinkChangeFilter() async throws {
        let dir = TemporaryDirectory()
        let total = 6000
        let live = try LivePipeline(yaml(dir, filter: "contains: ERROR"))
        // The first half flows while the reload happens; the second half surely comes after it.
        let firstHalf = NumberedWriter(path: dir.file("app.log"), count: total / 2)
        #expect(await eventually { sequenceNumbers(dir.read("all.log")).count > 1000 })
        let newPlan = try plan(yaml(dir, filter: "contains: [ERROR, WARN]",
                                    extraSinks: "  audit: { type: file, inputs: [app], path: \(dir.file("audit.log")), format: raw, sync_interval: 50ms }"),
                               registry: BuiltinStages.registry)
        let diff = PipelineDiff(old: live.runner.plan, new: newPlan)
        #expect(diff.changed == ["errors"] && diff.added == ["audit"] && diff.removed.isEmpty)
        #expect(Set(diff.unchanged) == ["app", "all", "errs"])
        live.runner.reload(newPlan)
        #expect(await eventually { live.runner.reloadStatus.succeeded == 1 })
        await firstHalf.finished()
        await NumberedWriter(path: dir.file("app.log"), from: total / 2, count: total / 2).finished()
        #expect(await eventually { sequenceNumbers(dir.read("all.log")).count >= total })
        #expect(await eventually { sequenceNumbers(dir.read("audit.log")).last == total - 1 })
        await pause(0.3)
        let summary = await live.stop()
        #expect(summary.failures.isEmpty, "\(summary.failures)")

        // The unchanged source and sink went on untouched: every line once, in order.
        #expect(sequenceNumbers(dir.read("all.log")) == Array(0..<total))
        // Every ERROR line passed the old or the new filter, exactly once; WARN lines only after the reload.
        let errs = sequenceNumbers(dir.read("errs.log"))
        #expect(errs.filter { NumberedWriter.level($0) == "ERROR" } == (0..<total).filter { NumberedWriter.level($0) == "ERROR" })
        let warns = errs.filter { NumberedWriter.level($0) == "WARN" }
        #expect(!warns.isEmpty && warns == ((warns.first ?? 0)..<total).filter { NumberedWriter.level($0) == "WARN" })
        let firstWarnAfterReload = ((total / 2)..<total).first { NumberedWriter.level($0) == "WARN" } ?? 0
        #expect((warns.first ?? total) <= firstWarnAfterReload)
        #expect(errs.count == Set(errs).count)
        // The new sink got the lines read after it started, once each, and nothing from before.
        let audit = sequenceNumbers(dir.read("audit.log"))
        #expect(!audit.isEmpty && audit == Array((audit.first ?? 0)..<total))
        #expect((audit.first ?? 0) > 1000 && (audit.first ?? total) <= total / 2)
    }

    @Test("a reload that changes the source restarts it from its acknowledged position; a removed sink drains")
    func changeSourceRemoveSink() async throws {
        let dir = TemporaryDirectory()
        let total = 3000
        let base = yaml(dir, filter: "contains: ERROR")
        let live = try LivePipeline(base)
        let firstHalf = NumberedWriter(path: dir.file("app.log"), count: total / 2)
        #expect(await eventually { sequenceNumbers(dir.read("all.log")).count > 500 })
        // A different checkpoint interval is a changed source; the errs sink and its filter go.
        let changed = """
            data_dir: \(dir.file("state"))
            sources:
              app:
                type: file
                include: \(dir.file("app.log"))
                checkpoint_interval: 200ms
            sinks:
              all: { type: file, inputs: [app], path: \(dir.file("all.log")), format: raw, sync_interval: 50ms }
            """
        live.runner.reload(try plan(changed, registry: BuiltinStages.registry))
        #expect(await eventually { live.runner.reloadStatus.succeeded == 1 })
        await firstHalf.finished()
        await NumberedWriter(path: dir.file("app.log"), from: total / 2, count: total / 2).finished()
        #expect(await eventually { sequenceNumbers(dir.read("all.log")).count >= total })
        await pause(0.3)
        let summary = await live.stop()
        #expect(summary.failures.isEmpty, "\(summary.failures)")
        #expect(summary.components.map(\.id) == ["app", "all"])
        #expect(sequenceNumbers(dir.read("all.log")) == Array(0..<total))
        // What the removed sink got before it drained, it got whole and once.
        let errs = sequenceNumbers(dir.read("errs.log"))
        #expect(!errs.isEmpty && errs == (0...(errs.last ?? 0)).filter { NumberedWriter.level($0) == "ERROR" })
    }

    @Test("diff: formatting and locations do not count, settings and global settings do")
    func diffRules() throws {
        let a = try plan("""
            sources:
              app: { type: file, include: a.log }
            sinks:
              out: { type: file, inputs: [app], path: o.log }
            """, registry: BuiltinStages.registry)
        let b = try plan("""
            # a comment moves everything down
            sources:
              app:
                type: file
                include: a.log
            sinks:
              out: { type: file, inputs: [app], path: o.log, format: raw }
            """, registry: BuiltinStages.registry)
        let diff = PipelineDiff(old: a, new: b)
        #expect(diff.unchanged == ["app"] && diff.changed == ["out"])
        #expect(PipelineDiff(old: a, new: a).changesNothing)
        let c = try plan("""
            buffer_batches: 4
            sources:
              app: { type: file, include: a.log }
            sinks:
              out: { type: file, inputs: [app], path: o.log }
            """, registry: BuiltinStages.registry)
        #expect(PipelineDiff(old: a, new: c).changed == ["app", "out"])
    }

    /// Starts `trailwatch run` in `dir` with stderr to a file; waits for its "serving" line and
    /// returns the process and port.
    func startRun(_ dir: TemporaryDirectory, _ arguments: [String]) async throws -> (Process, Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: trailwatchBinary())
        process.arguments = arguments
        process.currentDirectoryURL = dir.url
        _ = FileManager.default.createFile(atPath: dir.file("stderr.log"), contents: nil)
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.file("stderr.log")))
        process.standardOutput = FileHandle.nullDevice
        try launchProcess(process)
        var port = 0
        _ = await eventually(120) {
            let line = lines(dir.read("stderr.log")).first { $0.contains("serving ") } ?? ""
            port = Int(line.split(separator: ":").last?.split(separator: "/").first ?? "") ?? 0
            return port > 0
        }
        return (process, port)
    }

    func runningPipeline(sinks: String) -> String {
        """
        data_dir: state
        http: { listen: 127.0.0.1:0 }
        sources:
          app: { type: file, include: app.log, checkpoint_interval: 100ms }
        sinks:
          out: { type: file, inputs: [app], path: out.log, format: raw, sync_interval: 50ms }
        \(sinks)
        """
    }

    /// `trailwatch run p.yaml OPTIONS…` over an app.log holding "one", once it shipped that line.
    func startShipping(_ dir: TemporaryDirectory, _ options: [String]) async throws -> (Process, Int) {
        _ = dir.write("app.log", "one\n")
        _ = dir.write("p.yaml", runningPipeline(sinks: ""))
        let (process, port) = try await startRun(dir, ["run", "p.yaml"] + options)
        #expect(port > 0, "\(dir.read("stderr.log"))")
        #expect(await eventually(120) { dir.read("out.log") == "one\n" })
        return (process, port)
    }

    @Test("SIGHUP: a broken file changes nothing and is reported with file:line:column; a good one is applied; both are visible")
    func sighup() async throws {
        let dir = TemporaryDirectory()
        let (process, port) = try await startShipping(dir, ["--status-every", "200ms"])
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }

        // An unknown input: refused, located, counted; the running pipeline goes on.
        _ = dir.write("p.yaml", runningPipeline(sinks: "  more: { type: file, inputs: [ap], path: more.log, format: raw }"))
        kill(process.processIdentifier, SIGHUP)
        #expect(await eventually(120) { dir.read("stderr.log").contains("p.yaml:7:32: component 'more': setting 'inputs': 'ap' is not a component") },
                "\(dir.read("stderr.log"))")
        appendText(dir.file("app.log"), "two\n")
        #expect(await eventually(120) { dir.read("out.log") == "one\ntwo\n" })
        #expect(process.isRunning)
        let metrics = httpGet(port: port, path: "/metrics")?.1 ?? ""
        #expect(metrics.contains(#"trailwatch_config_reload_failures_total{pipeline="p.yaml"} 1"#), "\(metrics)")
        #expect(metrics.contains(#"trailwatch_config_last_reload_successful{pipeline="p.yaml"} 0"#))
        #expect(metrics.contains(#"trailwatch_config_last_reload_error{pipeline="p.yaml",error="p.yaml:7:32: component 'more'"#))
        let health = httpGet(port: port, path: "/health")
        #expect(health?.0 == 200)
        #expect(health?.1.contains(#""failed":1"#) == true && health?.1.contains(#""lastError":"p.yaml:7:32"#) == true, "\(health?.1 ?? "")")
        #expect(await eventually(30) { dir.read("stderr.log").contains("reloads: 0, 1 refused (last: p.yaml:7:32") })

        // Fixed: the new sink starts with what is read from now on; the old one is untouched.
        _ = dir.write("p.yaml", runningPipeline(sinks: "  more: { type: file, inputs: [app], path: more.log, format: raw }"))
        kill(process.processIdentifier, SIGHUP)
        #expect(await eventually(120) { (httpGet(port: port, path: "/metrics")?.1 ?? "").contains(#"trailwatch_config_reloads_total{pipeline="p.yaml"} 1"#) })
        appendText(dir.file("app.log"), "three\n")
        #expect(await eventually(120) { dir.read("more.log") == "three\n" && dir.read("out.log") == "one\ntwo\nthree\n" },
                "\(dir.read("stderr.log"))")
        let healthAfter = httpGet(port: port, path: "/health")?.1 ?? ""
        #expect(healthAfter.contains(#""succeeded":1"#) && !healthAfter.contains("lastError"), "\(healthAfter)")
        #expect(healthAfter.contains(#""id":"more""#))

        kill(process.processIdentifier, SIGTERM)
        await Child.exit(of: process)
        #expect(process.terminationStatus == 0)
        #expect(dir.read("out.log") == "one\ntwo\nthree\n")
    }

    @Test("--watch-config reloads when the file changes")
    func watchConfig() async throws {
        let dir = TemporaryDirectory()
        let (process, _) = try await startShipping(dir, ["--watch-config", "--quiet"])
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
        _ = dir.write("p.yaml", runningPipeline(sinks: "  more: { type: file, inputs: [app], path: more.log, format: raw }"))
        #expect(await eventually(120) { dir.read("stderr.log").contains("reloaded p.yaml: 1 added (more), 2 unchanged") }, "\(dir.read("stderr.log"))")
        appendText(dir.file("app.log"), "two\n")
        #expect(await eventually(120) { dir.read("more.log") == "two\n" && dir.read("out.log") == "one\ntwo\n" })
        kill(process.processIdentifier, SIGTERM)
        await Child.exit(of: process)
        #expect(process.terminationStatus == 0)
    }
}
