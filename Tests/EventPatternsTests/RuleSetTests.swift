import Testing
import ByteJSON
@testable import EventPatterns

/// The rule index must answer exactly what trying every rule on every event would: checked
/// against a reference evaluator written here straight from AWS's documented semantics, on
/// patterns and events generated at random (seeded).
struct RuleSetTests {
    struct Generator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return state >> 33
        }
        mutating func pick<T>(_ items: [T]) -> T { items[Int(next() % UInt64(items.count))] }
        mutating func chance(_ percent: UInt64) -> Bool { next() % 100 < percent }
    }

    static let sources = ["s3.amazonaws.com", "ec2.amazonaws.com", "iam.amazonaws.com", "signin.amazonaws.com", "kms.amazonaws.com"]
    static let names = ["GetObject", "PutObject", "RunInstances", "StopInstances", "CreateUser", "ConsoleLogin", "Decrypt", "ListRoles"]
    static let errors = ["AccessDenied", "ThrottlingException", "NoSuchKey"]

    static func event(_ g: inout Generator) -> JSONValue {
        var members: [JSONMember] = [
            JSONMember(key: "eventSource", value: .string(g.pick(sources))),
            JSONMember(key: "eventName", value: .string(g.pick(names))),
            JSONMember(key: "awsRegion", value: .string(g.pick(["us-east-1", "eu-west-1"]))),
            JSONMember(key: "readOnly", value: .bool(g.chance(50))),
            JSONMember(key: "count", value: .number(Double(g.next() % 20))),
            JSONMember(key: "sourceIPAddress", value: .string("10.0.\(g.next() % 4).\(g.next() % 256)")),
        ]
        if g.chance(30) { members.append(JSONMember(key: "errorCode", value: .string(g.pick(errors)))) }
        if g.chance(50) {
            members.append(JSONMember(key: "userIdentity", value: .object([
                JSONMember(key: "type", value: .string(g.pick(["IAMUser", "Root", "AssumedRole"]))),
                JSONMember(key: "tags", value: .array((0..<(g.next() % 3)).map { _ in .string(g.pick(["a", "b", "c"])) })),
            ])))
        }
        return .object(members)
    }

    /// A random condition (pattern text) on a random field.
    static func condition(_ g: inout Generator) -> (String, String) {
        switch g.next() % 11 {
        case 0: return ("eventName", "[\"\(g.pick(names))\", \"\(g.pick(names))\"]")
        case 1: return ("eventSource", "[\"\(g.pick(sources))\"]")
        case 2: return ("eventName", "[{\"prefix\": \"\(g.pick(["Get", "Put", "Run", "Con", "List"]))\"}]")
        case 3: return ("errorCode", "[{\"exists\": \(g.chance(50))}]")
        case 4: return ("errorCode", "[{\"anything-but\": \"\(g.pick(errors))\"}]")
        case 5: return ("count", "[{\"numeric\": [\">\", \(g.next() % 10), \"<=\", \(10 + g.next() % 10)]}]")
        case 6: return ("readOnly", "[\(g.chance(50))]")
        case 7: return ("userIdentity\u{0}type", "[\"\(g.pick(["IAMUser", "Root"]))\"]")
        case 8: return ("userIdentity\u{0}tags", "[\"\(g.pick(["a", "b"]))\"]")
        case 9: return ("sourceIPAddress", "[{\"cidr\": \"10.0.\(g.next() % 4).0/24\"}]")
        default: return ("awsRegion", "[{\"equals-ignore-case\": \"\(g.pick(["US-EAST-1", "eu-WEST-1"]))\"}]")
        }
    }

    static func pattern(_ g: inout Generator) -> String {
        func object(_ conditions: [(String, String)]) -> String {
            // Nest "a\0b" as {"a": {"b": …}}; merge keys under the same parent.
            var top: [String: [(String, String)]] = [:]
            var order: [String] = []
            for (path, value) in conditions {
                let parts = path.split(separator: "\u{0}", maxSplits: 1).map(String.init)
                if top[parts[0]] == nil { order.append(parts[0]) }
                top[parts[0], default: []].append((parts.count > 1 ? parts[1] : "", value))
            }
            return "{" + order.map { key in
                let items = top[key]!
                if items.allSatisfy({ $0.0.isEmpty }) { return "\"\(key)\": \(items[0].1)" }
                var seen = Set<String>()
                let inner = items.filter { !$0.0.isEmpty && seen.insert($0.0).inserted }.map { "\"\($0.0)\": \($0.1)" }
                return "\"\(key)\": {" + inner.joined(separator: ", ") + "}"
            }.joined(separator: ", ") + "}"
        }
        var conditions: [(String, String)] = []
        var used = Set<String>()
        for _ in 0..<(1 + g.next() % 3) {
            let c = condition(&g)
            if used.insert(c.0.split(separator: "\u{0}").first.map(String.init)!).inserted { conditions.append(c) }
        }
        var text = object(conditions)
        if g.chance(20) {
            let a = condition(&g), b = condition(&g)
            let branch = { (c: (String, String)) in object([c]) }
            text.removeLast()
            text += ", \"$or\": [\(branch(a)), \(branch(b))]}"
        }
        return text
    }

    @Test func indexAgreesWithTheReferenceEvaluator() throws {
        var g = Generator(state: 42)
        var patterns: [EventPattern] = []
        var trees: [JSONValue] = []
        while patterns.count < 100 {
            let text = Self.pattern(&g)
            guard let compiled = try? EventPattern(text) else { continue }  // a random $or may repeat a key
            patterns.append(compiled)
            trees.append(try JSONValue.parse(text))
        }
        let rules = RuleSet(patterns)
        let matcher = EventMatcher(rules, cloudTrailEnvelope: false)
        var total = 0
        for _ in 0..<800 {
            let event = Self.event(&g)
            let expected = trees.indices.filter { Reference.matches(trees[$0], event) }
            let found = matcher.matches(event.serialized())
            #expect(found == expected, "\(String(decoding: event.serialized(), as: UTF8.self))")
            total += found.count
        }
        #expect(total > 200, "the generated rules should match often enough to mean something (\(total))")
        // Most rules have an exact-value condition, so most are reached through the index.
        #expect(rules.unindexed.count < 60)
    }

    @Test func cloudTrailRecordsAreMatchedInsideTheirEnvelope() throws {
        let record = #"{"eventVersion":"1.08","eventTime":"2024-08-02T08:53:24Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","eventType":"AwsConsoleSignIn","awsRegion":"eu-west-2","recipientAccountId":"562283505220","eventID":"865d9377","additionalEventData":{"MFAUsed":"No"}}"#
        let patterns = try [
            #"{"source":["aws.signin"],"detail-type":["AWS Console Sign In via CloudTrail"],"detail":{"additionalEventData":{"MFAUsed":["No"]}}}"#,
            #"{"account":["562283505220"],"region":["eu-west-2"],"time":[{"prefix":"2024-08-02"}],"id":["865d9377"],"version":["0"]}"#,
            #"{"eventName":["ConsoleLogin"]}"#,
            #"{"source":["aws.s3"]}"#,
            #"{"resources":[{"exists":false}],"detail":{"eventName":["ConsoleLogin"]}}"#,
        ].map(EventPattern.init)
        let auto = EventMatcher(RuleSet(patterns), cloudTrailEnvelope: true)
        #expect(auto.matches(Array(record.utf8)) == [0, 1, 4])
        #expect(auto.recordID == "865d9377")
        let shaped = String(decoding: Array(record.utf8).withUnsafeBytes { auto.event(for: $0) }, as: UTF8.self)
        #expect(shaped.hasPrefix(#"{"version":"0","id":"865d9377","detail-type":"AWS Console Sign In via CloudTrail","source":"aws.signin","account":"562283505220","time":"2024-08-02T08:53:24Z","region":"eu-west-2","resources":[],"detail":{"eventVersion""#))
        let none = EventMatcher(RuleSet(patterns), cloudTrailEnvelope: false)
        #expect(none.matches(Array(record.utf8)) == [2])
        // Anything that is not a CloudTrail record is matched as it is, also with the envelope on.
        #expect(auto.matches(Array(#"{"eventName":"ConsoleLogin"}"#.utf8)) == [2])
        #expect(auto.matches(Array("not json".utf8)).isEmpty)
        #expect(auto.matches(Array(#"["eventName"]"#.utf8)).isEmpty)
    }

    @Test func envelopeWrittenFromBytesEqualsTheEnvelopeOfTheRecordsValues() throws {
        let records = [
            #"{"eventVersion":"1.08","eventTime":"2024-08-02T08:53:24Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"eu-west-2","recipientAccountId":"562283505220","eventID":"e\"1\u00e9"}"#,
            #"{"eventVersion":"1.08","eventTime":"t","eventSource":"monitoring.amazonaws.com","eventType":"AwsServiceEvent","userIdentity":{"accountId":"123"},"eventID":"x"}"#,
            #"{"eventVersion":"1.08","eventTime":"t","eventType":"AwsCloudTrailInsight","awsRegion":["a","b"]}"#,
            #"{"eventVersion":"1.08","eventTime":"t","eventSource":"nodot","eventType":"AwsConsoleSignIn","eventID":7,"recipientAccountId":"\u0041"}"#,
        ]
        let patterns = try [
            #"{"source":["aws.s3"],"detail-type":["AWS API Call via CloudTrail"],"id":["e\"1é"]}"#,
            #"{"source":["aws.cloudwatch"],"detail-type":["AWS Service Event via CloudTrail"],"account":["123"]}"#,
            #"{"source":["aws.cloudtrail"],"detail-type":["AWS Insight via CloudTrail"],"region":["a"]}"#,
            #"{"source":["aws.nodot"],"detail-type":["AWS Console Sign In via CloudTrail"],"account":["A"],"id":[{"exists":false}]}"#,
        ].map(EventPattern.init)
        let matcher = EventMatcher(RuleSet(patterns), cloudTrailEnvelope: true)
        for (k, record) in records.enumerated() {
            let bytes = Array(record.utf8)
            #expect(matcher.matches(bytes) == [k], "\(record)")
            let parsed = try JSONValue.parse(record)
            // A record's value is its field's first string leaf (arrays looked through).
            func text(_ key: String) -> String? {
                switch parsed[key] {
                case .string(let s)?: return s
                case .array(let items)?: return items.lazy.compactMap { if case .string(let s) = $0 { return s } else { return nil } }.first
                default: return nil
                }
            }
            var accountId: String?
            if case .string(let s)? = parsed["userIdentity"]?["accountId"] { accountId = s }
            let expected = bytes.withUnsafeBytes {
                CloudTrailEnvelope.wrap(record: $0, id: text("eventID") ?? "", detailType: CloudTrailEnvelope.detailType(eventType: text("eventType")),
                                        source: CloudTrailEnvelope.source(eventSource: text("eventSource"), eventType: text("eventType")),
                                        account: text("recipientAccountId") ?? accountId ?? "", time: text("eventTime") ?? "",
                                        region: text("awsRegion") ?? "")
            }
            let written = bytes.withUnsafeBytes { matcher.event(for: $0) }
            #expect(String(decoding: written, as: UTF8.self) == String(decoding: expected, as: UTF8.self))
        }
    }

    @Test func decodedStringsLongerThanOneArenaBlockStayIntact() throws {
        // Escaped strings are decoded into the matcher's arena; several long ones overflow its first block.
        let long = (0..<3).map { n in String(repeating: #"\u00e9"# + "\(n)", count: 1500) }
        let event = "{" + long.enumerated().map { #""f\#($0.offset)":"\#($0.element)""# }.joined(separator: ",") + "}"
        let decoded = (0..<3).map { n in String(repeating: "é\(n)", count: 1500) }
        let pattern = try EventPattern(#"{"f0":[{"prefix":"é0é0"}],"f1":[{"suffix":"é1é1"}],"f2":[{"wildcard":"é2*é2é2"}]}"#)
        let matcher = EventMatcher(RuleSet([pattern]), cloudTrailEnvelope: false)
        for _ in 0..<3 {
            #expect(matcher.matches(Array(event.utf8)) == [0])
            for n in 0..<3 {
                let leaf = try #require(matcher.values.pointee.firstString(matcher.rawSlots[n]))
                #expect(String(decoding: leaf, as: UTF8.self) == decoded[n])
            }
            #expect(matcher.matches(Array(#"{"f0":"x"}"#.utf8)).isEmpty)
        }
    }

    @Test func envelopeSources() {
        #expect(CloudTrailEnvelope.source(eventSource: "s3.amazonaws.com", eventType: "AwsApiCall") == "aws.s3")
        #expect(CloudTrailEnvelope.source(eventSource: "monitoring.amazonaws.com", eventType: nil) == "aws.cloudwatch")
        #expect(CloudTrailEnvelope.source(eventSource: nil, eventType: "AwsCloudTrailInsight") == "aws.cloudtrail")
        #expect(CloudTrailEnvelope.detailType(eventType: "AwsServiceEvent") == "AWS Service Event via CloudTrail")
        #expect(CloudTrailEnvelope.detailType(eventType: nil) == "AWS API Call via CloudTrail")
    }

    @Test func alarmEventsGetEventBridgeShape() throws {
        let body = #"{"configuration":{"comparisonOperator":"GreaterThanThreshold","datapointsToAlarm":3,"dimensions":{"Host":"a"},"evaluationPeriods":5,"metricName":"Errors","namespace":"App","period":60,"statistic":"Sum","threshold":5,"treatMissingData":"notBreaching"},"detail-type":"CloudWatch Alarm State Change","alarmName":"HighErrorRate","previousState":{"timestamp":"2026-11-01T00:07:00.000Z","value":"OK"},"state":{"reason":"Threshold Crossed","timestamp":"2026-11-01T00:07:00.000Z","value":"ALARM"},"time":"2026-11-01T00:07:00.000Z"}"#
        let wrapped = try #require(AlarmStateChangeEnvelope.wrap(body: Array(body.utf8), account: "123456789012", region: "eu-west-1"))
        let event = String(decoding: wrapped, as: UTF8.self)
        for (pattern, expected) in [
            (#"{"source":["aws.cloudwatch"],"detail-type":["CloudWatch Alarm State Change"],"detail":{"state":{"value":["ALARM"]}}}"#, true),
            (#"{"resources":["arn:aws:cloudwatch:eu-west-1:123456789012:alarm:HighErrorRate"]}"#, true),
            (#"{"detail":{"alarmName":[{"prefix":"High"}],"previousState":{"value":["OK"]}}}"#, true),
            (#"{"detail":{"configuration":{"metrics":{"metricStat":{"metric":{"namespace":["App"],"name":["Errors"]}}}}}}"#, true),
            (#"{"detail":{"state":{"value":["OK"]}}}"#, false),
        ] {
            #expect(try EventPattern(pattern).matches(json: event) == expected, "\(pattern)")
        }
    }

    @Test func leafScannerLooksThroughArraysAndRejectsNonJSON() {
        let scanner = JSONLeafScanner(paths: [["a", "b"], ["a"], ["k\"ey"]].map { $0.map { Array($0.utf8) } })
        struct Collect: JSONLeafVisitor {
            var found: [(Int, JSONLookup)] = []
            mutating func leaf(path: Int, value: JSONLookup) { found.append((path, value)) }
        }
        var c = Collect()
        let doc = Array(#"{"a":[{"b":1},{"b":[2,[3]]},4,{"c":5}],"k\"ey":true,"z":{"a":{"b":9}}}"#.utf8)
        let root = doc.withUnsafeBytes { scanner.scan($0, into: &c) }
        #expect(root == .object)
        #expect(c.found.map(\.0) == [0, 0, 0, 1, 2])
        for bad in ["{\"a\":1", "{\"a\":1}x", "[1,]", "{\"a\" 1}", ""] {
            var d = Collect()
            #expect(Array(bad.utf8).withUnsafeBytes { scanner.scan($0, into: &d) } == nil, "\(bad)")
        }
    }
}

/// AWS's documented semantics, evaluated directly on parsed JSON (slow and simple).
enum Reference {
    static func leaves(_ value: JSONValue, _ path: ArraySlice<String>) -> [JSONValue]? {
        switch value {
        case .array(let items): return items.flatMap { leaves($0, path) ?? [] }
        case .object(let members):
            guard let key = path.first else { return [] }  // an object is no leaf
            return members.filter { $0.key == key }.flatMap { leaves($0.value, path.dropFirst()) ?? [] }
        default:
            return path.isEmpty ? [value] : []
        }
    }

    static func matches(_ pattern: JSONValue, _ event: JSONValue, prefix: [String] = []) -> Bool {
        guard case .object(let members) = pattern else { return false }
        for member in members {
            if member.key == "$or" {
                guard case .array(let branches) = member.value, branches.contains(where: { matches($0, event, prefix: prefix) }) else { return false }
                continue
            }
            switch member.value {
            case .object: if !matches(member.value, event, prefix: prefix + [member.key]) { return false }
            case .array(let options):
                let values = leaves(event, (prefix + [member.key])[...]) ?? []
                if values.isEmpty {
                    if !options.contains(where: { $0["exists"] == .bool(false) }) { return false }
                } else if !values.contains(where: { v in options.contains { one($0, v) } }) {
                    return false
                }
            default: return false
            }
        }
        return true
    }

    static func one(_ option: JSONValue, _ value: JSONValue) -> Bool {
        switch option {
        case .string, .bool, .null: return option == value
        case .number(let d, _): if case .number(let v, _) = value { return v == d } else { return false }
        case .object(let members):
            let (key, arg) = (members[0].key, members[0].value)
            switch key {
            case "prefix": return value.stringValue?.hasPrefix(arg.stringValue!) ?? false
            case "exists": return arg == .bool(true)
            case "anything-but": guard let s = value.stringValue else { return false }; return s != arg.stringValue
            case "equals-ignore-case": return value.stringValue?.lowercased() == arg.stringValue?.lowercased()
            case "cidr":
                guard let s = value.stringValue, let net = arg.stringValue else { return false }
                return s.hasPrefix(String(net.dropLast(4)))  // the generated networks are /24s written a.b.c.0/24
            case "numeric":
                guard case .number(let v, _) = value, case .array(let ops) = arg else { return false }
                var ok = true
                for k in stride(from: 0, to: ops.count, by: 2) {
                    let bound = ops[k + 1].doubleValue!
                    switch ops[k].stringValue! {
                    case ">": ok = ok && v > bound
                    case ">=": ok = ok && v >= bound
                    case "<": ok = ok && v < bound
                    case "<=": ok = ok && v <= bound
                    default: ok = ok && v == bound
                    }
                }
                return ok
            default: return false
            }
        default: return false
        }
    }
}
