import AccessPolicies
import Synchronization

/// A service reachable through the AWS protocols: CloudWatch Logs, and later CloudWatch metrics
/// and CloudTrail. The HTTP layer authenticates and decodes the envelope, then hands the call
/// to the service whose target prefix it names.
public protocol AWSService: Sendable {
    /// The JSON protocols' target prefix, e.g. `Logs_20140328`.
    var targetPrefix: String { get }
    /// The SigV4 signing name, e.g. `logs`.
    var signingName: String { get }
    /// What a call asks to do, in IAM's terms (`logs:PutLogEvents` on the stream's ARN): the HTTP
    /// layer evaluates the caller's policies on it before ``handle(_:)`` runs, in one place for
    /// every service. The default names the operation under ``AWSService/actionPrefix`` on
    /// resource `*`, which only statements with `"Resource": "*"` allow.
    func accessRequest(for call: AWSOperationCall) -> AccessRequest
    /// Answers one call; errors are returned as ``AWSJSONProtocol/errorReply(_:_:requestID:)`` replies.
    func handle(_ call: AWSOperationCall) async -> AWSReply
}

/// The services a process serves, by target prefix. Stages register theirs when they start and
/// remove them when they stop; the HTTP server looks each request up here.
public final class AWSServiceDirectory: Sendable {
    private let services = Mutex<[String: any AWSService]>([:])

    public init() {}

    /// Registers `service`; false when another service already holds its prefix.
    @discardableResult
    public func register(_ service: any AWSService) -> Bool {
        services.withLock { s in
            guard s[service.targetPrefix] == nil else { return false }
            s[service.targetPrefix] = service
            return true
        }
    }

    public func unregister(targetPrefix: String) {
        _ = services.withLock { $0.removeValue(forKey: targetPrefix) }
    }

    public func service(targetPrefix: String) -> (any AWSService)? {
        services.withLock { $0[targetPrefix] }
    }

    public var isEmpty: Bool { services.withLock { $0.isEmpty } }
}
