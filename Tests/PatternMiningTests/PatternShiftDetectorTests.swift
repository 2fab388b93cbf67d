import Foundation
import Testing
@testable import PatternMining

@Suite struct PatternShiftDetectorTests {
    let minute: Int64 = 60_000

    @Test func newPatternOnlyAfterLearningPeriod() {
        var d = PatternShiftDetector()
        #expect(d.observe(templateID: 1, template: "a <*>", timestampMs: 0).isEmpty)
        #expect(d.observe(templateID: 2, template: "b <*>", timestampMs: 30 * minute).isEmpty)
        let events = d.observe(templateID: 3, template: "c <*>", timestampMs: 61 * minute)
        #expect(events.map(\.kind) == [.newPattern])
        #expect(events.first?.templateID == TemplateMiner.idString(3))
        #expect(d.observe(templateID: 3, template: "c <*>", timestampMs: 62 * minute).isEmpty)
    }

    @Test func rateIncreaseReportedOnceAndDecreaseOnQuiet() {
        var d = PatternShiftDetector()
        var events: [PatternEvent] = []
        // 30 messages per 5-minute window for 2 hours.
        for w in 0..<24 { for i in 0..<30 { events += d.observe(templateID: 9, template: "t", timestampMs: Int64(w) * 5 * minute + Int64(i) * 1000) } }
        #expect(events.isEmpty)
        // Two windows of 400.
        for w in 24..<26 { for i in 0..<400 { events += d.observe(templateID: 9, template: "t", timestampMs: Int64(w) * 5 * minute + Int64(i) * 100) } }
        for i in 0..<30 { events += d.observe(templateID: 9, template: "t", timestampMs: 26 * 5 * minute + Int64(i) * 1000) }
        #expect(events.map(\.kind) == [.rateIncrease])
        #expect(events.first?.count == 400)
        #expect(events.first?.timestampMs == 24 * 5 * minute)
        // Baseline stayed near 30 despite the burst; silence is a decrease.
        events = d.advance(toMs: 40 * 5 * minute)
        #expect(events.map(\.kind) == [.rateDecrease])
        #expect((events.first?.baseline ?? 0) < 40)
    }

    @Test func stateSurvivesEncoding() throws {
        var a = PatternShiftDetector()
        for w in 0..<20 { for i in 0..<25 { _ = a.observe(templateID: 5, template: "x", timestampMs: Int64(w) * 5 * minute + Int64(i)) } }
        var b = try JSONDecoder().decode(PatternShiftDetector.self, from: JSONEncoder().encode(a))
        var ea: [PatternEvent] = [], eb: [PatternEvent] = []
        for i in 0..<300 {
            ea += a.observe(templateID: 5, template: "x", timestampMs: 20 * 5 * minute + Int64(i))
            eb += b.observe(templateID: 5, template: "x", timestampMs: 20 * 5 * minute + Int64(i))
        }
        ea += a.advance(toMs: 30 * 5 * minute)
        eb += b.advance(toMs: 30 * 5 * minute)
        #expect(ea == eb)
        #expect(!ea.isEmpty)
    }

    @Test func trackingIsBounded() {
        var d = PatternShiftDetector(configuration: .init(maxTracked: 32))
        for id in 0..<500 { _ = d.observe(templateID: UInt64(id), template: "t\(id)", timestampMs: Int64(id)) }
        #expect(d.trackedCount <= 32)
    }
}
