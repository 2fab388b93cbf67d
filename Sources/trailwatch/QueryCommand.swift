import ArgumentParser
import Foundation
import LogsQuery
import TrailwatchCore
import TrailwatchStages
import TrailwatchStore

/// `trailwatch query`: Logs-Insights-style queries over the store.
struct QueryCommand: AsyncParsableCommand {
    @OptionGroup var logging: LoggingOptions

    static let configuration = CommandConfiguration(
        commandName: "query",
        abstract: "Run a CloudWatch Logs Insights-style query against the store.")

    enum Format: String, ExpressibleByArgument, CaseIterable { case table, json, csv }

    @Argument(help: "The store: an SQLite file (the store sink's path) or a postgres:// URL.")
    var store: String

    @Argument(help: "The query, e.g. 'filter @message like \"ERROR\" | stats count(*) by bin(5m)'.")
    var query: String

    @Option(help: "Earliest event time (RFC 3339).")
    var start: String?

    @Option(help: "Latest event time, exclusive (RFC 3339).")
    var end: String?

    @Option(name: .customLong("log-group"), help: "Only these log groups (repeatable).")
    var logGroups: [String] = []

    @Option(name: [.customLong("format"), .customLong("output")], help: "Output format: table, json or csv.")
    var format: Format = .table

    @Option(help: "Stop the query after this long (query_timeout), e.g. 30s, 2m, 500ms; 0 for no limit.")
    var timeout: String = "30s"

    func run() async throws {
        func time(_ text: String?, _ name: String) throws -> Int64? {
            guard let text else { return nil }
            guard let ms = Array(text.utf8).withUnsafeBytes({ Timestamps.parseISO8601($0) }) else {
                throw ValidationError("--\(name): '\(text)' is not an RFC 3339 time")
            }
            return ms
        }
        guard let limit = QueryTimeoutSetting.parse(timeout) else {
            throw ValidationError("--timeout: '\(timeout)' is not a duration such as 30s, 2m or 500ms")
        }
        let request = LogQueryRequest(text: query, start: try time(start, "start"), end: try time(end, "end"),
                                      logGroups: logGroups, now: Int64(Date().timeIntervalSince1970 * 1000),
                                      deadline: limit.map { QueryDeadline.after($0) })
        let opened = try await StoreCommandSupport.open(store)
        let outcome = await Self.query(opened, request)
        await opened.close()
        let result: QueryResult
        switch outcome {
        case .success(let rows): result = rows
        case .failure(let error):
            switch error {
            case .query(let parseError), .run(.invalid(let parseError)):
                // The line the error is on, and a caret under its column.
                let lines = query.split(separator: "\n", omittingEmptySubsequences: false)
                CLILog.error("query error: \(parseError)\n"
                             + "  " + (parseError.line - 1 < lines.count ? String(lines[parseError.line - 1]) : query) + "\n"
                             + "  " + String(repeating: " ", count: max(0, parseError.column - 1)) + "^")
                throw ExitStatus.invalidInput
            default:
                CLILog.error("\(error)")
            }
            throw ExitStatus.failure
        }
        func text(_ v: QueryValue) -> String {
            if case .timestamp(let ms) = v { return Timestamps.iso8601(ms) }
            return v.stringValue ?? ""
        }
        switch format {
        case .table:
            print(TextTableLite.render([result.columns] + result.rows.map { $0.map(text) }), terminator: "")
        case .csv:
            func quote(_ s: String) -> String { s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }
            print(result.columns.map(quote).joined(separator: ","))
            for row in result.rows { print(row.map { quote(text($0)) }.joined(separator: ",")) }
        case .json:
            // The same shape as the dashboard's /api/query.
            print(String(decoding: result.json(), as: UTF8.self))
        }
    }
}

extension QueryCommand {
    static func query(_ store: any Store, _ request: LogQueryRequest) async -> Result<QueryResult, StoreErrorOrQuery> {
        do { return .success(try await store.query(request)) } catch { return .failure(error) }
    }
}

/// Left-aligned columns for terminals.
enum TextTableLite {
    static func render(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = Array(repeating: 0, count: first.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = min(max(widths[i], cell.count), 120) } }
        return rows.map { row in
            row.enumerated().map { i, cell in
                let clipped = cell.count > 120 ? String(cell.prefix(117)) + "..." : cell
                return clipped + String(repeating: " ", count: max(0, widths[i] - clipped.count))
            }.joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n") + "\n"
    }
}

/// Opening the store a command names (a path or a postgres:// URL), read-only.
enum StoreCommandSupport {
    static func open(_ location: String) async throws -> any Store {
        BuiltinStages.registerStoreBackends()
        do {
            return try await StoreOpener.open(location, access: .readOnly)
        } catch {
            CLILog.error("\(error)")
            throw ExitStatus.failure
        }
    }
}
