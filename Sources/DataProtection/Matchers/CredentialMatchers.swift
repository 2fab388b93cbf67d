/// `AwsSecretKey`: a 40-character token of the base64 alphabet AWS secret access keys use
/// (`A–Z a–z 0–9 / +`), standing alone, with upper- and lower-case letters and digits, not
/// starting or ending with `/`. Hex digests (no upper case) and paths do not qualify; other
/// random 40-character base64 secrets do, and are masked too.
struct AwsSecretKeyMatcher: DataMatcher {
    @inline(__always) static func isToken(_ c: UInt8) -> Bool {
        c &- 48 < 10 || (c | 0x20) &- 97 < 26 || c == 0x2F || c == 0x2B
    }

    func scan(_ text: ByteText, into matches: inout [Range<Int>]) {
        let p = text.p, n = text.count
        // `start` is always where a run of token bytes may begin (the byte before is not one).
        // A run of 40 starting there covers p[start + 39]; reading that far first and backwards
        // skips most of a message without looking at it: a non-token byte at k rules out every
        // run starting at or before k (Boyer–Moore–Horspool's idea for a character class).
        var start = 0
        while start + 40 <= n {
            var k = start + 39
            while k >= start && Self.isToken(p[k]) { k -= 1 }
            if k >= start {
                start = k + 1
                continue
            }
            var end = start + 40
            while end < n && Self.isToken(p[end]) { end += 1 }
            defer { start = end + 1 }
            guard end - start == 40, text[end] != UInt8(ascii: "="), p[start] != UInt8(ascii: "/"), p[end - 1] != UInt8(ascii: "/") else { continue }
            var seen: UInt8 = 0
            for k in start..<end { seen |= ByteClass.of(p[k]) }
            guard seen & ByteClass.alnum == ByteClass.alnum else { continue }
            matches.append(start..<end)
        }
    }
}

/// `AwsAccessKeyId` (a trailwatch addition; CloudWatch has no such managed identifier): `AKIA`
/// (long-term) or `ASIA` (temporary) and 16 characters of the base32 alphabet, standing alone.
struct AwsAccessKeyIdMatcher: DataMatcher {
    func scan(_ text: ByteText, into matches: inout [Range<Int>]) {
        var from = 0
        while let a = text.find(UInt8(ascii: "A"), from: from) {
            from = a + 1
            guard text[a + 2] == UInt8(ascii: "I"), text[a + 3] == UInt8(ascii: "A"),
                  text[a + 1] == UInt8(ascii: "K") || text[a + 1] == UInt8(ascii: "S"), !text.isAlnum(a - 1) else { continue }
            var ok = true
            for k in (a + 4)..<(a + 20) {
                let c = text[k]
                if !((c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z")) || (c >= UInt8(ascii: "2") && c <= UInt8(ascii: "7"))) { ok = false; break }
            }
            guard ok, !text.isAlnum(a + 20) else { continue }
            matches.append(a..<(a + 20))
            from = a + 20
        }
    }
}

/// Private keys in their armoured text form: from the `-----BEGIN … PRIVATE KEY-----` line to the
/// matching `-----END …-----` line (or the end of the event when the key was cut off).
struct ArmouredKeyMatcher: DataMatcher {
    /// The labels between `BEGIN ` and `-----` this identifier covers.
    let labels: [[UInt8]]

    init(labels: [String]) { self.labels = labels.map { Array($0.utf8) } }

    static let begin = Array("-----BEGIN ".utf8)
    static let dashes = Array("-----".utf8)

    func scan(_ text: ByteText, into matches: inout [Range<Int>]) {
        var from = 0
        while let start = text.find(UInt8(ascii: "-"), from: from) {
            from = start + 1
            guard text.hasWord(Self.begin, at: start) else { continue }
            let labelStart = start + Self.begin.count
            guard let label = labels.first(where: { text.hasWord($0, at: labelStart) && text.hasWord(Self.dashes, at: labelStart + $0.count) }) else { continue }
            let closing = Array("-----END ".utf8) + label + Self.dashes
            var end = text.count
            var search = labelStart + label.count + 5
            while let dash = text.find(UInt8(ascii: "-"), from: search) {
                if text.hasWord(closing, at: dash) { end = dash + closing.count; break }
                search = dash + 1
            }
            matches.append(start..<end)
            from = end
        }
    }
}

/// `PuttyPrivateKey`: a PuTTY `.ppk` key from its `PuTTY-User-Key-File-N:` header to the end of its
/// `Private-MAC:` line (or the end of the event when cut off).
struct PuttyPrivateKeyMatcher: DataMatcher {
    static let header = Array("PuTTY-User-Key-File-".utf8)
    static let mac = Array("Private-MAC: ".utf8)

    func scan(_ text: ByteText, into matches: inout [Range<Int>]) {
        var from = 0
        while let start = text.find(UInt8(ascii: "P"), from: from) {
            from = start + 1
            guard text.hasWord(Self.header, at: start), text.isDigit(start + Self.header.count),
                  text[start + Self.header.count + 1] == UInt8(ascii: ":") else { continue }
            var end = text.count
            var search = start + Self.header.count
            while let p = text.find(UInt8(ascii: "P"), from: search) {
                if text.hasWord(Self.mac, at: p) {
                    var e = p + Self.mac.count
                    while text.isAlnum(e) { e += 1 }
                    end = e
                    break
                }
                search = p + 1
            }
            matches.append(start..<end)
            from = end
        }
    }
}
