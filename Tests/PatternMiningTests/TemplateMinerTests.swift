import Foundation
import Testing
@testable import PatternMining

@Suite struct TemplateMinerTests {
    private func templateText(_ message: String) -> String {
        var miner = TemplateMiner()
        return miner.add(message).template
    }

    @Test func masksNumbersAndGroups() {
        var miner = TemplateMiner()
        let a = miner.add("Received block blk_123 of size 42 from /10.0.0.1")
        let b = miner.add("Received block blk_-987 of size 7 from /10.0.0.2")
        #expect(a.templateID == b.templateID)
        #expect(a.template == "Received block <*> of size <*> from <*>")
        #expect(a.isNew && !b.isNew)
    }

    @Test(arguments: [
        ("connect to 192.168.1.20:8080 failed", "connect to <*> failed"),
        ("id 550e8400-e29b-41d4-a716-446655440000 done", "id <*> done"),
        ("addr 0x7fff5fbff8a8 fault", "addr <*> fault"),
        ("hash deadbeefcafebabe seen", "hash <*> seen"),
        ("open /var/log/syslog ok", "open <*> ok"),
        ("fetch https://example.com/a?b=c ok", "fetch <*> ok"),
        ("connection at Sun Jul 10 03:55:21 2005 closed", "connection at <*> closed"),
        ("stored 16.0 KB in memory", "stored <*> in memory"),
        ("BSSID changed to b8:e8:56:3e:fc:ed", "BSSID changed to <*>"),
        ("user=42 name=alice", "user=<*> name=alice"),
        ("from host () at noon", "from host <*> at noon"),
        ("took 12ms (retry 3 of 5)", "took <*> (retry <*> of <*>"),  // `5)` is one variable
        ("time 2024-07-30T21:31:10Z and 10:20:30", "time <*> and <*>"),
    ])
    func builtInMasking(_ message: String, _ expected: String) {
        #expect(templateText(message) == expected)
    }

    @Test func parametersAreTheMaskedValues() {
        var miner = TemplateMiner()
        let message = "user=42 connected from 10.0.0.7:22 after 3 tries"
        let r = miner.add(message)
        #expect(r.template == "user=<*> connected from <*> after <*> tries")
        #expect(r.parameters(in: message) == ["42", "10.0.0.7:22", "3"])
    }

    @Test func similarMessagesGeneraliseAndDifferentOnesDoNot() {
        var miner = TemplateMiner()
        let a = miner.add("session opened for user alice by the login service")
        let b = miner.add("session opened for user bob by the login service")
        #expect(a.templateID == b.templateID)
        #expect(b.generalized)
        #expect(b.template == "session opened for user <*> by the login service")
        #expect(miner.template(id: a.templateID)?.count == 2)
        let c = miner.add("Instance destroyed successfully.")
        let d = miner.add("Instance spawned successfully.")
        #expect(c.templateID != d.templateID)
    }

    @Test func firstTokenVariableStillMatches() {
        var miner = TemplateMiner()
        let a = miner.add("com.example.alpha: scheduler told me to run this job but the start time is later")
        let b = miner.add("com.example.beta: scheduler told me to run this job but the start time is later")
        #expect(a.templateID == b.templateID)
    }

    @Test func idsAreStableAndDerivedFromTheFirstTemplateText() {
        var one = TemplateMiner()
        var two = TemplateMiner()
        let lines = ["disk 1 full", "disk 2 full", "fan spinning at 300 rpm", "user alice logged in twice today"]
        let ids1 = lines.map { one.add($0).templateID }
        let ids2 = lines.map { two.add($0).templateID }
        #expect(ids1 == ids2)
        #expect(ids1[0] == StableHash.hash("disk <*> full"))
        #expect(TemplateMiner.idString(ids1[0]).count == 16)
        #expect(TokenMasker.wildcardHash == StableHash.hash("<*>"))
    }

    @Test func stateSurvivesEncoding() throws {
        var miner = TemplateMiner()
        _ = miner.add("job 1 started by alice on node a")
        _ = miner.add("job 2 started by bob on node a")
        var copy = try JSONDecoder().decode(TemplateMiner.self, from: JSONEncoder().encode(miner))
        let fromCopy = copy.add("job 3 started by carol on node a")
        let fromOriginal = miner.add("job 3 started by carol on node a")
        #expect(fromCopy == fromOriginal)
        #expect(copy.allTemplates == miner.allTemplates)
    }

    @Test func templateCapEvictsLeastRecentlySeen() {
        var miner = TemplateMiner(configuration: .init(maxTemplates: 16))
        let keep = miner.add("heartbeat from the primary controller")
        for i in 0..<200 {
            let word = String(UnicodeScalar(UInt8(97 + i % 26))) + String(UnicodeScalar(UInt8(97 + i / 26)))
            _ = miner.add("event \(word) happened")
            if i % 4 == 0 { _ = miner.add("heartbeat from the primary controller") }
        }
        #expect(miner.templateCount <= 16)
        #expect(miner.evictions > 0)
        #expect(miner.template(id: keep.templateID) != nil)
        // A re-created template gets its old id back.
        let again = miner.add("event aa happened")
        #expect(again.templateID == StableHash.hash("event aa happened"))
    }

    @Test func longMessagesAreTruncated() {
        var miner = TemplateMiner(configuration: .init(maxTokens: 4))
        let r = miner.add("a b c d e f g")
        #expect(r.template == "a b c <*>")
        #expect(r.parameters(in: "a b c d e f g") == ["d e f g"])
    }

    @Test func emptyAndBlankMessages() {
        var miner = TemplateMiner()
        let a = miner.add("")
        let b = miner.add("   ")
        #expect(a.templateID == b.templateID)
        #expect(a.template == "")
    }
}
