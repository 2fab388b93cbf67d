import AWSWire
import FilterPatterns
import Foundation
import TrailwatchCore
import TrailwatchStore

/// A metric filter defined through the API, compiled: the same pattern and transformation
/// engine as the YAML `metric_filter` transform.
public struct APIMetricFilter: Sendable {
    public var group: String
    public var name: String
    public var pattern: FilterPattern
    public var transformation: MetricTransformation
    public var record: MetricFilterRecord

    /// Compiles a stored filter; errors are the API's InvalidParameterException.
    public static func compile(_ record: MetricFilterRecord) throws(AWSError) -> APIMetricFilter {
        let pattern: FilterPattern
        do { pattern = try FilterPattern(record.pattern) } catch {
            throw AWSError("InvalidParameterException", "Invalid metric filter pattern: \(error)")
        }
        guard let list = try? JSONSerialization.jsonObject(with: Data(record.transformations.utf8)) as? [[String: Any]], list.count == 1 else {
            throw AWSError("InvalidParameterException", "metricTransformations must hold exactly one transformation.")
        }
        let t = list[0]
        guard let name = t["metricName"] as? String, let namespace = t["metricNamespace"] as? String, let value = t["metricValue"] as? String else {
            throw AWSError("InvalidParameterException", "A metric transformation needs metricName, metricNamespace and metricValue (strings).")
        }
        let dimensions = ((t["dimensions"] as? [String: String]) ?? [:]).sorted { $0.key < $1.key }.map { (name: $0.key, value: $0.value) }
        guard dimensions.count <= 3 else { throw AWSError("InvalidParameterException", "A metric filter may have at most 3 dimensions.") }
        do {
            let transformation = try MetricTransformation(namespace: namespace, name: name, value: value, defaultValue: (t["defaultValue"] as? NSNumber)?.doubleValue,
                                                          dimensions: dimensions, unit: t["unit"] as? String, for: pattern)
            return APIMetricFilter(group: record.group, name: record.name, pattern: pattern, transformation: transformation, record: record)
        } catch {
            throw AWSError("InvalidParameterException", "Invalid metric transformation: \(error.message) (expected \(error.expected))")
        }
    }
}

/// Runs API-defined metric filters over the events a source accepts, aggregating per minute on
/// event time as CloudWatch publishes metric filter data. Datapoints of a minute are emitted
/// once the minute closed (by event-time watermark or wall clock).
public struct MetricFilterEvaluator: Sendable {
    private var byGroup: [String: [APIMetricFilter]] = [:]
    private var aggregator = MetricAggregator(periodSeconds: 60, latenessMillis: 60_000)

    public init() {}

    public var isEmpty: Bool { byGroup.isEmpty }

    public mutating func reload(_ filters: [APIMetricFilter]) {
        byGroup = Dictionary(grouping: filters, by: \.group)
    }

    /// Samples of `logs`; returns the datapoints of periods that closed.
    public mutating func add(_ logs: LogBatch) -> [MetricDatum] {
        guard !byGroup.isEmpty else { return [] }
        for i in 0..<logs.count {
            guard let filters = byGroup[logs.origin(i).logGroup] else { continue }
            let message = logs.message(i)
            for filter in filters {
                let sample: (Double, [TrailwatchCore.Dimension])
                switch filter.transformation.evaluate(message, pattern: filter.pattern) {
                case .sample(let value, let dimensions): sample = (value, dimensions)
                case .noMatch:
                    guard let value = filter.transformation.defaultValue else { continue }
                    sample = (value, [])
                case .noValue: continue
                }
                let identity = MetricIdentity(namespace: filter.transformation.namespace, name: filter.transformation.name, dimensions: sample.1)
                aggregator.add(sample.0, metric: identity, unit: filter.transformation.unit, at: logs.timestamp(i))
            }
        }
        return aggregator.closeByWatermark()
    }

    public mutating func close(before now: Int64) -> [MetricDatum] { aggregator.closePeriods(before: now) }
    public mutating func closeAll() -> [MetricDatum] { aggregator.closeAll() }
}

extension CloudWatchLogsService {
    /// Every API-defined metric filter, compiled (those that no longer compile are skipped).
    public func loadMetricFilters() async throws(AWSError) -> [APIMetricFilter] {
        let records = try await withStore { store in try await Self.metricFilters(store, group: nil) }
        return records.compactMap { try? APIMetricFilter.compile($0) }
    }

    /// The metric filters of a group (of all groups when nil), by group and name.
    static func metricFilters(_ store: any Store, group: String?) async throws(StoreError) -> [MetricFilterRecord] {
        var records: [MetricFilterRecord] = []
        var after: String?
        while true {
            let page = try await store.documents(kind: MetricFilterRecord.kind, prefix: group.map { MetricFilterRecord.documentPrefix(group: $0) },
                                                 after: after, limit: 500)
            records += page.compactMap(MetricFilterRecord.init)
            guard page.count == 500, let last = page.last else { return records }
            after = last.name
        }
    }

    func putMetricFilter(_ p: APIParameters) async throws(AWSError) -> [UInt8] {
        let group = try p.groupName(identifierKey: nil)!
        let name = try p.streamName("filterName")!
        let pattern = try p.required("filterPattern", min: 0, max: 1024)
        guard let transformations = try p.objects("metricTransformations") else {
            throw APIParameters.invalid("metricTransformations", nil, "Member must not be null")
        }
        guard transformations.count == 1 else {
            throw APIParameters.invalid("metricTransformations", transformations.count, "Member must have length less than or equal to 1")
        }
        let encoded = (try? JSONSerialization.data(withJSONObject: transformations, options: [.sortedKeys])) ?? Data("[]".utf8)
        let text = String(decoding: encoded, as: UTF8.self)
        var record = MetricFilterRecord(group: group, name: name, pattern: pattern, transformations: text, creationTime: now())
        _ = try APIMetricFilter.compile(record)
        try await requireGroup(group)
        let existing = try await withStore { store in try await Self.metricFilters(store, group: group) }
        if let previous = existing.first(where: { $0.name == name }) {
            record.creationTime = previous.creationTime
        } else if existing.count >= 100 {
            throw AWSError("LimitExceededException", "Resource limit exceeded: at most 100 metric filters per log group.")
        }
        let document = record.document
        try await withStore { store in try await store.putDocument(document) }
        ingest.metricFiltersChanged()
        return Self.empty
    }

    func describeMetricFilters(_ p: APIParameters) async throws(AWSError) -> [UInt8] {
        let group = try p.groupName(required: false, identifierKey: nil)
        let prefix = try p.streamName("filterNamePrefix", required: false)
        let metricName = try p.string("metricName", max: 255), namespace = try p.string("metricNamespace", max: 255)
        if (metricName == nil) != (namespace == nil) {
            throw AWSError("InvalidParameterException", "metricName and metricNamespace must be given together.")
        }
        if prefix != nil && group == nil { throw AWSError("InvalidParameterException", "filterNamePrefix requires logGroupName.") }
        let limit = try Self.limit(p, max: 50, default: 50)
        let offset = try p.string("nextToken", min: 1).map { (t) throws(AWSError) -> Int in
            guard let n = Int(t), n >= 0 else { throw AWSError("InvalidParameterException", "The specified nextToken is invalid.") }
            return n
        } ?? 0
        if let group { try await requireGroup(group) }
        let records = try await withStore { store in try await Self.metricFilters(store, group: group) }.filter { record in
            if let prefix, !record.name.hasPrefix(prefix) { return false }
            if let metricName, let namespace {
                guard let compiled = try? APIMetricFilter.compile(record) else { return false }
                return compiled.transformation.name == metricName && compiled.transformation.namespace == namespace
            }
            return true
        }
        let page = records.dropFirst(offset).prefix(limit)
        var reply: [String: Any] = ["metricFilters": page.map { record -> [String: Any] in
            let transformations = (try? JSONSerialization.jsonObject(with: Data(record.transformations.utf8))) ?? []
            return ["filterName": record.name, "filterPattern": record.pattern, "logGroupName": record.group, "creationTime": record.creationTime,
                    "metricTransformations": transformations]
        }]
        if offset + limit < records.count { reply["nextToken"] = String(offset + limit) }
        return JSONReply.encode(reply)
    }

    func deleteMetricFilter(_ p: APIParameters) async throws(AWSError) -> [UInt8] {
        let group = try p.groupName(identifierKey: nil)!
        let name = try p.streamName("filterName")!
        try await requireGroup(group)
        let document = MetricFilterRecord.documentPrefix(group: group) + name
        guard try await withStore({ store in try await store.deleteDocument(kind: MetricFilterRecord.kind, name: document) }) else {
            throw AWSError("ResourceNotFoundException", "The specified metric filter does not exist.")
        }
        ingest.metricFiltersChanged()
        return Self.empty
    }

    func testMetricFilter(_ p: APIParameters) throws(AWSError) -> [UInt8] {
        let text = try p.required("filterPattern", min: 0, max: 1024)
        guard let messages = try p.strings("logEventMessages", min: 1, max: 50) else {
            throw APIParameters.invalid("logEventMessages", nil, "Member must not be null")
        }
        let pattern: FilterPattern
        do { pattern = try FilterPattern(text) } catch {
            throw AWSError("InvalidParameterException", "Invalid metric filter pattern: \(error)")
        }
        var matches: [[String: Any]] = []
        for (i, message) in messages.enumerated() {
            var copy = message
            let extracted = copy.withUTF8 { pattern.extractedValues(UnsafeRawBufferPointer($0)) }
            guard let extracted else { continue }
            var values: [String: String] = [:]
            for (name, value) in extracted { values[name] = String(decoding: value, as: UTF8.self) }
            matches.append(["eventNumber": i + 1, "eventMessage": message, "extractedValues": values])
        }
        return JSONReply.encode(["matches": matches])
    }
}
