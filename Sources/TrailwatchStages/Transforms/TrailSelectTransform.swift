import TrailSelectors
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `trail_select`: keeps the CloudTrail records a trail with these event selectors would record
/// (basic or advanced selectors in AWS's shape) — for JSON sources that carry records, such as
/// archives or JSON lines. Everything else (records not selected, lines that are no CloudTrail
/// record) goes to `_unselected`.
struct TrailSelectTransform: TransformKind {
    static let unselected = "_unselected"

    struct Config: StageConfig {
        var selection: TrailSelection?

        static let settings = SettingsSchema<Config>(TrailSelection.settings(\.selection))

        mutating func validate(at codingPath: [any CodingKey]) throws {
            if selection == nil {
                throw SettingError(codingPath: codingPath, message: "has no selectors", expected: "event_selectors or event_selectors_file")
            }
        }
    }

    static let type = "trail_select"
    static let summary = "Keeps the CloudTrail records a trail's event selectors (basic or advanced, AWS's JSON) would record."
    static func accepts(_ config: Config) -> Set<EventKind> { [.log] }
    static func produces(_ config: Config, fedWith inputs: Set<EventKind>) -> Set<EventKind> { [.log] }
    static func ports(_ config: Config) -> [String] { [unselected] }

    static func check(_ config: Config, _ context: ValidationContext) -> [ConfigDiagnostic] {
        guard let selection = config.selection, selection.file != nil else { return [] }
        do { _ = try selection.resolved(pipelineDirectory: context.pipelineDirectory) } catch {
            return [ConfigDiagnostic(location: context.location, component: context.component, setting: "event_selectors_file",
                                     message: "\(error)", expected: "event selectors as `aws cloudtrail get-event-selectors` prints them")]
        }
        return []
    }

    /// Each batch on its own: instances may run in parallel (`workers:`).
    static let instancesAreIndependent = true

    static func make(_ config: Config, _ context: StageContext) throws -> any Transform {
        guard let selection = config.selection else { throw StageError("no event selectors") }
        do { return Runner(TrailSelector(try selection.resolved(pipelineDirectory: context.pipelineDirectory))) } catch {
            throw StageError("\(error)")
        }
    }

    final class Runner: Transform {
        let selector: TrailSelector
        init(_ selector: TrailSelector) { self.selector = selector }

        func process(_ batch: Batch, into output: inout TransformOutput) throws {
            guard case .logs(let logs) = batch.payload else { return }
            var kept: [Int] = [], rest: [Int] = []
            for i in 0..<logs.count {
                if selector.selects(logs.message(i)) == true { kept.append(i) } else { rest.append(i) }
            }
            if !kept.isEmpty { output.emit(Batch(.logs(kept.count == logs.count ? logs : logs.selecting(kept)))) }
            if !rest.isEmpty { output.emit(Batch(.logs(rest.count == logs.count ? logs : logs.selecting(rest))), port: TrailSelectTransform.unselected) }
        }
    }
}
