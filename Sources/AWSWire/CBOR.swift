#if canImport(Glibc)
import Glibc
#endif

/// CBOR (RFC 8949) for the Smithy RPC v2 CBOR protocol, to and from ``AWSValue``.
///
/// Hand-written because no package in the mirror speaks CBOR; it is small and exhaustively
/// tested (round trips, RFC 8949 appendix A vectors, truncation at every byte, fuzzing).
/// Decoding is hostile-input safe: lengths are checked against the bytes that remain before
/// anything is allocated, nesting is bounded, text must be valid UTF-8, map keys must be text.
public enum CBOR {
    public struct DecodingError: Error, Sendable, Equatable, CustomStringConvertible {
        public var offset: Int
        public var message: String
        public var description: String { "CBOR at byte \(offset): \(message)" }
    }

    // MARK: Encoding

    /// Definite lengths, the shortest integer forms, doubles as float64 (or float32 when exact,
    /// as Smithy allows), timestamps as tag 1 with an integer or a float64, map keys sorted.
    public static func encode(_ value: AWSValue) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        encode(value, into: &out)
        return out
    }

    public static func encode(_ value: AWSValue, into out: inout [UInt8]) {
        switch value {
        case .null: out.append(0xF6)
        case .bool(let flag): out.append(flag ? 0xF5 : 0xF4)
        case .int(let number):
            if number >= 0 { head(0, UInt64(number), &out) } else { head(1, UInt64(-(number + 1)), &out) }
        case .double(let number): double(number, &out)
        case .string(let text):
            var text = text
            text.withUTF8 { bytes in
                head(3, UInt64(bytes.count), &out)
                out.append(contentsOf: bytes)
            }
        case .blob(let bytes):
            head(2, UInt64(bytes.count), &out)
            out.append(contentsOf: bytes)
        case .timestamp(let seconds):
            out.append(0xC1)
            if seconds.rounded() == seconds, abs(seconds) < 9.2e18 { encode(.int(Int64(seconds)), into: &out) } else { double(seconds, &out) }
        case .list(let items):
            head(4, UInt64(items.count), &out)
            for item in items { encode(item, into: &out) }
        case .map(let members):
            head(5, UInt64(members.count), &out)
            for key in members.keys.sorted() {
                encode(.string(key), into: &out)
                encode(members[key]!, into: &out)
            }
        }
    }

    static func head(_ major: UInt8, _ argument: UInt64, _ out: inout [UInt8]) {
        let m = major << 5
        switch argument {
        case 0..<24: out.append(m | UInt8(argument))
        case 24...0xFF: out.append(m | 24); out.append(UInt8(argument))
        case 0x100...0xFFFF:
            out.append(m | 25)
            out.append(UInt8(argument >> 8)); out.append(UInt8(truncatingIfNeeded: argument))
        case 0x1_0000...0xFFFF_FFFF:
            out.append(m | 26)
            for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: argument >> UInt64(shift))) }
        default:
            out.append(m | 27)
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: argument >> UInt64(shift))) }
        }
    }

    static func double(_ number: Double, _ out: inout [UInt8]) {
        let single = Float(number)
        if Double(single) == number || number.isNaN {
            out.append(0xFA)
            let bits = number.isNaN ? Float.nan.bitPattern : single.bitPattern
            for shift in stride(from: 24, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: bits >> UInt32(shift))) }
        } else {
            out.append(0xFB)
            let bits = number.bitPattern
            for shift in stride(from: 56, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: bits >> UInt64(shift))) }
        }
    }

    // MARK: Decoding

    /// Decodes exactly one data item filling `bytes`. Tag 1 becomes ``AWSValue/timestamp(_:)``;
    /// other tags are read through (their content kept) except bignums (2, 3), which are refused.
    public static func decode(_ bytes: [UInt8], maxDepth: Int = 64) throws(DecodingError) -> AWSValue {
        try bytes.withUnsafeBufferPointer { buffer throws(DecodingError) in
            var reader = Reader(bytes: buffer, maxDepth: maxDepth)
            let value = try reader.item(depth: 0)
            guard reader.offset == buffer.count else { throw reader.fail("\(buffer.count - reader.offset) bytes after the data item") }
            return value
        }
    }

    struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        let maxDepth: Int
        var offset = 0
        /// The last list or map values of a few members (see ``memberValue(_:depth:)``).
        var repeats: [(key: String, depth: Int, start: Int, count: Int, value: AWSValue)] = []

        init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        func fail(_ message: String) -> DecodingError { DecodingError(offset: offset, message: message) }

        var remaining: Int { bytes.count - offset }

        mutating func byte() throws(DecodingError) -> UInt8 {
            guard offset < bytes.count else { throw fail("unexpected end of input") }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func big(_ count: Int) throws(DecodingError) -> UInt64 {
            guard remaining >= count else { throw fail("unexpected end of input") }
            var value: UInt64 = 0
            for _ in 0..<count { value = value << 8 | UInt64(bytes[offset]); offset += 1 }
            return value
        }

        /// The argument of a head; nil for indefinite length (additional information 31).
        mutating func argument(_ info: UInt8) throws(DecodingError) -> UInt64? {
            switch info {
            case 0..<24: return UInt64(info)
            case 24: return try big(1)
            case 25: return try big(2)
            case 26: return try big(4)
            case 27: return try big(8)
            case 31: return nil
            default: throw fail("reserved additional information \(info)")
            }
        }

        /// A definite length that the remaining input can hold (`unit` bytes at least per element).
        mutating func length(_ argument: UInt64, unit: Int) throws(DecodingError) -> Int {
            guard argument <= UInt64(remaining / unit) else { throw fail("length \(argument) exceeds the \(remaining) bytes left") }
            return Int(argument)
        }

        mutating func bytesOf(_ count: Int) -> UnsafeBufferPointer<UInt8> {
            defer { offset += count }
            return UnsafeBufferPointer(rebasing: bytes[offset..<offset + count])
        }

        mutating func text(_ raw: UnsafeBufferPointer<UInt8>) throws(DecodingError) -> String {
            // ASCII (nearly every member name and value) is valid as it is; String(validating:)
            // goes through generic code that took a tenth of PutMetricData's CPU.
            var ascii = true
            for byte in raw where byte >= 0x80 {
                ascii = false
                break
            }
            if ascii { return String(decoding: raw, as: UTF8.self) }
            guard let text = String(validating: raw, as: UTF8.self) else { throw fail("text string is not valid UTF-8") }
            return text
        }

        /// The chunks of an indefinite-length string of `major` type.
        mutating func chunks(_ major: UInt8) throws(DecodingError) -> [UInt8] {
            var out: [UInt8] = []
            while true {
                let initial = try byte()
                if initial == 0xFF { return out }
                guard initial >> 5 == major, let count = try argument(initial & 0x1F) else {
                    throw fail("an indefinite-length string holds a chunk that is not a definite string of its type")
                }
                let n = try length(count, unit: 1)
                out.append(contentsOf: bytesOf(n))
            }
        }

        mutating func item(depth: Int) throws(DecodingError) -> AWSValue {
            guard depth <= maxDepth else { throw fail("nesting deeper than \(maxDepth)") }
            let initial = try byte()
            let major = initial >> 5
            let info = initial & 0x1F
            switch major {
            case 0:
                guard let n = try argument(info) else { throw fail("indefinite length on an integer") }
                guard n <= UInt64(Int64.max) else { throw fail("integer \(n) does not fit 64 signed bits") }
                return .int(Int64(n))
            case 1:
                guard let n = try argument(info) else { throw fail("indefinite length on an integer") }
                guard n <= UInt64(Int64.max) else { throw fail("negative integer does not fit 64 signed bits") }
                return .int(-1 - Int64(n))
            case 2:
                guard let n = try argument(info) else { return .blob(try chunks(2)) }
                return .blob(Array(bytesOf(try length(n, unit: 1))))
            case 3:
                guard let n = try argument(info) else {
                    let raw = try chunks(3)
                    return .string(try raw.withUnsafeBufferPointer { buffer throws(DecodingError) in try text(buffer) })
                }
                let raw = bytesOf(try length(n, unit: 1))
                return .string(try text(raw))
            case 4:
                var items: [AWSValue] = []
                if let n = try argument(info) {
                    let count = try length(n, unit: 1)
                    items.reserveCapacity(count)
                    for _ in 0..<count { items.append(try item(depth: depth + 1)) }
                } else {
                    while true {
                        guard offset < bytes.count else { throw fail("unexpected end of input") }
                        if bytes[offset] == 0xFF { offset += 1; break }
                        items.append(try item(depth: depth + 1))
                    }
                }
                return .list(items)
            case 5:
                var members: [String: AWSValue] = [:]
                if let n = try argument(info) {
                    let count = try length(n, unit: 2)
                    members.reserveCapacity(count)
                    for _ in 0..<count { try member(into: &members, depth: depth) }
                } else {
                    while true {
                        guard offset < bytes.count else { throw fail("unexpected end of input") }
                        if bytes[offset] == 0xFF { offset += 1; break }
                        try member(into: &members, depth: depth)
                    }
                }
                return .map(members)
            case 6:
                guard let tag = try argument(info) else { throw fail("indefinite length on a tag") }
                let start = offset
                let content = try item(depth: depth + 1)
                switch tag {
                case 1:
                    switch content {
                    case .int(let seconds): return .timestamp(Double(seconds))
                    case .double(let seconds): return .timestamp(seconds)
                    default:
                        offset = start
                        throw fail("tag 1 (epoch time) holds neither an integer nor a float")
                    }
                case 2, 3:
                    offset = start
                    throw fail("bignums (tag \(tag)) are not supported")
                default:
                    return content
                }
            default:
                switch info {
                case 20: return .bool(false)
                case 21: return .bool(true)
                case 22, 23: return .null
                case 25: return .double(Double(Self.half(UInt16(try big(2)))))
                case 26: return .double(Double(Float(bitPattern: UInt32(try big(4)))))
                case 27: return .double(Double(bitPattern: try big(8)))
                case 31: throw fail("unexpected break")
                default: throw fail("unsupported simple value \(info)")
                }
            }
        }

        mutating func member(into members: inout [String: AWSValue], depth: Int) throws(DecodingError) {
            let keyOffset = offset
            guard case .string(let key) = try item(depth: depth + 1) else {
                offset = keyOffset
                throw fail("map keys must be text strings")
            }
            let value = try memberValue(key, depth: depth + 1)
            guard members.updateValue(value, forKey: key) == nil else {
                offset = keyOffset
                throw fail("duplicate map key '\(key)'")
            }
        }

        /// A member's value. Lists and maps whose bytes repeat the previous value of the same member
        /// (every PutMetricData item's Dimensions, say) are decoded once and shared: equal bytes at
        /// the same depth decode to equal values.
        mutating func memberValue(_ key: String, depth: Int) throws(DecodingError) -> AWSValue {
            guard offset < bytes.count, (4...5).contains(bytes[offset] >> 5) else { return try item(depth: depth) }
            if let slot = repeats.firstIndex(where: { $0.key == key && $0.depth == depth }) {
                let seen = repeats[slot]
                if seen.count <= remaining,
                   memcmp(bytes.baseAddress! + seen.start, bytes.baseAddress! + offset, seen.count) == 0 {
                    offset += seen.count
                    return seen.value
                }
                repeats.remove(at: slot)
            }
            let start = offset
            let value = try item(depth: depth)
            if repeats.count == 4 { repeats.removeFirst() }
            repeats.append((key, depth, start, offset - start, value))
            return value
        }

        /// IEEE 754 half precision to single.
        static func half(_ bits: UInt16) -> Float {
            let sign: Float = bits & 0x8000 != 0 ? -1 : 1
            let exponent = Int((bits >> 10) & 0x1F)
            let mantissa = Float(bits & 0x3FF)
            switch exponent {
            case 0: return sign * mantissa * 0x1p-24
            case 31: return mantissa == 0 ? sign * .infinity : .nan
            default: return sign * (1 + mantissa / 1024) * Float(sign: .plus, exponent: exponent - 15, significand: 1)
            }
        }
    }
}
