import AccessPolicies

extension AWSService {
    /// The service's prefix in IAM action names. It is the SigV4 signing name except where AWS
    /// spells them differently (CloudWatch signs as `monitoring`, its actions are `cloudwatch:…`).
    public var actionPrefix: String { Self.iamActionPrefixes[signingName] ?? signingName }

    static var iamActionPrefixes: [String: String] { ["monitoring": "cloudwatch"] }

    public func accessRequest(for call: AWSOperationCall) -> AccessRequest {
        AccessRequest(action: "\(actionPrefix):\(call.operation)", resources: [.any])
    }
}

extension AWSPrincipal {
    /// The policy subject of this principal: its access key id, or `anonymous`.
    public var policySubject: String { accessKeyID ?? AccessPolicySet.anonymous }
}
