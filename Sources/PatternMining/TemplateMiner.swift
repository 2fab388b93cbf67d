/// Online log template miner in the family of Drain, with variables confirmed by cardinality.
///
/// Each message is tokenized and masked by built-in generic rules (see ``TokenMasker``) at two levels: values that
/// are always variables (numbers, addresses, paths, URLs, ids …) become `<*>` right away; value-shaped words
/// (words with digits glued on, host names, quoted strings, `key=value` values) are kept as written but remembered
/// as candidates. Messages are then grouped Drain-style: candidate templates share the token count and the shape of
/// the first token; the most similar candidate is chosen (``Configuration/similarityThreshold``).
///
/// **Variables are confirmed by cardinality.** A message that is similar to a template but differs from it in some
/// positions does not generalise the template at once: it starts a *sibling* template in the same family. Each
/// family counts the distinct values it has seen at each differing position; a position becomes `<*>` for the whole
/// family once it has shown ``Configuration/distinctWordsForVariable`` distinct plain words, or
/// ``Configuration/distinctValuesForVariable`` distinct value-shaped words (then only their variable part becomes
/// `<*>`: `job_<*>`-like shapes keep their literal frame). Siblings that become identical are merged into the oldest;
/// the others' ids become aliases of it (``resolve(_:)``). So `state 'Active'` and `state 'Inactive'` stay two
/// events, while user names, block ids or host names — which come in their hundreds — fold into one template.
/// With both counts at 2 the miner behaves like Drain (generalise at the first difference).
///
/// **Template ids** are the FNV-1a 64-bit hash of the template text at creation. Ids are therefore stable across
/// runs fed the same input in the same order, agree between a batch run and a live run, and a template that is
/// evicted and later re-created gets the same id again. A merged template's id resolves to the template it was
/// merged into.
///
/// **Memory** is bounded by ``Configuration/maxTemplates``: when the cap is exceeded the least recently seen
/// templates are evicted (in batches of 1/16 of the cap, so the cost of eviction is amortised); families and
/// aliases are bounded by the same cap.
///
/// The miner is a value type: `Sendable`, and its state is `Codable` for persistence (the exact-match cache is
/// rebuilt on demand after decoding).
public struct TemplateMiner: Sendable {
    /// Tuning knobs. The defaults are the one configuration used for every kind of log, chosen by
    /// leave-one-system-out cross-validation on Loghub (see the README's evaluation section).
    public struct Configuration: Sendable, Codable, Equatable {
        /// Minimum share of a template's constant positions a message must match to join its family.
        public var similarityThreshold: Double
        /// Maximum number of templates kept; the least recently seen are evicted beyond it.
        public var maxTemplates: Int
        /// Maximum number of tokens considered; longer messages are truncated (the tail joins the last `<*>`).
        public var maxTokens: Int
        /// Distinct plain words a position must show before it becomes `<*>` (2: at the first difference).
        public var distinctWordsForVariable: Int
        /// Distinct value-shaped words (glued numbers, host names, quoted strings, `key=value` values) a position
        /// must show before their variable part becomes `<*>`.
        public var distinctValuesForVariable: Int
        /// …and the distinct values must be at least this share of the messages seen there: values that each recur
        /// many times (states, levels, interface names) are an enumeration of events, not a variable. A position
        /// with three times as many distinct values becomes a variable regardless. 0 turns the share test off.
        public var distinctShareForVariable: Double

        public init(similarityThreshold: Double = 0.8, maxTemplates: Int = 10_000, maxTokens: Int = 256,
                    distinctWordsForVariable: Int = 3, distinctValuesForVariable: Int = 3,
                    distinctShareForVariable: Double = 0.2) {
            self.similarityThreshold = similarityThreshold
            self.maxTemplates = maxTemplates
            self.maxTokens = maxTokens
            self.distinctWordsForVariable = distinctWordsForVariable
            self.distinctValuesForVariable = distinctValuesForVariable
            self.distinctShareForVariable = distinctShareForVariable
        }

        enum CodingKeys: String, CodingKey {
            case similarityThreshold, maxTemplates, maxTokens, distinctWordsForVariable, distinctValuesForVariable
            case distinctShareForVariable
        }

        public init(from decoder: any Decoder) throws {
            // Keys added later are optional, so saved state from older versions still loads (and keeps its behaviour).
            let c = try decoder.container(keyedBy: CodingKeys.self)
            similarityThreshold = try c.decode(Double.self, forKey: .similarityThreshold)
            maxTemplates = try c.decode(Int.self, forKey: .maxTemplates)
            maxTokens = try c.decode(Int.self, forKey: .maxTokens)
            distinctWordsForVariable = try c.decodeIfPresent(Int.self, forKey: .distinctWordsForVariable) ?? 2
            distinctValuesForVariable = try c.decodeIfPresent(Int.self, forKey: .distinctValuesForVariable) ?? 2
            distinctShareForVariable = try c.decodeIfPresent(Double.self, forKey: .distinctShareForVariable) ?? 0
        }
    }

    /// How far a template position is generalised.
    enum Level: UInt8, Sendable, Codable {
        /// The token as written (always-variables masked).
        case exact
        /// Value-shaped parts masked too: tokens of the same shape match.
        case shape
        /// `<*>`: anything matches.
        case any
    }

    /// A template held by the miner.
    public struct Template: Sendable, Equatable {
        /// Stable identifier (hash of the first template text).
        public let id: UInt64
        /// Current template text.
        public internal(set) var text: String
        /// Number of messages assigned (including those of templates merged into it).
        public internal(set) var count: Int
        /// Miner sequence number of the last message assigned (for least-recently-seen eviction).
        public internal(set) var lastSeen: UInt64
        /// Token texts as shown; `<*>` where generalised.
        var tokens: [String]
        /// Per position: the exact hash required (``Level/exact``), the shape required (``Level/shape``).
        var hashes: [UInt64]
        var shapes: [UInt64]
        var levels: [Level]
        /// Bucket the template lives in (token count + shape of the first token), fixed at creation.
        var bucket: UInt64
        /// The family (id of its first template).
        var family: UInt64
    }

    /// Siblings: templates of one length that differ in a few positions, and the values seen there.
    struct Family: Sendable, Codable, Equatable {
        struct Value: Sendable, Codable, Equatable {
            var hash: UInt64
            var shape: UInt64
            /// The value reads as the name of an event (``TemplateMiner/isEventWord(_:)``).
            var eventWord = false

            init(hash: UInt64, shape: UInt64, eventWord: Bool) {
                self.hash = hash
                self.shape = shape
                self.eventWord = eventWord
            }

            init(from decoder: any Decoder) throws {
                // `eventWord` came later: state saved before it still loads.
                let c = try decoder.container(keyedBy: CodingKeys.self)
                hash = try c.decode(UInt64.self, forKey: .hash)
                shape = try c.decode(UInt64.self, forKey: .shape)
                eventWord = try c.decodeIfPresent(Bool.self, forKey: .eventWord) ?? false
            }
        }
        /// Member template ids, oldest first.
        var members: [UInt64]
        /// Distinct values seen at the positions where members differ (bounded).
        var positions: [Int32: [Value]] = [:]
    }

    public private(set) var configuration: Configuration
    /// Number of messages seen so far.
    public private(set) var messagesSeen: UInt64 = 0
    /// Number of templates evicted so far because of ``Configuration/maxTemplates``.
    public private(set) var evictions: Int = 0
    /// Number of templates merged into a sibling so far.
    public private(set) var merges: Int = 0
    /// Changes whenever a template's text changes or an id stops standing for the template it stood for (a
    /// generalisation, a merge, an eviction). A caller that keeps something per template id — labels made from the
    /// text — can keep it while this stays the same.
    public private(set) var textVersion: UInt64 = 0

    private var templates: [Template] = []
    private var families: [UInt64: Family] = [:]
    /// Ids of merged templates → the template they were merged into.
    private var aliases: [UInt64: UInt64] = [:]
    private var indexByID: [UInt64: Int32] = [:]
    private var buckets: [UInt64: [Int32]] = [:]
    private var lengthBuckets: [Int: [Int32]] = [:]
    private var exact: [UInt64: Int32] = [:]
    /// Shape sequence → a template that took a message of that shape (a hint: acceptance is checked on use).
    private var byShape: [UInt64: Int32] = [:]
    private var masker = TokenMasker()

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// All templates currently held, in creation order (evicted and merged ones excluded).
    public var allTemplates: [Template] { templates }

    /// Number of templates currently held.
    public var templateCount: Int { templates.count }

    /// The template with the given id (or the template it was merged into), if held.
    public func template(id: UInt64) -> Template? {
        indexByID[resolve(id)].map { templates[Int($0)] }
    }

    /// The id a template id stands for now: itself, or the template it was (transitively) merged into.
    /// A batch consumer that keeps the ids returned by ``add(_:)`` resolves them at the end to get the final groups.
    public func resolve(_ id: UInt64) -> UInt64 {
        var current = id
        var steps = 0
        while let next = aliases[current], steps < 64 {
            current = next
            steps += 1
        }
        return current
    }

    /// Formats an id as 16 lower-case hexadecimal digits.
    public static func idString(_ id: UInt64) -> String {
        let hex = String(id, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Assigns a message (raw bytes, UTF-8 expected but not required) to a template, creating templates or
    /// generalising them as needed.
    public mutating func add(_ message: UnsafeRawBufferPointer) -> MinedTemplate {
        masker.mask(message)
        masker.truncate(to: max(configuration.maxTokens, 1))
        let (index, isNew, generalized) = addMasked(message)
        var ranges: [Range<Int>] = []
        appendParameterRanges(index, to: &ranges)
        let t = templates[index]
        evictBeyondCap()
        return MinedTemplate(templateID: t.id, template: t.text, parameterRanges: ranges, isNew: isNew,
                             generalized: generalized)
    }

    /// What ``add(_:premasked:at:parameterRanges:)`` tells about a message: like ``MinedTemplate`` without the
    /// parameter ranges, which go to a buffer the caller keeps.
    public struct Assignment: Sendable, Equatable {
        public let templateID: UInt64
        public let template: String
        public let isNew: Bool
        public let generalized: Bool
        /// The miner's ``TemplateMiner/textVersion`` right after this message was assigned.
        public let textVersion: UInt64
    }

    /// Assigns message `index` of a batch masked with ``premask(_:count:parts:message:)``: the same as
    /// ``add(_:)`` on `message` (its bytes), without allocating. The ranges of the values the template's `<*>`
    /// stand for are appended to `parameterRanges`.
    public mutating func add(_ message: UnsafeRawBufferPointer, premasked: PremaskedMessages, at index: Int,
                             parameterRanges: inout [Range<Int>]) -> Assignment {
        add(message, loading: { premasked.load(index, into: &$0) }, parameterRanges: &parameterRanges)
    }

    /// ``add(_:premasked:at:parameterRanges:)`` with the message's tokens put into the masker by `load`.
    @inline(__always)
    mutating func add(_ message: UnsafeRawBufferPointer, loading load: (inout TokenMasker) -> Void,
                      parameterRanges: inout [Range<Int>]) -> Assignment {
        load(&masker)
        let (t, isNew, generalized) = addMasked(message)
        appendParameterRanges(t, to: &parameterRanges)
        let (id, text) = (templates[t].id, templates[t].text)
        evictBeyondCap()
        return Assignment(templateID: id, template: text, isNew: isNew, generalized: generalized, textVersion: textVersion)
    }

    /// Evicts the least recently seen templates when there are more than the cap (after the caller has read the
    /// template it was given: with a cap of one, it goes too).
    @inline(__always)
    private mutating func evictBeyondCap() {
        if templates.count > configuration.maxTemplates { evictLeastRecentlySeen() }
    }

    /// Groups the message whose tokens ``masker`` holds; returns the template's index (eviction is left to the
    /// caller, ``evictBeyondCap()``).
    private mutating func addMasked(_ message: UnsafeRawBufferPointer) -> (index: Int, isNew: Bool, generalized: Bool) {
        messagesSeen &+= 1
        var sequenceHash = StableHash.offsetBasis
        for t in masker.tokens { sequenceHash = StableHash.combine(sequenceHash, t.hash) }
        sequenceHash = StableHash.combine(sequenceHash, UInt64(masker.tokens.count))

        if let hit = exact[sequenceHash] {
            let index = Int(hit)
            templates[index].count += 1
            templates[index].lastSeen = messagesSeen
            return (index, false, false)
        }
        masker.resolveShapes(message)
        let tokens = masker.tokens
        // Value-shaped words make most sequences new; a template that took the same shapes before usually takes
        // this message too (checked, not assumed).
        var shapeHash = StableHash.offsetBasis
        for t in tokens { shapeHash = StableHash.combine(shapeHash, t.shape) }
        shapeHash = StableHash.combine(shapeHash, UInt64(tokens.count))
        if let hit = byShape[shapeHash], Int(hit) < templates.count, Self.acceptsAll(templates[Int(hit)], tokens) {
            let index = Int(hit)
            templates[index].count += 1
            templates[index].lastSeen = messagesSeen
            rememberExact(sequenceHash, index)
            return (index, false, false)
        }

        let bucket = Self.bucketKey(tokens)
        var best = bestCandidate(buckets[bucket], tokens, limit: Int.max)
        if best.score < configuration.similarityThreshold {
            // The first token may itself be a variable (`com.example.job: …`, a user name): look at other templates
            // of the same length too, with a bounded amount of work.
            let other = bestCandidate(lengthBuckets[tokens.count], tokens, limit: Self.lengthBucketScanLimit)
            if other.isBetter(than: best) { best = other }
        }

        if best.index >= 0 && best.score >= configuration.similarityThreshold {
            if best.differences == 0 {
                templates[best.index].count += 1
                templates[best.index].lastSeen = messagesSeen
                rememberExact(sequenceHash, best.index)
                byShape[shapeHash] = Int32(best.index)
                return (best.index, false, false)
            }
            return addSibling(of: best.index, message, tokens, sequenceHash: sequenceHash)
        }

        // A new template in a family of its own.
        let index = appendTemplate(message, tokens, bucket: bucket, family: nil, like: nil)
        rememberExact(sequenceHash, index)
        return (index, true, false)
    }

    /// Assigns a message given as a `String`.
    public mutating func add(_ message: String) -> MinedTemplate {
        var copy = message
        return copy.withUTF8 { add(UnsafeRawBufferPointer($0)) }
    }

    // MARK: - Siblings and generalisation

    /// The message is like template `index` but differs in some positions: it becomes a sibling; positions that
    /// have now shown enough distinct values become variables for the whole family.
    private mutating func addSibling(of index: Int, _ message: UnsafeRawBufferPointer, _ tokens: [MaskedToken],
                                     sequenceHash: UInt64) -> (index: Int, isNew: Bool, generalized: Bool) {
        let model = templates[index]
        let familyID = model.family
        var family = families[familyID] ?? Family(members: [model.id])
        let sibling = appendTemplate(message, tokens, bucket: Self.bucketKey(tokens), family: familyID, like: model)
        let siblingID = templates[sibling].id
        family.members.append(siblingID)

        let cap = 3 * Int(max(configuration.distinctWordsForVariable, configuration.distinctValuesForVariable, 2))
        var generalise: [(position: Int, level: Level)] = []
        for p in 0..<tokens.count where !Self.accepts(model, p, tokens[p]) {
            var values = family.positions[Int32(p)] ?? []
            if model.levels[p] == .exact {
                var text = model.tokens[p]
                let eventWord = text.withUTF8 { Self.isEventWord(UnsafeRawBufferPointer($0)) }
                Self.insert(.init(hash: model.hashes[p], shape: model.shapes[p], eventWord: eventWord), into: &values, cap: cap)
            }
            let eventWord = Self.isEventWord(UnsafeRawBufferPointer(
                rebasing: message[Int(tokens[p].sourceStart)..<Int(tokens[p].sourceEnd)]))
            Self.insert(.init(hash: tokens[p].hash, shape: tokens[p].shape, eventWord: eventWord), into: &values, cap: cap)
            family.positions[Int32(p)] = values
            let sameShape = values.allSatisfy { $0.shape == values[0].shape }
            var enough = sameShape ? configuration.distinctValuesForVariable : configuration.distinctWordsForVariable
            // Words that name events (`Started`/`Stopped`, `GET`/`POST`) are an enumeration far more often than a
            // variable: they need twice the evidence.
            if values.allSatisfy(\.eventWord) { enough *= 2 }
            if values.count >= 3 * enough || (values.count >= enough && isMostlyDistinct(values.count, at: p, in: family)) {
                generalise.append((p, sameShape ? .shape : .any))
            }
        }
        families[familyID] = family
        guard !generalise.isEmpty else {
            rememberExact(sequenceHash, sibling)
            return (sibling, true, false)
        }

        var generalisations: [(position: Int, level: Level, shape: UInt64, text: String)] = []
        for (p, level) in generalise {
            generalisations.append(level == .any ? (p, .any, TokenMasker.wildcardHash, "<*>")
                                   : (p, .shape, tokens[p].shape, masker.maskedText(p, in: message, shape: true)))
        }
        let changed = generaliseMembers(familyID, generalisations)
        let survivorOfSibling = mergeIdenticalMembers(familyID)
        exact.removeAll(keepingCapacity: true)
        byShape.removeAll(keepingCapacity: true)
        let final = indexByID[resolve(survivorOfSibling[siblingID] ?? siblingID)].map(Int.init) ?? sibling
        rememberExact(sequenceHash, final)
        let isNew = templates[final].id == siblingID
        return (final, isNew, changed.contains(templates[final].id) && !isNew)
    }

    /// Generalises positions in every member of a family; returns the ids of the members that changed.
    private mutating func generaliseMembers(_ familyID: UInt64,
                                            _ generalisations: [(position: Int, level: Level, shape: UInt64, text: String)]) -> Set<UInt64> {
        var changed = Set<UInt64>()
        for id in families[familyID]?.members ?? [] {
            guard let m = indexByID[id].map(Int.init) else { continue }
            var t = templates[m]
            var touched = false
            for g in generalisations where t.levels[g.position].rawValue < g.level.rawValue {
                t.levels[g.position] = g.level
                t.tokens[g.position] = g.text
                t.hashes[g.position] = g.shape
                t.shapes[g.position] = g.shape
                touched = true
            }
            if touched {
                t.text = t.tokens.joined(separator: " ")
                templates[m] = t
                changed.insert(id)
                textVersion &+= 1
            }
        }
        return changed
    }

    /// Whether a token reads as the name of an event rather than a value: a word of letters only (leading and trailing
    /// punctuation aside) that is upper case (`GET`, `DELETE`, `ACTIVE`) or a verb form of at least five letters ending
    /// in `ed` or `ing` (`Started`, `Paused`, `Deleting`). Log statements print such words from a fixed set — states,
    /// methods, phases — while names and ids (user names, hosts) rarely look like that.
    static func isEventWord(_ token: UnsafeRawBufferPointer) -> Bool {
        let isLetter = { (c: UInt8) in (c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "z") }
        var s = 0
        var e = token.count
        while s < e && !isLetter(token[s]) { s += 1 }
        while e > s && !isLetter(token[e - 1]) { e -= 1 }
        guard e - s >= 2 else { return false }
        var upper = true
        for j in s..<e {
            let c = token[j]
            guard isLetter(c) else { return false }
            if c & 0x20 != 0 { upper = false }
        }
        if upper { return true }
        let lower = { (j: Int) in token[j] | 0x20 }
        if e - s >= 5 && lower(e - 2) == UInt8(ascii: "e") && lower(e - 1) == UInt8(ascii: "d") { return true }
        return e - s >= 6 && lower(e - 3) == UInt8(ascii: "i") && lower(e - 2) == UInt8(ascii: "n") && lower(e - 1) == UInt8(ascii: "g")
    }

    /// Whether `distinct` values at position `p` are at least ``Configuration/distinctShareForVariable`` of the
    /// messages the family's members have seen with a literal there.
    private func isMostlyDistinct(_ distinct: Int, at p: Int, in family: Family) -> Bool {
        let share = configuration.distinctShareForVariable
        guard share > 0 else { return true }
        var seen = 0
        for id in family.members {
            guard let m = indexByID[id].map(Int.init), templates[m].levels[p] == .exact else { continue }
            seen += templates[m].count
        }
        return Double(distinct) >= share * Double(max(seen, 1))
    }

    /// Merges family members with the same positions into the oldest of them; returns merged id → survivor id.
    private mutating func mergeIdenticalMembers(_ familyID: UInt64) -> [UInt64: UInt64] {
        guard var family = families[familyID] else { return [:] }
        var survivorByKey: [UInt64: UInt64] = [:]
        var merged: [UInt64: UInt64] = [:]
        var kept: [UInt64] = []
        for id in family.members {
            guard let m = indexByID[id].map(Int.init) else { continue }
            let key = Self.positionKey(templates[m])
            if let survivor = survivorByKey[key], let s = indexByID[survivor].map(Int.init) {
                templates[s].count += templates[m].count
                templates[s].lastSeen = max(templates[s].lastSeen, templates[m].lastSeen)
                merged[id] = survivor
            } else {
                survivorByKey[key] = id
                kept.append(id)
            }
        }
        guard !merged.isEmpty else { return [:] }
        family.members = kept
        families[familyID] = family
        for (id, survivor) in merged { aliases[id] = survivor }
        merges += merged.count
        textVersion &+= 1
        templates.removeAll { merged[$0.id] != nil }
        rebuildIndexes()
        boundAliases()
        return merged
    }

    /// A hash of what a template requires at each position.
    private static func positionKey(_ t: Template) -> UInt64 {
        var key = StableHash.combine(StableHash.offsetBasis, UInt64(t.levels.count))
        for p in t.levels.indices {
            let required: UInt64 = switch t.levels[p] {
            case .exact: t.hashes[p]
            case .shape: t.shapes[p] ^ 0x5bd1_e995
            case .any: TokenMasker.wildcardHash
            }
            key = StableHash.combine(key, required)
        }
        return key
    }

    private static func insert(_ value: Family.Value, into values: inout [Family.Value], cap: Int) {
        if values.count < cap + 1 && !values.contains(value) { values.append(value) }
    }

    /// Whether the template takes every token as it is.
    private static func acceptsAll(_ t: Template, _ tokens: [MaskedToken]) -> Bool {
        guard t.levels.count == tokens.count else { return false }
        for p in 0..<tokens.count where !accepts(t, p, tokens[p]) { return false }
        return true
    }

    /// Whether template position `p` takes `token` as it is.
    @inline(__always)
    private static func accepts(_ t: Template, _ p: Int, _ token: MaskedToken) -> Bool {
        switch t.levels[p] {
        case .any: true
        case .shape: token.shape == t.shapes[p]
        case .exact: token.hash == t.hashes[p]
        }
    }

    private mutating func appendTemplate(_ message: UnsafeRawBufferPointer, _ tokens: [MaskedToken], bucket: UInt64,
                                         family: UInt64?, like model: Template?) -> Int {
        var texts: [String] = []
        var hashes: [UInt64] = []
        var shapes: [UInt64] = []
        var levels: [Level] = []
        texts.reserveCapacity(tokens.count)
        for i in 0..<tokens.count {
            if let model, model.levels[i] != .exact, Self.accepts(model, i, tokens[i]) {
                // Keep the family's generalisation where the message fits it.
                texts.append(model.tokens[i])
                hashes.append(model.hashes[i])
                shapes.append(model.shapes[i])
                levels.append(model.levels[i])
            } else {
                texts.append(masker.maskedText(i, in: message))
                hashes.append(tokens[i].hash)
                shapes.append(tokens[i].shape)
                levels.append(tokens[i].isWildcard ? .any : .exact)
            }
        }
        let text = texts.joined(separator: " ")
        var id = StableHash.hash(text)
        while indexByID[id] != nil || aliases[id] != nil { id &+= 1 }  // practically never; keeps ids unique
        let template = Template(id: id, text: text, count: 1, lastSeen: messagesSeen, tokens: texts, hashes: hashes,
                                shapes: shapes, levels: levels, bucket: bucket, family: family ?? id)
        let index = templates.count
        templates.append(template)
        indexByID[id] = Int32(index)
        buckets[bucket, default: []].append(Int32(index))
        lengthBuckets[texts.count, default: []].append(Int32(index))
        if family == nil { families[id] = Family(members: [id]) }
        return index
    }

    // MARK: - Matching

    /// How many same-length templates are compared at most when the first-token bucket has no good match.
    static let lengthBucketScanLimit = 512

    struct Candidate {
        var index = -1
        var score = -1.0
        /// Positions the template does not take as they are (0: the message fits the template).
        var differences = Int.max
        var wildcards = -1

        func isBetter(than other: Candidate) -> Bool {
            if score != other.score { return score > other.score }
            if differences != other.differences { return differences < other.differences }
            return wildcards > other.wildcards
        }
    }

    /// The most similar template among `candidates`: the share of the template's constant positions the message
    /// matches (exactly, or in shape for value-shaped words); ties go to the template needing fewer changes, then
    /// to the more general one.
    private func bestCandidate(_ candidates: [Int32]?, _ tokens: [MaskedToken], limit: Int) -> Candidate {
        var best = Candidate()
        guard let candidates else { return best }
        for c in candidates.prefix(limit) {
            let t = templates[Int(c)]
            guard t.hashes.count == tokens.count else { continue }
            var equal = 0
            var wildcards = 0
            var differences = 0
            for i in 0..<tokens.count {
                let token = tokens[i]
                switch t.levels[i] {
                case .any:
                    wildcards += 1
                case .shape:
                    if token.shape == t.shapes[i] { equal += 1 } else { differences += 1 }
                case .exact:
                    if token.hash == t.hashes[i] {
                        equal += 1
                    } else {
                        differences += 1
                        if token.shape == t.shapes[i] { equal += 1 }
                    }
                }
            }
            let constant = tokens.count - wildcards
            let score = constant == 0 ? 1.0 : Double(equal) / Double(constant)
            let candidate = Candidate(index: Int(c), score: score, differences: differences, wildcards: wildcards)
            if candidate.isBetter(than: best) { best = candidate }
        }
        return best
    }

    private static func bucketKey(_ tokens: [MaskedToken]) -> UInt64 {
        var key = StableHash.combine(StableHash.offsetBasis, UInt64(tokens.count))
        if let first = tokens.first { key = StableHash.combine(key, first.shape) }
        return key
    }

    private mutating func rememberExact(_ sequenceHash: UInt64, _ index: Int) {
        // The cache only saves work; keep it bounded by clearing it when it grows far beyond the template cap.
        if exact.count >= max(configuration.maxTemplates, 1) * 8 { exact.removeAll(keepingCapacity: true) }
        if byShape.count >= max(configuration.maxTemplates, 1) * 8 { byShape.removeAll(keepingCapacity: true) }
        exact[sequenceHash] = Int32(index)
    }


    /// Appends the byte ranges, in the message whose tokens ``masker`` holds, of the values template `index`'s
    /// `<*>` stand for.
    private func appendParameterRanges(_ index: Int, to ranges: inout [Range<Int>]) {
        let levels = templates[index].levels
        masker.tokens.withUnsafeBufferPointer { tokens in
            masker.segments.withUnsafeBufferPointer { segments in
                for i in 0..<min(tokens.count, levels.count) {
                    let token = tokens[i]
                    let level = levels[i]
                    if level == .any || (level == .shape && token.shape == TokenMasker.wildcardHash) {
                        ranges.append(Int(token.sourceStart)..<Int(token.sourceEnd))
                        continue
                    }
                    let shape = level == .shape
                    var last = Int(token.sourceStart)
                    for s in Int(token.segmentStart)..<Int(token.segmentEnd) {
                        let v = segments[s]
                        guard TokenMasker.isParameter(v.kind, shape: shape), Int(v.start) >= last else { continue }
                        ranges.append(Int(v.start)..<Int(v.end))
                        last = Int(v.end)
                    }
                }
            }
        }
    }

    // MARK: - Bounds

    private mutating func evictLeastRecentlySeen() {
        let cap = max(configuration.maxTemplates, 1)
        let batch = max(cap / 16, 1)
        let target = max(cap - batch, 0)
        guard templates.count > target else { return }
        // Keep the `target` most recently seen templates.
        let cutoff = templates.map(\.lastSeen).sorted(by: >)[target]
        let before = templates.count
        templates.removeAll { $0.lastSeen <= cutoff }
        evictions += before - templates.count
        textVersion &+= 1
        rebuildIndexes()
        // Families lose their evicted members; empty families go.
        for (id, var family) in families {
            family.members.removeAll { indexByID[$0] == nil }
            if family.members.isEmpty { families[id] = nil } else { families[id] = family }
        }
        boundAliases()
    }

    /// Aliases are kept for as many merged templates as the template cap; beyond that the oldest ids are forgotten
    /// (they resolve to themselves).
    private mutating func boundAliases() {
        guard aliases.count > max(configuration.maxTemplates, 1) else { return }
        // Keep aliases that point at templates still held; drop the rest first.
        aliases = aliases.filter { indexByID[$0.value] != nil }
        if aliases.count > max(configuration.maxTemplates, 1) { aliases.removeAll() }
    }

    private mutating func rebuildIndexes() {
        indexByID.removeAll(keepingCapacity: true)
        buckets.removeAll(keepingCapacity: true)
        lengthBuckets.removeAll(keepingCapacity: true)
        exact.removeAll(keepingCapacity: true)
        byShape.removeAll(keepingCapacity: true)
        for (i, t) in templates.enumerated() {
            indexByID[t.id] = Int32(i)
            buckets[t.bucket, default: []].append(Int32(i))
            lengthBuckets[t.hashes.count, default: []].append(Int32(i))
        }
    }
}

extension TemplateMiner: Codable {
    private enum CodingKeys: String, CodingKey {
        case configuration, messagesSeen, evictions, merges, templates, families, aliases
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        configuration = try c.decode(Configuration.self, forKey: .configuration)
        messagesSeen = try c.decode(UInt64.self, forKey: .messagesSeen)
        evictions = try c.decode(Int.self, forKey: .evictions)
        merges = try c.decodeIfPresent(Int.self, forKey: .merges) ?? 0
        templates = try c.decode([Template].self, forKey: .templates)
        families = try c.decodeIfPresent([UInt64: Family].self, forKey: .families) ?? [:]
        aliases = try c.decodeIfPresent([UInt64: UInt64].self, forKey: .aliases) ?? [:]
        for t in templates where families[t.family] == nil { families[t.family] = Family(members: [t.id]) }
        rebuildIndexes()
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(configuration, forKey: .configuration)
        try c.encode(messagesSeen, forKey: .messagesSeen)
        try c.encode(evictions, forKey: .evictions)
        try c.encode(merges, forKey: .merges)
        try c.encode(templates, forKey: .templates)
        try c.encode(families, forKey: .families)
        try c.encode(aliases, forKey: .aliases)
    }
}

extension TemplateMiner.Template: Codable {
    private enum CodingKeys: String, CodingKey { case id, text, count, lastSeen, tokens, bucket, shapes, levels, family }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(UInt64.self, forKey: .id)
        text = try c.decode(String.self, forKey: .text)
        count = try c.decode(Int.self, forKey: .count)
        lastSeen = try c.decode(UInt64.self, forKey: .lastSeen)
        tokens = try c.decode([String].self, forKey: .tokens)
        bucket = try c.decode(UInt64.self, forKey: .bucket)
        // The exact hashes are those of the texts; state from before shapes existed has exact positions only.
        hashes = tokens.map { StableHash.hash($0) }
        shapes = try c.decodeIfPresent([UInt64].self, forKey: .shapes) ?? hashes
        levels = try c.decodeIfPresent([TemplateMiner.Level].self, forKey: .levels)
            ?? hashes.map { $0 == TokenMasker.wildcardHash ? .any : .exact }
        family = try c.decodeIfPresent(UInt64.self, forKey: .family) ?? id
        guard shapes.count == tokens.count, levels.count == tokens.count else {
            throw DecodingError.dataCorruptedError(forKey: .levels, in: c, debugDescription: "template positions differ in length")
        }
        for p in levels.indices where levels[p] == .shape { hashes[p] = shapes[p] }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(text, forKey: .text)
        try c.encode(count, forKey: .count)
        try c.encode(lastSeen, forKey: .lastSeen)
        try c.encode(tokens, forKey: .tokens)
        try c.encode(bucket, forKey: .bucket)
        try c.encode(shapes, forKey: .shapes)
        try c.encode(levels, forKey: .levels)
        try c.encode(family, forKey: .family)
    }
}
