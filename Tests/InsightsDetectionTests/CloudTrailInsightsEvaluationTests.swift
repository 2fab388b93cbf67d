import Foundation
import Testing
import TrailwatchTestSupport
@testable import InsightsDetection

/// End-to-end evaluation: a generated week of background CloudTrail traffic with the real records of
/// `../shared/data/cloudtrail` injected as bursts (scripts/gen_cloudtrail.py). Every burst must be reported and at
/// most one false insight per simulated day is allowed.
private enum Evaluation {
    static let repoRoot = URL(fileURLWithPath: #filePath).resolvingSymlinksInPath().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let dataRoot = repoRoot.deletingLastPathComponent().appendingPathComponent("shared/data/cloudtrail")
    static let generator = repoRoot.appendingPathComponent("scripts/gen_cloudtrail.py")
    static var available: Bool {
        FileManager.default.fileExists(atPath: dataRoot.path)
            && FileManager.default.fileExists(atPath: "/usr/bin/python3")
    }

    struct Record {
        var ms: Int64
        var key: InsightKey
        var errorCode: String?
        var arn: String?
        var agent: String?
    }

    static func generate(into dir: URL, extra: [String] = [], samples: Bool = false) throws -> [String: Any] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = [generator.path, samples ? "--samples" : "--out", dir.path, "--no-gzip", "--inject", dataRoot.path]
            + extra
        p.standardOutput = FileHandle.nullDevice
        try launchProcess(p)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        let truth = try Data(contentsOf: dir.appendingPathComponent("ground_truth.json"))
        return try JSONSerialization.jsonObject(with: truth) as! [String: Any]
    }

    static func load(_ dir: URL, deliveryFiles: Bool = true) throws -> [Record] {
        var records: [Record] = []
        let files = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil)!
            .compactMap { $0 as? URL }
            .filter { $0.lastPathComponent.hasSuffix(".json") && (!deliveryFiles || $0.path.contains("AWSLogs")) }
        for file in files {
            let object = try JSONSerialization.jsonObject(with: Data(contentsOf: file))
            // Delivery files hold {"Records": [...]}; Stratus Red Team's detonation logs are a bare array.
            let list = deliveryFiles ? (object as! [String: Any])["Records"] as! [[String: Any]] : object as! [[String: Any]]
            for r in list {
                let identity = r["userIdentity"] as? [String: Any]
                records.append(Record(
                    ms: EventTimeFormat.parse(r["eventTime"] as! String)!,
                    key: InsightKey(eventSource: r["eventSource"] as? String ?? "", eventName: r["eventName"] as? String ?? "",
                                    awsRegion: r["awsRegion"] as? String ?? "",
                                    recipientAccountId: r["recipientAccountId"] as? String ?? ""),
                    errorCode: r["errorCode"] as? String, arn: identity?["arn"] as? String,
                    agent: r["userAgent"] as? String))
            }
        }
        // Delivery files are not globally ordered; a batch run sorts by event time (ties: stable key order).
        records.sort { $0.ms != $1.ms ? $0.ms < $1.ms : InsightsDetector.keyOrder($0.key, $1.key) }
        return records
    }

    static func run(_ records: [Record], configuration: InsightsDetector.Configuration = .init()) -> [InsightEvent] {
        var detector = InsightsDetector(configuration: configuration)
        var events: [InsightEvent] = []
        for r in records {
            events += detector.observe(timestampMs: r.ms, key: r.key, isError: r.errorCode != nil,
                                       errorCode: r.errorCode, userIdentityArn: r.arn, userAgent: r.agent)
        }
        events += detector.advance(toMs: (records.last?.ms ?? 0) + 3_600_000)
        return events
    }
}

@Suite("CloudTrail Insights evaluation on generated week + real bursts",
       .enabled(if: Evaluation.available, "shared CloudTrail data (../shared/data/cloudtrail) or python3 absent"))
struct CloudTrailInsightsEvaluationTests {
    @Test(arguments: [42, 7, 2026])
    func everyBurstFoundAndFewFalseInsights(seed: Int) throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tw-insights-eval-\(getpid())-\(seed)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let truth = try Evaluation.generate(into: dir, extra: ["--seed", String(seed)])
        let records = try Evaluation.load(dir)
        let events = Evaluation.run(records)
        let starts = events.filter { $0.insightDetails.state == .start }
        let ends = events.filter { $0.insightDetails.state == .end }
        #expect(Set(starts.map(\.sharedEventID)) == Set(ends.map(\.sharedEventID)), "every Start has its End")

        // Episode windows by shared id.
        var windows: [String: (start: Int64, end: Int64, event: InsightEvent)] = [:]
        for s in starts { windows[s.sharedEventID] = (s.timestampMs, s.timestampMs + 60_000, s) }
        for e in ends { windows[e.sharedEventID]?.end = e.timestampMs }

        let bursts = truth["bursts"] as! [[String: Any]]
        var found = 0
        for b in bursts {
            let minute = EventTimeFormat.parse(b["minute"] as! String)!
            let hit = windows.values.contains { w in
                w.event.insightDetails.eventSource == b["eventSource"] as! String
                    && w.event.insightDetails.eventName == b["eventName"] as! String
                    && w.start <= minute && minute < w.end
            }
            if hit { found += 1 } else { Issue.record("burst not found: \(b)") }
        }
        // A false insight is an episode that overlaps no injected file's time span (± 2 minutes).
        let injections = (truth["injections"] as! [[String: Any]]).map {
            (EventTimeFormat.parse($0["start"] as! String)! - 120_000, EventTimeFormat.parse($0["end"] as! String)! + 120_000)
        }
        let falseInsights = windows.values.filter { w in !injections.contains { w.start < $0.1 && $0.0 < w.end } }
        let days = truth["days"] as! Int
        print("insights evaluation (seed \(seed)): \(records.count) records, \(bursts.count) bursts, \(found) found, "
              + "\(starts.count) insights, \(falseInsights.count) false over \(days) days")
        for f in falseInsights {
            print("  false: \(f.event.eventTime) \(f.event.insightDetails.eventName) \(f.event.insightDetails.insightType.rawValue) "
                  + "insight \(f.event.insightDetails.insightContext.statistics.insight.average) "
                  + "baseline \(f.event.insightDetails.insightContext.statistics.baseline.average)")
        }
        #expect(found == bursts.count)
        #expect(falseInsights.count <= days)

        // Batch and live agree: replaying in two halves through an encoded/decoded state gives the same events.
        let half = records.count / 2
        var first = InsightsDetector()
        var replay: [InsightEvent] = []
        for r in records[..<half] {
            replay += first.observe(timestampMs: r.ms, key: r.key, isError: r.errorCode != nil, errorCode: r.errorCode,
                                    userIdentityArn: r.arn, userAgent: r.agent)
        }
        var second = try JSONDecoder().decode(InsightsDetector.self, from: JSONEncoder().encode(first))
        for r in records[half...] {
            replay += second.observe(timestampMs: r.ms, key: r.key, isError: r.errorCode != nil, errorCode: r.errorCode,
                                     userIdentityArn: r.arn, userAgent: r.agent)
        }
        replay += second.advance(toMs: (records.last?.ms ?? 0) + 3_600_000)
        #expect(replay == events)
    }

    @Test("a real attack with no history: the denied-call bursts are ApiErrorRate insights from the first minute (cold start)")
    func attackWithoutHistory() throws {
        let records = try Evaluation.load(Evaluation.dataRoot.appendingPathComponent("stratus_red_team_detonation_logs"),
                                          deliveryFiles: false)
        let starts = Evaluation.run(records).filter { $0.insightDetails.state == .start }
        let seen = starts.map { "\($0.eventTime) \($0.insightDetails.eventName) \($0.insightDetails.insightType.rawValue)" }
        print("stratus red team, \(records.count) records, no history: \(seen)")
        let passwords = starts.first { $0.insightDetails.eventName == "GetPasswordData" }
        #expect(passwords?.insightDetails.insightType == .apiErrorRate, "\(seen)")
        #expect(passwords?.eventTime == "2024-07-30T21:31:00Z")
        #expect(passwords?.insightDetails.insightContext.statistics.insight.average ?? 0 >= 29)
        #expect(starts.contains { $0.insightDetails.eventName == "DescribeInstanceAttribute" && $0.insightDetails.insightType == .apiErrorRate })
        // Call rates have no natural baseline: nothing is said about them before the minimum history (6 h).
        let warmUpEnd = records[0].ms + 6 * 3_600_000
        #expect(!starts.contains { $0.insightDetails.insightType == .apiCallRate && $0.timestampMs < warmUpEnd }, "\(seen)")

        // Without the cold start the first hour says nothing: this is what the cold start adds.
        let withoutColdStart = Evaluation.run(records, configuration: .init(coldStartErrorShare: 0))
        #expect(!withoutColdStart.contains { $0.timestampMs < warmUpEnd })
    }

    @Test func sampleDayShowsItsBursts() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tw-insights-samples-\(getpid())")
        defer { try? FileManager.default.removeItem(at: dir) }
        let truth = try Evaluation.generate(into: dir, samples: true)
        let records = try Evaluation.load(dir)
        let starts = Evaluation.run(records).filter { $0.insightDetails.state == .start }
        let burstNames = Set((truth["bursts"] as! [[String: Any]]).map { $0["eventName"] as! String })
        print("sample day: \(records.count) records, insights: \(starts.map { "\($0.eventTime) \($0.insightDetails.eventName) \($0.insightDetails.insightType.rawValue)" })")
        #expect(burstNames.count == 3)
        #expect(Set(starts.map(\.insightDetails.eventName)) == burstNames)
    }
}
