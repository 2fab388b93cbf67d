import LogsQuery
import TrailwatchConfig

/// `dashboards:` of a pipeline. The configuration module keeps the section as written; it is
/// decoded and checked here, where widgets and their queries are understood.
extension DashboardDefinition {
    /// The pipeline's dashboards by name, each titled by its name unless it has a title.
    public static func all(in document: PipelineDocument) -> Result<[DashboardDefinition], ConfigError> {
        guard let section = document.dashboards else { return .success([]) }
        return ConfigDecoding.decode([String: DashboardDefinition].self, section: "dashboards", value: section, file: document.file).map { byName in
            byName.sorted { $0.key < $1.key }.map { name, definition in
                var named = definition
                named.name = name
                if named.title.isEmpty { named.title = name }
                return named
            }
        }
    }

    /// The section's problems, located and redacted (a `PipelinePlanner` document check).
    @Sendable public static func check(_ document: PipelineDocument) -> [ConfigDiagnostic] {
        guard case .failure(let error) = all(in: document) else { return [] }
        return error.diagnostics.map(document.redact)
    }
}

/// `dashboards:` — named dashboards, like a CloudWatch dashboard body: a title, a default time
/// range and widgets drawn from the store. Each setting is declared once in ``settings``, which
/// decoding, unknown-key errors and the README's [Dashboard settings] reference all read.
public struct DashboardDefinition: SettingsSection {
    /// The key under `dashboards:` (not a setting).
    public var name = ""
    public var title = ""
    /// The time range shown unless the page asks for another (`?range=6h`).
    public var range = ConfigDuration(milliseconds: 24 * 3_600_000)
    public var widgets: [DashboardWidget] = []

    public init() {}

    public init(name: String, title: String, range: ConfigDuration, widgets: [DashboardWidget]) {
        self.name = name
        self.title = title
        self.range = range
        self.widgets = widgets
    }

    public static let settings = SettingsSchema<DashboardDefinition>(
        .custom("title", type: "string", "The heading of the page and its name in the navigation.", note: "the dashboard's name",
                storedAt: \DashboardDefinition.title) { config, c, key in config.title = try c.decode(String.self, forKey: key) },
        .setting("range", \.range, "The time range shown unless the page asks for another (`?range=6h`); it ends at the newest data in the store.",
                 check: { $0.milliseconds >= 60_000 ? nil : SettingIssue("\($0) is too short", expected: "at least 1m") }),
        .sections("widgets", \.widgets, "The widgets, drawn in this order.", required: true)
    )
}

/// One widget of a dashboard.
public struct DashboardWidget: SettingsSection {
    public enum Kind: String, Sendable, CaseIterable {
        /// A line chart of a metric (with its anomaly band when the store has one).
        case metric
        /// One number: the metric's statistic over the whole range.
        case value
        /// Alarm states now and their history over the range.
        case alarms
        /// Insight and pattern events on a timeline.
        case events
        /// A table from a Logs-Insights-style query.
        case logs
    }

    public var type = Kind.metric
    public var title: String?
    public var namespace: String?
    public var metric: String?
    public var dimensions: [String: String] = [:]
    /// `Sum`, `Average`, `Minimum`, `Maximum` or `SampleCount`.
    public var stat = "Average"
    /// `alarms`: which alarms (all when empty).
    public var alarms: [String] = []
    /// `events`: which kinds.
    public var kinds: [String] = ["insight", "pattern"]
    /// `logs`: the query.
    public var query: String?
    public var logGroups: [String] = []

    public static let stats = ["Sum", "Average", "Minimum", "Maximum", "SampleCount"]

    public init() {}

    public init(type: Kind, title: String? = nil, namespace: String? = nil, metric: String? = nil, stat: String = "Average", query: String? = nil) {
        self.type = type
        self.title = title
        self.namespace = namespace
        self.metric = metric
        self.stat = stat
        self.query = query
    }

    public static let settings = SettingsSchema<DashboardWidget>(
        .custom("type", type: "one of " + Kind.allCases.map(\.rawValue).joined(separator: ", "),
                "`metric`: a line chart of the metric (with its anomaly band when one is stored); `value`: one number over the range; `alarms`: alarm states and their timeline; `events`: insight, pattern and alarm events on a timeline; `logs`: a table from a query.",
                required: true, storedAt: \DashboardWidget.type) { config, c, key in
            let name = try c.decode(String.self, forKey: key)
            guard let type = Kind(rawValue: name) else {
                let names = Kind.allCases.map(\.rawValue)
                throw SettingError(codingPath: c.codingPath + [key], message: "unknown widget type '\(name)'",
                                   expected: "one of " + names.joined(separator: ", "), suggestion: Suggestions.closest(to: name, among: names))
            }
            config.type = type
        },
        .setting("title", \.title, "The widget's heading.", default: "namespace, metric and stat; the query; or the type"),
        .setting("namespace", \.namespace, "`metric`, `value`: the metric's namespace (required for them)."),
        .setting("metric", \.metric, "`metric`, `value`: the metric's name (required for them)."),
        .setting("dimensions", \.dimensions, "`metric`, `value`: the metric's dimensions (`{ Endpoint: ep-1 }`)."),
        .setting("stat", \.stat, "`metric`, `value`: the statistic per period (`value`: over the whole range).",
                 check: { stats.contains($0) ? nil : SettingIssue("unknown statistic '\($0)'", expected: "one of " + stats.joined(separator: ", ")) }),
        .strings("alarms", \.alarms, "`alarms`: which alarms, by name (every alarm in the store when empty)."),
        .strings("kinds", \.kinds, "`events`: which kinds of event: `insight`, `pattern`, `alarm`."),
        .setting("query", \.query, "`logs`: a Logs-Insights-style query (checked when the pipeline loads; required for `logs`)."),
        .strings("log_groups", \.logGroups, "`logs`: the log groups the query reads (every group when empty).")
    )

    public func validate(at codingPath: [any CodingKey]) throws {
        switch type {
        case .metric, .value:
            guard namespace != nil, metric != nil else {
                throw SettingError(codingPath: codingPath + [Self.key(\DashboardWidget.metric)], message: "a \(type.rawValue) widget needs namespace and metric",
                                   expected: "namespace: App, metric: Errors")
            }
        case .logs:
            guard let query else {
                throw SettingError(codingPath: codingPath + [Self.key(\DashboardWidget.query)], message: "a logs widget needs a query",
                                   expected: "a Logs Insights query such as 'fields @timestamp, @message | limit 20'")
            }
            do { _ = try LogsQuery.parse(query) } catch {
                throw SettingError(codingPath: codingPath + [Self.key(\DashboardWidget.query)], message: "invalid query at column \(error.column): \(error.message)",
                                   expected: "a Logs Insights query", columnInValue: error.column)
            }
        case .alarms, .events:
            break
        }
    }
}
