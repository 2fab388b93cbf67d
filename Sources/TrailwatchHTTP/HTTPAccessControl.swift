import AccessPolicies
import AWSWire
import Foundation

/// How a route is authorized once the caller is known.
public enum RouteAccess: Sendable {
    /// Needs no policy: health probes. (The server's token, when set, still applies.)
    case open
    /// The action and resources a request asks for, evaluated against the caller's policies when
    /// the server has policies.
    case policy(@Sendable (HTTPRequestHead) -> AccessRequest)

    /// A fixed action on resource `*`.
    public static func action(_ name: String) -> RouteAccess {
        .policy { _ in AccessRequest(action: name, resources: [.any]) }
    }

    /// What a route that declares nothing asks for: `trailwatch:HttpGet` on the path
    /// (`arn:trailwatch:http:::/PATH`), so a new route is refused until a policy names it.
    public static let byPath = RouteAccess.policy { head in
        AccessRequest(action: "trailwatch:HttpGet", resource: "arn:trailwatch:http:::" + head.path)
    }
}

/// The single place where the HTTP server decides whether the caller of an AWS operation or of a
/// route may do what it asks (IAM semantics, see ``PolicyEvaluator``). Services and routes only
/// describe their requests (``AWSService/accessRequest(for:)``, ``HTTPRoute/access``).
extension HTTPServer {
    /// The context conditions read (`aws:SourceIp`, `aws:SecureTransport`, `aws:CurrentTime`,
    /// `aws:EpochTime`, `aws:userid`/`aws:username` as the access key id).
    func accessContext(_ head: HTTPRequestHead, subject: String?, now: AWSTimestamp) -> AccessContext {
        var context = AccessContext()
        if !head.remoteAddress.isEmpty { context["aws:SourceIp"] = [head.remoteAddress] }
        context["aws:SecureTransport"] = [settings.tls == nil ? "false" : "true"]
        context["aws:EpochTime"] = [String(now.secondsSinceEpoch)]
        context["aws:CurrentTime"] = [Self.iso8601(now)]
        if let subject {
            context["aws:userid"] = [subject]
            context["aws:username"] = [subject]
        }
        return context
    }

    static func iso8601(_ time: AWSTimestamp) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(time.secondsSinceEpoch)))
    }

    /// The refusal for an AWS call, or nil when the caller's policies allow it (or the server has none).
    func refusal(of call: AWSOperationCall, by service: any AWSService, _ head: HTTPRequestHead) -> AWSError? {
        guard let authentication, let policies = authentication.policies else { return nil }
        let request = service.accessRequest(for: call)
        let subject = call.principal.policySubject
        let decision = policies.evaluate(subject: subject, request,
                                         context: accessContext(head, subject: call.principal.accessKeyID, now: authentication.now()))
        guard !decision.isAllowed else { return nil }
        return .accessDenied(PolicyEvaluator.message(decision, principal: Self.principalName(subject), action: request.action))
    }

    static func principalName(_ subject: String) -> String {
        subject == AccessPolicySet.anonymous || subject == AccessPolicySet.token ? subject : "arn:aws:iam::000000000000:user/\(subject)"
    }

    /// Who calls a route: an access key (SigV4-signed, e.g. `curl --aws-sigv4`, or HTTP Basic with
    /// the key id as user and the secret as password, for browsers), the holder of the server's
    /// token, or nobody from a loopback address (anonymous).
    enum RouteCaller {
        case subject(String)
        case refused(String)
    }

    func routeCaller(_ head: HTTPRequestHead) -> RouteCaller {
        let authorization = head.header("authorization")
        if let authorization, authorization.hasPrefix(SigV4.algorithm), let authentication {
            let signed = SigV4.Request(method: head.method, path: head.path, query: head.rawQuery, headers: head.headers,
                                       payloadHash: [UInt8]().withUnsafeBytes { SigV4.sha256Hex($0) })
            var verifier = SigV4Verifier(keys: authentication.keys)
            verifier.allowedSkew = authentication.allowedSkewSeconds
            switch verifier.verify(signed, now: authentication.now()) {
            case .success(let principal): return .subject(principal.policySubject)
            case .failure(let error): return .refused(error.message)
            }
        }
        if let authorization, authorization.lowercased().hasPrefix("basic "), let authentication,
           let decoded = Data(base64Encoded: String(authorization.dropFirst(6))).map({ String(decoding: $0, as: UTF8.self) }),
           let colon = decoded.firstIndex(of: ":") {
            let id = String(decoded[..<colon]), secret = decoded[decoded.index(after: colon)...]
            if let expected = authentication.keys.secret(for: id) {
                return constantTimeEqual(Array(secret.utf8), Array(expected.utf8)) ? .subject(id) : .refused("wrong secret for access key \(id)")
            }
        }
        if let token = settings.authToken {
            if Self.presentsToken(head, token) { return .subject(AccessPolicySet.token) }
            return .refused("unauthorized")
        }
        if authorization == nil && head.fromLoopback { return .subject(AccessPolicySet.anonymous) }
        return .refused("unauthorized")
    }

    /// The refusal for a route, or nil when the caller may use it. Without policies only the
    /// token is checked, as before policies existed.
    func routeRefusal(_ route: HTTPRoute, _ head: HTTPRequestHead) -> HTTPReply? {
        guard let authentication, let policies = authentication.policies else {
            if let token = settings.authToken, !Self.presentsToken(head, token) { return Self.unauthorized }
            return nil
        }
        let subject: String
        switch routeCaller(head) {
        case .subject(let who): subject = who
        case .refused:
            if case .open = route.access, settings.authToken == nil { return nil }
            return Self.unauthorized
        }
        guard case .policy(let describe) = route.access else { return nil }
        let request = describe(head)
        let decision = policies.evaluate(subject: subject, request,
                                         context: accessContext(head, subject: subject == AccessPolicySet.anonymous || subject == AccessPolicySet.token ? nil : subject,
                                                                now: authentication.now()))
        guard !decision.isAllowed else { return nil }
        let message = PolicyEvaluator.message(decision, principal: Self.principalName(subject), action: request.action)
        let body = (try? JSONSerialization.data(withJSONObject: ["__type": "AccessDeniedException", "message": message], options: [.sortedKeys, .withoutEscapingSlashes]))
            .map { Array($0) } ?? []
        return HTTPReply(status: 403, contentType: "application/json", body: body)
    }

    static var unauthorized: HTTPReply {
        HTTPReply(status: 401, contentType: "text/plain; charset=utf-8", text: "unauthorized\n",
                  headers: [("WWW-Authenticate", "Basic realm=\"trailwatch\"")])
    }
}
