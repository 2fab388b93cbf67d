/// Decoding of JSON string contents (the bytes between the quotes) into valid UTF-8.
public enum JSONStringDecoding {
    /// Appends the decoded contents of a JSON string body `p[start..<end]` (no surrogate quotes) to `out`.
    ///
    /// Escapes are resolved (`\n`, `\u00e9`, surrogate pairs); lone surrogates, malformed escapes and invalid
    /// UTF-8 bytes become U+FFFD, so the result is always valid UTF-8. Never traps.
    public static func appendDecoded(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, to out: inout [UInt8]) {
        var i = start
        var runStart = start
        while i < end {
            if p[i] != UInt8(ascii: "\\") { i += 1; continue }
            if runStart < i { UTF8Repair.appendRepaired(p, runStart, i, to: &out) }
            i += 1
            guard i < end else { out.append(contentsOf: UTF8Repair.replacement); runStart = end; break }
            let c = p[i]
            i += 1
            switch c {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case UInt8(ascii: "/"): out.append(UInt8(ascii: "/"))
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                guard let unit = hex4(p, i, end) else { out.append(contentsOf: UTF8Repair.replacement); break }
                i += 4
                var scalar = UInt32(unit)
                if unit >= 0xD800 && unit <= 0xDBFF {
                    // High surrogate: needs a following \uDC00-\uDFFF.
                    if i + 1 < end, p[i] == UInt8(ascii: "\\"), p[i + 1] == UInt8(ascii: "u"),
                       let low = hex4(p, i + 2, end), low >= 0xDC00, low <= 0xDFFF {
                        i += 6
                        scalar = 0x10000 + ((UInt32(unit) - 0xD800) << 10) + (UInt32(low) - 0xDC00)
                    } else {
                        scalar = 0xFFFD
                    }
                } else if unit >= 0xDC00 && unit <= 0xDFFF {
                    scalar = 0xFFFD
                }
                appendScalar(scalar, to: &out)
            default:
                out.append(contentsOf: UTF8Repair.replacement)
            }
            runStart = i
        }
        if runStart < end { UTF8Repair.appendRepaired(p, runStart, end, to: &out) }
    }

    /// Decodes a JSON string body into a `String` (see ``appendDecoded(_:_:_:to:)``).
    public static func decode(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(end - start)
        appendDecoded(p, start, end, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    @inlinable
    static func hexValue(_ b: UInt8) -> UInt16? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return UInt16(b - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return UInt16(b - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return UInt16(b - UInt8(ascii: "A") + 10)
        default: return nil
        }
    }

    @inlinable
    static func hex4(_ p: UnsafePointer<UInt8>, _ i: Int, _ end: Int) -> UInt16? {
        guard i + 4 <= end else { return nil }
        var v: UInt16 = 0
        for k in 0..<4 {
            guard let h = hexValue(p[i + k]) else { return nil }
            v = v << 4 | h
        }
        return v
    }

    static func appendScalar(_ s: UInt32, to out: inout [UInt8]) {
        switch s {
        case 0..<0x80:
            out.append(UInt8(s))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | (s >> 6)))
            out.append(UInt8(0x80 | (s & 0x3F)))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | (s >> 12)))
            out.append(UInt8(0x80 | ((s >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (s & 0x3F)))
        default:
            out.append(UInt8(0xF0 | (s >> 18)))
            out.append(UInt8(0x80 | ((s >> 12) & 0x3F)))
            out.append(UInt8(0x80 | ((s >> 6) & 0x3F)))
            out.append(UInt8(0x80 | (s & 0x3F)))
        }
    }
}
