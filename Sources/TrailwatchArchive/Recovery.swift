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

    public static func recover(root: String, relativePartial: String) throws -> ArchiveFileEntry? {
        let path = root + "/" + relativePartial
        var bytes = try ArchiveIO.readFile(path)
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
        var records = 0
        var first = Int64.max, last = Int64.min
        var group = "", stream = ""
        let timestampPath = try JSONPath("$.timestamp"), groupPath = try JSONPath("$.group"), streamPath = try JSONPath("$.stream")
        let lookup = JSONMultiLookup([timestampPath, groupPath, streamPath])
        try ArchiveReader(path: path).lines { line in
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
                                lastEventTime: Timestamps.iso8601(last == .min ? 0 : last), logGroup: group, logStream: stream)
    }
}
