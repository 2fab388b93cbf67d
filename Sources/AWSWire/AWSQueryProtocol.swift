/// The AWS query protocol (CloudWatch's original): a form-encoded POST body with `Action`,
/// `Version` and flattened parameters (`MetricData.member.1.Dimensions.member.2.Name=…`);
/// replies are XML (`<ActionResponse><ActionResult>…</ActionResult><ResponseMetadata>…`).
public enum AWSQueryProtocol {
    public static let contentType = "application/x-www-form-urlencoded"

    /// A decoded form: the action, the API version and the parameters as a document.
    public struct Form: Sendable, Equatable {
        public var action: String
        public var version: String
        public var parameters: AWSValue
    }

    /// Decodes a form body. Keys nest on `.`; `member.N` makes lists (in N order) and
    /// `entry.N.key` / `entry.N.value` maps; every scalar stays a string (the accessors convert).
    public static func decode(_ body: [UInt8], maxParameters: Int = 10_000) throws(AWSError) -> Form {
        let node = Node()
        var action: String?
        var version: String?
        var count = 0
        for pair in body.split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            count += 1
            guard count <= maxParameters else { throw AWSError("InvalidParameterCombination", "More than \(maxParameters) parameters.") }
            let parts = pair.split(separator: UInt8(ascii: "="), maxSplits: 1, omittingEmptySubsequences: false)
            let key = try percentDecode(parts[0])
            let value = parts.count > 1 ? try percentDecode(parts[1]) : ""
            switch key {
            case "Action": action = value
            case "Version": version = value
            default:
                var current = node
                for component in key.split(separator: ".", omittingEmptySubsequences: false) {
                    guard !component.isEmpty else { throw AWSError("MalformedQueryString", "Parameter name '\(key)' has an empty component.") }
                    current = current.child(String(component))
                }
                current.leaf = value
            }
        }
        guard let action, !action.isEmpty else { throw AWSError("MissingAction", "The request must contain the parameter Action.") }
        return Form(action: action, version: version ?? "", parameters: try node.value(path: ""))
    }

    final class Node {
        var leaf: String?
        var children: [String: Node] = [:]

        func child(_ name: String) -> Node {
            if let existing = children[name] { return existing }
            let made = Node()
            children[name] = made
            return made
        }

        func value(path: String) throws(AWSError) -> AWSValue {
            if children.isEmpty { return .string(leaf ?? "") }
            if children.count == 1, let members = children["member"] {
                return .list(try members.indexed(path: path + ".member").map { node throws(AWSError) in try node.value(path: path) })
            }
            if children.count == 1, let entries = children["entry"] {
                var map: [String: AWSValue] = [:]
                for entry in try entries.indexed(path: path + ".entry") {
                    guard let key = entry.children["key"]?.leaf else { throw AWSError("MalformedQueryString", "\(path).entry has no key.") }
                    map[key] = try entry.children["value"]?.value(path: path + "." + key) ?? .string("")
                }
                return .map(map)
            }
            var members: [String: AWSValue] = [:]
            for (name, node) in children { members[name] = try node.value(path: path.isEmpty ? name : path + "." + name) }
            return .map(members)
        }

        /// Children named 1, 2, … in index order.
        func indexed(path: String) throws(AWSError) -> [Node] {
            var numbered: [(Int, Node)] = []
            for (name, node) in children {
                guard let index = Int(name), index >= 1 else { throw AWSError("MalformedQueryString", "'\(path).\(name)' is not a list index (1, 2, …).") }
                numbered.append((index, node))
            }
            return numbered.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    static func percentDecode(_ text: ArraySlice<UInt8>) throws(AWSError) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count)
        var i = text.startIndex
        func hexValue(_ b: UInt8) -> UInt8? {
            switch b {
            case 0x30...0x39: b - 0x30
            case 0x41...0x46: b - 0x37
            case 0x61...0x66: b - 0x57
            default: nil
            }
        }
        while i < text.endIndex {
            let b = text[i]
            if b == UInt8(ascii: "+") {
                bytes.append(0x20)
            } else if b == UInt8(ascii: "%") {
                guard i + 2 < text.endIndex, let hi = hexValue(text[i + 1]), let lo = hexValue(text[i + 2]) else {
                    throw AWSError("MalformedQueryString", "Invalid percent escape in the form body.")
                }
                bytes.append(hi << 4 | lo)
                i += 2
            } else {
                bytes.append(b)
            }
            i += 1
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else { throw AWSError("MalformedQueryString", "The form body is not valid UTF-8.") }
        return decoded
    }

    // MARK: Replies

    /// `<ActionResponse xmlns=…><ActionResult>result</ActionResult><ResponseMetadata><RequestId>…`.
    public static func reply(action: String, result: AWSValue, namespace: String, requestID: String) -> AWSReply {
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<\(action)Response xmlns=\"\(escape(namespace))\">"
        if case .map(let members) = result, !members.isEmpty {
            xml += "<\(action)Result>"
            element(result, into: &xml)
            xml += "</\(action)Result>"
        }
        xml += "<ResponseMetadata><RequestId>\(escape(requestID))</RequestId></ResponseMetadata></\(action)Response>"
        return AWSReply(status: 200, headers: [("Content-Type", "text/xml"), ("x-amzn-RequestId", requestID)], body: Array(xml.utf8))
    }

    public static func errorReply(_ error: AWSError, namespace: String, requestID: String) -> AWSReply {
        let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse xmlns=\"\(escape(namespace))\"><Error><Type>\(error.status >= 500 ? "Receiver" : "Sender")</Type>"
            + "<Code>\(escape(error.code))</Code><Message>\(escape(error.message))</Message></Error><RequestId>\(escape(requestID))</RequestId></ErrorResponse>"
        var headers: [(name: String, value: String)] = [("Content-Type", "text/xml"), ("x-amzn-RequestId", requestID)]
        if let retryAfter = error.retryAfter { headers.append(("Retry-After", String(retryAfter))) }
        return AWSReply(status: error.status, headers: headers, body: Array(xml.utf8))
    }

    /// A value's content: structure members as elements, list items as `<member>`.
    static func element(_ value: AWSValue, into xml: inout String) {
        switch value {
        case .null: break
        case .bool(let flag): xml += flag ? "true" : "false"
        case .int(let number): xml += String(number)
        case .double(let number): xml += number.isFinite ? number.awsJSONText : (number.isNaN ? "NaN" : (number > 0 ? "Infinity" : "-Infinity"))
        case .timestamp(let seconds): xml += AWSTimestamp.iso8601(seconds)
        case .string(let text): xml += escape(text)
        case .blob(let bytes): xml += Base64.encode(bytes)
        case .list(let items):
            for item in items {
                xml += "<member>"
                element(item, into: &xml)
                xml += "</member>"
            }
        case .map(let members):
            for key in members.keys.sorted() where members[key] != .null {
                xml += "<\(key)>"
                element(members[key]!, into: &xml)
                xml += "</\(key)>"
            }
        }
    }

    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\r": out += "&#13;"
            default:
                // XML 1.0 cannot carry most control characters; they are replaced.
                if scalar.value < 0x20 && scalar != "\n" && scalar != "\t" { out += "\u{FFFD}" } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }
}
