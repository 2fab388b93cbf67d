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
        let a = miner.add("Received block 123 of size 42 from /10.0.0.1")
        let b = miner.add("Received block -987 of size 7 from /10.0.0.2")
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
        // host:port with a host name, e-mail addresses, Windows paths, units glued to numbers
        ("proxy www.example.com:443 open through proxy.example.net:5070 HTTPS", "proxy <*> open through <*> HTTPS"),
        ("mail from alice@example.com queued", "mail from <*> queued"),
        (#"loaded C:\Windows\System32\drivers\x.sys ok"#, "loaded <*> ok"),
        ("finished in 250ms, wrote 3.5GB and 100%", "finished in <*> wrote <*> and <*>"),
        ("lifetime 00:01:02 sent 0 bytes", "lifetime <*> sent <*>"),
        // a version after a product name, an empty key=value value, a host name next to an address
        ("client curl/8.5.0 connected", "client curl/<*> connected"),
        ("authentication failure; logname= uid=0", "authentication failure; logname=<*> uid=<*>"),
        ("connection from 10.0.0.7 (host-7.example.net) at Sun Jul 10 03:55:21 2005", "connection from <*> at <*>"),
        ("Address change detected. Old: node-41/10.190.173.170:9000 New: node-41:9000", "Address change detected. Old: <*> New: <*>"),
        // value-shaped words stay as written until their position proves variable
        ("Link up on eth0", "Link up on eth0"),
        // identifiers glued to words (a run of three digits, or four in all) and host names are variables at once
        ("Task attempt_1445144423722_0020_m_000001_0 killed", "Task <*> killed"),
        ("Deleting block blk_-1608999687919862906 file /data/current/subdir7", "Deleting block <*> file <*>"),
        ("Job job_2015_0001 submitted by user298", "Job <*> submitted by <*>"),
        ("Resolved MSRA-SA-41.fareast.corp.microsoft.com to /default-rack", "Resolved <*> to <*>"),
        ("Final resource view: name=cp-1.slowvm1.tcloud-pg0.utah.cloudlab.us phys_ram=64172MB",
         "Final resource view: name=<*> phys_ram=<*>"),
        ("[req-38101a0b-2096-447d-96ea-a692162415ae 113d3a99c3da401fbd62cc2caa5b96d2] GET",
         "<*> GET"),
        // names with a digit in them stay as written until their position proves variable
        ("Link up on en0 and L2 cache of IPv6 via Slf4jLogger", "Link up on en0 and L2 cache of IPv6 via Slf4jLogger"),
        (#"msg="disk is full" code=7"#, #"msg="disk is full" code=<*>"#),
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

    @Test func wordsBecomeVariablesOnlyWithEnoughDistinctValues() {
        var miner = TemplateMiner()
        // Two values may be two events (a state, an interface) …
        let a = miner.add("session opened for user alice by the login service")
        let b = miner.add("session opened for user bob by the login service")
        #expect(a.templateID != b.templateID)
        #expect(b.isNew && b.template == "session opened for user bob by the login service")
        // … a third distinct value that does not recur makes the position a variable, and the siblings merge into
        // the oldest.
        let c = miner.add("session opened for user carol by the login service")
        #expect(c.templateID == a.templateID)
        #expect(c.template == "session opened for user <*> by the login service")
        #expect(c.generalized && !c.isNew)
        #expect(c.parameters(in: "session opened for user carol by the login service") == ["carol"])
        #expect(miner.resolve(b.templateID) == a.templateID)
        #expect(miner.template(id: b.templateID)?.count == 3)
        #expect(miner.templateCount == 1)
        // New users join directly.
        #expect(miner.add("session opened for user erin by the login service").templateID == a.templateID)
        // Different words in several positions are different events.
        let e = miner.add("Instance destroyed successfully.")
        let f = miner.add("Instance spawned successfully.")
        #expect(e.templateID != f.templateID)
    }

    @Test func valuesThatRecurAreAnEnumerationNotAVariable() {
        var miner = TemplateMiner()
        var ids = Set<UInt64>()
        for _ in 0..<10 {
            ids.insert(miner.add("instance 42 pool blue (Lifecycle Event)").templateID)
            ids.insert(miner.add("instance 42 pool green (Lifecycle Event)").templateID)
        }
        // A third pool after twenty messages: three values among 21 is an enumeration, not a variable.
        ids.insert(miner.add("instance 42 pool red (Lifecycle Event)").templateID)
        #expect(ids.count == 3)
        #expect(miner.templateCount == 3)
        // Without the share test, three distinct values are enough.
        var eager = TemplateMiner(configuration: .init(distinctShareForVariable: 0))
        for _ in 0..<10 { _ = eager.add("instance 42 pool blue (Lifecycle Event)"); _ = eager.add("instance 42 pool green (Lifecycle Event)") }
        #expect(eager.add("instance 42 pool red (Lifecycle Event)").template == "instance <*> pool <*> (Lifecycle Event)")
    }

    @Test func identifiersJoinOneTemplateFromTheFirstMessage() {
        var miner = TemplateMiner()
        let a = miner.add("Received completed container container_1445144423722_0020_01_000005")
        let b = miner.add("Received completed container container_1445144423722_0020_01_000012")
        #expect(a.templateID == b.templateID && !b.isNew)
        #expect(b.parameters(in: "Received completed container container_1445144423722_0020_01_000012")
                == ["container_1445144423722_0020_01_000012"])
    }

    @Test func wordsThatNameEventsNeedMoreEvidence() {
        // Lifecycle states and HTTP methods are events, even when several of them have been seen early on …
        var miner = TemplateMiner()
        var ids = Set<UInt64>()
        for state in ["Paused", "Resumed", "Started", "Stopped", "Paused", "Started"] {
            ids.insert(miner.add("[instance: 42] VM \(state) (Lifecycle Event)").templateID)
        }
        for method in ["GET", "POST", "DELETE"] {
            ids.insert(miner.add("10.11.10.1 \"\(method) /v2/servers/detail HTTP/1.1\" status: 200 len: 1893").templateID)
        }
        #expect(Set(ids.map { miner.resolve($0) }).count == 7)
        // … while user names, which do not read as events, become a variable with the usual evidence.
        let users = ["cyrus", "news", "test"].map { miner.add("session closed for user \($0)").templateID }
        #expect(Set(users.map { miner.resolve($0) }).count == 1)
        for (word, expected) in [("\"GET", true), ("Started", true), ("Deleting", true), ("root", false), ("cyrus", false),
                                 ("fred", false), ("eth0", false), ("OK", true), ("x", false)] {
            var text = word
            #expect(text.withUTF8 { TemplateMiner.isEventWord(UnsafeRawBufferPointer($0)) } == expected, "\(word)")
        }
    }

    @Test func valueShapedWordsKeepTheirFrameWhenGeneralised() {
        var miner = TemplateMiner()
        let ids = ["alpha", "beta", "gamma"].map { miner.add("request by client=\($0) accepted").templateID }
        #expect(Set(ids.map { miner.resolve($0) }).count == 1)
        #expect(miner.add("request by client=omega accepted").template == "request by client=<*> accepted")
        // Interfaces: two values stay two events.
        let eth = miner.add("AirPort: Link Up on eth0")
        let wlan = miner.add("AirPort: Link Up on wlan0")
        #expect(eth.templateID != wlan.templateID)
    }

    @Test func firstTokenVariableStillMatches() {
        var miner = TemplateMiner()
        let ids = ["alpha", "beta", "gamma", "delta", "epsilon"].map {
            miner.add("com.example.\($0): scheduler told me to run this job but the start time is later").templateID
        }
        #expect(Set(ids.map { miner.resolve($0) }).count == 1)
        #expect(ids.last == ids.first)
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
        _ = miner.add("job 2 started by dora on node a")  // the third name merges the family
        var copy = try JSONDecoder().decode(TemplateMiner.self, from: JSONEncoder().encode(miner))
        let fromCopy = copy.add("job 3 started by carol on node a")
        let fromOriginal = miner.add("job 3 started by carol on node a")
        #expect(fromCopy == fromOriginal)
        #expect(fromCopy.template == "job <*> started by <*> on node a")
        #expect(copy.allTemplates == miner.allTemplates)
        #expect(copy.templateCount == 1)
    }

    @Test func templateCapEvictsLeastRecentlySeen() {
        var miner = TemplateMiner(configuration: .init(maxTemplates: 16))
        let keep = miner.add("heartbeat from the primary controller")
        for i in 0..<200 {
            let word = String(UnicodeScalar(UInt8(97 + i % 26))) + String(UnicodeScalar(UInt8(97 + i / 26)))
            _ = miner.add("event\(word) happened")
            if i % 4 == 0 { _ = miner.add("heartbeat from the primary controller") }
        }
        #expect(miner.templateCount <= 16)
        #expect(miner.evictions > 0)
        #expect(miner.template(id: keep.templateID) != nil)
        // A re-created template gets its old id back.
        let again = miner.add("eventaa happened")
        #expect(again.templateID == StableHash.hash("eventaa happened"))
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
