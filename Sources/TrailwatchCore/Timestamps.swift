/// Calendar arithmetic for UTC timestamps without Foundation (hot paths format millions of them).
public enum Timestamps {
    /// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
    public static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    /// (year, month, day) for days since 1970-01-01.
    public static func civilFromDays(_ days: Int) -> (year: Int, month: Int, day: Int) {
        let z = days + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }

    /// Appends `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
    public static func appendISO8601(_ ms: Int64, to out: inout ByteBuffer) {
        let millis = Int(((ms % 1000) + 1000) % 1000)
        let seconds = Int((ms - Int64(millis)) / 1000)
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secOfDay = seconds - days * 86400
        let (y, mo, d) = civilFromDays(days)
        func two(_ v: Int) { out.append(UInt8(48 + v / 10)); out.append(UInt8(48 + v % 10)) }
        let year = Swift.max(0, Swift.min(9999, y))
        out.append(UInt8(48 + year / 1000)); out.append(UInt8(48 + (year / 100) % 10)); two(year % 100)
        out.append(UInt8(ascii: "-")); two(mo); out.append(UInt8(ascii: "-")); two(d)
        out.append(UInt8(ascii: "T")); two(secOfDay / 3600); out.append(UInt8(ascii: ":"))
        two((secOfDay / 60) % 60); out.append(UInt8(ascii: ":")); two(secOfDay % 60)
        out.append(UInt8(ascii: ".")); out.append(UInt8(48 + millis / 100)); two(millis % 100)
        out.append(UInt8(ascii: "Z"))
    }

    public static func iso8601(_ ms: Int64) -> String {
        var b = ByteBuffer(reservingCapacity: 24)
        appendISO8601(ms, to: &b)
        return String(decoding: b.bytes, as: UTF8.self)
    }

    /// Parses RFC 3339 / ISO-8601 (`2026-11-24T10:00:00Z`, fractional seconds, `+hh:mm` offsets,
    /// a space instead of `T`). Returns milliseconds since the epoch, or nil.
    /// Reads the digits of a fraction of a second at `i` (any number of them; digits past the
    /// millisecond are ignored) and returns it in milliseconds, or nil when there is no digit.
    public static func parseFractionMillis(_ text: UnsafeRawBufferPointer, at i: inout Int) -> Int? {
        var millis = 0
        var scale = 100
        let start = i
        while i < text.count, text[i] >= 48, text[i] <= 57 {
            millis += Int(text[i] - 48) * scale
            scale /= 10
            i += 1
        }
        return i > start ? millis : nil
    }

    public static func parseISO8601(_ text: UnsafeRawBufferPointer) -> Int64? {
        var i = 0
        let n = text.count
        func digits(_ count: Int) -> Int? {
            guard i + count <= n else { return nil }
            var v = 0
            for k in 0..<count {
                let c = text[i + k]
                guard c >= 48 && c <= 57 else { return nil }
                v = v * 10 + Int(c - 48)
            }
            i += count
            return v
        }
        func expect(_ c: UInt8) -> Bool {
            guard i < n, text[i] == c else { return false }
            i += 1
            return true
        }
        guard let year = digits(4), expect(UInt8(ascii: "-")), let month = digits(2), expect(UInt8(ascii: "-")),
              let day = digits(2), (1...12).contains(month), (1...31).contains(day) else { return nil }
        guard i < n, text[i] == UInt8(ascii: "T") || text[i] == UInt8(ascii: "t") || text[i] == UInt8(ascii: " ") else { return nil }
        i += 1
        guard let hour = digits(2), expect(UInt8(ascii: ":")), let minute = digits(2), expect(UInt8(ascii: ":")),
              let second = digits(2), hour < 24, minute < 60, second <= 60 else { return nil }
        var millis = 0
        if i < n && (text[i] == UInt8(ascii: ".") || text[i] == UInt8(ascii: ",")) {
            i += 1
            guard let fraction = parseFractionMillis(text, at: &i) else { return nil }
            millis = fraction
        }
        var offsetSeconds = 0
        if i < n {
            let c = text[i]
            if c == UInt8(ascii: "Z") || c == UInt8(ascii: "z") {
                i += 1
            } else if c == UInt8(ascii: "+") || c == UInt8(ascii: "-") {
                i += 1
                guard let oh = digits(2) else { return nil }
                _ = expect(UInt8(ascii: ":"))
                guard let om = digits(2) else { return nil }
                offsetSeconds = (oh * 3600 + om * 60) * (c == UInt8(ascii: "+") ? 1 : -1)
            }
        }
        guard i == n else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = days * 86400 + hour * 3600 + minute * 60 + second - offsetSeconds
        let result = Int64(seconds) * 1000 + Int64(millis)
        // A leap second or an offset can carry 9999-12-31 into the year 10000 (or 0000-01-01 before
        // it), which has no four-digit form: such a time would not print as what was read (found by fuzzing).
        guard (Self.earliestISO8601Millis...Self.latestISO8601Millis).contains(result) else { return nil }
        return result
    }

    /// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: the times with a four-digit year.
    public static let earliestISO8601Millis: Int64 = -62_167_219_200_000
    public static let latestISO8601Millis: Int64 = 253_402_300_799_999

    public static func parseISO8601(_ text: String) -> Int64? {
        var copy = text
        return copy.withUTF8 { parseISO8601(UnsafeRawBufferPointer($0)) }
    }
}
