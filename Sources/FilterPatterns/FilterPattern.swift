import ByteJSON

/// A CloudWatch Logs filter pattern: the language of metric filters, subscription filters and
/// FilterLogEvents. The first non-blank character decides the kind: `{` a JSON pattern, `[` a
/// space-delimited pattern, anything else (or nothing) a term pattern.
///
/// Matching works on the raw message bytes and never fails: a JSON pattern against a message that
/// is not a JSON object simply does not match.
public struct FilterPattern: Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case everything, terms, json, delimited
    }

    enum Body: Sendable {
        case terms(TermPattern)
        case json(JSONPattern)
        case delimited(DelimitedPattern)
    }

    /// The pattern as written.
    public let text: String
    let body: Body

    /// The longest pattern AWS accepts.
    public static let maximumLength = 1024

    public init(_ text: String) throws(FilterPatternError) {
        self.text = text
        let bytes = Array(text.utf8)
        guard bytes.count <= FilterPattern.maximumLength else {
            throw FilterPatternError(column: FilterPattern.maximumLength + 1, message: "the pattern is longer than 1024 characters",
                                     expected: "at most 1024 characters")
        }
        var first = 0
        while first < bytes.count && PatternScanner.isSpace(bytes[first]) { first += 1 }
        do throws(PatternSyntaxError) {
            switch first < bytes.count ? bytes[first] : 0 {
            case UInt8(ascii: "{"): body = .json(try JSONPattern(bytes))
            case UInt8(ascii: "["): body = .delimited(try DelimitedPattern(bytes))
            default: body = .terms(try TermPattern(bytes))
            }
        } catch {
            throw FilterPatternError(column: FilterPattern.column(ofByte: error.offset, in: bytes), message: error.message, expected: error.expected)
        }
    }

    /// 1-based column (in Unicode scalars) of a byte offset: where pattern errors (regex ones too) point.
    public static func column(ofByte offset: Int, in bytes: [UInt8]) -> Int {
        let prefix = bytes.prefix(max(0, min(offset, bytes.count)))
        return String(decoding: prefix, as: UTF8.self).unicodeScalars.count + 1
    }

    public var kind: Kind {
        switch body {
        case .terms(let t): t.matchesEverything ? .everything : .terms
        case .json: .json
        case .delimited: .delimited
        }
    }

    public var description: String { text }

    /// How many `%regex%` the pattern uses (AWS allows 2 in JSON and space-delimited patterns).
    public var regexCount: Int {
        switch body {
        case .terms(let t): t.regexCount
        case .json(let j): j.regexCount
        case .delimited(let d): d.regexCount
        }
    }

    /// Field names a space-delimited pattern binds (without `$`).
    public var fieldNames: [String] {
        if case .delimited(let d) = body { return d.slotNames }
        return []
    }

    public func matches(_ message: UnsafeRawBufferPointer) -> Bool {
        switch body {
        case .terms(let t):
            guard let base = message.baseAddress?.assumingMemoryBound(to: UInt8.self) else {
                return [UInt8(0)].withUnsafeBufferPointer { t.matches($0.baseAddress!, 0, 0) }
            }
            return t.matches(base, 0, message.count)
        case .json(let j): return j.matches(message)
        case .delimited(let d): return d.matches(message)
        }
    }

    /// ``matches(_:)`` that also sets `tooDeep` when a JSON pattern saw a message nested deeper than
    /// ``JSONValue/maximumDepth`` (no match, but worth counting).
    public func matches(_ message: UnsafeRawBufferPointer, tooDeep: inout Bool) -> Bool {
        if case .json(let j) = body { return j.matches(message, tooDeep: &tooDeep) }
        return matches(message)
    }

    public func matches(_ message: String) -> Bool {
        var copy = message
        return copy.withUTF8 { matches(UnsafeRawBufferPointer($0)) }
    }

    /// Values a match extracted: for space-delimited patterns every field as `$name` (or `$N` for
    /// unnamed positions); empty for other kinds (JSON values are read by selector). Nil: no match.
    public func extractedValues(_ message: UnsafeRawBufferPointer) -> [(name: String, value: [UInt8])]? {
        switch body {
        case .delimited(let d):
            var tokens: [DelimitedPattern.Token] = []
            return d.extract(message, tokens: &tokens, collect: true)?.map { (name: $0.0, value: $0.1) }
        case .json(let j):
            guard j.matches(message) else { return nil }
            // The values the pattern's selectors point at (wildcard selectors are left out).
            var seen = Set<String>()
            var out: [(name: String, value: [UInt8])] = []
            for condition in j.conditions where !condition.path.hasWildcard && seen.insert(condition.path.description).inserted {
                if let text = lookup(condition.path, in: message).scalarText(in: message) {
                    out.append((condition.path.description, text))
                }
            }
            return out
        case .terms:
            return matches(message) ? [] : nil
        }
    }

    /// A literal every matching message contains (term patterns), for scanning whole buffers with
    /// memmem before looking at single events; `decides` when finding it is all the pattern asks.
    public var anchor: (bytes: [UInt8], decides: Bool)? {
        guard case .terms(let t) = body, let anchor = t.anchor else { return nil }
        return (anchor, t.anchorDecides)
    }
}
