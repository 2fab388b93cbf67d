#if canImport(Glibc)
import Glibc
#endif
import TrailwatchCore
import TrailwatchRuntime

/// Reads a file descriptor in large chunks and emits batches of framed lines.
///
/// Each chunk becomes one ``ByteStorage``; the unterminated tail of a chunk is copied to the
/// front of the next one, so a batch never splits a line and no line is copied twice.
struct LineReader {
    let fd: Int32
    let origin: Origin
    let chunkSize: Int
    var framer: LineFramer
    private var carry: ByteStorage?
    private var carryCount = 0

    init(fd: Int32, origin: Origin, maxLineBytes: Int, chunkSize: Int) {
        self.fd = fd
        self.origin = origin
        self.framer = LineFramer(maxLineBytes: maxLineBytes)
        // A chunk must hold a whole capped line plus its terminator.
        self.chunkSize = Swift.max(chunkSize, maxLineBytes * 2 + 2)
    }

    enum ReadOutcome { case data, endOfInput, wouldBlock }

    /// Reads one chunk. Returns a batch of the complete lines read (possibly empty) and whether
    /// the input ended. At the end, the final unterminated line is emitted when `flushTail`.
    mutating func readChunk(flushTail: Bool) throws(SourceError) -> (LogBatch?, ReadOutcome) {
        let storage = ByteStorage(capacity: chunkSize)
        if let carry, carryCount > 0 {
            storage.mutableBase.copyMemory(from: carry.mutableBase, byteCount: carryCount)
        }
        var filled = carryCount
        var outcome = ReadOutcome.data
        let n = Glibc.read(fd, storage.mutableBase + filled, chunkSize - filled)
        if n < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK { outcome = .wouldBlock } else if errno == EINTR { outcome = .wouldBlock } else {
                throw SourceError.io(path: origin.logStream, errno: errno)
            }
        } else if n == 0 {
            outcome = .endOfInput
        } else {
            filled += n
        }
        let now = MonotonicClock.wallMillis()
        var batch = LogBatch(storage: storage, defaultTimestamp: now, ingestionTime: now, origin: origin)
        let tail = framer.frame(UnsafeRawPointer(storage.mutableBase), from: 0, end: filled, into: &batch)
        if outcome == .endOfInput && flushTail {
            framer.finish(UnsafeRawPointer(storage.mutableBase), from: tail, end: filled, into: &batch)
            carryCount = 0
            carry = nil
        } else {
            carryCount = filled - tail
            if carryCount > 0 {
                // Move the tail to a fresh block next time; keep this block immutable once published.
                let next = ByteStorage(capacity: carryCount)
                next.mutableBase.copyMemory(from: storage.mutableBase + tail, byteCount: carryCount)
                carry = next
            } else {
                carry = nil
            }
        }
        return (batch.isEmpty ? nil : batch, outcome)
    }

    /// Emits the unterminated tail as a final line (input ends or the pipeline stops).
    mutating func takeTail() -> LogBatch? {
        guard let carry, carryCount > 0 else { return nil }
        let now = MonotonicClock.wallMillis()
        var batch = LogBatch(storage: carry, defaultTimestamp: now, ingestionTime: now, origin: origin)
        framer.finish(UnsafeRawPointer(carry.mutableBase), from: 0, end: carryCount, into: &batch)
        self.carry = nil
        carryCount = 0
        return batch.isEmpty ? nil : batch
    }

    /// Bytes read but not yet emitted (an unterminated last line).
    var pendingBytes: Int { carryCount }
}

/// Errors sources report.
enum SourceError: Error, CustomStringConvertible {
    case io(path: String, errno: Int32)
    case open(path: String, errno: Int32)

    var description: String {
        switch self {
        case .io(let path, let e): "reading \(path): \(String(cString: strerror(e)))"
        case .open(let path, let e): "opening \(path): \(String(cString: strerror(e)))"
        }
    }
}
