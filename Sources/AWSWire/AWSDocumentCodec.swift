/// Smithy RPC v2 CBOR: `POST /service/<ServiceName>/operation/<OperationName>` with the
/// `smithy-protocol: rpc-v2-cbor` header and a CBOR body; replies carry the same header.
public enum AWSRPCv2CBORProtocol {
    public static let header = "rpc-v2-cbor"

    /// The service (the model's target prefix, e.g. `GraniteServiceVersion20100801`) and the
    /// operation a path names; nil when the path is not an RPC v2 path.
    public static func identify(path: String) -> (service: String, operation: String)? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        // "", "service", NAME, "operation", OP
        guard parts.count == 5, parts[0].isEmpty, parts[1] == "service", parts[3] == "operation", !parts[2].isEmpty, !parts[4].isEmpty
        else { return nil }
        return (String(parts[2]), String(parts[4]))
    }
}

/// Reads request documents and writes replies in whichever protocol a call came in: one
/// service implementation answers awsJson, RPC v2 CBOR and query clients alike.
public enum AWSDocumentCodec {
    /// What a service tells the codec about itself.
    public struct ServiceShape: Sendable {
        /// The query protocol's XML namespace (`http://monitoring.amazonaws.com/doc/2010-08-01/`).
        public var xmlNamespace: String
        /// Whether errors carry `x-amzn-query-error: Code;Sender` (services that began as query
        /// services, like CloudWatch): SDKs then raise the query protocol's exception classes.
        public var queryCompatible: Bool

        public init(xmlNamespace: String = "", queryCompatible: Bool = false) {
            self.xmlNamespace = xmlNamespace
            self.queryCompatible = queryCompatible
        }
    }

    /// The call's input document (an empty structure for an empty body).
    public static func input(_ call: AWSOperationCall) throws(AWSError) -> AWSValue {
        switch call.wireProtocol {
        case .awsJSON1_0, .awsJSON1_1:
            return try AWSJSONValue.decode(call.body)
        case .rpcV2CBOR:
            if call.body.isEmpty { return .map([:]) }
            let value: AWSValue
            do { value = try CBOR.decode(call.body) } catch { throw AWSError.serialization("Invalid CBOR request body: \(error.description)") }
            guard case .map = value else { throw AWSError.serialization("The request body must be a CBOR map.") }
            return value
        case .query:
            return try AWSQueryProtocol.decode(call.body).parameters
        }
    }

    public static func reply(_ output: AWSValue, _ call: AWSOperationCall, _ shape: ServiceShape) -> AWSReply {
        switch call.wireProtocol {
        case .awsJSON1_0, .awsJSON1_1:
            return AWSJSONProtocol.reply(AWSJSONValue.encode(output), call.wireProtocol, requestID: call.requestID)
        case .rpcV2CBOR:
            return AWSReply(status: 200, headers: [("Content-Type", "application/cbor"), ("smithy-protocol", AWSRPCv2CBORProtocol.header),
                                                   ("x-amzn-RequestId", call.requestID)],
                            body: CBOR.encode(output))
        case .query:
            return AWSQueryProtocol.reply(action: call.operation, result: output, namespace: shape.xmlNamespace, requestID: call.requestID)
        }
    }

    public static func errorReply(_ error: AWSError, _ wire: AWSProtocol, requestID: String, _ shape: ServiceShape = ServiceShape()) -> AWSReply {
        var reply: AWSReply
        switch wire {
        case .awsJSON1_0, .awsJSON1_1:
            reply = AWSJSONProtocol.errorReply(error, wire, requestID: requestID)
        case .rpcV2CBOR:
            var headers: [(name: String, value: String)] = [("Content-Type", "application/cbor"), ("smithy-protocol", AWSRPCv2CBORProtocol.header),
                                                            ("x-amzn-RequestId", requestID)]
            if let retryAfter = error.retryAfter { headers.append(("Retry-After", String(retryAfter))) }
            reply = AWSReply(status: error.status, headers: headers, body: CBOR.encode(["__type": .string(error.code), "message": .string(error.message)]))
        case .query:
            return AWSQueryProtocol.errorReply(error, namespace: shape.xmlNamespace, requestID: requestID)
        }
        if shape.queryCompatible {
            reply.headers.append(("x-amzn-query-error", "\(error.code);\(error.status >= 500 ? "Receiver" : "Sender")"))
        }
        return reply
    }
}
