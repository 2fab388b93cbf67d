/// One whitespace-separated token of a message after built-in masking.
@usableFromInline
struct MaskedToken: Sendable {
    /// Byte range of the token in the original message.
    @usableFromInline var sourceStart: Int32
    @usableFromInline var sourceEnd: Int32
    /// Byte range of the masked form in ``TokenMasker/maskedBytes``.
    @usableFromInline var maskedStart: Int32
    @usableFromInline var maskedEnd: Int32
    /// Range of this token's masked segments in ``TokenMasker/segments``.
    @usableFromInline var segmentStart: Int32
    @usableFromInline var segmentEnd: Int32
    /// Stable hash of the masked form; equals ``TokenMasker/wildcardHash`` when the whole token is a variable.
    @usableFromInline var hash: UInt64
}

/// Splits a message into tokens and masks the variable parts with `<*>`.
///
/// The rules are deliberately generic so that one configuration works across very different logs:
///
/// * A token is a maximal run of non-whitespace bytes.
/// * URLs (`scheme://…`) are masked whole.
/// * Inside a token, *segments* are separated by punctuation that usually delimits values
///   (`= : , ; ( ) [ ] { } < > " ' |` and `@`). A segment is masked when it
///   - contains a decimal digit (numbers, IPv4/IPv6, hex like `0x1f`, UUIDs, timestamps, sizes, ids such as
///     `blk_-42`, host names with numbers …),
///   - looks like a file path (starts with `/`, or has two or more `/`),
///   - is a run of at least 8 hexadecimal letters (digit-free hashes),
///   - is a `key=value` / `key:value` value that is `true`, `false` or `null`... (not masked: such words usually
///     belong to the template).
/// * Consecutive whole-token `<*>` are collapsed into one, so variable-length lists of values do not split a
///   template.
///
/// The masker reuses its buffers between messages so the hot path does not allocate.
@usableFromInline
struct TokenMasker: Sendable {
    @usableFromInline static let wildcard: [UInt8] = Array("<*>".utf8)
    static let dottedNamesAreVariables = false
    @usableFromInline static let wildcardHash: UInt64 = StableHash.hash("<*>")

    @usableFromInline var tokens: [MaskedToken] = []
    @usableFromInline var maskedBytes: [UInt8] = []
    /// Source byte ranges of masked segments (parameters), as (start, end) pairs.
    @usableFromInline var segments: [(Int32, Int32)] = []

    @usableFromInline init() {
        tokens.reserveCapacity(64)
        maskedBytes.reserveCapacity(1024)
        segments.reserveCapacity(64)
    }

    /// Byte classes, computed once.
    @usableFromInline static let classTable: [UInt8] = {
        var t = [UInt8](repeating: 0, count: 256)
        for b in [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), 0x0b, 0x0c] {
            t[Int(b)] |= space
        }
        for b in UInt8(ascii: "0")...UInt8(ascii: "9") { t[Int(b)] |= digit | hex }
        for b in UInt8(ascii: "a")...UInt8(ascii: "f") { t[Int(b)] |= hex }
        for b in UInt8(ascii: "A")...UInt8(ascii: "F") { t[Int(b)] |= hex }
        for c in "=:,;()[]{}<>\"'|@" { t[Int(c.asciiValue!)] |= delimiter }
        return t
    }()
    @usableFromInline static let space: UInt8 = 1
    @usableFromInline static let digit: UInt8 = 2
    @usableFromInline static let hex: UInt8 = 4
    @usableFromInline static let delimiter: UInt8 = 8

    /// Tokenizes and masks `message`, replacing the previous contents of the buffers.
    @usableFromInline
    mutating func mask(_ message: UnsafeRawBufferPointer) {
        tokens.removeAll(keepingCapacity: true)
        maskedBytes.removeAll(keepingCapacity: true)
        segments.removeAll(keepingCapacity: true)
        let count = message.count
        guard count > 0 else { return }
        let bytes = message.bindMemory(to: UInt8.self)
        Self.classTable.withUnsafeBufferPointer { table in
            var i = 0
            while i < count {
                while i < count && table[Int(bytes[i])] & Self.space != 0 { i += 1 }
                if i >= count { break }
                let start = i
                while i < count && table[Int(bytes[i])] & Self.space == 0 { i += 1 }
                maskToken(bytes, start, i, table)
            }
        }
        applyContextRules(bytes)
        collapseWildcards()
    }

    /// Words that are variables when they sit next to a number: dates (`Sun Jul 10 03:55:21 2005`), time zones
    /// and size units (`16.0 KB`).
    @usableFromInline static let contextWords: Set<UInt64> = {
        let words = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
                     "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
                     "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
                     "January", "February", "March", "April", "June", "July", "August", "September", "October",
                     "November", "December",
                     "UTC", "GMT", "Z", "CET", "CEST", "EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT", "AM", "PM",
                     "B", "KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB", "bytes", "ms", "us", "ns"]
        var set = Set<UInt64>()
        for w in words {
            set.insert(StableHash.hash(w))
            set.insert(StableHash.hash(w + ","))
        }
        return set
    }()

    /// Turns date words, time zones and units that touch a whole-token variable into variables too.
    private mutating func applyContextRules(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard tokens.count > 1 else { return }
        var changed = true
        var rounds = 0
        while changed && rounds < 4 {
            changed = false
            rounds += 1
            for i in 0..<tokens.count where tokens[i].hash != Self.wildcardHash {
                let before = i > 0 && tokens[i - 1].hash == Self.wildcardHash
                let after = i + 1 < tokens.count && tokens[i + 1].hash == Self.wildcardHash
                guard before || after, Self.contextWords.contains(tokens[i].hash) else { continue }
                makeWildcard(i)
                changed = true
            }
        }
    }

    /// Replaces token `i` by a whole-token variable.
    private mutating func makeWildcard(_ i: Int) {
        var t = tokens[i]
        t.maskedStart = Int32(maskedBytes.count)
        appendWildcard()
        t.maskedEnd = Int32(maskedBytes.count)
        t.segmentStart = Int32(segments.count)
        segments.append((t.sourceStart, t.sourceEnd))
        t.segmentEnd = Int32(segments.count)
        t.hash = Self.wildcardHash
        tokens[i] = t
    }

    /// Collapses runs of whole-token variables into one, so variable-length lists do not split a template.
    private mutating func collapseWildcards() {
        var out = 0
        var i = 0
        while i < tokens.count {
            var t = tokens[i]
            if t.hash == Self.wildcardHash {
                var j = i + 1
                while j < tokens.count && tokens[j].hash == Self.wildcardHash { j += 1 }
                if j > i + 1 {
                    t.sourceEnd = tokens[j - 1].sourceEnd
                    t.segmentStart = Int32(segments.count)
                    segments.append((t.sourceStart, t.sourceEnd))
                    t.segmentEnd = Int32(segments.count)
                }
                i = j
            } else {
                i += 1
            }
            tokens[out] = t
            out += 1
        }
        tokens.removeLast(tokens.count - out)
    }

    @inline(__always)
    private mutating func appendWildcard() {
        maskedBytes.append(UInt8(ascii: "<"))
        maskedBytes.append(UInt8(ascii: "*"))
        maskedBytes.append(UInt8(ascii: ">"))
    }

    private mutating func maskToken(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int,
                                    _ table: UnsafeBufferPointer<UInt8>) {
        let maskedStart = maskedBytes.count
        let segmentStart = segments.count
        if isURL(bytes, start, end) {
            appendWildcard()
            segments.append((Int32(start), Int32(end)))
        } else {
            var s = start
            while s < end {
                let b = bytes[s]
                if table[Int(b)] & Self.delimiter != 0 {
                    maskedBytes.append(b)
                    s += 1
                    continue
                }
                // A segment: bytes up to the next delimiter.
                var e = s
                var digits = 0, hexLetters = 0, slashes = 0
                while e < end {
                    let c = bytes[e]
                    let k = table[Int(c)]
                    if k & Self.delimiter != 0 { break }
                    if k & Self.digit != 0 { digits += 1 } else if k & Self.hex != 0 { hexLetters += 1 }
                    if c == UInt8(ascii: "/") { slashes += 1 }
                    e += 1
                }
                let startsPath = bytes[s] == UInt8(ascii: "/")
                    || (e - s > 2 && (bytes[s] == UInt8(ascii: ".") || bytes[s] == UInt8(ascii: "~"))
                        && bytes[s + 1] == UInt8(ascii: "/"))
                if startsPath && e - s > 1 {
                    // A path runs to the end of the token (query strings, `:` inside names), minus closing punctuation.
                    e = end
                    while e > s + 1 && table[Int(bytes[e - 1])] & Self.delimiter != 0 { e -= 1 }
                }
                let length = e - s
                let isVariable = digits > 0
                    || (startsPath && length > 1)
                    || slashes >= 2
                    || (hexLetters == length && length >= 8)
                    || (Self.dottedNamesAreVariables && Self.isDottedName(bytes, s, e))
                if isVariable {
                    appendWildcard()
                    segments.append((Int32(s), Int32(e)))
                } else {
                    for j in s..<e { maskedBytes.append(bytes[j]) }
                }
                s = e
            }
        }
        var hash = StableHash.offsetBasis
        for j in maskedStart..<maskedBytes.count { hash = StableHash.mix(hash, maskedBytes[j]) }
        // A token made only of variables and delimiters (`10.0.0.1:8080`, `12:30:45`, `(42)`) is one variable.
        var onlyVariables = segments.count > segmentStart
        if onlyVariables {
            // Short runs of hexadecimal letters between masked parts (`b8:e8:56:3e:fc:ed`) are variables as well.
            let allowHexLetters = segments.count - segmentStart >= 2
            var j = maskedStart
            while j < maskedBytes.count {
                let c = maskedBytes[j]
                if c == UInt8(ascii: "<") && j + 2 < maskedBytes.count
                    && maskedBytes[j + 1] == UInt8(ascii: "*") && maskedBytes[j + 2] == UInt8(ascii: ">") {
                    j += 3
                } else if Self.classTable[Int(c)] & Self.delimiter != 0 {
                    j += 1
                } else if allowHexLetters && Self.classTable[Int(c)] & Self.hex != 0 {
                    var k = j
                    while k < maskedBytes.count && Self.classTable[Int(maskedBytes[k])] & Self.hex != 0 { k += 1 }
                    if k - j > 4 { onlyVariables = false; break }
                    j = k
                } else {
                    onlyVariables = false
                    break
                }
            }
        }
        if onlyVariables && hash != Self.wildcardHash {
            maskedBytes.removeLast(maskedBytes.count - maskedStart)
            appendWildcard()
            hash = Self.wildcardHash
        }
        if end - start == 2, Self.isEmptyPair(bytes[start], bytes[end - 1]) {
            // `()`, `[]`, `""`: an empty value, the same variable as a filled one.
            maskedBytes.removeLast(maskedBytes.count - maskedStart)
            appendWildcard()
            hash = Self.wildcardHash
        }
        let isWhole = hash == Self.wildcardHash
        if isWhole {
            // One parameter covering the whole token (keeps surrounding punctuation out of the template).
            segments.removeLast(segments.count - segmentStart)
            segments.append((Int32(start), Int32(end)))
        }
        tokens.append(MaskedToken(sourceStart: Int32(start), sourceEnd: Int32(end),
                                  maskedStart: Int32(maskedStart), maskedEnd: Int32(maskedBytes.count),
                                  segmentStart: Int32(segmentStart), segmentEnd: Int32(segments.count),
                                  hash: hash))
    }

    /// `com.example.Thing`-like names (two or more dots between letters or digits): package, class, host and
    /// job names, which vary far more often than they name a template.
    private static func isDottedName(_ bytes: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int) -> Bool {
        guard e - s >= 5 else { return false }
        var interior = 0
        var i = s + 1
        while i < e - 1 {
            if bytes[i] == UInt8(ascii: "."), isAlphanumeric(bytes[i - 1]), isAlphanumeric(bytes[i + 1]) {
                interior += 1
            }
            i += 1
        }
        return interior >= 2
    }

    @inline(__always)
    private static func isAlphanumeric(_ c: UInt8) -> Bool {
        let lower = c | 0x20
        return (lower >= UInt8(ascii: "a") && lower <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9"))
    }

    private static func isEmptyPair(_ open: UInt8, _ close: UInt8) -> Bool {
        switch (open, close) {
        case (UInt8(ascii: "("), UInt8(ascii: ")")), (UInt8(ascii: "["), UInt8(ascii: "]")),
             (UInt8(ascii: "{"), UInt8(ascii: "}")), (UInt8(ascii: "\""), UInt8(ascii: "\"")),
             (UInt8(ascii: "'"), UInt8(ascii: "'")), (UInt8(ascii: "<"), UInt8(ascii: ">")):
            return true
        default:
            return false
        }
    }

    /// `scheme://…` with an alphabetic scheme.
    private func isURL(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        guard end - start >= 4 else { return false }
        var i = start
        while i + 2 < end {
            let c = bytes[i]
            if c == UInt8(ascii: ":") {
                return i > start && bytes[i + 1] == UInt8(ascii: "/") && bytes[i + 2] == UInt8(ascii: "/")
            }
            let lower = c | 0x20
            if !(lower >= UInt8(ascii: "a") && lower <= UInt8(ascii: "z")) { return false }
            i += 1
        }
        return false
    }

    /// The masked text of token `index`.
    @usableFromInline
    func maskedText(_ index: Int) -> String {
        let t = tokens[index]
        return String(decoding: maskedBytes[Int(t.maskedStart)..<Int(t.maskedEnd)], as: UTF8.self)
    }
}
