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

    /// The SQL the query pushes down, and its bindings (exposed for tests and `--explain`).
    static func pushdown(_ query: Query, start: Int64?, end: Int64?, logGroups: [String]) -> (sql: String, texts: [String], numbers: [Int64]) {
        var clauses: [String] = []
        var texts: [String] = []
        var numbers: [Int64] = []
        if let start { clauses.append("timestamp >= ?N\(numbers.count + 1)"); numbers.append(start) }
        if let end { clauses.append("timestamp < ?N\(numbers.count + 1)"); numbers.append(end) }
        if !logGroups.isEmpty {
            clauses.append("log_group IN (" + logGroups.map { _ in texts.append(""); return "?T\(texts.count)" }.joined(separator: ",") + ")")
            texts = logGroups
        }
        for command in query.commands {
            guard case .filter(let expr) = command else {
                if case .fields = command { continue }
                break
            }
            // Only conjunctions of plain substring tests on @message are pushed; the filter still runs after.
            for needle in substringNeedles(expr) {
                texts.append(needle)
                clauses.append("instr(message, ?T\(texts.count)) > 0")
            }
        }
        var sql = "SELECT timestamp, ingestion_time, log_group, log_stream, message, fields FROM log_events"
        if !clauses.isEmpty { sql += " WHERE " + clauses.joined(separator: " AND ") }
        sql += " ORDER BY timestamp DESC, id DESC"
        return (sql, texts, numbers)
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
        let referenced = executor.referencedFields.filter { !$0.hasPrefix("@") }
        let (sql, texts, numbers) = StoreQuery.pushdown(query, start: start, end: end, logGroups: logGroups)
        // Bind numbered placeholders in order of appearance.
        var bound = sql
        var order: [(isText: Bool, index: Int)] = []
        while let range = bound.range(of: #"\?[TN][0-9]+"#, options: .regularExpression) {
            let token = bound[range]
            order.append((token.dropFirst().first == "T", Int(token.dropFirst(2))! - 1))
            bound.replaceSubrange(range, with: "?")
        }
        do {
            let statement = try database.prepare(bound)
            for (k, slot) in order.enumerated() {
                if slot.isText { statement.bind(Int32(k + 1), texts[slot.index]) } else { statement.bind(Int32(k + 1), numbers[slot.index]) }
            }
            while try statement.step() {
                let message = statement.text(4) ?? ""
                var row = QueryRow.event(timestamp: statement.int(0), message: message, logStream: statement.text(3),
                                         log: statement.text(2), ingestionTime: statement.int(1))
                if let fields = statement.text(5) { StoreQuery.addJSON(fields, prefix: "", into: &row) }
                if !referenced.isEmpty, referenced.contains(where: { row[$0] == nil }), message.first == "{" {
                    StoreQuery.addJSON(message, prefix: "", into: &row)
                }
                executor.push(row)
                if executor.isSatisfied { break }
            }
        } catch let error as StoreError { throw .store(error) } catch { throw .store(StoreError("\(error)")) }
        return executor.finish()
    }

    let database: SQLiteDatabase

    public init(store: Store, text: String, start: Int64?, end: Int64?, logGroups: [String], now: Int64) {
        self.database = store.db
        self.text = text
        self.start = start
        self.end = end
        self.logGroups = logGroups
        self.now = now
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
