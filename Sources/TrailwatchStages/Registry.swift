import TrailwatchRuntime

/// Every stage kind trailwatch ships. Adding a kind: write its file, add one line here.
public enum BuiltinStages {
    public static let registry: StageRegistry = {
        var r = StageRegistry()
        // Sources
        r.register(StdinSource.self)
        r.register(FileSource.self)
        r.register(ArchiveSource.self)
        r.register(CloudTrailSource.self)
        // Transforms
        r.register(FilterTransform.self)
        r.register(MetricFilterTransform.self)
        r.register(RouteTransform.self)
        r.register(ParseTransform.self)
        r.register(PatternsTransform.self)
        r.register(InsightsTransform.self)
        r.register(AlarmTransform.self)
        r.register(RuleTransform.self)
        r.register(TrailSelectTransform.self)
        // Sinks
        r.register(ConsoleSink.self)
        r.register(FileSink.self)
        r.register(ArchiveSink.self)
        r.register(StoreSink.self)
        r.register(SQLiteSink.self)
        r.register(NotifierSink.self)
        return r
    }()
}
