import Testing
@testable import PatternMining

@Suite struct TemplateMinerTests {
    @Test func masksNumbersAndGroups() {
        var miner = TemplateMiner()
        let a = miner.add("Received block blk_123 of size 42 from /10.0.0.1")
        let b = miner.add("Received block blk_-987 of size 7 from /10.0.0.2")
        #expect(a.templateID == b.templateID)
        #expect(a.template == "Received block <*> of size <*> from <*>")
    }
}
