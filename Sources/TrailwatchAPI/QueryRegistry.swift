import AWSWire
import Foundation
import LogsQuery
import Synchronization
import TrailwatchCore
import TrailwatchStore

/// Logs Insights queries started with StartQuery: run asynchronously, polled with
/// GetQueryResults, stopped with StopQuery. Finished queries are kept for an hour (at most
/// ``capacity``), as AWS keeps results for a while.
final class QueryRegistry: Sendable {
    enum Status: String, Sendable { case scheduled = "Scheduled", running = "Running", complete = "Complete", failed = "Failed", cancelled = "Cancelled", timeout = "Timeout" }

    struct Entry: Sendable {
        var status: Status
        var result: QueryResult?
        var recordsScanned: Double = 0
        var bytesScanned: Double = 0
        var failure: String?
        var finishedAt: Int64?
        var task: Task<Void, Never>?
        /// The log groups the query reads (its results need rights on them).
        var groups: [String] = []
    }

    static let capacity = 200
    static let concurrent = 30
    private let entries = Mutex<[String: Entry]>([:])

    func running() -> Int { entries.withLock { $0.values.filter { $0.status == .running }.count } }

    func start(id: String, groups: [String] = [], task: @escaping @Sendable () -> Task<Void, Never>) throws(AWSError) {
        let admitted = entries.withLock { e -> Bool in
            guard e.values.filter({ $0.status == .running }).count < Self.concurrent else { return false }
            if e.count >= Self.capacity {
                // Oldest finished first.
                let finished = e.filter { $0.value.finishedAt != nil }.sorted { $0.value.finishedAt! < $1.value.finishedAt! }
                for (key, _) in finished.prefix(e.count - Self.capacity + 1) { e.removeValue(forKey: key) }
            }
            e[id] = Entry(status: .running, groups: groups)
            return true
        }
        guard admitted else { throw AWSError("LimitExceededException", "Account maximum query concurrency limit of [\(Self.concurrent)] reached.") }
        let made = task()
        entries.withLock { $0[id]?.task = made }
    }

    func finish(id: String, _ update: (inout Entry) -> Void) {
        entries.withLock { e in
            guard var entry = e[id], entry.status == .running else { return }
            update(&entry)
            entry.finishedAt = Int64(Date().timeIntervalSince1970)
            entry.task = nil
            e[id] = entry
        }
    }

    func entry(_ id: String) -> Entry? { entries.withLock { $0[id] } }

    /// True when the query was running and is now cancelled.
    func stop(_ id: String) -> Bool? {
        let (found, task): (Bool?, Task<Void, Never>?) = entries.withLock { e in
            guard var entry = e[id] else { return (nil, nil) }
            guard entry.status == .running else { return (false, nil) }
            let task = entry.task
            entry.status = .cancelled
            entry.finishedAt = Int64(Date().timeIntervalSince1970)
            entry.task = nil
            e[id] = entry
            return (true, task)
        }
        task?.cancel()
        return found
    }

    func cancelAll() {
        let tasks = entries.withLock { e in e.values.compactMap(\.task) }
        for task in tasks { task.cancel() }
    }
}

extension CloudWatchLogsService {
    func startQuery(_ p: APIParameters) async throws(AWSError) -> [UInt8] {
        if let language = try p.string("queryLanguage"), language != "CWLI" {
            throw AWSError("InvalidParameterException", "Only the Logs Insights query language (CWLI) is supported by this endpoint; \(language) is not.")
        }
        let text = try p.required("queryString", min: 0, max: 10_000)
        guard let startSeconds = try p.int("startTime", min: 0) else { throw APIParameters.invalid("startTime", nil, "Member must not be null") }
        guard let endSeconds = try p.int("endTime", min: 0) else { throw APIParameters.invalid("endTime", nil, "Member must not be null") }
        guard endSeconds >= startSeconds else { throw AWSError("InvalidParameterException", "End time should not be before the start time") }
        let limit = try p.int("limit", min: 1, max: 10_000).map { Int($0) }
        var requested = try p.strings("logGroupNames") ?? []
        if let one = try p.groupName(required: false, identifierKey: nil) { requested.append(one) }
        for identifier in try p.strings("logGroupIdentifiers") ?? [] {
            requested.append(identifier.hasPrefix("arn:") ? Self.groupName(arn: identifier) : identifier)
        }
        // Groups can also come from the query's own SOURCE command; without either, there is nothing to read.
        guard !requested.isEmpty else {
            throw AWSError("InvalidParameterException", "Specify at least one log group with logGroupName, logGroupNames or logGroupIdentifiers.")
        }
        let query: Query
        do { query = try LogsQuery.parse(text) } catch {
            throw AWSError("MalformedQueryException", "Invalid query at column \(error.column): \(error.message)")
        }
        _ = query
        for group in Set(requested) { try await requireGroup(group) }

        guard settings.storeHoldsEvents else {
            throw AWSError("InvalidOperationException", "This endpoint keeps no log events: give the cloudwatch_logs_api source a store: (the sqlite sink's file) to query them.")
        }
        let id = UUID().uuidString.lowercased()
        let groups = Array(Set(requested)).sorted()
        let (start, end) = (startSeconds * 1000, endSeconds * 1000 + 999)
        let timeout = settings.queryTimeoutSeconds
        let clock = now()
        let registry = queries
        try queries.start(id: id, groups: groups) { [self] in
            Task {
                do {
                    let (result, scanned) = try await withReader(timeout: timeout) { store in
                        let request = LogQueryRequest(text: text, start: start, end: end + 1, logGroups: groups, now: clock,
                                                      deadline: .after(.milliseconds(Int64(timeout * 1000))))
                        var result: QueryResult
                        do throws(StoreErrorOrQuery) { result = try await store.query(request) } catch {
                            switch error {
                            case .store(let failure): throw AWSError.serviceUnavailable("The store is unavailable: \(failure)")
                            case .query(let failure): throw AWSError("MalformedQueryException", "\(failure)")
                            case .run(.timedOut): throw AWSError("Timeout", "The query timed out after \(timeout) s.")
                            case .run(let failure): throw AWSError("InvalidParameterException", "\(failure)")
                            }
                        }
                        if let limit, result.rows.count > limit { result.rows = Array(result.rows.prefix(limit)) }
                        let scanned = try await store.scanStatistics(logGroups: groups, start: start, end: end + 1)
                        return (result, scanned)
                    }
                    registry.finish(id: id) { entry in
                        entry.status = .complete
                        entry.result = result
                        entry.recordsScanned = Double(scanned.events)
                        entry.bytesScanned = Double(scanned.bytes)
                    }
                } catch {
                    let timedOut = error.apiMessage.contains("timed out")
                    registry.finish(id: id) { entry in
                        entry.status = timedOut ? .timeout : .failed
                        entry.failure = error.apiMessage
                    }
                }
            }
        }
        return JSONReply.encode(["queryId": id])
    }

    func getQueryResults(_ p: APIParameters) async throws(AWSError) -> [UInt8] {
        let id = try p.required("queryId", min: 1, max: 256)
        guard let entry = queries.entry(id) else { throw AWSError("ResourceNotFoundException", "Query does not exist or has expired: \(id)") }
        var reply: [String: Any] = ["status": entry.status.rawValue, "queryLanguage": "CWLI"]
        var statistics: [String: Any] = ["recordsMatched": 0.0, "recordsScanned": entry.recordsScanned, "bytesScanned": entry.bytesScanned,
                                         "estimatedRecordsSkipped": 0.0, "estimatedBytesSkipped": 0.0, "logGroupsScanned": 0.0]
        var results: [[[String: String]]] = []
        if let result = entry.result {
            statistics["recordsMatched"] = Double(result.rows.count)
            for row in result.rows {
                var fields: [[String: String]] = []
                for (column, value) in zip(result.columns, row) where !value.isNull {
                    fields.append(["field": column, "value": Self.insightsText(value)])
                }
                results.append(fields)
            }
        }
        reply["statistics"] = statistics
        reply["results"] = results
        return JSONReply.encode(reply)
    }

    /// Values as Logs Insights prints them: timestamps as `yyyy-MM-dd HH:mm:ss.SSS`.
    static func insightsText(_ value: QueryValue) -> String {
        if case .timestamp(let t) = value {
            let iso = Timestamps.iso8601(t)  // 2026-11-30T09:30:00.000Z
            return String(iso.prefix(23)).replacingOccurrences(of: "T", with: " ")
        }
        return value.description
    }

    func stopQuery(_ p: APIParameters) async throws(AWSError) -> [UInt8] {
        let id = try p.required("queryId", min: 1, max: 256)
        guard let stopped = queries.stop(id) else { throw AWSError("ResourceNotFoundException", "Query does not exist or has expired: \(id)") }
        return JSONReply.encode(["success": stopped])
    }
}

extension Error {
    /// The message of an AWSError, or the description of anything else.
    var apiMessage: String { (self as? AWSError)?.message ?? "\(self)" }
}
