/// A parsed Logs Insights query: commands joined by `|`.
public struct Query: Sendable {
    public var commands: [Command]
    /// The original query text.
    public var text: String

    public init(commands: [Command], text: String) {
        self.commands = commands
        self.text = text
    }
}

/// One pipeline command.
public enum Command: Sendable {
    /// `fields expr [as alias], …` — adds or replaces fields; accumulates output columns.
    case fields([Projection])
    /// `display f, …` — the output columns (the last `display` wins).
    case display([String])
    /// `filter expr` — keeps rows where the expression is true.
    case filter(Expr)
    /// `stats agg [as alias], … [by expr [as alias], …]` — groups and aggregates.
    case stats(Stats)
    /// `sort expr [asc|desc], …`
    case sort([SortKey])
    /// `limit n`
    case limit(Int)
    /// `parse [field] "glob" as a, b` or `parse [field] /re(?<name>…)/`
    case parse(ParseSpec)
    /// `dedup f, …` — keeps the first row per distinct combination in the current order.
    case dedup([String])

    /// True for commands that transform rows one at a time without looking at other rows.
    var isRowLocal: Bool {
        switch self {
        case .fields, .display, .filter, .parse: return true
        case .stats, .sort, .limit, .dedup: return false
        }
    }
}

/// `expr [as alias]`; `name` is the alias or, without one, the expression as written.
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

    /// Names of the fields this parse creates.
    public var createdFields: [String] {
        switch pattern {
        case .glob(let g): return g.names
        case .regex(let r): return r.groupNames
        }
    }
}

/// A `parse` pattern.
public enum ParsePattern: Sendable {
    case glob(GlobPattern)
    case regex(QueryRegex)
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
    case unary(UnaryOperator, Expr)
    case binary(BinaryOperator, Expr, Expr)
    /// `e like "text"` (substring), `e like /re/`, `e =~ /re/`; `negated` for `not like`.
    case like(Expr, LikePattern, negated: Bool)
    /// `e in [..]` / `e not in [..]`.
    case inList(Expr, [Expr], negated: Bool)
    case call(ScalarFunction, [Expr])
    /// Reference to `Stats.aggregates[index]`; only inside `stats` outputs.
    case aggregate(Int)

    /// Field names this expression reads from its row.
    func collectFields(into set: inout Set<String>) {
        switch self {
        case .literal, .period, .aggregate: break
        case .field(let f): set.insert(f)
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
        return !containsAggregate
    }

    var containsAggregate: Bool {
        switch self {
        case .aggregate: return true
        case .literal, .period, .field: return false
        case .unary(_, let e): return e.containsAggregate
        case .binary(_, let a, let b): return a.containsAggregate || b.containsAggregate
        case .like(let e, _, _): return e.containsAggregate
        case .inList(let e, let l, _): return e.containsAggregate || l.contains { $0.containsAggregate }
        case .call(_, let args): return args.contains { $0.containsAggregate }
        }
    }
}

/// Right-hand side of `like` / `=~`.
public enum LikePattern: Sendable {
    /// Case-sensitive substring match.
    case substring(String)
    case regex(QueryRegex)
}
