#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import ByteJSON
import TrailwatchCore
import TrailwatchRuntime

/// Where a source stands in one file: enough to recognise the file again after a restart,
/// a rename, or a copy, and the offset up to which every byte has been durably written by every
/// sink downstream.
///
/// The file is known by device + inode, by a hash of its first bytes (``fingerprint``) and by a
/// hash of the bytes just before ``offset`` (``tail``): a file on another inode whose first bytes
/// and the bytes before the offset both match, and that is at least ``offset`` long, holds the
/// same content up to the offset (a copy made by copytruncate), so it is not read again.
struct FileCheckpoint: Equatable, Sendable {
    var path: String
    var device: UInt64
    var inode: UInt64
    var fingerprint: FileFingerprint
    /// Every byte before this offset has been acknowledged by all sinks.
    var offset: Int64
    /// The file's size when it was last looked at (≥ ``offset``; equal once it was read to its end).
    var size: Int64
    /// Hash of up to ``FileFingerprint/tailLength`` bytes ending at ``offset`` (empty when unknown).
    var tail: FileFingerprint
    /// Wall-clock ms when the offset last advanced (or the file was last seen, for remembered files).
    var updated: Int64

    var identity: FileIdentity { FileIdentity(device: device, inode: inode) }
}

/// A file's device and inode.
struct FileIdentity: Hashable, CustomStringConvertible, Sendable {
    var device: UInt64
    var inode: UInt64
    var description: String { "\(device):\(inode)" }
}

/// Persists checkpoints atomically: write a temporary file, fsync it, rename it over the old one,
/// fsync the directory. A crash at any point leaves either the old or the new file.
///
/// The file is JSON (`{"version":2,"files":[…]}`; the version-1 bare array is still read), written
/// and read with ByteJSON rather than Codable: a source may remember tens of thousands of files,
/// and a restart should not wait for their positions (10,000 load in a few milliseconds).
struct CheckpointFile {
    let path: String

    var exists: Bool { access(path, F_OK) == 0 }

    func load() -> [FileCheckpoint] {
        guard let bytes = Self.readAll(path) else { return [] }
        if let entries = bytes.withUnsafeBufferPointer({ Self.loadFast($0) }) { return entries }
        guard let document = try? JSONValue.parse(bytes) else { return [] }
        let entries: [JSONValue]
        switch document {
        case .array(let list): entries = list                       // version 1
        case .object: entries = document["files"].flatMap { if case .array(let l) = $0 { l } else { nil } } ?? []
        default: return []
        }
        return entries.compactMap(Self.decode)
    }

    func save(_ checkpoints: [FileCheckpoint]) throws {
        try StageStateFile.writeDurably(Data(Self.encode(checkpoints)), to: path)
    }

    static func encode(_ checkpoints: [FileCheckpoint]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + checkpoints.count * 200)
        out.append(contentsOf: #"{"version":2,"files":["#.utf8)
        for (i, c) in checkpoints.enumerated() {
            if i > 0 { out.append(contentsOf: ",\n".utf8) }
            out.append(contentsOf: #"{"path":"#.utf8)
            JSONWriter.appendString(c.path, to: &out)
            out.append(contentsOf: #","device":\#(c.device),"inode":\#(c.inode),"fingerprint":{"length":\#(c.fingerprint.length),"hash":\#(c.fingerprint.hash)},"offset":\#(c.offset),"size":\#(c.size),"tail":{"length":\#(c.tail.length),"hash":\#(c.tail.hash)},"updated":\#(c.updated)}"#.utf8)
        }
        out.append(contentsOf: "]}\n".utf8)
        return out
    }

    /// Reads the file exactly as ``encode(_:)`` writes it, without building a JSON tree; nil for
    /// anything else (an older version, an escaped path), which the general parser then reads.
    static func loadFast(_ bytes: UnsafeBufferPointer<UInt8>) -> [FileCheckpoint]? {
        var scanner = Scanner(bytes: bytes)
        guard scanner.take(#"{"version":2,"files":["#) else { return nil }
        var entries: [FileCheckpoint] = []
        if scanner.take("]}") { return entries }
        while true {
            guard scanner.take(#"{"path":"#), let path = scanner.plainString(),
                  scanner.take(#","device":"#), let device = scanner.unsigned(),
                  scanner.take(#","inode":"#), let inode = scanner.unsigned(),
                  scanner.take(#","fingerprint":{"length":"#), let headLength = scanner.unsigned(),
                  scanner.take(#","hash":"#), let headHash = scanner.unsigned(),
                  scanner.take(#"},"offset":"#), let offset = scanner.unsigned(),
                  scanner.take(#","size":"#), let size = scanner.unsigned(),
                  scanner.take(#","tail":{"length":"#), let tailLength = scanner.unsigned(),
                  scanner.take(#","hash":"#), let tailHash = scanner.unsigned(),
                  scanner.take(#"},"updated":"#), let updated = scanner.unsigned(), scanner.take("}"),
                  offset <= UInt64(Int64.max), size <= UInt64(Int64.max), updated <= UInt64(Int64.max),
                  headLength <= UInt64(Int.max), tailLength <= UInt64(Int.max) else { return nil }
            entries.append(FileCheckpoint(path: path, device: device, inode: inode,
                                          fingerprint: FileFingerprint(length: Int(headLength), hash: headHash),
                                          offset: Int64(offset), size: max(Int64(offset), Int64(size)),
                                          tail: FileFingerprint(length: Int(tailLength), hash: tailHash), updated: Int64(updated)))
            if scanner.take(",\n") { continue }
            return scanner.take("]}") ? entries : nil
        }
    }

    private struct Scanner {
        let bytes: UnsafeBufferPointer<UInt8>
        var i = 0

        mutating func take(_ literal: StaticString) -> Bool {
            let count = literal.utf8CodeUnitCount
            guard bytes.count - i >= count else { return false }
            let base = literal.utf8Start
            for k in 0..<count where bytes[i + k] != base[k] { return false }
            i += count
            return true
        }

        mutating func unsigned() -> UInt64? {
            var value: UInt64 = 0
            let start = i
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 {
                let (times, o1) = value.multipliedReportingOverflow(by: 10)
                let (sum, o2) = times.addingReportingOverflow(UInt64(bytes[i] - 0x30))
                guard !o1, !o2 else { return nil }
                value = sum
                i += 1
            }
            return i > start ? value : nil
        }

        /// A string without escapes (paths almost always are).
        mutating func plainString() -> String? {
            guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") else { return nil }
            var end = i + 1
            while end < bytes.count, bytes[end] != UInt8(ascii: "\"") {
                if bytes[end] == UInt8(ascii: "\\") || bytes[end] < 0x20 { return nil }
                end += 1
            }
            guard end < bytes.count else { return nil }
            let text = String(decoding: UnsafeBufferPointer(rebasing: bytes[(i + 1)..<end]), as: UTF8.self)
            i = end + 1
            return text
        }
    }

    private static func decode(_ entry: JSONValue) -> FileCheckpoint? {
        func integer<T: FixedWidthInteger>(_ value: JSONValue?, _: T.Type) -> T? {
            guard case .number(let d, let text)? = value else { return nil }
            return text.isEmpty ? T(exactly: d) : T(text)
        }
        func fingerprint(_ value: JSONValue?) -> FileFingerprint? {
            guard let length = integer(value?["length"], Int.self), let hash = integer(value?["hash"], UInt64.self),
                  length >= 0 else { return nil }
            return FileFingerprint(length: length, hash: hash)
        }
        guard let path = entry["path"]?.stringValue, let device = integer(entry["device"], UInt64.self),
              let inode = integer(entry["inode"], UInt64.self), let head = fingerprint(entry["fingerprint"]),
              let offset = integer(entry["offset"], Int64.self), offset >= 0 else { return nil }
        let size = max(offset, integer(entry["size"], Int64.self) ?? offset)
        return FileCheckpoint(path: path, device: device, inode: inode, fingerprint: head, offset: offset, size: size,
                              tail: fingerprint(entry["tail"]) ?? .empty, updated: integer(entry["updated"], Int64.self) ?? 0)
    }

    private static func readAll(_ path: String) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        var filled = 0
        while filled < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            filled += n
        }
        return Array(bytes[0..<filled])
    }
}

struct CheckpointError: Error, CustomStringConvertible { var message: String; var description: String { message } }

/// Tells a source that some file's acknowledged offset moved.
final class AdvanceSignal: Sendable {
    private let flag = Atomic<Bool>(false)
    func raise() { flag.store(true, ordering: .releasing) }
    /// Whether it was raised since the last call.
    func take() -> Bool { flag.exchange(false, ordering: .acquiringAndReleasing) }
}

/// Turns out-of-order batch acknowledgements into a committed offset: the end of the longest
/// run of acknowledged batches from the start. A failed batch holds the offset where it is, so a
/// restart reads it again (at-least-once).
final class OffsetTracker: Sendable {
    private struct State {
        var nextSequence: UInt64 = 0
        /// In-flight batches in emission order: (sequence, end offset, done).
        var pending: [(sequence: UInt64, end: Int64, done: Bool)] = []
        var head = 0
        var committed: Int64
        var failed = false
        var updated: Int64 = 0
        /// Tokens handed out and not yet completed, successfully or not.
        var outstanding = 0
    }

    private let state: Mutex<State>
    /// Raised whenever the committed offset moves (the source then saves its positions soon).
    private let advanced: AdvanceSignal?
    /// When the offset last moved is read from it (the source's stage clock).
    private let clock: any StageClock

    init(committed: Int64, advanced: AdvanceSignal? = nil, clock: any StageClock = SystemClock()) {
        state = Mutex(State(committed: committed))
        self.advanced = advanced
        self.clock = clock
    }

    /// A token for a batch that ends at `endOffset`; completes when every sink wrote it.
    func token(endOffset: Int64) -> AckToken {
        let sequence = state.withLock { s -> UInt64 in
            let seq = s.nextSequence
            s.nextSequence += 1
            s.pending.append((seq, endOffset, false))
            s.outstanding += 1
            return seq
        }
        return AckToken { [weak self] success in self?.complete(sequence, success: success) }
    }

    private func complete(_ sequence: UInt64, success: Bool) {
        let moved = state.withLock { s -> Bool in
            let before = s.committed
            s.outstanding -= 1
            guard let index = s.pending[s.head...].firstIndex(where: { $0.sequence == sequence }) else { return false }
            if !success { s.failed = true }
            s.pending[index].done = success
            // Advance over the acknowledged prefix; a failure stops it for good (until restart).
            while !s.failed, s.head < s.pending.count, s.pending[s.head].done {
                s.committed = s.pending[s.head].end
                s.updated = clock.nowMillis()
                s.head += 1
            }
            if s.head > 256 && s.head * 2 > s.pending.count {
                s.pending.removeFirst(s.head)
                s.head = 0
            }
            return s.committed != before
        }
        if moved { advanced?.raise() }
    }

    /// Moves the committed offset when nothing is in flight (file restarted at 0 after truncation).
    func reset(to offset: Int64) {
        state.withLock { s in
            if s.head == s.pending.count {
                s.committed = offset
                s.updated = clock.nowMillis()
            }
        }
    }

    var committed: Int64 { state.withLock { $0.committed } }
    var lastAdvance: Int64 { state.withLock { $0.updated } }
    var inFlight: Int { state.withLock { $0.pending.count - $0.head } }
    /// Batches sent and not yet acknowledged or failed by every sink.
    var outstanding: Int { state.withLock { $0.outstanding } }
    var hasFailed: Bool { state.withLock { $0.failed } }
}
