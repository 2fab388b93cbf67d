import AsyncHTTPClient
import ByteJSON
import Foundation
import NIOCore
import NIOHTTP1

/// The client side of `trailwatch tap`: reads `GET /tap` of a running pipeline's HTTP server and
/// hands each NDJSON line (``TapStream``'s format) to the caller as it arrives.
public enum TapClient {
    public struct Request: Sendable {
        /// The server's base URL, e.g. `http://127.0.0.1:4566`.
        public var url: String
        /// `component` or `component.port`.
        public var target: String
        public var sampleEvery: Int
        public var eventsPerSecond: Int
        public var limit: Int?
        /// The `http:` block's token (Bearer); nil when the server asks for none.
        public var token: String?
        /// A PEM file of CA certificates trusted besides the system's (self-signed servers).
        public var caFile: String?

        public init(url: String, target: String, sampleEvery: Int = 1, eventsPerSecond: Int = 100, limit: Int? = nil,
                    token: String? = nil, caFile: String? = nil) {
            self.url = url
            self.target = target
            self.sampleEvery = sampleEvery
            self.eventsPerSecond = eventsPerSecond
            self.limit = limit
            self.token = token
            self.caFile = caFile
        }

        /// The request's URL: the base, `/tap` and the parameters, percent-encoded.
        public var tapURL: String? {
            guard var components = URLComponents(string: url.hasSuffix("/") ? String(url.dropLast()) : url) else { return nil }
            components.path += "/tap"
            var items = [URLQueryItem(name: "component", value: target), URLQueryItem(name: "sample", value: String(sampleEvery)),
                         URLQueryItem(name: "rate", value: String(eventsPerSecond))]
            if let limit { items.append(URLQueryItem(name: "limit", value: String(limit))) }
            components.queryItems = items
            return components.url?.absoluteString
        }
    }

    /// What the server counted for the tap (``TapStream``'s `stats` and `end` lines).
    public struct Counters: Sendable, Equatable {
        public var seen = 0
        public var sent = 0
        public var dropped = 0
        public init(seen: Int = 0, sent: Int = 0, dropped: Int = 0) {
            self.seen = seen
            self.sent = sent
            self.dropped = dropped
        }
    }

    /// One line of the stream.
    public enum Line: Sendable {
        /// A sampled event: the output it left by, the raw NDJSON line (without the newline) and
        /// the event object within it.
        case event(port: String?, line: [UInt8], event: JSONValue)
        case stats(Counters)
        /// The server ended the stream: `limit` or `stopping`.
        case end(reason: String, Counters)
    }

    public enum Failure: Error, Sendable, CustomStringConvertible {
        /// The server answered with an error status (the component is unknown, the token wrong, …).
        case refused(status: Int, message: String)
        /// No answer: the address is wrong, the server down, TLS failed, the stream broke off.
        case connection(String)
        /// A line that is not the tap's format.
        case protocolError(String)

        public var description: String {
            switch self {
            case .refused(let status, let message):
                let text = message.trimmingCharacters(in: .whitespacesAndNewlines)
                return status == 401 ? "the server wants a token (HTTP 401): give --token-env or --token-file (the http: block's auth_token_env)"
                    : "the server refused the tap (HTTP \(status)): \(text)"
            case .connection(let message): return message
            case .protocolError(let message): return "unexpected answer: \(message)"
            }
        }
    }

    /// Longest line accepted from the server: an event is at most a few MiB (the largest message
    /// a source keeps) plus its fields.
    static let maximumLineBytes = 64 << 20

    /// Streams the tap until the server ends it, `onLine` returns false, or the task is cancelled.
    public static func stream(_ request: Request, onLine: @Sendable (Line) async -> Bool) async throws(Failure) {
        guard let url = request.tapURL, url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw .connection("--url: '\(request.url)' is not an http:// or https:// URL")
        }
        let client: HTTPClient
        do {
            client = try HTTPClientStack.client(caFile: request.caFile, timeout: 30)
        } catch {
            throw .connection("\(error)")
        }
        do {
            try await read(client, url: url, token: request.token, onLine: onLine)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try? await client.shutdown()
    }

    private static func read(_ client: HTTPClient, url: String, token: String?, onLine: @Sendable (Line) async -> Bool) async throws(Failure) {
        var http = HTTPClientRequest(url: url)
        http.method = .GET
        if let token { http.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response: HTTPClientResponse
        do {
            // The stream has no end the client knows of; the server's `stats` line every second
            // keeps it from looking idle.
            response = try await client.execute(http, deadline: .distantFuture)
        } catch {
            throw .connection("cannot reach \(url): \(error)")
        }
        guard response.status == .ok else {
            var message: [UInt8] = []
            do {
                for try await part in response.body where message.count < 4096 { message += part.readableBytesView.prefix(4096 - message.count) }
            } catch {}
            throw .refused(status: Int(response.status.code), message: String(decoding: message, as: UTF8.self))
        }
        var pending: [UInt8] = []
        do {
            for try await part in response.body {
                pending.append(contentsOf: part.readableBytesView)
                var start = 0
                while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                    let line = Array(pending[start..<newline])
                    start = newline + 1
                    guard !line.isEmpty else { continue }
                    let parsed = try parse(line)
                    guard await onLine(parsed) else { return }
                    if case .end = parsed { return }
                }
                pending.removeFirst(start)
                if pending.count > maximumLineBytes { throw Failure.protocolError("a line longer than \(maximumLineBytes) bytes") }
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .connection("the stream from \(url) broke off: \(error)")
        }
        throw .connection("the server closed the stream without saying why (it may have stopped)")
    }

    /// Reads one NDJSON line of ``TapStream``.
    public static func parse(_ line: [UInt8]) throws(Failure) -> Line {
        guard let object = try? JSONValue.parse(line), case .object = object, let type = object["type"]?.stringValue else {
            throw .protocolError(String(decoding: line.prefix(200), as: UTF8.self))
        }
        func counters() -> Counters {
            Counters(seen: Int(object["seen"]?.doubleValue ?? 0), sent: Int(object["sent"]?.doubleValue ?? 0),
                     dropped: Int(object["dropped"]?.doubleValue ?? 0))
        }
        switch type {
        case "event":
            guard let event = object["event"] else { throw .protocolError("an event line without its event") }
            return .event(port: object["port"]?.stringValue, line: line, event: event)
        case "stats": return .stats(counters())
        case "end": return .end(reason: object["reason"]?.stringValue ?? "", counters())
        default: throw .protocolError("a line of type '\(type)'")
        }
    }
}
