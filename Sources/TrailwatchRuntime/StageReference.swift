import Foundation
import TrailwatchConfig

/// The reference of every stage kind a registry holds — summary, settings, types, defaults and
/// what each does — read from the kinds themselves. `trailwatch stages` prints it, and the
/// README's stage reference is its Markdown (a test keeps the two equal).
public enum StageReference {
    /// One stage kind, as `trailwatch stages --format json` lists it.
    public struct Kind: Sendable, Encodable, Equatable {
        public var section: String
        public var type: String
        public var summary: String
        public var settings: [SettingReference]
    }

    /// Everything the reference holds, as `trailwatch stages --format json` prints it.
    public struct Document: Sendable, Encodable {
        public var sources: [Kind]
        public var transforms: [Kind]
        public var sinks: [Kind]
        /// Settings every sink takes besides its own (`buffer`).
        public var sinkSettings: [SettingReference]
        /// The pipeline file's top-level settings (`data_dir`, `http:` …); empty when one kind was asked for.
        public var pipelineSettings: [SettingReference]
        /// The settings of one dashboard under `dashboards:`; empty when one kind was asked for.
        public var dashboardSettings: [SettingReference]
    }

    /// The kinds of `registry` (each section in name order), or only those named `type`.
    /// `dashboards`: the settings of a dashboard (their module sits above this one).
    public static func document(_ registry: StageRegistry, type: String? = nil, dashboards: [SettingReference] = []) -> Document {
        func kinds(_ section: ComponentSection) -> [Kind] {
            registry.types(in: section).filter { type == nil || $0 == type }.compactMap { name in
                registry.descriptor(section: section, type: name).map {
                    Kind(section: section.rawValue, type: $0.type, summary: $0.summary, settings: $0.settings)
                }
            }
        }
        return Document(sources: kinds(.sources), transforms: kinds(.transforms), sinks: kinds(.sinks),
                        sinkSettings: SinkBufferEnvelope.settings.reference(),
                        pipelineSettings: type == nil ? GlobalSettings.settings.reference() : [],
                        dashboardSettings: type == nil ? dashboards : [])
    }

    /// The JSON form: one object with `sources`, `transforms`, `sinks`, `sinkSettings`, `pipelineSettings` and `dashboardSettings`.
    public static func json(_ document: Document) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(document), as: UTF8.self)
    }

    /// The Markdown form: a heading and a settings table per kind (the README's stage reference).
    public static func markdown(_ document: Document) -> String {
        var out = ""
        let sections: [(String, [Kind])] = [("Sources", document.sources), ("Transforms", document.transforms), ("Sinks", document.sinks)]
        for (title, kinds) in sections where !kinds.isEmpty {
            out += "### \(title)\n\n"
            if title == "Sinks" && !document.sinkSettings.isEmpty {
                out += "Every sink also takes the [settings every sink takes](#settings-every-sink-takes).\n\n"
            }
            for kind in kinds {
                out += "#### `\(kind.type)` \(kind.section.dropLast())\n\n"
                out += kind.summary + "\n\n"
                out += table(kind.settings)
            }
        }
        if !document.sinks.isEmpty && !document.sinkSettings.isEmpty {
            out += "### Settings every sink takes\n\n" + table(document.sinkSettings)
        }
        if !document.pipelineSettings.isEmpty {
            out += "### Pipeline settings\n\n"
            out += "The top-level keys of a pipeline file besides `name`, `sources`, `transforms`, `sinks`, `dashboards` and `tests`; "
            out += "`http.*` are keys inside the `http:` mapping.\n\n"
            out += table(document.pipelineSettings)
        }
        if !document.dashboardSettings.isEmpty {
            out += "### Dashboard settings\n\n"
            out += "The settings of each dashboard under `dashboards:` (see [Dashboards](#dashboards)); `widgets[].*` are keys of each widget.\n\n"
            out += table(document.dashboardSettings)
        }
        return out
    }

    static func table(_ settings: [SettingReference]) -> String {
        guard !settings.isEmpty else { return "No settings.\n\n" }
        var out = "| setting | type | default | meaning |\n|---|---|---|---|\n"
        func add(_ setting: SettingReference) {
            let shown: String
            if setting.required {
                shown = "required"
            } else if let value = setting.defaultValue {
                shown = "`\(value)`"
            } else {
                shown = setting.defaultNote ?? "—"
            }
            out += "| `\(setting.key)` | \(cell(setting.type)) | \(cell(shown)) | \(cell(setting.doc)) |\n"
            setting.settings.forEach(add)
        }
        settings.forEach(add)
        return out + "\n"
    }

    /// Text inside a table cell: a `|` would end the cell.
    static func cell(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "\\|")
    }
}
