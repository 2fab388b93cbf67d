/// How the server listens and what it tolerates. Every limit exists so that memory and file
/// descriptors stay bounded by configuration, whatever clients send.
public struct HTTPServerSettings: Sendable {
    public var host: String
    /// 0 picks a free port (see ``HTTPServer/port``).
    public var port: Int
    /// Certificate chain and private key (PEM files) to serve HTTPS; nil serves plain HTTP.
    public var tls: TLSFiles?
    /// Connections open at once; past it the server stops accepting until one closes.
    public var maxConnections = 1024
    /// Longest request line, and longest single header line (431 beyond).
    public var maxRequestLineBytes = 8 * 1024
    /// All headers of a request together (431 beyond).
    public var maxHeaderBytes = 32 * 1024
    /// Headers in one request (431 beyond).
    public var maxHeaderCount = 100
    /// One request body (413 beyond). CloudWatch Logs' PutLogEvents allows 1 MiB of events, whose
    /// JSON with escapes can be several times that.
    public var maxBodyBytes = 8 * 1024 * 1024
    /// Request bodies held in memory across all connections at once; past it, requests are
    /// answered 503 (ThrottlingException for the AWS APIs) so the client backs off.
    public var maxBufferedBodyBytes = 96 * 1024 * 1024
    /// A connection without a request in progress is closed after this long.
    public var idleTimeoutSeconds: Double = 60
    /// A request must arrive completely (head and body) within this long of its first byte;
    /// a client trickling a byte a second is cut off.
    public var requestReadTimeoutSeconds: Double = 30
    /// Longest time a handler may take to answer (503 beyond).
    public var requestTimeoutSeconds: Double = 60
    /// Longest time a store query may run (503 with a message beyond).
    public var queryTimeoutSeconds: Double = 30
    /// Threads that accept connections and run request handlers (non-blocking work).
    public var serverThreads = 4
    /// Threads that run store queries (off the event loops and off Swift's cooperative pool).
    public var queryThreads = 4
    /// A token clients must present (Bearer, or the password of Basic auth) for the non-AWS
    /// routes (`/metrics`, `/health`, dashboards); nil: no token. The AWS APIs use SigV4.
    public var authToken: String?

    public init(host: String = "127.0.0.1", port: Int = 0) {
        self.host = host
        self.port = port
    }

    public var isLoopback: Bool { host == "127.0.0.1" || host == "::1" || host == "localhost" || host.hasPrefix("127.") }

    public var scheme: String { tls == nil ? "http" : "https" }
}

/// PEM files for TLS.
public struct TLSFiles: Sendable {
    public var certificatePath: String
    public var privateKeyPath: String

    public init(certificatePath: String, privateKeyPath: String) {
        self.certificatePath = certificatePath
        self.privateKeyPath = privateKeyPath
    }
}
