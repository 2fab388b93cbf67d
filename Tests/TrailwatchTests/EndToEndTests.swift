import Foundation
import Testing
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStages
import TrailwatchTestSupport

/// The built `trailwatch` binary, next to the test bundle.
func trailwatchBinary() -> String {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
    // The test runner may live inside a .xctest bundle directory.
    while dir.path != "/" && !FileManager.default.fileExists(atPath: dir.appendingPathComponent("trailwatch").path) {
        dir = dir.deletingLastPathComponent()
    }
    return dir.appendingPathComponent("trailwatch").path
}

@Suite("End to end on real files")
struct EndToEndTests {
    @Test("file → filter → file over a glob of files, CRLF and a missing final newline")
    func fileFilterFile() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("logs/a.log", "INFO start\r\nERROR one\r\nINFO mid\r\n")
        _ = dir.write("logs/b.log", "ERROR two\nINFO x\nERROR three")
        _ = dir.write("logs/skip.txt", "ERROR not included\n")
        _ = dir.write("logs/c.log", "")
        let summary = try await runOnce("""
            sources:
              app: { type: file, include: ["\(dir.path)/logs/*.log"] }
            transforms:
              errors: { type: filter, inputs: [app], contains: ERROR }
            sinks:
              out: { type: file, inputs: [errors], path: "\(dir.path)/out/errors.log", format: raw }
            """)
        #expect(dir.read("out/errors.log") == "ERROR one\nERROR two\nERROR three\n")
        #expect(summary.components.first { $0.id == "app" }?.eventsOut == 6)
        #expect(summary.components.first { $0.id == "out" }?.eventsIn == 3)
        var st = stat()
        stat(dir.file("out/errors.log"), &st)
        #expect(st.st_mode & 0o777 == 0o640)
    }

    @Test("drop action and regex conditions")
    func dropAndRegex() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("in.log", "GET /health 200\nGET /api 500\nPOST /api 201\nGET /health 503\n")
        _ = try await runOnce("""
            sources:
              app: { type: file, include: ["\(dir.path)/in.log"] }
            transforms:
              nohealth: { type: filter, inputs: [app], contains: /health, action: drop }
              failures: { type: filter, inputs: [app], regex: " 5[0-9]{2}$" }
            sinks:
              a: { type: file, inputs: [nohealth], path: "\(dir.path)/a.log", format: raw }
              b: { type: file, inputs: [failures], path: "\(dir.path)/b.log", format: raw }
            """)
        #expect(dir.read("a.log") == "GET /api 500\nPOST /api 201\n")
        #expect(dir.read("b.log") == "GET /api 500\nGET /health 503\n")
    }

    @Test("invalid UTF-8 passes through raw and becomes valid JSON; huge lines are split and flagged")
    func hostileInput() async throws {
        let dir = TemporaryDirectory()
        var bytes: [UInt8] = Array("ok line\n".utf8)
        bytes += [0x62, 0x61, 0x64, 0xFF, 0xFE, 0xC3, 0x28, 0x0A]               // "bad" + invalid sequences
        bytes += Array(repeating: UInt8(ascii: "x"), count: 1000) + [0x0A]       // longer than the cap
        bytes += Array("\u{1F600} emoji\n".utf8)
        _ = dir.write("in.log", bytes: bytes)
        _ = try await runOnce("""
            sources:
              app: { type: file, include: ["\(dir.path)/in.log"], max_line_bytes: 300B, log_group: /test }
            sinks:
              raw: { type: file, inputs: [app], path: "\(dir.path)/raw.log", format: raw }
              json: { type: file, inputs: [app], path: "\(dir.path)/json.log", format: json }
            """)
        let raw = try Data(contentsOf: dir.url.appendingPathComponent("raw.log"))
        // Raw output keeps the bytes; the long line becomes 300+300+300+100 bytes on four lines.
        var expected: [UInt8] = Array("ok line\n".utf8) + [0x62, 0x61, 0x64, 0xFF, 0xFE, 0xC3, 0x28, 0x0A]
        for piece in [300, 300, 300, 100] { expected += Array(repeating: UInt8(ascii: "x"), count: piece) + [0x0A] }
        expected += Array("\u{1F600} emoji\n".utf8)
        #expect(Array(raw) == expected)

        let jsonLines = dir.read("json.log").split(separator: "\n")
        #expect(jsonLines.count == 7)
        for line in jsonLines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["group"] as? String == "/test")
        }
        let bad = try JSONSerialization.jsonObject(with: Data(jsonLines[1].utf8)) as! [String: Any]
        #expect(bad["message"] as? String == "bad\u{FFFD}\u{FFFD}\u{FFFD}(")
        let firstPiece = try JSONSerialization.jsonObject(with: Data(jsonLines[2].utf8)) as! [String: Any]
        #expect(firstPiece["flags"] as? [String] == ["split"])
        let lastPiece = try JSONSerialization.jsonObject(with: Data(jsonLines[5].utf8)) as! [String: Any]
        #expect(lastPiece["flags"] as? [String] == ["split", "continuation"])
        let emoji = try JSONSerialization.jsonObject(with: Data(jsonLines[6].utf8)) as! [String: Any]
        #expect(emoji["message"] as? String == "\u{1F600} emoji")
    }

    @Test("lines spanning read chunks are reassembled")
    func chunkBoundaries() async throws {
        let dir = TemporaryDirectory()
        // ~3 MiB of lines of varying length so chunk edges fall mid-line.
        var text = ""
        var expectedCount = 0
        for i in 0..<40_000 {
            text += "line \(i) " + String(repeating: "y", count: i % 157) + "\n"
            expectedCount += 1
        }
        _ = dir.write("big.log", text)
        let summary = try await runOnce("""
            sources:
              app: { type: file, include: ["\(dir.path)/big.log"] }
            sinks:
              out: { type: file, inputs: [app], path: "\(dir.path)/copy.log", format: raw }
            """)
        #expect(summary.components.first { $0.id == "app" }?.eventsOut == expectedCount)
        #expect(dir.read("copy.log") == text)
    }

    @Test("SIGTERM stops a live pipeline, flushes everything and exits 0")
    func sigtermFlushes() async throws {
        let dir = TemporaryDirectory()
        let pipeline = dir.write("p.yaml", """
            sources:
              in: { type: stdin }
            sinks:
              out: { type: file, inputs: [in], path: "\(dir.path)/out.log", format: raw, sync_interval: 1h }
            """)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: trailwatchBinary())
        process.arguments = ["run", pipeline, "--quiet"]
        let input = Pipe()
        process.standardInput = input
        process.standardError = FileHandle.nullDevice
        try launchProcess(process)
        var expected = ""
        for i in 0..<5000 { expected += "event \(i)\n" }
        expected += "unterminated tail"
        input.fileHandleForWriting.write(Data(expected.utf8))
        // Every whole line is through; the unterminated tail goes out only at the stop.
        #expect(await eventually { dir.read("out.log").hasSuffix("event 4999\n") })
        process.terminate()   // SIGTERM; stdin stays open
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(dir.read("out.log") == expected + "\n")
    }

    @Test("validate exits 1 with located errors, 0 on a good file")
    func validateCommand() async throws {
        let dir = TemporaryDirectory()
        let bad = dir.write("bad.yaml", "sources:\n  app: { type: stdn }\nsinks:\n  out: { type: console, inputs: [app] }\n")
        let good = dir.write("good.yaml", "sources:\n  app: { type: stdin }\nsinks:\n  out: { type: console, inputs: [app] }\n")
        func run(_ args: [String]) async throws -> (Int32, String) {
            let result = try await Child.trailwatch(args)
            return (result.status, result.output)
        }
        let (badStatus, badOut) = try await run(["validate", bad])
        #expect(badStatus == 1)
        #expect(badOut.contains("bad.yaml:2:16: component 'app': setting 'type': unknown source type 'stdn'"))
        let (goodStatus, _) = try await run(["validate", good])
        #expect(goodStatus == 0)
        let (_, json) = try await run(["validate", "--format", "json", bad])
        let object = try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any]
        #expect(object?["ok"] as? Bool == false)
    }
}
