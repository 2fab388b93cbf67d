/// Entry points of the query language.
public enum LogsQuery {
    /// Largest `limit` accepted (the Logs Insights maximum).
    public static let maximumLimit = 10_000

    /// Parses a Logs Insights query into its AST. Every error is located (line and column) and says
    /// what was expected; constants out of range (`bin(0s)`, `fromMillis(1e300)`) are errors here.
    public static func parse(_ text: String) throws(QueryParseError) -> Query {
        var parser = Parser(text)
        return try parser.parseQuery()
    }
}

/// Recursive-descent parser over `Lexer` tokens with one token of look-ahead.
struct Parser {
    private var lexer: Lexer
    private var current: Token
    private var previousEnd = 0
    private let text: String
    /// Column names produced by the most recent `stats`: later references to e.g. `count(*)` resolve to them.
    private var statsOutputNames: Set<String> = []
    /// Aggregates collected while parsing one `stats` output list (nil when aggregates are not allowed).
    private var aggregates: [AggregateCall]?
    /// Current nesting of expressions (bounded by ``QueryLimits/maximumNesting``).
    private var depth = 0

    private static let commandNames = "fields, filter, filterIndex, stats, sort, limit, parse, display, dedup, unnest, pattern, diff or anomaly"
    private static let aggregateNames = "count, sum, avg, min, max, pct, stddev, count_distinct, earliest, latest, sortsFirst or sortsLast"

    /// Names AWS documents that trailwatch does not run, with the reason given in the error.
    private static let unsupportedCommands: [String: String] = [
        "unmask": "unmask is not supported: trailwatch keeps only the masked text (the mask transform replaces values before they are stored), so there is nothing to unmask",
        "lookup": "lookup is not supported: trailwatch has no lookup tables",
    ]
    private static let unsupportedAggregates: Set<String> = ["rate", "count_over_time", "sum_over_time", "histogram"]
    /// Columns AWS's `pattern` returns through its API that trailwatch's does not compute.
    private static let unsupportedPatternColumns: Set<String> = ["@visualization", "@tokens", "@regexString", "@relatedPattern"]

    /// A field name read after `pattern`: the columns it does not compute are errors, not empty columns.
    private func checkPatternColumn(_ name: String, at token: Token) throws(QueryParseError) {
        if statsOutputNames.contains("@pattern"), Parser.unsupportedPatternColumns.contains(name) {
            throw error("\(name) is not supported: trailwatch's pattern gives \(PatternColumns.pattern.joined(separator: ", "))", at: token)
        }
    }

    init(_ text: String) {
        self.text = text
        self.lexer = Lexer(text)
        self.current = Token(kind: .end, offset: 0, endOffset: 0, line: 1, column: 1)
    }

    // MARK: token helpers

    private mutating func advance() throws(QueryParseError) {
        previousEnd = current.endOffset
        current = try lexer.next()
    }

    private func error(_ message: String, at token: Token? = nil) -> QueryParseError {
        let t = token ?? current
        return QueryParseError(line: t.line, column: t.column, message: message)
    }

    private func expected(_ what: String) -> QueryParseError {
        error("expected \(what) but found \(current.display)")
    }

    private mutating func expectSymbol(_ s: String, _ what: String? = nil) throws(QueryParseError) {
        guard current.isSymbol(s) else { throw expected(what ?? "'\(s)'") }
        try advance()
    }

    private mutating func acceptKeyword(_ k: String) throws(QueryParseError) -> Bool {
        guard current.keyword == k else { return false }
        try advance()
        return true
    }

    /// The token after the current one, without consuming anything.
    private func peek() throws(QueryParseError) -> Token {
        var copy = lexer
        return try copy.next()
    }

    private mutating func enter() throws(QueryParseError) {
        depth += 1
        if depth > QueryLimits.maximumNesting {
            throw error("the expression nests deeper than \(QueryLimits.maximumNesting) levels")
        }
    }

    private func sourceText(from offset: Int) -> String {
        let scalars = lexer.scalars[offset..<max(offset, previousEnd)]
        return String(String.UnicodeScalarView(scalars)).trimmingSpaces()
    }

    // MARK: query and commands

    mutating func parseQuery() throws(QueryParseError) -> Query {
        if lexer.scalars.count > QueryLimits.maximumQueryLength {
            throw QueryParseError(column: QueryLimits.maximumQueryLength + 1,
                                  message: "the query is longer than \(QueryLimits.maximumQueryLength) characters")
        }
        try advance()
        var commands: [Command] = []
        var source: SourceSelection?
        if current.kind == .end { throw expected("a command (\(Parser.commandNames))") }
        if current.keyword == "source" {
            source = try parseSource()
            if current.isSymbol("|") { try advance() } else if current.kind != .end { throw expected("'|' after SOURCE") }
        }
        while current.kind != .end || commands.isEmpty {
            let commandToken = current
            if current.keyword == "source" { throw error("SOURCE must be the first command of the query") }
            let command = try parseCommand()
            if let last = commands.last, case .dedup = last {
                if case .limit = command {} else {
                    throw error("only limit may follow dedup", at: commandToken)
                }
            }
            switch command {
            case .diff, .anomaly:
                // `diff` and `anomaly` work on patterns; alone they mean `pattern @message | …`.
                if let last = commands.last, case .pattern = last {} else {
                    commands.append(.pattern(.field(SystemField.message)))
                }
                if case .diff = command, commands.dropLast().contains(where: { !$0.isRowLocal }) {
                    throw error("diff compares the events of two ranges: only fields, filter, parse and unnest may come before it", at: commandToken)
                }
                if commands.contains(where: { if case .diff = $0 { return true }; if case .anomaly = $0 { return true }; return false }) {
                    throw error("a query can hold one diff or anomaly", at: commandToken)
                }
            default: break
            }
            commands.append(command)
            if current.isSymbol("|") {
                try advance()
                if current.kind == .end { throw expected("a command after '|'") }
                continue
            }
            if current.kind == .end { break }
            throw expected("'|' or end of query")
        }
        // `parse … logfmt` extracts the keys the query names.
        var referenced = Set<String>()
        for command in commands { command.collectFields(into: &referenced) }
        let wanted = referenced.filter { !$0.hasPrefix("@") }.sorted()
        commands = commands.map { command in
            if case .parse(var spec) = command, case .logfmt = spec.pattern {
                spec.pattern = .logfmt(wanted)
                return .parse(spec)
            }
            return command
        }
        return Query(commands: commands, text: text, source: source)
    }

    /// `SOURCE logGroups(namePrefix: ["a", "b"], class: "STANDARD")`.
    private mutating func parseSource() throws(QueryParseError) -> SourceSelection {
        try advance()
        guard current.keyword == "loggroups" else { throw expected("logGroups(namePrefix: [...]) after SOURCE") }
        try advance()
        try expectSymbol("(", "'(' after logGroups")
        var prefixes: [String] = []
        repeat {
            guard case .identifier(let name, _) = current.kind else { throw expected("namePrefix, class or accountIdentifiers") }
            let nameToken = current
            try advance()
            try expectSymbol(":", "':' after \(name)")
            let valueToken = current
            var values: [String] = []
            if current.isSymbol("[") {
                try advance()
                repeat {
                    guard case .string(let s) = current.kind else { throw expected("a quoted string") }
                    values.append(s)
                    try advance()
                } while try acceptComma()
                try expectSymbol("]", "',' or ']'")
            } else if case .string(let s) = current.kind {
                values = [s]
                try advance()
            } else {
                throw expected("a quoted string or a list of them")
            }
            switch name.lowercased() {
            case "nameprefix":
                guard (1...5).contains(values.count), values.allSatisfy({ !$0.isEmpty }) else {
                    throw error("namePrefix takes one to five non-empty prefixes", at: valueToken)
                }
                prefixes += values
            case "class":
                guard values.count == 1, values[0] == "STANDARD" || values[0] == "INFREQUENT_ACCESS" else {
                    throw error("class is STANDARD or INFREQUENT_ACCESS", at: valueToken)
                }
                if values[0] == "INFREQUENT_ACCESS" {
                    throw error("class INFREQUENT_ACCESS is not supported: every trailwatch log group is of the STANDARD class", at: valueToken)
                }
            case "accountidentifiers":
                throw error("accountIdentifiers is not supported: a trailwatch store holds one account's logs", at: nameToken)
            default:
                throw error("unknown SOURCE option '\(name)': expected namePrefix, class or accountIdentifiers", at: nameToken)
            }
        } while try acceptComma()
        try expectSymbol(")", "',' or ')'")
        guard !prefixes.isEmpty else { throw error("SOURCE logGroups needs namePrefix: [...]") }
        return SourceSelection(namePrefixes: prefixes)
    }

    private mutating func parseCommand() throws(QueryParseError) -> Command {
        guard let name = current.keyword else { throw expected("a command (\(Parser.commandNames))") }
        let commandToken = current
        switch name {
        case "fields":
            try advance()
            return .fields(try parseProjections())
        case "display":
            try advance()
            return .display(try parseFieldList())
        case "filter":
            try advance()
            return .filter(try parseExpression())
        case "filterindex":
            try advance()
            let start = current
            let expr = try parseExpression()
            guard Parser.isIndexTest(expr) else {
                throw error("filterIndex accepts only field = value and field in [...] tests, joined by and/or", at: start)
            }
            return .filter(expr)
        case "stats":
            try advance()
            return .stats(try parseStats())
        case "sort":
            try advance()
            var keys: [SortKey] = []
            repeat {
                let expr = try parseExpression()
                var descending = false
                if try acceptKeyword("desc") { descending = true } else { _ = try acceptKeyword("asc") }
                keys.append(SortKey(expr: expr, descending: descending))
            } while try acceptComma()
            return .sort(keys)
        case "limit":
            try advance()
            guard case .number(let n) = current.kind, n == n.rounded(), n >= 1, n <= Double(LogsQuery.maximumLimit) else {
                throw expected("an integer from 1 to \(LogsQuery.maximumLimit)")
            }
            try advance()
            return .limit(Int(n))
        case "parse":
            try advance()
            return .parse(try parseParse())
        case "dedup":
            try advance()
            return .dedup(try parseFieldList())
        case "unnest":
            try advance()
            let source = try parseAdditive()
            guard try acceptKeyword("into") else { throw expected("'into' and a field name after unnest's list") }
            let alias = try parseFieldName()
            return .unnest(source: source, alias: alias)
        case "pattern":
            try advance()
            if current.isSymbol("|") || current.kind == .end { return .pattern(.field(SystemField.message)) }
            let expr = try parseExpression()
            statsOutputNames = Set(PatternColumns.pattern)
            return .pattern(expr)
        case "diff":
            try advance()
            statsOutputNames = Set(PatternColumns.diff)
            return .diff
        case "anomaly":
            try advance()
            statsOutputNames = Set(PatternColumns.anomaly)
            return .anomaly
        default:
            if let reason = Parser.unsupportedCommands[name] { throw error(reason, at: commandToken) }
            throw error("unknown command '\(name)': expected \(Parser.commandNames)", at: commandToken)
        }
    }

    /// `filterIndex` conditions: `field = literal`, `field in [literals]`, joined by `and`/`or`.
    static func isIndexTest(_ expr: Expr) -> Bool {
        switch expr {
        case .binary(.and, let a, let b), .binary(.or, let a, let b): return isIndexTest(a) && isIndexTest(b)
        case .binary(.equal, .field, .literal), .binary(.equal, .literal, .field): return true
        case .inList(.field, let items, negated: false): return items.allSatisfy { if case .literal = $0 { return true }; return false }
        default: return false
        }
    }

    private mutating func acceptComma() throws(QueryParseError) -> Bool {
        guard current.isSymbol(",") else { return false }
        try advance()
        return true
    }

    private mutating func parseFieldName() throws(QueryParseError) -> String {
        guard case .identifier(let name, _) = current.kind else { throw expected("a field name") }
        try checkPatternColumn(name, at: current)
        try advance()
        return name
    }

    private mutating func parseFieldList() throws(QueryParseError) -> [String] {
        var names: [String] = []
        repeat { names.append(try parseFieldName()) } while try acceptComma()
        return names
    }

    private mutating func parseAlias() throws(QueryParseError) -> String? {
        guard try acceptKeyword("as") else { return nil }
        return try parseFieldName()
    }

    /// The column name of an expression without alias: a field's own name (no backquotes), else the
    /// expression as written.
    private func columnName(_ expr: Expr, written: String) -> String {
        if case .field(let name) = expr { return name }
        return written
    }

    private mutating func parseProjections() throws(QueryParseError) -> [Projection] {
        var result: [Projection] = []
        repeat {
            let start = current.offset
            let expr = try parseExpression()
            let written = sourceText(from: start)
            result.append(Projection(expr: expr, name: try parseAlias() ?? columnName(expr, written: written)))
        } while try acceptComma()
        return result
    }

    private mutating func parseStats() throws(QueryParseError) -> Stats {
        var outputs: [Projection] = []
        aggregates = []
        repeat {
            let start = current.offset
            let startToken = current
            let before = aggregates!.count
            let expr = try parseExpression()
            if aggregates!.count == before {
                throw error("expected an aggregate function (\(Parser.aggregateNames))", at: startToken)
            }
            let written = sourceText(from: start)
            outputs.append(Projection(expr: expr, name: try parseAlias() ?? written))
        } while try acceptComma()
        let collected = aggregates!
        aggregates = nil
        var groups: [Projection] = []
        if try acceptKeyword("by") {
            groups = try parseProjections()
        }
        let stats = Stats(outputs: outputs, aggregates: collected, groups: groups)
        statsOutputNames = Set(stats.columnNames)
        return stats
    }

    private mutating func parseParse() throws(QueryParseError) -> ParseSpec {
        var source = SystemField.message
        if case .identifier(let name, let quoted) = current.kind {
            let lower = name.lowercased()
            let next = try peek()
            let nextIsPattern: Bool = {
                switch next.kind {
                case .string, .regex: return true
                case .symbol("/"): return true
                case .identifier(let n, false): return ["logfmt", "csv"].contains(n.lowercased())
                default: return false
                }
            }()
            if quoted || !["logfmt", "csv"].contains(lower) || nextIsPattern {
                source = name
                try advance()
            }
        }
        if current.isSymbol("/") {
            current = try lexer.relexRegex(at: current.offset, line: current.line, column: current.column)
        }
        switch current.kind {
        case .string(let glob):
            let globToken = current
            try advance()
            guard try acceptKeyword("as") else { throw expected("'as' and one field name per * in the pattern") }
            let names = try parseFieldList()
            let stars = GlobPattern.starCount(glob)
            guard stars > 0 else { throw error("the parse pattern has no *: expected at least one", at: globToken) }
            guard let pattern = GlobPattern(pattern: glob, names: names) else {
                throw error("the parse pattern has \(stars) * but \(names.count) field name\(names.count == 1 ? "" : "s") follow 'as'", at: globToken)
            }
            return ParseSpec(source: source, pattern: .glob(pattern))
        case .regex(let body):
            let regexToken = current
            let regex = try compileRegex(body, token: regexToken)
            guard !regex.groupNames.isEmpty else {
                throw error("the parse regex has no named group: expected (?<name>…)", at: regexToken)
            }
            try advance()
            return ParseSpec(source: source, pattern: .regex(regex))
        case .identifier(let mode, false) where mode.lowercased() == "logfmt":
            try advance()
            return ParseSpec(source: source, pattern: .logfmt([]))
        case .identifier(let mode, false) where mode.lowercased() == "csv":
            try advance()
            var delimiter = UInt8(ascii: ",")
            if current.isSymbol("(") {
                try advance()
                guard case .string(let d) = current.kind, d.utf8.count == 1, let byte = d.utf8.first,
                      byte != UInt8(ascii: "\""), byte != 10, byte != 13 else {
                    throw expected("a one-character delimiter such as \";\" or \"\\t\"")
                }
                delimiter = byte
                try advance()
                try expectSymbol(")", "')' after the delimiter")
            }
            guard try acceptKeyword("as") else { throw expected("'as' and one field name per column after csv") }
            return ParseSpec(source: source, pattern: .csv(try parseFieldList(), delimiter: delimiter))
        default:
            throw expected("a quoted glob pattern, a /regex/ with named groups, logfmt, or csv as …")
        }
    }

    private func compileRegex(_ body: String, token: Token) throws(QueryParseError) -> QueryRegex {
        do {
            return try QueryRegex(body)
        } catch {
            throw self.error("invalid regex /\(body)/: \(error)", at: token)
        }
    }

    // MARK: expressions

    mutating func parseExpression() throws(QueryParseError) -> Expr {
        try enter()
        defer { depth -= 1 }
        return try parseOr()
    }

    private mutating func parseOr() throws(QueryParseError) -> Expr {
        var left = try parseAnd()
        let base = depth
        defer { depth = base }
        while try acceptKeyword("or") {
            try enter()
            left = .binary(.or, left, try parseAnd())
        }
        return left
    }

    private mutating func parseAnd() throws(QueryParseError) -> Expr {
        var left = try parseNot()
        let base = depth
        defer { depth = base }
        while try acceptKeyword("and") {
            try enter()
            left = .binary(.and, left, try parseNot())
        }
        return left
    }

    private mutating func parseNot() throws(QueryParseError) -> Expr {
        if try acceptKeyword("not") {
            try enter()
            defer { depth -= 1 }
            return .unary(.not, try parseNot())
        }
        return try parseComparison()
    }

    private mutating func parseComparison() throws(QueryParseError) -> Expr {
        let left = try parseAdditive()
        if case .symbol(let s) = current.kind, let op = BinaryOperator(rawValue: s), op.isComparison {
            try advance()
            return .binary(op, left, try parseAdditive())
        }
        if current.isSymbol("=~") {
            try advance()
            guard case .regex(let body) = current.kind else { throw expected("a /regex/ after =~") }
            let regex = try compileRegex(body, token: current)
            try advance()
            return .like(left, .regex(regex), negated: false)
        }
        var negated = false
        if current.keyword == "not" {
            negated = true
            try advance()
            guard current.keyword == "like" || current.keyword == "in" else { throw expected("'like' or 'in' after 'not'") }
        }
        if try acceptKeyword("like") {
            switch current.kind {
            case .string(let s):
                try advance()
                return .like(left, .substring(s), negated: negated)
            case .regex(let body):
                let regex = try compileRegex(body, token: current)
                try advance()
                return .like(left, .regex(regex), negated: negated)
            default:
                throw expected("a quoted string or a /regex/ after 'like'")
            }
        }
        if try acceptKeyword("in") {
            try expectSymbol("[", "'[' to start the list")
            var items: [Expr] = []
            if !current.isSymbol("]") {
                repeat { items.append(try parseAdditive()) } while try acceptComma()
            }
            try expectSymbol("]", "',' or ']' to close the list")
            return .inList(left, items, negated: negated)
        }
        return left
    }

    private mutating func parseAdditive() throws(QueryParseError) -> Expr {
        var left = try parseMultiplicative()
        let base = depth
        defer { depth = base }
        while case .symbol(let s) = current.kind, s == "+" || s == "-" {
            try advance()
            try enter()
            left = .binary(s == "+" ? .add : .subtract, left, try parseMultiplicative())
        }
        return left
    }

    private mutating func parseMultiplicative() throws(QueryParseError) -> Expr {
        var left = try parseUnary()
        let base = depth
        defer { depth = base }
        while case .symbol(let s) = current.kind, s == "*" || s == "/" || s == "%" {
            try advance()
            try enter()
            left = .binary(s == "*" ? .multiply : s == "/" ? .divide : .modulo, left, try parseUnary())
        }
        return left
    }

    private mutating func parseUnary() throws(QueryParseError) -> Expr {
        try enter()
        defer { depth -= 1 }
        if current.isSymbol("-") {
            try advance()
            let operand = try parseUnary()
            if case .literal(.number(let d)) = operand { return .literal(.number(-d)) }
            return .unary(.negate, operand)
        }
        if current.isSymbol("+") {
            try advance()
            return try parseUnary()
        }
        let base = try parsePostfix()
        if current.isSymbol("^") {
            try advance()
            return .binary(.power, base, try parseUnary())
        }
        return base
    }

    /// A primary expression followed by `[index]` accesses (on lists from `jsonParse`).
    private mutating func parsePostfix() throws(QueryParseError) -> Expr {
        var expr = try parsePrimary()
        while current.isSymbol("[") {
            try advance()
            try enter()
            let index = try parseExpression()
            try expectSymbol("]", "']' after the index")
            expr = .index(expr, index)
        }
        return expr
    }

    private mutating func parsePrimary() throws(QueryParseError) -> Expr {
        let token = current
        switch token.kind {
        case .number(let d):
            try advance()
            return .literal(.number(d))
        case .string(let s):
            try advance()
            return .literal(.string(s))
        case .period(let p):
            try advance()
            return .period(p)
        case .symbol("("):
            try advance()
            let inner = try parseExpression()
            try expectSymbol(")", "')' to close '('")
            return inner
        case .identifier(let name, let quoted):
            try advance()
            if !quoted, current.isSymbol("(") {
                return try parseCall(name: name, nameToken: token)
            }
            if !quoted, ["and", "or", "not", "like", "in", "as", "by", "asc", "desc"].contains(name.lowercased()) {
                throw error("expected an expression but found keyword '\(name)'", at: token)
            }
            if !quoted, name.lowercased() == "true" || name.lowercased() == "false" {
                return .literal(.bool(name.lowercased() == "true"))
            }
            try checkPatternColumn(name, at: token)
            return .field(name)
        case .regex:
            throw error("expected an expression but found a regex (regexes follow like or =~)", at: token)
        default:
            throw expected("an expression")
        }
    }

    private mutating func parseCall(name: String, nameToken: Token) throws(QueryParseError) -> Expr {
        let start = nameToken.offset
        try advance() // (
        let lower = name.lowercased()
        if let aggregate = AggregateFunction(rawValue: lower) {
            let call = try parseAggregateArguments(aggregate, nameToken: nameToken)
            let written = sourceText(from: start)
            if aggregates != nil {
                aggregates!.append(call)
                return .aggregate(aggregates!.count - 1)
            }
            if statsOutputNames.contains(written) { return .field(written) }
            throw error("aggregate function '\(aggregate.spelling)' is only allowed in stats", at: nameToken)
        }
        if Parser.unsupportedAggregates.contains(lower) {
            throw error("the stats function '\(name)' is not supported: use \(Parser.aggregateNames), with by bin(…) for series", at: nameToken)
        }
        guard let function = ScalarFunction(name: name) else {
            throw error("unknown function '\(name)'", at: nameToken)
        }
        var args: [Expr] = []
        var argumentTokens: [Token] = []
        if !current.isSymbol(")") {
            repeat {
                argumentTokens.append(current)
                args.append(try parseExpression())
            } while try acceptComma()
        }
        try expectSymbol(")", "',' or ')' in the arguments of \(function.spelling)")
        guard function.arity.contains(args.count) else {
            throw error("\(function.spelling) expects \(function.arityDescription), got \(args.count)", at: nameToken)
        }
        switch function {
        case .bin:
            guard case .period = args[0] else { throw error("bin expects a time period such as 5m or 1h", at: nameToken) }
        case .datefloor, .dateceil:
            guard case .period = args[1] else {
                throw error("\(lower) expects a time period such as 1h as its second argument", at: nameToken)
            }
        default: break
        }
        // Constant arguments are checked now: an out-of-range constant is the query's mistake.
        let evaluator = Evaluator(now: 0)
        for (k, arg) in args.enumerated() where arg.isConstant {
            if case .period = arg { continue }
            let value = evaluator.evaluate(arg, [])
            if let problem = function.problem(withConstant: value, at: k) {
                throw error(problem, at: argumentTokens[k])
            }
        }
        var expr = Expr.call(function, args)
        if function == .bin, current.keyword == "offset" {
            try advance()
            var sign: Int64 = 1
            if current.isSymbol("-") { sign = -1; try advance() }
            guard case .period(let offset) = current.kind, let ms = offset.fixedMilliseconds else {
                throw expected("a fixed time period after offset (ms, s, m, h, d or w)")
            }
            try advance()
            guard case .period(let period) = args[0] else { return expr }
            expr = .binOffset(period, offset: sign * ms)
        }
        let written = sourceText(from: start)
        if aggregates == nil, statsOutputNames.contains(written) { return .field(written) }
        return expr
    }

    private mutating func parseAggregateArguments(_ function: AggregateFunction, nameToken: Token) throws(QueryParseError) -> AggregateCall {
        let outer = aggregates
        aggregates = nil // no nested aggregates
        defer { aggregates = outer }
        if function == .count {
            if current.isSymbol("*") {
                try advance()
                try expectSymbol(")", "')' after count(*")
                return AggregateCall(function: .count, argument: nil)
            }
            if current.isSymbol(")") {
                try advance()
                return AggregateCall(function: .count, argument: nil)
            }
        }
        if current.isSymbol(")") { throw expected("an argument for \(function.spelling)") }
        let argument = try parseExpression()
        var percentile = 0.0
        if function == .pct {
            try expectSymbol(",", "',' and a percentile in pct(field, p)")
            guard case .number(let p) = current.kind, p >= 0, p <= 100 else {
                throw expected("a percentile from 0 to 100")
            }
            percentile = p
            try advance()
        }
        try expectSymbol(")", "')' to close \(function.spelling)(")
        return AggregateCall(function: function, argument: argument, percentile: percentile)
    }
}

extension Command {
    /// Field names this command reads or names.
    func collectFields(into set: inout Set<String>) {
        switch self {
        case .fields(let ps): for p in ps { p.expr.collectFields(into: &set) }
        case .filter(let e), .pattern(let e): e.collectFields(into: &set)
        case .stats(let s):
            for a in s.aggregates { a.argument?.collectFields(into: &set) }
            for g in s.groups { g.expr.collectFields(into: &set) }
        case .sort(let keys): for k in keys { k.expr.collectFields(into: &set) }
        case .parse(let spec): set.insert(spec.source)
        case .display(let names), .dedup(let names): set.formUnion(names)
        case .unnest(let e, _): e.collectFields(into: &set)
        case .limit, .diff, .anomaly: break
        }
    }
}

extension String {
    func trimmingSpaces() -> String {
        var scalars = Substring(self).unicodeScalars[...]
        while let f = scalars.first, f == " " || f == "\t" || f == "\n" || f == "\r" { scalars.removeFirst() }
        while let l = scalars.last, l == " " || l == "\t" || l == "\n" || l == "\r" { scalars.removeLast() }
        return String(String.UnicodeScalarView(scalars))
    }
}
