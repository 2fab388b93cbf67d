#if canImport(Glibc)
import Glibc
#endif

/// Reads a `.jsonl.zst`, `.zst`, `.gz` or plain file as lines, decompressing as it goes (the
/// format is told by the first bytes, not the name). Every complete line reaches `line` before a
/// damaged or truncated input throws.
public struct ArchiveReader {
    public enum Format: String, Sendable { case zstd, gzip, plain, encrypted }

    public let path: String
    /// Keys for encrypted files (found by the key id in each file's header).
    public let keys: ArchiveKeyring

    public init(path: String, keys: ArchiveKeyring = .empty) {
        self.path = path
        self.keys = keys
    }

    public static func detect(_ head: [UInt8]) -> Format {
        if EncryptedArchive.isEncrypted(head) { return .encrypted }
        if head.count >= 4 && head[0] == 0x28 && head[1] == 0xB5 && head[2] == 0x2F && head[3] == 0xFD { return .zstd }
        if head.count >= 2 && head[0] == 0x1F && head[1] == 0x8B { return .gzip }
        return .plain
    }

    /// Calls `chunk` with decompressed bytes in order (any sizes), then reports damage by throwing.
    /// Returns the number of input (compressed) bytes read.
    @discardableResult
    public func read(_ chunk: (UnsafeRawBufferPointer) throws -> Void) throws -> Int64 {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ArchiveError.errno("cannot open", path) }
        defer { close(fd) }
        posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_SEQUENTIAL))
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        let decoder = ArchiveDecoder()
        var decryptor: ArchiveDecryptor?
        var format: Format?
        var total: Int64 = 0
        // Decompresses (or passes on) plaintext: the file's bytes, or what decryption yields.
        func decompress(_ input: UnsafeRawBufferPointer) throws { try decoder.feed(input, emit: chunk) }
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw ArchiveError.errno("cannot read", path) }
            if n == 0 { break }
            total += Int64(n)
            if format == nil {
                format = ArchiveReader.detect(Array(buffer[0..<min(n, 8)]))
                if format == .encrypted { decryptor = ArchiveDecryptor(path: path, keys: keys) }
            }
            try buffer.withUnsafeBytes { raw in
                let input = UnsafeRawBufferPointer(rebasing: raw[0..<n])
                if let decryptor { try decryptor.feed(input, emit: decompress) } else { try decompress(input) }
            }
        }
        try decryptor?.finish()
        try decoder.finish()
        return total
    }

    /// Calls `line` for each complete line (without its LF; a CR before it is dropped). A last line
    /// without LF counts only for plain files: in compressed ones it means the data was cut.
    public func lines(_ line: (UnsafeRawBufferPointer) throws -> Void) throws {
        var carry: [UInt8] = []
        var plain = true
        var damage: Error?
        do {
            try read { chunk in
                var start = 0
                let n = chunk.count
                while start < n {
                    guard let hit = memchr(chunk.baseAddress! + start, 0x0A, n - start) else {
                        carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start..<n]))
                        return
                    }
                    let end = chunk.baseAddress!.distance(to: UnsafeRawPointer(hit))
                    if carry.isEmpty {
                        var stop = end
                        if stop > start && chunk[stop - 1] == 0x0D { stop -= 1 }
                        try line(UnsafeRawBufferPointer(rebasing: chunk[start..<stop]))
                    } else {
                        carry.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[start..<end]))
                        if carry.last == 0x0D { carry.removeLast() }
                        try carry.withUnsafeBytes { try line($0) }
                        carry.removeAll(keepingCapacity: true)
                    }
                    start = end + 1
                }
            }
            plain = try ArchiveReader.detect(head()) == .plain
        } catch let error as CompressionError {
            damage = error
            plain = false
        }
        if !carry.isEmpty && plain { try carry.withUnsafeBytes { try line($0) } }
        if let damage { throw ArchiveError("\(path): \(damage)") }
    }

    private func head() throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 8)
        let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 8) }
        return Array(bytes.prefix(max(0, n)))
    }
}

/// Decodes archive bytes as they arrive, in pieces of any size: the format is told from the first
/// bytes (zstd, gzip, or plain), then decompressed pieces go to `emit` through bounded buffers.
public final class ArchiveDecoder {
    public private(set) var format: ArchiveReader.Format?
    private var decompressor: StreamDecompressor?

    public init() {}

    public func feed(_ input: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        if format == nil, input.count > 0 {
            let detected = ArchiveReader.detect(Array(input.prefix(4)))
            format = detected
            switch detected {
            case .zstd: decompressor = try StreamDecompressor(format: .zstd)
            case .gzip: decompressor = try StreamDecompressor(format: .gzip)
            case .plain, .encrypted: break
            }
        }
        if let decompressor { try decompressor.feed(input, emit: emit) } else { try emit(input) }
    }

    /// The input ended: throws when it stopped inside a frame or member.
    public func finish() throws { try decompressor?.finish() }
}
