import Foundation
import Glibc
import Testing
import TrailwatchTestSupport

/// The conventions every command follows, checked on the built binary: exit statuses, logs on
/// stderr through swift-log, the JSON shapes, `--version`, completions.
@Suite("Command-line conventions (built binary)")
struct CommandLineConventionTests {
    func trailwatch(_ arguments: [String], in dir: TemporaryDirectory? = nil) async throws -> (status: Int32, out: String, err: String) {
        try await runTool(trailwatchBinary(), arguments, in: dir?.path)
    }

    @Test("one exit-status table: 0 yes, 1 no, 2 invalid input, 3 could not do the work, 64 usage")
    func exitStatuses() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("good.yaml", "sources: { app: { type: stdin } }\nsinks: { out: { type: console, inputs: [app] } }\n")
        _ = dir.write("bad.yaml", "sources: { app: { type: stdn } }\nsinks: { out: { type: console, inputs: [app] } }\n")

        #expect(try await trailwatch(["validate", "good.yaml"], in: dir).status == 0)
        #expect(try await trailwatch(["validate", "bad.yaml"], in: dir).status == 1)
        #expect(try await trailwatch(["test-pattern", "ERROR", "ERROR one", "INFO two"]).status == 0)
        #expect(try await trailwatch(["test-pattern", "ERROR", "INFO two"]).status == 1)
        #expect(try await trailwatch(["test-pattern", "{ $.x = ", "x"]).status == 2)
        #expect(try await trailwatch(["run", "bad.yaml", "--once"], in: dir).status == 2)
        // The same missing store, the same status in every command that opens one.
        for command in [["query", "missing.db", "fields @message"], ["dashboard", "missing.db", "--listen", "127.0.0.1:0"],
                        ["events", "missing.db", "--lookup", "EventName=x"]] {
            let (status, _, err) = try await trailwatch(command, in: dir)
            #expect(status == 3 && err.contains("missing.db"), "\(command): \(status) \(err)")
        }
        let (usage, _, usageErr) = try await trailwatch(["validate", "--no-such-option", "good.yaml"], in: dir)
        #expect(usage == 64 && usageErr.contains("--no-such-option"))
        // A query with a syntax error is invalid input, located.
        _ = try await trailwatch(["run", dir.write("store.yaml", """
            data_dir: \(dir.file("state"))
            sources: { app: { type: file, include: \(dir.write("in.log", "ERROR one\nINFO two\nERROR three\n")) } }
            sinks: { store: { type: sqlite, inputs: [app], path: \(dir.file("store.db")) } }
            """), "--once"], in: dir)
        let (badQuery, _, badQueryErr) = try await trailwatch(["query", "store.db", "stats count(* by"], in: dir)
        #expect(badQuery == 2 && badQueryErr.contains("^"), "\(badQueryErr)")
    }

    @Test("logs go to stderr through swift-log: --log-format json gives one object per line, --log-level filters")
    func logging() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("bad.yaml", "sources: { app: { type: stdn } }\nsinks: { out: { type: console, inputs: [app] } }\n")
        let (status, out, err) = try await trailwatch(["run", "bad.yaml", "--once", "--log-format", "json"], in: dir)
        #expect(status == 2 && out.isEmpty)
        let lines = err.split(separator: "\n")
        #expect(!lines.isEmpty)
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
            #expect(object["level"] as? String == "error" && object["label"] as? String == "trailwatch")
            #expect((object["timestamp"] as? String)?.hasSuffix("Z") == true)
            #expect((object["message"] as? String)?.contains("bad.yaml:1:25: component 'app': setting 'type': unknown source type 'stdn'") == true, "\(object)")
        }
        // Text: the time, the level, the message (stderr is not a terminal here).
        let (_, _, text) = try await trailwatch(["run", "bad.yaml", "--once"], in: dir)
        let first = text.split(separator: "\n").first ?? ""
        #expect(first.prefix(24).wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/) != nil && first.dropFirst(24).hasPrefix(" error: bad.yaml:1:25: "), "\(text)")
        let (quietStatus, _, quiet) = try await trailwatch(["run", "bad.yaml", "--once", "--log-level", "critical"], in: dir)
        #expect(quietStatus == 2 && quiet.isEmpty, "\(quiet)")

        // A pipeline component's messages carry it; a failed sink is exit 3.
        _ = dir.write("in.log", "one\n")
        _ = dir.write("afile", "not a directory\n")
        let (failed, _, runLog) = try await trailwatch(["run", dir.write("p.yaml", """
            data_dir: \(dir.file("state"))
            sources: { app: { type: file, include: \(dir.file("in.log")) } }
            sinks: { out: { type: file, inputs: [app], path: \(dir.file("afile/out.log")), format: raw } }
            """), "--once", "--log-format", "json"], in: dir)
        #expect(failed == 3)
        let objects = runLog.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
        #expect(objects.contains { $0["component"] == "out" && $0["level"] == "error" && $0["message"]?.contains("Not a directory") == true }, "\(runLog)")
    }

    @Test("JSON output: camelCase keys, numbers as numbers, `query` prints what /api/query serves")
    func jsonShapes() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("bad.yaml", "sources: { app: { type: stdn } }\nsinks: { out: { type: console, inputs: [app] } }\n")
        let (_, validated, _) = try await trailwatch(["validate", "bad.yaml", "--format", "json"], in: dir)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(validated.utf8)) as? [String: Any])
        let diagnostic = try #require((report["diagnostics"] as? [[String: Any]])?.first)
        #expect(diagnostic["line"] as? Int == 1 && diagnostic["column"] as? Int == 25 && report["ok"] as? Bool == false, "\(diagnostic)")

        _ = dir.write("in.log", "ERROR one\nINFO two\nERROR three\n")
        let (status, summary, _) = try await trailwatch(["run", dir.write("store.yaml", """
            data_dir: \(dir.file("state"))
            sources: { app: { type: file, include: \(dir.file("in.log")) } }
            sinks: { store: { type: sqlite, inputs: [app], path: \(dir.file("store.db")) } }
            """), "--once", "--output", "json"], in: dir)
        #expect(status == 0)
        let run = try #require(try JSONSerialization.jsonObject(with: Data(summary.utf8)) as? [String: Any])
        let app = try #require((run["components"] as? [[String: Any]])?.first { $0["id"] as? String == "app" })
        #expect(app["eventsOut"] as? Int == 3 && app["bytesOut"] is Int && app["events_out"] == nil, "\(app)")

        let query = "filter @message like /ERROR/ | stats count(*) as n, max(@timestamp) as newest"
        let (queryStatus, printed, queryErr) = try await trailwatch(["query", "store.db", query, "--format", "json"], in: dir)
        #expect(queryStatus == 0, "\(queryErr)")
        let cli = try #require(try JSONSerialization.jsonObject(with: Data(printed.utf8)) as? [String: Any])
        #expect(cli["columns"] as? [String] == ["n", "newest"])
        #expect((cli["rows"] as? [[String: Any]])?.first?["n"] as? Int == 2, "\(cli)")

        let (server, port) = try await startServing(["dashboard", dir.file("store.db"), "--listen", "127.0.0.1:0"])
        defer { kill(server.processIdentifier, SIGTERM); server.waitUntilExit() }
        let encoded = query.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        let (apiStatus, api) = try #require(httpGet(port: port, path: "/api/query?q=\(encoded)&range=1d"))
        #expect(apiStatus == 200)
        #expect(api.trimmingCharacters(in: .whitespacesAndNewlines) == printed.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test("--version names the commit; shell completion scripts cover every command")
    func versionAndCompletions() async throws {
        let (status, version, _) = try await trailwatch(["--version"])
        #expect(status == 0)
        #expect(version.contains(/^\d+\.\d+\.\d+ \(commit ([0-9a-f]{7,40}(-dirty)?|unknown)\)\n$/), "\(version)")
        for shell in ["bash", "zsh", "fish"] {
            let (status, script, _) = try await trailwatch(["--generate-completion-script", shell])
            #expect(status == 0 && script.contains("tap") && script.contains("test-event-pattern") && script.contains("log-level"), "\(shell)")
        }
    }

    @Test("help works for the root and every command: --help, -h, `help COMMAND` and no arguments")
    func help() async throws {
        let commands = ["run", "validate", "test", "test-pattern", "test-event-pattern", "patterns", "archive", "events",
                        "query", "backtest", "dashboard", "tap", "stages"]
        for arguments in [["--help"], ["-h"], []] + commands.map({ [$0, "--help"] }) + commands.map({ ["help", $0] }) {
            let (status, out, err) = try await trailwatch(arguments)
            #expect(status == 0, "\(arguments): \(err)")
            #expect(out.hasPrefix("OVERVIEW: "), "\(arguments): \(out)")
            #expect(!err.contains("Can't read a value"), "\(arguments): \(err)")
        }
    }
}
