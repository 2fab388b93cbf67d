import AWSWire
import Foundation
import TrailwatchCore
@testable import TrailwatchAPI

/// A broken invariant, with what broke.
struct FuzzFailure: Error, CustomStringConvertible {
    var description: String
}

func check(_ condition: Bool, _ message: @autoclosure () -> String) throws(FuzzFailure) {
    if !condition { throw FuzzFailure(description: message()) }
}

/// Fuzz targets for the network edge's decoders, as plain functions of bytes: whatever the
/// input, they must not crash or hang, and what they accept must keep its invariants (a broken
/// one is thrown as ``FuzzFailure``; a libFuzzer driver turns it into a crash). The seed corpus
/// is `fuzz/corpus/<name>/`; ``APIFuzzTests`` runs it and seconds of mutations in `make test`.
enum APIFuzzTargets {
    // MARK: put-log-events

    /// The hand-written PutLogEvents decoder, against Foundation's JSON parser as a reference:
    /// what the decoder accepts is JSON the reference accepts too (strictness), and its columns
    /// stay inside the decoded block.
    static func putLogEventsBody(_ data: [UInt8]) throws(FuzzFailure) {
        guard let request = try? PutLogEventsDecoder.decode(data) else { return }
        try check(request.starts.count == request.lengths.count && request.lengths.count == request.timestamps.count, "columns of different lengths")
        try check(request.count <= 10_000, "more than 10,000 events accepted")
        for i in 0..<request.count {
            let start = Int(request.starts[i]), length = Int(request.lengths[i])
            try check(start + length < request.messages.count, "a message runs past the decoded block")
            try check(request.messages[start + length] == 0x0A, "a message is not followed by its newline")
        }
        // Messages are valid UTF-8 whatever came in.
        try check(String(validating: request.messages, as: UTF8.self) != nil, "decoded messages are not UTF-8")
        // Foundation rejects what the decoder repairs (invalid UTF-8, lone surrogates) and numbers
        // beyond a Double (1e999, valid JSON): compare only the rest.
        if String(validating: data, as: UTF8.self) != nil, !containsSurrogateEscape(data), !containsExponent(data) {
            try check((try? JSONSerialization.jsonObject(with: Data(data))) as? [String: Any] != nil,
                         "the decoder accepted what is not a JSON object")
        }
    }

    static func containsExponent(_ data: [UInt8]) -> Bool {
        guard data.count >= 2 else { return false }
        for i in 1..<data.count where data[i] == UInt8(ascii: "e") || data[i] == UInt8(ascii: "E") {
            if data[i - 1] >= 0x30 && data[i - 1] <= 0x39 { return true }
        }
        return false
    }

    static func containsSurrogateEscape(_ data: [UInt8]) -> Bool {
        guard data.count >= 3 else { return false }
        for i in 0..<(data.count - 2) where data[i] == UInt8(ascii: "\\") && data[i + 1] == UInt8(ascii: "u") {
            if data[i + 2] == UInt8(ascii: "d") || data[i + 2] == UInt8(ascii: "D") { return true }
        }
        return false
    }

    // MARK: aws-json-request

    /// Operations the request target reaches; the input's first byte picks one.
    static let operations = ["PutLogEvents", "CreateLogGroup", "CreateLogStream", "DeleteLogGroup", "DeleteLogStream", "DescribeLogGroups",
                             "DescribeLogStreams", "GetLogEvents", "FilterLogEvents", "StartQuery", "GetQueryResults", "StopQuery",
                             "PutMetricFilter", "DescribeMetricFilters", "DeleteMetricFilter", "TestMetricFilter", "PutRetentionPolicy",
                             "DeleteRetentionPolicy", "NoSuchOperation"]

    /// One API call through the whole service (envelope identification, parameter decoding,
    /// validation, the store): the reply is always AWS's shape — a JSON object, and on errors
    /// a `__type` with a 4xx or a retryable 503.
    static func awsJSONRequest(_ data: [UInt8], service: CloudWatchLogsService) async throws(FuzzFailure) {
        guard let first = data.first else { return }
        let operation = operations[Int(first) % operations.count]
        let body = Array(data.dropFirst())
        // The envelope: content type and target from the input's own bytes too.
        let text = String(decoding: body.prefix(64), as: UTF8.self)
        _ = AWSJSONProtocol.identify(method: "POST", contentType: text, target: text)
        _ = AWSJSONProtocol.identify(method: "POST", contentType: "application/x-amz-json-1.1", target: "Logs_20140328." + text)
        let reply = await service.handle(AWSOperationCall(wireProtocol: .awsJSON1_1, service: service.targetPrefix, operation: operation,
                                                          body: body, principal: .anonymous, requestID: "fuzz"))
        let object = (try? JSONSerialization.jsonObject(with: Data(reply.body))) as? [String: Any]
        try check(object != nil, "\(operation) answered something that is not a JSON object")
        if reply.status != 200 {
            try check([400, 404, 413, 503].contains(reply.status), "\(operation) answered HTTP \(reply.status)")
            try check(object?["__type"] is String, "\(operation)'s error has no __type")
        }
    }

    // MARK: sigv4

    static let key = AccessKey(id: "AKIDFUZZ", secret: "fuzz/secret")
    static let now = AWSTimestamp(secondsSinceEpoch: 1_790_000_000)

    /// SigV4: the Authorization parser and the verifier over hostile headers, and a round trip —
    /// a request built from the input's method, path, query and headers, signed as botocore does,
    /// verifies; with one byte of its signature changed it does not.
    ///
    /// Input: method NUL path NUL query NUL header lines (`name: value` per line) NUL authorization NUL x-amz-date.
    static func sigV4(_ data: [UInt8]) throws(FuzzFailure) {
        var parts = data.split(separator: 0, maxSplits: 5, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        while parts.count < 6 { parts.append("") }
        let (method, path, query, headerBlock, authorization, date) = (parts[0], parts[1], parts[2], parts[3], parts[4], parts[5])
        var headers: [(name: String, value: String)] = []
        for line in headerBlock.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers.append((String(line[..<colon]), String(line[line.index(after: colon)...])))
        }
        _ = SigV4.parseAuthorization(authorization)
        let verifier = SigV4Verifier(keys: AccessKeyring([key]), service: "logs")
        // Hostile as received.
        let received = SigV4.Request(method: method, path: path, query: query,
                                     headers: headers + [("authorization", authorization), ("x-amz-date", date), ("host", "h")],
                                     payloadHash: SigV4.emptyPayloadHash)
        if case .success = verifier.verify(received, now: now) { throw FuzzFailure(description: "a signature nobody made verified") }
        // Round trip: only header names an HTTP parser would deliver, none that signing itself sets.
        let reserved: Set<String> = ["authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"]
        var clean = headers.filter { header in
            !header.name.isEmpty && header.name.utf8.allSatisfy(isTokenByte) && !reserved.contains(header.name.lowercased())
        }
        if !clean.contains(where: { $0.name.lowercased() == "host" }) { clean.append(("Host", "aggregator:4566")) }
        let unsigned = SigV4.Request(method: method.isEmpty ? "POST" : method, path: path, query: query, headers: clean,
                                     payloadHash: SigV4.sha256Hex(data))
        let added = SigV4.sign(unsigned, credentials: key, region: "us-east-1", service: "logs", now: now)
        var signed = unsigned
        signed.headers += added
        guard case .success(let principal) = verifier.verify(signed, now: now) else {
            throw FuzzFailure(description: "a request signed with the key did not verify: \(verifier.verify(signed, now: now))")
        }
        try check(principal.accessKeyID == key.id, "the principal is the signing key")
        var tampered = signed
        let last = tampered.headers.count - 1
        let value = tampered.headers[last].value
        tampered.headers[last].value = String(value.dropLast()) + (value.hasSuffix("0") ? "1" : "0")
        if case .success = verifier.verify(tampered, now: now) { throw FuzzFailure(description: "a changed signature verified") }
    }

    /// RFC 9110 token characters (header names).
    static func isTokenByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || Array("!#$%&'*+-.^_`|~".utf8).contains(b)
    }
}
