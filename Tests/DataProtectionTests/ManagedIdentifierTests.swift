import DataProtection
import Foundation
import Testing

/// Realistic positives (with the exact text that must be found) and near-miss negatives for every
/// managed identifier. A negative is something that looks like the identifier but is not one.
struct IdentifierCase: Sendable, CustomTestStringConvertible {
    var identifier: String
    /// Lines and, for positives, the substrings that must be found in them (in order).
    var positives: [(line: String, found: [String])]
    var negatives: [String]
    var testDescription: String { identifier }
}

let identifierCases: [IdentifierCase] = [
    IdentifierCase(identifier: "EmailAddress", positives: [
        ("user john.doe@example.com logged in", ["john.doe@example.com"]),
        (#"{"email":"a+tag@mail.example.co.uk","ok":true}"#, ["a+tag@mail.example.co.uk"]),
        ("mailto:jane_o-neil@sub-domain.example.org.", ["jane_o-neil@sub-domain.example.org"]),
        ("two: x@a.io, y@b.io", ["x@a.io", "y@b.io"]),
    ], negatives: [
        "user@localhost failed", "git@github", "@mention me", "name@example.c", "a..b@example.com",
        "price is 5@3.50 each", "user@-bad.example.com", "x@y.123",
    ]),
    IdentifierCase(identifier: "CreditCardNumber", positives: [
        ("charged card 4111111111111111 ok", ["4111111111111111"]),
        ("card=4111 1111 1111 1111;", ["4111 1111 1111 1111"]),
        ("mc 5500-0000-0000-0004 declined", ["5500-0000-0000-0004"]),
        ("amex 378282246310005", ["378282246310005"]),
        ("amex 3782 822463 10005", ["3782 822463 10005"]),
        ("discover 6011111111111117", ["6011111111111117"]),
        ("jcb 3530111333300000 and diners 30569309025904", ["3530111333300000", "30569309025904"]),
        ("mc2 2221000000000009", ["2221000000000009"]),
    ], negatives: [
        "card 4111111111111112 fails luhn", "order 1234567890123456", "id 41111111111111110000",
        "4111-1111-1111-111", "ts 1764000000.1234567", "card 41111 11111 111111", "9111111111111111",
        "v1.4111111111111111", "x4111111111111111",
    ]),
    IdentifierCase(identifier: "CreditCardSecurityCode", positives: [
        ("cvv: 123", ["123"]), (#"{"cvc":"4567"}"#, ["4567"]), ("CVV2=321 sent", ["321"]), ("security code 999", ["999"]),
    ], negatives: ["cvv: 12", "cvv: 12345", "service 123", "cvvx 123", "code 123"]),
    IdentifierCase(identifier: "CreditCardExpiration", positives: [
        ("exp 04/27", ["04/27"]), (#""expiry":"12/2031""#, ["12/2031"]), ("Expiration date: 01-29", ["01-29"]),
    ], negatives: ["exp 13/27", "expected 04/27", "date 04/27", "exp 04/3100", "export 04/27"]),
    IdentifierCase(identifier: "IpAddress", positives: [
        ("10.0.0.1 - - [24/Nov/2026] GET /", ["10.0.0.1"]),
        ("client=192.168.1.254:8443 ok", ["192.168.1.254"]),
        ("from 2001:db8::8a2e:370:7334 via fe80::1", ["2001:db8::8a2e:370:7334", "fe80::1"]),
        ("peer [::1]:443 closed", ["::1"]),
        ("mapped ::ffff:192.0.2.128 seen", ["::ffff:192.0.2.128"]),
        ("full 2001:0db8:0000:0000:0000:ff00:0042:8329.", ["2001:0db8:0000:0000:0000:ff00:0042:8329"]),
    ], negatives: [
        "version 1.2.3.4.5", "256.1.1.1 bad", "10.0.0 short", "at 12:30:45 done", "mac 00:1a:2b:3c:4d:5e",
        "std::cout << x", "01.02.03.04", "v10.0.0.1", "a::b::c",
    ]),
    IdentifierCase(identifier: "AwsSecretKey", positives: [
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"]),
        (#"{"SecretAccessKey":"je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"}"#, ["je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY"]),
    ], negatives: [
        "sha1 da39a3ee5e6b4b0d3255bfef95601890afd80709", "path /api/v1/users/abcdefghijklmnopqrstuvwxyzab",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYX", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKE",
        "token wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY==",
    ]),
    IdentifierCase(identifier: "AwsAccessKeyId", positives: [
        ("key AKIAIOSFODNN7EXAMPLE used", ["AKIAIOSFODNN7EXAMPLE"]), (#""AccessKeyId":"ASIAY34FZKBOKMUTVV7A""#, ["ASIAY34FZKBOKMUTVV7A"]),
    ], negatives: ["AKIAIOSFODNN7EXAMPL", "AKIAIOSFODNN7EXAMPLE1", "XAKIAIOSFODNN7EXAMPLE", "AIDAIOSFODNN7EXAMPLE", "AKIAiosfodnn7example"]),
    IdentifierCase(identifier: "OpenSshPrivateKey", positives: [
        ("key: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n-----END OPENSSH PRIVATE KEY----- done",
         ["-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n-----END OPENSSH PRIVATE KEY-----"]),
        ("cut -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNz", ["-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNz"]),
    ], negatives: ["-----BEGIN OPENSSH PUBLIC KEY-----", "BEGIN OPENSSH PRIVATE KEY", "-----BEGIN CERTIFICATE-----"]),
    IdentifierCase(identifier: "PkcsPrivateKey", positives: [
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", ["-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----"]),
        ("pem=-----BEGIN PRIVATE KEY-----MIIEvQ-----END PRIVATE KEY-----;", ["-----BEGIN PRIVATE KEY-----MIIEvQ-----END PRIVATE KEY-----"]),
    ], negatives: ["-----BEGIN PUBLIC KEY-----\nMIIB", "-----BEGIN OPENSSH PRIVATE KEY-----x", "-----BEGIN CERTIFICATE-----"]),
    IdentifierCase(identifier: "PgpPrivateKey", positives: [
        ("-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----", ["-----BEGIN PGP PRIVATE KEY BLOCK-----\nlQOYBF\n-----END PGP PRIVATE KEY BLOCK-----"]),
    ], negatives: ["-----BEGIN PGP PUBLIC KEY BLOCK-----", "-----BEGIN PGP SIGNATURE-----"]),
    IdentifierCase(identifier: "PuttyPrivateKey", positives: [
        ("PuTTY-User-Key-File-2: ssh-rsa\nPrivate-Lines: 1\nAAAA\nPrivate-MAC: 8a9f3c tail", ["PuTTY-User-Key-File-2: ssh-rsa\nPrivate-Lines: 1\nAAAA\nPrivate-MAC: 8a9f3c"]),
    ], negatives: ["PuTTY-User-Key-File: x", "PuTTY release 0.79"]),
    IdentifierCase(identifier: "BankAccountNumber-DE", positives: [
        ("iban DE89370400440532013000 ok", ["DE89370400440532013000"]), ("IBAN: DE89 3704 0044 0532 0130 00.", ["DE89 3704 0044 0532 0130 00"]),
    ], negatives: ["DE89370400440532013001", "DE8937040044053201300", "XDE89370400440532013000", "DE89 3704 0044 0532 013000"]),
    IdentifierCase(identifier: "BankAccountNumber-GB", positives: [
        ("GB29NWBK60161331926819", ["GB29NWBK60161331926819"]), ("to GB29 NWBK 6016 1331 9268 19", ["GB29 NWBK 6016 1331 9268 19"]),
    ], negatives: ["GB29NWBK60161331926818", "GB2912346016133192681"]),
    IdentifierCase(identifier: "BankAccountNumber-FR", positives: [("FR1420041010050500013M02606", ["FR1420041010050500013M02606"])],
                   negatives: ["FR1420041010050500013M02607"]),
    IdentifierCase(identifier: "BankAccountNumber-ES", positives: [("ES9121000418450200051332", ["ES9121000418450200051332"])],
                   negatives: ["ES9121000418450200051333"]),
    IdentifierCase(identifier: "BankAccountNumber-IT", positives: [("IT60X0542811101000000123456", ["IT60X0542811101000000123456"])],
                   negatives: ["IT60X0542811101000000123457", "IT6010542811101000000123456"]),
    IdentifierCase(identifier: "PhoneNumber-US", positives: [
        ("call (202) 555-0123 now", ["(202) 555-0123"]), ("tel 202-555-0123", ["202-555-0123"]), ("+1 415 555 2671.", ["+1 415 555 2671"]),
        ("sms +14155552671", ["+14155552671"]), ("1-800-555-0199", ["1-800-555-0199"]), ("202.555.0123", ["202.555.0123"]),
    ], negatives: [
        "id 2025550123", "date 2024-05-01", "ip 10.202.555.0123", "(911) 555-0123", "123-555-0123", "202-155-0123",
        "20-25-55-01-23", "+44 20 7946 0958",
    ]),
    IdentifierCase(identifier: "PhoneNumber-GB", positives: [
        ("+44 20 7946 0958", ["+44 20 7946 0958"]), ("mobile 07700 900123", ["07700 900123"]), ("+447700900123", ["+447700900123"]),
        ("+44 (0)20 7946 0958", ["+44 (0)20 7946 0958"]), ("(020) 7946 0958", ["(020) 7946 0958"]),
    ], negatives: ["07700900123", "+44 20 794", "+1 202 555 0123", "0 7700 9001", "06700 900123"]),
    IdentifierCase(identifier: "PhoneNumber-FR", positives: [
        ("01 23 45 67 89", ["01 23 45 67 89"]), ("+33 6 12 34 56 78", ["+33 6 12 34 56 78"]), ("+33612345678", ["+33612345678"]),
    ], negatives: ["0123456789", "00 23 45 67 89", "01 23 45 67", "+33 0612345678"]),
    IdentifierCase(identifier: "PhoneNumber-DE", positives: [
        ("+49 30 901820", ["+49 30 901820"]), ("Tel. 030 901820", ["030 901820"]), ("+49 151 23456789", ["+49 151 23456789"]),
    ], negatives: ["030901820", "+49 151 234", "0049"]),
    IdentifierCase(identifier: "Ssn-US", positives: [("ssn 123-45-6789 on file", ["123-45-6789"]), ("078 05 1120", ["078 05 1120"])],
                   negatives: ["123456789", "000-12-3456", "666-12-3456", "900-12-3456", "123-00-4567", "123-45-0000", "2024-05-01", "1123-45-6789"]),
    IdentifierCase(identifier: "IndividualTaxIdentificationNumber-US", positives: [("itin 912-70-1234", ["912-70-1234"]), ("900-94-5555", ["900-94-5555"])],
                   negatives: ["912-93-1234", "812-70-1234", "912701234", "912-49-1234"]),
    IdentifierCase(identifier: "NationalInsuranceNumber-GB", positives: [("NI AB123456C ok", ["AB123456C"]), ("QQ is invalid but JG 10 37 59 A is fine", ["JG 10 37 59 A"])],
                   negatives: ["QQ123456C", "GB123456A", "AB123456E", "AB12345C", "DA123456A", "XAB123456C"]),
    IdentifierCase(identifier: "SocialInsuranceNumber-CA", positives: [("sin 193-456-787", ["193-456-787"]), ("130 692 544", ["130 692 544"])],
                   negatives: ["193-456-788", "193456787", "046-454-286", "846-454-286"]),
    IdentifierCase(identifier: "CpfCode-BR", positives: [("cpf 529.982.247-25", ["529.982.247-25"])],
                   negatives: ["529.982.247-26", "111.111.111-11", "52998224725", "1529.982.247-25"]),
    IdentifierCase(identifier: "CnpjNumber-BR", positives: [("cnpj 11.222.333/0001-81", ["11.222.333/0001-81"])],
                   negatives: ["11.222.333/0001-82", "11222333000181"]),
    IdentifierCase(identifier: "VehicleIdentificationNumber", positives: [("vin 1M8GDM9AXKP042788 sold", ["1M8GDM9AXKP042788"]), ("VIN:1HGCM82633A004352", ["1HGCM82633A004352"])],
                   negatives: ["1M8GDM9AXKP042789", "1M8GDM9AXKP04278", "1M8GDM9AXKP0427888", "WVWZZZ1JZXW000001", "1M8GDM9IXKP042788", "11111111111111111"]),
    IdentifierCase(identifier: "NhsNumber-GB", positives: [("nhs 943 476 5919", ["943 476 5919"]), ("9434765919", ["9434765919"])],
                   negatives: ["943 476 5918", "943-476-591", "94347659190"]),
    IdentifierCase(identifier: "Address", positives: [
        ("ship to 1600 Pennsylvania Avenue NW, Washington, DC 20500 today", ["1600 Pennsylvania Avenue NW, Washington, DC 20500"]),
        ("at 221B Baker Street.", ["221B Baker Street"]),
        ("lives at 42 W 5th Ave, Apt 4B", ["42 W 5th Ave, Apt 4B"]),
        ("office: 500 Oracle Pkwy, Redwood City, CA 94065-1675", ["500 Oracle Pkwy, Redwood City, CA 94065-1675"]),
    ], negatives: ["took 200 ms in street view", "GET /api 200 1234 Mozilla", "3 Streets", "status 404 Not Found"]),
]

@Suite struct ManagedIdentifierTests {
    @Test(arguments: identifierCases)
    func positivesAndNegatives(_ testCase: IdentifierCase) {
        let scanner = DataProtectionScanner(managed: [testCase.identifier])
        for (line, expected) in testCase.positives {
            let found = scanner.findings(in: line).map { finding in
                String(decoding: Array(line.utf8)[finding.range], as: UTF8.self)
            }
            #expect(found == expected, "\(testCase.identifier) in \(line.debugDescription)")
        }
        for line in testCase.negatives {
            let found = scanner.findings(in: line).map { String(decoding: Array(line.utf8)[$0.range], as: UTF8.self) }
            #expect(found.isEmpty, "\(testCase.identifier) must not find \(found) in \(line.debugDescription)")
        }
    }

    @Test func everyManagedIdentifierHasATestCase() {
        let tested = Set(identifierCases.map(\.identifier))
        for identifier in ManagedDataIdentifiers.all { #expect(tested.contains(identifier.name), "\(identifier.name) has no test case") }
        #expect(ManagedDataIdentifiers.all.count >= 15)
    }

    @Test func maskingReplacesEachCharacterWithAStar() {
        let scanner = DataProtectionScanner(managed: ["EmailAddress", "IpAddress"])
        #expect(scanner.masked("10.0.0.1 sent mail to bob@example.com") == "******** sent mail to ***************")
        // One star per character, also for characters of several bytes; overlapping findings mask their union.
        let custom = DataProtectionScanner(managed: ["EmailAddress"])
        #expect(custom.masked("no findings here") == "no findings here")
        var out: [UInt8] = []
        let text = Array("héllo wörld".utf8)
        text.withUnsafeBytes {
            DataProtectionScanner.mask($0, findings: [Finding(identifier: 0, range: 0..<6), Finding(identifier: 1, range: 3..<9)], into: &out)
        }
        #expect(String(decoding: out, as: UTF8.self) == "********rld")
    }
}

@Suite struct IdentifierDocumentationTests {
    /// The README's table is what users read: every identifier must be in it, with its summary.
    @Test func readmeListsEveryManagedIdentifier() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        for identifier in ManagedDataIdentifiers.all {
            #expect(readme.contains("| `\(identifier.name)` | \(identifier.category) | \(identifier.summary) |"), "README misses \(identifier.name)")
        }
    }
}

/// The scanners skip ahead rather than look at every byte; these check them against the plain
/// definition on many generated messages.
@Suite struct SkippingScannerTests {
    /// AwsSecretKey by its definition: every maximal run of exactly 40 token bytes, not followed by
    /// `=`, not starting or ending with `/`, with upper case, lower case and a digit.
    static func referenceSecretKeys(_ bytes: [UInt8]) -> [Range<Int>] {
        func token(_ c: UInt8) -> Bool { (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 47 || c == 43 }
        var out: [Range<Int>] = []
        var i = 0
        while i < bytes.count {
            guard token(bytes[i]) else { i += 1; continue }
            let start = i
            while i < bytes.count && token(bytes[i]) { i += 1 }
            let run = bytes[start..<i]
            guard run.count == 40, i == bytes.count || bytes[i] != 61, run.first != 47, run.last != 47,
                  run.contains(where: { $0 >= 65 && $0 <= 90 }), run.contains(where: { $0 >= 97 && $0 <= 122 }),
                  run.contains(where: { $0 >= 48 && $0 <= 57 }) else { continue }
            out.append(start..<i)
        }
        return out
    }

    @Test func secretKeysAgreeWithTheDefinition() {
        let scanner = DataProtectionScanner(managed: ["AwsSecretKey"])
        let pieces = ["wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "a", "Z9", " ", "=", "/", "+", "-", "\"", "x1Y", "é",
                      "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY", "0123456789abcdefABCDEF0123456789abcdefAB"]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<3_000 {
            let message = (0..<Int.random(in: 0...12, using: &generator)).map { _ in pieces.randomElement(using: &generator)! }.joined()
            let bytes = Array(message.utf8)
            let found = scanner.findings(in: message).map(\.range)
            #expect(found == Self.referenceSecretKeys(bytes), "\(message)")
        }
        let key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
        #expect(scanner.findings(in: key).map(\.range) == [0..<40])
        #expect(scanner.findings(in: key + " " + key).map(\.range) == [0..<40, 41..<81])
        #expect(scanner.findings(in: key + key).isEmpty)
    }

    @Test func addressesNextToEachOtherAndAfterWords() {
        let scanner = DataProtectionScanner(managed: ["IpAddress"])
        func found(_ s: String) -> [String] {
            let bytes = Array(s.utf8)
            return scanner.findings(in: s).map { String(decoding: bytes[$0.range], as: UTF8.self) }
        }
        #expect(found("10.0.0.1,10.0.0.2 ::1 fe80::1") == ["10.0.0.1", "10.0.0.2", "::1", "fe80::1"])
        #expect(found("abc10.0.0.1 dx::1 user_10.0.0.3 ok 10.0.0.4 de::1") == ["10.0.0.4", "de::1"])
        #expect(found("cafe 1.2.3.4") == ["1.2.3.4"] && found("deadbeef:1.2.3.4").isEmpty)
    }
}
