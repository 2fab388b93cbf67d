import ByteJSON

/// The values of one row, one per field of the executor's layout (``QueryExecutor`` resolves every field
/// name of the query to a slot before the first row).
typealias Slots = ContiguousArray<QueryValue>

/// Expression evaluation over one row.
///
/// Rules (README, "Query semantics"): a missing field is `.null`; arithmetic or a function over `.null`
/// gives `.null`; every comparison involving `.null` is false (also `!=`); strings compare by their UTF-8
/// bytes (the same order SQLite's BINARY collation uses, and equality is byte equality); a number against
/// a string compares numerically when the string is a plain decimal number; a timestamp against a string
/// compares with the string read as an ISO-8601 date. Arithmetic never traps: results that are not finite
/// (division by zero, overflow) and times outside the years 0001–9999 are null.
struct Evaluator: Sendable {
    /// Reference time for `now()`, epoch milliseconds.
    let now: Int64
    /// The slot of `@timestamp` (for `bin`), or -1.
    var timestampSlot: Int = -1

    func evaluate(_ expr: Expr, _ row: Slots, aggregates: [QueryValue] = []) -> QueryValue {
        switch expr {
        case .literal(let v): return v
        case .slot(let i): return row[i]
        case .period(let p): return .number(Double(p.approximateMilliseconds))
        case .field: return .null // resolved to slots before evaluation; unresolved names read nothing
        case .aggregate(let index): return index < aggregates.count ? aggregates[index] : .null
        case .member(let e, let key):
            guard case .json(.object(let members)) = evaluate(e, row, aggregates: aggregates) else { return .null }
            return members.first { QueryValue.sameBytes($0.key, key) }.map { QueryValue(json: $0.value) } ?? .null
        case .index(let e, let i):
            guard case .json(.array(let items)) = evaluate(e, row, aggregates: aggregates),
                  let d = evaluate(i, row, aggregates: aggregates).numericValue, d == d.rounded(), d >= 0, d < Double(items.count) else {
                return .null
            }
            return QueryValue(json: items[Int(d)])
        case .unary(.not, let e): return .bool(!Evaluator.isTrue(evaluate(e, row, aggregates: aggregates)))
        case .unary(.negate, let e):
            let v = evaluate(e, row, aggregates: aggregates)
            guard let d = v.numericValue else { return .null }
            return .number(-d)
        case .binary(.and, let a, let b):
            guard Evaluator.isTrue(evaluate(a, row, aggregates: aggregates)) else { return .bool(false) }
            return .bool(Evaluator.isTrue(evaluate(b, row, aggregates: aggregates)))
        case .binary(.or, let a, let b):
            if Evaluator.isTrue(evaluate(a, row, aggregates: aggregates)) { return .bool(true) }
            return .bool(Evaluator.isTrue(evaluate(b, row, aggregates: aggregates)))
        case .binary(let op, let a, let b):
            let l = evaluate(a, row, aggregates: aggregates)
            let r = evaluate(b, row, aggregates: aggregates)
            if op.isComparison { return .bool(Evaluator.compare(op, l, r)) }
            return Evaluator.arithmetic(op, l, r)
        case .like(let e, let pattern, let negated):
            guard case .string(let s) = Evaluator.asMatchText(evaluate(e, row, aggregates: aggregates)) else {
                return .bool(false)
            }
            let matched: Bool
            switch pattern {
            case .substring(let needle): matched = ByteSearch.contains(s, Array(needle.utf8))
            case .regex(let regex): matched = regex.matches(s)
            }
            return .bool(matched != negated)
        case .inList(let e, let items, let negated):
            let v = evaluate(e, row, aggregates: aggregates)
            if v.isNull { return .bool(false) }
            let found = items.contains { Evaluator.compare(.equal, v, evaluate($0, row, aggregates: aggregates)) }
            return .bool(found != negated)
        case .binOffset(let period, let offset):
            guard timestampSlot >= 0, let t = timestampMillis(row[timestampSlot]) else { return .null }
            return QueryTime.checkedTimestamp(period.floor(t - offset) + offset)
        case .call(let function, let args):
            var period: TimePeriod?
            var values: [QueryValue] = []
            values.reserveCapacity(args.count)
            for arg in args {
                if case .period(let p) = arg { period = p }
                values.append(evaluate(arg, row, aggregates: aggregates))
            }
            let timestamp = timestampSlot >= 0 && timestampSlot < row.count ? row[timestampSlot] : .null
            return function.apply(values, period: period, timestamp: timestamp, now: now)
        }
    }

    /// Text a `like` / `=~` matches against: strings as they are, numbers and timestamps as displayed.
    static func asMatchText(_ v: QueryValue) -> QueryValue {
        switch v {
        case .null: return .null
        case .string: return v
        default: return v.stringValue.map { .string($0) } ?? .null
        }
    }

    /// Truth of a value used as a condition: `true`, non-zero numbers, non-empty strings and timestamps.
    static func isTrue(_ v: QueryValue) -> Bool {
        switch v {
        case .bool(let b): return b
        case .number(let d): return d != 0 && !d.isNaN
        case .string(let s): return !s.isEmpty
        case .timestamp, .json: return true
        case .null: return false
        }
    }

    static func arithmetic(_ op: BinaryOperator, _ l: QueryValue, _ r: QueryValue) -> QueryValue {
        guard let a = l.numericValue, let b = r.numericValue else { return .null }
        let result: Double
        switch op {
        case .add: result = a + b
        case .subtract: result = a - b
        case .multiply: result = a * b
        case .divide:
            if b == 0 { return .null }
            result = a / b
        case .modulo:
            if b == 0 { return .null }
            result = a.truncatingRemainder(dividingBy: b)
        case .power: result = power(a, b)
        default: return .null
        }
        guard result.isFinite else { return .null }
        // Timestamp plus/minus a duration stays a timestamp (e.g. `now() - 1h`).
        if op == .add || op == .subtract {
            let isTime = { (v: QueryValue) -> Bool in if case .timestamp = v { return true }; return false }
            if (isTime(l) && !isTime(r)) || (isTime(r) && op == .add && !isTime(l)) {
                guard result > -1e18, result < 1e18 else { return .null }
                return QueryTime.checkedTimestamp(Int64(result))
            }
        }
        return .number(result)
    }

    /// Three-way comparison used by filter operators; nil when the values are not comparable.
    static func order(_ l: QueryValue, _ r: QueryValue) -> Int? {
        switch (l, r) {
        case (.null, _), (_, .null): return nil
        case (.string(let a), .string(let b)): return compareBytes(a, b)
        case (.timestamp(let a), .timestamp(let b)): return a < b ? -1 : a > b ? 1 : 0
        case (.timestamp(let a), .string(let s)):
            guard let b = QueryTime.parse(s) else { return numericOrder(Double(a), QueryValue.parseNumber(s)) }
            return a < b ? -1 : a > b ? 1 : 0
        case (.string(let s), .timestamp(let b)):
            guard let a = QueryTime.parse(s) else { return numericOrder(QueryValue.parseNumber(s), Double(b)) }
            return a < b ? -1 : a > b ? 1 : 0
        case (.bool(let a), .bool(let b)): return a == b ? 0 : (a ? 1 : -1)
        case (.bool(let a), .string(let s)), (.string(let s), .bool(let a)):
            // A boolean against its text (`"true"`): equal or not, never ordered.
            guard s == "true" || s == "false" else { return nil }
            return (s == "true") == a ? 0 : nil
        case (.json(let a), .json(let b)): return a == b ? 0 : nil
        case (.json, _), (_, .json): return nil
        default: return numericOrder(l.numericValue, r.numericValue)
        }
    }

    private static func numericOrder(_ a: Double?, _ b: Double?) -> Int? {
        guard let a, let b, !a.isNaN, !b.isNaN else { return nil }
        return a < b ? -1 : a > b ? 1 : 0
    }

    static func compare(_ op: BinaryOperator, _ l: QueryValue, _ r: QueryValue) -> Bool {
        guard let c = order(l, r) else {
            // Incomparable non-null values are simply different.
            return op == .notEqual && !l.isNull && !r.isNull
        }
        switch op {
        case .equal: return c == 0
        case .notEqual: return c != 0
        case .less: return c < 0
        case .lessOrEqual: return c <= 0
        case .greater: return c > 0
        case .greaterOrEqual: return c >= 0
        default: return false
        }
    }

    /// Lexicographic comparison of UTF-8 bytes.
    static func compareBytes(_ a: String, _ b: String) -> Int {
        if let fast = a.utf8.withContiguousStorageIfAvailable({ pa in
            b.utf8.withContiguousStorageIfAvailable { pb in compareBuffers(pa, pb) }
        }), let result = fast { return result }
        var a = a, b = b
        return a.withUTF8 { pa in b.withUTF8 { pb in compareBuffers(pa, pb) } }
    }

    @inline(__always)
    static func compareBuffers(_ pa: UnsafeBufferPointer<UInt8>, _ pb: UnsafeBufferPointer<UInt8>) -> Int {
        let n = min(pa.count, pb.count)
        if n > 0, let x = pa.baseAddress, let y = pb.baseAddress {
            let c = memcmp(x, y, n)
            if c != 0 { return c < 0 ? -1 : 1 }
        }
        return pa.count < pb.count ? -1 : pa.count > pb.count ? 1 : 0
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Total order used by `sort`, `min`/`max`, `sortsFirst`/`sortsLast` and the bounded heaps: numbers,
/// timestamps, booleans and numeric strings compare numerically and come first; other strings follow in
/// UTF-8 byte order; nulls come last in both directions.
enum ValueOrder {
    /// Negative when `a` sorts before `b` ascending. Nulls are handled by the caller.
    static func compare(_ a: QueryValue, _ b: QueryValue) -> Int {
        let na = a.numericValue, nb = b.numericValue
        switch (na, nb) {
        case (let x?, let y?): return x < y ? -1 : x > y ? 1 : 0
        case (.some, .none): return -1
        case (.none, .some): return 1
        case (.none, .none):
            if let x = a.stringValue, let y = b.stringValue { return Evaluator.compareBytes(x, y) }
            return 0
        }
    }

    /// Compares two key tuples under per-key directions; nulls last regardless of direction.
    static func compareKeys(_ a: [QueryValue], _ b: [QueryValue], descending: [Bool]) -> Int {
        for i in 0..<a.count {
            let x = a[i], y = b[i]
            switch (x.isNull, y.isNull) {
            case (true, true): continue
            case (true, false): return 1
            case (false, true): return -1
            default: break
            }
            var c = compare(x, y)
            if descending[i] { c = -c }
            if c != 0 { return c }
        }
        return 0
    }
}
