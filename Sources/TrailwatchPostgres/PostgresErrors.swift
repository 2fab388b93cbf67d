import PostgresNIO
import TrailwatchStore

extension StoreError {
    /// A driver error as a store error naming the store (never its password), marked transient
    /// when the server is unreachable, restarting or shutting down, so writers retry.
    static func postgres(_ error: any Error, store: String, doing action: String) -> StoreError {
        if let known = error as? StoreError { return known }
        guard let psql = error as? PSQLError else {
            return StoreError("\(store): \(action): \(error)", transient: error is CancellationError ? false : true)
        }
        var text: String
        var transient: Bool
        switch psql.code {
        case .server:
            let state = psql.serverInfo?[.sqlState] ?? ""
            text = psql.serverInfo?[.message] ?? "server error"
            if !state.isEmpty { text += " (SQLSTATE \(state))" }
            // Connection exceptions, shutdown/restart, too many connections, serialization and deadlock.
            transient = state.hasPrefix("08") || ["57P01", "57P02", "57P03", "53300", "40001", "40P01"].contains(state)
        case .connectionError, .serverClosedConnection, .uncleanShutdown, .clientClosedConnection:
            text = "the server is unreachable or closed the connection"
            if let underlying = psql.underlying { text += " (\(underlying))" }
            transient = true
        case .authMechanismRequiresPassword:
            text = "the server asks for a password (give it in the URL from the environment, or in PGPASSWORD)"
            transient = false
        case .sslUnsupported:
            text = "the server does not offer TLS (sslmode=require)"
            transient = false
        default:
            text = psql.code.description
            if let underlying = psql.underlying { text += " (\(underlying))" }
            transient = false
        }
        return StoreError("\(store): \(action): \(text)", transient: transient)
    }
}
