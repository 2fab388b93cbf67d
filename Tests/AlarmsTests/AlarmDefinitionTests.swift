import Foundation
import Testing
import Alarms

@Suite("Alarm definitions (PutMetricAlarm JSON)")
struct AlarmDefinitionTests {
    static let referenceFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/reference/high-inference-latency.json")

    @Test("the HighInferenceLatency reference definition loads as it is", .enabled(if: FileManager.default.fileExists(atPath: referenceFile.path), "../shared/reference is absent"))
    func reference() throws {
        let definition = try JSONDecoder().decode(AlarmDefinition.self, from: Data(contentsOf: Self.referenceFile))
        try definition.validate()
        #expect(definition.alarmName == "HighInferenceLatency")
        #expect(definition.comparisonOperator == .greaterThanUpperThreshold)
        #expect(definition.metrics?.first { $0.id == "m1" }?.metricStat?.metric.metricName == "InferenceLatency")
        #expect(AlarmDefinition.band("ANOMALY_DETECTION_BAND(m1, 2)")?.metricID == "m1")
        #expect(AlarmDefinition.band("ANOMALY_DETECTION_BAND(m1, 2)")?.width == 2)
        #expect(AlarmDefinition.band("ANOMALY_DETECTION_BAND(m1)")?.width == 2)
        #expect(AlarmDefinition.band("ANOMALY_DETECTION_BAND(m1, -1)") == nil)
    }

    @Test("unsupported metric math and inconsistent settings are errors naming what is wrong", arguments: [
        (#"{"AlarmName":"a","Metrics":[{"Id":"e1","Expression":"FILL(m1, 0)"},{"Id":"m1","MetricStat":{"Metric":{"Namespace":"N","MetricName":"M"},"Period":60,"Stat":"Sum"}}],"EvaluationPeriods":1,"ComparisonOperator":"GreaterThanThreshold","Threshold":1}"#, "FILL(m1, 0)"),
        (#"{"AlarmName":"a","Namespace":"N","MetricName":"M","Period":45,"Statistic":"Sum","Threshold":1,"EvaluationPeriods":1,"ComparisonOperator":"GreaterThanThreshold"}"#, "Period"),
        (#"{"AlarmName":"a","Namespace":"N","MetricName":"M","Period":60,"Statistic":"Sum","Threshold":1,"EvaluationPeriods":2,"DatapointsToAlarm":3,"ComparisonOperator":"GreaterThanThreshold"}"#, "DatapointsToAlarm"),
        (#"{"AlarmName":"a","Namespace":"N","MetricName":"M","Period":60,"Statistic":"Sum","Threshold":1,"EvaluationPeriods":1,"ComparisonOperator":"GreaterThanUpperThreshold"}"#, "ANOMALY_DETECTION_BAND"),
        (#"{"AlarmName":"a","Namespace":"N","MetricName":"M","Period":60,"Statistic":"Sum","Threshold":1,"EvaluationPeriods":1441,"ComparisonOperator":"GreaterThanThreshold"}"#, "more than the 86400 s"),
        (#"{"AlarmName":"a","Namespace":"N","MetricName":"M","Period":3600,"Statistic":"Sum","Threshold":1,"EvaluationPeriods":169,"ComparisonOperator":"GreaterThanThreshold"}"#, "more than the 604800 s"),
    ])
    func invalid(json: String, says: String) throws {
        let definition = try JSONDecoder().decode(AlarmDefinition.self, from: Data(json.utf8))
        do {
            try definition.validate()
            Issue.record("accepted")
        } catch {
            #expect(error.description.contains(says), "\(error)")
        }
    }

    @Test("a plain threshold alarm validates")
    func plain() throws {
        let json = #"{"AlarmName":"errors","Namespace":"App","MetricName":"Errors","Period":60,"Statistic":"Sum","Threshold":5,"EvaluationPeriods":3,"DatapointsToAlarm":2,"ComparisonOperator":"GreaterThanOrEqualToThreshold","TreatMissingData":"notBreaching"}"#
        let definition = try JSONDecoder().decode(AlarmDefinition.self, from: Data(json.utf8))
        try definition.validate()
        #expect(definition.treatMissingData == .notBreaching)
    }
}
