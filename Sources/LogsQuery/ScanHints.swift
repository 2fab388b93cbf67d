/// What a store may use to read fewer events for a query, derived from its leading `filter` commands.
/// Every hint is a *necessary* condition — an event failing it cannot pass the filters — so a store
/// may apply them or not; the executor still evaluates every filter. Backend-neutral: the SQLite store
/// turns them into `instr(…)` conditions, another backend into its own.
public struct ScanHints: Sendable, Equatable {
    /// Texts the raw message must contain (`filter @message like "text"`).
    public var messageContains: [String] = []
    /// Texts that an event's message — or its stored parsed fields — must contain unless the JSON there
    /// holds an escape (`\`): from `filter field = "text"` and `filter field like "text"` on discovered
    /// fields, where `text` is no number, date or boolean (those compare by value, not by spelling).
    public var fieldTextContains: [String] = []
    /// Log-group name prefixes from `SOURCE logGroups(namePrefix: …)`, nil when the query has none.
    public var logGroupPrefixes: [String]?

    public init() {}
}

extension Query {
    /// The scan hints of this query (see ``ScanHints``).
    public var scanHints: ScanHints {
        var hints = ScanHints()
        hints.logGroupPrefixes = source?.namePrefixes
        for command in commands {
            guard case .filter(let expr) = command else { break }
            for conjunct in Query.conjuncts(expr) {
                switch conjunct {
                case .like(.field(SystemField.message), .substring(let text), negated: false) where !text.isEmpty:
                    hints.messageContains.append(text)
                case .like(.field(let name), .substring(let text), negated: false) where Query.isDiscovered(name) && !text.isEmpty:
                    hints.fieldTextContains.append(text)
                case .binary(.equal, .field(let name), .literal(.string(let text))),
                     .binary(.equal, .literal(.string(let text)), .field(let name)):
                    if Query.isDiscovered(name), Query.comparesBySpelling(text) { hints.fieldTextContains.append(text) }
                default: break
                }
            }
        }
        return hints
    }

    static func conjuncts(_ expr: Expr) -> [Expr] {
        if case .binary(.and, let a, let b) = expr { return conjuncts(a) + conjuncts(b) }
        return [expr]
    }

    /// Names whose values come from the event's JSON (not system fields).
    static func isDiscovered(_ name: String) -> Bool { !name.hasPrefix("@") || name.hasPrefix("@@") }

    /// True when `field = text` can only hold for a field whose text is exactly `text`.
    static func comparesBySpelling(_ text: String) -> Bool {
        !text.isEmpty && QueryValue.parseNumber(text) == nil && QueryTime.parse(text) == nil && text != "true" && text != "false"
    }
}
