import ByteJSON
import Foundation
import TrailSelectors
import TrailwatchCore
import TrailwatchConfig

/// The `event_selectors` / `event_selectors_file` settings shared by the `cloudtrail` source and
/// the `trail_select` transform: a trail's selectors in AWS's shape (what
/// `aws cloudtrail get-event-selectors` prints), inline (YAML or JSON) or from a file.
struct TrailSelection: Sendable {
    var selectors: TrailEventSelectors?
    var file: String?

    /// `event_selectors` and `event_selectors_file`, at most one of them given.
    static func settings<C: SettingsSection>(_ keyPath: WritableKeyPath<C, TrailSelection?> & Sendable) -> [Setting<C>] {
        [
            .custom("event_selectors", type: "mapping", "A trail's event selectors in AWS's shape (`EventSelectors` or "
                    + "`AdvancedEventSelectors`, what `aws cloudtrail get-event-selectors` prints), as YAML or JSON; see "
                    + "[trail event selectors](#trail-event-selectors).", storedAt: keyPath) { config, c, key in
                do {
                    config[keyPath: keyPath] = TrailSelection(selectors: try c.decode(TrailEventSelectors.self, forKey: key), file: nil)
                } catch let error as SelectorError {
                    throw SettingError(codingPath: error.codingPath, message: error.message,
                                       expected: error.expected ?? "event selectors as `aws cloudtrail get-event-selectors` prints them")
                }
            },
            .custom("event_selectors_file", type: "string", "A JSON file holding the event selectors (relative to the pipeline file). "
                    + "At most one of `event_selectors` and `event_selectors_file`.") { config, c, key in
                guard let path = try c.decodeIfPresent(String.self, forKey: key) else { return }
                if config[keyPath: keyPath] != nil {
                    throw SettingError(codingPath: c.codingPath + [key], message: "is given together with event_selectors", expected: "one of them")
                }
                config[keyPath: keyPath] = TrailSelection(selectors: nil, file: path)
            },
        ]
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    /// The selectors, loading the file (relative to the pipeline file) when they come from one.
    func resolved(pipelineDirectory: String) throws -> TrailEventSelectors {
        if let selectors { return selectors }
        let path = file!.hasPrefix("/") ? file! : pipelineDirectory + "/" + file!
        guard let data = FileManager.default.contents(atPath: path) else { throw Failure(description: "\(path): cannot read the file") }
        do { return try JSONDecoder().decode(TrailEventSelectors.self, from: data) } catch let error as SelectorError {
            let place = error.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
            throw Failure(description: "\(path): \(place.isEmpty ? "" : place + ": ")\(error.message)")
        } catch {
            throw Failure(description: "\(path): not event selectors as `aws cloudtrail get-event-selectors` prints them (\(error))")
        }
    }
}

/// Applies selectors to log events that carry CloudTrail records (one JSON record per message).
struct TrailSelector {
    let selectors: TrailEventSelectors
    let reader: RecordFacts.Reader

    init(_ selectors: TrailEventSelectors) {
        self.selectors = selectors
        reader = RecordFacts.Reader(withResources: selectors.needsResources)
    }

    /// Whether the record is selected; nil when the message is not a CloudTrail record.
    func selects(_ message: UnsafeRawBufferPointer) -> Bool? {
        guard let facts = reader.facts(message) else { return nil }
        return selectors.selects(facts)
    }
}
