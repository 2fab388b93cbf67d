import Foundation
import NIOSSL
import PostgresNIO
import TrailwatchStore

/// A `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…&host=/socket/dir]` URL as
/// connection settings. The password comes from the URL (usually `${ENV}` interpolated into a
/// pipeline) or `PGPASSWORD`; it is never part of a message (see ``redacted``).
struct PostgresSettings: Sendable {
    var host: String
    var port: Int
    /// A directory holding the server's Unix socket (libpq's `host=/dir`), instead of TCP.
    var socketDirectory: String?
    var user: String
    var password: String?
    var database: String
    var sslMode: String
    /// The URL without its password, for messages.
    var redacted: String

    init(url: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(StoreError) {
        redacted = StoreLocation.redacted(url)
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              scheme == "postgres" || scheme == "postgresql" else {
            throw StoreError("\(redacted): not a postgres:// URL (postgres://USER@HOST:PORT/DATABASE)")
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { _, b in b })
        port = components.port ?? Int(query["port"] ?? "") ?? 5432
        guard (1...65535).contains(port) else { throw StoreError("\(redacted): port \(port) is out of range") }
        socketDirectory = query["host"].flatMap { $0.hasPrefix("/") ? $0 : nil }
        host = components.host.flatMap { $0.isEmpty ? nil : $0 } ?? query["host"].flatMap { $0.hasPrefix("/") ? nil : $0 } ?? "localhost"
        user = components.user?.removingPercentEncoding ?? environment["PGUSER"] ?? environment["USER"] ?? "postgres"
        password = components.password?.removingPercentEncoding ?? environment["PGPASSWORD"]
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? user : (path.removingPercentEncoding ?? path)
        sslMode = query["sslmode"] ?? "prefer"
        guard ["disable", "prefer", "require", "verify-ca", "verify-full"].contains(sslMode) else {
            throw StoreError("\(redacted): sslmode '\(sslMode)' is not one of disable, prefer, require, verify-full")
        }
    }

    func configuration() throws(StoreError) -> PostgresConnection.Configuration {
        var configuration: PostgresConnection.Configuration
        if let socketDirectory {
            configuration = .init(unixSocketPath: socketDirectory + "/.s.PGSQL.\(port)", username: user, password: password, database: database)
        } else {
            let tls: PostgresConnection.Configuration.TLS
            do {
                switch sslMode {
                case "disable": tls = .disable
                case "prefer", "require":
                    var client = TLSConfiguration.makeClientConfiguration()
                    client.certificateVerification = .none
                    let context = try NIOSSLContext(configuration: client)
                    tls = sslMode == "prefer" ? .prefer(context) : .require(context)
                default:
                    var client = TLSConfiguration.makeClientConfiguration()
                    client.certificateVerification = sslMode == "verify-ca" ? .noHostnameVerification : .fullVerification
                    tls = .require(try NIOSSLContext(configuration: client))
                }
            } catch {
                throw StoreError("\(redacted): cannot set up TLS: \(error)")
            }
            configuration = .init(host: host, port: port, username: user, password: password, database: database, tls: tls)
        }
        configuration.options.connectTimeout = .seconds(10)
        return configuration
    }
}
