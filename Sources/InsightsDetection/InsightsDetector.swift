/// What insights are computed for: CloudTrail's (account, region, eventSource, eventName), or any field of other logs
/// (put it in ``eventName`` and leave the rest empty).
public struct InsightKey: Sendable, Hashable, Codable {
    public static func == (a: InsightKey, b: InsightKey) -> Bool {
        a.digest == b.digest && a.eventName == b.eventName && a.eventSource == b.eventSource && a.awsRegion == b.awsRegion
            && a.recipientAccountId == b.recipientAccountId
    }

    /// Hashes a fast 64-bit digest of the fields, computed once, instead of feeding every byte to SipHash (hot path).
    public func hash(into hasher: inout Hasher) {
        hasher.combine(digest)
    }

    public let eventSource: String
    public let eventName: String
    public let awsRegion: String
    public let recipientAccountId: String
    /// A digest of the four fields (``FastHash``).
    public let digest: UInt64

    public init(eventSource: String = "", eventName: String, awsRegion: String = "", recipientAccountId: String = "") {
        self.eventSource = eventSource
        self.eventName = eventName
        self.awsRegion = awsRegion
        self.recipientAccountId = recipientAccountId
        digest = FastHash.hash(eventName, seed: FastHash.hash(eventSource, seed: FastHash.hash(awsRegion, seed: FastHash.hash(recipientAccountId))))
    }

    enum CodingKeys: String, CodingKey { case eventSource, eventName, awsRegion, recipientAccountId }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(eventSource: try c.decode(String.self, forKey: .eventSource), eventName: try c.decode(String.self, forKey: .eventName),
                  awsRegion: try c.decode(String.self, forKey: .awsRegion), recipientAccountId: try c.decode(String.self, forKey: .recipientAccountId))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(eventSource, forKey: .eventSource)
        try c.encode(eventName, forKey: .eventName)
        try c.encode(awsRegion, forKey: .awsRegion)
        try c.encode(recipientAccountId, forKey: .recipientAccountId)
    }
}

/// CloudTrail-Insights-style detector of unusual per-minute call and error rates.
///
/// Feed events in (roughly) event-time order with ``observe(timestampMs:key:isError:errorCode:userIdentityArn:userAgent:)``.
/// For each key the detector counts calls and error responses per minute. When a key's minute is complete (an event
/// of a later minute arrives for that key, or ``advance(toMs:)`` moves the watermark past it), the minute is compared
/// with the key's baseline: the per-minute mean and standard deviation over the preceding
/// ``Configuration/baselineDays`` days (quiet minutes count as zero). A minute is unusual when its count is at least
/// ``Configuration/minimumCount``, at least ``Configuration/minimumRatio`` times the mean, and more than
/// ``Configuration/deviations`` standard deviations (at least one call) above it. The first unusual minute emits a
/// **Start** event; the episode lasts while minutes stay above the midpoint between the baseline mean and the start
/// threshold, and the first minute below emits the matching **End** event. Minutes inside an episode are left out of
/// the baseline, so an anomaly does not teach the detector that it is normal.
///
/// Everything depends on event time only, and ids are derived from the key, type and start minute, so a batch run
/// over history and a live run produce the same insights. The state is `Codable` for persistence; memory is bounded by
/// ``Configuration/maxKeys`` (least recently seen keys are forgotten) and per key by the window in hours.
public struct InsightsDetector: Sendable {
    public struct Configuration: Sendable, Codable, Equatable {
        /// Which insight types to compute.
        public var types: Set<InsightType>
        /// Baseline window in days (CloudTrail: 7).
        public var baselineDays: Int
        /// Minutes of history needed before call-rate insights are reported (error-rate insights: see
        /// ``coldStartErrorShare``).
        public var minimumHistoryMinutes: Int
        /// While the history is shorter than ``minimumHistoryMinutes``, a minute whose errors are at least
        /// ``minimumCount`` and at least this share of the key's calls in that minute (a burst of denied calls) is an
        /// ApiErrorRate insight anyway, judged against whatever history there is. Errors have a natural baseline
        /// of almost none; call rates do not, so they wait for history. 0 turns the cold start off.
        public var coldStartErrorShare: Double
        /// Minimum per-minute count of an unusual minute.
        public var minimumCount: Double
        /// Minimum ratio of an unusual minute's count to the baseline mean.
        public var minimumRatio: Double
        /// How many standard deviations above the mean an unusual minute must be.
        public var deviations: Double
        /// Maximum number of keys tracked.
        public var maxKeys: Int
        /// Values counted per attribute for attributions.
        public var attributionCapacity: Int

        public init(types: Set<InsightType> = [.apiCallRate, .apiErrorRate], baselineDays: Int = 7,
                    minimumHistoryMinutes: Int = 360, minimumCount: Double = 10, minimumRatio: Double = 3,
                    deviations: Double = 6, maxKeys: Int = 10_000, attributionCapacity: Int = 32,
                    coldStartErrorShare: Double = 0.5) {
            self.types = types
            self.baselineDays = baselineDays
            self.minimumHistoryMinutes = minimumHistoryMinutes
            self.minimumCount = minimumCount
            self.minimumRatio = minimumRatio
            self.deviations = deviations
            self.maxKeys = maxKeys
            self.attributionCapacity = attributionCapacity
            self.coldStartErrorShare = coldStartErrorShare
        }

        enum CodingKeys: String, CodingKey {
            case types, baselineDays, minimumHistoryMinutes, coldStartErrorShare, minimumCount, minimumRatio, deviations
            case maxKeys, attributionCapacity
        }

        public init(from decoder: any Decoder) throws {
            // Saved state from before the cold start loads with its default.
            let c = try decoder.container(keyedBy: CodingKeys.self)
            self.init(types: try c.decode(Set<InsightType>.self, forKey: .types),
                      baselineDays: try c.decode(Int.self, forKey: .baselineDays),
                      minimumHistoryMinutes: try c.decode(Int.self, forKey: .minimumHistoryMinutes),
                      minimumCount: try c.decode(Double.self, forKey: .minimumCount),
                      minimumRatio: try c.decode(Double.self, forKey: .minimumRatio),
                      deviations: try c.decode(Double.self, forKey: .deviations),
                      maxKeys: try c.decode(Int.self, forKey: .maxKeys),
                      attributionCapacity: try c.decode(Int.self, forKey: .attributionCapacity),
                      coldStartErrorShare: try c.decodeIfPresent(Double.self, forKey: .coldStartErrorShare) ?? 0.5)
        }
    }

    /// One open insight.
    struct Episode: Sendable, Codable, Equatable {
        var startMinute: Int64
        var minutes: Int
        var total: Double
        var baselineMean: Double
        var baselineMinutes: Int
        var continueThreshold: Double
        var attributions: AttributionTable
        var baselineAttributions: AttributionTable
    }

    /// Baseline and episode of one insight type for one key.
    struct Track: Sendable, Codable, Equatable {
        var baseline: RollingBaseline
        var attributions: AttributionTable
        var episode: Episode?
    }

    /// Calls in the open minute, grouped by their attribute values.
    struct MinuteAttributes: Sendable, Hashable, Codable {
        var userIdentityArn: String
        var userAgent: String
        var errorCode: String?
        /// ``FastHash`` digests of the three values (the error code of a successful call is `"null"`).
        var arnDigest: UInt64
        var agentDigest: UInt64
        var codeDigest: UInt64

        init(userIdentityArn: String, userAgent: String, errorCode: String?) {
            self.userIdentityArn = userIdentityArn
            self.userAgent = userAgent
            self.errorCode = errorCode
            arnDigest = FastHash.hash(userIdentityArn)
            agentDigest = FastHash.hash(userAgent)
            codeDigest = FastHash.hash(errorCode ?? "null")
        }
    }

    struct KeyState: Sendable, Codable {
        var key: InsightKey
        var openMinute: Int64
        var calls: Double = 0
        var errors: Double = 0
        /// Attribute combinations of the open minute, found by a fast digest (see ``FastHash``).
        var attributeIndex: [UInt64: Int32] = [:]
        var attributes: [MinuteAttributes] = []
        var attributeCounts: [Double] = []
        var tracks: [Track]
        var lastDecayDay: Int64
    }

    public private(set) var configuration: Configuration
    /// First minute ever observed: history is counted from here.
    public private(set) var firstMinute: Int64?
    /// Latest minute observed or advanced to.
    public private(set) var watermarkMinute: Int64 = Int64.min
    private var keyIndex: [InsightKey: Int32] = [:]
    private var states: [KeyState] = []
    private var lastIndex: Int = -1

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// Number of keys tracked.
    public var keyCount: Int { states.count }

    static let trackTypes: [InsightType] = [.apiCallRate, .apiErrorRate]

    /// Feeds one event. Returns the insight events completed minutes produced (usually none).
    ///
    /// `attributeDigest`, when given, identifies the (error code, user identity, user agent) combination
    /// (the caller may have hashed the bytes already); the attribute strings are then only read the
    /// first time a combination appears in a minute.
    public mutating func observe(timestampMs: Int64, key: InsightKey, isError: Bool, errorCode: @autoclosure () -> String? = nil,
                                 userIdentityArn: @autoclosure () -> String? = nil, userAgent: @autoclosure () -> String? = nil,
                                 attributeDigest: UInt64? = nil) -> [InsightEvent] {
        let minute = Self.floorDiv(timestampMs, 60_000)
        if firstMinute == nil { firstMinute = minute }
        if minute > watermarkMinute { watermarkMinute = minute }
        var output: [InsightEvent] = []
        var index: Int
        if lastIndex >= 0 && states[lastIndex].key == key {
            index = lastIndex
        } else if let found = keyIndex[key] {
            index = Int(found)
        } else {
            if states.count >= configuration.maxKeys { evictLeastRecentlySeen() }
            index = states.count
            states.append(newKeyState(key, minute))
            keyIndex[key] = Int32(index)
        }
        lastIndex = index
        // Events older than the key's open minute are counted in the open minute (late arrivals).
        if states[index].openMinute < minute {
            closeMinutes(index, before: minute, output: &output)
        }
        states[index].calls += 1
        if isError { states[index].errors += 1 }
        let digest: UInt64
        if let attributeDigest {
            digest = attributeDigest ^ (isError ? 0x9E37_79B9_7F4A_7C15 : 0)
        } else {
            let code: String? = isError ? (errorCode() ?? "") : nil
            digest = FastHash.hash(userAgent() ?? "", seed: FastHash.hash(userIdentityArn() ?? "", seed: code.map { FastHash.hash($0, seed: 2) } ?? 1))
        }
        if let slot = states[index].attributeIndex[digest] {
            states[index].attributeCounts[Int(slot)] += 1
        } else {
            let arn = userIdentityArn() ?? "", agent = userAgent() ?? ""
            let code: String? = isError ? (errorCode() ?? "") : nil
            states[index].attributeIndex[digest] = Int32(states[index].attributes.count)
            states[index].attributes.append(MinuteAttributes(userIdentityArn: arn, userAgent: agent, errorCode: code))
            states[index].attributeCounts.append(1)
        }
        return output
    }

    /// Declares that no event older than `ms` will arrive: completes every key's minutes before it (ending episodes
    /// of keys that went quiet). Call it periodically in live mode and once at the end of a batch.
    public mutating func advance(toMs ms: Int64) -> [InsightEvent] {
        let minute = Self.floorDiv(ms, 60_000)
        if minute > watermarkMinute { watermarkMinute = minute }
        var output: [InsightEvent] = []
        let order = states.indices.sorted { Self.keyOrder(states[$0].key, states[$1].key) }
        for index in order where states[index].openMinute < minute {
            closeMinutes(index, before: minute, output: &output)
        }
        return output
    }

    // MARK: - Minutes

    /// Whether an error-rate minute is judged before the minimum history (see ``Configuration/coldStartErrorShare``).
    private func coldStart(_ type: InsightType, _ errors: Double, _ calls: Double, _ history: Int) -> Bool {
        type == .apiErrorRate && history < configuration.minimumHistoryMinutes && configuration.coldStartErrorShare > 0
            && errors >= configuration.minimumCount && errors >= configuration.coldStartErrorShare * calls
    }

    private func newKeyState(_ key: InsightKey, _ minute: Int64) -> KeyState {
        let hours = configuration.baselineDays * 24
        let track = Track(baseline: RollingBaseline(windowHours: hours),
                          attributions: AttributionTable(capacity: configuration.attributionCapacity))
        return KeyState(key: key, openMinute: minute, tracks: [track, track], lastDecayDay: Self.floorDiv(minute, 1440))
    }

    /// Completes the key's open minute and the quiet minutes up to (not including) `minute`.
    private mutating func closeMinutes(_ index: Int, before minute: Int64, output: inout [InsightEvent]) {
        var state = states[index]
        states[index].tracks = []  // keep `state` uniquely referenced while it is modified
        let key = state.key
        let open = state.openMinute
        let attributes = Array(zip(state.attributes, state.attributeCounts))
        for (t, type) in Self.trackTypes.enumerated() where configuration.types.contains(type) {
            let count = type == .apiCallRate ? state.calls : state.errors
            closeMinute(&state.tracks[t], key: key, type: type, minute: open, count: count, calls: state.calls,
                        attributes: attributes, output: &output)
            // The next minute is quiet if nothing arrived in it; only an open episode cares.
            if minute > open + 1, state.tracks[t].episode != nil {
                closeMinute(&state.tracks[t], key: key, type: type, minute: open + 1, count: 0, calls: 0, attributes: [],
                            output: &output)
            }
        }
        // Forget attribution history gradually (1/7 per day for a 7-day window).
        let day = Self.floorDiv(minute, 1440)
        if day > state.lastDecayDay {
            let factor = Foundation_pow(1 - 1 / Double(max(configuration.baselineDays, 1)),
                                        Double(day - state.lastDecayDay))
            for t in state.tracks.indices { state.tracks[t].attributions.scale(by: factor) }
            state.lastDecayDay = day
        }
        state.openMinute = minute
        state.calls = 0
        state.errors = 0
        state.attributes.removeAll(keepingCapacity: true)
        state.attributeCounts.removeAll(keepingCapacity: true)
        state.attributeIndex.removeAll(keepingCapacity: true)
        states[index] = state
    }

    private mutating func closeMinute(_ track: inout Track, key: InsightKey, type: InsightType, minute: Int64,
                                      count: Double, calls: Double, attributes: [(MinuteAttributes, Double)],
                                      output: inout [InsightEvent]) {
        let hour = Self.floorDiv(minute, 60)
        track.baseline.advance(toHour: hour)
        let history = Int(minute - (firstMinute ?? minute))
        let windowMinutes = configuration.baselineDays * 1440
        let stats = track.baseline.statistics(historyMinutes: min(history, windowMinutes))

        if var episode = track.episode {
            if count >= episode.continueThreshold {
                episode.minutes += 1
                episode.total += count
                Self.addAttributes(attributes, type: type, to: &episode.attributions, minutes: 1)
                track.episode = episode
                track.baseline.exclude(hour: hour)
                return
            }
            output.append(makeEvent(.end, key: key, type: type, episode: episode, minute: minute,
                                    insightAverage: episode.total / Double(episode.minutes)))
            track.episode = nil
        } else if (history >= configuration.minimumHistoryMinutes && stats.minutes > 0) || coldStart(type, count, calls, history) {
            // With no history yet (cold start), the statistics are zero and the threshold is `minimumCount`.
            let threshold = max(configuration.minimumCount, configuration.minimumRatio * stats.mean,
                                stats.mean + configuration.deviations * max(stats.deviation, 1))
            if count >= threshold {
                var attributions = AttributionTable(capacity: configuration.attributionCapacity)
                Self.addAttributes(attributes, type: type, to: &attributions, minutes: 1)
                let episode = Episode(startMinute: minute, minutes: 1, total: count, baselineMean: stats.mean,
                                      baselineMinutes: stats.minutes,
                                      continueThreshold: max(stats.mean + (threshold - stats.mean) / 2, 1),
                                      attributions: attributions, baselineAttributions: track.attributions)
                track.episode = episode
                track.baseline.exclude(hour: hour)
                output.append(makeEvent(.start, key: key, type: type, episode: episode, minute: minute,
                                        insightAverage: count))
                return
            }
        }
        track.baseline.add(count: count, hour: hour)
        Self.addAttributes(attributes, type: type, to: &track.attributions, minutes: 1)
    }

    private static func addAttributes(_ attributes: [(MinuteAttributes, Double)], type: InsightType,
                                      to table: inout AttributionTable, minutes: Double) {
        table.minutes += minutes
        for (a, n) in attributes {
            if type == .apiErrorRate && a.errorCode == nil { continue }
            table.add(attribute: 0, value: a.userIdentityArn, digest: a.arnDigest, count: n)
            table.add(attribute: 1, value: a.userAgent, digest: a.agentDigest, count: n)
            if type == .apiCallRate {
                table.add(attribute: 2, value: a.errorCode ?? "null", digest: a.codeDigest, count: n)
            }
        }
    }

    // MARK: - Events

    private func makeEvent(_ state: InsightState, key: InsightKey, type: InsightType, episode: Episode,
                           minute: Int64, insightAverage: Double) -> InsightEvent {
        let shared = Self.deterministicUUID(key: key, type: type, startMinute: episode.startMinute, salt: "shared")
        let eventID = Self.deterministicUUID(key: key, type: type, startMinute: episode.startMinute,
                                             salt: state.rawValue)
        let baselineMinutes = Double(max(episode.baselineMinutes, 1))
        let insightMinutes = Double(episode.minutes)
        var attributions: [InsightAttribution] = []
        let attributeCount = type == .apiCallRate ? 3 : 2  // error-rate insights omit errorCode
        for a in 0..<attributeCount {
            attributions.append(InsightAttribution(
                attribute: AttributionTable.attributes[a],
                insight: episode.attributions.top(attribute: a, limit: 5, overMinutes: insightMinutes),
                baseline: episode.baselineAttributions.top(attribute: a, limit: 5,
                                                           overMinutes: max(episode.baselineAttributions.minutes,
                                                                            baselineMinutes))))
        }
        let statistics = InsightStatistics(
            baseline: .init(average: AttributionTable.round(episode.baselineMean)),
            insight: .init(average: AttributionTable.round(insightAverage)),
            insightDuration: episode.minutes,
            baselineDuration: episode.baselineMinutes)
        let details = InsightDetails(state: state, eventSource: key.eventSource, eventName: key.eventName,
                                     insightType: type,
                                     insightContext: InsightContext(statistics: statistics, attributions: attributions))
        return InsightEvent(eventTime: EventTimeFormat.format(minute * 60_000), awsRegion: key.awsRegion,
                            eventID: eventID, recipientAccountId: key.recipientAccountId, sharedEventID: shared,
                            insightDetails: details)
    }

    /// A version-4-shaped UUID string from a stable hash, so batch and live runs name an episode identically.
    static func deterministicUUID(key: InsightKey, type: InsightType, startMinute: Int64, salt: String) -> String {
        var h1: UInt64 = 0xcbf2_9ce4_8422_2325
        var h2: UInt64 = 0x8422_2325_cbf2_9ce4
        for part in [key.recipientAccountId, key.awsRegion, key.eventSource, key.eventName, type.rawValue,
                     String(startMinute), salt] {
            for b in part.utf8 {
                h1 = (h1 ^ UInt64(b)) &* 0x0000_0100_0000_01b3
                h2 = (h2 ^ UInt64(b)) &* 0x9e37_79b9_7f4a_7c15
            }
            h1 = (h1 ^ 0x1f) &* 0x0000_0100_0000_01b3
            h2 = (h2 ^ 0x1f) &* 0x9e37_79b9_7f4a_7c15
        }
        func hex(_ v: UInt64, _ digits: Int) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: max(0, digits - s.count)) + s.suffix(digits)
        }
        let a = h1, b = (h2 & 0xffff_ffff_ffff_0fff) | 0x4000, c = (h2 >> 16 & 0x3fff) | 0x8000
        return "\(hex(a >> 32, 8))-\(hex(a >> 16 & 0xffff, 4))-\(hex(b & 0xffff, 4))-\(hex(c, 4))-\(hex(h1 ^ h2, 12))"
    }

    // MARK: - Helpers

    private mutating func evictLeastRecentlySeen() {
        let drop = max(configuration.maxKeys / 16, 1)
        let order = states.indices.sorted { states[$0].openMinute != states[$1].openMinute
            ? states[$0].openMinute < states[$1].openMinute : Self.keyOrder(states[$0].key, states[$1].key) }
        let victims = Set(order.prefix(drop))
        states = states.indices.filter { !victims.contains($0) }.map { states[$0] }
        rebuildIndex()
    }

    private mutating func rebuildIndex() {
        keyIndex.removeAll(keepingCapacity: true)
        for (i, s) in states.enumerated() { keyIndex[s.key] = Int32(i) }
        lastIndex = -1
    }

    static func keyOrder(_ a: InsightKey, _ b: InsightKey) -> Bool {
        (a.recipientAccountId, a.awsRegion, a.eventSource, a.eventName)
            < (b.recipientAccountId, b.awsRegion, b.eventSource, b.eventName)
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
        a >= 0 ? a / b : (a - b + 1) / b
    }
}

/// `pow` without importing Foundation (integer exponent, used for daily decay).
func Foundation_pow(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    var n = Int(exponent)
    var b = base
    while n > 0 {
        if n & 1 == 1 { result *= b }
        b *= b
        n >>= 1
    }
    return result
}

extension InsightsDetector: Codable {
    private enum CodingKeys: String, CodingKey { case configuration, firstMinute, watermarkMinute, keys }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        configuration = try c.decode(Configuration.self, forKey: .configuration)
        firstMinute = try c.decodeIfPresent(Int64.self, forKey: .firstMinute)
        watermarkMinute = try c.decode(Int64.self, forKey: .watermarkMinute)
        states = try c.decode([KeyState].self, forKey: .keys)
        rebuildIndex()
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(configuration, forKey: .configuration)
        try c.encodeIfPresent(firstMinute, forKey: .firstMinute)
        try c.encode(watermarkMinute, forKey: .watermarkMinute)
        try c.encode(states.sorted { Self.keyOrder($0.key, $1.key) }, forKey: .keys)
    }
}
