import Foundation
import Testing
import Alarms
import TrailwatchCore

func datum(minute: Int, sum: Double, count: Double = 1) -> MetricDatum {
    MetricDatum(metric: MetricIdentity(namespace: "App", name: "Errors"), timestamp: Int64(minute) * 60_000, period: 60,
                sampleCount: count, sum: sum, minimum: sum, maximum: sum, values: [sum])
}

func alarm(_ extra: String) throws -> MetricAlarm {
    let json = #"{"AlarmName":"errors","Namespace":"App","MetricName":"Errors","Period":60,"Statistic":"Sum","Threshold":5,"ComparisonOperator":"GreaterThanThreshold",\#(extra)}"#
    return try MetricAlarm(definition: JSONDecoder().decode(AlarmDefinition.self, from: Data(json.utf8)))
}

@Suite("Threshold alarms on event time")
struct ThresholdAlarmTests {
    @Test("2 of 3 breaching minutes raise the alarm; it clears when the breaches age out")
    func mOfN() throws {
        var a = try alarm(#""EvaluationPeriods":3,"DatapointsToAlarm":2,"TreatMissingData":"notBreaching""#)
        for (minute, sum) in [(0, 1.0), (1, 6), (2, 1), (3, 7), (4, 0), (5, 0), (6, 0)] { a.add(datum(minute: minute, sum: sum)) }
        let changes = a.evaluate(until: 7 * 60_000)
        #expect(changes.map(\.newState) == [.ok, .alarm, .ok])
        #expect(changes.map(\.timestamp) == [60_000, 4 * 60_000, 5 * 60_000])
        #expect(changes[1].datapoints.compactMap(\.value).suffix(3) == [6, 1, 7])
    }

    @Test("missing data: INSUFFICIENT_DATA with nothing, breaching makes gaps count against")
    func missingData() throws {
        var quiet = try alarm(#""EvaluationPeriods":2,"TreatMissingData":"missing""#)
        quiet.add(datum(minute: 0, sum: 1))
        #expect(quiet.evaluate(until: 60_000).map(\.newState) == [.ok])
        #expect(quiet.evaluate(until: 10 * 60_000).map(\.newState) == [.insufficientData])

        var strict = try alarm(#""EvaluationPeriods":2,"TreatMissingData":"breaching""#)
        strict.add(datum(minute: 0, sum: 1))
        // The lone real point keeps counting while it is in the N + 2 range; then gaps breach.
        #expect(strict.evaluate(until: 6 * 60_000).map(\.newState) == [.ok, .alarm])
    }

    @Test("percentile statistics read the raw values")
    func percentile() throws {
        let json = #"{"AlarmName":"p90","Namespace":"App","MetricName":"Latency","Period":60,"ExtendedStatistic":"p90","Threshold":100,"ComparisonOperator":"GreaterThanOrEqualToThreshold","EvaluationPeriods":1}"#
        var a = try MetricAlarm(definition: JSONDecoder().decode(AlarmDefinition.self, from: Data(json.utf8)))
        let values = (1...10).map { Double($0 * 12) }   // 12 … 120; p90 = 108
        a.add(MetricDatum(metric: MetricIdentity(namespace: "App", name: "Latency"), timestamp: 0, period: 60,
                          sampleCount: 10, sum: values.reduce(0, +), minimum: 12, maximum: 120, values: values))
        #expect(a.evaluate(until: 60_000).map(\.newState) == [.alarm])
    }
}
