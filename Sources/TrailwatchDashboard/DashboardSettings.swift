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
/// range and widgets drawn from the store.
public struct DashboardDefinition: Sendable, Decodable {
    public var name = ""
    public var title: String
    /// The time range shown unless the page asks for another (`?range=6h`).
    public var range = ConfigDuration(milliseconds: 24 * 3_600_000)
    public var widgets: [DashboardWidget]

    enum CodingKeys: String, CodingKey, CaseIterable { case title, range, widgets }

    public init(name: String, title: String, range: ConfigDuration, widgets: [DashboardWidget]) {
        self.name = name
        self.title = title
        self.range = range
        self.widgets = widgets
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        title = try c.decodeIfPresent(String.self, forKey: .title) ?? ""
        range = try c.decodeIfPresent(ConfigDuration.self, forKey: .range) ?? range
        widgets = try c.decode([DashboardWidget].self, forKey: .widgets)
        guard range.milliseconds >= 60_000 else {
            throw SettingError(codingPath: c.codingPath + [CodingKeys.range], message: "\(range) is too short", expected: "at least 1m")
        }
    }
}

/// One widget of a dashboard.
public struct DashboardWidget: Sendable, Decodable {
    public enum Kind: String, Sendable, Decodable, CaseIterable {
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

    public var type: Kind
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

    enum CodingKeys: String, CodingKey, CaseIterable {
        case type, title, namespace, metric, dimensions, stat, alarms, kinds, query, logGroups = "log_groups"
    }

    public init(type: Kind, title: String? = nil, namespace: String? = nil, metric: String? = nil, stat: String = "Average", query: String? = nil) {
        self.type = type
        self.title = title
        self.namespace = namespace
        self.metric = metric
        self.stat = stat
        self.query = query
    }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let typeName = try c.decode(String.self, forKey: .type)
        guard let type = Kind(rawValue: typeName) else {
            throw SettingError(codingPath: c.codingPath + [CodingKeys.type], message: "unknown widget type '\(typeName)'",
                               expected: "one of " + Kind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        self.type = type
        title = try c.decodeIfPresent(String.self, forKey: .title)
        namespace = try c.decodeIfPresent(String.self, forKey: .namespace)
        metric = try c.decodeIfPresent(String.self, forKey: .metric)
        dimensions = try c.decodeIfPresent([String: String].self, forKey: .dimensions) ?? [:]
        stat = try c.decodeIfPresent(String.self, forKey: .stat) ?? stat
        alarms = try c.decodeIfPresent([String].self, forKey: .alarms) ?? []
        kinds = try c.decodeIfPresent([String].self, forKey: .kinds) ?? kinds
        query = try c.decodeIfPresent(String.self, forKey: .query)
        logGroups = try c.decodeIfPresent([String].self, forKey: .logGroups) ?? []
        switch type {
        case .metric, .value:
            guard namespace != nil, metric != nil else {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.metric], message: "a \(typeName) widget needs namespace and metric",
                                   expected: "namespace: App, metric: Errors")
            }
            guard Self.stats.contains(stat) else {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.stat], message: "unknown statistic '\(stat)'",
                                   expected: "one of " + Self.stats.joined(separator: ", "))
            }
        case .logs:
            guard let query else {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.query], message: "a logs widget needs a query",
                                   expected: "a Logs Insights query such as 'fields @timestamp, @message | limit 20'")
            }
            do { _ = try LogsQuery.parse(query) } catch {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.query], message: "invalid query at column \(error.column): \(error.message)",
                                   expected: "a Logs Insights query", columnInValue: error.column)
            }
        case .alarms, .events:
            break
        }
    }
}
