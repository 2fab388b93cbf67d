#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Non-aggregate functions usable anywhere an expression is.
public enum ScalarFunction: String, Sendable, CaseIterable {
    // general
    case ispresent, coalesce
    // string
    case isempty, isblank, strlen, toupper, tolower, trim, ltrim, rtrim, concat, substr, replace, strcontains
    // numeric
    case abs, ceil, floor, log, sqrt, pow, greatest, least
    // date-time
    case bin, datefloor, dateceil, fromMillis = "frommillis", toMillis = "tomillis", now

    /// Looks a function up by name, case-insensitively.
    init?(name: String) { self.init(rawValue: name.lowercased()) }

    /// Allowed argument counts (upper bound `Int.max` for variadic functions).
    var arity: ClosedRange<Int> {
        switch self {
        case .now: return 0...0
        case .ispresent, .isempty, .isblank, .strlen, .toupper, .tolower, .abs, .ceil, .floor, .log, .sqrt,
             .bin, .fromMillis, .toMillis:
            return 1...1
        case .trim, .ltrim, .rtrim: return 1...2
        case .strcontains, .pow, .datefloor, .dateceil: return 2...2
        case .substr: return 2...3
        case .replace: return 3...3
        case .coalesce, .concat, .greatest, .least: return 1...Int.max
        }
    }

    /// Human description of `arity` for error messages.
    var arityDescription: String {
        let r = arity
        if r.upperBound == Int.max { return "at least \(r.lowerBound) argument\(r.lowerBound == 1 ? "" : "s")" }
        if r.lowerBound == r.upperBound { return "\(r.lowerBound) argument\(r.lowerBound == 1 ? "" : "s")" }
        return "\(r.lowerBound) to \(r.upperBound) arguments"
    }

    /// Applies the function to evaluated arguments. `period` is the period literal of `bin`, `datefloor` and
    /// `dateceil`; `timestamp` is the row's `@timestamp` (for `bin`); `now` is the query's reference time.
    func apply(_ args: [QueryValue], period: TimePeriod?, timestamp: QueryValue, now: Int64) -> QueryValue {
        switch self {
        case .ispresent: return .bool(!args[0].isNull)
        case .coalesce: return args.first { !$0.isNull } ?? .null
        case .isempty:
            guard let s = args[0].stringValue else { return .bool(true) }
            return .bool(s.isEmpty)
        case .isblank:
            guard let s = args[0].stringValue else { return .bool(true) }
            return .bool(s.utf8.allSatisfy { $0 == 32 || $0 == 9 || $0 == 10 || $0 == 13 })
        case .strlen:
            guard let s = args[0].stringValue else { return .null }
            return .number(Double(s.unicodeScalars.count))
        case .toupper: return args[0].stringValue.map { .string($0.uppercased()) } ?? .null
        case .tolower: return args[0].stringValue.map { .string($0.lowercased()) } ?? .null
        case .trim, .ltrim, .rtrim:
            guard let s = args[0].stringValue else { return .null }
            let set: Set<Unicode.Scalar>
            if args.count > 1, let chars = args[1].stringValue { set = Set(chars.unicodeScalars) } else {
                set = [" ", "\t", "\n", "\r"]
            }
            var scalars = Array(s.unicodeScalars)[...]
            if self != .rtrim { while let f = scalars.first, set.contains(f) { scalars.removeFirst() } }
            if self != .ltrim { while let l = scalars.last, set.contains(l) { scalars.removeLast() } }
            var out = String.UnicodeScalarView()
            out.append(contentsOf: scalars)
            return .string(String(out))
        case .concat:
            var out = ""
            for a in args { out += a.stringValue ?? "" }
            return .string(out)
        case .substr:
            guard let s = args[0].stringValue, let startD = args[1].numericValue else { return .null }
            let scalars = Array(s.unicodeScalars)
            let start = Swift.max(0, Swift.min(scalars.count, Int(startD)))
            var end = scalars.count
            if args.count > 2 {
                guard let len = args[2].numericValue else { return .null }
                end = Swift.min(scalars.count, start + Swift.max(0, Int(len)))
            }
            var out = String.UnicodeScalarView()
            out.append(contentsOf: scalars[start..<end])
            return .string(String(out))
        case .replace:
            guard let s = args[0].stringValue, let search = args[1].stringValue,
                  let replacement = args[2].stringValue else { return .null }
            if search.isEmpty { return .string(s) }
            return .string(s.replacing(search, with: replacement))
        case .strcontains:
            guard let s = args[0].stringValue, let x = args[1].stringValue else { return .null }
            return .number(ByteSearch.contains(s, Array(x.utf8)) ? 1 : 0)
        case .abs: return numeric(args[0]) { Swift.abs($0) }
        case .ceil: return numeric(args[0]) { $0.rounded(.up) }
        case .floor: return numeric(args[0]) { $0.rounded(.down) }
        case .log: return numeric(args[0]) { naturalLog($0) }
        case .sqrt: return numeric(args[0]) { $0.squareRoot() }
        case .pow:
            guard let a = args[0].numericValue, let b = args[1].numericValue else { return .null }
            return .number(power(a, b))
        case .greatest, .least:
            var best: Double?
            for a in args {
                guard let v = a.numericValue else { continue }
                if let b = best { best = self == .greatest ? Swift.max(b, v) : Swift.min(b, v) } else { best = v }
            }
            return best.map { .number($0) } ?? .null
        case .bin:
            guard let p = period, let t = timestampMillis(timestamp) else { return .null }
            return .timestamp(p.floor(t))
        case .datefloor, .dateceil:
            guard let t = timestampMillis(args[0]), let p = period else { return .null }
            return .timestamp(self == .datefloor ? p.floor(t) : p.ceil(t))
        case .fromMillis:
            guard let v = args[0].numericValue, v.isFinite else { return .null }
            return .timestamp(Int64(v))
        case .toMillis:
            guard let t = timestampMillis(args[0]) else { return .null }
            return .number(Double(t))
        case .now: return .timestamp(now)
        }
    }

    private func numeric(_ v: QueryValue, _ f: (Double) -> Double) -> QueryValue {
        guard let d = v.numericValue else { return .null }
        return .number(f(d))
    }
}

/// Epoch milliseconds of a value used as a time: timestamps, numbers (milliseconds) and ISO-8601 strings.
func timestampMillis(_ v: QueryValue) -> Int64? {
    switch v {
    case .timestamp(let t): return t
    case .number(let d): return d.isFinite ? Int64(d) : nil
    case .string(let s): return QueryTime.parse(s) ?? QueryValue.parseNumber(s).map { Int64($0) }
    case .null, .bool: return nil
    }
}

private func naturalLog(_ x: Double) -> Double { log(x) }
private func power(_ a: Double, _ b: Double) -> Double { pow(a, b) }
