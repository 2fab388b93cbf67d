import AccessPolicies
import AWSWire
import ByteJSON

/// What each CloudWatch Logs operation asks to do in IAM's terms: the action `logs:OPERATION` on
/// the log groups or streams the request names, with the ARNs AWS uses
/// (`arn:aws:logs:REGION:ACCOUNT:log-group:NAME`, `…:log-group:NAME:log-stream:STREAM`).
///
/// Names are read with one byte scan that reports every occurrence of a key, arrays included: a
/// body that names a group twice (JSON allows duplicate keys, and parsers disagree on which one
/// wins) asks for both, so no spelling trick authorizes one group and acts on another. A body the
/// scan cannot read asks for every log group.
struct LogsAccess {
    let region: String
    let account: String

    static let keys: [String] = ["logGroupName", "logGroupIdentifier", "logGroupNames", "logGroupIdentifiers", "logStreamName",
                                 "logGroupNamePrefix", "queryId"]
    static let scanner = JSONLeafScanner(paths: keys.map { [Array($0.utf8)] })

    var groupPrefix: String { "arn:aws:logs:\(region):\(account):log-group:" }

    /// The values of the watched keys, by key.
    func names(in body: [UInt8]) -> [String: [String]]? {
        struct Collect: JSONLeafVisitor {
            var found: [(Int, JSONLookup)] = []
            mutating func leaf(path: Int, value: JSONLookup) { found.append((path, value)) }
        }
        if body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) { return [:] }
        return body.withUnsafeBytes { bytes -> [String: [String]]? in
            var visitor = Collect()
            guard Self.scanner.scan(bytes, into: &visitor) == .object else { return nil }
            var out: [String: [String]] = [:]
            for (path, value) in visitor.found {
                // Non-strings are the handler's to refuse; they name nothing.
                guard let text = value.stringBytes(in: bytes) else { continue }
                out[Self.keys[path], default: []].append(String(decoding: text, as: UTF8.self))
            }
            return out
        }
    }

    /// A group's name from a name or an identifier (a name or an ARN, with or without `:*`), as
    /// the handlers read it.
    static func groupName(identifier: String) -> String {
        guard identifier.hasPrefix("arn:"), let range = identifier.range(of: ":log-group:") else { return identifier }
        var rest = identifier[range.upperBound...]
        if rest.hasSuffix(":*") { rest = rest.dropLast(2) }
        return String(rest)
    }

    func group(_ name: String) -> AccessResource {
        .named(groupPrefix + name, aliases: [groupPrefix + name + ":*"])
    }

    func request(operation: String, body: [UInt8], queryGroups: (String) -> [String]?) -> AccessRequest {
        let action = "logs:" + operation
        guard let names = names(in: body) else { return AccessRequest(action: action, resources: [.every(startingWith: groupPrefix)]) }
        let groups = (names["logGroupName"] ?? []) + (names["logGroupNames"] ?? [])
            + ((names["logGroupIdentifier"] ?? []) + (names["logGroupIdentifiers"] ?? [])).map(Self.groupName(identifier:))
        let streams = names["logStreamName"] ?? []
        var resources: [AccessResource]
        switch operation {
        case "PutLogEvents", "GetLogEvents", "CreateLogStream", "DeleteLogStream":
            // Stream operations: every (group, stream) named; with either missing, the group.
            resources = []
            for g in groups {
                if streams.isEmpty { resources.append(group(g)) }
                for s in streams { resources.append(.named(groupPrefix + g + ":log-stream:" + s)) }
            }
        case "DescribeLogGroups":
            // The groups listed: those named, or those under the prefix, or all of them.
            if !groups.isEmpty {
                resources = groups.map(group)
            } else {
                resources = (names["logGroupNamePrefix"] ?? [""]).map { .every(startingWith: groupPrefix + $0) }
            }
        case "DescribeMetricFilters":
            resources = groups.isEmpty ? [.every(startingWith: groupPrefix)] : groups.map(group)
        case "GetQueryResults", "StopQuery":
            // A query's results are its groups' events: the rights it needs are theirs.
            var found: [AccessResource] = []
            for id in names["queryId"] ?? [] {
                guard let queried = queryGroups(id) else { continue }
                found += queried.map(group)
            }
            resources = found.isEmpty ? [.any] : found
        case "TestMetricFilter":
            resources = [.any]
        default:
            resources = groups.map(group)
        }
        // A request naming nothing where a group is expected is refused by its handler; to policies
        // it is a request about every group.
        if resources.isEmpty { resources = [.every(startingWith: groupPrefix)] }
        return AccessRequest(action: action, resources: resources)
    }
}

extension CloudWatchLogsService {
    public func accessRequest(for call: AWSOperationCall) -> AccessRequest {
        LogsAccess(region: settings.region, account: settings.accountID)
            .request(operation: call.operation, body: call.body, queryGroups: { [queries] in queries.entry($0)?.groups })
    }
}
