import Foundation
import Testing
import LogsQuery
import TrailwatchCore
import TrailwatchStore

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

    """)

/// Query, then the expected rows: cells joined by ",", rows by ";" (numbers as written, times in ISO 8601).
let queryCases: [(String, String)] = [
    ("stats count(*)", "10"),
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
    ("filter not ispresent(latency) | stats count(*)", "4"),
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
    ("stats count(*) as n by bin(5m) as t | sort t asc", "2026-11-24T10:00:00.000Z,6;2026-11-24T10:05:00.000Z,4"),
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
    ("stats count(*) by @log | sort @log asc", "/app,6;/web,4"),
    ("filter @log = \"/app\" | stats count(*) as n, sum(latency) as s by level | sort s desc", "ERROR,2,800;INFO,3,450;WARN,1,50"),
    ("filter @log = \"/app\" | stats sum(latency) / count(*) as mean", "216.66666666666666"),
    ("filter @log = \"/app\" | filter latency > 100 | filter level = \"INFO\" | fields path | sort @timestamp asc", "/a;/b"),
    ("filter @log = \"/app\" | fields latency > 150 as slow | filter slow | stats count(*)", "3"),
    ("fields @timestamp | sort @timestamp desc | limit 1", "2026-11-24T10:09:30.000Z"),
    ("filter @log = \"/app\" | stats max(@timestamp)", "2026-11-24T10:07:00.000Z"),
    ("filter @log = \"/app\" and datefloor(@timestamp, 1h) = datefloor(@timestamp, 1h) | stats count(*)", "6"),
]

/// Queries the parser must reject, with the column it points at.
let badQueries: [(String, Int)] = [
    ("filter x = | limit 2", 12),
    ("stats count(* by level", 15),
    ("sort", 5),
    ("limit banana", 7),
    ("frobnicate x", 1),
]

@Suite("Logs Insights query conformance", .serialized)
struct QueryConformanceTests {
    static let store: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("trailwatch-query-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: dir + "/app.log", contents: Data(queryDataset.app.utf8))
        FileManager.default.createFile(atPath: dir + "/web.log", contents: Data(queryDataset.web.utf8))
        let yaml = """
            sources:
              app: { type: file, include: \(dir)/app.log, log_group: /app, log_stream: a, timestamp: { field: $.t } }
              web: { type: file, include: \(dir)/web.log, log_group: /web, log_stream: w, timestamp: { regex: '^([^ ]+)' } }
            sinks:
              db: { type: sqlite, inputs: [app, web], path: \(dir)/store.db }
            """
        let semaphore = DispatchSemaphore(value: 0)
        Task.detached {
            _ = try? await runOnce(yaml)
            semaphore.signal()
        }
        semaphore.wait()
        return dir + "/store.db"
    }()

    static func run(_ text: String) throws -> String {
        let store = try SQLiteStore(path: Self.store)
        let result = try StoreQuery(store: store, LogQueryRequest(text: text, now: 1_795_600_000_000)).run()
        return result.rows.map { row in
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

    @Test("rows that arrive newest first let `sort @timestamp desc | limit N` stop after N rows, unless @timestamp is replaced")
    func newestFirst() throws {
        func run(_ text: String) throws -> (rows: Int, pushed: Int, first: String?) {
            let executor = QueryExecutor(query: try LogsQuery.parse(text), now: 0)
            executor.inputIsNewestFirst()
            var pushed = 0
            for t in stride(from: Int64(100), to: 0, by: -1) where !executor.isSatisfied {
                executor.push(QueryRow.event(timestamp: t * 1000, message: "m\(1000 - t)", logStream: "s", log: "g", ingestionTime: 0))
                pushed += 1
            }
            let result = executor.finish()
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
