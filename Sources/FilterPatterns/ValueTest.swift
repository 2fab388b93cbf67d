import ByteJSON

/// A string literal from a pattern with optional `*` wildcards at its start and/or end.
///
/// A `*` anywhere else is a literal character (AWS's 2020 documentation: `Ev*ent` only matches `Ev*ent`).
struct StringGlob: Sendable, Equatable {
    let text: [UInt8]
    let leadingStar: Bool
    let trailingStar: Bool

    init(_ raw: [UInt8]) {
        var body = raw[...]
        var lead = false
        var trail = false
        if body.first == UInt8(ascii: "*") { lead = true; body = body.dropFirst() }
        if body.last == UInt8(ascii: "*") { trail = true; body = body.dropLast() }
        text = Array(body)
        leadingStar = lead
        trailingStar = trail
    }

    var hasWildcard: Bool { leadingStar || trailingStar }

    func matches(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        let n = text.count
        let len = end - start
        if len < n { return false }
        return text.withUnsafeBufferPointer { t -> Bool in
            @inline(__always) func equal(at offset: Int) -> Bool {
                var k = 0
                while k < n { if t[k] != p[offset + k] { return false }; k += 1 }
                return true
            }
            switch (leadingStar, trailingStar) {
            case (false, false): return len == n && equal(at: start)
            case (false, true): return equal(at: start)
            case (true, false): return equal(at: end - n)
            case (true, true): return n == 0 || ByteSearch.find(text, in: p, start, end) != nil
            }
        }
    }
}

/// Comparison operators of JSON and space-delimited conditions.
enum ComparisonOperator: Sendable, Equatable {
    case equal, notEqual, less, greater, lessOrEqual, greaterOrEqual

    func compare(_ a: Double, _ b: Double) -> Bool {
        switch self {
        case .equal: return a == b
        case .notEqual: return a != b
        case .less: return a < b
        case .greater: return a > b
        case .lessOrEqual: return a <= b
        case .greaterOrEqual: return a >= b
        }
    }
}

/// The right-hand side of a comparison.
enum ValueLiteral: Sendable {
    /// A quoted or bare string (possibly with `*` wildcards). `number` is its numeric value when it has no
    /// wildcard and reads as a number, so `"404"` can compare equal to a JSON number 404.
    case glob(StringGlob, number: Double?)
    /// A bare numeric literal (`400`, `1e-3`, `+1000`).
    case number(Double, text: [UInt8])
    case regex(FilterRegex)
}

/// A view of the value a selector or field resolved to, borrowed from the event bytes.
enum ValueView {
    case missing
    case null
    case bool(Bool)
    /// A JSON number: its text.
    case number(UnsafePointer<UInt8>, Int, Int)
    /// A JSON string or a space-delimited field: decoded bytes.
    case string(UnsafePointer<UInt8>, Int, Int)
    case container
}

extension ValueLiteral {
    /// Equality of a JSON value with this literal (the `=` of JSON patterns; see docs/filter-patterns.md).
    func jsonEquals(_ v: ValueView) -> Bool {
        switch (self, v) {
        case (.number(let x, _), .number(let p, let s, let e)):
            guard let d = JSONNumberParsing.parseDouble(p, s, e) else { return false }
            return d == x
        case (.number, _):
            return false
        case (.glob(let g, let n), .number(let p, let s, let e)):
            if let n { return JSONNumberParsing.parseDouble(p, s, e) == n }
            return g.matches(p, s, e)
        case (.glob(let g, _), .string(let p, let s, let e)):
            return g.matches(p, s, e)
        case (.regex(let r), .number(let p, let s, let e)), (.regex(let r), .string(let p, let s, let e)):
            return r.search(p, s, e)
        default:
            return false
        }
    }

    /// A JSON comparison. `!=` holds only for a present string or number that is not equal; ordering operators
    /// need a JSON number and a numeric literal.
    func jsonCompare(_ op: ComparisonOperator, _ v: ValueView) -> Bool {
        switch op {
        case .equal:
            return jsonEquals(v)
        case .notEqual:
            switch v {
            case .number, .string: return !jsonEquals(v)
            default: return false
            }
        default:
            guard case .number(let x, _) = self, case .number(let p, let s, let e) = v,
                  let d = JSONNumberParsing.parseDouble(p, s, e) else { return false }
            return op.compare(d, x)
        }
    }

    /// A space-delimited field comparison; fields are text, compared numerically when both sides are numbers.
    func fieldCompare(_ op: ComparisonOperator, _ p: UnsafePointer<UInt8>, _ s: Int, _ e: Int) -> Bool {
        switch self {
        case .number(let x, let text):
            if let d = JSONNumberParsing.parseDouble(p, s, e, lenient: true) { return op.compare(d, x) }
            switch op {
            case .equal: return StringGlob(text).matches(p, s, e)
            case .notEqual: return !StringGlob(text).matches(p, s, e)
            default: return false
            }
        case .glob(let g, _):
            switch op {
            case .equal: return g.matches(p, s, e)
            case .notEqual: return !g.matches(p, s, e)
            default: return false
            }
        case .regex(let r):
            switch op {
            case .equal: return r.search(p, s, e)
            case .notEqual: return !r.search(p, s, e)
            default: return false
            }
        }
    }
}
