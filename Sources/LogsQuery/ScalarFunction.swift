import ByteJSON
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
    // IP addresses
    case isValidIp = "isvalidip", isValidIpV4 = "isvalidipv4", isValidIpV6 = "isvalidipv6"
    case isIpInSubnet = "isipinsubnet", isIpv4InSubnet = "isipv4insubnet", isIpv6InSubnet = "isipv6insubnet"
    // JSON
    case jsonParse = "jsonparse", jsonStringify = "jsonstringify"

    /// Looks a function up by name, case-insensitively.
    init?(name: String) { self.init(rawValue: name.lowercased()) }

    /// The name as the documentation spells it.
    public var spelling: String {
        switch self {
        case .fromMillis: "fromMillis"
        case .toMillis: "toMillis"
        case .isValidIp: "isValidIp"
        case .isValidIpV4: "isValidIpV4"
        case .isValidIpV6: "isValidIpV6"
        case .isIpInSubnet: "isIpInSubnet"
        case .isIpv4InSubnet: "isIpv4InSubnet"
        case .isIpv6InSubnet: "isIpv6InSubnet"
        case .jsonParse: "jsonParse"
        case .jsonStringify: "jsonStringify"
        default: rawValue
        }
    }

    /// Allowed argument counts (upper bound `Int.max` for variadic functions).
    var arity: ClosedRange<Int> {
        switch self {
        case .now: return 0...0
        case .ispresent, .isempty, .isblank, .strlen, .toupper, .tolower, .abs, .ceil, .floor, .log, .sqrt,
             .bin, .fromMillis, .toMillis, .isValidIp, .isValidIpV4, .isValidIpV6, .jsonParse, .jsonStringify:
            return 1...1
        case .trim, .ltrim, .rtrim: return 1...2
        case .strcontains, .pow, .datefloor, .dateceil, .isIpInSubnet, .isIpv4InSubnet, .isIpv6InSubnet: return 2...2
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

    /// Checks an argument written as a constant in the query: nil when it is fine, else what is wrong
    /// (the parser turns it into a located error). Values coming from the data are not errors: out of
    /// range they give null (see ``apply(_:period:timestamp:now:)``).
    func problem(withConstant value: QueryValue, at position: Int) -> String? {
        switch (self, position) {
        case (.substr, 1), (.substr, 2):
            let what = position == 1 ? "start" : "length"
            guard let d = value.numericValue, d.isFinite, d == d.rounded(), d >= 0, d <= Double(Int32.max) else {
                return "substr \(what) must be an integer from 0 to \(Int32.max), not \(value.stringValue ?? "null")"
            }
        case (.fromMillis, 0):
            guard let d = value.numericValue, d.isFinite, d > -1e18, d < 1e18, QueryTime.validRange.contains(Int64(d)) else {
                return "fromMillis: \(value.stringValue ?? "null") ms is outside the years 0001 to 9999"
            }
        case (.datefloor, 0), (.dateceil, 0), (.toMillis, 0):
            if timestampMillis(value) == nil {
                return "\(spelling): \(value.stringValue ?? "null") is not a time within the years 0001 to 9999"
            }
        case (.isIpInSubnet, 1), (.isIpv4InSubnet, 1), (.isIpv6InSubnet, 1):
            guard let text = value.stringValue, let subnet = IPSubnet(text) else {
                return "\(spelling): '\(value.stringValue ?? "null")' is not a subnet in CIDR notation (e.g. 10.0.0.0/8 or 2001:db8::/32)"
            }
            if self == .isIpv4InSubnet && subnet.isV6 { return "isIpv4InSubnet needs an IPv4 subnet, not \(text)" }
            if self == .isIpv6InSubnet && !subnet.isV6 { return "isIpv6InSubnet needs an IPv6 subnet, not \(text)" }
        default: break
        }
        return nil
    }

    /// Applies the function to evaluated arguments. `period` is the period literal of `bin`, `datefloor` and
    /// `dateceil`; `timestamp` is the row's `@timestamp` (for `bin`); `now` is the query's reference time.
    /// Never traps: every conversion is checked, and results that are not finite numbers or not times
    /// within the years 0001–9999 are null.
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
            guard let s = args[0].stringValue, let startD = args[1].numericValue, !startD.isNaN else { return .null }
            let scalars = Array(s.unicodeScalars)
            let start = clampedIndex(startD, upTo: scalars.count)
            var end = scalars.count
            if args.count > 2 {
                guard let len = args[2].numericValue, !len.isNaN else { return .null }
                end = start + clampedIndex(len, upTo: scalars.count - start)
            }
            var out = String.UnicodeScalarView()
            out.append(contentsOf: scalars[start..<end])
            return .string(String(out))
        case .replace:
            guard let s = args[0].stringValue, let search = args[1].stringValue,
                  let replacement = args[2].stringValue else { return .null }
            if search.isEmpty { return .string(s) }
            return .string(ByteReplace.replacing(s, search, with: replacement))
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
            return finite(power(a, b))
        case .greatest, .least:
            var best: Double?
            for a in args {
                guard let v = a.numericValue, !v.isNaN else { continue }
                if let b = best { best = self == .greatest ? Swift.max(b, v) : Swift.min(b, v) } else { best = v }
            }
            return best.map { .number($0) } ?? .null
        case .bin:
            guard let p = period, let t = timestampMillis(timestamp) else { return .null }
            return QueryTime.checkedTimestamp(p.floor(t))
        case .datefloor, .dateceil:
            guard let t = timestampMillis(args[0]), let p = period else { return .null }
            return QueryTime.checkedTimestamp(self == .datefloor ? p.floor(t) : p.ceil(t))
        case .fromMillis:
            guard let v = args[0].numericValue, v.isFinite, v > -1e18, v < 1e18 else { return .null }
            return QueryTime.checkedTimestamp(Int64(v))
        case .toMillis:
            guard let t = timestampMillis(args[0]) else { return .null }
            return .number(Double(t))
        case .now: return .timestamp(now)
        case .isValidIp:
            guard let s = args[0].stringValue else { return .bool(false) }
            return .bool(IPAddress(s) != nil)
        case .isValidIpV4:
            guard let s = args[0].stringValue else { return .bool(false) }
            return .bool(IPAddress(s).map { !$0.isV6 } ?? false)
        case .isValidIpV6:
            guard let s = args[0].stringValue else { return .bool(false) }
            return .bool(IPAddress(s)?.isV6 ?? false)
        case .isIpInSubnet, .isIpv4InSubnet, .isIpv6InSubnet:
            guard let s = args[0].stringValue, let address = IPAddress(s), let text = args[1].stringValue,
                  let subnet = IPSubnet(text) else { return .bool(false) }
            if self == .isIpv4InSubnet && (address.isV6 || subnet.isV6) { return .bool(false) }
            if self == .isIpv6InSubnet && (!address.isV6 || !subnet.isV6) { return .bool(false) }
            return .bool(subnet.contains(address))
        case .jsonParse:
            guard let s = args[0].stringValue, let parsed = try? JSONValue.parse(s) else {
                if case .json = args[0] { return args[0] }
                return .null
            }
            return QueryValue(json: parsed)
        case .jsonStringify:
            switch args[0] {
            case .null: return .null
            case .json(let j): return .string(String(decoding: j.serialized(), as: UTF8.self))
            case .string(let s):
                var out: [UInt8] = []
                JSONWriter.appendString(s, to: &out)
                return .string(String(decoding: out, as: UTF8.self))
            default: return .string(args[0].stringValue ?? "")
            }
        }
    }

    private func numeric(_ v: QueryValue, _ f: (Double) -> Double) -> QueryValue {
        guard let d = v.numericValue else { return .null }
        return finite(f(d))
    }
}

/// A finite number, or null (division by zero, `log(0)`, overflow).
@inline(__always) func finite(_ d: Double) -> QueryValue { d.isFinite ? .number(d) : .null }

/// A position or length from a number: negative gives 0, beyond `limit` gives `limit` (never traps).
func clampedIndex(_ d: Double, upTo limit: Int) -> Int {
    if d <= 0 { return 0 }
    if d >= Double(limit) { return limit }
    return Int(d)
}

extension QueryValue {
    /// The query value of a JSON value: objects and arrays stay structures, scalars become plain values.
    init(json: JSONValue) {
        switch json {
        case .null: self = .null
        case .bool(let b): self = .bool(b)
        case .number(let d, _): self = .number(d)
        case .string(let s): self = .string(s)
        case .array, .object: self = .json(json)
        }
    }
}

/// Epoch milliseconds of a value used as a time: timestamps, numbers (milliseconds) and ISO-8601 strings;
/// nil when it is none of these or lies outside the years 0001–9999.
func timestampMillis(_ v: QueryValue) -> Int64? {
    switch v {
    case .timestamp(let t): return QueryTime.validRange.contains(t) ? t : nil
    case .number(let d):
        guard d.isFinite, d > -1e18, d < 1e18 else { return nil }
        let t = Int64(d)
        return QueryTime.validRange.contains(t) ? t : nil
    case .string(let s):
        if let t = QueryTime.parse(s) { return QueryTime.validRange.contains(t) ? t : nil }
        return QueryValue.parseNumber(s).flatMap { timestampMillis(.number($0)) }
    case .null, .bool, .json: return nil
    }
}

/// Replacing every occurrence of a byte string (Swift's own `replacing` compares by Unicode canonical
/// equivalence; queries compare bytes).
enum ByteReplace {
    static func replacing(_ s: String, _ search: String, with replacement: String) -> String {
        let hay = Array(s.utf8), needle = Array(search.utf8), with = Array(replacement.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(hay.count)
        var i = 0
        hay.withUnsafeBufferPointer { h in
            while let at = ByteSearch.find(h, needle, from: i) {
                out += h[i..<at]
                out += with
                i = at + needle.count
            }
        }
        out += hay[i...]
        return String(decoding: out, as: UTF8.self)
    }
}

private func naturalLog(_ x: Double) -> Double { log(x) }
func power(_ a: Double, _ b: Double) -> Double { pow(a, b) }
