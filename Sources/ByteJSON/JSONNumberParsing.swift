/// Conversion of JSON number text to `Double` without Foundation.
public enum JSONNumberParsing {
    /// Scans a JSON number starting at `p[i]` (grammar `-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`) and returns
    /// the index just past it, or nil when the text there is not a JSON number.
    @inlinable
    public static func scan(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int? {
        var i = start
        if i < end && p[i] == UInt8(ascii: "-") { i += 1 }
        guard i < end else { return nil }
        if p[i] == UInt8(ascii: "0") {
            i += 1
        } else if p[i] >= UInt8(ascii: "1") && p[i] <= UInt8(ascii: "9") {
            i += 1
            while i < end && isDigit(p[i]) { i += 1 }
        } else {
            return nil
        }
        if i < end && p[i] == UInt8(ascii: ".") {
            i += 1
            guard i < end && isDigit(p[i]) else { return nil }
            while i < end && isDigit(p[i]) { i += 1 }
        }
        if i < end && (p[i] == UInt8(ascii: "e") || p[i] == UInt8(ascii: "E")) {
            i += 1
            if i < end && (p[i] == UInt8(ascii: "+") || p[i] == UInt8(ascii: "-")) { i += 1 }
            guard i < end && isDigit(p[i]) else { return nil }
            while i < end && isDigit(p[i]) { i += 1 }
        }
        return i
    }

    @inlinable
    static func isDigit(_ b: UInt8) -> Bool { b &- UInt8(ascii: "0") < 10 }

    @usableFromInline
    static let exactPowersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
        1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ]

    /// The value of the number text `p[start..<end]`, correctly rounded, or nil when the text is not a number.
    ///
    /// Accepts the JSON grammar and, when `lenient` is true, also a leading `+`, a leading `.`/trailing `.` and
    /// leading zeros (the forms filter patterns and space-delimited fields allow, e.g. `+1000`, `007`).
    /// Short decimals take an exact fast path; everything else goes through the standard library's parser.
    public static func parseDouble(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, lenient: Bool = false) -> Double? {
        guard start < end else { return nil }
        var i = start
        var negative = false
        if p[i] == UInt8(ascii: "-") { negative = true; i += 1 }
        else if lenient && p[i] == UInt8(ascii: "+") { i += 1 }
        if !lenient {
            guard scan(p, start, end) == end else { return nil }
        }
        // Fast path: up to 19 significant digits and a small decimal exponent (Clinger).
        var mantissa: UInt64 = 0
        var digits = 0
        var fractionDigits = 0
        var sawDigit = false
        var sawDot = false
        var j = i
        while j < end {
            let b = p[j]
            if isDigit(b) {
                sawDigit = true
                if digits < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(b &- 48)
                    if mantissa != 0 { digits += 1 }
                    if sawDot { fractionDigits += 1 }
                } else {
                    return slowParse(p, start, end, lenient: lenient)
                }
            } else if b == UInt8(ascii: ".") && !sawDot {
                sawDot = true
            } else {
                break
            }
            j += 1
        }
        guard sawDigit else { return nil }
        var exponent = -fractionDigits
        if j < end {
            guard p[j] == UInt8(ascii: "e") || p[j] == UInt8(ascii: "E") else { return nil }
            j += 1
            var expNegative = false
            if j < end && (p[j] == UInt8(ascii: "+") || p[j] == UInt8(ascii: "-")) {
                expNegative = p[j] == UInt8(ascii: "-"); j += 1
            }
            guard j < end else { return nil }
            var e = 0
            while j < end {
                guard isDigit(p[j]) else { return nil }
                if e < 100_000 { e = e * 10 + Int(p[j] &- 48) }
                j += 1
            }
            exponent += expNegative ? -e : e
        }
        if mantissa == 0 { return negative ? -0.0 : 0.0 }
        if mantissa <= (1 << 53) && exponent >= -22 && exponent <= 22 {
            var v = Double(mantissa)
            if exponent < 0 { v /= exactPowersOfTen[-exponent] } else { v *= exactPowersOfTen[exponent] }
            return negative ? -v : v
        }
        return slowParse(p, start, end, lenient: lenient)
    }

    static func slowParse(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, lenient: Bool) -> Double? {
        let text = String(decoding: UnsafeBufferPointer(start: p + start, count: end - start), as: UTF8.self)
        // The standard library accepts "inf"/"nan"/hex forms; the byte grammar was checked above for JSON, and
        // for lenient input we only get here with decimal digits, a dot, a sign and an exponent.
        for u in text.utf8 where !(isDigit(u) || u == 0x2E || u == 0x2B || u == 0x2D || u == 0x65 || u == 0x45) {
            return nil
        }
        return Double(text)
    }

    /// Convenience over a buffer.
    public static func parseDouble(_ bytes: UnsafeRawBufferPointer, lenient: Bool = false) -> Double? {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return nil }
        return parseDouble(base.assumingMemoryBound(to: UInt8.self), 0, bytes.count, lenient: lenient)
    }
}
