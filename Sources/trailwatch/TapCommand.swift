import ArgumentParser
import ByteJSON
import Foundation
import TrailwatchConfig
import TrailwatchStages

/// `trailwatch tap COMPONENT[.PORT]`: a sample of the events leaving a component of a running
/// pipeline, read from its HTTP server's `/tap`.
struct TapCommand: AsyncParsableCommand {
    @OptionGroup var logging: LoggingOptions

    static let configuration = CommandConfiguration(
        commandName: "tap",
        abstract: "Show a sample of the events leaving a component of a running pipeline (over its http: server).",
        discussion: """
            COMPONENT taps every output of a source or transform; COMPONENT.PORT one named output (a route's). \
            Sampling (--sample) and a rate limit (--rate) are applied inside the pipeline; the pipeline never waits \
            for a tap: when this client reads too slowly, events are dropped from the tap (not from the pipeline) \
            and the count is shown. Runs until --limit events were shown, the pipeline stops, or Ctrl-C.
            """)

    @Argument(help: "The component to tap: ID or ID.PORT.")
    var target: String

    @Option(help: "The pipeline's http: server (default: from --pipeline, else http://127.0.0.1:9598, http:'s default listen).")
    var url: String?

    @Option(help: "Take the server's address, TLS and token variable from this pipeline file's http: block.")
    var pipeline: String?

    @Option(help: "Stop after this many events.")
    var limit: Int?

    @Option(help: "Take one event in N.")
    var sample = 1

    @Option(help: "At most this many events per second (1 to 10000).")
    var rate = 100

    @Option(name: [.customLong("format"), .customLong("output")], help: "text (each event's message) or json (one tap line per event).")
    var format: OutputFormat = .text

    @Option(name: .customLong("token-env"), help: "Environment variable holding the http: block's token (default: the pipeline's auth_token_env).")
    var tokenEnv: String?

    @Option(name: .customLong("token-file"), help: "A file holding the token.")
    var tokenFile: String?

    @Option(name: .customLong("ca-bundle"), help: "PEM file of CA certificates to trust for an https:// server with its own CA.")
    var caBundle: String?

    func validate() throws {
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        guard sample >= 1 else { throw ValidationError("--sample must be at least 1 (one event in N)") }
        guard (1...10_000).contains(rate) else { throw ValidationError("--rate must be between 1 and 10000 events per second") }
        if tokenEnv != nil && tokenFile != nil { throw ValidationError("give --token-env or --token-file, not both") }
    }

    func run() async throws {
        var baseURL = url
        var tokenVariable = tokenEnv
        if let pipeline {
            let (planned, diagnostics) = PipelineFiles.plan(path: pipeline)
            for d in diagnostics where d.severity == .error { CLILog.error(d.description) }
            guard let plan = planned else { throw ExitStatus.invalidInput }
            guard let http = plan.document.settings.http else {
                CLILog.error("\(pipeline): the pipeline has no http: server to tap")
                throw ExitStatus.invalidInput
            }
            let host = http.host == "0.0.0.0" || http.host == "::" ? "127.0.0.1" : http.host
            baseURL = baseURL ?? "\(http.tls == nil ? "http" : "https")://\(host.contains(":") ? "[\(host)]" : host):\(http.port)"
            if tokenFile == nil { tokenVariable = tokenVariable ?? http.authTokenEnv }
        }
        var token: String?
        if let tokenVariable {
            guard let value = ProcessInfo.processInfo.environment[tokenVariable], !value.isEmpty else {
                CLILog.error("the environment variable \(tokenVariable) (the token) is not set")
                throw ExitStatus.failure
            }
            token = value
        } else if let tokenFile {
            guard let data = FileManager.default.contents(atPath: tokenFile) else {
                CLILog.error("cannot read the token file \(tokenFile)")
                throw ExitStatus.failure
            }
            token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let request = TapClient.Request(url: baseURL ?? "http://127.0.0.1:9598", target: target, sampleEvery: sample,
                                        eventsPerSecond: rate, limit: limit, token: token, caFile: caBundle)
        let printer = TapPrinter(format: format, target: target)
        do {
            try await TapClient.stream(request) { line in printer.handle(line) }
        } catch {
            CLILog.error("tap: \(error)")
            if case .refused(let status, _) = error, status == 400 || status == 404 { throw ExitStatus.invalidInput }
            throw ExitStatus.failure
        }
    }
}

/// Prints tap lines as they come: events to standard output, drops and the end to stderr.
final class TapPrinter: @unchecked Sendable {
    private let format: OutputFormat
    private let target: String
    /// Only touched by the one task reading the stream.
    private var droppedReported = 0
    private let output = FileHandle.standardOutput

    init(format: OutputFormat, target: String) {
        self.format = format
        self.target = target
    }

    func handle(_ line: TapClient.Line) -> Bool {
        switch line {
        case .event(let port, let raw, let event):
            var text: [UInt8]
            switch format {
            case .json: text = raw
            case .text:
                text = port.map { Array("[\($0)] ".utf8) } ?? []
                if let message = event["message"]?.stringValue { text += Array(message.utf8) } else { JSONWriter.append(event, to: &text) }
            }
            text.append(UInt8(ascii: "\n"))
            output.write(Data(text))
        case .stats(let counters):
            reportDrops(counters)
        case .end(let reason, let counters):
            reportDrops(counters)
            let why = reason == "limit" ? "the limit was reached" : reason == "stopping" ? "the pipeline is stopping" : reason
            CLILog.info("tap \(target) ended (\(why)): \(counters.sent) events shown of \(counters.seen) that left it, \(counters.dropped) dropped")
        }
        return true
    }

    private func reportDrops(_ counters: TapClient.Counters) {
        guard counters.dropped > droppedReported else { return }
        CLILog.warning("tap \(target): \(counters.dropped) sampled events dropped so far: this client read too slowly (the pipeline was not slowed); lower --rate or raise --sample")
        droppedReported = counters.dropped
    }
}
