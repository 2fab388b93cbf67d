import TrailwatchCore

/// Metric datapoints in the SQLite store (schema version 4).
///
/// - `metric_series` interns each metric identity (namespace, name, dimensions, unit) once.
/// - `metric_values` holds one row per datapoint, clustered by series and time (WITHOUT ROWID,
///   primary key (series, timestamp, datapoint_key)): a batch lands at the end of each series it
///   touches, so a commit writes a few pages however large the store is, and a series' time range
///   is one range scan. The key (see ``StoreConventions/datapointKey(_:dimensions:writer:)``)
///   makes writes idempotent, as before.
/// - `metric_hours` keeps each series' statistic set per hour, updated in the same transaction
///   with what the transaction added: a week of 1-minute data read at an hour's period (or a
///   day's) is 168 rows per series instead of 10,080.
///
/// Version 3 stores kept one row per datapoint with its identity as text and two indexes (one of
/// them on a random key, which dirtied a page per datapoint); ``migrate(_:)`` moves them over.
final class SQLiteMetricTables {
    static let schema = """
        CREATE TABLE IF NOT EXISTS metric_series(id INTEGER PRIMARY KEY, namespace TEXT NOT NULL, metric_name TEXT NOT NULL,
            dimensions TEXT NOT NULL, unit TEXT NOT NULL DEFAULT '', last_timestamp INTEGER,
            UNIQUE(namespace, metric_name, dimensions, unit));
        CREATE TABLE IF NOT EXISTS metric_values(series INTEGER NOT NULL, timestamp INTEGER NOT NULL, datapoint_key INTEGER NOT NULL,
            period INTEGER NOT NULL, sample_count REAL NOT NULL, sum REAL NOT NULL, minimum REAL NOT NULL, maximum REAL NOT NULL,
            PRIMARY KEY(series, timestamp, datapoint_key)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS metric_hours(series INTEGER NOT NULL, hour INTEGER NOT NULL, sample_count REAL NOT NULL,
            sum REAL NOT NULL, minimum REAL NOT NULL, maximum REAL NOT NULL, PRIMARY KEY(series, hour)) WITHOUT ROWID;
        CREATE VIEW IF NOT EXISTS metric_datapoints AS
            SELECT v.datapoint_key, s.namespace, s.metric_name, s.dimensions, v.timestamp, v.period, nullif(s.unit, '') AS unit,
                v.sample_count, v.sum, v.minimum, v.maximum
            FROM metric_values v JOIN metric_series s ON s.id = v.series;
        """

    static let hour: Int64 = 3_600_000

    /// Version 3 → 4, inside the migration's transaction: the datapoints move into the new tables
    /// (keys unchanged, so a replay of an old datapoint is still recognised), hours are summed.
    static func migrate(_ db: SQLiteDatabase) throws(StoreError) {
        let exists = try db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'metric_datapoints'")
        let hasOldTable = try exists.step() && exists.int(0) > 0
        exists.reset()
        var sql = ""
        if hasOldTable { sql += "ALTER TABLE metric_datapoints RENAME TO metric_datapoints_v3;\n" }
        sql += schema
        if hasOldTable {
            sql += """
                INSERT OR IGNORE INTO metric_series(namespace, metric_name, dimensions, unit)
                  SELECT DISTINCT namespace, metric_name, dimensions, coalesce(unit, '') FROM metric_datapoints_v3;
                INSERT OR IGNORE INTO metric_values(series, timestamp, datapoint_key, period, sample_count, sum, minimum, maximum)
                  SELECT s.id, d.timestamp, d.datapoint_key, d.period, coalesce(d.sample_count, 0), coalesce(d.sum, 0),
                    coalesce(d.minimum, 0), coalesce(d.maximum, 0)
                  FROM metric_datapoints_v3 d JOIN metric_series s ON s.namespace = d.namespace AND s.metric_name = d.metric_name
                    AND s.dimensions = d.dimensions AND s.unit = coalesce(d.unit, '');
                INSERT INTO metric_hours(series, hour, sample_count, sum, minimum, maximum)
                  SELECT series, (timestamp - ((timestamp % 3600000) + 3600000) % 3600000) AS h, sum(sample_count), sum(sum), min(minimum), max(maximum)
                  FROM metric_values GROUP BY series, h;
                UPDATE metric_series SET last_timestamp = (SELECT max(timestamp) FROM metric_values v WHERE v.series = metric_series.id);
                DROP TABLE metric_datapoints_v3;

                """
        }
        sql += "INSERT INTO schema_version(version) VALUES (4);"
        do { try db.execute(sql) } catch { throw StoreError("cannot migrate the store's metric datapoints to schema version 4: \(error)", sqliteResultCode: error.sqliteResultCode) }
    }

    /// A series as a writer knows it: its row and the datapoint key's hash of its identity text.
    struct Series {
        var id: Int64
        var identityHash: StoreKey
    }

    struct SeriesName: Hashable {
        var metric: MetricIdentity
        var unit: String?
    }

    private let db: SQLiteDatabase
    private let writer: String
    private let insertValue: Statement
    private let findSeries: Statement
    private let insertSeries: Statement
    private let addHour: Statement
    private let markLast: Statement
    /// Series already in the file (cleared on rollback, when a new series' row may have gone).
    private var known: [SeriesName: Series] = [:]
    /// Bounds the cache, whatever the number of metrics written.
    static let maximumKnownSeries = 100_000

    init(_ db: SQLiteDatabase, writer: String) throws(StoreError) {
        self.db = db
        self.writer = writer
        insertValue = try db.prepare("""
            INSERT OR IGNORE INTO metric_values(series, timestamp, datapoint_key, period, sample_count, sum, minimum, maximum)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
            """)
        findSeries = try db.prepare("SELECT id FROM metric_series WHERE namespace = ?1 AND metric_name = ?2 AND dimensions = ?3 AND unit = ?4")
        insertSeries = try db.prepare("INSERT INTO metric_series(namespace, metric_name, dimensions, unit) VALUES (?1, ?2, ?3, ?4)")
        addHour = try db.prepare("""
            INSERT INTO metric_hours(series, hour, sample_count, sum, minimum, maximum) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            ON CONFLICT(series, hour) DO UPDATE SET sample_count = sample_count + excluded.sample_count, sum = sum + excluded.sum,
              minimum = min(minimum, excluded.minimum), maximum = max(maximum, excluded.maximum)
            """)
        markLast = try db.prepare("UPDATE metric_series SET last_timestamp = max(coalesce(last_timestamp, ?2), ?2) WHERE id = ?1")
    }

    /// The transaction was rolled back: series created in it are gone.
    func rolledBack() { known.removeAll() }

    private func series(_ name: SeriesName) throws(StoreError) -> Series {
        if let found = known[name] { return found }
        let dimensions = StoreConventions.dimensionsText(name.metric.dimensions)
        let unit = name.unit ?? ""
        findSeries.bind(1, name.metric.namespace)
        findSeries.bind(2, name.metric.name)
        findSeries.bind(3, dimensions)
        findSeries.bind(4, unit)
        let id: Int64
        if try findSeries.step() {
            id = findSeries.int(0)
            findSeries.reset()
        } else {
            findSeries.reset()
            insertSeries.bind(1, name.metric.namespace)
            insertSeries.bind(2, name.metric.name)
            insertSeries.bind(3, dimensions)
            insertSeries.bind(4, unit)
            try insertSeries.run()
            id = db.lastInsertRowID
        }
        let found = Series(id: id, identityHash: StoreConventions.datapointIdentityHash(name.metric, dimensions: dimensions, unit: name.unit, writer: writer))
        if known.count >= Self.maximumKnownSeries { known.removeAll(keepingCapacity: true) }
        known[name] = found
        return found
    }

    /// A series' statistic set of one hour, as this transaction adds to it.
    struct HourKey: Hashable {
        var series: Int64
        var hour: Int64
    }

    /// Writes datapoints inside the caller's transaction. Returns rows added (replays add none).
    func write(_ data: [MetricDatum]) throws(StoreError) -> Int {
        var added = 0
        var hours: [HourKey: StatisticSet] = [:]
        var last: [Int64: Int64] = [:]
        // Runs of one metric (a PutMetricData item list, a metric filter's period) look it up once.
        var current: (name: SeriesName, series: Series)?
        var open: (key: HourKey, set: StatisticSet)?
        for d in data {
            let series: Series
            if let current, current.name.metric == d.metric, current.name.unit == d.unit {
                series = current.series
            } else {
                let name = SeriesName(metric: d.metric, unit: d.unit)
                series = try self.series(name)
                current = (name, series)
            }
            var key = series.identityHash
            key.add(d.timestamp)
            key.add(Int64(d.period))
            key.add(Int64(d.sampleCount))
            key.add(Int64(bitPattern: d.sum.bitPattern))
            insertValue.bind(1, series.id)
            insertValue.bind(2, d.timestamp)
            insertValue.bind(3, key.value)
            insertValue.bind(4, Int64(d.period))
            insertValue.bind(5, d.sampleCount)
            insertValue.bind(6, d.sum)
            insertValue.bind(7, d.minimum)
            insertValue.bind(8, d.maximum)
            try insertValue.run()
            guard db.changes > 0 else { continue }
            added += 1
            let hourKey = HourKey(series: series.id, hour: Self.hourStart(d.timestamp))
            let set = StatisticSet(count: d.sampleCount, sum: d.sum, minimum: d.minimum, maximum: d.maximum)
            if let run = open, run.key == hourKey {
                open!.set.merge(set)
            } else {
                if let run = open { hours[run.key, default: run.set.emptied].merge(run.set) }
                open = (hourKey, set)
            }
            if last[series.id].map({ $0 < d.timestamp }) ?? true { last[series.id] = d.timestamp }
        }
        if let run = open { hours[run.key, default: run.set.emptied].merge(run.set) }
        for (key, set) in hours {
            addHour.bind(1, key.series)
            addHour.bind(2, key.hour)
            addHour.bind(3, set.count)
            addHour.bind(4, set.sum)
            addHour.bind(5, set.minimum)
            addHour.bind(6, set.maximum)
            try addHour.run()
        }
        for (series, time) in last {
            markLast.bind(1, series)
            markLast.bind(2, time)
            try markLast.run()
        }
        return added
    }

    static func hourStart(_ millis: Int64) -> Int64 { millis - ((millis % hour) + hour) % hour }
}

/// Count, sum, minimum and maximum of samples.
struct StatisticSet {
    var count: Double
    var sum: Double
    var minimum: Double
    var maximum: Double

    /// Nothing yet: merging a set into it gives that set.
    var emptied: StatisticSet { StatisticSet(count: 0, sum: 0, minimum: .infinity, maximum: -.infinity) }

    mutating func merge(_ other: StatisticSet) {
        count += other.count
        sum += other.sum
        minimum = min(minimum, other.minimum)
        maximum = max(maximum, other.maximum)
    }
}
