/// `CreditCardNumber`: 13–19 digits, plain or in groups split by one space or hyphen, whose issuer
/// prefix and length fit a card network (Visa, Mastercard, American Express, Discover, JCB,
/// Diners Club, UnionPay) and whose Luhn check digit is right. A 16-digit number failing Luhn is
/// not a card.
struct CreditCardNumberMatcher: DataMatcher {
    func scan(_ text: ByteText, into matches: inout [Range<Int>]) {
        var i = text.nextDigit(from: 0)
        while i < text.count {
            guard text.numberStartsAt(i) else {
                i = text.nextDigit(from: skipNumber(text, i))
                continue
            }
            // Every card number starts with four digits followed by a digit or a separator and a digit.
            guard text.allDigits(i, 5) || (text.allDigits(i, 4) && (text[i + 4] == 0x20 || text[i + 4] == 0x2D) && text.isDigit(i + 5)) else {
                i = text.nextDigit(from: skipNumber(text, i))
                continue
            }
            let groups = DigitGroups(text, at: i, separators: [.space, .dash], maxDigits: 19)
            if groups.digitCount >= 13, groups.digitCount <= 19, groups.groupCount <= 5, text.numberEndsBefore(groups.end),
               Self.groupingFits(groups), Self.networkFits(groups.digits), Checksums.luhn(groups.digits) {
                matches.append(i..<groups.end)
            }
            i = text.nextDigit(from: skipNumber(text, max(groups.end, i + 1)))
        }
    }

    /// Card numbers are printed whole or in groups of four (American Express 4-6-5, 19 digits 4-4-4-4-3).
    static func groupingFits(_ groups: DigitGroups) -> Bool {
        let lengths = groups.groupLengths
        if lengths.count == 1 { return true }
        if lengths == [4, 6, 5] || lengths == [4, 6, 4] { return true }
        return lengths.dropLast().allSatisfy { $0 == 4 } && (1...4).contains(lengths.last!)
    }

    /// Issuer identification number ranges and the lengths each network issues.
    static func networkFits(_ d: [UInt8]) -> Bool {
        let n = d.count
        func prefix(_ k: Int) -> Int { d.prefix(k).reduce(0) { $0 * 10 + Int($1) } }
        switch d[0] {
        case 4: return n == 13 || n == 16 || n == 19                                   // Visa
        case 5: return (51...55).contains(prefix(2)) && n == 16                         // Mastercard
        case 2: return (2221...2720).contains(prefix(4)) && n == 16                     // Mastercard 2-series
        case 3:
            let two = prefix(2)
            if two == 34 || two == 37 { return n == 15 }                                // American Express
            if (3528...3589).contains(prefix(4)) { return (16...19).contains(n) }       // JCB
            if (300...305).contains(prefix(3)) || two == 36 || two == 38 || two == 39 { return (14...19).contains(n) }  // Diners Club
            return false
        case 6:
            if prefix(4) == 6011 || prefix(2) == 65 || (644...649).contains(prefix(3)) { return (16...19).contains(n) }  // Discover
            if prefix(2) == 62 { return (16...19).contains(n) }                         // UnionPay
            return false
        default: return false
        }
    }
}

/// Past the digits (and digit separators) of a number starting at `i`.
@inline(__always) func skipNumber(_ text: ByteText, _ i: Int) -> Int {
    var j = i
    while text.isAlnum(j) || ((text[j] == UInt8(ascii: ".") || text[j] == UInt8(ascii: "-")) && text.isDigit(j + 1) && text.isDigit(j - 1)) { j += 1 }
    return max(j, i + 1)
}

/// Finds a keyword (any case) and, a few separator bytes after it, a value the keyword introduces:
/// `cvv: 123`, `"expiry":"04/27"`. Only the value is a match.
struct KeywordValueMatcher: DataMatcher {
    let keywords: [[UInt8]]
    /// Reads the value at `i` (just after the keyword and separators); returns its end, or nil.
    let value: @Sendable (ByteText, Int) -> Int?
    /// Bytes allowed between the keyword and the value.
    static let gap: Set<UInt8> = Set(" \t:=\"'#>-".utf8)
    private let firstBytes: Set<UInt8>

    init(keywords: [String], value: @escaping @Sendable (ByteText, Int) -> Int?) {
        self.keywords = keywords.map { Array($0.lowercased().utf8) }
        self.value = value
        firstBytes = Set(self.keywords.flatMap { [$0[0], $0[0] & ~0x20] })
    }

    func scan(_ text: ByteText, into matches: inout [Range<Int>]) {
        var i = 0
        while i < text.count {
            guard firstBytes.contains(text[i]), !text.isLetter(i - 1) else { i += 1; continue }
            var matched = false
            for keyword in keywords where text.hasWord(keyword, at: i) && !text.isLetter(i + keyword.count) {
                var j = i + keyword.count
                let limit = j + 6
                while j < limit && Self.gap.contains(text[j]) { j += 1 }
                if let end = value(text, j), j >= (matches.last?.upperBound ?? 0) {
                    matches.append(j..<end)
                    i = end
                    matched = true
                }
                break
            }
            if !matched { i += 1 }
        }
    }
}

enum CardValues {
    /// `CreditCardSecurityCode`: three or four digits after cvv, cvc, cvv2, cvc2, cid or "security code".
    static let securityCode = KeywordValueMatcher(
        keywords: ["cvv2", "cvc2", "cvv", "cvc", "cid", "csc", "security code", "card verification code", "card verification value"]
    ) { text, i in
        guard text.numberStartsAt(i) else { return nil }
        var j = i
        while text.isDigit(j) { j += 1 }
        return (j - i == 3 || j - i == 4) && text.numberEndsBefore(j) ? j : nil
    }

    /// `CreditCardExpiration`: MM/YY, MM/YYYY, MM-YY or MM-YYYY after exp, expiry, expiration, expires or "valid thru".
    static let expiration = KeywordValueMatcher(
        keywords: ["expiration date", "expiration", "expiry date", "expiry", "expires", "exp date", "exp", "valid thru", "valid through"]
    ) { text, i in
        guard text.numberStartsAt(i), let month = text.digits(i, 2), (1...12).contains(month) else { return nil }
        let separator = text[i + 2]
        guard separator == UInt8(ascii: "/") || separator == UInt8(ascii: "-") else { return nil }
        for years in [4, 2] where text.digits(i + 3, years) != nil && text.numberEndsBefore(i + 3 + years) {
            if years == 4, let year = text.digits(i + 3, 4), !(1990...2099).contains(year) { return nil }
            return i + 3 + years
        }
        return nil
    }
}
