#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation
import TrailwatchCore

/// A digest file, like CloudTrail's log file validation digests: the archive files finished in a
/// time range, each with its SHA-256, size, time range and record count, and the SHA-256 of the
/// previous digest file, so the digests form a chain from the first one.
public struct ArchiveDigest: Codable, Sendable {
    public var version = 1
    public var host: String
    public var digestStartTime: String
    public var digestEndTime: String
    /// Path (relative to the archive root) and SHA-256 of the previous digest; nil for the first.
    public var previousDigestFile: String?
    public var previousDigestSHA256: String?
    public var files: [ArchiveFileEntry]
}

/// The detached signature of a digest (`<digest>.sig`).
public struct DigestSignature: Codable, Sendable {
    public var algorithm = "Ed25519"
    /// The signer's public key, base64 (raw 32 bytes).
    public var publicKey: String
    /// Ed25519 signature of the digest file's bytes, base64.
    public var signature: String
}

/// Loads an Ed25519 signing key from base64 text (raw 32-byte seed, as `archive keygen` writes).
public enum SigningKeys {
    public static func privateKey(base64 text: String) throws(ArchiveError) -> Curve25519.Signing.PrivateKey {
        guard let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)),
              let key = try? Curve25519.Signing.PrivateKey(rawRepresentation: raw) else {
            throw ArchiveError("the signing key is not a base64 Ed25519 private key (32 bytes)")
        }
        return key
    }

    public static func publicKey(base64 text: String) throws(ArchiveError) -> Curve25519.Signing.PublicKey {
        guard let raw = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)),
              let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw) else {
            throw ArchiveError("the public key is not a base64 Ed25519 public key (32 bytes)")
        }
        return key
    }
}

/// Keeps the digest chain of one writer (host) under `<root>/<prefix>/_digests/`: finished files
/// wait in `pending.jsonl` (fsynced per file, so a crash loses none) until the next digest.
public final class DigestWriter {
    public let root: String
    public let directory: String
    public let host: String
    let signingKey: Curve25519.Signing.PrivateKey?
    private var pending: [ArchiveFileEntry] = []
    private var periodStart: Int64
    private var head: (path: String, sha256: String)?

    var pendingPath: String { root + "/" + directory + "/pending-" + ArchiveNaming.sanitize(host) + ".jsonl" }
    var headPath: String { root + "/" + directory + "/head-" + ArchiveNaming.sanitize(host) + ".json" }

    public init(root: String, prefix: String, host: String, signingKey: Curve25519.Signing.PrivateKey?, now: Int64) throws(ArchiveError) {
        self.root = root
        self.directory = (prefix.isEmpty ? "" : prefix + "/") + "_digests"
        self.host = host
        self.signingKey = signingKey
        self.periodStart = now
        try ArchiveIO.makeDirectories(root + "/" + directory)
        if let data = FileManager.default.contents(atPath: pendingPath) {
            let decoder = JSONDecoder()
            for line in data.split(separator: UInt8(ascii: "\n")) {
                if let entry = try? decoder.decode(ArchiveFileEntry.self, from: Data(line)) { pending.append(entry) }
            }
        }
        if let data = FileManager.default.contents(atPath: headPath),
           let saved = try? JSONDecoder().decode([String: String].self, from: data), let path = saved["path"], let hash = saved["sha256"] {
            head = (path, hash)
        }
    }

    public var pendingCount: Int { pending.count }

    /// Records a finished archive file until the next digest.
    public func add(_ entry: ArchiveFileEntry) throws(ArchiveError) {
        var line = (try? JSONEncoder().encode(entry)).map { [UInt8]($0) } ?? []
        line.append(0x0A)
        let fd = open(pendingPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw ArchiveError.errno("cannot open", pendingPath) }
        let ok = line.withUnsafeBytes { ArchiveIO.writeAll(fd, $0) } && fsync(fd) == 0
        close(fd)
        guard ok else { throw ArchiveError.errno("cannot write", pendingPath) }
        pending.append(entry)
    }

    /// Writes a digest of the pending files (even when there are none: the chain then shows the
    /// writer was alive and nothing was archived), signs it, and clears the pending list.
    @discardableResult
    public func writeDigest(now: Int64) throws(ArchiveError) -> String {
        let digest = ArchiveDigest(host: host, digestStartTime: Timestamps.iso8601(periodStart), digestEndTime: Timestamps.iso8601(now),
                                   previousDigestFile: head?.path, previousDigestSHA256: head?.sha256, files: pending)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let bytes: [UInt8]
        do { bytes = [UInt8](try encoder.encode(digest)) } catch { throw ArchiveError("cannot encode the digest: \(error)") }
        let (y, m, d) = Timestamps.civilFromDays(Int(now / 86_400_000))
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        let relative = "\(directory)/\(y)/\(two(m))/\(two(d))/\(ArchiveNaming.sanitize(host))_digest_\(ArchiveNaming.compactTime(now))_\(ArchiveNaming.randomID()).json"
        let path = root + "/" + relative
        try ArchiveIO.makeDirectories((path as NSString).deletingLastPathComponent)
        try ArchiveIO.writeAtomically(bytes, to: path)
        if let signingKey {
            guard let signature = try? signingKey.signature(for: bytes) else { throw ArchiveError("cannot sign the digest") }
            let sig = DigestSignature(publicKey: signingKey.publicKey.rawRepresentation.base64EncodedString(),
                                      signature: Data(signature).base64EncodedString())
            let sigBytes = (try? encoder.encode(sig)).map { [UInt8]($0) } ?? []
            try ArchiveIO.writeAtomically(sigBytes, to: path + ".sig")
        }
        let hash = ArchiveIO.sha256Hex(bytes)
        head = (relative, hash)
        let headBytes = (try? encoder.encode(["path": relative, "sha256": hash])).map { [UInt8]($0) } ?? []
        try ArchiveIO.writeAtomically(headBytes, to: headPath)
        // Only now may the pending list go: the digest holding it is durable.
        try ArchiveIO.writeAtomically([], to: pendingPath)
        pending = []
        periodStart = now
        return relative
    }
}

/// The signing key type digests use (Ed25519).
public typealias SigningKeyType = Curve25519.Signing.PrivateKey

extension SigningKeys {
    /// A new key pair as base64 texts (private, public).
    public static func generate() -> (privateKey: String, publicKey: String) {
        let key = Curve25519.Signing.PrivateKey()
        return (key.rawRepresentation.base64EncodedString(), key.publicKey.rawRepresentation.base64EncodedString())
    }
}
