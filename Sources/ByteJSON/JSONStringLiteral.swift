/// JSON string literals for text built in Swift (replies, rendered events): one escaping rule for
/// every module that writes JSON by hand.
public enum JSONStringLiteral {
    /// `text` as a JSON string literal: quotes and backslashes escaped, control characters as
    /// `\n`, `\r`, `\t` or `\u00XX` (invalid UTF-8 cannot occur in a String).
    public static func quoted(_ text: String) -> String {
        var out = ""
        append(text, to: &out)
        return out
    }

    public static func append(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }
}
