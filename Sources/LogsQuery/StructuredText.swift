/// The `logfmt` and `csv` modes of `parse`.
enum StructuredText {
    /// `key=value` pairs separated by spaces; values may be double-quoted with `\"` and `\\` escapes;
    /// a key without `=` is a flag with the value `true`. The first occurrence of a key wins.
    static func logfmt(_ text: String) -> [(String, String)] {
        let b = Array(text.utf8)
        var out: [(String, String)] = []
        var seen = Set<[UInt8]>()
        var i = 0
        func isSpace(_ c: UInt8) -> Bool { c == 32 || c == 9 || c == 10 || c == 13 }
        while i < b.count {
            while i < b.count, isSpace(b[i]) { i += 1 }
            let keyStart = i
            while i < b.count, !isSpace(b[i]), b[i] != UInt8(ascii: "="), b[i] != UInt8(ascii: "\"") { i += 1 }
            let key = Array(b[keyStart..<i])
            var value: [UInt8] = Array("true".utf8)
            if i < b.count, b[i] == UInt8(ascii: "=") {
                i += 1
                value = []
                if i < b.count, b[i] == UInt8(ascii: "\"") {
                    i += 1
                    while i < b.count, b[i] != UInt8(ascii: "\"") {
                        if b[i] == UInt8(ascii: "\\"), i + 1 < b.count {
                            let e = b[i + 1]
                            value.append(e == UInt8(ascii: "n") ? 10 : e == UInt8(ascii: "t") ? 9 : e)
                            i += 2
                            continue
                        }
                        value.append(b[i])
                        i += 1
                    }
                    i += 1
                } else {
                    while i < b.count, !isSpace(b[i]) { value.append(b[i]); i += 1 }
                }
            } else if i < b.count, b[i] == UInt8(ascii: "\"") {
                // A stray quote: skip the quoted text, it is no pair.
                i += 1
                while i < b.count, b[i] != UInt8(ascii: "\"") { i += 1 }
                i += 1
                continue
            }
            if key.isEmpty { continue }
            if seen.insert(key).inserted {
                out.append((String(decoding: key, as: UTF8.self), String(decoding: value, as: UTF8.self)))
            }
        }
        return out
    }

    /// One CSV record (RFC 4180): fields separated by `delimiter`, double-quoted fields may hold the
    /// delimiter and `""` for a quote. A line ending ends the record.
    static func csvRecord(_ text: String, delimiter: UInt8) -> [String] {
        let b = Array(text.utf8)
        var fields: [String] = []
        var current: [UInt8] = []
        var i = 0
        var quoted = false
        var fieldStart = true
        while i < b.count {
            let c = b[i]
            if quoted {
                if c == UInt8(ascii: "\"") {
                    if i + 1 < b.count, b[i + 1] == UInt8(ascii: "\"") { current.append(c); i += 2; continue }
                    quoted = false
                } else {
                    current.append(c)
                }
            } else if c == UInt8(ascii: "\""), fieldStart {
                quoted = true
            } else if c == delimiter {
                fields.append(String(decoding: current, as: UTF8.self))
                current = []
                fieldStart = true
                i += 1
                continue
            } else if c == 10 || c == 13 {
                break
            } else {
                current.append(c)
            }
            fieldStart = false
            i += 1
        }
        fields.append(String(decoding: current, as: UTF8.self))
        return fields
    }
}
