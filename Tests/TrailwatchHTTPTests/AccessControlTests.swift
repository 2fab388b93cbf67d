import AccessPolicies
import AWSWire
import Foundation
import Testing
@testable import TrailwatchHTTP

/// A service whose requests name a resource from their body, as the Logs API names log groups.
struct ShelfService: AWSService {
    let targetPrefix = "Echo_20250101"
    let signingName = "echo"
    func accessRequest(for call: AWSOperationCall) -> AccessRequest {
        let shelf = (try? JSONSerialization.jsonObject(with: Data(call.body)) as? [String: Any])?["shelf"] as? String ?? ""
        return AccessRequest(action: "echo:\(call.operation)", resource: "arn:aws:echo:::shelf/\(shelf)")
    }
    func handle(_ call: AWSOperationCall) async -> AWSReply {
        AWSJSONProtocol.reply(Array("{\"handled\":\"\(call.operation)\"}".utf8), call.wireProtocol, requestID: call.requestID)
    }
}

/// The server's one evaluation point: AWS operations and routes are refused before any handler
/// runs, with AWS's error shape; callers are known by SigV4, Basic key id and secret, the token,
/// or as anonymous on loopback.
@Suite("Access policies at the HTTP server's dispatch", .serialized)
struct AccessControlTests {
    static let reader = AccessKey(id: "AKIDREADER", secret: "reader/secret")

    static func policies() throws -> AccessPolicySet {
        let reader = try PolicyDocument(json: Array(#"""
            {"Statement": [
              {"Effect": "Allow", "Action": ["echo:Get*", "trailwatch:GetMetrics"], "Resource": "*"},
              {"Effect": "Deny", "Action": "echo:*", "Resource": "arn:aws:echo:::shelf/private*"}]}
            """#.utf8), source: "reader")
        let metricsOnly = try PolicyDocument(json: Array(#"{"Statement": {"Effect": "Allow", "Action": "trailwatch:GetMetrics", "Resource": "*"}}"#.utf8), source: "m")
        return AccessPolicySet(attachments: [Self.reader.id: [reader], AccessPolicySet.token: [metricsOnly]])
    }

    func serve(token: String? = nil, _ body: (Int) async throws -> Void) async throws {
        let services = AWSServiceDirectory()
        services.register(ShelfService())
        var settings = HTTPServerSettings()
        settings.authToken = token
        var authentication = AWSAuthentication(keys: AccessKeyring([testKey, Self.reader]), allowAnonymousOnLoopback: true)
        authentication.policies = try Self.policies()
        let routes = [
            HTTPRoute(.exact("/health"), .immediate { _ in .text(200, "ok") }, access: .open),
            HTTPRoute(.exact("/metrics"), .immediate { _ in .text(200, "metrics") }, access: .action("trailwatch:GetMetrics")),
            HTTPRoute(.exact("/other"), .immediate { _ in .text(200, "other") }),
        ]
        try await withServer(settings, routes: routes, services: services, authentication: authentication) { server in
            try await body(server.port)
        }
    }

    func call(_ port: Int, _ raw: String) -> (status: Int, headers: [String: String], body: String)? {
        guard let client = RawClient(port: port) else { return nil }
        client.send(raw)
        return client.readResponse()
    }

    @Test("operations: allowed, refused by default, refused by an explicit deny; anonymous has nothing attached")
    func operations() async throws {
        try await serve { port in
            let allowed = try #require(call(port, awsRequest(port: port, operation: "GetThing", body: #"{"shelf":"a"}"#, key: Self.reader)))
            #expect(allowed.status == 200 && allowed.body.contains("handled"))
            let notAllowed = try #require(call(port, awsRequest(port: port, operation: "PutThing", body: #"{"shelf":"a"}"#, key: Self.reader)))
            #expect(notAllowed.status == 400 && awsType(notAllowed.body) == "AccessDeniedException")
            #expect(notAllowed.body.contains("User: arn:aws:iam::000000000000:user/AKIDREADER is not authorized to perform: echo:PutThing on resource: arn:aws:echo:::shelf/a because no identity-based policy allows the echo:PutThing action"))
            let denied = try #require(call(port, awsRequest(port: port, operation: "GetThing", body: #"{"shelf":"private/1"}"#, key: Self.reader)))
            #expect(awsType(denied.body) == "AccessDeniedException" && denied.body.contains("explicit deny"))
            // A valid key with no policy attached may do nothing.
            let other = try #require(call(port, awsRequest(port: port, operation: "GetThing", body: #"{"shelf":"a"}"#, key: testKey)))
            #expect(awsType(other.body) == "AccessDeniedException")
            let anonymous = try #require(call(port, awsRequest(port: port, operation: "GetThing", body: #"{"shelf":"a"}"#, key: nil)))
            #expect(awsType(anonymous.body) == "AccessDeniedException" && anonymous.body.contains("User: anonymous is not authorized"))
        }
    }

    @Test("routes: Basic key id and secret, SigV4-signed GETs, the token and anonymous loopback callers, each with their policies")
    func routes() async throws {
        try await serve(token: "tok") { port in
            let basic = "Authorization: Basic " + Data("\(Self.reader.id):\(Self.reader.secret)".utf8).base64EncodedString()
            #expect(get(port, "/metrics", headers: [basic])?.status == 200)
            let other = try #require(get(port, "/other", headers: [basic]))
            #expect(other.status == 403 && awsType(other.body) == "AccessDeniedException")
            #expect(other.body.contains("trailwatch:HttpGet on resource: arn:trailwatch:http:::/other"))
            let wrong = "Authorization: Basic " + Data("\(Self.reader.id):nope".utf8).base64EncodedString()
            #expect(get(port, "/metrics", headers: [wrong])?.status == 401)
            // SigV4 on a GET, as `curl --aws-sigv4` sends it.
            let signedHeaders = SigV4.sign(SigV4.Request(method: "GET", path: "/metrics", headers: [("Host", "127.0.0.1")],
                                                         payloadHash: SigV4.sha256Hex([UInt8]())),
                                           credentials: Self.reader, region: "us-east-1", service: "trailwatch",
                                           now: AWSTimestamp(secondsSinceEpoch: Int64(Date().timeIntervalSince1970)))
            #expect(get(port, "/metrics", headers: signedHeaders.map { "\($0.name): \($0.value)" })?.status == 200)
            // The token is a subject too: here it may read the metrics and nothing else.
            #expect(get(port, "/metrics", headers: ["Authorization: Bearer tok"])?.status == 200)
            #expect(get(port, "/other", headers: ["Authorization: Bearer tok"])?.status == 403)
            // With a token configured, nobody unauthenticated gets in; /health still needs the token.
            #expect(get(port, "/metrics")?.status == 401)
            #expect(get(port, "/health")?.status == 401)
            #expect(get(port, "/health", headers: ["Authorization: Bearer tok"])?.status == 200)
        }
        try await serve { port in
            // No token: loopback callers without credentials are anonymous, which has nothing attached.
            #expect(get(port, "/metrics")?.status == 403)
            #expect(get(port, "/health")?.status == 200)
        }
    }
}
