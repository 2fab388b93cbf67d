/// The check digits identifiers carry: they are what makes a match more than a digit shape.
enum Checksums {
    /// Luhn (mod 10): credit cards, Canadian SINs.
    static func luhn(_ digits: [UInt8]) -> Bool {
        var sum = 0
        var double = false
        for d in digits.reversed() {
            var v = Int(d)
            if double { v *= 2; if v > 9 { v -= 9 } }
            sum += v
            double.toggle()
        }
        return sum % 10 == 0
    }

    /// ISO 13616 IBAN check: the country and check digits moved to the end, letters as 10–35, mod 97 = 1.
    static func iban(_ characters: [UInt8]) -> Bool {
        guard characters.count >= 5 else { return false }
        var remainder = 0
        for c in characters[4...] + characters[..<4] {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): remainder = (remainder * 10 + Int(c - 48)) % 97
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): remainder = (remainder * 100 + Int(c - 55)) % 97
            default: return false
            }
        }
        return remainder == 1
    }

    /// The check digit in position 9 of a North American VIN (49 CFR 565).
    static func vin(_ characters: [UInt8]) -> Bool {
        guard characters.count == 17 else { return false }
        let weights = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]
        var sum = 0
        for (k, c) in characters.enumerated() {
            let value: Int
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): value = Int(c - 48)
            case UInt8(ascii: "A")...UInt8(ascii: "H"): value = Int(c - 64)
            case UInt8(ascii: "J")...UInt8(ascii: "N"): value = Int(c - 73)
            case UInt8(ascii: "P"): value = 7
            case UInt8(ascii: "R"): value = 9
            case UInt8(ascii: "S")...UInt8(ascii: "Z"): value = Int(c - 81)
            default: return false
            }
            sum += value * weights[k]
        }
        let check = sum % 11
        return characters[8] == (check == 10 ? UInt8(ascii: "X") : UInt8(48 + check))
    }

    /// NHS number: weights 10…2 over the first nine digits, 11 − (sum mod 11) is the tenth (11 → 0; 10 never valid).
    static func nhs(_ digits: [UInt8]) -> Bool {
        guard digits.count == 10 else { return false }
        var sum = 0
        for k in 0..<9 { sum += Int(digits[k]) * (10 - k) }
        var check = 11 - sum % 11
        if check == 11 { check = 0 }
        return check != 10 && check == Int(digits[9])
    }

    /// Brazilian CPF: two mod-11 check digits; numbers of one repeated digit are invalid.
    static func cpf(_ digits: [UInt8]) -> Bool {
        guard digits.count == 11, Set(digits).count > 1 else { return false }
        func check(_ n: Int) -> UInt8 {
            var sum = 0
            for k in 0..<n { sum += Int(digits[k]) * (n + 1 - k) }
            let r = sum * 10 % 11
            return UInt8(r == 10 ? 0 : r)
        }
        return check(9) == digits[9] && check(10) == digits[10]
    }

    /// Brazilian CNPJ: two mod-11 check digits with weights 5…2,9…2 and 6…2,9…2.
    static func cnpj(_ digits: [UInt8]) -> Bool {
        guard digits.count == 14, Set(digits).count > 1 else { return false }
        func check(_ weights: [Int]) -> UInt8 {
            var sum = 0
            for (k, w) in weights.enumerated() { sum += Int(digits[k]) * w }
            let r = sum % 11
            return UInt8(r < 2 ? 0 : 11 - r)
        }
        return check([5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]) == digits[12]
            && check([6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]) == digits[13]
    }
}
