#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization
import TrailwatchCore
import TrailwatchRuntime

/// Where a source stands in one file: enough to recognise the file again after a restart,
/// a rename, or a copy (device, inode and a hash of its first bytes), and the offset up to which
/// every byte has been durably written by every sink downstream.
struct FileCheckpoint: Codable, Equatable, Sendable {
    var path: String
    var device: UInt64
    var inode: UInt64
    var fingerprint: FileFingerprint
    /// Every byte before this offset has been acknowledged by all sinks.
    var offset: Int64
    /// Wall-clock ms when the offset last advanced.
    var updated: Int64
}

/// Persists checkpoints atomically: write a temporary file, fsync it, rename it over the old one,
/// fsync the directory. A crash at any point leaves either the old or the new file.
struct CheckpointFile {
    let path: String

    var exists: Bool { access(path, F_OK) == 0 }

    func load() -> [FileCheckpoint] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return (try? JSONDecoder().decode([FileCheckpoint].self, from: data)) ?? []
    }

    func save(_ checkpoints: [FileCheckpoint]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        try StageStateFile.writeDurably(try encoder.encode(checkpoints), to: path)
    }
}

struct CheckpointError: Error, CustomStringConvertible { var message: String; var description: String { message } }

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

    init(committed: Int64) {
        state = Mutex(State(committed: committed))
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
        state.withLock { s in
            s.outstanding -= 1
            guard let index = s.pending[s.head...].firstIndex(where: { $0.sequence == sequence }) else { return }
            if !success { s.failed = true }
            s.pending[index].done = success
            // Advance over the acknowledged prefix; a failure stops it for good (until restart).
            while !s.failed, s.head < s.pending.count, s.pending[s.head].done {
                s.committed = s.pending[s.head].end
                s.updated = MonotonicClock.wallMillis()
                s.head += 1
            }
            if s.head > 256 && s.head * 2 > s.pending.count {
                s.pending.removeFirst(s.head)
                s.head = 0
            }
        }
    }

    /// Moves the committed offset when nothing is in flight (file restarted at 0 after truncation).
    func reset(to offset: Int64) {
        state.withLock { s in
            if s.head == s.pending.count {
                s.committed = offset
                s.updated = MonotonicClock.wallMillis()
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
