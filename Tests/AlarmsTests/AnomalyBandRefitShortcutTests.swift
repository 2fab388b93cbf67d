import Foundation
import Testing
@testable import Alarms

/// What the hourly refit keeps between refits or computes the short way — the seasonal profile's slot medians from
/// sorted slot windows, the resolution from a merged sorted window, the proportional-noise test from partitioned
/// buffers — must give the very Doubles the straightforward computation gives: the backtest's output may not change
/// by a bit.
@Suite("Anomaly band refit shortcuts")
struct AnomalyBandRefitShortcutTests {
    /// Value generators meant to break an order-statistics shortcut: continuous noise, a few distinct values (long
    /// runs of ties), a constant, huge magnitudes, values around zero, and magnitudes so mixed that subtracting the
    /// level rounds distinct values together.
    static let shapes: [(String, @Sendable (inout Noise) -> Double)] = [
        ("noise", { 100 + 10 * $0.next() }),
        // `+ 0` makes −0.0 +0.0 (negative zeros have a test of their own).
        ("quantised", { ($0.next() * 3).rounded() + 0 }),
        ("constant", { _ in 7 }),
        ("huge", { 1e16 + ($0.next() * 4).rounded() }),
        ("around zero", { ($0.next() * 2).rounded() * 1e-300 + 0 }),
        ("mixed magnitudes", { $0.next() > 0 ? 1e17 * $0.next() : 0.1 * $0.next() }),
    ]

    @Test("slot window medians equal the selection over the residuals, as the window slides, jumps and is rebuilt")
    func windowMatchesSelection() {
        for (name, shape) in Self.shapes {
            var noise = Noise(state: UInt64(name.utf8.count) &* 0x9E37_79B9)
            for slots in [24, 168] {
                var window = AnomalyBandModel.SlotWindow(slots: slots)
                var values: [Double] = []
                var slotOf: [UInt8] = []
                var dropped = 0
                var start = 0
                for step in 0..<120 {
                    // An hour or so arrives (in the same few slots), and the window's front moves on by about as much;
                    // now and then a jump, a compaction of the history's front, or a changed value (a level shift).
                    let arriving = step % 17 == 0 ? 400 : 6 + Int(abs(noise.next()) * 12)
                    for _ in 0..<arriving {
                        values.append(shape(&noise))
                        slotOf.append(UInt8((values.count / 12 + dropped / 12) % slots))
                    }
                    start = min(max(start, values.count - 900 + Int(noise.next() * 20)), values.count - 1)
                    if step % 23 == 0 && start > 0 {
                        let drop = Int(abs(noise.next()) * Double(start))
                        values.removeFirst(drop)
                        slotOf.removeFirst(drop)
                        dropped += drop
                        start -= drop
                    }
                    if step % 29 == 5 {
                        values[values.count - 3] = shape(&noise)
                        window.invalidate()
                    }
                    window.update(values: values, slotOf: slotOf, from: start, dropped: dropped)
                    #expect(window.negativeZeros == 0)
                    let level = Stats.median(Array(values[start...]))
                    let residuals = values[start...].map { $0 - level }
                    let expected = AnomalyBandModel.slotMedians(slotOf[start...], residuals[...], slots: slots)
                    #expect(window.medians(minus: level).map(\.bitPattern) == expected.map(\.bitPattern), "\(name), \(slots) slots, step \(step)")
                    // The trial profile leaves out the newest datapoints (the newest day).
                    let testStart = start + (values.count - start) * 3 / 4
                    let trial = AnomalyBandModel.slotMedians(slotOf[start..<testStart], residuals[..<(testStart - start)], slots: slots)
                    let windowTrial = window.medians(minus: level, excluding: values[testStart...], slotOf: slotOf[testStart...])
                    #expect(windowTrial.map(\.bitPattern) == trial.map(\.bitPattern), "\(name), \(slots) slots, step \(step)")
                }
            }
        }
    }

    @Test("negative zeros are counted in and out, so the model knows when order statistics are not unique")
    func negativeZeros() {
        var window = AnomalyBandModel.SlotWindow(slots: 24)
        let values: [Double] = [0, -0.0, 1, -0.0, 0, 2]
        let slotOf = [UInt8](repeating: 3, count: values.count)
        window.update(values: values, slotOf: slotOf, from: 0, dropped: 0)
        #expect(window.negativeZeros == 2)
        // The front moves past the first −0.0 (removed as itself, not as the +0 it ties with).
        window.update(values: values, slotOf: slotOf, from: 2, dropped: 0)
        #expect(window.negativeZeros == 1)
        #expect(window.sorted[3].filter { $0 == 0 && $0.sign == .plus }.count == 1)
    }

    /// Trains two models on the same series, one reading slot medians off its slot windows and one selecting them
    /// afresh at every refit, and requires the same bands to the bit.
    func expectSameBands(_ series: [(Int64, Double)], settings: AnomalyBandModel.Settings, _ comment: String) {
        var windowed = AnomalyBandModel(settings: settings)
        var selected = AnomalyBandModel(settings: settings)
        selected.slotWindows.enabled = false
        var banded = 0
        for (t, v) in series {
            let a = windowed.band(at: t, width: 3)
            let b = selected.band(at: t, width: 3)
            guard a.map({ [$0.expected, $0.lower, $0.upper].map(\.bitPattern) }) == b.map({ [$0.expected, $0.lower, $0.upper].map(\.bitPattern) }) else {
                Issue.record("\(comment): bands differ at \(t): \(String(describing: a)) against \(String(describing: b))")
                return
            }
            if a != nil { banded += 1 }
            windowed.train(at: t, value: v, band: a)
            selected.train(at: t, value: v, band: b)
        }
        #expect(banded > series.count / 2, "\(comment): too few bands to compare")
    }

    @Test("the model's bands are the same with and without slot windows: seasons, ties, level shifts, gaps, zeros")
    func modelMatchesSelection() {
        var noise = Noise()
        // Four days of history, refitted hourly, five-minute datapoints: daily profiles, the window sliding by an hour.
        var settings = AnomalyBandModel.Settings(kind: .likelihood)
        settings.history = 4 * oneDay
        let step = fiveMinutes
        func series(days: Int, _ value: (Int, Int64) -> Double?) -> [(Int64, Double)] {
            (0..<(days * 288)).compactMap { i in
                let t = Int64(i) * step
                return value(i, t).map { (t, $0) }
            }
        }
        expectSameBands(series(days: 9) { _, t in daily(t) + 3 * noise.next() }, settings: settings, "daily season")
        expectSameBands(series(days: 9) { _, t in (daily(t) / 10 + noise.next()).rounded() }, settings: settings, "quantised")
        // Level shifts: a new normal every two days (re-baselined, so the windows are rebuilt and skipped meanwhile).
        expectSameBands(series(days: 10) { i, t in daily(t) + Double(i / 576 % 2) * 200 + noise.next() }, settings: settings, "level shifts")
        // Gaps: hours and a whole day missing, and irregular spacing.
        expectSameBands(series(days: 9) { i, t in
            let hour = i / 12
            return hour % 7 == 3 || (i / 288 == 5) || i % 5 == 2 ? nil : daily(t) + noise.next()
        }, settings: settings, "gaps")
        // Zeros of both signs and a count that is mostly zero.
        expectSameBands(series(days: 8) { i, _ in i % 97 == 0 ? -0.0 : i % 13 == 0 ? 3 : 0 }, settings: settings, "zeros")
        expectSameBands(series(days: 8) { i, _ in i % 11 == 0 ? 2 : 0 }, settings: settings, "mostly zero")
        // The seasonal kind with its trend (never a constant offset: always the straightforward path) and spikes.
        var seasonal = AnomalyBandModel.Settings(kind: .seasonal)
        seasonal.history = 4 * oneDay
        expectSameBands(series(days: 8) { i, t in daily(t) + Double(i) / 50 + (i % 500 == 0 ? 300 : 0) }, settings: seasonal, "trend")
        // A weekly profile: more than two weeks of history, hourly datapoints and daily refits.
        var weekly = AnomalyBandModel.Settings(kind: .likelihood)
        weekly.history = 17 * oneDay
        weekly.refitInterval = oneDay / 4
        let hourly = (0..<(30 * 24)).map { i -> (Int64, Double) in
            let t = Int64(i) * 3_600_000
            return (t, daily(t) + (i / 24 % 7 >= 5 ? 40 : 0) + noise.next())
        }
        expectSameBands(hourly, settings: weekly, "weekly season")
    }

    @Test("the sorted window's merge keeps the resolution of the sorted raw values as the window slides and jumps")
    func sortedWindowResolution() {
        for (name, shape) in Self.shapes {
            var noise = Noise(state: UInt64(name.utf8.count) &* 0x5851_F42D)
            var window = AnomalyBandModel.SortedWindow()
            var raw: [Double] = []
            var dropped = 0
            var start = 0
            for step in 0..<150 {
                let arriving = step % 19 == 0 ? 300 : 6 + Int(abs(noise.next()) * 12)
                for _ in 0..<arriving { raw.append(shape(&noise)) }
                start = min(max(start, raw.count - 700 + Int(noise.next() * 20)), raw.count - 1)
                if step % 23 == 0 && start > 0 {
                    let drop = Int(abs(noise.next()) * Double(start))
                    raw.removeFirst(drop)
                    dropped += drop
                    start -= drop
                }
                let resolution = window.resolution(of: raw, from: start, dropped: dropped)
                let sorted = raw[start...].sorted()
                #expect(resolution.bitPattern == AnomalyBandModel.resolution(sorted: sorted).bitPattern, "\(name), step \(step)")
                #expect(window.sorted == sorted, "\(name), step \(step)")
            }
        }
    }

    /// The proportional-noise test as it was written first: four arrays and a median of each.
    static func straightforwardProportionalOffset(expected: [Double], deviations: [Double], floor: Double) -> Double? {
        guard expected.count >= 48 else { return nil }
        let middle = Stats.median(expected)
        var lowLevels: [Double] = [], highLevels: [Double] = []
        var lowNoise: [Double] = [], highNoise: [Double] = []
        for i in expected.indices {
            if expected[i] <= middle {
                lowLevels.append(expected[i]); lowNoise.append(abs(deviations[i]))
            } else {
                highLevels.append(expected[i]); highNoise.append(abs(deviations[i]))
            }
        }
        guard lowLevels.count >= 12, highLevels.count >= 12 else { return nil }
        let offset = max(0.1 * abs(middle), floor)
        let levelRatio = (Stats.median(highLevels) + offset) / (Stats.median(lowLevels) + offset)
        let noiseRatio = (Stats.median(highNoise) + floor) / (Stats.median(lowNoise) + floor)
        guard levelRatio >= 1.5, noiseRatio > 1 else { return nil }
        return abs(log(noiseRatio / levelRatio)) < abs(log(noiseRatio)) ? offset : nil
    }

    @Test("the proportional-noise test from partitioned buffers decides as the straightforward one, to the bit")
    func proportionalOffset() {
        var noise = Noise()
        var decided = 0
        for trial in 0..<400 {
            let count = 40 + trial % 7 * 300
            // Levels: a few distinct ones (ties around the median), zeros of both signs, or a wide spread; noise
            // growing with the level or not.
            let expected = (0..<count).map { i -> Double in
                switch trial % 4 {
                case 0: return (noise.next() * 3).rounded() * 10 + 30
                case 1: return i % 3 == 0 ? -0.0 : i % 3 == 1 ? 0 : 50 + noise.next()
                case 2: return abs(noise.next()) * 1000
                default: return i % 2 == 0 ? 10 : 100
                }
            }
            let proportional = trial % 3 != 0
            let deviations = expected.map { (proportional ? $0 * 0.1 : 5) * noise.next() }
            let floor = trial % 5 == 0 ? 1e-9 : 0.5
            let fast = AnomalyBandModel.proportionalOffset(expected: expected, deviations: deviations, floor: floor)
            let slow = Self.straightforwardProportionalOffset(expected: expected, deviations: deviations, floor: floor)
            #expect(fast?.bitPattern == slow?.bitPattern, "trial \(trial)")
            if slow != nil { decided += 1 }
        }
        // Both outcomes occur, so the comparison means something.
        #expect(decided > 20 && decided < 380)
    }
}
