import CShims
import LinearRegex
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A user regular expression from a query (`/…/`), compiled once by the project's linear-time engine
/// (``RegularExpression``): matching never backtracks, so no pattern can stall a query.
///
/// Matching is a search (the pattern may match anywhere), as in Logs Insights. A leading `(?i)` makes it
/// case-insensitive. Patterns without any regex metacharacter are matched as plain substrings on bytes.
public struct QueryRegex: Sendable {
    /// The pattern text between the slashes.
    public let source: String
    /// Named capture groups, in order of appearance (`(?<name>…)` or `(?P<name>…)`).
    public let groupNames: [String]
    /// Set when the pattern is a plain literal (no metacharacters, no `(?i)`): matched with `memmem`.
    public let literal: [UInt8]?
    private let regex: RegularExpression

    /// Compiles `source`; the thrown error says where and why it was refused.
    public init(_ source: String) throws(RegexSyntaxError) {
        self.source = source
        self.regex = try RegularExpression(source)
        self.groupNames = regex.namedGroups.map(\.name)
        self.literal = regex.exactLiteral
    }

    /// True when the pattern matches somewhere in `text`.
    public func matches(_ text: String) -> Bool {
        if let literal { return ByteSearch.contains(text, literal) }
        return regex.matches(text)
    }

    /// The named groups of the first match, or nil when there is no match. Groups that did not participate
    /// are absent from the dictionary.
    public func captures(_ text: String) -> [String: String]? {
        var text = text
        return text.withUTF8 { bytes -> [String: String]? in
            guard let match = regex.firstMatch(in: UnsafeRawBufferPointer(bytes)) else { return nil }
            var result: [String: String] = [:]
            for (index, name) in regex.namedGroups {
                if let range = match.range(index) {
                    result[name] = String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
                }
            }
            return result
        }
    }
}

/// Byte-level substring search.
enum ByteSearch {
    /// True when `needle` occurs in the UTF-8 bytes of `haystack` (an empty needle always occurs).
    static func contains(_ haystack: String, _ needle: [UInt8]) -> Bool {
        if needle.isEmpty { return true }
        var h = haystack
        return h.withUTF8 { hb in
            needle.withUnsafeBufferPointer { nb in
                guard hb.count >= nb.count else { return false }
                return tw_memmem(hb.baseAddress!, hb.count, nb.baseAddress!, nb.count) != nil
            }
        }
    }

    /// Offset of the first occurrence of `needle` in `hay` at or after `from`.
    static func find(_ hay: UnsafeBufferPointer<UInt8>, _ needle: [UInt8], from: Int) -> Int? {
        if needle.isEmpty { return from }
        guard hay.count - from >= needle.count else { return nil }
        return needle.withUnsafeBufferPointer { nb -> Int? in
            guard let p = tw_memmem(hay.baseAddress! + from, hay.count - from, nb.baseAddress!, nb.count) else { return nil }
            return UnsafeRawPointer(p) - UnsafeRawPointer(hay.baseAddress!)
        }
    }
}

/// A `parse` glob pattern such as `"[*] * took *ms"`, with one alias per `*`.
///
/// Semantics match the regex obtained by replacing every `*` with a lazy `(.*?)` (a trailing `*` takes the
/// rest of the text) and searching: literal text before the first `*` may occur anywhere.
public struct GlobPattern: Sendable {
    /// Literal pieces around the stars: `pieces.count == names.count + 1`.
    public let pieces: [[UInt8]]
    /// Aliases, one per star.
    public let names: [String]

    /// Splits `pattern` at its stars; returns nil when the star count differs from `names.count`.
    public init?(pattern: String, names: [String]) {
        var pieces: [[UInt8]] = [[]]
        for byte in pattern.utf8 {
            if byte == UInt8(ascii: "*") { pieces.append([]) } else { pieces[pieces.count - 1].append(byte) }
        }
        guard pieces.count == names.count + 1 else { return nil }
        self.pieces = pieces
        self.names = names
    }

    /// Number of `*` in a glob pattern.
    static func starCount(_ pattern: String) -> Int { pattern.utf8.reduce(0) { $0 + ($1 == UInt8(ascii: "*") ? 1 : 0) } }

    /// Extracted values by alias, or nil when the text does not match.
    public func match(_ text: String) -> [String]? {
        var t = text
        return t.withUTF8 { hay -> [String]? in
            var pos = 0
            if !pieces[0].isEmpty {
                guard let at = ByteSearch.find(hay, pieces[0], from: 0) else { return nil }
                pos = at + pieces[0].count
            }
            var values: [String] = []
            values.reserveCapacity(names.count)
            for k in 1..<pieces.count {
                let next = pieces[k]
                if k == pieces.count - 1 && next.isEmpty {
                    values.append(String(decoding: UnsafeBufferPointer(rebasing: hay[pos...]), as: UTF8.self))
                    pos = hay.count
                } else {
                    guard let at = ByteSearch.find(hay, next, from: pos) else { return nil }
                    values.append(String(decoding: UnsafeBufferPointer(rebasing: hay[pos..<at]), as: UTF8.self))
                    pos = at + next.count
                }
            }
            return values
        }
    }
}
