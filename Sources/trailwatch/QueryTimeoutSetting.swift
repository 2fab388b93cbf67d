import LogsQuery
import TrailwatchConfig

/// `--timeout` / `--query-timeout` values: a duration such as `30s`, `2m` or `500ms`; `0` means no limit.
enum QueryTimeoutSetting {
    /// nil when the text is no duration; `.some(nil)` for `0` (no limit).
    static func parse(_ text: String) -> Duration?? {
        guard let duration = ConfigDuration.parse(text) else { return nil }
        if duration.milliseconds == 0 { return .some(nil) }
        return .some(.milliseconds(duration.milliseconds))
    }
}
