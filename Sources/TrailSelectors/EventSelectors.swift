import ByteJSON

/// A trail's event selectors, in AWS's own shape (what `aws cloudtrail get-event-selectors`
/// prints): basic `EventSelectors` (ReadWriteType, IncludeManagementEvents, DataResources,
/// ExcludeManagementEventSources) or `AdvancedEventSelectors` (Name, FieldSelectors with
/// Equals/StartsWith/EndsWith/NotEquals/NotStartsWith/NotEndsWith). A record is selected when any
/// selector selects it, as a trail logs it. CloudTrail Insights events are not governed by event
/// selectors and always pass.
public struct TrailEventSelectors: Decodable, Sendable {
    public var basic: [BasicSelector]
    public var advanced: [AdvancedSelector]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case TrailARN, TrailName, EventSelectors, AdvancedEventSelectors
    }

    public init(basic: [BasicSelector] = [], advanced: [AdvancedSelector] = []) {
        self.basic = basic
        self.advanced = advanced
    }

    public init(from decoder: any Decoder) throws {
        try SelectorDecoding.rejectUnknownKeys(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        basic = try c.decodeIfPresent([BasicSelector].self, forKey: .EventSelectors) ?? []
        advanced = try c.decodeIfPresent([AdvancedSelector].self, forKey: .AdvancedEventSelectors) ?? []
        guard basic.isEmpty || advanced.isEmpty else {
            throw SelectorError(codingPath: c.codingPath + [CodingKeys.AdvancedEventSelectors],
                                message: "a trail uses either EventSelectors or AdvancedEventSelectors, not both")
        }
        guard !basic.isEmpty || !advanced.isEmpty else {
            throw SelectorError(codingPath: c.codingPath, message: "no EventSelectors or AdvancedEventSelectors")
        }
        guard basic.count <= 5 else {
            throw SelectorError(codingPath: c.codingPath + [CodingKeys.EventSelectors], message: "\(basic.count) event selectors; a trail has at most 5")
        }
        let conditions = advanced.reduce(0) { $0 + $1.fieldSelectors.reduce(0) { $0 + $1.valueCount } }
        guard conditions <= 500 else {
            throw SelectorError(codingPath: c.codingPath + [CodingKeys.AdvancedEventSelectors],
                                message: "\(conditions) values across all advanced selectors; AWS allows at most 500")
        }
    }

    /// Whether a trail with these selectors records `record`.
    public func selects(_ record: RecordFacts) -> Bool {
        if record.eventCategory == "Insight" { return true }
        if !advanced.isEmpty { return advanced.contains { $0.selects(record) } }
        return basic.contains { $0.selects(record) }
    }

    /// True when some selector looks at `resources` (records are then read with their resources).
    public var needsResources: Bool {
        !basic.allSatisfy { $0.dataResources.isEmpty }
            || advanced.contains { $0.fieldSelectors.contains { $0.field.isResource } }
    }
}

/// A basic event selector.
public struct BasicSelector: Decodable, Sendable {
    public enum ReadWriteType: String, Sendable, CaseIterable { case ReadOnly, WriteOnly, All }
    public struct DataResource: Decodable, Sendable {
        public var type: String
        public var values: [String]
        enum CodingKeys: String, CodingKey, CaseIterable { case type = "Type", values = "Values" }
        public init(from decoder: any Decoder) throws {
            try SelectorDecoding.rejectUnknownKeys(decoder, CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            type = try c.decode(String.self, forKey: .type)
            values = try c.decodeIfPresent([String].self, forKey: .values) ?? []
            guard type.hasPrefix("AWS::"), type.split(separator: ":", omittingEmptySubsequences: true).count == 3 else {
                throw SelectorError(codingPath: c.codingPath + [CodingKeys.type], message: "'\(type)' is not a resource type like AWS::S3::Object")
            }
            guard values.count <= 250 else {
                throw SelectorError(codingPath: c.codingPath + [CodingKeys.values], message: "\(values.count) values; at most 250")
            }
        }

        /// Whether a resource of the record is one this entry names: S3 values are ARN prefixes
        /// (`arn:aws:s3:::bucket/` or `arn:aws:s3` for every bucket); other types name resources
        /// exactly, or all of a service (`arn:aws:lambda`).
        func covers(_ resource: RecordFacts.Resource) -> Bool {
            guard resource.type == type, let arn = resource.arn else { return false }
            return values.contains { value in
                if type == "AWS::S3::Object" || value.split(separator: ":", omittingEmptySubsequences: false).count < 6 { return arn.hasPrefix(value) }
                return arn == value
            }
        }
    }

    public var readWriteType: ReadWriteType = .All
    public var includeManagementEvents = true
    public var dataResources: [DataResource] = []
    public var excludeManagementEventSources: [String] = []

    enum CodingKeys: String, CodingKey, CaseIterable {
        case ReadWriteType, IncludeManagementEvents, DataResources, ExcludeManagementEventSources
    }

    public init(readWriteType: ReadWriteType = .All, includeManagementEvents: Bool = true, dataResources: [DataResource] = []) {
        self.readWriteType = readWriteType
        self.includeManagementEvents = includeManagementEvents
        self.dataResources = dataResources
    }

    public init(from decoder: any Decoder) throws {
        try SelectorDecoding.rejectUnknownKeys(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let text = try c.decodeIfPresent(String.self, forKey: .ReadWriteType) {
            guard let value = ReadWriteType(rawValue: text) else {
                throw SelectorError(codingPath: c.codingPath + [CodingKeys.ReadWriteType], message: "'\(text)' is not ReadOnly, WriteOnly or All")
            }
            readWriteType = value
        }
        includeManagementEvents = try c.decodeIfPresent(Bool.self, forKey: .IncludeManagementEvents) ?? true
        dataResources = try c.decodeIfPresent([DataResource].self, forKey: .DataResources) ?? []
        excludeManagementEventSources = try c.decodeIfPresent([String].self, forKey: .ExcludeManagementEventSources) ?? []
    }

    func selects(_ record: RecordFacts) -> Bool {
        switch readWriteType {
        case .ReadOnly: if record.readOnly != true { return false }
        case .WriteOnly: if record.readOnly == true { return false }
        case .All: break
        }
        if record.eventCategory == "Management" {
            return includeManagementEvents && !excludeManagementEventSources.contains(record.eventSource ?? "")
        }
        return dataResources.contains { entry in record.resources.contains { entry.covers($0) } }
    }
}

/// An advanced event selector: every field selector must hold.
public struct AdvancedSelector: Decodable, Sendable {
    public var name: String?
    public var fieldSelectors: [FieldSelector]

    enum CodingKeys: String, CodingKey, CaseIterable { case Name, FieldSelectors }

    public init(from decoder: any Decoder) throws {
        try SelectorDecoding.rejectUnknownKeys(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .Name)
        fieldSelectors = try c.decode([FieldSelector].self, forKey: .FieldSelectors)
        guard !fieldSelectors.isEmpty else {
            throw SelectorError(codingPath: c.codingPath + [CodingKeys.FieldSelectors], message: "is empty")
        }
        guard let category = fieldSelectors.first(where: { $0.field == .eventCategory }) else {
            throw SelectorError(codingPath: c.codingPath + [CodingKeys.FieldSelectors],
                                message: "has no eventCategory field selector (AWS requires one in every advanced selector)")
        }
        if category.equals.contains("Data") && !fieldSelectors.contains(where: { $0.field == .resourcesType }) {
            throw SelectorError(codingPath: c.codingPath + [CodingKeys.FieldSelectors],
                                message: "selects data events without a resources.type field selector (AWS requires one)")
        }
        if let name, name.count > 1000 {
            throw SelectorError(codingPath: c.codingPath + [CodingKeys.Name], message: "is longer than 1000 characters")
        }
    }

    func selects(_ record: RecordFacts) -> Bool {
        // Resource conditions must hold for one and the same resource of the record.
        let resourceSelectors = fieldSelectors.filter(\.field.isResource)
        for selector in fieldSelectors where !selector.field.isResource {
            if !selector.holds(for: selector.field.value(in: record)) { return false }
        }
        guard !resourceSelectors.isEmpty else { return true }
        let resources = record.resources.isEmpty ? [RecordFacts.Resource(type: nil, arn: nil)] : record.resources
        return resources.contains { resource in
            resourceSelectors.allSatisfy { $0.holds(for: $0.field == .resourcesType ? resource.type : resource.arn) }
        }
    }
}

/// One field selector: `{"Field": "eventName", "StartsWith": ["Get"], "NotEquals": [...]}`.
public struct FieldSelector: Decodable, Sendable {
    public enum Field: String, Sendable, CaseIterable {
        case readOnly, eventSource, eventName, eventCategory, eventType, errorCode
        case resourcesType = "resources.type", resourcesARN = "resources.ARN"
        case sessionCredentialFromConsole, userIdentityARN = "userIdentity.arn", vpcEndpointId

        var isResource: Bool { self == .resourcesType || self == .resourcesARN }

        func value(in record: RecordFacts) -> String? {
            switch self {
            case .readOnly: record.readOnly.map { $0 ? "true" : "false" }
            case .eventSource: record.eventSource
            case .eventName: record.eventName
            case .eventCategory: record.eventCategory
            case .eventType: record.eventType
            case .errorCode: record.errorCode
            case .sessionCredentialFromConsole: record.sessionCredentialFromConsole
            case .userIdentityARN: record.userIdentityARN
            case .vpcEndpointId: record.vpcEndpointId
            case .resourcesType, .resourcesARN: nil
            }
        }
    }

    public var field: Field
    public var equals: [String] = []
    public var startsWith: [String] = []
    public var endsWith: [String] = []
    public var notEquals: [String] = []
    public var notStartsWith: [String] = []
    public var notEndsWith: [String] = []

    var valueCount: Int { equals.count + startsWith.count + endsWith.count + notEquals.count + notStartsWith.count + notEndsWith.count }

    enum CodingKeys: String, CodingKey, CaseIterable { case Field, Equals, StartsWith, EndsWith, NotEquals, NotStartsWith, NotEndsWith }

    public init(from decoder: any Decoder) throws {
        try SelectorDecoding.rejectUnknownKeys(decoder, CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let name = try c.decode(String.self, forKey: .Field)
        guard let field = Field(rawValue: name) else {
            throw SelectorError(codingPath: c.codingPath + [CodingKeys.Field], message: "'\(name)' is not a field advanced event selectors know",
                                expected: "one of " + Field.allCases.map(\.rawValue).joined(separator: ", "))
        }
        self.field = field
        func list(_ key: CodingKeys) throws -> [String] {
            guard let values = try c.decodeIfPresent([String].self, forKey: key) else { return [] }
            guard !values.isEmpty else { throw SelectorError(codingPath: c.codingPath + [key], message: "is empty") }
            for (k, v) in values.enumerated() where v.isEmpty || v.count > 2048 {
                throw SelectorError(codingPath: c.codingPath + [key, SelectorKey(intValue: k)], message: "values must be 1 to 2048 characters long")
            }
            return values
        }
        equals = try list(.Equals)
        startsWith = try list(.StartsWith)
        endsWith = try list(.EndsWith)
        notEquals = try list(.NotEquals)
        notStartsWith = try list(.NotStartsWith)
        notEndsWith = try list(.NotEndsWith)
        guard valueCount > 0 else {
            throw SelectorError(codingPath: c.codingPath, message: "field selector for \(name) has no operator",
                                expected: "Equals, StartsWith, EndsWith, NotEquals, NotStartsWith or NotEndsWith")
        }
        if field == .readOnly {
            guard startsWith.isEmpty, endsWith.isEmpty, notStartsWith.isEmpty, notEndsWith.isEmpty,
                  (equals + notEquals).allSatisfy({ $0 == "true" || $0 == "false" }) else {
                throw SelectorError(codingPath: c.codingPath, message: "readOnly takes Equals (or NotEquals) \"true\" or \"false\" only")
            }
        }
        if field == .eventCategory {
            let known = ["Management", "Data", "NetworkActivity", "ConfigurationItem", "Evidence", "ActivityAuditLog"]
            for value in equals + notEquals where !known.contains(value) {
                throw SelectorError(codingPath: c.codingPath + [CodingKeys.Equals], message: "'\(value)' is not an event category",
                                    expected: "one of " + known.joined(separator: ", "))
            }
        }
    }

    /// Positive operators: any value fits (when given); negative ones: none fits. An absent value
    /// fits no positive operator and every negative one.
    func holds(for value: String?) -> Bool {
        if !equals.isEmpty && !(value.map { equals.contains($0) } ?? false) { return false }
        if !startsWith.isEmpty && !(value.map { v in startsWith.contains { v.hasPrefix($0) } } ?? false) { return false }
        if !endsWith.isEmpty && !(value.map { v in endsWith.contains { v.hasSuffix($0) } } ?? false) { return false }
        guard let value else { return true }
        if notEquals.contains(value) { return false }
        if notStartsWith.contains(where: { value.hasPrefix($0) }) { return false }
        if notEndsWith.contains(where: { value.hasSuffix($0) }) { return false }
        return true
    }
}

/// What selectors look at in a record, read from its JSON in one ByteJSON scan.
public struct RecordFacts: Sendable {
    public struct Resource: Sendable, Equatable {
        public var type: String?
        public var arn: String?
        public init(type: String?, arn: String?) { self.type = type; self.arn = arn }
    }

    public var eventCategory: String
    public var readOnly: Bool?
    public var eventSource: String?
    public var eventName: String?
    public var eventType: String?
    public var errorCode: String?
    public var sessionCredentialFromConsole: String?
    public var userIdentityARN: String?
    public var vpcEndpointId: String?
    public var resources: [Resource] = []

    static let paths = ["eventCategory", "managementEvent", "readOnly", "eventSource", "eventName", "eventType", "errorCode",
                        "sessionCredentialFromConsole", "userIdentity.arn", "vpcEndpointId", "resources"]

    /// A reader of record facts (one per thread: it holds scan tables).
    public struct Reader: Sendable {
        let lookup: JSONMultiLookup
        let withResources: Bool

        public init(withResources: Bool) {
            lookup = JSONMultiLookup(RecordFacts.paths.map { try! JSONPath("$." + $0) })
            self.withResources = withResources
        }

        /// The facts of a CloudTrail record, or nil when `json` is not a JSON object with an `eventSource` or `eventType`.
        public func facts(_ json: UnsafeRawBufferPointer) -> RecordFacts? {
            var found: [JSONLookup] = []
            guard lookup.resolve(in: json, into: &found) == .object else { return nil }
            func text(_ k: Int) -> String? { found[k].stringBytes(in: json).map { String(decoding: $0, as: UTF8.self) } }
            let source = text(3), type = text(5)
            guard source != nil || type != nil else { return nil }
            var category = text(0)
            if category == nil {
                if type == "AwsCloudTrailInsight" { category = "Insight" }
                else if case .bool(false) = found[1] { category = "Data" }
                else { category = "Management" }
            }
            var readOnly: Bool?
            if case .bool(let b) = found[2] { readOnly = b } else if let t = text(2) { readOnly = t == "true" }
            var facts = RecordFacts(eventCategory: category!, readOnly: readOnly, eventSource: source, eventName: text(4), eventType: type,
                                    errorCode: text(6), sessionCredentialFromConsole: text(7) ?? found[7].scalarText(in: json).map { String(decoding: $0, as: UTF8.self) },
                                    userIdentityARN: text(8), vpcEndpointId: text(9))
            if withResources, case .array(let range) = found[10],
               case .array(let items)? = try? JSONValue.parse(UnsafeRawBufferPointer(rebasing: json[range])) {
                facts.resources = items.map { Resource(type: $0["type"]?.stringValue, arn: $0["ARN"]?.stringValue) }
            }
            return facts
        }
    }
}

/// A selector configuration error: where (a coding path) and what.
public struct SelectorError: Error, Sendable {
    public var codingPath: [any CodingKey]
    public var message: String
    public var expected: String?
    public init(codingPath: [any CodingKey], message: String, expected: String? = nil) {
        self.codingPath = codingPath
        self.message = message
        self.expected = expected
    }
}

struct SelectorKey: CodingKey {
    var stringValue: String
    var intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue }
    init(intValue: Int) { self.stringValue = "Index \(intValue)"; self.intValue = intValue }
}

enum SelectorDecoding {
    /// AWS's key names are exact: a typo is an error naming the keys that exist.
    static func rejectUnknownKeys<Keys: CodingKey & CaseIterable>(_ decoder: any Decoder, _ keys: Keys.Type) throws {
        let container = try decoder.container(keyedBy: SelectorKey.self)
        let known = Keys.allCases.map(\.stringValue)
        for key in container.allKeys where !known.contains(key.stringValue) {
            throw SelectorError(codingPath: decoder.codingPath + [key], message: "unknown key", expected: "one of " + known.joined(separator: ", "))
        }
    }
}
