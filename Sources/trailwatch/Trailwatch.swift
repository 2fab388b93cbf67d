import ArgumentParser

@main
struct Trailwatch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trailwatch",
        abstract: "CloudWatch Logs and CloudTrail tooling for any machine: one binary, YAML pipelines.",
        version: TrailwatchVersion.current,
        subcommands: [RunCommand.self, ValidateCommand.self, TestCommand.self, TestPatternCommand.self, TestEventPatternCommand.self, PatternsCommand.self, ArchiveCommand.self, EventsCommand.self, QueryCommand.self, BacktestCommand.self, DashboardCommand.self])
}

enum TrailwatchVersion {
    static let current = "0.1.0"
}

/// `--format` for commands whose output is data.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}
