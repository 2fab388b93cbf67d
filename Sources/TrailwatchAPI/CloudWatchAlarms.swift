import Alarms
import AWSWire
import Foundation
import TrailwatchCore
import TrailwatchStore

/// What the `cloudwatch_api` source's evaluator keeps per alarm in the store (document kind
/// ``CloudWatchService/Documents/alarmState``); the API reads the parts it shows.
public struct AlarmStateView: Decodable, Sendable {
    public struct Engine: Decodable, Sendable {
        public var state: AlarmState
    }

    /// The ``AlarmDefinition/fingerprint`` the state belongs to (a state of an older definition is stale).
    public var definition: String
    public var alarm: Engine
    public var stateReason: String?
    /// When the state last changed (ms).
    public var stateUpdated: Int64?
}

extension CloudWatchService {
    /// A stored alarm: its PutMetricAlarm input (with our bookkeeping members) and its definition.
    struct StoredAlarm {
        var input: [String: AWSValue]
        var definition: AlarmDefinition
        var name: String { definition.alarmName }
    }

    /// Members that reach the engine; what the query protocol sends as strings is typed here.
    static func normalizeAlarm(_ value: AWSValue) -> AWSValue {
        switch value {
        case .map(let members):
            var out: [String: AWSValue] = [:]
            for (key, member) in members {
                switch key {
                case "Period", "EvaluationPeriods", "DatapointsToAlarm": out[key] = member.int64Value.map { .int($0) } ?? member
                case "Threshold": out[key] = member.doubleValue.map { .double($0) } ?? member
                case "ActionsEnabled", "ReturnData": out[key] = member.boolValue.map { .bool($0) } ?? member
                default: out[key] = normalizeAlarm(member)
                }
            }
            return .map(out)
        case .list(let items): return .list(items.map(normalizeAlarm))
        default: return value
        }
    }

    static func decodeAlarm(_ members: [String: AWSValue]) -> StoredAlarm? {
        guard let definition = try? JSONDecoder().decode(AlarmDefinition.self, from: Data(AWSJSONValue.encode(.map(members)))) else { return nil }
        return StoredAlarm(input: members, definition: definition)
    }

    func loadAlarm(_ store: any Store, _ name: String) async throws(StoreError) -> StoredAlarm? {
        guard let document = try await store.document(kind: Documents.alarm, name: name),
              case .map(let members)? = try? AWSJSONValue.decode(Array(document.body.utf8)) else { return nil }
        return Self.decodeAlarm(members)
    }

    func allAlarms(_ store: any Store, prefix: String? = nil) async throws(StoreError) -> [StoredAlarm] {
        var out: [StoredAlarm] = []
        var after: String?
        while true {
            let page = try await store.documents(kind: Documents.alarm, prefix: prefix, after: after, limit: 1000)
            for document in page {
                if case .map(let members)? = try? AWSJSONValue.decode(Array(document.body.utf8)), let alarm = Self.decodeAlarm(members) { out.append(alarm) }
            }
            guard page.count == 1000, let last = page.last else { return out }
            after = last.name
        }
    }

    func putMetricAlarm(_ input: APIInput) async throws(AWSError) -> AWSValue {
        let name = try input.required("AlarmName", max: 255)
        _ = try input.string("AlarmDescription", min: 0, max: 1024)
        try input.reject(["Unit"], "datapoints are not kept per unit; leave Unit out")
        try input.reject(["Tags"], "tags are not kept; ListTagsForResource is not served")
        if let evaluate = try input.string("EvaluateLowSampleCountPercentile"), evaluate != "evaluate" {
            throw input.invalid("EvaluateLowSampleCountPercentile", "'\(evaluate)': trailwatch always evaluates percentiles of low sample counts")
        }
        for key in ["OKActions", "AlarmActions", "InsufficientDataActions"] { _ = try input.strings(key, max: 5) }
        guard case .map(var members) = Self.normalizeAlarm(input.value) else { throw AWSError.serialization("The request must be a structure.") }
        let definition: AlarmDefinition
        do {
            definition = try JSONDecoder().decode(AlarmDefinition.self, from: Data(AWSJSONValue.encode(.map(members))))
        } catch let DecodingError.keyNotFound(key, _) {
            throw AWSError("MissingParameter", "The parameter \(key.stringValue) is required.")
        } catch {
            throw AWSError("InvalidParameterValue", "The alarm is not valid: \(Self.describe(error)).")
        }
        do {
            _ = try MetricAlarm(definition: definition, bandSettings: settings.bandSettings)
        } catch {
            throw AWSError("InvalidParameterValue", "The parameter \(error.key) \(error.message).")
        }
        for query in definition.metrics ?? [] {
            if let stat = query.metricStat, MetricStatistic(stat.stat) == nil { throw AWSError("InvalidParameterValue", "The statistic '\(stat.stat)' is not valid.") }
        }
        members["AlarmConfigurationUpdatedTimestamp"] = .timestamp(Double(now()) / 1000)
        if members["ActionsEnabled"] == nil { members["ActionsEnabled"] = .bool(true) }
        let body = String(decoding: AWSJSONValue.encode(.map(members)), as: UTF8.self)
        let limit = settings.maxAlarms
        let full = try await withStore { store throws(StoreError) in
            if try await store.document(kind: Documents.alarm, name: name) == nil,
               try await store.documents(kind: Documents.alarm, prefix: nil, after: nil, limit: limit).count >= limit { return true }
            try await store.putDocument(StoredDocument(kind: Documents.alarm, name: name, body: body, updated: now()))
            return false
        }
        if full { throw AWSError("LimitExceeded", "The maximum of \(limit) alarms is reached.") }
        ingest.alarmsChanged()
        return .map([:])
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context), DecodingError.dataCorrupted(let context):
            let path = context.codingPath.map { $0.intValue.map { "member.\($0 + 1)" } ?? $0.stringValue }.joined(separator: ".")
            return "\(path): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }

    func state(_ store: any Store, _ alarm: StoredAlarm) async throws(StoreError) -> AlarmStateView? {
        guard let document = try await store.document(kind: Documents.alarmState, name: alarm.name),
              let view = try? JSONDecoder().decode(AlarmStateView.self, from: Data(document.body.utf8)),
              view.definition == alarm.definition.fingerprint else { return nil }
        return view
    }

    func alarmArn(_ name: String) -> String { "arn:aws:cloudwatch:\(settings.region):\(settings.accountID):alarm:\(name)" }

    /// The MetricAlarm shape of DescribeAlarms: the input echoed, with ARN, state and timestamps.
    func describe(_ alarm: StoredAlarm, _ view: AlarmStateView?) -> AWSValue {
        var out: [String: AWSValue] = [:]
        let echoed = ["AlarmName", "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions", "InsufficientDataActions", "MetricName",
                      "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Period", "EvaluationPeriods", "DatapointsToAlarm",
                      "Threshold", "ComparisonOperator", "TreatMissingData", "EvaluateLowSampleCountPercentile", "Metrics", "ThresholdMetricId",
                      "AlarmConfigurationUpdatedTimestamp"]
        for key in echoed { if let value = alarm.input[key], value != .null { out[key] = value } }
        for key in ["OKActions", "AlarmActions", "InsufficientDataActions"] where out[key] == nil { out[key] = .list([]) }
        out["AlarmArn"] = .string(alarmArn(alarm.name))
        let updated = view?.stateUpdated.map { Double($0) / 1000 } ?? alarm.input["AlarmConfigurationUpdatedTimestamp"]?.timestampValue ?? 0
        out["StateValue"] = .string((view?.alarm.state ?? .insufficientData).rawValue)
        out["StateReason"] = .string(view?.stateReason ?? "Unchecked: Initial alarm creation")
        out["StateUpdatedTimestamp"] = .timestamp(updated)
        out["StateTransitionedTimestamp"] = .timestamp(updated)
        // Stored as JSON: timestamps came back as numbers, doubles without a fraction as integers.
        if let configured = out["AlarmConfigurationUpdatedTimestamp"]?.timestampValue { out["AlarmConfigurationUpdatedTimestamp"] = .timestamp(configured) }
        return Self.normalizeAlarm(.map(out))
    }

    func describeAlarms(_ input: APIInput) async throws(AWSError) -> AWSValue {
        let names = try input.strings("AlarmNames", max: 100)
        let prefix = try input.string("AlarmNamePrefix", max: 255)
        guard names.isEmpty || prefix == nil else {
            throw AWSError("InvalidParameterCombination", "AlarmNames and AlarmNamePrefix cannot be given together.")
        }
        let stateValue = try input.string("StateValue")
        if let stateValue, AlarmState(rawValue: stateValue) == nil { throw input.invalid("StateValue", "must be OK, ALARM or INSUFFICIENT_DATA") }
        let actionPrefix = try input.string("ActionPrefix", max: 1024)
        let types = try input.strings("AlarmTypes")
        for type in types where type != "MetricAlarm" && type != "CompositeAlarm" { throw input.invalid("AlarmTypes", "'\(type)' is not an alarm type") }
        try input.reject(["ChildrenOfAlarmName", "ParentsOfAlarmName"], "composite alarms are not supported")
        let maxRecords = Int(try input.int("MaxRecords", min: 1, max: 100) ?? 50)
        let after = try input.string("NextToken", max: 1024)
        let wantsMetric = types.isEmpty || types.contains("MetricAlarm")
        var page: [AWSValue] = []
        var next: String?
        if wantsMetric {
            try await withStore { store throws(StoreError) in
                var candidates: [StoredAlarm]
                if !names.isEmpty {
                    candidates = []
                    for name in Set(names).sorted() { if let alarm = try await loadAlarm(store, name) { candidates.append(alarm) } }
                } else {
                    candidates = try await allAlarms(store, prefix: prefix)
                }
                candidates = candidates.filter { after == nil || $0.name > after! }.sorted { $0.name < $1.name }
                for alarm in candidates {
                    if let actionPrefix {
                        let actions = ["OKActions", "AlarmActions", "InsufficientDataActions"].flatMap { alarm.input[$0]?.listValue ?? [] }
                        guard actions.contains(where: { $0.stringValue?.hasPrefix(actionPrefix) ?? false }) else { continue }
                    }
                    let view = try await state(store, alarm)
                    if let stateValue, (view?.alarm.state ?? .insufficientData).rawValue != stateValue { continue }
                    if page.count == maxRecords { next = lastName(page); break }
                    page.append(describe(alarm, view))
                }
            }
        }
        var output: [String: AWSValue] = ["MetricAlarms": .list(page), "CompositeAlarms": .list([])]
        if let next { output["NextToken"] = .string(next) }
        return .map(output)
    }

    func lastName(_ page: [AWSValue]) -> String? { page.last?["AlarmName"]?.stringValue }

    func describeAlarmsForMetric(_ input: APIInput) async throws(AWSError) -> AWSValue {
        let metricName = try input.required("MetricName", max: 255)
        let namespace = try input.required("Namespace", max: 255)
        let statistic = try input.string("Statistic")
        let extended = try input.string("ExtendedStatistic")
        let dims = try dimensions(input)
        let period = try input.int("Period", min: 1)
        try input.reject(["Unit"], "datapoints are not kept per unit; leave Unit out")
        let filterDimensions = input.has("Dimensions")
        var found: [AWSValue] = []
        try await withStore { store throws(StoreError) in
            for alarm in try await allAlarms(store) {
                let d = alarm.definition
                var reads: [(AlarmDefinition.Metric, Int, String)] = []
                if let metrics = d.metrics {
                    reads = metrics.compactMap { q in q.metricStat.map { ($0.metric, $0.period, $0.stat) } }
                } else if let ns = d.namespace, let name = d.metricName, let p = d.period {
                    let metric = try? JSONDecoder().decode(AlarmDefinition.Metric.self, from: Data(AWSJSONValue.encode(
                        ["Namespace": .string(ns), "MetricName": .string(name),
                         "Dimensions": .list((d.dimensions ?? []).map { AWSValue.map(["Name": .string($0.name), "Value": .string($0.value)]) })])))
                    if let metric { reads = [(metric, p, d.statistic ?? d.extendedStatistic ?? "")] }
                }
                let matches = reads.contains { metric, p, stat in
                    metric.namespace == namespace && metric.metricName == metricName
                        && (!filterDimensions || metric.dimensions.map { TrailwatchCore.Dimension(name: $0.name, value: $0.value) }.sorted { $0.name < $1.name } == dims)
                        && (period == nil || Int64(p) == period) && (statistic == nil || stat == statistic) && (extended == nil || stat == extended)
                }
                if matches { found.append(describe(alarm, try await state(store, alarm))) }
            }
        }
        return .map(["MetricAlarms": .list(found)])
    }

    func deleteAlarms(_ input: APIInput) async throws(AWSError) -> AWSValue {
        let names = try input.strings("AlarmNames", max: 100)
        guard !names.isEmpty else { throw input.missing("AlarmNames") }
        var missing: [String] = []
        try await withStore { store throws(StoreError) in
            for name in names {
                if try await store.document(kind: Documents.alarm, name: name) == nil { missing.append(name) }
            }
            guard missing.isEmpty else { return }
            for name in names {
                try await store.deleteDocument(kind: Documents.alarm, name: name)
                try await store.deleteDocument(kind: Documents.alarmState, name: name)
                try await store.deleteDocument(kind: Documents.setState, name: name)
            }
        }
        guard missing.isEmpty else { throw AWSError("ResourceNotFound", "Alarm\(missing.count == 1 ? "" : "s") \(missing.joined(separator: ", ")) not found.", status: 404) }
        ingest.alarmsChanged()
        return .map([:])
    }

    func setAlarmState(_ input: APIInput) async throws(AWSError) -> AWSValue {
        let name = try input.required("AlarmName", max: 255)
        let value = try input.required("StateValue")
        guard AlarmState(rawValue: value) != nil else { throw input.invalid("StateValue", "must be OK, ALARM or INSUFFICIENT_DATA") }
        let reason = try input.required("StateReason", min: 0, max: 1023)
        if let data = try input.string("StateReasonData", min: 0, max: 4000) {
            guard (try? AWSJSONValue.decode(Array(data.utf8))) != nil else { throw AWSError("InvalidFormat", "StateReasonData is not valid JSON.") }
        }
        let body = String(decoding: AWSJSONValue.encode(["StateValue": .string(value), "StateReason": .string(reason), "Timestamp": .int(now())]), as: UTF8.self)
        var found = true
        try await withStore { store throws(StoreError) in
            guard try await store.document(kind: Documents.alarm, name: name) != nil else { found = false; return }
            try await store.putDocument(StoredDocument(kind: Documents.setState, name: name, body: body, updated: now()))
        }
        guard found else { throw AWSError("ResourceNotFound", "Alarm \(name) not found.", status: 404) }
        ingest.alarmsChanged()
        return .map([:])
    }

    func setActionsEnabled(_ input: APIInput, _ enabled: Bool) async throws(AWSError) -> AWSValue {
        let names = try input.strings("AlarmNames", max: 100)
        guard !names.isEmpty else { throw input.missing("AlarmNames") }
        try await withStore { store throws(StoreError) in
            for name in names {
                guard let document = try await store.document(kind: Documents.alarm, name: name),
                      case .map(var members)? = try? AWSJSONValue.decode(Array(document.body.utf8)) else { continue }
                members["ActionsEnabled"] = .bool(enabled)
                try await store.putDocument(StoredDocument(kind: Documents.alarm, name: name,
                                                           body: String(decoding: AWSJSONValue.encode(.map(members)), as: UTF8.self), updated: now()))
            }
        }
        ingest.alarmsChanged()
        return .map([:])
    }

    func describeAlarmHistory(_ input: APIInput) async throws(AWSError) -> AWSValue {
        let name = try input.string("AlarmName", max: 255)
        let types = try input.strings("AlarmTypes")
        for type in types where type != "MetricAlarm" && type != "CompositeAlarm" { throw input.invalid("AlarmTypes", "'\(type)' is not an alarm type") }
        if let itemType = try input.string("HistoryItemType"), itemType != "StateUpdate" {
            throw input.invalid("HistoryItemType", "'\(itemType)': trailwatch records StateUpdate items only")
        }
        let startDate = try input.timestamp("StartDate").map { Int64($0 * 1000) } ?? 0
        let endDate = try input.timestamp("EndDate").map { Int64($0 * 1000) } ?? now() + 86_400_000
        let maxRecords = Int(try input.int("MaxRecords", min: 1, max: 100) ?? 100)
        let scanBy = try input.string("ScanBy") ?? "TimestampDescending"
        guard scanBy == "TimestampDescending" || scanBy == "TimestampAscending" else { throw input.invalid("ScanBy", "must be TimestampDescending or TimestampAscending") }
        let offset = try pageOffset(input)
        if !types.isEmpty && !types.contains("MetricAlarm") { return .map(["AlarmHistoryItems": .list([])]) }
        var events = try await withStore { store throws(StoreError) in
            try await store.events(kinds: [EventKind.alarm.rawValue], start: startDate, end: endDate, limit: 100_000)
        }
        if let name { events = events.filter { $0.key == name } }
        if scanBy == "TimestampDescending" { events.reverse() }
        let page = events.dropFirst(offset).prefix(maxRecords)
        var items: [AWSValue] = []
        for event in page {
            let body = (try? AWSJSONValue.decode(Array(event.body.utf8))) ?? .map([:])
            let old = body["previousState"]?["value"]?.stringValue ?? "INSUFFICIENT_DATA"
            let new = body["state"]?["value"]?.stringValue ?? "INSUFFICIENT_DATA"
            let data: AWSValue = ["version": "1.0",
                                  "oldState": .map(["stateValue": .string(old)]),
                                  "newState": .map(["stateValue": .string(new), "stateReason": body["state"]?["reason"] ?? .string(""),
                                                    "stateReasonData": body["state"]?["reasonData"] ?? .map([:])])]
            items.append(.map(["AlarmName": .string(event.key), "AlarmType": "MetricAlarm", "Timestamp": .timestamp(Double(event.timestamp) / 1000),
                               "HistoryItemType": "StateUpdate", "HistorySummary": .string("Alarm updated from \(old) to \(new)"),
                               "HistoryData": .string(String(decoding: AWSJSONValue.encode(data), as: UTF8.self))]))
        }
        var output: [String: AWSValue] = ["AlarmHistoryItems": .list(items)]
        if offset + page.count < events.count { output["NextToken"] = .string(String(offset + page.count)) }
        return .map(output)
    }

    // MARK: Anomaly detectors

    struct DetectorKey {
        var metric: MetricIdentity
        var stat: String
        var name: String { "\(metric.namespace)\u{1F}\(metric.name)\u{1F}\(StoreConventions.dimensionsText(metric.dimensions))\u{1F}\(stat)" }
    }

    func detectorKey(_ input: APIInput, requireStat: Bool) throws(AWSError) -> DetectorKey? {
        try input.reject(["MetricMathAnomalyDetector"], "anomaly detectors over metric math are not supported")
        let source = try input.child("SingleMetricAnomalyDetector") ?? input
        try source.reject(["AccountId"], "there is one account")
        guard let namespace = try source.string("Namespace", max: 255), let name = try source.string("MetricName", max: 255) else {
            if requireStat { throw AWSError("MissingParameter", "The parameters Namespace and MetricName (or SingleMetricAnomalyDetector) are required.") }
            return nil
        }
        let stat = try source.string("Stat", max: 255)
        if requireStat, stat == nil { throw source.missing("Stat") }
        if let stat, MetricStatistic(stat) == nil { throw source.invalid("Stat", "'\(stat)' is not a statistic") }
        return DetectorKey(metric: MetricIdentity(namespace: namespace, name: name, dimensions: try dimensions(source)), stat: stat ?? "")
    }

    func putAnomalyDetector(_ input: APIInput) async throws(AWSError) -> AWSValue {
        let key = try detectorKey(input, requireStat: true)!
        if let configuration = try input.child("Configuration") {
            try configuration.reject(["ExcludedTimeRanges"], "bands learn from all history")
            if let zone = try configuration.string("MetricTimezone"), zone != "UTC" {
                throw configuration.invalid("MetricTimezone", "'\(zone)': trailwatch models seasonality in UTC")
            }
        }
        if let characteristics = try input.child("MetricCharacteristics"), try characteristics.bool("PeriodicSpikes") == true {
            throw characteristics.invalid("PeriodicSpikes", "is not supported")
        }
        let body: AWSValue = ["Namespace": .string(key.metric.namespace), "MetricName": .string(key.metric.name),
                              "Dimensions": Self.dimensionsValue(key.metric.dimensions), "Stat": .string(key.stat)]
        try await withStore { store throws(StoreError) in
            try await store.putDocument(StoredDocument(kind: Documents.anomalyDetector, name: key.name,
                                                       body: String(decoding: AWSJSONValue.encode(body), as: UTF8.self), updated: now()))
        }
        return .map([:])
    }

    func describeAnomalyDetectors(_ input: APIInput) async throws(AWSError) -> AWSValue {
        let namespace = try input.string("Namespace", max: 255)
        let metricName = try input.string("MetricName", max: 255)
        var dims: [TrailwatchCore.Dimension]?
        if input.has("Dimensions") { dims = try dimensions(input) }
        let types = try input.strings("AnomalyDetectorTypes", max: 2)
        for type in types where type != "SINGLE_METRIC" && type != "METRIC_MATH" { throw input.invalid("AnomalyDetectorTypes", "'\(type)' is not a detector type") }
        let maxResults = Int(try input.int("MaxResults", min: 1, max: 100) ?? 100)
        let offset = try pageOffset(input)
        let nowMillis = now()
        var out: [AWSValue] = []
        var total = 0
        try await withStore { store throws(StoreError) in
            var matching: [[String: AWSValue]] = []
            for document in try await store.documents(kind: Documents.anomalyDetector, prefix: nil, after: nil, limit: 100_000) {
                guard case .map(let d)? = try? AWSJSONValue.decode(Array(document.body.utf8)) else { continue }
                if let namespace, d["Namespace"]?.stringValue != namespace { continue }
                if let metricName, d["MetricName"]?.stringValue != metricName { continue }
                if let dims, d["Dimensions"] != Self.dimensionsValue(dims) { continue }
                if !types.isEmpty && !types.contains("SINGLE_METRIC") { continue }
                matching.append(d)
            }
            total = matching.count
            for var d in matching.dropFirst(offset).prefix(maxResults) {
                let dimsText = StoreConventions.dimensionsText((d["Dimensions"]?.listValue ?? []).compactMap { item in
                    guard let n = item["Name"]?.stringValue, let v = item["Value"]?.stringValue else { return nil }
                    return TrailwatchCore.Dimension(name: n, value: v)
                })
                let recent = try await store.datapoints(namespace: d["Namespace"]?.stringValue ?? "", name: d["MetricName"]?.stringValue ?? "",
                                                        dimensions: dimsText, start: nowMillis - settings.bandSettings.history, end: nowMillis + 1, limit: 1)
                d["StateValue"] = .string(recent.isEmpty ? "PENDING_TRAINING" : "TRAINED")
                d["Configuration"] = .map(["ExcludedTimeRanges": .list([]), "MetricTimezone": "UTC"])
                d["SingleMetricAnomalyDetector"] = .map(["Namespace": d["Namespace"] ?? .null, "MetricName": d["MetricName"] ?? .null,
                                                         "Dimensions": d["Dimensions"] ?? .list([]), "Stat": d["Stat"] ?? .null])
                out.append(.map(d))
            }
        }
        var output: [String: AWSValue] = ["AnomalyDetectors": .list(out)]
        if offset + out.count < total { output["NextToken"] = .string(String(offset + out.count)) }
        return .map(output)
    }

    func deleteAnomalyDetector(_ input: APIInput) async throws(AWSError) -> AWSValue {
        let key = try detectorKey(input, requireStat: true)!
        let deleted = try await withStore { store throws(StoreError) in try await store.deleteDocument(kind: Documents.anomalyDetector, name: key.name) }
        guard deleted else { throw AWSError("ResourceNotFoundException", "No anomaly detector for \(key.metric.namespace)/\(key.metric.name) with \(key.stat).", status: 404) }
        return .map([:])
    }
}

