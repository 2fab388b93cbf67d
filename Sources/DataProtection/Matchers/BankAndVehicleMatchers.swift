/// `BankAccountNumber-XX` for IBAN countries: the country code, two check digits and the national
/// account number (BBAN) of that country's length and shape, written whole or in groups of four
/// separated by single spaces, with a valid ISO 13616 mod-97 check.
struct IbanMatcher: DataMatcher {
    let country: (UInt8, UInt8)
    /// The BBAN's shape: `n` digit, `a` upper-case letter, `c` letter or digit.
    let bban: [UInt8]

    init(country: String, bban: String) {
        let c = Array(country.utf8)
        self.country = (c[0], c[1])
        self.bban = Array(bban.utf8)
    }

    func scan(_ text: ByteText, into matches: inout [Range<Int>]) {
        var from = 0
        while let i = text.find(country.0, from: from) {
            from = i + 1
            guard text[i + 1] == country.1, !text.isAlnum(i - 1), text.isDigit(i + 2), text.isDigit(i + 3) else { continue }
            if let (characters, end) = read(text, i), Checksums.iban(characters) {
                matches.append(i..<end)
                from = end
            }
        }
    }

    /// The IBAN's characters without spaces, and where it ends.
    private func read(_ text: ByteText, _ start: Int) -> ([UInt8], Int)? {
        let length = 4 + bban.count
        var characters: [UInt8] = []
        characters.reserveCapacity(length)
        var i = start
        var spaced: Bool?
        while characters.count < length {
            if characters.count > 0 && characters.count % 4 == 0 {
                let space = text[i] == UInt8(ascii: " ")
                if spaced == nil { spaced = space }
                if spaced! {
                    guard space else { return nil }
                    i += 1
                }
            }
            let c = text[i]
            if characters.count >= 4 {
                let kind = bban[characters.count - 4]
                let isDigit = text.isDigit(i), isUpper = text.isUpper(i)
                switch kind {
                case UInt8(ascii: "n"): guard isDigit else { return nil }
                case UInt8(ascii: "a"): guard isUpper else { return nil }
                default: guard isDigit || isUpper else { return nil }
                }
            }
            characters.append(c)
            i += 1
        }
        guard !text.isAlnum(i) else { return nil }
        return (characters, i)
    }

    static let germany = IbanMatcher(country: "DE", bban: "nnnnnnnnnnnnnnnnnn")
    static let unitedKingdom = IbanMatcher(country: "GB", bban: "aaaannnnnnnnnnnnnn")
    static let france = IbanMatcher(country: "FR", bban: "nnnnnnnnnncccccccccccnn")
    static let spain = IbanMatcher(country: "ES", bban: "nnnnnnnnnnnnnnnnnnnn")
    static let italy = IbanMatcher(country: "IT", bban: "annnnnnnnnncccccccccccc")
}

/// `VehicleIdentificationNumber`: 17 characters of the VIN alphabet (digits and capitals but I, O,
/// Q), standing alone, with letters and digits, whose check digit (position 9) is right — the
/// North American rule; VINs issued without a check digit are not found.
struct VehicleIdentificationNumberMatcher: DataMatcher {
    func scan(_ text: ByteText, into matches: inout [Range<Int>]) {
        var i = 0
        while i < text.count {
            i = text.next(ByteClass.digit | ByteClass.upper, from: i)
            guard i < text.count else { return }
            let start = i
            var letters = false, digits = false, valid = true
            while text.classOf(i) & ByteClass.alnum != 0 {
                let c = text[i]
                if text.isDigit(i) { digits = true } else if text.isUpper(i) {
                    letters = true
                    if c == UInt8(ascii: "I") || c == UInt8(ascii: "O") || c == UInt8(ascii: "Q") { valid = false }
                } else {
                    valid = false
                }
                i += 1
            }
            guard i - start == 17, valid, letters, digits, !text.isAlnum(start - 1),
                  Checksums.vin((start..<i).map { text[$0] }) else { continue }
            matches.append(start..<i)
        }
    }
}
