/// Writes JSON string literals from raw bytes. Invalid UTF-8 becomes U+FFFD so every line we
/// write is valid JSON whatever the input was.
public enum JSONEscaping {
    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    /// Appends `"…"` with `raw` escaped. Returns true when invalid UTF-8 was replaced.
    @discardableResult
    public static func appendString(_ raw: UnsafeRawBufferPointer, to out: inout ByteBuffer) -> Bool {
        out.append(UInt8(ascii: "\""))
        let replaced = appendEscaped(raw, to: &out)
        out.append(UInt8(ascii: "\""))
        return replaced
    }

    public static func appendString(_ string: String, to out: inout ByteBuffer) {
        var s = string
        _ = s.withUTF8 { appendString(UnsafeRawBufferPointer($0), to: &out) }
    }

    /// Appends the escaped body of a JSON string (no quotes). Returns true when invalid UTF-8 was replaced.
    @discardableResult
    public static func appendEscaped(_ raw: UnsafeRawBufferPointer, to out: inout ByteBuffer) -> Bool {
        appendEscapedFast(raw, to: &out)
    }

    /// `\u00XX` for a control byte.
    static func appendControlEscape(_ c: UInt8, to out: inout ByteBuffer) {
        out.append(UInt8(ascii: "\\"))
        out.append(UInt8(ascii: "u"))
        out.append(48)
        out.append(48)
        out.append(hex[Int(c >> 4)])
        out.append(hex[Int(c & 15)])
    }

    /// Length of the valid multi-byte UTF-8 sequence starting at `i`, or 0 when invalid.
    @inline(__always)
    public static func validUTF8SequenceLength(_ raw: UnsafeRawBufferPointer, at i: Int) -> Int {
        let n = raw.count
        let c0 = raw[i]
        func cont(_ k: Int) -> Bool { i + k < n && raw[i + k] & 0xC0 == 0x80 }
        switch c0 {
        case 0xC2...0xDF:
            return cont(1) ? 2 : 0
        case 0xE0...0xEF:
            guard cont(1), cont(2) else { return 0 }
            let c1 = raw[i + 1]
            if c0 == 0xE0 && c1 < 0xA0 { return 0 }      // overlong
            if c0 == 0xED && c1 >= 0xA0 { return 0 }     // surrogates
            return 3
        case 0xF0...0xF4:
            guard cont(1), cont(2), cont(3) else { return 0 }
            let c1 = raw[i + 1]
            if c0 == 0xF0 && c1 < 0x90 { return 0 }
            if c0 == 0xF4 && c1 >= 0x90 { return 0 }
            return 4
        default:
            return 0
        }
    }

    /// Whether `raw` is entirely valid UTF-8.
    public static func isValidUTF8(_ raw: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = raw.count
        while i < n {
            if raw[i] < 0x80 { i += 1; continue }
            let length = validUTF8SequenceLength(raw, at: i)
            if length == 0 { return false }
            i += length
        }
        return true
    }
}
