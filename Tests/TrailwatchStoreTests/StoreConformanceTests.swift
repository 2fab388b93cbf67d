import Foundation
import Testing
import TrailwatchCore
import TrailwatchStore
import TrailwatchTestSupport

@Suite("Store conformance (SQLite)")
struct SQLiteStoreConformanceTests {
    @Test("groups, streams, paged event reads, documents and merged datapoints")
    func resources() async throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("store.db"), writer: "host-a")
        try await StoreConformance.fill(store)
        try await StoreConformance.checkSecondWriter(try SQLiteStore(path: dir.file("store.db"), writer: "host-b"))
        try await StoreConformance.check(store)
    }
}

@Suite("SQLite metric tables")
struct SQLiteMetricTablesTests {
    /// Turns a new store back into schema version 3: one `metric_datapoints` table with the identity as text.
    static func makeVersion3Store(_ path: String, base: Int64) throws {
        _ = try SQLiteStore(path: path)
        let db = try SQLiteDatabase(path: path)
        try db.execute("""
            DROP VIEW metric_datapoints; DROP TABLE metric_values; DROP TABLE metric_hours; DROP TABLE metric_series;
            DELETE FROM schema_version WHERE version = 4;
            CREATE TABLE metric_datapoints(id INTEGER PRIMARY KEY, datapoint_key INTEGER NOT NULL UNIQUE,
                namespace TEXT NOT NULL, metric_name TEXT NOT NULL, dimensions TEXT NOT NULL, timestamp INTEGER NOT NULL,
                period INTEGER NOT NULL, unit TEXT, sample_count REAL, sum REAL, minimum REAL, maximum REAL);
            CREATE INDEX metric_datapoints_by_metric ON metric_datapoints(namespace, metric_name, timestamp);
            """)
        let metric = MetricIdentity(namespace: "Old", name: "Latency", dimensions: [Dimension(name: "Host", value: "h")])
        let insert = try db.prepare("""
            INSERT INTO metric_datapoints(datapoint_key, namespace, metric_name, dimensions, timestamp, period, unit, sample_count, sum, minimum, maximum)
            VALUES (?1, 'Old', 'Latency', '{"Host":"h"}', ?2, 60, 'Milliseconds', 1, ?3, ?3, ?3)
            """)
        for minute in 0..<90 {
            let datum = MetricDatum(metric: metric, unit: "Milliseconds", timestamp: base + Int64(minute) * 60_000, period: 60,
                                    sampleCount: 1, sum: Double(minute), minimum: Double(minute), maximum: Double(minute))
            insert.bind(1, StoreConventions.datapointKey(datum, dimensions: "{\"Host\":\"h\"}", writer: ""))
            insert.bind(2, datum.timestamp)
            insert.bind(3, datum.sum)
            try insert.run()
        }
    }

    @Test("a version 3 store is read as it is, then migrated: datapoints, keys, hours and the newest time carry over")
    func migration() async throws {
        let dir = TemporaryDirectory()
        let path = dir.file("store.db")
        let base: Int64 = 1_795_000_000_000 / 3_600_000 * 3_600_000
        try Self.makeVersion3Store(path, base: base)
        // Read-only opens leave the file as it is and read the old table.
        let reader = try SQLiteStore(path: path, readOnly: true)
        let before = try reader.datapoints(namespace: "Old", name: "Latency", start: base, end: base + 90 * 60_000, limit: 1000)
        #expect(before.count == 90)
        #expect(try reader.metrics(start: base, end: base + 90 * 60_000, limit: 10).count == 1)
        #expect(try reader.newestTimestamp() == base + 89 * 60_000)

        let store = try SQLiteStore(path: path)
        let after = try store.datapoints(namespace: "Old", name: "Latency", start: base, end: base + 90 * 60_000, limit: 1000)
        #expect(after == before)
        #expect(try store.count(.metricDatapoints) == 90)
        #expect(try store.newestTimestamp() == base + 89 * 60_000)
        let hourly = try store.hourlyDatapoints(namespace: "Old", name: "Latency", dimensions: nil, start: base, end: base + 2 * 3_600_000, limit: 10)
        #expect(hourly.map(\.sampleCount) == [60, 30] && hourly.map(\.sum) == [Double((0..<60).reduce(0, +)), Double((60..<90).reduce(0, +))], "\(hourly)")
        // A replay of a datapoint written before the migration is recognised.
        let metric = MetricIdentity(namespace: "Old", name: "Latency", dimensions: [Dimension(name: "Host", value: "h")])
        let replay = MetricDatum(metric: metric, unit: "Milliseconds", timestamp: base + 5 * 60_000, period: 60, sampleCount: 1, sum: 5, minimum: 5, maximum: 5)
        #expect(try store.write(.metrics([replay])) == 0)
        #expect(try store.hourlyDatapoints(namespace: "Old", name: "Latency", dimensions: nil, start: base, end: base + 3_600_000, limit: 10).map(\.sampleCount) == [60])
    }

    @Test("a rolled-back transaction's new series is not remembered")
    func rollbackForgetsSeries() throws {
        let dir = TemporaryDirectory()
        let store = try SQLiteStore(path: dir.file("store.db"))
        let metric = MetricIdentity(namespace: "N", name: "M")
        let datum = MetricDatum(metric: metric, timestamp: 1_795_000_000_000, period: 60, sampleCount: 1, sum: 1, minimum: 1, maximum: 1)
        try store.begin()
        try store.write([datum])
        store.rollback()
        #expect(try store.write(.metrics([datum])) == 1)
        #expect(try store.datapoints(namespace: "N", name: "M", start: 0, end: .max, limit: 10).count == 1)
    }
}
