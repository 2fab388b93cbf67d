import LogsQuery
import NIOCore
import PostgresNIO
import TrailwatchStore

/// Logs-Insights-style queries on PostgreSQL. What translates to SQL runs there: the time range
/// and log groups; leading `filter`s on `@log`, `@logStream` and `@message like "…"` (with
/// `and`, `or`, `not`, `in`); `stats count(*) by bin(…)`, `@log`, `@logStream` after exactly
/// translated filters, as one `GROUP BY`; and `sort @timestamp desc | limit N` as newest-first
/// reads of the (timestamp, event_key) index in pages that stop at the limit. Everything else —
/// JSON fields, `parse`, other aggregates, any command the language gains — runs in process
/// over those rows, exactly as on SQLite, so every query works on both.
struct PostgresLogQuery {
    let store: PostgresStore
    let request: LogQueryRequest

    /// SQL conditions with their binds; `exact` when they say all the filter says.
    struct Conditions {
        var sql: [String] = []
        var binds = PostgresBindings()
        var exact = true

        mutating func bind(_ value: some PostgresDynamicTypeEncodable) -> String {
            binds.append(value)
            return "$\(binds.count)"
        }

        var whereClause: String { sql.isEmpty ? "" : " WHERE " + sql.joined(separator: " AND ") }
    }

    func run() async throws(StoreErrorOrQuery) -> QueryResult {
        let query: Query
        do { query = try LogsQuery.parse(request.text) } catch { throw .query(error) }
        let executor = QueryExecutor(query: query, now: request.now, deadline: request.deadline)
        do { executor.timeRange = try await timeRange() } catch { throw .store(error) }
        let conditions = Self.pushdown(query, start: request.start, end: request.end, logGroups: request.logGroups)
        if query.needsPreviousRange {
            guard let start = request.start, let end = request.end, end > start else {
                let column = (request.text.range(of: "diff", options: .caseInsensitive).map { request.text.distance(from: request.text.startIndex, to: $0.lowerBound) } ?? 0) + 1
                throw .run(.invalid(QueryParseError(column: column, message: "diff compares the range with the one before it: give the query a start and an end time")))
            }
            // The previous range of the same length feeds the patterns first.
            executor.beginPreviousRange()
            try await scan(executor, Self.pushdown(query, start: start - (end - start), end: start, logGroups: request.logGroups), ordered: false)
            executor.endPreviousRange()
        }
        if try await aggregate(query, conditions, executor) {
            do { return try executor.finish() } catch { throw .run(error) }
        }
        try await scan(executor, conditions, ordered: executor.needsTimeOrder)
        do { return try executor.finish() } catch { throw .run(error) }
    }

    /// The time range, log groups, the query's scan hints and its leading filters as SQL conditions.
    static func pushdown(_ query: Query, start: Int64?, end: Int64?, logGroups: [String]) -> Conditions {
        var c = Conditions()
        if let start { c.sql.append("timestamp >= \(c.bind(start))") }
        if let end { c.sql.append("timestamp < \(c.bind(end))") }
        if !logGroups.isEmpty { c.sql.append("log_group = ANY(\(c.bind(logGroups))::text[])") }
        let hints = query.scanHints
        if let prefixes = hints.logGroupPrefixes {
            c.sql.append("(" + prefixes.map { "starts_with(log_group, \(c.bind($0)))" }.joined(separator: " OR ") + ")")
            c.exact = false
        }
        for needle in hints.messageContains { c.sql.append("strpos(message, \(c.bind(needle))) > 0") }
        for needle in hints.fieldTextContains {
            // The text is in the message or the stored fields, unless JSON escapes spell it differently.
            let n = c.bind(needle)
            c.sql.append("(strpos(message, \(n)) > 0 OR strpos(message, '\\') > 0 OR strpos(fields, \(n)) > 0 OR strpos(fields, '\\') > 0)")
        }
        // Leading filters (before anything that could redefine a system field).
        for command in query.commands {
            if case .filter(let expr) = command {
                var exact = true
                if let sql = translate(expr, &c, exact: &exact) { c.sql.append(sql) } else { exact = false }
                if !exact { c.exact = false }
                continue
            }
            if case .fields(let projections) = command, !projections.contains(where: { $0.name.hasPrefix("@") }) {
                c.exact = false   // what follows may read the new fields: only the in-process path knows them
                continue
            }
            break
        }
        return c
    }

    /// The query's time range: the one asked for, else the span of the stored events.
    private func timeRange() async throws(StoreError) -> Range<Int64>? {
        if let start = request.start, let end = request.end, end > start { return start..<end }
        let rows = try await store.run("SELECT min(first_event), max(last_event) FROM log_streams")
        guard let row = rows.first, case let (first?, last?) = try store.decode(row, (Int64?, Int64?).self) else { return nil }
        let lower = request.start ?? first, upper = request.end ?? (last + 1)
        return upper > lower ? lower..<upper : nil
    }

    /// A filter expression as an SQL condition the filter implies (nil when nothing sound can be said).
    /// `exact` turns false when the condition keeps rows the filter would drop.
    static func translate(_ expr: Expr, _ c: inout Conditions, exact: inout Bool) -> String? {
        func column(_ e: Expr) -> String? {
            guard case .field(let name) = e else { return nil }
            switch name {
            case SystemField.log: return "log_group"
            case SystemField.logStream: return "log_stream"
            default: return nil
            }
        }
        func text(_ e: Expr) -> String? {
            if case .literal(.string(let s)) = e { return s }
            return nil
        }
        switch expr {
        case .like(.field(SystemField.message), .substring(let needle), let negated):
            return "strpos(message, \(c.bind(needle))) \(negated ? "=" : ">") 0"
        case .like(let field, .substring(let needle), let negated) where column(field) != nil:
            return "strpos(\(column(field)!), \(c.bind(needle))) \(negated ? "=" : ">") 0"
        case .binary(let op, let a, let b) where op == .equal || op == .notEqual:
            if let col = column(a), let value = text(b) { return "\(col) \(op == .equal ? "=" : "<>") \(c.bind(value))" }
            if let col = column(b), let value = text(a) { return "\(col) \(op == .equal ? "=" : "<>") \(c.bind(value))" }
            return nil
        case .inList(let field, let items, let negated):
            guard let col = column(field) else { return nil }
            let values = items.compactMap(text)
            guard values.count == items.count else { return nil }
            return "\(negated ? "NOT " : "")\(col) = ANY(\(c.bind(values))::text[])"
        case .binary(.and, let a, let b):
            var exactA = true, exactB = true
            let left = translate(a, &c, exact: &exactA), right = translate(b, &c, exact: &exactB)
            if !(exactA && exactB && left != nil && right != nil) { exact = false }
            switch (left, right) {
            case (let l?, let r?): return "(\(l) AND \(r))"
            case (let l?, nil): return l
            case (nil, let r?): return r
            default: return nil
            }
        case .binary(.or, let a, let b):
            var exactA = true, exactB = true
            guard let left = translate(a, &c, exact: &exactA), let right = translate(b, &c, exact: &exactB) else { return nil }
            if !(exactA && exactB) { exact = false }
            return "(\(left) OR \(right))"
        case .unary(.not, let inner):
            var innerExact = true
            guard let sql = translate(inner, &c, exact: &innerExact), innerExact else { return nil }
            return "NOT (\(sql))"
        default:
            return nil
        }
    }

    /// `stats count(*) [, …] by bin(P) / @log / @logStream` after exactly translated filters, as one
    /// GROUP BY; false when the query does not have that shape.
    private func aggregate(_ query: Query, _ conditions: Conditions, _ executor: QueryExecutor) async throws(StoreErrorOrQuery) -> Bool {
        guard conditions.exact,
              let index = query.commands.firstIndex(where: { if case .stats = $0 { return true }; return false }),
              case .stats(let stats) = query.commands[index],
              query.commands[..<index].allSatisfy({ if case .filter = $0 { return true }; return false }),
              stats.aggregates.allSatisfy({ $0.function == .count && $0.argument == nil }) else { return false }
        var groupSQL: [String] = []
        for group in stats.groups {
            switch group.expr {
            case .field(SystemField.log): groupSQL.append("log_group")
            case .field(SystemField.logStream): groupSQL.append("log_stream")
            case .call(.bin, let args) where args.count == 1:
                guard case .period(let period) = args[0], let ms = period.fixedMilliseconds, ms > 0, period.unit != .week else { return false }
                groupSQL.append("(timestamp - mod(mod(timestamp, \(ms)) + \(ms), \(ms)))")
            default: return false
            }
        }
        let select = (groupSQL + ["count(*)"]).joined(separator: ", ")
        var sql = "SELECT \(select) FROM log_events\(conditions.whereClause)"
        if !groupSQL.isEmpty {
            let positions = (1...groupSQL.count).map(String.init).joined(separator: ", ")
            sql += " GROUP BY \(positions) ORDER BY \(positions)"
        }
        let rows: [PostgresRow]
        do { rows = try await store.run(sql, conditions.binds) } catch { throw .store(error) }
        executor.skipStats(at: index)
        do {
            for row in rows {
                var values: [QueryValue] = []
                var cells = row.makeIterator()
                for group in stats.groups {
                    guard let cell = cells.next() else { break }
                    if case .call(.bin, _) = group.expr {
                        values.append(.timestamp((try? cell.decode(Int64.self)) ?? 0))
                    } else {
                        values.append((try? cell.decode(String?.self)).flatMap { $0 }.map { .string($0) } ?? .null)
                    }
                }
                let count = QueryValue.number(Double(cells.next().flatMap { try? $0.decode(Int64.self) } ?? 0))
                try executor.pushAggregated(statsAt: index, groups: values, aggregates: Array(repeating: count, count: stats.aggregates.count))
            }
            if rows.isEmpty && stats.groups.isEmpty {
                try executor.pushAggregated(statsAt: index, groups: [], aggregates: Array(repeating: .number(0), count: stats.aggregates.count))
            }
        } catch { throw .run(error) }
        return true
    }

    /// Feeds the matching events to the executor. Ordered: newest first, in keyset pages over the
    /// (timestamp, event_key) index until the executor has what it needs (pages grow, so a
    /// `limit 20` reads little). Unordered: one streamed scan.
    private func scan(_ executor: QueryExecutor, _ conditions: Conditions, ordered: Bool) async throws(StoreErrorOrQuery) {
        let columns = "SELECT timestamp, ingestion_time, log_group, log_stream, message, fields, event_key FROM log_events"
        if !ordered {
            do {
                try await store.stream(columns + conditions.whereClause, conditions.binds) { row throws(QueryRunError) in
                    try push(row, executor)
                    return true
                }
            } catch let error as QueryRunError { throw .run(error) } catch let error as StoreError { throw .store(error) } catch {
                throw .store(StoreError("\(error)"))
            }
            return
        }
        executor.inputIsNewestFirst()
        var cursor: (Int64, Int64)?
        var pageSize: Int64 = executor.canStopEarly ? 100 : 20_000
        while !executor.isSatisfied {
            var page = conditions
            if let cursor { page.sql.append("(timestamp, event_key) < (\(page.bind(cursor.0)), \(page.bind(cursor.1)))") }
            let sql = columns + page.whereClause + " ORDER BY timestamp DESC, event_key DESC LIMIT \(page.bind(pageSize))"
            let rows: [PostgresRow]
            do { rows = try await store.run(sql, page.binds) } catch { throw .store(error) }
            do {
                for row in rows {
                    cursor = try push(row, executor)
                    if executor.isSatisfied { return }
                }
            } catch { throw .run(error) }
            if Int64(rows.count) < pageSize { return }
            pageSize = min(pageSize * 4, 50_000)
        }
    }

    /// One row to the executor, its text columns as the bytes the server sent (no String made);
    /// returns its (timestamp, event_key).
    @discardableResult
    private func push(_ row: PostgresRow, _ executor: QueryExecutor) throws(QueryRunError) -> (Int64, Int64) {
        var cells = row.makeIterator()
        let time = cells.next().flatMap { try? $0.decode(Int64.self) } ?? 0
        let ingestion = cells.next().flatMap { try? $0.decode(Int64.self) } ?? 0
        let group = cells.next()?.bytes, stream = cells.next()?.bytes, message = cells.next()?.bytes, fields = cells.next()?.bytes
        let key = cells.next().flatMap { try? $0.decode(Int64.self) } ?? 0
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        func bytes<T>(_ buffer: NIOCore.ByteBuffer?, _ body: (UnsafeRawBufferPointer?) throws(QueryRunError) -> T) throws(QueryRunError) -> T {
            guard let buffer else { return try body(nil) }
            let result: Result<T, QueryRunError> = buffer.withUnsafeReadableBytes { raw in
                do throws(QueryRunError) { return .success(try body(raw)) } catch { return .failure(error) }
            }
            return try result.get()
        }
        try bytes(group) { g throws(QueryRunError) in
            try bytes(stream) { s throws(QueryRunError) in
                try bytes(message) { m throws(QueryRunError) in
                    try bytes(fields) { f throws(QueryRunError) in
                        try executor.push(event: LogEventInput(timestamp: time, ingestionTime: ingestion, logGroup: g ?? empty,
                                                               logStream: s ?? empty, message: m ?? empty, fields: f))
                    }
                }
            }
        }
        return (time, key)
    }
}

extension PostgresStore {
    public func query(_ request: LogQueryRequest) async throws(StoreErrorOrQuery) -> QueryResult {
        try await PostgresLogQuery(store: self, request: request).run()
    }
}
