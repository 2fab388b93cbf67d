/// An IPv4 or IPv6 address as 16 bytes (IPv4 in the first four), for the IP functions of queries.
///
/// IPv4: four decimal octets 0–255 without leading zeros (`10.0.0.1`). IPv6: the RFC 4291 text forms,
/// `::` compression and a trailing dotted IPv4 part included (`::ffff:10.0.0.1`); no zone (`%eth0`).
struct IPAddress: Equatable {
    var bytes: [UInt8]
    var isV6: Bool

    init?(_ text: String) {
        let b = Array(text.utf8)
        if b.isEmpty || b.count > 45 { return nil }
        if b.contains(UInt8(ascii: ":")) {
            guard let v6 = IPAddress.parseV6(b[...]) else { return nil }
            bytes = v6
            isV6 = true
        } else {
            guard let v4 = IPAddress.parseV4(b[...]) else { return nil }
            bytes = v4
            isV6 = false
        }
    }

    static func parseV4(_ b: ArraySlice<UInt8>) -> [UInt8]? {
        var out: [UInt8] = []
        var value = 0, digits = 0
        for c in b {
            if c == UInt8(ascii: ".") {
                guard digits > 0, out.count < 3 else { return nil }
                out.append(UInt8(value))
                value = 0
                digits = 0
            } else if c >= 48 && c <= 57 {
                if digits > 0 && value == 0 { return nil } // leading zero
                value = value * 10 + Int(c - 48)
                digits += 1
                guard value <= 255, digits <= 3 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0, out.count == 3 else { return nil }
        out.append(UInt8(value))
        return out
    }

    static func parseV6(_ b: ArraySlice<UInt8>) -> [UInt8]? {
        // Split at "::" (at most once), then each side into groups.
        var head: [UInt16] = [], tail: [UInt16] = []
        var v4Tail: [UInt8]? = nil
        let text = Array(b)
        var compressed = false
        var parts: [[UInt8]] = [[]]
        var i = 0
        while i < text.count {
            if text[i] == UInt8(ascii: ":") {
                if i + 1 < text.count, text[i + 1] == UInt8(ascii: ":") {
                    if compressed { return nil }
                    compressed = true
                    parts.append([UInt8(ascii: "|")]) // marker
                    parts.append([])
                    i += 2
                    continue
                }
                parts.append([])
            } else {
                parts[parts.count - 1].append(text[i])
            }
            i += 1
        }
        var side = 0
        for (k, part) in parts.enumerated() {
            if part == [UInt8(ascii: "|")] { side = 1; continue }
            if part.isEmpty {
                // Empty groups only next to the "::" marker (start or end of the text).
                let nextToMarker = (k > 0 && parts[k - 1] == [UInt8(ascii: "|")]) || (k + 1 < parts.count && parts[k + 1] == [UInt8(ascii: "|")])
                if nextToMarker { continue }
                return nil
            }
            if part.contains(UInt8(ascii: ".")) {
                guard k == parts.count - 1, let v4 = parseV4(part[...]) else { return nil }
                v4Tail = v4
                continue
            }
            guard part.count <= 4 else { return nil }
            var value: UInt16 = 0
            for c in part {
                let digit: UInt8
                switch c {
                case 48...57: digit = c - 48
                case 97...102: digit = c - 87
                case 65...70: digit = c - 55
                default: return nil
                }
                value = value << 4 | UInt16(digit)
            }
            if side == 0 { head.append(value) } else { tail.append(value) }
        }
        let groupsUsed = head.count + tail.count + (v4Tail == nil ? 0 : 2)
        if compressed {
            guard groupsUsed <= 7 else { return nil }
        } else {
            guard groupsUsed == 8 else { return nil }
        }
        var groups = head + [UInt16](repeating: 0, count: 8 - groupsUsed) + tail
        var out: [UInt8] = []
        if let v4Tail {
            groups = Array(groups.prefix(6))
            for g in groups { out.append(UInt8(g >> 8)); out.append(UInt8(g & 0xff)) }
            out += v4Tail
        } else {
            for g in groups { out.append(UInt8(g >> 8)); out.append(UInt8(g & 0xff)) }
        }
        return out.count == 16 ? out : nil
    }
}

/// A subnet in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`); a bare address is a /32 or /128.
struct IPSubnet {
    var network: IPAddress
    var prefixLength: Int
    var isV6: Bool { network.isV6 }

    init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(String(parts[0])) else { return nil }
        let maximum = address.isV6 ? 128 : 32
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), parts[1].count <= 3,
                  let length = Int(parts[1]), length <= maximum else { return nil }
            prefixLength = length
        } else {
            prefixLength = maximum
        }
        network = address
    }

    func contains(_ address: IPAddress) -> Bool {
        guard address.isV6 == network.isV6 else { return false }
        var remaining = prefixLength
        var k = 0
        while remaining > 0 {
            let bits = min(8, remaining)
            let mask: UInt8 = bits == 8 ? 0xff : UInt8(0xff) << UInt8(8 - bits)
            if address.bytes[k] & mask != network.bytes[k] & mask { return false }
            remaining -= bits
            k += 1
        }
        return true
    }
}
