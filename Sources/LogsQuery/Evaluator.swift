/// Expression evaluation over one row.
///
/// Rules (see docs/query.md): a missing field is `.null`; arithmetic or a function over `.null` gives
/// `.null`; every comparison involving `.null` is false (also `!=`); strings compare by their UTF-8 bytes
/// (the same order SQLite's BINARY collation uses); a number against a string compares numerically when the
/// string is a plain decimal number; a timestamp against a string compares with the string read as an
/// ISO-8601 date.
struct Evaluator: Sendable {
    /// Reference time for `now()`, epoch milliseconds.
    let now: Int64

    func evaluate(_ expr: Expr, _ row: QueryRow, aggregates: [QueryValue] = []) -> QueryValue {
        switch expr {
        case .literal(let v): return v
        case .period(let p): return .number(Double(p.approximateMilliseconds))
        case .field(let name): return row[name] ?? .null
        case .aggregate(let index): return index < aggregates.count ? aggregates[index] : .null
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
        case .call(let function, let args):
            var period: TimePeriod?
            var values: [QueryValue] = []
            values.reserveCapacity(args.count)
            for arg in args {
                if case .period(let p) = arg { period = p }
                values.append(evaluate(arg, row, aggregates: aggregates))
            }
            return function.apply(values, period: period, timestamp: row[SystemField.timestamp] ?? .null, now: now)
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
        case .timestamp: return true
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
        // Timestamp plus/minus a duration stays a timestamp (e.g. `now() - 1h`).
        if op == .add || op == .subtract, result.isFinite {
            if case .timestamp = l, !isTimestamp(r) { return .timestamp(Int64(result)) }
            if case .timestamp = r, op == .add, !isTimestamp(l) { return .timestamp(Int64(result)) }
        }
        return .number(result)
    }

    private static func isTimestamp(_ v: QueryValue) -> Bool {
        if case .timestamp = v { return true }
        return false
    }

    private static func power(_ a: Double, _ b: Double) -> Double {
        if b == b.rounded(), abs(b) <= 64 {
            var result = 1.0
            for _ in 0..<Int(abs(b)) { result *= a }
            return b < 0 ? 1 / result : result
        }
        return ScalarFunction.pow.apply([.number(a), .number(b)], period: nil, timestamp: .null, now: 0).numericValue ?? .nan
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
        case (.bool, .string), (.string, .bool): return nil
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
        var a = a, b = b
        return a.withUTF8 { pa in
            b.withUTF8 { pb in
                let n = min(pa.count, pb.count)
                if n > 0, let x = pa.baseAddress, let y = pb.baseAddress {
                    let c = memcmpBytes(x, y, n)
                    if c != 0 { return c < 0 ? -1 : 1 }
                }
                return pa.count < pb.count ? -1 : pa.count > pb.count ? 1 : 0
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@inline(__always) private func memcmpBytes(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ n: Int) -> Int32 {
    memcmp(a, b, n)
}

/// Total order used by `sort`, `stats` group output and the bounded heaps: numbers, timestamps, booleans
/// and numeric strings compare numerically and come first; other strings follow in UTF-8 byte order;
/// nulls come last in both directions.
enum ValueOrder {
    /// Negative when `a` sorts before `b` ascending. Nulls are handled by the caller.
    static func compare(_ a: QueryValue, _ b: QueryValue) -> Int {
        let na = a.numericValue, nb = b.numericValue
        switch (na, nb) {
        case (let x?, let y?): return x < y ? -1 : x > y ? 1 : 0
        case (.some, .none): return -1
        case (.none, .some): return 1
        case (.none, .none):
            if case .string(let x) = a, case .string(let y) = b { return Evaluator.compareBytes(x, y) }
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
