import Testing
import Alarms

/// "0 - X - X" → [false, nil, true, nil, true]
func points(_ text: String) -> [Bool?] {
    text.split(separator: " ").map { $0 == "X" ? true : $0 == "0" ? false : nil }
}

struct MissingDataRow: CustomTestStringConvertible, Sendable {
    var points: String
    var m: Int
    var expected: [TreatMissingData: AlarmState?]   // nil: the state is retained
    var testDescription: String { "\(points) M=\(m)" }
}

/// CloudWatch's documented table (N = 3, evaluation range 5, newest on the right).
let documentedTable: [MissingDataRow] = [
    MissingDataRow(points: "0 - X - X", m: 3, expected: [.missing: .ok, .ignore: .ok, .breaching: .ok, .notBreaching: .ok]),
    MissingDataRow(points: "0 - - - -", m: 3, expected: [.missing: .ok, .ignore: .ok, .breaching: .ok, .notBreaching: .ok]),
    MissingDataRow(points: "- - - - -", m: 3, expected: [.missing: .insufficientData, .ignore: nil, .breaching: .alarm, .notBreaching: .ok]),
    MissingDataRow(points: "0 X X - X", m: 3, expected: [.missing: .alarm, .ignore: .alarm, .breaching: .alarm, .notBreaching: .alarm]),
    MissingDataRow(points: "- - X - -", m: 3, expected: [.missing: .alarm, .ignore: nil, .breaching: .alarm, .notBreaching: .ok]),
    MissingDataRow(points: "0 - X - X", m: 2, expected: [.missing: .alarm, .ignore: .alarm, .breaching: .alarm, .notBreaching: .alarm]),
    MissingDataRow(points: "0 0 X 0 X", m: 2, expected: [.missing: .alarm, .ignore: .alarm, .breaching: .alarm, .notBreaching: .alarm]),
    MissingDataRow(points: "0 - X - -", m: 2, expected: [.missing: .ok, .ignore: .ok, .breaching: .alarm, .notBreaching: .ok]),
]

@Suite("Alarm evaluation (CloudWatch semantics)")
struct AlarmEvaluationTests {
    @Test("the documented TreatMissingData table, from every starting state", arguments: documentedTable)
    func documented(_ row: MissingDataRow) {
        for (treat, expected) in row.expected {
            for current in AlarmState.allCases {
                let state = AlarmEvaluation.state(range: points(row.points), datapointsToAlarm: row.m, evaluationPeriods: 3,
                                                  treatMissingData: treat, current: current)
                #expect(state == (expected ?? current), "\(treat) from \(current)")
            }
        }
    }

    @Test("M out of N: breaching points need not be consecutive; only the N most recent real points count")
    func mOutOfN() {
        #expect(AlarmEvaluation.state(range: points("X 0 X 0 X"), datapointsToAlarm: 3, evaluationPeriods: 5, treatMissingData: .missing, current: .ok) == .alarm)
        #expect(AlarmEvaluation.state(range: points("X X X 0 0"), datapointsToAlarm: 2, evaluationPeriods: 2, treatMissingData: .missing, current: .alarm) == .ok)
        #expect(AlarmEvaluation.state(range: points("X X - 0 -"), datapointsToAlarm: 2, evaluationPeriods: 3, treatMissingData: .missing, current: .ok) == .alarm)
        #expect(AlarmEvaluation.state(range: points("- - - X -"), datapointsToAlarm: 3, evaluationPeriods: 3, treatMissingData: .missing, current: .ok) == .ok)
        #expect(AlarmEvaluation.state(range: points("- - - - X"), datapointsToAlarm: 1, evaluationPeriods: 1, treatMissingData: .missing, current: .ok) == .alarm)
    }

    @Test("every comparison operator, band edges do not breach")
    func operators() {
        let t = 10.0
        #expect(ComparisonOperator.greaterThanOrEqualToThreshold.breaches(10, threshold: t))
        #expect(!ComparisonOperator.greaterThanThreshold.breaches(10, threshold: t))
        #expect(ComparisonOperator.lessThanThreshold.breaches(9.9, threshold: t))
        #expect(ComparisonOperator.lessThanOrEqualToThreshold.breaches(10, threshold: t))
        #expect(ComparisonOperator.lessThanLowerOrGreaterThanUpperThreshold.breaches(4, lower: 5, upper: 8))
        #expect(ComparisonOperator.lessThanLowerOrGreaterThanUpperThreshold.breaches(9, lower: 5, upper: 8))
        #expect(!ComparisonOperator.lessThanLowerOrGreaterThanUpperThreshold.breaches(8, lower: 5, upper: 8))
        #expect(!ComparisonOperator.lessThanLowerThreshold.breaches(9, lower: 5, upper: 8))
        #expect(ComparisonOperator.greaterThanUpperThreshold.breaches(9, lower: 5, upper: 8))
        #expect(ComparisonOperator.allCases.filter(\.usesBand).count == 3)
    }
}
