import Foundation
import TrailwatchStore

/// A metric filter as the API stores it: a document of kind `metric-filter` named
/// `<log group>:<filter name>` (log group names cannot hold a colon), its body the filter as
/// DescribeMetricFilters returns it. Any store backend keeps it (``DocumentStoring``).
public struct MetricFilterRecord: Sendable, Equatable {
    public static let kind = "metric-filter"

    public var group: String
    public var name: String
    public var pattern: String
    /// The metric transformations as the API's JSON (an array, keys sorted).
    public var transformations: String
    public var creationTime: Int64

    public init(group: String, name: String, pattern: String, transformations: String, creationTime: Int64) {
        self.group = group
        self.name = name
        self.pattern = pattern
        self.transformations = transformations
        self.creationTime = creationTime
    }

    /// The document name prefix of a group's filters.
    public static func documentPrefix(group: String) -> String { group + ":" }

    public var document: StoredDocument {
        let transformations = (try? JSONSerialization.jsonObject(with: Data(self.transformations.utf8))) ?? [Any]()
        let body: [String: Any] = ["logGroupName": group, "filterName": name, "filterPattern": pattern,
                                   "metricTransformations": transformations, "creationTime": creationTime]
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data("{}".utf8)
        return StoredDocument(kind: Self.kind, name: Self.documentPrefix(group: group) + name, body: String(decoding: data, as: UTF8.self),
                              updated: creationTime)
    }

    /// The record a stored document holds; nil when it is not one.
    public init?(_ document: StoredDocument) {
        guard let body = try? JSONSerialization.jsonObject(with: Data(document.body.utf8)) as? [String: Any],
              let group = body["logGroupName"] as? String, let name = body["filterName"] as? String,
              let pattern = body["filterPattern"] as? String, let list = body["metricTransformations"] as? [Any],
              let data = try? JSONSerialization.data(withJSONObject: list, options: [.sortedKeys]) else { return nil }
        self.init(group: group, name: name, pattern: pattern, transformations: String(decoding: data, as: UTF8.self),
                  creationTime: (body["creationTime"] as? NSNumber)?.int64Value ?? document.updated)
    }
}
