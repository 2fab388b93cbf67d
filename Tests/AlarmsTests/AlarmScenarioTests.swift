import Foundation
import Testing
import Alarms
import TrailwatchCore

/// One alarm scenario: a definition, a series of periods and the exact state after each period.
///
/// Series: one token per period — a number, `a|b|c` for several samples in the period, `-` for
/// no data. States: `O` OK, `A` ALARM, `I` INSUFFICIENT_DATA.
struct AlarmScenario: CustomTestStringConvertible, Sendable {
    var name: String
    /// PutMetricAlarm keys that override the base definition (a JSON object's members).
    var overrides: String
    var series: String
    var expected: String
    /// Band scenarios: this many periods of ordinary traffic (10, 10.5, 9.5, 10, …) come first
    /// and only the states of `series` are checked.
    var training = 0

    var testDescription: String { name }
}

let thresholdScenarios: [AlarmScenario] = [
    // Every operator (N = 1).
    .init(name: "GreaterThanThreshold: equal is not breaching", overrides: #""ComparisonOperator":"GreaterThanThreshold""#, series: "1 5 6 5", expected: "O O A O"),
    .init(name: "GreaterThanOrEqualToThreshold: equal breaches", overrides: #""ComparisonOperator":"GreaterThanOrEqualToThreshold""#, series: "1 5 6 4", expected: "O A A O"),
    .init(name: "LessThanThreshold: equal is not breaching", overrides: #""ComparisonOperator":"LessThanThreshold""#, series: "6 5 4 5", expected: "O O A O"),
    .init(name: "LessThanOrEqualToThreshold: equal breaches", overrides: #""ComparisonOperator":"LessThanOrEqualToThreshold""#, series: "6 5 4 6", expected: "O A A O"),
    .init(name: "negative threshold", overrides: #""Threshold":-1"#, series: "-2 -1 0", expected: "O O A"),
    .init(name: "fractional threshold, LessThan", overrides: #""Threshold":0.5,"ComparisonOperator":"LessThanThreshold""#, series: "0.6 0.5 0.4", expected: "O O A"),
    .init(name: "straight from INSUFFICIENT_DATA to ALARM", overrides: "", series: "9", expected: "A"),
    .init(name: "GreaterThan, 1 of 2", overrides: #""EvaluationPeriods":2,"DatapointsToAlarm":1,"TreatMissingData":"notBreaching""#, series: "1 9 1 1", expected: "O A A O"),
    .init(name: "GreaterThanOrEqual, 1 of 2", overrides: #""ComparisonOperator":"GreaterThanOrEqualToThreshold","EvaluationPeriods":2,"DatapointsToAlarm":1,"TreatMissingData":"notBreaching""#, series: "5 1 1", expected: "A A O"),
    .init(name: "LessThan, 2 of 2", overrides: #""ComparisonOperator":"LessThanThreshold","EvaluationPeriods":2,"TreatMissingData":"notBreaching""#, series: "1 1 9 1", expected: "O A O O"),
    .init(name: "LessThanOrEqual, 2 of 2", overrides: #""ComparisonOperator":"LessThanOrEqualToThreshold","EvaluationPeriods":2,"TreatMissingData":"notBreaching""#, series: "5 5 6 5 5", expected: "O A O O A"),

    // M out of N (no missing data).
    .init(name: "3 of 3", overrides: #""EvaluationPeriods":3,"TreatMissingData":"notBreaching""#, series: "9 9 9 1 9 9 9", expected: "O O A O O O A"),
    .init(name: "2 of 3: breaches need not be consecutive", overrides: #""EvaluationPeriods":3,"DatapointsToAlarm":2,"TreatMissingData":"notBreaching""#, series: "9 1 9 1 1 9 9", expected: "O O A O O O A"),
    .init(name: "1 of 5 holds the alarm until the breach ages out", overrides: #""EvaluationPeriods":5,"DatapointsToAlarm":1,"TreatMissingData":"notBreaching""#, series: "1 9 1 1 1 1 1 1", expected: "O A A A A A O O"),
    .init(name: "2 of 2", overrides: #""EvaluationPeriods":2,"TreatMissingData":"notBreaching""#, series: "9 9 1 9 9", expected: "O A O O A"),
    .init(name: "3 of 4", overrides: #""EvaluationPeriods":4,"DatapointsToAlarm":3,"TreatMissingData":"notBreaching""#, series: "9 9 1 9 1 1 9 9 9", expected: "O O O A O O O O A"),

    // TreatMissingData, 3 of 3, one good point then silence.
    .init(name: "missing: silence past the range is INSUFFICIENT_DATA", overrides: #""EvaluationPeriods":3,"TreatMissingData":"missing""#, series: "1 - - - - - -", expected: "O O O O O I I"),
    .init(name: "ignore: silence keeps the state", overrides: #""EvaluationPeriods":3,"TreatMissingData":"ignore""#, series: "1 - - - - - -", expected: "O O O O O O O"),
    .init(name: "breaching: silence alarms", overrides: #""EvaluationPeriods":3,"TreatMissingData":"breaching""#, series: "1 - - - - - -", expected: "O O O O O A A"),
    .init(name: "notBreaching: silence is fine", overrides: #""EvaluationPeriods":3,"TreatMissingData":"notBreaching""#, series: "1 - - - - - -", expected: "O O O O O O O"),

    // TreatMissingData, 3 of 3, one breaching point then silence.
    .init(name: "missing: premature alarm once the lone breach is M periods old", overrides: #""EvaluationPeriods":3,"TreatMissingData":"missing""#, series: "9 - - - - - -", expected: "I I A A A I I"),
    .init(name: "ignore: a lone breach keeps INSUFFICIENT_DATA", overrides: #""EvaluationPeriods":3,"TreatMissingData":"ignore""#, series: "9 - - - - - -", expected: "I I I I I I I"),
    .init(name: "breaching: a lone breach plus gaps alarms at once", overrides: #""EvaluationPeriods":3,"TreatMissingData":"breaching""#, series: "9 - - - - - -", expected: "A A A A A A A"),
    .init(name: "notBreaching: a lone breach is not enough", overrides: #""EvaluationPeriods":3,"TreatMissingData":"notBreaching""#, series: "9 - - - - - -", expected: "O O O O O O O"),

    // TreatMissingData with M < N and short ranges.
    .init(name: "missing, 2 of 3: premature alarm after two periods", overrides: #""EvaluationPeriods":3,"DatapointsToAlarm":2,"TreatMissingData":"missing""#, series: "9 - 9", expected: "I A A"),
    .init(name: "ignore, 2 of 3", overrides: #""EvaluationPeriods":3,"DatapointsToAlarm":2,"TreatMissingData":"ignore""#, series: "9 - 9", expected: "I I A"),
    .init(name: "breaching, 2 of 3: gaps fill in as breaches", overrides: #""EvaluationPeriods":3,"DatapointsToAlarm":2,"TreatMissingData":"breaching""#, series: "1 - -", expected: "A A A"),
    .init(name: "notBreaching, 2 of 3", overrides: #""EvaluationPeriods":3,"DatapointsToAlarm":2,"TreatMissingData":"notBreaching""#, series: "9 - 9", expected: "O O A"),
    .init(name: "missing, 1 of 1: the newest real point decides across a gap", overrides: #""TreatMissingData":"missing""#, series: "9 - 1", expected: "A A O"),
    .init(name: "notBreaching, 1 of 1: an old breach counts while in range", overrides: #""TreatMissingData":"notBreaching""#, series: "9 - - - 1", expected: "A A A O O"),
    .init(name: "breaching, 2 of 2: alarms only once the good points leave the range", overrides: #""EvaluationPeriods":2,"TreatMissingData":"breaching""#, series: "1 - 1 - - - -", expected: "O O O O O O A"),
    .init(name: "ignore: recovery clears", overrides: #""TreatMissingData":"ignore""#, series: "9 1", expected: "A O"),
    .init(name: "missing: a gap inside the range with enough real points", overrides: #""EvaluationPeriods":2,"TreatMissingData":"missing""#, series: "9 9 - 1", expected: "I A A O"),

    // Statistics.
    .init(name: "Sum of two samples", overrides: "", series: "3|3 1|1", expected: "A O"),
    .init(name: "Average", overrides: #""Statistic":"Average""#, series: "3|9 1|1", expected: "A O"),
    .init(name: "Maximum", overrides: #""Statistic":"Maximum""#, series: "1|9 1|4", expected: "A O"),
    .init(name: "Minimum, LessThan", overrides: #""Statistic":"Minimum","Threshold":2,"ComparisonOperator":"LessThanThreshold""#, series: "1|9 3|4", expected: "A O"),
    .init(name: "SampleCount", overrides: #""Statistic":"SampleCount","Threshold":3,"ComparisonOperator":"GreaterThanOrEqualToThreshold""#, series: "1|1|1 1", expected: "A O"),
    .init(name: "p90 (ExtendedStatistic)", overrides: #""Statistic":null,"ExtendedStatistic":"p90","Threshold":8"#, series: "1|2|3|4|5|6|7|8|9|10 1|1", expected: "A O"),
]

let bandScenarios: [AlarmScenario] = [
    .init(name: "band, GreaterThanUpperThreshold: only rises breach", overrides: #""ComparisonOperator":"GreaterThanUpperThreshold""#, series: "10 20 10 5", expected: "O A O O", training: 48),
    .init(name: "band, LessThanLowerThreshold: only drops breach", overrides: #""ComparisonOperator":"LessThanLowerThreshold""#, series: "10 20 10 5", expected: "O O O A", training: 48),
    .init(name: "band, LessThanLowerOrGreaterThanUpperThreshold: both ways", overrides: "", series: "10 20 10 5 10", expected: "O A O A O", training: 48),
    .init(name: "band, 2 of 3 crossings", overrides: #""EvaluationPeriods":3,"DatapointsToAlarm":2"#, series: "20 10 20 10 10 10", expected: "O O A O O O", training: 48),
    .init(name: "band, values inside the band never alarm", overrides: "", series: "10 10.5 9.5 10.2 9.8", expected: "O O O O O", training: 48),
    .init(name: "band, silence after training is INSUFFICIENT_DATA", overrides: "", series: "- - - - -", expected: "O O I I I", training: 48),
    .init(name: "band, no band and no evaluation in the first 3 hours", overrides: "", series: "10 50 10", expected: "I I I", training: 20),
]

/// A definition from the base plus overrides (later keys win; `null` removes a key).
func scenarioDefinition(_ scenario: AlarmScenario) throws -> AlarmDefinition {
    let base: String
    if scenario.training > 0 {
        base = #"{"AlarmName":"band","Metrics":[{"Id":"m1","MetricStat":{"Metric":{"Namespace":"App","MetricName":"M"},"Period":300,"Stat":"Average"}},"#
            + #"{"Id":"ad1","Expression":"ANOMALY_DETECTION_BAND(m1, 3)"}],"ThresholdMetricId":"ad1","EvaluationPeriods":1,"#
            + #""ComparisonOperator":"LessThanLowerOrGreaterThanUpperThreshold","TreatMissingData":"missing"}"#
    } else {
        base = #"{"AlarmName":"scenario","Namespace":"App","MetricName":"M","Period":60,"Statistic":"Sum","Threshold":5,"#
            + #""ComparisonOperator":"GreaterThanThreshold","EvaluationPeriods":1}"#
    }
    var object = try JSONSerialization.jsonObject(with: Data(base.utf8)) as! [String: Any]
    if !scenario.overrides.isEmpty {
        let extra = try JSONSerialization.jsonObject(with: Data(("{" + scenario.overrides + "}").utf8)) as! [String: Any]
        for (key, value) in extra {
            if value is NSNull { object.removeValue(forKey: key) } else { object[key] = value }
        }
    }
    return try JSONDecoder().decode(AlarmDefinition.self, from: JSONSerialization.data(withJSONObject: object))
}

/// Runs a scenario period by period; returns the state after each period of `series`.
func runScenario(_ scenario: AlarmScenario) throws -> String {
    var alarm = try MetricAlarm(definition: scenarioDefinition(scenario))
    let periodMs = alarm.periodMs
    let training = (0..<scenario.training).map { ["10", "10.5", "9.5", "10"][$0 % 4] }
    let tokens = training + scenario.series.split(separator: " ").map(String.init)
    var states: [String] = []
    for (index, token) in tokens.enumerated() {
        let start = Int64(index) * periodMs
        if token != "-" {
            for sample in token.split(separator: "|").map({ Double($0)! }) {
                alarm.add(MetricDatum(metric: alarm.metric, timestamp: start, period: Int(periodMs / 1000), sampleCount: 1,
                                      sum: sample, minimum: sample, maximum: sample, values: [sample]))
            }
        }
        _ = alarm.advance(until: start + periodMs)
        if index >= training.count {
            states.append(alarm.state == .ok ? "O" : alarm.state == .alarm ? "A" : "I")
        }
    }
    return states.joined(separator: " ")
}

@Suite("Alarm scenarios: exact state sequences")
struct AlarmScenarioTests {
    @Test("static thresholds", arguments: thresholdScenarios)
    func threshold(_ scenario: AlarmScenario) throws {
        #expect(try runScenario(scenario) == scenario.expected)
    }

    @Test("anomaly bands", arguments: bandScenarios)
    func band(_ scenario: AlarmScenario) throws {
        #expect(try runScenario(scenario) == scenario.expected)
    }

    @Test("the table is large enough to mean something")
    func size() {
        #expect(thresholdScenarios.count + bandScenarios.count >= 40)
    }
}
