import FilterPatterns
import TrailwatchCore
import TrailwatchConfig

/// Applies a filter pattern to a whole batch: term patterns first find candidate events with one
/// memmem pass over the batch's storage for their longest required literal, so most events are
/// never looked at one by one.
struct PatternMatcher {
    let pattern: FilterPattern
    private let anchor: (bytes: [UInt8], decides: Bool)?
    private let everything: Bool

    init(_ pattern: FilterPattern) {
        self.pattern = pattern
        anchor = pattern.anchor
        everything = pattern.kind == .everything
    }

    /// Clears `mask[i]` for every event that does not match (events already false stay false).
    /// Returns how many events were no match only because their JSON nests deeper than the limit
    /// (stages count them in the `json_too_deep` gauge).
    @discardableResult
    func refine(_ logs: LogBatch, mask: inout [Bool]) -> Int {
        if everything { return 0 }
        if let anchor {
            var found = [Bool](repeating: false, count: logs.count)
            ByteSearch.markContaining(anchor.bytes, in: logs, mask: &found)
            for i in 0..<logs.count where mask[i] {
                mask[i] = found[i] && (anchor.decides || pattern.matches(logs.message(i)))
            }
            return 0
        }
        var tooDeep = 0
        for i in 0..<logs.count where mask[i] {
            var deep = false
            mask[i] = pattern.matches(logs.message(i), tooDeep: &deep)
            if deep { tooDeep += 1 }
        }
        return tooDeep
    }

    /// The gauge counting events whose JSON nests deeper than ``JSONValue/maximumDepth``.
    static let tooDeepGauge = "json_too_deep"

    /// Indices of the events that match, and how many were too deeply nested to judge.
    func matching(_ logs: LogBatch) -> (indices: [Int], tooDeep: Int) {
        var mask = [Bool](repeating: true, count: logs.count)
        let tooDeep = refine(logs, mask: &mask)
        return (mask.indices.filter { mask[$0] }, tooDeep)
    }
}

extension FilterPattern {
    /// The empty pattern: every event matches.
    static let matchingEverything = try! FilterPattern("")

    /// A setting holding a filter pattern, compiled as it decodes (a syntax error points at the column inside the pattern).
    static func setting<C: SettingsSection>(_ key: String, _ keyPath: WritableKeyPath<C, FilterPattern?> & Sendable, _ doc: String) -> Setting<C> {
        .custom(key, type: "filter pattern", doc, storedAt: keyPath) { config, c, key in
            if let text = try c.decodeIfPresent(String.self, forKey: key) { config[keyPath: keyPath] = try decoded(text, codingPath: c.codingPath + [key]) }
        }
    }

    /// A filter pattern setting with a default (the pattern the default config holds).
    static func setting<C: SettingsSection>(_ key: String, _ keyPath: WritableKeyPath<C, FilterPattern> & Sendable, _ doc: String,
                                            default shown: String) -> Setting<C> {
        .custom(key, type: "filter pattern", doc, note: shown, storedAt: keyPath) { config, c, key in
            if let text = try c.decodeIfPresent(String.self, forKey: key) { config[keyPath: keyPath] = try decoded(text, codingPath: c.codingPath + [key]) }
        }
    }
}

extension FilterPattern {
    /// Compiles `text`, turning a syntax error into a setting error located inside the value.
    static func decoded(_ text: String, codingPath: [any CodingKey]) throws -> FilterPattern {
        do { return try FilterPattern(text) } catch {
            throw SettingError(codingPath: codingPath, message: "invalid filter pattern at column \(error.column): \(error.message)",
                               expected: error.expected ?? "a CloudWatch filter pattern", columnInValue: error.column)
        }
    }
}
