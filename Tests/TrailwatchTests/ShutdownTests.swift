import Foundation
import Glibc
import Testing
import TrailwatchTestSupport

@Suite("Shutdown and status reporting (real processes)")
struct ShutdownTests {
    /// Starts trailwatch with its stderr going to a file (`stderr.log` in `dir`), not a pipe: a pipe
    /// nobody reads until the process exits fills up on a slow machine and blocks the status lines.
    func start(_ arguments: [String], in dir: TemporaryDirectory) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: trailwatchBinary())
        process.arguments = arguments
        process.currentDirectoryURL = dir.url
        _ = dir.write("stderr.log", "")
        process.standardError = FileHandle(forWritingAtPath: dir.file("stderr.log"))
        process.standardOutput = FileHandle.nullDevice
        try launchProcess(process)
        return process
    }

    @Test("a sink that never finishes cannot hold shutdown past shutdown_timeout; status lines report progress")
    func deadline() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("in.log", "a\nb\n")
        mkfifo(dir.file("fifo"), 0o600)  // opening it for writing blocks: a sink that hangs
        _ = dir.write("p.yaml", """
            data_dir: state
            shutdown_timeout: 1s
            sources:
              app: { type: file, include: in.log }
            sinks:
              ok: { type: file, inputs: [app], path: out.log, format: raw }
              stuck: { type: file, inputs: [app], path: fifo }
            """)
        let process = try start(["run", "p.yaml", "--status-every", "200ms"], in: dir)
        #expect(await eventually(120) { dir.read("out.log") == "a\nb\n" })
        #expect(await eventually(120) { dir.read("stderr.log").contains("status: app: 2 out") })
        let stopped = Date()
        kill(process.processIdentifier, SIGTERM)
        let elapsed = await Child.exit(of: process).timeIntervalSince(stopped)
        let stderr = dir.read("stderr.log")
        #expect(process.terminationStatus == 3)
        #expect(elapsed >= 0.9 && elapsed < 5, "took \(elapsed) s")
        #expect(stderr.contains("status: app: 2 out"), "\(stderr)")
        #expect(stderr.contains("shutdown deadline of 1s passed"), "\(stderr)")
        // The stuck sink never acknowledged: the checkpoint did not move past the data.
        #expect(!dir.read("state/state/app/checkpoints.json").contains("\"offset\":4"))
    }

    @Test("a healthy pipeline drains and exits 0 well before the deadline")
    func cleanStop() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("in.log", "a\nb\n")
        _ = dir.write("p.yaml", """
            data_dir: state
            sources:
              app: { type: file, include: in.log }
            sinks:
              ok: { type: file, inputs: [app], path: out.log, format: raw }
            """)
        let process = try start(["run", "p.yaml", "--quiet"], in: dir)
        #expect(await eventually(120) { dir.read("out.log") == "a\nb\n" })
        kill(process.processIdentifier, SIGTERM)
        await Child.exit(of: process)
        #expect(process.terminationStatus == 0)
        #expect(dir.read("state/state/app/checkpoints.json").contains("\"offset\":4"))
    }
}
