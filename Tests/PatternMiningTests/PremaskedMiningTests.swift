import Testing
@testable import PatternMining

/// Masking a batch on several cores ahead of mining must give exactly what mining one message at a time gives.
@Suite struct PremaskedMiningTests {
    /// Messages of many shapes, with variables that generalise along the way (families, merges, new templates late).
    static func messages(_ count: Int) -> [String] {
        var rng = SplitMix(seed: 19)
        let shapes: [(inout SplitMix) -> String] = [
            { "10.0.\($0.next(256)).\($0.next(256)) - user\($0.next(300)) [24/Nov/2026:10:00:\($0.next(60)) +0000] \"GET /api?id=\($0.next(99999)) HTTP/1.1\" 200 \($0.next(50000))" },
            { #"{"level":"INFO","service":"svc-\#($0.next(4))","latency_ms":\#($0.next(900)).5,"request_id":"\#(String($0.next(1 << 40), radix: 16))"}"# },
            { "Received block blk_-\($0.next(1 << 30)) of size \($0.next(1 << 20)) from /10.0.0.\($0.next(255))" },
            { "state 'Active' for job_2015_\($0.next(9999)) on node-\($0.next(40)).example.net:\($0.next(65535))" },
            { "Link up on eth\($0.next(3))" },
            { "session opened for user u\($0.next(50)) by (uid=\($0.next(1000)))" },
            { #"msg="disk \#($0.next(3)) is full" took \#($0.next(500))ms"# },
            { "rare event \($0.next(1_000_000)) at \($0.next(24)):\($0.next(60)):\($0.next(60))" },
            // Messages of 1 to 40 tokens: many templates, so the cap evicts.
            { String(repeating: "tick ", count: 1 + $0.next(40)) + "done" },
        ]
        return (0..<count).map { _ in
            let k = rng.next(100) < 3 ? 7 : rng.next(shapes.count)
            return shapes[k](&rng)
        }
    }

    /// Calls `body(size, message)` for consecutive batches of `bytes` of the given sizes, each batch one contiguous
    /// block as a pipeline batch has.
    static func forEachBatch(_ bytes: [[UInt8]], sizes: [Int],
                             _ body: (Int, (Int) -> UnsafeRawBufferPointer) -> Void) {
        var start = 0
        for size in sizes {
            var block: [UInt8] = []
            var ends: [Int] = []
            for message in bytes[start..<(start + size)] {
                block += message
                ends.append(block.count)
            }
            start += size
            block.withUnsafeBytes { raw in
                body(size) { i in UnsafeRawBufferPointer(rebasing: raw[(i == 0 ? 0 : ends[i - 1])..<ends[i]]) }
            }
        }
    }

    @Test(arguments: [1, 3, 8])
    func sameAsOneAtATime(parts: Int) {
        let texts = Self.messages(3000)
        let bytes = texts.map { Array($0.utf8) }
        var single = TemplateMiner(configuration: .init(maxTemplates: 40))
        var batched = TemplateMiner(configuration: .init(maxTemplates: 40))
        var premasked = PremaskedMessages()
        var ranges: [Range<Int>] = []
        // Batches of different sizes, so parts are reused with other counts.
        Self.forEachBatch(bytes, sizes: [700, 1300, 5, 995]) { size, message in
            batched.premask(&premasked, count: size, parts: parts) { message($0) }
            #expect(premasked.count == size)
            for i in 0..<size {
                let expected = single.add(message(i))
                ranges.removeAll()
                let got = batched.add(message(i), premasked: premasked, at: i, parameterRanges: &ranges)
                #expect(got.templateID == expected.templateID)
                #expect(got.template == expected.template)
                #expect(got.isNew == expected.isNew && got.generalized == expected.generalized)
                #expect(ranges == expected.parameterRanges)
            }
        }
        #expect(single.allTemplates == batched.allTemplates)
        #expect(single.evictions > 0 && single.evictions == batched.evictions)
        #expect(single.merges > 0 && single.merges == batched.merges)
    }

    /// Grouping that overlaps the masking (`mine`) takes the messages in order, whatever worker groups a part.
    @Test(arguments: [1, 3, 8, 64])
    func overlappedMiningSameAsOneAtATime(parts: Int) {
        let texts = Self.messages(6000)
        let bytes = texts.map { Array($0.utf8) }
        var single = TemplateMiner(configuration: .init(maxTemplates: 40))
        var batched = TemplateMiner(configuration: .init(maxTemplates: 40))
        var premasked = PremaskedMessages()
        var ranges: [Range<Int>] = []
        Self.forEachBatch(bytes, sizes: [3000, 255, 1, 2744]) { size, message in
            var got: [(Int, TemplateMiner.Assignment, [Range<Int>])] = []
            batched.mine(&premasked, count: size, parts: parts, message: { message($0) },
                         parameterRanges: &ranges) { i, assignment, ranges in
                got.append((i, assignment, ranges))
                ranges.removeAll()
            }
            #expect(got.map(\.0) == Array(0..<size))
            for (i, assignment, ranges) in got {
                let expected = single.add(message(i))
                #expect(assignment.templateID == expected.templateID)
                #expect(assignment.template == expected.template)
                #expect(assignment.isNew == expected.isNew && assignment.generalized == expected.generalized)
                #expect(ranges == expected.parameterRanges)
            }
        }
        #expect(single.allTemplates == batched.allTemplates)
        #expect(single.evictions > 0 && single.evictions == batched.evictions)
        #expect(single.merges > 0 && single.merges == batched.merges)
    }

    @Test func textVersionMarksChangedTemplates() {
        var miner = TemplateMiner()
        _ = miner.add("job job_1 done")
        let before = miner.textVersion
        _ = miner.add("job job_1 done")
        #expect(miner.textVersion == before)
        for k in 2...8 { _ = miner.add("job job_\(k) done") }
        #expect(miner.textVersion != before)
        #expect(miner.add("job job_9 done").template.contains("<*>"))
    }

    @Test func aCapOfOneKeepsAnswering() {
        var miner = TemplateMiner(configuration: .init(maxTemplates: 1))
        for k in 0..<20 {
            let mined = miner.add("event kind\(k % 4) number \(k)")
            #expect(mined.template.hasPrefix("event "))
            #expect(miner.templateCount <= 1)
        }
    }
}

/// A small deterministic generator (the test data must not change from run to run).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next(_ bound: Int) -> Int {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(max(bound, 1)))
    }
}
