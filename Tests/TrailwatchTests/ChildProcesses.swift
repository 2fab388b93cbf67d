import Foundation
import Glibc
import TrailwatchTestSupport

/// Child processes for tests (the trailwatch binary, zstd, the AWS CLI, boto3 scripts) that never
/// hold a cooperative thread while they wait.
///
/// Swift Testing runs tests as tasks on the cooperative pool, which has one thread per core: two
/// on the CI machine. A test that waits for a child with `waitUntilExit()` or a blocking pipe read
/// takes one of those two threads away from every other test for the child's whole run, and the
/// tests that poll with deadlines (`eventually`) then time out under load. Here the blocking waits
/// run on Dispatch threads and the test task is suspended; output goes to files, so a chatty child
/// can never block on a full pipe.
enum Child {
    /// What a finished program printed.
    struct Result: Sendable {
        var status: Int32
        var output: String
        var errors: String
    }

    /// Runs `executable` (a path, or a name looked up in PATH through /usr/bin/env) to its end,
    /// terminating it after `timeout` seconds.
    static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                    stdin: Data? = nil, in directory: String? = nil, timeout: Double = 120) async throws -> Result {
        let process = Process()
        if executable.hasPrefix("/") {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = arguments
        } else {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [executable] + arguments
        }
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.environment = childEnvironment(environment)
        let scratch = TemporaryDirectory()
        let outPath = scratch.write("stdout", ""), errPath = scratch.write("stderr", "")
        process.standardOutput = FileHandle(forWritingAtPath: outPath)
        process.standardError = FileHandle(forWritingAtPath: errPath)
        var input: Pipe?
        if stdin != nil { input = Pipe(); process.standardInput = input } else { process.standardInput = FileHandle.nullDevice }
        try launchProcess(process)
        if let stdin, let input {
            // Written from a Dispatch thread: a large input blocks until the child reads it.
            let writer = input.fileHandleForWriting
            DispatchQueue.global().async {
                writer.write(stdin)
                try? writer.close()
            }
        }
        let timer = DispatchWorkItem { [process] in if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
        await exit(of: process)
        timer.cancel()
        return Result(status: process.terminationStatus, output: scratch.read("stdout"), errors: scratch.read("stderr"))
    }

    /// `trailwatch ARGUMENTS…` to its end.
    static func trailwatch(_ arguments: [String], environment: [String: String] = [:], stdin: Data? = nil,
                           in directory: String? = nil, timeout: Double = 120) async throws -> Result {
        try await run(trailwatchBinary(), arguments, environment: environment, stdin: stdin, in: directory, timeout: timeout)
    }

    /// A long-running trailwatch (`run` with `http:`, `dashboard`): started with its stderr in a
    /// file, returned once it printed its "serving http://HOST:PORT" line (port 0 when it never
    /// did within `timeout`, for example because it failed to start — its stderr says why).
    static func serve(_ arguments: [String], environment: [String: String] = [:], in directory: String? = nil,
                      timeout: Double = 60) async throws -> Server {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: trailwatchBinary())
        process.arguments = arguments
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        process.environment = childEnvironment(environment)
        let scratch = TemporaryDirectory()
        let errPath = scratch.write("stderr", "")
        process.standardError = FileHandle(forWritingAtPath: errPath)
        process.standardOutput = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        // A server that dies on its own (not stopped by the test with SIGTERM or SIGKILL) prints
        // its stderr into the test log: otherwise a CI log shows only the client's "could not
        // connect". The handler keeps the scratch directory (and the stderr file) alive.
        let command = (["trailwatch"] + arguments).joined(separator: " ")
        process.terminationHandler = { ended in
            let stoppedByTest = ended.terminationReason == .uncaughtSignal && [SIGTERM, SIGKILL].contains(ended.terminationStatus)
            if !stoppedByTest && !(ended.terminationReason == .exit && ended.terminationStatus == 0) {
                print("\(command) (pid \(ended.processIdentifier)) ended on its own with status \(ended.terminationStatus); its stderr:\n\(scratch.read("stderr"))")
            }
        }
        try launchProcess(process)
        let server = Server(process: process, scratch: scratch)
        _ = await eventually(timeout) { server.port > 0 || !process.isRunning }
        return server
    }

    /// Waits for `process` to exit without holding a cooperative thread.
    /// Waits for `process` to exit on a thread of its own (never on the cooperative pool) and returns
    /// when it exited, as seen by that thread: the awaiting task may resume much later on a busy
    /// machine, so tests that time an exit use the returned time.
    @discardableResult
    static func exit(of process: Process) async -> Date {
        await withCheckedContinuation { (done: CheckedContinuation<Date, Never>) in
            // A thread of its own, not a GCD queue: GCD limits its threads, and with many children
            // waited for at once a wait could start (and time the exit) late.
            Thread {
                process.waitUntilExit()
                done.resume(returning: Date())
            }.start()
        }
    }

    /// The test's environment with `extra` on top; loopback never goes through a proxy, and the
    /// AWS SDKs never look for instance metadata.
    static func childEnvironment(_ extra: [String: String]) -> [String: String] {
        var environment = ProcessInfo.processInfo.environment
        let loopback = "127.0.0.1,localhost,::1"
        for name in ["NO_PROXY", "no_proxy"] {
            environment[name] = [environment[name], loopback].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ",")
        }
        environment["AWS_EC2_METADATA_DISABLED"] = "true"
        return environment.merging(extra) { $1 }
    }

    /// A running trailwatch server.
    final class Server: @unchecked Sendable {
        let process: Process
        private let scratch: TemporaryDirectory

        init(process: Process, scratch: TemporaryDirectory) {
            self.process = process
            self.scratch = scratch
        }

        /// What it printed on stderr so far.
        var errors: String { scratch.read("stderr") }

        /// The port of its "serving http(s)://HOST:PORT/" line; 0 before it printed one.
        var port: Int {
            // (After the log line's time, when stderr is not a terminal.)
            let line = errors.split(separator: "\n").first { $0.contains("serving ") } ?? ""
            let address = line.split(separator: " ").first { $0.hasPrefix("http://") || $0.hasPrefix("https://") } ?? ""
            return Int(address.split(separator: ":").last?.split(separator: "/").first ?? "") ?? 0
        }

        var pid: pid_t { process.processIdentifier }

        /// Sends `signal` and waits for the exit; returns the exit status.
        @discardableResult
        func stop(_ signal: Int32 = SIGTERM) async -> Int32 {
            if process.isRunning { kill(process.processIdentifier, signal) }
            await Child.exit(of: process)
            return process.terminationStatus
        }

        /// For `defer`, which cannot await: SIGKILL if still running (a test that failed before
        /// its orderly `stop()`); never leaves a process behind.
        func kill9IfRunning() {
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
            }
        }
    }
}
