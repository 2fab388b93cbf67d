import Foundation
import Testing
import TrailwatchCore
import TrailwatchPostgres
import TrailwatchStore
import TrailwatchTestSupport

/// `trailwatch backtest DEFINITIONS --store PATH|URL`: the alarm over the datapoints a store
/// holds for its metric, merged from every instance that wrote them.
@Suite("backtest over a store", .serialized)
struct BacktestStoreTests {
    static let definition = #"{"AlarmName":"Hot","Namespace":"S","MetricName":"V","Statistic":"Average","Period":60,"Threshold":10,"ComparisonOperator":"GreaterThanThreshold","EvaluationPeriods":1}"#

    /// Minute 0: 1; minute 1: 10 from one instance and 30 from another (average 20); minute 2: 3.
    static func fill(_ open: (String) async throws -> any Store) async throws {
        let metric = MetricIdentity(namespace: "S", name: "V", dimensions: [])
        let base = try #require(Array("2026-11-01T00:00:00Z".utf8).withUnsafeBytes { Timestamps.parseISO8601($0) })
        func datum(_ minute: Int64, _ value: Double) -> MetricDatum {
            MetricDatum(metric: metric, timestamp: base + minute * 60_000, period: 60, sampleCount: 1, sum: value, minimum: value, maximum: value)
        }
        let a = try await open("host-a"), b = try await open("host-b")
        try await a.write(.metrics([datum(0, 1), datum(1, 10), datum(2, 3)]))
        try await b.write(.metrics([datum(1, 30)]))
        await a.close()
        await b.close()
    }

    func check(_ store: String, _ dir: TemporaryDirectory) async throws {
        let definitions = dir.write("alarm.json", Self.definition)
        let (status, csv, errors) = try await runTool(trailwatchBinary(), ["backtest", definitions, "--store", store, "--format", "csv"])
        #expect(status == 0, "\(errors)")
        #expect(lines(csv) == ["time,alarm,from,to,value", "2026-11-01T00:01:00.000Z,Hot,INSUFFICIENT_DATA,OK,1.0",
                               "2026-11-01T00:02:00.000Z,Hot,OK,ALARM,20.0", "2026-11-01T00:03:00.000Z,Hot,ALARM,OK,3.0"])
        let ranged = try await runTool(trailwatchBinary(), ["backtest", definitions, "--store", store, "--start", "2026-11-01T00:01:00Z",
                                                      "--end", "2026-11-01T00:02:00Z", "--format", "csv"])
        #expect(lines(ranged.1) == ["time,alarm,from,to,value", "2026-11-01T00:02:00.000Z,Hot,INSUFFICIENT_DATA,ALARM,20.0"], "\(ranged.2)")
    }

    @Test("SQLite file: datapoints of two instances merge before the alarm judges them")
    func sqlite() async throws {
        let dir = TemporaryDirectory()
        let path = dir.file("store.db")
        try await Self.fill { writer in try SQLiteStore(path: path, writer: writer) }
        try await check(path, dir)
        let missing = try await runTool(trailwatchBinary(), ["backtest", dir.write("a.json", Self.definition), "--store", dir.file("none.db")])
        #expect(missing.0 != 0 && missing.2.contains("no store at"), "\(missing.2)")
    }

    @Test("postgres:// URL: the same")
    func postgres() async throws {
        guard let (_, url) = try await PostgresStoreTests.database("backtest") else { return }
        try await Self.fill { writer in try await PostgresStore.connect(url: url, access: .readWrite, writer: writer) }
        try await check(url, TemporaryDirectory())
    }
}
