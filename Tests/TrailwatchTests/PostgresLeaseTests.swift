import Foundation
import Glibc
import Testing
import TrailwatchCore
import TrailwatchPostgres
import TrailwatchRuntime
@testable import TrailwatchStages
import TrailwatchStore
import TrailwatchTestSupport

/// Many instances at once on one PostgreSQL store: an alarm evaluated by exactly one instance
/// at a time over the datapoints every instance wrote, taken over when its holder is killed.
/// (Part of the PostgreSQL suite, which runs its tests one at a time: one test restarts the server.)
extension PostgresStoreTests {
    @Test("a lease is held by one session at a time and freed when its holder's connection dies")
    func leases() async throws {
        guard let (_, url) = try await Self.database() else { return }
        let a = PostgresLeases(url: url), b = PostgresLeases(url: url)
        #expect(try await a.hold("alarm:x") == true)
        #expect(try await b.hold("alarm:x") == false)
        #expect(try await a.hold("alarm:x") == true)   // still ours
        #expect(try await b.hold("alarm:y") == true)
        await a.close()                                   // the holder's session ends
        var taken = false
        for _ in 0..<50 where !taken {                    // as soon as the server has seen it go
            taken = try await b.hold("alarm:x")
            if !taken { await pause(0.02) }
        }
        #expect(taken)
        await b.close()
    }

    @Test("kill -9 of the alarm's holder: the other instance takes over within a period; every state change notified once, in order")
    func alarmTakeover() async throws {
        guard let (_, url) = try await Self.database() else { return }
        let server = try TestHTTPServer { _ in .status(200) }
        defer { server.stop() }
        let dir = TemporaryDirectory()
        _ = dir.write("empty.log", "")
        func pipeline(_ name: String) -> String {
            dir.write("\(name).yaml", """
                data_dir: \(dir.file(name))
                sources:
                  app: { type: file, include: \(dir.file("empty.log")) }
                transforms:
                  errors: { type: metric_filter, inputs: [app], pattern: ERROR, metric_namespace: Fleet, metric_name: Errors, metric_value: "1" }
                  flaky:
                    type: alarm
                    inputs: [errors]
                    shared_store: "\(url)"
                    evaluation_delay: 1s
                    definition:
                      { AlarmName: Flaky, Namespace: Fleet, MetricName: Errors, Statistic: Sum, Period: 10, EvaluationPeriods: 1,
                        Threshold: 1, ComparisonOperator: GreaterThanOrEqualToThreshold, TreatMissingData: notBreaching }
                sinks:
                  store: { type: store, inputs: [flaky], url: "\(url)" }
                  page: { type: notifier, inputs: [flaky], webhook: { url: "\(server.url)" }, retry_initial: 50ms }
                """)
        }
        func start(_ name: String) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: trailwatchBinary())
            process.arguments = ["run", pipeline(name)]
            let log = dir.file("\(name).err")
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            process.standardError = FileHandle(forWritingAtPath: log)
            process.standardOutput = FileHandle.nullDevice
            try launchProcess(process)
            return process
        }
        let processes = ["a": try start("a"), "b": try start("b")]
        defer { for p in processes.values where p.isRunning { kill(p.processIdentifier, SIGKILL) } }

        // Two writers each contribute half of a period's errors: only merged do they reach the threshold.
        let writerA = try await PostgresStore.connect(url: url, access: .readWrite, writer: "host-a")
        let writerB = try await PostgresStore.connect(url: url, access: .readWrite, writer: "host-b")
        let metric = MetricIdentity(namespace: "Fleet", name: "Errors", dimensions: [])
        func notified() -> [String] {
            firstByIdempotencyKey(server.accepted).compactMap { request in
                (try? JSONSerialization.jsonObject(with: request.body) as? [String: Any])?["state"] as? String
            }
        }
        let expected = ["ALARM", "OK", "ALARM"]
        var killed: String?
        var period = (MonotonicClock.wallMillis() / 10_000 + 1) * 10_000
        let deadline = MonotonicClock.wallMillis() + 90_000
        var written = 0
        while notified().count < expected.count && MonotonicClock.wallMillis() < deadline {
            let now = MonotonicClock.wallMillis()
            if now >= period && written < expected.count {
                // Breaching periods alternate with quiet ones.
                let value = written % 2 == 0 ? 0.5 : 0
                for writer in [writerA, writerB] {
                    try await writer.write(.metrics([MetricDatum(metric: metric, timestamp: period, period: 10, sampleCount: 1,
                                                                 sum: value, minimum: value, maximum: value)]))
                }
                written += 1
                period += 10_000
            }
            // After the first notification (and a moment for it to be marked delivered), kill the holder.
            if killed == nil, notified().count == 1 {
                await pause(1.5)
                let holder = ["a", "b"].first { dir.read("\($0).err").contains("evaluating alarm 'Flaky'") } ?? "a"
                kill(processes[holder]!.processIdentifier, SIGKILL)
                await Child.exit(of: processes[holder]!)
                killed = holder
            }
            await pause(0.1)
        }
        await pause(1)
        #expect(notified() == expected, "\(notified())\na: \(dir.read("a.err"))\nb: \(dir.read("b.err"))")
        // Nothing was notified twice: one accepted request per state change.
        #expect(server.accepted.count == expected.count)
        let survivor = killed == "a" ? "b" : "a"
        #expect(killed != nil && dir.read("\(survivor).err").contains("evaluating alarm 'Flaky'"), "\(dir.read("\(survivor).err"))")
        #expect(try await writerA.count(.detectorEvents) == expected.count)
        await writerA.close()
        await writerB.close()
    }
}

extension PostgresStoreTests {
    @Test("insight detectors: only the lease holder emits; a new holder emits what it held back that the store lacks")
    func detectorLease() async throws {
        guard let (_, url) = try await Self.database() else { return }
        BuiltinStages.registerStoreBackends()
        let location = StoreLocation(url)
        let a = LeaseGate(location: location, lease: "insights:api", kind: .insight, log: .silent, component: "api", interval: 100)
        for _ in 0..<100 where !a.isHolding { await pause(0.05) }
        #expect(a.isHolding)
        let b = LeaseGate(location: location, lease: "insights:api", kind: .insight, log: .silent, component: "api", interval: 100)
        let events = (0..<3).map { StructuredEvent(kind: .insight, timestamp: 1_795_000_000_000 + Int64($0) * 60_000, key: "i\($0)", body: Array("{\"n\":\($0)}".utf8)) }
        #expect(a.pass(events) == events)
        #expect(b.pass(events).isEmpty)               // the standby holds them back
        // The holder stored the first two before it died.
        let store = try await PostgresStore.connect(url: url, access: .readWrite)
        try await store.write(.events(.insight, Array(events.prefix(2))))
        a.stop()
        for _ in 0..<100 where !b.isHolding { await pause(0.05) }
        #expect(b.isHolding)
        #expect(b.drainReleased() == [events[2]])
        #expect(b.pass([events[0]]) == [events[0]])    // holding: passes straight through
        b.stop()
        await store.close()
    }
}
