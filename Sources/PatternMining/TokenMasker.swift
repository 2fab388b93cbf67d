/// One token of a message after built-in masking.
@usableFromInline
struct MaskedToken: Sendable {
    /// Byte range of the token in the original message.
    @usableFromInline var sourceStart: Int32
    @usableFromInline var sourceEnd: Int32
    /// Range of this token's values in ``TokenMasker/segments``.
    @usableFromInline var segmentStart: Int32
    @usableFromInline var segmentEnd: Int32
    /// Stable hash of the *exact* form: values that are always variables (numbers, addresses, paths …) as `<*>`,
    /// everything else as written. Equals ``TokenMasker/wildcardHash`` when the whole token is such a value.
    @usableFromInline var hash: UInt64
    /// Stable hash of the *shape*: value-shaped words (glued numbers, host names, quoted strings, key=value values)
    /// as `<*>` too. Equals ``hash`` for tokens without such values, ``TokenMasker/wildcardHash`` when the token is
    /// nothing but values.
    @usableFromInline var shape: UInt64

    @usableFromInline var isWildcard: Bool { hash == TokenMasker.wildcardHash }
}

/// Where a value sits in a token, and at which level of generalisation it is a parameter.
@usableFromInline
struct ValueSegment: Sendable {
    @usableFromInline var start: Int32
    @usableFromInline var end: Int32
    @usableFromInline var kind: Kind

    @usableFromInline enum Kind: UInt8, Sendable {
        /// Always a variable: `<*>` in the exact form and in the shape.
        case always
        /// Value-shaped: `<*>` in the shape only (a literal until its position proves variable).
        case shaped
        /// A value inside a quoted string: `<*>` in the exact form; the shape covers the whole string.
        case quotedInner
    }
}

/// Splits a message into tokens and masks the variable parts, in two levels.
///
/// The rules are deliberately generic so that one configuration works across very different logs (they were
/// written from what log values look like — the shapes named in the README — not from the evaluation systems):
///
/// * A token is a maximal run of non-whitespace bytes, except that a quoted `key="value with spaces"` (or `'…'`,
///   closed within 256 bytes) is one token.
/// * Inside a token, *segments* are separated by punctuation that usually delimits values
///   (`= : , ; ( ) [ ] { } < > " ' |` and `@`; a `:` between two digits does not separate, so times and IPv6
///   addresses stay one value).
/// * **Always variables** (`<*>` in the exact form): numbers in every notation — integers, decimals, signed,
///   hexadecimal (`0x1f`, `a3f9c2`), IPv4/IPv6, UUIDs, dates, times and timestamps, versions — with or without a
///   unit (`12ms`, `3.5GB`, `100%`); runs of at least 8 hexadecimal letters; file paths (`/…`, `./…`, `~/…`,
///   anything with two `/`, Windows paths `C:\…` and `\\host\…`; a path runs to the end of the token); URLs
///   (`scheme://…`); e-mail addresses; `host:port` pairs; empty pairs such as `()`, `""` and empty `key=` values.
/// * **Value-shaped words** (`<*>` in the shape only): words with digits glued to letters (`blk_-123`,
///   `job_2015_0001`, `user298`, `node-7`, `eth0`), host names and domains (`www.example.com`, `db1.internal`),
///   quoted strings, and the values of `key=value` pairs. Whether such a position *is* a variable is left to the
///   miner, which generalises it once it has shown enough distinct values: `eth0`/`wlan0` or `state 'Active'`/
///   `'Inactive'` usually name different events, while user names, job ids or host names come in their hundreds.
/// * A token made only of values and delimiters is a whole-token variable when one of them is always a variable
///   (`10.0.0.1:80`, `www.example.com:443`, `(42)`, `b8:e8:56:3e:fc:ed`); when all are value-shaped its shape is
///   `<*>`.
/// * Date words (`Mon`, `Jul`), time zones (`UTC`, `PDT`), units (`KB`, `ms`, `sec`) and value-shaped tokens next to
///   a whole-token variable are variables too, so `Sun Jul 10 03:55:21 2005`, `16.0 KB` or
///   `10.0.0.7 (host-7.example.net)` collapse into one.
/// * Consecutive whole-token variables are collapsed into one, so variable-length values do not split a template.
///
/// The masker computes both hashes of each token while scanning and reuses its buffers, so the hot path does not
/// allocate; masked texts are rebuilt from the source only when a template is created or generalised.
@usableFromInline
struct TokenMasker: Sendable {
    /// `StableHash.hash("<*>")`, as a literal so hot loops do not pay for lazy static initialisation
    /// (checked by a unit test).
    @usableFromInline static var wildcardHash: UInt64 { 0x70cc_8c18_30b5_f0c7 }

    @usableFromInline var tokens: [MaskedToken] = []
    /// Values, in token order; each token owns a contiguous run of them.
    @usableFromInline var segments: [ValueSegment] = []

    @usableFromInline init() {
        tokens.reserveCapacity(64)
        segments.reserveCapacity(64)
    }

    @usableFromInline static let space: UInt16 = 1
    @usableFromInline static let digit: UInt16 = 2
    @usableFromInline static let hexLetter: UInt16 = 4
    @usableFromInline static let delimiter: UInt16 = 8
    @usableFromInline static let letter: UInt16 = 16
    /// Punctuation that may sit inside a number: `. - + _ / : , %`.
    @usableFromInline static let numberPunctuation: UInt16 = 32
    /// Letters, digits and `-`: what host-name labels are made of.
    @usableFromInline static let hostByte: UInt16 = 64
    /// `@` and quotes: bytes the tokenizer notes for the e-mail and quoted-value rules.
    @usableFromInline static let special: UInt16 = 128
    /// `.`, `\` and `/`: bytes the segment classification counts (dots, backslashes, slashes).
    @usableFromInline static let counted: UInt16 = 256
    /// Digits and `. - + _ , %`: what a plain number is made of (the fast path for numbers).
    @usableFromInline static let numberFill: UInt16 = 512

    /// Byte classes, computed once.
    @usableFromInline static let classTable: [UInt16] = {
        var t = [UInt16](repeating: 0, count: 256)
        for b in [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r"), 0x0b, 0x0c] {
            t[Int(b)] |= space
        }
        for b in UInt8(ascii: "0")...UInt8(ascii: "9") { t[Int(b)] |= digit | hostByte }
        for b in UInt8(ascii: "a")...UInt8(ascii: "f") { t[Int(b)] |= hexLetter }
        for b in UInt8(ascii: "A")...UInt8(ascii: "F") { t[Int(b)] |= hexLetter }
        for b in UInt8(ascii: "a")...UInt8(ascii: "z") { t[Int(b)] |= letter | hostByte }
        for b in UInt8(ascii: "A")...UInt8(ascii: "Z") { t[Int(b)] |= letter | hostByte }
        t[Int(UInt8(ascii: "-"))] |= hostByte
        for c in "=:,;()[]{}<>\"'|@" { t[Int(c.asciiValue!)] |= delimiter }
        for c in ".-+_/:,%" { t[Int(c.asciiValue!)] |= numberPunctuation }
        for c in "@\"'" { t[Int(c.asciiValue!)] |= special }
        for c in "./\\" { t[Int(c.asciiValue!)] |= counted }
        for c in "0123456789.-+_,%" { t[Int(c.asciiValue!)] |= numberFill }
        return t
    }()

    /// Words that are variables when they sit next to a whole-token variable: dates, time zones and units.
    static let contextWords = StableHashSet(contextWordSet)
    static let contextWordSet: Set<UInt64> = {
        let words = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun",
                     "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday",
                     "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
                     "January", "February", "March", "April", "June", "July", "August", "September", "October",
                     "November", "December",
                     "UTC", "GMT", "Z", "CET", "CEST", "EST", "EDT", "CST", "CDT", "MST", "MDT", "PST", "PDT",
                     "AM", "PM", "B", "KB", "MB", "GB", "TB", "KiB", "MiB", "GiB", "TiB", "bytes", "ms", "us", "ns",
                     "s", "sec", "secs", "sec.", "secs.", "second", "seconds", "min", "mins", "minute", "minutes",
                     "hour", "hours", "msec", "msecs", "millis", "milliseconds", "%"]
        var set = Set<UInt64>()
        for w in words {
            set.insert(StableHash.hash(w))
            set.insert(StableHash.hash(w + ","))
        }
        return set
    }()

    /// Units that may follow a number in the same token (`12ms`, `3.5GB`), as hashes of their lower-cased bytes.
    static let units = StableHashSet(Set(unitWords.map { StableHash.hash($0) }))
    static let unitWords: [String] = ["ms", "us", "ns", "s", "sec", "secs", "m", "min", "mins", "h", "hr", "hrs",
                                     "d", "b", "k", "kb", "mb", "gb", "tb", "pb", "kib", "mib", "gib", "tib", "g",
                                     "bps", "kbps", "mbps", "gbps", "hz", "khz", "mhz", "ghz", "x", "th", "st",
                                     "nd", "rd"]

    /// Top-level domains that mark a dotted word as a host name (generic ones, infrastructure names and the
    /// country codes most often seen in logs).
    static let topLevelDomains = StableHashSet(Set(topLevelDomainNames.map { StableHash.hash($0) }))
    static let topLevelDomainNames: [String] = [
        "com", "net", "org", "edu", "gov", "mil", "int", "info", "biz", "io", "co", "ai", "app", "dev", "cloud",
        "local", "localdomain", "lan", "internal", "intranet", "corp", "home", "arpa", "localhost",
        "uk", "de", "fr", "jp", "cn", "hk", "tw", "kr", "ru", "br", "in", "au", "ca", "us", "eu", "nl", "se", "no",
        "fi", "dk", "ch", "at", "be", "it", "es", "pt", "pl", "cz", "il", "sg", "nz", "za", "mx", "ar", "ie", "tv",
        "me", "ly", "gl", "xyz", "site", "online", "tech"]

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
                while i < count && table[Int(bytes[i])] & Self.space != 0 { i &+= 1 }
                if i >= count { break }
                let (end, wildcard) = maskToken(bytes, i, count, table)
                if wildcard { anyWildcard = true }
                i = end
            }
        }
        if anyWildcard {
            applyContextRules(bytes)
            collapseWildcards()
        }
    }

    /// The closing quote of the quoted value opening at `open` that runs past whitespace (within 256 bytes and
    /// one line), or nil.
    private func quotedStringEnd(_ bytes: UnsafeBufferPointer<UInt8>, _ open: Int, _ count: Int,
                                 _ table: UnsafeBufferPointer<UInt16>) -> Int? {
        let quote = bytes[open]
        let limit = min(count, open + 256)
        var j = open + 1
        while j < limit {
            let c = bytes[j]
            if c == quote { return j }
            // Newlines end a quoted value: a stray quote must not swallow the next line.
            if c == UInt8(ascii: "\n") || c == UInt8(ascii: "\r") { return nil }
            j += 1
        }
        return nil
    }

    /// Masks a token holding a quoted string with spaces (`open…close`, then `close+1..<end` as written).
    private mutating func maskQuoted(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ open: Int, _ close: Int,
                                     _ end: Int, _ table: UnsafeBufferPointer<UInt16>) -> Bool {
        let segmentStart = segments.count
        // The exact form: the text with always-variables masked, spaces kept.
        var hash = StableHash.offsetBasis
        var shape = StableHash.offsetBasis
        for j in start...open {
            hash = StableHash.mix(hash, bytes[j])
            shape = StableHash.mix(shape, bytes[j])
        }
        var s = open + 1
        while s < close {
            let b = bytes[s]
            if table[Int(b)] & (Self.space | Self.delimiter) != 0 {
                hash = StableHash.mix(hash, b)
                s += 1
                continue
            }
            var e = s
            var scan = SegmentScan()
            while e < close && table[Int(bytes[e])] & (Self.space | Self.delimiter) == 0 {
                scan.add(bytes[e], table[Int(bytes[e])], at: e, from: s, bytes, close, table)
                e += 1
            }
            if classify(scan, bytes, s, e, table, afterEquals: false) == .always {
                hash = Self.mixWildcard(hash)
                segments.append(ValueSegment(start: Int32(s), end: Int32(e), kind: .quotedInner))
            } else {
                for j in s..<e { hash = StableHash.mix(hash, bytes[j]) }
            }
            s = e
        }
        segments.append(ValueSegment(start: Int32(open + 1), end: Int32(close), kind: .shaped))
        shape = Self.mixWildcard(shape)
        for j in close..<end {
            hash = StableHash.mix(hash, bytes[j])
            shape = StableHash.mix(shape, bytes[j])
        }
        tokens.append(MaskedToken(sourceStart: Int32(start), sourceEnd: Int32(end), segmentStart: Int32(segmentStart),
                                  segmentEnd: Int32(segments.count), hash: hash, shape: shape))
        return false
    }

    @inline(__always)
    static func mixWildcard(_ hash: UInt64) -> UInt64 {
        StableHash.mix(StableHash.mix(StableHash.mix(hash, 0x3c), 0x2a), 0x3e)  // "<*>"
    }

    /// Masks one token; returns `true` when the whole token is a variable.
    /// Masks the token starting at `start` (its end is the next whitespace, or past it for a quoted value);
    /// returns where it ends and whether the whole token is a variable.
    private mutating func maskToken(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ count: Int,
                                    _ table: UnsafeBufferPointer<UInt16>) -> (end: Int, wildcard: Bool) {
        let segmentStart = segments.count
        if isURL(bytes, start, count) || isEmptyPair(bytes, start, count, table) || isWindowsPath(bytes, start, count) {
            let end = tokenEnd(bytes, start, count, table)
            return (end, appendWholeWildcard(start, end, segmentStart))
        }
        var hasAt = false
        var quoted = false
        let end = count  // the scan stops at whitespace: `s` is the token's end when the loop leaves
        var hash = StableHash.offsetBasis
        // The shape differs from the exact hash only with value-shaped segments; it is computed when the miner
        // needs it (``resolveShapes(_:)``), not for messages the exact-match cache answers.
        var shape = StableHash.offsetBasis
        var diverged = false
        var literalBytes = 0      // bytes of literal (non-value, non-delimiter) text
        var shortHexLiterals = 0  // of which: short hex-letter runs (`fc` in a MAC address)
        var always = 0
        var shaped = 0
        var s = start
        var slashSplit = false  // the previous segment ended at a lone `/` (`curl/8.5`, `host/10.0.0.1`)
        while s < end {
            let b = bytes[s]
            let bk = table[Int(b)]
            if bk & Self.space != 0 { break }
            // (A `:` inside a number never gets here: the segment scan below keeps it.)
            if (slashSplit && b == UInt8(ascii: "/")) || bk & Self.delimiter != 0 {
                slashSplit = false
                if bk & Self.special != 0 {
                    if b == UInt8(ascii: "@") {
                        hasAt = true
                    } else if !quoted && s > start && bytes[s - 1] == UInt8(ascii: "=") && s - start <= 64 {
                        // `key="…`: when the value runs past whitespace, the token is the whole quoted value.
                        quoted = true
                        if let close = quotedStringEnd(bytes, s, count, table),
                           (s + 1..<close).contains(where: { table[Int(bytes[$0])] & Self.space != 0 }) {
                            while segments.count > segmentStart { segments.removeLast() }
                            let end = tokenEnd(bytes, close + 1, count, table)
                            return (end, maskQuoted(bytes, start, s, close, end, table))
                        }
                    }
                }
                hash = StableHash.mix(hash, b)
                // `key=` with nothing after it: an empty value.
                if b == UInt8(ascii: "=") && (s + 1 == end || table[Int(bytes[s + 1])] & Self.space != 0) && s > start
                    && table[Int(bytes[s - 1])] & Self.letter != 0 {
                    hash = Self.mixWildcard(hash)
                    segments.append(ValueSegment(start: Int32(s + 1), end: Int32(s + 1), kind: .always))
                    always += 1
                }
                s += 1
                continue
            }
            // A segment: bytes up to the next delimiter (a `:` between digits of a number does not end it, so
            // times and IPv6 addresses stay one value, while `host-1:8080` is a name and a port). One pass gathers
            // what the classification needs and hashes the bytes as if literal; a value replaces them by `<*>`.
            let hashBefore = hash
            var scan = SegmentScan()
            var e = s
            var slashes = 0
            var firstSlash = -1
            // Fast path: most segments are words; run through the letters with the least bookkeeping.
            while e < end {
                let k = table[Int(bytes[e])]
                guard k & Self.letter != 0 else { break }
                if k & Self.hexLetter != 0 { scan.hexLetters &+= 1 } else { scan.numberLike = false }
                hash = StableHash.mix(hash, bytes[e])
                e &+= 1
            }
            let letters = e
            if e == s && table[Int(b)] & Self.digit != 0 {
                // Fast path for plain numbers (`42`, `3.14`, `10.0.0.1`, `10:20:30`, `2026-11-24T10:00:00Z`, hex).
                while e < end {
                    let c = bytes[e]
                    let k = table[Int(c)]
                    if k & (Self.numberFill | Self.hexLetter) != 0 {
                        e &+= 1
                        continue
                    }
                    let afterDigit = table[Int(bytes[e - 1])] & Self.digit != 0
                    let beforeDigit = e + 1 < end && table[Int(bytes[e + 1])] & Self.digit != 0
                    if afterDigit && ((c == UInt8(ascii: ":") && beforeDigit) || (c == UInt8(ascii: "T") && beforeDigit)
                                      || (c == UInt8(ascii: "Z") && (e + 1 == end || table[Int(bytes[e + 1])] & (Self.delimiter | Self.space) != 0))
                                      || ((c == UInt8(ascii: "x") || c == UInt8(ascii: "X")) && e == s + 1 && b == UInt8(ascii: "0"))) {
                        e &+= 1
                        continue
                    }
                    break
                }
                if e == end || table[Int(bytes[e])] & (Self.delimiter | Self.space) != 0 {
                    if s == start && (e == end || table[Int(bytes[e])] & Self.space != 0) {
                        // The whole token is the number.
                        return (e, appendWholeWildcard(start, e, segmentStart))
                    }
                    hash = Self.mixWildcard(hashBefore)
                    segments.append(ValueSegment(start: Int32(s), end: Int32(e), kind: .always))
                    always &+= 1
                    s = e
                    continue
                }
                // Something else follows (a unit, letters, a slash): classify the whole segment.
                e = s
            }
            if e == end || table[Int(bytes[e])] & (Self.delimiter | Self.space) != 0 {
                // A plain word (the common case): literal unless it is a long hex run or a `key=`/quoted value.
                let length = e - s
                let previous = s > start ? bytes[s - 1] : 0
                if length > 0 && !(scan.hexLetters == length && length >= 8) && previous != UInt8(ascii: "=")
                    && previous != UInt8(ascii: "\"") && previous != UInt8(ascii: "'") {
                    literalBytes &+= length
                    if scan.hexLetters == length && length <= 4 { shortHexLiterals &+= length }
                    s = e
                    continue
                }
            }
            // The rest of the segment (digits, punctuation) is scanned without hashing: it is usually a value, and a
            // literal is hashed once it is known to be one.
            while e < end {
                let c = bytes[e]
                let k = table[Int(c)]
                if k & (Self.delimiter | Self.space) != 0 {
                    if k & Self.space != 0 { break }
                    if !(scan.numeric && c == UInt8(ascii: ":") && e > s && e + 1 < end
                         && table[Int(bytes[e - 1])] & Self.digit != 0 && table[Int(bytes[e + 1])] & Self.digit != 0) { break }
                }
                scan.add(c, k, at: e, from: s, bytes, end, table)
                e &+= 1
            }
            firstSlash = scan.firstSlash
            if firstSlash >= 0 {
                slashes = 1
                for j in (firstSlash + 1)..<e where bytes[j] == UInt8(ascii: "/") { slashes += 1 }
            }
            let startsPath = b == UInt8(ascii: "/")
                || (e - s > 2 && (b == UInt8(ascii: ".") || b == UInt8(ascii: "~")) && bytes[s + 1] == UInt8(ascii: "/"))
            var kind: Classification
            if (startsPath && e - s > 1) || slashes >= 2 {
                // A path runs to the end of the token (query strings, `:` in names), minus closing punctuation.
                if startsPath {
                    e = tokenEnd(bytes, e, count, table)
                    while e > s + 1 && table[Int(bytes[e - 1])] & Self.delimiter != 0 { e -= 1 }
                }
                kind = .always
            } else {
                if slashes == 1 {
                    // One `/` between two words: classify each side (`HTTP/1.1` is a protocol and a version).
                    e = firstSlash
                    slashSplit = true
                    scan = SegmentScan()
                    for j in s..<e { scan.add(bytes[j], table[Int(bytes[j])], at: j, from: s, bytes, e, table) }
                }
                // `key=value`, `key='value'` and a quoted word on its own (`'Active'`, `"US",`) are value-shaped;
                // quoted words inside a bigger token (JSON) are not.
                let quote = s > start && (bytes[s - 1] == UInt8(ascii: "\"") || bytes[s - 1] == UInt8(ascii: "'"))
                let afterEquals = s > start && bytes[s - 1] == UInt8(ascii: "=")
                    || (quote && s - 2 >= start && bytes[s - 2] == UInt8(ascii: "="))
                    || (quote && s - 1 == start && e < count && bytes[e] == bytes[start])
                kind = classify(scan, bytes, s, e, table, afterEquals: afterEquals)
            }
            if kind != .always {
                // Hash the literal text: the letters were hashed on the way; the rest now.
                if e < letters {
                    hash = hashBefore
                    for j in s..<e { hash = StableHash.mix(hash, bytes[j]) }
                } else {
                    for j in letters..<e { hash = StableHash.mix(hash, bytes[j]) }
                }
            }
            switch kind {
            case .always:
                hash = Self.mixWildcard(hashBefore)
                segments.append(ValueSegment(start: Int32(s), end: Int32(e), kind: .always))
                always += 1
            case .shaped:
                diverged = true
                segments.append(ValueSegment(start: Int32(s), end: Int32(e), kind: .shaped))
                shaped += 1
            case .literal:
                literalBytes += e - s
                if scan.hexLetters == e - s && e - s <= 4 { shortHexLiterals += e - s }
            }
            s = e
        }
        let tokenEnd = s
        if hasAt && isEmail(bytes, start, tokenEnd, table) {
            while segments.count > segmentStart { segments.removeLast() }
            return (tokenEnd, appendWholeWildcard(start, tokenEnd, segmentStart))
        }
        shape = diverged ? Self.pendingShape : hash
        // Only values and delimiters (short hex-letter runs count as values when there are several values).
        let values = always + shaped
        if values > 0 && (literalBytes == 0 || (values >= 2 && literalBytes == shortHexLiterals)) {
            if always > 0 {
                while segments.count > segmentStart { segments.removeLast() }
                return (tokenEnd, appendWholeWildcard(start, tokenEnd, segmentStart))
            }
            shape = Self.wildcardHash
        }
        tokens.append(MaskedToken(sourceStart: Int32(start), sourceEnd: Int32(tokenEnd), segmentStart: Int32(segmentStart),
                                  segmentEnd: Int32(segments.count), hash: hash, shape: shape))
        return (tokenEnd, false)
    }

    /// Marks a shape not computed yet (a real shape that happens to hash to 0 is merely recomputed).
    @usableFromInline static var pendingShape: UInt64 { 0 }

    /// Computes the shapes ``mask(_:)`` left pending: the token text with its always-variable and value-shaped
    /// segments as `<*>`.
    @usableFromInline
    mutating func resolveShapes(_ message: UnsafeRawBufferPointer) {
        let bytes = message.bindMemory(to: UInt8.self)
        for i in tokens.indices where tokens[i].shape == Self.pendingShape {
            let t = tokens[i]
            var shape = StableHash.offsetBasis
            var p = Int(t.sourceStart)
            for k in Int(t.segmentStart)..<Int(t.segmentEnd) {
                let v = segments[k]
                guard Self.isParameter(v.kind, shape: true), Int(v.start) >= p else { continue }
                for j in p..<Int(v.start) { shape = StableHash.mix(shape, bytes[j]) }
                shape = Self.mixWildcard(shape)
                p = Int(v.end)
            }
            for j in p..<Int(t.sourceEnd) { shape = StableHash.mix(shape, bytes[j]) }
            tokens[i].shape = shape
        }
    }

    /// The next whitespace at or after `from` (or `count`).
    @inline(__always)
    private func tokenEnd(_ bytes: UnsafeBufferPointer<UInt8>, _ from: Int, _ count: Int, _ table: UnsafeBufferPointer<UInt16>) -> Int {
        var e = from
        while e < count && table[Int(bytes[e])] & Self.space == 0 { e &+= 1 }
        return e
    }

    enum Classification { case literal, shaped, always }

    /// What a segment (no delimiters inside, except `:` between digits) is.
    @inline(__always)
    private func classify(_ scan: SegmentScan, _ bytes: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int,
                          _ table: UnsafeBufferPointer<UInt16>, afterEquals: Bool) -> Classification {
        let length = e - s
        if scan.digits > 0 {
            if scan.numberLike && (scan.unitStart < 0 || isUnit(bytes, scan.unitStart, e)) { return .always }
            if scan.backslashes >= 2 || isIdentifier(bytes, s, e, table) { return .always }
            if scan.dots >= 1 && isHostName(bytes, s, e, table) { return .always }
            return .shaped
        }
        if scan.backslashes >= 2 { return .always }
        if scan.hexLetters == length && length >= 8 { return .always }
        if scan.dots >= 1 && isHostName(bytes, s, e, table) { return .always }
        if afterEquals && length > 0 { return .shaped }
        return .literal
    }

    /// What the classification of a segment needs, gathered byte by byte.
    struct SegmentScan {
        var digits = 0, hexLetters = 0, dots = 0, backslashes = 0
        /// Digits, hex letters and number punctuation only so far (and `0x`, ISO 8601's `T` and `Z`, a unit suffix).
        var numberLike = true
        /// Where trailing letters that may be a unit begin (-1: none).
        var unitStart = -1
        /// The first `/` (-1: none).
        var firstSlash = -1
        /// Still a number without a unit: a `:` between digits continues it.
        var numeric: Bool { numberLike && unitStart < 0 }

        @inline(__always)
        mutating func add(_ c: UInt8, _ k: UInt16, at j: Int, from s: Int, _ bytes: UnsafeBufferPointer<UInt8>, _ end: Int,
                          _ table: UnsafeBufferPointer<UInt16>) {
            digits &+= Int((k >> 1) & 1)       // TokenMasker.digit
            hexLetters &+= Int((k >> 2) & 1)   // TokenMasker.hexLetter
            if k & TokenMasker.counted != 0 {
                if c == UInt8(ascii: ".") {
                    dots &+= 1
                } else if c == UInt8(ascii: "\\") {
                    backslashes &+= 1
                } else if firstSlash < 0 {
                    firstSlash = j
                }
            }
            guard numberLike else { return }
            if unitStart >= 0 {
                if k & TokenMasker.letter == 0 && c != UInt8(ascii: "/") { numberLike = false }
                return
            }
            if k & (TokenMasker.digit | TokenMasker.hexLetter | TokenMasker.numberPunctuation) != 0 { return }
            let afterDigit = j > s && table[Int(bytes[j - 1])] & TokenMasker.digit != 0
            // `0x1f`, and the `T` and `Z` of ISO 8601 timestamps.
            if (c == UInt8(ascii: "x") || c == UInt8(ascii: "X")) && j == s + 1 && bytes[s] == UInt8(ascii: "0") { return }
            if c == UInt8(ascii: "T") && afterDigit && j + 1 < end && table[Int(bytes[j + 1])] & TokenMasker.digit != 0 { return }
            if c == UInt8(ascii: "Z") && afterDigit
                && (j + 1 == end || table[Int(bytes[j + 1])] & TokenMasker.delimiter != 0) { return }
            if k & TokenMasker.letter != 0 && digits > 0 { unitStart = j; return }
            numberLike = false
        }
    }

    /// Whether `bytes[s..<e]` (letters, maybe a `/s` rate suffix) is a unit such as `ms`, `GB` or `KB/s`.
    private func isUnit(_ bytes: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int) -> Bool {
        var end = e
        if end - s > 2 && bytes[end - 2] == UInt8(ascii: "/") && (bytes[end - 1] | 0x20) == UInt8(ascii: "s") { end -= 2 }
        guard end - s >= 1 && end - s <= 5 else { return false }
        var word = StableHash.offsetBasis
        for j in s..<end {
            let c = bytes[j]
            guard (c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "z") else { return false }
            word = StableHash.mix(word, c | 0x20)
        }
        return Self.units.contains(word)
    }

    /// Whether a word with digits glued to letters is an identifier — a run of at least three digits or four digits in
    /// all (`blk_-1608999687919862906`, `job_2015_0001`, `user298`, `attempt_1445144423722_0020_m_000001_0`) — rather
    /// than a name with a digit in it (`eth0`, `en1`, `L2`, `node-7`, `IPv6`, `Slf4j`), which stays value-shaped.
    private func isIdentifier(_ bytes: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int, _ table: UnsafeBufferPointer<UInt16>) -> Bool {
        var run = 0
        var total = 0
        for j in s..<e {
            if table[Int(bytes[j])] & Self.digit != 0 {
                run += 1
                total += 1
                if run >= 3 || total >= 4 { return true }
            } else {
                run = 0
            }
        }
        return false
    }

    /// `label.label….tld`: letters, digits and `-` between dots, ending in a known top-level domain.
    private func isHostName(_ bytes: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int, _ table: UnsafeBufferPointer<UInt16>) -> Bool {
        var labelStart = s
        for j in s..<e {
            let c = bytes[j]
            if c == UInt8(ascii: ".") {
                if j == labelStart { return false }
                labelStart = j + 1
            } else if table[Int(c)] & Self.hostByte == 0 {
                return false
            }
        }
        let tldLength = e - labelStart
        guard labelStart > s, tldLength >= 2, tldLength <= 11 else { return false }
        var tld = StableHash.offsetBasis
        for j in labelStart..<e {
            let c = bytes[j]
            guard table[Int(c)] & Self.letter != 0 else { return false }
            tld = StableHash.mix(tld, c | 0x20)
        }
        return Self.topLevelDomains.contains(tld)
    }

    @inline(__always)
    private mutating func appendWholeWildcard(_ start: Int, _ end: Int, _ segmentStart: Int) -> Bool {
        segments.append(ValueSegment(start: Int32(start), end: Int32(end), kind: .always))
        tokens.append(MaskedToken(sourceStart: Int32(start), sourceEnd: Int32(end), segmentStart: Int32(segmentStart),
                                  segmentEnd: Int32(segmentStart + 1), hash: Self.wildcardHash, shape: Self.wildcardHash))
        return true
    }

    /// Turns date words, time zones and units that touch a whole-token variable into variables.
    private mutating func applyContextRules(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard tokens.count > 1 else { return }
        var changed = true
        var rounds = 0
        while changed && rounds < 4 {
            changed = false
            rounds += 1
            let contextWords = Self.contextWords
            for i in 0..<tokens.count where !tokens[i].isWildcard {
                let before = i > 0 && tokens[i - 1].isWildcard
                let after = i + 1 < tokens.count && tokens[i + 1].isWildcard
                // A value-shaped word touching a variable is part of it (`10.0.0.7 (host-7.example.net)`).
                guard before || after,
                      tokens[i].shape == Self.wildcardHash || contextWords.contains(tokens[i].hash) else { continue }
                var t = tokens[i]
                t.segmentStart = Int32(segments.count)
                segments.append(ValueSegment(start: t.sourceStart, end: t.sourceEnd, kind: .always))
                t.segmentEnd = Int32(segments.count)
                t.hash = Self.wildcardHash
                t.shape = Self.wildcardHash
                tokens[i] = t
                changed = true
            }
        }
    }

    /// Collapses runs of whole-token variables into one, so variable-length values do not split a template.
    private mutating func collapseWildcards() {
        // Usually nothing to collapse: then the tokens stay as they are.
        var adjacent = false
        for i in 1..<max(tokens.count, 1) where tokens[i].isWildcard && tokens[i - 1].isWildcard {
            adjacent = true
            break
        }
        guard adjacent else { return }
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
                    segments.append(ValueSegment(start: t.sourceStart, end: t.sourceEnd, kind: .always))
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
        segments.append(ValueSegment(start: last.sourceStart, end: last.sourceEnd, kind: .always))
        last.segmentEnd = Int32(segments.count)
        last.hash = Self.wildcardHash
        last.shape = Self.wildcardHash
        tokens.removeLast(tokens.count - limit)
        tokens[limit - 1] = last
        if limit >= 2 && tokens[limit - 2].isWildcard {
            // Keep the invariant that whole-token variables are never adjacent.
            tokens[limit - 2].sourceEnd = last.sourceEnd
            tokens[limit - 2].segmentStart = last.segmentStart
            tokens[limit - 2].segmentEnd = last.segmentEnd
            segments[Int(last.segmentStart)].start = tokens[limit - 2].sourceStart
            tokens.removeLast()
        }
    }

    /// The text of token `index` of `message` (the message last passed to ``mask(_:)``) with its values masked:
    /// only those that are always variables (`shape: false`), or value-shaped ones too (`shape: true`).
    @usableFromInline
    func maskedText(_ index: Int, in message: UnsafeRawBufferPointer, shape: Bool = false) -> String {
        let t = tokens[index]
        if t.isWildcard || (shape && t.shape == Self.wildcardHash) { return "<*>" }
        var out: [UInt8] = []
        var p = Int(t.sourceStart)
        for s in Int(t.segmentStart)..<Int(t.segmentEnd) {
            let v = segments[s]
            guard Self.isParameter(v.kind, shape: shape), Int(v.start) >= p else { continue }
            out.append(contentsOf: message[p..<Int(v.start)])
            out.append(contentsOf: "<*>".utf8)
            p = Int(v.end)
        }
        out.append(contentsOf: message[p..<Int(t.sourceEnd)])
        return String(decoding: out, as: UTF8.self)
    }

    /// Whether a value of this kind is a parameter at the exact level or at the shape level.
    @inline(__always) @usableFromInline
    static func isParameter(_ kind: ValueSegment.Kind, shape: Bool) -> Bool {
        switch kind {
        case .always: true
        case .shaped: shape
        case .quotedInner: !shape
        }
    }

    /// `()`, `[]`, `{}`, `""`, `''`, `<>`: an empty value.
    @inline(__always)
    private func isEmptyPair(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ count: Int,
                             _ table: UnsafeBufferPointer<UInt16>) -> Bool {
        guard count - start >= 2, count - start == 2 || table[Int(bytes[start + 2])] & Self.space != 0 else { return false }
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
    @inline(__always)
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

    /// `name@host.domain` (optionally in `<…>`, followed by punctuation).
    private func isEmail(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int, _ table: UnsafeBufferPointer<UInt16>) -> Bool {
        var s = start
        var e = end
        if s < e && bytes[s] == UInt8(ascii: "<") { s += 1 }
        while e > s && table[Int(bytes[e - 1])] & Self.delimiter != 0 && bytes[e - 1] != UInt8(ascii: "@") { e -= 1 }
        guard e - s >= 5 else { return false }
        var at = -1
        for j in s..<e where bytes[j] == UInt8(ascii: "@") {
            if at >= 0 { return false }
            at = j
        }
        guard at > s, at + 3 < e else { return false }
        for j in s..<at {
            let c = bytes[j]
            guard table[Int(c)] & Self.hostByte != 0 || c == UInt8(ascii: ".") || c == UInt8(ascii: "_")
                || c == UInt8(ascii: "+") else { return false }
        }
        return isHostName(bytes, at + 1, e, table)
    }

    /// `C:\…` or `\\host\…`.
    @inline(__always)
    private func isWindowsPath(_ bytes: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> Bool {
        guard end - start >= 3 else { return false }
        if bytes[start] == UInt8(ascii: "\\") && bytes[start + 1] == UInt8(ascii: "\\") { return true }
        let c = bytes[start] | 0x20
        return c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z") && bytes[start + 1] == UInt8(ascii: ":")
            && (bytes[start + 2] == UInt8(ascii: "\\") || bytes[start + 2] == UInt8(ascii: "/"))
    }
}

/// A fixed set of ``StableHash`` values, looked up by the hash's own bits (open addressing) instead of hashing it
/// again with `Hasher`: the masker asks on every token.
struct StableHashSet: Sendable {
    private let slots: [UInt64]
    private let mask: Int

    init(_ values: Set<UInt64>) {
        var size = 16
        while size < values.count * 4 { size *= 2 }
        var slots = [UInt64](repeating: 0, count: size)
        for v in values where v != 0 {
            var i = Int(truncatingIfNeeded: v) & (size - 1)
            while slots[i] != 0 { i = (i + 1) & (size - 1) }
            slots[i] = v
        }
        self.slots = slots
        mask = size - 1
    }

    @inline(__always)
    func contains(_ value: UInt64) -> Bool {
        var i = Int(truncatingIfNeeded: value) & mask
        while true {
            let v = slots[i]
            if v == value { return value != 0 }
            if v == 0 { return false }
            i = (i + 1) & mask
        }
    }
}
