import Foundation
import Glibc
import Testing
import TrailwatchArchive
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStages
import TrailwatchTestSupport

@Suite("Archive encryption at rest: AES-256-GCM chunks, X25519 or AES-256 key wrap")
struct ArchiveEncryptionTests {
    /// Encrypts `plain` with small chunks, returning the file bytes.
    func encrypt(_ plain: [UInt8], key: ArchiveKey, chunk: Int = 4096, syncEvery: Int = 0) throws -> [UInt8] {
        let encryptor = try ArchiveEncryptor(key: key, group: "/app", stream: "s", chunkSize: chunk)
        var out: [UInt8] = []
        var offset = 0
        while offset < plain.count {
            let n = min(1000, plain.count - offset)
            try plain[offset..<(offset + n)].withUnsafeBytes { try encryptor.write($0) { out += $0 } }
            offset += n
            if syncEvery > 0 && offset % syncEvery == 0 { try encryptor.flush { out += $0 } }
        }
        try encryptor.finish { out += $0 }
        return out
    }

    func decrypt(_ bytes: [UInt8], keys: ArchiveKeyring) throws -> [UInt8] {
        let decryptor = ArchiveDecryptor(path: "f.jsonl.zst", keys: keys)
        var out: [UInt8] = []
        var offset = 0
        while offset < bytes.count {  // fed in odd pieces, as reads arrive
            let n = min(777, bytes.count - offset)
            try bytes[offset..<(offset + n)].withUnsafeBytes { try decryptor.feed($0) { out += $0 } }
            offset += n
        }
        try decryptor.finish()
        return out
    }

    func failure(_ body: () throws -> Void) -> String {
        do { try body(); return "" } catch { return "\(error)" }
    }

    static let plain: [UInt8] = Array((0..<3000).map { "record \($0) with some text\n" }.joined().utf8)

    @Test func roundTripsWithBothKeyKinds() throws {
        let (symmetric, _) = ArchiveKey.newSymmetric()
        let bytes = try encrypt(Self.plain, key: symmetric, syncEvery: 5000)
        #expect(Array(bytes.prefix(8)) == EncryptedArchive.magic)
        #expect(bytes.count > Self.plain.count && bytes.count < Self.plain.count + 4000)
        #expect(try decrypt(bytes, keys: ArchiveKeyring([symmetric])) == Self.plain)
        // The plaintext appears nowhere in the file.
        #expect(!String(decoding: bytes, as: UTF8.self).contains("record 1"))

        let pair = ArchiveKey.newX25519()
        let publicKey = try ArchiveKey.x25519Public(base64: pair.publicBase64)
        #expect(publicKey.id == pair.privateKey.id)
        let sealed = try encrypt(Self.plain, key: publicKey)
        #expect(try decrypt(sealed, keys: ArchiveKeyring(try ArchiveKey.decryptionCandidates(base64: pair.privateBase64))) == Self.plain)
        // The writer's public key cannot read what it wrote.
        #expect(failure { _ = try decrypt(sealed, keys: ArchiveKeyring([publicKey])) }.contains("none of the given keys"))
    }

    @Test func wrongMissingKeysAndTamperingAreNamed() throws {
        let (key, _) = ArchiveKey.newSymmetric()
        let (other, _) = ArchiveKey.newSymmetric()
        let bytes = try encrypt(Self.plain, key: key)
        let noKey = failure { _ = try decrypt(bytes, keys: .empty) }
        #expect(noKey.contains("f.jsonl.zst: encrypted with key \(key.id); no decryption key was given"), "\(noKey)")
        #expect(failure { _ = try decrypt(bytes, keys: ArchiveKeyring([other])) }.contains("none of the given keys (\(other.id)) is that key"))

        let headerLength = try #require(try EncryptedArchive.header(bytes: bytes)).count
        func chunkStarts(_ b: [UInt8]) -> [Int] {
            var starts: [Int] = []
            var i = headerLength
            while i < b.count {
                starts.append(i)
                let n = Int(b[i + 1]) << 24 | Int(b[i + 2]) << 16 | Int(b[i + 3]) << 8 | Int(b[i + 4])
                i += 5 + n + 16
            }
            return starts
        }
        let starts = chunkStarts(bytes)
        #expect(starts.count > 10)
        // Cut at a chunk boundary: every chunk authenticates, but the final one is missing.
        let cut = Array(bytes[0..<starts[5]])
        #expect(failure { _ = try decrypt(cut, keys: ArchiveKeyring([key])) }.contains("without its final chunk"))
        // Cut inside a chunk.
        #expect(failure { _ = try decrypt(Array(bytes[0..<(starts[5] + 10)]), keys: ArchiveKeyring([key])) }.contains("incomplete chunk"))
        // Two chunks swapped.
        var swapped = Array(bytes[0..<starts[2]])
        swapped += bytes[starts[3]..<starts[4]]
        swapped += bytes[starts[2]..<starts[3]]
        swapped += bytes[starts[4]...]
        #expect(failure { _ = try decrypt(swapped, keys: ArchiveKeyring([key])) }.contains("chunk 2 at byte \(starts[2]) does not authenticate"))
        // One byte flipped.
        var flipped = bytes
        flipped[starts[7] + 40] ^= 1
        #expect(failure { _ = try decrypt(flipped, keys: ArchiveKeyring([key])) }.contains("chunk 7"))
        // A chunk re-flagged as final.
        var reflagged = Array(bytes[0..<starts[4]])
        reflagged[starts[3]] |= 1
        #expect(failure { _ = try decrypt(reflagged, keys: ArchiveKeyring([key])) }.contains("does not authenticate"))
        // A chunk from another file with the same key.
        let otherFile = try encrypt(Self.plain, key: key)
        var spliced = Array(bytes[0..<starts[1]])
        spliced += otherFile[starts[1]..<starts[2]]
        spliced += bytes[starts[2]...]
        #expect(failure { _ = try decrypt(spliced, keys: ArchiveKeyring([key])) }.contains("does not authenticate"))
    }

    @Test("pipeline: encrypted archive, verify without the key, replay and cat with it, key id in the digest")
    func pipelineRoundTrip() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("logs/a.log", (0..<2000).map { #"{"n":\#($0),"level":"INFO"}"# + "\n" }.joined())
        let (key, base64) = ArchiveKey.newSymmetric()
        let keyFile = dir.write("archive.key", base64 + "\n")
        _ = try await runOnce("""
            sources:
              app: { type: file, include: \(dir.file("logs"))/a.log, log_group: /app }
            sinks:
              arch:
                type: archive
                inputs: [app]
                directory: \(dir.file("archive"))
                host: h1
                encryption: { key_file: \(keyFile), chunk_size: 8KiB }
            """)
        let files = archiveFiles(dir.file("archive"))
        #expect(files.count == 1)
        let head = try ArchiveIO.readFile(dir.file("archive/" + files[0]))
        #expect(EncryptedArchive.isEncrypted(Array(head.prefix(8))))
        let digest = try String(contentsOfFile: try #require((FileManager.default.enumerator(atPath: dir.file("archive"))?.allObjects as? [String])?
            .first { $0.hasSuffix(".json") && $0.contains("_digest_") }.map { dir.file("archive/" + $0) }), encoding: .utf8)
        #expect(digest.contains("\"keyId\" : \"\(key.id)\"") || digest.contains("\"keyId\":\"\(key.id)\""), "\(digest)")
        // verify needs no key: digests cover the ciphertext.
        let (status, report, _) = try await runTool(trailwatchBinary(), ["archive", "verify", dir.file("archive")])
        #expect(status == 0, "\(report)")
        // The archive source decrypts with the key, and names the file without it.
        _ = try await runOnce("""
            sources:
              old: { type: archive, include: "\(dir.file("archive"))/**/*.zst", decryption_key_file: \(keyFile) }
            sinks:
              out: { type: file, inputs: [old], path: \(dir.file("replay.log")), format: raw }
            """)
        #expect(lines(dir.read("replay.log")).count == 2000)
        let (catStatus, catOut, _) = try await runTool(trailwatchBinary(), ["archive", "cat", "--key-file", keyFile, dir.file("archive/" + files[0])])
        #expect(catStatus == 0 && lines(catOut).count == 2000 && catOut.contains(#""message":"{\"n\":1999,"#))
        let (noKeyStatus, _, noKeyErr) = try await runTool(trailwatchBinary(), ["archive", "cat", dir.file("archive/" + files[0])])
        #expect(noKeyStatus == 3 && noKeyErr.contains(files[0]) && noKeyErr.contains("encrypted with key \(key.id); no decryption key was given"), "\(noKeyErr)")
        #expect(!noKeyErr.contains(base64))
    }

    @Test("crash recovery: a partial encrypted file keeps its synced chunks; with an AES key it gets its final chunk")
    func recovery() throws {
        let dir = TemporaryDirectory()
        for (index, symmetric) in [true, false].enumerated() {
            let root = dir.file("archive\(index)")
            let (writeKey, readKeys): (ArchiveKey, ArchiveKeyring)
            if symmetric {
                let key = ArchiveKey.newSymmetric().key
                (writeKey, readKeys) = (key, ArchiveKeyring([key]))
            } else {
                let pair = ArchiveKey.newX25519()
                (writeKey, readKeys) = (try ArchiveKey.x25519Public(base64: pair.publicBase64), ArchiveKeyring([pair.privateKey]))
            }
            let relative = "app/2026/11/24/h1_s_20261124T100000Z_1.jsonl.zst"
            let writer = try ArchiveFileWriter(root: root, relativePath: relative, logGroup: "/app", logStream: "s", level: 3, workers: 0,
                                               now: 0, encryption: writeKey, chunkSize: 4096)
            func records(_ range: Range<Int>) -> [UInt8] {
                Array(range.map { #"{"timestamp":"2026-11-24T10:00:00.000Z","group":"/app","stream":"s","message":"m\#($0)"}"# + "\n" }.joined().utf8)
            }
            try records(0..<300).withUnsafeBytes { try writer.append($0, count: 300, firstTime: 0, lastTime: 0) }
            try writer.sync()
            // Written but never synced: the crash comes before the next sync.
            try records(300..<5000).withUnsafeBytes { try writer.append($0, count: 4700, firstTime: 0, lastTime: 0) }
            let partial = relative + ".partial"
            #expect(FileManager.default.fileExists(atPath: root + "/" + partial))
            let recovered = try #require(try PartialFileRecovery.recover(root: root, relativePartial: partial,
                                                                          keys: symmetric ? readKeys : .empty))
            #expect(recovered.keyId == writeKey.id)
            #expect(recovered.logGroup == "/app" && recovered.logStream == "s")
            var read: [String] = []
            let error = failure { try ArchiveReader(path: root + "/" + relative, keys: readKeys).lines { read.append(String(decoding: $0, as: UTF8.self)) } }
            #expect(read.count == 300, "\(read.count)")
            if symmetric {
                #expect(error.isEmpty, "\(error)")
                #expect(recovered.records == 300)
            } else {
                #expect(error.contains("without its final chunk"), "\(error)")
            }
            let (hash, size) = try ArchiveIO.sha256Hex(ofFile: root + "/" + relative)
            #expect(hash == recovered.sha256 && size == recovered.size)
        }
    }

    @Test("keygen makes AES-256 and X25519 keys; the secret goes to a 0600 file only")
    func keygen() async throws {
        let dir = TemporaryDirectory()
        let (status, out, _) = try await runTool(trailwatchBinary(), ["archive", "keygen", "--kind", "x25519", "--private-key-file", dir.file("x.key"),
                                                                 "--public-key-file", dir.file("x.pub")])
        #expect(status == 0)
        let secret = dir.read("x.key").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(!out.contains(secret))
        #expect(out.contains(dir.read("x.pub").trimmingCharacters(in: .whitespacesAndNewlines)))
        var info = stat()
        stat(dir.file("x.key"), &info)
        #expect(info.st_mode & 0o777 == 0o600)
        let candidates = try ArchiveKey.decryptionCandidates(base64: secret)
        #expect(out.contains("key id: \(candidates[1].id)"))
        let (aesStatus, aesOut, _) = try await runTool(trailwatchBinary(), ["archive", "keygen", "--kind", "aes256", "--private-key-file", dir.file("a.key")])
        #expect(aesStatus == 0 && aesOut.hasPrefix("key id: sym-"))
        #expect(!aesOut.contains(dir.read("a.key").trimmingCharacters(in: .whitespacesAndNewlines)))
    }
}
