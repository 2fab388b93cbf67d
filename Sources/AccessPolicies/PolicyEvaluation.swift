/// What a caller asks to do: one action on one or more resources, with the request's context
/// (source address, TLS, time) for conditions.
public struct AccessRequest: Sendable, Equatable, CustomStringConvertible {
    /// `logs:PutLogEvents`, `cloudwatch:GetDashboard`, …
    public var action: String
    /// Every resource the action touches; the request is allowed only when each one is.
    public var resources: [AccessResource]

    public init(action: String, resources: [AccessResource]) {
        self.action = action
        self.resources = resources
    }

    public init(action: String, resource: String) {
        self.init(action: action, resources: [.named(resource)])
    }

    public var description: String { "\(action) on \(resources.map(\.description).joined(separator: ", "))" }
}

/// A resource a request touches: one ARN (possibly with other spellings of the same thing), or
/// every resource whose ARN is a prefix followed by a name without `:` (a query over all log
/// groups under `/app/`; names of log groups and dashboards hold no `:`).
public struct AccessResource: Sendable, Equatable, CustomStringConvertible {
    /// The ARN (or prefix) messages name.
    public var arn: String
    /// Other ARNs naming the same resource: CloudWatch Logs spells a log group both
    /// `…:log-group:NAME` and `…:log-group:NAME:*`, and policies use either.
    public var aliases: [String]
    /// True when this stands for every ARN made of ``arn`` and a name without `:`.
    public var isPrefix: Bool

    public static func named(_ arn: String, aliases: [String] = []) -> AccessResource {
        AccessResource(arn: arn, aliases: aliases, isPrefix: false)
    }

    public static func every(startingWith prefix: String) -> AccessResource {
        AccessResource(arn: prefix, aliases: [], isPrefix: true)
    }

    /// `*`: actions that name no resource (IAM's "resource: *").
    public static let any = AccessResource.named("*")

    public var description: String { isPrefix ? arn + "*" : arn }

    /// Whether `pattern` matches every ARN this stands for.
    func allCovered(by pattern: Wildcard) -> Bool {
        if isPrefix { return pattern.covers(prefix: arn) }
        return pattern.matches(arn) || aliases.contains { pattern.matches($0) }
    }

    /// Whether `pattern` matches at least one ARN this stands for.
    func someCovered(by pattern: Wildcard) -> Bool {
        if isPrefix { return pattern.intersects(prefix: arn, continuationExcluding: UInt8(ascii: ":")) }
        return pattern.matches(arn) || aliases.contains { pattern.matches($0) }
    }
}

/// The request context conditions read. Keys compare without regard to case, as IAM's do.
public struct AccessContext: Sendable {
    private var entries: [String: [String]] = [:]

    public init(_ values: [String: [String]] = [:]) {
        for (key, value) in values { entries[key.lowercased()] = value }
    }

    public func values(_ key: String) -> [String]? { entries[key.lowercased()] }

    public subscript(key: String) -> [String]? {
        get { entries[key.lowercased()] }
        set { entries[key.lowercased()] = newValue }
    }
}

/// The outcome of evaluating a request, with what decided it.
public enum AccessDecision: Sendable, Equatable {
    case allowed
    /// A Deny statement matched (`statement` names its policy and Sid or index).
    case explicitlyDenied(resource: String, statement: String)
    /// No Allow statement matched this resource.
    case implicitlyDenied(resource: String)

    public var isAllowed: Bool { self == .allowed }
}

extension PolicyStatement {
    func appliesTo(action: String) -> Bool {
        let named = actions.contains { $0.matches(action) }
        return actionsNegated ? !named : named
    }

    /// An Allow covers a resource only when it allows all of it; a Deny applies when it refuses any of it.
    func applies(to resource: AccessResource) -> Bool {
        switch (effect, resourcesNegated) {
        case (.allow, false): resources.contains { resource.allCovered(by: $0) }
        case (.allow, true): !resources.contains { resource.someCovered(by: $0) }
        case (.deny, false): resources.contains { resource.someCovered(by: $0) }
        case (.deny, true): !resources.contains { resource.allCovered(by: $0) }
        }
    }
}

/// Evaluates identity-based policies the way IAM does: a request is denied unless some statement
/// allows it (default deny), and any matching Deny overrides every Allow (explicit deny wins).
public enum PolicyEvaluator {
    public static func evaluate(_ request: AccessRequest, policies: [PolicyDocument], context: AccessContext = AccessContext()) -> AccessDecision {
        var firstImplicit: AccessDecision?
        // A request without resources is about the action alone: IAM's resource "*".
        let resources = request.resources.isEmpty ? [AccessResource.any] : request.resources
        for resource in resources {
            var allowed = false
            for policy in policies {
                for (index, statement) in policy.statements.enumerated() {
                    guard statement.appliesTo(action: request.action), statement.applies(to: resource),
                          statement.conditions.allSatisfy({ $0.holds(in: context) }) else { continue }
                    switch statement.effect {
                    case .deny:
                        return .explicitlyDenied(resource: resource.description, statement: "\(policy.source) \(statement.sid.map { "statement \($0)" } ?? "Statement[\(index)]")")
                    case .allow:
                        allowed = true
                    }
                }
            }
            if !allowed && firstImplicit == nil { firstImplicit = .implicitlyDenied(resource: resource.description) }
        }
        return firstImplicit ?? .allowed
    }

    /// AWS's wording of a refusal, for `AccessDeniedException` messages.
    public static func message(_ decision: AccessDecision, principal: String, action: String) -> String {
        switch decision {
        case .allowed:
            return "User: \(principal) is authorized to perform: \(action)"
        case .explicitlyDenied(let resource, _):
            return "User: \(principal) is not authorized to perform: \(action) on resource: \(resource) with an explicit deny in an identity-based policy"
        case .implicitlyDenied(let resource):
            return "User: \(principal) is not authorized to perform: \(action) on resource: \(resource) because no identity-based policy allows the \(action) action"
        }
    }
}

/// The policies attached to each subject (an access key id, or the names `anonymous` and `token`
/// for unsigned loopback requests and the HTTP token), evaluated per request.
public struct AccessPolicySet: Sendable {
    public var attachments: [String: [PolicyDocument]]

    public init(attachments: [String: [PolicyDocument]] = [:]) {
        self.attachments = attachments
    }

    /// The subject for unsigned requests from loopback addresses.
    public static let anonymous = "anonymous"
    /// The subject for requests that present the HTTP server's token.
    public static let token = "token"

    /// A subject with nothing attached is refused everything (default deny).
    public func evaluate(subject: String, _ request: AccessRequest, context: AccessContext = AccessContext()) -> AccessDecision {
        PolicyEvaluator.evaluate(request, policies: attachments[subject] ?? [], context: context)
    }
}
