import Foundation
import Glibc
import Testing
import TrailwatchCore
import TrailwatchRuntime
@testable import TrailwatchStages
import TrailwatchTestSupport

/// The pipelines run on a virtual clock: scans, idle closing, rotation waits and checkpoint
/// saves happen when the tests move time on, not after sleeps.
@Suite("File positions: every file ever read is remembered", .serialized)
struct FilePositionTests {
    func pipeline(_ dir: TemporaryDirectory, extra: String = "") -> String {
        """
        data_dir: \(dir.file("state"))
        sources:
          app:
            type: file
            include: ["\(dir.file("logs"))/app.log*"]
            glob_interval: 100ms
            rotate_wait: 200ms
            checkpoint_interval: 100ms
        \(extra)
        sinks:
          out: { type: file, inputs: [app], path: \(dir.file("out.log")), format: raw, sync_interval: 50ms }
        """
    }

    /// Lines of 100 bytes, so that a few of them fill the 1 KiB fingerprint.
    func block(_ prefix: String, _ range: Range<Int>) -> String {
        range.map { "\(prefix)-\(String($0).leftPad(4)) " + String(repeating: "x", count: 93 - prefix.count) + "\n" }.joined()
    }

    @Test("rotated files read to their end, open or closed as idle, are not read again after restarts")
    func rotatedFilesAreRemembered() async throws {
        let dir = TemporaryDirectory()
        let log = dir.write("logs/app.log", block("a", 0..<20))
        let yaml = pipeline(dir, extra: "    close_idle: 300ms")
        var live = try LivePipeline(yaml, clock: VirtualClock())
        #expect(await live.advance(until: { lines(dir.read("out.log")).count == 20 }))
        rename(log, log + ".1")
        _ = dir.write("logs/app.log", block("b", 0..<20))
        #expect(await live.advance(until: { lines(dir.read("out.log")).count == 40 }))
        // Idle long enough to be closed and remembered.
        #expect(await live.advance(until: { dir.read("state/state/app/checkpoints.json").components(separatedBy: "\"offset\":2000").count == 3 }))
        await live.advance(by: .milliseconds(500))
        _ = await live.stop()
        for round in 0..<2 {
            live = try LivePipeline(yaml, clock: VirtualClock())
            appendText(dir.file("logs/app.log"), "more \(round)\n")
            #expect(await live.advance(until: { lines(dir.read("out.log")).count == 41 + round }))
            await live.advance(by: .milliseconds(400))
            _ = await live.stop()
        }
        // A remembered (closed) file that grows is opened again and read from where it ended.
        live = try LivePipeline(yaml, clock: VirtualClock())
        appendText(log + ".1", "late line\n")
        #expect(await live.advance(until: { lines(dir.read("out.log")).count == 43 }))
        _ = await live.stop()
        let out = lines(dir.read("out.log"))
        #expect(out.count == Set(out).count, "\(out)")
        #expect(out.last == "late line")
        let checkpoint = dir.read("state/state/app/checkpoints.json")
        #expect(checkpoint.hasPrefix(#"{"version":2,"files":["#))
    }

    @Test("copytruncate while stopped: the copy is known as content already read, by its first bytes, size and the bytes before the offset")
    func copytruncateWhileStopped() async throws {
        let dir = TemporaryDirectory()
        let log = dir.write("logs/app.log", block("a", 0..<30))
        let yaml = pipeline(dir)
        var live = try LivePipeline(yaml, clock: VirtualClock())
        #expect(await live.advance(until: { lines(dir.read("out.log")).count == 30 }))
        await live.advance(by: .milliseconds(300))
        _ = await live.stop()
        // While stopped: more lines, then logrotate's copytruncate, then new lines.
        appendText(log, block("a", 30..<35))
        _ = dir.write("logs/app.log.1", dir.read("logs/app.log"))
        truncate(log, 0)
        appendText(log, block("c", 0..<3))
        live = try LivePipeline(yaml, clock: VirtualClock())
        #expect(await live.advance(until: { lines(dir.read("out.log")).count == 38 }))
        await live.advance(by: .milliseconds(500))
        _ = await live.stop()
        let out = lines(dir.read("out.log"))
        #expect(out.sorted() == lines(block("a", 0..<35) + block("c", 0..<3)).sorted(), "\(out.count) lines")
    }

    @Test("a different file that merely starts like one read before is read whole")
    func sameHeadOtherContent() async throws {
        let dir = TemporaryDirectory()
        let header = String(repeating: "=", count: 1500) + "\n"
        let log = dir.write("logs/app.log", header + "first run\n")
        let yaml = pipeline(dir)
        var live = try LivePipeline(yaml, clock: VirtualClock())
        #expect(await live.advance(until: { lines(dir.read("out.log")).count == 2 }))
        await live.advance(by: .milliseconds(300))
        _ = await live.stop()
        // Deleted and recreated with the same first KiB but other lines (a new inode).
        unlink(log)
        _ = dir.write("logs/app.log.new", header + "second run, a longer line\n")
        live = try LivePipeline(yaml, clock: VirtualClock())
        #expect(await live.advance(until: { lines(dir.read("out.log")).count == 4 }))
        _ = await live.stop()
        #expect(lines(dir.read("out.log")).last == "second run, a longer line")
    }

    @Test("checkpoint files: version 1 still loads; 10,000 positions round-trip")
    func checkpointFormat() throws {
        let dir = TemporaryDirectory()
        let v1 = dir.write("v1.json", #"[{"device":65024,"fingerprint":{"hash":18446744073709551557,"length":1024},"inode":7,"offset":24,"path":"\/var\/log\/a.log","updated":1796031591143}]"#)
        let loaded = CheckpointFile(path: v1).load()
        #expect(loaded == [FileCheckpoint(path: "/var/log/a.log", device: 65024, inode: 7, fingerprint: FileFingerprint(length: 1024, hash: 18446744073709551557),
                                          offset: 24, size: 24, tail: .empty, updated: 1796031591143)])
        let many = (0..<10_000).map {
            FileCheckpoint(path: "/var/log/app/\($0) \"quoted\".log", device: 65024, inode: UInt64($0), fingerprint: FileFingerprint(length: 1024, hash: UInt64.max - UInt64($0)),
                           offset: Int64($0) * 1000, size: Int64($0) * 1000 + 5, tail: FileFingerprint(length: 256, hash: UInt64($0) * 31), updated: 1796031591143)
        }
        let file = CheckpointFile(path: dir.file("state/checkpoints.json"))
        try file.save(many)
        #expect(file.load() == many)
        // Plain paths take the fast reader; escaped ones the general JSON parser (above).
        let plain = many.map { entry in
            var plain = entry
            plain.path = "/var/log/app/\(entry.inode).log"
            return plain
        }
        #expect(CheckpointFile.encode(plain).withUnsafeBufferPointer { CheckpointFile.loadFast($0) } == plain)
        #expect(CheckpointFile.encode(many).withUnsafeBufferPointer { CheckpointFile.loadFast($0) } == nil)
        #expect(CheckpointFile.encode([]).withUnsafeBufferPointer { CheckpointFile.loadFast($0) } == [])
    }
}
