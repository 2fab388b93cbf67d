import ArgumentParser
import FilterPatterns
import Foundation

/// `trailwatch test-pattern`: like `aws logs test-metric-filter`.
struct TestPatternCommand: ParsableCommand {
    @OptionGroup var logging: LoggingOptions

    static let configuration = CommandConfiguration(
        commandName: "test-pattern",
        abstract: "Test a CloudWatch filter pattern against sample log events (like aws logs test-metric-filter).",
        discussion: "Exit status: 0 when at least one event matched, 1 when none did, 2 for an invalid pattern.")

    @Argument(help: "The filter pattern, e.g. '{ $.status >= 500 }' or '[ip, user, ..., status=5*, bytes]'.")
    var pattern: String

    @Argument(help: "Log event messages to test (use - to read one per line from standard input).")
    var events: [String] = []

    @Option(name: [.customLong("format"), .customLong("output")], help: "Output format: text or json.")
    var format: OutputFormat = .text

    func run() throws {
        let compiled: FilterPattern
        do { compiled = try FilterPattern(pattern) } catch {
            CLILog.error("invalid pattern: \(error)\n  " + pattern + "\n  " + String(repeating: " ", count: max(0, error.column - 1)) + "^")
            throw ExitStatus.invalidInput
        }
        var messages = events
        if messages == ["-"] {
            messages = []
            while let line = readLine(strippingNewline: true) { messages.append(line) }
        }
        struct Result: Encodable {
            var eventNumber: Int
            var eventMessage: String
            var matched: Bool
            var extractedValues: [String: String]
        }
        var results: [Result] = []
        for (index, message) in messages.enumerated() {
            let bytes = Array(message.utf8)
            let extracted = bytes.withUnsafeBytes { compiled.extractedValues($0) }
            var values: [String: String] = [:]
            for (name, value) in extracted ?? [] { values[name] = String(decoding: value, as: UTF8.self) }
            results.append(Result(eventNumber: index + 1, eventMessage: message, matched: extracted != nil, extractedValues: values))
        }
        switch format {
        case .json:
            struct Body: Encodable {
                var pattern: String
                var kind: String
                var matches: [Result]
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            let data = try encoder.encode(Body(pattern: pattern, kind: compiled.kind.rawValue, matches: results))
            print(String(decoding: data, as: UTF8.self))
        case .text:
            print("pattern kind: \(compiled.kind.rawValue)")
            for r in results {
                let values = r.extractedValues.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                print("\(r.eventNumber)\t\(r.matched ? "match   " : "no match")\t\(r.eventMessage)" + (values.isEmpty ? "" : "\n\t\t\(values)"))
            }
            print("\(results.filter(\.matched).count) of \(results.count) events matched")
        }
        if !results.contains(where: \.matched) { throw ExitStatus.negative }
    }
}
