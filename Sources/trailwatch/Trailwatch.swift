import ArgumentParser

@main
struct Trailwatch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trailwatch",
        abstract: "CloudWatch Logs and CloudTrail tooling for any machine: one binary, YAML pipelines.",
        version: TrailwatchVersion.current,
        subcommands: [RunCommand.self, ValidateCommand.self, TestCommand.self, TestPatternCommand.self, TestEventPatternCommand.self, PatternsCommand.self, ArchiveCommand.self, EventsCommand.self, QueryCommand.self, BacktestCommand.self, DashboardCommand.self,
                      TapCommand.self, StagesCommand.self])
}

enum TrailwatchVersion {
    static let number = "0.1.0"
    /// `--version`: the release and the commit built (``BuildCommit``, stamped at build time).
    static let current = "\(number) (commit \(BuildCommit.id))"
}

/// `--format` for commands whose output is data.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}
