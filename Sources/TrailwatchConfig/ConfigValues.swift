/// A length of time written as `500ms`, `10s`, `5m`, `1h`, `7d` (or a bare number of seconds).
public struct ConfigDuration: Sendable, Hashable, Decodable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) { self.milliseconds = milliseconds }
    public init(seconds: Double) { self.milliseconds = Int64(seconds * 1000) }

    public var seconds: Double { Double(milliseconds) / 1000 }

    /// Longest duration accepted (about 31,700 years): beyond it the milliseconds would not be exact.
    public static let maximumMilliseconds: Double = 1e15

    public static func parse(_ text: String) -> ConfigDuration? {
        // Checked before converting: `99999999999999999999s` is refused, never trapped on.
        func checked(_ ms: Double) -> ConfigDuration? {
            ms.isFinite && ms >= 0 && ms <= maximumMilliseconds ? ConfigDuration(milliseconds: Int64(ms)) : nil
        }
        let t = text.trimmingWhitespace()
        let units: [(String, Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            let number = String(t.dropLast(suffix.count))
            if let v = Double(number), !number.hasSuffix("m") || suffix != "s" {
                return checked(v * scale)
            }
        }
        if let v = Double(t) { return checked(v * 1000) }
        return nil
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = ConfigDuration.parse(text) else {
            throw SettingError(codingPath: decoder.codingPath, message: "'\(text)' is not a duration",
                               expected: "a duration like 500ms, 10s, 5m, 1h or 7d")
        }
        self = value
    }

    public var description: String {
        if milliseconds % 86_400_000 == 0 && milliseconds > 0 { return "\(milliseconds / 86_400_000)d" }
        if milliseconds % 3_600_000 == 0 && milliseconds > 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0 && milliseconds > 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }
}

/// A size written as `256KiB`, `1MiB`, `64MB`, `1GiB` or a bare number of bytes.
public struct ByteSize: Sendable, Hashable, Decodable, CustomStringConvertible {
    public var bytes: Int

    public init(bytes: Int) { self.bytes = bytes }

    public static func parse(_ text: String) -> ByteSize? {
        let t = text.trimmingWhitespace()
        let units: [(String, Int)] = [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30),
                                      ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000),
                                      ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("B", 1)]
        for (suffix, scale) in units where t.hasSuffix(suffix) {
            // Checked before converting: a size beyond 2^53 bytes is refused, never trapped on.
            if let v = Double(t.dropLast(suffix.count).trimmingWhitespace()), v >= 0, v * Double(scale) <= 0x1p53 {
                return ByteSize(bytes: Int(v * Double(scale)))
            }
        }
        if let v = Int(t), v >= 0 { return ByteSize(bytes: v) }
        return nil
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = ByteSize.parse(text) else {
            throw SettingError(codingPath: decoder.codingPath, message: "'\(text)' is not a size",
                               expected: "a size like 256KiB, 1MiB or 64MB")
        }
        self = value
    }

    public var description: String {
        if bytes % (1 << 20) == 0 && bytes > 0 { return "\(bytes >> 20)MiB" }
        if bytes % (1 << 10) == 0 && bytes > 0 { return "\(bytes >> 10)KiB" }
        return "\(bytes)B"
    }
}

/// A closed set of words a setting may take (`format: json | text`), with "did you mean" errors.
public protocol ConfigEnum: RawRepresentable, CaseIterable, SettingValue where RawValue == String {}

extension ConfigEnum {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = Self(rawValue: text) else {
            let names = Self.allCases.map(\.rawValue)
            throw SettingError(codingPath: decoder.codingPath, message: "'\(text)' is not allowed",
                               expected: "one of " + names.joined(separator: ", "),
                               suggestion: Suggestions.closest(to: text, among: names))
        }
        self = value
    }
}

extension Decoder {
    /// Rejects mapping keys that `Keys` does not list, naming the closest one.
    /// Nested config sections call this from `init(from:)`; stage configs get it from the loader.
    public func rejectUnknownKeys<Keys: CodingKey & CaseIterable>(_ keys: Keys.Type) throws {
        try rejectUnknownKeys(Keys.allCases.map(\.stringValue))
    }

    /// Rejects mapping keys `known` does not list, naming the closest one.
    public func rejectUnknownKeys(_ known: [String]) throws {
        let container = try self.container(keyedBy: AnyCodingKey.self)
        for key in container.allKeys where !known.contains(key.stringValue) {
            throw SettingError(codingPath: codingPath + [key], message: "unknown setting",
                               expected: known.isEmpty ? "no settings here" : "one of " + known.joined(separator: ", "),
                               suggestion: Suggestions.closest(to: key.stringValue, among: known))
        }
    }
}

/// A coding key for any string or index.
public struct AnyCodingKey: CodingKey, Hashable, Sendable {
    public var stringValue: String
    public var intValue: Int?
    public init(stringValue: String) { self.stringValue = stringValue }
    public init(intValue: Int) { self.stringValue = "Index \(intValue)"; self.intValue = intValue }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
