#if canImport(Glibc)
import Glibc
#endif
import TrailwatchCore
import TrailwatchRuntime

/// How a sink lays events out as lines.
enum LineFormat: String, Sendable {
    /// One JSON object per event (``EventEncoder``).
    case json
    /// The raw message bytes of log events; other events as JSON.
    case raw
}

/// Writes batches to a file descriptor as lines, with `writev` straight from the batch's
/// storage for raw log lines (no copy) and a reused buffer for JSON.
struct RecordWriter {
    let fd: Int32
    let format: LineFormat
    let path: String
    private var buffer = ByteBuffer(reservingCapacity: 1 << 20)
    private var logEncoder = LogBatchJSONEncoder()
    private var iovecs: [iovec] = []
    nonisolated(unsafe) private static let newline: UnsafeMutableRawPointer = {
        let p = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 1)
        p.storeBytes(of: 0x0A, as: UInt8.self)
        return p
    }()

    init(fd: Int32, format: LineFormat, path: String) {
        self.fd = fd
        self.format = format
        self.path = path
    }

    /// Writes every event of `payload`; returns bytes written.
    @discardableResult
    mutating func write(_ payload: Payload) throws(SinkError) -> Int {
        if format == .raw, case .logs(let batch) = payload { return try writeRaw(batch) }
        buffer.removeAll()
        if case .logs(let batch) = payload {
            logEncoder.append(batch, to: &buffer)
            let written = buffer.count
            try flushBuffer()
            return written
        }
        var written = 0
        for i in 0..<payload.count {
            EventEncoder.appendJSON(payload, event: i, to: &buffer)
            buffer.append(0x0A)
            if buffer.count >= 1 << 20 {
                written += buffer.count
                try flushBuffer()
            }
        }
        written += buffer.count
        try flushBuffer()
        return written
    }

    private mutating func flushBuffer() throws(SinkError) {
        let ok = buffer.withUnsafeBytes { FileIO.writeAll(fd, $0) }
        buffer.removeAll()
        if !ok { throw SinkError.io(path: path, errno: errno) }
    }

    private mutating func writeRaw(_ batch: LogBatch) throws(SinkError) -> Int {
        let count = batch.count
        guard count > 0 else { return 0 }
        let base = batch.storage.mutableBase
        let capacity = batch.storage.capacity
        iovecs.removeAll(keepingCapacity: true)
        var total = 0
        var i = 0
        while i < count {
            // Extend a run while the next line starts right after this one's LF.
            let runStart = Int(batch.starts[i])
            var end = runStart + Int(batch.lengths[i])
            var j = i + 1
            while j < count, end < capacity, Int(batch.starts[j]) == end + 1,
                  base.load(fromByteOffset: end, as: UInt8.self) == 0x0A {
                end = Int(batch.starts[j]) + Int(batch.lengths[j])
                j += 1
            }
            if end < capacity, base.load(fromByteOffset: end, as: UInt8.self) == 0x0A {
                iovecs.append(iovec(iov_base: base + runStart, iov_len: end + 1 - runStart))
            } else {
                iovecs.append(iovec(iov_base: base + runStart, iov_len: end - runStart))
                iovecs.append(iovec(iov_base: Self.newline, iov_len: 1))
            }
            total += end + 1 - runStart
            i = j
        }
        guard FileIO.writevAll(fd, &iovecs) else { throw SinkError.io(path: path, errno: errno) }
        return total
    }
}

enum FileIO {
    /// write(2) until everything is written or a real error happens.
    static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            offset += n
        }
        return true
    }

    /// writev(2) until every vector is written, resuming after partial writes.
    static func writevAll(_ fd: Int32, _ vectors: inout [iovec]) -> Bool {
        var index = 0
        while index < vectors.count {
            let batchCount = Swift.min(vectors.count - index, 1024)
            let n = vectors.withUnsafeMutableBufferPointer { buffer in
                Glibc.writev(fd, buffer.baseAddress! + index, Int32(batchCount))
            }
            if n < 0 {
                if errno == EINTR { continue }
                return false
            }
            var remaining = n
            while remaining > 0 && index < vectors.count {
                let length = vectors[index].iov_len
                if remaining >= length {
                    remaining -= length
                    index += 1
                } else {
                    vectors[index].iov_base = vectors[index].iov_base! + remaining
                    vectors[index].iov_len = length - remaining
                    remaining = 0
                }
            }
            while index < vectors.count && vectors[index].iov_len == 0 { index += 1 }
        }
        return true
    }

    /// Cuts a regular file that ends inside a record (a crash or a full disk in the middle of a write)
    /// back to just after its last newline, so the next record does not join the torn one. Returns the
    /// bytes cut. Anything but a regular file (a FIFO, a device) is left alone.
    static func truncateTornRecord(path: String) throws(SinkError) -> Int64 {
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_size > 0 else { return 0 }
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw SinkError.open(path: path, errno: errno) }
        defer { close(fd) }
        let size = Int64(info.st_size)
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        var end = size
        while end > 0 {
            let start = Swift.max(0, end - Int64(buffer.count))
            let count = Int(end - start)
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(start)) }
            guard n == count else { throw SinkError.io(path: path, errno: n < 0 ? errno : EIO) }
            if end == size && buffer[count - 1] == 0x0A { return 0 }
            if let lastLF = buffer[0..<count].lastIndex(of: 0x0A) {
                let keep = start + Int64(lastLF) + 1
                guard ftruncate(fd, off_t(keep)) == 0, fsync(fd) == 0 else { throw SinkError.io(path: path, errno: errno) }
                return size - keep
            }
            end = start
        }
        guard ftruncate(fd, 0) == 0, fsync(fd) == 0 else { throw SinkError.io(path: path, errno: errno) }
        return size
    }

    /// Creates the parent directories of `path` (mode 0750).
    static func makeParentDirectories(_ path: String) {
        var components = path.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        guard !components.isEmpty else { return }
        var current = path.hasPrefix("/") ? "" : "."
        if path.hasPrefix("/") { components = components.dropFirst() }
        for component in components where !component.isEmpty {
            current += "/" + component
            mkdir(current, 0o750)
        }
    }
}

/// Errors sinks report.
enum SinkError: Error, CustomStringConvertible {
    case io(path: String, errno: Int32)
    case open(path: String, errno: Int32)

    var description: String {
        switch self {
        case .io(let path, let e): "writing \(path): \(String(cString: strerror(e)))"
        case .open(let path, let e): "opening \(path): \(String(cString: strerror(e)))"
        }
    }
}
