import Foundation
import Glibc
import Testing
import TrailwatchArchive
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStages
import TrailwatchTestSupport

/// Runs a command line tool and returns (status, stdout, stderr), without holding a cooperative
/// thread while it runs (see ``Child``).
@discardableResult
func runTool(_ executable: String, _ arguments: [String], stdin: Data? = nil, in directory: String? = nil) async throws -> (Int32, String, String) {
    let result = try await Child.run(executable, arguments, stdin: stdin, in: directory)
    return (result.status, result.output, result.errors)
}

func archiveFiles(_ root: String) -> [String] {
    (FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? [])
        .filter { $0.hasSuffix(".jsonl.zst") && !$0.contains("_digests") }.sorted()
}

@Suite("Archives: zstd files, digests, replay, CloudTrail", .serialized)
struct ArchiveTests {
    static let zstdCLI = "/usr/bin/zstd"

    func makeLogs(_ dir: TemporaryDirectory) -> String {
        var text = ""
        for i in 0..<3000 { text += "2026-11-24T10:\(String(i / 60 % 60).leftPad(2)):\(String(i % 60).leftPad(2))Z line \(i) \"quoted\" \\ é\n" }
        _ = dir.write("logs/a.log", text)
        _ = dir.write("logs/b.log", "2026-11-24T11:00:00Z single line in b\n")
        return dir.file("logs")
    }

    func archivePipeline(_ dir: TemporaryDirectory, logs: String, extra: String = "") -> String {
        """
        data_dir: \(dir.file("state"))
        sources:
          app:
            type: file
            include: \(logs)/*.log
            log_group: /app
            timestamp: { regex: '^([^ ]+)' }
        sinks:
          arch:
            type: archive
            inputs: [app]
            directory: \(dir.file("archive"))
            host: h1
            max_file_size: 64KiB
        \(extra)
          copy: { type: file, inputs: [app], path: \(dir.file("copy.json")) }
        """
    }

    @Test("records survive a round trip: the zstd CLI reads the files, the archive source replays them exactly")
    func roundTrip() async throws {
        let dir = TemporaryDirectory()
        let logs = makeLogs(dir)
        _ = try await runOnce(archivePipeline(dir, logs: logs))
        let files = archiveFiles(dir.file("archive"))
        #expect(files.count >= 2, "max_file_size rotates the big stream: \(files)")
        #expect(files.allSatisfy { $0.hasPrefix("app/2026/11/24/h1_") }, "\(files)")
        var st = stat()
        stat(dir.file("archive/" + files[0]), &st)
        #expect(st.st_mode & 0o777 == 0o640)
        // The zstd CLI decompresses every file; together they hold exactly what the file sink wrote.
        var fromCLI: [String] = []
        for file in files {
            let (status, out, _) = try await runTool(Self.zstdCLI, ["-dc", dir.file("archive/" + file)])
            #expect(status == 0)
            fromCLI += lines(out)
        }
        let original = lines(dir.read("copy.json"))
        #expect(fromCLI.sorted() == original.sorted())
        // Replay: times, ingestion times, groups and streams come back as they were.
        _ = try await runOnce("""
            sources:
              old: { type: archive, include: '\(dir.file("archive"))/**/*.jsonl.zst' }
            sinks:
              out: { type: file, inputs: [old], path: \(dir.file("replay.json")) }
            """)
        #expect(lines(dir.read("replay.json")).sorted() == original.sorted())
        let (status, out, _) = try await runTool(trailwatchBinary(), ["archive", "verify", dir.file("archive")])
        #expect(status == 0, "\(out)")
        let (catStatus, catOut, _) = try await runTool(trailwatchBinary(), ["archive", "cat"] + files.map { dir.file("archive/" + $0) })
        #expect(catStatus == 0 && lines(catOut).sorted() == original.sorted())
    }

    @Test("verify reports modified, missing, inserted and reordered files, chain breaks and bad signatures")
    func tampering() async throws {
        let dir = TemporaryDirectory()
        let logs = makeLogs(dir)
        let (_, publicKey, _) = try await runTool(trailwatchBinary(), ["archive", "keygen", "--private-key-file", dir.file("key")])
        let signed = archivePipeline(dir, logs: logs).replacingOccurrences(of: "    host: h1", with: "    host: h1\n    signing_key_file: \(dir.file("key"))")
        // Three runs: three digests in one chain.
        for run in 0..<3 {
            _ = dir.write("logs/a.log", "run \(run) line\n")
            _ = try await runOnce(signed)
        }
        let root = dir.file("archive")
        func verify(_ extra: [String] = []) async throws -> (Int32, [String: Any]) {
            let (status, out, _) = try await runTool(trailwatchBinary(), ["archive", "verify", root, "--format", "json"] + extra)
            return (status, (try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]) ?? [:])
        }
        func kinds(_ report: [String: Any]) -> [String] { (report["problems"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String }.sorted() }
        var (status, report) = try await verify(["--public-key", publicKey.trimmingCharacters(in: .whitespacesAndNewlines)])
        #expect(status == 0 && report["digests"] as? Int == 3, "\(report)")

        let files = archiveFiles(root)
        // Modified
        let victim = root + "/" + files[0]
        let saved = try Data(contentsOf: URL(fileURLWithPath: victim))
        var changed = saved
        changed[changed.count / 2] ^= 0xFF
        try changed.write(to: URL(fileURLWithPath: victim))
        (status, report) = try await verify()
        #expect(status == 1 && kinds(report) == ["modified"], "\(report)")
        try saved.write(to: URL(fileURLWithPath: victim))
        // Reordered: two files swap contents
        let other = root + "/" + files[1]
        let otherSaved = try Data(contentsOf: URL(fileURLWithPath: other))
        try otherSaved.write(to: URL(fileURLWithPath: victim))
        try saved.write(to: URL(fileURLWithPath: other))
        (status, report) = try await verify()
        #expect(kinds(report) == ["reordered", "reordered"], "\(report)")
        try saved.write(to: URL(fileURLWithPath: victim))
        try otherSaved.write(to: URL(fileURLWithPath: other))
        // Missing and inserted
        try FileManager.default.moveItem(atPath: victim, toPath: victim.replacingOccurrences(of: ".jsonl.zst", with: "-copy.jsonl.zst"))
        (status, report) = try await verify()
        #expect(kinds(report) == ["inserted", "missing"], "\(report)")
        try FileManager.default.moveItem(atPath: victim.replacingOccurrences(of: ".jsonl.zst", with: "-copy.jsonl.zst"), toPath: victim)
        (status, _) = try await verify()
        #expect(status == 0)
        // Chain break: the middle digest is altered, then deleted
        // The digests in chain order (by their end time; names carry random ids).
        let digests = (FileManager.default.enumerator(atPath: root)?.allObjects as? [String] ?? [])
            .filter { $0.contains("_digest_") && $0.hasSuffix(".json") }
            .map { path -> (String, String) in
                let body = (try? JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/" + path)))) as? [String: Any]
                return ((body?["digestEndTime"] as? String) ?? "", path)
            }
            .sorted { $0 < $1 }.map(\.1)
        #expect(digests.count == 3)
        let middle = root + "/" + digests[1]
        let middleSaved = try Data(contentsOf: URL(fileURLWithPath: middle))
        try (middleSaved + Data(" ".utf8)).write(to: URL(fileURLWithPath: middle))
        (status, report) = try await verify()
        #expect(kinds(report) == ["bad_signature", "chain_break"], "\(report)")
        (status, report) = try await verify(["--public-key", publicKey.trimmingCharacters(in: .whitespacesAndNewlines)])
        #expect(kinds(report) == ["bad_signature", "chain_break"], "\(report)")
        try FileManager.default.removeItem(atPath: middle)
        (status, report) = try await verify()
        #expect(status == 1 && kinds(report).contains("chain_break"), "\(report)")
        try middleSaved.write(to: URL(fileURLWithPath: middle))
        // Another key than the signer's
        let (_, otherKey, _) = try await runTool(trailwatchBinary(), ["archive", "keygen", "--private-key-file", dir.file("key2")])
        (status, report) = try await verify(["--public-key", otherKey.trimmingCharacters(in: .whitespacesAndNewlines)])
        #expect(kinds(report) == ["bad_signature", "bad_signature", "bad_signature"], "\(report)")
        (status, _) = try await verify()
        #expect(status == 0)
    }

    @Test("live: files close by age, acknowledged data is in complete frames while they are open")
    func ageRotation() async throws {
        let dir = TemporaryDirectory()
        let log = dir.write("logs/a.log", "first\n")
        let live = try LivePipeline("""
            data_dir: \(dir.file("state"))
            sources:
              app: { type: file, include: \(log) }
            sinks:
              arch: { type: archive, inputs: [app], directory: \(dir.file("archive")), host: h1, max_file_age: 4s, sync_interval: 100ms }
            """)
        // While open, the .partial already decodes: every synced frame is complete.
        #expect(await eventually {
            let partials = (FileManager.default.enumerator(atPath: dir.file("archive"))?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".partial") }
            guard let partial = partials.first, let out = try? await runTool(Self.zstdCLI, ["-dc", dir.file("archive/" + partial)]) else { return false }
            return out.0 == 0 && out.1.contains("first")
        })
        #expect(await eventually(120) { archiveFiles(dir.file("archive")).count == 1 })
        appendText(log, "second\n")
        #expect(await eventually(120) { archiveFiles(dir.file("archive")).count == 2 })
        _ = await live.stop()
        let (status, report, _) = try await runTool(trailwatchBinary(), ["archive", "verify", dir.file("archive")])
        #expect(status == 0, "\(report)")
    }

    @Test("a truncated .zst or .gz yields every complete record before the damage and names the file and offset")
    func truncatedInput() async throws {
        let dir = TemporaryDirectory()
        var text = ""
        for i in 0..<20_000 { text += "{\"n\":\(i),\"pad\":\"\(String(repeating: "x", count: i % 50))\"}\n" }
        let plain = dir.write("in/data.log", text)
        _ = try await runTool(Self.zstdCLI, ["-q", "-3", plain, "-o", dir.file("in/data.log.zst")])
        _ = try await runTool("/usr/bin/python3", ["-c", "import gzip,sys; open(sys.argv[2],'wb').write(gzip.compress(open(sys.argv[1],'rb').read()))",
                                            plain, dir.file("in/data.log.gz")])
        try FileManager.default.createDirectory(atPath: dir.file("cut"), withIntermediateDirectories: true)
        for name in ["data.log.zst", "data.log.gz"] {
            let path = dir.file("in/" + name)
            let full = try Data(contentsOf: URL(fileURLWithPath: path))
            try full.prefix(full.count * 2 / 3).write(to: URL(fileURLWithPath: dir.file("cut/" + name)), options: []) 
        }
        let pipeline = """
            sources:
              old: { type: archive, include: '\(dir.file("cut"))/*' }
            sinks:
              out: { type: file, inputs: [old], path: \(dir.file("out.log")), format: raw }
            """
        let runner = PipelineRunner(plan: try plan(pipeline, registry: BuiltinStages.registry), once: true, log: .silent)
        let summary = await runner.run()
        #expect(summary.components.first { $0.id == "old" }?.errors == 2)
        let got = lines(dir.read("out.log"))
        let expectedLines = lines(text)
        // Each file gave a prefix of the records, whole lines only.
        #expect(got.count > 10_000 && got.count < 2 * expectedLines.count, "\(got.count)")
        #expect(got.allSatisfy { $0.hasPrefix("{\"n\":") && $0.hasSuffix("\"}") })
        let (status, _, err) = try await runTool(trailwatchBinary(), ["archive", "cat", dir.file("cut/data.log.zst")])
        #expect(status == 3 && err.contains("data.log.zst") && err.contains("offset"), "\(err)")
    }

    @Test("CloudTrail delivery files: one event per record; a malformed file is reported and skipped")
    func cloudTrail() async throws {
        let dir = TemporaryDirectory()
        let samples = TestPaths.repositoryRoot.appendingPathComponent("samples/cloudtrail").path
        _ = dir.write("bad/broken.json", "{\"Records\": [ {\"eventTime\": ")
        _ = dir.write("bad/notrail.json", "{\"hello\": 1}")
        let summary = try await runOnce("""
            sources:
              trail: { type: cloudtrail, include: ['\(samples)/**/*.json.gz', '\(dir.file("bad"))/*.json'] }
            sinks:
              out: { type: file, inputs: [trail], path: \(dir.file("events.json")) }
            """)
        let events = lines(dir.read("events.json"))
        let truth = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: samples + "/ground_truth.json"))) as? [String: Any]
        #expect(!events.isEmpty)
        #expect(summary.components.first { $0.id == "trail" }?.errors == 2)
        let first = try #require(events.first)
        #expect(first.contains(#""group":"cloudtrail""#) && first.contains(#"\"eventName\""#))
        #expect(truth != nil)
        // Every record's time is its eventTime.
        let record = try #require(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
        let message = try #require(try JSONSerialization.jsonObject(with: Data((record["message"] as! String).utf8)) as? [String: Any])
        #expect((record["timestamp"] as? String)?.prefix(19) == (message["eventTime"] as? String)?.prefix(19))
        #expect(record["stream"] as? String == "\(message["recipientAccountId"]!)_\(message["awsRegion"]!)")
    }

    @Test("after kill -9 the .partial file keeps every synced record and joins the digest chain")
    func crashRecovery() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("logs/a.log", (0..<500).map { "line \($0)\n" }.joined())
        let pipeline = dir.write("p.yaml", """
            data_dir: \(dir.file("state"))
            sources:
              app: { type: file, include: \(dir.file("logs"))/a.log, checkpoint_interval: 50ms }
            sinks:
              arch: { type: archive, inputs: [app], directory: \(dir.file("archive")), host: h1, sync_interval: 50ms }
            """)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: trailwatchBinary())
        process.arguments = ["run", pipeline, "--quiet"]
        process.standardError = FileHandle.nullDevice
        try launchProcess(process)
        // Wait until the records are synced and checkpointed, then crash.
        #expect(await eventually { dir.read("state/state/app/checkpoints.json").contains("\"offset\":") &&
            !dir.read("state/state/app/checkpoints.json").contains("\"offset\":0") })
        await pause(0.3)
        kill(process.processIdentifier, SIGKILL)
        await Child.exit(of: process)
        let partials = (FileManager.default.enumerator(atPath: dir.file("archive"))?.allObjects as? [String] ?? []).filter { $0.hasSuffix(".partial") }
        #expect(partials.count == 1)
        // A second run (batch) recovers it and writes a digest covering it.
        _ = try await runOnce("""
            sources:
              none: { type: file, include: \(dir.file("logs"))/nothing.log }
            sinks:
              arch: { type: archive, inputs: [none], directory: \(dir.file("archive")), host: h1 }
            """)
        let files = archiveFiles(dir.file("archive"))
        #expect(files.count == 1)
        let (_, out, _) = try await runTool(Self.zstdCLI, ["-dc", dir.file("archive/" + files[0])])
        #expect(lines(out).count == 500)
        let (status, report, _) = try await runTool(trailwatchBinary(), ["archive", "verify", dir.file("archive")])
        #expect(status == 0, "\(report)")
    }

    @Test("replay equivalence: a live run over files and a --once replay of its archive give the same metrics and records")
    func replayEquivalence() async throws {
        let dir = TemporaryDirectory()
        var text = ""
        for i in 0..<600 {
            let level = i % 7 == 0 ? "ERROR" : "INFO"
            text += #"{"time":"2026-11-24T09:\#(String(i / 60).leftPad(2)):\#(String(i % 60).leftPad(2))Z","level":"\#(level)","latency_ms":\#(i % 250)}"# + "\n"
        }
        _ = dir.write("logs/app.log", text)
        func pipeline(source: String, tag: String) -> String {
            """
            data_dir: \(dir.file("state-" + tag))
            sources:
            \(source)
            transforms:
              errors:
                type: metric_filter
                inputs: [app]
                pattern: '{ $.level = "ERROR" }'
                metric_namespace: App
                metric_name: Errors
                metric_value: 1
                default_value: 0
                lateness: 1s
              latency:
                type: metric_filter
                inputs: [app]
                pattern: '{ $.latency_ms >= 0 }'
                metric_namespace: App
                metric_name: Latency
                metric_value: $.latency_ms
                lateness: 1s
            sinks:
              metrics: { type: file, inputs: [errors, latency], path: \(dir.file("metrics-" + tag + ".json")), sync_interval: 50ms }
              records: { type: file, inputs: [app], path: \(dir.file("records-" + tag + ".json")), sync_interval: 50ms }
              arch: { type: archive, inputs: [app], directory: \(dir.file("archive-" + tag)), host: h1, sync_interval: 50ms }
            """
        }
        let live = try LivePipeline(pipeline(source: """
              app:
                type: file
                include: \(dir.file("logs"))/app.log
                timestamp: { field: $.time }
            """, tag: "live"))
        #expect(await eventually { lines(dir.read("metrics-live.json")).count == 20 })
        _ = await live.stop()
        _ = try await runOnce(pipeline(source: """
              app: { type: archive, include: '\(dir.file("archive-live"))/**/*.jsonl.zst' }
            """, tag: "replay"))
        #expect(lines(dir.read("metrics-replay.json")).sorted() == lines(dir.read("metrics-live.json")).sorted())
        #expect(lines(dir.read("records-replay.json")).sorted() == lines(dir.read("records-live.json")).sorted())
        #expect(lines(dir.read("metrics-live.json")).contains { $0.contains(#""metric_name":"Errors""#) && $0.contains(#""sum":9"#) })
    }
}
