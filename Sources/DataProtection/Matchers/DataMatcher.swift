#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds one kind of sensitive data in a message, byte by byte (no regular expressions: these run
/// on every event, so each is a hand-written scanner that skips what cannot start a match).
protocol DataMatcher: Sendable {
    /// Appends the byte ranges of every match in `text`, ascending and not overlapping.
    func scan(_ text: ByteText, into matches: inout [Range<Int>])
}

extension ByteText {
    /// Position of the next `byte` at or after `from` (memchr), or nil.
    @inline(__always) func find(_ byte: UInt8, from: Int) -> Int? {
        guard from < count, let hit = memchr(p + from, Int32(byte), count - from) else { return nil }
        return UnsafeRawPointer(hit) - UnsafeRawPointer(p)
    }
}
