#if canImport(Glibc)
import Glibc
#endif
import CShims
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// The `file` source in live mode: follows every matching file, finds new ones, and never lets go
/// of a file before it has been read to its end.
///
/// A file is known by device + inode, a hash of its first bytes (``FileFingerprint``) and the
/// rule that a file only grows. From those:
/// - renamed away or deleted (rename+create rotation): the open descriptor is drained until the
///   file stopped growing for `rotate_wait`, then closed;
/// - smaller than what was read, or its first bytes changed (copytruncate, truncation, delete
///   and recreate on a reused inode): what was not yet read is taken from the copy (a file whose
///   first bytes match, found by the glob or next to the original), the old bytes' acknowledgements
///   are awaited, then the file is read again from its start;
/// - a new file whose first bytes equal a followed file's is held back as a probable copy until
///   the original is truncated (then it continues where the original stopped) or `copy_wait` passes.
///
/// Positions are checkpointed only up to what every sink acknowledged, so a restart re-reads at
/// most the batches that were in flight.
final class FileTailer: TrailwatchRuntime.Source {
    struct Identity: Hashable, CustomStringConvertible {
        var device: UInt64
        var inode: UInt64
        var description: String { "\(device):\(inode)" }
    }

    /// One followed file.
    final class Tracked {
        /// Where the file was last seen (its stream name stays the path it was found under).
        var path: String
        let identity: Identity
        let fd: Int32
        var fingerprint: FileFingerprint
        var reader: LineReader
        var tracker: OffsetTracker
        /// The previous content's tracker after a truncation: its acknowledgements are awaited
        /// before the new content is read, and its position is what the checkpoint keeps meanwhile.
        var previousGeneration: (tracker: OffsetTracker, fingerprint: FileFingerprint)?
        /// When its path stopped pointing at it (renamed away or deleted).
        var rotatedSince: Int64?
        /// A probable copy of this file, held back (see the type's documentation).
        var copyOf: Identity?
        var heldSince: Int64 = 0
        var lastGrowth: Int64
        var lastTokenEnd: Int64
        var size: Int64 = 0

        init(path: String, identity: Identity, fd: Int32, fingerprint: FileFingerprint, reader: LineReader, now: Int64) {
            self.path = path
            self.identity = identity
            self.fd = fd
            self.fingerprint = fingerprint
            self.reader = reader
            self.tracker = OffsetTracker(committed: reader.position)
            self.lastGrowth = now
            self.lastTokenEnd = reader.position
        }

        /// What the checkpoint records for this file.
        var checkpoint: FileCheckpoint {
            if let previous = previousGeneration {
                return FileCheckpoint(path: path, device: identity.device, inode: identity.inode, fingerprint: previous.fingerprint,
                                      offset: previous.tracker.committed, updated: previous.tracker.lastAdvance)
            }
            return FileCheckpoint(path: path, device: identity.device, inode: identity.inode, fingerprint: fingerprint,
                                  offset: tracker.committed, updated: tracker.lastAdvance)
        }

        var isCaughtUp: Bool { previousGeneration == nil && tracker.committed == reader.emittedOffset }
    }

    let config: FileSource.Config
    let logGroup: String
    let context: StageContext
    private let checkpointFile: CheckpointFile
    private var tracked: [Tracked] = []
    /// Closed files whose last batches may still be in flight; checkpointed until acknowledged.
    private var retired: [Tracked] = []
    private var restored: [FileCheckpoint] = []
    private var hadCheckpoints = false
    private var inotifyFD: Int32 = -1
    private var watchedDirectories = Set<String>()
    private var rescanRequested = false
    private var ignoredReported = Set<String>()
    private var lastCaughtUp: Int64 = 0
    private let readBudget = 16 << 20
    private let copyWaitMillis: Int64

    init(config: FileSource.Config, logGroup: String, context: StageContext) {
        self.config = config
        self.logGroup = logGroup
        self.context = context
        self.checkpointFile = CheckpointFile(path: context.stateDirectory + "/checkpoints.json")
        self.copyWaitMillis = max(60_000, config.rotateWait.milliseconds * 4)
    }

    deinit {
        for file in tracked { close(file.fd) }
        if inotifyFD >= 0 { close(inotifyFD) }
    }

    private var now: Int64 { MonotonicClock.wallMillis() }

    private func log(_ level: RuntimeLog.Level, _ message: String) { context.log.log(level, context.id, message) }

    // MARK: Run loop

    func run(_ output: SourceOutput) throws {
        restored = checkpointFile.load()
        hadCheckpoints = checkpointFile.exists
        inotifyFD = config.watch == .inotify ? tw_inotify_init() : -1
        if inotifyFD < 0 && config.watch == .inotify { log(.info, "inotify unavailable; polling every \(config.pollInterval)") }
        for pattern in config.include { watchDirectory(PathGlob.staticPrefixDirectory(of: pattern)) }

        try scan(output, initial: true)
        try resumeOrphans(output)
        lastCaughtUp = now
        var nextScan = now + config.globInterval.milliseconds
        var nextSave = now + config.checkpointInterval.milliseconds
        if PathGlob.expand(include: config.include, exclude: config.exclude).isEmpty {
            log(.warning, "no file matches " + config.include.joined(separator: ", ") + " yet; waiting for one")
        }

        while !output.isStopping {
            var clock = now
            if rescanRequested || clock >= nextScan {
                rescanRequested = false
                try scan(output, initial: false)
                nextScan = clock + config.globInterval.milliseconds
            }
            var progressed = false
            for file in tracked where !output.isStopping {
                if try pump(file, output) { progressed = true }
            }
            clock = now
            try retireRotated(output, now: clock)
            releaseHeldCopies(now: clock)
            for file in tracked where file.copyOf == nil {
                if let batch = file.reader.flushHeldEvent(now: clock) { emit(batch, from: file, output) }
            }
            if clock >= nextSave {
                saveCheckpoints()
                nextSave = clock + config.checkpointInterval.milliseconds
            }
            if !progressed { waitForChange(until: min(nextScan, nextSave)) }
        }
        // Unterminated lines stay unread: the checkpoint ends before them, and a restart reads
        // them whole once their writer finishes them.
        saveCheckpoints()
    }

    func finalize() {
        saveCheckpoints()
    }

    // MARK: Reading

    /// Reads what a file has gained, up to a fair share. Returns whether anything was read.
    private func pump(_ file: Tracked, _ output: SourceOutput) throws -> Bool {
        if file.copyOf != nil { return false }
        if let previous = file.previousGeneration {
            guard previous.tracker.outstanding == 0 else { return false }
            file.previousGeneration = nil
        }
        var st = stat()
        guard fstat(file.fd, &st) == 0 else { return false }
        file.size = Int64(st.st_size)
        if file.size < file.reader.position {
            try restartAfterTruncation(file, output, reason: "shrank from \(file.reader.position) to \(file.size) bytes")
            return true
        }
        guard file.size > file.reader.position else { return false }
        var budget = readBudget
        while budget > 0 && !output.isStopping {
            let before = file.reader.position
            let (batch, outcome) = try file.reader.readChunk(flushTail: false)
            budget -= Int(file.reader.position - before)
            emit(batch, from: file, output)
            if outcome != .data { break }
            if file.reader.position >= file.size {
                // Caught up with the size seen: look again rather than issuing a read that returns 0.
                guard fstat(file.fd, &st) == 0 else { break }
                file.size = Int64(st.st_size)
                if file.size <= file.reader.position { break }
            }
        }
        file.lastGrowth = now
        if !file.fingerprint.isComplete, let fingerprint = FileFingerprint.read(fd: file.fd), fingerprint.length > file.fingerprint.length {
            file.fingerprint = fingerprint
        }
        return true
    }

    /// Sends a batch with a token that advances the file's checkpoint once every sink has it.
    /// With no batch, a position that moved anyway (rejected events) is committed in turn.
    private func emit(_ batch: LogBatch?, from file: Tracked, _ output: SourceOutput) {
        let end = file.reader.emittedOffset
        guard batch != nil || end > file.lastTokenEnd else { return }
        let token = file.tracker.token(endOffset: end)
        file.lastTokenEnd = end
        if let batch {
            output.emit(Batch(.logs(batch), acks: Acknowledgements([token])))
        } else {
            token.release()
        }
    }

    // MARK: Discovery

    private func scan(_ output: SourceOutput, initial: Bool) throws {
        let clock = now
        let paths = PathGlob.expand(include: config.include, exclude: config.exclude)
        var seen: [Identity: String] = [:]
        for path in paths {
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            seen[Identity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))] = path
        }
        // Files already followed: renamed within the globs, renamed away, deleted, or rewritten.
        for file in tracked {
            if let path = seen[file.identity] {
                file.path = path
                if file.copyOf == nil, file.previousGeneration == nil, file.fingerprint.length > 0, !file.fingerprint.matches(fd: file.fd) {
                    try restartAfterTruncation(file, output, reason: "its first bytes changed")
                }
            } else if file.rotatedSince == nil {
                file.rotatedSince = clock
                log(.info, "\(file.path) (inode \(file.identity)) was renamed away or deleted; reading it to its end")
            }
        }
        let followed = Set(tracked.map(\.identity))
        for (identity, path) in seen.sorted(by: { $0.value < $1.value }) where !followed.contains(identity) {
            try startFollowing(path: path, identity: identity, initial: initial, output)
        }
    }

    private func startFollowing(path: String, identity: Identity, initial: Bool, _ output: SourceOutput) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            output.metrics.recordError()
            log(.error, "\(SourceError.open(path: path, errno: errno))")
            return
        }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG,
              Identity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino)) == identity else {
            close(fd)  // replaced between stat and open: the next scan sees the new one
            return
        }
        let size = Int64(st.st_size)
        let fingerprint = FileFingerprint.read(fd: fd) ?? .empty
        let checkpointIndex = restored.firstIndex { $0.device == identity.device && $0.inode == identity.inode }
        var start: Int64 = 0
        var copyOf: Identity?
        if let index = checkpointIndex {
            let checkpoint = restored.remove(at: index)
            if checkpoint.fingerprint.matches(fd: fd) && size >= checkpoint.offset {
                start = checkpoint.offset
            } else {
                // Same inode, other content: the old content may survive in a copy.
                log(.warning, "\(path): content changed since the last run; reading it from its start")
                restored.append(checkpoint)
            }
        } else {
            if let ignoreOlder = config.ignoreOlder {
                let modified = Int64(st.st_mtim.tv_sec) * 1000
                if now - modified > ignoreOlder.milliseconds {
                    close(fd)
                    if ignoredReported.insert(path).inserted {
                        log(.info, "\(path) was last modified more than \(ignoreOlder) ago; ignoring it")
                    }
                    return
                }
            }
            if fingerprint.isComplete,
               let original = tracked.first(where: { $0.rotatedSince == nil && $0.copyOf == nil && $0.fingerprint == fingerprint }) {
                copyOf = original.identity
            } else if initial && !hadCheckpoints && config.startAt == .end {
                start = size
            }
        }
        if start > 0 { lseek(fd, off_t(start), SEEK_SET) }
        posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_SEQUENTIAL))
        let file = try makeTracked(path: path, identity: identity, fd: fd, fingerprint: fingerprint, start: start)
        file.size = size
        if let copyOf {
            file.copyOf = copyOf
            file.heldSince = now
            log(.info, "\(path) starts like \(tracked.first { $0.identity == copyOf }?.path ?? "a followed file"); holding it as a probable copy")
        }
        tracked.append(file)
        watchDirectory(PathGlob.directory(of: path))
    }

    private func makeTracked(path: String, identity: Identity, fd: Int32, fingerprint: FileFingerprint, start: Int64,
                             stream: String? = nil) throws -> Tracked {
        let origin = Origin(logGroup: logGroup, logStream: config.logStream ?? stream ?? path)
        let shaper = try EventShaper(config.shaping, maxLineBytes: config.maxLineBytes.bytes, metrics: context.metrics)
        let reader = LineReader(fd: fd, origin: origin, maxLineBytes: config.maxLineBytes.bytes,
                                chunkSize: SourceLimits.chunkSize, shaper: shaper, position: start)
        return Tracked(path: path, identity: identity, fd: fd, fingerprint: fingerprint, reader: reader, now: now)
    }

    /// Checkpoints that matched no followed file: the file was rotated (renamed out of the globs)
    /// or copied and truncated while trailwatch was down. Find it and read what was left.
    private func resumeOrphans(_ output: SourceOutput) throws {
        let orphans = restored
        restored = []
        for checkpoint in orphans {
            if let (fd, identity, path) = findFile(like: checkpoint) {
                lseek(fd, off_t(checkpoint.offset), SEEK_SET)
                // Keep the stream name the data had before the restart.
                let file = try makeTracked(path: path, identity: identity, fd: fd, fingerprint: checkpoint.fingerprint,
                                           start: checkpoint.offset, stream: checkpoint.path)
                file.rotatedSince = now
                log(.info, "\(checkpoint.path) moved to \(path) while stopped; reading it from offset \(checkpoint.offset)")
                tracked.append(file)
            } else {
                log(.warning, "\(checkpoint.path) (inode \(checkpoint.device):\(checkpoint.inode)) is gone; anything written to it after offset \(checkpoint.offset) was not read")
            }
        }
    }

    /// A file next to `checkpoint.path` holding the checkpointed content: the same inode under
    /// another name, or a copy whose first bytes match and that reaches the checkpointed offset.
    private func findFile(like checkpoint: FileCheckpoint, excluding excluded: Identity? = nil) -> (Int32, Identity, String)? {
        let directory = PathGlob.directory(of: checkpoint.path)
        let base = PathGlob.baseName(of: checkpoint.path)
        var sameInode: (Int32, Identity, String)?
        var copy: (Int32, Identity, String)?
        for name in PathGlob.entries(of: directory) where name.hasPrefix(base) {
            if name.hasSuffix(".gz") || name.hasSuffix(".zst") || name.hasSuffix(".bz2") || name.hasSuffix(".xz") { continue }
            let path = directory == "." ? name : directory + "/" + name
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            var st = stat()
            guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, Int64(st.st_size) >= checkpoint.offset,
                  checkpoint.fingerprint.length > 0, checkpoint.fingerprint.matches(fd: fd) else { close(fd); continue }
            let identity = Identity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
            if identity == excluded || tracked.contains(where: { $0.identity == identity && $0.copyOf == nil }) { close(fd); continue }
            if identity.device == checkpoint.device && identity.inode == checkpoint.inode && sameInode == nil {
                sameInode = (fd, identity, path)
            } else if copy == nil {
                copy = (fd, identity, path)
            } else {
                close(fd)
            }
        }
        if let sameInode {
            if let copy { close(copy.0) }
            return sameInode
        }
        return copy
    }

    // MARK: Rotation and truncation

    /// The file's content was replaced: read the rest of the old content from a copy, wait for
    /// the old content's acknowledgements, then read the file again from its start.
    private func restartAfterTruncation(_ file: Tracked, _ output: SourceOutput, reason: String) throws {
        log(.warning, "\(file.path) \(reason): reading it again from its start")
        let checkpoint = FileCheckpoint(path: file.path, device: file.identity.device, inode: file.identity.inode,
                                        fingerprint: file.fingerprint, offset: file.reader.emittedOffset, updated: 0)
        if let held = tracked.first(where: { $0.copyOf == file.identity }) {
            // The copy is followed itself: it continues where the original stopped.
            held.copyOf = nil
            held.reader.restart(at: checkpoint.offset)
            lseek(held.fd, off_t(checkpoint.offset), SEEK_SET)
            held.tracker = OffsetTracker(committed: checkpoint.offset)
            held.lastTokenEnd = checkpoint.offset
            log(.info, "continuing \(file.path)'s old content in \(held.path) from offset \(checkpoint.offset)")
        } else if let (copyFD, _, copyPath) = findFile(like: checkpoint, excluding: file.identity) {
            log(.info, "reading the rest of \(file.path)'s old content from \(copyPath)")
            lseek(copyFD, off_t(file.reader.position), SEEK_SET)
            file.reader.continueReading(from: copyFD, at: file.reader.position)
            while true {
                let (batch, outcome) = try file.reader.readChunk(flushTail: true)
                emit(batch, from: file, output)
                if outcome != .data { break }
            }
            close(copyFD)
        } else if let tail = file.reader.takeTail() {
            // The rest of this line is gone with the truncation: send what there is.
            emit(tail, from: file, output)
        }
        file.previousGeneration = (file.tracker, file.fingerprint)
        file.reader.continueReading(from: file.fd, at: 0)
        file.reader.restart(at: 0)
        lseek(file.fd, 0, SEEK_SET)
        file.tracker = OffsetTracker(committed: 0)
        file.lastTokenEnd = 0
        file.fingerprint = FileFingerprint.read(fd: file.fd) ?? .empty
    }

    /// Closes files that were renamed away or deleted once they stopped growing for `rotate_wait`.
    private func retireRotated(_ output: SourceOutput, now clock: Int64) throws {
        var keep: [Tracked] = []
        for file in tracked {
            guard let since = file.rotatedSince, file.previousGeneration == nil, file.copyOf == nil else { keep.append(file); continue }
            var st = stat()
            let size = fstat(file.fd, &st) == 0 ? Int64(st.st_size) : file.reader.position
            let idle = clock - max(since, file.lastGrowth)
            if size > file.reader.position || idle < config.rotateWait.milliseconds {
                keep.append(file)
                continue
            }
            // A rotated file will not get the end of its last line any more.
            emit(file.reader.takeTail(), from: file, output)
            close(file.fd)
            retired.append(file)
        }
        tracked = keep
        retired.removeAll { $0.tracker.outstanding == 0 }
    }

    /// A probable copy whose original was never truncated is an independent file after all:
    /// it is read from where the original had got to.
    private func releaseHeldCopies(now clock: Int64) {
        for file in tracked where file.copyOf != nil && clock - file.heldSince >= copyWaitMillis {
            let offset = tracked.first { $0.identity == file.copyOf }?.reader.emittedOffset ?? 0
            let start = min(offset, file.size)
            file.copyOf = nil
            file.reader.restart(at: start)
            lseek(file.fd, off_t(start), SEEK_SET)
            file.tracker = OffsetTracker(committed: start)
            file.lastTokenEnd = start
            log(.info, "\(file.path) was not a copy being rotated; following it from offset \(start)")
        }
    }

    // MARK: Waiting

    private func watchDirectory(_ directory: String) {
        guard inotifyFD >= 0, watchedDirectories.insert(directory).inserted else { return }
        if tw_inotify_watch_directory(inotifyFD, directory) < 0 {
            watchedDirectories.remove(directory)  // not there yet: the periodic scan covers it
        }
    }

    private func waitForChange(until deadline: Int64) {
        let timeout = Int32(clamping: max(1, min(deadline - now, config.pollInterval.milliseconds)))
        guard inotifyFD >= 0 else {
            usleep(UInt32(timeout) * 1000)
            return
        }
        var pfd = pollfd(fd: inotifyFD, events: Int16(POLLIN), revents: 0)
        if poll(&pfd, 1, timeout) > 0 {
            var created: Int32 = 0
            if tw_inotify_drain(inotifyFD, &created) > 0 && created != 0 { rescanRequested = true }
        }
    }

    // MARK: Checkpoints

    private func saveCheckpoints() {
        let clock = now
        let entries = (tracked.filter { $0.copyOf == nil } + retired).map(\.checkpoint)
        do { try checkpointFile.save(entries) } catch {
            context.metrics.recordError()
            log(.error, "\(error)")
        }
        var lag: Int64 = 0
        for file in tracked where file.copyOf == nil { lag += max(0, file.size - file.reader.emittedOffset) }
        if tracked.allSatisfy({ $0.copyOf != nil || $0.isCaughtUp }) && retired.isEmpty { lastCaughtUp = clock }
        context.metrics.setGauge("file_lag_bytes", Double(lag))
        context.metrics.setGauge("checkpoint_age_seconds", Double(clock - lastCaughtUp) / 1000)
        context.metrics.setGauge("files_followed", Double(tracked.count))
    }
}
