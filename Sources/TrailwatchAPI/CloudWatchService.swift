import Alarms
import AWSWire
import Foundation
import TrailwatchCore
import TrailwatchStore

/// Where PutMetricData datapoints go: the `cloudwatch_api` source hands them to its pipeline
/// (alarms, the store sink) and answers once they are durable.
public protocol MetricsIngest: Sendable {
    /// Returns once every sink downstream acknowledged the datapoints; throws ThrottlingException
    /// when the pipeline has no room, ServiceUnavailableException when it stops or a sink failed.
    func ingest(_ data: [MetricDatum]) async throws(AWSError)
    /// Alarms were created, changed, deleted or set to a state through the API.
    func alarmsChanged()
}

/// The CloudWatch API (metrics, alarms, anomaly detectors) in all three protocols CloudWatch
/// clients speak: Smithy RPC v2 CBOR (botocore ≥ 1.42, the AWS CLI), awsJson 1.0 and query.
/// Reads come from the store the pipeline's store sink writes, so datapoints from PutMetricData
/// and from `metric_filter` stages are the same metrics; alarms are store documents that the
/// `cloudwatch_api` source evaluates with the `alarm` transform's engine.
public final class CloudWatchService: AWSService, Sendable {
    /// Basic statistics at periods of whole hours come from the store's hourly statistic sets
    /// (reads start on the hour, so every period is a union of hours); anything else reads datapoints.
    static func readsHourlySets(_ statistic: MetricStatistic, period: Int64) -> Bool {
        statistic.isBasic && period % 3600 == 0
    }

    public let targetPrefix = "GraniteServiceVersion20100801"
    public let signingName = "monitoring"
    public var queryVersion: String? { "2010-08-01" }
    public var documentShape: AWSDocumentCodec.ServiceShape {
        AWSDocumentCodec.ServiceShape(xmlNamespace: "http://monitoring.amazonaws.com/doc/2010-08-01/", queryCompatible: true)
    }

    public struct Settings: Sendable {
        public var region = "us-east-1"
        public var accountID = "000000000000"
        /// PutMetricAlarm refuses more (LimitExceeded).
        public var maxAlarms = 5000
        /// How far back anomaly bands learn (GetMetricData's ANOMALY_DETECTION_BAND).
        public var bandSettings = AnomalyBandModel.Settings()
        public init() {}
    }

    /// Document kinds in the store.
    public enum Documents {
        /// An alarm as PutMetricAlarm took it (JSON, plus AlarmConfigurationUpdatedTimestamp and ActionsEnabled).
        public static let alarm = "metric-alarm"
        /// The evaluator's state of an alarm (written by the `cloudwatch_api` source).
        public static let alarmState = "alarm-state"
        /// A SetAlarmState waiting for the evaluator.
        public static let setState = "alarm-set-state"
        public static let anomalyDetector = "anomaly-detector"
    }

    public let settings: Settings
    let open: @Sendable () async throws(StoreError) -> any Store
    let ingest: any MetricsIngest
    let now: @Sendable () -> Int64

    public init(settings: Settings = Settings(), open: @escaping @Sendable () async throws(StoreError) -> any Store, ingest: any MetricsIngest,
                now: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }) {
        self.settings = settings
        self.open = open
        self.ingest = ingest
        self.now = now
    }

    public func handle(_ call: AWSOperationCall) async -> AWSReply {
        do {
            let input = APIInput(try AWSDocumentCodec.input(call))
            let output = try await dispatch(call.operation, input)
            return AWSDocumentCodec.reply(output, call, documentShape)
        } catch {
            return AWSDocumentCodec.errorReply(error, call.wireProtocol, requestID: call.requestID, documentShape)
        }
    }

    func dispatch(_ operation: String, _ input: APIInput) async throws(AWSError) -> AWSValue {
        switch operation {
        case "PutMetricData": return try await putMetricData(input)
        case "ListMetrics": return try await listMetrics(input)
        case "GetMetricStatistics": return try await getMetricStatistics(input)
        case "GetMetricData": return try await getMetricData(input)
        case "PutMetricAlarm": return try await putMetricAlarm(input)
        case "DescribeAlarms": return try await describeAlarms(input)
        case "DescribeAlarmsForMetric": return try await describeAlarmsForMetric(input)
        case "DescribeAlarmHistory": return try await describeAlarmHistory(input)
        case "DeleteAlarms": return try await deleteAlarms(input)
        case "SetAlarmState": return try await setAlarmState(input)
        case "EnableAlarmActions": return try await setActionsEnabled(input, true)
        case "DisableAlarmActions": return try await setActionsEnabled(input, false)
        case "PutAnomalyDetector": return try await putAnomalyDetector(input)
        case "DescribeAnomalyDetectors": return try await describeAnomalyDetectors(input)
        case "DeleteAnomalyDetector": return try await deleteAnomalyDetector(input)
        default:
            throw AWSError("InvalidAction", "The action \(operation) is not valid for this endpoint (trailwatch serves CloudWatch's metric, alarm and anomaly-detector operations; see the README).")
        }
    }

    /// Runs `body` on a store connection opened for this call.
    func withStore<T>(_ body: (any Store) async throws(StoreError) -> T) async throws(AWSError) -> T {
        let store: any Store
        do { store = try await open() } catch { throw AWSError("InternalServiceError", "The store is unavailable: \(error)", status: 500) }
        do {
            let result = try await body(store)
            await store.close()
            return result
        } catch {
            await store.close()
            throw AWSError("InternalServiceError", "The store failed: \(error)", status: 500)
        }
    }

    // MARK: Metrics

    static let units: Set<String> = ["Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes", "Terabytes",
                                     "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count", "Bytes/Second",
                                     "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
                                     "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"]

    /// CloudWatch's value range: ±2^360, no NaN or infinity.
    static func checkValue(_ value: Double, _ input: APIInput, _ key: String) throws(AWSError) {
        guard value.isFinite, abs(value) <= 0x1p360, value == 0 || abs(value) >= 0x1p-260 else {
            throw input.invalid(key, "value \(value) is outside CloudWatch's range (±2^360, magnitude at least 2^-260, finite)")
        }
    }

    func dimensions(_ input: APIInput, _ key: String = "Dimensions") throws(AWSError) -> [TrailwatchCore.Dimension] {
        var out: [TrailwatchCore.Dimension] = []
        for item in try input.list(key, max: 30) {
            let name = try item.required("Name", max: 255)
            let value = try item.required("Value", max: 1024)
            guard !out.contains(where: { $0.name == name }) else { throw item.invalid("Name", "'\(name)' appears twice among the dimensions") }
            out.append(TrailwatchCore.Dimension(name: name, value: value))
        }
        return out.sorted { $0.name < $1.name }
    }

    func putMetricData(_ input: APIInput) async throws(AWSError) -> AWSValue {
        let namespace = try input.required("Namespace", max: 255)
        guard !namespace.hasPrefix(":") else { throw input.invalid("Namespace", "must not start with ':'") }
        try input.reject(["EntityMetricData", "StrictEntityValidation"], "entities are not modelled")
        let items = try input.list("MetricData", max: 1000)
        guard !items.isEmpty else { throw input.missing("MetricData") }
        let nowMillis = now()
        var data: [MetricDatum] = []
        data.reserveCapacity(items.count)
        // Items of one metric in a row (the usual request) parse and validate its name, dimensions
        // and unit once, and share one identity.
        var previous: (name: AWSValue?, dimensions: AWSValue?, unit: AWSValue?, identity: MetricIdentity, unitText: String?)?
        for item in items {
            let identity: MetricIdentity
            let unit: String?
            let nameValue = item.value["MetricName"], dimensionsValue = item.value["Dimensions"], unitValue = item.value["Unit"]
            if let previous, previous.name == nameValue, previous.dimensions == dimensionsValue, previous.unit == unitValue {
                identity = previous.identity
                unit = previous.unitText
            } else {
                let name = try item.required("MetricName", max: 255)
                let dims = try dimensions(item)
                unit = try item.string("Unit")
                if let unit, !Self.units.contains(unit) { throw item.invalid("Unit", "'\(unit)' is not a CloudWatch unit") }
                identity = MetricIdentity(namespace: namespace, name: name, dimensions: dims)
                previous = (nameValue, dimensionsValue, unitValue, identity, unit)
            }
            let resolution = try item.int("StorageResolution") ?? 60
            guard resolution == 1 || resolution == 60 else { throw item.invalid("StorageResolution", "must be 1 or 60") }
            var millis = nowMillis
            if let seconds = try item.timestamp("Timestamp") {
                millis = Int64((seconds * 1000).rounded(.down))
                guard millis >= nowMillis - 14 * 86_400_000, millis <= nowMillis + 2 * 3_600_000 else {
                    throw item.invalid("Timestamp", "must be within the last two weeks and at most two hours ahead")
                }
            }
            func datum(count: Double, sum: Double, min: Double, max: Double) -> MetricDatum {
                MetricDatum(metric: identity, unit: unit, timestamp: millis, period: Int(resolution), sampleCount: count, sum: sum, minimum: min, maximum: max)
            }
            let hasValue = item.has("Value"), hasStats = item.has("StatisticValues"), hasValues = item.has("Values")
            guard (hasValue ? 1 : 0) + (hasStats ? 1 : 0) + (hasValues ? 1 : 0) == 1 else {
                throw AWSError("InvalidParameterCombination", "\(item.path): give exactly one of Value, StatisticValues and Values.")
            }
            if hasValue {
                let value = try item.double("Value")!
                try Self.checkValue(value, item, "Value")
                data.append(datum(count: 1, sum: value, min: value, max: value))
            } else if let stats = try item.child("StatisticValues") {
                let count = try stats.double("SampleCount", required: true)!, sum = try stats.double("Sum", required: true)!
                let minimum = try stats.double("Minimum", required: true)!, maximum = try stats.double("Maximum", required: true)!
                for (key, v) in [("SampleCount", count), ("Sum", sum), ("Minimum", minimum), ("Maximum", maximum)] { try Self.checkValue(v, stats, key) }
                guard count > 0, minimum <= maximum else { throw item.invalid("StatisticValues", "needs SampleCount > 0 and Minimum <= Maximum") }
                data.append(datum(count: count, sum: sum, min: minimum, max: maximum))
            } else {
                let values = try item.list("Values", max: 150)
                let counts = try item.list("Counts", max: 150)
                guard counts.isEmpty || counts.count == values.count else {
                    throw AWSError("InvalidParameterCombination", "\(item.path): Counts must have as many members as Values.")
                }
                // One row per distinct value (the store merges the rows of one timestamp into a statistic set).
                var weights: [Double: Double] = [:]
                var order: [Double] = []
                for (index, entry) in values.enumerated() {
                    guard let value = entry.value.doubleValue else { throw AWSError.invalidValue(entry.path, "must be a number") }
                    try Self.checkValue(value, item, "Values.member.\(index + 1)")
                    var weight = 1.0
                    if !counts.isEmpty {
                        guard let w = counts[index].value.doubleValue, w >= 0, w.isFinite else { throw AWSError.invalidValue(counts[index].path, "must be a count ≥ 0") }
                        weight = w
                    }
                    guard weight > 0 else { continue }
                    if weights[value] == nil { order.append(value) }
                    weights[value, default: 0] += weight
                }
                for value in order {
                    let weight = weights[value]!
                    // Counts are unbounded doubles: their sum, or a value times its count, can leave the doubles.
                    guard weight.isFinite, (value * weight).isFinite else {
                        throw item.invalid("Counts", "the counts of \(value) add up to more than a datapoint can hold")
                    }
                    data.append(datum(count: weight, sum: value * weight, min: value, max: value))
                }
            }
        }
        if !data.isEmpty { try await ingest.ingest(data) }
        return .map([:])
    }

    static func dimensionsValue(_ dims: [TrailwatchCore.Dimension]) -> AWSValue {
        .list(dims.map { .map(["Name": .string($0.name), "Value": .string($0.value)]) })
    }

    /// Dimensions as the store keeps them (`{"a":"b"}`), as a list of pairs.
    static func parseStoredDimensions(_ text: String) -> [TrailwatchCore.Dimension] {
        guard let value = try? AWSJSONValue.decode(Array(text.utf8)), case .map(let members) = value else { return [] }
        return members.keys.sorted().compactMap { key in members[key]?.stringValue.map { TrailwatchCore.Dimension(name: key, value: $0) } }
    }

    func listMetrics(_ input: APIInput) async throws(AWSError) -> AWSValue {
        let namespace = try input.string("Namespace", max: 255)
        let metricName = try input.string("MetricName", max: 255)
        var filters: [(String, String?)] = []
        for item in try input.list("Dimensions", max: 30) {
            filters.append((try item.required("Name", max: 255), try item.string("Value", max: 1024)))
        }
        let recently = try input.string("RecentlyActive")
        if let recently, recently != "PT3H" { throw input.invalid("RecentlyActive", "must be PT3H") }
        try input.reject(["OwningAccount"], "there is one account")
        let includeLinked = try input.bool("IncludeLinkedAccounts") ?? false
        let nowMillis = now()
        let start = recently != nil ? nowMillis - 3 * 3_600_000 : nowMillis - 14 * 86_400_000
        let stored = try await withStore { store throws(StoreError) in try await store.metrics(start: start, end: nowMillis + 2 * 3_600_000, limit: 1_000_000) }
        var matching: [(StoredMetric, [TrailwatchCore.Dimension])] = []
        for metric in stored {
            if let namespace, metric.namespace != namespace { continue }
            if let metricName, metric.name != metricName { continue }
            let dims = Self.parseStoredDimensions(metric.dimensions)
            // Alarm bands are the alarm transform's own output, not user metrics.
            guard filters.allSatisfy({ filter in dims.contains { $0.name == filter.0 && (filter.1 == nil || $0.value == filter.1) } }) else { continue }
            matching.append((metric, dims))
        }
        let offset = try pageOffset(input)
        let page = Array(matching.dropFirst(offset).prefix(500))
        var output: [String: AWSValue] = [
            "Metrics": .list(page.map { metric, dims in
                .map(["Namespace": .string(metric.namespace), "MetricName": .string(metric.name), "Dimensions": Self.dimensionsValue(dims)])
            }),
        ]
        if includeLinked { output["OwningAccounts"] = .list(page.map { _ in .string(settings.accountID) }) }
        if offset + page.count < matching.count { output["NextToken"] = .string(String(offset + page.count)) }
        return .map(output)
    }

    func pageOffset(_ input: APIInput, key: String = "NextToken") throws(AWSError) -> Int {
        guard let token = try input.string(key, max: 1024) else { return 0 }
        guard let offset = Int(token), offset >= 0 else { throw AWSError("InvalidNextToken", "The service couldn't process the pagination token.") }
        return offset
    }

    /// Period is an Integer (32 bits) in CloudWatch's model; the bound also keeps the time
    /// arithmetic on periods (bucket starts, `time + period`) far from overflow.
    static func validPeriod(_ period: Int64) -> Bool {
        [1, 5, 10, 20, 30].contains(period) || (period >= 60 && period % 60 == 0 && period <= Int64(Int32.max))
    }

    func getMetricStatistics(_ input: APIInput) async throws(AWSError) -> AWSValue {
        let namespace = try input.required("Namespace", max: 255)
        let name = try input.required("MetricName", max: 255)
        let dims = try dimensions(input)
        let start = Int64(try input.timestamp("StartTime", required: true)!.rounded(.down))
        let end = Int64(try input.timestamp("EndTime", required: true)!.rounded(.up))
        let period = try input.int("Period", required: true, min: 1)!
        guard Self.validPeriod(period) else { throw input.invalid("Period", "must be 1, 5, 10, 20, 30 or a multiple of 60 up to 2147483640") }
        guard end > start else { throw input.invalid("StartTime", "must be before EndTime") }
        try input.reject(["Unit"], "datapoints are not kept per unit; leave Unit out")
        let basic = try input.strings("Statistics", max: 5)
        let extended = try input.strings("ExtendedStatistics", max: 10)
        guard !basic.isEmpty || !extended.isEmpty else { throw AWSError("MissingParameter", "The parameter Statistics or ExtendedStatistics must be specified.") }
        var statistics: [(String, MetricStatistic, Bool)] = []
        for text in basic {
            guard let s = MetricStatistic(text), s.isBasic else { throw input.invalid("Statistics", "'\(text)' is not one of SampleCount, Average, Sum, Minimum, Maximum") }
            statistics.append((text, s, false))
        }
        for text in extended {
            guard let s = MetricStatistic(text), !s.isBasic else { throw input.invalid("ExtendedStatistics", "'\(text)' is not an extended statistic (p99, tm90, …)") }
            statistics.append((text, s, true))
        }
        let requested = (end - start + period - 1) / period
        guard requested <= 1440 else {
            throw AWSError("InvalidParameterCombination", "You have requested up to \(requested) datapoints, which exceeds the limit of 1440. You may reduce the datapoints requested by increasing Period, or decreasing the time range.")
        }
        // Periods start at StartTime: from whole hours on, hour-multiple periods are unions of the store's hourly sets.
        let hourly = extended.isEmpty && period % 3600 == 0 && start % 3600 == 0
        let rows = try await withStore { store throws(StoreError) in
            hourly
                ? try await store.hourlyDatapoints(namespace: namespace, name: name, dimensions: StoreConventions.dimensionsText(dims),
                                                   start: start * 1000, end: end * 1000, limit: 10_000_000)
                : try await store.datapoints(namespace: namespace, name: name, dimensions: StoreConventions.dimensionsText(dims),
                                             start: start * 1000, end: end * 1000, limit: 10_000_000)
        }
        var buckets: [Int64: PeriodAggregate] = [:]
        let keep = !extended.isEmpty
        for row in rows {
            let seconds = row.timestamp / 1000
            buckets[(seconds - start) / period * period + start, default: PeriodAggregate()].add(row, keepSamples: keep)
        }
        var datapoints: [AWSValue] = []
        for time in buckets.keys.sorted() {
            let bucket = buckets[time]!
            var point: [String: AWSValue] = ["Timestamp": .timestamp(Double(time))]
            var extendedValues: [String: AWSValue] = [:]
            for (text, statistic, isExtended) in statistics {
                guard let value = bucket.value(statistic) else { continue }
                if isExtended { extendedValues[text] = .double(value) } else { point[text] = .double(value) }
            }
            if !extendedValues.isEmpty { point["ExtendedStatistics"] = .map(extendedValues) }
            datapoints.append(.map(point))
        }
        return .map(["Label": .string(name), "Datapoints": .list(datapoints)])
    }

    func getMetricData(_ input: APIInput) async throws(AWSError) -> AWSValue {
        let queries = try input.list("MetricDataQueries", max: 500)
        guard !queries.isEmpty else { throw input.missing("MetricDataQueries") }
        let start = Int64(try input.timestamp("StartTime", required: true)!.rounded(.down))
        let end = Int64(try input.timestamp("EndTime", required: true)!.rounded(.up))
        guard end > start else { throw input.invalid("StartTime", "must be before EndTime") }
        let scanBy = try input.string("ScanBy") ?? "TimestampDescending"
        guard scanBy == "TimestampDescending" || scanBy == "TimestampAscending" else {
            throw input.invalid("ScanBy", "must be TimestampDescending or TimestampAscending")
        }
        let maxDatapoints = try input.int("MaxDatapoints", min: 1) ?? 100_800
        try input.reject(["LabelOptions"], "labels are shown in UTC")
        let offset = try pageOffset(input)

        struct Query {
            var id: String
            var label: String?
            var returnData: Bool
            var stat: (metric: MetricIdentity, period: Int64, statistic: MetricStatistic)?
            var expression: MetricExpression?
        }
        var parsed: [Query] = []
        for item in queries {
            let id = try item.required("Id", max: 255)
            guard let first = id.unicodeScalars.first, first.properties.isLowercase,
                  id.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" }) else {
                throw item.invalid("Id", "'\(id)' must start with a lowercase letter and hold only letters, digits and underscores")
            }
            guard !parsed.contains(where: { $0.id == id }) else { throw item.invalid("Id", "'\(id)' is used by two queries") }
            try item.reject(["AccountId"], "there is one account")
            var query = Query(id: id, label: try item.string("Label", max: 1024), returnData: try item.bool("ReturnData") ?? true)
            let stat = try item.child("MetricStat")
            let expression = try item.string("Expression", max: 2048)
            guard (stat == nil) != (expression == nil) else {
                throw AWSError("InvalidParameterCombination", "\(item.path): give exactly one of MetricStat and Expression.")
            }
            if let stat {
                let metric = try stat.child("Metric", required: true)!
                let period = try stat.int("Period", required: true, min: 1)!
                guard Self.validPeriod(period) else { throw stat.invalid("Period", "must be 1, 5, 10, 20, 30 or a multiple of 60 up to 2147483640") }
                let statText = try stat.required("Stat", max: 255)
                guard let statistic = MetricStatistic(statText) else { throw stat.invalid("Stat", "'\(statText)' is not a statistic") }
                try stat.reject(["Unit"], "datapoints are not kept per unit; leave Unit out")
                query.stat = (MetricIdentity(namespace: try metric.required("Namespace", max: 255), name: try metric.required("MetricName", max: 255),
                                             dimensions: try dimensions(metric)), period, statistic)
            } else if let expression {
                do { query.expression = try MetricExpression.parse(expression) } catch {
                    throw item.invalid("Expression", "'\(expression)': \(error.message)")
                }
            }
            parsed.append(query)
        }
        for query in parsed {
            for reference in query.expression?.references ?? [] where !parsed.contains(where: { $0.id == reference }) {
                throw AWSError("ValidationError", "Expression of \(query.id) names '\(reference)', which is not a query id.")
            }
        }
        let history = settings.bandSettings.history / 1000
        let bandReads = Set(parsed.compactMap { q -> String? in if case .band(let id, _)? = q.expression { return id }; return nil })
        // Every MetricStat, read once (band inputs with their training history).
        var seriesByID: [String: Series] = [:]
        let statQueries = parsed.compactMap { q in q.stat.map { (q.id, $0) } }
        // One read per (namespace, name, start): queries of one metric name differ in dimensions
        // only, and the store's index is by name and time.
        struct Read: Hashable { var namespace: String; var name: String; var from: Int64 }
        var reads: [Read: [(id: String, dimensions: String, period: Int64, statistic: MetricStatistic)]] = [:]
        var readOrder: [Read] = []
        for (id, stat) in statQueries {
            // Periods start on multiples of the period (as CloudWatch rounds StartTime down); band
            // inputs read their training history too. Reads start on the hour so queries share them.
            var from = bandReads.contains(id) ? start - history : start
            from -= ((from % stat.period) + stat.period) % stat.period
            from -= ((from % 3600) + 3600) % 3600
            let read = Read(namespace: stat.metric.namespace, name: stat.metric.name, from: from)
            if reads[read] == nil { readOrder.append(read) }
            reads[read, default: []].append((id, StoreConventions.dimensionsText(stat.metric.dimensions), stat.period, stat.statistic))
        }
        // Without expressions every result is one MetricStat on its own: those are read one series at
        // a time, in query order, only as far as the page reaches (see below), so a request's cost and
        // memory follow the page, not the metric's data. Basic statistics at whole-hour periods come
        // from the store's hourly sets (a row per series and hour, whatever the data's resolution):
        // one read per metric name serves them faster than a read per series.
        let hourlyOnly = statQueries.allSatisfy { Self.readsHourlySets($0.1.statistic, period: $0.1.period) }
        let lazy = !parsed.contains { $0.expression != nil } && !hourlyOnly
        if !lazy {
        try await withStore { store throws(StoreError) in
            for read in readOrder {
                let wanted = reads[read]!
                let dimensions = wanted.count == 1 ? wanted[0].dimensions : nil
                // Basic statistics at periods of whole hours come from the store's hourly statistic
                // sets (reads start on the hour, so every period is a union of hours).
                let hourly = wanted.allSatisfy { Self.readsHourlySets($0.statistic, period: $0.period) }
                let rows = hourly
                    ? try await store.hourlyDatapoints(namespace: read.namespace, name: read.name, dimensions: dimensions,
                                                       start: read.from * 1000, end: end * 1000, limit: 50_000_000)
                    : try await store.datapoints(namespace: read.namespace, name: read.name, dimensions: dimensions,
                                                 start: read.from * 1000, end: end * 1000, limit: 50_000_000)
                let byDimensions = Dictionary(grouping: rows, by: \.dimensions)
                for query in wanted {
                    seriesByID[query.id] = Series.aggregate(byDimensions[query.dimensions] ?? [], period: query.period, statistic: query.statistic)
                }
            }
        }
        }
        struct ResultSeries { var id: String; var label: String; var points: [(time: Int64, value: Double)] }
        var results: [ResultSeries] = []
        var messages: [AWSValue] = []
        // A period belongs to the range when it overlaps [start, end).
        let periods = Dictionary(statQueries.map { ($0.0, $0.1.period) }, uniquingKeysWith: { a, _ in a })
        var evaluated: [String: Series] = [:]
        for (id, series) in seriesByID {
            let period = periods[id] ?? 60
            evaluated[id] = Series(points: series.points.filter { $0.time + period > start && $0.time < end })
        }
        // Expressions in dependency order: repeat until every one whose inputs are known is done.
        var pending = parsed.filter { $0.expression != nil }
        while !pending.isEmpty {
            let before = pending.count
            for query in pending {
                guard let expression = query.expression, expression.references.allSatisfy({ evaluated[$0] != nil }) else { continue }
                if case .band(let id, let width) = expression {
                    guard let full = seriesByID[id], let period = parsed.first(where: { $0.id == id })?.stat?.period else {
                        throw AWSError("ValidationError", "ANOMALY_DETECTION_BAND of \(query.id) needs a MetricStat query, not '\(id)'.")
                    }
                    var model = AnomalyBandModel(settings: settings.bandSettings)
                    var lower: [(time: Int64, value: Double)] = [], upper: [(time: Int64, value: Double)] = []
                    let values = Dictionary(full.points.map { ($0.time, $0.value) }, uniquingKeysWith: { a, _ in a })
                    if let first = full.points.first?.time {
                        var t = first
                        while t < end {
                            let band = model.band(at: t * 1000, width: width)
                            if t + period > start, let band { lower.append((t, band.lower)); upper.append((t, band.upper)) }
                            if let v = values[t] { model.train(at: t * 1000, value: v, band: band) }
                            t += period
                        }
                    }
                    let label = query.label ?? query.id
                    evaluated[query.id] = Series(points: upper)
                    if query.returnData {
                        results.append(ResultSeries(id: query.id, label: label + " Lower", points: lower))
                        results.append(ResultSeries(id: query.id, label: label + " Upper", points: upper))
                    }
                } else {
                    let value: MetricExpression.Value
                    do { value = try expression.evaluate { evaluated[$0] } } catch {
                        throw AWSError("ValidationError", "Expression of \(query.id): \(error.message)")
                    }
                    switch value {
                    case .series(let s): evaluated[query.id] = s
                    case .scalar(let v):
                        evaluated[query.id] = Series(points: [])
                        messages.append(.map(["Code": "ScalarExpression", "Value": .string("\(query.id) evaluates to the scalar \(v)")]))
                    }
                }
                pending.removeAll { $0.id == query.id }
            }
            if pending.count == before {
                throw AWSError("ValidationError", "Expressions \(pending.map(\.id).joined(separator: ", ")) refer to each other in a cycle.")
            }
        }
        for query in parsed where !lazy && query.returnData && !(query.expression?.isBand ?? false) {
            let label = query.label ?? query.stat?.metric.name ?? query.id
            results.append(ResultSeries(id: query.id, label: label, points: evaluated[query.id]?.points ?? []))
        }
        // Results in query order; pages cut across them by datapoint count.
        let order = Dictionary(parsed.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
        results.sort { (order[$0.id] ?? 0) < (order[$1.id] ?? 0) }
        var pager = MetricDataPage(skip: offset, budget: Int(min(maxDatapoints, 10_000_000)), descending: scanBy == "TimestampDescending")
        for result in results { pager.add(result.id, result.label, result.points) }
        if lazy {
            try await withStore { store throws(StoreError) in
                for query in parsed where query.returnData {
                    guard let stat = query.stat else { continue }
                    let label = query.label ?? stat.metric.name
                    let dimensions = StoreConventions.dimensionsText(stat.metric.dimensions)
                    let period = stat.period
                    // The first period kept is the one holding `start` (periods start on multiples of the period).
                    let first = start - ((start % period) + period) % period
                    if pager.isFull {
                        // Past the page: only whether the result has datapoints (its status) matters.
                        var cursor = first * 1000, window = max(1, 3600 / period) * period * 1000
                        var found = false
                        while !found && cursor < end * 1000 {
                            let upTo = min(end * 1000, cursor + window)
                            let rows = try await store.datapoints(namespace: stat.metric.namespace, name: stat.metric.name, dimensions: dimensions,
                                                                  start: cursor, end: upTo, limit: 50_000_000)
                            found = !Series.aggregate(rows, period: period, statistic: stat.statistic).points.isEmpty
                            cursor = upTo
                            window *= 2
                        }
                        pager.add(query.id, label, [], more: found)
                        continue
                    }
                    let rows = Self.readsHourlySets(stat.statistic, period: period)
                        ? try await store.hourlyDatapoints(namespace: stat.metric.namespace, name: stat.metric.name, dimensions: dimensions,
                                                           start: first * 1000, end: end * 1000, limit: 50_000_000)
                        : try await store.datapoints(namespace: stat.metric.namespace, name: stat.metric.name, dimensions: dimensions,
                                                     start: first * 1000, end: end * 1000, limit: 50_000_000)
                    let series = Series.aggregate(rows, period: period, statistic: stat.statistic)
                    pager.add(query.id, label, series.points.filter { $0.time + period > start && $0.time < end })
                }
            }
        }
        var output: [String: AWSValue] = ["MetricDataResults": .list(pager.results), "Messages": .list(messages)]
        if pager.truncated { output["NextToken"] = .string(String(offset + pager.taken)) }
        return .map(output)
    }
}

/// One page of GetMetricData results: the datapoints after `skip` (what earlier pages returned, counted across the
/// results in query order), at most `budget` of them.
struct MetricDataPage {
    var skip: Int
    var budget: Int
    let descending: Bool
    /// Datapoints this page returns.
    private(set) var taken = 0
    /// Whether a result has datapoints beyond this page (the reply then carries a NextToken).
    private(set) var truncated = false
    private(set) var results: [AWSValue] = []

    /// Nothing more fits: a further result only needs to say whether it has datapoints.
    var isFull: Bool { budget == 0 && skip == 0 }

    /// Adds one result's part of the page; `more`: it holds datapoints beyond `points` (not read).
    mutating func add(_ id: String, _ label: String, _ points: [(time: Int64, value: Double)], more: Bool = false) {
        var points = points
        if descending { points.reverse() }
        let dropped = min(skip, points.count)
        skip -= dropped
        points.removeFirst(dropped)
        let page = Array(points.prefix(budget))
        budget -= page.count
        taken += page.count
        let partial = page.count < points.count || more
        if partial { truncated = true }
        results.append(.map(["Id": .string(id), "Label": .string(label),
                             "Timestamps": .list(page.map { .timestamp(Double($0.time)) }), "Values": .list(page.map { .double($0.value) }),
                             "StatusCode": .string(partial ? "PartialData" : "Complete")]))
    }
}

extension AWSError {
    static func invalidValue(_ name: String, _ message: String) -> AWSError {
        AWSError("InvalidParameterValue", "The parameter \(name) \(message).")
    }
}
