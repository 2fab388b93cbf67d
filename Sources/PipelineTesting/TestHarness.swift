import Foundation
import TrailwatchConfig
import TrailwatchCore
import TrailwatchRuntime

/// Runs pipeline unit tests in-process and synchronously: sources and sinks are replaced by the
/// test's inputs and by collectors, transforms are the real stages (each test gets fresh ones, a
/// scratch state directory and a virtual clock), and every component's output is recorded.
///
/// Time: the virtual clock starts at the first input event's time and follows the inputs; stages
/// are ticked whenever it moves (at most once per input time) and once a minute of virtual time
/// while `advance:` lets it run on. At the end every transform finishes as at shutdown.
public struct TestHarness {
    public let plan: PipelinePlan

    public init(plan: PipelinePlan) { self.plan = plan }

    /// What one test produced: events per output (`component`, `component.port`, sink id).
    public struct Observations {
        public var outputs: [String: [ObservedEvent]] = [:]
        /// Stages that failed to start or threw while running.
        public var errors: [String] = []
    }

    public func run(_ test: PipelineTest) -> Observations {
        var observations = Observations()
        // State saves sync to disk; on tmpfs that costs nothing, so a test with hours of virtual time stays instant.
        let base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : FileManager.default.temporaryDirectory.path
        let scratch = base + "/trailwatch-test-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        try? FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: scratch) }

        let events = test.inputs.flatMap { input in input.events.map { (target: input.target, event: $0) } }
            .enumerated().sorted { ($0.element.event.time, $0.offset) < ($1.element.event.time, $1.offset) }.map(\.element)
        let clock = VirtualClock(startMillis: events.first?.event.time ?? TestDefinitionReader.defaultStart)
        var settings = plan.document.settings
        settings.dataDir = scratch
        settings.http = nil
        let errors = ErrorCollector()
        let log = RuntimeLog { level, component, message in
            if level >= .error { errors.add("\(component): \(message)") }
        }

        // Fresh transforms; sources and sinks are only names here.
        var transforms: [String: any Transform] = [:]
        var order: [String] = []
        var sections: [String: ComponentSection] = [:]
        for component in plan.components {
            sections[component.id] = component.declaration.section
            guard case .transform(let make) = component.stage.factory else { continue }
            let context = StageContext(id: component.id, settings: settings, once: false, stateDirectory: scratch + "/state/" + component.id,
                                       metrics: ComponentMetrics(id: component.id, type: component.declaration.type, section: "transform"),
                                       log: log, pipelineDirectory: plan.pipelineDirectory, clock: clock)
            do {
                transforms[component.id] = try make(context)
                order.append(component.id)
            } catch {
                observations.errors.append("\(component.id) could not start: \(error)")
            }
        }
        var readers: [String: [String]] = [:]   // "component" or "component.port" → reader ids
        for component in plan.components where component.declaration.section != .sources {
            var seen = Set<String>()
            for input in component.declaration.inputs where seen.insert(input.text).inserted {
                readers[input.text, default: []].append(component.id)
            }
        }
        let defaultGroups = Dictionary(plan.components.map { ($0.id, Self.logGroup(of: $0.declaration)) }, uniquingKeysWith: { a, _ in a })

        func record(_ key: String, _ payload: Payload) {
            observations.outputs[key, default: []].append(contentsOf: ObservedEvent.all(in: payload))
        }

        /// Hands `batch`, which left `key`, to everything reading it.
        func deliver(_ batch: Batch, from key: String) {
            record(key, batch.payload)
            let targets = readers[key] ?? []
            for reader in targets {
                if sections[reader] == .sinks {
                    record(reader, batch.payload)
                } else if let transform = transforms[reader] {
                    var output = TransformOutput()
                    do { try transform.process(batch, into: &output) } catch { errors.add("\(reader): \(error)") }
                    if !transform.holdsAcknowledgements { batch.acks.release() }
                    route(output, of: reader)
                }
            }
            // Sinks are collectors: whatever reached one is written as far as its producer knows.
            if targets.isEmpty || targets.contains(where: { sections[$0] == .sinks }) { batch.acks.release() }
        }

        func route(_ output: TransformOutput, of component: String) {
            for (port, batch) in output.emitted where batch.count > 0 || !batch.acks.isEmpty {
                deliver(batch, from: port.map { "\(component).\($0)" } ?? component)
            }
        }

        func tick(_ now: Int64) {
            for id in order {
                var output = TransformOutput()
                do { try transforms[id]!.tick(nowMillis: now, into: &output) } catch { errors.add("\(id): \(error)") }
                route(output, of: id)
            }
        }

        // Feed runs of events with the same target and time as one batch.
        var index = 0
        var lastTick: Int64?
        while index < events.count {
            let (target, first) = events[index]
            var end = index + 1
            while end < events.count, events[end].target == target, events[end].event.time == first.time,
                  events[end].event.kind == first.kind { end += 1 }
            clock.advance(to: first.time)
            if lastTick != clock.nowMillis() {
                lastTick = clock.nowMillis()
                tick(clock.nowMillis())
            }
            let batch = Self.batch(events[index..<end].map(\.event), ingestionTime: clock.nowMillis(), defaultGroup: defaultGroups[target] ?? target)
            if sections[target] == .sources {
                deliver(batch, from: target)
            } else if let transform = transforms[target] {
                record("input:" + target, batch.payload)
                var output = TransformOutput()
                do { try transform.process(batch, into: &output) } catch { errors.add("\(target): \(error)") }
                route(output, of: target)
            }
            index = end
        }
        if test.advanceMillis > 0 {
            let stop = clock.nowMillis() + test.advanceMillis
            var now = clock.nowMillis()
            while now < stop {
                now = min(stop, (now / 60_000 + 1) * 60_000)
                clock.advance(to: now)
                tick(now)
            }
        }
        for id in order {
            var output = TransformOutput()
            do { try transforms[id]!.finish(into: &output) } catch { errors.add("\(id): \(error)") }
            route(output, of: id)
        }
        observations.errors += errors.messages
        return observations
    }

    /// The log group a source stamps on its events (`log_group:`, else its id), for test events that name none.
    static func logGroup(of declaration: ComponentDeclaration) -> String {
        if case .mapping(let settings) = declaration.settings, let group = settings["log_group"]?.string { return group }
        return declaration.id
    }

    /// One batch of test events of one kind.
    static func batch(_ events: [TestEvent], ingestionTime: Int64, defaultGroup: String) -> Batch {
        if case .metric = events[0] {
            return Batch(.metrics(events.compactMap { if case .metric(let d) = $0 { d } else { nil } }))
        }
        var bytes: [UInt8] = []
        var spans: [(Int, Int, Int64, Origin)] = []
        for case .log(let message, let time, var origin) in events {
            if origin.logGroup.isEmpty { origin.logGroup = defaultGroup }
            spans.append((bytes.count, message.count, time, origin))
            bytes += message
            bytes.append(0x0A)
        }
        var logs = LogBatch(storage: ByteStorage(copying: bytes), defaultTimestamp: spans[0].2, ingestionTime: ingestionTime, origin: spans[0].3)
        for (start, length, time, origin) in spans {
            logs.append(start: start, length: length, timestamp: time, originIndex: logs.originIndex(for: origin))
        }
        return Batch(.logs(logs))
    }
}

/// Errors stages report through their log while a test runs.
final class ErrorCollector: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ message: String) { lock.lock(); list.append(message); lock.unlock() }
    var messages: [String] { lock.lock(); defer { lock.unlock() }; return list }
}
