/// A syntax or semantic error in a query, located at a 1-based line and column (columns count characters
/// within the line). `message` says what was expected.
public struct QueryParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String

    public init(line: Int = 1, column: Int, message: String) {
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        line == 1 ? "column \(column): \(message)" : "line \(line), column \(column): \(message)"
    }
}
