/// One whitespace-separated token of a message after built-in masking.
@usableFromInline
struct MaskedToken: Sendable {
    /// Byte range of the token in the original message.
    @usableFromInline var sourceStart: Int32
    @usableFromInline var sourceEnd: Int32
    /// Range of this token's masked segments (parameters) in ``TokenMasker/segments``.
    @usableFromInline var segmentStart: Int32
    @usableFromInline var segmentEnd: Int32
    /// Stable hash of the masked form; equals ``TokenMasker/wildcardHash`` when the whole token is a variable.
    @usableFromInline var hash: UInt64

    @usableFromInline var isWildcard: Bool { hash == TokenMasker.wildcardHash }
}

/// Splits a message into tokens and masks the variable parts with `<*>`.
///
/// The rules are deliberately generic so that one configuration works across very different logs:
///
/// * A token is a maximal run of non-whitespace bytes.
/// * URLs (`scheme://…`) are masked whole.
/// * Inside a token, *segments* are separated by punctuation that usually delimits values
///   (`= : , ; ( ) [ ] { } < > " ' |` and `@`; a `:` between two digits does not separate, so times and IPv6
///   addresses stay one value). A segment is a variable when it
///   - contains a decimal digit (numbers, IPv4/IPv6, hex such as `0x1f`, UUIDs, timestamps, sizes, ids like
///     `blk_-42`, host names with numbers …),
///   - is a file path (starts with `/`, `./` or `~/`, or contains two or more `/`); a path runs to the end of the
///     token, so query strings and `:` inside file names stay in the one variable,
///   - is a run of at least 8 hexadecimal letters (digit-free hashes and ids).
/// * A token made only of variables and delimiters (`10.0.0.1:80`, `(42)`, `b8:e8:56:3e:fc:ed` — short hex-letter
///   runs between variables count as variables) is a whole-token variable, as are empty pairs such as `()` or `""`.
/// * Date words (`Mon`, `Jul`), time zones (`UTC`, `PDT`) and size units (`KB`, `ms`) next to a whole-token
///   variable are variables too, so `Sun Jul 10 03:55:21 2005` or `16.0 KB` collapse into one.
/// * Consecutive whole-token variables are collapsed into one, so variable-length values do not split a template.
///
/// The masker computes the hash of each masked token while scanning and reuses its buffers, so the hot path does
/// not allocate; masked texts are rebuilt from the source only when a template is created.
@usableFromInline
struct TokenMasker: Sendable {
    /// `StableHash.hash("<*>")`, as a literal so hot loops do not pay for lazy static initialisation
    /// (checked by a unit test).
    @usableFromInline static var wildcardHash: UInt64 { 0x70cc_8c18_30b5_f0c7 }

    @usableFromInline var tokens: [MaskedToken] = []
    /// Source byte ranges of variables, as (start, end) pairs; each token owns a contiguous run of them.
    @usableFromInline var segments: [(Int32, Int32)] = []

    @usableFromInline init() {
        tokens.reserveCapacity(64)
        segments.reserveCapacity(64)
    }

    @usableFromInline static let space: UInt8 = 1
    @usableFromInline static let digit: UInt8 = 2
    @usableFromInline static let hexLetter: UInt8 = 4
    @usableFromInline static let delimiter: UInt8 = 8
    @usableFromInline static let letter: UInt8 = 16

    /// Byte classes, computed once.
    @usableFromInline static let classTable: [UInt8] = {
        var t = [UInt8](repeating: 0, count: 256)
        for b in [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), 0x0b, 0x0c] {
            t[Int(b)] |= space
        }
        for b in UInt8(ascii: "0")...UInt8(ascii: "9") { t[Int(b)] |= digit }
        for b in UInt8(ascii: "a")...UInt8(ascii: "f") { t[Int(b)] |= hexLetter }
        for b in UInt8(ascii: "A")...UInt8(ascii: "F") { t[Int(b)] |= hexLetter }
        for b in UInt8(ascii: "a")...UInt8(ascii: "z") { t[Int(b)] |= letter }
        for b in UInt8(ascii: "A")...UInt8(ascii: "Z") { t[Int(b)] |= letter }
        for c in "=:,;()[]{}<>\"'|@" { t[Int(c.asciiValue!)] |= delimiter }
        return t
    }()

    /// Words that are variables when they sit next to a whole-token variable: dates, time zones and size units.
    @usableFromInline static let contextWords: Set<UInt64> = {
        let words = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
                     "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
                     "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
                     "January", "February", "March", "April", "June", "July", "August", "September", "October",
                     "November", "December",
                     "UTC", "GMT", "Z", "CET", "CEST", "EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT",
                     "AM", "PM", "B", "KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB", "bytes", "ms", "us", "ns"]
        var set = Set<UInt64>()
        for w in words {
            set.insert(StableHash.hash(w))
            set.insert(StableHash.hash(w + ","))
        }
        return set
    }()

    /// Tokenizes and masks `message`, replacing the previous contents of the buffers.
    @usableFromInline
    mutating func mask(_ message: UnsafeRawBufferPointer) {
        tokens.removeAll(keepingCapacity: true)
        segments.removeAll(keepingCapacity: true)
        let count = message.count
        guard count > 0 else { return }
        let bytes = message.bindMemory(to: UInt8.self)
        var anyWildcard = false
        Self.classTable.withUnsafeBufferPointer { table in
            var i = 0
            while i < count {
                while i < count && table[Int(bytes[i])] & Self.space != 0 { i += 1 }
                if i >= count { break }
                let start = i
                while i < count && table[Int(bytes[i])] & Self.space == 0 { i += 1 }
                if maskToken(bytes, start, i, table) { anyWildcard = true }
            }
        }
        if anyWildcard {
            applyContextRules()
            collapseWildcards()
        }
    }

    /// Masks one token; returns `true` when the whole token is a variable.
    private mutating func maskToken(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int,
                                    _ table: UnsafeBufferPointer<UInt8>) -> Bool {
        let segmentStart = segments.count
        if isURL(bytes, start, end) || isEmptyPair(bytes, start, end) {
            return appendWholeWildcard(start, end, segmentStart)
        }
        var hash = StableHash.offsetBasis
        var literalBytes = 0      // bytes of literal (non-variable, non-delimiter) text
        var shortHexLiterals = 0  // of which: short hex-letter runs (`fc` in a MAC address)
        var s = start
        while s < end {
            let b = bytes[s]
            if table[Int(b)] & Self.delimiter != 0
                && !(b == UInt8(ascii: ":") && s > start && s + 1 < end
                     && table[Int(bytes[s - 1])] & Self.digit != 0 && table[Int(bytes[s + 1])] & Self.digit != 0) {
                hash = StableHash.mix(hash, b)
                s += 1
                continue
            }
            // A segment: bytes up to the next delimiter (a `:` between digits does not end it).
            var e = s
            var digits = 0, hexLetters = 0, slashes = 0
            while e < end {
                let c = bytes[e]
                let k = table[Int(c)]
                if k & Self.delimiter != 0 {
                    if !(c == UInt8(ascii: ":") && e > s && e + 1 < end && table[Int(bytes[e - 1])] & Self.digit != 0
                         && table[Int(bytes[e + 1])] & Self.digit != 0) { break }
                }
                if k & Self.digit != 0 { digits += 1 } else if k & Self.hexLetter != 0 { hexLetters += 1 }
                if c == UInt8(ascii: "/") { slashes += 1 }
                e += 1
            }
            let startsPath = bytes[s] == UInt8(ascii: "/")
                || (e - s > 2 && (bytes[s] == UInt8(ascii: ".") || bytes[s] == UInt8(ascii: "~"))
                    && bytes[s + 1] == UInt8(ascii: "/"))
            if startsPath && e - s > 1 {
                // A path runs to the end of the token (query strings, `:` in names), minus closing punctuation.
                e = end
                while e > s + 1 && table[Int(bytes[e - 1])] & Self.delimiter != 0 { e -= 1 }
            }
            let length = e - s
            let isVariable = digits > 0
                || (startsPath && length > 1)
                || slashes >= 2
                || (hexLetters == length && length >= 8)
            if isVariable {
                hash = StableHash.mix(StableHash.mix(StableHash.mix(hash, 0x3c), 0x2a), 0x3e)  // "<*>"
                segments.append((Int32(s), Int32(e)))
            } else {
                for j in s..<e { hash = StableHash.mix(hash, bytes[j]) }
                literalBytes += length
                if hexLetters == length && length <= 4 { shortHexLiterals += length }
            }
            s = e
        }
        let variables = segments.count - segmentStart
        // Only variables and delimiters (short hex-letter runs count as variables when there are several values).
        if variables > 0 && (literalBytes == 0 || (variables >= 2 && literalBytes == shortHexLiterals)) {
            for _ in 0..<variables { segments.removeLast() }
            return appendWholeWildcard(start, end, segmentStart)
        }
        tokens.append(MaskedToken(sourceStart: Int32(start), sourceEnd: Int32(end), segmentStart: Int32(segmentStart),
                                  segmentEnd: Int32(segments.count), hash: hash))
        return false
    }

    private mutating func appendWholeWildcard(_ start: Int, _ end: Int, _ segmentStart: Int) -> Bool {
        segments.append((Int32(start), Int32(end)))
        tokens.append(MaskedToken(sourceStart: Int32(start), sourceEnd: Int32(end), segmentStart: Int32(segmentStart),
                                  segmentEnd: Int32(segmentStart + 1), hash: Self.wildcardHash))
        return true
    }

    /// Turns date words, time zones and units that touch a whole-token variable into variables.
    private mutating func applyContextRules() {
        guard tokens.count > 1 else { return }
        var changed = true
        var rounds = 0
        while changed && rounds < 4 {
            changed = false
            rounds += 1
            for i in 0..<tokens.count where !tokens[i].isWildcard {
                let before = i > 0 && tokens[i - 1].isWildcard
                let after = i + 1 < tokens.count && tokens[i + 1].isWildcard
                guard before || after, Self.contextWords.contains(tokens[i].hash) else { continue }
                var t = tokens[i]
                t.segmentStart = Int32(segments.count)
                segments.append((t.sourceStart, t.sourceEnd))
                t.segmentEnd = Int32(segments.count)
                t.hash = Self.wildcardHash
                tokens[i] = t
                changed = true
            }
        }
    }

    /// Collapses runs of whole-token variables into one, so variable-length values do not split a template.
    private mutating func collapseWildcards() {
        var out = 0
        var i = 0
        while i < tokens.count {
            var t = tokens[i]
            if t.isWildcard {
                var j = i + 1
                while j < tokens.count && tokens[j].isWildcard { j += 1 }
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
        while tokens.count > out { tokens.removeLast() }
    }

    /// Keeps the first `limit` tokens, folding the rest into a trailing whole-token variable.
    @usableFromInline
    mutating func truncate(to limit: Int) {
        guard tokens.count > limit, limit > 0 else { return }
        var last = tokens[limit - 1]
        last.sourceEnd = tokens[tokens.count - 1].sourceEnd
        last.segmentStart = Int32(segments.count)
        segments.append((last.sourceStart, last.sourceEnd))
        last.segmentEnd = Int32(segments.count)
        last.hash = Self.wildcardHash
        tokens.removeLast(tokens.count - limit)
        tokens[limit - 1] = last
        if limit >= 2 && tokens[limit - 2].isWildcard {
            // Keep the invariant that whole-token variables are never adjacent.
            tokens[limit - 2].sourceEnd = last.sourceEnd
            tokens[limit - 2].segmentStart = last.segmentStart
            tokens[limit - 2].segmentEnd = last.segmentEnd
            segments[Int(last.segmentStart)].0 = tokens[limit - 2].sourceStart
            tokens.removeLast()
        }
    }

    /// The masked text of token `index` of `message` (the message last passed to ``mask(_:)``).
    @usableFromInline
    func maskedText(_ index: Int, in message: UnsafeRawBufferPointer) -> String {
        let t = tokens[index]
        if t.isWildcard { return "<*>" }
        var out: [UInt8] = []
        var p = Int(t.sourceStart)
        for s in Int(t.segmentStart)..<Int(t.segmentEnd) {
            let (a, b) = segments[s]
            out.append(contentsOf: message[p..<Int(a)])
            out.append(contentsOf: "<*>".utf8)
            p = Int(b)
        }
        out.append(contentsOf: message[p..<Int(t.sourceEnd)])
        return String(decoding: out, as: UTF8.self)
    }

    /// `()`, `[]`, `{}`, `""`, `''`, `<>`: an empty value.
    private func isEmptyPair(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        guard end - start == 2 else { return false }
        switch (bytes[start], bytes[start + 1]) {
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
}
