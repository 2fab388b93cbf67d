import ByteJSON
import Foundation
import LogsQuery

/// Runs a Logs-Insights-style query against the store: the time range, log groups and leading
/// `@message like "…"` filters become SQL (using the (log_group, timestamp) index); the rest of
/// the query runs over the streamed rows with bounded state.
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
    }

    static let rowColumns = "timestamp, ingestion_time, log_group, log_stream, message, fields"

    static func pushdown(_ query: Query, start: Int64?, end: Int64?, logGroups: [String]) -> Pushdown {
        var p = Pushdown()
        if let start { p.clauses.append("timestamp >= ?N\(p.numbers.count + 1)"); p.numbers.append(start) }
        if let end { p.clauses.append("timestamp < ?N\(p.numbers.count + 1)"); p.numbers.append(end) }
        if !logGroups.isEmpty {
            p.clauses.append("log_group IN (" + logGroups.map { _ in p.texts.append(""); return "?T\(p.texts.count)" }.joined(separator: ",") + ")")
            p.texts = logGroups
        }
        for command in query.commands {
            guard case .filter(let expr) = command else {
                if case .fields = command { continue }
                break
            }
            // Only conjunctions of plain substring tests on @message are pushed; the filter still runs after.
            for needle in substringNeedles(expr) {
                p.texts.append(needle)
                p.clauses.append("instr(message, ?T\(p.texts.count)) > 0")
            }
        }
        return p
    }

    /// `[filter @message like "…" |]… stats count(*) [, …] by bin(P) / @log / @logStream` runs as
    /// one SQL GROUP BY over the index; the rest of the query runs on the grouped rows.
    private func aggregateInSQL(_ query: Query, _ executor: QueryExecutor) throws(StoreErrorOrQuery) -> QueryResult? {
        guard let statsIndex = query.commands.firstIndex(where: { if case .stats = $0 { return true }; return false }),
              case .stats(let stats) = query.commands[statsIndex] else { return nil }
        // Everything before must be filters that are exactly substring tests on @message.
        for command in query.commands[..<statsIndex] {
            guard case .filter(let expr) = command, StoreQuery.isPureSubstringFilter(expr) else { return nil }
        }
        guard stats.aggregates.allSatisfy({ $0.function == .count && $0.argument == nil }) else { return nil }
        var groupSQL: [String] = []
        for group in stats.groups {
            switch group.expr {
            case .field(SystemField.log): groupSQL.append("log_group")
            case .field(SystemField.logStream): groupSQL.append("log_stream")
            case .call(.bin, let args) where args.count == 1:
                guard case .period(let period) = args[0], let ms = period.fixedMilliseconds, ms > 0 else { return nil }
                groupSQL.append("(timestamp - ((timestamp % \(ms)) + \(ms)) % \(ms))")
            default: return nil
            }
        }
        let pushed = StoreQuery.pushdown(query, start: start, end: end, logGroups: logGroups)
        let selectList = (groupSQL + ["count(*)"]).joined(separator: ", ")
        var sql = "SELECT \(selectList) FROM log_events\(pushed.whereClause())"
        if !groupSQL.isEmpty { sql += " GROUP BY " + (1...groupSQL.count).map(String.init).joined(separator: ", ") }
        do {
            let statement = try prepareBound(sql, pushed.texts, pushed.numbers)
            executor.skipStats(at: statsIndex)
            var sawAny = false
            while try statement.step() {
                sawAny = true
                var row: QueryRow = [:]
                for (k, group) in stats.groups.enumerated() {
                    if case .call(.bin, _) = group.expr { row[group.name] = .timestamp(statement.int(Int32(k))) } else {
                        row[group.name] = statement.text(Int32(k)).map { .string($0) } ?? .null
                    }
                }
                let count = QueryValue.number(Double(statement.int(Int32(stats.groups.count))))
                let aggregates = Array(repeating: count, count: stats.aggregates.count)
                for p in stats.outputs { row[p.name] = executor.evaluate(p.expr, row, aggregates: aggregates) }
                executor.push(row, after: statsIndex)
            }
            if !sawAny && stats.groups.isEmpty {
                var row: QueryRow = [:]
                let zero = Array(repeating: QueryValue.number(0), count: stats.aggregates.count)
                for p in stats.outputs { row[p.name] = executor.evaluate(p.expr, row, aggregates: zero) }
                executor.push(row, after: statsIndex)
            }
        } catch { throw .store(error) }
        return executor.finish()
    }

    static func isPureSubstringFilter(_ expr: Expr) -> Bool {
        switch expr {
        case .like(.field(SystemField.message), .substring, negated: false): return true
        case .binary(.and, let a, let b): return isPureSubstringFilter(a) && isPureSubstringFilter(b)
        default: return false
        }
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

    static func substringNeedles(_ expr: Expr) -> [String] {
        switch expr {
        case .like(.field(SystemField.message), .substring(let text), negated: false): return [text]
        case .binary(.and, let a, let b): return substringNeedles(a) + substringNeedles(b)
        default: return []
        }
    }

    public func run() throws(StoreErrorOrQuery) -> QueryResult {
        let query: Query
        do { query = try LogsQuery.parse(text) } catch { throw .query(error) }
        let executor = QueryExecutor(query: query, now: now)
        if let result = try aggregateInSQL(query, executor) { return result }
        // The rows below come newest first.
        executor.inputIsNewestFirst()
        let referenced = executor.referencedFields.filter { !$0.hasPrefix("@") }
        let pushed = StoreQuery.pushdown(query, start: start, end: end, logGroups: logGroups)
        do {
            func push(_ statement: Statement) {
                let message = statement.text(4) ?? ""
                var row = QueryRow.event(timestamp: statement.int(0), message: message, logStream: statement.text(3),
                                         log: statement.text(2), ingestionTime: statement.int(1))
                if let fields = statement.text(5) { StoreQuery.addJSON(fields, prefix: "", into: &row) }
                if !referenced.isEmpty, referenced.contains(where: { row[$0] == nil }), message.first == "{" {
                    StoreQuery.addJSON(message, prefix: "", into: &row)
                }
                executor.push(row)
            }
            if executor.canStopEarly, logGroups.isEmpty, let streams = try newestFirstPerGroup(pushed) {
                // Each group's rows come newest first off its (log_group, timestamp) index; merging
                // them gives the newest rows of all without sorting the table.
                var heads = try streams.filter { try $0.step() }
                while !heads.isEmpty && !executor.isSatisfied {
                    var newest = 0
                    for k in heads.indices.dropFirst() where (heads[k].int(0), heads[k].int(6)) > (heads[newest].int(0), heads[newest].int(6)) {
                        newest = k
                    }
                    push(heads[newest])
                    if try !heads[newest].step() { heads.remove(at: newest) }
                }
            } else {
                let sql = "SELECT \(StoreQuery.rowColumns) FROM log_events\(pushed.whereClause()) ORDER BY timestamp DESC, id DESC"
                let statement = try prepareBound(sql, pushed.texts, pushed.numbers)
                while try statement.step() {
                    push(statement)
                    if executor.isSatisfied { break }
                }
            }
        } catch let error as StoreError { throw .store(error) } catch { throw .store(StoreError("\(error)")) }
        return executor.finish()
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

    /// Logs Insights discovers the fields of JSON messages, nested ones with dotted names.
    static func addJSON(_ text: String, prefix: String, into row: inout QueryRow) {
        guard let value = try? JSONValue.parse(text), case .object(let members) = value else { return }
        add(members, prefix: prefix, into: &row, depth: 0)
    }

    private static func add(_ members: [JSONMember], prefix: String, into row: inout QueryRow, depth: Int) {
        for member in members {
            let name = prefix + member.key
            switch member.value {
            case .string(let s): row[name] = .string(s)
            case .number(let d, _): row[name] = .number(d)
            case .bool(let b): row[name] = .bool(b)
            case .null: row[name] = .null
            case .object(let inner) where depth < 8: add(inner, prefix: name + ".", into: &row, depth: depth + 1)
            default:
                var out: [UInt8] = []
                JSONWriter.append(member.value, to: &out)
                row[name] = .string(String(decoding: out, as: UTF8.self))
            }
        }
    }
}

extension SQLiteStore {
    public func query(_ request: LogQueryRequest) throws(StoreErrorOrQuery) -> QueryResult {
        try StoreQuery(store: self, request).run()
    }
}

public enum StoreErrorOrQuery: Error, CustomStringConvertible {
    case store(StoreError)
    case query(QueryParseError)
    public var description: String {
        switch self {
        case .store(let e): "\(e)"
        case .query(let e): "\(e)"
        }
    }
}
