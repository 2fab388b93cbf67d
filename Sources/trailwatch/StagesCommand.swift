import ArgumentParser
import TrailwatchConfig
import TrailwatchDashboard
import TrailwatchRuntime
import TrailwatchStages

/// `trailwatch stages`: every stage kind this binary has, with its settings — read from the kinds
/// themselves, so it is never out of date. The README's stage reference is its Markdown.
struct StagesCommand: ParsableCommand {
    @OptionGroup var logging: LoggingOptions

    static let configuration = CommandConfiguration(
        commandName: "stages",
        abstract: "List every source, transform and sink kind with its summary and settings (types, defaults, what they do).",
        discussion: "The README's stage reference is `trailwatch stages --format markdown` (scripts/update-stage-reference.sh puts it there).")

    @Argument(help: "Only this kind (e.g. file, alarm); every kind by default.")
    var type: String?

    @Option(name: [.customLong("format"), .customLong("output")], help: "Output format: markdown or json.")
    var format: StageReferenceFormat = .markdown

    func run() throws {
        let document = StageReference.document(BuiltinStages.registry, type: type, dashboards: DashboardDefinition.settings.reference())
        if let type, document.sources.isEmpty && document.transforms.isEmpty && document.sinks.isEmpty {
            let names = Set(ComponentSection.allCases.flatMap { BuiltinStages.registry.types(in: $0) })
            let suggestion = Suggestions.closest(to: type, among: names.sorted()).map { " (did you mean '\($0)'?)" } ?? ""
            CLILog.error("no stage kind is named '\(type)'" + suggestion)
            throw ExitStatus.invalidInput
        }
        switch format {
        case .markdown: print(StageReference.markdown(document), terminator: "")
        case .json: print(try StageReference.json(document))
        }
    }
}

enum StageReferenceFormat: String, ExpressibleByArgument, CaseIterable {
    case markdown, json
}
