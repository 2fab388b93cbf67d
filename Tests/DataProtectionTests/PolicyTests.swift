import DataProtection
import FilterPatterns
import Foundation
import Testing

@Suite struct PolicyTests {
    static let email = "arn:aws:dataprotection::aws:data-identifier/EmailAddress"

    static func policy(identifiers: [String] = [email], second: [String]? = nil, custom: String = "", audit: String = "{}",
                       version: String = "2021-06-01", deidentify: String = #"{"MaskConfig": {}}"#) -> String {
        func list(_ ids: [String]) -> String { "[" + ids.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }
        return """
        {"Name": "p", "Description": "", "Version": "\(version)",
         "Configuration": {"CustomDataIdentifier": [\(custom)]},
         "Statement": [
          {"Sid": "audit", "DataIdentifier": \(list(identifiers)), "Operation": {"Audit": {"FindingsDestination": \(audit)}}},
          {"Sid": "redact", "DataIdentifier": \(list(second ?? identifiers)), "Operation": {"Deidentify": \(deidentify)}}]}
        """
    }

    static func decode(_ text: String) throws -> DataProtectionPolicy {
        try JSONDecoder().decode(DataProtectionPolicy.self, from: Data(text.utf8))
    }

    static func error(_ text: String) -> PolicyError? {
        do { _ = try decode(text); return nil } catch let e as PolicyError { return e } catch { return nil }
    }

    @Test func awsExamplePolicyDecodes() throws {
        let policy = try Self.decode(Self.policy(
            identifiers: [Self.email, "arn:aws:dataprotection::aws:data-identifier/CreditCardNumber", "EmployeeId"],
            custom: #"{"Name": "EmployeeId", "Regex": "EmployeeId-\\d{9}"}"#,
            audit: #"{"CloudWatchLogs": {"LogGroup": "/findings"}}"#))
        #expect(policy.dataIdentifiers.count == 3)
        #expect(policy.audit.logGroup == "/findings")
        let scanner = DataProtectionScanner(policy: policy)
        #expect(scanner.identifierNames == ["EmailAddress", "CreditCardNumber", "EmployeeId"])
        #expect(scanner.masked("EmployeeId-123456789 paid with 4111111111111111, mail a@b.io")
                == "******************** paid with ****************, mail ******")
    }

    @Test func customRegexMatchesLeftmostLongest() throws {
        let policy = try Self.decode(Self.policy(identifiers: ["Order"], custom: #"{"Name": "Order", "Regex": "ord-[0-9]+|ord-[0-9]+x"}"#))
        #expect(DataProtectionScanner(policy: policy).masked("ord-12x ord-3 and ord-") == "******* ***** and ord-")
    }

    @Test func wrongVersionIsLocated() {
        let e = Self.error(Self.policy(version: "2012-10-17"))
        #expect(e?.codingPath == ["Version"])
        #expect(e?.message.contains("2012-10-17") == true)
    }

    @Test func statementsMustMatch() {
        let e = Self.error(Self.policy(second: ["arn:aws:dataprotection::aws:data-identifier/IpAddress"]))
        #expect(e?.codingPath == ["Statement", "Index 1", "DataIdentifier"])
    }

    @Test func unknownManagedIdentifierSuggestsTheClosest() {
        let e = Self.error(Self.policy(identifiers: ["arn:aws:dataprotection::aws:data-identifier/EmailAdress"]))
        #expect(e?.codingPath == ["Statement", "Index 0", "DataIdentifier", "Index 0"])
        #expect(e?.suggestion == Self.email)
    }

    @Test func badCustomRegexPointsIntoIt() {
        let e = Self.error(Self.policy(identifiers: ["X"], custom: #"{"Name": "X", "Regex": "ab(c)"}"#))
        #expect(e?.codingPath == ["Configuration", "CustomDataIdentifier", "Index 0", "Regex"])
        #expect(e?.columnInValue == 3)
    }

    @Test func customNameCannotShadowAManagedOne() {
        let e = Self.error(Self.policy(identifiers: ["EmailAddress"], custom: #"{"Name": "EmailAddress", "Regex": "x"}"#))
        #expect(e?.codingPath == ["Configuration", "CustomDataIdentifier", "Index 0", "Name"])
    }

    @Test func unknownKeysAndNonEmptyMaskConfigAreRejected() {
        #expect(Self.error(Self.policy(audit: #"{"CloudWatchLog": {"LogGroup": "x"}}"#))?.suggestion == "CloudWatchLogs")
        #expect(Self.error(Self.policy(deidentify: ##"{"MaskConfig": {"Char": "#"}}"##))?.codingPath.last == "Char")
        #expect(Self.error(Self.policy(deidentify: #"{}"#))?.message.contains("MaskConfig") == true)
    }

    @Test func orderOfOperationsFollowsCloudWatch() {
        let swapped = """
        {"Version": "2021-06-01", "Statement": [
          {"DataIdentifier": ["\(Self.email)"], "Operation": {"Deidentify": {"MaskConfig": {}}}},
          {"DataIdentifier": ["\(Self.email)"], "Operation": {"Audit": {"FindingsDestination": {}}}}]}
        """
        #expect(Self.error(swapped)?.codingPath == ["Statement", "Index 0", "Operation"])
        let single = #"{"Version": "2021-06-01", "Statement": [{"DataIdentifier": ["\#(Self.email)"], "Operation": {"Audit": {}}}]}"#
        #expect(Self.error(single)?.message.contains("1 statement") == true)
    }
}

@Suite struct CloudWatchRegexTests {
    func spans(_ pattern: String, _ text: String) throws -> [String] {
        let regex = try CloudWatchRegex(pattern)
        let bytes = Array(text.utf8)
        var out: [String] = []
        bytes.withUnsafeBytes { raw in
            var from = 0
            while let m = regex.firstMatch(in: raw, from: from) {
                out.append(String(decoding: bytes[m], as: UTF8.self))
                from = m.upperBound
            }
        }
        return out
    }

    @Test func leftmostLongestSpans() throws {
        #expect(try spans("a+", "baaab aa") == ["aaa", "aa"])
        #expect(try spans("abcd|bc", "xabcd") == ["abcd"])
        #expect(try spans("\\d{3}-\\d{4}", "call 555-1234 or 555-12345") == ["555-1234", "555-1234"])
        #expect(try spans("^id", "id id") == ["id"])
        #expect(try spans("end$", "end end") == ["end"])
        #expect(try spans("x*", "aaa") == [])
        #expect(try spans("literal", "a literal and literal") == ["literal", "literal"])
        #expect(try spans("[a-c]+d?", "zzabcdab") == ["abcd", "ab"])
    }

    @Test("a match that can only be known longest by reading on (a|a[a-z]*y) keeps masking bounded, and fails closed")
    func quadraticIterationBounded() throws {
        // Each 'a' matches, yet a thread of the second branch lives to the end of the text: without
        // a bound, finding every match rereads the rest of the text each time (a 256 KiB line: hours).
        let regex = try CloudWatchRegex("a|a[a-z]*y")
        let text = [UInt8](repeating: UInt8(ascii: "a"), count: 30_000)
        let start = ContinuousClock.now
        let found = text.withUnsafeBytes { regex.allMatches(in: $0) }
        #expect(ContinuousClock.now - start < .seconds(10))
        let rest = try #require(found.unscannedFrom)
        #expect(found.matches.allSatisfy { $0.count == 1 } && found.matches.count == rest)
        // Below the bound the answer is exact; past it the rest of the message is masked.
        let small = Array("aaaa".utf8).withUnsafeBytes { regex.allMatches(in: $0, workLimit: 6) }
        #expect(small.matches == [0..<1] && small.unscannedFrom == 1)
        let exact = Array("xaby aa".utf8).withUnsafeBytes { regex.allMatches(in: $0) }
        #expect(exact.matches == [1..<4, 5..<6, 6..<7] && exact.unscannedFrom == nil)
        let policy = try JSONDecoder().decode(DataProtectionPolicy.self, from: Data("""
            {"Version": "2021-06-01", "Configuration": {"CustomDataIdentifier": [{"Name": "C", "Regex": "a|a[a-z]*y"}]},
             "Statement": [{"DataIdentifier": ["C"], "Operation": {"Audit": {"FindingsDestination": {}}}},
                           {"DataIdentifier": ["C"], "Operation": {"Deidentify": {"MaskConfig": {}}}}]}
            """.utf8))
        let masked = DataProtectionScanner(policy: policy).masked("b " + String(repeating: "a", count: 30_000))
        #expect(masked == "b " + String(repeating: "*", count: 30_000))
    }

    @Test func linearOnHostileInput() throws {
        // (a|aa)*b shaped inputs are what backtracking engines choke on; this one is an NFA.
        let regex = try CloudWatchRegex("a*a*a*a*a*a*a*a*b")
        let text = [UInt8](repeating: UInt8(ascii: "a"), count: 20_000)
        let start = ContinuousClock.now
        text.withUnsafeBytes { #expect(regex.firstMatch(in: $0) == nil) }
        #expect(ContinuousClock.now - start < .seconds(5))
    }
}

