import TrailwatchCore
/// A time period written as `<integer><unit>`, e.g. `5m`, `1h`, `30s`, `2days`, `1mo`.
public struct TimePeriod: Sendable, Hashable, CustomStringConvertible {
    /// Calendar unit of a period. Fixed-length units convert to milliseconds; months, quarters and years
    /// follow the UTC calendar.
    public enum Unit: String, Sendable, Hashable {
        case millisecond = "ms", second = "s", minute = "m", hour = "h", day = "d", week = "w"
        case month = "mo", quarter = "q", year = "y"

        /// Milliseconds in one unit, `nil` for calendar units of varying length.
        public var fixedMilliseconds: Int64? {
            switch self {
            case .millisecond: return 1
            case .second: return 1000
            case .minute: return 60_000
            case .hour: return 3_600_000
            case .day: return 86_400_000
            case .week: return 7 * 86_400_000
            case .month, .quarter, .year: return nil
            }
        }

        /// Accepts every spelling Logs Insights documents, singular or plural, case-insensitive.
        public init?(spelling: String) {
            var s = spelling.lowercased()
            switch s {
            case "ms", "msec", "msecs", "millisecond", "milliseconds": self = .millisecond; return
            default: break
            }
            if s.count > 1, s.hasSuffix("s"), s != "ms" { s.removeLast() }
            switch s {
            case "s", "sec", "second": self = .second
            case "m", "min", "minute": self = .minute
            case "h", "hr", "hour": self = .hour
            case "d", "day": self = .day
            case "w", "week": self = .week
            case "mo", "mon", "month": self = .month
            case "q", "qtr", "quarter": self = .quarter
            case "y", "yr", "year": self = .year
            default: return nil
            }
        }
    }

    public var count: Int64
    public var unit: Unit

    public init(count: Int64, unit: Unit) {
        self.count = count
        self.unit = unit
    }

    /// Length in milliseconds for fixed-length periods (everything but months, quarters and years).
    public var fixedMilliseconds: Int64? { unit.fixedMilliseconds.map { $0 * count } }

    /// Approximate length in milliseconds (a month counts 30 days) — used when a period is used as a number.
    public var approximateMilliseconds: Int64 {
        if let ms = fixedMilliseconds { return ms }
        switch unit {
        case .month: return count * 30 * 86_400_000
        case .quarter: return count * 91 * 86_400_000
        default: return count * 365 * 86_400_000
        }
    }

    public var description: String { "\(count)\(unit.rawValue)" }

    /// The longest period a query may write: 10,000 years (so period arithmetic cannot overflow).
    public static let maximumMilliseconds: Int64 = 10_000 * 366 * 86_400_000

    /// A period of `count` units when it is at least one unit and at most ``maximumMilliseconds``;
    /// nil otherwise (`0s`, `99999999999y`).
    public static func checked(count: Int64, unit: Unit) -> TimePeriod? {
        guard count >= 1 else { return nil }
        let perUnit = unit.fixedMilliseconds ?? (unit == .month ? 31 : unit == .quarter ? 92 : 366) * 86_400_000
        let (total, overflow) = count.multipliedReportingOverflow(by: perUnit)
        guard !overflow, total <= maximumMilliseconds else { return nil }
        return TimePeriod(count: count, unit: unit)
    }

    /// Start of the period containing `t`. Fixed periods are aligned to the Unix epoch, except weeks, which
    /// start on Monday 00:00 UTC; months, quarters and years are aligned to January of year 0.
    public func floor(_ t: Int64) -> Int64 {
        if unit == .week {
            let mondayOffset: Int64 = 4 * 86_400_000 // 1970-01-05 was a Monday
            let len = 7 * 86_400_000 * count
            return QueryTime.floorDiv(t - mondayOffset, len) * len + mondayOffset
        }
        if let len = fixedMilliseconds { return QueryTime.floorDiv(t, len) * len }
        let months: Int64 = unit == .month ? count : unit == .quarter ? 3 * count : 12 * count
        let days = QueryTime.floorDiv(t, 86_400_000)
        let (y, m, _) = QueryTime.civil(fromDays: days)
        let index = y * 12 + (m - 1)
        let start = QueryTime.floorDiv(index, months) * months
        return QueryTime.days(year: QueryTime.floorDiv(start, 12), month: start - QueryTime.floorDiv(start, 12) * 12 + 1, day: 1) * 86_400_000
    }

    /// End of the period containing `t` (`t` itself when it is already on a boundary).
    public func ceil(_ t: Int64) -> Int64 {
        let start = floor(t)
        if start == t { return t }
        if let len = unit == .week ? 7 * 86_400_000 * count : fixedMilliseconds { return start + len }
        let months: Int64 = unit == .month ? count : unit == .quarter ? 3 * count : 12 * count
        let (y, m, _) = QueryTime.civil(fromDays: QueryTime.floorDiv(start, 86_400_000))
        let index = y * 12 + (m - 1) + months
        return QueryTime.days(year: QueryTime.floorDiv(index, 12), month: index - QueryTime.floorDiv(index, 12) * 12 + 1, day: 1) * 86_400_000
    }
}

/// Pure calendar arithmetic on epoch milliseconds (UTC, proleptic Gregorian).
public enum QueryTime {
    /// The times queries work with: the years 0001 to 9999 (UTC). Results outside are null.
    public static let validRange: ClosedRange<Int64> = -62_135_596_800_000...253_402_300_799_999

    /// `.timestamp(t)` when `t` lies within ``validRange``, else `.null`.
    static func checkedTimestamp(_ t: Int64) -> QueryValue { validRange.contains(t) ? .timestamp(t) : .null }

    @inlinable static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        let q = a / b
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
    }

    /// Days since 1970-01-01 for a civil date (shared with the rest of trailwatch).
    static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        Int64(Timestamps.daysFromCivil(year: Int(year), month: Int(month), day: Int(day)))
    }

    /// Civil date for days since 1970-01-01.
    static func civil(fromDays z0: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let (y, m, d) = Timestamps.civilFromDays(Int(z0))
        return (Int64(y), Int64(m), Int64(d))
    }

    /// `yyyy-MM-dd HH:mm:ss.SSS` in UTC — the format Logs Insights uses for `@timestamp` in results.
    public static func format(milliseconds t: Int64) -> String {
        let days = floorDiv(t, 86_400_000)
        var rest = t - days * 86_400_000
        let (y, m, d) = civil(fromDays: days)
        let h = rest / 3_600_000; rest -= h * 3_600_000
        let mi = rest / 60_000; rest -= mi * 60_000
        let s = rest / 1000
        let ms = rest - s * 1000
        func pad(_ v: Int64, _ width: Int) -> String {
            let text = String(v)
            return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2)) \(pad(h, 2)):\(pad(mi, 2)):\(pad(s, 2)).\(pad(ms, 3))"
    }

    /// Parses an ISO-8601-like date-time: `yyyy-MM-dd`, optionally followed by `T` or a space and
    /// `HH:mm[:ss[.fraction]]`, optionally followed by `Z` or `±HH[:]mm`. Without a zone the time is UTC.
    /// Returns epoch milliseconds, or nil when the text is not such a date.
    public static func parse(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        var i = 0
        func number(_ width: Int) -> Int64? {
            guard i + width <= b.count else { return nil }
            var v: Int64 = 0
            for k in i..<(i + width) {
                guard b[k] >= 48, b[k] <= 57 else { return nil }
                v = v * 10 + Int64(b[k] - 48)
            }
            i += width
            return v
        }
        func expect(_ c: Character) -> Bool {
            guard i < b.count, b[i] == c.asciiValue! else { return false }
            i += 1
            return true
        }
        guard let y = number(4), expect("-"), let mo = number(2), expect("-"), let d = number(2),
              (1...12).contains(mo), (1...31).contains(d) else { return nil }
        var ms = days(year: y, month: mo, day: d) * 86_400_000
        if i == b.count { return ms }
        guard b[i] == UInt8(ascii: "T") || b[i] == UInt8(ascii: " ") else { return nil }
        i += 1
        guard let h = number(2), expect(":"), let mi = number(2), h < 24, mi < 60 else { return nil }
        ms += h * 3_600_000 + mi * 60_000
        if i < b.count, b[i] == UInt8(ascii: ":") {
            i += 1
            guard let s = number(2), s < 61 else { return nil }
            ms += s * 1000
            if i < b.count, b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: ",") {
                i += 1
                var scale: Int64 = 100
                var digits = 0
                while i < b.count, b[i] >= 48, b[i] <= 57 {
                    ms += Int64(b[i] - 48) * scale
                    scale /= 10
                    digits += 1
                    i += 1
                }
                if digits == 0 { return nil }
            }
        }
        if i == b.count { return ms }
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") { return i + 1 == b.count ? ms : nil }
        guard b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") else { return nil }
        let sign: Int64 = b[i] == UInt8(ascii: "+") ? 1 : -1
        i += 1
        guard let oh = number(2) else { return nil }
        _ = expect(":")
        guard let om = number(2), i == b.count else { return nil }
        return ms - sign * (oh * 3_600_000 + om * 60_000)
    }
}
