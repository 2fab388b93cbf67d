import AWSWire
import FilterPatterns
import Foundation
import LogsQuery
import Synchronization
import TrailwatchCore
import TrailwatchStore

/// Where accepted PutLogEvents batches go: the `cloudwatch_logs_api` source hands them to its
/// pipeline and answers when they are durable.
public protocol LogsIngest: Sendable {
    /// Returns once every sink downstream acknowledged `batch` (or it sits in a durable spool);
    /// throws ThrottlingException when the pipeline has no room, ServiceUnavailableException
    /// when it is stopping or a sink failed.
    func ingest(_ batch: LogBatch) async throws(AWSError)
    /// Metric filters changed through the API.
    func metricFiltersChanged()
}

/// The CloudWatch Logs API (`Logs_20140328`, awsJson 1.1) over any ``Store`` (SQLite or
/// PostgreSQL): log groups and streams are the store's registry, metric filters its documents,
/// reads its paged event reads and queries.
public final class CloudWatchLogsService: AWSService, Sendable {
    public let targetPrefix = "Logs_20140328"
    public let signingName = "logs"

    public struct Settings: Sendable {
        /// Events older than this are rejected (`tooOldLogEventEndIndex`); AWS: 14 days.
        public var maxEventAgeMillis: Int64 = 14 * 86_400_000
        /// Events further in the future are rejected (`tooNewLogEventStartIndex`); AWS: 2 hours.
        public var maxFutureMillis: Int64 = 2 * 3_600_000
        /// Whether the store holds the events (reads need the store the pipeline's store sink writes).
        public var storeHoldsEvents = true
        /// How long a StartQuery may run before its status turns `Timeout`.
        public var queryTimeoutSeconds: Double = 900
        public var region = "us-east-1"
        public var accountID = "000000000000"
        public init() {}
    }

    public let settings: Settings
    public let pool: StorePool
    let ingest: any LogsIngest
    let now: @Sendable () -> Int64
    /// (group, stream) pairs known to exist: PutLogEvents skips the store for them.
    private let knownStreams = Mutex<Set<String>>([])
    let queries: QueryRegistry
    /// Stream statistics of accepted batches whose events go to another store, recorded once a
    /// second in one go.
    private let pendingActivity = Mutex<[String: StreamActivity]>([:])

    /// - Parameters:
    ///   - pool: connections to the store (see ``StorePool``); the service shuts it down.
    public init(settings: Settings = Settings(), pool: StorePool, ingest: any LogsIngest,
                now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }) {
        self.settings = settings
        self.pool = pool
        self.ingest = ingest
        self.now = now
        self.queries = QueryRegistry()
    }

    public func shutdown() async {
        queries.cancelAll()
        flushActivity()
        await pool.shutdown()
    }

    /// Runs `body` with a store connection of its own, off the event loops.
    func withStore<T: Sendable>(timeout: Double = 60, _ body: @escaping @Sendable (any Store) async throws -> T) async throws(AWSError) -> T {
        do {
            return try await pool.with(timeout: timeout, body)
        } catch let error as AWSError {
            throw error
        } catch let timeout as BlockingPool.Timeout {
            throw AWSError.serviceUnavailable("The read \(timeout); narrow the time range.")
        } catch {
            throw AWSError.serviceUnavailable("The store is unavailable: \(error)")
        }
    }

    /// Runs a read of stored events (refused when this endpoint's store keeps none).
    func withReader<T: Sendable>(timeout: Double = 60, _ body: @escaping @Sendable (any Store) async throws -> T) async throws(AWSError) -> T {
        guard settings.storeHoldsEvents else {
            throw AWSError("InvalidOperationException", "This endpoint keeps no log events: give the cloudwatch_logs_api source a store: (the store sink's path or url) to read them back.")
        }
        return try await withStore(timeout: timeout, body)
    }

    public func handle(_ call: AWSOperationCall) async -> AWSReply {
        do {
            let body = try await dispatch(call)
            return AWSJSONProtocol.reply(body, call.wireProtocol, requestID: call.requestID)
        } catch {
            return AWSJSONProtocol.errorReply(error, call.wireProtocol, requestID: call.requestID)
        }
    }

    func dispatch(_ call: AWSOperationCall) async throws(AWSError) -> [UInt8] {
        switch call.operation {
        case "PutLogEvents": return try await putLogEvents(call.body)
        case "CreateLogGroup": return try await createLogGroup(APIParameters(call.body))
        case "CreateLogStream": return try await createLogStream(APIParameters(call.body))
        case "DeleteLogGroup": return try await deleteLogGroup(APIParameters(call.body))
        case "DeleteLogStream": return try await deleteLogStream(APIParameters(call.body))
        case "DescribeLogGroups": return try await describeLogGroups(APIParameters(call.body))
        case "DescribeLogStreams": return try await describeLogStreams(APIParameters(call.body))
        case "GetLogEvents": return try await getLogEvents(APIParameters(call.body))
        case "FilterLogEvents": return try await filterLogEvents(APIParameters(call.body))
        case "StartQuery": return try await startQuery(APIParameters(call.body))
        case "GetQueryResults": return try await getQueryResults(APIParameters(call.body))
        case "StopQuery": return try await stopQuery(APIParameters(call.body))
        case "PutMetricFilter": return try await putMetricFilter(APIParameters(call.body))
        case "DescribeMetricFilters": return try await describeMetricFilters(APIParameters(call.body))
        case "DeleteMetricFilter": return try await deleteMetricFilter(APIParameters(call.body))
        case "TestMetricFilter": return try testMetricFilter(APIParameters(call.body))
        case "PutRetentionPolicy": return try await putRetentionPolicy(APIParameters(call.body))
        case "DeleteRetentionPolicy": return try await deleteRetentionPolicy(APIParameters(call.body))
        default: throw AWSError.unknownOperation("\(call.service).\(call.operation)")
        }
    }

    static let groupNotFound = AWSError("ResourceNotFoundException", "The specified log group does not exist.")
    static let streamNotFound = AWSError("ResourceNotFoundException", "The specified log stream does not exist.")
    static let empty = Array("{}".utf8)

    func arn(_ group: String) -> String { "arn:aws:logs:\(settings.region):\(settings.accountID):log-group:\(group)" }

    /// The group an ARN names (`arn:aws:logs:REGION:ACCOUNT:log-group:NAME`, with or without `:*`).
    static func groupName(arn: String) -> String {
        guard let range = arn.range(of: ":log-group:") else { return arn }
        let name = arn[range.upperBound...]
        return String(name.hasSuffix(":*") ? name.dropLast(2) : name)
    }

    func requireGroup(_ group: String) async throws(AWSError) {
        if knownStreams.withLock({ $0.contains(group + "\u{0}") }) { return }
        guard try await withStore({ store in try await store.logGroup(group) != nil }) else { throw Self.groupNotFound }
        _ = knownStreams.withLock { $0.insert(group + "\u{0}") }
    }

    func forget(group: String, stream: String? = nil) {
        knownStreams.withLock { known in
            if let stream {
                known.remove(group + "\u{0}" + stream)
            } else {
                known = known.filter { !$0.hasPrefix(group + "\u{0}") }
            }
        }
    }

    // MARK: PutLogEvents

    func putLogEvents(_ body: [UInt8]) async throws(AWSError) -> [UInt8] {
        var request = try PutLogEventsDecoder.decode(body)
        let group = request.logGroupName, stream = request.logStreamName
        guard !group.isEmpty, group.utf8.count <= 512, APIParameters.isGroupName(group) else {
            throw APIParameters.invalid("logGroupName", group, "Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+")
        }
        guard !stream.isEmpty, stream.utf8.count <= 512, !stream.contains(":"), !stream.contains("*") else {
            throw APIParameters.invalid("logStreamName", stream, "Member must satisfy regular expression pattern: [^:*]*")
        }
        guard request.count >= 1 else { throw APIParameters.invalid("logEvents", "[]", "Member must have length greater than or equal to 1") }
        var size = 0
        for (i, length) in request.lengths.enumerated() {
            guard length >= 1 else { throw APIParameters.invalid("logEvents.\(i + 1).member.message", "", "Member must have length greater than or equal to 1") }
            guard request.timestamps[i] >= 0 else { throw APIParameters.invalid("logEvents.\(i + 1).member.timestamp", request.timestamps[i], "Member must have value greater than or equal to 0") }
            size += Int(length) + 26
        }
        guard size <= 1_048_576 else { throw AWSError("InvalidParameterException", "Upload too large: \(size) bytes exceeds limit of 1048576") }
        let key = group + "\u{0}" + stream
        if !knownStreams.withLock({ $0.contains(key) }) {
            let (groupExists, streamExists) = try await withStore { store in
                (try await store.logGroup(group) != nil, try await store.logStream(group: group, name: stream) != nil)
            }
            guard groupExists else { throw Self.groupNotFound }
            guard streamExists else { throw Self.streamNotFound }
            _ = knownStreams.withLock { $0.insert(key) }
        }
        // Too old, too new: AWS rejects index ranges (its batches are in time order).
        let clock = now()
        var tooOldEnd: Int?, tooNewStart: Int?
        for (i, t) in request.timestamps.enumerated() {
            if t < clock - settings.maxEventAgeMillis { tooOldEnd = i }
            if t > clock + settings.maxFutureMillis, tooNewStart == nil { tooNewStart = i }
        }
        let firstAccepted = (tooOldEnd ?? -1) + 1
        let acceptedEnd = tooNewStart ?? request.count
        let digits = String(clock)
        var reply: [String: Any] = ["nextSequenceToken": String(repeating: "4", count: 1) + String(repeating: "0", count: max(0, 55 - digits.count)) + digits]
        if tooOldEnd != nil || tooNewStart != nil {
            var info: [String: Any] = [:]
            if let tooOldEnd { info["tooOldLogEventEndIndex"] = tooOldEnd }
            if let tooNewStart { info["tooNewLogEventStartIndex"] = tooNewStart }
            reply["rejectedLogEventsInfo"] = info
        }
        guard firstAccepted < acceptedEnd else { return JSONReply.encode(reply) }
        let accepted = firstAccepted..<acceptedEnd
        let times = request.timestamps[accepted]
        let (earliest, latest) = (times.min()!, times.max()!)
        guard latest - earliest <= 86_400_000 else {
            throw AWSError("InvalidParameterException", "Log events in a single PutLogEvents request cannot span more than 24 hours.")
        }
        // One block for the messages; the batch's columns point into it.
        let storage = ByteStorage(copying: request.messages)
        var batch = LogBatch(storage: storage, defaultTimestamp: earliest, ingestionTime: clock, origin: Origin(logGroup: group, logStream: stream))
        batch.starts = Array(request.starts[accepted])
        batch.lengths = Array(request.lengths[accepted])
        if earliest != latest { batch.timestamps = Array(times) }
        // The decoded block is copied into the batch: drop it before waiting for the sinks, or
        // every request in flight holds its messages twice (RSS is bounded by connections × body).
        request.messages = []
        try await ingest.ingest(batch)
        if !settings.storeHoldsEvents {
            noteActivity(StreamActivity(group: group, stream: stream, firstEvent: earliest, lastEvent: latest, ingestionTime: clock,
                                        bytes: Int64(batch.messageBytes)))
        }
        return JSONReply.encode(reply)
    }

    /// Notes a batch on its stream for DescribeLogStreams when the events go to another store
    /// (the store sink records them itself when they come here).
    func noteActivity(_ activity: StreamActivity) {
        let schedule = pendingActivity.withLock { pending -> Bool in
            let wasEmpty = pending.isEmpty
            if pending[activity.streamKey] == nil { pending[activity.streamKey] = activity } else { pending[activity.streamKey]!.merge(activity) }
            return wasEmpty
        }
        guard schedule else { return }
        Task { [self] in
            try? await Task.sleep(nanoseconds: 1_000_000_000)
            flushActivity()
        }
    }

    private func flushActivity() {
        let activity = pendingActivity.withLock { pending in
            defer { pending = [:] }
            return Array(pending.values)
        }
        guard !activity.isEmpty else { return }
        Task { [pool] in _ = try? await pool.with { store in try await store.recordStreamActivity(activity) } }
    }

    // MARK: Groups and streams

    func createLogGroup(_ p: APIParameters) async throws(AWSError) -> [UInt8] {
        let group = try p.groupName(identifierKey: nil)!
        if let kind = try p.string("logGroupClass"), !["STANDARD", "INFREQUENT_ACCESS", "DELIVERY"].contains(kind) {
            throw APIParameters.invalid("logGroupClass", kind, "Member must satisfy enum value set: [STANDARD, INFREQUENT_ACCESS, DELIVERY]")
        }
        let time = now()
        guard try await withStore({ store in try await store.createLogGroup(group, retentionDays: nil, now: time) }) else {
            throw AWSError("ResourceAlreadyExistsException", "The specified log group already exists")
        }
        return Self.empty
    }

    func deleteLogGroup(_ p: APIParameters) async throws(AWSError) -> [UInt8] {
        let group = try p.groupName(identifierKey: nil)!
        let deleted = try await withStore { store in
            for filter in try await Self.metricFilters(store, group: group) {
                try await store.deleteDocument(kind: MetricFilterRecord.kind, name: MetricFilterRecord.documentPrefix(group: group) + filter.name)
            }
            return try await store.deleteLogGroup(group)
        }
        guard deleted else { throw Self.groupNotFound }
        forget(group: group)
        ingest.metricFiltersChanged()
        return Self.empty
    }

    func createLogStream(_ p: APIParameters) async throws(AWSError) -> [UInt8] {
        let group = try p.groupName(identifierKey: nil)!, stream = try p.streamName()!
        let time = now()
        let outcome = try await withStore { store -> Int in
            guard try await store.logGroup(group) != nil else { return 0 }
            return try await store.createLogStream(group: group, stream: stream, now: time) ? 1 : 2
        }
        switch outcome {
        case 0: throw Self.groupNotFound
        case 2: throw AWSError("ResourceAlreadyExistsException", "The specified log stream already exists")
        default: return Self.empty
        }
    }

    func deleteLogStream(_ p: APIParameters) async throws(AWSError) -> [UInt8] {
        let group = try p.groupName(identifierKey: nil)!, stream = try p.streamName()!
        try await requireGroup(group)
        guard try await withStore({ store in try await store.deleteLogStream(group: group, stream: stream) }) else { throw Self.streamNotFound }
        forget(group: group, stream: stream)
        return Self.empty
    }

    static func limit(_ p: APIParameters, max: Int64, default value: Int) throws(AWSError) -> Int {
        try p.int("limit", min: 1, max: max).map { Int($0) } ?? value
    }

    func describeLogGroups(_ p: APIParameters) async throws(AWSError) -> [UInt8] {
        let prefix = try p.string("logGroupNamePrefix", min: 1, max: 512)
        let pattern = try p.string("logGroupNamePattern", max: 512)
        if prefix != nil && pattern != nil {
            throw AWSError("InvalidParameterException", "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.")
        }
        let limit = try Self.limit(p, max: 50, default: 50)
        let after = try p.string("nextToken", min: 1)
        let identifiers = try p.strings("logGroupIdentifiers", min: 1, max: 50)
        let contains = pattern?.isEmpty == true ? nil : pattern
        let wanted = identifiers.map { ids in Set(ids.map { $0.hasPrefix("arn:") ? Self.groupName(arn: $0) : $0 }) }
        // A name pattern or identifiers filter the groups in name order, a page at a time.
        let groups = try await withStore { store -> [(StoredLogGroup, Int)] in
            var found: [(StoredLogGroup, Int)] = []
            var position = after
            while found.count <= limit {
                let page = try await store.logGroups(prefix: prefix, after: position, limit: 200)
                for group in page where found.count <= limit {
                    if let contains, !group.name.contains(contains) { continue }
                    if let wanted, !wanted.contains(group.name) { continue }
                    let filters = try await store.documents(kind: MetricFilterRecord.kind, prefix: MetricFilterRecord.documentPrefix(group: group.name),
                                                            after: nil, limit: 101)
                    found.append((group, filters.count))
                }
                guard page.count == 200, let last = page.last else { break }
                position = last.name
            }
            return found
        }
        var reply: [String: Any] = ["logGroups": groups.prefix(limit).map { group, metricFilterCount -> [String: Any] in
            var entry: [String: Any] = ["logGroupName": group.name, "creationTime": group.creationTime, "metricFilterCount": metricFilterCount,
                                        "arn": arn(group.name) + ":*", "logGroupArn": arn(group.name), "storedBytes": group.storedBytes,
                                        "logGroupClass": "STANDARD"]
            if let days = group.retentionDays { entry["retentionInDays"] = days }
            return entry
        }]
        if groups.count > limit { reply["nextToken"] = groups[limit - 1].0.name }
        return JSONReply.encode(reply)
    }

    func describeLogStreams(_ p: APIParameters) async throws(AWSError) -> [UInt8] {
        let group = try p.groupName()!
        let prefix = try p.streamName("logStreamNamePrefix", required: false)
        let order = try p.string("orderBy") ?? "LogStreamName"
        guard order == "LogStreamName" || order == "LastEventTime" else {
            throw APIParameters.invalid("orderBy", order, "Member must satisfy enum value set: [LogStreamName, LastEventTime]")
        }
        if order == "LastEventTime" && prefix != nil {
            throw AWSError("InvalidParameterException", "Cannot order by LastEventTime with a logStreamNamePrefix.")
        }
        let descending = try p.bool("descending") ?? false
        let limit = try Self.limit(p, max: 50, default: 50)
        let token = try p.string("nextToken", min: 1)
        if let token {
            do { _ = try LogStreamsRequest.position(token) } catch { throw AWSError("InvalidParameterException", "The specified nextToken is invalid.") }
        }
        try await requireGroup(group)
        let request = LogStreamsRequest(group: group, prefix: prefix, byLastEvent: order == "LastEventTime", descending: descending, limit: limit,
                                        nextToken: token)
        let page = try await withStore { store in try await store.logStreams(request) }
        var reply: [String: Any] = ["logStreams": page.streams.map { stream -> [String: Any] in
            var entry: [String: Any] = ["logStreamName": stream.name, "creationTime": stream.creationTime, "storedBytes": stream.storedBytes,
                                        "arn": arn(group) + ":log-stream:" + stream.name]
            if let first = stream.firstEvent { entry["firstEventTimestamp"] = first }
            if let last = stream.lastEvent { entry["lastEventTimestamp"] = last }
            if let ingestion = stream.lastIngestion ?? stream.lastEvent { entry["lastIngestionTime"] = ingestion }
            return entry
        }]
        if let next = page.nextToken { reply["nextToken"] = next }
        return JSONReply.encode(reply)
    }

    // MARK: Reading events

    /// `f/TIMESTAMP/ID` or `b/TIMESTAMP/ID`.
    static func parseToken(_ token: String) throws(AWSError) -> (forward: Bool, timestamp: Int64, id: Int64) {
        let parts = token.split(separator: "/")
        guard parts.count == 3, parts[0] == "f" || parts[0] == "b", let t = Int64(parts[1]), let id = Int64(parts[2]) else {
            throw AWSError("InvalidParameterException", "The specified nextToken is invalid.")
        }
        return (parts[0] == "f", t, id)
    }

    func getLogEvents(_ p: APIParameters) async throws(AWSError) -> [UInt8] {
        let group = try p.groupName()!, stream = try p.streamName()!
        let start = try p.int("startTime", min: 0), end = try p.int("endTime", min: 0)
        let limit = try Self.limit(p, max: 10_000, default: 10_000)
        let fromHead = try p.bool("startFromHead") ?? false
        let token = try p.string("nextToken", min: 1)
        let cursor = try token.map { (t) throws(AWSError) in try Self.parseToken(t) }
        try await requireGroup(group)
        guard try await withStore({ store in try await store.logStream(group: group, name: stream) != nil }) else { throw Self.streamNotFound }
        let newestFirst = cursor.map { !$0.forward } ?? !fromHead
        let request = LogEventsRequest(logGroup: group, logStreams: [stream], start: start, end: end, newestFirst: newestFirst, limit: limit,
                                       nextToken: cursor.map { PageCursor(timestamp: $0.timestamp, tiebreak: $0.id).token })
        var events = try await withReader { store in try await store.logEvents(request).events }
        // The response also stays under 1 MB, as AWS's does.
        var size = 0
        if let cut = events.firstIndex(where: { size += $0.message.utf8.count + 26; return size > 1_048_576 }) { events = Array(events.prefix(max(1, cut))) }
        if newestFirst { events.reverse() }
        let forward = events.last.map { "f/\($0.timestamp)/\($0.eventKey)" } ?? token ?? "f/\(end ?? 0)/0"
        let backward = events.first.map { "b/\($0.timestamp)/\($0.eventKey)" } ?? token ?? "b/\(start ?? 0)/0"
        let reply: [String: Any] = [
            "events": events.map { ["timestamp": $0.timestamp, "message": $0.message, "ingestionTime": $0.ingestionTime] as [String: Any] },
            "nextForwardToken": forward.hasPrefix("f/") ? forward : "f" + forward.dropFirst(),
            "nextBackwardToken": backward.hasPrefix("b/") ? backward : "b" + backward.dropFirst(),
        ]
        return JSONReply.encode(reply)
    }

    func filterLogEvents(_ p: APIParameters) async throws(AWSError) -> [UInt8] {
        let group = try p.groupName()!
        let names = try p.strings("logStreamNames", min: 1, max: 100)
        let prefix = try p.streamName("logStreamNamePrefix", required: false)
        if names != nil && prefix != nil {
            throw AWSError("InvalidParameterException", "logStreamNames and logStreamNamePrefix are mutually exclusive.")
        }
        let start = try p.int("startTime", min: 0), end = try p.int("endTime", min: 0)
        let limit = try Self.limit(p, max: 10_000, default: 10_000)
        let patternText = try p.string("filterPattern", max: 1024) ?? ""
        let pattern: FilterPattern
        do { pattern = try FilterPattern(patternText) } catch {
            throw AWSError("InvalidParameterException", "Invalid filter pattern: \(error)")
        }
        let cursor: (Int64, Int64)? = try p.string("nextToken", min: 1).map { (token) throws(AWSError) in
            let parsed = try Self.parseToken(token)
            return (parsed.timestamp, parsed.id)
        }
        try await requireGroup(group)
        let (matched, next) = try await withReader { store -> ([StoredLogEvent], (Int64, Int64)?) in
            var matched: [StoredLogEvent] = []
            var position = cursor
            var scanned = 0
            var size = 0
            while matched.count < limit && scanned < 200_000 {
                let request = LogEventsRequest(logGroup: group, logStreams: names ?? [], logStreamPrefix: prefix, start: start, end: end, limit: 2_000,
                                               nextToken: position.map { PageCursor(timestamp: $0.0, tiebreak: $0.1).token })
                let page = try await store.logEvents(request).events
                for event in page {
                    scanned += 1
                    position = (event.timestamp, event.eventKey)
                    if pattern.matches(event.message) {
                        matched.append(event)
                        size += event.message.utf8.count + 100
                        if matched.count >= limit || size > 1_048_576 { return (matched, position) }
                    }
                }
                if page.count < 2_000 { return (matched, nil) }
            }
            return (matched, position)
        }
        var reply: [String: Any] = [
            "events": matched.map { ["logStreamName": $0.logStream, "timestamp": $0.timestamp, "message": $0.message,
                                     "ingestionTime": $0.ingestionTime, "eventId": String($0.eventKey)] as [String: Any] },
            "searchedLogStreams": [Any](),
        ]
        if let next { reply["nextToken"] = "f/\(next.0)/\(next.1)" }
        return JSONReply.encode(reply)
    }

    // MARK: Retention

    static let retentionDays: Set<Int64> = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]

    func putRetentionPolicy(_ p: APIParameters) async throws(AWSError) -> [UInt8] {
        let group = try p.groupName(identifierKey: nil)!
        guard let days = try p.int("retentionInDays") else { throw APIParameters.invalid("retentionInDays", nil, "Member must not be null") }
        guard Self.retentionDays.contains(days) else {
            throw APIParameters.invalid("retentionInDays", days, "Member must satisfy enum value set: [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653]")
        }
        try await requireGroup(group)
        try await withStore { store in try await store.setRetention(logGroup: group, days: Int(days)) }
        return Self.empty
    }

    func deleteRetentionPolicy(_ p: APIParameters) async throws(AWSError) -> [UInt8] {
        let group = try p.groupName(identifierKey: nil)!
        try await requireGroup(group)
        try await withStore { store in try await store.setRetention(logGroup: group, days: nil) }
        return Self.empty
    }
}
