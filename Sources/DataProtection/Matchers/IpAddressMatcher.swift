/// `IpAddress`: IPv4 in dotted-decimal (four parts 0–255, no leading zeros, not part of a longer
/// dotted number such as `1.2.3.4.5`) and IPv6 in RFC 4291 text form (eight groups, or fewer with
/// one `::`, optionally ending in dotted IPv4). A port after the address (`10.0.0.1:8080`,
/// `[::1]:443`) is not part of the match.
struct IpAddressMatcher: DataMatcher {
    func scan(_ text: ByteText, into matches: inout [Range<Int>]) {
        let p = text.p, n = text.count
        var i = 0
        while i < n {
            let c = p[i]
            let isHex = c &- 48 < 10 || Self.hexLetter(c)
            guard isHex || c == UInt8(ascii: ":") else { i += 1; continue }
            // A candidate starts where a word does: not after a letter, digit, '.', or ':'.
            let before = text[i - 1]
            if text.isAlnum(i - 1) || before == UInt8(ascii: ".") || before == UInt8(ascii: ":") || before == UInt8(ascii: "_") {
                i = Self.wordEnd(text, i + 1)
                continue
            }
            // Cheap shape tests first: IPv6 has a ':' within its first five bytes, IPv4 a '.'
            // within its first four after a digit. Most words have neither.
            let colonSoon = c == UInt8(ascii: ":") || text[i + 1] == UInt8(ascii: ":") || text[i + 2] == UInt8(ascii: ":")
                || text[i + 3] == UInt8(ascii: ":") || text[i + 4] == UInt8(ascii: ":")
            let dotSoon = c &- 48 < 10 && (text[i + 1] == UInt8(ascii: ".") || text[i + 2] == UInt8(ascii: ".") || text[i + 3] == UInt8(ascii: "."))
            if colonSoon || dotSoon, let end = (colonSoon ? ipv6(text, i) : nil) ?? (dotSoon ? ipv4(text, i) : nil) {
                matches.append(i..<end)
                i = end
            } else {
                // No address starts inside the rest of this word either.
                i = Self.wordEnd(text, i + 1)
            }
        }
    }

    /// The first byte at or after `i` that is not a letter, digit or `_` (where the next word may start).
    @inline(__always) static func wordEnd(_ text: ByteText, _ i: Int) -> Int {
        var j = i
        while j < text.count && (text.isAlnum(j) || text.p[j] == UInt8(ascii: "_")) { j += 1 }
        return j
    }

    @inline(__always) static func hexLetter(_ c: UInt8) -> Bool {
        (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "f")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "F"))
    }

    /// Dotted-decimal IPv4 at `i`; its end, or nil.
    func ipv4(_ text: ByteText, _ i: Int) -> Int? {
        guard let end = Self.dottedQuadEnd(text, i) else { return nil }
        // Not followed by more of a word or another dotted part.
        if text.isAlnum(end) || text[end] == UInt8(ascii: "_") { return nil }
        if text[end] == UInt8(ascii: ".") && text.isAlnum(end + 1) { return nil }
        return end
    }

    static func dottedQuadEnd(_ text: ByteText, _ start: Int) -> Int? {
        var i = start
        for part in 0..<4 {
            guard text.isDigit(i) else { return nil }
            var value = 0
            var length = 0
            while text.isDigit(i) && length < 4 { value = value * 10 + text.digitValue(i); length += 1; i += 1 }
            guard length <= 3, value <= 255, length == 1 || text[i - length] != UInt8(ascii: "0") else { return nil }
            if part < 3 {
                guard text[i] == UInt8(ascii: ".") else { return nil }
                i += 1
            }
        }
        return i
    }

    /// RFC 4291 IPv6 text at `i`; its end, or nil.
    func ipv6(_ text: ByteText, _ start: Int) -> Int? {
        var i = start
        var groups = 0
        var compressed = false
        var colons = 0
        if text[i] == UInt8(ascii: ":") {
            guard text[i + 1] == UInt8(ascii: ":") else { return nil }
            compressed = true
            colons = 2
            i += 2
        }
        var end = i
        while true {
            // A group, or an embedded dotted IPv4 taking the last two groups.
            if groups <= 6, (compressed || groups == 6), let quad = Self.dottedQuadEnd(text, i), colons > 0 {
                groups += 2
                end = quad
                i = quad
                break
            }
            var length = 0
            while length < 5 && (text.isDigit(i + length) || Self.hexLetter(text[i + length])) { length += 1 }
            if length == 0 {
                // Only `::` may end the address without a group after it.
                if !(compressed && text[i - 1] == UInt8(ascii: ":") && text[i - 2] == UInt8(ascii: ":")) { return nil }
                end = i
                break
            }
            guard length <= 4 else { return nil }
            groups += 1
            i += length
            end = i
            guard text[i] == UInt8(ascii: ":"), groups < 8 else { break }
            if text[i + 1] == UInt8(ascii: ":") {
                guard !compressed else { return nil }
                compressed = true
                colons += 2
                i += 2
                if !(text.isDigit(i) || Self.hexLetter(text[i])) { end = i; break }
            } else {
                colons += 1
                i += 1
            }
        }
        guard colons >= 2, groups >= 1, compressed ? groups <= 7 : groups == 8 else { return nil }
        // The address must end where a word ends (a port after ':' is fine, a letter is not).
        if text.isAlnum(end) || text[end] == UInt8(ascii: "_") || text[end] == UInt8(ascii: ".") && text.isAlnum(end + 1) { return nil }
        if text[end] == UInt8(ascii: ":") && !text.isDigit(end + 1) && text[end - 1] != UInt8(ascii: ":") { return nil }
        return end
    }
}
