/// Phone numbers of one country, in the international (`+CC …`) and national forms people write.
/// A national number must be written in groups (a bare run of digits is too often something else);
/// after `+CC` it may be written whole.
struct PhoneNumberMatcher: DataMatcher {
    /// The country calling code, digits only (`1`, `44`).
    let countryCode: [UInt8]
    /// Checks the national significant number (digits after the country code or trunk prefix).
    let nationalNumber: @Sendable ([UInt8]) -> Bool
    /// The trunk prefix written before national numbers (`0` in Europe), or nil (North America).
    let trunkPrefix: UInt8?
    /// The group lengths the number may be written in (nil: any groups of two or more digits).
    var groupings: [[Int]]? = nil

    func scan(_ text: ByteText, into matches: inout [Range<Int>]) {
        var i = 0
        while i < text.count {
            let c = text[i]
            guard c == UInt8(ascii: "+") || c == UInt8(ascii: "(") || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")) else { i += 1; continue }
            guard text.numberStartsAt(i), text[i - 1] != UInt8(ascii: "+") else { i = skipNumber(text, i); continue }
            if let end = match(text, i), i >= (matches.last?.upperBound ?? 0) {
                matches.append(i..<end)
                i = end
            } else {
                i = c == UInt8(ascii: "+") || c == UInt8(ascii: "(") ? i + 1 : skipNumber(text, i)
            }
        }
    }

    func match(_ text: ByteText, _ start: Int) -> Int? {
        var i = start
        var international = false
        if text[i] == UInt8(ascii: "+") {
            guard let code = text.digits(i + 1, countryCode.count), code == countryCode.reduce(0, { $0 * 10 + Int($1) }) else { return nil }
            i += 1 + countryCode.count
            international = true
            if text[i] == UInt8(ascii: " ") || text[i] == UInt8(ascii: "-") || text[i] == UInt8(ascii: ".") { i += 1 }
            // `+44 (0)20 …`: the trunk prefix in parentheses is written but not dialled.
            if let trunk = trunkPrefix, text[i] == UInt8(ascii: "("), text[i + 1] == 48 + trunk, text[i + 2] == UInt8(ascii: ")") {
                i += 3
                if text[i] == UInt8(ascii: " ") { i += 1 }
            }
        } else if trunkPrefix == nil, text[i] == 48 + countryCode[0], countryCode.count == 1,
                  text[i + 1] == UInt8(ascii: "-") || text[i + 1] == UInt8(ascii: " ") || text[i + 1] == UInt8(ascii: "."),
                  text.isDigit(i + 2) || text[i + 2] == UInt8(ascii: "(") {
            // North American `1-202-555-0123`.
            i += 2
            international = true
        }
        var digits: [UInt8] = []
        var grouped = false
        var groups: [Int] = []
        // An area code in parentheses: `(202) 555-0123`, `(020) 7946 0958`.
        if text[i] == UInt8(ascii: "(") {
            var j = i + 1
            while text.isDigit(j) && j - i <= 5 { digits.append(UInt8(text.digitValue(j))); j += 1 }
            guard text[j] == UInt8(ascii: ")"), digits.count >= 2 else { return nil }
            groups.append(digits.count)
            i = j + 1
            if text[i] == UInt8(ascii: " ") || text[i] == UInt8(ascii: "-") { i += 1 }
            grouped = true
        }
        guard text.isDigit(i) else { return nil }
        let rest = DigitGroups(text, at: i, separators: [.space, .dash, .dot], maxDigits: 15)
        digits += rest.digits
        grouped = grouped || rest.groupLengths.count > 1
        groups += rest.groupLengths
        if let groupings, !groupings.contains(groups) { return nil }
        // Groups of two digits or more; after a country code the first may be one (`+33 6 12 34 56 78`).
        guard rest.groupLengths.dropFirst().allSatisfy({ $0 >= 2 }) && (international || rest.groupLengths[0] >= 2),
              text.numberEndsBefore(rest.end) else { return nil }
        guard international || grouped else { return nil }
        if !international, let trunk = trunkPrefix {
            guard digits.first == trunk else { return nil }
            digits.removeFirst()
        } else if international, let trunk = trunkPrefix, digits.first == trunk {
            return nil   // `+44 020…` is not how a number is written
        }
        return nationalNumber(digits) ? rest.end : nil
    }

    /// `PhoneNumber-US`: NANP numbers, area code and exchange 2–9 then two digits, not N11.
    static let unitedStates = PhoneNumberMatcher(countryCode: [1], nationalNumber: { d in
        d.count == 10 && d[0] >= 2 && d[3] >= 2 && !(d[1] == 1 && d[2] == 1) && !(d[4] == 1 && d[5] == 1)
    }, trunkPrefix: nil, groupings: [[3, 3, 4], [10]])

    /// `PhoneNumber-GB`: ten digits after 0/+44 — geographic 1x/2x, non-geographic 3x, 5x, 8x, 9x and mobiles 7x.
    static let unitedKingdom = PhoneNumberMatcher(countryCode: [4, 4], nationalNumber: { d in
        (d.count == 10 && [1, 2, 3, 5, 7, 8, 9].contains(d[0])) || (d.count == 9 && d[0] == 1)
    }, trunkPrefix: 0)

    /// `PhoneNumber-FR`: nine digits after 0/+33, the first 1–9.
    static let france = PhoneNumberMatcher(countryCode: [3, 3], nationalNumber: { d in
        d.count == 9 && d[0] >= 1
    }, trunkPrefix: 0)

    /// `PhoneNumber-DE`: area code and subscriber number, 7 to 11 digits after 0/+49 (mobiles 15x–17x: 10 or 11).
    static let germany = PhoneNumberMatcher(countryCode: [4, 9], nationalNumber: { d in
        guard d.count >= 7 && d.count <= 11, d[0] != 0 else { return false }
        if d[0] == 1 && (5...7).contains(d[1]) { return d.count == 10 || d.count == 11 }
        return true
    }, trunkPrefix: 0)
}
