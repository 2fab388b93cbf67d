/// An error in AWS's shape: a code (the `__type` of the JSON protocols), a message and an HTTP
/// status. SDKs raise their usual exception classes from the code.
public struct AWSError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: String
    public var message: String
    public var status: Int
    /// Seconds the client should wait before retrying (sent as `Retry-After`), for throttling.
    public var retryAfter: Int?

    public init(_ code: String, _ message: String, status: Int = 400, retryAfter: Int? = nil) {
        self.code = code
        self.message = message
        self.status = status
        self.retryAfter = retryAfter
    }

    public var description: String { "\(code): \(message)" }

    // Authentication (common to every AWS service).
    public static func incompleteSignature(_ message: String) -> AWSError { AWSError("IncompleteSignatureException", message) }
    public static func invalidSignature(_ message: String) -> AWSError { AWSError("InvalidSignatureException", message) }
    public static let unrecognizedClient = AWSError("UnrecognizedClientException", "The security token included in the request is invalid.")
    public static let missingAuthentication = AWSError("MissingAuthenticationTokenException", "Missing Authentication Token", status: 403)
    public static func accessDenied(_ message: String) -> AWSError { AWSError("AccessDeniedException", message) }

    // Protocol errors.
    public static func serialization(_ message: String) -> AWSError { AWSError("SerializationException", message) }
    public static func unknownOperation(_ target: String) -> AWSError {
        AWSError("UnknownOperationException", "Operation \(target) is not supported by this endpoint.")
    }
    public static func validation(_ message: String) -> AWSError { AWSError("ValidationException", message) }
    public static func throttling(_ message: String, retryAfter: Int = 1) -> AWSError {
        AWSError("ThrottlingException", message, status: 503, retryAfter: retryAfter)
    }
    public static func serviceUnavailable(_ message: String) -> AWSError { AWSError("ServiceUnavailableException", message, status: 503, retryAfter: 1) }
    public static func internalFailure(_ message: String) -> AWSError { AWSError("InternalFailure", message, status: 500) }
}
