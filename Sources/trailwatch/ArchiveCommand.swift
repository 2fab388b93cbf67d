import ArgumentParser
import Foundation
import TrailwatchArchive
#if canImport(Glibc)
import Glibc
#endif

/// `trailwatch archive …`: verify, read and key archives.
struct ArchiveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "archive",
        abstract: "Verify archive digests, print archived records, create signing and encryption keys.",
        subcommands: [Verify.self, Cat.self, Keygen.self])

    struct Verify: ParsableCommand {
        @OptionGroup var logging: LoggingOptions

        static let configuration = CommandConfiguration(
            abstract: "Check every archive file and digest: missing, modified, inserted or reordered files and chain breaks. Exit 1 on any.")

        @Argument(help: "The archive directory (the sink's `directory`).")
        var directory: String

        @Option(help: "Base64 Ed25519 public key, or a file holding it: every digest must carry a valid signature by it.")
        var publicKey: String?

        @Option(name: [.customLong("format"), .customLong("output")], help: "Output format: text or json.")
        var format: OutputFormat = .text

        func run() throws {
            var key: String?
            if let publicKey {
                key = FileManager.default.fileExists(atPath: publicKey)
                    ? String(decoding: FileManager.default.contents(atPath: publicKey) ?? Data(), as: UTF8.self) : publicKey
            }
            let verifier = ArchiveVerifier(root: directory, publicKey: try key.map { try SigningKeys.publicKey(base64: $0) })
            let report = verifier.verify()
            switch format {
            case .json:
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
                var body = try JSONSerialization.jsonObject(with: try encoder.encode(report)) as? [String: Any] ?? [:]
                body["ok"] = report.ok
                let data = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
                print(String(decoding: data, as: UTF8.self))
            case .text:
                for problem in report.problems { print("\(problem.kind.rawValue): \(problem.path): \(problem.detail)") }
                print("\(report.digests) digests, \(report.filesChecked) files checked, \(report.pendingFiles) awaiting the next digest: "
                      + (report.ok ? "valid" : "\(report.problems.count) problems"))
            }
            if !report.ok { throw ExitStatus.negative }
        }
    }

    struct Cat: ParsableCommand {
        @OptionGroup var logging: LoggingOptions

        static let configuration = CommandConfiguration(
            abstract: "Decompress (and decrypt) archived records (.jsonl.zst, .zst, .gz or plain) to standard output.")

        @Argument(help: "Archive files.")
        var files: [String]

        @Option(help: "A file holding a decryption key (base64: an AES-256 key or an X25519 private key); repeatable.")
        var keyFile: [String] = []

        @Option(help: "An environment variable holding a decryption key; repeatable.")
        var keyEnv: [String] = []

        func run() throws {
            var failed = false
            let keys: ArchiveKeyring
            do { keys = try ArchiveKeyring.load(environmentVariables: keyEnv, files: keyFile) } catch {
                throw ValidationError("\(error)")
            }
            for file in files {
                // Output goes out up to the last newline; the unfinished line waits, so damage never
                // leaves half a record on stdout.
                var pending: [UInt8] = []
                do {
                    try ArchiveReader(path: file, keys: keys).read { chunk in
                        guard let lastLF = UnsafeRawBufferPointer(chunk).lastIndex(of: 0x0A) else {
                            pending.append(contentsOf: chunk)
                            // A line this long is no record: pass it on rather than hold it all.
                            if pending.count >= Cat.maximumHeldBytes { try Cat.write(pending); pending.removeAll(keepingCapacity: true) }
                            return
                        }
                        if !pending.isEmpty { try Cat.write(pending); pending.removeAll(keepingCapacity: true) }
                        try Cat.write(UnsafeRawBufferPointer(rebasing: chunk[...lastLF]))
                        pending.append(contentsOf: chunk[(lastLF + 1)...])
                    }
                    // A plain file may end without a newline; its last line is still printed.
                    try Cat.write(pending)
                } catch {
                    CLILog.error("\(file): \(error)" + (pending.isEmpty ? "" : " (\(pending.count) bytes of a cut-off last record not printed)"))
                    failed = true
                }
            }
            if failed { throw ExitStatus.failure }
        }

        /// Longest unfinished line held back before it is written anyway.
        static let maximumHeldBytes = 64 << 20

        static func write(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try write($0) } }

        static func write(_ bytes: UnsafeRawBufferPointer) throws {
            var offset = 0
            while offset < bytes.count {
                let n = Glibc.write(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if n < 0 { if errno == EINTR { continue }; throw ArchiveError("cannot write to standard output") }
                offset += n
            }
        }
    }

    struct Keygen: ParsableCommand {
        @OptionGroup var logging: LoggingOptions

        static let configuration = CommandConfiguration(
            abstract: "Create keys: an Ed25519 pair for signing digests (default), an AES-256 key or an X25519 pair for encrypting archives.",
            discussion: """
                The private (or symmetric) key goes to --private-key-file, mode 0600, and is never printed. \
                --kind signing prints the public key; --kind x25519 prints the public key (for the sink's \
                encryption.public_key) and its key id; --kind aes256 prints the key id.
                """)

        enum Kind: String, ExpressibleByArgument, CaseIterable { case signing, aes256, x25519 }

        @Option(help: "signing (Ed25519, digests), aes256 (symmetric archive encryption) or x25519 (archive encryption with a public key).")
        var kind: Kind = .signing

        @Option(help: "Where to write the private or symmetric key (base64); it must not exist yet.")
        var privateKeyFile: String

        @Option(help: "Where to write the public key (base64); printed as well.")
        var publicKeyFile: String?

        func run() throws {
            let secret: String
            var publicKey: String?
            var keyID: String?
            switch kind {
            case .signing:
                let pair = SigningKeys.generate()
                secret = pair.0
                publicKey = pair.1
            case .aes256:
                let made = ArchiveKey.newSymmetric()
                secret = made.base64
                keyID = made.key.id
            case .x25519:
                let made = ArchiveKey.newX25519()
                secret = made.privateBase64
                publicKey = made.publicBase64
                keyID = made.privateKey.id
            }
            let fd = open(privateKeyFile, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw ValidationError("cannot create \(privateKeyFile): \(String(cString: strerror(errno))) (it must not exist yet)") }
            let text = secret + "\n"
            _ = text.withCString { write(fd, $0, strlen($0)) }
            close(fd)
            if let publicKeyFile {
                guard let publicKey else { throw ValidationError("--kind aes256 has no public key") }
                guard FileManager.default.createFile(atPath: publicKeyFile, contents: Data((publicKey + "\n").utf8),
                                                     attributes: [.posixPermissions: 0o644]) else {
                    throw ValidationError("cannot write the public key to \(publicKeyFile) (the private key is in \(privateKeyFile))")
                }
            }
            if let publicKey { print(publicKey) }
            if let keyID { print("key id: \(keyID)") }
        }
    }
}
