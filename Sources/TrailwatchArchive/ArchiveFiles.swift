#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import TrailwatchCore

/// What the digest records about one finished archive file.
public struct ArchiveFileEntry: Codable, Sendable, Equatable {
    /// Path relative to the archive root.
    public var path: String
    public var sha256: String
    public var size: Int64
    public var records: Int
    public var firstEventTime: String
    public var lastEventTime: String
    public var logGroup: String
    public var logStream: String
    /// The id of the key the file is encrypted with (nil: not encrypted).
    public var keyId: String?

    public init(path: String, sha256: String, size: Int64, records: Int, firstEventTime: String, lastEventTime: String,
                logGroup: String, logStream: String, keyId: String? = nil) {
        self.path = path
        self.sha256 = sha256
        self.size = size
        self.records = records
        self.firstEventTime = firstEventTime
        self.lastEventTime = lastEventTime
        self.logGroup = logGroup
        self.logStream = logStream
        self.keyId = keyId
    }
}

/// Errors writing or reading archives.
public struct ArchiveError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }

    static func errno(_ what: String, _ path: String) -> ArchiveError {
        ArchiveError("\(what) \(path): \(String(cString: strerror(Glibc.errno)))")
    }
}

/// Low-level file helpers with the permissions archives need.
public enum ArchiveIO {
    /// Creates `path` and its parents with mode 0750.
    public static func makeDirectories(_ path: String) throws(ArchiveError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o750) != 0 && Glibc.errno != EEXIST { throw ArchiveError.errno("cannot create directory", current) }
        }
    }

    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 { if Glibc.errno == EINTR { continue }; return false }
            offset += n
        }
        return true
    }

    public static func syncDirectory(of path: String) {
        let directory = (path as NSString).deletingLastPathComponent
        let fd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 { fsync(fd); close(fd) }
    }

    /// Writes `bytes` to `path` atomically (temporary file, fsync, rename, directory fsync), mode 0640.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws(ArchiveError) {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw ArchiveError.errno("cannot create", temporary) }
        let ok = bytes.withUnsafeBytes { writeAll(fd, $0) } && fsync(fd) == 0
        close(fd)
        guard ok, rename(temporary, path) == 0 else { throw ArchiveError.errno("cannot write", path) }
        syncDirectory(of: path)
    }

    public static func readFile(_ path: String) throws(ArchiveError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else { throw ArchiveError("cannot read \(path)") }
        return [UInt8](data)
    }

    public static func sha256Hex(_ bytes: [UInt8]) -> String {
        SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
    }

    public static func sha256Hex(ofFile path: String) throws(ArchiveError) -> (String, Int64) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ArchiveError.errno("cannot open", path) }
        defer { close(fd) }
        var hasher = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var size: Int64 = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if Glibc.errno == EINTR { continue }; throw ArchiveError.errno("cannot read", path) }
            if n == 0 { break }
            buffer.withUnsafeBytes { hasher.update(bufferPointer: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            size += Int64(n)
        }
        return (hasher.finalize().map { String(format: "%02x", $0) }.joined(), size)
    }
}

/// One archive file being written: JSON-lines records through streaming zstd (and, with a key,
/// streaming AES-256-GCM: see ``EncryptedArchive``) into `<name>.partial`, hashed as written.
/// ``sync()`` ends the current zstd frame (and seals a sync-point chunk) and fsyncs, so everything
/// acknowledged so far survives a crash as complete frames; ``finish()`` renames the file to its
/// final name.
public final class ArchiveFileWriter {
    public let root: String
    public let relativePath: String
    public let logGroup: String
    public let logStream: String
    private let fd: Int32
    private let compressor: ZstdCompressor
    private var hasher = SHA256()
    public private(set) var compressedBytes: Int64 = 0
    public private(set) var records = 0
    public private(set) var firstEventTime: Int64 = .max
    public private(set) var lastEventTime: Int64 = .min
    public let openedAt: Int64
    private var framePending = false
    private let encryptor: ArchiveEncryptor?

    public var partialPath: String { root + "/" + relativePath + ".partial" }
    public var finalPath: String { root + "/" + relativePath }

    public init(root: String, relativePath: String, logGroup: String, logStream: String, level: Int32, workers: Int32,
                now: Int64, encryption: ArchiveKey? = nil, chunkSize: Int = 1 << 20) throws(ArchiveError) {
        self.root = root
        self.relativePath = relativePath
        self.logGroup = logGroup
        self.logStream = logStream
        self.openedAt = now
        let path = root + "/" + relativePath + ".partial"
        try ArchiveIO.makeDirectories((path as NSString).deletingLastPathComponent)
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw ArchiveError.errno("cannot create", path) }
        compressor = ZstdCompressor(level: level, workers: workers)
        encryptor = try encryption.map { key throws(ArchiveError) in
            try ArchiveEncryptor(key: key, group: logGroup, stream: logStream, chunkSize: chunkSize)
        }
    }

    deinit { close(fd) }

    /// Appends JSON lines (already encoded) holding `count` records spanning the given times.
    public func append(_ lines: UnsafeRawBufferPointer, count: Int, firstTime: Int64, lastTime: Int64) throws {
        guard count > 0 else { return }
        try compressor.compress(lines, mode: .continue) { try self.output($0) }
        records += count
        firstEventTime = min(firstEventTime, firstTime)
        lastEventTime = max(lastEventTime, lastTime)
        framePending = true
    }

    private func output(_ bytes: UnsafeRawBufferPointer) throws {
        if let encryptor { try encryptor.write(bytes) { try self.store($0) } } else { try store(bytes) }
    }

    /// Writes bytes as they go to disk (ciphertext when encrypting): what the digest hashes.
    private func store(_ bytes: UnsafeRawBufferPointer) throws {
        guard ArchiveIO.writeAll(fd, bytes) else { throw ArchiveError.errno("cannot write", partialPath) }
        hasher.update(bufferPointer: bytes)
        compressedBytes += Int64(bytes.count)
    }

    private func endFrame() throws {
        if framePending {
            try compressor.compress(UnsafeRawBufferPointer(start: nil, count: 0), mode: .end) { try self.output($0) }
            framePending = false
        }
    }

    /// Ends the current frame and makes everything written durable.
    public func sync() throws {
        try endFrame()
        try encryptor?.flush { try self.store($0) }
        guard fsync(fd) == 0 else { throw ArchiveError.errno("cannot sync", partialPath) }
    }

    /// Syncs, renames to the final name and describes the file for the digest.
    public func finish() throws -> ArchiveFileEntry {
        if let encryptor {
            try endFrame()
            try encryptor.finish { try self.store($0) }
        }
        try sync()
        guard rename(partialPath, finalPath) == 0 else { throw ArchiveError.errno("cannot rename", partialPath) }
        ArchiveIO.syncDirectory(of: finalPath)
        return ArchiveFileEntry(path: relativePath, sha256: hasher.finalize().map { String(format: "%02x", $0) }.joined(),
                                size: compressedBytes, records: records,
                                firstEventTime: Timestamps.iso8601(firstEventTime), lastEventTime: Timestamps.iso8601(lastEventTime),
                                logGroup: logGroup, logStream: logStream, keyId: encryptor?.keyID)
    }
}

/// The CloudTrail-like layout: `<prefix>/<log group>/YYYY/MM/DD/<host>_<stream>_<start>_<id>.jsonl.zst`.
public enum ArchiveNaming {
    /// A path component made safe: `/` and other awkward bytes become `_`, leading dots dropped.
    public static func sanitize(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            let c = Character(scalar)
            out.append(c.isLetter || c.isNumber || "-_.".contains(c) ? c : "_")
        }
        while out.hasPrefix(".") || out.hasPrefix("_") { out.removeFirst() }
        return out.isEmpty ? "_" : String(out.prefix(120))
    }

    public static func relativePath(prefix: String, logGroup: String, host: String, logStream: String, start: Int64, id: String) -> String {
        let (y, m, d) = Timestamps.civilFromDays(Int((start >= 0 ? start : start - 86_399_999) / 86_400_000))
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let stamp = compactTime(start)
        var parts: [String] = []
        if !prefix.isEmpty { parts.append(prefix) }
        parts += [sanitize(logGroup), String(y), two(m), two(d), "\(sanitize(host))_\(sanitize(logStream))_\(stamp)_\(id).jsonl.zst"]
        return parts.joined(separator: "/")
    }

    /// `YYYYMMDDTHHMMSSZ`.
    public static func compactTime(_ ms: Int64) -> String {
        let iso = Timestamps.iso8601(ms)  // 2026-11-24T10:00:00.000Z
        let digits = iso.filter { $0.isNumber }
        let date = digits.prefix(8), time = digits.dropFirst(8).prefix(6)
        return "\(date)T\(time)Z"
    }

    /// A short random id (hex), so two writers never collide.
    public static func randomID() -> String {
        var bytes = [UInt8](repeating: 0, count: 8)
        for i in bytes.indices { bytes[i] = UInt8.random(in: 0...255) }
        return bytes.map { String(format: "%02x", $0) }.joined()
    }
}
