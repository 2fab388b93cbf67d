/// A fast, stable 64-bit hash of strings (8 bytes per step), used to key per-minute attribute counts and to make
/// ``InsightKey`` cheap to hash. Collisions are astronomically unlikely for the handful of values seen per key and
/// minute; a collision would only merge two attribution values.
public enum FastHash {
    @inline(__always)
    static func mix(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let m = a.multipliedFullWidth(by: b ^ 0xe703_7ed1_a0b4_28db)
        return m.high ^ m.low
    }

    public static func hash(_ text: String, seed: UInt64 = 0xa076_1d64_78bd_642f) -> UInt64 {
        var copy = text
        return copy.withUTF8 { hash(bytes: UnsafeRawBufferPointer($0), seed: seed) }
    }

    /// The same hash over raw bytes (equal to ``hash(_:seed:)`` of the string they encode).
    @inline(__always)
    public static func hash(bytes buffer: UnsafeRawBufferPointer, seed: UInt64 = 0xa076_1d64_78bd_642f) -> UInt64 {
        var h = seed ^ UInt64(buffer.count)
        guard let raw = buffer.baseAddress else { return mix(h, 0x8ebc_6af0_9c88_c6e3) }
        var i = 0
        let n = buffer.count
        while i + 8 <= n {
            h = mix(h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self), 0x8ebc_6af0_9c88_c6e3)
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < n {
            tail |= UInt64(raw.load(fromByteOffset: i, as: UInt8.self)) << shift
            shift += 8
            i += 1
        }
        return mix(h ^ tail, 0x5899_65cc_7537_4cc3)
    }
}
