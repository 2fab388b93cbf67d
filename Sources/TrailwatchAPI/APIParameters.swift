import AWSWire
import Foundation

/// A decoded JSON request body with typed, validated accessors whose errors are AWS's:
/// wrong types are SerializationException, broken constraints InvalidParameterException in
/// AWS's "1 validation error detected" wording.
struct APIParameters {
    let values: [String: Any]

    init(_ body: [UInt8]) throws(AWSError) {
        if body.isEmpty || body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) {
            values = [:]
            return
        }
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: Data(body), options: []) } catch {
            throw AWSError.serialization("The request body is not valid JSON.")
        }
        guard let object = parsed as? [String: Any] else { throw AWSError.serialization("The request body must be a JSON object.") }
        values = object
    }

    static func invalid(_ field: String, _ value: Any?, _ constraint: String) -> AWSError {
        let shown = value.map { "'\($0)'" } ?? "null"
        return AWSError("InvalidParameterException", "1 validation error detected: Value \(shown) at '\(field)' failed to satisfy constraint: \(constraint)")
    }

    /// JSONSerialization gives booleans as NSNumbers of type char.
    static func isBool(_ number: NSNumber) -> Bool { String(cString: number.objCType) == "c" }

    func present(_ key: String) -> Bool { values[key] != nil && !(values[key] is NSNull) }

    func string(_ key: String, min: Int = 0, max: Int = .max) throws(AWSError) -> String? {
        guard let raw = values[key], !(raw is NSNull) else { return nil }
        guard let text = raw as? String else { throw AWSError.serialization("Expected a string for '\(key)'.") }
        if text.count < min { throw Self.invalid(key, text, "Member must have length greater than or equal to \(min)") }
        if text.count > max { throw Self.invalid(key, text, "Member must have length less than or equal to \(max)") }
        return text
    }

    func required(_ key: String, min: Int = 1, max: Int = .max) throws(AWSError) -> String {
        guard let text = try string(key, min: min, max: max) else { throw Self.invalid(key, nil, "Member must not be null") }
        return text
    }

    func int(_ key: String, min: Int64? = nil, max: Int64? = nil) throws(AWSError) -> Int64? {
        guard let raw = values[key], !(raw is NSNull) else { return nil }
        guard let number = raw as? NSNumber, !Self.isBool(number),
              let value = Int64(exactly: number.doubleValue) ?? (number.doubleValue.rounded() == number.doubleValue ? number.int64Value : nil) else {
            throw AWSError.serialization("Expected an integer for '\(key)'.")
        }
        if let min, value < min { throw Self.invalid(key, value, "Member must have value greater than or equal to \(min)") }
        if let max, value > max { throw Self.invalid(key, value, "Member must have value less than or equal to \(max)") }
        return value
    }

    func bool(_ key: String) throws(AWSError) -> Bool? {
        guard let raw = values[key], !(raw is NSNull) else { return nil }
        guard let number = raw as? NSNumber, Self.isBool(number) else {
            throw AWSError.serialization("Expected a boolean for '\(key)'.")
        }
        return number.boolValue
    }

    func double(_ key: String) throws(AWSError) -> Double? {
        guard let raw = values[key], !(raw is NSNull) else { return nil }
        guard let number = raw as? NSNumber, !Self.isBool(number) else { throw AWSError.serialization("Expected a number for '\(key)'.") }
        return number.doubleValue
    }

    func strings(_ key: String, min: Int = 0, max: Int = .max) throws(AWSError) -> [String]? {
        guard let raw = values[key], !(raw is NSNull) else { return nil }
        guard let list = raw as? [Any] else { throw AWSError.serialization("Expected a list for '\(key)'.") }
        var out: [String] = []
        for item in list {
            guard let text = item as? String else { throw AWSError.serialization("Expected strings in '\(key)'.") }
            out.append(text)
        }
        if out.count < min { throw Self.invalid(key, out, "Member must have length greater than or equal to \(min)") }
        if out.count > max { throw Self.invalid(key, out, "Member must have length less than or equal to \(max)") }
        return out
    }

    func objects(_ key: String) throws(AWSError) -> [[String: Any]]? {
        guard let raw = values[key], !(raw is NSNull) else { return nil }
        guard let list = raw as? [Any] else { throw AWSError.serialization("Expected a list for '\(key)'.") }
        var out: [[String: Any]] = []
        for item in list {
            guard let object = item as? [String: Any] else { throw AWSError.serialization("Expected objects in '\(key)'.") }
            out.append(object)
        }
        return out
    }

    // MARK: CloudWatch Logs names

    static func isGroupName(_ name: String) -> Bool {
        name.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A)
            || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "#") }
    }

    /// `logGroupName`, or the name inside `logGroupIdentifier` (a name or an ARN).
    func groupName(required: Bool = true, identifierKey: String? = "logGroupIdentifier") throws(AWSError) -> String? {
        var name = try string("logGroupName", min: 1, max: 512)
        if name == nil, let key = identifierKey, let identifier = try string(key, min: 1, max: 2048) {
            // arn:aws:logs:REGION:ACCOUNT:log-group:NAME[:*]
            if identifier.hasPrefix("arn:"), let range = identifier.range(of: ":log-group:") {
                var rest = identifier[range.upperBound...]
                if rest.hasSuffix(":*") { rest = rest.dropLast(2) }
                name = String(rest)
            } else {
                name = identifier
            }
        }
        guard let name else {
            if required { throw Self.invalid("logGroupName", nil, "Member must not be null") }
            return nil
        }
        guard Self.isGroupName(name), name.utf8.count <= 512 else {
            throw Self.invalid("logGroupName", name, "Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+")
        }
        return name
    }

    func streamName(_ key: String = "logStreamName", required: Bool = true) throws(AWSError) -> String? {
        guard let name = try string(key, min: 1, max: 512) else {
            if required { throw Self.invalid(key, nil, "Member must not be null") }
            return nil
        }
        guard !name.contains(":") && !name.contains("*") else {
            throw Self.invalid(key, name, "Member must satisfy regular expression pattern: [^:*]*")
        }
        return name
    }
}

/// JSON replies built with Foundation (the small, varied ones).
enum JSONReply {
    static func encode(_ object: [String: Any]) -> [UInt8] {
        (try? Array(JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]))) ?? Array("{}".utf8)
    }
}
