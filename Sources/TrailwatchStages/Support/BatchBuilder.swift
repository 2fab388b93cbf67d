#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TrailwatchCore
import TrailwatchRuntime

/// Builds log batches from events that arrive one by one (decoded archive records, CloudTrail
/// records): messages are copied into one storage block per batch, up to `capacity` bytes.
struct LogBatchBuilder {
    let capacity: Int
    private var storage: ByteStorage
    private var used = 0
    private var batch: LogBatch?

    init(capacity: Int = 1 << 20) {
        self.capacity = capacity
        storage = ByteStorage(capacity: capacity)
    }

    var isEmpty: Bool { batch?.isEmpty ?? true }

    /// Adds an event; returns a finished batch first when this one would not fit or when the
    /// ingestion time changes (a batch has one ingestion time).
    mutating func append(_ message: UnsafeRawBufferPointer, timestamp: Int64, ingestionTime: Int64, origin: Origin,
                         flags: EventFlags = [], fields: Fields? = nil) -> LogBatch? {
        var finished: LogBatch?
        if let current = batch, used + message.count > capacity || current.ingestionTime != ingestionTime {
            finished = take()
        }
        if message.count > capacity - used {
            // An event larger than the block gets a block of its own.
            storage = ByteStorage(capacity: max(capacity, message.count))
            used = 0
        }
        if batch == nil {
            batch = LogBatch(storage: storage, defaultTimestamp: timestamp, ingestionTime: ingestionTime, origin: origin)
        }
        if let base = message.baseAddress, message.count > 0 {
            (storage.mutableBase + used).copyMemory(from: base, byteCount: message.count)
        }
        let originIndex = batch!.originIndex(for: origin)
        batch!.append(start: used, length: message.count, flags: flags, timestamp: timestamp, originIndex: originIndex)
        if let fields { batch!.setFields(fields, at: batch!.count - 1) }
        used += message.count
        return finished
    }

    /// The batch built so far (nil when empty); the next events go to a fresh block.
    mutating func take() -> LogBatch? {
        guard let finished = batch, !finished.isEmpty else { return nil }
        batch = nil
        storage = ByteStorage(capacity: capacity)
        used = 0
        return finished
    }
}

/// Progress of a batch run over many files, on stderr when it is a terminal (`--once` only).
final class ProgressMeter {
    let label: String
    let totalFiles: Int
    let totalBytes: Int64
    private let enabled: Bool
    private var filesDone = 0
    private var bytesDone: Int64 = 0
    private var events = 0
    private let started = MonotonicClock.nanos()
    private var lastPrint: Int64 = 0

    init(label: String, totalFiles: Int, totalBytes: Int64, enabled: Bool) {
        self.label = label
        self.totalFiles = totalFiles
        self.totalBytes = totalBytes
        self.enabled = enabled && isatty(STDERR_FILENO) == 1
    }

    func advance(events: Int = 0, bytes: Int64 = 0, file: Bool = false) {
        self.events += events
        bytesDone += bytes
        if file { filesDone += 1 }
        guard enabled else { return }
        let now = MonotonicClock.nanos()
        if now - lastPrint < 250_000_000 && !(file && filesDone == totalFiles) { return }
        lastPrint = now
        let seconds = max(Double(now - started) / 1e9, 0.001)
        let rate = Double(self.events) / seconds
        let fraction = totalBytes > 0 ? Double(bytesDone) / Double(totalBytes) : 0
        let eta = fraction > 0.001 ? seconds / fraction - seconds : 0
        let line = "\(label): \(filesDone)/\(totalFiles) files, \(RunSummary.bytes(Int(bytesDone))) of \(RunSummary.bytes(Int(totalBytes))), "
            + "\(Int(rate)) events/s, ETA \(Int(eta.rounded()))s"
        var text = "\r" + line + "\u{1B}[K"
        if filesDone == totalFiles { text += "\n" }
        _ = text.withCString { write(STDERR_FILENO, $0, strlen($0)) }
    }
}

/// The files a batch source reads, in its order, with their sizes for progress reporting.
struct BatchInputFiles {
    let paths: [String]
    let sizes: [Int64]

    init(include: [String], exclude: [String], context: StageContext, order: ([String]) -> [String]) {
        paths = order(PathGlob.expand(include: include, exclude: exclude).filter { !$0.hasSuffix(".partial") })
        if paths.isEmpty { context.log.log(.warning, context.id, "no file matches " + include.joined(separator: ", ")) }
        sizes = paths.map { path in
            var st = stat()
            return stat(path, &st) == 0 ? Int64(st.st_size) : 0
        }
    }

    func progress(_ context: StageContext) -> ProgressMeter {
        ProgressMeter(label: context.id, totalFiles: paths.count, totalBytes: sizes.reduce(0, +), enabled: context.once)
    }
}

/// Saves a detector's state under its stage directory: written to a temporary file (0640),
/// fsynced and renamed over the old one, then the directory fsynced, so a crash leaves either
/// the previous state or the new one, never half of one.
enum StageStateFile {
    static func write(_ data: Data, to path: String, directory: String) {
        try? writeDurably(data, to: path)
    }

    static func writeDurably(_ data: Data, to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o750])
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw CheckpointError(message: "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let written = data.withUnsafeBytes { FileIO.writeAll(fd, $0) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written && synced else { throw CheckpointError(message: "cannot write \(temporary): \(String(cString: strerror(errno)))") }
        guard rename(temporary, path) == 0 else { throw CheckpointError(message: "cannot replace \(path): \(String(cString: strerror(errno)))") }
        let dirfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 { fsync(dirfd); close(dirfd) }
    }
}
