import ByteJSON

/// The wire protocols AWS services speak. Each case knows how a request names its operation and
/// how replies and errors are shaped: ``AWSJSONProtocol``, ``AWSRPCv2CBORProtocol`` and
/// ``AWSQueryProtocol``; ``AWSDocumentCodec`` reads and writes documents in any of them.
public enum AWSProtocol: Sendable, Hashable {
    /// `application/x-amz-json-1.0`, `X-Amz-Target: Service.Operation` (DynamoDB, CloudWatch's JSON).
    case awsJSON1_0
    /// `application/x-amz-json-1.1` (CloudWatch Logs, CloudTrail).
    case awsJSON1_1
    /// Smithy RPC v2 CBOR: `POST /service/Service/operation/Operation`, `smithy-protocol: rpc-v2-cbor`
    /// (what botocore 1.43 sends for CloudWatch).
    case rpcV2CBOR
    /// The query protocol: form-encoded `Action=…&Version=…`, XML replies (older CloudWatch clients).
    case query

    public var contentType: String {
        switch self {
        case .awsJSON1_0: "application/x-amz-json-1.0"
        case .awsJSON1_1: "application/x-amz-json-1.1"
        case .rpcV2CBOR: "application/cbor"
        case .query: "text/xml"
        }
    }
}

/// One operation call as it arrived, after authentication: which service and operation, the
/// body, and who signed it.
public struct AWSOperationCall: Sendable {
    public var wireProtocol: AWSProtocol
    /// The target prefix (`Logs_20140328`) for the JSON protocols.
    public var service: String
    public var operation: String
    public var body: [UInt8]
    public var principal: AWSPrincipal
    /// Sent back as `x-amzn-RequestId`.
    public var requestID: String

    public init(wireProtocol: AWSProtocol, service: String, operation: String, body: [UInt8], principal: AWSPrincipal, requestID: String) {
        self.wireProtocol = wireProtocol
        self.service = service
        self.operation = operation
        self.body = body
        self.principal = principal
        self.requestID = requestID
    }
}

/// What an operation answers, ready to be written by the HTTP layer.
public struct AWSReply: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// The awsJson 1.0 / 1.1 protocols: `POST /` with `X-Amz-Target: Prefix.Operation` and a JSON
/// body; errors are `{"__type": "Code", "message": "…"}` with their HTTP status.
public enum AWSJSONProtocol {
    /// Which protocol, service and operation a request names, or the error AWS answers.
    /// An absent or generic content type is read as the target service's own JSON version.
    public static func identify(method: String, contentType: String?, target: String?) -> Result<(AWSProtocol, service: String, operation: String), AWSError> {
        guard let target, !target.isEmpty else {
            return .failure(AWSError("UnknownOperationException", "Missing X-Amz-Target header: name the operation as Service.Operation."))
        }
        guard method == "POST" else {
            return .failure(AWSError("UnknownOperationException", "AWS JSON operations are called with POST, not \(method).", status: 405))
        }
        guard let dot = target.lastIndex(of: "."), dot != target.startIndex, target.index(after: dot) != target.endIndex else {
            return .failure(.unknownOperation(target))
        }
        let wire: AWSProtocol
        switch contentType.map({ $0.split(separator: ";").first.map { $0.trimmingCharacters() } ?? "" })?.lowercased() {
        case "application/x-amz-json-1.0": wire = .awsJSON1_0
        case "application/x-amz-json-1.1", nil, "", "application/json": wire = .awsJSON1_1
        case let other?:
            return .failure(AWSError("UnknownOperationException", "Content type '\(other)' is not an AWS JSON protocol (expected application/x-amz-json-1.1).", status: 415))
        }
        return .success((wire, String(target[..<dot]), String(target[target.index(after: dot)...])))
    }

    public static func reply(_ body: [UInt8], _ wire: AWSProtocol, requestID: String) -> AWSReply {
        AWSReply(status: 200, headers: [("Content-Type", wire.contentType), ("x-amzn-RequestId", requestID)], body: body)
    }

    public static func errorReply(_ error: AWSError, _ wire: AWSProtocol, requestID: String) -> AWSReply {
        var headers: [(name: String, value: String)] = [("Content-Type", wire.contentType), ("x-amzn-RequestId", requestID),
                                                        ("x-amzn-ErrorType", error.code)]
        if let retryAfter = error.retryAfter { headers.append(("Retry-After", String(retryAfter))) }
        let body = "{\"__type\":" + AWSJSONText.quote(error.code) + ",\"message\":" + AWSJSONText.quote(error.message) + "}"
        return AWSReply(status: error.status, headers: headers, body: Array(body.utf8))
    }
}

/// Minimal JSON text helpers for envelopes (errors, small replies).
public enum AWSJSONText {
    /// A JSON string literal for `text` (control characters escaped; invalid UTF-8 cannot occur in a String).
    public static func quote(_ text: String) -> String { JSONStringLiteral.quoted(text) }
}

extension Substring {
    func trimmingCharacters() -> String { String(trimmingSpaces) }
}
