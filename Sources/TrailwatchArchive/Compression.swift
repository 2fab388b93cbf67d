import CZstd
import CZlib

/// Why compressed input could not be read: what and where (offset in the compressed bytes).
public struct CompressionError: Error, Sendable, CustomStringConvertible {
    public var message: String
    /// Offset in the compressed input where the damage was noticed.
    public var offset: Int64
    public var description: String { "\(message) at compressed offset \(offset)" }
}

/// Streaming zstd compression into caller-provided sinks, with frame ends on demand: each
/// `endFrame` leaves the output a complete, independently decodable sequence of frames.
public final class ZstdCompressor {
    private let context: OpaquePointer
    private var output: [UInt8]

    /// - Parameters:
    ///   - level: zstd level (1–19).
    ///   - workers: extra compression threads (0 = compress on the calling thread).
    public init(level: Int32, workers: Int32 = 0) {
        context = ZSTD_createCCtx()
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
        if workers > 0 {
            ZSTD_CCtx_setParameter(context, ZSTD_c_nbWorkers, workers)
            // Small jobs keep the worker's buffers (and so the sink's memory) bounded.
            ZSTD_CCtx_setParameter(context, ZSTD_c_jobSize, 4 << 20)
        }
        ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
        output = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
    }

    deinit { ZSTD_freeCCtx(context) }

    public enum Mode { case `continue`, flush, end }

    /// Feeds `input`; every compressed piece goes to `emit` as it is produced.
    public func compress(_ input: UnsafeRawBufferPointer, mode: Mode = .continue,
                         emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        let directive: ZSTD_EndDirective = switch mode {
        case .continue: ZSTD_e_continue
        case .flush: ZSTD_e_flush
        case .end: ZSTD_e_end
        }
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        while true {
            let (remaining, produced) = output.withUnsafeMutableBytes { out -> (Int, Int) in
                var outBuffer = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
                let r = ZSTD_compressStream2(context, &outBuffer, &inBuffer, directive)
                return (r, outBuffer.pos)
            }
            if ZSTD_isError(remaining) != 0 {
                throw CompressionError(message: "zstd: " + String(cString: ZSTD_getErrorName(remaining)), offset: 0)
            }
            if produced > 0 { try output.withUnsafeBytes { try emit(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) } }
            let inputDone = inBuffer.pos == inBuffer.size
            if directive == ZSTD_e_continue ? inputDone : (inputDone && remaining == 0) { return }
        }
    }
}

/// Streaming decompression of `.zst` (any number of frames) and `.gz` (any number of members).
/// Input arrives in pieces; at the end, an unfinished frame or member is reported as truncation.
public final class StreamDecompressor {
    public enum Format { case zstd, gzip }

    let format: Format
    private var zstd: OpaquePointer?
    private var zlib = z_stream()
    private var zlibOpen = false
    private var output: [UInt8]
    /// Compressed bytes consumed so far.
    public private(set) var consumed: Int64 = 0
    /// Whether the last frame/member ended cleanly (nothing pending).
    private var atBoundary = true

    public init(format: Format) throws(CompressionError) {
        self.format = format
        output = [UInt8](repeating: 0, count: 1 << 17)
        switch format {
        case .zstd:
            zstd = ZSTD_createDCtx()
        case .gzip:
            guard tw_inflate_init_gzip(&zlib) == Z_OK else { throw CompressionError(message: "zlib: cannot initialise", offset: 0) }
            zlibOpen = true
        }
    }

    deinit {
        if let zstd { ZSTD_freeDCtx(zstd) }
        if zlibOpen { inflateEnd(&zlib) }
    }

    /// Decompresses `input`, handing every decompressed piece to `emit`.
    public func feed(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        switch format {
        case .zstd: try feedZstd(input, emit: emit)
        case .gzip: try feedGzip(input, emit: emit)
        }
    }

    /// The input ended: throws when it stopped inside a frame or member.
    public func finish() throws(CompressionError) {
        if !atBoundary {
            throw CompressionError(message: format == .zstd ? "truncated zstd frame" : "truncated gzip stream", offset: consumed)
        }
    }

    private func feedZstd(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        while inBuffer.pos < inBuffer.size {
            let before = inBuffer.pos
            let (hint, produced) = output.withUnsafeMutableBytes { out -> (Int, Int) in
                var outBuffer = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
                let r = ZSTD_decompressStream(zstd, &outBuffer, &inBuffer)
                return (r, outBuffer.pos)
            }
            if ZSTD_isError(hint) != 0 {
                throw CompressionError(message: "zstd: " + String(cString: ZSTD_getErrorName(hint)), offset: consumed + Int64(before))
            }
            if produced > 0 { try output.withUnsafeBytes { try emit(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) } }
            atBoundary = hint == 0
            if produced == 0 && inBuffer.pos == before { break }
        }
        // Flush whatever the decoder still holds for this input.
        while true {
            var inEmpty = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: input.count)
            let (hint, produced) = output.withUnsafeMutableBytes { out -> (Int, Int) in
                var outBuffer = ZSTD_outBuffer(dst: out.baseAddress, size: out.count, pos: 0)
                let r = ZSTD_decompressStream(zstd, &outBuffer, &inEmpty)
                return (r, outBuffer.pos)
            }
            if ZSTD_isError(hint) != 0 { break }
            // A call without input at a frame boundary only hints at the next header's size.
            guard produced > 0 else { break }
            try output.withUnsafeBytes { try emit(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) }
            atBoundary = hint == 0
            if produced < output.count { break }
        }
        consumed += Int64(input.count)
    }

    private func feedGzip(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let base = input.baseAddress, input.count > 0 else { return }
        zlib.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
        zlib.avail_in = uInt(input.count)
        while zlib.avail_in > 0 {
            let availBefore = Int(zlib.avail_in)
            let (rc, produced) = output.withUnsafeMutableBytes { out -> (Int32, Int) in
                zlib.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
                zlib.avail_out = uInt(out.count)
                let rc = inflate(&zlib, Z_NO_FLUSH)
                return (rc, out.count - Int(zlib.avail_out))
            }
            let used = availBefore - Int(zlib.avail_in)
            if produced > 0 { try output.withUnsafeBytes { try emit(UnsafeRawBufferPointer(rebasing: $0[0..<produced])) } }
            switch rc {
            case Z_STREAM_END:
                atBoundary = true
                consumed += Int64(used)
                // Another member may follow (concatenated gzip files).
                inflateReset(&zlib)
                continue
            case Z_OK, Z_BUF_ERROR:
                atBoundary = false
                consumed += Int64(used)
                if used == 0 && produced == 0 { return }
            default:
                let message = zlib.msg.map { String(cString: $0) } ?? "error \(rc)"
                throw CompressionError(message: "gzip: " + message, offset: consumed + Int64(used))
            }
        }
    }
}
