import ArgumentParser
import Foundation
import PipelineTesting
import TrailwatchConfig

/// `trailwatch test`: runs the unit tests written with pipelines.
struct TestCommand: ParsableCommand {
    @OptionGroup var logging: LoggingOptions

    static let configuration = CommandConfiguration(
        commandName: "test",
        abstract: "Run a pipeline's unit tests (its tests: section and NAME.tests.yaml beside it).",
        discussion: """
            Real sources and sinks are replaced by the tests' inputs and by collectors; transforms are the real \
            stages with a scratch state directory and a virtual clock. Exit status: 0 every test passed, 1 a test \
            failed, 2 the pipeline or its tests have errors (printed with their locations) or there are no tests.
            """)

    @Argument(help: "Pipeline YAML files.")
    var pipelines: [String]

    @Option(name: [.customLong("format"), .customLong("output")], help: "Output: text (one line per test) or json.")
    var format: OutputFormat = .text

    @Option(help: "Also write the results as JUnit XML to this file.")
    var junit: String?

    @Option(help: "Run only the tests whose names contain this text.")
    var filter: String?

    func run() throws {
        var results: [TestResult] = []
        var broken = false
        for path in pipelines {
            let (planned, diagnostics) = PipelineFiles.plan(path: path)
            var problems = diagnostics.filter { $0.severity == .error }
            var suite: PipelineTestSuite?
            if let plan = planned {
                let testsPath = PipelineTestSuite.testsFile(for: path)
                let testsText = FileManager.default.contents(atPath: testsPath).map { String(decoding: $0, as: UTF8.self) }
                let (loaded, testProblems) = PipelineTestSuite.load(plan: plan, testsText: testsText, testsPath: testsPath)
                problems += testProblems
                suite = loaded
                if let loaded, loaded.tests.isEmpty {
                    problems.append(ConfigDiagnostic(location: SourceLocation(file: path, line: 1, column: 1), message: "the pipeline has no tests",
                                                     expected: "a tests: section or \(testsPath)"))
                }
            }
            for problem in problems { CLILog.diagnostic(problem) }
            guard problems.isEmpty, let suite else {
                broken = true
                continue
            }
            results += suite.run(filter: filter)
        }
        let report = TestReport(results: results)
        switch format {
        case .text: print(report.text(), terminator: "")
        case .json: print(report.json(), terminator: "")
        }
        if let junit {
            do { try Data(report.junit().utf8).write(to: URL(fileURLWithPath: junit)) } catch {
                CLILog.error("cannot write \(junit): \(error.localizedDescription)")
                throw ExitStatus.failure
            }
        }
        if broken { throw ExitStatus.invalidInput }
        if report.failed > 0 { throw ExitStatus.negative }
    }
}
