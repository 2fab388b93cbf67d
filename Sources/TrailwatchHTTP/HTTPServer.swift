import AccessPolicies
import AWSWire
import Foundation
import TrailwatchCore
import HTTPTypes
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// The one HTTP server of a trailwatch process (Hummingbird 2 on swift-nio): `/metrics`,
/// `/health`, dashboards and `/api/query` as ``HTTPRoute``s, and the AWS APIs (SigV4-verified,
/// dispatched by `X-Amz-Target` to the services in ``services``).
///
/// Connections are served concurrently with keep-alive; store queries run on ``BlockingPool``
/// threads with a timeout, so neither a slow client nor a slow query delays anyone else.
/// ``shutdown()`` drains: it stops accepting, lets requests in progress finish and closes idle
/// connections.
public final class HTTPServer: Sendable {
    public let settings: HTTPServerSettings
    public let routes: [HTTPRoute]
    /// The AWS services requests can reach; stages register theirs while they run.
    public let services: AWSServiceDirectory
    /// How AWS API requests authenticate; nil refuses every AWS request.
    public let authentication: AWSAuthentication?
    let logger: Logger
    let queries: BlockingPool
    /// The server's own threads: accepting and every request handler run here, so nothing that
    /// blocks Swift's small cooperative pool elsewhere in the process (a sink's fsync) delays them.
    let executor: BlockingPool
    private let state = Mutex<State>(State())
    private let bufferedBodyBytes = Atomic<Int>(0)

    private struct State {
        var port = 0
        var group: ServiceGroup?
        var task: Task<Void, Never>?
    }

    public struct StartError: Error, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    public init(settings: HTTPServerSettings, routes: [HTTPRoute], services: AWSServiceDirectory = AWSServiceDirectory(),
                authentication: AWSAuthentication? = nil, logger: Logger? = nil) {
        self.settings = settings
        self.routes = routes
        self.services = services
        self.authentication = authentication
        self.logger = logger ?? Self.defaultLogger()
        self.queries = BlockingPool(threads: settings.queryThreads, name: "http-query")
        self.executor = BlockingPool(threads: settings.serverThreads, name: "http")
    }

    deinit {
        queries.shutdown()
        executor.shutdown()
    }

    /// Warnings and errors to stderr (stdout belongs to the command's output).
    public static func defaultLogger() -> Logger {
        var logger = Logger(label: "trailwatch.http") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .warning
        return logger
    }

    /// The port the server listens on (the bound one when ``HTTPServerSettings/port`` was 0).
    public var port: Int { state.withLock { $0.port } }

    public var baseURL: String {
        let host = settings.host.contains(":") ? "[\(settings.host)]" : settings.host
        return "\(settings.scheme)://\(host):\(port)"
    }

    /// Binds and starts serving; returns once the socket listens.
    @discardableResult
    public func start() async throws(StartError) -> Int {
        let child = HTTPConnectionChannel(settings: settings) { [self] request, writer, channel in
            await respond(request, writer, channel)
        }
        let configuration = ServerConfiguration(
            address: .hostname(settings.host == "localhost" ? "127.0.0.1" : settings.host, port: settings.port),
            serverName: nil, backlog: 256, reuseAddress: true,
            availableConnectionsDelegate: MaximumAvailableConnections(settings.maxConnections))
        let (stream, continuation) = AsyncStream<Result<Int, StartError>>.makeStream()
        let onRunning: @Sendable (any Channel) async -> Void = { channel in
            continuation.yield(.success(channel.localAddress?.port ?? 0))
        }
        let service: any Service
        do {
            if let tls = settings.tls {
                service = try TLSChannel(child, tlsConfiguration: Self.tlsConfiguration(tls))
                    .server(configuration: configuration, onServerRunning: onRunning, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
            } else {
                service = child.server(configuration: configuration, onServerRunning: onRunning, eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
            }
        } catch let error as StartError {
            throw error
        } catch {
            throw StartError(message: "http: TLS: \(error)")
        }
        let group = ServiceGroup(configuration: .init(services: [service], logger: logger))
        let address = "\(settings.host):\(settings.port)"
        let task = Task(executorPreference: executor) {
            do {
                try await group.run()
            } catch {
                continuation.yield(.failure(StartError(message: "http: cannot listen on \(address): \(Self.describe(error))")))
            }
            continuation.finish()
        }
        state.withLock { $0.group = group; $0.task = task }
        for await result in stream {
            switch result {
            case .success(let port):
                state.withLock { $0.port = port }
                return port
            case .failure(let error):
                queries.shutdown()
                executor.shutdown()
                throw error
            }
        }
        queries.shutdown()
        executor.shutdown()
        throw StartError(message: "http: the server stopped before it listened on \(address)")
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return error.description }
        return "\(error)"
    }

    static func tlsConfiguration(_ files: TLSFiles) throws(StartError) -> TLSConfiguration {
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(files.certificatePath)
            guard !chain.isEmpty else { throw StartError(message: "http: \(files.certificatePath) holds no PEM certificate") }
            let key = try NIOSSLPrivateKey(file: files.privateKeyPath, format: .pem)
            var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
            configuration.minimumTLSVersion = .tlsv12
            return configuration
        } catch let error as StartError {
            throw error
        } catch {
            // NIOSSL's errors name the file but never its contents.
            throw StartError(message: "http: cannot load the TLS certificate \(files.certificatePath) or key \(files.privateKeyPath): \(error)")
        }
    }

    /// Stops accepting, lets requests in progress finish, closes idle connections, and returns
    /// when every connection is closed.
    public func shutdown() async {
        let (group, task) = state.withLock { ($0.group, $0.task) }
        await group?.triggerGracefulShutdown()
        await task?.value
        queries.shutdown()
        executor.shutdown()
    }

    // MARK: Answering

    /// Answers one request; false closes the connection afterwards.
    func respond(_ request: Request, _ writer: consuming ResponseWriter, _ channel: any Channel) async -> Bool {
        let head = Self.head(of: request, channel: channel)
        var keepAlive = true
        let reply: HTTPReply
        if head.method == "POST" && head.header("x-amz-target") != nil || head.method == "POST" && head.path == "/" {
            (reply, keepAlive) = await answerAWS(request, head)
        } else {
            reply = await answerRoute(head)
        }
        var fields = HTTPFields()
        for (name, value) in reply.headers {
            if let fieldName = HTTPField.Name(name) { fields.append(HTTPField(name: fieldName, value: value)) }
        }
        fields[.contentLength] = String(reply.body.count)
        if !keepAlive { fields[.connection] = "close" }
        let body = head.method == "HEAD" || reply.body.isEmpty ? ResponseBody() : ResponseBody(byteBuffer: ByteBuffer(bytes: reply.body))
        do {
            try await writer.write(response: HTTPResponse(status: .init(code: reply.status), headerFields: fields), body: body)
        } catch {
            return false
        }
        return keepAlive
    }

    static func head(of request: Request, channel: any Channel) -> HTTPRequestHead {
        let target = request.head.path ?? "/"
        let path: String, query: String
        if let mark = target.firstIndex(of: "?") {
            path = String(target[..<mark])
            query = String(target[target.index(after: mark)...])
        } else {
            path = target
            query = ""
        }
        var headers: [(name: String, value: String)] = []
        if let authority = request.head.authority { headers.append(("host", authority)) }
        for field in request.headers { headers.append((field.name.canonicalName, field.value)) }
        let remote = channel.remoteAddress?.ipAddress ?? ""
        let loopback = remote.hasPrefix("127.") || remote == "::1" || remote.hasPrefix("::ffff:127.")
        return HTTPRequestHead(method: request.method.rawValue, path: path, rawQuery: query, headers: headers, fromLoopback: loopback, remoteAddress: remote)
    }

    func answerRoute(_ head: HTTPRequestHead) async -> HTTPReply {
        let candidates = routes.filter { $0.match.matches(head.path) }
        guard !candidates.isEmpty else {
            if let token = settings.authToken, !Self.presentsToken(head, token) && authentication?.policies == nil { return Self.unauthorized }
            return .text(404, "not found")
        }
        guard head.method == "GET" || head.method == "HEAD" else {
            return HTTPReply(status: 405, contentType: "text/plain; charset=utf-8", text: "method not allowed\n", headers: [("Allow", "GET, HEAD")])
        }
        for route in candidates {
            // Token and policies: one check, before any handler runs.
            if let refusal = routeRefusal(route, head) { return refusal }
            switch route.handler {
            case .immediate(let handler):
                if let reply = await withTimeout(settings.requestTimeoutSeconds, { await handler(head) }) { return reply }
                return .text(503, "the request took longer than \(settings.requestTimeoutSeconds.formatted()) s")
            case .store(let handler):
                do {
                    if let reply = try await queries.run(timeout: settings.queryTimeoutSeconds, { try await handler(head) }) { return reply }
                } catch let timeout as BlockingPool.Timeout {
                    return .text(503, "query \(timeout) (query_timeout); narrow the time range or the query")
                } catch {
                    return .text(500, "\(error)")
                }
            }
        }
        return .text(404, "not found")
    }

    /// Bearer TOKEN, or Basic with any user and TOKEN as password; compared in constant time.
    static func presentsToken(_ head: HTTPRequestHead, _ token: String) -> Bool {
        guard let value = head.header("authorization") else { return false }
        var presented: [UInt8]?
        if value.lowercased().hasPrefix("bearer ") {
            presented = Array(value.utf8.dropFirst(7))
        } else if value.lowercased().hasPrefix("basic "), let decoded = Data(base64Encoded: String(value.dropFirst(6))).map(Array.init) {
            if let colon = decoded.firstIndex(of: UInt8(ascii: ":")) { presented = Array(decoded[(colon + 1)...]) } else { presented = [] }
        }
        guard let presented else { return false }
        return constantTimeEqual(presented, Array(token.utf8))
    }

    /// Runs `work` with a deadline; nil when it passed (the work is cancelled).
    func withTimeout<T: Sendable>(_ seconds: Double, _ work: @escaping @Sendable () async -> T) async -> T? {
        await withTaskGroup(of: T?.self) { group in
            group.addTask { await work() }
            group.addTask {
                try? await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }

    // MARK: AWS APIs

    func answerAWS(_ request: Request, _ head: HTTPRequestHead) async -> (HTTPReply, keepAlive: Bool) {
        let requestID = RequestIDs.next()
        func fail(_ error: AWSError, _ wire: AWSProtocol = .awsJSON1_1, keepAlive: Bool = true) -> (HTTPReply, keepAlive: Bool) {
            (Self.reply(AWSJSONProtocol.errorReply(error, wire, requestID: requestID)), keepAlive)
        }
        let identified: (AWSProtocol, service: String, operation: String)
        switch AWSJSONProtocol.identify(method: head.method, contentType: head.header("content-type"), target: head.header("x-amz-target")) {
        case .success(let value): identified = value
        case .failure(let error): return fail(error)
        }
        let wire = identified.0
        guard let service = services.service(targetPrefix: identified.service) else {
            return fail(AWSError("UnknownOperationException", "No service \(identified.service) on this endpoint (is a source of its type in the pipeline?)."), wire)
        }
        // Refuse what is too large before reading it, and close: the rest of the body is not read.
        let declared = head.header("content-length").flatMap { Int($0) }
        if let declared, declared > settings.maxBodyBytes {
            return fail(AWSError("RequestEntityTooLargeException", "Request body of \(declared) bytes exceeds the limit of \(settings.maxBodyBytes) bytes.", status: 413), wire, keepAlive: false)
        }
        let reserve = declared ?? settings.maxBodyBytes
        let (_, buffered) = bufferedBodyBytes.wrappingAdd(reserve, ordering: .relaxed)
        defer { bufferedBodyBytes.wrappingSubtract(reserve, ordering: .relaxed) }
        if buffered > settings.maxBufferedBodyBytes && buffered != reserve {
            return fail(.throttling("Too many request bytes in flight; retry shortly."), wire)
        }
        let body: [UInt8]
        do {
            body = try await Self.collect(request.body, limit: settings.maxBodyBytes, expected: declared)
        } catch is BodyTooLarge {
            return fail(AWSError("RequestEntityTooLargeException", "Request body exceeds the limit of \(settings.maxBodyBytes) bytes.", status: 413), wire, keepAlive: false)
        } catch {
            return fail(AWSError("SerializationException", "The request body could not be read."), wire, keepAlive: false)
        }
        guard let authentication else {
            return fail(.accessDenied("This endpoint accepts no AWS API requests (no access keys configured)."), wire)
        }
        let principal: AWSPrincipal
        if head.header("authorization") == nil && authentication.allowAnonymousOnLoopback && head.fromLoopback {
            principal = .anonymous
        } else {
            let signed = SigV4.Request(method: head.method, path: head.path, query: head.rawQuery, headers: head.headers,
                                       payloadHash: body.withUnsafeBytes { SigV4.sha256Hex($0) })
            var verifier = SigV4Verifier(keys: authentication.keys, service: service.signingName)
            verifier.allowedSkew = authentication.allowedSkewSeconds
            switch verifier.verify(signed, now: authentication.now()) {
            case .success(let who): principal = who
            case .failure(let error): return fail(error, wire)
            }
        }
        let call = AWSOperationCall(wireProtocol: wire, service: identified.service, operation: identified.operation, body: body,
                                    principal: principal, requestID: requestID)
        // The caller's policies, evaluated once here for every service and operation.
        if let refusal = refusal(of: call, by: service, head) { return fail(refusal, wire) }
        guard let reply = await withTimeout(settings.requestTimeoutSeconds, { await service.handle(call) }) else {
            return fail(.serviceUnavailable("The request took longer than \(settings.requestTimeoutSeconds.formatted()) s; retry it."), wire)
        }
        return (Self.reply(reply), true)
    }

    static func reply(_ aws: AWSReply) -> HTTPReply {
        var reply = HTTPReply(status: aws.status, contentType: "", body: aws.body)
        reply.headers = aws.headers
        return reply
    }

    struct BodyTooLarge: Error {}

    static func collect(_ body: RequestBody, limit: Int, expected: Int?) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(min(expected ?? 0, limit))
        for try await part in body {
            guard bytes.count + part.readableBytes <= limit else { throw BodyTooLarge() }
            part.withUnsafeReadableBytes { bytes.append(contentsOf: $0) }
        }
        return bytes
    }
}

/// How AWS API requests authenticate.
public struct AWSAuthentication: Sendable {
    public var keys: AccessKeyring
    /// Unsigned requests from loopback addresses are served as ``AWSPrincipal/anonymous``.
    public var allowAnonymousOnLoopback: Bool
    public var allowedSkewSeconds: Int64 = 300
    /// The policies of each access key (and of `anonymous`); nil: every authenticated caller may
    /// do everything, as before policies existed.
    public var policies: AccessPolicySet?
    /// The clock signatures are checked against (injectable for tests).
    public var now: @Sendable () -> AWSTimestamp

    public init(keys: AccessKeyring, allowAnonymousOnLoopback: Bool = false,
                now: @escaping @Sendable () -> AWSTimestamp = { AWSTimestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)) }) {
        self.keys = keys
        self.allowAnonymousOnLoopback = allowAnonymousOnLoopback
        self.now = now
    }
}

/// Request ids for `x-amzn-RequestId`: random, UUID-shaped.
enum RequestIDs {
    static func next() -> String { UUID().uuidString.lowercased() }
}
