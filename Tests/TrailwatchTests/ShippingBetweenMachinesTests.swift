import Foundation
import Glibc
import Testing
import TrailwatchTestSupport

/// A free loopback port (bound and released), for a server that must come back on the same port.
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// `trailwatch run AGENT` with the test's AWS credentials, its stderr in agent.err.
func startAgent(_ pipeline: String, _ dir: TemporaryDirectory) throws -> Process {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: trailwatchBinary())
    process.arguments = ["run", pipeline, "--quiet"]
    process.environment = ProcessInfo.processInfo.environment.merging(["AWS_ACCESS_KEY_ID": apiKeyID, "AWS_SECRET_ACCESS_KEY": apiSecret]) { $1 }
    process.standardError = FileHandle(forWritingAtPath: dir.write("agent.err", ""))
    try launchProcess(process)
    return process
}

extension NetworkEdgeProcessTests {
@Suite("Agent → aggregator over PutLogEvents (two processes)", .serialized)
struct ShippingBetweenMachinesTests {
    @Test("the aggregator killed -9 mid-stream and restarted: every line arrives, duplicates stay within one request")
    func killAggregator() async throws {
        let dir = TemporaryDirectory()
        let port = freePort()
        let aggregator = aggregatorPipeline(dir, listen: "127.0.0.1:\(port)")
        var (server, _) = try await startServing(["run", aggregator, "--quiet"], environment: apiEnvironment)
        let agent = dir.write("agent.yaml", """
            data_dir: \(dir.file("agent-state"))
            sources:
              app: { type: file, include: \(dir.file("app.log")), log_group: agent, log_stream: host-1, checkpoint_interval: 100ms }
            sinks:
              ship:
                type: cloudwatch_logs
                inputs: [app]
                endpoint: http://127.0.0.1:\(port)
                retry_initial: 50ms
                retry_max: 500ms
                timeout: 5s
            """)
        let log = FileHandle(forWritingAtPath: dir.write("app.log", ""))!
        let agentProcess = try startAgent(agent, dir)
        defer {
            kill(agentProcess.processIdentifier, SIGKILL)
            agentProcess.waitUntilExit()
        }
        let total = 30_000
        var written = 0
        func writeLines(_ count: Int) {
            var text = ""
            for _ in 0..<count {
                text += "line \(written) payload \(String(repeating: "x", count: written % 50))\n"
                written += 1
            }
            log.write(Data(text.utf8))
        }
        func receivedCount() -> Int { dir.read("received.log").utf8.reduce(0) { $0 + ($1 == 10 ? 1 : 0) } }
        // First part, then kill -9 while lines keep coming.
        while written < 12_000 { writeLines(1000); await pause(0.02) }
        #expect(await eventually(120) { receivedCount() >= 3000 })
        kill(server.processIdentifier, SIGKILL)
        await Child.exit(of: server)
        while written < 20_000 { writeLines(1000); await pause(0.02) }
        await pause(0.5)
        (server, _) = try await startServing(["run", aggregator, "--quiet"], environment: apiEnvironment)
        defer { kill(server.processIdentifier, SIGTERM); server.waitUntilExit() }
        while written < total { writeLines(1000); await pause(0.02) }
        try log.close()
        // Every line arrives.
        let complete = await eventually(120) {
            Set(dir.read("received.log").split(separator: "\n").map(String.init)).count == total
        }
        let lines = dir.read("received.log").split(separator: "\n")
        let distinct = Set(lines.map(String.init))
        #expect(complete, "\(distinct.count) of \(total) distinct lines arrived; agent stderr:\n\(dir.read("agent.err"))")
        for i in stride(from: 0, to: total, by: 997) {
            #expect(distinct.contains("line \(i) payload \(String(repeating: "x", count: i % 50))"))
        }
        // Duplicates: at most what was in flight when the aggregator died — one PutLogEvents
        // request (≤ 10,000 events) of the agent's sink.
        let duplicates = lines.count - distinct.count
        #expect(duplicates <= 10_000, "\(duplicates) duplicates")
        print("agent → aggregator with kill -9: \(lines.count) lines received for \(total), \(duplicates) duplicates")
    }

    @Test("over HTTPS with a self-signed certificate; with buffer isolate a dead aggregator does not stall the local sink")
    func tlsAndIsolation() async throws {
        let dir = TemporaryDirectory()
        let cert = dir.file("cert.pem"), key = dir.file("key.pem")
        let (status, _, errors) = try await runProgram(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                                                  "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        #expect(status == 0, "\(errors)")
        let port = freePort()
        let agent = dir.write("agent.yaml", """
            data_dir: \(dir.file("agent-state"))
            sources:
              app: { type: file, include: \(dir.file("app.log")), log_group: tls, log_stream: host-1, checkpoint_interval: 100ms }
            sinks:
              local: { type: file, inputs: [app], path: \(dir.file("local.log")), format: raw, sync_interval: 100ms }
              ship:
                type: cloudwatch_logs
                inputs: [app]
                endpoint: https://127.0.0.1:\(port)
                ca_file: \(cert)
                retry_initial: 50ms
                retry_max: 300ms
                buffer: { isolate: true }
            """)
        _ = dir.write("app.log", (0..<2000).map { "tls line \($0)\n" }.joined())
        let agentProcess = try startAgent(agent, dir)
        defer { kill(agentProcess.processIdentifier, SIGKILL); agentProcess.waitUntilExit() }
        // No aggregator yet: the local sink still gets everything.
        #expect(await eventually(120) { dir.read("local.log").split(separator: "\n").count == 2000 })
        let aggregator = aggregatorPipeline(dir, listen: "127.0.0.1:\(port)", extra: "  tls: { certificate: \(cert), key: \(key) }")
        let server = try await Child.serve(["run", aggregator, "--quiet"], environment: apiEnvironment)
        defer { server.kill9IfRunning() }
        let arrived = await eventually(120) { Set(dir.read("received.log").split(separator: "\n")).count == 2000 }
        #expect(arrived, """
            \(Set(dir.read("received.log").split(separator: "\n")).count) of 2000 lines arrived
            agent stderr:
            \(dir.read("agent.err"))
            aggregator stderr:
            \(server.errors)
            """)
    }
}
}
