/// A place in a configuration file (1-based line and column).
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file
        self.line = line
        self.column = column
    }

    public var description: String { "\(file):\(line):\(column)" }
}

/// One problem found in a configuration, rendered as
/// `file:line:column: component 'x': setting 'y': what is wrong (expected …; did you mean …?)`.
public struct ConfigDiagnostic: Sendable, Hashable, CustomStringConvertible, Error {
    public enum Severity: String, Sendable, Hashable { case error, warning }

    public var location: SourceLocation
    public var component: String?
    public var setting: String?
    public var message: String
    public var expected: String?
    public var suggestion: String?
    public var severity: Severity

    public init(location: SourceLocation, component: String? = nil, setting: String? = nil, message: String,
                expected: String? = nil, suggestion: String? = nil, severity: Severity = .error) {
        self.location = location
        self.component = component
        self.setting = setting
        self.message = message
        self.expected = expected
        self.suggestion = suggestion
        self.severity = severity
    }

    public var description: String {
        var text = "\(location): "
        if severity == .warning { text += "warning: " }
        if let component { text += "component '\(component)': " }
        if let setting { text += "setting '\(setting)': " }
        text += message
        var notes: [String] = []
        if let expected { notes.append("expected \(expected)") }
        if let suggestion { notes.append("did you mean '\(suggestion)'?") }
        if !notes.isEmpty { text += " (" + notes.joined(separator: "; ") + ")" }
        return text
    }
}

/// Every problem found while loading or checking a pipeline; thrown when any is an error.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [ConfigDiagnostic]

    public init(_ diagnostics: [ConfigDiagnostic]) { self.diagnostics = diagnostics }

    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// A problem a stage config found in one of its own settings while decoding.
/// Thrown from `init(from:)`; the loader turns it into a located ``ConfigDiagnostic``.
public struct SettingError: Error, Sendable {
    public var codingPath: [String]
    public var message: String
    public var expected: String?
    public var suggestion: String?
    /// Column offset inside the setting's scalar value (for pattern languages), 1-based.
    public var columnInValue: Int?

    public init(codingPath: [any CodingKey], message: String, expected: String? = nil,
                suggestion: String? = nil, columnInValue: Int? = nil) {
        self.codingPath = codingPath.map(\.stringValue)
        self.message = message
        self.expected = expected
        self.suggestion = suggestion
        self.columnInValue = columnInValue
    }
}

/// Closest candidate by edit distance, for "did you mean" hints.
public enum Suggestions {
    public static func closest(to word: String, among candidates: some Sequence<String>) -> String? {
        var best: (String, Int)?
        let limit = Swift.max(2, word.count / 3)
        for candidate in candidates {
            let d = distance(Array(word.lowercased().utf8), Array(candidate.lowercased().utf8))
            if d <= limit, best == nil || d < best!.1 { best = (candidate, d) }
        }
        return best?.0
    }

    static func distance(_ a: [UInt8], _ b: [UInt8]) -> Int {
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = Array(repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = Swift.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
