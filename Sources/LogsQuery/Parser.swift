/// Entry points of the query language.
public enum LogsQuery {
    /// Largest `limit` accepted (the Logs Insights maximum).
    public static let maximumLimit = 10_000

    /// Parses a Logs Insights query into its AST.
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

    private static let commandNames = "fields, filter, stats, sort, limit, parse, display or dedup"

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

    private func sourceText(from offset: Int) -> String {
        let scalars = lexer.scalars[offset..<max(offset, previousEnd)]
        return String(String.UnicodeScalarView(scalars)).trimmingSpaces()
    }

    // MARK: query and commands

    mutating func parseQuery() throws(QueryParseError) -> Query {
        try advance()
        var commands: [Command] = []
        if current.kind == .end { throw expected("a command (\(Parser.commandNames))") }
        while true {
            let commandToken = current
            let command = try parseCommand()
            if let last = commands.last, case .dedup = last {
                if case .limit = command {} else {
                    throw error("only limit may follow dedup", at: commandToken)
                }
            }
            commands.append(command)
            if current.isSymbol("|") {
                try advance()
                continue
            }
            if current.kind == .end { break }
            throw expected("'|' or end of query")
        }
        return Query(commands: commands, text: text)
    }

    private mutating func parseCommand() throws(QueryParseError) -> Command {
        guard let name = current.keyword else { throw expected("a command (\(Parser.commandNames))") }
        let commandToken = current
        switch name {
        case "fields":
            try advance()
            return .fields(try parseProjections(context: "fields"))
        case "display":
            try advance()
            return .display(try parseFieldList())
        case "filter":
            try advance()
            let expr = try parseExpression()
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
        default:
            throw error("unknown command '\(name)': expected \(Parser.commandNames)", at: commandToken)
        }
    }

    private mutating func acceptComma() throws(QueryParseError) -> Bool {
        guard current.isSymbol(",") else { return false }
        try advance()
        return true
    }

    private mutating func parseFieldName() throws(QueryParseError) -> String {
        guard case .identifier(let name, _) = current.kind else { throw expected("a field name") }
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

    private mutating func parseProjections(context: String) throws(QueryParseError) -> [Projection] {
        var result: [Projection] = []
        repeat {
            let start = current.offset
            let expr = try parseExpression()
            let written = sourceText(from: start)
            result.append(Projection(expr: expr, name: try parseAlias() ?? written))
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
                throw error("expected an aggregate function (count, sum, avg, min, max, pct, stddev, count_distinct, earliest, latest)", at: startToken)
            }
            let written = sourceText(from: start)
            outputs.append(Projection(expr: expr, name: try parseAlias() ?? written))
        } while try acceptComma()
        let collected = aggregates!
        aggregates = nil
        var groups: [Projection] = []
        if try acceptKeyword("by") {
            groups = try parseProjections(context: "by")
        }
        let stats = Stats(outputs: outputs, aggregates: collected, groups: groups)
        statsOutputNames = Set(stats.columnNames)
        return stats
    }

    private mutating func parseParse() throws(QueryParseError) -> ParseSpec {
        var source = SystemField.message
        if case .identifier(let name, _) = current.kind {
            source = name
            try advance()
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
        default:
            throw expected("a quoted glob pattern or a /regex/ with named groups")
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

    mutating func parseExpression() throws(QueryParseError) -> Expr { try parseOr() }

    private mutating func parseOr() throws(QueryParseError) -> Expr {
        var left = try parseAnd()
        while try acceptKeyword("or") { left = .binary(.or, left, try parseAnd()) }
        return left
    }

    private mutating func parseAnd() throws(QueryParseError) -> Expr {
        var left = try parseNot()
        while try acceptKeyword("and") { left = .binary(.and, left, try parseNot()) }
        return left
    }

    private mutating func parseNot() throws(QueryParseError) -> Expr {
        if try acceptKeyword("not") { return .unary(.not, try parseNot()) }
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
        while case .symbol(let s) = current.kind, s == "+" || s == "-" {
            try advance()
            left = .binary(s == "+" ? .add : .subtract, left, try parseMultiplicative())
        }
        return left
    }

    private mutating func parseMultiplicative() throws(QueryParseError) -> Expr {
        var left = try parseUnary()
        while case .symbol(let s) = current.kind, s == "*" || s == "/" || s == "%" {
            try advance()
            left = .binary(s == "*" ? .multiply : s == "/" ? .divide : .modulo, left, try parseUnary())
        }
        return left
    }

    private mutating func parseUnary() throws(QueryParseError) -> Expr {
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
        let base = try parsePrimary()
        if current.isSymbol("^") {
            try advance()
            return .binary(.power, base, try parseUnary())
        }
        return base
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
            throw error("aggregate function '\(lower)' is only allowed in stats", at: nameToken)
        }
        guard let function = ScalarFunction(name: name) else {
            throw error("unknown function '\(name)'", at: nameToken)
        }
        var args: [Expr] = []
        if !current.isSymbol(")") {
            repeat { args.append(try parseExpression()) } while try acceptComma()
        }
        try expectSymbol(")", "',' or ')' in the arguments of \(lower)")
        guard function.arity.contains(args.count) else {
            throw error("\(lower) expects \(function.arityDescription), got \(args.count)", at: nameToken)
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
        let written = sourceText(from: start)
        if aggregates == nil, statsOutputNames.contains(written) { return .field(written) }
        return .call(function, args)
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
        if current.isSymbol(")") { throw expected("an argument for \(function.rawValue)") }
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
        try expectSymbol(")", "')' to close \(function.rawValue)(")
        return AggregateCall(function: function, argument: argument, percentile: percentile)
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
