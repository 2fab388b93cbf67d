import FilterPatterns

/// A CloudWatch Logs data protection policy, in the JSON AWS writes (`PutDataProtectionPolicy`):
///
/// ```json
/// { "Name": "data-protection-policy", "Description": "", "Version": "2021-06-01",
///   "Configuration": { "CustomDataIdentifier": [ { "Name": "EmployeeId", "Regex": "EmployeeId-\\d{9}" } ] },
///   "Statement": [
///     { "Sid": "audit", "DataIdentifier": ["arn:aws:dataprotection::aws:data-identifier/EmailAddress", "EmployeeId"],
///       "Operation": { "Audit": { "FindingsDestination": {} } } },
///     { "Sid": "redact", "DataIdentifier": ["arn:aws:dataprotection::aws:data-identifier/EmailAddress", "EmployeeId"],
///       "Operation": { "Deidentify": { "MaskConfig": {} } } } ] }
/// ```
///
/// Decoding checks what CloudWatch checks: the version, two statements (Audit first, then
/// Deidentify) naming the same identifiers, known managed ARNs, custom identifiers' names and
/// regular expressions. Problems are ``PolicyError``s carrying the coding path of the bad value.
public struct DataProtectionPolicy: Decodable, Sendable {
    public static let version = "2021-06-01"
    public static let maximumCustomIdentifiers = 10
    public static let maximumRegexLength = 200

    public var name: String?
    public var description: String?
    public var customIdentifiers: [CustomDataIdentifier]
    public var audit: AuditOperation
    /// The identifiers both statements name, in the audit statement's order: managed ARNs or custom names.
    public var dataIdentifiers: [String]

    public struct CustomDataIdentifier: Sendable {
        public var name: String
        public var regex: CloudWatchRegex
    }

    /// Where an Audit statement sends findings. trailwatch sends them to the `mask` stage's
    /// `findings` output whatever is named; `logGroup` becomes their log group.
    public struct AuditOperation: Sendable {
        public var logGroup: String?
        public var deliveryStream: String?
        public var bucket: String?
        public var hasDestination: Bool { logGroup != nil || deliveryStream != nil || bucket != nil }
    }

    enum Keys: String, CodingKey, CaseIterable {
        case name = "Name", description = "Description", version = "Version", configuration = "Configuration", statement = "Statement"
    }

    public init(from decoder: any Decoder) throws {
        try PolicyError.rejectUnknownKeys(decoder, Keys.self)
        let c = try decoder.container(keyedBy: Keys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name)
        description = try c.decodeIfPresent(String.self, forKey: .description)
        let version = try c.decodeIfPresent(String.self, forKey: .version)
        guard version == Self.version else {
            throw PolicyError(c.codingPath + [Keys.version], version == nil ? "is missing" : "'\(version!)' is not a policy language version",
                              expected: "\"\(Self.version)\"")
        }
        customIdentifiers = try c.decodeIfPresent(Configuration.self, forKey: .configuration)?.customIdentifiers ?? []

        var statements = try c.nestedUnkeyedContainer(forKey: .statement)
        var decoded: [Statement] = []
        while !statements.isAtEnd { decoded.append(try statements.decode(Statement.self)) }
        let path = c.codingPath + [Keys.statement]
        guard decoded.count == 2 else {
            throw PolicyError(path, "has \(decoded.count) statement\(decoded.count == 1 ? "" : "s")",
                              expected: "two statements: the first with an Audit operation, the second with Deidentify")
        }
        guard case .audit(let audit) = decoded[0].operation else {
            throw PolicyError(path + [PolicyKey(0), Statement.Keys.operation], "the first statement's operation is Deidentify", expected: "Audit")
        }
        guard case .deidentify = decoded[1].operation else {
            throw PolicyError(path + [PolicyKey(1), Statement.Keys.operation], "the second statement's operation is Audit", expected: "Deidentify")
        }
        self.audit = audit
        dataIdentifiers = decoded[0].dataIdentifiers
        guard Set(decoded[0].dataIdentifiers) == Set(decoded[1].dataIdentifiers) else {
            let missing = Set(decoded[0].dataIdentifiers).symmetricDifference(decoded[1].dataIdentifiers).sorted()
            throw PolicyError(path + [PolicyKey(1), Statement.Keys.dataIdentifier],
                              "differs from the Audit statement's list (\(missing.joined(separator: ", ")))",
                              expected: "the same data identifiers in both statements")
        }
        let customNames = Set(customIdentifiers.map(\.name))
        for (s, statement) in decoded.enumerated() {
            for (k, entry) in statement.dataIdentifiers.enumerated() {
                if ManagedDataIdentifiers.identifier(arn: entry) != nil || customNames.contains(entry) { continue }
                let itemPath = path + [PolicyKey(s), Statement.Keys.dataIdentifier, PolicyKey(k)]
                if entry.hasPrefix(ManagedDataIdentifier.arnPrefix) {
                    let name = String(entry.dropFirst(ManagedDataIdentifier.arnPrefix.count))
                    throw PolicyError(itemPath, "'\(name)' is not a managed data identifier trailwatch knows",
                                      expected: "one of the identifiers in the README's list",
                                      suggestion: PolicyError.closest(to: name, among: ManagedDataIdentifiers.all.map(\.name)).map { ManagedDataIdentifier.arnPrefix + $0 })
                }
                throw PolicyError(itemPath, "'\(entry)' is neither a managed data identifier ARN nor a custom identifier of this policy",
                                  expected: "arn:aws:dataprotection::aws:data-identifier/NAME or a name from Configuration.CustomDataIdentifier",
                                  suggestion: PolicyError.closest(to: entry, among: customNames)
                                      ?? ManagedDataIdentifiers.identifier(named: entry)?.arn)
            }
        }
    }

    struct Configuration: Decodable {
        var customIdentifiers: [CustomDataIdentifier] = []
        enum Keys: String, CodingKey, CaseIterable { case customDataIdentifier = "CustomDataIdentifier" }

        init(from decoder: any Decoder) throws {
            try PolicyError.rejectUnknownKeys(decoder, Keys.self)
            let c = try decoder.container(keyedBy: Keys.self)
            guard c.contains(.customDataIdentifier) else { return }
            let items = try c.decode([CustomItem].self, forKey: .customDataIdentifier)
            for (index, item) in items.enumerated() {
                let itemPath = c.codingPath + [Keys.customDataIdentifier, PolicyKey(index)]
                let name = item.name
                guard (1...128).contains(name.count), name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_" || $0 == "-") }) else {
                    throw PolicyError(itemPath + [CustomKeys.name], "'\(name)' is not a custom identifier name", expected: "1 to 128 letters, digits, '_' or '-'")
                }
                guard ManagedDataIdentifiers.identifier(named: name) == nil else {
                    throw PolicyError(itemPath + [CustomKeys.name], "'\(name)' is the name of a managed data identifier", expected: "a name of your own")
                }
                guard !customIdentifiers.contains(where: { $0.name == name }) else {
                    throw PolicyError(itemPath + [CustomKeys.name], "'\(name)' is defined twice", expected: "unique custom identifier names")
                }
                let text = item.regex
                guard text.utf8.count <= DataProtectionPolicy.maximumRegexLength else {
                    throw PolicyError(itemPath + [CustomKeys.regex], "the regular expression is \(text.utf8.count) characters long",
                                      expected: "at most \(DataProtectionPolicy.maximumRegexLength) characters")
                }
                do {
                    customIdentifiers.append(CustomDataIdentifier(name: name, regex: try CloudWatchRegex(text)))
                } catch {
                    throw PolicyError(itemPath + [CustomKeys.regex], "invalid regular expression: \(error.message)",
                                      expected: error.expected ?? "a regular expression CloudWatch accepts", columnInValue: error.column)
                }
            }
            guard customIdentifiers.count <= DataProtectionPolicy.maximumCustomIdentifiers else {
                throw PolicyError(c.codingPath + [Keys.customDataIdentifier], "has \(customIdentifiers.count) custom identifiers",
                                  expected: "at most \(DataProtectionPolicy.maximumCustomIdentifiers)")
            }
        }
    }

    enum CustomKeys: String, CodingKey, CaseIterable { case name = "Name", regex = "Regex" }

    struct CustomItem: Decodable {
        var name: String
        var regex: String
        init(from decoder: any Decoder) throws {
            try PolicyError.rejectUnknownKeys(decoder, CustomKeys.self)
            let c = try decoder.container(keyedBy: CustomKeys.self)
            name = try c.decode(String.self, forKey: .name)
            regex = try c.decode(String.self, forKey: .regex)
        }
    }

    enum Operation {
        case audit(AuditOperation)
        case deidentify
    }

    struct Statement: Decodable {
        var dataIdentifiers: [String]
        var operation: Operation
        enum Keys: String, CodingKey, CaseIterable { case sid = "Sid", dataIdentifier = "DataIdentifier", operation = "Operation" }
        enum OperationKeys: String, CodingKey, CaseIterable { case audit = "Audit", deidentify = "Deidentify" }
        enum AuditKeys: String, CodingKey, CaseIterable { case findingsDestination = "FindingsDestination" }
        enum DeidentifyKeys: String, CodingKey, CaseIterable { case maskConfig = "MaskConfig" }
        enum DestinationKeys: String, CodingKey, CaseIterable { case cloudWatchLogs = "CloudWatchLogs", firehose = "Firehose", s3 = "S3" }
        enum LogGroupKeys: String, CodingKey, CaseIterable { case logGroup = "LogGroup" }
        enum StreamKeys: String, CodingKey, CaseIterable { case deliveryStream = "DeliveryStream" }
        enum BucketKeys: String, CodingKey, CaseIterable { case bucket = "Bucket" }

        init(from decoder: any Decoder) throws {
            try PolicyError.rejectUnknownKeys(decoder, Keys.self)
            let c = try decoder.container(keyedBy: Keys.self)
            _ = try c.decodeIfPresent(String.self, forKey: .sid)
            dataIdentifiers = try c.decode([String].self, forKey: .dataIdentifier)
            guard !dataIdentifiers.isEmpty else {
                throw PolicyError(c.codingPath + [Keys.dataIdentifier], "is empty", expected: "at least one data identifier")
            }
            if let twice = Dictionary(grouping: dataIdentifiers, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
                throw PolicyError(c.codingPath + [Keys.dataIdentifier], "'\(twice)' is listed twice", expected: "each data identifier once")
            }
            let operationDecoder = try c.superDecoder(forKey: .operation)
            try PolicyError.rejectUnknownKeys(operationDecoder, OperationKeys.self)
            let o = try operationDecoder.container(keyedBy: OperationKeys.self)
            switch (o.contains(.audit), o.contains(.deidentify)) {
            case (true, false):
                let auditDecoder = try o.superDecoder(forKey: .audit)
                try PolicyError.rejectUnknownKeys(auditDecoder, AuditKeys.self)
                let a = try auditDecoder.container(keyedBy: AuditKeys.self)
                var audit = AuditOperation()
                if a.contains(.findingsDestination) {
                    let destinationDecoder = try a.superDecoder(forKey: .findingsDestination)
                    try PolicyError.rejectUnknownKeys(destinationDecoder, DestinationKeys.self)
                    let d = try destinationDecoder.container(keyedBy: DestinationKeys.self)
                    if d.contains(.cloudWatchLogs) {
                        let inner = try d.superDecoder(forKey: .cloudWatchLogs)
                        try PolicyError.rejectUnknownKeys(inner, LogGroupKeys.self)
                        audit.logGroup = try inner.container(keyedBy: LogGroupKeys.self).decode(String.self, forKey: .logGroup)
                    }
                    if d.contains(.firehose) {
                        let inner = try d.superDecoder(forKey: .firehose)
                        try PolicyError.rejectUnknownKeys(inner, StreamKeys.self)
                        audit.deliveryStream = try inner.container(keyedBy: StreamKeys.self).decode(String.self, forKey: .deliveryStream)
                    }
                    if d.contains(.s3) {
                        let inner = try d.superDecoder(forKey: .s3)
                        try PolicyError.rejectUnknownKeys(inner, BucketKeys.self)
                        audit.bucket = try inner.container(keyedBy: BucketKeys.self).decode(String.self, forKey: .bucket)
                    }
                }
                operation = .audit(audit)
            case (false, true):
                let deidentifyDecoder = try o.superDecoder(forKey: .deidentify)
                try PolicyError.rejectUnknownKeys(deidentifyDecoder, DeidentifyKeys.self)
                let m = try deidentifyDecoder.container(keyedBy: DeidentifyKeys.self)
                guard m.contains(.maskConfig) else {
                    throw PolicyError(m.codingPath, "has no MaskConfig", expected: "\"MaskConfig\": {}")
                }
                try PolicyError.rejectAnyKey(try m.superDecoder(forKey: .maskConfig))
                operation = .deidentify
            default:
                throw PolicyError(o.codingPath, "names \(o.contains(.audit) ? "both Audit and Deidentify" : "no operation")",
                                  expected: "exactly one of Audit and Deidentify")
            }
        }
    }
}

/// A coding key for an index or a name in a policy path.
public struct PolicyKey: CodingKey, Sendable {
    public var stringValue: String
    public var intValue: Int?
    public init(_ index: Int) { stringValue = "Index \(index)"; intValue = index }
    public init(stringValue: String) { self.stringValue = stringValue }
    public init(intValue: Int) { self.init(intValue) }
}

/// A problem in a policy, at the coding path of the offending value.
public struct PolicyError: Error, Sendable, CustomStringConvertible {
    public var codingPath: [String]
    public var message: String
    public var expected: String?
    public var suggestion: String?
    /// 1-based column inside the value (regular expressions).
    public var columnInValue: Int?

    public init(_ codingPath: [any CodingKey], _ message: String, expected: String? = nil, suggestion: String? = nil, columnInValue: Int? = nil) {
        self.codingPath = codingPath.map(\.stringValue)
        self.message = message
        self.expected = expected
        self.suggestion = suggestion
        self.columnInValue = columnInValue
    }

    public var description: String {
        var text = codingPath.filter { !$0.hasPrefix("Index ") }.joined(separator: ".") + ": " + message
        if let expected { text += " (expected \(expected))" }
        return text
    }

    static func rejectUnknownKeys<K: CodingKey & CaseIterable>(_ decoder: any Decoder, _ keys: K.Type) throws {
        let container = try decoder.container(keyedBy: PolicyKey.self)
        try check(container, known: K.allCases.map(\.stringValue), at: decoder.codingPath)
    }

    /// For objects that must be empty (`MaskConfig: {}`).
    static func rejectAnyKey(_ decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: PolicyKey.self)
        try check(container, known: [], at: decoder.codingPath)
    }

    private static func check(_ container: KeyedDecodingContainer<PolicyKey>, known: [String], at path: [any CodingKey]) throws {
        for key in container.allKeys where !known.contains(key.stringValue) {
            throw PolicyError(path + [key], "unknown key", expected: known.isEmpty ? "an empty object {}" : "one of " + known.joined(separator: ", "),
                              suggestion: closest(to: key.stringValue, among: known))
        }
    }

    /// The closest candidate by edit distance (case-insensitive), for "did you mean" hints.
    static func closest(to word: String, among candidates: some Sequence<String>) -> String? {
        let w = Array(word.lowercased().utf8)
        var best: (String, Int)?
        let limit = max(2, w.count / 3)
        for candidate in candidates {
            let c = Array(candidate.lowercased().utf8)
            var previous = Array(0...c.count)
            var current = previous
            for i in 1...max(1, w.count) where !w.isEmpty {
                current[0] = i
                for j in stride(from: 1, through: c.count, by: 1) {
                    current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (w[i - 1] == c[j - 1] ? 0 : 1))
                }
                swap(&previous, &current)
            }
            let d = w.isEmpty ? c.count : previous[c.count]
            if d <= limit, best == nil || d < best!.1 { best = (candidate, d) }
        }
        return best?.0
    }
}
