#if canImport(Glibc)
import Glibc
#endif
import ByteJSON

/// The LookupEvents attributes of a CloudTrail record (JSON with eventID, eventName and
/// eventSource), as every store backend indexes them.
public struct CloudTrailAttributes: Sendable {
    private let lookup = JSONMultiLookup(["$.eventID", "$.eventName", "$.readOnly", "$.userIdentity.userName",
                                          "$.eventSource", "$.userIdentity.accessKeyId", "$.userIdentity.arn",
                                          "$.userIdentity.sessionContext.sessionIssuer.userName"].map { try! JSONPath($0) })

    public init() {}

    /// (attribute, value) pairs, or nil when the message is not a CloudTrail record.
    public func attributes(of message: UnsafeRawBufferPointer) -> [(String, String)]? {
        guard message.count > 20, message[0] == UInt8(ascii: "{"), Self.mayHoldEventID(message) else { return nil }
        let found = lookup.lookup(in: message)
        guard let eventID = found[0].scalarText(in: message), let name = found[1].scalarText(in: message),
              let source = found[4].scalarText(in: message) else { return nil }
        func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
        var attributes: [(String, String)] = [("EventId", text(eventID)), ("EventName", text(name)), ("EventSource", text(source))]
        if let readOnly = found[2].scalarText(in: message) { attributes.append(("ReadOnly", text(readOnly))) }
        // Username: userName, else the session issuer's user name, else the ARN's last part.
        if let user = found[3].scalarText(in: message) ?? found[7].scalarText(in: message) {
            attributes.append(("Username", text(user)))
        } else if let arn = found[6].scalarText(in: message), let last = text(arn).split(separator: "/").last {
            attributes.append(("Username", String(last)))
        }
        if let accessKey = found[5].scalarText(in: message) { attributes.append(("AccessKeyId", text(accessKey))) }
        if let root = try? JSONValue.parse(message), case .object(let members) = root,
           let resources = members.first(where: { $0.key == "resources" })?.value, case .array(let items) = resources {
            for item in items {
                guard case .object(let fields) = item else { continue }
                if let type = fields.first(where: { $0.key == "type" })?.value.stringValue { attributes.append(("ResourceType", type)) }
                if let arn = fields.first(where: { $0.key == "ARN" })?.value.stringValue { attributes.append(("ResourceName", arn)) }
            }
        }
        return attributes
    }

    /// False when `message` cannot have an `eventID` member: it holds neither those bytes nor a
    /// backslash (which a key spelled with escapes needs). Most JSON lines are not CloudTrail
    /// records, and two byte searches cost less than looking their members up.
    static func mayHoldEventID(_ message: UnsafeRawBufferPointer) -> Bool {
        guard let base = message.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return false }
        if memchr(base, Int32(UInt8(ascii: "\\")), message.count) != nil { return true }
        // Each capital I (rare in JSON) with "event" before it and "D" after it.
        let count = message.count
        var from = 5
        while from < count - 1, let hit = memchr(base + from, Int32(UInt8(ascii: "I")), count - 1 - from) {
            let i = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            if base[i + 1] == UInt8(ascii: "D") && memcmp(base + i - 5, eventBytes, 5) == 0 { return true }
            from = i + 1
        }
        return false
    }

    private static let eventBytes: [UInt8] = Array("event".utf8)
}
