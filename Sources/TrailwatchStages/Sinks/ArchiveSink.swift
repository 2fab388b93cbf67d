#if canImport(Glibc)
import Glibc
#endif
import Foundation
import TrailwatchArchive
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `archive`: log events as JSON-lines records in zstd files laid out like CloudTrail's
/// (`<directory>/<prefix>/<log group>/YYYY/MM/DD/<host>_<stream>_<start>_<id>.jsonl.zst`),
/// written as `.partial` and renamed when finished, with a signed digest chain.
struct ArchiveSink: SinkKind {
    struct Config: StageConfig {
        var directory = ""
        var prefix = ""
        var level = 3
        var compressionThreads = 1
        var maxFileSize = ByteSize(bytes: 128 << 20)
        var maxFileAge = ConfigDuration(milliseconds: 600_000)
        var digestInterval = ConfigDuration(milliseconds: 3_600_000)
        var syncInterval = ConfigDuration(milliseconds: 1000)
        var host: String?
        var signingKeyEnv: String?
        var signingKeyFile: String?
        /// Encryption at rest (nil: files are not encrypted).
        var encryption: Encryption?

        static let settings = SettingsSchema<Config>(
            .required("directory", \.directory, "The archive root."),
            .setting("prefix", \.prefix, "A sub-path under it."),
            .setting("level", \.level, "zstd level, 1–19.", check: SettingIssue.outside(1...19, expected: "a zstd level from 1 to 19")),
            .setting("compression_threads", \.compressionThreads, "zstd worker threads beside the sink (0: compress on the sink's own thread). 0–16.",
                     check: SettingIssue.outside(0...16, expected: "0 (compress on the sink's own thread) to 16")),
            .setting("max_file_size", \.maxFileSize, "Compressed size that closes a file. At least 64KiB.",
                     check: { $0.bytes < 1 << 16 ? SettingIssue("\($0) is too small", expected: "at least 64KiB") : nil }),
            .setting("max_file_age", \.maxFileAge, "Age that closes a file."),
            .setting("digest_interval", \.digestInterval, "How often a digest is written (and at shutdown); see "
                     + "[digests](#digests-tamper-evidence-like-cloudtrail-log-file-validation)."),
            .setting("sync_interval", \.syncInterval, "Live mode: how often the zstd frame is ended, the file fsynced and the batches "
                     + "acknowledged (a batch a client waits for: at once)."),
            .setting("host", \.host, "The host name in file and digest names.", default: "the host name"),
            .setting("signing_key_env", \.signingKeyEnv, "An environment variable holding the base64 Ed25519 key digests are signed with."),
            .setting("signing_key_file", \.signingKeyFile, "A file holding that key (mode 0600 recommended); never together with `signing_key_env`."),
            .section("encryption", \.encryption, "Encryption at rest; see [encryption at rest](#encryption-at-rest).")
        )

        mutating func validate(at codingPath: [any CodingKey]) throws {
            if signingKeyEnv != nil && signingKeyFile != nil {
                throw SettingError(codingPath: codingPath + [Self.key(\Config.signingKeyFile)], message: "is given together with signing_key_env",
                                   expected: "one source for the signing key")
            }
        }

        /// `encryption:` — where the key-encryption key comes from (exactly one source) and the chunk size.
        struct Encryption: SettingsSection {
            enum Source: Sendable {
                case symmetricEnv(String), symmetricFile(String), publicKey(String), publicKeyFile(String)
            }
            var source = Source.symmetricEnv("")
            /// Whether one of the key settings gave ``source``.
            var sourceGiven = false
            var chunkSize = ByteSize(bytes: 1 << 20)

            static let settings = SettingsSchema<Encryption>(
                key("key_env", "An environment variable holding an AES-256 key (base64).") { .symmetricEnv($0) },
                key("key_file", "A file holding an AES-256 key (base64).") { .symmetricFile($0) },
                key("public_key", "An X25519 public key (base64, as `trailwatch archive keygen --kind x25519` prints it): the writer "
                    + "can encrypt but never read back.") { text throws(SettingIssue) in
                    // A public key is no secret, but check it now so a typo is a located error.
                    do throws(ArchiveKey.Failure) { _ = try ArchiveKey.x25519Public(base64: text) } catch {
                        throw SettingIssue(error.description, expected: "the base64 X25519 public key `trailwatch archive keygen --kind x25519` printed")
                    }
                    return .publicKey(text)
                },
                key("public_key_file", "A file holding an X25519 public key. Exactly one of the four key settings.") { .publicKeyFile($0) },
                .setting("chunk_size", \.chunkSize, "Plaintext per sealed chunk. 4KiB–16MiB.",
                         check: { (4096...(16 << 20)).contains($0.bytes) ? nil : SettingIssue("\($0) is out of range", expected: "4KiB to 16MiB") })
            )

            /// One of the settings that say where the key comes from; the section takes exactly one.
            static func key(_ name: String, _ doc: String, _ source: @escaping @Sendable (String) throws(SettingIssue) -> Source) -> Setting<Encryption> {
                .custom(name, type: "string", doc) { config, c, key in
                    if config.sourceGiven { throw oneKey(c.codingPath, "more than one key source") }
                    config.sourceGiven = true
                    do { config.source = try source(try c.decode(String.self, forKey: key)) } catch let issue as SettingIssue {
                        throw SettingError(codingPath: c.codingPath + [key], message: issue.message, expected: issue.expected)
                    }
                }
            }

            init() {}

            mutating func validate(at codingPath: [any CodingKey]) throws {
                if !sourceGiven { throw Self.oneKey(codingPath, "no key") }
            }

            static func oneKey(_ codingPath: [any CodingKey], _ message: String) -> SettingError {
                SettingError(codingPath: codingPath, message: message,
                             expected: "exactly one of key_env, key_file (AES-256 keys), public_key, public_key_file (X25519)")
            }

            /// The key, read from the environment or a file now (never printed).
            func key() throws -> ArchiveKey {
                switch source {
                case .symmetricEnv(let name):
                    guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
                        throw ArchiveError("encryption.key_env: the environment variable \(name) is not set")
                    }
                    do { return try ArchiveKey.symmetric(base64: value) } catch { throw ArchiveError("encryption.key_env: \(name): \(error)") }
                case .symmetricFile(let path):
                    guard let data = FileManager.default.contents(atPath: path) else { throw ArchiveError("encryption.key_file: cannot read \(path)") }
                    do { return try ArchiveKey.symmetric(base64: String(decoding: data, as: UTF8.self)) } catch {
                        throw ArchiveError("encryption.key_file: \(path): \(error)")
                    }
                case .publicKey(let text): return try ArchiveKey.x25519Public(base64: text)
                case .publicKeyFile(let path):
                    guard let data = FileManager.default.contents(atPath: path) else { throw ArchiveError("encryption.public_key_file: cannot read \(path)") }
                    do { return try ArchiveKey.x25519Public(base64: String(decoding: data, as: UTF8.self)) } catch {
                        throw ArchiveError("encryption.public_key_file: \(path): \(error)")
                    }
                }
            }
        }
    }

    static let type = "archive"
    static let summary = "Writes log events to zstd-compressed JSON-lines files with a signed digest chain."
    static func accepts(_ config: Config) -> Set<EventKind> { [.log] }

    static func make(_ config: Config, _ context: StageContext) throws -> any Sink {
        var key: String?
        if let name = config.signingKeyEnv {
            guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else {
                throw ArchiveError("signing_key_env: the environment variable \(name) is not set")
            }
            key = value
        } else if let file = config.signingKeyFile {
            guard let data = FileManager.default.contents(atPath: file) else { throw ArchiveError("signing_key_file: cannot read \(file)") }
            key = String(decoding: data, as: UTF8.self)
        }
        return try Runner(config: config, signingKey: try key.map { try SigningKeys.privateKey(base64: $0) },
                          encryptionKey: try config.encryption?.key(), context: context)
    }

    final class Runner: Sink {
        let config: Config
        let host: String
        let context: StageContext
        let digests: DigestWriter
        private var writers: [Origin: ArchiveFileWriter] = [:]
        private var order: [Origin] = []
        private var unsynced = Acknowledgements()
        private var lastSync: Int64
        private var lastDigest: Int64
        private var encoder = LogBatchJSONEncoder()
        private var buffer = ByteBuffer(reservingCapacity: 2 << 20)
        private let maxOpenFiles = 64

        let encryptionKey: ArchiveKey?

        init(config: Config, signingKey: SigningKeyType?, encryptionKey: ArchiveKey?, context: StageContext) throws {
            self.config = config
            self.context = context
            self.encryptionKey = encryptionKey
            host = config.host ?? ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
            let now = context.clock.nowMillis()
            (lastSync, lastDigest) = (now, now)
            digests = try DigestWriter(root: config.directory, prefix: config.prefix, host: host, signingKey: signingKey, now: now)
            // Files a crash left open: their synced frames were acknowledged, so they are kept.
            for partial in PartialFileRecovery.partialFiles(under: config.directory, host: host) {
                if let entry = try PartialFileRecovery.recover(root: config.directory, relativePartial: partial,
                                                               keys: ArchiveKeyring(encryptionKey.map { [$0] } ?? [])) {
                    try digests.add(entry)
                    context.log.log(.info, context.id, "recovered \(entry.path) (\(entry.records) records) left by an earlier run")
                }
            }
        }

        func write(_ batch: Batch) async throws {
            guard case .logs(let logs) = batch.payload, logs.count > 0 else {
                batch.acks.release()
                return
            }
            let now = context.clock.nowMillis()
            if logs.origins.count == 1 || logs.originIndices.isEmpty {
                try append(logs, origin: logs.origins[0], now: now)
            } else {
                var byOrigin: [Int: [Int]] = [:]
                for i in 0..<logs.count { byOrigin[Int(logs.originIndices[i]), default: []].append(i) }
                for (index, events) in byOrigin.sorted(by: { $0.key < $1.key }) {
                    try append(logs.selecting(events), origin: logs.origins[index], now: now)
                }
            }
            unsynced.merge(batch.acks)
            if writers.values.contains(where: { $0.compressedBytes >= Int64(config.maxFileSize.bytes) }) {
                try syncAndRotate(now: now, force: false)
            } else if !context.once && (batch.acks.awaited || now - lastSync >= config.syncInterval.milliseconds) {
                // A client waits for this batch (PutLogEvents): end the frame and fsync now.
                try syncAndRotate(now: now, force: false)
            }
        }

        private func append(_ logs: LogBatch, origin: Origin, now: Int64) throws {
            let writer = try writer(for: origin, start: logs.timestamp(0), now: now)
            buffer.removeAll()
            encoder.append(logs, to: &buffer)
            var first = Int64.max, last = Int64.min
            for i in 0..<logs.count {
                let t = logs.timestamp(i)
                first = min(first, t)
                last = max(last, t)
            }
            try buffer.withUnsafeBytes { try writer.append($0, count: logs.count, firstTime: first, lastTime: last) }
            context.metrics.recordOut(events: logs.count, bytes: buffer.count)
        }

        private func writer(for origin: Origin, start: Int64, now: Int64) throws -> ArchiveFileWriter {
            if let open = writers[origin] { return open }
            if writers.count >= maxOpenFiles, let oldest = order.first {
                // Too many streams at once: finish the one opened longest ago.
                try syncAndRotate(now: now, force: false, only: oldest)
            }
            let relative = ArchiveNaming.relativePath(prefix: config.prefix, logGroup: origin.logGroup, host: host,
                                                      logStream: origin.logStream, start: start, id: ArchiveNaming.randomID())
            let writer = try ArchiveFileWriter(root: config.directory, relativePath: relative, logGroup: origin.logGroup,
                                               logStream: origin.logStream, level: Int32(config.level),
                                               workers: Int32(config.compressionThreads), now: now,
                                               encryption: encryptionKey, chunkSize: config.encryption?.chunkSize.bytes ?? 1 << 20)
            writers[origin] = writer
            order.append(origin)
            return writer
        }

        /// Ends frames and fsyncs every open file, releases what was written, then finishes files
        /// that are big or old enough (or all of them with `force`, or just `only`).
        private func syncAndRotate(now: Int64, force: Bool, only: Origin? = nil) throws {
            do {
                for writer in writers.values { try writer.sync() }
            } catch {
                unsynced.take().release(success: false)
                throw error
            }
            lastSync = now
            unsynced.take().release()
            for origin in order {
                guard let writer = writers[origin] else { continue }
                let due = force || origin == only || writer.compressedBytes >= Int64(config.maxFileSize.bytes)
                    || now - writer.openedAt >= config.maxFileAge.milliseconds
                guard due else { continue }
                let entry = try writer.finish()
                try digests.add(entry)
                writers[origin] = nil
            }
            order.removeAll { writers[$0] == nil }
        }

        func tick(nowMillis: Int64) async throws {
            if nowMillis - lastSync >= config.syncInterval.milliseconds { try syncAndRotate(now: nowMillis, force: false) }
            if nowMillis - lastDigest >= config.digestInterval.milliseconds {
                lastDigest = nowMillis
                try digests.writeDigest(now: nowMillis)
            }
        }

        func finish() async throws {
            let now = context.clock.nowMillis()
            try syncAndRotate(now: now, force: true)
            try digests.writeDigest(now: now)
        }
    }
}


