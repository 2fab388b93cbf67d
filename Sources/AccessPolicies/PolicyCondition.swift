import Foundation

/// IAM's condition operators, as the `Condition` element names them.
public enum ConditionOperator: String, Sendable, CaseIterable {
    case stringEquals = "StringEquals", stringNotEquals = "StringNotEquals"
    case stringEqualsIgnoreCase = "StringEqualsIgnoreCase", stringNotEqualsIgnoreCase = "StringNotEqualsIgnoreCase"
    case stringLike = "StringLike", stringNotLike = "StringNotLike"
    case numericEquals = "NumericEquals", numericNotEquals = "NumericNotEquals"
    case numericLessThan = "NumericLessThan", numericLessThanEquals = "NumericLessThanEquals"
    case numericGreaterThan = "NumericGreaterThan", numericGreaterThanEquals = "NumericGreaterThanEquals"
    case dateEquals = "DateEquals", dateNotEquals = "DateNotEquals"
    case dateLessThan = "DateLessThan", dateLessThanEquals = "DateLessThanEquals"
    case dateGreaterThan = "DateGreaterThan", dateGreaterThanEquals = "DateGreaterThanEquals"
    case bool = "Bool"
    case ipAddress = "IpAddress", notIpAddress = "NotIpAddress"
    case arnEquals = "ArnEquals", arnLike = "ArnLike", arnNotEquals = "ArnNotEquals", arnNotLike = "ArnNotLike"
    case null = "Null"

    /// Negated operators hold when the key is absent (IAM: "the condition is true").
    var isNegated: Bool {
        switch self {
        case .stringNotEquals, .stringNotEqualsIgnoreCase, .stringNotLike, .numericNotEquals, .dateNotEquals, .notIpAddress, .arnNotEquals, .arnNotLike: true
        default: false
        }
    }
}

/// One operator of a `Condition` block with its keys and values, e.g.
/// `"IpAddress": {"aws:SourceIp": ["10.0.0.0/8", "192.168.1.7/32"]}`. Keys within an operator must
/// all hold; the values of one key are alternatives (for negated operators: none may match).
/// `…IfExists` holds when the key is absent; `ForAnyValue:`/`ForAllValues:` quantify over
/// multi-valued keys.
public struct PolicyCondition: Sendable {
    public enum SetQualifier: Sendable { case single, forAnyValue, forAllValues }

    public var op: ConditionOperator
    public var ifExists: Bool
    public var qualifier: SetQualifier
    /// Condition keys (compared without case, as IAM does) and their values.
    public var entries: [(key: String, values: [String])]
    /// Values parsed once for the operators that need it (IP ranges, dates, numbers, patterns).
    let ranges: [[IPRange]]
    let numbers: [[Double]]
    let patterns: [[Wildcard]]

    init(operatorName: String, body: Any, path: String, source: String) throws(PolicyDocument.ParseError) {
        func fail(_ message: String, _ at: String? = nil) -> PolicyDocument.ParseError {
            PolicyDocument.ParseError(source: source, path: at.map { "\(path).\($0)" } ?? path, message: message)
        }
        var name = Substring(operatorName)
        qualifier = .single
        if name.hasPrefix("ForAnyValue:") { qualifier = .forAnyValue; name = name.dropFirst("ForAnyValue:".count) }
        else if name.hasPrefix("ForAllValues:") { qualifier = .forAllValues; name = name.dropFirst("ForAllValues:".count) }
        ifExists = name.hasSuffix("IfExists")
        if ifExists { name = name.dropLast("IfExists".count) }
        guard let op = ConditionOperator(rawValue: String(name)) else {
            throw fail("unknown condition operator (known: \(ConditionOperator.allCases.map(\.rawValue).joined(separator: ", ")), with IfExists or ForAnyValue:/ForAllValues:)")
        }
        if op == .null && ifExists { throw fail("Null has no IfExists form") }
        self.op = op
        guard let block = body as? [String: Any], !block.isEmpty else { throw fail("must be an object of condition keys and values") }
        var entries: [(key: String, values: [String])] = []
        var ranges: [[IPRange]] = [], numbers: [[Double]] = [], patterns: [[Wildcard]] = []
        for (key, raw) in block.sorted(by: { $0.key < $1.key }) {
            let list: [Any] = (raw as? [Any]) ?? [raw]
            var values: [String] = []
            for element in list {
                if let text = element as? String { values.append(text) }
                else if let number = element as? NSNumber { values.append(Self.isBool(number) ? (number.boolValue ? "true" : "false") : number.stringValue) }
                else if let flag = element as? Bool { values.append(flag ? "true" : "false") }
                else if let number = element as? Int { values.append(String(number)) }
                else if let number = element as? Double { values.append(String(number)) }
                else { throw fail("values must be strings, numbers or booleans", key) }
            }
            guard !values.isEmpty else { throw fail("needs at least one value", key) }
            var keyRanges: [IPRange] = [], keyNumbers: [Double] = [], keyPatterns: [Wildcard] = []
            switch op {
            case .ipAddress, .notIpAddress:
                for value in values {
                    guard let range = IPRange(value) else { throw fail("'\(value)' is not an IP address or CIDR range", key) }
                    keyRanges.append(range)
                }
            case .numericEquals, .numericNotEquals, .numericLessThan, .numericLessThanEquals, .numericGreaterThan, .numericGreaterThanEquals:
                for value in values {
                    guard let number = Double(value) else { throw fail("'\(value)' is not a number", key) }
                    keyNumbers.append(number)
                }
            case .dateEquals, .dateNotEquals, .dateLessThan, .dateLessThanEquals, .dateGreaterThan, .dateGreaterThanEquals:
                for value in values {
                    guard let seconds = Self.epochSeconds(value) else { throw fail("'\(value)' is not a date (ISO 8601 like 2026-12-31T23:59:59Z, or epoch seconds)", key) }
                    keyNumbers.append(seconds)
                }
            case .bool, .null:
                for value in values where value.lowercased() != "true" && value.lowercased() != "false" {
                    throw fail("'\(value)' is neither true nor false", key)
                }
            case .stringLike, .stringNotLike, .arnLike, .arnNotLike, .arnEquals, .arnNotEquals:
                keyPatterns = values.map { Wildcard($0) }
            default:
                break
            }
            entries.append((key, values))
            ranges.append(keyRanges)
            numbers.append(keyNumbers)
            patterns.append(keyPatterns)
        }
        self.entries = entries
        self.ranges = ranges
        self.numbers = numbers
        self.patterns = patterns
    }

    static func isBool(_ number: NSNumber) -> Bool { String(cString: number.objCType) == "c" }

    /// Seconds since the epoch of an ISO 8601 date (with or without fractions or time) or of an
    /// epoch number, as IAM accepts both.
    static func epochSeconds(_ text: String) -> Double? {
        if let number = Double(text) { return number }
        let full = ISO8601DateFormatter()
        if let date = full.date(from: text) { return date.timeIntervalSince1970 }
        full.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = full.date(from: text) { return date.timeIntervalSince1970 }
        full.formatOptions = [.withFullDate]
        if let date = full.date(from: text) { return date.timeIntervalSince1970 }
        return nil
    }

    /// Whether the condition holds for a request with these context values.
    func holds(in context: AccessContext) -> Bool {
        for (index, entry) in entries.enumerated() {
            let present = context.values(entry.key)
            if op == .null {
                // "Null": {"key": "true"} holds when the key is absent.
                let wantsAbsent = entry.values.contains { $0.lowercased() == "true" }
                if wantsAbsent != (present == nil) { return false }
                continue
            }
            guard let present, !present.isEmpty else {
                if ifExists || qualifier == .forAllValues || op.isNegated { continue }
                return false
            }
            let matchesOne: (String) -> Bool = { self.matches($0, entry: index) }
            let result: Bool
            switch qualifier {
            case .single, .forAnyValue: result = present.contains(where: matchesOne)
            case .forAllValues: result = present.allSatisfy(matchesOne)
            }
            if !result { return false }
        }
        return true
    }

    /// Whether one context value satisfies the operator against the entry's values.
    func matches(_ value: String, entry index: Int) -> Bool {
        let values = entries[index].values
        switch op {
        case .stringEquals: return values.contains(value)
        case .stringNotEquals: return !values.contains(value)
        case .stringEqualsIgnoreCase: return values.contains { $0.lowercased() == value.lowercased() }
        case .stringNotEqualsIgnoreCase: return !values.contains { $0.lowercased() == value.lowercased() }
        case .stringLike, .arnLike, .arnEquals: return patterns[index].contains { $0.matches(value) }
        case .stringNotLike, .arnNotLike, .arnNotEquals: return !patterns[index].contains { $0.matches(value) }
        case .numericEquals, .numericNotEquals, .numericLessThan, .numericLessThanEquals, .numericGreaterThan, .numericGreaterThanEquals:
            guard let x = Double(value) else { return op == .numericNotEquals }
            return compare(x, numbers[index])
        case .dateEquals, .dateNotEquals, .dateLessThan, .dateLessThanEquals, .dateGreaterThan, .dateGreaterThanEquals:
            guard let x = Self.epochSeconds(value) else { return op == .dateNotEquals }
            return compare(x, numbers[index])
        case .bool: return values.contains { $0.lowercased() == value.lowercased() }
        case .ipAddress: return IPAddressBytes(value).map { address in ranges[index].contains { $0.contains(address) } } ?? false
        case .notIpAddress: return IPAddressBytes(value).map { address in !ranges[index].contains { $0.contains(address) } } ?? true
        case .null: return false
        }
    }

    func compare(_ x: Double, _ targets: [Double]) -> Bool {
        switch op {
        case .numericEquals, .dateEquals: targets.contains(x)
        case .numericNotEquals, .dateNotEquals: !targets.contains(x)
        case .numericLessThan, .dateLessThan: targets.contains { x < $0 }
        case .numericLessThanEquals, .dateLessThanEquals: targets.contains { x <= $0 }
        case .numericGreaterThan, .dateGreaterThan: targets.contains { x > $0 }
        case .numericGreaterThanEquals, .dateGreaterThanEquals: targets.contains { x >= $0 }
        default: false
        }
    }
}

/// An IPv4 or IPv6 address as 16 bytes (IPv4 mapped into `::ffff:0:0/96`).
struct IPAddressBytes: Equatable {
    var bytes: [UInt8]

    init?(_ text: String) {
        if let v4 = Self.parseV4(Substring(text)) {
            bytes = [UInt8](repeating: 0, count: 10) + [0xFF, 0xFF] + v4
            return
        }
        var text = Substring(text)
        if text.hasPrefix("[") && text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        if let percent = text.firstIndex(of: "%") { text = text[..<percent] }
        guard let v6 = Self.parseV6(text) else { return nil }
        bytes = v6
    }

    static func parseV4(_ text: Substring) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var out: [UInt8] = []
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII), let value = UInt8(part) else { return nil }
            out.append(value)
        }
        return out
    }

    static func parseV6(_ text: Substring) -> [UInt8]? {
        guard text.contains(":") else { return nil }
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        func groups(_ part: String) -> [UInt8]? {
            if part.isEmpty { return [] }
            var out: [UInt8] = []
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, piece) in pieces.enumerated() {
                if index == pieces.count - 1, piece.contains("."), let v4 = parseV4(piece) { out += v4; continue }
                guard (1...4).contains(piece.count), let value = UInt16(piece, radix: 16) else { return nil }
                out += [UInt8(value >> 8), UInt8(value & 0xFF)]
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        if halves.count == 1 { return head.count == 16 ? head : nil }
        guard let tail = groups(halves[1]), head.count + tail.count <= 14 else { return nil }
        return head + [UInt8](repeating: 0, count: 16 - head.count - tail.count) + tail
    }
}

/// A CIDR range (`10.0.0.0/8`, `2001:db8::/32`) or one address.
struct IPRange {
    var network: [UInt8]
    var prefixBits: Int

    init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddressBytes(String(parts[0])) else { return nil }
        let isV4 = IPAddressBytes.parseV4(parts[0]) != nil
        if parts.count == 2 {
            guard let bits = Int(parts[1]), bits >= 0, bits <= (isV4 ? 32 : 128) else { return nil }
            prefixBits = isV4 ? 96 + bits : bits
        } else {
            prefixBits = 128
        }
        network = address.bytes
    }

    func contains(_ address: IPAddressBytes) -> Bool {
        var remaining = prefixBits
        for i in 0..<16 where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if address.bytes[i] & mask != network[i] & mask { return false }
            remaining -= bits
        }
        return true
    }
}
