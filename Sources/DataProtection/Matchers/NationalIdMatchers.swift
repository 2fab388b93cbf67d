/// Numbers printed as fixed digit groups (`123-45-6789`) with a rule on the digits. The grouped
/// form is what makes them recognisable: a bare run of nine digits is too often something else.
struct GroupedNumberMatcher: DataMatcher {
    /// Allowed group lengths, e.g. [3, 2, 4].
    let groups: [Int]
    let separators: Separators
    /// Also accept the digits unseparated (only for numbers with a strong check digit).
    var allowPlain = false
    let valid: @Sendable ([UInt8]) -> Bool

    func scan(_ text: ByteText, into matches: inout [Range<Int>]) {
        let total = groups.reduce(0, +)
        var i = text.nextDigit(from: 0)
        while i < text.count {
            guard text.numberStartsAt(i) else {
                i = text.nextDigit(from: skipNumber(text, i))
                continue
            }
            // Most numbers fail at once: without `allowPlain`, the first group is followed by a separator.
            if !allowPlain && !(text.allDigits(i, groups[0]) && separators.contains(byte: text[i + groups[0]])) {
                i = text.nextDigit(from: skipNumber(text, i))
                continue
            }
            let read = DigitGroups(text, at: i, separators: separators, maxDigits: total)
            if read.digitCount == total, text.numberEndsBefore(read.end),
               read.groupsAre(groups) || (allowPlain && read.groupCount == 1), valid(read.digits) {
                matches.append(i..<read.end)
            }
            i = text.nextDigit(from: skipNumber(text, max(read.end, i + 1)))
        }
    }
}

/// Numbers printed with a fixed punctuation mask, `###.###.###-##`: `#` is a digit, anything else itself.
struct MaskedNumberMatcher: DataMatcher {
    let mask: [UInt8]
    let valid: @Sendable ([UInt8]) -> Bool

    init(_ mask: String, valid: @escaping @Sendable ([UInt8]) -> Bool) {
        self.mask = Array(mask.utf8)
        self.valid = valid
    }

    func scan(_ text: ByteText, into matches: inout [Range<Int>]) {
        var i = text.nextDigit(from: 0)
        while i < text.count {
            if text.numberStartsAt(i), let digits = read(text, i), text.numberEndsBefore(i + mask.count), valid(digits) {
                matches.append(i..<(i + mask.count))
                i += mask.count
            } else {
                i = skipNumber(text, i)
            }
            i = text.nextDigit(from: i)
        }
    }

    private func read(_ text: ByteText, _ i: Int) -> [UInt8]? {
        var digits: [UInt8] = []
        for (k, m) in mask.enumerated() {
            if m == UInt8(ascii: "#") {
                guard text.isDigit(i + k) else { return nil }
                digits.append(UInt8(text.digitValue(i + k)))
            } else if text[i + k] != m {
                return nil
            }
        }
        return digits
    }
}

enum NationalIds {
    static let dashOrSpace: Separators = [.dash, .space]

    /// `Ssn-US`: AAA-GG-SSSS; area 001–899 but not 666, group 01–99, serial 0001–9999.
    static let ssnUS = GroupedNumberMatcher(groups: [3, 2, 4], separators: dashOrSpace) { d in
        let area = Int(d[0]) * 100 + Int(d[1]) * 10 + Int(d[2])
        return area != 0 && area != 666 && area < 900 && (d[3] != 0 || d[4] != 0) && d[5...].contains { $0 != 0 }
    }

    /// `IndividualTaxIdentificationNumber-US`: 9XX-GG-XXXX with the group 50–65, 70–88, 90–92 or 94–99.
    static let itinUS = GroupedNumberMatcher(groups: [3, 2, 4], separators: dashOrSpace) { d in
        let group = Int(d[3]) * 10 + Int(d[4])
        return d[0] == 9 && ((50...65).contains(group) || (70...88).contains(group) || (90...92).contains(group) || (94...99).contains(group))
    }

    /// `NhsNumber-GB`: 3-3-4 digits with the NHS mod-11 check digit (also unseparated: the check is strong).
    static let nhsGB = GroupedNumberMatcher(groups: [3, 3, 4], separators: dashOrSpace, allowPlain: true, valid: Checksums.nhs)

    /// `SocialInsuranceNumber-CA`: 3-3-3 digits passing Luhn; the first digit is not 0 or 8.
    static let sinCA = GroupedNumberMatcher(groups: [3, 3, 3], separators: dashOrSpace) { d in
        d[0] != 0 && d[0] != 8 && Checksums.luhn(d)
    }

    /// `CpfCode-BR`: ###.###.###-## with both check digits right.
    static let cpfBR = MaskedNumberMatcher("###.###.###-##", valid: Checksums.cpf)

    /// `CnpjNumber-BR`: ##.###.###/####-## with both check digits right.
    static let cnpjBR = MaskedNumberMatcher("##.###.###/####-##", valid: Checksums.cnpj)
}

/// `NationalInsuranceNumber-GB`: two prefix letters (not D, F, I, Q, U, V; the second not O; not
/// BG, GB, KN, NK, NT, TN or ZZ), six digits (optionally in pairs) and a suffix A–D.
struct NationalInsuranceNumberMatcher: DataMatcher {
    static let excludedPairs: Set<String> = ["BG", "GB", "KN", "NK", "NT", "TN", "ZZ"]

    func scan(_ text: ByteText, into matches: inout [Range<Int>]) {
        var i = text.next(ByteClass.upper, from: 0)
        while i < text.count {
            if let end = match(text, i) {
                matches.append(i..<end)
                i = end
            } else {
                i += 1
            }
            i = text.next(ByteClass.upper, from: i)
        }
    }

    func match(_ text: ByteText, _ i: Int) -> Int? {
        let a = text[i], b = text[i + 1]
        guard !text.isAlnum(i - 1), text.isUpper(i + 1), !"DFIQUV".utf8.contains(a), !"DFIOQUV".utf8.contains(b),
              !Self.excludedPairs.contains(String(decoding: [a, b], as: UTF8.self)) else { return nil }
        var j = i + 2
        let spaced = text[j] == UInt8(ascii: " ")
        for _ in 0..<3 {
            if spaced { guard text[j] == UInt8(ascii: " ") else { return nil }; j += 1 }
            guard text.isDigit(j), text.isDigit(j + 1) else { return nil }
            j += 2
        }
        if spaced { guard text[j] == UInt8(ascii: " ") else { return nil }; j += 1 }
        guard text[j] >= UInt8(ascii: "A"), text[j] <= UInt8(ascii: "D"), !text.isAlnum(j + 1) else { return nil }
        return j + 1
    }
}
