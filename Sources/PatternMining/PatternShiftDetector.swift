/// A pattern event: a template seen for the first time after the learning period, or a sharp change of a
/// template's rate.
public struct PatternEvent: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable {
        /// The template appeared for the first time after the learning period.
        case newPattern = "NewPattern"
        /// The template's count in a window rose to at least `increaseFactor` times its baseline.
        case rateIncrease = "RateIncrease"
        /// The template's count in a window fell to at most 1/`decreaseFactor` of its baseline.
        case rateDecrease = "RateDecrease"
    }

    public var kind: Kind
    /// Template id as 16 hexadecimal digits (``TemplateMiner/idString(_:)``).
    public var templateID: String
    /// Template text when the event was raised.
    public var template: String
    /// Event time: the message's timestamp for a new pattern, the window start for a rate shift.
    public var timestampMs: Int64
    /// Messages of the template in the window (1 for a new pattern).
    public var count: Double
    /// Baseline messages per window (0 for a new pattern).
    public var baseline: Double
    /// Window length in milliseconds.
    public var windowMs: Int64

    public init(kind: Kind, templateID: String, template: String, timestampMs: Int64, count: Double, baseline: Double,
                windowMs: Int64) {
        self.kind = kind
        self.templateID = templateID
        self.template = template
        self.timestampMs = timestampMs
        self.count = count
        self.baseline = baseline
        self.windowMs = windowMs
    }
}

/// Detects new templates after a learning period and sharp rate shifts of known templates, in event time.
///
/// Feed every mined message with ``observe(templateID:template:timestampMs:)``; call ``advance(toMs:)`` periodically
/// (live) or once at the end (batch) so that templates that went quiet complete their windows. Each template's rate
/// is counted per ``Configuration/windowMs`` window and compared with an exponentially weighted baseline of its
/// previous windows (quiet windows count as zero). Windows flagged as shifted are kept out of the baseline, so a
/// burst does not become normal by itself; after ``Configuration/acceptAfterWindows`` consecutive shifted windows
/// the new level is accepted as the baseline (a lasting change is reported once, not forever).
///
/// Only event time is used, so batch and live runs over the same messages agree. State is `Codable`; memory is
/// bounded by ``Configuration/maxTracked`` templates (least recently seen forgotten; a forgotten template that comes
/// back after the learning period is reported as new again).
public struct PatternShiftDetector: Sendable {
    public struct Configuration: Sendable, Codable, Equatable {
        /// Templates first seen within this time of the first message are part of the learned set.
        public var learningPeriodMs: Int64
        /// Counting window.
        public var windowMs: Int64
        /// Windows of history a template needs before rate shifts are reported.
        public var minimumBaselineWindows: Int
        /// An increase needs `count >= increaseFactor × baseline`.
        public var increaseFactor: Double
        /// A decrease needs `count <= baseline / decreaseFactor`.
        public var decreaseFactor: Double
        /// Minimum window count for an increase, and minimum baseline for a decrease.
        public var minimumCount: Double
        /// Weight of the newest window in the baseline.
        public var smoothing: Double
        /// Consecutive shifted windows after which the new level becomes the baseline.
        public var acceptAfterWindows: Int
        /// Maximum number of templates tracked.
        public var maxTracked: Int

        public init(learningPeriodMs: Int64 = 3_600_000, windowMs: Int64 = 300_000, minimumBaselineWindows: Int = 12,
                    increaseFactor: Double = 5, decreaseFactor: Double = 5, minimumCount: Double = 20,
                    smoothing: Double = 0.1, acceptAfterWindows: Int = 12, maxTracked: Int = 10_000) {
            self.learningPeriodMs = learningPeriodMs
            self.windowMs = windowMs
            self.minimumBaselineWindows = minimumBaselineWindows
            self.increaseFactor = increaseFactor
            self.decreaseFactor = decreaseFactor
            self.minimumCount = minimumCount
            self.smoothing = smoothing
            self.acceptAfterWindows = acceptAfterWindows
            self.maxTracked = maxTracked
        }
    }

    struct Tracked: Sendable, Codable, Equatable {
        var template: String
        var window: Int64
        var count: Double
        var baseline: Double
        var windows: Int
        var shiftedWindows: Int
        var lastSeenMs: Int64
    }

    public private(set) var configuration: Configuration
    /// Timestamp of the first message observed (start of the learning period).
    public private(set) var firstTimestampMs: Int64?
    private var tracked: [UInt64: Tracked] = [:]

    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// Number of templates tracked.
    public var trackedCount: Int { tracked.count }

    /// Records one message of a template; returns the events it completes (usually none).
    public mutating func observe(templateID: UInt64, template: String, timestampMs: Int64) -> [PatternEvent] {
        if firstTimestampMs == nil { firstTimestampMs = timestampMs }
        let window = Self.floorDiv(timestampMs, max(configuration.windowMs, 1))
        var events: [PatternEvent] = []
        guard let slot = tracked.index(forKey: templateID) else {
            if tracked.count >= max(configuration.maxTracked, 1) { evictLeastRecentlySeen() }
            tracked[templateID] = Tracked(template: template, window: window, count: 1, baseline: 0, windows: 0,
                                          shiftedWindows: 0, lastSeenMs: timestampMs)
            if timestampMs >= firstTimestampMs! + configuration.learningPeriodMs {
                events.append(PatternEvent(kind: .newPattern, templateID: TemplateMiner.idString(templateID),
                                           template: template, timestampMs: timestampMs, count: 1, baseline: 0,
                                           windowMs: configuration.windowMs))
            }
            return events
        }
        // In place (one modify access: reading `tracked.values[slot]` field by field would copy the entry, and retain
        // its text, each time), and the template text is only stored again when it changed.
        // Static, so `self` is not held (which would make the dictionary copy itself on the modify access).
        let c = configuration
        Self.observe(&tracked.values[slot], c, id: templateID, template: template, window: window,
                     timestampMs: timestampMs, events: &events)
        return events
    }

    private static func observe(_ t: inout Tracked, _ c: Configuration, id: UInt64, template: String, window: Int64,
                                timestampMs: Int64, events: inout [PatternEvent]) {
        if window > t.window { close(&t, c, id: id, upTo: window, events: &events) }
        t.count += 1
        if t.template != template { t.template = template }
        t.lastSeenMs = max(t.lastSeenMs, timestampMs)
    }

    /// Completes every template's windows that end at or before `ms`.
    public mutating func advance(toMs ms: Int64) -> [PatternEvent] {
        let window = Self.floorDiv(ms, max(configuration.windowMs, 1))
        var events: [PatternEvent] = []
        for id in tracked.keys.sorted() {
            var t = tracked[id]!
            guard window > t.window else { continue }
            Self.close(&t, configuration, id: id, upTo: window, events: &events)
            tracked[id] = t
        }
        return events
    }

    /// Closes the open window and the quiet windows before `window`.
    private static func close(_ t: inout Tracked, _ configuration: Configuration, id: UInt64, upTo window: Int64,
                              events: inout [PatternEvent]) {
        closeWindow(&t, configuration, id: id, count: t.count, events: &events)
        let quiet = window - t.window - 1
        if quiet > 0 {
            t.window += 1
            closeWindow(&t, configuration, id: id, count: 0, events: &events)
            // The remaining quiet windows only decay the baseline (a decrease was already judged once).
            let remaining = quiet - 1
            if remaining > 0 {
                var factor = 1.0
                var base = 1 - configuration.smoothing
                var n = min(remaining, 10_000)
                while n > 0 {
                    if n & 1 == 1 { factor *= base }
                    base *= base
                    n >>= 1
                }
                t.baseline *= factor
                t.windows += Int(min(remaining, Int64(Int32.max)))
            }
        }
        t.window = window
        t.count = 0
    }

    private static func closeWindow(_ t: inout Tracked, _ c: Configuration, id: UInt64, count: Double,
                                    events: inout [PatternEvent]) {
        let start = t.window * c.windowMs
        if t.windows == 0 {
            t.baseline = count
            t.windows = 1
            return
        }
        var shifted = false
        if t.windows >= c.minimumBaselineWindows {
            let increase = count >= c.minimumCount && count >= c.increaseFactor * max(t.baseline, 1)
            let decrease = t.baseline >= c.minimumCount && count <= t.baseline / c.decreaseFactor
            shifted = increase || decrease
            if shifted && t.shiftedWindows == 0 {
                events.append(PatternEvent(kind: increase ? .rateIncrease : .rateDecrease,
                                           templateID: TemplateMiner.idString(id), template: t.template,
                                           timestampMs: start, count: count, baseline: t.baseline, windowMs: c.windowMs))
            }
        }
        if shifted {
            t.shiftedWindows += 1
            if t.shiftedWindows >= c.acceptAfterWindows {
                t.baseline = count
                t.shiftedWindows = 0
            }
        } else {
            t.shiftedWindows = 0
            t.baseline += c.smoothing * (count - t.baseline)
        }
        t.windows += 1
    }

    private mutating func evictLeastRecentlySeen() {
        let drop = max(configuration.maxTracked / 16, 1)
        let victims = tracked.sorted { $0.value.lastSeenMs != $1.value.lastSeenMs
            ? $0.value.lastSeenMs < $1.value.lastSeenMs : $0.key < $1.key }.prefix(drop)
        for (id, _) in victims { tracked.removeValue(forKey: id) }
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : (a - b + 1) / b }
}

extension PatternShiftDetector: Codable {
    private enum CodingKeys: String, CodingKey { case configuration, firstTimestampMs, tracked }
    private struct Entry: Codable {
        var id: UInt64
        var state: Tracked
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        configuration = try c.decode(Configuration.self, forKey: .configuration)
        firstTimestampMs = try c.decodeIfPresent(Int64.self, forKey: .firstTimestampMs)
        let entries = try c.decode([Entry].self, forKey: .tracked)
        tracked = Dictionary(uniqueKeysWithValues: entries.map { ($0.id, $0.state) })
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(configuration, forKey: .configuration)
        try c.encodeIfPresent(firstTimestampMs, forKey: .firstTimestampMs)
        try c.encode(tracked.keys.sorted().map { Entry(id: $0, state: tracked[$0]!) }, forKey: .tracked)
    }
}
