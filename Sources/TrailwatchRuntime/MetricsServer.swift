#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TrailwatchCore
import Synchronization
import TrailwatchConfig

/// The pipeline's own counters in Prometheus' text exposition format.
public enum PrometheusExposition {
    static func escape(_ value: String) -> String {
        var out = ""
        for c in value {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    static func metricName(_ gauge: String) -> String {
        "trailwatch_" + String(gauge.map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" })
    }

    public static func render(_ metrics: [ComponentMetrics], reloads: ReloadStatus? = nil) -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ value: (ComponentMetrics) -> Double?) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for m in metrics {
                guard let v = value(m) else { continue }
                out += "\(name){component=\"\(escape(m.id))\",type=\"\(escape(m.type))\",kind=\"\(escape(m.section))\"} \(format(v))\n"
            }
        }
        family("trailwatch_events_in_total", "counter", "Events a component received.") { $0.section == "source" ? nil : Double($0.eventsIn) }
        family("trailwatch_events_out_total", "counter", "Events a component emitted or wrote.") { Double($0.eventsOut) }
        family("trailwatch_bytes_in_total", "counter", "Bytes a component received.") { $0.section == "source" ? nil : Double($0.bytesIn) }
        family("trailwatch_bytes_out_total", "counter", "Bytes a component emitted or wrote.") { Double($0.bytesOut) }
        family("trailwatch_errors_total", "counter", "Errors a component reported.") { Double($0.errors) }
        family("trailwatch_component_seconds", "gauge", "Seconds since the component started.") { $0.seconds }
        let gauges = Set(metrics.flatMap { $0.gaugeValues.keys }).sorted()
        for gauge in gauges {
            family(metricName(gauge), "gauge", "Component gauge \(gauge).") { $0.gaugeValues[gauge] }
        }
        // Metric-filter metrics: the newest closed period of each, one series per statistic.
        let data = metrics.flatMap { m in m.datapoints.map { (m, $0) } }
            .sorted { ($0.1.metric.namespace, $0.1.metric.name, "\($0.1.metric.dimensions)") < ($1.1.metric.namespace, $1.1.metric.name, "\($1.1.metric.dimensions)") }
        if !data.isEmpty {
            let statistics: [(name: String, help: String, value: (MetricDatum) -> Double)] = [
                ("sum", "Sum", \.sum), ("sample_count", "SampleCount", \.sampleCount), ("minimum", "Minimum", \.minimum), ("maximum", "Maximum", \.maximum),
            ]
            for (stat, help, value) in statistics {
                let name = "trailwatch_metric_\(stat)"
                out += "# HELP \(name) \(help) of the newest closed period of each metric a stage emits (metric filters).\n# TYPE \(name) gauge\n"
                for (m, d) in data {
                    var labels = "component=\"\(escape(m.id))\",namespace=\"\(escape(d.metric.namespace))\",metric_name=\"\(escape(d.metric.name))\",period=\"\(d.period)\""
                    for dimension in d.metric.dimensions { labels += ",dim_\(labelName(dimension.name))=\"\(escape(dimension.value))\"" }
                    out += "\(name){\(labels)} \(format(value(d)))\n"
                }
            }
        }
        if let reloads { out += render(reloads) }
        return out
    }

    /// Configuration reloads (SIGHUP, `--watch-config`), named after Prometheus' own.
    static func render(_ reloads: ReloadStatus) -> String {
        let label = "pipeline=\"\(escape(reloads.file))\""
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ value: Double, extra: String = "") {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name){\(label)\(extra)} \(format(value))\n"
        }
        family("trailwatch_config_reloads_total", "counter", "Reloads of the pipeline file applied.", Double(reloads.succeeded))
        family("trailwatch_config_reload_failures_total", "counter", "Reloads refused because the new file had errors.", Double(reloads.failed))
        family("trailwatch_config_last_reload_successful", "gauge", "Whether the newest reload was applied (1 also before any reload).",
               reloads.lastError == nil ? 1 : 0)
        family("trailwatch_config_last_reload_timestamp_seconds", "gauge", "When the newest reload was attempted (0: never).",
               Double(reloads.lastAttemptMillis) / 1000)
        if let error = reloads.lastError {
            let first = error.split(separator: "\n").first.map(String.init) ?? error
            family("trailwatch_config_last_reload_error", "gauge", "The newest refused reload's first error.", 1,
                   extra: ",error=\"\(escape(first))\"")
        }
        return out
    }

    /// A dimension name as a Prometheus label name (letters, digits and underscores).
    static func labelName(_ name: String) -> String {
        String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
    }

    static func format(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        return String(v)
    }

    /// `/health`: per-component status; healthy when no component failed.
    public static func health(_ metrics: [ComponentMetrics], failures: [String], reloads: ReloadStatus? = nil) -> (ok: Bool, body: String) {
        let failed = Set(failures.compactMap { $0.split(separator: ":").first.map(String.init) })
        var components: [[String: Any]] = []
        for m in metrics {
            components.append(["id": m.id, "type": m.type, "kind": m.section, "status": failed.contains(m.id) ? "failed" : "running",
                               "errors": m.errors, "events_out": m.eventsOut])
        }
        let ok = failed.isEmpty
        var body: [String: Any] = ["status": ok ? "ok" : "failed", "components": components]
        if let reloads {
            // A refused reload leaves the old pipeline running: reported, not unhealthy.
            var reload: [String: Any] = ["succeeded": reloads.succeeded, "failed": reloads.failed]
            if let error = reloads.lastError { reload["last_error"] = error }
            body["reloads"] = reload
        }
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
        return (ok, String(decoding: data, as: UTF8.self))
    }
}

/// A small HTTP/1.1 server for `/metrics` and `/health`: one thread, one request per connection.
/// Scrapes are rare and tiny, so this stays simple and has no dependencies.
public final class MetricsServer: @unchecked Sendable {
    /// A request the server passes to extra routes.
    public struct Request: Sendable {
        public var method: String
        public var path: String
        /// Decoded query parameters.
        public var query: [String: String]
    }

    /// What an extra route answers.
    public struct Response: Sendable {
        public var status: Int
        public var contentType: String
        public var body: String
        public init(status: Int = 200, contentType: String, body: String) {
            self.status = status
            self.contentType = contentType
            self.body = body
        }
    }

    public typealias Routes = @Sendable (Request) -> Response?

    public let settings: HTTPSettings
    private let runner: PipelineRunner?
    private let routes: Routes?
    private let token: String?
    private var socketFD: Int32 = -1
    private let running = Atomic<Bool>(false)
    public private(set) var port: Int = 0

    public struct StartError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Serves `/metrics` and `/health` of `runner` (when there is one) and whatever `routes` answers.
    public init(settings: HTTPSettings, runner: PipelineRunner?, routes: Routes? = nil) throws(StartError) {
        self.settings = settings
        self.runner = runner
        self.routes = routes
        if let name = settings.authTokenEnv {
            guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
                throw StartError(message: "http: the environment variable \(name) (auth_token_env) is not set")
            }
            token = value
        } else {
            token = nil
        }
    }

    /// Binds and starts serving on a background thread.
    public func start() throws(StartError) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE
        var result: UnsafeMutablePointer<addrinfo>?
        let host = settings.host == "localhost" ? "127.0.0.1" : settings.host
        guard getaddrinfo(host, String(settings.port), &hints, &result) == 0, let info = result else {
            throw StartError(message: "http: cannot resolve \(settings.host)")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard fd >= 0 else { throw StartError(message: "http: socket: \(String(cString: strerror(errno)))") }
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        guard bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0, listen(fd, 16) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw StartError(message: "http: cannot listen on \(settings.host):\(settings.port): \(message)")
        }
        var address = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { _ = getsockname(fd, $0, &length) } }
        port = Int(withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) } })
        socketFD = fd
        running.store(true, ordering: .relaxed)
        let thread = Thread { [self] in serve() }
        thread.name = "http"
        thread.start()
    }

    public func stop() {
        running.store(false, ordering: .relaxed)
        if socketFD >= 0 { shutdown(socketFD, Int32(SHUT_RDWR)); close(socketFD) }
    }

    private func serve() {
        while running.load(ordering: .relaxed) {
            let client = accept(socketFD, nil, nil)
            if client < 0 { if errno == EINTR { continue }; return }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            handle(client)
            close(client)
        }
    }

    private func handle(_ client: Int32) {
        var request = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while request.count < 16_384 {
            let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            request.append(contentsOf: buffer[0..<n])
            if request.count >= 4, request.suffix(4).elementsEqual([13, 10, 13, 10]) { break }
            if let text = String(bytes: request, encoding: .utf8), text.contains("\r\n\r\n") { break }
        }
        let text = String(decoding: request, as: UTF8.self)
        let lines = text.components(separatedBy: "\r\n")
        let parts = (lines.first ?? "").split(separator: " ")
        guard parts.count >= 2 else { return respond(client, 400, "text/plain", "bad request\n") }
        let method = String(parts[0])
        let target = parts[1].split(separator: "?", maxSplits: 1)
        let path = String(target.first ?? "")
        let query = target.count > 1 ? Self.decodeQuery(String(target[1])) : [:]
        if let token, !authorized(lines.dropFirst(), token: token) {
            return respond(client, 401, "text/plain", "unauthorized\n", extra: "WWW-Authenticate: Basic realm=\"trailwatch\"\r\n")
        }
        guard method == "GET" || method == "HEAD" else { return respond(client, 405, "text/plain", "method not allowed\n") }
        switch path {
        case "/metrics" where runner != nil:
            respond(client, 200, "text/plain; version=0.0.4; charset=utf-8", PrometheusExposition.render(runner!.metrics, reloads: runner!.reloadStatus), head: method == "HEAD")
        case "/health" where runner != nil:
            let (ok, body) = PrometheusExposition.health(runner!.metrics, failures: runner!.currentFailures, reloads: runner!.reloadStatus)
            respond(client, ok ? 200 : 503, "application/json", body + "\n", head: method == "HEAD")
        default:
            if let routes, let response = routes(Request(method: method, path: path, query: query)) {
                respond(client, response.status, response.contentType, response.body, head: method == "HEAD")
            } else {
                respond(client, 404, "text/plain", "not found\n")
            }
        }
    }

    /// `a=1&b=x%20y` → ["a": "1", "b": "x y"] (`+` is a space, as forms send it).
    static func decodeQuery(_ text: String) -> [String: String] {
        var out: [String: String] = [:]
        for pair in text.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String {
                String(s).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(s)
            }
            out[decode(parts[0])] = parts.count > 1 ? decode(parts[1]) : ""
        }
        return out
    }

    /// Bearer TOKEN, or Basic with any user and TOKEN as password; compared in constant time.
    private func authorized(_ headers: ArraySlice<String>, token: String) -> Bool {
        for header in headers {
            let lower = header.lowercased()
            guard lower.hasPrefix("authorization:") else { continue }
            let value = header.dropFirst("authorization:".count).trimmingCharacters(in: .whitespaces)
            var presented: String?
            if value.lowercased().hasPrefix("bearer ") {
                presented = String(value.dropFirst(7))
            } else if value.lowercased().hasPrefix("basic "), let data = Data(base64Encoded: String(value.dropFirst(6))) {
                let pair = String(decoding: data, as: UTF8.self)
                presented = pair.split(separator: ":", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
            }
            if let presented { return constantTimeEqual(Array(presented.utf8), Array(token.utf8)) }
        }
        return false
    }

    private func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) { difference |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0) }
        return difference == 0
    }

    private func respond(_ client: Int32, _ status: Int, _ type: String, _ body: String, head: Bool = false, extra: String = "") {
        let reason = [200: "OK", 302: "Found", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
                      500: "Internal Server Error", 503: "Service Unavailable"][status] ?? "OK"
        let bytes = Array(body.utf8)
        var response = Array("HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(type)\r\nContent-Length: \(bytes.count)\r\nConnection: close\r\n\(extra)\r\n".utf8)
        if !head { response += bytes }
        var offset = 0
        while offset < response.count {
            let n = response.withUnsafeBytes { send(client, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }
}
