import Foundation
import Synchronization
import Testing
import LogsQuery
import TrailwatchCore
import TrailwatchStore
import ByteJSON
import TrailwatchTestSupport

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

@Suite("Logs Insights query conformance", .serialized)
struct QueryConformanceTests {
    static var store: String { QueryConformance.sqliteStore }

    static func time(_ text: String) -> Int64 { QueryConformance.time(text) }

    static func run(_ text: String, start: Int64? = nil, end: Int64? = nil) throws -> String {
        let store = try SQLiteStore(path: Self.store)
        let result = try StoreQuery(store: store, LogQueryRequest(text: text, start: start, end: end, logGroups: [], now: 1_795_600_000_000)).run()
        return Self.text(result)
    }

    static func text(_ result: QueryResult) -> String { QueryConformance.text(result) }

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
        let pushed = Atomic<Int>(0)
        let task = Task.detached { () throws -> Int in
            let executor = QueryExecutor(query: query, now: 0, deadline: .after(.seconds(60)))
            var n = 0
            while true {
                try executor.push(QueryRow.event(timestamp: Int64(n), message: "m\(n % 1000)"))
                n += 1
                pushed.store(n, ordering: .relaxed)
                if n > 50_000_000 { return n }
            }
        }
        #expect(await eventually(30) { pushed.load(ordering: .relaxed) > 1000 })
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
