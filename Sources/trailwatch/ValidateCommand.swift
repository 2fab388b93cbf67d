import ArgumentParser
import Foundation
import TrailwatchConfig

struct ValidateCommand: ParsableCommand {
    @OptionGroup var logging: LoggingOptions

    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Parse and type-check pipeline files; report every problem with its location.")

    @Argument(help: "Pipeline YAML files.")
    var pipelines: [String]

    @Option(name: [.customLong("format"), .customLong("output")], help: "Output format: text or json.")
    var format: OutputFormat = .text

    func run() throws {
        var failed = false
        var report: [[String: Any]] = []
        for path in pipelines {
            let (plan, diagnostics) = PipelineFiles.plan(path: path)
            if plan == nil { failed = true }
            switch format {
            case .text:
                for d in diagnostics { print(d.description) }
                if plan != nil {
                    print("\(path): ok (\(plan!.components.count) components)")
                }
            case .json:
                for d in diagnostics {
                    var entry: [String: Any] = ["file": d.location.file, "line": d.location.line, "column": d.location.column,
                                                "severity": d.severity.rawValue, "message": d.message, "text": d.description]
                    if let c = d.component { entry["component"] = c }
                    if let s = d.setting { entry["setting"] = s }
                    if let e = d.expected { entry["expected"] = e }
                    if let s = d.suggestion { entry["suggestion"] = s }
                    report.append(entry)
                }
            }
        }
        if format == .json {
            let data = try JSONSerialization.data(withJSONObject: ["ok": !failed, "diagnostics": report], options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
        if failed { throw ExitStatus.negative }
    }
}
