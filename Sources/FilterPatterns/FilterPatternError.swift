/// Why a filter pattern (or a metric transformation) was rejected.
///
/// `column` is 1-based and counts characters (Unicode scalars) of the pattern text, so it can be shown under the
/// pattern with a caret. `expected` names what the parser was looking for, when that is meaningful.
public struct FilterPatternError: Error, Sendable, Equatable, CustomStringConvertible {
    public var column: Int
    public var message: String
    public var expected: String?

    public init(column: Int, message: String, expected: String? = nil) {
        self.column = column
        self.message = message
        self.expected = expected
    }

    public var description: String {
        if let expected { return "column \(column): \(message) (expected \(expected))" }
        return "column \(column): \(message)"
    }
}

/// Internal error carrying a byte offset; converted to a column by ``FilterPattern/init(_:)``.
struct PatternSyntaxError: Error {
    var offset: Int
    var message: String
    var expected: String?
    init(_ offset: Int, _ message: String, expected: String? = nil) {
        self.offset = offset
        self.message = message
        self.expected = expected
    }
}
