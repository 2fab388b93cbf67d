import ByteJSON

/// The result of a query: named columns and rows of values.
public struct QueryResult: Sendable {
    public var columns: [String]
    public var rows: [[QueryValue]]

    public init(columns: [String], rows: [[QueryValue]]) {
        self.columns = columns
        self.rows = rows
    }
}

/// One stored log event as a store hands it to ``QueryExecutor/push(event:)``: raw bytes, valid only
/// for the duration of the call. Nothing is decoded unless the query names it.
public struct LogEventInput {
    public var timestamp: Int64
    public var ingestionTime: Int64
    public var logGroup: UnsafeRawBufferPointer
    public var logStream: UnsafeRawBufferPointer
    public var message: UnsafeRawBufferPointer
    /// The event's parsed fields as a JSON object (what pipeline `parse` stages added), if any.
    public var fields: UnsafeRawBufferPointer?

    public init(timestamp: Int64, ingestionTime: Int64, logGroup: UnsafeRawBufferPointer, logStream: UnsafeRawBufferPointer,
                message: UnsafeRawBufferPointer, fields: UnsafeRawBufferPointer?) {
        self.timestamp = timestamp
        self.ingestionTime = ingestionTime
        self.logGroup = logGroup
        self.logStream = logStream
        self.message = message
        self.fields = fields
    }
}

/// Runs a parsed query over rows pushed one at a time (streamed from a store), keeping only what the
/// commands need: one accumulator per `stats` group, a bounded top-k buffer per `sort`, and at most
/// `maxRows` result rows (Logs Insights returns at most 10,000).
///
/// Every field name of the query is resolved once to a slot of a fixed row layout, so a row is a small
/// array, not a dictionary. Fields of JSON events are discovered lazily: one byte-level scan per event
/// (``JSONFlattenedLookup``) finds only the names the query refers to, flattened as Logs Insights does
/// (`a.b`, `list.0`); arrays and objects themselves are not fields.
///
/// Limits: `deadline` (``QueryDeadline``) and Swift task cancellation are checked every 1,024 rows and
/// in `finish()`; the number of `stats` groups, `dedup` keys and `pattern` templates is bounded.
public final class QueryExecutor {
    public let query: Query
    public let maxRows: Int
    public let deadline: QueryDeadline?
    /// Most distinct `stats … by` groups (and `dedup` keys) one query may hold.
    public static let maximumGroups = 1_000_000
    static let maximumKeptValues = 100_000

    let evaluator: Evaluator
    /// Field names by slot; slots 0–4 are the system fields.
    let layout: [String]
    private let slotByName: [String: Int]
    private let commands: [Command]
    private let discovery: FieldDiscovery
    private let needsMessage: Bool
    private let needsLogGroup: Bool
    private let needsLogStream: Bool

    private var statsTables: [Int: StatsTable] = [:]
    private var sortBuffers: [Int: [(Slots, [QueryValue])]] = [:]
    private var limitCounts: [Int: Int] = [:]
    private var dedupSeen: [Int: Set<[GroupKey]>] = [:]
    private var patternStates: [Int: PatternState] = [:]
    private var output: [Slots] = []
    private var finished = false
    private var rowsSinceCheck = 0
    private var scratch: Slots
    private var cachedGroup: (bytes: [UInt8], value: QueryValue)?
    /// Reused by every event's JSON scan (no allocation per row).
    private var lookupResults: [JSONLookup] = []
    private var cachedStream: (bytes: [UInt8], value: QueryValue)?
    /// Rows pushed now belong to the previous range (for `diff`).
    private var readingPreviousRange = false
    /// The time range the rows come from, when the caller knows it (for `anomaly` bins and `diff`).
    public var timeRange: Range<Int64>?

    static let timestampSlot = 0, messageSlot = 1, logStreamSlot = 2, logSlot = 3, ingestionSlot = 4

    /// - Parameters:
    ///   - now: the time `now()` means, epoch milliseconds.
    ///   - deadline: when the query must be done (``QueryLimits``); nil for no limit.
    public init(query: Query, maxRows: Int = 10_000, now: Int64, deadline: QueryDeadline? = nil) {
        self.query = query
        self.maxRows = maxRows
        self.deadline = deadline
        var names = [SystemField.timestamp, SystemField.message, SystemField.logStream, SystemField.log, SystemField.ingestionTime]
        var slots: [String: Int] = [:]
        for (k, n) in names.enumerated() { slots[n] = k }
        func add(_ name: String) {
            if slots[name] == nil {
                slots[name] = names.count
                names.append(name)
            }
        }
        var referenced = Set<String>()
        var created = Set<String>()
        for command in query.commands {
            command.collectFields(into: &referenced)
            switch command {
            case .fields(let ps): for p in ps { created.insert(p.name) }
            case .parse(let spec): created.formUnion(spec.createdFields)
            case .unnest(_, let alias): created.insert(alias)
            case .stats(let s): created.formUnion(s.columnNames)
            case .pattern: created.formUnion(PatternColumns.pattern)
            case .diff: created.formUnion(PatternColumns.diff)
            case .anomaly: created.formUnion(PatternColumns.anomaly)
            default: break
            }
        }
        for name in referenced.sorted() { add(name) }
        for name in created.sorted() { add(name) }
        let outputNames = QueryExecutor.outputColumns(of: query)
        for name in outputNames { add(name) }
        self.layout = names
        self.slotByName = slots

        // `m.key` where `m` is made by the query (e.g. `jsonParse(@message) as m`) reads a member of m.
        func resolve(_ expr: Expr) -> Expr {
            expr.rewritten { node in
                guard case .field(let name) = node else { return node }
                if !created.contains(name), name.contains(".") {
                    let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
                    for cut in stride(from: parts.count - 1, through: 1, by: -1) {
                        let head = parts[0..<cut].joined(separator: ".")
                        if created.contains(head), let slot = slots[head] {
                            var e = Expr.slot(slot)
                            for part in parts[cut...] {
                                if let n = Int(part), n >= 0 { e = .index(e, .literal(.number(Double(n)))) } else { e = .member(e, part) }
                            }
                            return e
                        }
                    }
                }
                return slots[name].map { .slot($0) } ?? node
            }
        }
        self.commands = query.commands.map { command in
            switch command {
            case .fields(let ps): return .fields(ps.map { Projection(expr: resolve($0.expr), name: $0.name) })
            case .filter(let e): return .filter(resolve(e))
            case .stats(let s):
                return .stats(Stats(outputs: s.outputs.map { Projection(expr: resolve($0.expr), name: $0.name) },
                                    aggregates: s.aggregates.map { AggregateCall(function: $0.function, argument: $0.argument.map(resolve),
                                                                                  percentile: $0.percentile) },
                                    groups: s.groups.map { Projection(expr: resolve($0.expr), name: $0.name) }))
            case .sort(let keys): return .sort(keys.map { SortKey(expr: resolve($0.expr), descending: $0.descending) })
            case .unnest(let e, let alias): return .unnest(source: resolve(e), alias: alias)
            case .pattern(let e): return .pattern(resolve(e))
            default: return command
            }
        }
        var evaluator = Evaluator(now: now)
        evaluator.timestampSlot = QueryExecutor.timestampSlot
        self.evaluator = evaluator

        // Names found in the event's JSON: those read before the first aggregation, not system fields.
        var discoverable = Set<String>()
        for command in query.commands {
            command.collectFields(into: &discoverable)
            if command.isAggregating { break }
        }
        if !query.commands.contains(where: { $0.isAggregating }) { discoverable.formUnion(outputNames) }
        let discovered = discoverable.filter { !$0.hasPrefix("@") || $0.hasPrefix("@@") }.sorted().filter { name in
            // `m.key` on a created `m` is a member access, not a JSON field.
            if case .slot = resolve(.field(name)) { return true }
            return false
        }
        self.discovery = FieldDiscovery(names: discovered, slots: discovered.map { slots[$0]! })
        let used = referenced.union(outputNames)
        self.needsMessage = used.contains(SystemField.message)
        self.needsLogGroup = used.contains(SystemField.log)
        self.needsLogStream = used.contains(SystemField.logStream)
        self.scratch = Slots(repeating: .null, count: names.count)
    }

    /// Field names the query reads (so the caller can decide which message fields to extract).
    public var referencedFields: Set<String> {
        var set = Set<String>()
        for command in query.commands { command.collectFields(into: &set) }
        return set
    }

    /// True once no further input can change the result (a `limit` reached with nothing buffering before it).
    public var isSatisfied: Bool { finished }

    // MARK: Input

    /// Feeds one stored event. Throws when the deadline passed or the task was cancelled (checked every
    /// 1,024 rows) or a bound was exceeded.
    public func push(event: LogEventInput) throws(QueryRunError) {
        try tick()
        if let source = query.source {
            let matches = source.namePrefixes.contains { prefix in
                prefix.utf8.count <= event.logGroup.count && prefix.utf8.elementsEqual(event.logGroup.prefix(prefix.utf8.count))
            }
            if !matches { return }
        }
        // The row is built in a local (the reused buffer is moved out and back), so its slots are
        // written without an exclusivity check each.
        var row = scratch
        scratch = []
        defer { scratch = row }
        for k in row.indices { row[k] = .null }
        row[QueryExecutor.timestampSlot] = .timestamp(event.timestamp)
        row[QueryExecutor.ingestionSlot] = .timestamp(event.ingestionTime)
        if needsMessage { row[QueryExecutor.messageSlot] = .string(String(decoding: event.message, as: UTF8.self)) }
        if needsLogGroup { row[QueryExecutor.logSlot] = cached(event.logGroup, &cachedGroup) }
        if needsLogStream { row[QueryExecutor.logStreamSlot] = cached(event.logStream, &cachedStream) }
        if !discovery.isEmpty {
            var results = lookupResults
            lookupResults = []
            if let fields = event.fields { discovery.fill(&row, from: fields, results: &results) }
            discovery.fill(&row, from: event.message, results: &results)
            lookupResults = results
        }
        try run(row, from: 0)
    }

    /// Feeds a row given by field name (values the caller already holds).
    public func push(_ row: QueryRow) throws(QueryRunError) {
        try tick()
        try run(slots(of: row), from: 0)
    }

    /// Feeds one group of the `stats` command at `index` that ran elsewhere (a database aggregated it):
    /// its group values and aggregate values, in the command's order. The executor evaluates the outputs
    /// and runs the rest of the query on the row; its own `stats` at `index` then emits nothing.
    public func pushAggregated(statsAt index: Int, groups: [QueryValue], aggregates: [QueryValue]) throws(QueryRunError) {
        try tick()
        guard case .stats(let stats) = commands[index] else { return }
        skippedStats.insert(index)
        var row = Slots(repeating: .null, count: layout.count)
        for (g, v) in zip(stats.groups, groups) { row[slotByName[g.name]!] = v }
        for p in stats.outputs { row[slotByName[p.name]!] = evaluator.evaluate(p.expr, row, aggregates: aggregates) }
        try run(row, from: index + 1)
    }

    /// The `stats` command at `index` ran elsewhere: its finish step must not emit an empty group.
    public func skipStats(at index: Int) { skippedStats.insert(index) }
    private var skippedStats = Set<Int>()

    /// Rows pushed from now on come from the range before the query's range, of the same length (`diff`).
    public func beginPreviousRange() { readingPreviousRange = true }
    /// Rows pushed from now on come from the query's own range again.
    public func endPreviousRange() { readingPreviousRange = false }

    /// Checks the deadline and cancellation now (for callers that work long between rows, e.g. while a
    /// database aggregates).
    public func checkLimits() throws(QueryRunError) {
        if let deadline { try deadline.check() } else if Task.isCancelled { throw .cancelled }
    }

    @inline(__always)
    private func tick() throws(QueryRunError) {
        rowsSinceCheck &+= 1
        if rowsSinceCheck >= 1024 {
            rowsSinceCheck = 0
            try checkLimits()
        }
    }

    private func cached(_ bytes: UnsafeRawBufferPointer, _ cache: inout (bytes: [UInt8], value: QueryValue)?) -> QueryValue {
        if let c = cache, c.bytes.count == bytes.count, c.bytes.elementsEqual(bytes) { return c.value }
        let value = QueryValue.string(String(decoding: bytes, as: UTF8.self))
        cache = (Array(bytes), value)
        return value
    }

    private func slots(of row: QueryRow) -> Slots {
        var out = Slots(repeating: .null, count: layout.count)
        for (name, value) in row { if let k = slotByName[name] { out[k] = value } }
        // Discovery over named rows: JSON text in @message gives fields the query names.
        if !discovery.isEmpty, case .string(var message) = row[SystemField.message] ?? .null {
            message.withUTF8 { discovery.fill(&out, from: UnsafeRawBufferPointer($0), results: &lookupResults) }
        }
        return out
    }

    // MARK: The command pipeline

    private func run(_ input: Slots, from start: Int) throws(QueryRunError) {
        var row = input
        var index = start
        while index < commands.count {
            if readingPreviousRange {
                // The previous range only feeds `pattern` (for `diff`).
                if case .pattern(let expr) = commands[index] {
                    patternState(at: index).add(evaluator.evaluate(expr, row), time: row[QueryExecutor.timestampSlot], previous: true)
                    return
                }
            }
            switch commands[index] {
            case .fields(let projections):
                for p in projections { row[slotByName[p.name]!] = evaluator.evaluate(p.expr, row) }
            case .display:
                break
            case .filter(let expr):
                if !Evaluator.isTrue(evaluator.evaluate(expr, row)) { return }
            case .parse(let spec):
                applyParse(spec, to: &row)
            case .unnest(let source, let alias):
                let slot = slotByName[alias]!
                let value = evaluator.evaluate(source, row)
                switch value {
                case .null: return
                case .json(.array(let items)):
                    for item in items {
                        var copy = row
                        copy[slot] = QueryValue(json: item)
                        try run(copy, from: index + 1)
                        if finished { return }
                    }
                    return
                default:
                    row[slot] = value
                }
            case .stats(let stats):
                try statsTable(at: index, stats).add(row, evaluator: evaluator)
                return
            case .pattern(let expr):
                patternState(at: index).add(evaluator.evaluate(expr, row), time: row[QueryExecutor.timestampSlot], previous: false)
                return
            case .diff, .anomaly:
                break
            case .sort(let keys):
                if passThroughSorts.contains(index) { break }
                var buffer = sortBuffers[index, default: []]
                sortBuffers[index] = nil
                buffer.append((row, keys.map { evaluator.evaluate($0.expr, row) }))
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
                let values = names.map { row[slotByName[$0]!] }
                // Rows where any deduplicated field is null are never duplicates (AWS keeps them all).
                if !values.contains(where: \.isNull) {
                    let key = values.map(GroupKey.init)
                    var seen = dedupSeen[index, default: []]
                    dedupSeen[index] = nil
                    let (inserted, _) = seen.insert(key)
                    if seen.count > QueryExecutor.maximumGroups {
                        throw .invalid(QueryParseError(column: 1, message: "dedup met more than \(QueryExecutor.maximumGroups) distinct values; narrow the query"))
                    }
                    dedupSeen[index] = seen
                    if !inserted { return }
                }
            }
            index += 1
        }
        if output.count < maxRows { output.append(row) } else if !hasBufferingCommand(before: commands.count) { finished = true }
    }

    private func applyParse(_ spec: ParseSpec, to row: inout Slots) {
        let text = row[slotByName[spec.source]!].stringValue ?? ""
        switch spec.pattern {
        case .glob(let glob):
            if let values = glob.match(text) {
                for (name, value) in zip(glob.names, values) { row[slotByName[name]!] = .string(value) }
            }
        case .regex(let regex):
            if let captures = regex.captures(text) {
                for (name, value) in captures { row[slotByName[name]!] = .string(value) }
            }
        case .logfmt(let wanted):
            guard !wanted.isEmpty else { return }
            for (key, value) in StructuredText.logfmt(text) {
                if let slot = slotByName[key], wanted.contains(key), row[slot].isNull { row[slot] = .string(value) }
            }
        case .csv(let names, let delimiter):
            let values = StructuredText.csvRecord(text, delimiter: delimiter)
            for (name, value) in zip(names, values) { row[slotByName[name]!] = .string(value) }
        }
    }

    private func hasBufferingCommand(before index: Int) -> Bool {
        commands.prefix(index).enumerated().contains { k, command in
            switch command {
            case .stats, .pattern: return true
            case .sort: return !passThroughSorts.contains(k)
            default: return false
            }
        }
    }

    /// Sorts the input already satisfies (their rows pass straight on).
    private var passThroughSorts = Set<Int>()

    /// Whether a `limit` can end the input early (nothing before it needs every row).
    public var canStopEarly: Bool {
        guard let index = commands.firstIndex(where: { if case .limit = $0 { return true }; return false }) else { return false }
        return !hasBufferingCommand(before: index)
    }

    /// False when the result does not depend on the order rows arrive in (an aggregation comes before any
    /// sort, limit or dedup): a store may then read in whatever order is cheapest. When true, rows must
    /// come newest first (Logs Insights' default order).
    public var needsTimeOrder: Bool {
        for command in query.commands {
            switch command {
            case .stats, .pattern: return false
            case .sort, .limit, .dedup: return true
            default: continue
            }
        }
        return true
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
            case .stats, .pattern, .diff, .anomaly:
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
            case .unnest(_, let alias):
                if alias == SystemField.timestamp { return }
            case .filter, .display, .dedup, .limit:
                continue
            }
        }
    }

    /// How many rows a sort must keep: the limit right after it, or the result cap.
    private func topK(after index: Int) -> Int {
        if index + 1 < commands.count, case .limit(let n) = commands[index + 1] { return min(n, maxRows) }
        return maxRows
    }

    private func sorted(_ rows: [(Slots, [QueryValue])], _ keys: [SortKey], keep: Int) -> [(Slots, [QueryValue])] {
        let descending = keys.map(\.descending)
        // A stable sort: rows with equal keys keep their arrival order.
        let ordered = rows.enumerated().sorted { a, b in
            let c = ValueOrder.compareKeys(a.element.1, b.element.1, descending: descending)
            return c != 0 ? c < 0 : a.offset < b.offset
        }
        return Array(ordered.prefix(keep).map(\.element))
    }

    private func statsTable(at index: Int, _ stats: Stats) -> StatsTable {
        if let table = statsTables[index] { return table }
        let table = StatsTable(stats)
        statsTables[index] = table
        return table
    }

    private func patternState(at index: Int) -> PatternState {
        if let state = patternStates[index] { return state }
        let state = PatternState()
        patternStates[index] = state
        return state
    }

    // MARK: Finishing

    /// Flushes every buffering command in order and returns the result.
    public func finish() throws(QueryRunError) -> QueryResult {
        try checkLimits()
        readingPreviousRange = false
        for (index, command) in commands.enumerated() {
            switch command {
            case .stats(let stats):
                if skippedStats.contains(index) { continue }
                let table = statsTables[index] ?? StatsTable(stats)
                statsTables[index] = nil
                for (groups, aggregates) in table.results() {
                    var row = Slots(repeating: .null, count: layout.count)
                    for (g, v) in zip(stats.groups, groups) { row[slotByName[g.name]!] = v }
                    for p in stats.outputs { row[slotByName[p.name]!] = evaluator.evaluate(p.expr, row, aggregates: aggregates) }
                    try run(row, from: index + 1)
                }
            case .pattern:
                let state = patternStates[index] ?? PatternState()
                patternStates[index] = nil
                let next = index + 1 < commands.count ? commands[index + 1] : nil
                let rows: [[String: QueryValue]]
                switch next {
                case .diff?: rows = state.diffRows()
                case .anomaly?: rows = state.anomalyRows(range: timeRange)
                default: rows = state.patternRows()
                }
                let resume = (next.map { c -> Bool in if case .diff = c { return true }; if case .anomaly = c { return true }; return false } ?? false) ? index + 2 : index + 1
                for named in rows {
                    var row = Slots(repeating: .null, count: layout.count)
                    for (name, value) in named { if let k = slotByName[name] { row[k] = value } }
                    try run(row, from: resume)
                }
            case .sort(let keys) where !passThroughSorts.contains(index):
                let buffer = sorted(sortBuffers[index] ?? [], keys, keep: topK(after: index))
                sortBuffers[index] = nil
                for (row, _) in buffer { try run(row, from: index + 1) }
            default:
                break
            }
            try checkLimits()
        }
        let columns = QueryExecutor.outputColumns(of: query)
        let columnSlots = columns.map { slotByName[$0]! }
        return QueryResult(columns: columns, rows: output.map { row in columnSlots.map { row[$0] } })
    }

    /// What Logs Insights shows: `display` wins; else the columns of the last aggregation (`stats`,
    /// `pattern`, `diff`, `anomaly`) plus later `fields`; else every `fields` projection; else
    /// @timestamp and @message.
    static func outputColumns(of query: Query) -> [String] {
        var columns: [String] = []
        var sawFields = false
        for command in query.commands {
            switch command {
            case .display(let names): columns = names; sawFields = true
            case .stats(let stats):
                columns = stats.columnNames
                sawFields = true
            case .pattern:
                columns = PatternColumns.pattern
                sawFields = true
            case .diff:
                columns = PatternColumns.diff
            case .anomaly:
                columns = PatternColumns.anomaly
            case .fields(let projections):
                if !sawFields { columns = []; sawFields = true }
                for p in projections where !columns.contains(p.name) { columns.append(p.name) }
            case .unnest(_, let alias):
                if sawFields && !columns.contains(alias) { columns.append(alias) }
            default: break
            }
        }
        if let last = query.commands.lastIndex(where: { if case .display = $0 { return true }; return false }),
           case .display(let names) = query.commands[last] {
            return names
        }
        return sawFields ? columns : [SystemField.timestamp, SystemField.message]
    }
}

/// The lazily discovered JSON fields of one query: names, their slots, and the scanners.
struct FieldDiscovery {
    let names: [String]
    let slots: [Int]
    private let lookups: [JSONFlattenedLookup]
    private var isEmptyFlag: Bool

    init(names: [String], slots: [Int]) {
        self.names = names
        self.slots = slots
        // `@@x` is the JSON key `@x` (Logs Insights adds an `@` to discovered names that start with one).
        let keys = names.map { name -> [UInt8] in Array((name.hasPrefix("@@") ? String(name.dropFirst()) : name).utf8) }
        var lookups: [JSONFlattenedLookup] = []
        var k = 0
        while k < keys.count {
            let end = min(keys.count, k + JSONFlattenedLookup.maximumNames)
            lookups.append(JSONFlattenedLookup(Array(keys[k..<end])))
            k = end
        }
        self.lookups = lookups
        self.isEmptyFlag = names.isEmpty
    }

    var isEmpty: Bool { isEmptyFlag }

    /// Fills the slots of names found in the JSON object `bytes` that are still null; `results` is
    /// scratch space kept by the caller.
    func fill(_ row: inout Slots, from bytes: UnsafeRawBufferPointer, results: inout [JSONLookup]) {
        guard let first = bytes.first(where: { $0 != 0x20 && $0 != 0x09 }), first == UInt8(ascii: "{") else { return }
        for (chunk, lookup) in lookups.enumerated() {
            guard lookup.resolve(in: bytes, into: &results) else { return }
            for (k, found) in results.enumerated() {
                let slot = slots[chunk * JSONFlattenedLookup.maximumNames + k]
                if !row[slot].isNull { continue }
                if let value = FieldDiscovery.value(found, in: bytes) { row[slot] = value }
            }
        }
    }

    /// The query value of a flattened JSON field: scalars only (objects and arrays are flattened into
    /// their members, so they are not fields themselves).
    static func value(_ found: JSONLookup, in bytes: UnsafeRawBufferPointer) -> QueryValue? {
        switch found {
        case .string(let r, let escaped):
            if escaped {
                guard let decoded = found.stringBytes(in: bytes) else { return nil }
                return .string(String(decoding: decoded, as: UTF8.self))
            }
            return .string(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[r]), as: UTF8.self))
        case .number:
            return found.double(in: bytes).flatMap { $0.isFinite ? .number($0) : nil }
        case .bool(let b): return .bool(b)
        case .null, .missing, .notJSON, .object, .array: return nil
        }
    }
}

/// Grouped accumulators of one `stats` command.
final class StatsTable {
    let stats: Stats
    private var single: [GroupKey: Int] = [:]
    private var multi: [[GroupKey]: Int] = [:]
    private var groupValues: [[QueryValue]] = []
    private var accumulators: [Accumulator] = []
    private let width: Int

    init(_ stats: Stats) {
        self.stats = stats
        self.width = stats.aggregates.count
    }

    func add(_ row: Slots, evaluator: Evaluator) throws(QueryRunError) {
        let group: Int
        switch stats.groups.count {
        case 0:
            if groupValues.isEmpty { try newGroup([]) }
            group = 0
        case 1:
            let value = evaluator.evaluate(stats.groups[0].expr, row)
            let key = GroupKey(value)
            if let g = single[key] { group = g } else {
                group = try newGroup([value])
                single[key] = group
            }
        default:
            let values = stats.groups.map { evaluator.evaluate($0.expr, row) }
            let key = values.map(GroupKey.init)
            if let g = multi[key] { group = g } else {
                group = try newGroup(values)
                multi[key] = group
            }
        }
        let time: Int64 = { if case .timestamp(let t) = row[QueryExecutor.timestampSlot] { return t }; return 0 }()
        let base = group * width
        for (k, call) in stats.aggregates.enumerated() {
            if call.function == .count && call.argument == nil {
                accumulators[base + k].count += 1
                continue
            }
            let value = call.argument.map { evaluator.evaluate($0, row) } ?? .number(1)
            if value.isNull { continue }
            accumulators[base + k].add(value, time: time, call: call)
        }
    }

    @discardableResult
    private func newGroup(_ values: [QueryValue]) throws(QueryRunError) -> Int {
        if groupValues.count >= QueryExecutor.maximumGroups {
            throw .invalid(QueryParseError(column: 1, message: "stats … by made more than \(QueryExecutor.maximumGroups) groups; group by fewer distinct values or narrow the query"))
        }
        groupValues.append(values)
        accumulators.append(contentsOf: repeatElement(Accumulator(), count: width))
        return groupValues.count - 1
    }

    /// Each group's values and aggregate results, in the order groups first appeared (a stats without
    /// `by` over no rows still gives its one row).
    func results() -> [([QueryValue], [QueryValue])] {
        if stats.groups.isEmpty && groupValues.isEmpty {
            let empty = Accumulator()
            return [([], stats.aggregates.map { empty.result($0) })]
        }
        return groupValues.indices.map { g in
            (groupValues[g], stats.aggregates.enumerated().map { k, call in accumulators[g * width + k].result(call) })
        }
    }
}

/// The running state of one aggregate in one group.
struct Accumulator {
    var count = 0
    var sum = 0.0
    var numericCount = 0
    var mean = 0.0
    var m2 = 0.0
    var min: QueryValue?
    var max: QueryValue?
    /// `min`/`max` over values that are not numbers (used when there is no number).
    var textExtreme: QueryValue?
    var values: [Double] = []
    var seenValues = 0
    var distinct: DistinctCounter?
    var earliest: (Int64, QueryValue)?
    var latest: (Int64, QueryValue)?

    mutating func add(_ value: QueryValue, time: Int64, call: AggregateCall) {
        count += 1
        switch call.function {
        case .count: return
        case .sum, .avg, .stddev, .pct:
            guard let d = value.numericValue, d.isFinite else { return }
            numericCount += 1
            sum += d
            let delta = d - mean
            mean += delta / Double(numericCount)
            m2 += delta * (d - mean)
            if call.function == .pct {
                seenValues += 1
                if values.count < QueryExecutor.maximumKeptValues {
                    values.append(d)
                } else {
                    // Deterministic reservoir: the same rows keep the same sample.
                    let slot = Int((UInt64(seenValues) &* 0x9E37_79B9_7F4A_7C15) % UInt64(seenValues))
                    if slot < QueryExecutor.maximumKeptValues { values[slot] = d }
                }
            }
        case .min, .max:
            // Numbers (numeric strings, times) by value; text only counts when no value is a number.
            if value.numericValue != nil {
                if call.function == .min, min.map({ ValueOrder.compare(value, $0) < 0 }) ?? true { min = value }
                if call.function == .max, max.map({ ValueOrder.compare(value, $0) > 0 }) ?? true { max = value }
            } else {
                if call.function == .min, textExtreme.map({ ValueOrder.compare(value, $0) < 0 }) ?? true { textExtreme = value }
                if call.function == .max, textExtreme.map({ ValueOrder.compare(value, $0) > 0 }) ?? true { textExtreme = value }
            }
        case .sortsFirst:
            if min.map({ ValueOrder.compare(value, $0) < 0 }) ?? true { min = value }
        case .sortsLast:
            if max.map({ ValueOrder.compare(value, $0) > 0 }) ?? true { max = value }
        case .countDistinct:
            if distinct == nil { distinct = DistinctCounter() }
            distinct!.insert(GroupKey(value))
        case .earliest:
            if earliest.map({ time < $0.0 }) ?? true { earliest = (time, value) }
        case .latest:
            if latest.map({ time >= $0.0 }) ?? true { latest = (time, value) }
        }
    }

    func result(_ call: AggregateCall) -> QueryValue {
        switch call.function {
        case .count: return .number(Double(count))
        case .sum: return numericCount > 0 ? finite(sum) : .null
        case .avg: return numericCount > 0 ? finite(sum / Double(numericCount)) : .null
        case .min: return min ?? textExtreme ?? .null
        case .max: return max ?? textExtreme ?? .null
        case .sortsFirst: return min ?? .null
        case .sortsLast: return max ?? .null
        case .stddev: return numericCount > 1 ? finite((m2 / Double(numericCount - 1)).squareRoot()) : .null
        case .countDistinct: return .number(Double(distinct?.count ?? 0))
        case .earliest: return earliest?.1 ?? .null
        case .latest: return latest?.1 ?? .null
        case .pct:
            guard !values.isEmpty else { return .null }
            let sorted = values.sorted()
            let rank = Int((call.percentile / 100 * Double(sorted.count)).rounded(.up))
            return .number(sorted[Swift.min(Swift.max(rank, 1), sorted.count) - 1])
        }
    }
}

/// `count_distinct`: exact up to 100,000 distinct values per group, then a HyperLogLog estimate
/// (4,096 registers, about 1.6 % standard error) — Logs Insights documents `count_distinct` as
/// approximate for high cardinalities too. Memory per group is bounded either way.
struct DistinctCounter {
    private var exact: Set<GroupKey>? = []
    private var registers: [UInt8] = []

    var count: Int {
        if let exact { return exact.count }
        let m = Double(registers.count)
        var sum = 0.0, zeros = 0
        for r in registers {
            sum += 1 / Double(1 << Int(r))
            if r == 0 { zeros += 1 }
        }
        var estimate = 0.7213 / (1 + 1.079 / m) * m * m / sum
        if estimate <= 2.5 * m, zeros > 0 { estimate = m * log(m / Double(zeros)) }
        return Int(estimate.rounded())
    }

    mutating func insert(_ key: GroupKey) {
        if exact != nil {
            exact!.insert(key)
            if exact!.count > QueryExecutor.maximumKeptValues {
                registers = [UInt8](repeating: 0, count: 4096)
                for k in exact! { add(k) }
                exact = nil
            }
            return
        }
        add(key)
    }

    private mutating func add(_ key: GroupKey) {
        let h = DistinctCounter.stableHash(key)
        let index = Int(h >> 52)
        let rank = UInt8(min(52, (h << 12).leadingZeroBitCount) + 1)
        if rank > registers[index] { registers[index] = rank }
    }

    /// A hash that is the same in every run (Swift's `Hasher` is seeded per process), so estimates repeat.
    static func stableHash(_ key: GroupKey) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ byte: UInt8) { h = (h ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        switch key.kind {
        case .null: mix(0)
        case .number(let d): mix(1); for k in 0..<8 { mix(UInt8(truncatingIfNeeded: d.bitPattern >> (8 * UInt64(k)))) }
        case .time(let t): mix(2); for k in 0..<8 { mix(UInt8(truncatingIfNeeded: t >> (8 * Int64(k)))) }
        case .bool(let b): mix(3); mix(b ? 1 : 0)
        case .text(let s): mix(4); for b in s.utf8 { mix(b) }
        }
        // Final avalanche (murmur3 fmix64) so the top bits are well mixed.
        h ^= h >> 33; h = h &* 0xff51_afd7_ed55_8ccd; h ^= h >> 33; h = h &* 0xc4ce_b9fe_1a85_ec53; h ^= h >> 33
        return h
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
