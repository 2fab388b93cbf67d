import Foundation
import Logging
import NIOCore
import NIOPosix
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

    /// Connects: trailwatch makes the channel itself (TCP or the Unix socket, 10 s to connect)
    /// with ``ChannelWritability`` first in its pipeline, and postgres-nio speaks PostgreSQL's
    /// protocol over it (TLS included).
    /// `sendBufferBytes` (tests only) shrinks the socket's send buffer and the channel's water
    /// marks, so that COPY writes wait for the server.
    func connect(id: Int, logger: Logger, sendBufferBytes: Int? = nil) async throws -> (PostgresConnection, ChannelWritability) {
        var bootstrap = ClientBootstrap(group: PostgresConnection.defaultEventLoopGroup).connectTimeout(.seconds(10))
        if let sendBufferBytes {
            bootstrap = bootstrap.channelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(sendBufferBytes))
                .channelOption(.writeBufferWaterMark, value: .init(low: 1, high: 2))
        }
        let channel: any Channel
        do {
            if let socketDirectory {
                channel = try await bootstrap.connect(unixDomainSocketPath: socketDirectory + "/.s.PGSQL.\(port)").get()
            } else {
                channel = try await bootstrap.connect(host: host, port: port).get()
            }
        } catch {
            throw StoreError("\(redacted): cannot connect: the server is unreachable (\(error))", transient: true)
        }
        let writability = ChannelWritability(channel: channel)
        do {
            try await channel.pipeline.addHandler(writability).get()
            var configuration = PostgresConnection.Configuration(establishedChannel: channel, tls: socketDirectory == nil ? try tls() : .disable,
                                                                 username: user, password: password, database: database)
            configuration.options.connectTimeout = .seconds(10)
            // As postgres-nio does for a host it connects to itself: the name for SNI and
            // certificate checks, unless it is an IP address.
            if socketDirectory == nil, (try? SocketAddress(ipAddress: host, port: port)) == nil {
                configuration.options.tlsServerName = host
            }
            let connection = try await PostgresConnection.connect(on: channel.eventLoop, configuration: configuration, id: id, logger: logger)
            return (connection, writability)
        } catch {
            channel.close(promise: nil)
            throw error
        }
    }

    private func tls() throws(StoreError) -> PostgresConnection.Configuration.TLS {
        do {
            switch sslMode {
            case "disable": return .disable
            case "prefer", "require":
                var client = TLSConfiguration.makeClientConfiguration()
                client.certificateVerification = .none
                let context = try NIOSSLContext(configuration: client)
                return sslMode == "prefer" ? .prefer(context) : .require(context)
            default:
                var client = TLSConfiguration.makeClientConfiguration()
                client.certificateVerification = sslMode == "verify-ca" ? .noHostnameVerification : .fullVerification
                return .require(try NIOSSLContext(configuration: client))
            }
        } catch {
            throw StoreError("\(redacted): cannot set up TLS: \(error)")
        }
    }
}
