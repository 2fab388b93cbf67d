import Foundation
import Testing
import Alarms

/// The likelihood model with incident memory and recurring excursions as given (0: off).
func bandSettings(memory: Int64 = 0, recurrence: Int64 = 0) -> AnomalyBandModel.Settings {
    var s = AnomalyBandModel.Settings(kind: .likelihood)
    s.incidentMemory = memory
    s.recurrenceWindow = recurrence
    return s
}

@Suite("Anomaly band: incident memory and recurring excursions")
struct AnomalyBandIncidentTests {
    /// Three quiet days of noise around 50, then an incident: a spike of 80 every half hour for three hours.
    static func incident() -> (values: [Double], spikes: [Int]) {
        var noise = Noise()
        var values = (0..<(4 * 288)).map { _ in 50 + 2 * noise.next() }
        let spikes = Array(stride(from: 3 * 288, to: 3 * 288 + 36, by: 6))
        for (n, i) in spikes.enumerated() { values[i] = 80 + Double(n % 2) }
        return (values, spikes)
    }

    @Test("incident memory: the rest of one incident does not breach again and again")
    func repeatedBreaches() {
        let (values, spikes) = Self.incident()
        var remembering = AnomalyBandModel(settings: bandSettings(memory: 12 * 3_600_000))
        let outside = breaches(&remembering, values)
        #expect(outside.first == spikes[0], "the incident's first spike breaches: \(outside)")
        // The spikes of 81 reach a little further than the first of 80; none of the 80s breaches again.
        #expect(outside.filter { spikes.contains($0) }.count <= 2, "\(outside)")
        var forgetful = AnomalyBandModel(settings: bandSettings())
        #expect(breaches(&forgetful, values).filter { spikes.contains($0) }.count == spikes.count,
                "without incident memory every spike breaches")
    }

    @Test("incident memory: a larger excursion, the other side, or the same incident after the memory, breaches")
    func newIncidents() {
        var (values, spikes) = Self.incident()
        let larger = spikes.last! + 6, below = larger + 6
        let afterwards = larger + 13 * 12
        values[larger] = 120
        values[below] = 20
        values[afterwards] = 80
        var model = AnomalyBandModel(settings: bandSettings(memory: 12 * 3_600_000))
        let outside = breaches(&model, values)
        #expect(outside.contains(larger), "an excursion beyond the remembered one: \(outside)")
        #expect(outside.contains(below), "the band below is not widened by an incident above: \(outside)")
        #expect(outside.contains(afterwards), "after 12 hours the memory is gone: \(outside)")
    }

    /// Five days of noise around 10 with a job at about 03:00 every night (a few minutes late or early) that reads 40.
    static func nightlyJob(days: Int = 6) -> (values: [Double], jobs: [Int]) {
        var noise = Noise()
        var values = (0..<(days * 288)).map { _ in 10 + noise.next() }
        var jobs: [Int] = []
        for d in 0..<days {
            let i = d * 288 + 36 + Int(noise.next() * 4)   // 03:00 ± 20 minutes
            values[i] = 40 + 2 * noise.next()
            jobs.append(i)
        }
        return (values, jobs)
    }

    @Test("recurring excursions: a nightly job is not an incident once most of the last days had it")
    func nightlyJobIsNoIncident() {
        let (values, jobs) = Self.nightlyJob()
        var model = AnomalyBandModel(settings: bandSettings(recurrence: 3_600_000))
        let outside = breaches(&model, values)
        // The first days teach it; from the fifth night on (three nights of history after the first band) it is known.
        #expect(outside.filter { jobs.suffix(2).contains($0) }.isEmpty, "\(outside), jobs \(jobs)")
        var plain = AnomalyBandModel(settings: bandSettings())
        #expect(Set(jobs.suffix(2)).isSubset(of: breaches(&plain, values)), "without recurrence the job breaches every night")
    }

    @Test("recurring excursions: the same reading at another time of day, or a larger one, still breaches")
    func otherTimesStillBreach() {
        var (values, jobs) = Self.nightlyJob()
        let afternoon = jobs[5] + 144, larger = jobs[4]
        values[afternoon] = 40
        values[larger] = 90
        var model = AnomalyBandModel(settings: bandSettings(recurrence: 3_600_000))
        let outside = breaches(&model, values)
        #expect(outside.contains(afternoon), "\(outside)")
        #expect(outside.contains(larger), "a job reading far beyond any night before: \(outside)")
    }

    @Test("recurring excursions widen the band for a lone value only: a sustained change at that hour is still caught")
    func sustainedChangeAtTheJobsHour() {
        // A nightly dip to 3 (a job that pauses the metric); on the last night the metric sits at 7 for two hours
        // around it — within the nightly dip's reach, far outside the metric's usual ±1.
        var (values, jobs) = Self.nightlyJob()
        for i in jobs { values[i] = 3 }
        for i in (jobs[5] - 12)..<(jobs[5] + 12) where i != jobs[5] { values[i] = 7 }
        var model = AnomalyBandModel(settings: bandSettings(recurrence: 3_600_000))
        let outside = breaches(&model, values)
        #expect(outside.contains { (jobs[5] - 12)..<(jobs[5] + 12) ~= $0 }, "\(outside)")
        #expect(!outside.contains(jobs[4]), "the dip alone is known by the fifth night: \(outside)")
    }

    /// Three days of noise (±2) around 50, then twelve hours a little lower (49): each value well inside its band.
    static func drift() -> (values: [Double], start: Int) {
        var noise = Noise()
        let start = 3 * 288
        let values = (0..<(start + 144)).map { i in (i < start ? 50 : 49) + 2 * noise.next() }
        return (values, start)
    }

    @Test("drift: hours of values a little off their expected value breach, though no value alone or hour of them would")
    func drift() {
        let (values, start) = Self.drift()
        var model = AnomalyBandModel(settings: .init(kind: .likelihood))
        let outside = breaches(&model, values)
        #expect(outside.filter { $0 < start }.count <= 1, "the noise alone: \(outside)")
        #expect(outside.contains { $0 >= start }, "the drift is caught: \(outside)")
        var noDrift = AnomalyBandModel(settings: { var s = AnomalyBandModel.Settings(kind: .likelihood); s.driftDatapoints = 0; return s }())
        #expect(!breaches(&noDrift, values).contains { $0 >= start }, "without the drift check the run of 12 errors does not see it")
    }

    @Test("incident memory and recurring excursions survive a save and load; settings decode and reject nonsense")
    func stateAndSettings() throws {
        let (values, spikes) = Self.incident()
        var model = AnomalyBandModel(settings: bandSettings(memory: 12 * 3_600_000, recurrence: 3_600_000))
        _ = breaches(&model, Array(values[..<(spikes[0] + 1)]))
        var restored = try JSONDecoder().decode(AnomalyBandModel.self, from: JSONEncoder().encode(model))
        let t = Int64(spikes[0] + 6) * fiveMinutes
        let original = model.band(at: t, width: 3)
        #expect(restored.band(at: t, width: 3) == original)
        #expect(restored.band(at: t, width: 3).map { $0.upper > 79 } == true, "the memory came back")

        let s = try JSONDecoder().decode(AnomalyBandModel.Settings.self,
                                         from: Data(#"{"incidentMemory":43200000,"recurrenceWindow":3600000}"#.utf8))
        #expect(s == bandSettings(memory: 43_200_000, recurrence: 3_600_000))
        for bad in [#"{"incidentMemory":-1}"#, #"{"recurrenceWindow":86400000}"#, #"{"driftDatapoints":-1}"#] {
            #expect(throws: DecodingError.self) { try JSONDecoder().decode(AnomalyBandModel.Settings.self, from: Data(bad.utf8)) }
        }
    }
}
