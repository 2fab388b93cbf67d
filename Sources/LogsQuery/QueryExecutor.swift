/// The result of a query: named columns and rows of values.
public struct QueryResult: Sendable {
    public var columns: [String]
    public var rows: [[QueryValue]]
}

/// Runs a parsed query over rows pushed one at a time (streamed from the store), keeping only
/// what the commands need: one accumulator per `stats` group, a bounded top-k buffer per `sort`,
/// and at most `maxRows` result rows (Logs Insights returns at most 10,000).
public final class QueryExecutor {
    public let query: Query
    public let maxRows: Int
    let evaluator: Evaluator
    private var statsState: [Int: [[QueryValue]: [Accumulator]]] = [:]
    private var statsOrder: [Int: [[QueryValue]]] = [:]
    private var sortBuffers: [Int: [QueryRow]] = [:]
    private var limitCounts: [Int: Int] = [:]
    private var dedupSeen: [Int: Set<[QueryValue]>] = [:]
    private var output: [QueryRow] = []
    private var finished = false

    /// - Parameter now: the time `now()` means, epoch milliseconds.
    public init(query: Query, maxRows: Int = 10_000, now: Int64) {
        self.query = query
        self.maxRows = maxRows
        self.evaluator = Evaluator(now: now)
    }

    /// Field names the query reads (so the caller can decide which message fields to extract).
    public var referencedFields: Set<String> {
        var set = Set<String>()
        for command in query.commands {
            switch command {
            case .fields(let ps): for p in ps { p.expr.collectFields(into: &set) }
            case .filter(let e): e.collectFields(into: &set)
            case .stats(let s):
                for a in s.aggregates { a.argument?.collectFields(into: &set) }
                for g in s.groups { g.expr.collectFields(into: &set) }
            case .sort(let keys): for k in keys { k.expr.collectFields(into: &set) }
            case .parse(let spec): set.insert(spec.source)
            case .display(let names), .dedup(let names): set.formUnion(names)
            case .limit: break
            }
        }
        return set
    }

    /// True once no further input can change the result (a `limit` reached with nothing buffering before it).
    public var isSatisfied: Bool { finished }

    public func push(_ row: QueryRow) {
        push(row, from: 0)
    }

    /// Feeds a row that already went through commands `0..<index` (rows a database aggregated).
    public func push(_ row: QueryRow, after index: Int) {
        push(row, from: index + 1)
    }

    /// Evaluates an expression the way the query would (for rows aggregated elsewhere).
    public func evaluate(_ expr: Expr, _ row: QueryRow, aggregates: [QueryValue] = []) -> QueryValue {
        evaluator.evaluate(expr, row, aggregates: aggregates)
    }

    /// The stats command at `index` ran elsewhere: its finish step must not emit an empty group.
    public func skipStats(at index: Int) { skippedStats.insert(index) }
    private var skippedStats = Set<Int>()

    private func push(_ input: QueryRow, from start: Int) {
        var row = input
        var index = start
        while index < query.commands.count {
            switch query.commands[index] {
            case .fields(let projections):
                for p in projections { row[p.name] = evaluator.evaluate(p.expr, row) }
            case .display:
                break
            case .filter(let expr):
                if !Evaluator.isTrue(evaluator.evaluate(expr, row)) { return }
            case .parse(let spec):
                let text = row[spec.source]?.stringValue ?? ""
                switch spec.pattern {
                case .glob(let glob):
                    if let values = glob.match(text) {
                        for (name, value) in zip(glob.names, values) { row[name] = .string(value) }
                    }
                case .regex(let regex):
                    if let captures = regex.captures(text) {
                        for (name, value) in captures { row[name] = .string(value) }
                    }
                }
            case .stats(let stats):
                accumulate(row, stats, at: index)
                return
            case .sort(let keys):
                if passThroughSorts.contains(index) { break }
                var buffer = sortBuffers[index, default: []]
                buffer.append(row)
                let keep = topK(after: index)
                if buffer.count >= keep * 2 + 1024 { buffer = sorted(buffer, keys, keep: keep) }
                sortBuffers[index] = buffer
                return
            case .limit(let n):
                let count = limitCounts[index, default: 0]
                if count >= n {
                    if !hasBufferingCommand(before: index) { finished = true }
                    return
                }
                limitCounts[index] = count + 1
            case .dedup(let names):
                let key = names.map { row[$0] ?? .null }
                if dedupSeen[index, default: []].contains(key) { return }
                dedupSeen[index, default: []].insert(key)
            }
            index += 1
        }
        if output.count < maxRows { output.append(row) } else if !hasBufferingCommand(before: query.commands.count) { finished = true }
    }

    private func hasBufferingCommand(before index: Int) -> Bool {
        query.commands.prefix(index).enumerated().contains { k, command in
            if case .stats = command { return true }
            if case .sort = command { return !passThroughSorts.contains(k) }
            return false
        }
    }

    /// Sorts the input already satisfies (their rows pass straight on).
    private var passThroughSorts = Set<Int>()

    /// Whether a `limit` can end the input early (nothing before it needs every row).
    public var canStopEarly: Bool {
        guard let index = query.commands.firstIndex(where: { if case .limit = $0 { return true }; return false }) else { return false }
        return !hasBufferingCommand(before: index)
    }

    /// Declares that rows arrive newest first (a store reading its time index backwards): a
    /// leading `sort @timestamp desc` then needs no buffer, and a `limit` after it ends the scan early.
    public func inputIsNewestFirst() {
        for (index, command) in query.commands.enumerated() {
            switch command {
            case .sort(let keys):
                if keys.count == 1, keys[0].descending, case .field(let name) = keys[0].expr, name == SystemField.timestamp {
                    passThroughSorts.insert(index)
                }
                return
            case .stats:
                return
            case .fields(let projections):
                // `fields @timestamp` keeps it; `fields x as @timestamp` would replace it.
                let replaced = projections.contains { p in
                    guard p.name == SystemField.timestamp else { return false }
                    if case .field(SystemField.timestamp) = p.expr { return false }
                    return true
                }
                if replaced { return }
            case .parse(let spec):
                if spec.createdFields.contains(SystemField.timestamp) { return }
            case .filter, .display, .dedup, .limit:
                continue
            }
        }
    }

    /// How many rows a sort must keep: the limit right after it, or the result cap.
    private func topK(after index: Int) -> Int {
        if index + 1 < query.commands.count, case .limit(let n) = query.commands[index + 1] { return min(n, maxRows) }
        return maxRows
    }

    private func sorted(_ rows: [QueryRow], _ keys: [SortKey], keep: Int) -> [QueryRow] {
        let keyed = rows.map { row in (row, keys.map { evaluator.evaluate($0.expr, row) }) }
        let descending = keys.map(\.descending)
        let ordered = keyed.sorted { ValueOrder.compareKeys($0.1, $1.1, descending: descending) < 0 }
        return Array(ordered.prefix(keep).map(\.0))
    }

    // MARK: Stats

    struct Accumulator {
        var count = 0
        var sum = 0.0
        var min: QueryValue?
        var max: QueryValue?
        var values: [Double] = []
        var seenValues = 0
        var distinct = Set<QueryValue>()
        var mean = 0.0
        var m2 = 0.0
        var earliest: (Int64, QueryValue)?
        var latest: (Int64, QueryValue)?
    }

    static let maximumKeptValues = 100_000

    private func accumulate(_ row: QueryRow, _ stats: Stats, at index: Int) {
        let key = stats.groups.map { evaluator.evaluate($0.expr, row) }
        var groups = statsState[index, default: [:]]
        var accumulators = groups[key] ?? Array(repeating: Accumulator(), count: stats.aggregates.count)
        if groups[key] == nil { statsOrder[index, default: []].append(key) }
        let time: Int64 = { if case .timestamp(let t) = row[SystemField.timestamp] ?? .null { return t }; return 0 }()
        for (k, call) in stats.aggregates.enumerated() {
            let value = call.argument.map { evaluator.evaluate($0, row) } ?? .number(1)
            var a = accumulators[k]
            if call.function == .count && call.argument == nil {
                a.count += 1
            } else if !value.isNull {
                a.count += 1
                if let d = value.numericValue {
                    a.sum += d
                    let delta = d - a.mean
                    a.mean += delta / Double(a.count)
                    a.m2 += delta * (d - a.mean)
                    if call.function == .pct {
                        a.seenValues += 1
                        if a.values.count < QueryExecutor.maximumKeptValues {
                            a.values.append(d)
                        } else {
                            // Deterministic reservoir: the same rows keep the same sample.
                            let slot = Int((UInt64(a.seenValues) &* 0x9E37_79B9_7F4A_7C15) % UInt64(a.seenValues))
                            if slot < QueryExecutor.maximumKeptValues { a.values[slot] = d }
                        }
                    }
                }
                if a.min.map({ ValueOrder.compare(value, $0) < 0 }) ?? true { a.min = value }
                if a.max.map({ ValueOrder.compare(value, $0) > 0 }) ?? true { a.max = value }
                if call.function == .countDistinct && a.distinct.count < QueryExecutor.maximumKeptValues { a.distinct.insert(value) }
                if a.earliest.map({ time < $0.0 }) ?? true { a.earliest = (time, value) }
                if a.latest.map({ time >= $0.0 }) ?? true { a.latest = (time, value) }
            }
            accumulators[k] = a
        }
        groups[key] = accumulators
        statsState[index] = groups
    }

    private func value(of a: Accumulator, _ call: AggregateCall) -> QueryValue {
        switch call.function {
        case .count: return .number(Double(a.count))
        case .sum: return a.count > 0 ? .number(a.sum) : .null
        case .avg: return a.count > 0 ? .number(a.sum / Double(a.count)) : .null
        case .min: return a.min ?? .null
        case .max: return a.max ?? .null
        case .stddev: return a.count > 1 ? .number((a.m2 / Double(a.count - 1)).squareRoot()) : .null
        case .countDistinct: return .number(Double(a.distinct.count))
        case .earliest: return a.earliest?.1 ?? .null
        case .latest: return a.latest?.1 ?? .null
        case .pct:
            guard !a.values.isEmpty else { return .null }
            let sorted = a.values.sorted()
            let rank = Int((call.percentile / 100 * Double(sorted.count)).rounded(.up))
            return .number(sorted[Swift.min(Swift.max(rank, 1), sorted.count) - 1])
        }
    }

    // MARK: Finishing

    /// Flushes every buffering command in order and returns the result.
    public func finish() -> QueryResult {
        for (index, command) in query.commands.enumerated() {
            switch command {
            case .stats(let stats):
                if skippedStats.contains(index) { continue }
                let groups = statsState[index] ?? [:]
                var keys = statsOrder[index] ?? []
                if stats.groups.isEmpty && keys.isEmpty { keys = [[]] }
                statsState[index] = nil
                for key in keys {
                    let accumulators = groups[key] ?? Array(repeating: Accumulator(), count: stats.aggregates.count)
                    let aggregates = zip(accumulators, stats.aggregates).map { value(of: $0, $1) }
                    var row: QueryRow = [:]
                    for (g, v) in zip(stats.groups, key) { row[g.name] = v }
                    for p in stats.outputs { row[p.name] = evaluator.evaluate(p.expr, row, aggregates: aggregates) }
                    push(row, from: index + 1)
                }
            case .sort(let keys) where !passThroughSorts.contains(index):
                let buffer = sorted(sortBuffers[index] ?? [], keys, keep: topK(after: index))
                sortBuffers[index] = nil
                for row in buffer { push(row, from: index + 1) }
            default:
                break
            }
        }
        let columns = outputColumns()
        return QueryResult(columns: columns, rows: output.map { row in columns.map { row[$0] ?? .null } })
    }

    /// What Logs Insights shows: `display` wins; else the last `stats`'s columns plus later
    /// `fields`; else every `fields` projection; else @timestamp and @message.
    func outputColumns() -> [String] {
        var columns: [String] = []
        var sawFields = false
        for command in query.commands {
            switch command {
            case .display(let names): return names
            case .stats(let stats):
                columns = stats.columnNames
                sawFields = true
            case .fields(let projections):
                if !sawFields { columns = []; sawFields = true }
                for p in projections where !columns.contains(p.name) { columns.append(p.name) }
            default: break
            }
        }
        return sawFields ? columns : [SystemField.timestamp, SystemField.message]
    }
}
