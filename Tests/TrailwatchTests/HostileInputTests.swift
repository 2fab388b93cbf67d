import Foundation
import Glibc
import Testing
import TrailwatchArchive
import TrailwatchConfig
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStages
import TrailwatchStore
import TrailwatchTestSupport

/// Runs `yaml` in-process with `--once` and returns the summary and each component's metrics.
private func runWithMetrics(_ yaml: String) async throws -> (RunSummary, [String: ComponentMetrics]) {
    let runner = PipelineRunner(plan: try plan(yaml, registry: BuiltinStages.registry), once: true, log: .silent)
    let summary = await runner.run()
    return (summary, Dictionary(uniqueKeysWithValues: runner.metrics.map { ($0.id, $0) }))
}

/// The `message` of every JSON line in `text`.
private func messages(_ text: String) throws -> [String] {
    try lines(text).map { line in
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        return try #require(object["message"] as? String)
    }
}

private func zstd(_ bytes: [UInt8], level: Int32 = 3) throws -> [UInt8] {
    var out: [UInt8] = []
    let compressor = ZstdCompressor(level: level)
    try bytes.withUnsafeBytes { raw in try compressor.compress(raw, mode: .end) { out.append(contentsOf: $0) } }
    return out
}

/// Runs the trailwatch binary and reports its exit status, output and peak resident memory (MiB).
private func runMeasured(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String, peakMiB: Double) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: trailwatchBinary())
    process.arguments = arguments
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try launchProcess(process)
    let pid = process.processIdentifier
    let peak = PeakMemory()
    let sampler = Thread {
        while process.isRunning {
            if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
               let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
               let kb = Double(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") {
                peak.update(kb / 1024)
            }
            usleep(20_000)
        }
    }
    sampler.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self), peak.value)
}

private final class PeakMemory: @unchecked Sendable {
    private let lock = NSLock()
    private var peak = 0.0
    func update(_ v: Double) { lock.lock(); peak = max(peak, v); lock.unlock() }
    var value: Double { lock.lock(); defer { lock.unlock() }; return peak }
}

@Suite("Hostile input: nothing crashes, hangs or silently cuts data", .serialized)
struct HostileInputTests {
    // MARK: numbers

    @Test("non-finite metric values are unextractable, never published")
    func nonFiniteValues() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("in.log", """
            {"t":"2026-11-24T10:00:01Z","v":1e400}
            {"t":"2026-11-24T10:00:02Z","v":"-1e999"}
            {"t":"2026-11-24T10:00:03Z","v":5}
            {"t":"2026-11-24T10:00:04Z","v":1.7e308}
            {"t":"2026-11-24T10:00:05Z","v":1.7e308}

            """)
        let (summary, metrics) = try await runWithMetrics("""
            sources:
              app: { type: file, include: \(dir.file("in.log")), timestamp: { field: $.t } }
            transforms:
              m: { type: metric_filter, inputs: [app], pattern: '{ $.v = * }', metric_namespace: N, metric_name: V, metric_value: $.v }
            sinks:
              out: { type: file, inputs: [m], path: \(dir.file("out.json")) }
            """)
        #expect(summary.failures.isEmpty)
        let out = dir.read("out.json")
        #expect(!out.contains("null") && !out.lowercased().contains("inf"), "\(out)")
        #expect(out.contains(#""sample_count":2"#), "\(out)")
        // 1e400 and -1e999 read as infinities; the second 1.7e308 would carry the sum past Double.
        #expect(metrics["m"]?.gaugeValues["unextractable_values"] == 3)
    }

    // MARK: UTF-8

    @Test("a long line is cut on character boundaries; pieces put back together give the line")
    func utf8SafeSplit() async throws {
        let dir = TemporaryDirectory()
        let line = "x" + String(repeating: "é€😀", count: 40) + " end"
        _ = dir.write("in.log", line + "\n")
        _ = try await runOnce("""
            sources:
              app: { type: file, include: \(dir.file("in.log")), max_line_bytes: 64B }
            sinks:
              out: { type: file, inputs: [app], path: \(dir.file("out.json")) }
            """)
        let out = dir.read("out.json")
        #expect(!out.contains("\u{FFFD}"), "a piece held half a character")
        let pieces = try messages(out)
        #expect(pieces.count > 5)
        #expect(pieces.allSatisfy { $0.utf8.count <= 64 })
        #expect(pieces.joined() == line)
        #expect(lines(out).dropFirst().allSatisfy { $0.contains(#""flags":["split","continuation"]"#) })
    }

    @Test("invalid UTF-8 in JSON output carries the invalid_utf8 flag")
    func invalidUTF8Flag() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("in.log", bytes: Array("plain ok\n".utf8) + [0x62, 0x61, 0x64, 0x20, 0xFF, 0xFE, 0x0A] + Array("n=7 ".utf8) + [0xC3, 0x0A])
        _ = try await runOnce("""
            sources:
              app: { type: file, include: \(dir.file("in.log")) }
            transforms:
              p: { type: parse, inputs: [app], format: regex, pattern: 'n=(?<n>\\d+)' }
            sinks:
              raw: { type: file, inputs: [app], path: \(dir.file("plain.json")) }
              parsed: { type: file, inputs: [p], path: \(dir.file("parsed.json")) }
            """)
        for name in ["plain.json", "parsed.json"] {
            let out = lines(dir.read(name))
            #expect(out.count == 3)
            #expect(!out[0].contains("flags"), "\(out[0])")
            #expect(out[1].contains(#""flags":["invalid_utf8"]"#), "\(name): \(out[1])")
            #expect(out[2].contains(#""invalid_utf8""#), "\(name): \(out[2])")
        }
        #expect(lines(dir.read("parsed.json"))[2].contains(#""fields":{"n":7}"#))
    }

    // MARK: archives

    @Test("the archive source splits a 1 MB line like the file source, plain or compressed, never truncating it")
    func archiveLongLine() async throws {
        let dir = TemporaryDirectory()
        let long = String(repeating: "abcdefghé", count: 100_000)   // 1 MB, multi-byte characters included
        let text = "first\n" + long + "\nlast\n"
        _ = dir.write("plain/app.log", text)
        try FileManager.default.createDirectory(atPath: dir.file("zst"), withIntermediateDirectories: true)
        _ = dir.write("zst/app.log.zst", bytes: try zstd(Array(text.utf8)))
        for kind in ["plain", "zst"] {
            _ = try await runOnce("""
                sources:
                  old: { type: archive, include: "\(dir.file(kind))/*" }
                sinks:
                  out: { type: file, inputs: [old], path: \(dir.file("\(kind).json")) }
                """)
            let got = try messages(dir.read("\(kind).json"))
            #expect(got.first == "first" && got.last == "last")
            let pieces = got.dropFirst().dropLast()
            #expect(pieces.count == 4, "\(kind): \(pieces.map(\.utf8.count))")
            #expect(pieces.joined() == long, "\(kind): the pieces do not give the line back")
            let flags = lines(dir.read("\(kind).json")).dropFirst().dropLast()
            #expect(flags.first?.contains(#""flags":["split"]"#) == true)
            #expect(flags.dropFirst().allSatisfy { $0.contains(#""flags":["split","continuation"]"#) })
        }
    }

    @Test("a truncated .jsonl.zst yields its complete records and run --once exits 1")
    func truncatedArchive() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("logs/app.log", (0..<3000).map { "line \($0) " + String(repeating: "x", count: $0 % 50) }.joined(separator: "\n") + "\n")
        _ = try await runOnce("""
            data_dir: \(dir.file("state"))
            sources:
              app: { type: file, include: \(dir.file("logs"))/app.log }
            sinks:
              arch: { type: archive, inputs: [app], directory: \(dir.file("archive")), host: h }
            """)
        let file = try #require(archiveFiles(dir.file("archive")).first)
        let path = dir.file("archive") + "/" + file
        let bytes = try Array(Data(contentsOf: URL(fileURLWithPath: path)))
        try FileManager.default.createDirectory(atPath: dir.file("cut"), withIntermediateDirectories: true)
        _ = dir.write("cut/app.jsonl.zst", bytes: Array(bytes.prefix(bytes.count * 2 / 3)))
        let pipeline = dir.write("replay.yaml", """
            sources:
              old: { type: archive, include: "\(dir.file("cut"))/*.zst" }
            sinks:
              out: { type: file, inputs: [old], path: \(dir.file("out.json")) }
            """)
        let (status, table, err) = try await runTool(trailwatchBinary(), ["run", pipeline, "--once"])
        #expect(status == 3, "\(table)\n\(err)")
        #expect(err.contains("truncated zstd frame"), "\(err)")
        #expect(table.contains("damaged input or failed writes: old (1)"), "\(table)")
        let replayed = try messages(dir.read("out.json"))
        #expect(!replayed.isEmpty && replayed.count < 3000)
        #expect(replayed.enumerated().allSatisfy { k, message in message.hasPrefix("line \(k) ") })

        // `archive cat`: whole records, then the error.
        let (catStatus, out, catErr) = try await runTool(trailwatchBinary(), ["archive", "cat", dir.file("cut/app.jsonl.zst")])
        #expect(catStatus == 3)
        #expect(out.hasSuffix("\n"))
        #expect(lines(out).allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil }, "a half record was printed")
        #expect(lines(out).count == replayed.count)
        #expect(catErr.contains("truncated zstd frame"), "\(catErr)")
    }

    @Test("a 200 MB zstd or gzip bomb of zeros streams through in bounded memory", arguments: ["zst", "gz"])
    func decompressionBomb(_ suffix: String) throws {
        let dir = TemporaryDirectory()
        let zeros = [UInt8](repeating: 0, count: 200 << 20)
        if suffix == "zst" {
            _ = dir.write("bomb.zst", bytes: try zstd(zeros, level: 1))
        } else {
            // gzip(1) makes the bomb: about 200 KB that inflate to 200 MiB.
            let zeroFile = dir.write("zeros", bytes: zeros)
            let gzip = Process()
            gzip.executableURL = URL(fileURLWithPath: "/bin/sh")
            gzip.arguments = ["-c", "gzip -1 -c '\(zeroFile)' > '\(dir.file("bomb.gz"))' && rm '\(zeroFile)'"]
            try launchProcess(gzip)
            gzip.waitUntilExit()
            try #require(gzip.terminationStatus == 0)
        }
        let pipeline = dir.write("p.yaml", """
            sources:
              old: { type: archive, include: \(dir.file("bomb.\(suffix)")) }
            transforms:
              none: { type: filter, inputs: [old], contains: x }
            sinks:
              out: { type: console, inputs: [none] }
            """)
        let started = Date()
        let (status, table, err, peak) = try runMeasured(["run", pipeline, "--once"])
        #expect(status == 0, "\(err)")
        // 200 MiB in 256 KiB pieces.
        #expect(table.contains(" 800 "), "\(table)")
        #expect(peak < 200, "peak RSS \(peak) MiB for a 200 MiB line")
        #expect(Date().timeIntervalSince(started) < 60)
    }

    @Test("CloudTrail files with records that are not objects are reported, the good ones kept")
    func malformedCloudTrail() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("trail/a.json", #"{"Records":[1,2]}"#)
        _ = dir.write("trail/b.json", #"{"Records":["x",{"eventTime":"2026-11-24T10:00:00Z","eventName":"Ok","awsRegion":"r","recipientAccountId":"1"}]}"#)
        let pipeline = dir.write("p.yaml", """
            sources:
              trail: { type: cloudtrail, include: "\(dir.file("trail"))/*.json" }
            sinks:
              out: { type: file, inputs: [trail], path: \(dir.file("out.json")) }
            """)
        let (status, _, err) = try await runTool(trailwatchBinary(), ["run", pipeline, "--once"])
        #expect(status == 3)
        #expect(err.contains("a.json: 2 of 2 entries in \"Records\" are not JSON objects"), "\(err)")
        #expect(err.contains("b.json: 1 of 2 entries"), "\(err)")
        #expect(try messages(dir.read("out.json")).count == 1)
    }

    // MARK: full disks and torn records

    @Test("a full disk fails the batch: exit 1, no torn record; a torn record is cut at the next start")
    func diskFull() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("in.log", (0..<40_000).map { "line \($0) " + String(repeating: "y", count: 40) }.joined(separator: "\n") + "\n")
        let mount = dir.file("small")
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        let (mounted, _, mountErr) = try await runTool("/bin/mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", mount])
        if mounted == 0 {
            defer { umount(mount) }   // in a defer: no await; umount(2) directly
            let pipeline = dir.write("full.yaml", """
                sources:
                  app: { type: file, include: \(dir.file("in.log")) }
                sinks:
                  out: { type: file, inputs: [app], path: \(mount)/out.json }
                """)
            let (status, table, err) = try await runTool(trailwatchBinary(), ["run", pipeline, "--once"])
            #expect(status == 3, "\(table)\n\(err)")
            #expect(err.contains("No space left on device"), "\(err)")
            #expect(table.contains("damaged input or failed writes: out"), "\(table)")
            let written = dir.read("small/out.json")
            #expect(written.isEmpty || written.hasSuffix("\n"), "a torn record was left behind")
            #expect(lines(written).allSatisfy { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) != nil })
        } else {
            print("skipping the real ENOSPC half: cannot mount a small tmpfs here (\(mountErr.trimmingCharacters(in: .whitespacesAndNewlines)))")
            // /dev/full refuses every write with ENOSPC, which still shows the batch failing.
            let pipeline = dir.write("full.yaml", """
                sources:
                  app: { type: file, include: \(dir.file("in.log")) }
                sinks:
                  out: { type: file, inputs: [app], path: /dev/full, format: raw }
                """)
            let (status, _, err) = try await runTool(trailwatchBinary(), ["run", pipeline, "--once"])
            #expect(status == 3)
            #expect(err.contains("No space left on device"), "\(err)")
        }
        // After a crash mid-write the file ends inside a record: the next start cuts it away.
        _ = dir.write("torn.json", #"{"message":"whole"}"# + "\n" + #"{"message":"half"#)
        _ = dir.write("two.log", "a\nb\n")
        _ = try await runOnce("""
            sources:
              app: { type: file, include: \(dir.file("two.log")) }
            sinks:
              out: { type: file, inputs: [app], path: \(dir.file("torn.json")) }
            """)
        #expect(try messages(dir.read("torn.json")) == ["whole", "a", "b"])
    }

    // MARK: stores

    @Test("query, events and dashboard refuse a file that is not a store, and never create one")
    func readOnlyStores() async throws {
        let dir = TemporaryDirectory()
        let empty = dir.write("empty.db", "")
        let text = dir.write("notes.txt", "just some text that is long enough\n")
        for (path, reason) in [(empty, "the file is empty"), (text, "not an SQLite database")] {
            let (status, _, err) = try await runTool(trailwatchBinary(), ["query", path, "fields @message"])
            #expect(status != 0)
            #expect(err.contains("is not a trailwatch store (\(reason))"), "\(err)")
            let (eventsStatus, _, eventsErr) = try await runTool(trailwatchBinary(), ["events", path, "--lookup", "EventName=x"])
            #expect(eventsStatus != 0)
            #expect(eventsErr.contains("is not a trailwatch store"), "\(eventsErr)")
            let (dashboardStatus, _, dashboardErr) = try await runTool(trailwatchBinary(), ["dashboard", path, "--listen", "127.0.0.1:0"])
            #expect(dashboardStatus == 3)
            #expect(dashboardErr.contains("is not a trailwatch store"), "\(dashboardErr)")
        }
        #expect((try? FileManager.default.attributesOfItem(atPath: empty)[.size] as? Int) == 0, "the empty file was turned into a database")
        #expect(!FileManager.default.fileExists(atPath: empty + "-wal"))
        // A real store opens read-only and answers.
        let store = dir.file("real.db")
        _ = try SQLiteStore(path: store)
        let (status, _, err) = try await runTool(trailwatchBinary(), ["query", store, "stats count(*)"])
        #expect(status == 0, "\(err)")
    }

    @Test("a query that used to kill the dashboard (bin(0s)) is answered with an error, and the server goes on")
    func dashboardSurvivesHostileQuery() async throws {
        let dir = TemporaryDirectory()
        let store = dir.file("store.db")
        _ = try SQLiteStore(path: store)
        let (process, port) = try await startServing(["dashboard", store, "--listen", "127.0.0.1:0"])
        defer { process.terminate(); process.waitUntilExit() }
        #expect(port > 0)
        let query = "stats%20count(*)%20by%20bin(0s)"
        let (status, body) = try #require(httpGet(port: port, path: "/query?q=" + query))
        #expect(status == 200 || status == 400, "\(status)")
        #expect(body.contains("0s"), "the page should say what is wrong with the query")
        let (apiStatus, _) = try #require(httpGet(port: port, path: "/api/query?q=" + query))
        #expect(apiStatus == 400, "\(apiStatus)")
        #expect(process.isRunning)
        #expect(httpGet(port: port, path: "/")?.0 == 200)
    }

    // MARK: JSON nesting

    @Test("JSON nested deeper than the limit never matches, and is counted in json_too_deep")
    func nestingGauge() async throws {
        let dir = TemporaryDirectory()
        let deep = "{\"a\":1,\"b\":" + String(repeating: "[", count: 600) + String(repeating: "]", count: 600) + "}"
        _ = dir.write("in.log", "{\"a\":1}\n" + deep + "\n")
        let (_, metrics) = try await runWithMetrics("""
            sources:
              app: { type: file, include: \(dir.file("in.log")) }
            transforms:
              f: { type: filter, inputs: [app], pattern: '{ $.a = 1 }' }
              m: { type: metric_filter, inputs: [app], pattern: '{ $.a = 1 }', metric_namespace: N, metric_name: A, metric_value: 1 }
            sinks:
              out: { type: file, inputs: [f], path: \(dir.file("out.json")) }
              metrics: { type: file, inputs: [m], path: \(dir.file("m.json")) }
            """)
        #expect(try messages(dir.read("out.json")) == ["{\"a\":1}"])
        #expect(metrics["f"]?.gaugeValues["json_too_deep"] == 1)
        #expect(metrics["m"]?.gaugeValues["json_too_deep"] == 1)
    }

    // MARK: regular expressions

    @Test("regexes that backtrack exponentially elsewhere run in linear time in filter and query")
    func hostileRegexes() async throws {
        let dir = TemporaryDirectory()
        let line = String(repeating: "a", count: 100_000)
        _ = dir.write("in.log", line + "\n" + line + "b\n" + "short aac\n")
        let started = Date()
        _ = try await runOnce("""
            sources:
              app: { type: file, include: \(dir.file("in.log")) }
            transforms:
              nested: { type: filter, inputs: [app], regex: '(a+)+$' }
              alternation: { type: filter, inputs: [app], regex: '(a|aa)+c' }
            sinks:
              a: { type: file, inputs: [nested], path: \(dir.file("nested.log")), format: raw }
              b: { type: file, inputs: [alternation], path: \(dir.file("alternation.log")), format: raw }
            """)
        #expect(Date().timeIntervalSince(started) < 20)
        #expect(dir.read("nested.log") == line + "\n")
        #expect(dir.read("alternation.log") == "short aac\n")
        // The query language's regexes run on the same engine: a 200 KB message among 2,000 rows.
        _ = dir.write("rows.log", (0..<2000).map { "row \($0)" }.joined(separator: "\n") + "\n" + String(repeating: "a", count: 200_000) + "\n")
        _ = try await runOnce("""
            sources:
              app: { type: file, include: \(dir.file("rows.log")), max_line_bytes: 1MiB }
            sinks:
              db: { type: sqlite, inputs: [app], path: \(dir.file("store.db")) }
            """)
        let queried = Date()
        let (status, out, err) = try await runTool(trailwatchBinary(), ["query", dir.file("store.db"), "filter @message =~ /(a|aa)+c/ | stats count(*) as n", "--format", "csv"])
        #expect(status == 0, "\(err)")
        #expect(out.contains("0"), "\(out)")
        #expect(Date().timeIntervalSince(queried) < 20)
    }
}

@Suite("Hostile configs: bounded, linear, located")
struct HostileConfigTests {
    func diagnostics(_ yaml: String) -> [String] {
        PipelinePlanner(registry: BuiltinStages.registry, environment: [:]).plan(text: yaml, file: "p.yaml", pipelineDirectory: ".").1.map(\.description)
    }

    @Test("a billion-laughs document fails fast with a clear error")
    func billionLaughs() {
        var yaml = #"a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]"# + "\n"
        for k in 1...9 { yaml += "a\(k): &a\(k) [" + Array(repeating: "*a\(k - 1)", count: 9).joined(separator: ",") + "]\n" }
        yaml += "sources: { s: { type: stdin, log_group: *a9 } }\n"
        let started = Date()
        let found = diagnostics(yaml)
        #expect(Date().timeIntervalSince(started) < 5)
        #expect(found.contains { $0.contains("expands to more than 1000000 nodes through its aliases") }, "\(found)")
    }

    @Test("aliases as keys, complex keys and oversized documents are refused")
    func refusedDocuments() {
        #expect(diagnostics("x: &x [1,2]\ny: { *x : 1 }\n") == ["p.yaml:2:6: an alias (*x) cannot be a mapping key (expected a plain key; aliases may only be values)"])
        #expect(diagnostics("? [a, b]\n: 1\n").first?.contains("complex mapping keys") == true)
        let big = "name: " + String(repeating: "x", count: 17 << 20) + "\n"
        #expect(diagnostics(big).first?.contains("larger than 16 MiB") == true)
        // Aliases as values, and '*' and '?' in quoted or block text, are fine.
        let fine = diagnostics("""
            sources:
              app: &common { type: stdin, log_group: "*?:" }
            transforms:
              f: { type: filter, inputs: [app], contains: '? *x: y' }
            sinks:
              out: { type: console, inputs: [f] }
            """)
        #expect(fine.isEmpty, "\(fine)")
    }

    @Test("loading stays linear: 30,000 components plan in seconds")
    func manyComponents() {
        var yaml = "sources:\n"
        for i in 0..<30_000 { yaml += "  s\(i): { type: stdin }\n" }
        yaml += "transforms:\n  t0: { type: filter, inputs: [s0], contains: x }\n"
        for i in 1..<2_000 { yaml += "  t\(i): { type: filter, inputs: [t\(i - 1)], contains: x }\n" }
        yaml += "sinks:\n  out: { type: console, inputs: [t1999, " + (1..<30_000).map { "s\($0)" }.joined(separator: ", ") + "] }\n"
        let started = Date()
        let found = diagnostics(yaml)
        #expect(found.isEmpty, "\(found.prefix(3))")
        #expect(Date().timeIntervalSince(started) < 60)
    }

    @Test("component ids that could escape the data directory are located errors, not crashes")
    func componentIDs() {
        let found = diagnostics("""
            sources: { "..": { type: file, include: [x] }, "a/b": { type: stdin } }
            sinks: { o: { type: console, inputs: ["..", "a/b"] } }
            """)
        #expect(found.contains("p.yaml:1:12: component '..': the id has characters ids cannot have (expected letters, digits, '_' and '-' ('.' addresses a named output))"), "\(found)")
        #expect(found.contains { $0.hasPrefix("p.yaml:2:39: component 'o': setting 'inputs': '..' is not a component id") }, "\(found)")
    }

    @Test("numbers too large for their setting are located errors, never traps")
    func hugeNumbers() {
        let found = diagnostics("""
            batch_timeout: 99999999999999999999s
            sources:
              a: { type: stdin, max_line_bytes: 1e30KiB }
            transforms:
              al:
                type: alarm
                inputs: [a]
                definition: { AlarmName: X, Namespace: N, MetricName: M, Statistic: Sum, Period: 4611686018427387904,
                              EvaluationPeriods: 4, Threshold: 1, ComparisonOperator: GreaterThanThreshold }
            sinks:
              o: { type: console, inputs: [al] }
            """)
        #expect(found.contains { $0.hasPrefix("p.yaml:1:16: setting 'batch_timeout': '99999999999999999999s' is not a duration") }, "\(found)")
        #expect(found.contains { $0.hasPrefix("p.yaml:3:37: component 'a': setting 'max_line_bytes': '1e30KiB' is not a size") }, "\(found)")
        #expect(found.contains { $0.contains("component 'al'") && $0.contains("Period") }, "\(found)")
    }

    @Test("two sinks writing one file are a located error")
    func twoSinksOneFile() {
        let found = diagnostics("""
            sources:
              app: { type: stdin }
            sinks:
              a: { type: file, inputs: [app], path: /tmp/x/out.log }
              b: { type: file, inputs: [app], path: /tmp/x/../x/out.log }
              c: { type: sqlite, inputs: [app], path: /tmp/x/out.log }
            """)
        #expect(found.contains("p.yaml:5:41: component 'b': setting 'path': '/tmp/x/../x/out.log' is already written by sink 'a' (expected a file no other sink writes)"), "\(found)")
        #expect(found.contains { $0.hasPrefix("p.yaml:6:43: component 'c': setting 'path'") }, "\(found)")
    }
}
