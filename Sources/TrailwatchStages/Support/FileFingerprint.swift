#if canImport(Glibc)
import Glibc
#endif

/// A hash of a file's first bytes: recognises the same content under another inode (a copy made
/// by copytruncate) and tells a recreated file from the old one on a reused inode. Files shorter
/// than the full length get a fingerprint of what they have, extended as they grow.
struct FileFingerprint: Codable, Hashable, Sendable {
    /// How many leading bytes were hashed (0 for an empty file).
    var length: Int
    var hash: UInt64

    static let fullLength = 1024

    static let empty = FileFingerprint(length: 0, hash: 0)

    /// Fingerprint of the first min(size, fullLength) bytes of `fd`.
    static func read(fd: Int32, limit: Int = fullLength) -> FileFingerprint? {
        var buffer = [UInt8](repeating: 0, count: limit)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, limit, 0) }
        guard n >= 0 else { return nil }
        return FileFingerprint(length: n, hash: hash(buffer[0..<n]))
    }

    /// Whether `fd`'s first `length` bytes hash to this fingerprint (the file may be longer).
    func matches(fd: Int32) -> Bool {
        guard length > 0 else { return true }
        guard let other = FileFingerprint.read(fd: fd, limit: length), other.length == length else { return false }
        return other.hash == hash
    }

    var isComplete: Bool { length >= FileFingerprint.fullLength }

    /// How many bytes before a checkpointed offset are hashed (``FileCheckpoint/tail``).
    static let tailLength = 256

    /// Fingerprint of the up to ``tailLength`` bytes of `fd` that end at `offset`; nil when they
    /// cannot all be read (the file is shorter now).
    static func read(fd: Int32, endingAt offset: Int64) -> FileFingerprint? {
        let start = max(0, offset - Int64(tailLength))
        let count = Int(offset - start)
        guard count > 0 else { return .empty }
        var buffer = [UInt8](repeating: 0, count: count)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(start)) }
        guard n == count else { return nil }
        return FileFingerprint(length: n, hash: hash(buffer[0..<n]))
    }

    /// Whether `fd`'s bytes ending at `offset` hash to this tail fingerprint.
    func matches(fd: Int32, endingAt offset: Int64) -> Bool {
        guard length > 0 else { return true }
        guard offset >= Int64(length), let other = FileFingerprint.read(fd: fd, endingAt: offset) else { return false }
        return other == self
    }

    /// FNV-1a, 64 bit: stable across runs and platforms, which persisted checkpoints need.
    static func hash(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf29ce484222325
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x100000001b3
        }
        return h
    }
}
