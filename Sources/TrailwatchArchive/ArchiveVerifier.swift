#if canImport(Glibc)
import Glibc
#endif
import Crypto
import Foundation

/// Checks an archive directory against its digest chains, like `aws cloudtrail validate-logs`.
public struct ArchiveVerifier {
    public struct Problem: Codable, Sendable, Equatable {
        public enum Kind: String, Codable, Sendable {
            /// A file a digest lists is gone.
            case missing
            /// A file's bytes no longer hash to what its digest says.
            case modified
            /// An archive file no digest (and no pending list) knows.
            case inserted
            /// A listed file holds another listed file's content, or digests are out of chain order.
            case reordered
            /// A digest's link to the previous one does not hold (deleted or altered digest).
            case chainBreak = "chain_break"
            /// A signature does not verify, or is missing when a public key was given.
            case badSignature = "bad_signature"
        }
        public var kind: Kind
        public var path: String
        public var detail: String
    }

    public struct Report: Codable, Sendable {
        public var digests = 0
        public var filesChecked = 0
        public var pendingFiles = 0
        public var problems: [Problem] = []
        public var ok: Bool { problems.isEmpty }
    }

    public let root: String
    public let publicKey: Curve25519.Signing.PublicKey?

    public init(root: String, publicKey: Curve25519.Signing.PublicKey?) {
        self.root = root
        self.publicKey = publicKey
    }

    /// Every regular file under `root`, relative, sorted.
    static func walk(_ root: String) -> [String] {
        guard let enumerator = FileManager.default.enumerator(atPath: root) else { return [] }
        var out: [String] = []
        while let item = enumerator.nextObject() as? String {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: root + "/" + item, isDirectory: &isDirectory), !isDirectory.boolValue { out.append(item) }
        }
        return out.sorted()
    }

    public func verify() -> Report {
        var report = Report()
        let all = ArchiveVerifier.walk(root)
        let isDigestDirectory = { (path: String) in path.hasPrefix("_digests/") || path.contains("/_digests/") }
        let digestPaths = all.filter { isDigestDirectory($0) && $0.hasSuffix(".json") && ($0 as NSString).lastPathComponent.contains("_digest_") }
        var listed: [String: ArchiveFileEntry] = [:]
        var byHash: [String: String] = [:]
        var chains: [String: [(path: String, digest: ArchiveDigest, bytes: [UInt8])]] = [:]
        let decoder = JSONDecoder()
        for path in digestPaths {
            guard let data = FileManager.default.contents(atPath: root + "/" + path) else { continue }
            guard let digest = try? decoder.decode(ArchiveDigest.self, from: data) else {
                report.problems.append(Problem(kind: .chainBreak, path: path, detail: "the digest is not readable JSON (altered?)"))
                continue
            }
            chains[digest.host, default: []].append((path, digest, [UInt8](data)))
            checkSignature(path: path, bytes: [UInt8](data), into: &report)
        }
        for (host, unsorted) in chains.sorted(by: { $0.key < $1.key }) {
            let chain = unsorted.sorted { ($0.digest.digestEndTime, $0.path) < ($1.digest.digestEndTime, $1.path) }
            report.digests += chain.count
            let hashes = chain.map { ArchiveIO.sha256Hex($0.bytes) }
            for (k, link) in chain.enumerated() {
                let previous = link.digest.previousDigestFile
                if k == 0 {
                    if let previous {
                        report.problems.append(Problem(kind: .chainBreak, path: link.path,
                                                       detail: "the first digest of host \(host) refers to \(previous), which is gone"))
                    }
                } else if previous != chain[k - 1].path {
                    if let previous, chain.contains(where: { $0.path == previous }) {
                        report.problems.append(Problem(kind: .reordered, path: link.path,
                                                       detail: "follows \(previous) in the chain but comes after \(chain[k - 1].path) in time"))
                    } else {
                        report.problems.append(Problem(kind: .chainBreak, path: link.path,
                                                       detail: "refers to \(previous ?? "no previous digest") but the digest before it is \(chain[k - 1].path)"))
                    }
                } else if link.digest.previousDigestSHA256 != hashes[k - 1] {
                    report.problems.append(Problem(kind: .chainBreak, path: chain[k - 1].path,
                                                   detail: "its SHA-256 is not the one the next digest recorded (digest altered)"))
                }
                for entry in link.digest.files {
                    listed[entry.path] = entry
                    byHash[entry.sha256] = entry.path
                }
            }
        }
        // Files finished after the last digest.
        var pending: [String: ArchiveFileEntry] = [:]
        for path in all where isDigestDirectory(path) && (baseName(path)).hasPrefix("pending-") {
            guard let data = FileManager.default.contents(atPath: root + "/" + path) else { continue }
            for line in data.split(separator: UInt8(ascii: "\n")) {
                if let entry = try? decoder.decode(ArchiveFileEntry.self, from: Data(line)) { pending[entry.path] = entry }
            }
        }
        report.pendingFiles = pending.count
        for (path, entry) in listed.sorted(by: { $0.key < $1.key }) {
            report.filesChecked += 1
            guard let (hash, size) = try? ArchiveIO.sha256Hex(ofFile: root + "/" + path) else {
                report.problems.append(Problem(kind: .missing, path: path, detail: "listed in a digest but not found"))
                continue
            }
            if hash != entry.sha256 || size != entry.size {
                if let other = byHash[hash], other != path {
                    report.problems.append(Problem(kind: .reordered, path: path, detail: "holds the content listed for \(other)"))
                } else {
                    report.problems.append(Problem(kind: .modified, path: path,
                                                   detail: "SHA-256 \(hash.prefix(16))… size \(size); the digest says \(entry.sha256.prefix(16))… size \(entry.size)"))
                }
            }
        }
        for (path, entry) in pending.sorted(by: { $0.key < $1.key }) where listed[path] == nil {
            if let (hash, _) = try? ArchiveIO.sha256Hex(ofFile: root + "/" + path), hash != entry.sha256 {
                report.problems.append(Problem(kind: .modified, path: path, detail: "differs from what was recorded when it was finished"))
            }
        }
        for path in all where !isDigestDirectory(path) && path.hasSuffix(".jsonl.zst") && listed[path] == nil && pending[path] == nil {
            report.problems.append(Problem(kind: .inserted, path: path, detail: "no digest lists this file"))
        }
        return report
    }

    private func baseName(_ path: String) -> String { (path as NSString).lastPathComponent }

    private func checkSignature(path: String, bytes: [UInt8], into report: inout Report) {
        let sigPath = root + "/" + path + ".sig"
        guard let data = FileManager.default.contents(atPath: sigPath) else {
            if publicKey != nil { report.problems.append(Problem(kind: .badSignature, path: path, detail: "the digest is not signed")) }
            return
        }
        guard let sig = try? JSONDecoder().decode(DigestSignature.self, from: data), let raw = Data(base64Encoded: sig.signature) else {
            report.problems.append(Problem(kind: .badSignature, path: path, detail: "the signature file is unreadable"))
            return
        }
        let key: Curve25519.Signing.PublicKey?
        if let publicKey {
            key = publicKey
        } else {
            key = try? SigningKeys.publicKey(base64: sig.publicKey)
        }
        guard let key, key.isValidSignature(raw, for: bytes) else {
            report.problems.append(Problem(kind: .badSignature, path: path,
                                           detail: publicKey == nil ? "the signature does not verify" : "the signature does not verify with the given public key"))
            return
        }
    }
}
