/// The regular-expression language CloudWatch Logs accepts in filter patterns (`%…%`) and in data
/// protection policies' custom data identifiers, standing alone: same syntax, same linear-time
/// matching (the LinearRegex engine, no backtracking), plus the position of matches so callers can mask them.
public struct CloudWatchRegex: Sendable {
    let regex: FilterRegex

    /// The expression text as written.
    public var source: String { regex.source }

    /// Compiles `text`; errors carry a 1-based column into `text`.
    public init(_ text: String) throws(FilterPatternError) {
        let bytes = Array(text.utf8)
        do {
            regex = try FilterRegex(bytes[...], offset: 0)
        } catch {
            throw FilterPatternError(column: FilterPattern.column(ofByte: error.offset, in: bytes), message: error.message,
                                     expected: error.expected)
        }
    }

    /// True when the expression matches anywhere in `bytes`.
    public func matches(_ bytes: UnsafeRawBufferPointer) -> Bool { regex.regex.matches(bytes) }

    /// The leftmost match at or after `from` that is not empty, extended as far as it goes
    /// (leftmost-longest, like POSIX). `^` and `$` anchor at the start and end of `bytes`. Runs on the
    /// project's one linear-time engine.
    public func firstMatch(in bytes: UnsafeRawBufferPointer, from: Int = 0) -> Range<Int>? {
        regex.regex.longestMatch(in: bytes, from: from)
    }

    /// Every match ``firstMatch(in:from:)`` would give one after another, with the work bounded
    /// (see ``RegularExpression/longestMatches(in:workLimit:)``): past the bound, `unscannedFrom`
    /// says where scanning stopped.
    public func allMatches(in bytes: UnsafeRawBufferPointer, workLimit: Int? = nil) -> (matches: [Range<Int>], unscannedFrom: Int?) {
        regex.regex.longestMatches(in: bytes, workLimit: workLimit)
    }
}
