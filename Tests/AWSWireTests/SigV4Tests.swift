import Foundation
import Testing
@testable import AWSWire

/// One request signed by botocore's SigV4Auth (scripts/gen_sigv4_vectors.py).
struct SigV4Vector: Decodable {
    var name: String
    var method: String
    var url: String
    var body_base64: String
    var headers: [[String]]
    var access_key_id: String
    var secret_access_key: String
    var session_token: String?
    var region: String
    var service: String
    var amz_date: String
    var canonical_request: String
    var string_to_sign: String
    var authorization: String

    var body: [UInt8] { Array(Data(base64Encoded: body_base64)!) }
    var components: URLComponents { URLComponents(string: url)! }

    /// The request as a server receives it: botocore's headers plus Authorization.
    var received: SigV4.Request {
        SigV4.Request(method: method, path: components.percentEncodedPath, query: components.percentEncodedQuery ?? "",
                      headers: headers.map { ($0[0], $0[1]) } + [("Authorization", authorization)],
                      payloadHash: SigV4.sha256Hex(body))
    }

    var timestamp: AWSTimestamp { AWSTimestamp(amzDate: amz_date)! }
    var keyring: AccessKeyring { AccessKeyring([AccessKey(id: access_key_id, secret: secret_access_key)]) }
}

func loadVectors() throws -> [SigV4Vector] {
    let url = try #require(Bundle.module.url(forResource: "sigv4", withExtension: "json", subdirectory: "Vectors"))
    return try JSONDecoder().decode([SigV4Vector].self, from: Data(contentsOf: url))
}

@Suite struct SigV4Tests {
    @Test func canonicalRequestAndStringToSignMatchBotocore() throws {
        let vectors = try loadVectors()
        #expect(vectors.count >= 7)
        for v in vectors {
            let auth = try #require(SigV4.parseAuthorization(v.authorization), "\(v.name)")
            let canonical = SigV4.canonicalRequest(v.received, signedHeaders: auth.signedHeaders)
            #expect(canonical == v.canonical_request, "\(v.name)")
            #expect(SigV4.stringToSign(canonicalRequest: canonical, amzDate: v.amz_date, scope: auth.scope) == v.string_to_sign, "\(v.name)")
        }
    }

    @Test func signingProducesBotocoresAuthorization() throws {
        for v in try loadVectors() {
            // What the client had before signing: botocore's headers minus those signing adds.
            let before = v.headers.filter { !["x-amz-date", "x-amz-security-token"].contains($0[0].lowercased()) }.map { ($0[0], $0[1]) }
            let request = SigV4.Request(method: v.method, path: v.components.percentEncodedPath, query: v.components.percentEncodedQuery ?? "",
                                        headers: before, payloadHash: SigV4.sha256Hex(v.body))
            let added = SigV4.sign(request, credentials: AccessKey(id: v.access_key_id, secret: v.secret_access_key), region: v.region,
                                   service: v.service, now: v.timestamp, sessionToken: v.session_token)
            #expect(added.first { $0.name == "Authorization" }?.value == v.authorization, "\(v.name)")
            #expect(added.first { $0.name == "X-Amz-Date" }?.value == v.amz_date)
        }
    }

    @Test func verifierAcceptsEveryVector() throws {
        for v in try loadVectors() {
            let result = SigV4Verifier(keys: v.keyring).verify(v.received, now: v.timestamp)
            #expect(try result.get() == AWSPrincipal(accessKeyID: v.access_key_id), "\(v.name)")
        }
    }

    @Test func wrongSecretIsAnInvalidSignature() throws {
        let v = try loadVectors()[0]
        let keys = AccessKeyring([AccessKey(id: v.access_key_id, secret: v.secret_access_key + "x")])
        guard case .failure(let error) = SigV4Verifier(keys: keys).verify(v.received, now: v.timestamp) else { Issue.record("accepted"); return }
        #expect(error.code == "InvalidSignatureException")
        #expect(error.status == 400)
        #expect(!error.message.contains(v.secret_access_key))
    }

    @Test func unknownKeyIsAnUnrecognizedClient() throws {
        let v = try loadVectors()[0]
        let keys = AccessKeyring([AccessKey(id: "AKIDOTHER", secret: v.secret_access_key)])
        guard case .failure(let error) = SigV4Verifier(keys: keys).verify(v.received, now: v.timestamp) else { Issue.record("accepted"); return }
        #expect(error.code == "UnrecognizedClientException")
    }

    @Test func tamperedBodyHeaderOrTargetIsRefused() throws {
        let v = try loadVectors()[0]
        var body = v.received
        body.payloadHash = SigV4.sha256Hex(Array("{}".utf8))
        var target = v.received
        target.headers = target.headers.map { $0.name == "X-Amz-Target" ? ($0.name, "Logs_20140328.DeleteLogGroup") : $0 }
        for request in [body, target] {
            guard case .failure(let error) = SigV4Verifier(keys: v.keyring).verify(request, now: v.timestamp) else { Issue.record("accepted"); continue }
            #expect(error.code == "InvalidSignatureException")
        }
    }

    @Test func signaturesOlderOrNewerThanFiveMinutesExpire() throws {
        let v = try loadVectors()[0]
        let verifier = SigV4Verifier(keys: v.keyring)
        let t = v.timestamp.secondsSinceEpoch
        #expect((try? verifier.verify(v.received, now: AWSTimestamp(secondsSinceEpoch: t + 300)).get()) != nil)
        #expect((try? verifier.verify(v.received, now: AWSTimestamp(secondsSinceEpoch: t - 300)).get()) != nil)
        guard case .failure(let late) = verifier.verify(v.received, now: AWSTimestamp(secondsSinceEpoch: t + 301)) else { Issue.record("accepted"); return }
        #expect(late.code == "InvalidSignatureException")
        #expect(late.message.hasPrefix("Signature expired: \(v.amz_date) is now earlier than"))
        guard case .failure(let early) = verifier.verify(v.received, now: AWSTimestamp(secondsSinceEpoch: t - 301)) else { Issue.record("accepted"); return }
        #expect(early.message.hasPrefix("Signature not yet current"))
    }

    @Test func missingOrMalformedAuthorization() throws {
        let v = try loadVectors()[0]
        let verifier = SigV4Verifier(keys: v.keyring)
        var unsigned = v.received
        unsigned.headers.removeAll { $0.name == "Authorization" }
        #expect(verifier.verify(unsigned, now: v.timestamp) == .failure(.missingAuthentication))
        for bad in ["AWS4-HMAC-SHA256 Credential=AKID/2026/us-east-1/logs/aws4_request", "Basic dXNlcjpwYXNz",
                    "AWS4-HMAC-SHA256 Credential=AKID/20261130/us-east-1/logs/aws4_request, SignedHeaders=, Signature=00"] {
            var request = v.received
            request.headers = request.headers.map { $0.name == "Authorization" ? ($0.name, bad) : $0 }
            guard case .failure(let error) = verifier.verify(request, now: v.timestamp) else { Issue.record("accepted \(bad)"); continue }
            #expect(error.code == "IncompleteSignatureException", "\(bad)")
        }
        var noDate = v.received
        noDate.headers.removeAll { $0.name == "X-Amz-Date" }
        guard case .failure(let error) = verifier.verify(noDate, now: v.timestamp) else { Issue.record("accepted"); return }
        #expect(error.code == "IncompleteSignatureException")
    }

    @Test func serviceScopeIsChecked() throws {
        let v = try loadVectors()[0]
        var verifier = SigV4Verifier(keys: v.keyring, service: "monitoring")
        guard case .failure(let error) = verifier.verify(v.received, now: v.timestamp) else { Issue.record("accepted"); return }
        #expect(error.message.contains("'monitoring'"))
        verifier.service = "logs"
        #expect((try? verifier.verify(v.received, now: v.timestamp).get()) != nil)
    }

    @Test func timestampsRoundTrip() {
        for seconds: Int64 in [0, 951_782_400, 1_700_000_000, 4_102_444_799, 1_709_164_800] {
            let t = AWSTimestamp(secondsSinceEpoch: seconds)
            #expect(AWSTimestamp(amzDate: t.amzDate) == t)
        }
        #expect(AWSTimestamp(secondsSinceEpoch: 951_782_400).amzDate == "20000229T000000Z")
        #expect(AWSTimestamp(amzDate: "20261301T000000Z") == nil)
        #expect(AWSTimestamp(amzDate: "2026-11-30T00:00:00Z") == nil)
    }

    @Test func constantTimeComparison() {
        #expect(constantTimeEqual(Array("abc".utf8), Array("abc".utf8)))
        #expect(!constantTimeEqual(Array("abc".utf8), Array("abd".utf8)))
        #expect(!constantTimeEqual(Array("abc".utf8), Array("abcd".utf8)))
        #expect(!constantTimeEqual([UInt8](repeating: 0, count: 256), [UInt8]()))
    }
}

@Suite struct AccessKeyringTests {
    @Test func parsesBothForms() throws {
        let ring = try AccessKeyring.parse("""
            # operators
            AKIDONE secretone
            AKIDTWO:secret:with:colons
            [default]
            aws_access_key_id = AKIDTHREE
            aws_secret_access_key = s3cr3t/with+slash
            region = us-east-1
            """)
        #expect(ring.ids == ["AKIDONE", "AKIDTHREE", "AKIDTWO"])
        #expect(ring.secret(for: "AKIDTWO") == "secret:with:colons")
        #expect(ring.secret(for: "AKIDTHREE") == "s3cr3t/with+slash")
    }

    @Test func errorsNeverQuoteSecrets() {
        for text in ["AKIDONE", "bad/id topsecret", "[p]\naws_access_key_id = AKIDX\n", "AKIDONE    "] {
            do {
                _ = try AccessKeyring.parse(text)
                Issue.record("accepted \(text)")
            } catch {
                #expect(!error.description.contains("topsecret"))
            }
        }
        #expect(!"\(AccessKey(id: "AKID", secret: "topsecret"))".contains("topsecret"))
    }
}

@Suite struct AWSJSONProtocolTests {
    @Test func identifiesTargets() throws {
        let (wire, service, operation) = try AWSJSONProtocol.identify(method: "POST", contentType: "application/x-amz-json-1.1", target: "Logs_20140328.PutLogEvents").get()
        #expect(wire == .awsJSON1_1 && service == "Logs_20140328" && operation == "PutLogEvents")
        #expect(try AWSJSONProtocol.identify(method: "POST", contentType: "application/x-amz-json-1.0; charset=utf-8", target: "A.B").get().0 == .awsJSON1_0)
        for (method, type, target) in [("POST", "application/x-amz-json-1.1", nil), ("POST", "text/plain", "A.B"), ("GET", nil, "A.B"),
                                       ("POST", nil, "NoDot"), ("POST", nil, "Trailing."), ("POST", nil, ".Leading")] as [(String, String?, String?)] {
            guard case .failure(let error) = AWSJSONProtocol.identify(method: method, contentType: type, target: target) else {
                Issue.record("accepted \(method) \(type ?? "-") \(target ?? "-")"); continue
            }
            #expect(error.code == "UnknownOperationException")
        }
    }

    @Test func errorRepliesHaveAWSShape() throws {
        let reply = AWSJSONProtocol.errorReply(AWSError("ResourceNotFoundException", "The specified log group \"x\"\n does not exist."), .awsJSON1_1, requestID: "r1")
        #expect(reply.status == 400)
        let object = try JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: String]
        #expect(object?["__type"] == "ResourceNotFoundException")
        #expect(object?["message"] == "The specified log group \"x\"\n does not exist.")
        #expect(reply.headers.contains { $0.name == "Content-Type" && $0.value == "application/x-amz-json-1.1" })
        let throttled = AWSJSONProtocol.errorReply(.throttling("slow down"), .awsJSON1_1, requestID: "r2")
        #expect(throttled.status == 503)
        #expect(throttled.headers.contains { $0.name == "Retry-After" })
    }

    @Test func serviceDirectory() {
        struct Echo: AWSService {
            let targetPrefix = "Echo_1"
            let signingName = "echo"
            func handle(_ call: AWSOperationCall) async -> AWSReply { AWSJSONProtocol.reply(call.body, call.wireProtocol, requestID: call.requestID) }
        }
        let directory = AWSServiceDirectory()
        #expect(directory.register(Echo()))
        #expect(!directory.register(Echo()))
        #expect(directory.service(targetPrefix: "Echo_1") != nil)
        directory.unregister(targetPrefix: "Echo_1")
        #expect(directory.isEmpty)
    }
}
