/// An access key pair. The secret is never part of a description, so printing a key (or an
/// error holding one) cannot leak it.
public struct AccessKey: Sendable, CustomStringConvertible {
    public var id: String
    public var secret: String

    public init(id: String, secret: String) {
        self.id = id
        self.secret = secret
    }

    public var description: String { "AccessKey(\(id), secret redacted)" }
}

/// The access keys a server accepts, by id.
public struct AccessKeyring: Sendable {
    private var secrets: [String: String] = [:]

    public init(_ keys: [AccessKey] = []) {
        for key in keys { secrets[key.id] = key.secret }
    }

    public var isEmpty: Bool { secrets.isEmpty }
    public var count: Int { secrets.count }
    public var ids: [String] { secrets.keys.sorted() }

    public func secret(for id: String) -> String? { secrets[id] }

    public mutating func add(_ key: AccessKey) { secrets[key.id] = key.secret }

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public var line: Int
        public var message: String
        public var description: String { "line \(line): \(message)" }
    }

    /// Parses a key file. Two forms are accepted:
    /// - AWS's shared credentials format (`[profile]` sections with `aws_access_key_id` and
    ///   `aws_secret_access_key`), so an operator can reuse a file they already have;
    /// - one key per line, `ACCESS_KEY_ID SECRET` (or `ACCESS_KEY_ID:SECRET`).
    /// `#` and `;` start comments. Messages never quote a secret.
    public static func parse(_ text: String) throws(ParseError) -> AccessKeyring {
        var ring = AccessKeyring()
        var pendingID: (String, Int)?
        var pendingSecret: String?
        func flush() throws(ParseError) {
            switch (pendingID, pendingSecret) {
            case (nil, nil): break
            case (let id?, let secret?): ring.add(AccessKey(id: id.0, secret: secret))
            case (let id?, nil): throw ParseError(line: id.1, message: "aws_access_key_id \(id.0) has no aws_secret_access_key")
            case (nil, _): throw ParseError(line: 0, message: "an aws_secret_access_key without aws_access_key_id")
            }
            pendingID = nil
            pendingSecret = nil
        }
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = raw.trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") {
                try flush()
                continue
            }
            if let equals = line.firstIndex(of: "=") {
                let name = line[..<equals].trimmingSpaces.lowercased()
                let value = String(line[line.index(after: equals)...].trimmingSpaces)
                switch name {
                case "aws_access_key_id":
                    if pendingID != nil { try flush() }
                    guard Self.validID(value) else { throw ParseError(line: number, message: "'\(value)' is not an access key id (letters and digits, 3 to 128)") }
                    pendingID = (value, number)
                case "aws_secret_access_key":
                    guard !value.isEmpty else { throw ParseError(line: number, message: "empty aws_secret_access_key") }
                    pendingSecret = value
                default:
                    continue  // region, output, session tokens: not ours
                }
                continue
            }
            let parts = line.split(maxSplits: 1, whereSeparator: { $0 == " " || $0 == "\t" || $0 == ":" })
            guard parts.count == 2 else { throw ParseError(line: number, message: "expected 'ACCESS_KEY_ID SECRET'") }
            let id = String(parts[0]), secret = String(parts[1].trimmingSpaces)
            guard Self.validID(id) else { throw ParseError(line: number, message: "'\(id)' is not an access key id (letters and digits, 3 to 128)") }
            guard !secret.isEmpty else { throw ParseError(line: number, message: "empty secret for \(id)") }
            ring.add(AccessKey(id: id, secret: secret))
        }
        try flush()
        return ring
    }

    static func validID(_ id: String) -> Bool {
        (3...128).contains(id.utf8.count) && id.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) }
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return s
    }
}

/// Compares two byte strings in time that depends only on their lengths.
public func constantTimeEqual(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
    let x = Array(a), y = Array(b)
    var difference = UInt8(truncatingIfNeeded: x.count ^ y.count) | UInt8(truncatingIfNeeded: (x.count ^ y.count) >> 8)
    for i in 0..<max(x.count, y.count) {
        difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
    }
    return difference == 0
}
