import Foundation
import Glibc
import Testing
import TrailwatchRuntime
import TrailwatchTestSupport

/// A TCP connection to 127.0.0.1:`port` (close it), or nil.
func loopbackConnection(port: Int) -> Int32? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard connected == 0 else { close(fd); return nil }
    return fd
}

/// A bare HTTP/1.1 GET over a socket: (status, body).
func httpGet(port: Int, path: String, headers: [String] = []) -> (Int, String)? {
    guard let fd = loopbackConnection(port: port) else { return nil }
    defer { close(fd) }
    let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n"
    _ = request.withCString { send(fd, $0, strlen($0), 0) }
    var response = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        response += buffer[0..<n]
    }
    let text = String(decoding: response, as: UTF8.self)
    guard let status = text.split(separator: " ").dropFirst().first.flatMap({ Int($0) }),
          let split = text.range(of: "\r\n\r\n") else { return nil }
    return (status, String(text[split.upperBound...]))
}

/// A strict reader of Prometheus' text format: every sample belongs to a family announced by
/// HELP and TYPE lines, names and labels are well formed, values are numbers.
func parsePrometheus(_ text: String) throws -> [String: [(labels: [String: String], value: Double)]] {
    struct Bad: Error, CustomStringConvertible { var description: String }
    var families: [String: [(labels: [String: String], value: Double)]] = [:]
    var typed = Set<String>()
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
        if line.hasPrefix("# HELP ") { continue }
        if line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            guard parts.count == 4, ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]) else { throw Bad(description: "bad TYPE: \(line)") }
            typed.insert(String(parts[2]))
            continue
        }
        guard let brace = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}") else { throw Bad(description: "no labels: \(line)") }
        let name = String(line[..<brace])
        guard name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }), typed.contains(name) else { throw Bad(description: "unknown family \(name)") }
        var labels: [String: String] = [:]
        var rest = line[line.index(after: brace)..<close]
        while !rest.isEmpty {
            guard let eq = rest.firstIndex(of: "="), rest[rest.index(after: eq)] == "\"" else { throw Bad(description: "bad label in \(line)") }
            let key = String(rest[..<eq])
            var value = ""
            var i = rest.index(eq, offsetBy: 2)
            while rest[i] != "\"" {
                if rest[i] == "\\" { i = rest.index(after: i); value.append(rest[i] == "n" ? "\n" : rest[i]) } else { value.append(rest[i]) }
                i = rest.index(after: i)
            }
            labels[key] = value
            rest = rest[rest.index(after: i)...]
            if rest.first == "," { rest = rest.dropFirst() }
        }
        guard let value = Double(line[line.index(after: close)...].trimmingCharacters(in: .whitespaces)) else { throw Bad(description: "bad value: \(line)") }
        families[name, default: []].append((labels, value))
    }
    return families
}

@Suite("Self-metrics over HTTP (real process)")
struct MetricsEndpointTests {
    func start(_ dir: TemporaryDirectory, yaml: String, environment: [String: String] = [:]) async throws -> (Process, Int) {
        try await startServing(["run", dir.write("p.yaml", yaml), "--quiet"], environment: environment)
    }

    @Test("/metrics serves per-component counters and gauges in Prometheus format; /health reports components")
    func metricsAndHealth() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("in.log", "one\ntwo\nthree\n")
        let (process, port) = try await start(dir, yaml: """
            data_dir: \(dir.file("state"))
            http: { listen: "127.0.0.1:0" }
            sources:
              app: { type: file, include: \(dir.file("in.log")), checkpoint_interval: 50ms }
            sinks:
              out: { type: file, inputs: [app], path: \(dir.file("out.log")), format: raw }
            """)
        defer { kill(process.processIdentifier, SIGTERM); process.waitUntilExit() }
        #expect(port > 0)
        #expect(await eventually { dir.read("out.log").count == 14 })
        // The counters follow the writes; wait for them rather than for a fixed time.
        #expect(await eventually {
            guard let (_, body) = try? httpGet(port: port, path: "/metrics"), let families = try? parsePrometheus(body) else { return false }
            return families["trailwatch_events_out_total"]?.first { $0.labels["component"] == "app" }?.value == 3
        })
        let (status, body) = try #require(httpGet(port: port, path: "/metrics"))
        #expect(status == 200)
        let families = try parsePrometheus(body)
        #expect(families["trailwatch_events_out_total"]?.first { $0.labels["component"] == "app" }?.value == 3)
        #expect(families["trailwatch_events_in_total"]?.first { $0.labels["component"] == "out" }?.value == 3)
        #expect(families["trailwatch_file_lag_bytes"]?.first?.value == 0)
        #expect(families["trailwatch_checkpoint_age_seconds"] != nil)
        let (healthStatus, health) = try #require(httpGet(port: port, path: "/health"))
        #expect(healthStatus == 200 && health.contains(#""status":"ok""#))
        #expect(httpGet(port: port, path: "/nothing")?.0 == 404)
    }

    @Test("with auth_token_env, requests need the token (Bearer or Basic)")
    func auth() async throws {
        let dir = TemporaryDirectory()
        let (process, port) = try await start(dir, yaml: """
            data_dir: \(dir.file("state"))
            http: { listen: "127.0.0.1:0", auth_token_env: TW_TOKEN }
            sources:
              app: { type: file, include: \(dir.file("none.log")) }
            sinks:
              out: { type: console, inputs: [app] }
            """, environment: ["TW_TOKEN": "s3cret"])
        defer { kill(process.processIdentifier, SIGTERM); process.waitUntilExit() }
        #expect(httpGet(port: port, path: "/metrics")?.0 == 401)
        #expect(httpGet(port: port, path: "/metrics", headers: ["Authorization: Bearer wrong"])?.0 == 401)
        #expect(httpGet(port: port, path: "/metrics", headers: ["Authorization: Bearer s3cret"])?.0 == 200)
        let basic = Data("any:s3cret".utf8).base64EncodedString()
        #expect(httpGet(port: port, path: "/health", headers: ["Authorization: Basic \(basic)"])?.0 == 200)
    }

    @Test("label values are escaped")
    func escaping() throws {
        let m = ComponentMetrics(id: "a\"b\\c\nd", type: "file", section: "sink")
        m.recordIn(events: 2, bytes: 10)
        let text = PrometheusExposition.render([m])
        let families = try parsePrometheus(text)
        #expect(families["trailwatch_events_in_total"]?.first?.labels["component"] == "a\"b\\c\nd")
    }

    @Test("listening beyond loopback without a token is a configuration error")
    func tokenRequired() {
        let found = diagnostics("""
            http: { listen: "0.0.0.0:9598" }
            sources:
              app: { type: stdin }
            sinks:
              out: { type: console, inputs: [app] }
            """)
        #expect(found.contains { $0.contains("setting 'http.auth_token_env': is required when listening on 0.0.0.0") }, "\(found)")
    }
}
