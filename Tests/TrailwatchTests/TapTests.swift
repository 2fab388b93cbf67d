import Foundation
import Glibc
import Testing
import TrailwatchCore
@testable import TrailwatchRuntime
import TrailwatchStages
import TrailwatchTestSupport

/// A log batch of `lines`.
private func logBatch(_ lines: [String]) -> Payload {
    let text = lines.map { $0 + "\n" }.joined()
    let storage = ByteStorage(copying: Array(text.utf8))
    var batch = LogBatch(storage: storage, defaultTimestamp: 1_000, ingestionTime: 2_000, origin: Origin(logGroup: "/app", logStream: "web-1"))
    var framer = LineFramer(maxLineBytes: 1 << 20)
    _ = framer.frame(UnsafeRawPointer(storage.mutableBase), from: 0, end: storage.capacity, into: &batch)
    return .logs(batch)
}

private func messages(_ subscription: TapSubscription) -> [String] {
    var out: [String] = []
    while let event = subscription.next() {
        let object = (try? JSONSerialization.jsonObject(with: Data(event.json))) as? [String: Any]
        out.append(object?["message"] as? String ?? "?")
    }
    return out
}

@Suite("Taps inside the runtime")
struct TapRuntimeTests {
    @Test("one event in N is taken across batch boundaries, at most the rate, and a full ring drops and counts")
    func samplingRateAndDrops() {
        let every3 = TapSubscription(component: "c", port: .all, options: TapOptions(sampleEvery: 3, eventsPerSecond: 10_000))
        every3.offer(logBatch((0..<5).map { "e\($0)" }), port: nil, now: 0)
        every3.offer(logBatch((5..<10).map { "e\($0)" }), port: nil, now: 0)
        #expect(messages(every3) == ["e0", "e3", "e6", "e9"])
        #expect(every3.seen == 10 && every3.taken == 4 && every3.dropped == 0)

        // 5 a second with a one-second burst: 5 now, none more at the same instant, 5 more a second later.
        let limited = TapSubscription(component: "c", port: .all, options: TapOptions(eventsPerSecond: 5))
        limited.offer(logBatch((0..<100).map { "e\($0)" }), port: nil, now: 1_000_000_000)
        limited.offer(logBatch((0..<100).map { "f\($0)" }), port: nil, now: 1_000_000_000)
        #expect(limited.taken == 5)
        // Spread over the batch rather than its first five.
        #expect(messages(limited) == ["e0", "e20", "e40", "e60", "e80"])
        limited.offer(logBatch((0..<100).map { "g\($0)" }), port: nil, now: 2_000_000_000)
        #expect(limited.taken == 10)

        let small = TapSubscription(component: "c", port: .all, options: TapOptions(eventsPerSecond: 10_000, capacity: 4))
        small.offer(logBatch((0..<10).map { "e\($0)" }), port: nil, now: 0)
        #expect(small.taken == 4 && small.dropped == 6)
        #expect(messages(small) == ["e0", "e1", "e2", "e3"])

        // Large events fill the byte budget before the slots.
        let bytes = TapSubscription(component: "c", port: .all, options: TapOptions(eventsPerSecond: 10_000, capacityBytes: 10_000))
        bytes.offer(logBatch((0..<10).map { "\($0)" + String(repeating: "x", count: 3_000) }), port: nil, now: 0)
        #expect(bytes.taken == 3 && bytes.dropped == 7)

        let limit = TapSubscription(component: "c", port: .all, options: TapOptions(eventsPerSecond: 10_000, limit: 2))
        limit.offer(logBatch(["a", "b", "c"]), port: nil, now: 0)
        limit.offer(logBatch(["d"]), port: nil, now: 0)
        #expect(messages(limit) == ["a", "b"])

        let port = TapSubscription(component: "c", port: .named("errors"), options: TapOptions())
        port.offer(logBatch(["main"]), port: nil, now: 0)
        port.offer(logBatch(["routed"]), port: "errors", now: 0)
        #expect(messages(port) == ["routed"] && port.seen == 1)
    }

    @Test("the lock-free ring keeps every element once under concurrent producers and a consumer")
    func ringUnderContention() async {
        let ring = TapRing<Int>(capacity: 64)
        let producers = 4, perProducer = 20_000
        let consumed = await withTaskGroup(of: [Int].self) { group in
            for p in 0..<producers {
                group.addTask {
                    var dropped: [Int] = []
                    for i in 0..<perProducer where !ring.push(p * perProducer + i) { dropped.append(p * perProducer + i) }
                    return dropped.map { -$0 - 1 }
                }
            }
            group.addTask {
                var got: [Int] = []
                var idle = 0
                while idle < 2_000 {
                    if let value = ring.pop() { got.append(value); idle = 0 } else { idle += 1; await Task.yield() }
                }
                return got
            }
            var all: [Int] = []
            for await part in group { all += part }
            return all
        }
        let taken = consumed.filter { $0 >= 0 }, dropped = consumed.filter { $0 < 0 }.map { -$0 - 1 }
        #expect(taken.count + dropped.count == producers * perProducer)
        #expect(Set(taken).count == taken.count && Set(taken).isDisjoint(with: dropped))
    }

    @Test("attaching checks the component, the port and the limits; detaching frees the slot")
    func attaching() async throws {
        let runner = PipelineRunner(plan: try plan("""
            sources: { app: { type: stdin } }
            transforms:
              split: { type: route, inputs: [app], routes: { errors: "ERROR" } }
            sinks: { out: { type: console, inputs: [split.errors] } }
            """, registry: BuiltinStages.registry), once: true, log: .silent)
        #expect(throws: TapError.unknownComponent("nope", tappable: ["app", "split"])) { try runner.attachTap("nope", options: TapOptions()) }
        #expect(throws: TapError.sinkHasNoOutput("out", inputs: ["split.errors"])) { try runner.attachTap("out", options: TapOptions()) }
        #expect(throws: TapError.self) { try runner.attachTap("split.warnings", options: TapOptions()) }
        #expect(throws: TapError.self) { try runner.attachTap("app", options: TapOptions(eventsPerSecond: 0)) }
        var attached: [TapSubscription] = []
        for _ in 0..<PipelineTaps.maximumTaps { attached.append(try runner.attachTap("split.errors", options: TapOptions())) }
        #expect(throws: TapError.tooManyTaps(PipelineTaps.maximumTaps)) { try runner.attachTap("app", options: TapOptions()) }
        runner.taps.detach(attached[0])
        runner.taps.detach(attached[0])
        #expect(runner.taps.attachedCount == PipelineTaps.maximumTaps - 1)
        _ = try runner.attachTap("app", options: TapOptions())
    }
}

/// `trailwatch tap` against a running `trailwatch run`, over real HTTP with the token.
@Suite("trailwatch tap (real processes)", .serialized)
struct TapCommandTests {
    /// Starts `trailwatch run` on `yaml` with an http: server on a free port and token `secret`.
    func startPipeline(_ dir: TemporaryDirectory, _ yaml: String) async throws -> (Process, Int) {
        try await startServing(["run", dir.write("p.yaml", yaml)], environment: ["TW_TAP_TOKEN": "secret"])
    }

    func stop(_ process: Process) {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Runs `trailwatch ARGS` with stdout and stderr to files; returns the process.
    func launch(_ dir: TemporaryDirectory, _ name: String, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: trailwatchBinary())
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(["TW_TAP_TOKEN": "secret"]) { $1 }
        _ = FileManager.default.createFile(atPath: dir.file("\(name).out"), contents: nil)
        _ = FileManager.default.createFile(atPath: dir.file("\(name).err"), contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.file("\(name).out")))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: dir.file("\(name).err")))
        try launchProcess(process)
        return process
    }

    /// Appends `lines` to `path`.
    func append(_ path: String, _ lines: [String]) {
        let handle = FileHandle(forWritingAtPath: path)!
        handle.seekToEndOfFile()
        handle.write(Data(lines.map { $0 + "\n" }.joined().utf8))
        try? handle.close()
    }

    @Test("tap streams a sample of a component's events with the token; refuses without it and names tappable components")
    func tapRunningPipeline() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("in.log", "")
        let (pipeline, port) = try await startPipeline(dir, """
            data_dir: \(dir.file("state"))
            http: { listen: "127.0.0.1:0", auth_token_env: TW_TAP_TOKEN, idle_timeout: 1s }
            sources: { app: { type: file, include: ["\(dir.file("in.log"))"], log_group: /app } }
            transforms:
              split: { type: route, inputs: [app], routes: { errors: "ERROR" } }
            sinks: { out: { type: file, inputs: [split.errors], path: "\(dir.file("out.log"))", format: raw } }
            """)
        defer { stop(pipeline) }
        try #require(port > 0)
        let url = "http://127.0.0.1:\(port)"

        // No token: refused, exit 3 (the work could not be done), the message says what to give.
        let (noToken, _, noTokenErr) = try await runTool(trailwatchBinary(), ["tap", "split", "--url", url, "--limit", "1"])
        #expect(noToken == 3 && noTokenErr.contains("401") && noTokenErr.contains("--token-env"), "\(noTokenErr)")
        // An unknown component: exit 2, with what can be tapped.
        let tokenFile = dir.write("token", "secret\n")
        let (unknown, _, unknownErr) = try await runTool(trailwatchBinary(), ["tap", "nope", "--url", url, "--token-file", tokenFile])
        #expect(unknown == 2 && unknownErr.contains("no component 'nope'") && unknownErr.contains("tappable: app, split"), "\(unknownErr)")

        // The routed output, as JSON lines, until the limit; lines are written while the tap runs,
        // and the idle timeout (1s) does not cut the stream.
        let json = try launch(dir, "json", ["tap", "split.errors", "--url", url, "--token-env", "TW_TAP_TOKEN", "--limit", "5", "--format", "json"])
        let text = try launch(dir, "text", ["tap", "split", "--url", url, "--pipeline", dir.file("p.yaml"), "--sample", "2", "--limit", "4"])
        defer { stop(json); stop(text) }
        // Quiet for longer than the idle timeout: a stream in progress is not idle.
        await pause(1.5)
        var n = 0
        let done = await eventually(120) {
            if json.isRunning || text.isRunning {
                append(dir.file("in.log"), ["INFO request \(n)", "ERROR request \(n) failed"])
                n += 1
                return false
            }
            return true
        }
        #expect(done && json.terminationStatus == 0 && text.terminationStatus == 0, "\(dir.read("json.err")) \(dir.read("text.err"))")
        let events = dir.read("json.out").split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(events.count == 5, "\(dir.read("json.out"))")
        for event in events {
            #expect(event["type"] as? String == "event" && event["component"] as? String == "split" && event["port"] as? String == "errors")
            let body = event["event"] as? [String: Any]
            #expect((body?["message"] as? String)?.hasPrefix("ERROR request") == true && body?["group"] as? String == "/app", "\(event)")
        }
        #expect(dir.read("json.err").contains("tap split.errors ended (the limit was reached): 5 events shown"), "\(dir.read("json.err"))")
        // Every other event of every output of `split`; the routed ones carry their port.
        let shown = dir.read("text.out").split(separator: "\n").map(String.init)
        #expect(shown.count == 4, "\(shown)")
        #expect(shown.allSatisfy { $0.hasPrefix("INFO request") || $0.hasPrefix("[errors] ERROR request") }, "\(shown)")
        // The pipeline went on; the taps detached.
        #expect(await eventually(30) { dir.read("out.log").components(separatedBy: "\n").count > n / 2 })
        let metrics = httpGet(port: port, path: "/health", headers: ["Authorization: Bearer secret"])
        #expect(metrics?.0 == 200)
    }

    @Test("a client that stops reading never slows the pipeline: the tap drops, counts and reports it")
    func stalledClient() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("in.log", "")
        let (pipeline, port) = try await startPipeline(dir, """
            data_dir: \(dir.file("state"))
            http: { listen: "127.0.0.1:0", auth_token_env: TW_TAP_TOKEN }
            sources: { app: { type: file, include: ["\(dir.file("in.log"))"] } }
            sinks: { out: { type: file, inputs: [app], path: "\(dir.file("out.log"))", format: raw } }
            """)
        defer { stop(pipeline) }
        try #require(port > 0)
        // A raw client that sends the request and then reads nothing for a while.
        let fd = try #require(loopbackConnection(port: port))
        defer { close(fd) }
        let request = "GET /tap?component=app&rate=10000 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer secret\r\n\r\n"
        _ = request.withCString { send(fd, $0, strlen($0), 0) }
        try await Task.sleep(nanoseconds: 300_000_000)
        // 16 MiB of events while the client reads nothing: twice what the tap's ring (4 MiB) and the
        // sockets' buffers hold.
        let line = String(repeating: "x", count: 8_000)
        for chunk in 0..<20 { append(dir.file("in.log"), (0..<100).map { "\(chunk * 100 + $0) \(line)" }) }
        // The pipeline writes everything regardless.
        let expectedSize = (0..<2_000).reduce(0) { $0 + String($1).count + 8_002 }
        #expect(await eventually(120) { (try? FileManager.default.attributesOfItem(atPath: dir.file("out.log"))[.size] as? Int) == expectedSize })
        // Now read: the stats lines report the drops.
        // Blocking reads, so off Swift's cooperative threads (the other suites' tasks need them).
        let (seen, dropped) = await Self.readStats(fd)
        #expect(seen == 2_000)
        #expect(dropped > 0, "no stats line reported drops")
    }

    /// Reads the tap stream on `fd` until a `stats` line reports drops (or 60 s pass): the last
    /// stats line's `seen` and `dropped`. Runs on a dispatch thread: the socket reads block.
    static func readStats(_ fd: Int32) async -> (seen: Int, dropped: Int) {
        await withCheckedContinuation { (done: CheckedContinuation<(seen: Int, dropped: Int), Never>) in
            DispatchQueue.global().async {
                var pending = [UInt8]()
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                var timeout = timeval(tv_sec: 5, tv_usec: 0)
                setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
                let deadline = Date().addingTimeInterval(60)
                var dropped = 0, seen = 0
                while Date() < deadline && dropped == 0 {
                    let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if n <= 0 { break }
                    pending += buffer[0..<n]
                    // Complete lines only; the stats lines are the short ones.
                    guard let last = pending.lastIndex(of: UInt8(ascii: "\n")) else { continue }
                    for statsLine in pending[...last].split(separator: UInt8(ascii: "\n")) where statsLine.count < 300 {
                        if let object = try? JSONSerialization.jsonObject(with: Data(statsLine)) as? [String: Any], object["type"] as? String == "stats" {
                            dropped = object["dropped"] as? Int ?? 0
                            seen = object["seen"] as? Int ?? 0
                        }
                    }
                    pending.removeFirst(last + 1)
                }
                done.resume(returning: (seen, dropped))
            }
        }
    }
}
