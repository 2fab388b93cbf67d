/// A parsed Logs Insights query: commands joined by `|`.
public struct Query: Sendable {
    public var commands: [Command]
    /// The original query text.
    public var text: String
    /// Log groups chosen inside the query by `SOURCE logGroups(namePrefix: [...])` (nil: every group the
    /// caller chose).
    public var source: SourceSelection?

    public init(commands: [Command], text: String, source: SourceSelection? = nil) {
        self.commands = commands
        self.text = text
        self.source = source
    }

    /// True when the query compares with the previous range (`diff`): the caller reads that range too.
    public var needsPreviousRange: Bool {
        commands.contains { if case .diff = $0 { return true }; return false }
    }
}

/// `SOURCE logGroups(namePrefix: ["/app", …], class: "STANDARD")`: the log groups whose names start
/// with one of the prefixes.
public struct SourceSelection: Sendable, Equatable {
    public var namePrefixes: [String]

    public init(namePrefixes: [String]) { self.namePrefixes = namePrefixes }

    /// True when `name` starts with one of the prefixes (bytes).
    public func selects(_ name: String) -> Bool {
        namePrefixes.contains { name.utf8.starts(with: $0.utf8) }
    }
}

/// One pipeline command.
public enum Command: Sendable {
    /// `fields expr [as alias], …` — adds or replaces fields; accumulates output columns.
    case fields([Projection])
    /// `display f, …` — the output columns (the last `display` wins).
    case display([String])
    /// `filter expr` (also `filterIndex`, which accepts only `=` and `in` tests) — keeps rows where the
    /// expression is true.
    case filter(Expr)
    /// `stats agg [as alias], … [by expr [as alias], …]` — groups and aggregates.
    case stats(Stats)
    /// `sort expr [asc|desc], …`
    case sort([SortKey])
    /// `limit n`
    case limit(Int)
    /// `parse [field] "glob" as a, b`, `parse [field] /re(?<name>…)/`, `parse [field] logfmt`,
    /// `parse [field] csv as a, b`
    case parse(ParseSpec)
    /// `dedup f, …` — keeps the first row per distinct combination in the current order; rows where any
    /// of the fields is null are always kept.
    case dedup([String])
    /// `unnest field into alias` — one row per element of a list.
    case unnest(source: Expr, alias: String)
    /// `pattern expr` — groups rows by the log template of the text.
    case pattern(Expr)
    /// `diff` — after `pattern`: compares the patterns with those of the previous range of equal length.
    case diff
    /// `anomaly` — after `pattern`: patterns whose rate over the range departs from their own usual rate.
    case anomaly

    /// True for commands that transform rows one at a time without looking at other rows.
    var isRowLocal: Bool {
        switch self {
        case .fields, .display, .filter, .parse, .unnest: return true
        case .stats, .sort, .limit, .dedup, .pattern, .diff, .anomaly: return false
        }
    }

    /// True for commands that read every input row before they emit any.
    var isAggregating: Bool {
        switch self {
        case .stats, .pattern: return true
        default: return false
        }
    }
}

/// `expr [as alias]`; `name` is the alias or, without one, the field's name or the expression as written.
public struct Projection: Sendable {
    public var expr: Expr
    public var name: String

    public init(expr: Expr, name: String) {
        self.expr = expr
        self.name = name
    }
}

/// The body of a `stats` command.
public struct Stats: Sendable {
    /// Output expressions; each contains one or more `.aggregate` nodes (indices into `aggregates`).
    public var outputs: [Projection]
    /// Every aggregate call appearing in `outputs`, in order.
    public var aggregates: [AggregateCall]
    /// Grouping expressions (`by …`).
    public var groups: [Projection]

    public init(outputs: [Projection], aggregates: [AggregateCall], groups: [Projection]) {
        self.outputs = outputs
        self.aggregates = aggregates
        self.groups = groups
    }

    /// Output column names: groups first, then aggregates (the order the Logs Insights console shows).
    public var columnNames: [String] { groups.map(\.name) + outputs.map(\.name) }
}

/// `expr asc|desc`; without a direction the key sorts ascending.
public struct SortKey: Sendable {
    public var expr: Expr
    public var descending: Bool

    public init(expr: Expr, descending: Bool) {
        self.expr = expr
        self.descending = descending
    }
}

/// An aggregate function call inside `stats`.
public struct AggregateCall: Sendable {
    public var function: AggregateFunction
    /// The argument (nil for `count(*)` / `count()`).
    public var argument: Expr?
    /// Second argument of `pct` (the percentile, 0...100).
    public var percentile: Double

    public init(function: AggregateFunction, argument: Expr?, percentile: Double = 0) {
        self.function = function
        self.argument = argument
        self.percentile = percentile
    }
}

/// Aggregate functions of `stats`.
public enum AggregateFunction: String, Sendable, CaseIterable {
    case count, sum, avg, min, max, pct, stddev
    case countDistinct = "count_distinct"
    case earliest, latest
    case sortsFirst = "sortsfirst", sortsLast = "sortslast"

    /// The name as AWS spells it.
    public var spelling: String {
        switch self {
        case .sortsFirst: return "sortsFirst"
        case .sortsLast: return "sortsLast"
        default: return rawValue
        }
    }
}

/// What `parse` extracts and how.
public struct ParseSpec: Sendable {
    /// The field parsed (default `@message`).
    public var source: String
    public var pattern: ParsePattern

    public init(source: String, pattern: ParsePattern) {
        self.source = source
        self.pattern = pattern
    }

    /// Names of the fields this parse creates (for `logfmt`, the keys the rest of the query names).
    public var createdFields: [String] {
        switch pattern {
        case .glob(let g): return g.names
        case .regex(let r): return r.groupNames
        case .logfmt(let wanted): return wanted
        case .csv(let names, _): return names
        }
    }
}

/// A `parse` pattern.
public enum ParsePattern: Sendable {
    case glob(GlobPattern)
    case regex(QueryRegex)
    /// `key=value key2="quoted value"` pairs; holds the keys the query refers to (filled in by the parser).
    case logfmt([String])
    /// Comma-separated values (RFC 4180 quoting) named in order; `delimiter` is one byte.
    case csv([String], delimiter: UInt8)
}

/// Unary operators.
public enum UnaryOperator: String, Sendable {
    case negate = "-"
    case not = "not"
}

/// Binary operators, arithmetic, comparison and boolean.
public enum BinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", modulo = "%", power = "^"
    case equal = "=", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    case and, or

    var isComparison: Bool {
        switch self {
        case .equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual: return true
        default: return false
        }
    }
}

/// An expression.
public indirect enum Expr: Sendable {
    case literal(QueryValue)
    /// A period literal such as `5m`; as a number it is its length in milliseconds.
    case period(TimePeriod)
    case field(String)
    /// A field resolved to its slot in the executor's row layout (never produced by the parser).
    case slot(Int)
    /// `map.key` / ``map.`odd key` `` on a value from `jsonParse`.
    case member(Expr, String)
    /// `list[i]` on a value from `jsonParse`.
    case index(Expr, Expr)
    case unary(UnaryOperator, Expr)
    case binary(BinaryOperator, Expr, Expr)
    /// `e like "text"` (substring), `e like /re/`, `e =~ /re/`; `negated` for `not like`.
    case like(Expr, LikePattern, negated: Bool)
    /// `e in [..]` / `e not in [..]`.
    case inList(Expr, [Expr], negated: Bool)
    case call(ScalarFunction, [Expr])
    /// `bin(period) offset period`: bins shifted by the offset.
    case binOffset(TimePeriod, offset: Int64)
    /// Reference to `Stats.aggregates[index]`; only inside `stats` outputs.
    case aggregate(Int)

    /// Field names this expression reads from its row.
    func collectFields(into set: inout Set<String>) {
        switch self {
        case .literal, .period, .aggregate, .slot: break
        case .binOffset: set.insert(SystemField.timestamp)
        case .field(let f): set.insert(f)
        case .member(let e, _): e.collectFields(into: &set)
        case .index(let e, let i): e.collectFields(into: &set); i.collectFields(into: &set)
        case .unary(_, let e): e.collectFields(into: &set)
        case .binary(_, let a, let b): a.collectFields(into: &set); b.collectFields(into: &set)
        case .like(let e, _, _): e.collectFields(into: &set)
        case .inList(let e, let list, _):
            e.collectFields(into: &set)
            for item in list { item.collectFields(into: &set) }
        case .call(let f, let args):
            if f == .bin { set.insert(SystemField.timestamp) }
            for a in args { a.collectFields(into: &set) }
        }
    }

    /// True when the expression reads no field and no aggregate (it can be folded to a constant).
    var isConstant: Bool {
        var set = Set<String>()
        collectFields(into: &set)
        if !set.isEmpty { return false }
        return !containsAggregate && !containsSlot
    }

    var containsSlot: Bool {
        switch self {
        case .slot: return true
        case .literal, .period, .field, .aggregate, .binOffset: return false
        case .member(let e, _): return e.containsSlot
        case .index(let e, let i): return e.containsSlot || i.containsSlot
        case .unary(_, let e): return e.containsSlot
        case .binary(_, let a, let b): return a.containsSlot || b.containsSlot
        case .like(let e, _, _): return e.containsSlot
        case .inList(let e, let l, _): return e.containsSlot || l.contains { $0.containsSlot }
        case .call(_, let args): return args.contains { $0.containsSlot }
        }
    }

    var containsAggregate: Bool {
        switch self {
        case .aggregate: return true
        case .literal, .period, .field, .slot, .binOffset: return false
        case .member(let e, _): return e.containsAggregate
        case .index(let e, let i): return e.containsAggregate || i.containsAggregate
        case .unary(_, let e): return e.containsAggregate
        case .binary(_, let a, let b): return a.containsAggregate || b.containsAggregate
        case .like(let e, _, _): return e.containsAggregate
        case .inList(let e, let l, _): return e.containsAggregate || l.contains { $0.containsAggregate }
        case .call(_, let args): return args.contains { $0.containsAggregate }
        }
    }

    /// The same expression with every node passed through `transform` (children first).
    func rewritten(_ transform: (Expr) -> Expr) -> Expr {
        let inner: Expr
        switch self {
        case .literal, .period, .field, .slot, .aggregate, .binOffset: inner = self
        case .member(let e, let key): inner = .member(e.rewritten(transform), key)
        case .index(let e, let i): inner = .index(e.rewritten(transform), i.rewritten(transform))
        case .unary(let op, let e): inner = .unary(op, e.rewritten(transform))
        case .binary(let op, let a, let b): inner = .binary(op, a.rewritten(transform), b.rewritten(transform))
        case .like(let e, let p, let n): inner = .like(e.rewritten(transform), p, negated: n)
        case .inList(let e, let l, let n): inner = .inList(e.rewritten(transform), l.map { $0.rewritten(transform) }, negated: n)
        case .call(let f, let args): inner = .call(f, args.map { $0.rewritten(transform) })
        }
        return transform(inner)
    }
}

/// Right-hand side of `like` / `=~`.
public enum LikePattern: Sendable {
    /// Case-sensitive substring match.
    case substring(String)
    case regex(QueryRegex)
}
