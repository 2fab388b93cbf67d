import Foundation
import PatternMining
import Testing
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStages
import TrailwatchTestSupport

@Suite("Pattern mining and insights stages")
struct MiningStageTests {
    @Test("patterns: every event gets its template; a template first seen after learning is a NewPattern event")
    func patterns() async throws {
        let dir = TemporaryDirectory()
        var text = ""
        // An hour of two ordinary messages, then a new one.
        for minute in 0..<90 {
            let stamp = "2026-11-24T10:\(String(minute % 60).leftPad(2)):00Z"
            let hour = minute < 60 ? "10" : "11"
            let time = stamp.replacingOccurrences(of: "T10:", with: "T\(hour):")
            text += "\(time) user \(minute) logged in from 10.0.0.\(minute % 250)\n"
            text += "\(time) cache hit ratio \(minute % 100) percent\n"
            if minute == 80 { text += "\(time) disk /dev/sda1 is failing with error 5\n" }
        }
        let log = dir.write("logs/app.log", text)
        _ = try await runOnce("""
            sources:
              app:
                type: file
                include: \(log)
                timestamp: { regex: '^([^ ]+)' }
            transforms:
              mined: { type: patterns, inputs: [app], learning_period: 30m }
            sinks:
              logs: { type: file, inputs: [mined], path: \(dir.file("logs.json")) }
              events: { type: file, inputs: [mined.events], path: \(dir.file("events.json")) }
            """)
        let logs = lines(dir.read("logs.json"))
        #expect(logs.count == 181)
        #expect(logs[0].contains(#""template":"<*> user <*> logged in from <*>""#), "\(logs[0])")
        #expect(logs[0].contains(#""parameters":["2026-11-24T10:00:00Z","0","10.0.0.0"]"#), "\(logs[0])")
        let events = lines(dir.read("events.json"))
        let newPatterns = events.filter { $0.contains(#""kind":"NewPattern""#) }
        #expect(newPatterns.count == 1, "\(events)")
        #expect(newPatterns.first?.contains("is failing with error") == true)
    }

    @Test("patterns: a batch mined on all cores annotates every event as mining one message at a time does")
    func patternsOnAllCoresMatchOneAtATime() async throws {
        let dir = TemporaryDirectory()
        var messages: [String] = []
        for k in 0..<3000 {
            switch k % 5 {
            case 0: messages.append("10.0.\(k % 7).\(k % 250) - user\(k % 40) \"GET /api?id=\(k) HTTP/1.1\" 200 \(k * 7)")
            case 1: messages.append(#"{"level":"INFO","service":"svc-\#(k % 3)","latency_ms":\#(k % 900).5,"note":"say \"hi\"\\n"}"#)
            case 2: messages.append("Received block blk_-\(k * 7919) of size \(k) from /10.0.0.\(k % 255)")
            case 3: messages.append("state 'Active' for job_2015_\(k % 97) on node-\(k % 11).example.net:\(8000 + k % 3)")
            default: messages.append(String(repeating: "tick ", count: 1 + k % 13) + "done after \(k)ms")
            }
        }
        let log = dir.write("logs/app.log", messages.joined(separator: "\n") + "\n")
        _ = try await runOnce("""
            sources:
              app: { type: file, include: \(log) }
            transforms:
              mined: { type: patterns, inputs: [app] }
            sinks:
              logs: { type: file, inputs: [mined], path: \(dir.file("logs.json")) }
            """)
        let logs = lines(dir.read("logs.json"))
        #expect(logs.count == messages.count)
        var miner = TemplateMiner()
        var mismatches = 0
        for (k, line) in logs.enumerated() where k < messages.count {
            let expected = miner.add(messages[k])
            let event = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            let fields = event?["fields"] as? [String: Any]
            let same = event?["message"] as? String == messages[k]
                && fields?["template_id"] as? String == expected.templateIDString
                && fields?["template"] as? String == expected.template
                && fields?["parameters"] as? [String] == expected.parameters(in: messages[k])
            if !same {
                mismatches += 1
                if mismatches <= 3 { Issue.record("event \(k): \(line)\nexpected \(expected.template) \(expected.parameters(in: messages[k]))") }
            }
        }
        #expect(mismatches == 0)
    }

    @Test("insights: a burst of one API call gives a Start and an End insight sharing an id, CloudTrail-shaped")
    func insights() async throws {
        let dir = TemporaryDirectory()
        var text = ""
        let start = 1_795_478_400_000 as Int64  // 2026-11-24T00:00:00Z
        // Twelve quiet hours: a few calls a minute; then 200 calls in one minute.
        for minute in 0..<(12 * 60) {
            let calls = minute == 700 ? 200 : 2 + minute % 3
            for k in 0..<calls {
                let time = Timestamps.iso8601(start + Int64(minute) * 60_000 + Int64(k) * 100).prefix(19) + "Z"
                let user = minute == 700 ? "arn:aws:iam::111122223333:user/mallory" : "arn:aws:iam::111122223333:user/alice"
                text += #"{"eventTime":"\#(time)","eventSource":"s3.amazonaws.com","eventName":"ListBuckets","awsRegion":"us-east-1","recipientAccountId":"111122223333","userIdentity":{"arn":"\#(user)"},"userAgent":"aws-cli"}"# + "\n"
            }
        }
        let log = dir.write("trail.jsonl", text)
        _ = try await runOnce("""
            sources:
              trail:
                type: file
                include: \(log)
                timestamp: { field: $.eventTime }
            transforms:
              found: { type: insights, inputs: [trail] }
            sinks:
              out: { type: file, inputs: [found], path: \(dir.file("insights.json")) }
            """)
        let insights = lines(dir.read("insights.json")).compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let details = insights.compactMap { $0["insightDetails"] as? [String: Any] }
        #expect(details.map { $0["state"] as? String } == ["Start", "End"], "\(insights)")
        #expect(Set(insights.compactMap { $0["sharedEventID"] as? String }).count == 1)
        #expect(insights.first?["eventType"] as? String == "AwsCloudTrailInsight")
        #expect(details.first?["insightType"] as? String == "ApiCallRateInsight")
        #expect(details.first?["eventName"] as? String == "ListBuckets")
        #expect(lines(dir.read("insights.json")).first?.contains("mallory") == true)
    }

    @Test("trailwatch patterns lists templates with counts, and --assign labels every line")
    func patternsCommand() async throws {
        let dir = TemporaryDirectory()
        let log = dir.write("a.log", (0..<30).map { "job \($0) finished in \($0 * 7) ms\n" }.joined() + "worker crashed\n")
        let (status, out, _) = try await runTool(trailwatchBinary(), ["patterns", log, "--format", "json"])
        #expect(status == 0)
        let body = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
        let patterns = try #require(body["patterns"] as? [[String: Any]])
        #expect(body["lines"] as? Int == 31)
        #expect(patterns.first?["count"] as? Int == 30)
        #expect(patterns.first?["template"] as? String == "job <*> finished in <*>")  // a number with its unit is one value
        let (_, assigned, _) = try await runTool(trailwatchBinary(), ["patterns", "--assign", log])
        let rows = lines(assigned)
        #expect(rows.count == 31)
        #expect(Set(rows.prefix(30).map { $0.split(separator: "\t").first! }).count == 1)
    }
}
