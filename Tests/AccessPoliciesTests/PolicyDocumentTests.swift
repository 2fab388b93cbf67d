@testable import AccessPolicies
import Testing

/// Policy documents in AWS's JSON shape, and located errors for what IAM would refuse.
@Suite struct PolicyDocumentTests {
    func parse(_ json: String) throws(PolicyDocument.ParseError) -> PolicyDocument {
        try PolicyDocument(json: Array(json.utf8), source: "p.json")
    }

    func error(_ json: String) -> String? {
        do {
            _ = try parse(json)
            return nil
        } catch {
            return error.description
        }
    }

    @Test func awsDocumentedShapesParse() throws {
        // The shape of AWS's CloudWatchLogsReadOnlyAccess managed policy.
        let readOnly = try parse(#"""
        {"Version": "2012-10-17",
         "Statement": [{"Sid": "CloudWatchLogsReadOnlyAccess", "Effect": "Allow",
           "Action": ["logs:Describe*", "logs:Get*", "logs:List*", "logs:StartQuery", "logs:StopQuery", "logs:TestMetricFilter",
                      "logs:FilterLogEvents", "logs:StartLiveTail", "logs:StopLiveTail", "cloudwatch:GenerateQuery"],
           "Resource": "*"}]}
        """#)
        #expect(readOnly.version == "2012-10-17")
        #expect(readOnly.statements.count == 1)
        #expect(readOnly.statements[0].sid == "CloudWatchLogsReadOnlyAccess")
        #expect(readOnly.statements[0].actions.count == 10)
        let single = try parse(#"{"Statement": {"Effect": "Deny", "NotAction": "logs:Get*", "NotResource": ["arn:aws:logs:*:*:log-group:/a:*"]}}"#)
        #expect(single.statements[0].effect == .deny && single.statements[0].actionsNegated && single.statements[0].resourcesNegated)
    }

    @Test func errorsNameTheElement() {
        #expect(error("[1]") == "p.json: a policy document is a JSON object with Version and Statement")
        #expect(error("{") != nil)
        #expect(error(#"{"Version":"2020-01-01","Statement":[]}"#) == #"p.json: Version: must be "2012-10-17" (or the older "2008-10-17")"#)
        #expect(error(#"{"Statement":[]}"#) == "p.json: Statement: must hold at least one statement")
        #expect(error(#"{"Statment":[]}"#)?.contains("Statment: unknown element") == true)
        let base = #"{"Effect":"Allow","Action":"logs:GetLogEvents","Resource":"*"}"#
        #expect(error(#"{"Statement":[\#(base),{"Effect":"Permit","Action":"*","Resource":"*"}]}"#) == #"p.json: Statement[1].Effect: 'Permit' is neither "Allow" nor "Deny""#)
        #expect(error(#"{"Statement":[{"Effect":"Allow","Resource":"*"}]}"#) == "p.json: Statement[0]: needs Action or NotAction")
        #expect(error(#"{"Statement":[{"Effect":"Allow","Action":"*","NotAction":"x:y","Resource":"*"}]}"#) == "p.json: Statement[0].NotAction: a statement has Action or NotAction, not both")
        #expect(error(#"{"Statement":[{"Effect":"Allow","Action":"PutLogEvents","Resource":"*"}]}"#)?.hasPrefix("p.json: Statement[0].Action[0]: 'PutLogEvents' is not SERVICE:ACTION") == true)
        #expect(error(#"{"Statement":[{"Effect":"Allow","Action":"logs:*"}]}"#)?.hasPrefix("p.json: Statement[0]: needs Resource or NotResource") == true)
        #expect(error(#"{"Statement":[{"Effect":"Allow","Action":"logs:*","Resource":"/app/*"}]}"#)?.hasPrefix("p.json: Statement[0].Resource[0]: '/app/*' is neither") == true)
        #expect(error(#"{"Statement":[{"Effect":"Allow","Action":"logs:*","Resource":"*","Principal":"*"}]}"#)?.contains("Principal: an identity policy names no principal") == true)
        #expect(error(#"{"Statement":[{"Effect":"Allow","Action":"logs:*","Resource":"*","Condition":{"StringSorta":{"a":"b"}}}]}"#)?
            .hasPrefix("p.json: Statement[0].Condition.StringSorta: unknown condition operator") == true)
        #expect(error(#"{"Statement":[{"Effect":"Allow","Action":"logs:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.300/8"}}}]}"#)
            == "p.json: Statement[0].Condition.IpAddress.aws:SourceIp: '10.0.0.300/8' is not an IP address or CIDR range")
        #expect(error(#"{"Statement":[{"Effect":"Allow","Action":[],"Resource":"*"}]}"#) == "p.json: Statement[0].Action: must not be empty")
    }

    @Test func wildcardMatching() {
        #expect(Wildcard("a*b?c").matches("aXYZbQc"))
        #expect(Wildcard("a*b?c").matches("abQc"))
        #expect(!Wildcard("a*b?c").matches("abc"))
        #expect(Wildcard("*").matches(""))
        #expect(Wildcard("**a**").matches("xxa"))
        #expect(!Wildcard("abc").matches("ab"))
        #expect(Wildcard("LOGS:get*", ignoreCase: true).matches("logs:GetLogEvents"))
        #expect(!Wildcard("LOGS:get*").matches("logs:GetLogEvents"))
        // Long hostile patterns stay polynomial (no backtracking blow-up).
        let text = String(repeating: "a", count: 1500)
        #expect(!Wildcard(String(repeating: "*a", count: 200) + "b").matches(text))
        #expect(Wildcard("/app/*").covers(prefix: "/app/web"))
        #expect(Wildcard("/app*").covers(prefix: "/app/"))
        #expect(!Wildcard("/app/*").covers(prefix: "/ap"))
        #expect(!Wildcard("/app/*x").covers(prefix: "/app/"))
        #expect(Wildcard("/app/*x").intersects(prefix: "/app/"))
        #expect(Wildcard("/a?p").intersects(prefix: "/a"))
        #expect(!Wildcard("/b*").intersects(prefix: "/a"))
        #expect(Wildcard("a:*:g:/s*").intersects(prefix: "a:r:g:/w"))
        #expect(!Wildcard("a:*:g:/s*").intersects(prefix: "a:r:g:/w", continuationExcluding: UInt8(ascii: ":")))
        #expect(Wildcard("a:*:g:/w*").intersects(prefix: "a:r:g:/w", continuationExcluding: UInt8(ascii: ":")))
    }

    @Test func ipRanges() {
        #expect(IPRange("10.0.0.0/8")!.contains(IPAddressBytes("10.255.0.1")!))
        #expect(!IPRange("10.0.0.0/8")!.contains(IPAddressBytes("11.0.0.1")!))
        #expect(IPRange("192.168.1.7")!.contains(IPAddressBytes("192.168.1.7")!))
        #expect(IPRange("::1/128")!.contains(IPAddressBytes("::1")!))
        #expect(IPRange("2001:db8::/32")!.contains(IPAddressBytes("2001:db8:ffff::1")!))
        #expect(IPRange("0.0.0.0/0")!.contains(IPAddressBytes("8.8.8.8")!))
        #expect(!IPRange("0.0.0.0/0")!.contains(IPAddressBytes("::1")!))
        #expect(IPRange("127.0.0.0/8")!.contains(IPAddressBytes("::ffff:127.0.0.1")!))
        #expect(IPRange("10.0.0.0/33") == nil)
        #expect(IPAddressBytes("1.2.3") == nil)
        #expect(IPAddressBytes("1::2::3") == nil)
    }
}
