/// A request as routes see it: no Hummingbird or NIO types, so route providers (dashboards,
/// `/metrics`, `tap`) depend only on this module.
public struct HTTPRequestHead: Sendable {
    public var method: String
    /// The path without the query, percent-decoding left to the route.
    public var path: String
    /// The raw query string (after `?`), empty when none.
    public var rawQuery: String
    /// Header names in lowercase, in the order received.
    public var headers: [(name: String, value: String)]
    /// The peer is on a loopback address.
    public var fromLoopback: Bool
    /// The peer's IP address (policies' `aws:SourceIp`); empty when unknown.
    public var remoteAddress: String

    public init(method: String, path: String, rawQuery: String = "", headers: [(name: String, value: String)] = [], fromLoopback: Bool = true,
                remoteAddress: String = "") {
        self.method = method
        self.path = path
        self.rawQuery = rawQuery
        self.headers = headers
        self.fromLoopback = fromLoopback
        self.remoteAddress = remoteAddress
    }

    public func header(_ name: String) -> String? {
        let lower = name.lowercased()
        return headers.first { $0.name == lower }?.value
    }

    /// Decoded query parameters (`+` is a space, as forms send it; the last of repeated names wins).
    public var query: [String: String] {
        var out: [String: String] = [:]
        for pair in rawQuery.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            out[Self.percentDecode(parts[0])] = parts.count > 1 ? Self.percentDecode(parts[1]) : ""
        }
        return out
    }

    public static func percentDecode(_ text: Substring) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        func hexValue(_ b: UInt8) -> UInt8? {
            switch b {
            case 0x30...0x39: b - 0x30
            case 0x41...0x46: b - 0x37
            case 0x61...0x66: b - 0x57
            default: nil
            }
        }
        while let b = iterator.next() {
            if b == UInt8(ascii: "+") { bytes.append(0x20); continue }
            guard b == UInt8(ascii: "%") else { bytes.append(b); continue }
            guard let h = iterator.next(), let l = iterator.next(), let hi = hexValue(h), let lo = hexValue(l) else {
                bytes.append(b)
                continue
            }
            bytes.append(hi << 4 | lo)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// What a route answers.
public struct HTTPReply: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int = 200, contentType: String, body: [UInt8], headers: [(name: String, value: String)] = []) {
        self.status = status
        self.headers = [("Content-Type", contentType)] + headers
        self.body = body
    }

    public init(status: Int = 200, contentType: String, text: String, headers: [(name: String, value: String)] = []) {
        self.init(status: status, contentType: contentType, body: Array(text.utf8), headers: headers)
    }

    public static func text(_ status: Int, _ message: String) -> HTTPReply {
        HTTPReply(status: status, contentType: "text/plain; charset=utf-8", text: message.hasSuffix("\n") ? message : message + "\n")
    }
}

/// GET (and HEAD) routes, matched by exact path or by prefix.
public struct HTTPRoute: Sendable {
    public enum Match: Sendable {
        case exact(String)
        /// Any path starting with this.
        case prefix(String)

        func matches(_ path: String) -> Bool {
            switch self {
            case .exact(let p): path == p
            case .prefix(let p): path.hasPrefix(p)
            }
        }
    }

    public enum Handler: Sendable {
        /// Answers at once (no blocking calls): `/metrics`, `/health`.
        case immediate(@Sendable (HTTPRequestHead) async -> HTTPReply)
        /// Reads a store: runs on the server's query threads with the query timeout, so it never
        /// holds up another client (blocking calls inside block only a query thread). Nil passes
        /// the request on to later routes.
        case store(@Sendable (HTTPRequestHead) async throws -> HTTPReply?)
    }

    public var match: Match
    public var handler: Handler
    /// What a request asks for in IAM's terms, checked against the caller's access policies
    /// before the handler runs (see ``RouteAccess``).
    public var access: RouteAccess

    public init(_ match: Match, _ handler: Handler, access: RouteAccess = .byPath) {
        self.match = match
        self.handler = handler
        self.access = access
    }
}
