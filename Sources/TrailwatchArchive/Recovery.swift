#if canImport(Glibc)
import Glibc
#endif
import CZstd
import Foundation
import TrailwatchCore
import ByteJSON

/// Finishes `.partial` files a crash left behind: keeps their complete zstd frames (everything
/// that was synced, hence acknowledged), cuts anything after, renames them to their final name
/// and describes them for the digest.
public enum PartialFileRecovery {
    public static func partialFiles(under root: String, host: String) -> [String] {
        ArchiveVerifier.walk(root).filter {
            $0.hasSuffix(".jsonl.zst.partial") && ($0 as NSString).lastPathComponent.hasPrefix(ArchiveNaming.sanitize(host) + "_")
        }
    }

    /// `keys` decrypt encrypted partial files (the sink's own key when it can read): then the file
    /// is finished with an authenticated final chunk. Without a key that reads it (an X25519
    /// public key), the file keeps its chunks up to the last sync point and no final chunk:
    /// readers get every record, then an error saying it ends without its final chunk.
    public static func recover(root: String, relativePartial: String, keys: ArchiveKeyring = .empty) throws -> ArchiveFileEntry? {
        let path = root + "/" + relativePartial
        var bytes = try ArchiveIO.readFile(path)
        if EncryptedArchive.isEncrypted(Array(bytes.prefix(8))) {
            return try recoverEncrypted(root: root, relativePartial: relativePartial, bytes: bytes, keys: keys)
        }
        // Length of the complete frames at the front.
        var good = 0
        while good < bytes.count {
            let size = bytes.withUnsafeBytes { ZSTD_findFrameCompressedSize($0.baseAddress! + good, $0.count - good) }
            if ZSTD_isError(size) != 0 { break }
            good += size
        }
        if good < bytes.count {
            guard truncate(path, off_t(good)) == 0 else { throw ArchiveError.errno("cannot truncate", path) }
            bytes.removeSubrange(good...)
        }
        if good == 0 {
            unlink(path)
            return nil
        }
        return try finishRecovered(root: root, relativePartial: relativePartial, bytes: bytes, keys: keys, keyID: nil)
    }

    static func recoverEncrypted(root: String, relativePartial: String, bytes: [UInt8], keys: ArchiveKeyring) throws -> ArchiveFileEntry? {
        let path = root + "/" + relativePartial
        var bytes = bytes
        guard let good = try ArchiveDecryptor.syncedPrefix(bytes, path: path),
              let header = try EncryptedArchive.parseHeader(bytes[...], path: path), good > header.bytes.count else {
            // Not even a synced chunk: nothing in it was acknowledged.
            unlink(path)
            return nil
        }
        if good < bytes.count {
            guard truncate(path, off_t(good)) == 0 else { throw ArchiveError.errno("cannot truncate", path) }
            bytes.removeSubrange(good...)
        }
        guard keys.key(id: header.keyID) != nil else {
            // No key reads it: keep the synced chunks as they are (records unknown, counted as 0).
            let relative = String(relativePartial.dropLast(".partial".count))
            guard rename(path, root + "/" + relative) == 0 else { throw ArchiveError.errno("cannot rename", path) }
            ArchiveIO.syncDirectory(of: root + "/" + relative)
            return ArchiveFileEntry(path: relative, sha256: ArchiveIO.sha256Hex(bytes), size: Int64(bytes.count), records: 0,
                                    firstEventTime: Timestamps.iso8601(0), lastEventTime: Timestamps.iso8601(0),
                                    logGroup: header.group, logStream: header.stream, keyId: header.keyID)
        }
        // Authenticate every kept chunk, then seal the final one.
        let decryptor = ArchiveDecryptor(path: path, keys: keys)
        try bytes.withUnsafeBytes { try decryptor.feed($0) { _ in } }
        guard let (parsed, dataKey, chunks) = decryptor.resumeState else {
            throw ArchiveError("\(path): cannot resume the encrypted file")
        }
        let encryptor = ArchiveEncryptor(resuming: parsed, dataKey: dataKey, chunks: chunks)
        let fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard fd >= 0 else { throw ArchiveError.errno("cannot open", path) }
        defer { close(fd) }
        try encryptor.finish { piece in
            guard ArchiveIO.writeAll(fd, piece) else { throw ArchiveError.errno("cannot write", path) }
            bytes.append(contentsOf: piece)
        }
        guard fsync(fd) == 0 else { throw ArchiveError.errno("cannot sync", path) }
        return try finishRecovered(root: root, relativePartial: relativePartial, bytes: bytes, keys: keys, keyID: header.keyID)
    }

    /// Counts the records of a recovered file, renames it to its final name and describes it.
    static func finishRecovered(root: String, relativePartial: String, bytes: [UInt8], keys: ArchiveKeyring, keyID: String?) throws -> ArchiveFileEntry? {
        let path = root + "/" + relativePartial
        var records = 0
        var first = Int64.max, last = Int64.min
        var group = "", stream = ""
        let timestampPath = try JSONPath("$.timestamp"), groupPath = try JSONPath("$.group"), streamPath = try JSONPath("$.stream")
        let lookup = JSONMultiLookup([timestampPath, groupPath, streamPath])
        try ArchiveReader(path: path, keys: keys).lines { line in
            records += 1
            var results: [JSONLookup] = []
            lookup.resolve(in: line, into: &results)
            if let text = results[0].stringBytes(in: line), let time = text.withUnsafeBytes({ Timestamps.parseISO8601($0) }) {
                first = min(first, time)
                last = max(last, time)
            }
            if group.isEmpty, let g = results[1].stringBytes(in: line) { group = String(decoding: g, as: UTF8.self) }
            if stream.isEmpty, let s = results[2].stringBytes(in: line) { stream = String(decoding: s, as: UTF8.self) }
        }
        let relative = String(relativePartial.dropLast(".partial".count))
        guard rename(path, root + "/" + relative) == 0 else { throw ArchiveError.errno("cannot rename", path) }
        ArchiveIO.syncDirectory(of: root + "/" + relative)
        return ArchiveFileEntry(path: relative, sha256: ArchiveIO.sha256Hex(bytes), size: Int64(bytes.count), records: records,
                                firstEventTime: Timestamps.iso8601(first == .max ? 0 : first),
                                lastEventTime: Timestamps.iso8601(last == .min ? 0 : last), logGroup: group, logStream: stream, keyId: keyID)
    }
}
