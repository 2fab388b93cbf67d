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
func trained(_ values: [Double], k: Double = 2, kind: AnomalyBandModel.Kind = .seasonal) -> AnomalyBandModel {
    var model = AnomalyBandModel(settings: .init(kind: kind))
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

    @Test("the seasonal kind follows a trend")
    func trend() throws {
        var noise = Noise()
        // 10 per day upwards over 6 days.
        let values = (0..<(6 * 288)).map { i in 100 + 10 * Double(i) / 288 + noise.next() }
        var model = trained(values, kind: .seasonal)
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

/// Judges then trains `model` on `values` from `start` (one per five minutes); the indices that fell outside their band.
func breaches(_ model: inout AnomalyBandModel, _ values: [Double], from start: Int = 0, k: Double = 3) -> [Int] {
    var outside: [Int] = []
    for (i, v) in values.enumerated() {
        let t = Int64(start + i) * fiveMinutes
        let band = model.band(at: t, width: k)
        if let band, v < band.lower || v > band.upper { outside.append(start + i) }
        model.train(at: t, value: v, band: band)
    }
    return outside
}

@Suite("Anomaly band model on series it was not built for")
struct AnomalyBandGeneralisationTests {
    @Test("a sustained level shift re-baselines: it alarms at the change, not for days", arguments: AnomalyBandModel.Kind.allCases)
    func levelShift(kind: AnomalyBandModel.Kind) {
        var noise = Noise()
        let before = (0..<(3 * 288)).map { _ in 50 + 2 * noise.next() }
        let after = (0..<(2 * 288)).map { _ in 80 + 2 * noise.next() }
        var model = AnomalyBandModel(settings: .init(kind: kind))
        _ = breaches(&model, before)
        let outside = breaches(&model, after, from: before.count)
        #expect(outside.first == before.count, "the shift itself is outside the band")
        // The run that proves the shift, and hardly anything after it.
        #expect(outside.count <= 12, "\(outside.count) breaches after the shift: \(outside.prefix(20))")

        var stubborn = AnomalyBandModel(settings: { var s = AnomalyBandModel.Settings(kind: kind); s.shiftDatapoints = 0; return s }())
        _ = breaches(&stubborn, before)
        #expect(breaches(&stubborn, after, from: before.count).count > 36, "without re-baselining the new level alarms for hours")
    }

    /// A working day in steps, like NAB's `art_daily_no_noise`: 20 at night, up to 80 by day, each hour flat.
    static func workingDay(_ i: Int) -> Double {
        switch (i % 288) / 12 {
        case 0..<9: 20
        case 9: 68
        case 10: 77.6
        case 11..<18: 80
        case 18: 32
        default: 22.4
        }
    }

    @Test("a daily rise that looked like a level shift before the season was learned does not spoil the season",
          arguments: [0.0, 1.0])
    func seasonAfterEarlyShifts(noise amplitude: Double) throws {
        // The first mornings are level shifts (no season yet after a day); the shift's side must then be measured
        // against the season, or the day's level is counted twice (expected 136 at noon) or the season is never kept.
        var noise = Noise()
        let values = (0..<(14 * 288)).map { Self.workingDay($0) + amplitude * noise.next() }
        var model = AnomalyBandModel(settings: .init(kind: .likelihood))
        let outside = breaches(&model, values)
        let late = outside.filter { $0 >= 4 * 288 }
        #expect(late.isEmpty, "\(late.count) breaches after the fourth day, first at \(late.prefix(8).map { ($0 / 288, ($0 % 288) / 12) })")
        let noonBand = model.band(at: Int64(14 * 288 + 12 * 12) * fiveMinutes, width: 3)
        let noon = try #require(noonBand)
        #expect(abs(noon.expected - 80) < 2, "expected \(noon.expected) at noon")
    }

    @Test("a real level shift in a seasonal metric keeps its size once re-baselined")
    func shiftInSeasonalMetric() throws {
        var noise = Noise()
        let before = (0..<(5 * 288)).map { daily(Int64($0) * fiveMinutes) + 2 * noise.next() }
        let after = (0..<(288 + 144)).map { daily(Int64(5 * 288 + $0) * fiveMinutes) + 40 + 2 * noise.next() }
        var model = AnomalyBandModel(settings: .init(kind: .likelihood))
        _ = breaches(&model, before)
        let outside = breaches(&model, after, from: before.count)
        #expect(outside.first == before.count, "the shift itself is outside the band")
        #expect(outside.count <= 12, "\(outside.count) breaches after the shift: \(outside.prefix(20))")
        let t = Int64(before.count + after.count) * fiveMinutes
        let nextBand = model.band(at: t, width: 3)
        let band = try #require(nextBand)
        #expect(abs(band.expected - (daily(t) + 40)) < 5, "expected \(band.expected), the shifted season \(daily(t) + 40)")
    }

    @Test("seasonality only where it is real: white noise gets a flat expected value")
    func noSpuriousSeason() throws {
        var noise = Noise()
        var model = trained((0..<(4 * 288)).map { _ in 100 + 10 * noise.next() })
        let t = Int64(4 * 288) * fiveMinutes
        var expected: [Double] = []
        for hour in 0..<24 {
            let bandBand = model.band(at: t + Int64(hour) * 3_600_000, width: 2)
            let band = try #require(bandBand)
            expected.append(band.expected)
        }
        #expect(expected.max()! - expected.min()! < 2, "expected values \(expected)")
    }

    @Test("noise proportional to the level: the band is narrow at night and wide at the peak")
    func proportionalNoise() throws {
        var noise = Noise()
        // Traffic between 10 and 190 a day, noise a tenth of the level.
        let level: (Int) -> Double = { i in 100 - 90 * cos(2 * .pi * Double(i % 288) / 288) }
        var model = trained((0..<(4 * 288)).map { i in level(i) * (1 + 0.1 * noise.next()) })
        let t = Int64(4 * 288) * fiveMinutes
        let nightBand = model.band(at: t, width: 3)
        let night = try #require(nightBand)
        let peakBand = model.band(at: t + oneDay / 2, width: 3)
        let peak = try #require(peakBand)
        #expect((peak.upper - peak.lower) > 4 * (night.upper - night.lower), "night \(night), peak \(peak)")
        #expect(night.upper < 40, "a doubling at night is outside the band: \(night)")
    }

    @Test("a quantised metric that sits still does not alarm on its last digit")
    func quantised() throws {
        // Mostly 4, now and then 5: the band never gets narrower than the metric's resolution.
        var values = [Double](repeating: 4, count: 3 * 288)
        for i in stride(from: 17, to: values.count, by: 97) { values[i] = 5 }
        var model = trained(values)
        let bandBand = model.band(at: Int64(values.count) * fiveMinutes, width: 2)
        let band = try #require(bandBand)
        #expect(band.upper >= 5 && band.lower <= 3, "\(band)")
    }

    @Test("a spike in a quiet series is outside the band")
    func spikeInQuietSeries() {
        var noise = Noise()
        var values = (0..<(2 * 288)).map { _ in 2 + noise.next() }
        values[500] = 30
        var model = AnomalyBandModel()
        #expect(breaches(&model, values) == [500])
    }

    @Test("likelihood: a lone value needs pointFactor × k spreads, a run of moderately unusual values breaches")
    func likelihood() throws {
        var noise = Noise()
        var model = AnomalyBandModel(settings: .init(kind: .likelihood))
        _ = breaches(&model, (0..<(3 * 288)).map { _ in 50 + 2 * noise.next() })
        var t = Int64(3 * 288) * fiveMinutes
        let loneBand = model.band(at: t, width: 3)
        let lone = try #require(loneBand)
        let reach = lone.upper - lone.expected
        // A run of values at 60% of the lone-value reach: each alone would pass.
        var breachedAt: Int?
        for i in 0..<model.settings.windowDatapoints {
            let bandBand = model.band(at: t, width: 3)
            let band = try #require(bandBand)
            let value = lone.expected + 0.6 * reach
            if value > band.upper, breachedAt == nil { breachedAt = i }
            model.train(at: t, value: value, band: band)
            t += fiveMinutes
        }
        let at = try #require(breachedAt, "the run never breached")
        #expect(at >= 1, "the first value of the run is inside the lone-value band")
    }

    @Test("heavy-tailed noise (bursts): the tail fit keeps ordinary bursts inside, an incident still breaches")
    func heavyTail() {
        // Noise of ±1 around 20, and one value in twenty a burst of exponentially distributed size (mean 3).
        var noise = Noise()
        var values = (0..<(7 * 288)).map { _ -> Double in
            let burst = noise.next() > 0.9 ? -3 * Foundation.log(max((noise.next() + 1) / 2, 1e-9)) : 0
            return 20 + noise.next() + burst
        }
        let incident = 6 * 288 + 100
        values[incident] = 60
        func outside(tailFit: Bool) -> [Int] {
            var settings = AnomalyBandModel.Settings(kind: .likelihood)
            settings.tailFit = tailFit
            // The tail fit alone: no drifts or recurring excursions on either side of the comparison.
            settings.driftDatapoints = 0
            settings.recurrenceWindow = 0
            var model = AnomalyBandModel(settings: settings)
            return breaches(&model, values).filter { $0 >= 4 * 288 }
        }
        let fitted = outside(tailFit: true), normal = outside(tailFit: false)
        #expect(fitted.contains(incident), "the incident is outside the band")
        #expect(fitted.count * 2 <= normal.count, "bursts outside the band: \(fitted) with the tail fit, \(normal) without")
    }

    @Test("the tail fit leaves a band on light-tailed noise as it is")
    func lightTail() throws {
        var noise = Noise()
        // The sum of three uniforms: close to normal, lighter tails than a normal.
        let values = (0..<(6 * 288)).map { _ in 50 + noise.next() + noise.next() + noise.next() }
        var with = trained(values, k: 3)
        var without = AnomalyBandModel(settings: { var s = AnomalyBandModel.Settings(); s.tailFit = false; return s }())
        for (i, v) in values.enumerated() {
            let t = Int64(i) * fiveMinutes
            without.train(at: t, value: v, band: without.band(at: t, width: 3))
        }
        let t = Int64(values.count) * fiveMinutes
        let aBand = with.band(at: t, width: 3), bBand = without.band(at: t, width: 3)
        let a = try #require(aBand), b = try #require(bBand)
        #expect(a.upper - a.lower <= 1.1 * (b.upper - b.lower), "with \(a), without \(b)")
    }

    @Test("likelihood: on a metric that sits still, a run of zero errors does not narrow the band below its resolution")
    func likelihoodOnStillMetric() {
        // 4 for six days but for two readings of 5 (the metric's resolution is 1): nearly every recent error is zero.
        var values = [Double](repeating: 4, count: 6 * 288)
        values[100] = 5
        values[1600] = 5
        func outside(narrowest: Double) -> [Int] {
            var settings = AnomalyBandModel.Settings(kind: .likelihood)
            settings.narrowest = narrowest
            var model = AnomalyBandModel(settings: settings)
            return breaches(&model, values).filter { $0 >= 288 }
        }
        #expect(outside(narrowest: 0.5).isEmpty, "\(outside(narrowest: 0.5))")
        #expect(!outside(narrowest: 0).isEmpty, "without a narrowest band the last digit alarms")
    }

    @Test("sparse, irregular data: gaps of hours neither crash the model nor invent a season")
    func irregular() throws {
        var noise = Noise()
        var model = AnomalyBandModel()
        var t: Int64 = 0
        var outside = 0
        for _ in 0..<400 {
            t += Int64(1 + abs(noise.next()) * 40) * 60_000   // 1 to 41 minutes apart
            let v = 20 + noise.next()
            let band = model.band(at: t, width: 3)
            if let band, v < band.lower || v > band.upper { outside += 1 }
            model.train(at: t, value: v, band: band)
        }
        #expect(outside <= 4)
        let bandBand = model.band(at: t + fiveMinutes, width: 3)
        let band = try #require(bandBand)
        #expect(abs(band.expected - 20) < 1)
    }

    @Test("settings decode from partial JSON (backtest --band-settings) and reject nonsense")
    func settingsJSON() throws {
        let s = try JSONDecoder().decode(AnomalyBandModel.Settings.self, from: Data(#"{"kind":"likelihood","shiftDatapoints":9}"#.utf8))
        var expected = AnomalyBandModel.Settings(kind: .likelihood)
        expected.shiftDatapoints = 9
        #expect(s == expected)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(AnomalyBandModel.Settings.self, from: Data(#"{"tailQuantile":1.5}"#.utf8))
        }
    }

    @Test("the alarm definition's trailwatch:band-model tag chooses the model; an unknown one is an error naming Tags")
    func tag() throws {
        func definition(_ tags: String) throws -> AlarmDefinition {
            let json = #"{"AlarmName":"a","Metrics":[{"Id":"band","Expression":"ANOMALY_DETECTION_BAND(m1, 3)"},{"Id":"m1","MetricStat":{"Metric":{"Namespace":"N","MetricName":"M"},"Period":300,"Stat":"Average"},"ReturnData":true}],"EvaluationPeriods":1,"ComparisonOperator":"LessThanLowerOrGreaterThanUpperThreshold","ThresholdMetricId":"band"\#(tags)}"#
            return try JSONDecoder().decode(AlarmDefinition.self, from: Data(json.utf8))
        }
        #expect(try MetricAlarm(definition: definition("")).bandSettings?.kind == AnomalyBandModel.Settings().kind)
        let tagged = try definition(#","Tags":[{"Key":"team","Value":"web"},{"Key":"trailwatch:band-model","Value":"likelihood"}]"#)
        #expect(try MetricAlarm(definition: tagged).bandSettings?.kind == .likelihood)
        let unknown = try definition(#","Tags":[{"Key":"trailwatch:band-model","Value":"prophet"}]"#)
        do {
            try unknown.validate()
            Issue.record("accepted an unknown model")
        } catch {
            #expect(error.description.contains("Tags") && error.description.contains("likelihood"), "\(error)")
        }
    }
}
