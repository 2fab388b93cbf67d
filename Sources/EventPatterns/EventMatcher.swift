#if canImport(Glibc)
import Glibc
#endif
import ByteJSON

/// How CloudTrail records look to EventBridge rules: AWS delivers each record to EventBridge
/// wrapped in an envelope (`source: aws.<service>`, `detail-type: AWS API Call via CloudTrail`,
/// `detail: <the record>`), and rules are written against that envelope.
public enum CloudTrailEnvelope {
    /// The envelope's top-level fields (besides `detail`).
    public static let fields = ["version", "id", "detail-type", "source", "account", "time", "region", "resources"]

    /// `detail-type` by `eventType`; any other type (`AwsApiCall`, none) is an API call.
    static let detailTypes = [("AwsConsoleSignIn", "AWS Console Sign In via CloudTrail"), ("AwsConsoleAction", "AWS Console Action via CloudTrail"),
                              ("AwsServiceEvent", "AWS Service Event via CloudTrail"), ("AwsCloudTrailInsight", "AWS Insight via CloudTrail")]
    static let apiCall = "AWS API Call via CloudTrail"

    /// `detail-type` for a record's `eventType`.
    public static func detailType(eventType: String?) -> String {
        detailTypes.first { $0.0 == eventType }?.1 ?? apiCall
    }

    /// `source` for a record: `aws.` and the service of its `eventSource` (`s3.amazonaws.com` →
    /// `aws.s3`; CloudWatch's `monitoring` → `aws.cloudwatch`); Insights events come from `aws.cloudtrail`.
    public static func source(eventSource: String?, eventType: String?) -> String {
        var out: [UInt8] = []
        Array((eventSource ?? "").utf8).withUnsafeBytes { source in
            if let eventType {
                Array(eventType.utf8).withUnsafeBytes { EventMatcher.Envelope.appendSource(eventSource: source, eventType: $0, to: &out) }
            } else {
                EventMatcher.Envelope.appendSource(eventSource: source, eventType: nil, to: &out)
            }
        }
        return String(decoding: out, as: UTF8.self)
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
/// fields are derived from the record's own, at byte level. Any other document is matched as it is.
/// One per thread (it owns its working memory, in plain memory: nothing on the way from bytes
/// to matched rules counts references or allocates, unless a string has escapes).
public final class EventMatcher {
    public let rules: RuleSet
    public let cloudTrailEnvelope: Bool
    let scanner: JSONLeafScanner
    /// The working memory of one match: plain memory behind pointers, so filling it needs no
    /// exclusivity checks or reference counting.
    let values: UnsafeMutablePointer<EventValues>
    let scratch: UnsafeMutablePointer<RuleMatchScratch>
    let wasCloudTrail: UnsafeMutablePointer<Bool>
    /// Scanner path → slot (the identity), field → slot when the document is matched as it is /
    /// as a CloudTrail record, and the slots of the record fields the envelope is derived from
    /// (``recordFields`` order; empty without the envelope).
    let scanSlots: UnsafeMutableBufferPointer<Int>
    let rawSlots: UnsafeMutableBufferPointer<Int>
    let recordSlots: UnsafeMutableBufferPointer<Int>
    let recordSlot: UnsafeMutableBufferPointer<Int>
    /// Envelope fields some rule reads, with the slot each is synthesised into.
    let synthesised: UnsafeMutableBufferPointer<(field: EnvelopeField, slot: Int)>

    enum EnvelopeField: String, CaseIterable { case version, id, detailType = "detail-type", source, account, time, region, resources }

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
        var synthesisedFields: [(EnvelopeField, Int)] = []
        var recordSlot: [Int] = []
        if cloudTrailEnvelope {
            for name in EventMatcher.recordFields { recordSlot.append(slot(name.split(separator: ".").map(String.init))) }
            for path in rules.fieldPaths {
                if path.count > 1 && path[0] == "detail" {
                    record.append(slot(Array(path.dropFirst())))
                } else if path.count == 1, let field = EnvelopeField(rawValue: path[0]) {
                    record.append(-2 - synthesisedFields.count)
                    synthesisedFields.append((field, -1))
                } else {
                    record.append(-1)
                }
            }
            // Synthesised slots and one slot that stays empty come after the scanned ones.
            let empty = scanPaths.count + synthesisedFields.count
            for k in synthesisedFields.indices { synthesisedFields[k].1 = scanPaths.count + k }
            record = record.map { $0 == -1 ? empty : $0 <= -2 ? scanPaths.count + (-2 - $0) : $0 }
        }
        func buffer<T>(_ items: [T]) -> UnsafeMutableBufferPointer<T> {
            let b = UnsafeMutablePointer<T>.allocate(capacity: max(1, items.count))
            b.initialize(from: items, count: items.count)
            return UnsafeMutableBufferPointer(start: b, count: items.count)
        }
        rawSlots = buffer(raw)
        recordSlots = buffer(record)
        synthesised = buffer(synthesisedFields.map { (field: $0.0, slot: $0.1) })
        self.recordSlot = buffer(recordSlot)
        scanner = JSONLeafScanner(paths: scanPaths.map { $0.map { Array($0.utf8) } })
        scanSlots = buffer(Array(scanPaths.indices))
        values = .allocate(capacity: 1)
        values.initialize(to: EventValues(fieldCount: scanPaths.count + synthesisedFields.count + 1))
        scratch = .allocate(capacity: 1)
        scratch.initialize(to: RuleMatchScratch(alternatives: rules.alternativeCount, rules: rules.ruleCount))
        wasCloudTrail = .allocate(capacity: 1)
        wasCloudTrail.initialize(to: false)
    }

    deinit {
        values.pointee.deallocate()
        values.deinitialize(count: 1)
        values.deallocate()
        scratch.pointee.deallocate()
        scratch.deallocate()
        wasCloudTrail.deallocate()
        for b in [scanSlots, rawSlots, recordSlots, recordSlot] { b.baseAddress!.deallocate() }
        synthesised.baseAddress!.deallocate()
    }

    /// The rules the last document matched, in rule order (after ``matchesAny(_:)``).
    public var matched: [Int] { scratch.pointee.matchedRules }

    /// Whether the last document was matched as a CloudTrail record (inside its envelope).
    public var lastWasCloudTrail: Bool { wasCloudTrail.pointee }

    /// The rules `document` satisfies, in rule order (empty when it is not a JSON object).
    public func matches(_ document: UnsafeRawBufferPointer) -> [Int] {
        matchesAny(document) ? matched : []
    }

    public func matches(_ document: [UInt8]) -> [Int] {
        document.withUnsafeBytes { matches($0) }
    }

    /// Whether `document` satisfies any rule (which ones: ``matched``). The leaves point into
    /// `document`: ``event(for:)`` and ``recordID`` read them, so keep it alive until then.
    public func matchesAny(_ document: UnsafeRawBufferPointer) -> Bool {
        values.pointee.reset()
        wasCloudTrail.pointee = false
        scratch.pointee.begin()
        guard let base = document.baseAddress else { return false }
        var collector = EventValuesCollector(values: values, fieldOfPath: UnsafePointer(scanSlots.baseAddress!), document: base)
        guard scanner.scan(document, into: &collector) == .object else { return false }
        if cloudTrailEnvelope, isCloudTrailRecord {
            wasCloudTrail.pointee = true
            for (field, slot) in synthesised { synthesise(field, into: slot) }
            rules.match(values, slots: recordSlots.baseAddress!, scratch: scratch)
        } else {
            rules.match(values, slots: rawSlots.baseAddress!, scratch: scratch)
        }
        return scratch.pointee.matchedCount > 0
    }

    var isCloudTrailRecord: Bool {
        let head = values.pointee.head
        return head[recordSlot[RecordField.eventVersion.rawValue]] >= 0 && head[recordSlot[RecordField.eventTime.rawValue]] >= 0
            && (head[recordSlot[RecordField.eventSource.rawValue]] >= 0 || head[recordSlot[RecordField.eventType.rawValue]] >= 0)
    }

    /// The first string leaf of a record field, in place.
    @inline(__always)
    func recordBytes(_ field: RecordField) -> UnsafeRawBufferPointer? {
        values.pointee.firstString(recordSlot[field.rawValue])
    }

    func recordString(_ field: RecordField) -> String? {
        recordBytes(field).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Fills an envelope field from the record's own values, at byte level (this runs for every
    /// record): a leaf pointing at the record's value, at a constant, or at the arena.
    func synthesise(_ field: EnvelopeField, into slot: Int) {
        let bytes: UnsafeRawBufferPointer
        switch field {
        case .version: bytes = Envelope.version
        case .id: guard let b = recordBytes(.eventID) else { return }; bytes = b
        case .time: guard let b = recordBytes(.eventTime) else { return }; bytes = b
        case .region: guard let b = recordBytes(.awsRegion) else { return }; bytes = b
        case .account: guard let b = recordBytes(.recipientAccountId) ?? recordBytes(.accountId) else { return }; bytes = b
        case .detailType: bytes = Envelope.detailType(eventType: recordBytes(.eventType))
        case .source:
            let eventSource = recordBytes(.eventSource) ?? UnsafeRawBufferPointer(start: nil, count: 0)
            if let constant = Envelope.constantSource(eventSource: eventSource, eventType: recordBytes(.eventType)) {
                bytes = constant
            } else {
                // "aws." and the service: the part of eventSource before its first dot.
                let service = Envelope.service(eventSource)
                let out = values.pointee.arena.reserve(4 + service.count)
                out.copyMemory(from: Envelope.awsDot.baseAddress!, byteCount: 4)
                if service.count > 0 { (out + 4).copyMemory(from: service.baseAddress!, byteCount: service.count) }
                bytes = UnsafeRawBufferPointer(start: out, count: 4 + service.count)
            }
        case .resources: return  // resources: [] has no leaves
        }
        values.pointee.appendString(slot, pointing: bytes)
    }

    /// The envelope's values that do not come from the record, and how they are derived from it,
    /// on bytes (``CloudTrailEnvelope/detailType(eventType:)`` and ``CloudTrailEnvelope/source(eventSource:eventType:)`` use these).
    enum Envelope {
        nonisolated(unsafe) static let version = LeafConstants.make(["0"])[0]
        nonisolated(unsafe) static let awsDot = LeafConstants.make(["aws."])[0]
        nonisolated(unsafe) static let cloudTrail = LeafConstants.make(["aws.cloudtrail"])[0]
        nonisolated(unsafe) static let cloudWatch = LeafConstants.make(["aws.cloudwatch"])[0]
        nonisolated(unsafe) static let eventTypes = LeafConstants.make(CloudTrailEnvelope.detailTypes.map(\.0))
        nonisolated(unsafe) static let detailTypes = LeafConstants.make(CloudTrailEnvelope.detailTypes.map(\.1))
        nonisolated(unsafe) static let apiCall = LeafConstants.make([CloudTrailEnvelope.apiCall])[0]
        nonisolated(unsafe) static let insight = LeafConstants.make(["AwsCloudTrailInsight"])[0]
        nonisolated(unsafe) static let monitoring = LeafConstants.make(["monitoring"])[0]

        static func detailType(eventType: UnsafeRawBufferPointer?) -> UnsafeRawBufferPointer {
            guard let eventType else { return apiCall }
            for k in 0..<eventTypes.count where Bytes.equal(eventType, eventTypes[k]) { return detailTypes[k] }
            return apiCall
        }

        /// `aws.cloudtrail` for Insights events and records without an event source,
        /// `aws.cloudwatch` for `monitoring`; nil when the source is `aws.` and the ``service(_:)``.
        static func constantSource(eventSource: UnsafeRawBufferPointer, eventType: UnsafeRawBufferPointer?) -> UnsafeRawBufferPointer? {
            if let eventType, Bytes.equal(eventType, insight) { return cloudTrail }
            if eventSource.isEmpty { return cloudTrail }
            if Bytes.equal(service(eventSource), monitoring) { return cloudWatch }
            return nil
        }

        /// The part of an `eventSource` before its first dot.
        static func service(_ eventSource: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
            guard let base = eventSource.baseAddress,
                  let dot = memchr(base, Int32(UInt8(ascii: ".")), eventSource.count) else { return eventSource }
            return UnsafeRawBufferPointer(start: base, count: UnsafeRawPointer(dot) - base)
        }

        static func appendSource(eventSource: UnsafeRawBufferPointer, eventType: UnsafeRawBufferPointer?, to out: inout [UInt8]) {
            if let constant = constantSource(eventSource: eventSource, eventType: eventType) {
                out.append(contentsOf: constant)
            } else {
                out.append(contentsOf: awsDot)
                out.append(contentsOf: service(eventSource))
            }
        }
    }

    /// The `eventID` of the last document, when it was a CloudTrail record.
    public var recordID: String? { lastWasCloudTrail ? recordString(.eventID) : nil }

    /// The event the last matched document stands for, as EventBridge would deliver it: the
    /// CloudTrail envelope around a record (``CloudTrailEnvelope/wrap(record:id:detailType:source:account:time:region:)``,
    /// written from the record's bytes), or the document itself. Call right after ``matches(_:)``.
    public func event(for document: UnsafeRawBufferPointer) -> [UInt8] {
        guard lastWasCloudTrail else { return Array(document) }
        let none = UnsafeRawBufferPointer(start: nil, count: 0)
        let eventType = recordBytes(.eventType)
        var out: [UInt8] = []
        out.reserveCapacity(document.count + 320)
        out.append(contentsOf: #"{"version":"0","id":"#.utf8)
        JSONWriter.appendString(recordBytes(.eventID) ?? none, to: &out)
        out.append(contentsOf: #","detail-type":"#.utf8)
        JSONWriter.appendString(Envelope.detailType(eventType: eventType), to: &out)
        out.append(contentsOf: #","source":"#.utf8)
        var source: [UInt8] = []
        Envelope.appendSource(eventSource: recordBytes(.eventSource) ?? none, eventType: eventType, to: &source)
        JSONWriter.appendString(source, to: &out)
        out.append(contentsOf: #","account":"#.utf8)
        JSONWriter.appendString(recordBytes(.recipientAccountId) ?? recordBytes(.accountId) ?? none, to: &out)
        out.append(contentsOf: #","time":"#.utf8)
        JSONWriter.appendString(recordBytes(.eventTime) ?? none, to: &out)
        out.append(contentsOf: #","region":"#.utf8)
        JSONWriter.appendString(recordBytes(.awsRegion) ?? none, to: &out)
        out.append(contentsOf: #","resources":[],"detail":"#.utf8)
        out.append(contentsOf: document)
        out.append(UInt8(ascii: "}"))
        return out
    }
}
