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
        var directory: String
        var prefix = ""
        var level = 3
        var compressionThreads = 1
        var maxFileSize = ByteSize(bytes: 128 << 20)
        var maxFileAge = ConfigDuration(milliseconds: 600_000)
        var digestInterval = ConfigDuration(milliseconds: 3_600_000)
        var syncInterval = ConfigDuration(milliseconds: 1000)
        var host: String?
        /// Name of an environment variable holding the base64 Ed25519 signing key.
        var signingKeyEnv: String?
        /// A file holding the base64 Ed25519 signing key (mode 0600 recommended).
        var signingKeyFile: String?
        /// Encryption at rest (nil: files are not encrypted).
        var encryption: Encryption?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case directory, prefix, level, compressionThreads = "compression_threads", maxFileSize = "max_file_size"
            case maxFileAge = "max_file_age", digestInterval = "digest_interval", syncInterval = "sync_interval", host
            case signingKeyEnv = "signing_key_env", signingKeyFile = "signing_key_file", encryption
        }

        /// `encryption:` — where the key-encryption key comes from (exactly one source) and the chunk size.
        struct Encryption: Decodable, Sendable {
            enum Source: Sendable {
                case symmetricEnv(String), symmetricFile(String), publicKey(String), publicKeyFile(String)
            }
            var source: Source
            var chunkSize = ByteSize(bytes: 1 << 20)

            enum CodingKeys: String, CodingKey, CaseIterable {
                case keyEnv = "key_env", keyFile = "key_file", publicKey = "public_key", publicKeyFile = "public_key_file", chunkSize = "chunk_size"
            }

            init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                let given = [CodingKeys.keyEnv, .keyFile, .publicKey, .publicKeyFile].filter { c.contains($0) }
                guard given.count == 1 else {
                    throw SettingError(codingPath: c.codingPath, message: given.isEmpty ? "no key" : "more than one key source",
                                       expected: "exactly one of key_env, key_file (AES-256 keys), public_key, public_key_file (X25519)")
                }
                let value = try c.decode(String.self, forKey: given[0])
                switch given[0] {
                case .keyEnv: source = .symmetricEnv(value)
                case .keyFile: source = .symmetricFile(value)
                case .publicKey:
                    // A public key is no secret, but check it now so a typo is a located error.
                    do { _ = try ArchiveKey.x25519Public(base64: value) } catch {
                        throw SettingError(codingPath: c.codingPath + [CodingKeys.publicKey], message: error.description,
                                           expected: "the base64 X25519 public key `trailwatch archive keygen --kind x25519` printed")
                    }
                    source = .publicKey(value)
                default: source = .publicKeyFile(value)
                }
                chunkSize = try c.decodeIfPresent(ByteSize.self, forKey: .chunkSize) ?? chunkSize
                guard (4096...(16 << 20)).contains(chunkSize.bytes) else {
                    throw SettingError(codingPath: c.codingPath + [CodingKeys.chunkSize], message: "\(chunkSize) is out of range", expected: "4KiB to 16MiB")
                }
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

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            directory = try c.decode(String.self, forKey: .directory)
            prefix = try c.decodeIfPresent(String.self, forKey: .prefix) ?? prefix
            level = try c.decodeIfPresent(Int.self, forKey: .level) ?? level
            compressionThreads = try c.decodeIfPresent(Int.self, forKey: .compressionThreads) ?? compressionThreads
            maxFileSize = try c.decodeIfPresent(ByteSize.self, forKey: .maxFileSize) ?? maxFileSize
            maxFileAge = try c.decodeIfPresent(ConfigDuration.self, forKey: .maxFileAge) ?? maxFileAge
            digestInterval = try c.decodeIfPresent(ConfigDuration.self, forKey: .digestInterval) ?? digestInterval
            syncInterval = try c.decodeIfPresent(ConfigDuration.self, forKey: .syncInterval) ?? syncInterval
            host = try c.decodeIfPresent(String.self, forKey: .host)
            signingKeyEnv = try c.decodeIfPresent(String.self, forKey: .signingKeyEnv)
            signingKeyFile = try c.decodeIfPresent(String.self, forKey: .signingKeyFile)
            encryption = try c.decodeIfPresent(Encryption.self, forKey: .encryption)
            guard (1...19).contains(level) else {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.level], message: "\(level) is out of range", expected: "a zstd level from 1 to 19")
            }
            guard (0...16).contains(compressionThreads) else {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.compressionThreads], message: "\(compressionThreads) is out of range",
                                   expected: "0 (compress on the sink's own thread) to 16")
            }
            guard maxFileSize.bytes >= 1 << 16 else {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.maxFileSize], message: "\(maxFileSize) is too small", expected: "at least 64KiB")
            }
            if signingKeyEnv != nil && signingKeyFile != nil {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.signingKeyFile], message: "is given together with signing_key_env",
                                   expected: "one source for the signing key")
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
        private var lastSync = MonotonicClock.wallMillis()
        private var lastDigest = MonotonicClock.wallMillis()
        private var encoder = LogBatchJSONEncoder()
        private var buffer = ByteBuffer(reservingCapacity: 2 << 20)
        private let maxOpenFiles = 64

        let encryptionKey: ArchiveKey?

        init(config: Config, signingKey: SigningKeyType?, encryptionKey: ArchiveKey?, context: StageContext) throws {
            self.config = config
            self.context = context
            self.encryptionKey = encryptionKey
            host = config.host ?? ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "host"
            let now = MonotonicClock.wallMillis()
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
            let now = MonotonicClock.wallMillis()
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
            let now = MonotonicClock.wallMillis()
            try syncAndRotate(now: now, force: true)
            try digests.writeDigest(now: now)
        }
    }
}


