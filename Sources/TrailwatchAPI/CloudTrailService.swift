import AWSWire
import Foundation
import TrailwatchCore
import TrailwatchStore

/// CloudTrail's LookupEvents (awsJson 1.1, `com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101`)
/// over the event history the store keeps: CloudTrail records written by a store sink are
/// indexed by every lookup attribute; `EventCategory: insight` returns the insight events
/// trailwatch's `insights` transform produced.
public final class CloudTrailService: AWSService, Sendable {
    public let targetPrefix = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101"
    public let signingName = "cloudtrail"

    let open: @Sendable () async throws(StoreError) -> any Store

    public init(open: @escaping @Sendable () async throws(StoreError) -> any Store) {
        self.open = open
    }

    public func handle(_ call: AWSOperationCall) async -> AWSReply {
        do throws(AWSError) {
            let input = APIInput(try AWSDocumentCodec.input(call), errors: .cloudTrail)
            guard call.operation == "LookupEvents" else {
                throw AWSError("UnsupportedOperationException", "The operation \(call.operation) is not supported by this endpoint (trailwatch serves LookupEvents).")
            }
            return AWSDocumentCodec.reply(try await lookupEvents(input), call, documentShape)
        } catch {
            return AWSDocumentCodec.errorReply(error, call.wireProtocol, requestID: call.requestID, documentShape)
        }
    }

    func lookupEvents(_ input: APIInput) async throws(AWSError) -> AWSValue {
        let attributes = try input.list("LookupAttributes")
        guard attributes.count <= 1 else {
            throw AWSError("InvalidLookupAttributesException", "You cannot specify more than one lookup attribute.")
        }
        var attribute = "", value = ""
        if let only = attributes.first {
            attribute = try only.string("AttributeKey") ?? ""
            value = try only.string("AttributeValue", min: 0, max: 2000) ?? ""
            guard StoreConventions.lookupAttributes.contains(attribute) else {
                throw AWSError("InvalidLookupAttributesException", "'\(attribute)' is not a lookup attribute (\(StoreConventions.lookupAttributes.joined(separator: ", "))).")
            }
            guard !value.isEmpty else { throw AWSError("InvalidLookupAttributesException", "AttributeValue must not be empty.") }
        }
        let start = try input.timestamp("StartTime").map { Int64(($0 * 1000).rounded(.down)) }
        // EndTime is inclusive.
        let end = try input.timestamp("EndTime").map { Int64(($0 * 1000).rounded(.down)) + 1 }
        if let start, let end, start >= end { throw AWSError("InvalidTimeRangeException", "StartTime must be before EndTime.") }
        var maxResults = 50
        if let requested = input.value["MaxResults"] {
            guard let n = requested.int64Value, (1...50).contains(n) else {
                throw AWSError("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
            }
            maxResults = Int(n)
        }
        let token = try input.string("NextToken", max: 1024)
        let category = try input.string("EventCategory")
        if let category, category != "insight" { throw AWSError("InvalidEventCategoryException", "EventCategory must be insight.") }

        let store: any Store
        do { store = try await open() } catch { throw AWSError("ServiceUnavailableException", "The store is unavailable: \(error)", status: 503) }
        do {
            let output = try await page(store, attribute: attribute, value: value, start: start, end: end, maxResults: maxResults,
                                        token: token, insights: category == "insight")
            await store.close()
            return output
        } catch {
            await store.close()
            throw error
        }
    }

    func page(_ store: any Store, attribute: String, value: String, start: Int64?, end: Int64?, maxResults: Int, token: String?,
              insights: Bool) async throws(AWSError) -> AWSValue {
        var records: [String]
        var next: String?
        if insights {
            var offset = 0
            if let token {
                guard token.hasPrefix("i."), let n = Int(token.dropFirst(2)), n >= 0 else { throw Self.badToken }
                offset = n
            }
            let events: [StoredEvent]
            do { events = try await store.events(kinds: [EventKind.insight.rawValue], start: start ?? 0, end: end ?? Int64.max, limit: 100_000) } catch {
                throw AWSError("ServiceUnavailableException", "The store failed: \(error)", status: 503)
            }
            let matching = events.reversed().filter { event in
                attribute.isEmpty || Self.attributes(of: event.body).contains { $0.0 == attribute && $0.1 == value }
            }
            records = matching.dropFirst(offset).prefix(maxResults).map(\.body)
            if offset + records.count < matching.count { next = "i.\(offset + records.count)" }
        } else {
            if let token, (try? PageCursor(token: token)) == nil { throw Self.badToken }
            do {
                let page = try await store.lookupEvents(LookupEventsRequest(attribute: attribute, value: value, start: start, end: end,
                                                                            maxResults: maxResults, nextToken: token))
                records = page.records
                next = page.nextToken
            } catch {
                throw AWSError("ServiceUnavailableException", "The store failed: \(error)", status: 503)
            }
        }
        var output: [String: AWSValue] = ["Events": .list(records.map(Self.event))]
        if let next { output["NextToken"] = .string(next) }
        return .map(output)
    }

    static let badToken = AWSError("InvalidNextTokenException", "The NextToken is not valid.")

    static func attributes(of record: String) -> [(String, String)] {
        var text = record
        return text.withUTF8 { CloudTrailAttributes().attributes(of: UnsafeRawBufferPointer($0)) } ?? []
    }

    /// The `Event` shape of one record: its lookup attributes, time, resources and the record itself.
    static func event(_ record: String) -> AWSValue {
        let parsed = (try? AWSJSONValue.decode(Array(record.utf8))) ?? .map([:])
        var out: [String: AWSValue] = ["CloudTrailEvent": .string(record)]
        var resources: [AWSValue] = []
        var pendingType: String?
        for (key, value) in attributes(of: record) {
            switch key {
            case "EventId", "EventName", "ReadOnly", "Username", "EventSource", "AccessKeyId": out[key] = .string(value)
            case "ResourceType": pendingType = value
            case "ResourceName":
                resources.append(.map(["ResourceType": pendingType.map { .string($0) } ?? .null, "ResourceName": .string(value)]))
                pendingType = nil
            default: break
            }
        }
        if out["EventId"] == nil, let id = parsed["eventID"]?.stringValue { out["EventId"] = .string(id) }
        if out["EventName"] == nil, let name = parsed["eventName"]?.stringValue ?? parsed["insightDetails"]?["eventName"]?.stringValue {
            out["EventName"] = .string(name)
        }
        if out["EventSource"] == nil, let source = parsed["eventSource"]?.stringValue ?? parsed["insightDetails"]?["eventSource"]?.stringValue {
            out["EventSource"] = .string(source)
        }
        if let time = parsed["eventTime"]?.stringValue.flatMap(AWSTimestamp.parseISO8601) { out["EventTime"] = .timestamp(time) }
        out["Resources"] = .list(resources)
        return .map(out)
    }
}
