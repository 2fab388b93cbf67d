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
/// A file is known by device + inode, a hash of its first bytes (``FileFingerprint``), a hash of
/// the bytes before its acknowledged offset, and the rule that a file only grows. From those:
/// - renamed away or deleted (rename+create rotation): the open descriptor is drained until the
///   file stopped growing for `rotate_wait`, then closed;
/// - smaller than what was read, or its first bytes changed (copytruncate, truncation, delete
///   and recreate on a reused inode): what was not yet read is taken from the copy (a file whose
///   first bytes match, found by the glob or next to the original), then the file is read again
///   from its start;
/// - a new file whose first bytes equal a followed file's (or, shorter than the fingerprint, are
///   the start of a followed file's) is held back as a probable copy until the original is
///   truncated (then it continues where the original stopped) or `copy_wait` passes.
///
/// Every file ever read keeps a position (see ``FileCheckpoint``), also once it is closed: files
/// read to their end and idle for `close_idle`, and files rotated away and drained, are
/// *remembered* until they are gone (or older than `ignore_older`). A restart therefore resumes
/// every file at its acknowledged offset, and a copy of content already read — made while
/// trailwatch ran or while it was stopped — is recognised by its first bytes, its size and the
/// bytes before the recorded offset, and is not read again.
final class FileTailer: TrailwatchRuntime.Source {
    typealias Identity = FileIdentity

    /// One followed (open) file.
    final class Tracked {
        /// Where the file was last seen (its stream name stays the path it was found under).
        var path: String
        let identity: Identity
        let fd: Int32
        var fingerprint: FileFingerprint
        var reader: LineReader
        var tracker: OffsetTracker
        /// The previous content's tracker after a truncation whose rest was read from a copy
        /// outside the globs: its acknowledgements are awaited before the new content is read,
        /// and its position is what the checkpoint keeps meanwhile.
        var previousGeneration: (tracker: OffsetTracker, fingerprint: FileFingerprint, verified: VerifiedPosition)?
        /// When its path stopped pointing at it (renamed away or deleted).
        var rotatedSince: Int64?
        /// A probable copy of this file, held back (see the type's documentation).
        var copyOf: Identity?
        var heldSince: Int64 = 0
        var lastGrowth: Int64
        var lastTokenEnd: Int64
        var size: Int64 = 0
        /// The newest acknowledged offset whose preceding bytes were hashed (the checkpoint's tail).
        var verified: VerifiedPosition

        init(path: String, identity: Identity, fd: Int32, fingerprint: FileFingerprint, reader: LineReader, now: Int64,
             verified: VerifiedPosition, advanced: AdvanceSignal) {
            self.path = path
            self.identity = identity
            self.fd = fd
            self.fingerprint = fingerprint
            self.reader = reader
            self.tracker = OffsetTracker(committed: reader.position, advanced: advanced, clock: reader.clock)
            self.lastGrowth = now
            self.lastTokenEnd = reader.position
            self.verified = verified
        }

        /// Moves ``verified`` up to the committed offset when the bytes before it can be read
        /// and the file still starts as it did (otherwise the older, verified position stays:
        /// a restart then reads a little more, never less).
        func verifyCommitted() {
            let committed = tracker.committed
            guard committed != verified.offset, previousGeneration == nil else { return }
            if let tail = FileFingerprint.read(fd: fd, endingAt: committed), fingerprint.matches(fd: fd) {
                verified = VerifiedPosition(offset: committed, tail: tail, updated: tracker.lastAdvance)
            }
        }

        /// What the checkpoint records for this file.
        var checkpoint: FileCheckpoint {
            if let previous = previousGeneration {
                return FileCheckpoint(path: path, device: identity.device, inode: identity.inode, fingerprint: previous.fingerprint,
                                      offset: previous.verified.offset, size: previous.verified.offset, tail: previous.verified.tail,
                                      updated: previous.verified.updated)
            }
            return FileCheckpoint(path: path, device: identity.device, inode: identity.inode, fingerprint: fingerprint,
                                  offset: verified.offset, size: max(size, verified.offset), tail: verified.tail, updated: verified.updated)
        }

        var isCaughtUp: Bool { previousGeneration == nil && tracker.committed == reader.emittedOffset }
    }

    /// An acknowledged offset and the hash of the bytes before it.
    struct VerifiedPosition {
        var offset: Int64
        var tail: FileFingerprint
        var updated: Int64
    }

    let config: FileSource.Config
    let logGroup: String
    let context: StageContext
    private let checkpointFile: CheckpointFile
    private var tracked: [Tracked] = []
    /// Closed files whose last batches may still be in flight; checkpointed until acknowledged.
    private var retired: [Tracked] = []
    /// Positions of files that are not open: read to their end, or not seen yet since the start.
    private var remembered: [Identity: FileCheckpoint] = [:]
    /// Bumped whenever ``remembered`` changes (the checkpoint is rewritten only on change).
    private var rememberedVersion = 0
    /// Checkpoints of content that is no longer where it was (the inode was truncated or reused
    /// while trailwatch was stopped): a copy of it may still turn up among the files found.
    private var displaced: [FileCheckpoint] = []
    private var hadCheckpoints = false
    private var inotifyFD: Int32 = -1
    private var watchedDirectories = Set<String>()
    private var rescanRequested = false
    private var ignoredReported = Set<String>()
    private var lastCaughtUp: Int64 = 0
    private var lastSaved: (entries: [FileCheckpoint], rememberedVersion: Int)?
    private var rememberedSorted: (version: Int, entries: [FileCheckpoint]) = (-1, [])
    private var nextPrune: Int64 = 0
    /// Identities the globs matched at the last scan.
    private var seenAtLastScan: [Identity: String] = [:]
    private let readBudget = 16 << 20
    private let copyWaitMillis: Int64
    /// How long a held file shorter than the fingerprint may stay the start of another file
    /// without growing before it is read as a file of its own.
    private let shortCopyWaitMillis: Int64
    private static let pruneIntervalMillis: Int64 = 60_000
    /// Raised by the trackers when acknowledgements move a position.
    private let advanced = AdvanceSignal()

    init(config: FileSource.Config, logGroup: String, context: StageContext) {
        self.config = config
        self.logGroup = logGroup
        self.context = context
        self.checkpointFile = CheckpointFile(path: context.stateDirectory + "/checkpoints.json")
        self.copyWaitMillis = max(60_000, config.rotateWait.milliseconds * 4)
        self.shortCopyWaitMillis = max(1_000, config.rotateWait.milliseconds)
    }

    deinit {
        for file in tracked + retired { close(file.fd) }
        if inotifyFD >= 0 { close(inotifyFD) }
    }

    private var now: Int64 { context.clock.nowMillis() }

    private static func threadCPUNanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    private func log(_ level: RuntimeLog.Level, _ message: String) { context.log.log(level, context.id, message) }

    // MARK: Run loop

    func run(_ output: SourceOutput) throws {
        let loadStart = (MonotonicClock.nanos(), Self.threadCPUNanos())
        let restored = checkpointFile.load()
        hadCheckpoints = checkpointFile.exists
        for checkpoint in restored { remembered[checkpoint.identity] = checkpoint }
        rememberedVersion += 1
        if !restored.isEmpty {
            let millis = Double(MonotonicClock.nanos() - loadStart.0) / 1e6
            let cpu = Double(Self.threadCPUNanos() - loadStart.1) / 1e6
            log(.info, "restored \(restored.count) file positions in \(String(format: "%.1f", millis)) ms (\(String(format: "%.1f", cpu)) ms CPU)")
        }
        inotifyFD = config.watch == .inotify ? tw_inotify_init() : -1
        if inotifyFD < 0 && config.watch == .inotify { log(.info, "inotify unavailable; polling every \(config.pollInterval)") }
        for pattern in config.include { watchDirectory(PathGlob.staticPrefixDirectory(of: pattern)) }

        try scan(output, initial: true)
        try resumeUnseen(output)
        lastCaughtUp = now
        nextPrune = now + Self.pruneIntervalMillis
        var nextScan = now + config.globInterval.milliseconds
        var nextSave = now + config.checkpointInterval.milliseconds
        // Positions are written every checkpoint_interval, and as soon as acknowledgements move
        // them (at most five times a second): a sink's sync is then durable in the positions at
        // once, and a crash soon after a restart re-sends little of the catch-up.
        let promptGap = min(config.checkpointInterval.milliseconds, 200)
        var lastSave: Int64 = 0
        var unsaved = false
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
            if advanced.take() { unsaved = true }
            if clock >= nextSave || (unsaved && clock - lastSave >= promptGap) {
                closeIdle(now: clock)
                if clock >= nextPrune {
                    pruneRemembered(now: clock)
                    nextPrune = clock + Self.pruneIntervalMillis
                }
                saveCheckpoints()
                unsaved = false
                lastSave = clock
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
        if file.reader.position < FileFingerprint.fullLength, !file.fingerprint.isComplete,
           let fingerprint = FileFingerprint.read(fd: file.fd), fingerprint.length > file.fingerprint.length {
            file.fingerprint = fingerprint
            // A file found empty or short may be a copy being written: look again before reading it.
            if file.reader.position == 0, file.lastTokenEnd == 0, file.rotatedSince == nil,
               let original = originalOf(file.fd, fingerprint: fingerprint, excluding: file.identity) {
                hold(file, asCopyOf: original)
                return true
            }
        }
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
        var sizes: [Identity: Int64] = [:]
        for path in paths {
            var st = stat()
            guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
            let identity = Identity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
            seen[identity] = path
            sizes[identity] = Int64(st.st_size)
        }
        seenAtLastScan = seen
        let followed = Set(tracked.map(\.identity)).union(retired.map(\.identity))
        // Files with a position of their own first, so that content they no longer hold is known
        // to be displaced before the other files are checked for being copies of it.
        var candidates: [(identity: Identity, path: String)] = []
        for (identity, path) in seen where !followed.contains(identity) {
            if var position = remembered[identity], let size = sizes[identity], size == position.size, position.offset == size {
                // Read to its end and unchanged since: stays closed.
                if position.path != path {
                    position.path = path
                    remembered[identity] = position
                    rememberedVersion += 1
                }
                continue
            }
            candidates.append((identity, path))
        }
        candidates.sort { (remembered[$0.identity] == nil ? 1 : 0, $0.path) < (remembered[$1.identity] == nil ? 1 : 0, $1.path) }
        for (identity, path) in candidates {
            try startFollowing(path: path, identity: identity, initial: initial, output)
        }
        // Then the files already followed (new files first: a copy made by copytruncate is then
        // known as one before its original is seen truncated): renamed within the globs, renamed
        // away, deleted, or rewritten.
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
        var start: Int64 = 0
        var verified = VerifiedPosition(offset: 0, tail: .empty, updated: now)
        var copyOf: Identity?
        var known = false
        if let checkpoint = remembered.removeValue(forKey: identity) {
            rememberedVersion += 1
            if holdsContent(of: checkpoint, fd: fd, size: size) {
                known = true
                start = checkpoint.offset
                verified = VerifiedPosition(offset: checkpoint.offset, tail: checkpoint.tail, updated: checkpoint.updated)
            } else {
                // Same inode, other content: the old content may survive in a copy.
                log(.warning, "\(path): content changed since it was last read; reading it from its start")
                displaced.append(checkpoint)
            }
        }
        if !known, let copied = copiedContent(fd: fd, fingerprint: fingerprint, size: size, identity: identity) {
            start = copied.offset
            verified = VerifiedPosition(offset: copied.offset, tail: copied.tail, updated: copied.updated)
            log(.info, "\(path) holds \(copied.path)'s content up to offset \(copied.offset), which was read already; reading it from there")
        } else if !known {
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
            if !initial, let original = originalOf(fd, fingerprint: fingerprint, excluding: identity) {
                copyOf = original.identity
            } else if initial, fingerprint.isComplete,
                      let original = tracked.first(where: { $0.rotatedSince == nil && $0.copyOf == nil && $0.fingerprint == fingerprint }) {
                copyOf = original.identity
            } else if initial && !hadCheckpoints && config.startAt == .end {
                start = size
                verified = VerifiedPosition(offset: size, tail: FileFingerprint.read(fd: fd, endingAt: size) ?? .empty, updated: now)
            }
        }
        if start > 0 { lseek(fd, off_t(start), SEEK_SET) }
        posix_fadvise(fd, 0, 0, Int32(POSIX_FADV_SEQUENTIAL))
        let file = try makeTracked(path: path, identity: identity, fd: fd, fingerprint: fingerprint, start: start, verified: verified)
        file.size = size
        tracked.append(file)
        if let copyOf, let original = tracked.first(where: { $0.identity == copyOf }) { hold(file, asCopyOf: original) }
        watchDirectory(PathGlob.directory(of: path))
    }

    private func makeTracked(path: String, identity: Identity, fd: Int32, fingerprint: FileFingerprint, start: Int64,
                             verified: VerifiedPosition, stream: String? = nil) throws -> Tracked {
        let origin = Origin(logGroup: logGroup, logStream: config.logStream ?? stream ?? path)
        let shaper = try EventShaper(config.shaping, maxLineBytes: config.maxLineBytes.bytes, metrics: context.metrics)
        let reader = LineReader(fd: fd, origin: origin, maxLineBytes: config.maxLineBytes.bytes,
                                chunkSize: SourceLimits.chunkSize, shaper: shaper, position: start, clock: context.clock)
        return Tracked(path: path, identity: identity, fd: fd, fingerprint: fingerprint, reader: reader, now: now, verified: verified,
                       advanced: advanced)
    }

    /// Whether `fd` (of `size` bytes) still holds the content `checkpoint` describes up to its offset:
    /// the same first bytes, long enough, and the same bytes before the offset.
    private func holdsContent(of checkpoint: FileCheckpoint, fd: Int32, size: Int64) -> Bool {
        size >= checkpoint.offset && checkpoint.fingerprint.matches(fd: fd) && checkpoint.tail.matches(fd: fd, endingAt: checkpoint.offset)
    }

    /// A recorded position whose content `fd` holds although it is another file: a copy (made by
    /// copytruncate, while running or stopped) of a file read before. Displaced content is
    /// consumed by its copy; a remembered file may be copied any number of times.
    private func copiedContent(fd: Int32, fingerprint: FileFingerprint, size: Int64, identity: Identity) -> FileCheckpoint? {
        guard fingerprint.length > 0 else { return nil }
        func candidate(_ c: FileCheckpoint) -> Bool {
            c.offset > 0 && c.identity != identity && c.fingerprint == fingerprint
                && (fingerprint.isComplete || size == Int64(fingerprint.length)) && holdsContent(of: c, fd: fd, size: size)
        }
        if let index = displaced.firstIndex(where: candidate) { return displaced.remove(at: index) }
        return remembered.values.first(where: candidate)
    }

    /// A followed file that `fd` is a probable copy of: its first bytes equal the original's
    /// first bytes (complete fingerprints), or — a copy still being written, shorter than the
    /// fingerprint — they are the start of the original.
    private func originalOf(_ fd: Int32, fingerprint: FileFingerprint, excluding identity: Identity) -> Tracked? {
        let originals = tracked.filter { $0.identity != identity && $0.rotatedSince == nil && $0.copyOf == nil && $0.previousGeneration == nil }
        if fingerprint.isComplete { return originals.first { $0.fingerprint == fingerprint } }
        return originals.first { original in
            original.fingerprint.length > fingerprint.length
                && FileFingerprint.read(fd: original.fd, limit: fingerprint.length) == fingerprint
        }
    }

    private func hold(_ file: Tracked, asCopyOf original: Tracked) {
        file.copyOf = original.identity
        file.heldSince = now
        // An empty file (a new one after rename rotation, mostly) waits for its first bytes quietly.
        if file.fingerprint.length > 0 {
            log(.info, "\(file.path) starts like \(original.path); holding it as a probable copy")
        }
    }

    /// Positions restored for files the globs did not match: the file was rotated (renamed out
    /// of the globs), or copied and truncated, while trailwatch was down. Find it and read what
    /// was left; forget the ones that are gone.
    private func resumeUnseen(_ output: SourceOutput) throws {
        let seen = Set(seenAtLastScan.keys)
        let unseen = remembered.values.filter { !seen.contains($0.identity) }
        var directories = DirectoryIndex()
        for checkpoint in unseen + displaced {
            let isDisplaced = remembered[checkpoint.identity] != checkpoint
            if !isDisplaced { remembered[checkpoint.identity] = nil }
            rememberedVersion += 1
            if let (fd, identity, path) = findFile(like: checkpoint, sameInode: !isDisplaced, in: &directories) {
                var st = stat()
                let size = fstat(fd, &st) == 0 ? Int64(st.st_size) : 0
                if size == checkpoint.offset && identity == checkpoint.identity {
                    // Read to its end: remembered where it is now.
                    close(fd)
                    var moved = checkpoint
                    moved.path = path
                    remembered[identity] = moved
                    continue
                }
                lseek(fd, off_t(checkpoint.offset), SEEK_SET)
                // Keep the stream name the data had before the restart.
                let file = try makeTracked(path: path, identity: identity, fd: fd, fingerprint: checkpoint.fingerprint,
                                           start: checkpoint.offset,
                                           verified: VerifiedPosition(offset: checkpoint.offset, tail: checkpoint.tail, updated: checkpoint.updated),
                                           stream: checkpoint.path)
                file.size = size
                file.rotatedSince = now
                log(.info, "\(checkpoint.path) moved to \(path) while stopped; reading it from offset \(checkpoint.offset)")
                tracked.append(file)
            } else {
                log(checkpoint.offset < checkpoint.size || isDisplaced ? .warning : .info,
                    "\(checkpoint.path) (inode \(checkpoint.device):\(checkpoint.inode)) is gone; anything written to it after offset \(checkpoint.offset) was not read")
            }
        }
        displaced = []
    }

    /// The directories the rotated names of files live in, listed once per use.
    struct DirectoryIndex {
        private var entries: [String: [String]] = [:]
        mutating func names(in directory: String) -> [String] {
            if let names = entries[directory] { return names }
            let names = PathGlob.entries(of: directory)
            entries[directory] = names
            return names
        }
    }

    /// A file next to `checkpoint.path` holding the checkpointed content: the same inode under
    /// another name (unless `sameInode` is false: that inode holds other content now), or a copy
    /// whose first bytes and the bytes before the checkpointed offset match.
    private func findFile(like checkpoint: FileCheckpoint, excluding excluded: Identity? = nil, sameInode: Bool = true,
                          in directories: inout DirectoryIndex) -> (Int32, Identity, String)? {
        let directory = PathGlob.directory(of: checkpoint.path)
        let base = PathGlob.baseName(of: checkpoint.path)
        var found: (Int32, Identity, String)?
        var copy: (Int32, Identity, String)?
        for name in directories.names(in: directory) where name.hasPrefix(base) {
            if name.hasSuffix(".gz") || name.hasSuffix(".zst") || name.hasSuffix(".bz2") || name.hasSuffix(".xz") { continue }
            let path = directory == "." ? name : directory + "/" + name
            var st = stat()
            guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG, Int64(st.st_size) >= checkpoint.offset else { continue }
            let identity = Identity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino))
            let isSameInode = identity == checkpoint.identity
            if identity == excluded || (isSameInode && !sameInode) || (!isSameInode && copy != nil) { continue }
            if tracked.contains(where: { $0.identity == identity && $0.copyOf == nil }) { continue }
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { continue }
            guard checkpoint.fingerprint.length > 0, holdsContent(of: checkpoint, fd: fd, size: Int64(st.st_size)) else { close(fd); continue }
            if isSameInode {
                found = (fd, identity, path)
                break
            }
            copy = (fd, identity, path)
        }
        if let found {
            if let copy { close(copy.0) }
            return found
        }
        return copy
    }

    // MARK: Rotation and truncation

    /// The file's content was replaced: read the rest of the old content from a copy, then read
    /// the file again from its start.
    private func restartAfterTruncation(_ file: Tracked, _ output: SourceOutput, reason: String) throws {
        log(.warning, "\(file.path) \(reason): reading it again from its start")
        let offset = file.reader.emittedOffset
        func holdsOldContent(_ copy: Tracked) -> Bool {
            var st = stat()
            return fstat(copy.fd, &st) == 0 && Int64(st.st_size) >= offset && file.fingerprint.matches(fd: copy.fd)
                && file.verified.tail.matches(fd: copy.fd, endingAt: file.verified.offset)
        }
        // Any held file will do (one found while still empty may have been taken for another's copy).
        var held = tracked.first(where: { $0.copyOf == file.identity && holdsOldContent($0) })
            ?? tracked.first(where: { $0.copyOf != nil && $0.identity != file.identity && holdsOldContent($0) })
        var copyOutsideGlobs: (fd: Int32, path: String)?
        if held == nil {
            let checkpoint = FileCheckpoint(path: file.path, device: file.identity.device, inode: file.identity.inode,
                                            fingerprint: file.fingerprint, offset: offset, size: offset, tail: .empty, updated: 0)
            var directories = DirectoryIndex()
            if let (copyFD, identity, copyPath) = findFile(like: checkpoint, excluding: file.identity, in: &directories) {
                if !file.verified.tail.matches(fd: copyFD, endingAt: file.verified.offset) {
                    close(copyFD)  // starts the same way, but is not a copy of what was read
                } else if matchesGlobs(copyPath) {
                    // The globs would find it next: follow it now, as the copy it is.
                    let copy = try makeTracked(path: copyPath, identity: identity, fd: copyFD,
                                               fingerprint: FileFingerprint.read(fd: copyFD) ?? .empty, start: 0,
                                               verified: VerifiedPosition(offset: 0, tail: .empty, updated: now))
                    copy.copyOf = file.identity
                    tracked.append(copy)
                    held = copy
                } else {
                    copyOutsideGlobs = (copyFD, copyPath)
                }
            }
        }
        if let held {
            // The copy is followed itself: it continues where the original stopped, and the old
            // content's acknowledgements now advance the copy's position.
            held.copyOf = nil
            held.reader.restart(at: offset)
            lseek(held.fd, off_t(offset), SEEK_SET)
            held.tracker = file.tracker
            held.lastTokenEnd = offset
            held.fingerprint = file.fingerprint
            held.verified = file.verified
            log(.info, "continuing \(file.path)'s old content in \(held.path) from offset \(offset)")
        } else {
            if let (copyFD, copyPath) = copyOutsideGlobs {
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
            file.previousGeneration = (file.tracker, file.fingerprint, file.verified)
        }
        file.verified = VerifiedPosition(offset: 0, tail: .empty, updated: now)
        file.reader.continueReading(from: file.fd, at: 0)
        file.reader.restart(at: 0)
        lseek(file.fd, 0, SEEK_SET)
        file.tracker = OffsetTracker(committed: 0, advanced: advanced, clock: context.clock)
        file.lastTokenEnd = 0
        file.fingerprint = FileFingerprint.read(fd: file.fd) ?? .empty
    }

    private func matchesGlobs(_ path: String) -> Bool {
        config.include.contains { PathGlob.matchesPattern($0, path) } && !config.exclude.contains { PathGlob.matchesPattern($0, path) }
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
            file.size = size
            retired.append(file)
        }
        tracked = keep
        // Acknowledged to their end: remembered (a copy of them is then known as read).
        retired.removeAll { file in
            guard file.tracker.outstanding == 0 else { return false }
            file.verifyCommitted()
            remember(file)
            return true
        }
    }

    /// Closes files in the globs that were read to their end, acknowledged, and idle for
    /// `close_idle`; they are remembered, and reopened when they grow or change.
    private func closeIdle(now clock: Int64) {
        let limit = config.closeIdle.milliseconds
        let originals = Set(tracked.compactMap(\.copyOf))
        tracked.removeAll { file in
            guard file.rotatedSince == nil, file.copyOf == nil, file.previousGeneration == nil, clock - file.lastGrowth >= limit,
                  file.tracker.outstanding == 0, file.isCaughtUp, file.reader.position == file.size,
                  file.reader.emittedOffset == file.size, !originals.contains(file.identity) else { return false }
            file.verifyCommitted()
            guard file.verified.offset == file.size else { return false }
            remember(file)
            return true
        }
    }

    private func remember(_ file: Tracked) {
        var checkpoint = file.checkpoint
        checkpoint.size = max(checkpoint.offset, file.size)
        close(file.fd)
        // A rotated file keeps the path it was last seen under; its stream name does not matter here.
        remembered[file.identity] = checkpoint
        rememberedVersion += 1
    }

    /// Forgets remembered files that are gone (not matched by the globs and not next to where
    /// they were seen) or, with `ignore_older`, untouched for longer than that.
    private func pruneRemembered(now clock: Int64) {
        var directories = DirectoryIndex()
        var present: [String: Set<Identity>] = [:]
        for (identity, checkpoint) in remembered where seenAtLastScan[identity] == nil || config.ignoreOlder != nil {
            if let ignoreOlder = config.ignoreOlder, clock - checkpoint.updated > ignoreOlder.milliseconds {
                var st = stat()
                let modified = stat(checkpoint.path, &st) == 0 ? Int64(st.st_mtim.tv_sec) * 1000 : 0
                if clock - modified > ignoreOlder.milliseconds {
                    remembered[identity] = nil
                    rememberedVersion += 1
                    continue
                }
            }
            guard seenAtLastScan[identity] == nil else { continue }
            let directory = PathGlob.directory(of: checkpoint.path)
            if present[directory] == nil {
                var identities = Set<Identity>()
                for name in directories.names(in: directory) {
                    var st = stat()
                    if stat(directory == "." ? name : directory + "/" + name, &st) == 0 {
                        identities.insert(Identity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino)))
                    }
                }
                present[directory] = identities
            }
            if present[directory]?.contains(identity) != true {
                remembered[identity] = nil
                rememberedVersion += 1
            }
        }
    }

    /// A probable copy whose original was never truncated is an independent file after all:
    /// it is read from where the original had got to (a short one that stopped growing, from
    /// its start).
    private func releaseHeldCopies(now clock: Int64) {
        for file in tracked where file.copyOf != nil {
            var st = stat()
            let size = fstat(file.fd, &st) == 0 ? Int64(st.st_size) : file.size
            if size != file.size {
                file.size = size
                file.lastGrowth = clock
            }
            let original = tracked.first { $0.identity == file.copyOf }
            let start: Int64
            if !file.fingerprint.isComplete {
                // Still being written? Look at its first bytes again.
                let fingerprint = FileFingerprint.read(fd: file.fd) ?? file.fingerprint
                if fingerprint.length > file.fingerprint.length {
                    file.fingerprint = fingerprint
                    if let original = originalOf(file.fd, fingerprint: fingerprint, excluding: file.identity) {
                        file.copyOf = original.identity
                        continue
                    }
                } else if clock - file.lastGrowth < shortCopyWaitMillis && original != nil {
                    continue
                }
                start = 0
            } else {
                guard clock - file.heldSince >= copyWaitMillis || original == nil else { continue }
                // Only what it shares with the original was read; a file that merely starts the
                // same way is read from its start.
                let offset = min(original?.reader.emittedOffset ?? 0, file.size)
                let shared = original.map { FileFingerprint.read(fd: $0.fd, endingAt: offset) == FileFingerprint.read(fd: file.fd, endingAt: offset) } ?? false
                start = shared ? offset : 0
            }
            file.copyOf = nil
            file.reader.restart(at: start)
            lseek(file.fd, off_t(start), SEEK_SET)
            file.tracker = OffsetTracker(committed: start, advanced: advanced, clock: context.clock)
            file.lastTokenEnd = start
            file.verified = VerifiedPosition(offset: start, tail: FileFingerprint.read(fd: file.fd, endingAt: start) ?? .empty, updated: clock)
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
        let timeout = max(1, min(deadline - now, config.pollInterval.milliseconds))
        if context.clock.sleepBlocking(for: .milliseconds(timeout), wakingOnReadable: inotifyFD) {
            var created: Int32 = 0
            if tw_inotify_drain(inotifyFD, &created) > 0 && created != 0 { rescanRequested = true }
        }
    }

    // MARK: Checkpoints

    /// Writes every position (followed, retired and remembered files) when any changed.
    private func saveCheckpoints() {
        let clock = now
        var entries: [FileCheckpoint] = []
        for file in tracked where file.copyOf == nil {
            file.verifyCommitted()
            entries.append(file.checkpoint)
        }
        for file in retired {
            file.verifyCommitted()
            entries.append(file.checkpoint)
        }
        if rememberedSorted.version != rememberedVersion {
            rememberedSorted = (rememberedVersion, remembered.values.sorted { ($0.path, $0.inode) < ($1.path, $1.inode) })
        }
        if lastSaved?.entries != entries || lastSaved?.rememberedVersion != rememberedVersion {
            do {
                try checkpointFile.save(entries + rememberedSorted.entries)
                lastSaved = (entries, rememberedVersion)
            } catch {
                context.metrics.recordError()
                log(.error, "\(error)")
            }
        }
        var lag: Int64 = 0
        for file in tracked where file.copyOf == nil { lag += max(0, file.size - file.reader.emittedOffset) }
        if tracked.allSatisfy({ $0.copyOf != nil || $0.isCaughtUp }) && retired.isEmpty { lastCaughtUp = clock }
        context.metrics.setGauge("file_lag_bytes", Double(lag))
        context.metrics.setGauge("checkpoint_age_seconds", Double(clock - lastCaughtUp) / 1000)
        context.metrics.setGauge("files_followed", Double(tracked.count))
        context.metrics.setGauge("files_remembered", Double(remembered.count))
    }
}
