/// Who made a request: the access key that signed it, or nobody (anonymous access on loopback,
/// when the operator allowed it). Operation handlers receive it, so per-key policies can be
/// checked there.
public struct AWSPrincipal: Sendable, Hashable, CustomStringConvertible {
    /// The access key id that signed the request; nil for anonymous requests.
    public var accessKeyID: String?

    public init(accessKeyID: String?) { self.accessKeyID = accessKeyID }

    public static let anonymous = AWSPrincipal(accessKeyID: nil)
    public var isAnonymous: Bool { accessKeyID == nil }
    public var description: String { accessKeyID ?? "anonymous" }
}

/// Verifies SigV4-signed requests against an ``AccessKeyring``, as AWS does, with the errors AWS
/// answers: a missing or malformed signature, an unknown key (`UnrecognizedClientException`), a
/// signature that does not match (`InvalidSignatureException`), or one made more than
/// ``allowedSkew`` seconds from now ("Signature expired").
public struct SigV4Verifier: Sendable {
    public var keys: AccessKeyring
    /// The service name the credential scope must name (`logs`), or nil to accept any.
    public var service: String?
    /// Seconds a request's time may differ from the server's clock (AWS: 5 minutes).
    public var allowedSkew: Int64 = 300

    public init(keys: AccessKeyring, service: String? = nil) {
        self.keys = keys
        self.service = service
    }

    /// The principal that signed `request`, or the error to answer. `request.payloadHash` must be
    /// the hash of the body as received; a different `X-Amz-Content-SHA256` is refused.
    public func verify(_ request: SigV4.Request, now: AWSTimestamp) -> Result<AWSPrincipal, AWSError> {
        guard let header = request.header("authorization") else {
            return .failure(.missingAuthentication)
        }
        guard let authorization = SigV4.parseAuthorization(header) else {
            if header.hasPrefix(SigV4.algorithm) {
                return .failure(.incompleteSignature("Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' parameters. Authorization=\(SigV4.algorithm) …"))
            }
            return .failure(.incompleteSignature("Unsupported authorization scheme; only \(SigV4.algorithm) (Signature Version 4) is accepted."))
        }
        guard let dateText = request.header("x-amz-date") else {
            return .failure(.incompleteSignature("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."))
        }
        guard let date = AWSTimestamp(amzDate: dateText) else {
            return .failure(.incompleteSignature("X-Amz-Date '\(dateText)' is not of the form yyyyMMdd'T'HHmmss'Z'."))
        }
        guard authorization.signedHeaders.contains("host") else {
            return .failure(.invalidSignature("'Host' must be a signed header."))
        }
        guard authorization.scope.date == String(dateText.prefix(8)) else {
            return .failure(.invalidSignature("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '\(authorization.scope.date)' != '\(dateText.prefix(8))'."))
        }
        if let service, authorization.scope.service != service {
            return .failure(.invalidSignature("Credential should be scoped to correct service: '\(service)'."))
        }
        if date.secondsSinceEpoch < now.secondsSinceEpoch - allowedSkew {
            let limit = AWSTimestamp(secondsSinceEpoch: now.secondsSinceEpoch - allowedSkew)
            return .failure(.invalidSignature("Signature expired: \(dateText) is now earlier than \(limit.amzDate) (\(now.amzDate) - 5 min.)"))
        }
        if date.secondsSinceEpoch > now.secondsSinceEpoch + allowedSkew {
            let limit = AWSTimestamp(secondsSinceEpoch: now.secondsSinceEpoch + allowedSkew)
            return .failure(.invalidSignature("Signature not yet current: \(dateText) is still later than \(limit.amzDate) (\(now.amzDate) + 5 min.)"))
        }
        guard let secret = keys.secret(for: authorization.accessKeyID) else {
            return .failure(.unrecognizedClient)
        }
        var signed = request
        if let declared = request.header("x-amz-content-sha256") {
            if declared == SigV4.unsignedPayload {
                signed.payloadHash = declared
            } else if declared.lowercased() != request.payloadHash {
                return .failure(.invalidSignature("The provided 'x-amz-content-sha256' header does not match what was computed."))
            }
        }
        let canonical = SigV4.canonicalRequest(signed, signedHeaders: authorization.signedHeaders)
        let toSign = SigV4.stringToSign(canonicalRequest: canonical, amzDate: dateText, scope: authorization.scope)
        let expected = SigV4.signature(key: SigV4.signingKey(secret: secret, scope: authorization.scope), stringToSign: toSign)
        guard constantTimeEqual(Array(expected.utf8), Array(authorization.signature.utf8)) else {
            return .failure(.invalidSignature("The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."))
        }
        return .success(AWSPrincipal(accessKeyID: authorization.accessKeyID))
    }
}
