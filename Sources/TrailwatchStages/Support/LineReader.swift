#if canImport(Glibc)
import Glibc
#endif
import TrailwatchCore
import TrailwatchRuntime

/// Reads a file descriptor in large chunks and emits batches of framed events.
///
/// Each chunk becomes one ``ByteStorage``; the unterminated tail of a chunk (and, with
/// multiline, the event that may still grow) is copied to the front of the next one, so a batch
/// never splits an event and no byte is copied more than once per held event.
struct LineReader {
    /// The descriptor being read; a source may point it at another file holding the same bytes
    /// (a copy made by copytruncate) and back.
    var fd: Int32
    let origin: Origin
    let chunkSize: Int
    var framer: LineFramer
    let shaper: EventShaper?
    private var carry: ByteStorage?
    private var carryCount = 0
    /// Bytes at the front of the carry that are complete lines of a held multiline event.
    private var heldCompleteBytes = 0
    /// When the held event last grew (wall ms), for the multiline timeout.
    private(set) var heldSince: Int64 = 0
    /// Offset in the input just past the last byte read.
    private(set) var position: Int64
    /// Ingestion times and the multiline timeout read it (the stage's clock).
    let clock: any StageClock

    init(fd: Int32, origin: Origin, maxLineBytes: Int, chunkSize: Int, shaper: EventShaper? = nil, position: Int64 = 0,
         clock: any StageClock = SystemClock()) {
        self.clock = clock
        self.fd = fd
        self.origin = origin
        self.framer = LineFramer(maxLineBytes: maxLineBytes)
        self.shaper = shaper.flatMap { $0.isIdentity ? nil : $0 }
        self.position = position
        // A chunk must hold a held event and a whole capped line plus its terminator.
        self.chunkSize = Swift.max(chunkSize, maxLineBytes * 2 + 2)
    }

    enum ReadOutcome { case data, endOfInput, wouldBlock }

    /// Reads one chunk. Returns a batch of the complete events read (possibly nil) and whether
    /// the input ended. At the end, a final unterminated line or held event is emitted when `flushTail`.
    mutating func readChunk(flushTail: Bool) throws(SourceError) -> (LogBatch?, ReadOutcome) {
        let storage = ByteStorage(capacity: chunkSize)
        if let carry, carryCount > 0 {
            storage.mutableBase.copyMemory(from: carry.mutableBase, byteCount: carryCount)
        }
        var filled = carryCount
        var outcome = ReadOutcome.data
        let n = Glibc.read(fd, storage.mutableBase + filled, chunkSize - filled)
        if n < 0 {
            if errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR { outcome = .wouldBlock } else {
                throw SourceError.io(path: origin.logStream, errno: errno)
            }
        } else if n == 0 {
            outcome = .endOfInput
        } else {
            filled += n
            position += Int64(n)
        }
        let flush = outcome == .endOfInput && flushTail
        // Nothing new: what is kept stays kept, unchanged.
        if n <= 0 && (carryCount == 0 || !flush) { return (nil, outcome) }
        return (frame(storage, filled: filled, flush: flush, held: !flush), outcome)
    }

    /// Frames `storage[0..<filled]`, keeps what may still grow as the next carry, and returns
    /// the finished events.
    private mutating func frame(_ storage: ByteStorage, filled: Int, flush: Bool, held: Bool) -> LogBatch? {
        let now = clock.nowMillis()
        var batch = LogBatch(storage: storage, defaultTimestamp: now, ingestionTime: now, origin: origin)
        let base = UnsafeRawPointer(storage.mutableBase)
        let tail = framer.frame(base, from: 0, end: filled, into: &batch)
        var keepFrom = tail
        if flush {
            framer.finish(base, from: tail, end: filled, into: &batch)
            keepFrom = filled
        }
        let previouslyHeld = heldCompleteBytes
        heldCompleteBytes = 0
        if let grouper = shaper?.grouper {
            let (events, heldFrom) = grouper.group(batch, holdLast: held)
            batch = events
            if let heldFrom {
                heldCompleteBytes = tail - heldFrom
                keepFrom = heldFrom
            }
        }
        // The timeout counts from the last line that joined the held event.
        if heldCompleteBytes == 0 { heldSince = 0 } else if heldCompleteBytes != previouslyHeld { heldSince = now }
        carryCount = filled - keepFrom
        if carryCount > 0 {
            // Move the tail to a fresh block next time; keep this block immutable once published.
            let next = ByteStorage(capacity: carryCount)
            next.mutableBase.copyMemory(from: storage.mutableBase + keepFrom, byteCount: carryCount)
            carry = next
        } else {
            carry = nil
        }
        shaper?.finishBatch(&batch)
        return batch.isEmpty ? nil : batch
    }

    /// Sends a held multiline event that waited `timeout` without a next line (live mode).
    mutating func flushHeldEvent(now: Int64) -> LogBatch? {
        guard let grouper = shaper?.grouper, heldCompleteBytes > 0, let carry,
              now - heldSince >= grouper.timeoutMillis else { return nil }
        var batch = LogBatch(storage: carry, defaultTimestamp: now, ingestionTime: now, origin: origin)
        let base = UnsafeRawPointer(carry.mutableBase)
        let end = framer.frame(base, from: 0, end: heldCompleteBytes, into: &batch)
        precondition(end == heldCompleteBytes)
        batch = grouper.group(batch, holdLast: false).events
        let rest = carryCount - heldCompleteBytes
        if rest > 0 {
            let next = ByteStorage(capacity: rest)
            next.mutableBase.copyMemory(from: carry.mutableBase + heldCompleteBytes, byteCount: rest)
            self.carry = next
        } else {
            self.carry = nil
        }
        carryCount = rest
        heldCompleteBytes = 0
        heldSince = 0
        shaper?.finishBatch(&batch)
        return batch.isEmpty ? nil : batch
    }

    /// Emits everything still kept (an unterminated last line, a held event) as final events.
    mutating func takeTail() -> LogBatch? {
        guard let carry, carryCount > 0 else { return nil }
        let count = carryCount
        self.carry = nil
        carryCount = 0
        return frame(carry, filled: count, flush: true, held: false)
    }

    /// Forgets what is kept and continues at `position` (a file restarted after truncation).
    mutating func restart(at newPosition: Int64) {
        carry = nil
        carryCount = 0
        heldCompleteBytes = 0
        heldSince = 0
        position = newPosition
        framer = LineFramer(maxLineBytes: framer.maxLineBytes)
    }

    /// Reads the next bytes from another descriptor positioned at the same offset (a copy).
    mutating func continueReading(from otherFD: Int32, at offset: Int64) {
        fd = otherFD
        position = offset
    }

    /// Bytes read but not yet emitted (an unterminated last line, a held event).
    var pendingBytes: Int { carryCount }

    /// Offset just past the last byte handed out in an event: where a restart must resume.
    var emittedOffset: Int64 { position - Int64(carryCount) }
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
