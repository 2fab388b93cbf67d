/// `Address`: a street address as written in the United States and Canada — a house number, one to
/// four capitalised words (or ordinals like `5th`) and a street type (Street, St, Avenue, Ave, Road,
/// …), optionally a direction, a unit (`Apt 4B`, `Suite 200`, `#12`) and `, City, ST 12345`.
/// Addresses without a street type word are not found.
struct AddressMatcher: DataMatcher {
    static let streetTypes: Set<String> = [
        "street", "st", "avenue", "ave", "av", "road", "rd", "boulevard", "blvd", "lane", "ln", "drive", "dr", "court", "ct",
        "place", "pl", "terrace", "ter", "way", "parkway", "pkwy", "circle", "cir", "highway", "hwy", "square", "sq",
        "trail", "trl", "alley", "plaza", "plz", "crescent", "close", "row", "expressway", "freeway", "turnpike", "pike",
    ]
    static let directions: Set<String> = ["N", "S", "E", "W", "NE", "NW", "SE", "SW", "North", "South", "East", "West"]
    static let units: Set<String> = ["apt", "apartment", "suite", "ste", "unit", "floor", "fl", "room", "rm"]

    func scan(_ text: ByteText, into matches: inout [Range<Int>]) {
        var i = text.nextDigit(from: 0)
        while i < text.count {
            if text.numberStartsAt(i), let end = match(text, i) {
                matches.append(i..<end)
                i = end
            } else {
                i = skipNumber(text, i)
            }
            i = text.nextDigit(from: i)
        }
    }

    /// A word at `i`: its text and end.
    private func word(_ text: ByteText, _ i: Int) -> (String, Int)? {
        var j = i
        while text.isAlnum(j) || (text[j] == UInt8(ascii: "'") && text.isLetter(j + 1)) { j += 1 }
        guard j > i, j - i <= 30 else { return nil }
        return (String(decoding: (i..<j).map { text[$0] }, as: UTF8.self), j)
    }

    func match(_ text: ByteText, _ start: Int) -> Int? {
        // House number: 1–6 digits, perhaps a letter (`221B`).
        var i = start
        while text.isDigit(i) && i - start < 7 { i += 1 }
        guard i - start <= 6 else { return nil }
        if text.isUpper(i) && !text.isAlnum(i + 1) { i += 1 }
        guard text[i] == UInt8(ascii: " ") else { return nil }
        i += 1
        var names = 0
        var end: Int?
        while names <= 4 {
            guard let (w, wordEnd) = word(text, i) else { return nil }
            let isOrdinal = w.first!.isNumber && ["st", "nd", "rd", "th"].contains(w.suffix(2).lowercased()) && w.dropLast(2).allSatisfy(\.isNumber)
            let isName = w.first!.isUppercase && w.dropFirst().allSatisfy { $0.isLowercase || $0 == "'" } || Self.directions.contains(w)
            if names >= 1, w.first!.isUppercase, Self.streetTypes.contains(w.lowercased()) {
                end = wordEnd
                if text[wordEnd] == UInt8(ascii: ".") && w.count <= 4 && !text.isAlnum(wordEnd + 1) { end = wordEnd + 1 }
                break
            }
            guard isOrdinal || isName, text[wordEnd] == UInt8(ascii: " ") else { return nil }
            names += 1
            i = wordEnd + 1
        }
        guard var e = end else { return nil }
        // A direction after the street type: `Avenue NW`.
        if text[e] == UInt8(ascii: " "), let (w, wordEnd) = word(text, e + 1), Self.directions.contains(w), !text.isAlnum(wordEnd) { e = wordEnd }
        // A unit: `, Apt 4B`, ` Suite 200`, ` #12`.
        var j = e
        if text[j] == UInt8(ascii: ",") { j += 1 }
        if text[j] == UInt8(ascii: " ") {
            j += 1
            if text[j] == UInt8(ascii: "#"), text.isAlnum(j + 1) {
                var k = j + 1
                while text.isAlnum(k) { k += 1 }
                e = k
            } else if let (w, wordEnd) = word(text, j), Self.units.contains(w.lowercased().trimmingDot), text[wordEnd] == UInt8(ascii: " ") || text[wordEnd] == UInt8(ascii: ".") {
                var k = wordEnd + (text[wordEnd] == UInt8(ascii: ".") ? 1 : 0)
                if text[k] == UInt8(ascii: " ") { k += 1 }
                if text[k] == UInt8(ascii: "#") { k += 1 }
                let unitStart = k
                while text.isAlnum(k) { k += 1 }
                if k > unitStart { e = k }
            }
        }
        // `, City, ST 12345` (city of capitalised words, a two-letter state or province, a ZIP or postal code).
        if text[e] == UInt8(ascii: ","), text[e + 1] == UInt8(ascii: " ") {
            var k = e + 2
            var cityWords = 0
            while cityWords < 4, let (w, wordEnd) = word(text, k), w.first!.isUppercase, w.dropFirst().allSatisfy(\.isLowercase) {
                cityWords += 1
                k = wordEnd
                if text[k] == UInt8(ascii: " ") && text.isUpper(k + 1) && text[k + 2] != UInt8(ascii: " ") && text.isLetter(k + 2) && !text.isUpper(k + 2) { k += 1 } else { break }
            }
            if cityWords > 0, text[k] == UInt8(ascii: ","), text[k + 1] == UInt8(ascii: " "), text.isUpper(k + 2), text.isUpper(k + 3), !text.isAlnum(k + 4) {
                var after = k + 4
                if text[after] == UInt8(ascii: " "), text.digits(after + 1, 5) != nil, !text.isDigit(after + 6) {
                    after += 6
                    if text[after] == UInt8(ascii: "-"), text.digits(after + 1, 4) != nil, !text.isAlnum(after + 5) { after += 5 }
                }
                e = after
            }
        }
        return e
    }
}

private extension String {
    var trimmingDot: String { hasSuffix(".") ? String(dropLast()) : self }
}
