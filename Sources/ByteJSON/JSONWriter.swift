/// Writes JSON text into byte arrays. Output is always valid JSON and valid UTF-8.
///
/// Strings: `"` and `\` are escaped, control characters U+0000–U+001F become `\b \f \n \r \t` or `\u00XX`,
/// invalid UTF-8 input becomes U+FFFD; all other characters (including non-ASCII) are copied as UTF-8.
/// Numbers: integral values with magnitude below 2^53 are written without a fraction, other finite values in
/// the shortest form that reads back exactly, NaN and infinities as `null` (JSON has no spelling for them).
public enum JSONWriter {
    /// Appends `bytes` as a quoted, escaped JSON string.
    public static func appendString(_ bytes: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        if let base = bytes.baseAddress, bytes.count > 0 {
            appendEscaped(base.assumingMemoryBound(to: UInt8.self), 0, bytes.count, to: &out)
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Appends a byte array as a quoted, escaped JSON string.
    public static func appendString(_ bytes: [UInt8], to out: inout [UInt8]) {
        bytes.withUnsafeBytes { appendString($0, to: &out) }
    }

    /// Appends a Swift string as a quoted, escaped JSON string.
    public static func appendString(_ text: String, to out: inout [UInt8]) {
        var text = text
        text.withUTF8 { appendString(UnsafeRawBufferPointer($0), to: &out) }
    }

    /// Appends a number (see the type's notes on formatting).
    public static func appendNumber(_ value: Double, to out: inout [UInt8]) {
        guard value.isFinite else { out.append(contentsOf: "null".utf8); return }
        if abs(value) < 9_007_199_254_740_992, Double(Int64(value)) == value {
            if value == 0 && value.sign == .minus { out.append(contentsOf: "-0".utf8); return }
            out.append(contentsOf: String(Int64(value)).utf8)
            return
        }
        // Swift's description is the shortest round-tripping form: "0.1", "1e-05", "1.5e+300" — all valid JSON.
        out.append(contentsOf: value.description.utf8)
    }

    /// Appends the escaped body of `p[start..<end]` (without quotes).
    static func appendEscaped(_ p: UnsafePointer<UInt8>, _ start: Int, _ end: Int, to out: inout [UInt8]) {
        var i = start
        var runStart = start
        @inline(__always) func flush(_ upTo: Int, _ out: inout [UInt8]) {
            if runStart < upTo { out.append(contentsOf: UnsafeBufferPointer(start: p + runStart, count: upTo - runStart)) }
        }
        while i < end {
            let b = p[i]
            if b >= 0x20 && b < 0x80 && b != UInt8(ascii: "\"") && b != UInt8(ascii: "\\") { i += 1; continue }
            if b >= 0x80 {
                let n = UTF8Repair.sequenceLength(p, i, end)
                if n > 0 { i += n; continue }
                flush(i, &out)
                out.append(contentsOf: UTF8Repair.replacement)
                i += -n
                runStart = i
                continue
            }
            flush(i, &out)
            out.append(UInt8(ascii: "\\"))
            switch b {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\"))
            case 0x0A: out.append(UInt8(ascii: "n"))
            case 0x0D: out.append(UInt8(ascii: "r"))
            case 0x09: out.append(UInt8(ascii: "t"))
            case 0x08: out.append(UInt8(ascii: "b"))
            case 0x0C: out.append(UInt8(ascii: "f"))
            default:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(b >> 4)], hex[Int(b & 0xF)]])
            }
            i += 1
            runStart = i
        }
        flush(end, &out)
    }

    /// Appends the JSON text of a value (compact, members in their stored order).
    public static func append(_ value: JSONValue, to out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(let d, let text):
            if !text.isEmpty, isJSONNumberText(text) { out.append(contentsOf: text.utf8) } else { appendNumber(d, to: &out) }
        case .string(let s): appendString(s, to: &out)
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (k, e) in elements.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                append(e, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (k, m) in members.enumerated() {
                if k > 0 { out.append(UInt8(ascii: ",")) }
                appendString(m.key, to: &out)
                out.append(UInt8(ascii: ":"))
                append(m.value, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    static func isJSONNumberText(_ text: String) -> Bool {
        var t = text
        return t.withUTF8 { buf in
            guard let base = buf.baseAddress else { return false }
            return JSONNumberParsing.scan(base, 0, buf.count) == buf.count
        }
    }
}

extension JSONValue {
    /// Compact JSON text of this value (see ``JSONWriter``).
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        JSONWriter.append(self, to: &out)
        return out
    }
}
