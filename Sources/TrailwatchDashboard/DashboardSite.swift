import Foundation
import LogsQuery
import TrailwatchConfig
import TrailwatchCore
import TrailwatchStore

/// The dashboard web pages over a store: `/` (the dashboards), `/dashboards/NAME`, `/query`
/// (Logs-Insights-style queries) and `/api/query` (the same as JSON). Pages are server-rendered
/// HTML with inline SVG charts; nothing is loaded from the network.
public final class DashboardSite: Sendable {
    public struct Page: Sendable {
        public var status: Int
        public var contentType: String
        public var body: String
    }

    /// The store: an SQLite path or a `postgres://` URL.
    let store: String
    let dashboards: [DashboardDefinition]
    let now: @Sendable () -> Int64
    /// How long one query may run (`query_timeout`).
    let queryTimeout: Duration

    /// - Parameters:
    ///   - dashboards: from the pipeline; when empty, one is made from what the store holds.
    ///   - queryTimeout: the time limit of each query a page runs (`query_timeout`).
    public init(store: String, dashboards: [DashboardDefinition], queryTimeout: Duration = QueryLimits.defaultTimeout,
                now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }) {
        self.store = store
        self.dashboards = dashboards
        self.queryTimeout = queryTimeout
        self.now = now
    }

    /// Answers a GET for `path` with decoded query parameters, or nil for paths it does not serve.
    public func page(path: String, query: [String: String]) async -> Page? {
        guard ["/", "/query", "/api/query", "/dashboards"].contains(path) || path.hasPrefix("/dashboards/") else { return nil }
        do {
            let store = try await StoreOpener.open(self.store, access: .readOnly)
            do {
                let page = try await page(path: path, query: query, store: store)
                await store.close()
                return page
            } catch {
                await store.close()
                throw error
            }
        } catch {
            return html(500, "error", "<p class=\"error\">\(HTML.escape("\(error)"))</p>")
        }
    }

    private func page(path: String, query: [String: String], store: any Store) async throws -> Page {
        switch path {
        case "/query":
            return try await queryPage(store, query: query, boards: try await effectiveDashboards(store))
        case "/api/query":
            return try await queryJSON(store, query: query)
        default:
            let boards = try await effectiveDashboards(store)
            let name = path.hasPrefix("/dashboards/") ? String(path.dropFirst("/dashboards/".count)).removingPercentEncoding ?? "" : ""
            if name.isEmpty {
                guard let first = boards.first else { return html(200, "trailwatch", "<p>No dashboards.</p>") }
                return try await dashboardPage(first, all: boards, store: store, query: query)
            }
            guard let board = boards.first(where: { $0.name == name }) else {
                return html(404, "not found", "<p>No dashboard named <code>\(HTML.escape(name))</code>.</p>" + navigation(boards))
            }
            return try await dashboardPage(board, all: boards, store: store, query: query)
        }
    }

    // MARK: Dashboards

    /// The configured dashboards, or one made from the store's metrics, alarms, events and logs.
    func effectiveDashboards(_ store: any Store) async throws -> [DashboardDefinition] {
        if !dashboards.isEmpty { return dashboards }
        let end = (try await store.newestTimestamp() ?? now()) + 60_000
        var widgets: [DashboardWidget] = []
        for metric in try await store.metrics(start: end - 14 * 86_400_000, end: end, limit: 60)
            where !metric.dimensions.contains("\"Band\":") && widgets.count < 12 {
            var widget = DashboardWidget(type: .metric, title: "\(metric.namespace) \(metric.name) \(metric.dimensions == "{}" ? "" : metric.dimensions)",
                                         namespace: metric.namespace, metric: metric.name, stat: "Sum")
            widget.dimensions = Self.parseDimensions(metric.dimensions)
            widgets.append(widget)
        }
        widgets.append(DashboardWidget(type: .alarms, title: "Alarms"))
        widgets.append(DashboardWidget(type: .events, title: "Insights and patterns"))
        widgets.append(DashboardWidget(type: .logs, title: "Latest log events", query: "fields @timestamp, @log, @message | sort @timestamp desc | limit 20"))
        return [DashboardDefinition(name: "overview", title: "Overview", range: ConfigDuration(milliseconds: 24 * 3_600_000), widgets: widgets)]
    }

    static func parseDimensions(_ json: String) -> [String: String] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String] else { return [:] }
        return object
    }

    static func storedDimensions(_ dimensions: [String: String]) -> String {
        StoreConventions.dimensionsText(dimensions.map { Dimension(name: $0.key, value: $0.value) }.sorted())
    }

    /// [start, end) from `?range=` and `?end=`, defaulting to the dashboard's range ending at the newest data.
    func timeRange(_ store: any Store, query: [String: String], defaultRange: Int64) async throws -> (start: Int64, end: Int64, range: String) {
        let rangeText = query["range"].flatMap { $0.isEmpty ? nil : $0 }
        let range = rangeText.flatMap { ConfigDuration.parse($0)?.milliseconds } ?? defaultRange
        var end = (try await store.newestTimestamp()).map { $0 + 60_000 } ?? now()
        if let text = query["end"], let parsed = Array(text.utf8).withUnsafeBytes({ Timestamps.parseISO8601($0) }) { end = parsed }
        return (end - max(range, 60_000), end, rangeText ?? ConfigDuration(milliseconds: range).description)
    }

    func dashboardPage(_ board: DashboardDefinition, all: [DashboardDefinition], store: any Store, query: [String: String]) async throws -> Page {
        let (start, end, rangeText) = try await timeRange(store, query: query, defaultRange: board.range.milliseconds)
        var body = navigation(all, current: board.name)
        body += "<form class=\"range\" method=\"get\"><label>Range <input name=\"range\" value=\"\(HTML.escape(rangeText))\" size=\"6\"></label> "
        body += "<label>ending <input name=\"end\" value=\"\(HTML.escape(Timestamps.iso8601(end)))\" size=\"24\"></label> <button>Show</button></form>"
        body += "<p class=\"span\">\(Timestamps.iso8601(start)) — \(Timestamps.iso8601(end))</p><div class=\"grid\">"
        for widget in board.widgets {
            body += "<section class=\"widget \(widget.type.rawValue)\"><h2>\(HTML.escape(widget.title ?? defaultTitle(widget)))</h2>"
            do {
                body += try await render(widget, store: store, start: start, end: end)
            } catch {
                body += "<p class=\"error\">\(HTML.escape("\(error)"))</p>"
            }
            body += "</section>"
        }
        body += "</div>"
        return html(200, board.title, body)
    }

    func defaultTitle(_ widget: DashboardWidget) -> String {
        switch widget.type {
        case .metric, .value: "\(widget.namespace ?? "") \(widget.metric ?? "") (\(widget.stat))"
        case .alarms: "Alarms"
        case .events: "Events"
        case .logs: widget.query ?? "Logs"
        }
    }

    func render(_ widget: DashboardWidget, store: any Store, start: Int64, end: Int64) async throws -> String {
        switch widget.type {
        case .metric:
            let points = try await series(widget, store: store, start: start, end: end)
            var band: [SVGChart.Band] = []
            var withBand = widget.dimensions
            withBand["Band"] = "Upper"
            let uppers = try await store.datapoints(namespace: widget.namespace!, name: widget.metric!, dimensions: Self.storedDimensions(withBand), start: start, end: end)
            withBand["Band"] = "Lower"
            let lowers = Dictionary(try await store.datapoints(namespace: widget.namespace!, name: widget.metric!, dimensions: Self.storedDimensions(withBand),
                                                         start: start, end: end).map { ($0.timestamp, $0.sum) }, uniquingKeysWith: { a, _ in a })
            for upper in uppers {
                if let lower = lowers[upper.timestamp] { band.append(SVGChart.Band(time: upper.timestamp, lower: lower, upper: upper.sum)) }
            }
            return SVGChart.line(points, band: band, start: start, end: end, label: widget.title ?? defaultTitle(widget))
        case .value:
            let data = try await store.datapoints(namespace: widget.namespace!, name: widget.metric!, dimensions: Self.storedDimensions(widget.dimensions), start: start, end: end)
            guard let value = Self.aggregate(data, stat: widget.stat) else { return "<p class=\"value\" data-value=\"\">—</p>" }
            return "<p class=\"value\" data-value=\"\(value)\">\(HTML.escape(SVGChart.number(value)))</p>"
        case .alarms:
            return try await alarms(widget, store: store, start: start, end: end)
        case .events:
            return try await events(widget, store: store, start: start, end: end)
        case .logs:
            let result = try await store.query(LogQueryRequest(text: widget.query ?? "", start: start, end: end, logGroups: widget.logGroups, now: now(), deadline: .after(queryTimeout)))
            return table(result)
        }
    }

    /// The widget's statistic per datapoint, merged into at most ~300 buckets.
    func series(_ widget: DashboardWidget, store: any Store, start: Int64, end: Int64) async throws -> [SVGChart.Point] {
        let data = try await store.datapoints(namespace: widget.namespace!, name: widget.metric!, dimensions: Self.storedDimensions(widget.dimensions), start: start, end: end)
        let bucket = max(60_000, ((end - start) / 300 + 59_999) / 60_000 * 60_000)
        let smallest = Int64(data.map(\.period).min() ?? 60) * 1000
        if bucket <= smallest {
            return data.compactMap { d in Self.aggregate([d], stat: widget.stat).map { SVGChart.Point(time: d.timestamp, value: $0) } }
        }
        var groups: [Int64: [StoredDatapoint]] = [:]
        for d in data { groups[d.timestamp / bucket * bucket, default: []].append(d) }
        return groups.keys.sorted().compactMap { t in Self.aggregate(groups[t]!, stat: widget.stat).map { SVGChart.Point(time: t, value: $0) } }
    }

    static func aggregate(_ data: [StoredDatapoint], stat: String) -> Double? {
        guard !data.isEmpty else { return nil }
        let count = data.map(\.sampleCount).reduce(0, +)
        switch stat {
        case "Sum": return data.map(\.sum).reduce(0, +)
        case "SampleCount": return count
        case "Minimum": return data.map(\.minimum).min()
        case "Maximum": return data.map(\.maximum).max()
        default: return count > 0 ? data.map(\.sum).reduce(0, +) / count : nil
        }
    }

    func alarms(_ widget: DashboardWidget, store: any Store, start: Int64, end: Int64) async throws -> String {
        // State changes from the start of history, so the state at the start of the range is known.
        let changes = try await store.events(kinds: ["alarm"], start: 0, end: end, limit: 5000)
        var byAlarm: [String: [(time: Int64, state: String, reason: String)]] = [:]
        for change in changes {
            guard widget.alarms.isEmpty || widget.alarms.contains(change.key) else { continue }
            let object = (try? JSONSerialization.jsonObject(with: Data(change.body.utf8))) as? [String: Any]
            let state = object?["state"] as? [String: Any]
            byAlarm[change.key, default: []].append((change.timestamp, state?["value"] as? String ?? "?", state?["reason"] as? String ?? ""))
        }
        guard !byAlarm.isEmpty else { return "<p class=\"empty\">No alarm state changes stored.</p>" }
        var out = "<table class=\"alarms\"><tr><th>Alarm</th><th>State</th><th>Since</th><th>History</th></tr>"
        for name in byAlarm.keys.sorted() {
            let history = byAlarm[name]!
            let current = history.last!
            var segments: [(start: Int64, end: Int64, state: String)] = []
            for (i, change) in history.enumerated() {
                let until = i + 1 < history.count ? history[i + 1].time : end
                if until > start && change.time < end { segments.append((max(start, change.time), min(end, until), change.state)) }
            }
            out += "<tr><td>\(HTML.escape(name))</td><td class=\"state \(current.state.lowercased())\" title=\"\(HTML.escape(current.reason))\">\(HTML.escape(current.state))</td>"
            out += "<td>\(Timestamps.iso8601(current.time))</td><td>\(SVGChart.timeline(segments, start: start, end: end, label: name))</td></tr>"
        }
        return out + "</table>"
    }

    func events(_ widget: DashboardWidget, store: any Store, start: Int64, end: Int64) async throws -> String {
        let found = try await store.events(kinds: widget.kinds, start: start, end: end, limit: 2000)
        let rows = widget.kinds
        var marks: [(time: Int64, row: Int, color: String, title: String)] = []
        var listed: [(Int64, String, String)] = []
        for event in found {
            let object = (try? JSONSerialization.jsonObject(with: Data(event.body.utf8))) as? [String: Any] ?? [:]
            let summary: String
            var color = "#1f5fbf"
            switch event.kind {
            case "insight":
                let details = object["insightDetails"] as? [String: Any]
                let state = details?["state"] as? String ?? ""
                summary = "\(details?["insightType"] as? String ?? "Insight") \(state): \(details?["eventName"] as? String ?? event.key)"
                color = state == "End" ? "#1d8102" : "#d13212"
            case "pattern":
                summary = "\(object["kind"] as? String ?? "Pattern"): \(object["template"] as? String ?? event.key)"
                color = "#8a4baf"
            case "alarm":
                let state = (object["state"] as? [String: Any])?["value"] as? String ?? ""
                summary = "\(event.key) \(state)"
                color = state == "ALARM" ? "#d13212" : "#1d8102"
            default:
                summary = event.key
            }
            marks.append((event.timestamp, rows.firstIndex(of: event.kind) ?? 0, color, summary))
            listed.append((event.timestamp, event.kind, summary))
        }
        var out = SVGChart.events(marks, rows: rows, start: start, end: end)
        if listed.isEmpty { return out + "<p class=\"empty\">No events in this range.</p>" }
        out += "<table class=\"event-list\"><tr><th>Time</th><th>Kind</th><th>Event</th></tr>"
        for (time, kind, summary) in listed.suffix(15).reversed() {
            out += "<tr><td>\(Timestamps.iso8601(time))</td><td>\(HTML.escape(kind))</td><td>\(HTML.escape(summary))</td></tr>"
        }
        return out + "</table>"
    }

    // MARK: Queries

    func queryPage(_ store: any Store, query: [String: String], boards: [DashboardDefinition]) async throws -> Page {
        let text = query["q"] ?? ""
        let (start, end, rangeText) = try await timeRange(store, query: query, defaultRange: 24 * 3_600_000)
        var body = navigation(boards, current: "")
        body += "<form class=\"query\" method=\"get\" action=\"/query\"><textarea name=\"q\" rows=\"4\" cols=\"90\" placeholder=\"fields @timestamp, @message | filter @message like /ERROR/ | limit 20\">\(HTML.escape(text))</textarea><br>"
        body += "<label>Range <input name=\"range\" value=\"\(HTML.escape(rangeText))\" size=\"6\"></label> <button>Run query</button></form>"
        guard !text.isEmpty else { return html(200, "Query", body) }
        do {
            let result = try await store.query(LogQueryRequest(text: text, start: start, end: end, now: now(), deadline: .after(queryTimeout)))
            body += "<p class=\"span\">\(result.rows.count) row\(result.rows.count == 1 ? "" : "s"), \(Timestamps.iso8601(start)) — \(Timestamps.iso8601(end))</p>" + table(result)
            return html(200, "Query", body)
        } catch {
            body += "<p class=\"error\">\(HTML.escape("\(error)"))</p>"
            return html(400, "Query", body)
        }
    }

    func queryJSON(_ store: any Store, query: [String: String]) async throws -> Page {
        let (start, end, _) = try await timeRange(store, query: query, defaultRange: 24 * 3_600_000)
        do {
            let result = try await store.query(LogQueryRequest(text: query["q"] ?? "", start: start, end: end, now: now(), deadline: .after(queryTimeout)))
            // The same shape as `trailwatch query --format json`.
            return Page(status: 200, contentType: "application/json", body: String(decoding: result.json(), as: UTF8.self))
        } catch {
            let data = try JSONSerialization.data(withJSONObject: ["error": "\(error)"], options: [.sortedKeys])
            return Page(status: 400, contentType: "application/json", body: String(decoding: data, as: UTF8.self))
        }
    }

    func table(_ result: QueryResult) -> String {
        guard !result.rows.isEmpty else { return "<p class=\"empty\">No rows.</p>" }
        var out = "<table class=\"rows\"><tr>" + result.columns.map { "<th>\(HTML.escape($0))</th>" }.joined() + "</tr>"
        for row in result.rows.prefix(500) {
            out += "<tr>" + row.map { value -> String in
                let text: String = if case .timestamp(let t) = value { Timestamps.iso8601(t) } else { value.description }
                return "<td>\(HTML.escape(text))</td>"
            }.joined() + "</tr>"
        }
        return out + "</table>"
    }

    // MARK: Page frame

    func navigation(_ boards: [DashboardDefinition], current: String = "") -> String {
        "<nav>" + boards.map { board in
            "<a href=\"/dashboards/\(HTML.escape(board.name.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? board.name))\"\(board.name == current ? " class=\"current\"" : "")>\(HTML.escape(board.title))</a>"
        }.joined(separator: " ") + " <a href=\"/query\">Query</a></nav>"
    }

    func html(_ status: Int, _ title: String, _ body: String) -> Page {
        Page(status: status, contentType: "text/html; charset=utf-8", body: """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>\(HTML.escape(title)) · trailwatch</title>
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <style>
            body{font:14px system-ui,sans-serif;margin:0 1.5em 2em;color:#16191f}
            nav{padding:.8em 0;border-bottom:1px solid #ddd;margin-bottom:.8em} nav a{margin-right:1em} nav a.current{font-weight:bold}
            .grid{display:flex;flex-wrap:wrap;gap:1em} .widget{border:1px solid #ddd;border-radius:4px;padding:.5em 1em;max-width:760px;overflow-x:auto}
            h1{font-size:1.3em} h2{font-size:1em;margin:.3em 0} .value{font-size:2.4em;margin:.2em 0}
            table{border-collapse:collapse} td,th{border-bottom:1px solid #eee;padding:2px 8px;text-align:left;vertical-align:top;font-size:13px}
            .state.alarm{color:#d13212;font-weight:bold} .state.ok{color:#1d8102} .error{color:#d13212} .empty,.span{color:#687078}
            </style></head>
            <body data-charts-drawn="0"><h1>\(HTML.escape(title))</h1>
            \(body)
            <script>
            // Marks each chart whose line or band the browser laid out (checked by the headless-browser test).
            addEventListener('load', () => {
              let drawn = 0;
              for (const svg of document.querySelectorAll('svg.chart')) {
                const shape = svg.querySelector('polyline.series, circle.series, polygon.band');
                const box = shape ? shape.getBBox() : null;
                if (box && (box.width > 0 || box.height > 0)) { svg.setAttribute('data-drawn', 'yes'); drawn++; }
              }
              document.body.setAttribute('data-charts-drawn', String(drawn));
            });
            </script>
            </body></html>
            """)
    }
}
