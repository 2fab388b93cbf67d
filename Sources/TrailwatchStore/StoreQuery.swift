import Foundation
import LogsQuery

/// Runs a Logs-Insights-style query against the store: the time range, log groups, `SOURCE` prefixes
/// and the query's scan hints (``ScanHints``: texts its leading filters need) become SQL over the
/// (log_group, timestamp) index; the rest of the query runs in ``QueryExecutor`` over the streamed raw
/// rows, which discovers JSON fields lazily and keeps bounded state.
///
/// Time limit: ``run(deadline:)`` stops with ``StoreErrorOrQuery/run(_:)`` (``QueryRunError/timedOut(after:)``)
/// when the deadline passes — checked every 1,024 rows, and inside SQLite while it aggregates — and with
/// ``QueryRunError/cancelled`` when the Swift task running it is cancelled. It is synchronous: run it off
/// an event loop (e.g. in a task on a thread pool) and cancel that task to stop it.
public struct StoreQuery {
    public var text: String
    public var start: Int64?
    public var end: Int64?
    public var logGroups: [String]
    public var now: Int64

    /// What the query pushes down to SQL: the conditions (with `?T<n>`/`?N<n>` placeholders) and their bindings.
    struct Pushdown {
        var clauses: [String] = []
        var texts: [String] = []
        var numbers: [Int64] = []

        /// ` WHERE …` with `extra` conditions added, or nothing.
        func whereClause(_ extra: String...) -> String {
            let all = clauses + extra
            return all.isEmpty ? "" : " WHERE " + all.joined(separator: " AND ")
        }

        mutating func text(_ value: String) -> String {
            texts.append(value)
            return "?T\(texts.count)"
        }

        mutating func number(_ value: Int64) -> String {
            numbers.append(value)
            return "?N\(numbers.count)"
        }
    }

    static let rowColumns = "timestamp, ingestion_time, log_group, log_stream, message, fields"

    static func pushdown(_ query: Query, start: Int64?, end: Int64?, logGroups: [String]) -> Pushdown {
        var p = Pushdown()
        if let start { p.clauses.append("timestamp >= \(p.number(start))") }
        if let end { p.clauses.append("timestamp < \(p.number(end))") }
        if !logGroups.isEmpty {
            p.clauses.append("log_group IN (" + logGroups.map { p.text($0) }.joined(separator: ",") + ")")
        }
        let hints = query.scanHints
        if let prefixes = hints.logGroupPrefixes {
            p.clauses.append("(" + prefixes.map { "substr(log_group, 1, \($0.utf8.count)) = \(p.text($0))" }.joined(separator: " OR ") + ")")
        }
        for needle in hints.messageContains { p.clauses.append("tw_has(message, \(p.text(needle)))") }
        for needle in hints.fieldTextContains {
            // The text is in the message or the stored fields, unless JSON escapes spell it differently.
            let n = p.text(needle)
            p.clauses.append("(tw_has_or_escape(message, \(n)) OR tw_has_or_escape(fields, \(n)))")
        }
        return p
    }

    /// `[filter @message like "…" |]… stats count(*) [, …] by bin(P) / @log / @logStream` runs as
    /// one SQL GROUP BY over the index; the rest of the query runs on the grouped rows.
    private func aggregateInSQL(_ query: Query, _ executor: QueryExecutor, _ pushed: Pushdown) throws(StoreErrorOrQuery) -> Bool {
        guard let statsIndex = query.commands.firstIndex(where: { if case .stats = $0 { return true }; return false }),
              case .stats(let stats) = query.commands[statsIndex] else { return false }
        // Everything before must be filters that are exactly substring tests on @message.
        for command in query.commands[..<statsIndex] {
            guard case .filter(let expr) = command, StoreQuery.isPureSubstringFilter(expr) else { return false }
        }
        guard stats.aggregates.allSatisfy({ $0.function == .count && $0.argument == nil }) else { return false }
        var groupSQL: [String] = []
        for group in stats.groups {
            switch group.expr {
            case .field(SystemField.log): groupSQL.append("log_group")
            case .field(SystemField.logStream): groupSQL.append("log_stream")
            case .call(.bin, let args) where args.count == 1:
                guard case .period(let period) = args[0], let ms = period.fixedMilliseconds, ms > 0, period.unit != .week else { return false }
                groupSQL.append("(timestamp - ((timestamp % \(ms)) + \(ms)) % \(ms))")
            default: return false
            }
        }
        let selectList = (groupSQL + ["count(*)"]).joined(separator: ", ")
        var sql = "SELECT \(selectList) FROM log_events\(pushed.whereClause())"
        if !groupSQL.isEmpty { sql += " GROUP BY " + (1...groupSQL.count).map(String.init).joined(separator: ", ") }
        let statement: Statement
        do { statement = try prepareBound(sql, pushed.texts, pushed.numbers) } catch { throw .store(error) }
        executor.skipStats(at: statsIndex)
        var sawAny = false
        try step(statement, executor) { () throws(QueryRunError) -> Bool in
            sawAny = true
            var groups: [QueryValue] = []
            for (k, group) in stats.groups.enumerated() {
                if case .call(.bin, _) = group.expr { groups.append(.timestamp(statement.int(Int32(k)))) } else {
                    groups.append(statement.text(Int32(k)).map { .string($0) } ?? .null)
                }
            }
            let count = QueryValue.number(Double(statement.int(Int32(stats.groups.count))))
            try executor.pushAggregated(statsAt: statsIndex, groups: groups, aggregates: Array(repeating: count, count: stats.aggregates.count))
            return true
        }
        if !sawAny && stats.groups.isEmpty {
            do {
                try executor.pushAggregated(statsAt: statsIndex, groups: [],
                                            aggregates: Array(repeating: .number(0), count: stats.aggregates.count))
            } catch { throw .run(error) }
        }
        return true
    }

    static func isPureSubstringFilter(_ expr: Expr) -> Bool {
        switch expr {
        case .like(.field(SystemField.message), .substring, negated: false): return true
        case .binary(.and, let a, let b): return isPureSubstringFilter(a) && isPureSubstringFilter(b)
        default: return false
        }
    }

    /// Steps `statement` to the end (or until `row` returns false), SQLite checking the executor's deadline
    /// while it works, and maps errors.
    private func step(_ statement: Statement, _ executor: QueryExecutor,
                      _ row: () throws(QueryRunError) -> Bool) throws(StoreErrorOrQuery) {
        var stoppedBy: QueryRunError?
        let result: Result<Void, StoreErrorOrQuery> = database.interruptible({
            do throws(QueryRunError) { try executor.checkLimits(); return false } catch { stoppedBy = error; return true }
        }) {
            do {
                while try statement.step() {
                    if try !row() { break }
                }
                return .success(())
            } catch let error as QueryRunError {
                return .failure(.run(error))
            } catch let error as StoreError {
                return .failure(.store(error))
            } catch {
                return .failure(.store(StoreError("\(error)")))
            }
        }
        if let stoppedBy { throw .run(stoppedBy) }
        try result.get()
    }

    /// One newest-first statement per log group (at most 256 groups; nil beyond), each walking the
    /// (log_group, timestamp) index backwards.
    private func newestFirstPerGroup(_ pushed: Pushdown) throws(StoreError) -> [Statement]? {
        let groups = try database.prepare("SELECT DISTINCT log_group FROM log_streams")
        var names: [String] = []
        while try groups.step() { if let name = groups.text(0) { names.append(name) } }
        guard names.count <= 256 else { return nil }
        let sql = "SELECT \(StoreQuery.rowColumns), id FROM log_events"
            + pushed.whereClause("log_group = ?T\(pushed.texts.count + 1)") + " ORDER BY timestamp DESC, event_key DESC"
        return try names.map { name throws(StoreError) in try prepareBound(sql, pushed.texts + [name], pushed.numbers) }
    }

    /// Prepares SQL written with `?T<n>` (text) and `?N<n>` (number) placeholders.
    private func prepareBound(_ sql: String, _ texts: [String], _ numbers: [Int64]) throws(StoreError) -> Statement {
        var bound = sql
        var order: [(isText: Bool, index: Int)] = []
        while let range = bound.range(of: #"\?[TN][0-9]+"#, options: .regularExpression) {
            let token = bound[range]
            order.append((token.dropFirst().first == "T", Int(token.dropFirst(2))! - 1))
            bound.replaceSubrange(range, with: "?")
        }
        let statement = try database.prepare(bound)
        for (k, slot) in order.enumerated() {
            if slot.isText { statement.bind(Int32(k + 1), texts[slot.index]) } else { statement.bind(Int32(k + 1), numbers[slot.index]) }
        }
        return statement
    }

    /// Runs the query. `deadline` defaults to ``QueryLimits/defaultTimeout`` from now; pass nil for none.
    public func run(deadline: QueryDeadline? = .after(QueryLimits.defaultTimeout)) throws(StoreErrorOrQuery) -> QueryResult {
        let query: Query
        do { query = try LogsQuery.parse(text) } catch { throw .query(error) }
        database.registerSearchFunctions()
        let executor = QueryExecutor(query: query, now: now, deadline: deadline)
        do {
            executor.timeRange = try timeRange()
        } catch { throw .store(error) }
        let pushed = StoreQuery.pushdown(query, start: start, end: end, logGroups: logGroups)
        if query.needsPreviousRange {
            guard let start, let end, end > start else {
                let column = (text.range(of: "diff", options: .caseInsensitive).map { text.distance(from: text.startIndex, to: $0.lowerBound) } ?? 0) + 1
                throw .run(.invalid(QueryParseError(column: column, message: "diff compares the range with the one before it: give the query a start and an end time")))
            }
            // The previous range of the same length feeds the patterns first.
            let previous = StoreQuery.pushdown(query, start: start - (end - start), end: start, logGroups: logGroups)
            executor.beginPreviousRange()
            try scan(executor, previous, ordered: false)
            executor.endPreviousRange()
        }
        if try aggregateInSQL(query, executor, pushed) {
            do { return try executor.finish() } catch { throw .run(error) }
        }
        try scan(executor, pushed, ordered: executor.needsTimeOrder)
        do { return try executor.finish() } catch { throw .run(error) }
    }

    /// Feeds the events matching `pushed` to the executor; newest first when `ordered`.
    private func scan(_ executor: QueryExecutor, _ pushed: Pushdown, ordered: Bool) throws(StoreErrorOrQuery) {
        func push(_ statement: Statement) throws(QueryRunError) {
            let empty = UnsafeRawBufferPointer(start: nil, count: 0)
            try executor.push(event: LogEventInput(
                timestamp: statement.int(0), ingestionTime: statement.int(1),
                logGroup: statement.bytes(2) ?? empty, logStream: statement.bytes(3) ?? empty,
                message: statement.bytes(4) ?? empty, fields: statement.bytes(5)))
        }
        if !ordered {
            let sql = "SELECT \(StoreQuery.rowColumns) FROM log_events\(pushed.whereClause())"
            let statement: Statement
            do { statement = try prepareBound(sql, pushed.texts, pushed.numbers) } catch { throw .store(error) }
            try step(statement, executor) { () throws(QueryRunError) -> Bool in
                try push(statement)
                return true
            }
            return
        }
        // The rows below come newest first.
        executor.inputIsNewestFirst()
        let streams: [Statement]?
        do {
            streams = executor.canStopEarly && logGroups.isEmpty ? try newestFirstPerGroup(pushed) : nil
        } catch { throw .store(error) }
        if let streams {
            // Each group's rows come newest first off its (log_group, timestamp) index; merging
            // them gives the newest rows of all without sorting the table.
            var heads: [Statement] = []
            do throws(StoreError) {
                for statement in streams where try statement.step() { heads.append(statement) }
            } catch { throw .store(error) }
            do {
                while !heads.isEmpty && !executor.isSatisfied {
                    var newest = 0
                    for k in heads.indices.dropFirst() where (heads[k].int(0), heads[k].int(6)) > (heads[newest].int(0), heads[newest].int(6)) {
                        newest = k
                    }
                    try push(heads[newest])
                    if try !heads[newest].step() { heads.remove(at: newest) }
                }
            } catch let error as QueryRunError { throw .run(error) } catch let error as StoreError { throw .store(error) } catch {
                throw .store(StoreError("\(error)"))
            }
            return
        }
        let sql = "SELECT \(StoreQuery.rowColumns) FROM log_events\(pushed.whereClause()) ORDER BY timestamp DESC, id DESC"
        let statement: Statement
        do { statement = try prepareBound(sql, pushed.texts, pushed.numbers) } catch { throw .store(error) }
        try step(statement, executor) { () throws(QueryRunError) -> Bool in
            try push(statement)
            return !executor.isSatisfied
        }
    }

    /// The query's time range: the one asked for, else the span of the stored events.
    private func timeRange() throws(StoreError) -> Range<Int64>? {
        if let start, let end, end > start { return start..<end }
        let statement = try database.prepare("SELECT min(first_event), max(last_event) FROM log_streams")
        guard try statement.step(), statement.text(0) != nil else { return nil }
        let lower = start ?? statement.int(0), upper = end ?? (statement.int(1) + 1)
        return upper > lower ? lower..<upper : nil
    }

    let database: SQLiteDatabase

    public init(store: SQLiteStore, _ request: LogQueryRequest) {
        self.database = store.db
        self.text = request.text
        self.start = request.start
        self.end = request.end
        self.logGroups = request.logGroups
        self.now = request.now
    }
}

extension SQLiteStore {
    public func query(_ request: LogQueryRequest) throws(StoreErrorOrQuery) -> QueryResult {
        try StoreQuery(store: self, request).run(deadline: request.deadline)
    }
}

public enum StoreErrorOrQuery: Error, CustomStringConvertible {
    case store(StoreError)
    case query(QueryParseError)
    /// The query parsed but stopped: time limit, cancellation, a bound, or it cannot run as asked.
    case run(QueryRunError)
    public var description: String {
        switch self {
        case .store(let e): "\(e)"
        case .query(let e): "\(e)"
        case .run(let e): "\(e)"
        }
    }
}
