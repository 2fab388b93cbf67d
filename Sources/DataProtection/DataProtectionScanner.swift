import FilterPatterns

/// One piece of sensitive data found in a message.
public struct Finding: Sendable, Hashable {
    /// Index into ``DataProtectionScanner/identifierNames``.
    public var identifier: Int
    /// Byte range in the message.
    public var range: Range<Int>

    public init(identifier: Int, range: Range<Int>) {
        self.identifier = identifier
        self.range = range
    }
}

/// A policy's identifiers, ready to scan messages: what is sensitive where, and the masked text.
public struct DataProtectionScanner: Sendable {
    /// The identifiers' names as findings and metrics report them (`EmailAddress`, custom names).
    public let identifierNames: [String]
    private let matchers: [any DataMatcher]

    public init(policy: DataProtectionPolicy) {
        var names: [String] = []
        var matchers: [any DataMatcher] = []
        for entry in policy.dataIdentifiers {
            if let managed = ManagedDataIdentifiers.identifier(arn: entry) {
                names.append(managed.name)
                matchers.append(managed.matcher)
            } else if let custom = policy.customIdentifiers.first(where: { $0.name == entry }) {
                names.append(custom.name)
                matchers.append(RegexMatcher(regex: custom.regex))
            }
        }
        identifierNames = names
        self.matchers = matchers
    }

    /// A scanner for managed identifiers by name (tests, benchmarks).
    public init(managed names: [String]) {
        identifierNames = names
        matchers = names.map { ManagedDataIdentifiers.identifier(named: $0)!.matcher }
    }

    /// Replaces `findings` with every match in `message`, ordered by start.
    public func scan(_ message: UnsafeRawBufferPointer, into findings: inout [Finding]) {
        var scratch: [Range<Int>] = []
        scan(message, into: &findings, scratch: &scratch)
    }

    /// Same, reusing `scratch` between calls (the per-event path allocates nothing when nothing is found).
    public func scan(_ message: UnsafeRawBufferPointer, into findings: inout [Finding], scratch ranges: inout [Range<Int>]) {
        findings.removeAll(keepingCapacity: true)
        guard let text = ByteText(message) else { return }
        for (index, matcher) in matchers.enumerated() {
            ranges.removeAll(keepingCapacity: true)
            matcher.scan(text, into: &ranges)
            for range in ranges { findings.append(Finding(identifier: index, range: range)) }
        }
        if matchers.count > 1 && findings.count > 1 { findings.sort { ($0.range.lowerBound, $0.identifier) < ($1.range.lowerBound, $1.identifier) } }
    }

    /// Convenience for tests: the findings in a string.
    public func findings(in message: String) -> [Finding] {
        var found: [Finding] = []
        var bytes = Array(message.utf8)
        bytes.withUnsafeMutableBytes { scan(UnsafeRawBufferPointer($0), into: &found) }
        return found
    }

    /// Appends `message` to `output` with the characters of every finding replaced by `*`, one per
    /// character (a multi-byte UTF-8 character becomes one `*`), as CloudWatch shows masked data.
    /// `findings` must be ordered by start; overlapping findings mask their union.
    public static func mask(_ message: UnsafeRawBufferPointer, findings: [Finding], into output: inout [UInt8]) {
        mask(message, findings: findings[...], into: &output)
    }

    /// Same, for findings kept in a larger list.
    public static func mask(_ message: UnsafeRawBufferPointer, findings: ArraySlice<Finding>, into output: inout [UInt8]) {
        var copied = 0
        var maskedTo = 0
        for finding in findings {
            let start = max(finding.range.lowerBound, maskedTo)
            var end = min(finding.range.upperBound, message.count)
            // A range ending inside a multi-byte character masks the whole character.
            while end < message.count && message[end] & 0xC0 == 0x80 { end += 1 }
            guard start < end else { continue }
            if start > copied { output.append(contentsOf: UnsafeRawBufferPointer(rebasing: message[copied..<start])) }
            for k in start..<end where message[k] & 0xC0 != 0x80 { output.append(UInt8(ascii: "*")) }
            copied = end
            maskedTo = end
        }
        if copied < message.count { output.append(contentsOf: UnsafeRawBufferPointer(rebasing: message[copied...])) }
    }

    /// Convenience for tests: `message` masked.
    public func masked(_ message: String) -> String {
        let found = findings(in: message)
        var out: [UInt8] = []
        Array(message.utf8).withUnsafeBytes { Self.mask($0, findings: found, into: &out) }
        return String(decoding: out, as: UTF8.self)
    }
}

/// A custom data identifier: every leftmost-longest match of its regular expression. When an
/// expression would make the scan of one message run past its work bound (quadratic matching, see
/// `CloudWatchRegex.allMatches`), the rest of the message counts as a finding: masking fails
/// closed rather than letting data through unscanned.
struct RegexMatcher: DataMatcher {
    let regex: CloudWatchRegex

    func scan(_ text: ByteText, into matches: inout [Range<Int>]) {
        let found = regex.allMatches(in: UnsafeRawBufferPointer(start: text.p, count: text.count))
        matches += found.matches
        if let rest = found.unscannedFrom, rest < text.count { matches.append(rest..<text.count) }
    }
}
