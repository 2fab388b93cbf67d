import LogsQuery
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
        let executor = QueryExecutor(query: query, now: request.now)
        var conditions = Conditions()
        if let start = request.start { conditions.sql.append("timestamp >= \(conditions.bind(start))") }
        if let end = request.end { conditions.sql.append("timestamp < \(conditions.bind(end))") }
        if !request.logGroups.isEmpty { conditions.sql.append("log_group = ANY(\(conditions.bind(request.logGroups))::text[])") }
        // Leading filters (before anything that could redefine a system field).
        var leading = 0
        for command in query.commands {
            if case .filter(let expr) = command {
                var exact = true
                if let sql = Self.translate(expr, &conditions, exact: &exact) { conditions.sql.append(sql) } else { exact = false }
                if !exact { conditions.exact = false }
                leading += 1
                continue
            }
            if case .fields(let projections) = command, !projections.contains(where: { $0.name.hasPrefix("@") }) {
                leading += 1
                conditions.exact = false   // a stats after it would need the fields; keep the in-process path
                continue
            }
            break
        }
        do {
            if conditions.exact, leading < query.commands.count, case .stats(let stats) = query.commands[leading],
               try await aggregate(stats, at: leading, conditions, executor) {
                return executor.finish()
            }
            try await stream(query, conditions, executor)
        } catch {
            throw .store(error)
        }
        return executor.finish()
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

    /// `stats count(*) [, …] by bin(P) / @log / @logStream` as one GROUP BY; false when it does not translate.
    private func aggregate(_ stats: Stats, at index: Int, _ conditions: Conditions, _ executor: QueryExecutor) async throws(StoreError) -> Bool {
        guard stats.aggregates.allSatisfy({ $0.function == .count && $0.argument == nil }) else { return false }
        var groupSQL: [String] = []
        for group in stats.groups {
            switch group.expr {
            case .field(SystemField.log): groupSQL.append("log_group")
            case .field(SystemField.logStream): groupSQL.append("log_stream")
            case .call(.bin, let args) where args.count == 1:
                guard case .period(let period) = args[0], let ms = period.fixedMilliseconds, ms > 0 else { return false }
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
        let rows = try await store.run(sql, conditions.binds)
        executor.skipStats(at: index)
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
            let count = cells.next().flatMap { try? $0.decode(Int64.self) } ?? 0
            var out: QueryRow = [:]
            for (group, value) in zip(stats.groups, values) { out[group.name] = value }
            let aggregates = Array(repeating: QueryValue.number(Double(count)), count: stats.aggregates.count)
            for p in stats.outputs { out[p.name] = executor.evaluate(p.expr, out, aggregates: aggregates) }
            executor.push(out, after: index)
        }
        if rows.isEmpty && stats.groups.isEmpty {
            var out: QueryRow = [:]
            let zero = Array(repeating: QueryValue.number(0), count: stats.aggregates.count)
            for p in stats.outputs { out[p.name] = executor.evaluate(p.expr, out, aggregates: zero) }
            executor.push(out, after: index)
        }
        return true
    }

    /// Rows newest first, in keyset pages over the (timestamp, event_key) index, until the
    /// executor has what it needs (pages grow, so a `limit 20` reads little and a scan few pages).
    private func stream(_ query: Query, _ conditions: Conditions, _ executor: QueryExecutor) async throws(StoreError) {
        executor.inputIsNewestFirst()
        let referenced = executor.referencedFields.filter { !$0.hasPrefix("@") }
        var cursor: (Int64, Int64)?
        var pageSize: Int64 = executor.canStopEarly ? 100 : 20_000
        while !executor.isSatisfied {
            var page = conditions
            if let cursor {
                page.sql.append("(timestamp, event_key) < (\(page.bind(cursor.0)), \(page.bind(cursor.1)))")
            }
            let sql = "SELECT timestamp, ingestion_time, log_group, log_stream, message, fields, event_key FROM log_events"
                + page.whereClause + " ORDER BY timestamp DESC, event_key DESC LIMIT \(page.bind(pageSize))"
            let rows = try await store.run(sql, page.binds)
            for row in rows {
                let (t, ingestion, group, logStream, message, fields, key) = try store.decode(row, (Int64, Int64, String, String, String, String?, Int64).self)
                var out = QueryRow.event(timestamp: t, message: message, logStream: logStream, log: group, ingestionTime: ingestion)
                if let fields { StoreQuery.addJSON(fields, prefix: "", into: &out) }
                if !referenced.isEmpty, referenced.contains(where: { out[$0] == nil }), message.first == "{" {
                    StoreQuery.addJSON(message, prefix: "", into: &out)
                }
                executor.push(out)
                cursor = (t, key)
                if executor.isSatisfied { return }
            }
            if Int64(rows.count) < pageSize { return }
            pageSize = min(pageSize * 4, 50_000)
        }
    }
}

extension PostgresStore {
    public func query(_ request: LogQueryRequest) async throws(StoreErrorOrQuery) -> QueryResult {
        try await PostgresLogQuery(store: self, request: request).run()
    }
}
