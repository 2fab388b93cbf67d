#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A fixed block of bytes that many batches can share.
///
/// A producer fills the block through ``mutableBase`` *before* publishing it; from then on the
/// block is immutable, which is why sharing it across tasks is sound. Filters that drop events keep
/// pointing into the same block instead of copying the survivors.
public final class ByteStorage: @unchecked Sendable {
    /// Start of the block. Only the producer writes through it, and only before publishing.
    public let mutableBase: UnsafeMutableRawPointer
    /// Allocated size in bytes.
    public let capacity: Int

    /// Allocates `capacity` bytes (at least one).
    public init(capacity: Int) {
        self.capacity = Swift.max(capacity, 1)
        self.mutableBase = UnsafeMutableRawPointer.allocate(byteCount: self.capacity, alignment: 16)
    }

    /// Copies `bytes` into a new block of exactly that size.
    ///
    /// Inlinable, and one `memcpy` for contiguous bytes: unspecialised across the module
    /// boundary, the generic element-by-element copy cost half of PutLogEvents' server CPU.
    @inlinable
    public convenience init<C: Collection>(copying bytes: C) where C.Element == UInt8 {
        self.init(capacity: bytes.count)
        let copied: Bool? = bytes.withContiguousStorageIfAvailable { source in
            if let base = source.baseAddress, source.count > 0 { mutableBase.copyMemory(from: base, byteCount: source.count) }
            return true
        }
        if copied == nil {
            let target = UnsafeMutableRawBufferPointer(start: mutableBase, count: capacity)
            _ = target.initializeMemory(as: UInt8.self, from: bytes)
        }
    }

    deinit { mutableBase.deallocate() }

    /// Read-only view of `count` bytes starting at `offset`.
    @inlinable
    public func bytes(at offset: Int, count: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: mutableBase + offset, count: count)
    }

    /// The whole block, read-only.
    public var allBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: mutableBase, count: capacity) }
}

/// A growable byte buffer for building output (JSON lines, compressed frames) without `String`.
public struct ByteBuffer: Sendable {
    public var bytes: [UInt8]

    public init(reservingCapacity capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public var count: Int { bytes.count }
    public mutating func reserveCapacity(_ n: Int) { bytes.reserveCapacity(n) }
    public var isEmpty: Bool { bytes.isEmpty }

    @inlinable public mutating func append(_ byte: UInt8) { bytes.append(byte) }
    /// Typed as `UInt8` so the copy is one memcpy rather than a byte loop.
    @inlinable public mutating func append(_ raw: UnsafeRawBufferPointer) { bytes.append(contentsOf: raw.assumingMemoryBound(to: UInt8.self)) }
    @inlinable public mutating func append<S: Sequence>(contentsOf other: S) where S.Element == UInt8 {
        bytes.append(contentsOf: other)
    }
    public mutating func append(_ string: String) { bytes.append(contentsOf: string.utf8) }

    /// Appends a non-negative or negative integer in decimal without going through `String`.
    public mutating func appendDecimal(_ value: Int64) {
        if value == 0 { bytes.append(UInt8(ascii: "0")); return }
        var v = value.magnitude
        if value < 0 { bytes.append(UInt8(ascii: "-")) }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var n = 0
        withUnsafeMutableBytes(of: &digits) { d in
            while v > 0 { d[n] = UInt8(ascii: "0") + UInt8(v % 10); v /= 10; n += 1 }
            for i in stride(from: n - 1, through: 0, by: -1) { bytes.append(d[i]) }
        }
    }

    public mutating func removeAll(keepingCapacity: Bool = true) { bytes.removeAll(keepingCapacity: keepingCapacity) }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try bytes.withUnsafeBytes(body)
    }
}
