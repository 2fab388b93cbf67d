import CZlib

/// Request bodies sent with `Content-Encoding: gzip` (botocore compresses PutMetricData bodies
/// over 10 KB). Inflated in memory with a bound: a small body that inflates beyond `limit`
/// (a decompression bomb) is refused, never expanded.
enum ContentEncoding {
    struct TooLarge: Error {}
    struct Corrupt: Error {}

    static func gunzip(_ input: [UInt8], limit: Int) throws -> [UInt8] {
        var stream = z_stream()
        guard tw_inflate_init_gzip(&stream) == Z_OK else { throw Corrupt() }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        output.reserveCapacity(min(limit, max(input.count * 4, 4096)))
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var input = input
        return try input.withUnsafeMutableBufferPointer { source throws -> [UInt8] in
            stream.next_in = source.baseAddress
            stream.avail_in = UInt32(source.count)
            while true {
                let status = chunk.withUnsafeMutableBufferPointer { buffer -> Int32 in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = UInt32(buffer.count)
                    return inflate(&stream, Z_NO_FLUSH)
                }
                let produced = chunk.count - Int(stream.avail_out)
                guard output.count + produced <= limit else { throw TooLarge() }
                output.append(contentsOf: chunk[..<produced])
                switch status {
                case Z_STREAM_END:
                    // Concatenated gzip members (RFC 1952) continue; anything else after the end is corrupt.
                    guard stream.avail_in > 0 else { return output }
                    guard inflateReset(&stream) == Z_OK else { throw Corrupt() }
                case Z_OK:
                    if produced == 0 && stream.avail_in == 0 { throw Corrupt() }   // truncated
                case Z_BUF_ERROR:
                    if stream.avail_in == 0 { throw Corrupt() }
                default:
                    throw Corrupt()
                }
            }
        }
    }
}
