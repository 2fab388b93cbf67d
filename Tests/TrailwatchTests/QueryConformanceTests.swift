import Foundation
import Testing
import LogsQuery
import TrailwatchCore
import TrailwatchStore
import ByteJSON
import TrailwatchTestSupport

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
let queryCases: [(String, String)] = [
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
let rangedQueryCases: [(String, String, String, String)] = [
    ("filter @log = \"/svc\" | pattern @message | stats sum(@sampleCount) as n, count(*) as p", "2026-11-25T11:00:00Z", "2026-11-25T12:00:00Z", "15,3"),
    ("filter @log = \"/svc\" | pattern @message | sort @sampleCount desc | display @sampleCount, @ratio, @severityLabel",
     "2026-11-25T11:00:00Z", "2026-11-25T12:00:00Z", "8,0.533333,Info;4,0.266667,Info;3,0.2,Error"),
    ("filter @log = \"/svc\" | pattern @message | diff | sort @sampleCount desc | display @changeType, @sampleCount, @previousSampleCount",
     "2026-11-25T11:00:00Z", "2026-11-25T12:00:00Z", "increased,8,2;decreased,4,4;new,3,0"),
    ("filter @log = \"/svc\" | diff | filter @changeType = \"new\" | fields @pattern like \"payment gateway\" as p | display p", "2026-11-25T11:00:00Z", "2026-11-25T12:00:00Z", "true"),
    ("filter @log = \"/svc\" | anomaly | display @anomalyType, @priority, @peakCount", "2026-11-25T11:00:00Z", "2026-11-25T12:00:00Z", "new,HIGH,1;spike,MEDIUM,6"),
    ("filter @log = \"/svc\" | pattern | filter @severityLabel = \"Error\" | display @sampleCount", "2026-11-25T10:00:00Z", "2026-11-25T12:00:00Z", "3"),
]

/// Queries the parser must reject, with the column it points at.
let badQueries: [(String, Int)] = [
    ("filter x = | limit 2", 12),
    ("stats count(* by level", 15),
    ("sort", 5),
    ("limit banana", 7),
    ("frobnicate x", 1),
    // Constants out of range are located errors (they used to stop the process).
    ("stats count(*) by bin(0s)", 23),
    ("fields datefloor(@timestamp, 0s)", 30),
    ("fields dateceil(@timestamp, 0m)", 29),
    ("fields fromMillis(1e300)", 19),
    ("fields substr(@message, 99999999999999999999, 1)", 25),
    ("fields bin(99999999999y)", 12),
    ("fields 1e999", 8),
    ("fields isIpInSubnet(ip, \"10.0.0.0/33\")", 25),
    // What AWS documents and trailwatch does not do is an error naming it.
    ("unmask @message", 1),
    ("stats rate(x)", 7),
    ("filterIndex latency > 100", 13),
    ("SOURCE logGroups(accountIdentifiers: [\"1\"]) | stats count(*)", 18),
    ("SOURCE logGroups(namePrefix: [\"/a\"], class: \"INFREQUENT_ACCESS\") | stats count(*)", 45),
    ("fields x | SOURCE logGroups(namePrefix: [\"/a\"])", 12),
    ("stats count(*) | stats sum(x) | dedup a | fields b", 43),
    ("pattern @message | display @pattern, @regexString", 38),
]

/// Writes the dataset's files under `directory` and runs them through `sink` (a sink's YAML fed by
/// the sources app, web, edge and svc), once; every backend's conformance suite loads it this way.
func loadQueryDataset(directory dir: String, sink: String) {
    let semaphore = DispatchSemaphore(value: 0)
    Task.detached {
        await loadQueryDatasetAsync(directory: dir, sink: sink)
        semaphore.signal()
    }
    semaphore.wait()
}

func loadQueryDatasetAsync(directory dir: String, sink: String) async {
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

@Suite("Logs Insights query conformance", .serialized)
struct QueryConformanceTests {
    static let store: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("trailwatch-query-\(UUID().uuidString)").path
        loadQueryDataset(directory: dir, sink: "{ type: sqlite, inputs: [app, web, edge, svc], path: \(dir)/store.db }")
        return dir + "/store.db"
    }()

    static func time(_ text: String) -> Int64 { Array(text.utf8).withUnsafeBytes { Timestamps.parseISO8601($0) }! }

    static func run(_ text: String, start: Int64? = nil, end: Int64? = nil) throws -> String {
        let store = try SQLiteStore(path: Self.store)
        let result = try StoreQuery(store: store, LogQueryRequest(text: text, start: start, end: end, logGroups: [], now: 1_795_600_000_000)).run()
        return Self.text(result)
    }

    static func text(_ result: QueryResult) -> String {
        result.rows.map { row in
            row.map { value -> String in
                if case .timestamp(let ms) = value { return Timestamps.iso8601(ms) }
                return value.stringValue ?? ""
            }.joined(separator: ",")
        }.joined(separator: ";")
    }

    @Test("queries over a fixed dataset give exactly the expected rows", arguments: queryCases)
    func query(_ text: String, _ expected: String) throws {
        #expect(try Self.run(text) == expected, "\(text)")
    }

    @Test("pattern, diff and anomaly over a fixed range give exactly the expected rows", arguments: rangedQueryCases)
    func rangedQuery(_ text: String, _ start: String, _ end: String, _ expected: String) throws {
        #expect(try Self.run(text, start: Self.time(start), end: Self.time(end)) == expected, "\(text)")
    }

    @Test("diff without a time range is a located error")
    func diffNeedsRange() throws {
        let store = try SQLiteStore(path: Self.store)
        let outcome = Result { () throws(StoreErrorOrQuery) -> QueryResult in try StoreQuery(store: store, LogQueryRequest(text: "filter @log = \"/svc\" | pattern @message | diff", start: nil, end: nil,
                                              logGroups: [], now: 0)).run() }
        let reason = Self.runError(outcome)
        #expect(reason == .invalid(QueryParseError(column: 43, message: "diff compares the range with the one before it: give the query a start and an end time")),
                "\(String(describing: reason))")
    }

    static func runError(_ outcome: Result<QueryResult, StoreErrorOrQuery>) -> QueryRunError? {
        switch outcome {
        case .success: return nil
        case .failure(let error):
            switch error {
            case .run(let reason): return reason
            default: return nil
            }
        }
    }

    static func describe(_ outcome: Result<QueryResult, StoreErrorOrQuery>) -> String {
        if case .failure(let error) = outcome { return "\(error)" }
        return "no error"
    }

    @Test("column names: a back-quoted field is named without its quotes; other expressions as written")
    func columnNames() throws {
        let store = try SQLiteStore(path: Self.store)
        let result = try StoreQuery(store: store, LogQueryRequest(text: "filter @log = \"/app\" | stats count(*) by `level`, bin(5m)", start: nil, end: nil,
                                    logGroups: [], now: 0)).run()
        #expect(result.columns == ["level", "bin(5m)", "count(*)"])
        let fields = try StoreQuery(store: store, LogQueryRequest(text: "fields `req.id`, latency * 2, `path` as p | limit 1", start: nil, end: nil,
                                    logGroups: [], now: 0)).run()
        #expect(fields.columns == ["req.id", "latency * 2", "p"])
    }

    @Test("a query past its deadline stops with a clear error, in the store and in the executor")
    func deadline() throws {
        let store = try SQLiteStore(path: Self.store)
        let expired = QueryDeadline(instant: .now.advanced(by: .seconds(-1)), timeout: .milliseconds(250))
        for text in ["stats count(*)", "stats count(*) by bin(5m)", "filter level = \"ERROR\" | stats count(*) by path", "fields @message | limit 5"] {
            let query = StoreQuery(store: store, LogQueryRequest(text: text, start: nil, end: nil, logGroups: [], now: 0))
            let outcome = Result { () throws(StoreErrorOrQuery) -> QueryResult in try query.run(deadline: expired) }
            #expect(Self.runError(outcome) == .timedOut(after: .milliseconds(250)), "\(text)")
            #expect(Self.describe(outcome).contains("query_timeout (250 ms)"), "\(text)")
        }
        // A scan that outlives its deadline stops within 1,024 rows of it.
        let executor = QueryExecutor(query: try LogsQuery.parse("filter @message like \"x\" | stats count(*)"), now: 0,
                                     deadline: .after(.milliseconds(50)))
        let started = ContinuousClock.now
        var pushed = 0
        do {
            while true {
                try executor.push(QueryRow.event(timestamp: Int64(pushed), message: "line \(pushed)"))
                pushed += 1
                if ContinuousClock.now - started > .seconds(20) { break }
            }
            Issue.record("the executor never stopped")
        } catch {
            #expect(error == .timedOut(after: .milliseconds(50)))
            #expect(ContinuousClock.now - started < .seconds(5))
        }
    }

    @Test("cancelling the task that runs a query stops it")
    func cancellation() async throws {
        let query = try LogsQuery.parse("stats count(*) by @message")
        let task = Task.detached { () throws -> Int in
            let executor = QueryExecutor(query: query, now: 0, deadline: .after(.seconds(60)))
            var n = 0
            while true {
                try executor.push(QueryRow.event(timestamp: Int64(n), message: "m\(n % 1000)"))
                n += 1
                if n > 50_000_000 { return n }
            }
        }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        do {
            _ = try await task.value
            Issue.record("the query ran to its end")
        } catch let error as QueryRunError {
            #expect(error == .cancelled)
        }
    }

    @Test("hostile queries: deep nesting and very long text are located errors, never a crash")
    func hostileQueries() {
        let deep = "fields " + String(repeating: "(", count: 2000) + "1" + String(repeating: ")", count: 2000)
        do {
            _ = try LogsQuery.parse(deep)
            Issue.record("accepted a 2000-deep expression")
        } catch {
            #expect(error.message.contains("nests deeper"), "\(error)")
        }
        let nots = "filter " + String(repeating: "not ", count: 3000) + "x"
        #expect(throws: QueryParseError.self) { try LogsQuery.parse(nots) }
        let chain = "filter " + (0..<2000).map { "a = \($0)" }.joined(separator: " or ")
        #expect(throws: QueryParseError.self) { try LogsQuery.parse(chain) }
        let long = "filter @message like \"" + String(repeating: "x", count: 10_001) + "\""
        do {
            _ = try LogsQuery.parse(long)
            Issue.record("accepted a query longer than 10,000 characters")
        } catch {
            #expect(error.message.contains("longer than 10000"), "\(error)")
        }
    }

    @Test("JSON fields are found by their flattened names in one scan, without a tree")
    func flattenedLookup() {
        let lookup = JSONFlattenedLookup(["a.b", "list.1", "x.y", "k\"q", "deep.0.1.z"].map { Array($0.utf8) })
        func run(_ text: String) -> [String] {
            var results: [JSONLookup] = []
            let bytes = Array(text.utf8)
            bytes.withUnsafeBytes { _ = lookup.resolve(in: $0, into: &results) }
            return results.map { found in
                bytes.withUnsafeBytes { raw in
                    switch found {
                    case .missing: return "-"
                    case .notJSON: return "!"
                    case .array: return "[]"
                    case .object: return "{}"
                    default: return found.scalarText(in: raw).map { String(decoding: $0, as: UTF8.self) } ?? "?"
                    }
                }
            }
        }
        #expect(run(#"{"a":{"b":1},"list":["p","q"],"x":{"y":[1]},"k\"q":true,"deep":[[0,{"z":"w"}]]}"#) == ["1", "q", "[]", "true", "w"])
        #expect(run(#"{"a.b":"first","a":{"b":"second"}}"#) == ["first", "-", "-", "-", "-"])
        #expect(run(#"{"\u0061":{"b":2}}"#) == ["2", "-", "-", "-", "-"])
        #expect(run(#"{"a":{"b":1}"#) == ["!", "!", "!", "!", "!"])
        #expect(run(#"["a"]"#) == ["!", "!", "!", "!", "!"])
    }

    @Test("parse errors name the column", arguments: badQueries)
    func badQuery(_ text: String, _ column: Int) throws {
        do {
            _ = try LogsQuery.parse(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.column == column, "\(error)")
        }
    }

    @Test("time range and log group options are pushed down to SQL")
    func pushdown() throws {
        let store = try SQLiteStore(path: Self.store)
        let start = Array("2026-11-24T10:05:00Z".utf8).withUnsafeBytes { Timestamps.parseISO8601($0) }!
        let result = try StoreQuery(store: store, LogQueryRequest(text: "stats count(*)", start: start, logGroups: ["/web"], now: 0)).run()
        #expect(result.rows.first?.first?.stringValue == "2")
    }

    @Test("pattern and diff show the miner's final groups: a family merged once its ids proved variable is one row")
    func patternFoldsMergedFamilies() throws {
        func run(_ text: String) throws -> [[String]] {
            let executor = QueryExecutor(query: try LogsQuery.parse(text), now: 0)
            for i in 0..<40 {
                // Ids glued to words stay literal until the position shows enough distinct values, then the
                // sibling templates seen so far merge into one.
                try executor.push(QueryRow.event(timestamp: Int64(i) * 1000, message: "job job_2015_\(1000 + i) finished",
                                                 logStream: "s", log: "g", ingestionTime: 0))
            }
            return try executor.finish().rows.map { $0.map(\.description) }
        }
        let rows = try run("pattern @message | display @sampleCount, @pattern")
        #expect(rows.count == 1, "\(rows)")
        #expect(rows.first?.first == "40", "\(rows)")
        #expect(rows.first?.last?.contains("<*>") == true, "\(rows)")
    }

    @Test("rows that arrive newest first let `sort @timestamp desc | limit N` stop after N rows, unless @timestamp is replaced")
    func newestFirst() throws {
        func run(_ text: String) throws -> (rows: Int, pushed: Int, first: String?) {
            let executor = QueryExecutor(query: try LogsQuery.parse(text), now: 0)
            executor.inputIsNewestFirst()
            var pushed = 0
            for t in stride(from: Int64(100), to: 0, by: -1) where !executor.isSatisfied {
                try executor.push(QueryRow.event(timestamp: t * 1000, message: "m\(1000 - t)", logStream: "s", log: "g", ingestionTime: 0))
                pushed += 1
            }
            let result = try executor.finish()
            return (result.rows.count, pushed, result.rows.first?.first?.description)
        }
        let early = try run("fields @timestamp, @message | sort @timestamp desc | limit 3")
        #expect(early.rows == 3 && early.pushed <= 4)   // the row after the limit tells it is done
        // A replaced @timestamp must still be sorted for real: every row is read.
        let replaced = try run("fields @message as @timestamp | sort @timestamp desc | limit 3")
        #expect(replaced.rows == 3 && replaced.pushed == 100)
        #expect(replaced.first == "m999")
        let ascending = try run("sort @timestamp asc | limit 3")
        #expect(ascending.pushed == 100)
    }
}
