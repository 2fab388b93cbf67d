import Foundation
import LogsQuery
import TrailwatchCore

// The store seam: everything that writes to or reads from a store (the store sink, `query`,
// `events`, dashboards, the AWS APIs) talks to these protocols, never to SQLite or PostgreSQL.
// Each concern is its own small protocol so a backend, a test double or an API layer can name
// exactly what it needs; `Store` is all of them together, what every backend provides.

/// Writing: one call is one transaction, durable when it returns (acknowledge after it).
public protocol StoreWriting: AnyObject {
    /// Writes one batch's events idempotently (the same event written twice is kept once).
    /// Returns the rows added.
    @discardableResult
    func write(_ payload: Payload) async throws(StoreError) -> Int
    /// Writes several log batches at once, as one transaction where the backend gains from it
    /// (PostgreSQL: one COMMIT, one flush of its log, instead of one per batch). Returns the rows added.
    @discardableResult
    func write(logs batches: [LogBatch]) async throws(StoreError) -> Int
    /// Records a log group's retention (days; nil keeps its events forever).
    func setRetention(logGroup: String, days: Int?) async throws(StoreError)
    /// Removes events older than their group's retention. Returns the events removed.
    @discardableResult
    func enforceRetention(now: Int64) async throws(StoreError) -> Int
}

extension StoreWriting {
    /// Batch by batch, each in its own transaction.
    @discardableResult
    public func write(logs batches: [LogBatch]) async throws(StoreError) -> Int {
        var added = 0
        for batch in batches { added += try await write(.logs(batch)) }
        return added
    }
}

/// Logs-Insights-style queries over the stored log events.
public protocol LogQuerying: AnyObject {
    func query(_ request: LogQueryRequest) async throws(StoreErrorOrQuery) -> QueryResult
    /// How many events, and how many message bytes, the log groups (all when empty) hold in
    /// [start, end): what a query over them scans (StartQuery's `recordsScanned`, `bytesScanned`).
    func scanStatistics(logGroups: [String], start: Int64?, end: Int64?) async throws(StoreError) -> ScanStatistics
}

/// Events and message bytes in a range of the store (see ``LogQuerying/scanStatistics(logGroups:start:end:)``).
public struct ScanStatistics: Sendable, Equatable {
    public var events: Int64
    public var bytes: Int64
    public init(events: Int64, bytes: Int64) {
        self.events = events
        self.bytes = bytes
    }
}

/// CloudTrail event history (LookupEvents): records matching one attribute, newest first, in pages.
public protocol EventHistoryReading: AnyObject {
    func lookupEvents(_ request: LookupEventsRequest) async throws(StoreError) -> LookupEventsPage
}

/// Metric datapoints and detector events (dashboards, GetMetricData-style reads).
public protocol MetricReading: AnyObject {
    /// Datapoints of a metric in [start, end), oldest first; with `dimensions` only that exact set.
    /// Datapoints written by several instances for the same metric, period and time come back
    /// merged into one statistic set.
    func datapoints(namespace: String, name: String, dimensions: String?, start: Int64, end: Int64,
                    limit: Int) async throws(StoreError) -> [StoredDatapoint]
    /// The statistic sets of a metric per hour in [start, end) (period 3600, the hour's start as
    /// timestamp; hours cut by `start` or `end` hold only their part inside), grouped by dimension
    /// set and oldest first within each. What long reads at periods of whole hours need: a store
    /// that keeps hourly sets answers from them (others sum ``datapoints`` with ``StoredDatapoint/hourly(_:)``).
    func hourlyDatapoints(namespace: String, name: String, dimensions: String?, start: Int64, end: Int64,
                          limit: Int) async throws(StoreError) -> [StoredDatapoint]
    /// Every metric (namespace, name, dimension set) with a datapoint in [start, end).
    func metrics(start: Int64, end: Int64, limit: Int) async throws(StoreError) -> [StoredMetric]
    /// Detector events of the given kinds in [start, end), oldest first (at most `limit`, the newest kept).
    func events(kinds: [String], start: Int64, end: Int64, limit: Int) async throws(StoreError) -> [StoredEvent]
    /// The newest event time among log events, datapoints and detector events (nil when empty); cheap on any size.
    func newestTimestamp() async throws(StoreError) -> Int64?
}

/// A store: every capability above, plus where it is and how many rows a table holds.
public protocol Store: StoreWriting, LogQuerying, EventHistoryReading, MetricReading, LogGroupRegistry, LogEventReading, DocumentStoring {
    var location: StoreLocation { get }
    /// Row count of one of the store's tables (summaries and tests).
    func count(_ table: StoreTable) async throws(StoreError) -> Int
    /// Releases connections; the store is not used afterwards.
    func close() async
}

extension MetricReading {
    public func datapoints(namespace: String, name: String, dimensions: String? = nil, start: Int64, end: Int64) async throws(StoreError) -> [StoredDatapoint] {
        try await datapoints(namespace: namespace, name: name, dimensions: dimensions, start: start, end: end, limit: 100_000)
    }
    public func metrics(start: Int64, end: Int64) async throws(StoreError) -> [StoredMetric] {
        try await metrics(start: start, end: end, limit: 200)
    }
    public func events(kinds: [String], start: Int64, end: Int64) async throws(StoreError) -> [StoredEvent] {
        try await events(kinds: kinds, start: start, end: end, limit: 1000)
    }
}

extension EventHistoryReading {
    /// The first page only: at most `maxResults` records, newest first.
    public func lookupEvents(attribute: String, value: String, start: Int64?, end: Int64?, maxResults: Int) async throws(StoreError) -> [String] {
        try await lookupEvents(LookupEventsRequest(attribute: attribute, value: value, start: start, end: end, maxResults: maxResults)).records
    }
}

/// The tables every backend has (named the same in each).
public enum StoreTable: String, Sendable, CaseIterable {
    case logGroups = "log_groups", logStreams = "log_streams", logEvents = "log_events"
    case metricDatapoints = "metric_datapoints", detectorEvents = "detector_events", cloudTrailLookup = "cloudtrail_lookup"
}

// MARK: Requests and results

/// A query over the log events: the text, the time range [start, end), and the log groups (all when empty).
public struct LogQueryRequest: Sendable {
    public var text: String
    public var start: Int64?
    public var end: Int64?
    public var logGroups: [String]
    /// "Now" for the query's time functions (ms since the epoch).
    public var now: Int64
    /// When the query must stop (`query_timeout`; ``QueryLimits/defaultTimeout`` from when the request
    /// was made unless given); nil for no limit. Cancelling the task running the query stops it too.
    public var deadline: QueryDeadline?

    public init(text: String, start: Int64? = nil, end: Int64? = nil, logGroups: [String] = [], now: Int64,
                deadline: QueryDeadline? = .after(QueryLimits.defaultTimeout)) {
        self.text = text
        self.start = start
        self.end = end
        self.logGroups = logGroups
        self.now = now
        self.deadline = deadline
    }
}

/// LookupEvents: one attribute (empty: every record), a time range [start, end), a page size and the token of the page to continue.
public struct LookupEventsRequest: Sendable {
    public var attribute: String
    public var value: String
    public var start: Int64?
    public var end: Int64?
    public var maxResults: Int
    /// `nextToken` of the previous page, or nil for the first.
    public var nextToken: String?

    public init(attribute: String, value: String, start: Int64? = nil, end: Int64? = nil, maxResults: Int = 50, nextToken: String? = nil) {
        self.attribute = attribute
        self.value = value
        self.start = start
        self.end = end
        self.maxResults = maxResults
        self.nextToken = nextToken
    }
}

/// One page of LookupEvents: the records exactly as CloudTrail wrote them, newest first.
public struct LookupEventsPage: Sendable {
    public var records: [String]
    /// Present when more records follow.
    public var nextToken: String?

    public init(records: [String], nextToken: String?) {
        self.records = records
        self.nextToken = nextToken
    }
}

/// Where the next page of a newest-first listing starts: below (timestamp, tiebreak) of the last row.
/// Opaque to clients: `<timestamp>.<tiebreak>`.
public struct PageCursor: Sendable, Equatable {
    public var timestamp: Int64
    public var tiebreak: Int64

    public init(timestamp: Int64, tiebreak: Int64) {
        self.timestamp = timestamp
        self.tiebreak = tiebreak
    }

    public init(token: String) throws(StoreError) {
        let parts = token.split(separator: ".")
        guard parts.count == 2, let t = Int64(parts[0]), let k = Int64(parts[1]) else { throw StoreError("invalid nextToken '\(token)'") }
        self.init(timestamp: t, tiebreak: k)
    }

    public var token: String { "\(timestamp).\(tiebreak)" }
}

/// One stored datapoint of a metric (a statistic set; merged across writers).
public struct StoredDatapoint: Sendable, Equatable {
    public var timestamp: Int64
    public var period: Int
    public var sampleCount: Double
    public var sum: Double
    public var minimum: Double
    public var maximum: Double
    /// The dimensions as stored (a JSON object text, keys sorted).
    public var dimensions: String

    public init(timestamp: Int64, period: Int, sampleCount: Double, sum: Double, minimum: Double, maximum: Double, dimensions: String) {
        self.timestamp = timestamp
        self.period = period
        self.sampleCount = sampleCount
        self.sum = sum
        self.minimum = minimum
        self.maximum = maximum
        self.dimensions = dimensions
    }
}

extension StoredDatapoint {
    /// Datapoints summed per dimension set and hour (period 3600), grouped by dimension set and
    /// oldest first within each.
    public static func hourly(_ rows: [StoredDatapoint]) -> [StoredDatapoint] {
        var index: [String: [Int64: Int]] = [:]
        var out: [StoredDatapoint] = []
        for row in rows {
            let hour = row.timestamp - ((row.timestamp % 3_600_000) + 3_600_000) % 3_600_000
            if let at = index[row.dimensions]?[hour] {
                out[at].sampleCount += row.sampleCount
                out[at].sum += row.sum
                out[at].minimum = min(out[at].minimum, row.minimum)
                out[at].maximum = max(out[at].maximum, row.maximum)
            } else {
                index[row.dimensions, default: [:]][hour] = out.count
                out.append(StoredDatapoint(timestamp: hour, period: 3600, sampleCount: row.sampleCount, sum: row.sum,
                                           minimum: row.minimum, maximum: row.maximum, dimensions: row.dimensions))
            }
        }
        return out.sorted { ($0.dimensions, $0.timestamp) < ($1.dimensions, $1.timestamp) }
    }
}

/// A metric the store holds datapoints for.
public struct StoredMetric: Sendable, Hashable {
    public var namespace: String
    public var name: String
    public var dimensions: String

    public init(namespace: String, name: String, dimensions: String) {
        self.namespace = namespace
        self.name = name
        self.dimensions = dimensions
    }
}

/// A detector event (alarm state change, insight, pattern event).
public struct StoredEvent: Sendable, Equatable {
    public var kind: String
    public var key: String
    public var timestamp: Int64
    public var body: String

    public init(kind: String, key: String, timestamp: Int64, body: String) {
        self.kind = kind
        self.key = key
        self.timestamp = timestamp
        self.body = body
    }
}

/// The stable 64-bit key of idempotent writes, built part by part (FNV-1a offset basis, eight
/// bytes at a time through a multiply-xorshift mix; stable across runs and machines, as the keys
/// are stored). A writer that hashes many messages of one stream copies the state after the
/// group and stream names instead of hashing them again for every row.
public struct StoreKey: Sendable {
    @usableFromInline var h: UInt64 = 0xcbf29ce484222325

    @inlinable public init() {}

    @inlinable @inline(__always)
    mutating func mix(_ v: UInt64) {
        h = (h ^ v) &* 0x9E37_79B9_7F4A_7C15
        h ^= h >> 29
    }

    /// Adds a byte string (its length goes in with its last bytes).
    @inlinable
    public mutating func add(_ part: UnsafeRawBufferPointer) {
        var i = 0
        if let base = part.baseAddress {
            while i + 8 <= part.count {
                mix(UInt64(littleEndian: base.loadUnaligned(fromByteOffset: i, as: UInt64.self)))
                i += 8
            }
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < part.count { tail |= UInt64(part[i]) << shift; shift += 8; i += 1 }
        mix(tail ^ (UInt64(part.count) << 56))
    }

    @inlinable
    public mutating func add(_ number: Int64) { mix(UInt64(bitPattern: number)) }

    @inlinable public var value: Int64 { Int64(bitPattern: h) }
}

/// Conventions every backend shares.
public enum StoreConventions {
    /// The attributes CloudTrail's LookupEvents accepts.
    public static let lookupAttributes = ["EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName",
                                          "EventSource", "AccessKeyId"]

    /// The stable 64-bit key of idempotent writes (the same in every backend): a hash of byte
    /// strings and numbers.
    public static func key(_ parts: [UnsafeRawBufferPointer], _ numbers: [Int64]) -> Int64 {
        var key = StoreKey()
        for part in parts { key.add(part) }
        for n in numbers { key.add(n) }
        return key.value
    }

    /// A datapoint's key: its metric, unit, time, period and statistics, and the writer — equal
    /// partial datapoints from two instances are two contributions, a replay from one is not.
    public static func datapointKey(_ d: MetricDatum, dimensions: String, writer: String) -> Int64 {
        var key = datapointIdentityHash(d.metric, dimensions: dimensions, unit: d.unit, writer: writer)
        key.add(d.timestamp)
        key.add(Int64(d.period))
        key.add(Int64(d.sampleCount))
        key.add(Int64(bitPattern: d.sum.bitPattern))
        return key.value
    }

    /// The part of ``datapointKey(_:dimensions:writer:)`` that depends on the metric, its unit and
    /// the writer only: hashed once per metric, then extended per datapoint.
    public static func datapointIdentityHash(_ metric: MetricIdentity, dimensions: String, unit: String?, writer: String) -> StoreKey {
        var text = "\(metric.namespace)\u{0}\(metric.name)\u{0}\(dimensions)\u{0}\(unit ?? "")" + (writer.isEmpty ? "" : "\u{0}" + writer)
        var key = StoreKey()
        text.withUTF8 { key.add(UnsafeRawBufferPointer($0)) }
        return key
    }

    /// A detector event's key: its body and time.
    public static func eventKey(_ e: StructuredEvent) -> Int64 {
        e.body.withUnsafeBytes { key([$0], [e.timestamp]) }
    }

    /// How a datapoint's dimensions are stored: a JSON object in the identity's (sorted) order.
    /// Names and values are escaped as JSON strings (a `"` or `\` in a value is valid input).
    public static func dimensionsText(_ dimensions: [TrailwatchCore.Dimension]) -> String {
        var out = ByteBuffer(reservingCapacity: 2 + dimensions.count * 32)
        out.append(UInt8(ascii: "{"))
        for (i, dimension) in dimensions.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONEscaping.appendString(dimension.name, to: &out)
            out.append(UInt8(ascii: ":"))
            JSONEscaping.appendString(dimension.value, to: &out)
        }
        out.append(UInt8(ascii: "}"))
        return String(decoding: out.bytes, as: UTF8.self)
    }
}

// MARK: Locations and opening

/// Where a store is: an SQLite file (any path) or a PostgreSQL database (`postgres://` or
/// `postgresql://` URL). Written the same way wherever a store is named: the store sink's `path:`
/// or `url:`, the `query`, `events` and `dashboard` commands, `http.store`.
public enum StoreLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(url: String)

    public init(_ text: String) {
        let lower = text.lowercased()
        if lower.hasPrefix("postgres://") || lower.hasPrefix("postgresql://") { self = .postgres(url: text) } else { self = .sqlite(path: text) }
    }

    /// For messages: a PostgreSQL URL without its password.
    public var description: String {
        switch self {
        case .sqlite(let path): return path
        case .postgres(let url): return StoreLocation.redacted(url)
        }
    }

    /// `postgres://user:secret@host/db` → `postgres://user:***@host/db`.
    public static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://") else { return url }
        let rest = url[scheme.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) ?? rest.endIndex
        guard let at = rest[..<authorityEnd].lastIndex(of: "@") else { return url }
        let userInfo = rest[..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return url }
        return String(url[..<scheme.upperBound]) + userInfo[..<colon] + ":***" + rest[at...]
    }
}

/// How a caller means to use a store it opens.
public enum StoreAccess: Sendable {
    /// Create and migrate as needed (the store sink).
    case readWrite
    /// Read an existing store; never create or change one (`query`, `events`, dashboards).
    case readOnly
}

/// Opens stores by location. Each backend module registers the schemes it serves; the SQLite
/// backend is always there. (A registry rather than a dependency keeps SQLite-only builds free
/// of the PostgreSQL driver.)
public enum StoreOpener {
    /// `writer` names the writing instance in datapoint keys (see ``SQLiteStore/writer``).
    public typealias Open = @Sendable (_ location: StoreLocation, _ access: StoreAccess, _ writer: String) async throws(StoreError) -> any Store

    private static let backends = LockedBox<[String: Open]>([:])

    /// Makes `open` serve locations of `kind` ("postgres").
    public static func register(_ kind: String, _ open: @escaping Open) {
        backends.withLock { $0[kind] = open }
    }

    /// Opens the store at `location` (a path or URL as users write it).
    public static func open(_ location: String, access: StoreAccess, writer: String = "") async throws(StoreError) -> any Store {
        try await open(StoreLocation(location), access: access, writer: writer)
    }

    public static func open(_ location: StoreLocation, access: StoreAccess, writer: String = "") async throws(StoreError) -> any Store {
        switch location {
        case .sqlite(let path):
            // Read-only opens never create a file, and refuse one that is not a trailwatch store.
            return try SQLiteStore(path: path, writer: writer, readOnly: access == .readOnly)
        case .postgres:
            guard let open = backends.withLock({ $0["postgres"] }) else {
                throw StoreError("\(location): this build of trailwatch has no PostgreSQL backend")
            }
            return try await open(location, access, writer)
        }
    }
}

/// A value behind a lock (Foundation's NSLock keeps this module free of newer runtime requirements).
final class LockedBox<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

// MARK: For the AWS APIs (CloudWatch Logs, CloudWatch, CloudTrail)

/// Log groups and streams as resources (CreateLogGroup, DescribeLogGroups, CreateLogStream, …).
/// Writing events registers their group and stream too, with the streams' event span, last
/// ingestion time and stored bytes.
public protocol LogGroupRegistry: AnyObject {
    /// Creates a group; false when it existed already.
    @discardableResult
    func createLogGroup(_ name: String, retentionDays: Int?, now: Int64) async throws(StoreError) -> Bool
    /// Deletes a group with its streams and events; false when there was none.
    @discardableResult
    func deleteLogGroup(_ name: String) async throws(StoreError) -> Bool
    /// Groups in name order after `after` (exclusive), those starting with `prefix` only.
    func logGroups(prefix: String?, after: String?, limit: Int) async throws(StoreError) -> [StoredLogGroup]
    /// Creates a stream in an existing group; false when it existed already.
    @discardableResult
    func createLogStream(group: String, stream: String, now: Int64) async throws(StoreError) -> Bool
    /// Deletes a stream with its events; false when there was none.
    @discardableResult
    func deleteLogStream(group: String, stream: String) async throws(StoreError) -> Bool
    /// A page of a group's streams, by name or by last event time.
    func logStreams(_ request: LogStreamsRequest) async throws(StoreError) -> LogStreamsPage
    /// Records events that reached streams without being written here (an API endpoint whose
    /// events go to another store): their span, ingestion time and bytes, as a write would.
    func recordStreamActivity(_ activity: [StreamActivity]) async throws(StoreError)
}

/// Events a stream received: the earliest and latest event time, when, and message bytes.
public struct StreamActivity: Sendable, Equatable {
    public var group: String
    public var stream: String
    public var firstEvent: Int64
    public var lastEvent: Int64
    public var ingestionTime: Int64
    public var bytes: Int64
    public init(group: String, stream: String, firstEvent: Int64, lastEvent: Int64, ingestionTime: Int64, bytes: Int64) {
        self.group = group
        self.stream = stream
        self.firstEvent = firstEvent
        self.lastEvent = lastEvent
        self.ingestionTime = ingestionTime
        self.bytes = bytes
    }

    /// Adds another activity of the same stream.
    public mutating func merge(_ other: StreamActivity) {
        firstEvent = min(firstEvent, other.firstEvent)
        lastEvent = max(lastEvent, other.lastEvent)
        ingestionTime = max(ingestionTime, other.ingestionTime)
        bytes += other.bytes
    }

    /// The key of its stream in ``merged(_:)``.
    public var streamKey: String { group + "\u{0}" + stream }

    /// Activities merged per stream.
    public static func merged(_ activity: [StreamActivity]) -> [String: StreamActivity] {
        var out: [String: StreamActivity] = [:]
        for item in activity {
            if out[item.streamKey] == nil { out[item.streamKey] = item } else { out[item.streamKey]!.merge(item) }
        }
        return out
    }
}

extension LogGroupRegistry {
    /// A group's streams in name order after `after` (exclusive), those starting with `prefix` only.
    public func logStreams(group: String, prefix: String?, after: String?, limit: Int) async throws(StoreError) -> [StoredLogStream] {
        try await logStreams(LogStreamsRequest(group: group, prefix: prefix, limit: limit,
                                               nextToken: after.map { LogStreamsRequest.token(after: $0) })).streams
    }

    /// One group by name.
    public func logGroup(_ name: String) async throws(StoreError) -> StoredLogGroup? {
        // In name order the exact name comes first among those it prefixes.
        try await logGroups(prefix: name, after: nil, limit: 1).first.flatMap { $0.name == name ? $0 : nil }
    }

    /// One stream by name.
    public func logStream(group: String, name: String) async throws(StoreError) -> StoredLogStream? {
        try await logStreams(group: group, prefix: name, after: nil, limit: 1).first.flatMap { $0.name == name ? $0 : nil }
    }
}

/// A page of a group's streams: in name order (after a stream's name) or in order of their last
/// event (streams without events count as time 0), ascending or descending.
public struct LogStreamsRequest: Sendable {
    public var group: String
    /// Streams starting with this only (name order only).
    public var prefix: String?
    public var byLastEvent: Bool
    public var descending: Bool
    public var limit: Int
    /// `nextToken` of the previous page, or nil for the first.
    public var nextToken: String?

    public init(group: String, prefix: String? = nil, byLastEvent: Bool = false, descending: Bool = false, limit: Int = 50,
                nextToken: String? = nil) {
        self.group = group
        self.prefix = prefix
        self.byLastEvent = byLastEvent
        self.descending = descending
        self.limit = limit
        self.nextToken = nextToken
    }

    /// The token continuing after `stream` (its last event time counts in last-event order).
    public static func token(after stream: String, lastEvent: Int64? = nil) -> String {
        "\(lastEvent ?? 0)/" + stream
    }

    /// The (last event, name) a token continues after.
    public static func position(_ token: String) throws(StoreError) -> (lastEvent: Int64, name: String) {
        guard let slash = token.firstIndex(of: "/"), let time = Int64(token[..<slash]) else { throw StoreError("invalid nextToken '\(token)'") }
        return (time, String(token[token.index(after: slash)...]))
    }
}

public struct LogStreamsPage: Sendable {
    public var streams: [StoredLogStream]
    /// Present when more streams follow.
    public var nextToken: String?
    public init(streams: [StoredLogStream], nextToken: String?) {
        self.streams = streams
        self.nextToken = nextToken
    }
}

/// Reading log events back in time order, in pages (GetLogEvents, FilterLogEvents).
public protocol LogEventReading: AnyObject {
    func logEvents(_ request: LogEventsRequest) async throws(StoreError) -> LogEventsPage
}

/// Named JSON documents by kind — metric filters, alarm definitions and states, subscription
/// settings: what the APIs persist that is not an event. The API layer owns their shapes.
public protocol DocumentStoring: AnyObject {
    func putDocument(_ document: StoredDocument) async throws(StoreError)
    func document(kind: String, name: String) async throws(StoreError) -> StoredDocument?
    /// Documents of a kind in name order after `after` (exclusive), those starting with `prefix` only.
    func documents(kind: String, prefix: String?, after: String?, limit: Int) async throws(StoreError) -> [StoredDocument]
    @discardableResult
    func deleteDocument(kind: String, name: String) async throws(StoreError) -> Bool
}

public struct StoredLogGroup: Sendable, Equatable {
    public var name: String
    public var retentionDays: Int?
    /// When it was created or first written to (ms).
    public var creationTime: Int64
    /// Message bytes its streams received (each event counted once, however often it was written).
    public var storedBytes: Int64
    public init(name: String, retentionDays: Int?, creationTime: Int64, storedBytes: Int64 = 0) {
        self.name = name
        self.retentionDays = retentionDays
        self.creationTime = creationTime
        self.storedBytes = storedBytes
    }
}

public struct StoredLogStream: Sendable, Equatable {
    public var name: String
    public var creationTime: Int64
    public var firstEvent: Int64?
    public var lastEvent: Int64?
    /// When events last arrived (ms; the ingestion time of the newest batch).
    public var lastIngestion: Int64?
    /// Message bytes it received (each event counted once).
    public var storedBytes: Int64
    public init(name: String, creationTime: Int64, firstEvent: Int64?, lastEvent: Int64?, lastIngestion: Int64? = nil, storedBytes: Int64 = 0) {
        self.name = name
        self.creationTime = creationTime
        self.firstEvent = firstEvent
        self.lastEvent = lastEvent
        self.lastIngestion = lastIngestion
        self.storedBytes = storedBytes
    }
}

/// Events of one group in [start, end), of some streams (all when empty; or those starting with
/// a prefix), oldest or newest first.
public struct LogEventsRequest: Sendable {
    public var logGroup: String
    public var logStreams: [String]
    /// Only streams whose name starts with this.
    public var logStreamPrefix: String?
    public var start: Int64?
    public var end: Int64?
    public var newestFirst: Bool
    public var limit: Int
    /// Substrings every returned message contains (a pre-filter the store evaluates; callers
    /// apply their full filter pattern to what comes back).
    public var messageContains: [String]
    public var nextToken: String?

    public init(logGroup: String, logStreams: [String] = [], logStreamPrefix: String? = nil, start: Int64? = nil, end: Int64? = nil,
                newestFirst: Bool = false, limit: Int = 10_000, messageContains: [String] = [], nextToken: String? = nil) {
        self.logGroup = logGroup
        self.logStreams = logStreams
        self.logStreamPrefix = logStreamPrefix
        self.start = start
        self.end = end
        self.newestFirst = newestFirst
        self.limit = limit
        self.messageContains = messageContains
        self.nextToken = nextToken
    }
}

public struct StoredLogEvent: Sendable, Equatable {
    public var timestamp: Int64
    public var ingestionTime: Int64
    public var logStream: String
    public var message: String
    /// The event's stable key (an event id).
    public var eventKey: Int64
    public init(timestamp: Int64, ingestionTime: Int64, logStream: String, message: String, eventKey: Int64) {
        self.timestamp = timestamp
        self.ingestionTime = ingestionTime
        self.logStream = logStream
        self.message = message
        self.eventKey = eventKey
    }
}

public struct LogEventsPage: Sendable {
    public var events: [StoredLogEvent]
    /// Present when more events follow.
    public var nextToken: String?
    public init(events: [StoredLogEvent], nextToken: String?) {
        self.events = events
        self.nextToken = nextToken
    }
}

public struct StoredDocument: Sendable, Equatable {
    public var kind: String
    public var name: String
    /// JSON text.
    public var body: String
    public var updated: Int64
    public init(kind: String, name: String, body: String, updated: Int64) {
        self.kind = kind
        self.name = name
        self.body = body
        self.updated = updated
    }
}

// MARK: Leases

/// Leases: each named piece of work (an alarm, a detector) is done by one instance of a fleet at
/// a time. A lease lasts while its holder is alive: when the holder dies, another instance's next
/// `hold` gets it. `hold` never waits for another holder.
public protocol LeaseHolding: AnyObject {
    /// Takes the lease `name` or confirms it is still held; false while another instance holds it.
    func hold(_ name: String) async throws(StoreError) -> Bool
    /// Gives up the lease (when this instance stops doing the work).
    func release(_ name: String) async
    func close() async
}

extension StoreOpener {
    public typealias OpenLeases = @Sendable (_ location: StoreLocation) async throws(StoreError) -> any LeaseHolding

    private static let leaseBackends = LockedBox<[String: OpenLeases]>([:])

    public static func registerLeases(_ kind: String, _ open: @escaping OpenLeases) {
        leaseBackends.withLock { $0[kind] = open }
    }

    /// Leases kept in the store at `location` (PostgreSQL: advisory locks held by a session).
    public static func leases(_ location: StoreLocation) async throws(StoreError) -> any LeaseHolding {
        guard case .postgres = location, let open = leaseBackends.withLock({ $0["postgres"] }) else {
            throw StoreError("\(location): leases need a shared PostgreSQL store (postgres://…)")
        }
        return try await open(location)
    }
}
