/// One of the managed data identifiers a policy names by ARN
/// (`arn:aws:dataprotection::aws:data-identifier/EmailAddress`).
public struct ManagedDataIdentifier: Sendable {
    /// The name after `data-identifier/`, as CloudWatch spells it.
    public let name: String
    /// CloudWatch's grouping: Credentials, Devices, Financial, Personal, Health.
    public let category: String
    /// What is found, and how precisely (for the README and `trailwatch`'s own listing).
    public let summary: String
    /// False for identifiers CloudWatch does not have (a policy naming them works only here).
    public let inCloudWatch: Bool
    let matcher: any DataMatcher

    public static let arnPrefix = "arn:aws:dataprotection::aws:data-identifier/"
    public var arn: String { Self.arnPrefix + name }
}

/// Every managed data identifier trailwatch implements.
public enum ManagedDataIdentifiers {
    public static let all: [ManagedDataIdentifier] = [
        .init(name: "AwsSecretKey", category: "Credentials",
              summary: "40-character base64 tokens with upper- and lower-case letters and digits, standing alone (hex digests and paths excluded; other 40-character base64 secrets are masked too).",
              inCloudWatch: true, matcher: AwsSecretKeyMatcher()),
        .init(name: "AwsAccessKeyId", category: "Credentials",
              summary: "AKIA… (long-term) and ASIA… (temporary) access key ids: the prefix and 16 base32 characters, standing alone. Not in CloudWatch.",
              inCloudWatch: false, matcher: AwsAccessKeyIdMatcher()),
        .init(name: "OpenSshPrivateKey", category: "Credentials",
              summary: "`-----BEGIN OPENSSH PRIVATE KEY-----` through its END line (or the end of the event when cut off).",
              inCloudWatch: true, matcher: ArmouredKeyMatcher(labels: ["OPENSSH PRIVATE KEY"])),
        .init(name: "PgpPrivateKey", category: "Credentials",
              summary: "`-----BEGIN PGP PRIVATE KEY BLOCK-----` through its END line.",
              inCloudWatch: true, matcher: ArmouredKeyMatcher(labels: ["PGP PRIVATE KEY BLOCK"])),
        .init(name: "PkcsPrivateKey", category: "Credentials",
              summary: "PEM `PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`, `RSA`, `EC` and `DSA PRIVATE KEY` blocks through their END line.",
              inCloudWatch: true, matcher: ArmouredKeyMatcher(labels: ["PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY"])),
        .init(name: "PuttyPrivateKey", category: "Credentials",
              summary: "PuTTY `.ppk` keys from `PuTTY-User-Key-File-N:` through the `Private-MAC:` line.",
              inCloudWatch: true, matcher: PuttyPrivateKeyMatcher()),
        .init(name: "IpAddress", category: "Devices",
              summary: "IPv4 dotted quads (parts 0–255, no leading zeros, not inside longer dotted numbers; version numbers shaped like addresses do match) and IPv6 in RFC 4291 text form; ports are left out.",
              inCloudWatch: true, matcher: IpAddressMatcher()),
        .init(name: "CreditCardNumber", category: "Financial",
              summary: "13–19 digits, whole or in groups of four (Amex 4-6-5), with a Visa, Mastercard, Amex, Discover, JCB, Diners or UnionPay prefix and length, and a valid Luhn digit.",
              inCloudWatch: true, matcher: CreditCardNumberMatcher()),
        .init(name: "CreditCardSecurityCode", category: "Financial",
              summary: "3 or 4 digits right after a keyword: cvv, cvc, cvv2, cvc2, cid, csc, security code, card verification code/value.",
              inCloudWatch: true, matcher: CardValues.securityCode),
        .init(name: "CreditCardExpiration", category: "Financial",
              summary: "MM/YY, MM/YYYY, MM-YY or MM-YYYY right after a keyword: exp, expiry, expiration (date), expires, valid thru.",
              inCloudWatch: true, matcher: CardValues.expiration),
        .init(name: "BankAccountNumber-DE", category: "Financial",
              summary: "German IBANs (DE + 20 digits), whole or in groups of four, with a valid mod-97 check.",
              inCloudWatch: true, matcher: IbanMatcher.germany),
        .init(name: "BankAccountNumber-GB", category: "Financial",
              summary: "British IBANs (GB, 2 digits, 4-letter bank code, 14 digits) with a valid mod-97 check.",
              inCloudWatch: true, matcher: IbanMatcher.unitedKingdom),
        .init(name: "BankAccountNumber-FR", category: "Financial",
              summary: "French IBANs (FR + 25 characters) with a valid mod-97 check.",
              inCloudWatch: true, matcher: IbanMatcher.france),
        .init(name: "BankAccountNumber-ES", category: "Financial",
              summary: "Spanish IBANs (ES + 22 digits) with a valid mod-97 check.",
              inCloudWatch: true, matcher: IbanMatcher.spain),
        .init(name: "BankAccountNumber-IT", category: "Financial",
              summary: "Italian IBANs (IT + 25 characters) with a valid mod-97 check.",
              inCloudWatch: true, matcher: IbanMatcher.italy),
        .init(name: "EmailAddress", category: "Personal",
              summary: "local@domain.tld: dot-atom local parts, two or more domain labels, an alphabetic top-level domain.",
              inCloudWatch: true, matcher: EmailAddressMatcher()),
        .init(name: "Address", category: "Personal",
              summary: "US/Canadian street addresses: house number, 1–4 capitalised words and a street type (Street, Ave, Rd, …), with direction, unit and `, City, ST 12345` when present. Addresses without a street type word are missed.",
              inCloudWatch: true, matcher: AddressMatcher()),
        .init(name: "PhoneNumber-US", category: "Personal",
              summary: "NANP numbers written 3-3-4 with separators or parentheses, or +1 and ten digits; area code and exchange start 2–9, no N11.",
              inCloudWatch: true, matcher: PhoneNumberMatcher.unitedStates),
        .init(name: "PhoneNumber-GB", category: "Personal",
              summary: "+44 and ten digits, or 0 and ten digits written in groups; prefixes 1, 2, 3, 5, 7, 8, 9.",
              inCloudWatch: true, matcher: PhoneNumberMatcher.unitedKingdom),
        .init(name: "PhoneNumber-FR", category: "Personal",
              summary: "+33 and nine digits, or 0 and nine digits written in groups.",
              inCloudWatch: true, matcher: PhoneNumberMatcher.france),
        .init(name: "PhoneNumber-DE", category: "Personal",
              summary: "+49 or 0, then 7–11 digits written in groups (mobiles 15x–17x: 10–11 digits). German numbers vary in length, so this is the least precise phone identifier.",
              inCloudWatch: true, matcher: PhoneNumberMatcher.germany),
        .init(name: "Ssn-US", category: "Personal",
              summary: "AAA-GG-SSSS (hyphens or spaces); area 001–899 but not 666, group and serial not zero. Nine bare digits are not matched.",
              inCloudWatch: true, matcher: NationalIds.ssnUS),
        .init(name: "IndividualTaxIdentificationNumber-US", category: "Personal",
              summary: "ITINs: 9XX-GG-XXXX with group 50–65, 70–88, 90–92 or 94–99.",
              inCloudWatch: true, matcher: NationalIds.itinUS),
        .init(name: "NationalInsuranceNumber-GB", category: "Personal",
              summary: "Two valid prefix letters, six digits (optionally spaced in pairs) and a suffix A–D.",
              inCloudWatch: true, matcher: NationalInsuranceNumberMatcher()),
        .init(name: "SocialInsuranceNumber-CA", category: "Personal",
              summary: "3-3-3 digits (hyphens or spaces) passing Luhn; first digit not 0 or 8.",
              inCloudWatch: true, matcher: NationalIds.sinCA),
        .init(name: "CpfCode-BR", category: "Personal",
              summary: "###.###.###-## with both mod-11 check digits right.",
              inCloudWatch: true, matcher: NationalIds.cpfBR),
        .init(name: "CnpjNumber-BR", category: "Personal",
              summary: "##.###.###/####-## with both mod-11 check digits right.",
              inCloudWatch: true, matcher: NationalIds.cnpjBR),
        .init(name: "VehicleIdentificationNumber", category: "Personal",
              summary: "17 characters of the VIN alphabet with a valid position-9 check digit (the North American rule; VINs without one are missed).",
              inCloudWatch: true, matcher: VehicleIdentificationNumberMatcher()),
        .init(name: "NhsNumber-GB", category: "Health",
              summary: "Ten digits (3-3-4 or whole) with a valid NHS mod-11 check digit.",
              inCloudWatch: true, matcher: NationalIds.nhsGB),
    ]

    static let byName: [String: ManagedDataIdentifier] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// The identifier a managed ARN names, or nil.
    public static func identifier(arn: String) -> ManagedDataIdentifier? {
        guard arn.hasPrefix(ManagedDataIdentifier.arnPrefix) else { return nil }
        return byName[String(arn.dropFirst(ManagedDataIdentifier.arnPrefix.count))]
    }

    public static func identifier(named name: String) -> ManagedDataIdentifier? { byName[name] }
}
