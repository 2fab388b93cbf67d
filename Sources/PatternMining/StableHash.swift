/// FNV-1a 64-bit hashing.
///
/// Template identifiers and token fingerprints are persisted and compared across runs and machines, so they must
/// not use Swift's `Hasher` (randomly seeded per process). FNV-1a is simple, fast enough on short tokens and stable.
@usableFromInline
enum StableHash {
    @usableFromInline static let offsetBasis: UInt64 = 0xcbf2_9ce4_8422_2325
    @usableFromInline static let prime: UInt64 = 0x0000_0100_0000_01b3

    /// Folds one byte into a running hash.
    @inlinable @inline(__always)
    static func mix(_ hash: UInt64, _ byte: UInt8) -> UInt64 {
        (hash ^ UInt64(byte)) &* prime
    }

    /// Folds a 64-bit value (e.g. a token hash) into a running hash.
    @inlinable @inline(__always)
    static func combine(_ hash: UInt64, _ value: UInt64) -> UInt64 {
        var h = hash ^ value
        h = (h ^ (h >> 29)) &* 0xbf58_476d_1ce4_e5b9
        return (h ^ (h >> 32)) &* prime
    }

    /// Hash of a whole byte sequence.
    @inlinable
    static func hash<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 {
        var h = offsetBasis
        for b in bytes { h = mix(h, b) }
        return h
    }

    /// Hash of a string's UTF-8 bytes.
    @inlinable
    static func hash(_ text: String) -> UInt64 { hash(text.utf8) }
}
