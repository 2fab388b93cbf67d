import ArgumentParser
import Dispatch
import Foundation
import TrailwatchConfig
import TrailwatchDashboard
import TrailwatchHTTP
import TrailwatchRuntime

struct RunCommand: AsyncParsableCommand {
    @OptionGroup var logging: LoggingOptions

    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a pipeline: continuously (SIGINT/SIGTERM drain, flush and exit 0; SIGHUP reloads the file) or with --once as a batch job.")

    @Argument(help: "Pipeline YAML file.")
    var pipeline: String

    @Flag(help: "Read every input to its end, flush, print a summary and exit.")
    var once = false

    @Option(name: [.customLong("format"), .customLong("output")], help: "Summary format: text or json.")
    var format: OutputFormat = .text

    @Flag(help: "Do not print the summary.")
    var quiet = false

    @Option(name: .customLong("status-every"), help: "Print a status line to stderr this often (e.g. 10s) while running.")
    var statusEvery: String?

    @Flag(name: .customLong("watch-config"), help: "Reload the pipeline when its file changes (as on SIGHUP).")
    var watchConfig = false

    func run() async throws {
        let (planned, diagnostics) = PipelineFiles.plan(path: pipeline)
        for d in diagnostics { CLILog.diagnostic(d) }
        guard let plan = planned else { throw ExitStatus.invalidInput }

        let log = RuntimeLog { level, component, message in
            CLILog.runtime(level, component, message)
        }
        var statusInterval: Double?
        if let statusEvery {
            guard let parsed = ConfigDuration.parse(statusEvery), parsed.milliseconds >= 100 else {
                throw ValidationError("--status-every: '\(statusEvery)' is not a duration of at least 100ms (like 10s)")
            }
            statusInterval = parsed.seconds
        }
        let runner = PipelineRunner(plan: plan, once: once, log: log)
        let status = StatusReporter(runner: runner)
        if let statusInterval { status.report(every: statusInterval) }
        let reloader = PipelineReloader(path: pipeline, runner: runner, loaded: plan)
        if watchConfig && !once { reloader.watch(every: 1) }
        let signals = SignalHandlers(onHangup: { reloader.reload(because: "SIGHUP") }) { count in
            // The newest reload's setting applies.
            let deadline = runner.plan.document.settings.shutdownTimeout
            if count == 1 {
                CLILog.notice("stopping: draining and flushing, at most \(deadline) (signal again to exit at once)")
                runner.requestStop()
                // While draining, say how it goes; past the deadline, leave: what was not acknowledged
                // is read again at the next start.
                status.report(every: 10, first: 10)
                reloader.stop()
                DispatchQueue.global().asyncAfter(deadline: .now() + deadline.seconds) {
                    CLILog.error("shutdown deadline of \(deadline) passed; exiting without waiting for the rest (it will be read again)")
                    Foundation.exit(ExitStatus.failure.rawValue)
                }
            } else {
                CLILog.warning("exiting without draining")
                Foundation.exit(ExitStatus.interrupted.rawValue)
            }
        }
        var server: HTTPServer?
        if let http = plan.document.settings.http {
            do {
                let site = http.store.map { DashboardSite(store: $0, dashboards: (try? DashboardDefinition.all(in: plan.document).get()) ?? [],
                                                          queryTimeout: .milliseconds(plan.document.settings.queryTimeout.milliseconds)) }
                let routes = HTTPEndpoint.pipelineRoutes(runner) + (site.map(HTTPEndpoint.dashboardRoutes) ?? [])
                server = try await HTTPEndpoint.start(http, routes: routes, services: runner.awsServices)
                CLILog.info("serving /metrics and /health\(site == nil ? "" : ", dashboards and /query")\(Self.apiSources(plan).isEmpty ? "" : " and the AWS APIs") on \(server!.baseURL)")
            } catch {
                CLILog.error("\(error)")
                throw ExitStatus.failure
            }
        } else if !Self.apiSources(plan).isEmpty {
            CLILog.error("\(Self.apiSources(plan).joined(separator: ", ")): an API source needs the pipeline's http: server (http: { listen: 127.0.0.1:4566 })")
            throw ExitStatus.invalidInput
        }
        let summary = await runner.run()
        // Drain: requests in progress finish, idle connections close.
        await server?.shutdown()
        withExtendedLifetime(signals) {}
        reloader.stop()
        if !quiet || !summary.failures.isEmpty {
            let text = format == .json ? summary.renderJSON() : summary.renderTable()
            if once || format == .json { print(text, terminator: "") } else { CLILog.info(text) }
        }
        if !summary.failures.isEmpty { throw ExitStatus.failure }
        // A batch run that met a truncated archive or could not write a batch did not do its job.
        if once && !summary.damagedComponents.isEmpty {
            if quiet { CLILog.error("damaged input or failed writes in: " + summary.damagedComponents.joined(separator: ", ")) }
            throw ExitStatus.failure
        }
    }
}

extension RunCommand {
    /// Components whose kind serves an AWS API on the http: server.
    static func apiSources(_ plan: PipelinePlan) -> [String] {
        plan.components.filter { $0.declaration.section == .sources && $0.declaration.type.hasSuffix("_api") }.map(\.id)
    }
}

/// SIGINT and SIGTERM (stop) and SIGHUP (reload) handled on a dispatch queue rather than in a
/// signal handler, so the reaction can take locks and print.
final class SignalHandlers {
    private let sources: [any DispatchSourceSignal]

    init(onHangup: (@Sendable () -> Void)? = nil, onSignal: @escaping @Sendable (Int) -> Void) {
        let queue = DispatchQueue(label: "trailwatch.signals")
        let counter = SignalCounter()
        sources = ([SIGINT, SIGTERM] + (onHangup == nil ? [] : [SIGHUP])).map { sig in
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            source.setEventHandler { if sig == SIGHUP { onHangup?() } else { onSignal(counter.increment()) } }
            source.resume()
            return source
        }
    }
}

/// Re-reads the pipeline file on SIGHUP or, with `--watch-config`, when its content changes,
/// and hands a new plan to the runner. A file with errors changes nothing: the errors are
/// logged (file:line:column) and counted, and the running pipeline stays.
final class PipelineReloader: @unchecked Sendable {
    private let path: String
    private let runner: PipelineRunner
    private let queue = DispatchQueue(label: "trailwatch.reload")
    /// Only touched on `queue`.
    private var lastText: Data?
    private var lastHTTP: String
    private var timer: DispatchSourceTimer?

    init(path: String, runner: PipelineRunner, loaded: PipelinePlan) {
        self.path = path
        self.runner = runner
        self.lastText = FileManager.default.contents(atPath: path)
        self.lastHTTP = Self.describe(loaded.document.settings.http)
    }

    func reload(because reason: String) {
        queue.async { [self] in
            guard !runner.once else {
                CLILog.notice("\(reason): nothing to reload in --once mode")
                return
            }
            apply(FileManager.default.contents(atPath: path), reason: reason)
        }
    }

    /// Looks at the file every `seconds`; a change of content reloads it.
    func watch(every seconds: Double) {
        queue.async { [self] in
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.schedule(deadline: .now() + seconds, repeating: seconds)
            timer.setEventHandler { [self] in
                let text = FileManager.default.contents(atPath: path)
                if let text, text != lastText { apply(text, reason: "\(path) changed") }
            }
            timer.resume()
            self.timer = timer
        }
    }

    func stop() {
        queue.sync { timer?.cancel() }
    }

    private func apply(_ text: Data?, reason: String) {
        lastText = text
        CLILog.notice("\(reason): reloading \(path)")
        let (planned, diagnostics) = PipelineFiles.plan(path: path)
        for d in diagnostics where d.severity != .error { CLILog.diagnostic(d) }
        guard let plan = planned else {
            let errors = diagnostics.filter { $0.severity == .error }.map(\.description)
            runner.reloadFailed(errors.isEmpty ? "\(path): cannot be loaded" : errors.joined(separator: "\n"))
            return
        }
        let http = Self.describe(plan.document.settings.http)
        if http != lastHTTP {
            CLILog.warning("reload: the http: block changed; the server keeps its address and settings until the next start")
        }
        runner.reload(plan)
    }

    private static func describe(_ http: HTTPSettings?) -> String {
        http.map { "\($0.host):\($0.port) \($0.authTokenEnv ?? "") \($0.store ?? "")" } ?? ""
    }
}

final class SignalCounter: @unchecked Sendable {
    private var count = 0
    /// Only called on the signal queue.
    func increment() -> Int { count += 1; return count }
}

/// Prints ``StatusLine``s to stderr on a timer.
final class StatusReporter: @unchecked Sendable {
    private let runner: PipelineRunner
    private var line = StatusLine()
    private let queue = DispatchQueue(label: "trailwatch.status")
    private var timer: DispatchSourceTimer?

    init(runner: PipelineRunner) { self.runner = runner }

    func report(every seconds: Double, first: Double? = nil) {
        queue.async { [self] in
            timer?.cancel()
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.schedule(deadline: .now() + (first ?? seconds), repeating: seconds)
            timer.setEventHandler { [self] in
                CLILog.info("status: " + line.render(runner.metrics, reloads: runner.reloadStatus))
            }
            timer.resume()
            self.timer = timer
        }
    }
}
