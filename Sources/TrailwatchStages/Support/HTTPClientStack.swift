import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL

/// The one HTTP client stack of trailwatch (async-http-client on swift-nio): webhooks and
/// shipping to CloudWatch Logs endpoints. TLS is verified against the system's trust store, plus
/// an operator's CA file when given (for self-signed aggregators); there is no switch to turn
/// verification off.
enum HTTPClientStack {
    /// The process-wide client, for requests with the default trust.
    static var shared: HTTPClient { HTTPClient.shared }

    struct SetupError: Error, CustomStringConvertible {
        var description: String
    }

    /// A client trusting `caFile` besides the system's roots; shut it down when done.
    static func client(caFile: String?, timeout: Double) throws -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile {
            do {
                tls.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMFile(caFile))]
            } catch {
                throw SetupError(description: "cannot load the CA certificates in \(caFile): \(error)")
            }
        }
        configuration.tlsConfiguration = tls
        // A connection that is not up (TCP and TLS) within 10 s will not come up: fail the request
        // and let the caller's retry loop decide when to try again.
        configuration.timeout = .init(connect: .seconds(Int64(min(timeout, 10))), read: .milliseconds(Int64(timeout * 1000)))
        configuration.connectionPool = .init(idleTimeout: .seconds(60))
        // A refused connection fails the request at once instead of waiting in the pool's own
        // backoff (which grows to 60 s during a long outage): the sink's `retry_initial` and
        // `retry_max` then alone decide how soon a returning receiver is tried again.
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.decompression = .disabled
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// What a response said: status, a few headers, and the body up to `limit` bytes.
    struct Answer: Sendable {
        var status: Int
        var retryAfter: Double?
        var body: [UInt8]
    }

    static func send(_ client: HTTPClient, url: String, method: HTTPMethod = .POST, headers: [(String, String)], body: [UInt8],
                     timeout: Double, limit: Int = 1 << 20) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(body)
        let response = try await client.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
        var collected: [UInt8] = []
        for try await part in response.body {
            if collected.count < limit { collected.append(contentsOf: part.readableBytesView.prefix(limit - collected.count)) }
        }
        return Answer(status: Int(response.status.code), retryAfter: response.headers.first(name: "Retry-After").flatMap(Double.init), body: collected)
    }
}
