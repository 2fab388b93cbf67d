/// A timestamp layout to parse event times from message bytes: `rfc3339`, `unix`, `unix_ms`,
/// or a strftime-style pattern (`%Y-%m-%d %H:%M:%S,%f`, `%d/%b/%Y:%H:%M:%S %z`, `%b %e %H:%M:%S`).
///
/// Supported directives: `%Y %y %m %d %e %H %M %S %f` (fraction, any number of digits), `%b`
/// (month name, three letters), `%z` (`Z`, `+hhmm`, `+hh:mm`), `%Z` (`UTC`, `GMT`, `Z`), `%T`
/// (= `%H:%M:%S`), `%F` (= `%Y-%m-%d`), `%s` (epoch seconds), `%%`. A space matches one or more
/// spaces. Formats without a year take the year of the reference time (the event's ingestion
/// time), or the year before when that would put the event more than a day in the future.
public struct TimestampFormat: Sendable, Hashable, CustomStringConvertible {
    enum Token: Sendable, Hashable {
        case literal(UInt8)
        case spaces
        case year4, year2, month, day, dayPadded, hour, minute, second, fraction, monthName, zone, zoneName, epochSeconds
    }

    enum Kind: Sendable, Hashable {
        case rfc3339, unixSeconds, unixMillis
        case pattern([Token])
    }

    let kind: Kind
    public let description: String

    /// The formats tried when a pipeline names none, in order.
    public static let defaults: [TimestampFormat] = [
        "rfc3339", "%d/%b/%Y:%H:%M:%S %z", "%Y-%m-%d %H:%M:%S,%f", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S",
        "%Y/%m/%d %H:%M:%S", "%b %e %H:%M:%S", "unix_ms", "unix",
    ].map { try! TimestampFormat($0) }

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    public init(_ text: String) throws(ParseError) {
        description = text
        switch text {
        case "rfc3339", "iso8601": kind = .rfc3339; return
        case "unix": kind = .unixSeconds; return
        case "unix_ms": kind = .unixMillis; return
        default: break
        }
        var tokens: [Token] = []
        let bytes = Array(text.utf8)
        var i = 0
        while i < bytes.count {
            let c = bytes[i]
            if c == UInt8(ascii: " ") {
                tokens.append(.spaces)
                while i < bytes.count && bytes[i] == UInt8(ascii: " ") { i += 1 }
                continue
            }
            guard c == UInt8(ascii: "%") else { tokens.append(.literal(c)); i += 1; continue }
            guard i + 1 < bytes.count else { throw ParseError(message: "'%' at the end of '\(text)'") }
            switch bytes[i + 1] {
            case UInt8(ascii: "Y"): tokens.append(.year4)
            case UInt8(ascii: "y"): tokens.append(.year2)
            case UInt8(ascii: "m"): tokens.append(.month)
            case UInt8(ascii: "d"): tokens.append(.day)
            case UInt8(ascii: "e"): tokens.append(.dayPadded)
            case UInt8(ascii: "H"): tokens.append(.hour)
            case UInt8(ascii: "M"): tokens.append(.minute)
            case UInt8(ascii: "S"): tokens.append(.second)
            case UInt8(ascii: "f"): tokens.append(.fraction)
            case UInt8(ascii: "b"): tokens.append(.monthName)
            case UInt8(ascii: "z"): tokens.append(.zone)
            case UInt8(ascii: "Z"): tokens.append(.zoneName)
            case UInt8(ascii: "s"): tokens.append(.epochSeconds)
            case UInt8(ascii: "T"): tokens += [.hour, .literal(UInt8(ascii: ":")), .minute, .literal(UInt8(ascii: ":")), .second]
            case UInt8(ascii: "F"): tokens += [.year4, .literal(UInt8(ascii: "-")), .month, .literal(UInt8(ascii: "-")), .day]
            case UInt8(ascii: "%"): tokens.append(.literal(UInt8(ascii: "%")))
            default:
                throw ParseError(message: "unknown directive '%\(Character(Unicode.Scalar(bytes[i + 1])))' in '\(text)'")
            }
            i += 2
        }
        kind = .pattern(tokens)
    }

    /// Milliseconds since the epoch, or nil when `text` does not have this layout (the whole
    /// text must be consumed). `zoneOffsetSeconds` applies when the layout has no zone.
    public func parse(_ text: UnsafeRawBufferPointer, zoneOffsetSeconds: Int = 0, referenceMillis: Int64 = 0) -> Int64? {
        switch kind {
        case .rfc3339:
            return Timestamps.parseISO8601(text)
        case .unixSeconds, .unixMillis:
            guard let value = Self.parseNumber(text) else { return nil }
            let ms = kind == .unixSeconds ? value * 1000 : value
            guard ms.isFinite, abs(ms) < 1e15 else { return nil }
            return Int64(ms.rounded())
        case .pattern(let tokens):
            return parsePattern(tokens, text, zoneOffsetSeconds: zoneOffsetSeconds, referenceMillis: referenceMillis)
        }
    }

    private static let monthNames: [[UInt8]] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"].map { Array($0.utf8) }

    private func parsePattern(_ tokens: [Token], _ text: UnsafeRawBufferPointer, zoneOffsetSeconds: Int, referenceMillis: Int64) -> Int64? {
        var i = 0
        let n = text.count
        var year: Int?
        var month = 1, day = 1, hour = 0, minute = 0, second = 0, millis = 0
        var offset: Int?
        var epoch: Int?
        func digits(min: Int, max: Int) -> Int? {
            var v = 0
            var count = 0
            while count < max, i < n, text[i] >= 48, text[i] <= 57 {
                v = v * 10 + Int(text[i] - 48)
                i += 1
                count += 1
            }
            return count >= min ? v : nil
        }
        for token in tokens {
            switch token {
            case .literal(let c):
                guard i < n, text[i] == c else { return nil }
                i += 1
            case .spaces:
                guard i < n, text[i] == UInt8(ascii: " ") else { return nil }
                while i < n && text[i] == UInt8(ascii: " ") { i += 1 }
            case .year4: guard let v = digits(min: 4, max: 4) else { return nil }; year = v
            case .year2: guard let v = digits(min: 2, max: 2) else { return nil }; year = 2000 + v
            case .month: guard let v = digits(min: 1, max: 2), (1...12).contains(v) else { return nil }; month = v
            case .day: guard let v = digits(min: 1, max: 2), (1...31).contains(v) else { return nil }; day = v
            case .dayPadded:
                while i < n && text[i] == UInt8(ascii: " ") { i += 1 }
                guard let v = digits(min: 1, max: 2), (1...31).contains(v) else { return nil }
                day = v
            case .hour: guard let v = digits(min: 1, max: 2), v < 24 else { return nil }; hour = v
            case .minute: guard let v = digits(min: 2, max: 2), v < 60 else { return nil }; minute = v
            case .second: guard let v = digits(min: 2, max: 2), v <= 60 else { return nil }; second = v
            case .fraction:
                guard let fraction = Timestamps.parseFractionMillis(text, at: &i) else { return nil }
                millis = fraction
            case .monthName:
                guard i + 3 <= n else { return nil }
                let name = (0..<3).map { text[i + $0] | 0x20 }
                guard let m = Self.monthNames.firstIndex(of: name) else { return nil }
                month = m + 1
                i += 3
            case .zone, .zoneName:
                guard i < n else { return nil }
                if text[i] == UInt8(ascii: "Z") { offset = 0; i += 1; continue }
                if token == .zoneName {
                    guard i + 3 <= n else { return nil }
                    let name = (0..<3).map { text[i + $0] }
                    guard name == Array("UTC".utf8) || name == Array("GMT".utf8) else { return nil }
                    offset = 0
                    i += 3
                    continue
                }
                let sign = text[i]
                guard sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") else { return nil }
                i += 1
                guard let hh = digits(min: 2, max: 2) else { return nil }
                if i < n && text[i] == UInt8(ascii: ":") { i += 1 }
                guard let mm = digits(min: 2, max: 2) else { return nil }
                offset = (hh * 3600 + mm * 60) * (sign == UInt8(ascii: "+") ? 1 : -1)
            case .epochSeconds:
                guard let v = digits(min: 1, max: 12) else { return nil }
                epoch = v
            }
        }
        guard i == n else { return nil }
        if let epoch { return Int64(epoch) * 1000 + Int64(millis) }
        let zone = offset ?? zoneOffsetSeconds
        func millisFor(_ y: Int) -> Int64 {
            let days = Timestamps.daysFromCivil(year: y, month: month, day: day)
            return Int64(days * 86400 + hour * 3600 + minute * 60 + second - zone) * 1000 + Int64(millis)
        }
        if let year { return millisFor(year) }
        // No year in the layout: the reference year, unless that lands over a day in the future.
        let referenceYear = Timestamps.civilFromDays(Int(referenceMillis / 86_400_000)).year
        let candidate = millisFor(referenceYear)
        return candidate > referenceMillis + 86_400_000 ? millisFor(referenceYear - 1) : candidate
    }

    static func parseNumber(_ text: UnsafeRawBufferPointer) -> Double? {
        guard !text.isEmpty, text.count < 32 else { return nil }
        var value = 0.0
        var i = 0
        var negative = false
        if text[0] == UInt8(ascii: "-") { negative = true; i = 1 }
        var any = false
        while i < text.count, text[i] >= 48, text[i] <= 57 { value = value * 10 + Double(text[i] - 48); i += 1; any = true }
        if i < text.count, text[i] == UInt8(ascii: ".") {
            i += 1
            var scale = 0.1
            while i < text.count, text[i] >= 48, text[i] <= 57 { value += Double(text[i] - 48) * scale; scale /= 10; i += 1; any = true }
        }
        guard any, i == text.count else { return nil }
        return negative ? -value : value
    }
}
