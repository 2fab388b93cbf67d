import ArgumentParser
import Foundation
import Logging
import Synchronization
import TrailwatchConfig
import TrailwatchCore
import TrailwatchRuntime

// One convention for every command: the exit statuses below, logs through swift-log on stderr
// (`--log-level`, `--log-format`), results on stdout (`--format json` where a command prints
// results), `--version` with the commit, shell completions from swift-argument-parser.

/// The exit statuses of every command (the README's "Exit status" table).
enum ExitStatus {
    /// The command did its work; for a question (does it match? is it valid?), yes.
    static let success = ExitCode(0)
    /// The command did its work and the answer is no: a test failed, no event matched, an archive
    /// failed verification, a pipeline file has errors (`validate`).
    static let negative = ExitCode(1)
    /// Invalid input: a pipeline, pattern, query, event or definition with errors, reported with
    /// their locations on stderr; or a target that does not exist (`tap`'s component).
    static let invalidInput = ExitCode(2)
    /// The work could not be done: a store or file cannot be opened, read or written, a server
    /// cannot listen or be reached, a component of the pipeline failed, a shutdown deadline passed.
    static let failure = ExitCode(3)
    /// Wrong usage: an unknown option, a missing or malformed argument (swift-argument-parser's
    /// EX_USAGE).
    static let usage = ExitCode.validationFailure
    /// A second SIGINT or SIGTERM: exited without draining.
    static let interrupted = ExitCode(130)
}

/// `--log-level` and `--log-format`, on every command.
struct LoggingOptions: ParsableArguments {
    @Option(name: .customLong("log-level"), help: "Least severe log messages shown on stderr: trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    @Option(name: .customLong("log-format"), help: "stderr's log lines: text (for people) or json (one object per line, for log collectors).")
    var logFormat: LogFormat = .text
}

enum LogFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case text, json
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

/// A command that takes ``LoggingOptions``; `main` sets up logging from them before `run`. Its conformances are never
/// isolated (`SendableMetatype`), so casting the parsed command to it in `main` does not tie the command to the main
/// actor before it runs.
protocol LoggingCommand: SendableMetatype {
    var logging: LoggingOptions { get }
}

extension RunCommand: LoggingCommand {}
extension ValidateCommand: LoggingCommand {}
extension TestCommand: LoggingCommand {}
extension TestPatternCommand: LoggingCommand {}
extension TestEventPatternCommand: LoggingCommand {}
extension PatternsCommand: LoggingCommand {}
extension ArchiveCommand.Verify: LoggingCommand {}
extension ArchiveCommand.Cat: LoggingCommand {}
extension ArchiveCommand.Keygen: LoggingCommand {}
extension EventsCommand: LoggingCommand {}
extension QueryCommand: LoggingCommand {}
extension BacktestCommand: LoggingCommand {}
extension DashboardCommand: LoggingCommand {}
extension TapCommand: LoggingCommand {}
extension StagesCommand: LoggingCommand {}

extension Trailwatch {
    /// Parses the command line, sets up logging, runs the command and exits with the status of
    /// ``ExitStatus``.
    static func main() async {
        do {
            var command = try parseAsRoot()
            // A command without logging options (the built-in `help`) logs with the defaults; they
            // come from parsing no arguments, since reading a `LoggingOptions()` made by `init()`
            // traps (its property wrappers hold definitions, not values).
            CLILog.bootstrap(try (command as? any LoggingCommand)?.logging ?? LoggingOptions.parse([]))
            if var asynchronous = command as? any AsyncParsableCommand {
                try await asynchronous.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}

/// The CLI's logger: every message a command writes to stderr goes through it (swift-log), so
/// `--log-level` and `--log-format` apply to all of them.
enum CLILog {
    private static let root = Mutex<Logger?>(nil)

    /// Installs the stderr handler; the first call wins (one per process).
    static func bootstrap(_ options: LoggingOptions) {
        root.withLock { root in
            guard root == nil else { return }
            let format = options.logFormat
            let timestamps = format == .json || isatty(STDERR_FILENO) == 0
            LoggingSystem.bootstrap { label in
                var handler = StderrLogHandler(label: label, format: format, timestamps: timestamps)
                handler.logLevel = options.logLevel
                return handler
            }
            root = Logger(label: "trailwatch")
        }
    }

    static var logger: Logger {
        root.withLock { root in
            if let root { return root }
            // Logging before bootstrap (tests calling a command's code directly): the defaults.
            let made = Logger(label: "trailwatch") { StderrLogHandler(label: $0, format: .text, timestamps: false) }
            return made
        }
    }

    /// A logger for a library (the HTTP server): through the same handler, but its chatter below
    /// warnings only at `--log-level debug` or `trace`.
    static func library(_ label: String) -> Logger {
        var logger = Logger(label: label)
        if logger.logLevel > .debug { logger.logLevel = max(logger.logLevel, .warning) }
        return logger
    }

    /// A logger whose lines carry `component` (a pipeline component's id).
    static func component(_ id: String) -> Logger {
        var logger = logger
        logger[metadataKey: "component"] = .string(id)
        return logger
    }

    /// A pipeline's message (``RuntimeLog``), labelled with its component.
    static func runtime(_ level: RuntimeLog.Level, _ component: String, _ message: String) {
        let logger = component.isEmpty ? logger : self.component(component)
        switch level {
        case .debug: logger.debug("\(message)")
        case .info: logger.info("\(message)")
        case .warning: logger.warning("\(message)")
        case .error: logger.error("\(message)")
        }
    }

    /// A located problem in a pipeline or test file (`FILE:LINE:COLUMN: …`), at its severity.
    static func diagnostic(_ diagnostic: ConfigDiagnostic) {
        switch diagnostic.severity {
        case .error: logger.error("\(diagnostic.description)")
        default: logger.warning("\(diagnostic.description)")
        }
    }

    static func error(_ message: String) { logger.error("\(message)") }
    static func warning(_ message: String) { logger.warning("\(message)") }
    static func notice(_ message: String) { logger.notice("\(message)") }
    static func info(_ message: String) { logger.info("\(message)") }
}

/// Log lines on stderr.
///
/// text: `[TIME ]LEVEL[ COMPONENT]: MESSAGE[ key=value…]` — the level is left out for info and
/// notice, the time when stderr is a terminal (a person watching needs no timestamps; journald,
/// docker and files do).
/// json: `{"timestamp":"…","level":"…","label":"…","component":"…","message":"…",…}`, one object per
/// line, the metadata as further string members.
struct StderrLogHandler: LogHandler {
    let label: String
    let format: LogFormat
    let timestamps: Bool
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    /// One write per line, so lines from several threads never interleave.
    private static let lock = Mutex<Void>(())

    init(label: String, format: LogFormat, timestamps: Bool) {
        self.label = label
        self.format = format
        self.timestamps = timestamps
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { $1 } }
        if let extra = event.metadata { all.merge(extra) { $1 } }
        let component = all.removeValue(forKey: "component").map { "\($0)" }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var out = ByteBuffer(reservingCapacity: 256)
        switch format {
        case .text:
            if timestamps {
                Timestamps.appendISO8601(now, to: &out)
                out.append(" ")
            }
            if event.level >= .warning || event.level <= .debug {
                out.append(event.level.rawValue)
                out.append(": ")
            }
            if let component {
                out.append(component)
                out.append(": ")
            }
            out.append(event.message.description)
            for (key, value) in all.sorted(by: { $0.key < $1.key }) {
                out.append(" \(key)=\(value)")
            }
        case .json:
            out.append(#"{"timestamp":""#)
            Timestamps.appendISO8601(now, to: &out)
            out.append(#"","level":""#)
            out.append(event.level.rawValue)
            out.append(#"","label":"#)
            JSONEscaping.appendString(label, to: &out)
            if let component {
                out.append(#","component":"#)
                JSONEscaping.appendString(component, to: &out)
            }
            out.append(#","message":"#)
            JSONEscaping.appendString(event.message.description, to: &out)
            for (key, value) in all.sorted(by: { $0.key < $1.key }) where !["timestamp", "level", "label", "message"].contains(key) {
                out.append(",")
                JSONEscaping.appendString(key, to: &out)
                out.append(":")
                JSONEscaping.appendString("\(value)", to: &out)
            }
            out.append("}")
        }
        out.append("\n")
        Self.lock.withLock { _ in
            out.withUnsafeBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let n = write(STDERR_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                    if n < 0 { if errno == EINTR { continue }; return }
                    offset += n
                }
            }
        }
    }
}
