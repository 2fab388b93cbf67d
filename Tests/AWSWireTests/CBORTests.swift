import Testing
@testable import AWSWire

func hex(_ text: String) -> [UInt8] {
    var out: [UInt8] = []
    var chars = Array(text.utf8).makeIterator()
    func nibble(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x57 }
    while let hi = chars.next(), let lo = chars.next() { out.append(nibble(hi) << 4 | nibble(lo)) }
    return out
}

/// A small deterministic generator (tests must not depend on the system's randomness).
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func randomValue(_ rng: inout SplitMix, depth: Int = 0) -> AWSValue {
    let kind = Int(rng.next() % (depth > 3 ? 7 : 9))
    switch kind {
    case 0: return .null
    case 1: return .bool(rng.next() & 1 == 0)
    case 2:
        let magnitudes: [Int64] = [0, 1, 23, 24, 255, 256, 65_535, 65_536, 4_294_967_295, 4_294_967_296, .max]
        let m = magnitudes[Int(rng.next() % UInt64(magnitudes.count))]
        return .int(rng.next() & 1 == 0 ? m : -m - (m == .max ? 0 : 1))
    case 3: return .double(Double(bitPattern: rng.next()).isNaN ? 0.5 : Double(bitPattern: rng.next() & 0x7FEF_FFFF_FFFF_FFFF))
    case 4:
        let alphabet = Array("aZ09 _-\u{e9}\u{4e2d}\u{1F600}\"\\\n")
        return .string(String((0..<Int(rng.next() % 40)).map { _ in alphabet[Int(rng.next() % UInt64(alphabet.count))] }))
    case 5: return .blob((0..<Int(rng.next() % 300)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
    case 6: return .timestamp(Double(Int64(rng.next() % 4_000_000_000)) + (rng.next() & 1 == 0 ? 0 : 0.25))
    case 7: return .list((0..<Int(rng.next() % 6)).map { _ in randomValue(&rng, depth: depth + 1) })
    default:
        var members: [String: AWSValue] = [:]
        for i in 0..<Int(rng.next() % 6) { members["k\(i)\(rng.next() % 1000)"] = randomValue(&rng, depth: depth + 1) }
        return .map(members)
    }
}

@Suite("CBOR (RFC 8949): vectors, round trips, hostile input")
struct CBORTests {
    @Test("decodes the RFC 8949 appendix A examples")
    func appendixA() throws {
        let vectors: [(String, AWSValue)] = [
            ("00", .int(0)), ("01", .int(1)), ("0a", .int(10)), ("17", .int(23)), ("1818", .int(24)), ("1864", .int(100)),
            ("1903e8", .int(1000)), ("1a000f4240", .int(1_000_000)), ("1b000000e8d4a51000", .int(1_000_000_000_000)),
            ("20", .int(-1)), ("29", .int(-10)), ("3863", .int(-100)), ("3903e7", .int(-1000)),
            ("f90000", .double(0)), ("f93c00", .double(1)), ("fb3ff199999999999a", .double(1.1)), ("f93e00", .double(1.5)),
            ("f97bff", .double(65504)), ("fa47c35000", .double(100_000)), ("f90001", .double(5.960464477539063e-8)),
            ("f9c400", .double(-4)), ("fbc010666666666666", .double(-4.1)), ("f97c00", .double(.infinity)), ("f9fc00", .double(-.infinity)),
            ("f4", .bool(false)), ("f5", .bool(true)), ("f6", .null), ("f7", .null),
            ("c11a514b67b0", .timestamp(1_363_896_240)), ("c1fb41d452d9ec200000", .timestamp(1_363_896_240.5)),
            ("40", .blob([])), ("4401020304", .blob([1, 2, 3, 4])), ("60", .string("")), ("6161", .string("a")),
            ("6449455446", .string("IETF")), ("62225c", .string("\"\\")), ("62c3bc", .string("\u{fc}")), ("63e6b0b4", .string("\u{6c34}")),
            ("64f0908591", .string("\u{10151}")), ("80", .list([])), ("83010203", .list([1, 2, 3])),
            ("8301820203820405", .list([1, [2, 3], [4, 5]])), ("a0", .map([:])), ("a26161016162820203", .map(["a": 1, "b": [2, 3]])),
            ("5f42010243030405ff", .blob([1, 2, 3, 4, 5])), ("7f657374726561646d696e67ff", .string("streaming")),
            ("9fff", .list([])), ("9f018202039f0405ffff", .list([1, [2, 3], [4, 5]])),
            ("bf61610161629f0203ffff", .map(["a": 1, "b": [2, 3]])),
            ("d74401020304", .blob([1, 2, 3, 4])),   // tag 23 (expected base16) is read through
        ]
        for (text, expected) in vectors {
            #expect(try CBOR.decode(hex(text)) == expected, "\(text)")
        }
        #expect(try CBOR.decode(hex("f97e00")).doubleValue?.isNaN == true)
    }

    @Test("encodes in the shortest forms")
    func shortestForms() {
        #expect(CBOR.encode(.int(23)) == hex("17"))
        #expect(CBOR.encode(.int(24)) == hex("1818"))
        #expect(CBOR.encode(.int(-1000)) == hex("3903e7"))
        #expect(CBOR.encode(.int(.min)) == hex("3b7fffffffffffffff"))
        #expect(CBOR.encode(.double(1.5)) == hex("fa3fc00000"))
        #expect(CBOR.encode(.double(1.1)) == hex("fb3ff199999999999a"))
        #expect(CBOR.encode(.timestamp(1_363_896_240)) == hex("c11a514b67b0"))
        #expect(CBOR.encode(.map(["b": 1, "a": 2])) == hex("a2616102616201"))
    }

    @Test("every value round-trips (property test over 2,000 generated documents)")
    func roundTrip() throws {
        var rng = SplitMix(state: 18)
        for _ in 0..<2000 {
            let value = randomValue(&rng)
            let bytes = CBOR.encode(value)
            #expect(try CBOR.decode(bytes) == value)
        }
    }

    @Test("truncated, extended and corrupted input fails with a located error, never a crash")
    func hostile() throws {
        var rng = SplitMix(state: 7)
        for _ in 0..<200 {
            let bytes = CBOR.encode(randomValue(&rng))
            for cut in 0..<bytes.count {
                #expect(throws: CBOR.DecodingError.self) { try CBOR.decode(Array(bytes[..<cut])) }
            }
            #expect(throws: CBOR.DecodingError.self) { try CBOR.decode(bytes + [0x00]) }
            // Flipping bytes decodes or fails cleanly.
            for _ in 0..<20 {
                var corrupted = bytes
                corrupted[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next())
                _ = try? CBOR.decode(corrupted)
            }
        }
    }

    @Test("fuzz: 40,000 random and mutated inputs decode or fail cleanly; whatever decodes round-trips")
    func fuzz() throws {
        var rng = SplitMix(state: 0xCB0E)
        let seeds = (0..<50).map { _ in CBOR.encode(randomValue(&rng)) }
        for round in 0..<40_000 {
            var input: [UInt8]
            if round % 4 == 0 {
                input = (0..<Int(rng.next() % 24)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            } else {
                input = seeds[Int(rng.next() % UInt64(seeds.count))]
                for _ in 0..<(1 + Int(rng.next() % 4)) where !input.isEmpty {
                    let at = Int(rng.next() % UInt64(input.count))
                    switch rng.next() % 4 {
                    case 0: input[at] = UInt8(truncatingIfNeeded: rng.next())
                    case 1: input.remove(at: at)
                    case 2: input.insert(UInt8(truncatingIfNeeded: rng.next()), at: at)
                    default: input[at] ^= 1 << UInt8(rng.next() % 8)
                    }
                }
            }
            guard let value = try? CBOR.decode(input) else { continue }
            // NaN never equals itself; everything else must survive a round trip.
            if case .double(let d) = value, d.isNaN { continue }
            let again = try CBOR.decode(CBOR.encode(value))
            if !containsNaN(value) { #expect(again == value, "\(input)") }
        }
    }

    func containsNaN(_ value: AWSValue) -> Bool {
        switch value {
        case .double(let d), .timestamp(let d): d.isNaN
        case .list(let items): items.contains(where: containsNaN)
        case .map(let members): members.values.contains(where: containsNaN)
        default: false
        }
    }

    @Test("hostile lengths, nesting, keys and text are refused")
    func limits() {
        // A list claiming 2^63 items, a string claiming 4 GiB: refused before allocating.
        #expect(throws: CBOR.DecodingError.self) { try CBOR.decode(hex("9b7fffffffffffffff")) }
        #expect(throws: CBOR.DecodingError.self) { try CBOR.decode(hex("7affffffff61")) }
        #expect(throws: CBOR.DecodingError.self) { try CBOR.decode([UInt8](repeating: 0x81, count: 100) + [0x00]) }
        #expect(throws: CBOR.DecodingError.self) { try CBOR.decode(hex("a10102")) }            // integer key
        #expect(throws: CBOR.DecodingError.self) { try CBOR.decode(hex("a2616101616102")) }    // duplicate key
        #expect(throws: CBOR.DecodingError.self) { try CBOR.decode(hex("62c328")) }            // invalid UTF-8
        #expect(throws: CBOR.DecodingError.self) { try CBOR.decode(hex("1bffffffffffffffff")) } // beyond Int64
        #expect(throws: CBOR.DecodingError.self) { try CBOR.decode(hex("c2420102")) }          // bignum
        #expect(throws: CBOR.DecodingError.self) { try CBOR.decode(hex("c16161")) }            // tag 1 on text
        #expect(throws: CBOR.DecodingError.self) { try CBOR.decode(hex("ff")) }                // stray break
        #expect(throws: CBOR.DecodingError.self) { try CBOR.decode(hex("5f6161ff")) }          // text chunk in a byte string
        #expect(throws: CBOR.DecodingError.self) { try CBOR.decode(hex("1c")) }                // reserved additional info
        let error = try? CBOR.decode(hex("8301820203")) as AWSValue?
        #expect(error == nil)
    }

    @Test("members whose list or map repeats the previous one's bytes decode the same as any other; text in and out of ASCII")
    func repeatedMembers() throws {
        let dimensions: AWSValue = .list([.map(["Name": "Host", "Value": "h-1"])])
        var items: [AWSValue] = []
        for i in 0..<6 {
            // Equal, then changed (one byte, then the length), then equal again; a member of another name in between.
            let dims: AWSValue = i == 2 ? .list([.map(["Name": "Host", "Value": "h-2"])]) : i == 3 ? .list([]) : dimensions
            items.append(.map(["Dimensions": dims, "Other": dims, "Value": .int(Int64(i)), "Text": .string(i % 2 == 0 ? "caf\u{E9} ☕" : "plain")]))
        }
        let document: AWSValue = .map(["MetricData": .list(items), "Namespace": "N"])
        #expect(try CBOR.decode(CBOR.encode(document)) == document)
        // A repeat that would nest too deep is still refused at that depth.
        let deep = [UInt8](repeating: 0x81, count: 60) + [0x00]
        #expect((try? CBOR.decode(hex("a1") + [0x61, 0x61] + deep, maxDepth: 61)) != nil)
        let deeper = hex("a2") + [0x61, 0x61] + deep + [0x61, 0x62] + hex("a1") + [0x61, 0x61] + deep
        #expect(throws: CBOR.DecodingError.self) { try CBOR.decode(deeper, maxDepth: 61) }
        #expect(throws: CBOR.DecodingError.self) { try CBOR.decode(hex("a2616182616161626163") + hex("826161") + [0x62, 0xC3, 0x28]) }
    }
}

@Suite("AWS JSON documents")
struct AWSJSONValueTests {
    @Test("parses and writes documents, numbers keep integer or float form")
    func roundTrip() throws {
        let text = #"{"a":[1,-2,3.5,1e3,true,false,null],"b":{"c":"x\"y\u00e9\ud83d\ude00"},"n":9007199254740993}"#
        let value = try AWSJSONValue.decode(Array(text.utf8))
        #expect(value["a"] == [1, -2, 3.5, 1000.0, true, false, .null])
        #expect(value["b"]?["c"] == .string("x\"y\u{e9}\u{1F600}"))
        #expect(value["n"] == .int(9_007_199_254_740_993))
        // Integral doubles are written without a fraction, so 1e3 comes back as 1000.
        #expect(try AWSJSONValue.encode(AWSJSONValue.decode(AWSJSONValue.encode(value))) == AWSJSONValue.encode(value))
        #expect(String(decoding: AWSJSONValue.encode(["t": .timestamp(1.5), "i": .double(3)]), as: UTF8.self) == #"{"i":3,"t":1.5}"#)
        #expect(try AWSJSONValue.decode([]) == .map([:]))
    }

    @Test("random documents round-trip through JSON (blobs excepted)")
    func property() throws {
        var rng = SplitMix(state: 99)
        func strip(_ v: AWSValue) -> AWSValue {
            switch v {
            case .blob, .timestamp: return .null
            case .double(let d): return d == d.rounded() && abs(d) < 1e15 ? .int(Int64(d)) : v
            case .list(let items): return .list(items.map(strip))
            case .map(let members): return .map(members.mapValues(strip))
            default: return v
            }
        }
        for _ in 0..<500 {
            let value = strip(randomValue(&rng))
            #expect(try AWSJSONValue.decode(AWSJSONValue.encode(value)) == value)
        }
    }

    @Test("malformed JSON is a SerializationException")
    func malformed() {
        for text in ["{", "[1,]", "{\"a\" 1}", "tru", "\"\\ud800\"", "{\"a\":1}x", "01x", String(repeating: "[", count: 100)] {
            #expect(throws: AWSError.self) { try AWSJSONValue.decode(Array(text.utf8)) }
        }
    }
}

@Suite("AWS query protocol and RPC v2 envelopes")
struct AWSQueryProtocolTests {
    @Test("form parameters nest into lists and structures")
    func decode() throws {
        let body = "Action=PutMetricData&Version=2010-08-01&Namespace=App%2FWeb&MetricData.member.1.MetricName=Latency"
            + "&MetricData.member.1.Value=12.5&MetricData.member.1.Dimensions.member.1.Name=Host&MetricData.member.1.Dimensions.member.1.Value=a+b"
            + "&MetricData.member.2.MetricName=Errors&MetricData.member.2.Values.member.2=3&MetricData.member.2.Values.member.1=1&Empty="
            + "&Tags.entry.1.key=k&Tags.entry.1.value=v"
        let form = try AWSQueryProtocol.decode(Array(body.utf8))
        #expect(form.action == "PutMetricData")
        #expect(form.version == "2010-08-01")
        let p = form.parameters
        #expect(p["Namespace"] == "App/Web")
        let data = try #require(p["MetricData"]?.listValue)
        #expect(data.count == 2)
        #expect(data[0]["Value"]?.doubleValue == 12.5)
        #expect(data[0]["Dimensions"]?.listValue?.first?["Value"] == "a b")
        #expect(data[1]["Values"] == ["1", "3"])
        #expect(p["Empty"]?.listValue == [])
        #expect(p["Tags"] == ["k": "v"])
    }

    @Test("bad forms are refused with the query protocol's codes")
    func refused() {
        for body in ["Version=1", "Action=X&A.member.x=1", "Action=X&a=%zz", "Action=X&a..b=1"] {
            #expect(throws: AWSError.self) { try AWSQueryProtocol.decode(Array(body.utf8)) }
        }
    }

    @Test("XML replies wrap the result, list members and escape text")
    func xml() {
        let reply = AWSQueryProtocol.reply(action: "ListMetrics", result: ["Metrics": [["MetricName": "a<b", "T": .timestamp(0)]]],
                                           namespace: "http://monitoring.amazonaws.com/doc/2010-08-01/", requestID: "r1")
        let text = String(decoding: reply.body, as: UTF8.self)
        #expect(text.contains("<ListMetricsResponse xmlns=\"http://monitoring.amazonaws.com/doc/2010-08-01/\"><ListMetricsResult><Metrics><member><MetricName>a&lt;b</MetricName><T>1970-01-01T00:00:00Z</T></member></Metrics></ListMetricsResult>"))
        #expect(text.contains("<RequestId>r1</RequestId>"))
        let error = AWSQueryProtocol.errorReply(AWSError("ResourceNotFound", "no & such", status: 404), namespace: "ns", requestID: "r2")
        #expect(error.status == 404)
        #expect(String(decoding: error.body, as: UTF8.self).contains("<Code>ResourceNotFound</Code><Message>no &amp; such</Message>"))
    }

    @Test("RPC v2 paths name service and operation; errors carry the query error header when asked")
    func rpcV2() throws {
        #expect(AWSRPCv2CBORProtocol.identify(path: "/service/GraniteServiceVersion20100801/operation/PutMetricData")! == ("GraniteServiceVersion20100801", "PutMetricData"))
        #expect(AWSRPCv2CBORProtocol.identify(path: "/service//operation/X") == nil)
        #expect(AWSRPCv2CBORProtocol.identify(path: "/service/A/operation/B/C") == nil)
        let reply = AWSDocumentCodec.errorReply(AWSError("ResourceNotFound", "gone", status: 404), .rpcV2CBOR, requestID: "r",
                                                AWSDocumentCodec.ServiceShape(queryCompatible: true))
        #expect(reply.status == 404)
        #expect(try CBOR.decode(reply.body) == ["__type": "ResourceNotFound", "message": "gone"])
        #expect(reply.headers.contains { $0.name == "x-amzn-query-error" && $0.value == "ResourceNotFound;Sender" })
        #expect(reply.headers.contains { $0.name == "smithy-protocol" && $0.value == "rpc-v2-cbor" })
    }

    @Test("ISO 8601 timestamps parse with fractions and offsets and print back")
    func timestamps() {
        #expect(AWSTimestamp.parseISO8601("2026-11-30T12:00:00Z") == 1_796_040_000)
        #expect(AWSTimestamp.parseISO8601("2026-11-30T12:00:00.5Z") == 1_796_040_000.5)
        #expect(AWSTimestamp.parseISO8601("2026-11-30T13:00:00+01:00") == 1_796_040_000)
        #expect(AWSTimestamp.parseISO8601("2026-11-30 12:00:00") == 1_796_040_000)
        #expect(AWSTimestamp.parseISO8601("2026-13-30T12:00:00Z") == nil)
        #expect(AWSTimestamp.iso8601(1_796_040_000.25) == "2026-11-30T12:00:00.250Z")
        #expect(AWSValue.string("2026-11-30T12:00:00Z").timestampValue == 1_796_040_000)
    }
}
