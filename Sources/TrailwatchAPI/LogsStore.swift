import LogsQuery
import TrailwatchStore

/// What the CloudWatch Logs API needs from a store: the catalog of groups, streams, retention and
/// metric filters, and reads of stored events. The SQLite store conforms below; a PostgreSQL
/// store conforms by implementing the same calls. (The SQLite store implements it in
/// TrailwatchStore/StoreCatalog.swift; it predates the `Store` seam's LogGroupRegistry,
/// LogEventReading and DocumentStoring, onto which it is to move.)
///
/// Calls are synchronous and may block; the API runs them off the event loops, one connection
/// per thread.
public protocol LogsStore: AnyObject {
    typealias Group = SQLiteStore.CatalogGroup
    typealias Stream = SQLiteStore.CatalogStream
    typealias MetricFilterRecord = SQLiteStore.CatalogMetricFilter
    typealias Event = SQLiteStore.CatalogEvent

    func catalogGroups(prefix: String?, contains pattern: String?, after: String?, limit: Int) throws(StoreError) -> [Group]
    func catalogGroup(_ name: String) throws(StoreError) -> Group?
    func createCatalogGroup(_ name: String, creationTime: Int64) throws(StoreError) -> Bool
    func deleteCatalogGroup(_ name: String) throws(StoreError) -> Bool
    func catalogStreams(group: String, prefix: String?, byLastEvent: Bool, descending: Bool, offset: Int, limit: Int) throws(StoreError) -> [Stream]
    func catalogStream(group: String, name: String) throws(StoreError) -> Stream?
    func createCatalogStream(group: String, name: String, creationTime: Int64) throws(StoreError) -> Bool
    func deleteCatalogStream(group: String, name: String) throws(StoreError) -> Bool
    func recordIngestion(group: String, stream: String, first: Int64, last: Int64, ingestion: Int64, bytes: Int64) throws(StoreError)
    func setRetention(logGroup: String, days: Int?) throws(StoreError)
    func putCatalogMetricFilter(_ filter: MetricFilterRecord) throws(StoreError)
    func catalogMetricFilters(group: String?) throws(StoreError) -> [MetricFilterRecord]
    func deleteCatalogMetricFilter(group: String, name: String) throws(StoreError) -> Bool
    func catalogEvents(group: String, streams: [String]?, streamPrefix: String?, start: Int64?, end: Int64?,
                       after cursor: (timestamp: Int64, id: Int64)?, newestFirst: Bool, limit: Int) throws(StoreError) -> [Event]
    func eventStatistics(groups: [String], start: Int64, end: Int64) throws(StoreError) -> (events: Int64, bytes: Int64)
    /// Runs a Logs-Insights-style query over `groups` in [start, end).
    func runQuery(_ text: String, groups: [String], start: Int64, end: Int64, now: Int64) throws -> QueryResult
}

extension SQLiteStore: LogsStore {
    public func runQuery(_ text: String, groups: [String], start: Int64, end: Int64, now: Int64) throws -> QueryResult {
        try StoreQuery(store: self, LogQueryRequest(text: text, start: start, end: end, logGroups: groups, now: now)).run()
    }
}
