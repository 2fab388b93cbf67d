import ByteJSON
import TrailwatchArchive
import TrailwatchCore

/// The stage code that reads untrusted bytes, callable on bytes in memory — no files, threads or
/// pipeline — so fuzz targets reach it directly (`trailwatch-fuzz archive-reader`, `cloudtrail`).
public enum InputProbes {
    /// Reads `bytes` as the `archive` source reads a file (zstd, gzip or plain, told apart by the first
    /// bytes), fed in pieces of `pieceSize`: decompression, line assembly and record parsing. Returns
    /// the events produced and whether the input was damaged.
    public static func archive(_ bytes: [UInt8], maxLineBytes: Int = 256 << 10, pieceSize: Int = 4096) -> (events: Int, damaged: Bool) {
        let parser = RecordChunkParser(maxLineBytes: maxLineBytes)
        var assembler = ArchiveLineAssembler(maxLineBytes: maxLineBytes)
        let origin = Origin(logGroup: "g", logStream: "s")
        var events = 0
        func parse(_ chunks: [ArchiveChunk]) {
            for chunk in chunks { events += parser.parse(chunk, now: 0, plainOrigin: origin).reduce(0) { $0 + $1.count } }
        }
        var damaged = false
        let decoder = ArchiveDecoder()
        do {
            var offset = 0
            while offset < bytes.count {
                let end = Swift.min(bytes.count, offset + Swift.max(1, pieceSize))
                try bytes[offset..<end].withUnsafeBytes { input in try decoder.feed(input) { parse(assembler.append($0)) } }
                offset = end
            }
            try decoder.finish()
        } catch {
            damaged = true
        }
        parse(assembler.finish(cleanEnd: !damaged))
        return (events, damaged)
    }

    /// Reads `bytes` as a CloudTrail delivery file: the records found, how many entries were not
    /// objects, or nil when the file is malformed.
    public static func cloudTrail(_ bytes: [UInt8]) -> (records: Int, skipped: Int)? {
        guard let (records, skipped) = try? CloudTrailSource.records(from: bytes) else { return nil }
        return (records.count, skipped)
    }
}
