#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CShims

/// Substring search over bytes (memmem), the primitive behind terms, phrases and literal regexes.
enum ByteSearch {
    /// Offset of the first occurrence of `needle` in `p[start..<end]`, or nil. An empty needle is found at `start`.
    @inline(__always)
    static func find(_ needle: [UInt8], in p: UnsafePointer<UInt8>, _ start: Int, _ end: Int) -> Int? {
        if needle.isEmpty { return start }
        if end - start < needle.count { return nil }
        return needle.withUnsafeBufferPointer { nb -> Int? in
            if nb.count == 1 {
                guard let hit = memchr(p + start, Int32(nb[0]), end - start) else { return nil }
                return UnsafeRawPointer(hit) - UnsafeRawPointer(p)
            }
            guard let hit = tw_memmem(p + start, end - start, nb.baseAddress!, nb.count) else { return nil }
            return hit - UnsafeRawPointer(p)
        }
    }
}
