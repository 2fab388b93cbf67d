import Foundation
import Testing
@testable import InsightsDetection

@Suite struct InsightsDetectorTests {
    static let minute: Int64 = 60_000
    static let key = InsightKey(eventSource: "ec2.amazonaws.com", eventName: "GetPasswordData", awsRegion: "us-east-1",
                                recipientAccountId: "111122223333")

    /// `perMinute` calls every minute for `minutes` minutes (a deterministic 1–3 pattern when perMinute is 2).
    static func steady(_ d: inout InsightsDetector, from: Int64, minutes: Int64, perMinute: Int, key: InsightKey = key,
                       errorEvery: Int = 0) -> [InsightEvent] {
        var out: [InsightEvent] = []
        var n = 0
        for m in from..<from + minutes {
            let count = perMinute == 2 ? Int(1 + (m % 3)) : perMinute
            for i in 0..<count {
                n += 1
                let error = errorEvery > 0 && n % errorEvery == 0
                out += d.observe(timestampMs: m * minute + Int64(i) * 1000, key: key, isError: error,
                                 errorCode: error ? "AccessDenied" : nil, userIdentityArn: "arn:aws:iam::1:role/app",
                                 userAgent: "aws-cli")
            }
        }
        return out
    }

    static func burst(_ d: inout InsightsDetector, at m: Int64, calls: Int, error: Bool = false) -> [InsightEvent] {
        var out: [InsightEvent] = []
        for i in 0..<calls {
            out += d.observe(timestampMs: m * minute + Int64(i) * 100, key: key, isError: error,
                             errorCode: error ? "Client.UnauthorizedOperation" : nil,
                             userIdentityArn: "arn:aws:sts::1:assumed-role/attacker", userAgent: "stratus-red-team")
        }
        return out
    }

    @Test func eventTimeFormatRoundTrips() {
        #expect(EventTimeFormat.format(0) == "1970-01-01T00:00:00Z")
        #expect(EventTimeFormat.format(1_722_375_070_000) == "2024-07-30T21:31:10Z")
        #expect(EventTimeFormat.parse("2024-07-30T21:31:10Z") == 1_722_375_070_000)
        #expect(EventTimeFormat.parse("2000-02-29T23:59:59.5Z") == 951_868_799_000)
        #expect(EventTimeFormat.parse("bad") == nil)
    }

    @Test func burstGivesStartAndEndSharingAnID() throws {
        var d = InsightsDetector()
        var events = Self.steady(&d, from: 0, minutes: 1440, perMinute: 2)
        #expect(events.isEmpty)
        events += Self.burst(&d, at: 1440, calls: 40)
        events += Self.burst(&d, at: 1441, calls: 30)
        events += Self.steady(&d, from: 1442, minutes: 10, perMinute: 2)
        let calls = events.filter { $0.insightDetails.insightType == .apiCallRate }
        #expect(calls.map(\.insightDetails.state) == [.start, .end])
        let start = calls[0], end = calls[1]
        #expect(start.sharedEventID == end.sharedEventID)
        #expect(start.eventID != end.eventID)
        #expect(start.eventTime == EventTimeFormat.format(1440 * Self.minute))
        #expect(end.eventTime == EventTimeFormat.format(1442 * Self.minute))
        let s = start.insightDetails.insightContext.statistics
        #expect(s.insight.average == 40)
        #expect(abs(s.baseline.average - 2) < 0.01)
        #expect(s.insightDuration == 1)
        #expect(s.baselineDuration == 1440)
        let e = end.insightDetails.insightContext.statistics
        #expect(e.insight.average == 35)
        #expect(e.insightDuration == 2)
        let arn = start.insightDetails.insightContext.attributions.first { $0.attribute == "userIdentityArn" }!
        #expect(arn.insight.first?.value == "arn:aws:sts::1:assumed-role/attacker")
        #expect(arn.insight.first?.average == 40)
        #expect(arn.baseline.first?.value == "arn:aws:iam::1:role/app")
        let codes = start.insightDetails.insightContext.attributions.first { $0.attribute == "errorCode" }!
        #expect(codes.insight.first?.value == "null")
    }

    @Test func errorRateInsightOmitsErrorCodeAttribution() {
        var d = InsightsDetector(configuration: .init(types: [.apiErrorRate]))
        var events = Self.steady(&d, from: 0, minutes: 1440, perMinute: 2, errorEvery: 50)
        events += Self.burst(&d, at: 1440, calls: 29, error: true)
        events += d.advance(toMs: 1450 * Self.minute)
        #expect(events.map(\.insightDetails.state) == [.start, .end])
        #expect(events.allSatisfy { $0.insightDetails.insightType == .apiErrorRate })
        #expect(events[0].insightDetails.insightContext.attributions.map(\.attribute) == ["userIdentityArn", "userAgent"])
    }

    @Test func quietHistoryIsNotEnough() {
        var d = InsightsDetector()
        var events = Self.steady(&d, from: 0, minutes: 60, perMinute: 2)
        events += Self.burst(&d, at: 60, calls: 100)
        events += d.advance(toMs: 70 * Self.minute)
        #expect(events.isEmpty, "needs minimumHistoryMinutes of history first")
    }

    @Test func ordinaryVariationIsNotAnInsight() {
        var d = InsightsDetector()
        var events = Self.steady(&d, from: 0, minutes: 3 * 1440, perMinute: 2)
        events += Self.steady(&d, from: 3 * 1440, minutes: 60, perMinute: 5)
        events += d.advance(toMs: 4 * 1440 * Self.minute)
        #expect(events.isEmpty)
    }

    @Test func anomaliesDoNotBecomeTheirOwnBaseline() {
        var d = InsightsDetector()
        var events = Self.steady(&d, from: 0, minutes: 1440, perMinute: 2)
        // A long episode: 30 minutes at 60 calls per minute.
        for m in Int64(1440)..<1470 { events += Self.burst(&d, at: m, calls: 60) }
        events += Self.steady(&d, from: 1470, minutes: 30, perMinute: 2)
        events += Self.burst(&d, at: 1500, calls: 60)
        events += d.advance(toMs: 1510 * Self.minute)
        let starts = events.filter { $0.insightDetails.state == .start }
        #expect(starts.count == 2)
        #expect(starts.allSatisfy { abs($0.insightDetails.insightContext.statistics.baseline.average - 2) < 0.05 })
        #expect(events.first { $0.insightDetails.state == .end }?.insightDetails.insightContext.statistics.insightDuration == 30)
    }

    @Test func deterministicAndRestartable() throws {
        func run(split: Bool) throws -> [InsightEvent] {
            var d = InsightsDetector()
            var events = Self.steady(&d, from: 0, minutes: 1440, perMinute: 2)
            if split { d = try JSONDecoder().decode(InsightsDetector.self, from: JSONEncoder().encode(d)) }
            events += Self.burst(&d, at: 1440, calls: 50)
            events += d.advance(toMs: 1450 * Self.minute)
            return events
        }
        let a = try run(split: false), b = try run(split: true)
        #expect(a == b)
        #expect(a.count == 2)
    }

    @Test func serialisesAsACloudTrailInsightsRecord() throws {
        var d = InsightsDetector()
        var events = Self.steady(&d, from: 0, minutes: 1440, perMinute: 2)
        events += Self.burst(&d, at: 1440, calls: 40)
        #expect(events.isEmpty, "a minute is judged when it is complete")
        events += d.advance(toMs: 1441 * Self.minute)
        try #require(events.count == 1)
        let data = try JSONEncoder().encode(events[0])
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        #expect(json["eventType"] as? String == "AwsCloudTrailInsight")
        #expect(json["eventCategory"] as? String == "Insight")
        #expect(json["eventVersion"] as? String == "1.07")
        #expect(json["awsRegion"] as? String == "us-east-1")
        #expect(json["recipientAccountId"] as? String == "111122223333")
        let details = json["insightDetails"] as! [String: Any]
        #expect(details["state"] as? String == "Start")
        #expect(details["insightType"] as? String == "ApiCallRateInsight")
        #expect(details["eventName"] as? String == "GetPasswordData")
        let context = details["insightContext"] as! [String: Any]
        let stats = context["statistics"] as! [String: Any]
        #expect((stats["baseline"] as! [String: Any])["average"] != nil)
        #expect((stats["insight"] as! [String: Any])["average"] as? Double == 40)
        #expect(stats["insightDuration"] as? Int == 1)
        #expect(stats["baselineDuration"] as? Int == 1440)
        let attributions = context["attributions"] as! [[String: Any]]
        #expect(attributions.map { $0["attribute"] as! String } == ["userIdentityArn", "userAgent", "errorCode"])
        let id = json["sharedEventID"] as! String
        #expect(id.count == 36 && id.split(separator: "-").count == 5)
    }

    @Test("cold start: before the minimum history only bursts of errors that are most of the key's calls are insights")
    func coldStart() {
        var d = InsightsDetector()
        var events = Self.burst(&d, at: 0, calls: 29, error: true)          // denied burst, no history at all
        events += Self.burst(&d, at: 5, calls: 60)                          // many calls: no baseline to judge them by
        for i in 0..<100 {                                                   // 12 errors among 100 calls: not a burst of denials
            events += d.observe(timestampMs: 10 * Self.minute + Int64(i) * 100, key: Self.key, isError: i < 12,
                                errorCode: i < 12 ? "ThrottlingException" : nil)
        }
        events += d.advance(toMs: 20 * Self.minute)
        let starts = events.filter { $0.insightDetails.state == .start }
        #expect(starts.map(\.insightDetails.insightType) == [.apiErrorRate])
        #expect(starts.first?.eventTime == EventTimeFormat.format(0))
        #expect(starts.first?.insightDetails.insightContext.statistics.baselineDuration == 0)
        // An older saved state (no cold-start setting) loads with the default.
        let json = #"{"types":["ApiCallRateInsight"],"baselineDays":7,"minimumHistoryMinutes":360,"minimumCount":10,"minimumRatio":3,"deviations":6,"maxKeys":10,"attributionCapacity":32}"#
        #expect((try? JSONDecoder().decode(InsightsDetector.Configuration.self, from: Data(json.utf8)))?.coldStartErrorShare == 0.5)
    }

    @Test func keysAreBounded() {
        var d = InsightsDetector(configuration: .init(maxKeys: 64))
        for i in 0..<1000 {
            _ = d.observe(timestampMs: Int64(i) * 1000, key: InsightKey(eventName: "Api\(i)"), isError: false)
        }
        #expect(d.keyCount <= 64)
    }
}
