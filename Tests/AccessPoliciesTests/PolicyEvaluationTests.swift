import AccessPolicies
import Testing

/// IAM's evaluation logic for identity policies: default deny, explicit allow, explicit deny wins,
/// wildcards in actions and resources, NotAction/NotResource, conditions.
@Suite struct PolicyEvaluationTests {
    static let group = "arn:aws:logs:us-east-1:000000000000:log-group:"

    func policy(_ json: String, _ name: String = "test") throws -> PolicyDocument {
        try PolicyDocument(json: Array(json.utf8), source: name)
    }

    func logGroup(_ name: String) -> AccessResource {
        .named(Self.group + name, aliases: [Self.group + name + ":*"])
    }

    func stream(_ group: String, _ stream: String) -> AccessResource {
        .named(Self.group + group + ":log-stream:" + stream)
    }

    @Test func defaultDenyWithoutPolicies() {
        let decision = PolicyEvaluator.evaluate(AccessRequest(action: "logs:PutLogEvents", resources: [stream("/app", "a")]), policies: [])
        #expect(decision == .implicitlyDenied(resource: Self.group + "/app:log-stream:a"))
    }

    @Test func explicitAllowWithActionWildcardIgnoringCase() throws {
        let p = try policy(#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"logs:Describe*","Resource":"*"}}"#)
        #expect(PolicyEvaluator.evaluate(AccessRequest(action: "logs:DescribeLogGroups", resource: "*"), policies: [p]).isAllowed)
        #expect(PolicyEvaluator.evaluate(AccessRequest(action: "LOGS:describelogstreams", resource: "*"), policies: [p]).isAllowed)
        #expect(!PolicyEvaluator.evaluate(AccessRequest(action: "logs:PutLogEvents", resource: "*"), policies: [p]).isAllowed)
        #expect(!PolicyEvaluator.evaluate(AccessRequest(action: "cloudwatch:DescribeAlarms", resource: "*"), policies: [p]).isAllowed)
    }

    @Test func explicitDenyWinsOverAllowInAnyPolicy() throws {
        let everything = try policy(#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#, "admin")
        let noSecrets = try policy(#"{"Statement":[{"Sid":"NoSecrets","Effect":"Deny","Action":"logs:*","Resource":"arn:aws:logs:*:*:log-group:/secret/*"}]}"#, "guard")
        let request = AccessRequest(action: "logs:FilterLogEvents", resources: [logGroup("/secret/keys")])
        #expect(PolicyEvaluator.evaluate(request, policies: [everything, noSecrets]) == .explicitlyDenied(resource: Self.group + "/secret/keys", statement: "guard statement NoSecrets"))
        #expect(PolicyEvaluator.evaluate(request, policies: [noSecrets, everything]) != .allowed)
        #expect(PolicyEvaluator.evaluate(AccessRequest(action: "logs:FilterLogEvents", resources: [logGroup("/app/web")]), policies: [everything, noSecrets]).isAllowed)
    }

    @Test func resourceWildcardsAreCaseSensitiveAndSpanSeparators() throws {
        let p = try policy(#"{"Statement":[{"Effect":"Allow","Action":"logs:GetLogEvents","Resource":"arn:aws:logs:*:*:log-group:/app/*"}]}"#)
        #expect(PolicyEvaluator.evaluate(AccessRequest(action: "logs:GetLogEvents", resources: [stream("/app/web/v2", "i-1")]), policies: [p]).isAllowed)
        #expect(!PolicyEvaluator.evaluate(AccessRequest(action: "logs:GetLogEvents", resources: [stream("/App/web", "i-1")]), policies: [p]).isAllowed)
        #expect(!PolicyEvaluator.evaluate(AccessRequest(action: "logs:GetLogEvents", resources: [stream("/apple", "i-1")]), policies: [p]).isAllowed)
        let single = try policy(#"{"Statement":[{"Effect":"Allow","Action":"logs:GetLogEvents","Resource":"arn:aws:logs:us-east-1:000000000000:log-group:/app/web-?"}]}"#)
        #expect(PolicyEvaluator.evaluate(AccessRequest(action: "logs:GetLogEvents", resources: [logGroup("/app/web-1")]), policies: [single]).isAllowed)
        #expect(!PolicyEvaluator.evaluate(AccessRequest(action: "logs:GetLogEvents", resources: [logGroup("/app/web-12")]), policies: [single]).isAllowed)
    }

    @Test func logGroupArnSpellingsAreTheSameGroup() throws {
        let withStar = try policy(#"{"Statement":[{"Effect":"Allow","Action":"logs:DeleteLogGroup","Resource":"arn:aws:logs:*:*:log-group:/app:*"}]}"#)
        let without = try policy(#"{"Statement":[{"Effect":"Allow","Action":"logs:DeleteLogGroup","Resource":"arn:aws:logs:*:*:log-group:/app"}]}"#)
        let request = AccessRequest(action: "logs:DeleteLogGroup", resources: [logGroup("/app")])
        #expect(PolicyEvaluator.evaluate(request, policies: [withStar]).isAllowed)
        #expect(PolicyEvaluator.evaluate(request, policies: [without]).isAllowed)
    }

    @Test func everyResourceMustBeAllowed() throws {
        let p = try policy(#"{"Statement":[{"Effect":"Allow","Action":"logs:StartQuery","Resource":"arn:aws:logs:*:*:log-group:/app/*"}]}"#)
        #expect(PolicyEvaluator.evaluate(AccessRequest(action: "logs:StartQuery", resources: [logGroup("/app/a"), logGroup("/app/b")]), policies: [p]).isAllowed)
        #expect(PolicyEvaluator.evaluate(AccessRequest(action: "logs:StartQuery", resources: [logGroup("/app/a"), logGroup("/ops")]), policies: [p])
            == .implicitlyDenied(resource: Self.group + "/ops"))
    }

    @Test func prefixSetsNeedAnAllowCoveringAllOfThemAndAnyDenyTouchingThem() throws {
        let app = try policy(#"{"Statement":[{"Effect":"Allow","Action":"logs:StartQuery","Resource":"arn:aws:logs:*:*:log-group:/app/*"}]}"#)
        #expect(PolicyEvaluator.evaluate(AccessRequest(action: "logs:StartQuery", resources: [.every(startingWith: Self.group + "/app/")]), policies: [app]).isAllowed)
        #expect(PolicyEvaluator.evaluate(AccessRequest(action: "logs:StartQuery", resources: [.every(startingWith: Self.group + "/app/web")]), policies: [app]).isAllowed)
        // "/ap" also reaches /apple: not all of it is allowed.
        #expect(!PolicyEvaluator.evaluate(AccessRequest(action: "logs:StartQuery", resources: [.every(startingWith: Self.group + "/ap")]), policies: [app]).isAllowed)
        #expect(!PolicyEvaluator.evaluate(AccessRequest(action: "logs:StartQuery", resources: [.every(startingWith: Self.group)]), policies: [app]).isAllowed)
        let all = try policy(#"{"Statement":[{"Effect":"Allow","Action":"logs:*","Resource":"*"},{"Effect":"Deny","Action":"logs:*","Resource":"arn:aws:logs:*:*:log-group:/app/secret*"}]}"#)
        #expect(!PolicyEvaluator.evaluate(AccessRequest(action: "logs:StartQuery", resources: [.every(startingWith: Self.group + "/app/")]), policies: [all]).isAllowed)
        #expect(PolicyEvaluator.evaluate(AccessRequest(action: "logs:StartQuery", resources: [.every(startingWith: Self.group + "/app/web")]), policies: [all]).isAllowed)
    }

    @Test func notActionAndNotResource() throws {
        let p = try policy(#"""
        {"Statement":[
          {"Effect":"Allow","NotAction":["logs:Delete*"],"Resource":"*"},
          {"Effect":"Deny","Action":"logs:*","NotResource":"arn:aws:logs:*:*:log-group:/app/*"}]}
        """#)
        #expect(PolicyEvaluator.evaluate(AccessRequest(action: "logs:GetLogEvents", resources: [logGroup("/app/a")]), policies: [p]).isAllowed)
        #expect(PolicyEvaluator.evaluate(AccessRequest(action: "logs:DeleteLogGroup", resources: [logGroup("/app/a")]), policies: [p]) == .implicitlyDenied(resource: Self.group + "/app/a"))
        if case .explicitlyDenied = PolicyEvaluator.evaluate(AccessRequest(action: "logs:GetLogEvents", resources: [logGroup("/ops")]), policies: [p]) {} else {
            Issue.record("a Deny with NotResource must refuse what lies outside it")
        }
    }

    @Test func conditionsOnSourceAddressTransportAndTime() throws {
        let p = try policy(#"""
        {"Statement":[{"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"*",
          "Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]},"Bool":{"aws:SecureTransport":"true"},
                       "DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}]}
        """#)
        let request = AccessRequest(action: "logs:PutLogEvents", resource: "*")
        func context(_ ip: String, tls: Bool = true, time: String = "2026-11-30T12:00:00Z") -> AccessContext {
            AccessContext(["aws:SourceIp": [ip], "aws:SecureTransport": [tls ? "true" : "false"], "aws:CurrentTime": [time]])
        }
        #expect(PolicyEvaluator.evaluate(request, policies: [p], context: context("10.1.2.3")).isAllowed)
        #expect(PolicyEvaluator.evaluate(request, policies: [p], context: context("2001:db8:1::7")).isAllowed)
        #expect(!PolicyEvaluator.evaluate(request, policies: [p], context: context("192.168.0.1")).isAllowed)
        #expect(!PolicyEvaluator.evaluate(request, policies: [p], context: context("10.1.2.3", tls: false)).isAllowed)
        #expect(!PolicyEvaluator.evaluate(request, policies: [p], context: context("10.1.2.3", time: "2031-01-01T00:00:00Z")).isAllowed)
        // A missing key makes a positive condition false.
        #expect(!PolicyEvaluator.evaluate(request, policies: [p], context: AccessContext()).isAllowed)
    }

    @Test func negatedIfExistsAndNullConditionsOnMissingKeys() throws {
        let deny = try policy(#"""
        {"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},
          {"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"aws:SourceIp":"127.0.0.0/8"}}}]}
        """#)
        let request = AccessRequest(action: "logs:GetLogEvents", resource: "*")
        #expect(PolicyEvaluator.evaluate(request, policies: [deny], context: AccessContext(["aws:sourceip": ["127.0.0.1"]])).isAllowed)
        #expect(!PolicyEvaluator.evaluate(request, policies: [deny], context: AccessContext(["aws:SourceIp": ["8.8.8.8"]])).isAllowed)
        // Negated operators hold when the key is absent: the deny applies.
        #expect(!PolicyEvaluator.evaluate(request, policies: [deny], context: AccessContext()).isAllowed)
        let ifExists = try policy(#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringLikeIfExists":{"aws:userid":"AKIA*"}}}]}"#)
        #expect(PolicyEvaluator.evaluate(request, policies: [ifExists]).isAllowed)
        #expect(PolicyEvaluator.evaluate(request, policies: [ifExists], context: AccessContext(["aws:userid": ["AKIAX"]])).isAllowed)
        #expect(!PolicyEvaluator.evaluate(request, policies: [ifExists], context: AccessContext(["aws:userid": ["ASIAX"]])).isAllowed)
        let null = try policy(#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Null":{"aws:userid":"true"}}}]}"#)
        #expect(PolicyEvaluator.evaluate(request, policies: [null]).isAllowed)
        #expect(!PolicyEvaluator.evaluate(request, policies: [null], context: AccessContext(["aws:userid": ["AKIAX"]])).isAllowed)
    }

    @Test func subjectsWithoutPoliciesAreRefused() throws {
        let set = AccessPolicySet(attachments: ["AKIAREADER": [try policy(#"{"Statement":{"Effect":"Allow","Action":"logs:Get*","Resource":"*"}}"#)]])
        #expect(set.evaluate(subject: "AKIAREADER", AccessRequest(action: "logs:GetLogEvents", resource: "*")).isAllowed)
        #expect(!set.evaluate(subject: "AKIAOTHER", AccessRequest(action: "logs:GetLogEvents", resource: "*")).isAllowed)
        #expect(!set.evaluate(subject: AccessPolicySet.anonymous, AccessRequest(action: "logs:GetLogEvents", resource: "*")).isAllowed)
    }

    @Test func messagesInAWSWording() {
        let implicit = PolicyEvaluator.message(.implicitlyDenied(resource: "arn:x"), principal: "arn:aws:iam::000000000000:user/AKIA1", action: "logs:GetLogEvents")
        #expect(implicit == "User: arn:aws:iam::000000000000:user/AKIA1 is not authorized to perform: logs:GetLogEvents on resource: arn:x because no identity-based policy allows the logs:GetLogEvents action")
        let explicit = PolicyEvaluator.message(.explicitlyDenied(resource: "arn:x", statement: "p"), principal: "u", action: "logs:GetLogEvents")
        #expect(explicit.hasSuffix("with an explicit deny in an identity-based policy"))
    }
}
