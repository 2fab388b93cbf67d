import Foundation
import LogsQuery
import Testing
import TrailwatchCore
import TrailwatchStore

// What every store backend must answer the same way, shared by the SQLite suites and the
// PostgreSQL one: the stores' resources and the Logs Insights query conformance tables.

/// What every store backend must do the same way: the resources the AWS APIs keep (log groups
/// and streams, paged event reads, documents), LookupEvents paging, statistic-set merging.
/// Run against SQLite here and against PostgreSQL in the PostgreSQL suite.
public enum StoreConformance {
    /// Forty events in two streams of /api (one a second from `base`), three datapoint writers.
    public static func fill(_ store: any Store, base: Int64 = 1_795_000_000_000) async throws {
        var builder = LogBatchBuilderLite()
        for i in 0..<40 {
            builder.add(group: "/api", stream: i % 2 == 0 ? "even" : "odd", time: base + Int64(i) * 1000,
                        message: "request \(i) \(i % 5 == 0 ? "ERROR" : "ok")")
        }
        try await store.write(.logs(builder.batch(ingestionTime: base + 100_000)))
        let metric = MetricIdentity(namespace: "Shop", name: "Latency", dimensions: [Dimension(name: "Endpoint", value: "ep")])
        // Three instances contributed to the same minute; one of them twice (a replay).
        let parts = [MetricDatum(metric: metric, timestamp: base, period: 60, sampleCount: 2, sum: 30, minimum: 10, maximum: 20),
                     MetricDatum(metric: metric, timestamp: base, period: 60, sampleCount: 1, sum: 5, minimum: 5, maximum: 5),
                     MetricDatum(metric: metric, timestamp: base, period: 60, sampleCount: 3, sum: 90, minimum: 25, maximum: 40)]
        try await store.write(.metrics(parts))
        try await store.write(.metrics([parts[0]]))
    }

    /// A second instance writing a datapoint equal to one already there: both count.
    public static func checkSecondWriter(_ second: any Store, base: Int64 = 1_795_000_000_000) async throws {
        let metric = MetricIdentity(namespace: "Shop", name: "Latency", dimensions: [Dimension(name: "Endpoint", value: "ep")])
        try await second.write(.metrics([MetricDatum(metric: metric, timestamp: base, period: 60, sampleCount: 2, sum: 30, minimum: 10, maximum: 20)]))
        let points = try await second.datapoints(namespace: "Shop", name: "Latency", dimensions: nil, start: base, end: base + 60_000)
        #expect(points.map(\.sampleCount) == [8] && points.map(\.sum) == [155])
    }

    public static func check(_ store: any Store, base: Int64 = 1_795_000_000_000) async throws {
        // Groups and streams: writing registered them; creating is idempotent.
        #expect(try await store.logGroups(prefix: nil, after: nil, limit: 10).map(\.name).contains("/api"))
        #expect(try await store.createLogGroup("/api", retentionDays: nil, now: base) == false)
        #expect(try await store.createLogGroup("/batch", retentionDays: 7, now: base) == true)
        let groups = try await store.logGroups(prefix: "/b", after: nil, limit: 10)
        #expect(groups == [StoredLogGroup(name: "/batch", retentionDays: 7, creationTime: base)])
        #expect(try await store.logGroups(prefix: nil, after: "/api", limit: 10).map(\.name) == ["/batch"])
        #expect(try await store.createLogStream(group: "/batch", stream: "s1", now: base) == true)
        #expect(try await store.createLogStream(group: "/batch", stream: "s1", now: base) == false)
        let streams = try await store.logStreams(group: "/api", prefix: nil, after: nil, limit: 10)
        #expect(streams.map(\.name) == ["even", "odd"])
        #expect(streams.first?.firstEvent == base && streams.first?.lastEvent == base + 38_000)

        // Paged reads, oldest first and newest first, with a stream and substring filter.
        var seen: [String] = []
        var token: String?
        repeat {
            let page = try await store.logEvents(LogEventsRequest(logGroup: "/api", limit: 15, nextToken: token))
            seen += page.events.map(\.message)
            token = page.nextToken
        } while token != nil
        #expect(seen.count == 40 && seen.first == "request 0 ERROR" && seen.last == "request 39 ok")
        let errors = try await store.logEvents(LogEventsRequest(logGroup: "/api", logStreams: ["even"], newestFirst: true, messageContains: ["ERROR"]))
        #expect(errors.events.map(\.message) == ["request 30 ERROR", "request 20 ERROR", "request 10 ERROR", "request 0 ERROR"])
        #expect(errors.nextToken == nil)
        let window = try await store.logEvents(LogEventsRequest(logGroup: "/api", start: base + 10_000, end: base + 12_000))
        #expect(window.events.map(\.timestamp) == [base + 10_000, base + 11_000])

        // Datapoints from several writers merge into one statistic set; the replay added nothing.
        let points = try await store.datapoints(namespace: "Shop", name: "Latency", dimensions: "{\"Endpoint\":\"ep\"}", start: base, end: base + 60_000)
        #expect(points == [StoredDatapoint(timestamp: base, period: 60, sampleCount: 8, sum: 155, minimum: 5, maximum: 40, dimensions: "{\"Endpoint\":\"ep\"}")])

        try await checkHourly(store, base: base)

        // Documents.
        try await store.putDocument(StoredDocument(kind: "metric-filter", name: "/api:errors", body: #"{"p":"ERROR"}"#, updated: base))
        try await store.putDocument(StoredDocument(kind: "metric-filter", name: "/api:errors", body: #"{"p":"ERR"}"#, updated: base + 1))
        try await store.putDocument(StoredDocument(kind: "metric-filter", name: "/web:slow", body: "{}", updated: base))
        #expect(try await store.document(kind: "metric-filter", name: "/api:errors")?.body == #"{"p":"ERR"}"#)
        #expect(try await store.documents(kind: "metric-filter", prefix: "/api", after: nil, limit: 10).count == 1)
        #expect(try await store.documents(kind: "metric-filter", prefix: nil, after: "/api:errors", limit: 10).map(\.name) == ["/web:slow"])
        #expect(try await store.deleteDocument(kind: "metric-filter", name: "/web:slow") == true)
        #expect(try await store.document(kind: "metric-filter", name: "/web:slow") == nil)

        // Deleting a group takes its events along.
        #expect(try await store.deleteLogGroup("/api") == true)
        #expect(try await store.logEvents(LogEventsRequest(logGroup: "/api")).events.isEmpty)
        #expect(try await store.deleteLogGroup("/nothing") == false)
    }
}

extension StoreConformance {
    /// Hourly statistic sets equal the datapoints summed per hour, also for hours that the range
    /// cuts at either end, for datapoints written in several batches and replayed.
    static func checkHourly(_ store: any Store, base: Int64) async throws {
        let hour: Int64 = 3_600_000
        let start = (base / hour + 10) * hour
        let metric = { (host: String) in MetricIdentity(namespace: "Hourly", name: "Load", dimensions: [Dimension(name: "Host", value: host)]) }
        var data: [MetricDatum] = []
        for minute in 0..<(3 * 60) {
            for host in ["a", "b"] {
                let value = Double(minute % 7) + (host == "a" ? 0.5 : 10)
                data.append(MetricDatum(metric: metric(host), timestamp: start + Int64(minute) * 60_000, period: 60,
                                        sampleCount: 1, sum: value, minimum: value, maximum: value))
            }
        }
        try await store.write(.metrics(Array(data.prefix(200))))
        try await store.write(.metrics(Array(data.dropFirst(200))))
        try await store.write(.metrics(Array(data.prefix(50))))
        for (from, to) in [(start, start + 3 * hour), (start + 17 * 60_000, start + 2 * hour + 5 * 60_000), (start + 61 * 60_000, start + 62 * 60_000)] {
            for dimensions in [nil, "{\"Host\":\"a\"}"] {
                let raw = try await store.datapoints(namespace: "Hourly", name: "Load", dimensions: dimensions, start: from, end: to, limit: 100_000)
                let hourly = try await store.hourlyDatapoints(namespace: "Hourly", name: "Load", dimensions: dimensions, start: from, end: to, limit: 100_000)
                #expect(hourly == StoredDatapoint.hourly(raw), "\(from - start)…\(to - start) \(dimensions ?? "all")")
                #expect(hourly.reduce(0) { $0 + $1.sampleCount } == Double(raw.count))
            }
        }
    }
}

/// Builds a small LogBatch of given groups, streams, times and messages.
public struct LogBatchBuilderLite {
    public var origins: [Origin] = []
    public var rows: [(origin: Int, time: Int64, message: String)] = []

    public init() {}

    public mutating func add(group: String, stream: String, time: Int64, message: String) {
        let origin = Origin(logGroup: group, logStream: stream)
        let index = origins.firstIndex(of: origin) ?? { origins.append(origin); return origins.count - 1 }()
        rows.append((index, time, message))
    }

    public func batch(ingestionTime: Int64) -> LogBatch {
        let bytes = rows.flatMap { Array($0.message.utf8) }
        var batch = LogBatch(storage: ByteStorage(copying: bytes), defaultTimestamp: 0, ingestionTime: ingestionTime, origin: origins[0])
        batch.origins = origins
        var offset = 0
        for row in rows {
            let length = row.message.utf8.count
            batch.append(start: offset, length: length, timestamp: row.time, originIndex: row.origin)
            offset += length
        }
        return batch
    }
}

/// A fixed dataset: six JSON events in /app (stream a), four access lines in /web (stream w).
let queryDataset = (
    app: """
    {"t":"2026-11-24T10:00:00Z","level":"INFO","latency":100,"path":"/a","user":"u1","req":{"id":"r1"}}
    {"t":"2026-11-24T10:01:00Z","level":"ERROR","latency":300,"path":"/b","user":"u2","req":{"id":"r2"}}
    {"t":"2026-11-24T10:02:00Z","level":"INFO","latency":200,"path":"/a","user":"u1","req":{"id":"r3"}}
    {"t":"2026-11-24T10:03:00Z","level":"WARN","latency":50,"path":"/c","user":"u3","req":{"id":"r4"}}
    {"t":"2026-11-24T10:06:00Z","level":"ERROR","latency":500,"path":"/a","user":"u2","req":{"id":"r5"}}
    {"t":"2026-11-24T10:07:00Z","level":"INFO","latency":150,"path":"/b","user":"u1","req":{"id":"r6"}}

    """,
    web: """
    2026-11-24T10:00:30Z GET /index 200 12ms
    2026-11-24T10:04:30Z GET /login 500 80ms
    2026-11-24T10:05:30Z POST /login 302 40ms
    2026-11-24T10:09:30Z GET /index 200 10ms

    """,
    // Edge cases: Unicode spelled three ways, arrays, numbers stored as strings, IP addresses, null,
    // a key with a dot next to a nested key of the same flattened name, a key starting with @.
    edge: """
    {"t":"2026-11-25T09:00:00Z","name":"caf\u{E9}","tags":["beta","x"],"status":"200","ip":"10.1.2.3","msg":"user=alice action=signin","obj":{"k":"v"},"n":null}
    {"t":"2026-11-25T09:01:00Z","name":"cafe\u{301}","tags":["gamma"],"status":200,"ip":"2001:db8::1","items":[{"id":"i-1"},{"id":"i-2"}]}
    {"t":"2026-11-25T09:02:00Z","name":"caf\\u00e9","status":"404","ip":"192.168.0.7","csv":"a,\\\"b,c\\\",d"}
    {"t":"2026-11-25T09:03:00Z","status":"abc","ip":"not-an-ip","cluster.name":"c1","cluster":{"name":"c2"}}
    {"t":"2026-11-25T09:04:00Z","@odd":"at","user":null}

    """,
    // Service lines for pattern, diff and anomaly: the hour 10:00–11:00 (previous) and 11:00–12:00.
    svc: svcLines())

func svcLines() -> String {
    var lines: [String] = []
    for (k, minute) in [30, 35, 40, 45].enumerated() { lines.append("2026-11-25T10:\(minute):00Z INFO user session opened id=\(100 + k)") }
    for minute in [33, 50] { lines.append("2026-11-25T10:\(minute):00Z INFO cache refreshed in \(minute * 3) ms") }
    for (k, minute) in [0, 10, 20, 30].enumerated() { lines.append("2026-11-25T11:\(minute < 10 ? "0" : "")\(minute):00Z INFO user session opened id=\(200 + k)") }
    for minute in [5, 25] { lines.append("2026-11-25T11:\(minute < 10 ? "0" : "")\(minute):00Z INFO cache refreshed in \(minute * 7) ms") }
    for second in stride(from: 0, to: 60, by: 10) { lines.append("2026-11-25T11:40:\(second < 10 ? "0" : "")\(second)Z INFO cache refreshed in \(second + 9) ms") }
    for minute in [50, 51, 52] { lines.append("2026-11-25T11:\(minute):00Z ERROR payment gateway timeout after \(minute - 40) s") }
    return lines.joined(separator: "\n") + "\n"
}

/// Query, then the expected rows: cells joined by ",", rows by ";" (numbers as written, times in ISO 8601).
public let queryCases: [(String, String)] = [
    ("stats count(*)", "36"),
    ("filter @log = \"/app\" | stats count(*)", "6"),
    ("filter @logStream = \"w\" | stats count(*)", "4"),
    ("filter level = \"ERROR\" | stats count(*)", "2"),
    ("filter latency > 150 | stats count(*)", "3"),
    ("filter latency >= 150 | stats count(*)", "4"),
    ("filter latency < 100 | stats count(*)", "1"),
    ("filter latency <= 100 | stats count(*)", "2"),
    ("filter level != \"INFO\" | stats count(*)", "3"),
    ("filter level = \"INFO\" and latency > 120 | stats count(*)", "2"),
    ("filter level = \"WARN\" or level = \"ERROR\" | stats count(*)", "3"),
    ("filter @log = \"/app\" and not (level = \"INFO\") | stats count(*)", "3"),
    ("filter @message like \"login\" | stats count(*)", "2"),
    ("filter @message like /GET \\/\\w+ 200/ | stats count(*)", "2"),
    ("filter @message =~ /POST/ | stats count(*)", "1"),
    ("filter @log = \"/web\" and @message not like \"GET\" | stats count(*)", "1"),
    ("filter path in [\"/a\", \"/c\"] | stats count(*)", "4"),
    ("filter @log = \"/app\" and path not in [\"/a\"] | stats count(*)", "3"),
    ("filter ispresent(latency) | stats count(*)", "6"),
    ("filter not ispresent(latency) | stats count(*)", "30"),
    ("filter req.id = \"r5\" | fields path", "/a"),
    ("filter @log = \"/app\" | stats count(*) by level | sort level asc", "ERROR,2;INFO,3;WARN,1"),
    ("filter @log = \"/app\" | stats sum(latency)", "1300"),
    ("filter @log = \"/app\" | stats avg(latency) by user | sort user asc", "u1,150;u2,400;u3,50"),
    ("filter @log = \"/app\" | stats min(latency), max(latency)", "50,500"),
    ("filter @log = \"/app\" | stats count_distinct(user)", "3"),
    ("filter @log = \"/app\" | stats pct(latency, 50)", "150"),
    ("filter @log = \"/app\" | stats pct(latency, 90)", "500"),
    ("filter @log = \"/app\" | stats earliest(path), latest(path)", "/a,/b"),
    ("filter @log = \"/app\" | stats count(*) as n by bin(5m) as t | sort t asc", "2026-11-24T10:00:00.000Z,4;2026-11-24T10:05:00.000Z,2"),
    ("stats count(*) as n by bin(5m) as t | sort t asc | limit 2", "2026-11-24T10:00:00.000Z,6;2026-11-24T10:05:00.000Z,4"),
    ("filter @log = \"/app\" | stats count(*) as n by path | sort n desc, path asc | limit 2", "/a,3;/b,2"),
    ("filter @log = \"/app\" | fields path | sort @timestamp desc | limit 2", "/b;/a"),
    ("filter @log = \"/app\" | fields @timestamp, level | sort @timestamp asc | limit 1", "2026-11-24T10:00:00.000Z,INFO"),
    ("filter @log = \"/web\" | parse @message \"* * * * *ms\" as ts, method, url, status, ms | stats count(*) by method | sort method asc", "GET,3;POST,1"),
    ("filter @log = \"/web\" | parse @message /(?<method>[A-Z]+) (?<url>\\S+) (?<status>\\d+)/ | filter status = 500 | fields url", "/login"),
    ("filter @log = \"/web\" | parse @message \"* * * * *ms\" as ts, method, url, status, ms | stats sum(ms)", "142"),
    ("filter @log = \"/app\" | fields latency * 2 as double | sort double desc | limit 1 | display double", "1000"),
    ("filter @log = \"/app\" | fields latency / 4 as q | filter q = 12.5 | display q", "12.5"),
    ("filter @log = \"/app\" | fields latency % 7 as r | filter path = \"/c\" | display r", "1"),
    ("filter @log = \"/app\" | fields strlen(path) as n | stats sum(n)", "12"),
    ("filter @log = \"/app\" | fields toupper(level) as l | filter path = \"/c\" | display l", "WARN"),
    ("filter @log = \"/app\" | fields tolower(level) as l | filter path = \"/c\" | display l", "warn"),
    ("filter @log = \"/app\" | fields concat(user, \"-\", path) as k | sort k asc | limit 1 | display k", "u1-/a"),
    ("filter @log = \"/app\" | fields substr(user, 1) as n | filter path = \"/c\" | display n", "3"),
    ("filter @log = \"/app\" | fields replace(path, \"/\", \"#\") as p | filter user = \"u3\" | display p", "#c"),
    ("filter @log = \"/app\" | filter strcontains(path, \"b\") | stats count(*)", "2"),
    ("filter @log = \"/app\" | fields abs(0 - latency) as a | filter path = \"/c\" | display a", "50"),
    ("filter @log = \"/app\" | fields ceil(latency / 7) as c | filter path = \"/c\" | display c", "8"),
    ("filter @log = \"/app\" | fields floor(latency / 7) as f | filter path = \"/c\" | display f", "7"),
    ("filter @log = \"/app\" | fields greatest(latency, 120) as g | filter path = \"/c\" | display g", "120"),
    ("filter @log = \"/app\" | fields least(latency, 120) as g | filter path = \"/c\" | display g", "50"),
    ("filter @log = \"/app\" | fields coalesce(missing, user) as c | filter path = \"/c\" | display c", "u3"),
    ("filter @log = \"/app\" | fields user | sort user asc | dedup user", "u1;u2;u3"),
    ("filter @log = \"/app\" | fields path, latency | sort latency desc | dedup path", "/a,500;/b,300;/c,50"),
    ("filter @log = \"/web\" | fields @message | limit 2", "2026-11-24T10:09:30Z GET /index 200 10ms;2026-11-24T10:05:30Z POST /login 302 40ms"),
    ("filter @log = \"/app\" | stats count(*) by @logStream", "a,6"),
    ("stats count(*) by @log | sort @log asc", "/app,6;/edge,5;/svc,21;/web,4"),
    ("filter @log = \"/app\" | stats count(*) as n, sum(latency) as s by level | sort s desc", "ERROR,2,800;INFO,3,450;WARN,1,50"),
    ("filter @log = \"/app\" | stats sum(latency) / count(*) as mean", "216.66666666666666"),
    ("filter @log = \"/app\" | filter latency > 100 | filter level = \"INFO\" | fields path | sort @timestamp asc", "/a;/b"),
    ("filter @log = \"/app\" | fields latency > 150 as slow | filter slow | stats count(*)", "3"),
    ("fields @timestamp | sort @timestamp desc | limit 1", "2026-11-25T11:52:00.000Z"),
    ("filter @log = \"/app\" | stats max(@timestamp)", "2026-11-24T10:07:00.000Z"),
    ("filter @log = \"/app\" and datefloor(@timestamp, 1h) = datefloor(@timestamp, 1h) | stats count(*)", "6"),
    ("FIELDS path | FILTER user = \"u3\" # keywords in any case, comments to the end of the line", "/c"),

    // Null and missing fields: comparisons with null are false (also !=), functions of null are null.
    ("filter @log = \"/edge\" | stats count(name), count(*), count(user)", "3,5,0"),
    ("filter @log = \"/edge\" and user != \"x\" | stats count(*)", "0"),
    ("filter @log = \"/edge\" and ispresent(n) | stats count(*)", "0"),
    ("filter @log = \"/edge\" | fields strlen(nothing) as a, concat(\"<\", nothing, \">\") as b, coalesce(nothing, status) as c | sort @timestamp asc | limit 1", ",<>,200"),
    ("filter @log = \"/edge\" | stats count(*) by isempty(name) as e | sort e asc", "false,3;true,2"),
    ("filter @log = \"/edge\" | fields user | sort @timestamp asc | dedup user", ";;;;"),

    // Unicode: values are byte strings — precomposed and decomposed spellings stay apart everywhere.
    ("filter @log = \"/edge\" | stats count(*) by name | sort name asc", "cafe\u{301},1;caf\u{E9},2;,2"),
    ("filter @log = \"/edge\" | stats count_distinct(name)", "2"),
    ("filter name = \"caf\u{E9}\" | stats count(*)", "2"),
    ("filter name = \"cafe\u{301}\" | stats count(*)", "1"),
    ("filter name in [\"cafe\u{301}\"] | stats count(*)", "1"),
    ("filter @log = \"/edge\" | fields name | sort @timestamp asc | dedup name", "caf\u{E9};cafe\u{301};;"),
    ("filter @log = \"/edge\" | fields strlen(name) as n | sort @timestamp asc | limit 2", "4;5"),
    ("filter @log = \"/edge\" | fields substr(name, 0, 4) as s | sort @timestamp asc | limit 2", "caf\u{E9};cafe"),
    ("filter @log = \"/edge\" | stats sortsFirst(name), sortsLast(name)", "cafe\u{301},caf\u{E9}"),
    ("filter @log = \"/edge\" and name like \"e\u{301}\" | stats count(*)", "1"),

    // JSON arrays are flattened (field.0, field.1); arrays and objects themselves are not fields.
    ("filter tags.0 = \"beta\" | stats count(*)", "1"),
    ("filter @log = \"/edge\" and ispresent(tags.1) | fields tags.1", "x"),
    ("filter @log = \"/edge\" and ispresent(tags) | stats count(*)", "0"),
    ("filter ispresent(items.1.id) | fields items.0.id, items.1.id", "i-1,i-2"),
    ("filter cluster.name = \"c1\" | stats count(*)", "1"),
    ("filter ispresent(@@odd) | fields @@odd", "at"),
    ("filter obj.k = \"v\" | fields `obj.k`", "v"),

    // Numbers stored as strings: compared and summed as numbers, grouped by their text.
    ("filter @log = \"/edge\" | stats count(*) by status | sort status asc", "200,2;404,1;abc,1;,1"),
    ("filter status = 200 | stats count(*)", "2"),
    ("filter status = \"200\" | stats count(*)", "2"),
    ("filter @log = \"/edge\" and status > 100 | stats count(*)", "3"),
    ("filter @log = \"/edge\" | stats sum(status), max(status), min(status)", "804,404,200"),
    ("filter status = \"404\" | fields status + 1 as s | display s", "405"),

    // IP functions.
    ("filter isValidIpV4(ip) | stats count(*)", "2"),
    ("filter isValidIpV6(ip) | stats count(*)", "1"),
    ("filter isValidIp(ip) | stats count(*)", "3"),
    ("filter @log = \"/edge\" and not isValidIp(ip) | stats count(*)", "2"),
    ("filter isIpInSubnet(ip, \"10.0.0.0/8\") | fields ip", "10.1.2.3"),
    ("filter isIpv4InSubnet(ip, \"192.168.0.0/16\") | fields ip", "192.168.0.7"),
    ("filter isIpv6InSubnet(ip, \"2001:db8::/32\") | fields ip", "2001:db8::1"),
    ("filter isIpInSubnet(ip, \"2001:db8::/32\") | stats count(*)", "1"),
    ("filter @log = \"/app\" | fields isValidIpV4(\"1.2.3.04\") as a, isValidIpV6(\"::ffff:10.0.0.1\") as b, isValidIpV6(\"1::2::3\") as c | limit 1", "false,true,false"),

    // jsonParse, member and index access, jsonStringify, unnest.
    ("filter @log = \"/edge\" | fields jsonParse(@message) as m | filter ispresent(m.obj.k) | fields m.obj.k as k | display k", "v"),
    ("filter @log = \"/edge\" | fields jsonParse(@message) as m | unnest m.tags into tag | stats count(*) by tag | sort tag asc", "beta,1;gamma,1;x,1"),
    ("filter @log = \"/edge\" | fields jsonParse(@message) as m | fields jsonStringify(m.items) as s | filter ispresent(s) | display s", "[{\"id\":\"i-1\"},{\"id\":\"i-2\"}]"),
    ("filter @log = \"/edge\" | fields jsonParse(@message) as m | fields m.tags[1] as second | filter ispresent(second) | display second", "x"),

    // parse in its logfmt and CSV forms.
    ("filter @log = \"/edge\" | parse msg logfmt | filter ispresent(action) | fields user, action", "alice,signin"),
    ("filter @log = \"/edge\" | parse csv csv as a, b, c | filter ispresent(c) | fields a, b, c", "a,b,c,d"),
    ("filter @log = \"/web\" | parse @message csv(\" \") as ts, method | stats count(*) by method | sort method asc", "GET,3;POST,1"),

    // String functions (AWS's documented examples where there are some).
    ("filter @log = \"/app\" | fields trim(\"xxhixx\", \"x\") as t, ltrim(\"xxhixx\", \"x\") as l, rtrim(\"xxhixx\", \"x\") as r | limit 1", "hi,hixx,xxhi"),
    ("filter @log = \"/app\" | fields trim(\"  hi \") as t | limit 1", "hi"),
    ("filter @log = \"/app\" | fields isblank(\"  \") as b, isempty(\"\") as e | limit 1", "true,true"),
    ("filter @log = \"/app\" | fields substr(\"xyZfooxyZ\", 3, 3) as s | limit 1", "foo"),
    ("filter @log = \"/app\" | fields replace(\"a-b-c\", \"-\", \"+\") as s | limit 1", "a+b+c"),
    ("filter @log = \"/app\" | fields strcontains(\"abc\", \"b\") as c | limit 1", "1"),
    ("filter @log = \"/app\" | fields concat(Operation, \"-\", path) as k | sort k asc | limit 1 | display k", "-/a"),

    // Numbers: arithmetic never traps; what is not a finite number or a time in 0001–9999 is null.
    ("filter @log = \"/app\" | fields sqrt(16) as a, log(1) as b, 2 ^ 10 as c, abs(-5) as d, ceil(1.2) as e, floor(-1.2) as f | limit 1", "4,0,1024,5,2,-2"),
    ("filter @log = \"/app\" | fields 1 / 0 as x, 7 % 3 as y, greatest(1, nothing, 3) as g, least(4, 2) as l | limit 1", ",1,3,2"),
    ("filter @log = \"/app\" | fields ispresent(fromMillis(latency * 1e300)) as p | limit 1 | display p", "false"),
    ("filter @log = \"/app\" | fields ispresent(@timestamp + 1e300) as p, ispresent(substr(path, latency * 1e300)) as q | limit 1", "false,true"),

    // Time functions.
    ("filter @log = \"/edge\" | fields datefloor(@timestamp, 1h) as h, dateceil(@timestamp, 1h) as c | sort @timestamp desc | limit 1", "2026-11-25T09:00:00.000Z,2026-11-25T10:00:00.000Z"),
    ("filter @log = \"/edge\" | fields dateceil(@timestamp, 1h) as c | sort @timestamp asc | limit 1", "2026-11-25T09:00:00.000Z"),
    ("filter @log = \"/edge\" | fields toMillis(@timestamp) as ms, fromMillis(0) as z | sort @timestamp asc | limit 1", "1795597200000,1970-01-01T00:00:00.000Z"),
    ("filter @log = \"/edge\" | stats count(*) by bin(1h) offset 30m as b", "2026-11-25T08:30:00.000Z,5"),
    ("filter @log = \"/app\" | stats count(*) by bin(10m) offset -5m as b | sort b asc", "2026-11-24T09:55:00.000Z,4;2026-11-24T10:05:00.000Z,2"),

    // stats functions.
    ("filter @log = \"/app\" | stats sortsFirst(path), sortsLast(path)", "/a,/c"),
    ("filter @log = \"/app\" | stats stddev(latency) as s | fields s > 163.29 and s < 163.3 as ok | display ok", "true"),
    ("filter @log = \"/app\" | stats count(*) by `level` | sort `level` asc", "ERROR,2;INFO,3;WARN,1"),
    ("filter @log = \"/app\" | stats count(*) as n by level | stats max(n) as most", "3"),

    // Choosing log groups inside the query.
    ("SOURCE logGroups(namePrefix: [\"/ap\"]) | stats count(*)", "6"),
    ("SOURCE logGroups(namePrefix: [\"/we\", \"/ed\"], class: \"STANDARD\") | stats count(*)", "9"),
    ("SOURCE logGroups(namePrefix: \"/ap\") | filter level = \"ERROR\" | stats count(*)", "2"),
    ("filterIndex level = \"ERROR\" | stats count(*)", "2"),
    ("filterIndex level in [\"WARN\", \"ERROR\"] | stats count(*)", "3"),
]

/// Queries over a time range (start, end in RFC 3339), with the expected rows: `pattern`, `diff`
/// (which reads the range before too) and `anomaly` on the service lines.
public let rangedQueryCases: [(String, String, String, String)] = [
    ("filter @log = \"/svc\" | pattern @message | stats sum(@sampleCount) as n, count(*) as p", "2026-11-25T11:00:00Z", "2026-11-25T12:00:00Z", "15,3"),
    ("filter @log = \"/svc\" | pattern @message | sort @sampleCount desc | display @sampleCount, @ratio, @severityLabel",
     "2026-11-25T11:00:00Z", "2026-11-25T12:00:00Z", "8,0.533333,Info;4,0.266667,Info;3,0.2,Error"),
    ("filter @log = \"/svc\" | pattern @message | diff | sort @sampleCount desc | display @changeType, @sampleCount, @previousSampleCount",
     "2026-11-25T11:00:00Z", "2026-11-25T12:00:00Z", "increased,8,2;decreased,4,4;new,3,0"),
    ("filter @log = \"/svc\" | diff | filter @changeType = \"new\" | fields @pattern like \"payment gateway\" as p | display p", "2026-11-25T11:00:00Z", "2026-11-25T12:00:00Z", "true"),
    ("filter @log = \"/svc\" | anomaly | display @anomalyType, @priority, @peakCount", "2026-11-25T11:00:00Z", "2026-11-25T12:00:00Z", "new,HIGH,1;spike,MEDIUM,6"),
    ("filter @log = \"/svc\" | pattern | filter @severityLabel = \"Error\" | display @sampleCount", "2026-11-25T10:00:00Z", "2026-11-25T12:00:00Z", "3"),
]

/// Writes the dataset's files under `directory` and runs them through `sink` (a sink's YAML fed by
/// the sources app, web, edge and svc), once; every backend's conformance suite loads it this way.
public func loadQueryDatasetAsync(directory dir: String, sink: String) async {
    try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    for (name, text) in [("app", queryDataset.app), ("web", queryDataset.web), ("edge", queryDataset.edge), ("svc", queryDataset.svc)] {
        _ = FileManager.default.createFile(atPath: dir + "/\(name).log", contents: Data(text.utf8))
    }
    let yaml = """
        sources:
          app: { type: file, include: \(dir)/app.log, log_group: /app, log_stream: a, timestamp: { field: $.t } }
          web: { type: file, include: \(dir)/web.log, log_group: /web, log_stream: w, timestamp: { regex: '^([^ ]+)' } }
          edge: { type: file, include: \(dir)/edge.log, log_group: /edge, log_stream: e, timestamp: { field: $.t } }
          svc: { type: file, include: \(dir)/svc.log, log_group: /svc, log_stream: s, timestamp: { regex: '^([^ ]+)' } }
        sinks:
          db: \(sink)
        """
    _ = try? await runOnce(yaml)
}

/// The query conformance dataset in an SQLite store, loaded once per process, and how rows are compared.
public enum QueryConformance {
    /// Awaited, never waited for: a static initialiser that blocked its thread on a semaphore until
    /// the load finished held one of the cooperative pool's two threads, and with a test blocked in
    /// `waitUntilExit` on the other, the whole test process stopped.
    public static var sqliteStore: String { get async { await sqliteStoreLoad.value } }

    private static let sqliteStoreLoad = Task<String, Never> {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("trailwatch-query-\(UUID().uuidString)").path
        await loadQueryDatasetAsync(directory: dir, sink: "{ type: sqlite, inputs: [app, web, edge, svc], path: \(dir)/store.db }")
        return dir + "/store.db"
    }

    public static func time(_ text: String) -> Int64 { Array(text.utf8).withUnsafeBytes { Timestamps.parseISO8601($0) }! }

    public static func text(_ result: QueryResult) -> String {
        result.rows.map { row in
            row.map { value -> String in
                if case .timestamp(let ms) = value { return Timestamps.iso8601(ms) }
                return value.stringValue ?? ""
            }.joined(separator: ",")
        }.joined(separator: ";")
    }
}
