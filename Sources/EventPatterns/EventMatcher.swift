import ByteJSON

/// How CloudTrail records look to EventBridge rules: AWS delivers each record to EventBridge
/// wrapped in an envelope (`source: aws.<service>`, `detail-type: AWS API Call via CloudTrail`,
/// `detail: <the record>`), and rules are written against that envelope.
public enum CloudTrailEnvelope {
    /// The envelope's top-level fields (besides `detail`).
    public static let fields = ["version", "id", "detail-type", "source", "account", "time", "region", "resources"]

    /// `detail-type` for a record's `eventType`.
    public static func detailType(eventType: String?) -> String {
        switch eventType {
        case "AwsConsoleSignIn": "AWS Console Sign In via CloudTrail"
        case "AwsConsoleAction": "AWS Console Action via CloudTrail"
        case "AwsServiceEvent": "AWS Service Event via CloudTrail"
        case "AwsCloudTrailInsight": "AWS Insight via CloudTrail"
        default: "AWS API Call via CloudTrail"
        }
    }

    /// `source` for a record: `aws.` and the service of its `eventSource` (`s3.amazonaws.com` →
    /// `aws.s3`; CloudWatch's `monitoring` → `aws.cloudwatch`); Insights events come from `aws.cloudtrail`.
    public static func source(eventSource: String?, eventType: String?) -> String {
        if eventType == "AwsCloudTrailInsight" { return "aws.cloudtrail" }
        guard let eventSource, !eventSource.isEmpty else { return "aws.cloudtrail" }
        var service = Substring(eventSource)
        if let dot = service.firstIndex(of: ".") { service = service[..<dot] }
        switch service {
        case "monitoring": return "aws.cloudwatch"
        default: return "aws." + service
        }
    }

    static let detailTypes: [[UInt8]: [UInt8]] = Dictionary(uniqueKeysWithValues:
        ["AwsConsoleSignIn", "AwsConsoleAction", "AwsServiceEvent", "AwsCloudTrailInsight", "AwsApiCall"].map { (Array($0.utf8), Array(detailType(eventType: $0).utf8)) })
    static let apiCall = Array(detailType(eventType: nil).utf8)

    /// ``detailType(eventType:)`` on bytes.
    static func detailTypeBytes(eventType: [UInt8]) -> [UInt8] { detailTypes[eventType] ?? apiCall }

    /// ``source(eventSource:eventType:)`` on bytes.
    static func sourceBytes(eventSource: [UInt8], eventType: [UInt8]) -> [UInt8] {
        if eventType.elementsEqual("AwsCloudTrailInsight".utf8) || eventSource.isEmpty { return Array("aws.cloudtrail".utf8) }
        let service = eventSource.prefix { $0 != UInt8(ascii: ".") }
        if service.elementsEqual("monitoring".utf8) { return Array("aws.cloudwatch".utf8) }
        return Array("aws.".utf8) + service
    }

    /// The envelope around a record, as JSON: `{"version":"0","id":…,"detail-type":…,"source":…,
    /// "account":…,"time":…,"region":…,"resources":[],"detail":<record>}`.
    public static func wrap(record: UnsafeRawBufferPointer, id: String, detailType: String, source: String,
                            account: String, time: String, region: String) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(record.count + 256)
        out += Array("{\"version\":\"0\",\"id\":".utf8)
        JSONWriter.appendString(id, to: &out)
        for (key, value) in [("detail-type", detailType), ("source", source), ("account", account), ("time", time), ("region", region)] {
            out += Array(",\"\(key)\":".utf8)
            JSONWriter.appendString(value, to: &out)
        }
        out += Array(",\"resources\":[],\"detail\":".utf8)
        out.append(contentsOf: record)
        out.append(UInt8(ascii: "}"))
        return out
    }
}

/// Matches JSON documents against a ``RuleSet``, each in one ByteJSON scan (no tree).
///
/// With `cloudTrailEnvelope`, a document that is a CloudTrail record (a top-level `eventVersion`,
/// `eventTime` and `eventSource` or `eventType`) is matched as EventBridge would see it — inside
/// its envelope, so `source`, `detail-type` and `detail.eventName` mean what they mean in an AWS
/// rule — without building the envelope: `detail.X` is read from the record's `X` and the envelope
/// fields are derived from the record's own. Any other document is matched as it is.
/// One per thread (it owns its working memory).
public struct EventMatcher {
    public let rules: RuleSet
    public let cloudTrailEnvelope: Bool
    let scanner: JSONLeafScanner
    let scanSlots: [Int]
    /// Field → slot when the document is matched as it is / as a CloudTrail record.
    let rawSlots: [Int]
    let recordSlots: [Int]
    /// Envelope fields some rule reads, with the slot each is synthesised into.
    let synthesised: [(name: String, slot: Int)]
    /// Slots of the record fields the envelope is derived from, in ``recordFields`` order (empty without the envelope).
    let recordSlot: [Int]
    /// Reused for envelope values derived from the record's own (no allocation per event).
    var derived: [UInt8] = []
    /// `source` by eventSource and eventType (bounded).
    var sources: [[UInt8]: [UInt8]] = [:]
    var values: EventValues
    var scratch = RuleMatchScratch()
    public private(set) var lastWasCloudTrail = false

    static let recordFields = ["eventVersion", "eventTime", "eventSource", "eventType", "eventID", "awsRegion", "recipientAccountId", "userIdentity.accountId"]
    enum RecordField: Int { case eventVersion, eventTime, eventSource, eventType, eventID, awsRegion, recipientAccountId, accountId }

    public init(_ rules: RuleSet, cloudTrailEnvelope: Bool) {
        self.rules = rules
        self.cloudTrailEnvelope = cloudTrailEnvelope
        var scanPaths: [[String]] = []
        var slotOfPath: [[String]: Int] = [:]
        func slot(_ path: [String]) -> Int {
            if let known = slotOfPath[path] { return known }
            scanPaths.append(path)
            slotOfPath[path] = scanPaths.count - 1
            return scanPaths.count - 1
        }
        var raw: [Int] = []
        for path in rules.fieldPaths { raw.append(slot(path)) }
        var record: [Int] = []
        var synthesisedNames: [(String, Int)] = []
        var recordSlot: [Int] = []
        if cloudTrailEnvelope {
            for name in EventMatcher.recordFields { recordSlot.append(slot(name.split(separator: ".").map(String.init))) }
            for path in rules.fieldPaths {
                if path.count > 1 && path[0] == "detail" {
                    record.append(slot(Array(path.dropFirst())))
                } else if path.count == 1, CloudTrailEnvelope.fields.contains(path[0]) {
                    record.append(-2 - synthesisedNames.count)
                    synthesisedNames.append((path[0], -1))
                } else {
                    record.append(-1)
                }
            }
            // Synthesised slots and one slot that stays empty come after the scanned ones.
            let empty = scanPaths.count + synthesisedNames.count
            for k in synthesisedNames.indices { synthesisedNames[k].1 = scanPaths.count + k }
            record = record.map { $0 == -1 ? empty : $0 <= -2 ? scanPaths.count + (-2 - $0) : $0 }
        }
        rawSlots = raw
        recordSlots = record
        synthesised = synthesisedNames.map { (name: $0.0, slot: $0.1) }
        self.recordSlot = recordSlot
        scanner = JSONLeafScanner(paths: scanPaths.map { $0.map { Array($0.utf8) } })
        scanSlots = Array(scanPaths.indices)
        values = EventValues(fieldCount: scanPaths.count + synthesisedNames.count + 1)
    }

    /// The rules the last document matched, in rule order (after ``matchesAny(_:)``).
    public var matched: [Int] { scratch.matched }

    /// The rules `document` satisfies, in rule order (empty when it is not a JSON object).
    public mutating func matches(_ document: UnsafeRawBufferPointer) -> [Int] {
        matchesAny(document) ? scratch.matched : []
    }

    /// Whether `document` satisfies any rule (which ones: ``matched``).
    public mutating func matchesAny(_ document: UnsafeRawBufferPointer) -> Bool {
        values.reset()
        lastWasCloudTrail = false
        let root = withUnsafeMutablePointer(to: &values) { pointer in
            scanSlots.withUnsafeBufferPointer { map in
                var collector = EventValuesCollector(values: pointer, fieldOfPath: map, document: document)
                return scanner.scan(document, into: &collector)
            }
        }
        guard root == .object else { return false }
        if cloudTrailEnvelope, isCloudTrailRecord {
            lastWasCloudTrail = true
            for (name, slot) in synthesised { synthesise(name, into: slot) }
            rules.match(values, slots: recordSlots, scratch: &scratch)
        } else {
            rules.match(values, slots: rawSlots, scratch: &scratch)
        }
        return !scratch.matched.isEmpty
    }

    public mutating func matches(_ document: [UInt8]) -> [Int] {
        document.withUnsafeBytes { matches($0) }
    }

    var isCloudTrailRecord: Bool {
        values.has(recordSlot[RecordField.eventVersion.rawValue]) && values.has(recordSlot[RecordField.eventTime.rawValue])
            && (values.has(recordSlot[RecordField.eventSource.rawValue]) || values.has(recordSlot[RecordField.eventType.rawValue]))
    }

    func recordString(_ field: RecordField) -> String? {
        values.firstString(recordSlot[field.rawValue]).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Fills an envelope field from the record's own values, at byte level (this runs for every record).
    mutating func synthesise(_ name: String, into slot: Int) {
        derived.removeAll(keepingCapacity: true)
        switch name {
        case "version": derived.append(UInt8(ascii: "0"))
        case "id": guard values.copyFirstString(recordSlot[RecordField.eventID.rawValue], into: &derived) else { return }
        case "time": guard values.copyFirstString(recordSlot[RecordField.eventTime.rawValue], into: &derived) else { return }
        case "region": guard values.copyFirstString(recordSlot[RecordField.awsRegion.rawValue], into: &derived) else { return }
        case "account":
            guard values.copyFirstString(recordSlot[RecordField.recipientAccountId.rawValue], into: &derived)
                || values.copyFirstString(recordSlot[RecordField.accountId.rawValue], into: &derived) else { return }
        case "detail-type":
            _ = values.copyFirstString(recordSlot[RecordField.eventType.rawValue], into: &derived)
            let detailType = CloudTrailEnvelope.detailTypes[derived] ?? CloudTrailEnvelope.apiCall
            detailType.withUnsafeBytes { values.appendString(slot, $0) }
            return
        case "source":
            // Remembered per (eventSource, eventType): a trail has few of them.
            _ = values.copyFirstString(recordSlot[RecordField.eventSource.rawValue], into: &derived)
            derived.append(0)
            var type: [UInt8] = []
            if values.copyFirstString(recordSlot[RecordField.eventType.rawValue], into: &type) { derived += type }
            if let known = sources[derived] {
                known.withUnsafeBytes { values.appendString(slot, $0) }
                return
            }
            let split = derived.firstIndex(of: 0)!
            let source = CloudTrailEnvelope.sourceBytes(eventSource: Array(derived[..<split]), eventType: Array(derived[(split + 1)...]))
            if sources.count < 4096 { sources[derived] = source }
            source.withUnsafeBytes { values.appendString(slot, $0) }
            return
        default: return  // resources: [] has no leaves
        }
        derived.withUnsafeBytes { values.appendString(slot, $0) }
    }

    /// The `eventID` of the last document, when it was a CloudTrail record.
    public var recordID: String? { lastWasCloudTrail ? recordString(.eventID) : nil }

    /// The event the last matched document stands for, as EventBridge would deliver it: the
    /// CloudTrail envelope around a record, or the document itself. Call right after ``matches(_:)``.
    public func event(for document: UnsafeRawBufferPointer) -> [UInt8] {
        guard lastWasCloudTrail else { return Array(document) }
        let eventType = recordString(.eventType)
        return CloudTrailEnvelope.wrap(
            record: document, id: recordString(.eventID) ?? "", detailType: CloudTrailEnvelope.detailType(eventType: eventType),
            source: CloudTrailEnvelope.source(eventSource: recordString(.eventSource), eventType: eventType),
            account: recordString(.recipientAccountId) ?? recordString(.accountId) ?? "",
            time: recordString(.eventTime) ?? "", region: recordString(.awsRegion) ?? "")
    }
}
