/// The kind of unusual activity an insight reports (CloudTrail's `insightType`).
public enum InsightType: String, Sendable, Codable, CaseIterable {
    /// The per-minute number of calls departs from its baseline.
    case apiCallRate = "ApiCallRateInsight"
    /// The per-minute number of calls that returned an error departs from its baseline.
    case apiErrorRate = "ApiErrorRateInsight"
}

/// `Start` opens an insight episode, `End` closes it; both share ``InsightEvent/sharedEventID``.
public enum InsightState: String, Sendable, Codable {
    case start = "Start"
    case end = "End"
}

/// One `{value, average}` entry of an attribution list.
public struct InsightAttributionValue: Sendable, Codable, Equatable {
    public var value: String
    /// Mean calls per minute carrying this value.
    public var average: Double
    public init(value: String, average: Double) {
        self.value = value
        self.average = average
    }
}

/// Top values of one attribute during the insight and in the baseline (at most 5 each, by average, descending).
public struct InsightAttribution: Sendable, Codable, Equatable {
    /// `userIdentityArn`, `userAgent` or `errorCode`.
    public var attribute: String
    public var insight: [InsightAttributionValue]
    public var baseline: [InsightAttributionValue]
    public init(attribute: String, insight: [InsightAttributionValue], baseline: [InsightAttributionValue]) {
        self.attribute = attribute
        self.insight = insight
        self.baseline = baseline
    }
}

/// `insightContext.statistics` of a CloudTrail Insights event.
public struct InsightStatistics: Sendable, Codable, Equatable {
    public struct Average: Sendable, Codable, Equatable {
        public var average: Double
        public init(average: Double) { self.average = average }
    }
    /// Mean per-minute rate over the baseline window.
    public var baseline: Average
    /// Start: the rate in the first unusual minute. End: the mean rate over the whole episode.
    public var insight: Average
    /// Minutes of unusual activity (1 on Start).
    public var insightDuration: Int
    /// Minutes of history the baseline was computed over.
    public var baselineDuration: Int
    public init(baseline: Average, insight: Average, insightDuration: Int, baselineDuration: Int) {
        self.baseline = baseline
        self.insight = insight
        self.insightDuration = insightDuration
        self.baselineDuration = baselineDuration
    }
}

/// `insightDetails.insightContext`.
public struct InsightContext: Sendable, Codable, Equatable {
    public var statistics: InsightStatistics
    public var attributions: [InsightAttribution]
    public init(statistics: InsightStatistics, attributions: [InsightAttribution]) {
        self.statistics = statistics
        self.attributions = attributions
    }
}

/// `insightDetails` of a CloudTrail Insights event.
public struct InsightDetails: Sendable, Codable, Equatable {
    public var state: InsightState
    public var eventSource: String
    public var eventName: String
    public var insightType: InsightType
    public var insightContext: InsightContext
    public init(state: InsightState, eventSource: String, eventName: String, insightType: InsightType,
                insightContext: InsightContext) {
        self.state = state
        self.eventSource = eventSource
        self.eventName = eventName
        self.insightType = insightType
        self.insightContext = insightContext
    }
}

/// A CloudTrail Insights event record. Encoding it with `JSONEncoder` gives the record CloudTrail delivers
/// (`eventType: AwsCloudTrailInsight`, `eventCategory: Insight`).
public struct InsightEvent: Sendable, Codable, Equatable {
    public var eventVersion: String
    /// ISO-8601 UTC, second precision: the start of the first unusual minute (Start) or of the first normal minute
    /// after the episode (End).
    public var eventTime: String
    public var awsRegion: String
    /// Unique per record, derived deterministically from ``sharedEventID`` and the state.
    public var eventID: String
    public var eventType: String
    public var recipientAccountId: String
    /// Shared by the Start and End records of one episode; derived from the key, type and start minute.
    public var sharedEventID: String
    public var insightDetails: InsightDetails
    public var eventCategory: String

    /// The event time in milliseconds since the Unix epoch (not part of the record).
    public var timestampMs: Int64 { EventTimeFormat.parse(eventTime) ?? 0 }

    public init(eventTime: String, awsRegion: String, eventID: String, recipientAccountId: String,
                sharedEventID: String, insightDetails: InsightDetails) {
        self.eventVersion = "1.07"
        self.eventTime = eventTime
        self.awsRegion = awsRegion
        self.eventID = eventID
        self.eventType = "AwsCloudTrailInsight"
        self.recipientAccountId = recipientAccountId
        self.sharedEventID = sharedEventID
        self.insightDetails = insightDetails
        self.eventCategory = "Insight"
    }
}
