import Foundation
import Glibc
import Testing
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStages
import TrailwatchTestSupport

@Suite("File source: follow mode, checkpoints, multiline, timestamps", .serialized)
struct FollowModeTests {
    func pipeline(_ dir: TemporaryDirectory, source: String, format: String = "raw") -> String {
        """
        data_dir: \(dir.file("state"))
        sources:
          app:
            type: file
        \(source)
        sinks:
          out:
            type: file
            inputs: [app]
            path: \(dir.file("out.log"))
            format: \(format)
            sync_interval: 50ms
        """
    }

    @Test("a restart resumes at the checkpoint: nothing twice, nothing lost")
    func resumesAtCheckpoint() async throws {
        let dir = TemporaryDirectory()
        let log = dir.write("logs/app.log", "one\ntwo\n")
        let yaml = pipeline(dir, source: "    include: \(log)")
        var live = try LivePipeline(yaml)
        #expect(await eventually { lines(dir.read("out.log")).count == 2 })
        appendText(log, "three\n")
        #expect(await eventually { lines(dir.read("out.log")).count == 3 })
        _ = await live.stop()
        appendText(log, "four\nfive\n")
        live = try LivePipeline(yaml)
        #expect(await eventually { lines(dir.read("out.log")).count == 5 })
        _ = await live.stop()
        #expect(lines(dir.read("out.log")) == ["one", "two", "three", "four", "five"])
        let checkpoint = dir.read("state/state/app/checkpoints.json")
        #expect(checkpoint.contains("\"offset\":24"), "\(checkpoint)")
    }

    @Test("a sink's sync_interval runs on the stage clock: positions advance once the virtual clock passes it")
    func syncIntervalOnTheStageClock() async throws {
        let dir = TemporaryDirectory()
        let log = dir.write("logs/app.log", "a\nb\n")
        let yaml = """
            data_dir: \(dir.file("state"))
            sources:
              app: { type: file, include: \(log), checkpoint_interval: 100ms }
            sinks:
              out: { type: file, inputs: [app], path: \(dir.file("out.log")), format: raw, sync_interval: 5s }
            """
        let live = try LivePipeline(yaml, clock: VirtualClock())
        let checkpoint = { dir.read("state/state/app/checkpoints.json") }
        #expect(await eventually { lines(dir.read("out.log")) == ["a", "b"] })
        // Written, not yet synced: the position stays before the lines however long the test
        // machine takes, until the clock passes sync_interval (two ticks are not enough).
        await live.advance(by: .seconds(2))
        #expect(!checkpoint().contains("\"offset\":4"), "\(checkpoint())")
        #expect(await live.advance(until: { checkpoint().contains("\"offset\":4") }, limit: .seconds(10)), "\(checkpoint())")
        _ = await live.stop()
    }

    @Test("an unterminated last line waits for its newline, across a restart")
    func partialLineWaits() async throws {
        let dir = TemporaryDirectory()
        let log = dir.write("logs/app.log", "whole\nhal")
        let yaml = pipeline(dir, source: "    include: \(log)")
        var live = try LivePipeline(yaml)
        #expect(await eventually { lines(dir.read("out.log")) == ["whole"] })
        _ = await live.stop()
        appendText(log, "f done\n")
        live = try LivePipeline(yaml)
        #expect(await eventually { lines(dir.read("out.log")).count == 2 })
        _ = await live.stop()
        #expect(lines(dir.read("out.log")) == ["whole", "half done"])
    }

    @Test("watch: poll follows growth, rotation and new files without inotify")
    func polling() async throws {
        let dir = TemporaryDirectory()
        let log = dir.write("logs/app.log", "p1\n")
        // On a virtual clock: the tailer looks again only when the test moves time on.
        let live = try LivePipeline(pipeline(dir, source: "    include: \(dir.file("logs"))/*.log\n    watch: poll\n    poll_interval: 50ms\n    glob_interval: 100ms\n    rotate_wait: 100ms"),
                                    clock: VirtualClock())
        #expect(await eventually { lines(dir.read("out.log")) == ["p1"] })
        #expect(await eventually { live.clock!.sleepers >= 2 })   // the ticker, and the tailer between polls
        appendText(log, "p2\n")
        #expect(await live.advance(until: { lines(dir.read("out.log")) == ["p1", "p2"] }, step: .milliseconds(50)))
        rename(log, dir.file("rotated.old"))
        _ = dir.write("logs/app.log", "p3\n")
        _ = dir.write("logs/other.log", "p4\n")
        #expect(await live.advance(until: { Set(lines(dir.read("out.log"))) == ["p1", "p2", "p3", "p4"] }, step: .milliseconds(50)))
        _ = await live.stop()
    }

    @Test("start_at: end skips what is there at the first start, then follows")
    func startAtEnd() async throws {
        let dir = TemporaryDirectory()
        let log = dir.write("logs/app.log", "old 1\nold 2\n")
        let live = try LivePipeline(pipeline(dir, source: "    include: \(log)\n    start_at: end"))
        #expect(await live.following())
        appendText(log, "new 1\n")
        #expect(await eventually { lines(dir.read("out.log")) == ["new 1"] })
        _ = await live.stop()
    }

    @Test("new files matching the glob are discovered; ignore_older skips stale ones")
    func discoveryAndIgnoreOlder() async throws {
        let dir = TemporaryDirectory()
        let stale = dir.write("logs/stale.log", "stale\n")
        var times = [timeval(tv_sec: time(nil) - 7200, tv_usec: 0), timeval(tv_sec: time(nil) - 7200, tv_usec: 0)]
        utimes(stale, &times)
        let live = try LivePipeline(pipeline(dir, source: "    include: \(dir.file("logs"))/*.log\n    ignore_older: 1h\n    glob_interval: 100ms"),
                                    clock: VirtualClock())
        // The first scan is done once the tailer waits on the clock (beside the runner's ticker).
        #expect(await eventually { live.clock!.sleepers >= 2 })
        _ = dir.write("logs/fresh.log", "fresh\n")
        #expect(await eventually { lines(dir.read("out.log")) == ["fresh"] })
        _ = await live.stop()
        #expect(!dir.read("out.log").contains("stale"))
    }

    @Test("delete and recreate (same inode possible) and truncation of a file smaller than the fingerprint")
    func recreateAndTinyTruncation() async throws {
        let dir = TemporaryDirectory()
        let log = dir.write("logs/app.log", "a1\n")
        let live = try LivePipeline(pipeline(dir, source: "    include: \(log)\n    rotate_wait: 100ms\n    glob_interval: 100ms"))
        #expect(await eventually { lines(dir.read("out.log")) == ["a1"] })
        unlink(log)
        _ = dir.write("logs/app.log", "b1\nb2\n")
        #expect(await eventually { lines(dir.read("out.log")) == ["a1", "b1", "b2"] })
        // Same size, other bytes: only the fingerprint tells.
        let fd = open(log, O_WRONLY | O_TRUNC)
        _ = "c1\nc2\n".withCString { write(fd, $0, 6) }
        close(fd)
        #expect(await eventually { lines(dir.read("out.log")) == ["a1", "b1", "b2", "c1", "c2"] })
        _ = await live.stop()
    }

    @Test("copytruncate with rotated names inside the glob: the copy is held, then continues where the original stopped")
    func copyInsideGlob() async throws {
        let dir = TemporaryDirectory()
        let header = String(repeating: "h", count: 1100) + "\n"
        let log = dir.write("logs/app.log", header + "x1\n")
        let live = try LivePipeline(pipeline(dir, source: "    include: \(dir.file("logs"))/app.log*\n    glob_interval: 100ms\n    rotate_wait: 200ms"),
                                    clock: VirtualClock())
        #expect(await eventually { lines(dir.read("out.log")).count == 2 })
        #expect(await eventually { live.clock!.sleepers >= 2 })
        // logrotate copytruncate: lines written just before the copy, copy, truncate, new lines.
        appendText(log, "x2\nx3\n")
        _ = dir.write("logs/app.log.1", header + "x1\nx2\nx3\n")
        await live.advance(by: .milliseconds(300))   // scans see the copy while the original still has its lines
        truncate(log, 0)
        appendText(log, "y1\n")
        #expect(await eventually { lines(dir.read("out.log")).count == 5 })
        // Past every wait of the tailer (a held copy is released after a minute at the latest):
        // nothing is read twice.
        await live.advance(by: .seconds(61), step: .milliseconds(500))
        _ = await live.stop()
        #expect(lines(dir.read("out.log")).sorted() == [String(header.dropLast()), "x1", "x2", "x3", "y1"].sorted())
    }

    @Test("multiline: stack traces join their first line; the last event flushes at the end of --once input")
    func multilineOnce() async throws {
        let dir = TemporaryDirectory()
        let log = dir.write("logs/app.log", """
            2026-11-25 10:00:00 INFO started
            2026-11-25 10:00:01 ERROR boom
            java.lang.IllegalStateException: bad
                at a.b.C(C.java:10)
                at a.b.D(D.java:20)
            2026-11-25 10:00:02 INFO after
              trailing continuation
            """)
        _ = try await runOnce("""
            sources:
              app:
                type: file
                include: \(log)
                multiline:
                  start_pattern: '^[0-9]{4}-'
            sinks:
              out:
                type: file
                inputs: [app]
                path: \(dir.file("out.json"))
            """)
        let records = lines(dir.read("out.json"))
        #expect(records.count == 3)
        #expect(records[1].contains(#"boom\njava.lang.IllegalStateException: bad\n    at a.b.C(C.java:10)\n    at a.b.D(D.java:20)""#))
        #expect(records[2].contains(#"after\n  trailing continuation""#))
    }

    @Test("multiline continuation mode and max_lines")
    func multilineContinuation() async throws {
        let dir = TemporaryDirectory()
        let log = dir.write("logs/app.log", "a\n b\n c\n d\ne\n f\n")
        _ = try await runOnce("""
            sources:
              app:
                type: file
                include: \(log)
                multiline: { start_pattern: '^[[:space:]]', mode: continuation, max_lines: 3 }
            sinks:
              out: { type: file, inputs: [app], path: \(dir.file("out.json")) }
            """)
        let messages = lines(dir.read("out.json")).map { $0.components(separatedBy: "\"message\":\"")[1].components(separatedBy: "\"")[0] }
        #expect(messages == [#"a\n b\n c"#, " d", #"e\n f"#])
    }

    @Test("multiline in live mode: a held event goes out after the timeout")
    func multilineTimeout() async throws {
        let dir = TemporaryDirectory()
        let log = dir.write("logs/app.log", "START one\n  more\n")
        let live = try LivePipeline(pipeline(dir, source: "    include: \(log)\n    multiline: { start_pattern: '^START', timeout: 300ms }", format: "json"),
                                    clock: VirtualClock())
        // Read and held: the tailer waits on the clock, the event is not out before the timeout.
        #expect(await eventually { live.clock!.sleepers >= 2 })
        await live.advance(by: .milliseconds(200))
        #expect(!dir.read("out.log").contains("START"))
        await live.advance(by: .milliseconds(200))
        #expect(await eventually(120) { dir.read("out.log").contains(#"START one\n  more"#) })
        _ = await live.stop()
    }

    @Test("timestamps from a regex, from a JSON field; on_error: previous, ingest_time and reject")
    func timestamps() async throws {
        let dir = TemporaryDirectory()
        let text = dir.write("logs/text.log", "2026-11-25 10:00:00,250 INFO a\nno time here\n[25/Nov/2026:10:00:05 +0100] b\n")
        let json = dir.write("logs/json.log", #"{"t":"2026-11-25T09:00:00Z","m":1}"# + "\n" + #"{"m":2}"# + "\n" + "not json\n")
        let summary = try await runOnce("""
            sources:
              text:
                type: file
                include: \(text)
                timestamp: { regex: '^\\[?([^] ]+ [^] ]+)', on_error: previous }
              json:
                type: file
                include: \(json)
                timestamp: { field: $.t, format: rfc3339, on_error: reject }
            sinks:
              out: { type: file, inputs: [text], path: \(dir.file("text.json")) }
              jout: { type: file, inputs: [json], path: \(dir.file("json.json")) }
            """)
        let textOut = lines(dir.read("text.json"))
        #expect(textOut.count == 3)
        #expect(textOut[0].contains(#""timestamp":"2026-11-25T10:00:00.250Z""#), "\(textOut[0])")
        #expect(textOut[1].contains(#""timestamp":"2026-11-25T10:00:00.250Z""#) && textOut[1].contains("timestamp_fallback"))
        #expect(textOut[2].contains(#""timestamp":"2026-11-25T09:00:05.000Z""#), "\(textOut[2])")
        let jsonOut = lines(dir.read("json.json"))
        #expect(jsonOut.count == 1)
        #expect(jsonOut.first?.contains(#""timestamp":"2026-11-25T09:00:00.000Z""#) == true)
        #expect(summary.components.first { $0.id == "json" }?.errors == 2)
    }

    @Test("bad multiline and timestamp settings are located errors", arguments: [
        ("multiline: { start_pattern: '([' }", "p.yaml:6:35: component 'app': setting 'multiline.start_pattern': invalid regular expression at column 2: unterminated character class"),
        ("timestamp: { field: '$.t', formats: ['%Q'] }", "p.yaml:6:41: component 'app': setting 'timestamp.formats'"),
        ("timestamp: { regex: 'x', timezone: Mars }", "p.yaml:6:40: component 'app': setting 'timestamp.timezone': unknown time zone 'Mars' (expected UTC or an offset like +02:00)"),
        ("timestamp: { field: '$.t', regex: 'x' }", "p.yaml:6:39: component 'app': setting 'timestamp.regex': is given together with 'field' (expected either field or regex)"),
        ("multiline: { start_pattern: x, max_lines: 0 }", "p.yaml:6:47: component 'app': setting 'multiline.max_lines': 0 is out of range (expected a whole number from 1 to 100000)"),
        ("start_at: middle", "p.yaml:6:15: component 'app': setting 'start_at'"),
    ])
    func badSettings(setting: String, expected: String) throws {
        let found = diagnostics("""
            sources:
              app:
                type: file
                include: x.log

                \(setting)
            sinks:
              out: { type: console, inputs: [app] }
            """)
        #expect(found.contains { $0.hasPrefix(expected) }, "\(found)")
    }
}
