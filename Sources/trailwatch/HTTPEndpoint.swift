import AccessPolicies
import AWSWire
import Foundation
import LogsQuery
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
            let text = try readPrivateFile(path, setting: "access_keys_file")
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
        var authentication = AWSAuthentication(keys: keys, allowAnonymousOnLoopback: http.anonymousOnLoopback)
        if let path = http.accessPoliciesFile {
            authentication.policies = try policies(path, keys: keys)
        }
        return authentication
    }

    /// A file only its owner may read or write (keys and policies): anyone else able to read keys
    /// could sign requests, anyone able to change policies could grant themselves rights.
    static func readPrivateFile(_ path: String, setting: String) throws(SetupError) -> String {
        var info = stat()
        guard stat(path, &info) == 0, let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw SetupError(message: "http: cannot read \(setting) \(path)")
        }
        if info.st_mode & 0o077 != 0 {
            throw SetupError(message: "http: \(setting) \(path) is open to others (mode \(String(info.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        return text
    }

    /// The policies of `access_policies_file`; policy files it names are read beside it, with the
    /// same permission check. Every access key id it names must be a configured key.
    static func policies(_ path: String, keys: AccessKeyring) throws(SetupError) -> AccessPolicySet {
        let text = try readPrivateFile(path, setting: "access_policies_file")
        let directory = (path as NSString).deletingLastPathComponent
        let set: AccessPolicySet
        do {
            set = try AccessPolicyFile.parse(text, file: path) { name in
                let full = name.hasPrefix("/") ? name : (directory as NSString).appendingPathComponent(name)
                do { return try readPrivateFile(full, setting: "policy file") } catch { throw error }
            }
        } catch {
            throw SetupError(message: "http: access_policies_file \(error)")
        }
        for subject in set.attachments.keys.sorted()
            where subject != AccessPolicySet.anonymous && subject != AccessPolicySet.token && keys.secret(for: subject) == nil {
            throw SetupError(message: "http: access_policies_file \(path) attaches policies to \(subject), which is not a configured access key")
        }
        return set
    }

    /// `/metrics` and `/health` of a running pipeline.
    static func pipelineRoutes(_ runner: PipelineRunner) -> [HTTPRoute] {
        [
            HTTPRoute(.exact("/metrics"), .immediate { _ in
                HTTPReply(contentType: "text/plain; version=0.0.4; charset=utf-8", text: PrometheusExposition.render(runner.metrics, reloads: runner.reloadStatus))
            }, access: .action("trailwatch:GetMetrics")),
            HTTPRoute(.exact("/health"), .immediate { _ in
                let (ok, body) = PrometheusExposition.health(runner.metrics, failures: runner.currentFailures, reloads: runner.reloadStatus)
                return HTTPReply(status: ok ? 200 : 503, contentType: "application/json", text: body + "\n")
            }, access: .open),
        ]
    }

    /// The dashboard's pages; they read the store, so they run on the query threads.
    static func dashboardRoutes(_ site: DashboardSite) -> [HTTPRoute] {
        let handler = HTTPRoute.Handler.store { head in
            await site.page(path: head.path, query: head.query).map { HTTPReply(status: $0.status, contentType: $0.contentType, text: $0.body) }
        }
        let dashboard = RouteAccess.policy { head in
            AccessRequest(action: "cloudwatch:GetDashboard", resources: [dashboardResource(head.path)])
        }
        let query = RouteAccess.policy { head in queryAccess(head.query["q"] ?? "") }
        return [HTTPRoute(.exact("/"), handler, access: dashboard), HTTPRoute(.exact("/query"), handler, access: query),
                HTTPRoute(.exact("/api/query"), handler, access: query),
                HTTPRoute(.exact("/dashboards"), handler, access: dashboard), HTTPRoute(.prefix("/dashboards/"), handler, access: dashboard)]
    }

    /// The account and region in the ARNs of the dashboard and `/api/query` (the Logs API's defaults).
    static let arnAccount = "000000000000", arnRegion = "us-east-1"

    /// `/dashboards/NAME` is the dashboard `arn:aws:cloudwatch::ACCOUNT:dashboard/NAME`; `/` and
    /// `/dashboards` show whichever comes first, so they need every dashboard.
    static func dashboardResource(_ path: String) -> AccessResource {
        let prefix = "arn:aws:cloudwatch::\(arnAccount):dashboard/"
        guard path.hasPrefix("/dashboards/") else { return .every(startingWith: prefix) }
        let name = String(path.dropFirst("/dashboards/".count)).removingPercentEncoding ?? ""
        return name.isEmpty ? .every(startingWith: prefix) : .named(prefix + name)
    }

    /// `/api/query` and `/query` run a Logs Insights query: `logs:StartQuery` on the log groups its
    /// `SOURCE logGroups(namePrefix: …)` selects, or on every group.
    static func queryAccess(_ text: String) -> AccessRequest {
        let groups = "arn:aws:logs:\(arnRegion):\(arnAccount):log-group:"
        let prefixes = (try? LogsQuery.parse(text))?.source?.namePrefixes ?? [""]
        return AccessRequest(action: "logs:StartQuery", resources: prefixes.map { .every(startingWith: groups + $0) })
    }

    /// Starts the server; its AWS APIs are whatever `services` holds while it runs.
    static func start(_ http: HTTPSettings, routes: [HTTPRoute], services: AWSServiceDirectory) async throws(SetupError) -> HTTPServer {
        let settings = try serverSettings(http)
        let authentication = try authentication(http)
        let server = HTTPServer(settings: settings, routes: routes, services: services, authentication: authentication)
        do {
            try await server.start()
        } catch {
            throw SetupError(message: error.description)
        }
        return server
    }
}
