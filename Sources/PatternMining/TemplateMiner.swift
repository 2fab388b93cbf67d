/// Online log template miner in the family of Drain.
///
/// Each message is tokenized on whitespace and masked by built-in generic rules (see ``TokenMasker``): numbers,
/// hexadecimal values, IP addresses, paths, URLs, UUIDs and timestamps become `<*>`. Messages are then grouped
/// Drain-style: candidate templates share the token count and the first masked token; the most similar candidate
/// (share of positions whose tokens are equal, a template `<*>` matching anything) is chosen when its similarity
/// reaches ``Configuration/similarityThreshold``, and positions that differ are generalised to `<*>`. Otherwise a new
/// template is created. An exact-match cache short-circuits the search for masked token sequences already seen.
///
/// **Template ids** are the FNV-1a 64-bit hash of the template text at creation. Ids are therefore stable across
/// runs fed the same input in the same order, agree between a batch run and a live run, and a template that is
/// evicted and later re-created gets the same id again.
///
/// **Memory** is bounded by ``Configuration/maxTemplates``: when the cap is exceeded the least recently seen
/// templates are evicted (in batches of 1/16 of the cap, so the cost of eviction is amortised).
///
/// The miner is a value type: `Sendable`, and its state is `Codable` for persistence (the exact-match cache is
/// rebuilt on demand after decoding).
public struct TemplateMiner: Sendable {
    /// Tuning knobs. The defaults are the one configuration used for every kind of log.
    public struct Configuration: Sendable, Codable, Equatable {
        /// Minimum share of equal token positions for a message to join an existing template.
        public var similarityThreshold: Double
        /// Maximum number of templates kept; the least recently seen are evicted beyond it.
        public var maxTemplates: Int
        /// Maximum number of tokens considered; longer messages are truncated (the tail joins the last `<*>`).
        public var maxTokens: Int

        public init(similarityThreshold: Double = 0.8, maxTemplates: Int = 10_000, maxTokens: Int = 256) {
            self.similarityThreshold = similarityThreshold
            self.maxTemplates = maxTemplates
            self.maxTokens = maxTokens
        }
    }

    /// A template held by the miner.
    public struct Template: Sendable, Codable, Equatable {
        /// Stable identifier (hash of the first template text).
        public let id: UInt64
        /// Current template text.
        public internal(set) var text: String
        /// Number of messages assigned.
        public internal(set) var count: Int
        /// Miner sequence number of the last message assigned (for least-recently-seen eviction).
        public internal(set) var lastSeen: UInt64
        /// Masked token texts; `<*>` where generalised.
        var tokens: [String]
        /// Stable hashes of ``tokens``.
        var hashes: [UInt64]
        /// Bucket the template lives in (token count + first masked token), fixed at creation.
        var bucket: UInt64
    }

    public private(set) var configuration: Configuration
    /// Number of messages seen so far.
    public private(set) var messagesSeen: UInt64 = 0
    /// Number of templates evicted so far because of ``Configuration/maxTemplates``.
    public private(set) var evictions: Int = 0

    private var templates: [Template] = []
    private var indexByID: [UInt64: Int32] = [:]
    private var buckets: [UInt64: [Int32]] = [:]
    private var lengthBuckets: [Int: [Int32]] = [:]
    private var exact: [UInt64: Int32] = [:]
    private var masker = TokenMasker()

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// All templates currently held, in creation order (evicted ones excluded).
    public var allTemplates: [Template] { templates }

    /// Number of templates currently held.
    public var templateCount: Int { templates.count }

    /// The template with the given id, if held.
    public func template(id: UInt64) -> Template? {
        indexByID[id].map { templates[Int($0)] }
    }

    /// Formats an id as 16 lower-case hexadecimal digits.
    public static func idString(_ id: UInt64) -> String {
        let hex = String(id, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Assigns a message (raw bytes, UTF-8 expected but not required) to a template, creating or generalising
    /// templates as needed.
    public mutating func add(_ message: UnsafeRawBufferPointer) -> MinedTemplate {
        messagesSeen &+= 1
        masker.mask(message)
        masker.truncate(to: max(configuration.maxTokens, 1))
        let tokens = masker.tokens
        var sequenceHash = StableHash.offsetBasis
        for t in tokens { sequenceHash = StableHash.combine(sequenceHash, t.hash) }
        sequenceHash = StableHash.combine(sequenceHash, UInt64(tokens.count))

        if let hit = exact[sequenceHash] {
            let index = Int(hit)
            templates[index].count += 1
            templates[index].lastSeen = messagesSeen
            return result(index, isNew: false, generalized: false)
        }

        let bucket = Self.bucketKey(tokens)
        var (best, bestScore) = bestCandidate(buckets[bucket], tokens, limit: Int.max)
        if bestScore < configuration.similarityThreshold {
            // The first token may itself be a variable (`com.example.job: …`): look at other templates of the same
            // length too, with a bounded amount of work.
            let other = bestCandidate(lengthBuckets[tokens.count], tokens, limit: Self.lengthBucketScanLimit)
            if other.score > bestScore { (best, bestScore) = other }
        }

        if best >= 0 && bestScore >= configuration.similarityThreshold {
            var generalized = false
            var t = templates[best]
            for i in 0..<t.hashes.count where t.hashes[i] != TokenMasker.wildcardHash && t.hashes[i] != tokens[i].hash {
                t.hashes[i] = TokenMasker.wildcardHash
                t.tokens[i] = "<*>"
                generalized = true
            }
            if generalized { t.text = t.tokens.joined(separator: " ") }
            t.count += 1
            t.lastSeen = messagesSeen
            templates[best] = t
            rememberExact(sequenceHash, best)
            return result(best, isNew: false, generalized: generalized)
        }

        // A new template.
        var texts: [String] = []
        texts.reserveCapacity(tokens.count)
        for i in 0..<tokens.count { texts.append(masker.maskedText(i, in: message)) }
        let text = texts.joined(separator: " ")
        var id = StableHash.hash(text)
        while indexByID[id] != nil { id &+= 1 }  // practically never; keeps ids unique
        let template = Template(id: id, text: text, count: 1, lastSeen: messagesSeen, tokens: texts,
                                hashes: tokens.map(\.hash), bucket: bucket)
        let index = templates.count
        templates.append(template)
        indexByID[id] = Int32(index)
        buckets[bucket, default: []].append(Int32(index))
        lengthBuckets[texts.count, default: []].append(Int32(index))
        rememberExact(sequenceHash, index)
        let mined = result(index, isNew: true, generalized: false)
        if templates.count > configuration.maxTemplates { evictLeastRecentlySeen() }
        return mined
    }

    /// Assigns a message given as a `String`.
    public mutating func add(_ message: String) -> MinedTemplate {
        var copy = message
        return copy.withUTF8 { add(UnsafeRawBufferPointer($0)) }
    }

    // MARK: - Internals

    /// How many same-length templates are compared at most when the first-token bucket has no good match.
    static let lengthBucketScanLimit = 512

    /// The most similar template among `candidates` (ties go to the more general template).
    private func bestCandidate(_ candidates: [Int32]?, _ tokens: [MaskedToken], limit: Int) -> (index: Int, score: Double) {
        guard let candidates else { return (-1, -1) }
        var best = -1
        var bestScore = -1.0
        var bestWildcards = -1
        for c in candidates.prefix(limit) {
            let hashes = templates[Int(c)].hashes
            guard hashes.count == tokens.count else { continue }
            var equal = 0
            var wildcards = 0
            for i in 0..<hashes.count {
                let h = hashes[i]
                if h == TokenMasker.wildcardHash { wildcards += 1 } else if h == tokens[i].hash { equal += 1 }
            }
            let score = tokens.isEmpty ? 1.0 : Double(equal) / Double(tokens.count)
            if score > bestScore || (score == bestScore && wildcards > bestWildcards) {
                best = Int(c)
                bestScore = score
                bestWildcards = wildcards
            }
        }
        return (best, bestScore)
    }

    private static func bucketKey(_ tokens: [MaskedToken]) -> UInt64 {
        var key = StableHash.combine(StableHash.offsetBasis, UInt64(tokens.count))
        if let first = tokens.first { key = StableHash.combine(key, first.hash) }
        return key
    }

    private mutating func rememberExact(_ sequenceHash: UInt64, _ index: Int) {
        // The cache only saves work; keep it bounded by clearing it when it grows far beyond the template cap.
        if exact.count >= max(configuration.maxTemplates, 1) * 8 { exact.removeAll(keepingCapacity: true) }
        exact[sequenceHash] = Int32(index)
    }

    private func result(_ index: Int, isNew: Bool, generalized: Bool) -> MinedTemplate {
        let hashes = templates[index].hashes
        var ranges: [Range<Int>] = []
        ranges.reserveCapacity(masker.segments.count)
        let tokens = masker.tokens
        for i in 0..<min(tokens.count, hashes.count) {
            let token = tokens[i]
            if hashes[i] == TokenMasker.wildcardHash {
                ranges.append(Int(token.sourceStart)..<Int(token.sourceEnd))
            } else {
                for s in Int(token.segmentStart)..<Int(token.segmentEnd) {
                    let (a, b) = masker.segments[s]
                    ranges.append(Int(a)..<Int(b))
                }
            }
        }
        return MinedTemplate(templateID: templates[index].id, template: templates[index].text,
                             parameterRanges: ranges, isNew: isNew,
                             generalized: generalized)
    }

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
        rebuildIndexes()
    }

    private mutating func rebuildIndexes() {
        indexByID.removeAll(keepingCapacity: true)
        buckets.removeAll(keepingCapacity: true)
        lengthBuckets.removeAll(keepingCapacity: true)
        exact.removeAll(keepingCapacity: true)
        for (i, t) in templates.enumerated() {
            indexByID[t.id] = Int32(i)
            buckets[t.bucket, default: []].append(Int32(i))
            lengthBuckets[t.hashes.count, default: []].append(Int32(i))
        }
    }
}

extension TemplateMiner: Codable {
    private enum CodingKeys: String, CodingKey { case configuration, messagesSeen, evictions, templates }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        configuration = try c.decode(Configuration.self, forKey: .configuration)
        messagesSeen = try c.decode(UInt64.self, forKey: .messagesSeen)
        evictions = try c.decode(Int.self, forKey: .evictions)
        templates = try c.decode([Template].self, forKey: .templates)
        rebuildIndexes()
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(configuration, forKey: .configuration)
        try c.encode(messagesSeen, forKey: .messagesSeen)
        try c.encode(evictions, forKey: .evictions)
        try c.encode(templates, forKey: .templates)
    }
}

extension TemplateMiner.Template {
    private enum CodingKeys: String, CodingKey { case id, text, count, lastSeen, tokens, bucket }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(UInt64.self, forKey: .id)
        text = try c.decode(String.self, forKey: .text)
        count = try c.decode(Int.self, forKey: .count)
        lastSeen = try c.decode(UInt64.self, forKey: .lastSeen)
        tokens = try c.decode([String].self, forKey: .tokens)
        bucket = try c.decode(UInt64.self, forKey: .bucket)
        hashes = tokens.map { StableHash.hash($0) }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(text, forKey: .text)
        try c.encode(count, forKey: .count)
        try c.encode(lastSeen, forKey: .lastSeen)
        try c.encode(tokens, forKey: .tokens)
        try c.encode(bucket, forKey: .bucket)
    }
}
