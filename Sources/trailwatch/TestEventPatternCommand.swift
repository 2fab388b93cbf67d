import ArgumentParser
import ByteJSON
import EventPatterns
import Foundation

/// `trailwatch test-event-pattern`: like `aws events test-event-pattern`.
struct TestEventPatternCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test-event-pattern",
        abstract: "Test an EventBridge event pattern against an event (like aws events test-event-pattern).",
        discussion: """
            PATTERN and EVENT are JSON text, or file://PATH to read a file (as the AWS CLI takes them); EVENT may be - for \
            standard input. The event is matched the way the `rule` transform matches it: a CloudTrail record inside \
            EventBridge's CloudTrail envelope and an alarm event of the `alarm` transform as a "CloudWatch Alarm State \
            Change" event (unless --envelope none); anything else as it is.
            Exit status: 0 when the event matches, 1 when it does not, 2 for an invalid pattern or event.
            """)

    @Argument(help: "The event pattern, e.g. '{\"source\": [\"aws.signin\"]}', or file://pattern.json.")
    var pattern: String

    @Argument(help: "The event (JSON), file://event.json, or - for standard input.")
    var event: String

    @Option(help: "Output format: text (true or false) or json ({\"Result\": true}, as the AWS CLI prints it).")
    var format: OutputFormat = .text

    @Option(help: "auto: CloudTrail records and alarm events are matched inside EventBridge's envelope; none: as they are.")
    var envelope: EnvelopeChoice = .auto

    @Option(help: "Account id for an alarm event's envelope.")
    var account = "000000000000"

    @Option(help: "Region for an alarm event's envelope.")
    var region = "us-east-1"

    enum EnvelopeChoice: String, ExpressibleByArgument, CaseIterable { case auto, none }

    func run() throws {
        let patternText = try Self.read(pattern, what: "pattern")
        let compiled: EventPattern
        do { compiled = try EventPattern(patternText) } catch {
            Console.error("An error occurred (InvalidEventPatternException) when calling the TestEventPattern operation: \(error.awsMessage)")
            if error.location.isKnown {
                let lines = patternText.split(separator: "\n", omittingEmptySubsequences: false)
                if error.location.line - 1 < lines.count {
                    Console.error("  " + lines[error.location.line - 1])
                    Console.error("  " + String(repeating: " ", count: max(0, error.location.column - 1)) + "^")
                }
            }
            throw ExitCode(2)
        }
        var eventBytes = Array(try Self.read(event, what: "event").utf8)
        guard case .object(let members)? = try? JSONValue.parse(eventBytes) else {
            Console.error("An error occurred (InvalidEventPatternException) when calling the TestEventPattern operation: Event is not valid. Reason: the event must be a JSON object")
            throw ExitCode(2)
        }
        // An alarm event as the alarm transform writes it gets EventBridge's envelope.
        if envelope == .auto, members.contains(where: { $0.key == "alarmName" }),
           members.contains(where: { $0.key == "detail-type" && $0.value.stringValue == "CloudWatch Alarm State Change" }),
           let wrapped = AlarmStateChangeEnvelope.wrap(body: eventBytes, account: account, region: region) {
            eventBytes = wrapped
        }
        let matcher = EventMatcher(RuleSet([compiled]), cloudTrailEnvelope: envelope == .auto)
        let result = !matcher.matches(eventBytes).isEmpty
        switch format {
        case .json: print("{\n    \"Result\": \(result)\n}")
        case .text: print(result ? "true" : "false")
        }
        if !result { throw ExitCode(1) }
    }

    /// JSON text as given, `file://PATH`, or `-` (standard input).
    static func read(_ argument: String, what: String) throws -> String {
        if argument == "-" {
            return String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        }
        if argument.hasPrefix("file://") {
            let path = String(argument.dropFirst("file://".count))
            guard let data = FileManager.default.contents(atPath: path) else {
                Console.error("cannot read the \(what) file \(path)")
                throw ExitCode(2)
            }
            return String(decoding: data, as: UTF8.self)
        }
        return argument
    }
}
