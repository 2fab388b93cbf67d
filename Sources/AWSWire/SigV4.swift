import Crypto

/// AWS Signature Version 4 (`AWS4-HMAC-SHA256`): the canonical request, the string to sign, the
/// derived signing key and the `Authorization` header, for signing requests and for verifying
/// them. Pure: the caller supplies the clock and the body's hash.
///
/// The canonical forms follow botocore's `SigV4Auth` (the checked-in vectors are generated with
/// it): header values are trimmed with inner runs of spaces collapsed, repeated headers joined by
/// commas, the path has its dot segments removed and is percent-encoded once more (services other
/// than S3 sign the already-encoded path), the query's pairs are sorted as sent.
public enum SigV4 {
    public static let algorithm = "AWS4-HMAC-SHA256"
    /// The hash of an empty body.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    /// Headers never signed (hop-by-hop, or changed by proxies), as botocore leaves them out.
    public static let unsignedHeaderNames: Set<String> = [
        "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id", "authorization",
    ]

    /// What a signature covers.
    public struct Request: Sendable {
        public var method: String
        /// The path as sent on the wire (still percent-encoded), without the query.
        public var path: String
        /// The raw query string (after `?`), empty when there is none.
        public var query: String
        /// Every header as sent; names in any case, repeated names allowed.
        public var headers: [(name: String, value: String)]
        /// Lowercase hex SHA-256 of the body (or ``unsignedPayload``).
        public var payloadHash: String

        public init(method: String, path: String, query: String = "", headers: [(name: String, value: String)], payloadHash: String) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }

        /// The value of a header (first occurrence, any case).
        public func header(_ name: String) -> String? {
            headers.first { $0.name.lowercased() == name }?.value
        }
    }

    /// Where a signature is valid: `date/region/service/aws4_request`.
    public struct Scope: Sendable, Equatable {
        /// `yyyyMMdd`.
        public var date: String
        public var region: String
        public var service: String

        public init(date: String, region: String, service: String) {
            self.date = date
            self.region = region
            self.service = service
        }

        public var text: String { "\(date)/\(region)/\(service)/aws4_request" }
    }

    /// A parsed `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
    public struct Authorization: Sendable, Equatable {
        public var accessKeyID: String
        public var scope: Scope
        /// Lowercase names, in the order given.
        public var signedHeaders: [String]
        /// Lowercase hex.
        public var signature: String
    }

    // MARK: Canonical forms

    public static func sha256Hex<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var hasher = SHA256()
        hasher.update(data: Array(bytes))
        return hex(hasher.finalize())
    }

    /// SHA-256 of a contiguous buffer without copying it.
    public static func sha256Hex(_ bytes: UnsafeRawBufferPointer) -> String {
        hex(SHA256.hash(data: bytes))
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(64)
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Percent-encodes everything but unreserved characters and those in `safe`.
    static func percentEncode(_ text: String, safe: Set<UInt8>) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        var out = [UInt8]()
        for byte in text.utf8 {
            let unreserved = (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                || byte == 0x2D || byte == 0x2E || byte == 0x5F
            if unreserved || safe.contains(byte) {
                out.append(byte)
            } else {
                out.append(0x25)
                out.append(digits[Int(byte >> 4)])
                out.append(digits[Int(byte & 15)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// RFC 3986 section 5.2.4 (`.` and `..` segments removed), keeping a trailing slash.
    static func removeDotSegments(_ path: String) -> String {
        guard !path.isEmpty else { return "/" }
        var output: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            if segment == "." { continue }
            if segment == ".." { if !output.isEmpty { output.removeLast() }; continue }
            output.append(segment)
        }
        var result = "/" + output.joined(separator: "/")
        if (path.hasSuffix("/.") || path.hasSuffix("/..")) && !result.hasSuffix("/") { result += "/" }
        return result
    }

    static func canonicalURI(_ path: String) -> String {
        percentEncode(removeDotSegments(path.isEmpty ? "/" : path), safe: [UInt8(ascii: "/"), UInt8(ascii: "~")])
    }

    static func canonicalQuery(_ query: String) -> String {
        guard !query.isEmpty else { return "" }
        let pairs = query.split(separator: "&", omittingEmptySubsequences: false).map { pair -> (String, String) in
            if let equals = pair.firstIndex(of: "=") { return (String(pair[..<equals]), String(pair[pair.index(after: equals)...])) }
            return (String(pair), "")
        }
        return pairs.sorted { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }.map { "\($0.0)=\($0.1)" }.joined(separator: "&")
    }

    /// Trims and collapses runs of whitespace to one space, as SigV4's Trimall.
    static func trimAll(_ value: String) -> String {
        value.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }).joined(separator: " ")
    }

    /// The canonical request for `signedHeaders` (lowercase names).
    public static func canonicalRequest(_ request: Request, signedHeaders: [String]) -> String {
        var values: [String: [String]] = [:]
        for (name, value) in request.headers { values[name.lowercased(), default: []].append(trimAll(value)) }
        let names = Set(signedHeaders).sorted()
        var out = request.method.uppercased() + "\n" + canonicalURI(request.path) + "\n" + canonicalQuery(request.query) + "\n"
        for name in names { out += name + ":" + (values[name] ?? []).joined(separator: ",") + "\n" }
        out += "\n" + names.joined(separator: ";") + "\n" + request.payloadHash
        return out
    }

    public static func stringToSign(canonicalRequest: String, amzDate: String, scope: Scope) -> String {
        algorithm + "\n" + amzDate + "\n" + scope.text + "\n" + sha256Hex(Array(canonicalRequest.utf8))
    }

    /// The key derived from the secret for one day, region and service.
    public static func signingKey(secret: String, scope: Scope) -> SymmetricKey {
        func hmac(_ key: SymmetricKey, _ text: String) -> SymmetricKey {
            SymmetricKey(data: HMAC<SHA256>.authenticationCode(for: Array(text.utf8), using: key))
        }
        let date = hmac(SymmetricKey(data: Array(("AWS4" + secret).utf8)), scope.date)
        return hmac(hmac(hmac(date, scope.region), scope.service), "aws4_request")
    }

    public static func signature(key: SymmetricKey, stringToSign: String) -> String {
        hex(HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8), using: key))
    }

    // MARK: Signing

    /// Signs `request` as botocore does: adds `X-Amz-Date` (and `X-Amz-Security-Token` when given),
    /// signs every header present except the unsigned ones, and returns the headers to add
    /// (`X-Amz-Date`, maybe the token, and `Authorization`). `request.headers` must include `Host`.
    public static func sign(_ request: Request, credentials: AccessKey, region: String, service: String,
                            now: AWSTimestamp, sessionToken: String? = nil) -> [(name: String, value: String)] {
        var request = request
        let amzDate = now.amzDate
        var added: [(name: String, value: String)] = [("X-Amz-Date", amzDate)]
        if let sessionToken { added.append(("X-Amz-Security-Token", sessionToken)) }
        request.headers.removeAll { ["x-amz-date", "authorization", "x-amz-security-token"].contains($0.name.lowercased()) }
        request.headers += added
        let signed = Set(request.headers.map { $0.name.lowercased() }).subtracting(unsignedHeaderNames).sorted()
        let scope = Scope(date: String(amzDate.prefix(8)), region: region, service: service)
        let canonical = canonicalRequest(request, signedHeaders: signed)
        let toSign = stringToSign(canonicalRequest: canonical, amzDate: amzDate, scope: scope)
        let signature = signature(key: signingKey(secret: credentials.secret, scope: scope), stringToSign: toSign)
        added.append(("Authorization", "\(algorithm) Credential=\(credentials.id)/\(scope.text), SignedHeaders=\(signed.joined(separator: ";")), Signature=\(signature)"))
        return added
    }

    // MARK: Parsing

    /// Parses an `Authorization` header; nil when it is not a well-formed SigV4 one.
    public static func parseAuthorization(_ header: String) -> Authorization? {
        guard header.hasPrefix(algorithm + " ") else { return nil }
        var credential: Substring?, signedHeaders: Substring?, signature: Substring?
        for part in header.dropFirst(algorithm.count + 1).split(separator: ",") {
            let item = part.drop(while: { $0 == " " })
            guard let equals = item.firstIndex(of: "=") else { return nil }
            let value = item[item.index(after: equals)...].reversed().drop(while: { $0 == " " }).reversed()
            switch item[..<equals] {
            case "Credential": credential = Substring(value)
            case "SignedHeaders": signedHeaders = Substring(value)
            case "Signature": signature = Substring(value)
            default: return nil
            }
        }
        guard let credential, let signedHeaders, let signature, !signature.isEmpty else { return nil }
        // The key id may not contain '/', the rest is exactly date/region/service/aws4_request.
        let pieces = credential.split(separator: "/", omittingEmptySubsequences: false)
        guard pieces.count == 5, pieces[4] == "aws4_request", !pieces[0].isEmpty, pieces[1].count == 8, !pieces[2].isEmpty, !pieces[3].isEmpty
        else { return nil }
        let names = signedHeaders.split(separator: ";").map { $0.lowercased() }
        guard !names.isEmpty else { return nil }
        return Authorization(accessKeyID: String(pieces[0]), scope: Scope(date: String(pieces[1]), region: String(pieces[2]), service: String(pieces[3])),
                             signedHeaders: names, signature: signature.lowercased())
    }
}
