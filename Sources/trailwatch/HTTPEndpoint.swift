import AWSWire
import Foundation
import TrailwatchConfig
import TrailwatchDashboard
import TrailwatchHTTP
import TrailwatchRuntime

/// Builds the process's HTTP server from `http:` settings: `/metrics` and `/health` of a
/// running pipeline, the dashboard pages of a store, and the AWS APIs the pipeline's sources serve.
enum HTTPEndpoint {
    struct SetupError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    static func serverSettings(_ http: HTTPSettings, environment: [String: String] = ProcessInfo.processInfo.environment) throws(SetupError) -> HTTPServerSettings {
        var settings = HTTPServerSettings(host: http.host, port: http.port)
        if let name = http.authTokenEnv {
            guard let value = environment[name], !value.isEmpty else {
                throw SetupError(message: "http: the environment variable \(name) (auth_token_env) is not set")
            }
            settings.authToken = value
        }
        if let tls = http.tls { settings.tls = TLSFiles(certificatePath: tls.certificate, privateKeyPath: tls.key) }
        settings.maxConnections = http.maxConnections
        settings.maxBodyBytes = http.maxBody.bytes
        settings.idleTimeoutSeconds = http.idleTimeout.seconds
        settings.requestReadTimeoutSeconds = http.requestReadTimeout.seconds
        settings.requestTimeoutSeconds = http.requestTimeout.seconds
        settings.queryTimeoutSeconds = http.queryTimeout.seconds
        return settings
    }

    /// The access keys of `http:`, from the key file and/or the two environment variables.
    static func authentication(_ http: HTTPSettings, environment: [String: String] = ProcessInfo.processInfo.environment) throws(SetupError) -> AWSAuthentication {
        var keys = AccessKeyring()
        if let path = http.accessKeysFile {
            var info = stat()
            guard stat(path, &info) == 0, let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw SetupError(message: "http: cannot read access_keys_file \(path)")
            }
            if info.st_mode & 0o077 != 0 {
                throw SetupError(message: "http: access_keys_file \(path) is readable by others (mode \(String(info.st_mode & 0o777, radix: 8))); chmod 600 it")
            }
            do {
                keys = try AccessKeyring.parse(text)
            } catch {
                throw SetupError(message: "http: access_keys_file \(path): \(error)")
            }
        }
        if let idName = http.accessKeyIDEnv, let secretName = http.secretAccessKeyEnv {
            guard let id = environment[idName], !id.isEmpty else { throw SetupError(message: "http: the environment variable \(idName) (access_key_id_env) is not set") }
            guard let secret = environment[secretName], !secret.isEmpty else {
                throw SetupError(message: "http: the environment variable \(secretName) (secret_access_key_env) is not set")
            }
            keys.add(AccessKey(id: id, secret: secret))
        }
        return AWSAuthentication(keys: keys, allowAnonymousOnLoopback: http.anonymousOnLoopback)
    }

    /// `/metrics` and `/health` of a running pipeline.
    static func pipelineRoutes(_ runner: PipelineRunner) -> [HTTPRoute] {
        [
            HTTPRoute(.exact("/metrics"), .immediate { _ in
                HTTPReply(contentType: "text/plain; version=0.0.4; charset=utf-8", text: PrometheusExposition.render(runner.metrics, reloads: runner.reloadStatus))
            }),
            HTTPRoute(.exact("/health"), .immediate { _ in
                let (ok, body) = PrometheusExposition.health(runner.metrics, failures: runner.currentFailures, reloads: runner.reloadStatus)
                return HTTPReply(status: ok ? 200 : 503, contentType: "application/json", text: body + "\n")
            }),
            tapRoute(runner),
        ]
    }

    /// `GET /tap?component=ID[.PORT]&sample=N&rate=N&limit=N`: a sample of the events leaving a
    /// component, as NDJSON (``TapStream``), for as long as the client reads (`trailwatch tap`).
    static func tapRoute(_ runner: PipelineRunner) -> HTTPRoute {
        HTTPRoute(.exact("/tap"), .streaming { head in
            let query = head.query
            guard let target = query["component"], !target.isEmpty else {
                return .text(400, "the component parameter is required: /tap?component=ID or ID.PORT")
            }
            var numbers: [String: Int] = [:]
            for name in ["sample", "rate", "limit"] {
                guard let text = query[name] else { continue }
                guard let value = Int(text) else { return .text(400, "\(name): '\(text)' is not a whole number") }
                numbers[name] = value
            }
            let options = TapOptions(sampleEvery: numbers["sample"] ?? 1, eventsPerSecond: numbers["rate"] ?? 100, limit: numbers["limit"])
            let subscription: TapSubscription
            do throws(TapError) {
                subscription = try runner.attachTap(target, options: options)
            } catch {
                let status = switch error {
                case .unknownComponent: 404
                case .tooManyTaps: 429
                default: 400
                }
                return .text(status, error.description)
            }
            let stream = TapStream(subscription: subscription, isStopping: { runner.isStopping },
                                   detach: { runner.taps.detach(subscription) })
            return HTTPReply(contentType: "application/x-ndjson", stream: HTTPStreamingBody(next: { await stream.next() }, finished: { stream.finish() }))
        })
    }

    /// The dashboard's pages; they read the store, so they run on the query threads.
    static func dashboardRoutes(_ site: DashboardSite) -> [HTTPRoute] {
        let handler = HTTPRoute.Handler.store { head in
            await site.page(path: head.path, query: head.query).map { HTTPReply(status: $0.status, contentType: $0.contentType, text: $0.body) }
        }
        return [HTTPRoute(.exact("/"), handler), HTTPRoute(.exact("/query"), handler), HTTPRoute(.exact("/api/query"), handler),
                HTTPRoute(.exact("/dashboards"), handler), HTTPRoute(.prefix("/dashboards/"), handler)]
    }

    /// Starts the server; its AWS APIs are whatever `services` holds while it runs.
    static func start(_ http: HTTPSettings, routes: [HTTPRoute], services: AWSServiceDirectory) async throws(SetupError) -> HTTPServer {
        let settings = try serverSettings(http)
        let authentication = try authentication(http)
        let server = HTTPServer(settings: settings, routes: routes, services: services, authentication: authentication,
                                logger: CLILog.library("trailwatch.http"))
        do {
            try await server.start()
        } catch {
            throw SetupError(message: error.description)
        }
        return server
    }
}
