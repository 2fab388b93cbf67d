import ArgumentParser
import Dispatch
import Foundation
import LogsQuery
import TrailwatchConfig
import AWSWire
import TrailwatchDashboard
import TrailwatchHTTP
import TrailwatchRuntime
import TrailwatchStages
import TrailwatchStore

/// `trailwatch dashboard STORE`: the dashboard pages over a store, until interrupted.
struct DashboardCommand: AsyncParsableCommand {
    @OptionGroup var logging: LoggingOptions

    static let configuration = CommandConfiguration(
        commandName: "dashboard",
        abstract: "Serve dashboards (charts with anomaly bands, alarms, insights, a query box) over a store.",
        discussion: """
            Dashboards come from the `dashboards:` of --pipeline; without it, one is made from what the store holds. \
            Binds to 127.0.0.1 by default; any other address needs --auth-token-env (clients then send the token \
            as a Bearer token or as the password of HTTP basic auth).
            """)

    @Argument(help: "The store: an SQLite file (the store sink's path) or a postgres:// URL.")
    var store: String

    @Option(help: "HOST:PORT to listen on.")
    var listen = "127.0.0.1:8080"

    @Option(help: "A pipeline file whose `dashboards:` to serve.")
    var pipeline: String?

    @Option(name: .customLong("auth-token-env"), help: "Environment variable holding the access token (required beyond loopback).")
    var authTokenEnv: String?

    @Option(name: .customLong("query-timeout"), help: "How long one query may run, e.g. 30s or 2m (default: the pipeline's query_timeout, else 30s).")
    var queryTimeout: String?

    func run() async throws {
        // Read-only, and refused at once when the file is not a trailwatch store.
        let opened = try await StoreCommandSupport.open(store)
        await opened.close()
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw ValidationError("--listen: '\(listen)' is not HOST:PORT")
        }
        let settings = HTTPSettings(host: String(listen[..<colon]), port: port, authTokenEnv: authTokenEnv, store: store)
        guard settings.isLoopback || authTokenEnv != nil else {
            throw ValidationError("--auth-token-env is required when listening on \(settings.host) (only loopback addresses may go without a token)")
        }
        var dashboards: [DashboardDefinition] = []
        var timeout = QueryLimits.defaultTimeout
        if let pipeline {
            let (planned, diagnostics) = PipelineFiles.plan(path: pipeline)
            for d in diagnostics where d.severity == .error { CLILog.error(d.description) }
            guard let plan = planned else { throw ExitStatus.invalidInput }
            dashboards = (try? DashboardDefinition.all(in: plan.document).get()) ?? []
            timeout = .milliseconds(plan.document.settings.queryTimeout.milliseconds)
        }
        if let queryTimeout {
            guard let parsed = QueryTimeoutSetting.parse(queryTimeout), let limit = parsed else {
                throw ValidationError("--query-timeout: '\(queryTimeout)' is not a duration such as 30s or 2m")
            }
            timeout = limit
        }
        BuiltinStages.registerStoreBackends()
        let site = DashboardSite(store: store, dashboards: dashboards, queryTimeout: timeout)
        let server: HTTPServer
        do {
            server = try await HTTPEndpoint.start(settings, routes: HTTPEndpoint.dashboardRoutes(site), services: AWSServiceDirectory())
        } catch {
            CLILog.error("\(error)")
            throw ExitStatus.failure
        }
        CLILog.info("serving dashboards on \(server.baseURL)/ (Ctrl-C stops)")
        let stopped = AsyncStream<Void>.makeStream()
        let signals = SignalHandlers { _ in stopped.continuation.finish() }
        for await _ in stopped.stream {}
        await server.shutdown()
        withExtendedLifetime(signals) {}
    }
}
