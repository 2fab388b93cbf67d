import Synchronization
import TrailwatchCore
import TrailwatchConfig
#if canImport(Glibc)
import Glibc
#endif

/// The entrance to a stage's input buffer: applies the sink's `buffer:` policy (block, drop the
/// newest, or spool to disk) before the bounded channel the stage reads.
final class StageInbox: Sendable {
    let channel: BoundedChannel<StageMessage>
    let dropWhenFull: Bool
    let metrics: ComponentMetrics
    let spool: DiskSpool?

    init(channel: BoundedChannel<StageMessage>, dropWhenFull: Bool, metrics: ComponentMetrics, spool: DiskSpool?) {
        self.channel = channel
        self.dropWhenFull = dropWhenFull
        self.metrics = metrics
        self.spool = spool
    }

    /// Sends from async code.
    func send(_ message: StageMessage) async {
        guard case .batch(let batch) = message else {
            _ = channel.trySend(message)
            return
        }
        if let spool {
            await spool.append(batch, drop: dropWhenFull, metrics: metrics)
        } else if dropWhenFull {
            if !channel.trySend(message) { dropped(batch) }
        } else {
            await channel.send(message)
        }
    }

    /// Sends from a source thread.
    func sendBlocking(_ batch: Batch) {
        if let spool {
            spool.appendBlocking(batch, drop: dropWhenFull, metrics: metrics)
        } else if dropWhenFull {
            if !channel.trySend(.batch(batch)) { dropped(batch) }
        } else {
            channel.sendBlocking(.batch(batch))
        }
    }

    func trySendTick(_ now: Int64) {
        _ = channel.trySend(.tick(now))
    }

    func producerFinished() {
        if let spool { spool.upstreamFinished() } else { channel.producerFinished() }
    }

    func addProducer() {
        if let spool { spool.upstreamAdded() } else { channel.addProducer() }
    }

    private func dropped(_ batch: Batch) {
        metrics.addToGauge("dropped_events", Double(batch.count))
        // Dropping is what the pipeline asked for: the source may move on.
        batch.acks.release()
    }
}

/// A durable queue in front of an isolated sink: batches are written to files (fsync, then an
/// atomic rename) and acknowledged upstream at once; a feeder hands them to the sink in order and
/// deletes each file once the sink acknowledged it, retrying failed writes with backoff.
/// Whatever is left when the pipeline stops is sent again at the next start.
final class DiskSpool: Sendable {
    private struct State {
        var nextSequence: UInt64 = 0
        /// Spooled, not yet handed to the sink: (sequence, bytes).
        var ready: [(UInt64, Int)] = []
        var readyHead = 0
        /// Failed writes waiting for their retry time: (sequence, bytes, due ms).
        var retries: [(UInt64, Int, Int64)] = []
        /// Handed to the sink, not yet acknowledged.
        var inFlight = 0
        var bytes = 0
        var upstreamProducers: Int
        var backoff: Int64
    }

    let directory: String
    let maxBytes: Int
    let baseBackoff: Int64
    let channel: BoundedChannel<StageMessage>
    let log: RuntimeLog
    let component: String
    /// The sink's metrics: retries are counted as `sink_retries`.
    let metrics: ComponentMetrics?
    private let state: Mutex<State>
    /// Retry backoff is measured on it (the runner's clock).
    private let clock: any StageClock

    /// - Parameter adoptExisting: send what an earlier run left in `directory` first. False when
    ///   a reload restarts the sink while the previous instance's spool still drains from the
    ///   same directory: the new spool then numbers its files after the old ones and leaves
    ///   those alone (what the old one could not deliver is sent at the next start).
    init(directory: String, maxBytes: Int, retryBackoff: Int64, channel: BoundedChannel<StageMessage>,
         upstreamProducers: Int, log: RuntimeLog, component: String, metrics: ComponentMetrics? = nil,
         adoptExisting: Bool = true, clock: any StageClock = SystemClock()) throws(SpoolError) {
        self.clock = clock
        self.metrics = metrics
        self.directory = directory
        self.maxBytes = maxBytes
        self.baseBackoff = retryBackoff
        self.channel = channel
        self.log = log
        self.component = component
        var initial = State(upstreamProducers: upstreamProducers, backoff: retryBackoff)
        try DiskSpool.makeDirectory(directory)
        // What an earlier run left goes first.
        for (sequence, size) in DiskSpool.existing(in: directory, removingTemporary: adoptExisting) {
            if adoptExisting {
                initial.ready.append((sequence, size))
                initial.bytes += size
            }
            initial.nextSequence = max(initial.nextSequence, sequence + 1)
        }
        // The previous instance may still number a few batches it is being handed: stay clear of them.
        if !adoptExisting { initial.nextSequence += 1 << 32 }
        if !initial.ready.isEmpty {
            log.log(.info, component, "resending \(initial.ready.count) spooled batches from \(directory)")
        }
        state = Mutex(initial)
    }

    struct SpoolError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    private static func makeDirectory(_ path: String) throws(SpoolError) {
        var partial = ""
        for component in path.split(separator: "/", omittingEmptySubsequences: false) {
            partial += (partial.isEmpty && path.hasPrefix("/") ? "" : (partial.isEmpty ? "" : "/")) + component
            if partial.isEmpty { partial = "/"; continue }
            if mkdir(partial, 0o750) != 0 && errno != EEXIST {
                throw SpoolError(message: "cannot create spool directory \(partial): \(String(cString: strerror(errno)))")
            }
        }
    }

    private static func existing(in directory: String, removingTemporary: Bool) -> [(UInt64, Int)] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var found: [(UInt64, Int)] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if name.hasSuffix(".tmp") {
                if removingTemporary { unlink(directory + "/" + name) }
                continue
            }
            guard name.hasSuffix(".batch"), let sequence = UInt64(name.dropLast(6)) else { continue }
            var st = stat()
            guard stat(directory + "/" + name, &st) == 0 else { continue }
            found.append((sequence, Int(st.st_size)))
        }
        return found.sorted { $0.0 < $1.0 }
    }

    private func path(_ sequence: UInt64) -> String {
        let digits = String(sequence)
        return directory + "/" + String(repeating: "0", count: max(0, 16 - digits.count)) + digits + ".batch"
    }

    // MARK: Appending (producers)

    private enum Admission { case admitted(UInt64), full }

    private func admit(_ size: Int) -> Admission {
        state.withLock { s in
            // One batch always fits, however large, so a huge batch cannot wedge the spool.
            guard s.bytes == 0 || s.bytes + size <= maxBytes else { return .full }
            let sequence = s.nextSequence
            s.nextSequence += 1
            s.bytes += size
            return .admitted(sequence)
        }
    }

    private func write(_ encoded: [UInt8], _ sequence: UInt64) -> Bool {
        let final = path(sequence)
        let temporary = final + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { return false }
        var ok = encoded.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 { if errno == EINTR { continue }; return false }
                offset += n
            }
            return true
        }
        ok = ok && fsync(fd) == 0
        close(fd)
        ok = ok && rename(temporary, final) == 0
        if !ok { unlink(temporary) }
        return ok
    }

    private func store(_ batch: Batch, _ encoded: [UInt8], _ sequence: UInt64) {
        if write(encoded, sequence) {
            state.withLock { $0.ready.append((sequence, encoded.count)) }
            batch.acks.release()
        } else {
            state.withLock { $0.bytes -= encoded.count }
            log.log(.error, component, "cannot write to the spool in \(directory): \(String(cString: strerror(errno)))")
            batch.acks.release(success: false)
        }
    }

    /// Spools the batch, or drops it when full and `drop`; false when it must wait for room.
    private func tryAppend(_ batch: Batch, _ encoded: [UInt8], drop: Bool, metrics: ComponentMetrics) -> Bool {
        switch admit(encoded.count) {
        case .admitted(let sequence):
            store(batch, encoded, sequence)
            return true
        case .full:
            guard drop else { return false }
            metrics.addToGauge("dropped_events", Double(batch.count))
            batch.acks.release()
            return true
        }
    }

    func append(_ batch: Batch, drop: Bool, metrics: ComponentMetrics) async {
        let encoded = BatchCodec.encode(batch.payload)
        while !tryAppend(batch, encoded, drop: drop, metrics: metrics) { try? await Task.sleep(nanoseconds: 10_000_000) }
    }

    func appendBlocking(_ batch: Batch, drop: Bool, metrics: ComponentMetrics) {
        let encoded = BatchCodec.encode(batch.payload)
        while !tryAppend(batch, encoded, drop: drop, metrics: metrics) { usleep(10_000) }
    }

    func upstreamFinished() {
        state.withLock { $0.upstreamProducers -= 1 }
    }

    func upstreamAdded() {
        state.withLock { $0.upstreamProducers += 1 }
    }

    var spooledBytes: Int { state.withLock { $0.bytes } }

    // MARK: Feeding the sink

    /// Hands spooled batches to the sink until upstream finished and everything was sent; in
    /// the end, failed batches get one last try and stay on disk if that fails too.
    func feed() async {
        var lastTry = false
        while true {
            let now = clock.nowMillis()
            let next: (UInt64, Int)? = state.withLock { s in
                if let index = s.retries.firstIndex(where: { $0.2 <= now || lastTry }) {
                    let (sequence, size, _) = s.retries.remove(at: index)
                    s.inFlight += 1
                    return (sequence, size)
                }
                guard s.readyHead < s.ready.count else { return nil }
                let item = s.ready[s.readyHead]
                s.readyHead += 1
                if s.readyHead > 1024 { s.ready.removeFirst(s.readyHead); s.readyHead = 0 }
                s.inFlight += 1
                return item
            }
            if let (sequence, size) = next {
                await send(sequence, size, finalAttempt: lastTry)
                continue
            }
            let (finished, idle, waitingRetries) = state.withLock { s in
                (s.upstreamProducers <= 0, s.inFlight == 0 && s.readyHead >= s.ready.count, !s.retries.isEmpty)
            }
            if finished && idle && !waitingRetries { break }
            if finished && idle && waitingRetries { lastTry = true }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        channel.producerFinished()
    }

    private func send(_ sequence: UInt64, _ size: Int, finalAttempt: Bool) async {
        let file = path(sequence)
        let payload: Payload
        do {
            payload = try BatchCodec.decode(try readFile(file))
        } catch {
            log.log(.error, component, "dropping unreadable spool file \(file): \(error)")
            unlink(file)
            state.withLock { s in s.inFlight -= 1; s.bytes -= size }
            return
        }
        let token = AckToken { [self] success in
            completed(sequence, size, success: success, finalAttempt: finalAttempt)
        }
        await channel.send(.batch(Batch(payload, acks: Acknowledgements([token]))))
    }

    private func completed(_ sequence: UInt64, _ size: Int, success: Bool, finalAttempt: Bool) {
        if success {
            unlink(path(sequence))
            state.withLock { s in
                s.inFlight -= 1
                s.bytes -= size
                s.backoff = baseBackoff
            }
            return
        }
        state.withLock { s in
            s.inFlight -= 1
            if finalAttempt {
                // Stays on disk for the next run.
                s.bytes -= size
                return
            }
            s.retries.append((sequence, size, clock.nowMillis() + s.backoff))
            s.backoff = min(s.backoff * 2, 30_000)
        }
        if !finalAttempt { metrics?.addToGauge("sink_retries", 1) }
    }

    private func readFile(_ path: String) throws(SpoolError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SpoolError(message: "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var st = stat()
        fstat(fd, &st)
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw SpoolError(message: "cannot read \(path)") }
            offset += n
        }
        return bytes
    }
}
