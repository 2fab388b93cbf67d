import Crypto
import Foundation

/// A key for archive encryption at rest. Files are encrypted with a fresh random data key each;
/// the data key is wrapped (encrypted) by a key-encryption key:
///
/// - `symmetric`: 32 random bytes (AES-256-GCM key wrap). Encrypts and decrypts.
/// - `x25519Public`: the public half of an X25519 pair: a writer with it can encrypt but not read
///   back (ECDH with a per-file ephemeral key, HKDF-SHA256, AES-256-GCM key wrap).
/// - `x25519Private`: decrypts what was written for its public key.
///
/// Keys are written as base64 text; a key's id is a fingerprint of its (public) key, recorded in
/// every file header and digest entry so the right key is found and a wrong one named.
// Crypto's key types are immutable values but not marked Sendable.
public enum ArchiveKey: @unchecked Sendable {
    case symmetric(SymmetricKey)
    case x25519Public(Curve25519.KeyAgreement.PublicKey)
    case x25519Private(Curve25519.KeyAgreement.PrivateKey)

    public enum Kind: UInt8, Sendable { case symmetric = 1, x25519 = 2 }

    /// The id recorded in headers: `sym-` or `x25519-` and 16 hex digits of a SHA-256 fingerprint.
    public var id: String {
        switch self {
        case .symmetric(let key):
            let digest = key.withUnsafeBytes { SHA256.hash(data: Array("trailwatch archive key id\0".utf8) + Array($0)) }
            return "sym-" + Self.hex(Array(digest).prefix(8))
        case .x25519Public(let key): return Self.x25519ID(key)
        case .x25519Private(let key): return Self.x25519ID(key.publicKey)
        }
    }

    static func x25519ID(_ key: Curve25519.KeyAgreement.PublicKey) -> String {
        "x25519-" + hex(Array(SHA256.hash(data: key.rawRepresentation)).prefix(8))
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    public var kind: Kind {
        if case .symmetric = self { return .symmetric }
        return .x25519
    }

    /// True when this key can read files (symmetric or X25519 private).
    public var canDecrypt: Bool {
        if case .x25519Public = self { return false }
        return true
    }

    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// A symmetric key from base64 text (32 bytes).
    public static func symmetric(base64 text: String) throws(Failure) -> ArchiveKey {
        .symmetric(SymmetricKey(data: try raw(text, what: "AES-256 key")))
    }

    /// An X25519 public key from base64 text (32 bytes).
    public static func x25519Public(base64 text: String) throws(Failure) -> ArchiveKey {
        do { return .x25519Public(try .init(rawRepresentation: try raw(text, what: "X25519 public key"))) } catch let error as Failure { throw error } catch {
            throw Failure(description: "not an X25519 public key")
        }
    }

    /// A decryption key from base64 text: 32 bytes may be either a symmetric key or an X25519
    /// private key, so both are returned and the file header's key id picks the one that fits.
    public static func decryptionCandidates(base64 text: String) throws(Failure) -> [ArchiveKey] {
        let bytes = try raw(text, what: "decryption key")
        var out: [ArchiveKey] = [.symmetric(SymmetricKey(data: bytes))]
        if let privateKey = try? Curve25519.KeyAgreement.PrivateKey(rawRepresentation: bytes) { out.append(.x25519Private(privateKey)) }
        return out
    }

    static func raw(_ text: String, what: String) throws(Failure) -> [UInt8] {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let data = Data(base64Encoded: trimmed), data.count == 32 else {
            // Never repeat the text: it is key material.
            throw Failure(description: "not a base64 \(what) (expected 32 bytes in base64)")
        }
        return [UInt8](data)
    }

    /// Base64 of a new random symmetric key.
    public static func newSymmetric() -> (key: ArchiveKey, base64: String) {
        let key = SymmetricKey(size: .bits256)
        return (.symmetric(key), key.withUnsafeBytes { Data($0).base64EncodedString() })
    }

    /// A new X25519 pair: base64 of the private key, base64 of the public key.
    public static func newX25519() -> (privateKey: ArchiveKey, privateBase64: String, publicBase64: String) {
        let key = Curve25519.KeyAgreement.PrivateKey()
        return (.x25519Private(key), key.rawRepresentation.base64EncodedString(), key.publicKey.rawRepresentation.base64EncodedString())
    }
}

/// The keys a reader may use, found by the key id in each file's header.
public struct ArchiveKeyring: Sendable {
    public var keys: [ArchiveKey]
    public init(_ keys: [ArchiveKey] = []) { self.keys = keys }
    public static let empty = ArchiveKeyring()
    public func key(id: String) -> ArchiveKey? { keys.first { $0.id == id && $0.canDecrypt } }
}

/// The encrypted file format (all integers big-endian):
///
///     header: magic "\x89TWENC\r\n" | version 1 | KEK kind (1 symmetric, 2 X25519)
///             | key id length (u8) | key id | wrapped data key length (u16) | wrapped data key
///             | metadata length (u16) | metadata JSON ({"group", "stream"}: what the file name says)
///     chunk:  flags (u8: 1 final, 2 sync point) | plaintext length (u32) | AES-256-GCM ciphertext | 16-byte tag
///
/// Each chunk is sealed with the file's data key, nonce = [flags, 0, 0, 0] + chunk number (u64),
/// and the whole header as associated data: a chunk moved, dropped, altered, re-flagged or taken
/// from another file fails to open, and a file cut at a chunk boundary lacks its final chunk.
/// A sync point marks a chunk that ends where the writer synced (complete zstd frames, all of it
/// acknowledged): crash recovery keeps the chunks up to the last sync point, without needing a key.
public enum EncryptedArchive {
    public static let magic: [UInt8] = [0x89, 0x54, 0x57, 0x45, 0x4E, 0x43, 0x0D, 0x0A]
    static let version: UInt8 = 1
    static let tagSize = 16
    /// The most plaintext one chunk may hold (a header claiming more is damage).
    public static let maximumChunk = 16 << 20
    static let wrapInfo = Array("trailwatch archive data key".utf8)

    public static func isEncrypted(_ head: [UInt8]) -> Bool { head.count >= magic.count && Array(head.prefix(magic.count)) == magic }

    static let finalFlag: UInt8 = 1
    static let syncFlag: UInt8 = 2
    static let chunkHeaderSize = 5

    static func nonce(_ number: UInt64, flags: UInt8) -> AES.GCM.Nonce {
        var bytes = [UInt8](repeating: 0, count: 12)
        bytes[0] = flags
        for k in 0..<8 { bytes[4 + k] = UInt8(truncatingIfNeeded: number >> (8 * UInt64(7 - k))) }
        return try! AES.GCM.Nonce(data: bytes)
    }

    /// Wraps a data key for `key`'s holder.
    static func wrap(_ dataKey: SymmetricKey, for key: ArchiveKey) throws -> [UInt8] {
        let plain = dataKey.withUnsafeBytes { Array($0) }
        let aad = wrapInfo + Array(key.id.utf8)
        switch key {
        case .symmetric(let kek):
            let box = try AES.GCM.seal(plain, using: kek, authenticating: aad)
            return Array(box.nonce) + Array(box.ciphertext) + Array(box.tag)
        case .x25519Public(let recipient):
            return try wrapX25519(plain, recipient: recipient, aad: aad)
        case .x25519Private(let own):
            return try wrapX25519(plain, recipient: own.publicKey, aad: aad)
        }
    }

    static func wrapX25519(_ plain: [UInt8], recipient: Curve25519.KeyAgreement.PublicKey, aad: [UInt8]) throws -> [UInt8] {
        let ephemeral = Curve25519.KeyAgreement.PrivateKey()
        let secret = try ephemeral.sharedSecretFromKeyAgreement(with: recipient)
        let salt = ephemeral.publicKey.rawRepresentation + recipient.rawRepresentation
        let kek = secret.hkdfDerivedSymmetricKey(using: SHA256.self, salt: salt, sharedInfo: wrapInfo, outputByteCount: 32)
        let box = try AES.GCM.seal(plain, using: kek, authenticating: aad)
        return Array(ephemeral.publicKey.rawRepresentation) + Array(box.nonce) + Array(box.ciphertext) + Array(box.tag)
    }

    /// Recovers a data key, or nil when `key` does not open it.
    static func unwrap(_ wrapped: [UInt8], with key: ArchiveKey, keyID: String) -> SymmetricKey? {
        let aad = wrapInfo + Array(keyID.utf8)
        func open(_ bytes: ArraySlice<UInt8>, _ kek: SymmetricKey) -> SymmetricKey? {
            guard bytes.count == 12 + 32 + 16, let nonce = try? AES.GCM.Nonce(data: bytes.prefix(12)),
                  let box = try? AES.GCM.SealedBox(nonce: nonce, ciphertext: bytes.dropFirst(12).prefix(32), tag: bytes.suffix(16)),
                  let plain = try? AES.GCM.open(box, using: kek, authenticating: aad) else { return nil }
            return SymmetricKey(data: plain)
        }
        switch key {
        case .symmetric(let kek): return open(wrapped[...], kek)
        case .x25519Private(let own):
            guard wrapped.count == 32 + 60, let ephemeral = try? Curve25519.KeyAgreement.PublicKey(rawRepresentation: wrapped.prefix(32)),
                  let secret = try? own.sharedSecretFromKeyAgreement(with: ephemeral) else { return nil }
            let salt = ephemeral.rawRepresentation + own.publicKey.rawRepresentation
            let kek = secret.hkdfDerivedSymmetricKey(using: SHA256.self, salt: salt, sharedInfo: wrapInfo, outputByteCount: 32)
            return open(wrapped.dropFirst(32), kek)
        case .x25519Public: return nil
        }
    }

    /// A parsed header.
    public struct Header: Sendable {
        public var kind: ArchiveKey.Kind
        public var keyID: String
        var wrappedKey: [UInt8]
        public var group: String
        public var stream: String
        /// The header's bytes (associated data of every chunk).
        var bytes: [UInt8]
    }

    static func makeHeader(key: ArchiveKey, wrapped: [UInt8], group: String, stream: String) -> [UInt8] {
        var out = magic
        out.append(version)
        out.append(key.kind.rawValue)
        let id = Array(key.id.utf8)
        out.append(UInt8(id.count))
        out += id
        out += [UInt8(wrapped.count >> 8), UInt8(wrapped.count & 0xFF)]
        out += wrapped
        let meta = (try? JSONSerialization.data(withJSONObject: ["group": group, "stream": stream], options: [.sortedKeys])).map { [UInt8]($0) } ?? []
        let clipped = Array(meta.prefix(0xFFFF))
        out += [UInt8(clipped.count >> 8), UInt8(clipped.count & 0xFF)]
        out += clipped
        return out
    }

    /// Parses a header at the front of `bytes`: nil when more bytes are needed; throws on damage.
    static func parseHeader(_ bytes: ArraySlice<UInt8>, path: String) throws(ArchiveError) -> Header? {
        let b = Array(bytes.prefix(8 + 3 + 255 + 2 + 0xFFFF + 2 + 0xFFFF))
        guard b.count >= 11 else { return nil }
        guard Array(b[0..<8]) == magic else { throw ArchiveError("\(path): not an encrypted archive file") }
        guard b[8] == version else { throw ArchiveError("\(path): encrypted with format version \(b[8]), which this trailwatch does not read") }
        guard let kind = ArchiveKey.Kind(rawValue: b[9]) else { throw ArchiveError("\(path): unknown key kind \(b[9]) in the header") }
        var i = 10
        let idLength = Int(b[i]); i += 1
        guard b.count >= i + idLength + 2 else { return nil }
        let keyID = String(decoding: b[i..<(i + idLength)], as: UTF8.self); i += idLength
        let wrappedLength = Int(b[i]) << 8 | Int(b[i + 1]); i += 2
        guard b.count >= i + wrappedLength + 2 else { return nil }
        let wrapped = Array(b[i..<(i + wrappedLength)]); i += wrappedLength
        let metaLength = Int(b[i]) << 8 | Int(b[i + 1]); i += 2
        guard b.count >= i + metaLength else { return nil }
        let meta = (try? JSONSerialization.jsonObject(with: Data(b[i..<(i + metaLength)]))) as? [String: String] ?? [:]
        i += metaLength
        return Header(kind: kind, keyID: keyID, wrappedKey: wrapped, group: meta["group"] ?? "", stream: meta["stream"] ?? "", bytes: Array(b[0..<i]))
    }

    /// Reads just the header of a file (key id, group, stream) — no key needed.
    public static func header(ofFile path: String) throws(ArchiveError) -> Header? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ArchiveError.errno("cannot open", path) }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 8 + 3 + 255 + 2 + 1024 + 2 + 0xFFFF)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0, isEncrypted(Array(buffer.prefix(n))) else { return nil }
        return try parseHeader(buffer[0..<n], path: path)
    }
}

/// Encrypts a stream into the format above: ``write(_:)`` takes plaintext (zstd frames), full
/// chunks are sealed as they fill, ``flush()`` seals what is pending (a sync point), ``finish()``
/// seals the final chunk. Sealed bytes go to `emit`, header first.
public final class ArchiveEncryptor {
    let dataKey: SymmetricKey
    let header: [UInt8]
    let chunkSize: Int
    private var pending: [UInt8] = []
    private var number: UInt64 = 0
    private var started = false
    private var lastWasSync = true
    public let keyID: String

    public init(key: ArchiveKey, group: String, stream: String, chunkSize: Int) throws(ArchiveError) {
        dataKey = SymmetricKey(size: .bits256)
        do {
            header = EncryptedArchive.makeHeader(key: key, wrapped: try EncryptedArchive.wrap(dataKey, for: key), group: group, stream: stream)
        } catch {
            throw ArchiveError("cannot wrap the data key: \(error)")
        }
        keyID = key.id
        self.chunkSize = max(4096, min(chunkSize, EncryptedArchive.maximumChunk))
        pending.reserveCapacity(self.chunkSize)
    }

    /// Resumes a file whose header and first `chunks` chunks are on disk (crash recovery with a
    /// key that can read the file): seals further chunks from number `chunks` on.
    init(resuming header: EncryptedArchive.Header, dataKey: SymmetricKey, chunks: UInt64) {
        self.dataKey = dataKey
        self.header = header.bytes
        self.chunkSize = 1 << 16
        self.number = chunks
        self.started = true
        self.keyID = header.keyID
    }

    public func write(_ bytes: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        try start(emit)
        var rest = bytes
        while !rest.isEmpty {
            let take = min(chunkSize - pending.count, rest.count)
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest[0..<take]))
            rest = UnsafeRawBufferPointer(rebasing: rest[take...])
            if pending.count == chunkSize { try seal(flags: 0, emit) }
        }
    }

    /// A sync point: seals what is pending as a chunk marked as ending at complete frames.
    public func flush(_ emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        try start(emit)
        if !pending.isEmpty || !lastWasSync { try seal(flags: EncryptedArchive.syncFlag, emit) }
    }

    /// Seals the final chunk (with whatever is pending, possibly nothing).
    public func finish(_ emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        try start(emit)
        try seal(flags: EncryptedArchive.finalFlag | EncryptedArchive.syncFlag, emit)
    }

    private func start(_ emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard !started else { return }
        started = true
        try header.withUnsafeBytes { try emit($0) }
    }

    private func seal(flags: UInt8, _ emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        let box = try AES.GCM.seal(pending, using: dataKey, nonce: EncryptedArchive.nonce(number, flags: flags), authenticating: header)
        number += 1
        lastWasSync = flags & EncryptedArchive.syncFlag != 0
        var out: [UInt8] = []
        out.reserveCapacity(pending.count + 24)
        let n = UInt32(pending.count)
        out += [flags, UInt8(n >> 24), UInt8((n >> 16) & 0xFF), UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)]
        out += box.ciphertext
        out += box.tag
        pending.removeAll(keepingCapacity: true)
        try out.withUnsafeBytes { try emit($0) }
    }
}

/// Decrypts the format above as bytes arrive: checks every chunk (order, integrity, the final
/// marker) and hands plaintext on. Errors name the file and say what is wrong.
public final class ArchiveDecryptor {
    let path: String
    let keys: ArchiveKeyring
    private var buffer: [UInt8] = []
    private var header: EncryptedArchive.Header?
    private var dataKey: SymmetricKey?
    private var number: UInt64 = 0
    private var sawFinal = false
    /// Bytes of complete, authenticated chunks (and the header) seen so far.
    public private(set) var goodBytes = 0
    public private(set) var chunks: UInt64 = 0

    public init(path: String, keys: ArchiveKeyring) {
        self.path = path
        self.keys = keys
    }

    public var keyID: String? { header?.keyID }

    public func feed(_ bytes: UnsafeRawBufferPointer, emit: (UnsafeRawBufferPointer) throws -> Void) throws {
        buffer.append(contentsOf: bytes)
        if header == nil {
            guard let parsed = try EncryptedArchive.parseHeader(buffer[...], path: path) else { return }
            guard let key = keys.key(id: parsed.keyID) else {
                throw ArchiveError(keys.keys.isEmpty
                    ? "\(path): encrypted with key \(parsed.keyID); no decryption key was given"
                    : "\(path): encrypted with key \(parsed.keyID); none of the given keys (\(keys.keys.filter(\.canDecrypt).map(\.id).joined(separator: ", "))) is that key")
            }
            guard let unwrapped = EncryptedArchive.unwrap(parsed.wrappedKey, with: key, keyID: parsed.keyID) else {
                throw ArchiveError("\(path): the key \(parsed.keyID) does not open this file's data key (wrong key, or the header was altered)")
            }
            header = parsed
            dataKey = unwrapped
            buffer.removeFirst(parsed.bytes.count)
            goodBytes = parsed.bytes.count
        }
        var consumed = 0
        defer { if consumed > 0 { buffer.removeFirst(consumed) } }
        while buffer.count - consumed >= EncryptedArchive.chunkHeaderSize {
            let i = consumed
            let flags = buffer[i]
            let length = Int(buffer[i + 1]) << 24 | Int(buffer[i + 2]) << 16 | Int(buffer[i + 3]) << 8 | Int(buffer[i + 4])
            guard length <= EncryptedArchive.maximumChunk, flags & ~(EncryptedArchive.finalFlag | EncryptedArchive.syncFlag) == 0 else {
                throw ArchiveError("\(path): damaged at byte \(goodBytes): chunk \(number) has an invalid header")
            }
            let start = i + EncryptedArchive.chunkHeaderSize
            let total = EncryptedArchive.chunkHeaderSize + length + EncryptedArchive.tagSize
            guard buffer.count - i >= total else { return }
            guard !sawFinal else { throw ArchiveError("\(path): data after the final chunk at byte \(goodBytes) (appended to, or spliced)") }
            let ciphertext = buffer[start..<(start + length)]
            let tag = buffer[(start + length)..<(i + total)]
            let plain: Data
            do {
                plain = try open(ciphertext, tag, flags: flags)
            } catch {
                throw ArchiveError("\(path): chunk \(number) at byte \(goodBytes) does not authenticate (altered, reordered or from another file)")
            }
            if flags & EncryptedArchive.finalFlag != 0 { sawFinal = true }
            number += 1
            chunks = number
            goodBytes += total
            consumed += total
            try plain.withUnsafeBytes { try emit($0) }
        }
    }

    private func open(_ ciphertext: ArraySlice<UInt8>, _ tag: ArraySlice<UInt8>, flags: UInt8) throws -> Data {
        let box = try AES.GCM.SealedBox(nonce: EncryptedArchive.nonce(number, flags: flags), ciphertext: ciphertext, tag: tag)
        return try AES.GCM.open(box, using: dataKey!, authenticating: header!.bytes)
    }

    /// The input ended: it must have ended right after the final chunk.
    public func finish() throws {
        guard header != nil else { throw ArchiveError("\(path): truncated inside the encryption header") }
        if !buffer.isEmpty { throw ArchiveError("\(path): truncated at byte \(goodBytes) (an incomplete chunk)") }
        if !sawFinal {
            throw ArchiveError("\(path): ends at byte \(goodBytes) without its final chunk (truncated, or recovered after a crash without the key)")
        }
    }

    /// Used by recovery: the data key and chunk count after feeding a partial file.
    var resumeState: (EncryptedArchive.Header, SymmetricKey, UInt64)? {
        guard let header, let dataKey, !sawFinal else { return nil }
        return (header, dataKey, number)
    }

    /// The length of the front of `bytes` that ends at the last sync point (header and whole
    /// chunks), found from the chunk headers alone — no key needed. Nil when the header is incomplete.
    public static func syncedPrefix(_ bytes: [UInt8], path: String) throws(ArchiveError) -> Int? {
        guard let header = try EncryptedArchive.parseHeader(bytes[...], path: path) else { return nil }
        var i = header.bytes.count
        var good = i
        while bytes.count - i >= EncryptedArchive.chunkHeaderSize {
            let flags = bytes[i]
            let length = Int(bytes[i + 1]) << 24 | Int(bytes[i + 2]) << 16 | Int(bytes[i + 3]) << 8 | Int(bytes[i + 4])
            let total = EncryptedArchive.chunkHeaderSize + length + EncryptedArchive.tagSize
            guard length <= EncryptedArchive.maximumChunk, bytes.count - i >= total else { break }
            i += total
            if flags & EncryptedArchive.syncFlag != 0 { good = i }
            if flags & EncryptedArchive.finalFlag != 0 { break }
        }
        return good
    }
}

extension ArchiveKeyring {
    /// Decryption keys from environment variables and files (base64 text each). Errors name the
    /// variable or file, never the key.
    public static func load(environmentVariables: [String], files: [String],
                            environment: [String: String] = ProcessInfo.processInfo.environment) throws(ArchiveError) -> ArchiveKeyring {
        var keys: [ArchiveKey] = []
        for name in environmentVariables {
            guard let value = environment[name], !value.isEmpty else { throw ArchiveError("the environment variable \(name) is not set") }
            do { keys += try ArchiveKey.decryptionCandidates(base64: value) } catch { throw ArchiveError("the environment variable \(name): \(error)") }
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { throw ArchiveError("cannot read the key file \(file)") }
            do { keys += try ArchiveKey.decryptionCandidates(base64: String(decoding: data, as: UTF8.self)) } catch {
                throw ArchiveError("the key file \(file): \(error)")
            }
        }
        return ArchiveKeyring(keys)
    }
}

extension EncryptedArchive {
    /// The header bytes at the front of an encrypted file's bytes (nil when incomplete or not encrypted).
    public static func header(bytes: [UInt8]) throws(ArchiveError) -> [UInt8]? {
        guard isEncrypted(Array(bytes.prefix(8))) else { return nil }
        return try parseHeader(bytes[...], path: "")?.bytes
    }
}
