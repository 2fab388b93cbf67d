import Foundation
import Testing
import Alarms

/// Deterministic noise in [-1, 1].
struct Noise {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    mutating func next() -> Double {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double(state >> 11) / Double(1 << 53) * 2 - 1
    }
}

let fiveMinutes: Int64 = 300_000
let oneDay: Int64 = 86_400_000

/// Trains a model on `values` (one per five minutes from 0) the way an alarm does: judged, then trained.
func trained(_ values: [Double], k: Double = 2) -> AnomalyBandModel {
    var model = AnomalyBandModel()
    for (i, v) in values.enumerated() {
        let t = Int64(i) * fiveMinutes
        let band = model.band(at: t, width: k)
        model.train(at: t, value: v, band: band)
    }
    return model
}

func daily(_ t: Int64) -> Double { 100 + 20 * sin(2 * .pi * Double(t % oneDay) / Double(oneDay)) }

@Suite("Anomaly band model")
struct AnomalyBandModelTests {
    @Test("learns daily seasonality: the expected value follows the time of day")
    func seasonality() throws {
        var noise = Noise()
        let days = 4
        let values = (0..<(days * 288)).map { daily(Int64($0) * fiveMinutes) + 2 * noise.next() }
        var model = trained(values)
        let peak = Int64(days) * oneDay + oneDay / 4        // sin = 1
        let trough = Int64(days) * oneDay + 3 * oneDay / 4  // sin = -1
        let highBand = model.band(at: peak, width: 2)
        let high = try #require(highBand)
        let lowBand = model.band(at: trough, width: 2)
        let low = try #require(lowBand)
        #expect(abs(high.expected - 120) < 4, "expected \(high.expected) near 120")
        #expect(abs(low.expected - 80) < 4, "expected \(low.expected) near 80")
        // Without seasonality the band would have to span 80…120 to hold both.
        #expect(high.upper - high.lower < 25)
        #expect(high.lower > 100 && low.upper < 100)
    }

    @Test("robust to past anomalies: an incident in the history does not widen the band")
    func robustness() throws {
        var noise = Noise()
        var values = (0..<(3 * 288)).map { _ in 50 + 3 * noise.next() }
        var clean = trained(values)
        for i in 400..<430 { values[i] = 1_000 }
        var incident = trained(values)
        let t = Int64(values.count) * fiveMinutes
        let aBand = clean.band(at: t, width: 2)
        let a = try #require(aBand)
        let bBand = incident.band(at: t, width: 2)
        let b = try #require(bBand)
        #expect(abs((b.upper - b.lower) - (a.upper - a.lower)) < 0.25 * (a.upper - a.lower))
        #expect(abs(b.expected - 50) < 2)
    }

    @Test("follows a trend")
    func trend() throws {
        var noise = Noise()
        // 10 per day upwards over 6 days.
        let values = (0..<(6 * 288)).map { i in 100 + 10 * Double(i) / 288 + noise.next() }
        var model = trained(values)
        let t = Int64(values.count) * fiveMinutes
        let bandBand = model.band(at: t, width: 2)
        let band = try #require(bandBand)
        #expect(abs(band.expected - 160) < 4, "expected \(band.expected) near 160")
    }

    @Test("no band before the minimum history; a model round-trips through its saved state")
    func warmUpAndState() throws {
        var model = AnomalyBandModel()
        for i in 0..<35 { model.train(at: Int64(i) * fiveMinutes, value: 10, band: nil) }
        #expect(model.band(at: 35 * fiveMinutes, width: 2) == nil)
        model.train(at: 35 * fiveMinutes, value: 10, band: nil)
        #expect(model.band(at: 36 * fiveMinutes, width: 2) != nil)
        var restored = try JSONDecoder().decode(AnomalyBandModel.self, from: JSONEncoder().encode(model))
        let original = model.band(at: 40 * fiveMinutes, width: 2)
        #expect(restored.band(at: 40 * fiveMinutes, width: 2) == original)
    }
}
