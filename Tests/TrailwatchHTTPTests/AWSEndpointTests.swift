import AWSWire
import Foundation
import Testing
@testable import TrailwatchHTTP

/// Echoes the operation, the principal and the body.
struct EchoService: AWSService {
    let targetPrefix = "Echo_20250101"
    let signingName = "echo"
    func handle(_ call: AWSOperationCall) async -> AWSReply {
        if call.operation == "Fail" { return AWSJSONProtocol.errorReply(AWSError("ResourceNotFoundException", "nope"), call.wireProtocol, requestID: call.requestID) }
        let text = "{\"operation\":\"\(call.operation)\",\"principal\":\"\(call.principal)\",\"bytes\":\(call.body.count)}"
        return AWSJSONProtocol.reply(Array(text.utf8), call.wireProtocol, requestID: call.requestID)
    }
}

let testKey = AccessKey(id: "AKIDTEST", secret: "test/secret+key")

/// A raw HTTP request for `Echo_20250101.OPERATION`, signed with `key` at `time` unless nil.
func awsRequest(port: Int, operation: String, body: String, key: AccessKey?, time: Date = Date(), target: String? = nil,
                contentType: String = "application/x-amz-json-1.1") -> String {
    var headers: [(name: String, value: String)] = [("Host", "127.0.0.1:\(port)"), ("Content-Type", contentType),
                                                    ("X-Amz-Target", target ?? "Echo_20250101.\(operation)")]
    if let key {
        let request = SigV4.Request(method: "POST", path: "/", headers: headers, payloadHash: SigV4.sha256Hex(Array(body.utf8)))
        headers += SigV4.sign(request, credentials: key, region: "us-east-1", service: "echo",
                              now: AWSTimestamp(secondsSinceEpoch: Int64(time.timeIntervalSince1970)))
    }
    headers.append(("Content-Length", String(body.utf8.count)))
    return "POST / HTTP/1.1\r\n" + headers.map { "\($0.name): \($0.value)\r\n" }.joined() + "\r\n" + body
}

func awsType(_ body: String) -> String? {
    (try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["__type"] as? String
}

@Suite("AWS APIs on the HTTP server: SigV4, dispatch, error shapes, limits", .serialized)
struct AWSEndpointTests {
    func serve(anonymous: Bool = false, maxBody: Int = 1 << 20, _ body: (Int) async throws -> Void) async throws {
        let services = AWSServiceDirectory()
        services.register(EchoService())
        var settings = HTTPServerSettings()
        settings.maxBodyBytes = maxBody
        try await withServer(settings, services: services,
                             authentication: AWSAuthentication(keys: AccessKeyring([testKey]), allowAnonymousOnLoopback: anonymous)) { server in
            try await body(server.port)
        }
    }

    func call(_ port: Int, _ raw: String) -> (status: Int, headers: [String: String], body: String)? {
        guard let client = RawClient(port: port) else { return nil }
        client.send(raw)
        return client.readResponse()
    }

    @Test("a signed call reaches its service with the signing key as principal")
    func signed() async throws {
        try await serve { port in
            let response = try #require(call(port, awsRequest(port: port, operation: "Hello", body: "{\"a\":1}", key: testKey)))
            #expect(response.status == 200)
            #expect(response.body.contains("\"principal\":\"AKIDTEST\""))
            #expect(response.headers["content-type"] == "application/x-amz-json-1.1")
            #expect(response.headers["x-amzn-requestid"]?.count == 36)
            let failing = try #require(call(port, awsRequest(port: port, operation: "Fail", body: "{}", key: testKey)))
            #expect(failing.status == 400 && awsType(failing.body) == "ResourceNotFoundException")
        }
    }

    @Test("wrong secret, unknown key, expired or unsigned requests are refused in AWS's shape")
    func refused() async throws {
        try await serve { port in
            let wrong = try #require(call(port, awsRequest(port: port, operation: "Hello", body: "{}", key: AccessKey(id: "AKIDTEST", secret: "wrong"))))
            #expect(wrong.status == 400 && awsType(wrong.body) == "InvalidSignatureException")
            #expect(!wrong.body.contains("test/secret+key"))
            let unknown = try #require(call(port, awsRequest(port: port, operation: "Hello", body: "{}", key: AccessKey(id: "AKIDOTHER", secret: "x"))))
            #expect(awsType(unknown.body) == "UnrecognizedClientException")
            let old = try #require(call(port, awsRequest(port: port, operation: "Hello", body: "{}", key: testKey, time: Date().addingTimeInterval(-400))))
            #expect(awsType(old.body) == "InvalidSignatureException" && old.body.contains("Signature expired"))
            let unsigned = try #require(call(port, awsRequest(port: port, operation: "Hello", body: "{}", key: nil)))
            #expect(awsType(unsigned.body) == "MissingAuthenticationTokenException")
        }
    }

    @Test("anonymous access on loopback only when allowed")
    func anonymous() async throws {
        try await serve(anonymous: true) { port in
            let response = try #require(call(port, awsRequest(port: port, operation: "Hello", body: "{}", key: nil)))
            #expect(response.status == 200 && response.body.contains("\"principal\":\"anonymous\""))
            // A signature, when present, is still checked.
            let wrong = try #require(call(port, awsRequest(port: port, operation: "Hello", body: "{}", key: AccessKey(id: "AKIDTEST", secret: "wrong"))))
            #expect(awsType(wrong.body) == "InvalidSignatureException")
        }
    }

    @Test("unknown targets, wrong content types and oversized bodies get AWS errors; a huge body is not read")
    func badInput() async throws {
        try await serve(maxBody: 64 * 1024) { port in
            let unknown = try #require(call(port, awsRequest(port: port, operation: "X", body: "{}", key: testKey, target: "Nope_1.X")))
            #expect(awsType(unknown.body) == "UnknownOperationException")
            let noDot = try #require(call(port, awsRequest(port: port, operation: "X", body: "{}", key: testKey, target: "NoOperation")))
            #expect(awsType(noDot.body) == "UnknownOperationException")
            let type = try #require(call(port, awsRequest(port: port, operation: "X", body: "{}", key: testKey, contentType: "text/xml")))
            #expect(type.status == 415)
            // 100 MB declared: refused at once and the connection closed.
            let client = try #require(RawClient(port: port))
            client.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: Echo_20250101.Big\r\nContent-Length: 104857600\r\n\r\n")
            client.send([UInt8](repeating: 0x20, count: 100_000))
            let big = try #require(client.readResponse())
            #expect(big.status == 413 && awsType(big.body) == "RequestEntityTooLargeException")
            #expect(big.headers["connection"] == "close")
            // Chunked past the limit.
            let chunked = try #require(RawClient(port: port))
            chunked.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\nX-Amz-Target: Echo_20250101.Big\r\nTransfer-Encoding: chunked\r\n\r\n")
            let piece = String(repeating: "x", count: 32 * 1024)
            for _ in 0..<3 { chunked.send(String(32 * 1024, radix: 16) + "\r\n" + piece + "\r\n") }
            #expect(chunked.readResponse()?.status == 413)
            // The server is fine afterwards.
            let ok = try #require(call(port, awsRequest(port: port, operation: "Hello", body: "{}", key: testKey)))
            #expect(ok.status == 200)
        }
    }
}
