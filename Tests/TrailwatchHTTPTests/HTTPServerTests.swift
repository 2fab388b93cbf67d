import AWSWire
import AsyncHTTPClient
import Foundation
import Glibc
import NIOCore
import NIOSSL
import Synchronization
import Testing
import TrailwatchTestSupport
@testable import TrailwatchHTTP

/// Starts a server for one test and always stops it.
func withServer(_ settings: HTTPServerSettings = HTTPServerSettings(), routes: [HTTPRoute] = defaultRoutes(),
                services: AWSServiceDirectory = AWSServiceDirectory(), authentication: AWSAuthentication? = nil,
                _ body: (HTTPServer) async throws -> Void) async throws {
    let server = HTTPServer(settings: settings, routes: routes, services: services, authentication: authentication)
    try await server.start()
    do {
        try await body(server)
    } catch {
        await server.shutdown()
        throw error
    }
    await server.shutdown()
}

/// `/slow` requests whose handler has started (tests wait for them instead of sleeping).
let slowRequestsStarted = Atomic<Int>(0)

/// `/health` at once, `/slow?s=N` a store query that takes N seconds.
func defaultRoutes() -> [HTTPRoute] {
    [
        HTTPRoute(.exact("/health"), .immediate { _ in HTTPReply(contentType: "application/json", text: "{\"status\":\"ok\"}\n") }),
        HTTPRoute(.exact("/slow"), .store { head in
            slowRequestsStarted.wrappingAdd(1, ordering: .relaxed)
            let wait = Double(head.query["s"] ?? "1") ?? 1
            let until = Date().addingTimeInterval(wait)
            while Date() < until && !Task.isCancelled { usleep(10_000) }
            return HTTPReply(contentType: "text/plain", text: Task.isCancelled ? "cancelled\n" : "slept\n")
        }),
        HTTPRoute(.prefix("/pages/"), .store { head in
            head.path == "/pages/none" ? nil : HTTPReply(contentType: "text/plain", text: "page \(head.path.dropFirst(7)) q=\(head.query["q"] ?? "")\n")
        }),
    ]
}

@Suite("HTTP server (Hummingbird): concurrency, limits, timeouts, TLS", .serialized)
struct HTTPServerTests {
    @Test("idle connections and a slow query do not delay /health; keep-alive serves several requests on one connection")
    func slowClientsDoNotBlockOthers() async throws {
        try await withServer { server in
            let port = server.port
            // Idle connections that never send a byte, and one that sent half a request.
            let idle = (0..<1000).compactMap { _ in RawClient(port: port) }
            #expect(idle.count == 1000)
            let half = RawClient(port: port)
            half?.send("GET /health HTTP/1.1\r\nHo")
            // Two slow queries in flight.
            let started = slowRequestsStarted.load(ordering: .relaxed)
            let slow = Task.detached { get(port, "/slow?s=2") }
            let slow2 = Task.detached { get(port, "/slow?s=2") }
            #expect(await eventually(30) { slowRequestsStarted.load(ordering: .relaxed) >= started + 2 })
            for _ in 0..<5 {
                var response: (status: Int, headers: [String: String], body: String)?
                let elapsed = seconds { response = get(port, "/health") }
                #expect(response?.status == 200)
                #expect(elapsed < 0.5, "health took \(elapsed)s")
            }
            // Keep-alive: three requests on one connection.
            let client = try #require(RawClient(port: port))
            for path in ["/health", "/pages/a?q=x+y", "/health"] {
                client.send("GET \(path) HTTP/1.1\r\nHost: x\r\n\r\n")
                let response = try #require(client.readResponse())
                #expect(response.status == 200)
                if path.hasPrefix("/pages") { #expect(response.body == "page a q=x y\n") }
            }
            #expect(await slow.value?.body == "slept\n")
            #expect(await slow2.value?.body == "slept\n")
            withExtendedLifetime(idle) {}
            withExtendedLifetime(half) {}
        }
    }

    @Test("a query past query_timeout is answered 503 with a message, and is cancelled")
    func queryTimeout() async throws {
        var settings = HTTPServerSettings()
        settings.queryTimeoutSeconds = 0.3
        try await withServer(settings) { server in
            var response: (status: Int, headers: [String: String], body: String)?
            let elapsed = seconds { response = get(server.port, "/slow?s=5") }
            #expect(response?.status == 503)
            #expect(response?.body.contains("timed out after 0.3 s") == true, "\(response?.body ?? "")")
            #expect(elapsed < 2)
        }
    }

    @Test("unknown paths are 404, other methods 405, a route may pass to the next")
    func routing() async throws {
        try await withServer { server in
            #expect(get(server.port, "/nothing")?.status == 404)
            #expect(get(server.port, "/pages/none")?.status == 404)
            let client = try #require(RawClient(port: server.port))
            client.send("DELETE /health HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(client.readResponse()?.status == 405)
        }
    }

    @Test("oversized request lines and headers get 431 with the limits named")
    func headerLimits() async throws {
        var settings = HTTPServerSettings()
        settings.maxRequestLineBytes = 1024
        settings.maxHeaderBytes = 4096
        settings.maxHeaderCount = 20
        try await withServer(settings) { server in
            let longLine = get(server.port, "/health?" + String(repeating: "a", count: 2000))
            #expect(longLine?.status == 431)
            #expect(longLine?.body.contains("at most 1024 bytes per line") == true)
            let many = get(server.port, "/health", headers: (0..<30).map { "X-H\($0): v" })
            #expect(many?.status == 431)
            let big = get(server.port, "/health", headers: (0..<5).map { "X-Big\($0): " + String(repeating: "b", count: 1000) })
            #expect(big?.status == 431)
            #expect(get(server.port, "/health")?.status == 200)
            let garbage = try #require(RawClient(port: server.port))
            garbage.send("\u{1}\u{2} nonsense\r\n\r\n")
            #expect(garbage.readResponse()?.status == 400)
        }
    }

    @Test("a client trickling a request is cut off at the read timeout; idle connections close at the idle timeout")
    func slowlorisAndIdle() async throws {
        var settings = HTTPServerSettings()
        settings.requestReadTimeoutSeconds = 0.8
        settings.idleTimeoutSeconds = 1.0
        try await withServer(settings) { server in
            let trickle = try #require(RawClient(port: server.port, receiveTimeout: 0.2))
            let request = Array("GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: aaaaaaaaaaaaaaaaaaaa\r\n\r\n".utf8)
            var closed = false
            let start = Date()
            for byte in request {
                if !trickle.send([byte]) { closed = true; break }
                if trickle.closedByServer() { closed = true; break }   // waits 0.2 s for a close
            }
            #expect(closed)
            #expect(Date().timeIntervalSince(start) < 3)
            let idle = try #require(RawClient(port: server.port, receiveTimeout: 3))
            let elapsed = seconds { #expect(idle.closedByServer()) }
            #expect(elapsed > 0.5 && elapsed < 2.5, "idle close after \(elapsed)s")
        }
    }

    @Test("past max_connections new clients wait until one closes; nothing is stuck")
    func connectionLimit() async throws {
        var settings = HTTPServerSettings()
        settings.maxConnections = 4
        settings.idleTimeoutSeconds = 0.5
        try await withServer(settings) { server in
            let hogs = (0..<4).compactMap { _ in RawClient(port: server.port) }
            #expect(hogs.count == 4)
            var response: (status: Int, headers: [String: String], body: String)?
            let elapsed = seconds { response = get(server.port, "/health") }
            #expect(response?.status == 200)
            #expect(elapsed < 3)
            withExtendedLifetime(hogs) {}
        }
    }

    @Test("a token protects the routes (Bearer or Basic)")
    func token() async throws {
        var settings = HTTPServerSettings()
        settings.authToken = "s3cret"
        try await withServer(settings) { server in
            #expect(get(server.port, "/health")?.status == 401)
            #expect(get(server.port, "/health", headers: ["Authorization: Bearer nope"])?.status == 401)
            #expect(get(server.port, "/health", headers: ["Authorization: Bearer s3cret"])?.status == 200)
            let basic = Data("u:s3cret".utf8).base64EncodedString()
            #expect(get(server.port, "/health", headers: ["Authorization: Basic \(basic)"])?.status == 200)
        }
    }

    @Test("shutdown lets a request in progress finish")
    func drain() async throws {
        let server = HTTPServer(settings: HTTPServerSettings(), routes: defaultRoutes())
        try await server.start()
        let port = server.port
        let started = slowRequestsStarted.load(ordering: .relaxed)
        let slow = Task.detached { get(port, "/slow?s=1") }
        #expect(await eventually(30) { slowRequestsStarted.load(ordering: .relaxed) > started })
        await server.shutdown()
        #expect(await slow.value?.body == "slept\n")
        #expect(RawClient(port: port) == nil)
    }

    @Test("TLS from PEM files (a self-signed certificate made with openssl)")
    func tls() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tw-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (cert, key) = try makeSelfSignedCertificate(in: dir)
        var settings = HTTPServerSettings()
        settings.tls = TLSFiles(certificatePath: cert, privateKeyPath: key)
        try await withServer(settings) { server in
            #expect(server.baseURL.hasPrefix("https://"))
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.additionalTrustRoots = [.certificates(try NIOSSLCertificate.fromPEMFile(cert))]
            var configuration = HTTPClient.Configuration()
            configuration.tlsConfiguration = tls
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            do {
                let response = try await client.execute(HTTPClientRequest(url: "https://localhost:\(server.port)/health"), timeout: .seconds(5))
                #expect(response.status.code == 200)
                // A plain-HTTP client gets no answer.
                #expect(get(server.port, "/health") == nil)
            } catch {
                try await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
        // A missing key file is a clear start error.
        var broken = HTTPServerSettings()
        broken.tls = TLSFiles(certificatePath: cert, privateKeyPath: dir + "/missing.pem")
        await #expect(throws: HTTPServer.StartError.self) { try await HTTPServer(settings: broken, routes: []).start() }
    }
}

/// A self-signed certificate for localhost/127.0.0.1 (openssl); returns (cert, key) paths.
func makeSelfSignedCertificate(in dir: String) throws -> (String, String) {
    let cert = dir + "/cert.pem", key = dir + "/key.pem"
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    process.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try launchProcess(process)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
    return (cert, key)
}
