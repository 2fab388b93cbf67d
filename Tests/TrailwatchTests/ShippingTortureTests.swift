import Foundation
import Glibc
import Testing

/// Writes sequence-numbered lines at a steady rate, rotating the file by rename and by
/// copytruncate, the way logrotate would (rotation never loses a line here, so every loss the
/// test sees is the shipper's).
final class RotatingWriter: @unchecked Sendable {
    let directory: String
    let linesPerSecond: Int
    let totalLines: Int
    let rotateEvery: Int
    private(set) var rotations = 0
    private var thread: Thread?
    private let done = DispatchSemaphore(value: 0)

    init(directory: String, linesPerSecond: Int, totalLines: Int, rotateEvery: Int) {
        self.directory = directory
        self.linesPerSecond = linesPerSecond
        self.totalLines = totalLines
        self.rotateEvery = rotateEvery
    }

    var path: String { directory + "/app.log" }

    func start() {
        let thread = Thread { [self] in
            writeAll()
            done.signal()
        }
        self.thread = thread
        thread.start()
    }

    /// Waits for the writer without blocking a cooperative thread.
    func finished() async {
        while done.wait(timeout: .now()) == .timedOut { try? await Task.sleep(nanoseconds: 50_000_000) }
    }

    private func openLog() -> Int32 { open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644) }

    private func writeAll() {
        var fd = openLog()
        let burst = max(1, linesPerSecond / 200)  // one burst every 5 ms
        let started = DispatchTime.now().uptimeNanoseconds
        var written = 0
        var rotationKind = 0
        while written < totalLines {
            var text = ""
            for _ in 0..<min(burst, totalLines - written) {
                text += "seq=\(String(written).leftPad(9)) level=INFO the quick brown fox jumps over the lazy dog\n"
                written += 1
            }
            _ = text.withCString { write(fd, $0, strlen($0)) }
            if written % rotateEvery < burst && written < totalLines {
                rotations += 1
                let target = directory + "/app.log.\(rotations)"
                if rotationKind % 2 == 0 {
                    // rename + create
                    close(fd)
                    rename(path, target)
                    fd = openLog()
                } else {
                    // copytruncate: copy, then truncate in place; the writer keeps its descriptor
                    let data = FileManager.default.contents(atPath: path) ?? Data()
                    FileManager.default.createFile(atPath: target, contents: data)
                    ftruncate(fd, 0)
                }
                rotationKind += 1
            }
            let due = started + UInt64(written) * 1_000_000_000 / UInt64(linesPerSecond)
            let now = DispatchTime.now().uptimeNanoseconds
            if due > now { usleep(UInt32((due - now) / 1000)) }
        }
        close(fd)
    }
}

extension String {
    func leftPad(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

@Suite("Continuous shipping torture", .serialized)
struct ShippingTortureTests {
    /// Counts every `seq=` number in the output: how many are missing and how many came twice.
    static func audit(_ output: String, total: Int) -> (missing: [Int], duplicates: Int, broken: Int) {
        var seen = [UInt8](repeating: 0, count: total)
        var duplicates = 0
        var broken = 0
        for line in output.split(separator: "\n", omittingEmptySubsequences: true) {
            guard line.hasPrefix("seq="), let n = Int(line.dropFirst(4).prefix(9)), n < total,
                  line.hasSuffix("lazy dog") else { broken += 1; continue }
            if seen[n] > 0 { duplicates += 1 }
            seen[n] = min(seen[n] &+ 1, 200)
        }
        let missing = seen.indices.filter { seen[$0] == 0 }
        return (missing, duplicates, broken)
    }

    func startShipper(_ pipeline: String, log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: trailwatchBinary())
        process.arguments = ["run", pipeline, "--quiet"]
        FileManager.default.createFile(atPath: log, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        handle.seekToEndOfFile()
        process.standardError = handle
        process.standardOutput = handle
        try process.run()
        return process
    }

    func torture(syncSeconds: Double, bufferBatches: Int) async throws {
        let sinkSettings = "    sync_interval: \(Int(syncSeconds * 1000))ms"
        let dir = TemporaryDirectory()
        let logs = dir.file("logs")
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let pipeline = dir.write("pipeline.yaml", """
            data_dir: \(dir.file("state"))
            buffer_batches: \(bufferBatches)
            sources:
              app:
                type: file
                include: \(logs)/app.log
                rotate_wait: 1s
                checkpoint_interval: 100ms
                glob_interval: 200ms
            sinks:
              out:
                type: file
                inputs: [app]
                path: \(dir.file("out.log"))
                format: raw
            \(sinkSettings)
            """)
        let rate = 20_000
        let total = 160_000
        let writer = RotatingWriter(directory: logs, linesPerSecond: rate, totalLines: total, rotateEvery: 25_000)
        writer.start()
        var kills = 0
        var generator = SystemRandomNumberGenerator()
        var shipper = try startShipper(pipeline, log: dir.file("shipper.log"))
        // kill -9 at random moments while the writer writes and rotates.
        while kills < 6 {
            await pause(Double.random(in: 0.4...1.1, using: &generator))
            kill(shipper.processIdentifier, SIGKILL)
            shipper.waitUntilExit()
            kills += 1
            shipper = try startShipper(pipeline, log: dir.file("shipper.log"))
        }
        await writer.finished()
        // Let it catch up, then stop it properly.
        let expectedBytes = total * ("seq=000000000 level=INFO the quick brown fox jumps over the lazy dog\n".utf8.count)
        for _ in 0..<200 {
            let size = (try? FileManager.default.attributesOfItem(atPath: dir.file("out.log"))[.size] as? Int) ?? 0
            if size >= expectedBytes { break }
            await pause(0.1)
        }
        await pause(1.5)
        kill(shipper.processIdentifier, SIGTERM)
        shipper.waitUntilExit()
        #expect(shipper.terminationStatus == 0)

        let audit = Self.audit(dir.read("out.log"), total: total)
        let shipperLog = dir.read("shipper.log")
        #expect(writer.rotations >= 5)
        #expect(audit.missing.isEmpty, "lost \(audit.missing.count) lines, first \(audit.missing.prefix(10)); shipper said:\n\(shipperLog.suffix(3000))")
        #expect(audit.broken == 0, "\(audit.broken) broken lines")
        // A restart re-sends at most what was in flight: what was read after the last checkpoint
        // covering acknowledged data, i.e. the sink's sync interval plus the checkpoint interval
        // (0.1 s) plus the pipeline's latency (allowed 1 s on a loaded machine) of input per kill.
        // After a restart the shipper catches up much faster than the writer writes, so the buffers
        // (buffer_batches chunks of 1 MiB, ~14k lines each, plus one in the source and one in the sink)
        // can also be in flight at the kill.
        let linesPerChunk = (1 << 20) / 73
        let bound = kills * (Int(Double(rate) * (syncSeconds + 0.1 + 1.0)) + linesPerChunk * (bufferBatches + 2))
        #expect(audit.duplicates <= bound, "\(audit.duplicates) duplicates after \(kills) kills (bound \(bound))")
        print("torture: \(total) lines, \(writer.rotations) rotations, \(kills) kills, \(audit.duplicates) duplicates")
    }

    @Test("kill -9 during rename and copytruncate rotation loses nothing")
    func killDuringRotation() async throws {
        try await torture(syncSeconds: 0.1, bufferBatches: 8)
    }

    @Test("the same with a slow sink: acknowledgements arrive late, checkpoints lag, nothing is lost")
    func killWithSlowSink() async throws {
        try await torture(syncSeconds: 0.7, bufferBatches: 2)
    }
}
