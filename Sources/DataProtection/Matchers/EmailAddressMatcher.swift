/// `EmailAddress`: local@domain.tld (RFC 5321 shapes people write: dot-atoms, no quoted local parts).
/// Found from each `@`: the local part grows left, the domain right; the domain needs at least
/// two labels and an alphabetic top-level label of two or more letters.
struct EmailAddressMatcher: DataMatcher {
    func scan(_ text: ByteText, into matches: inout [Range<Int>]) {
        var from = 0
        while let at = text.find(UInt8(ascii: "@"), from: from) {
            from = at + 1
            // Local part: letters, digits and ._%+- , not starting or ending with a dot.
            var start = at
            while start > 0 && start > at - 64 && text.classOf(start - 1) & (ByteClass.alnum | ByteClass.emailLocal) != 0 { start -= 1 }
            if start > 0 && text.classOf(start - 1) & (ByteClass.alnum | ByteClass.emailLocal) != 0 { continue }   // longer than 64
            while start < at && text[start] == UInt8(ascii: ".") { start += 1 }
            guard start < at, text[at - 1] != UInt8(ascii: "."), start >= (matches.last?.upperBound ?? 0) else { continue }
            var dots = false
            for k in start..<(at - 1) where text[k] == UInt8(ascii: ".") && text[k + 1] == UInt8(ascii: ".") { dots = true; break }
            if dots { continue }
            guard let end = domainEnd(text, from: at + 1) else { continue }
            matches.append(start..<end)
            from = end
        }
    }

    /// End of a domain name starting at `i`: labels of letters, digits and inner hyphens, at least
    /// two, the last alphabetic with two or more letters.
    func domainEnd(_ text: ByteText, from i: Int) -> Int? {
        var labels = 0
        var position = i
        var end: Int?
        while true {
            let labelStart = position
            var letters = true
            while text.isAlnum(position) || (text[position] == UInt8(ascii: "-") && position > labelStart) {
                if !text.isLetter(position) { letters = false }
                position += 1
            }
            let length = position - labelStart
            guard length > 0, length <= 63, text[position - 1] != UInt8(ascii: "-"), position - i <= 253 else { break }
            labels += 1
            if labels >= 2 && letters && length >= 2 { end = position }
            guard text[position] == UInt8(ascii: "."), text.isAlnum(position + 1) else { break }
            position += 1
        }
        return end
    }
}
