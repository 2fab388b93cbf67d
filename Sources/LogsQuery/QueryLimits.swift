/// Bounds every query runs within, whatever its entry point (`trailwatch query`, the dashboard, the API).
public struct QueryLimits: Sendable, Equatable {
    /// The default `query_timeout`: 30 seconds.
    public static let defaultTimeout: Duration = .seconds(30)
    /// Longest query text accepted, in characters (as AWS's StartQuery).
    public static let maximumQueryLength = 10_000
    /// Deepest nesting of parentheses and operators the parser follows.
    public static let maximumNesting = 256

    /// How long a query may run before it stops with ``QueryRunError/timedOut(after:)``.
    public var timeout: Duration

    public init(timeout: Duration = QueryLimits.defaultTimeout) {
        self.timeout = timeout
    }

    /// The instant a query started now must be done by.
    public func deadline(from start: ContinuousClock.Instant = .now) -> QueryDeadline {
        QueryDeadline(instant: start.advanced(by: timeout), timeout: timeout)
    }
}

/// The instant a query must be done by, with the timeout it came from (for the message).
public struct QueryDeadline: Sendable, Equatable {
    public var instant: ContinuousClock.Instant
    public var timeout: Duration

    public init(instant: ContinuousClock.Instant, timeout: Duration) {
        self.instant = instant
        self.timeout = timeout
    }

    /// A deadline `timeout` from now.
    public static func after(_ timeout: Duration) -> QueryDeadline {
        QueryDeadline(instant: .now.advanced(by: timeout), timeout: timeout)
    }

    /// Throws when the deadline has passed or the current Swift task was cancelled.
    public func check() throws(QueryRunError) {
        if Task.isCancelled { throw .cancelled }
        if ContinuousClock.now >= instant { throw .timedOut(after: timeout) }
    }
}

/// Why a query stopped without a result, after it parsed.
public enum QueryRunError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The query ran longer than `query_timeout`.
    case timedOut(after: Duration)
    /// The Swift task running the query was cancelled (e.g. the HTTP client went away).
    case cancelled
    /// The query cannot run as asked (e.g. `diff` without a time range), located in the query text.
    case invalid(QueryParseError)

    public var description: String {
        switch self {
        case .timedOut(let d):
            "query stopped: it ran longer than query_timeout (\(QueryRunError.format(d))); narrow the time range or the log groups, or raise query_timeout"
        case .cancelled: "query cancelled"
        case .invalid(let e): "\(e)"
        }
    }

    static func format(_ d: Duration) -> String {
        let (seconds, attos) = d.components
        if attos == 0 { return "\(seconds) s" }
        let ms = Double(seconds) * 1000 + Double(attos) / 1e15
        return ms < 1000 ? "\(Int(ms)) ms" : "\(ms / 1000) s"
    }
}
