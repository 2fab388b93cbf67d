import TrailwatchPostgres
import TrailwatchRuntime

/// Every stage kind trailwatch ships. Adding a kind: write its file, add one line here.
public enum BuiltinStages {
    public static let registry: StageRegistry = {
        registerStoreBackends()
        var r = StageRegistry()
        // Sources
        r.register(StdinSource.self)
        r.register(FileSource.self)
        r.register(ArchiveSource.self)
        r.register(CloudTrailSource.self)
        r.register(CloudWatchLogsAPISource.self)
        r.register(CloudWatchAPISource.self)
        // Transforms
        r.register(FilterTransform.self)
        r.register(MetricFilterTransform.self)
        r.register(RouteTransform.self)
        r.register(ParseTransform.self)
        r.register(PatternsTransform.self)
        r.register(InsightsTransform.self)
        r.register(AlarmTransform.self)
        r.register(MaskTransform.self)
        r.register(RuleTransform.self)
        r.register(TrailSelectTransform.self)
        // Sinks
        r.register(ConsoleSink.self)
        r.register(FileSink.self)
        r.register(ArchiveSink.self)
        r.register(StoreSink.self)
        r.register(SQLiteSink.self)
        r.register(NotifierSink.self)
        r.register(CloudWatchLogsSink.self)
        return r
    }()

    /// Store backends beyond SQLite, for every place a store is named by URL.
    public static func registerStoreBackends() {
        PostgresStore.register()
    }
}
