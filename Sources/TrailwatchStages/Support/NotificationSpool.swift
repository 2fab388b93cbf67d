#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// The notifier's durable queue: one file per notification under `<state>/spool` (0640, fsynced,
/// the directory fsynced), named by sequence so delivery keeps event order. A notification is in
/// the spool before the events that caused it are acknowledged, and leaves it only once
/// delivered (or, refused for good, moved to `<state>/failed`), so a restart loses nothing.
final class NotificationSpool: Sendable {
    struct Entry: Sendable {
        var file: String
        var notification: Notification
    }

    let directory: String
    let failedDirectory: String
    private let queue = Mutex<[Entry]>([])
    private let sequence = Atomic<UInt64>(0)

    init(stateDirectory: String) throws {
        directory = stateDirectory + "/spool"
        failedDirectory = stateDirectory + "/failed"
        for path in [directory, failedDirectory] {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o750])
        }
        // What a previous run spooled but did not deliver goes first, in its order.
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
        var restored: [Entry] = []
        for name in names {
            let path = directory + "/" + name
            guard let data = FileManager.default.contents(atPath: path),
                  let notification = try? JSONDecoder().decode(Notification.self, from: data) else {
                // A file cut short by a crash before its fsync was never acknowledged: its events come again.
                unlink(path)
                continue
            }
            restored.append(Entry(file: path, notification: notification))
        }
        queue.withLock { $0 = restored }
        let last = names.last.flatMap { UInt64($0.prefix(while: { $0 != "-" && $0 != "." })) } ?? 0
        sequence.store(last, ordering: .relaxed)
    }

    var pending: [Entry] { queue.withLock { $0 } }
    var count: Int { queue.withLock { $0.count } }

    /// Writes notifications durably and queues them for delivery.
    func append(_ notifications: [Notification]) throws {
        guard !notifications.isEmpty else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var entries: [Entry] = []
        for notification in notifications {
            let number = sequence.wrappingAdd(1, ordering: .relaxed).newValue
            let path = directory + "/" + String(format: "%016llu", number) + ".json"
            let data = try encoder.encode(notification)
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw StageError("cannot create \(path): \(String(cString: strerror(errno)))") }
            let written = data.withUnsafeBytes { FileIO.writeAll(fd, $0) }
            let synced = fsync(fd) == 0
            close(fd)
            guard written && synced else { throw StageError("cannot write \(path): \(String(cString: strerror(errno)))") }
            entries.append(Entry(file: path, notification: notification))
        }
        let dirfd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dirfd >= 0 { fsync(dirfd); close(dirfd) }
        queue.withLock { $0 += entries }
    }

    var first: Entry? { queue.withLock { $0.first } }

    /// The head was delivered: forget it.
    func delivered(_ entry: Entry) {
        unlink(entry.file)
        queue.withLock { q in q.removeAll { $0.file == entry.file } }
    }

    /// The head can never be delivered (the receiver refused it): keep it aside for people.
    func refused(_ entry: Entry) {
        let name = (entry.file as NSString).lastPathComponent
        rename(entry.file, failedDirectory + "/" + name)
        queue.withLock { q in q.removeAll { $0.file == entry.file } }
    }
}

/// What the notifier remembers between runs: dedupe keys it has spooled (bounded by age and
/// count) and, per subject, the last firing notification, for cooldowns.
struct NotifierMemory: Codable {
    var keys: [String: Int64] = [:]
    var lastFiring: [String: Int64] = [:]
    /// Subjects whose last firing notification was suppressed by the cooldown (their clear is too).
    var suppressed: Set<String> = []

    static let maxKeys = 10_000

    mutating func forget(olderThan horizon: Int64) {
        keys = keys.filter { $0.value >= horizon }
        if keys.count > Self.maxKeys {
            let keep = keys.sorted { $0.value > $1.value }.prefix(Self.maxKeys)
            keys = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
        }
        lastFiring = lastFiring.filter { $0.value >= horizon }
    }
}
