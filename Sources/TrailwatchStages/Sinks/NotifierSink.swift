import Foundation
import Synchronization
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `notifier`: alarm state changes, insights and pattern events to people — a webhook (JSON or
/// Slack), a command (argv, event JSON on stdin) or the console. Notifications are spooled
/// durably before their events are acknowledged and delivered in order with retries
/// (exponential backoff with jitter), so neither a failing receiver nor a restart loses one.
/// A dedupe key keeps replays from notifying twice; a per-subject cooldown keeps flapping quiet.
struct NotifierSink: SinkKind {
    enum Channel: Sendable {
        case webhook(url: String, format: WebhookChannel.Format, headers: [(String, String)])
        case command([String])
        case console
    }

    struct Config: StageConfig {
        var channel: Channel = .console
        /// Which states notify (default: every state).
        var states: Set<String> = []
        var cooldown = ConfigDuration(milliseconds: 0)
        /// Nil: each notification's kind decides (see ``Notification/defaultDedupeKey``).
        var dedupeKey: String?
        var dedupeWindow = ConfigDuration(milliseconds: 7 * 86_400_000)
        var timeout = ConfigDuration(milliseconds: 10_000)
        var retryInitial = ConfigDuration(milliseconds: 1_000)
        var retryMax = ConfigDuration(milliseconds: 300_000)
        /// `--once`: how long the end of the run waits for the spool to drain.
        var drainTimeout = ConfigDuration(milliseconds: 30_000)

        enum CodingKeys: String, CodingKey, CaseIterable {
            case webhook, command, console, states, cooldown, dedupeKey = "dedupe_key", dedupeWindow = "dedupe_window"
            case timeout, retryInitial = "retry_initial", retryMax = "retry_max", drainTimeout = "drain_timeout"
        }

        struct Webhook: Decodable {
            var url: String
            var format: String?
            var headers: [String: String]?
            enum CodingKeys: String, CodingKey, CaseIterable { case url, format, headers }
            init(from decoder: any Decoder) throws {
                try decoder.rejectUnknownKeys(CodingKeys.self)
                let c = try decoder.container(keyedBy: CodingKeys.self)
                url = try c.decode(String.self, forKey: .url)
                format = try c.decodeIfPresent(String.self, forKey: .format)
                headers = try c.decodeIfPresent([String: String].self, forKey: .headers)
            }
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let given = [CodingKeys.webhook, .command, .console].filter { c.contains($0) }
            guard given.count == 1 else {
                throw SettingError(codingPath: c.codingPath, message: given.isEmpty ? "no channel" : "more than one channel",
                                   expected: "exactly one of webhook, command and console")
            }
            switch given[0] {
            case .webhook:
                let hook = try c.decode(Webhook.self, forKey: .webhook)
                let path = c.codingPath + [CodingKeys.webhook]
                guard let url = URL(string: hook.url), let scheme = url.scheme?.lowercased(), scheme == "https" || scheme == "http", url.host != nil else {
                    // The URL may carry a secret: never repeat it.
                    throw SettingError(codingPath: path + [AnyCodingKey(stringValue: "url")], message: "not an http(s) URL",
                                       expected: "https://host/path")
                }
                var format = WebhookChannel.Format.json
                if let text = hook.format {
                    guard let parsed = WebhookChannel.Format(rawValue: text) else {
                        throw SettingError(codingPath: path + [AnyCodingKey(stringValue: "format")], message: "unknown format '\(text)'", expected: "json or slack")
                    }
                    format = parsed
                }
                channel = .webhook(url: hook.url, format: format, headers: (hook.headers ?? [:]).sorted { $0.key < $1.key })
            case .command:
                let argv = try c.decode([String].self, forKey: .command)
                guard let program = argv.first, !program.isEmpty else {
                    throw SettingError(codingPath: c.codingPath + [CodingKeys.command], message: "empty command",
                                       expected: "an argument list such as [/usr/local/bin/page, --team, ops]")
                }
                channel = .command(argv)
            default:
                _ = try c.decode(Bool.self, forKey: .console)
                channel = .console
            }
            states = Set(try c.decodeIfPresent([String].self, forKey: .states) ?? [])
            cooldown = try c.decodeIfPresent(ConfigDuration.self, forKey: .cooldown) ?? cooldown
            dedupeKey = try c.decodeIfPresent(String.self, forKey: .dedupeKey)
            dedupeWindow = try c.decodeIfPresent(ConfigDuration.self, forKey: .dedupeWindow) ?? dedupeWindow
            timeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .timeout) ?? timeout
            retryInitial = try c.decodeIfPresent(ConfigDuration.self, forKey: .retryInitial) ?? retryInitial
            retryMax = try c.decodeIfPresent(ConfigDuration.self, forKey: .retryMax) ?? retryMax
            drainTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .drainTimeout) ?? drainTimeout
            guard timeout.milliseconds >= 100 else {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.timeout], message: "\(timeout) is too short", expected: "at least 100ms")
            }
            guard retryInitial.milliseconds >= 10, retryMax.milliseconds >= retryInitial.milliseconds else {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.retryMax], message: "retry_max must be at least retry_initial (at least 10ms)",
                                   expected: "for example retry_initial: 1s, retry_max: 5m")
            }
        }
    }

    static let type = "notifier"
    static let summary = "Sends alarm, insight, pattern and rule events to a webhook (JSON or Slack), a command or the console."
    static func accepts(_ config: Config) -> Set<EventKind> { [.alarm, .insight, .pattern, .rule] }

    static func make(_ config: Config, _ context: StageContext) throws -> any Sink {
        try Runner(config: config, context: context)
    }

    final class Runner: Sink {
        let config: Config
        let context: StageContext
        let spool: NotificationSpool
        let channel: any NotificationChannel
        let channelName: String
        private var memory = NotifierMemory()
        private var memoryPath: String { context.stateDirectory + "/notifier.json" }
        private let wake = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        private let stopping = StopFlag()
        private var worker: Task<Void, Never>?

        init(config: Config, context: StageContext) throws {
            self.config = config
            self.context = context
            spool = try NotificationSpool(stateDirectory: context.stateDirectory)
            switch config.channel {
            case .webhook(let url, let format, let headers):
                let hook = WebhookChannel(url: URL(string: url)!, format: format, headers: headers, timeout: config.timeout.seconds)
                channel = hook
                channelName = "webhook \(hook.displayName)"
            case .command(let argv):
                channel = CommandChannel(argv: argv, timeout: config.timeout.seconds)
                channelName = "command \(argv[0])"
            case .console:
                channel = ConsoleChannel()
                channelName = "console"
            }
            if let data = FileManager.default.contents(atPath: memoryPath), let saved = try? JSONDecoder().decode(NotifierMemory.self, from: data) {
                memory = saved
            }
            // Spooled notifications count as seen, even if the memory file missed them.
            for entry in spool.pending { memory.keys[entry.notification.dedupeKey] = entry.notification.time }
            if spool.count > 0 { context.log.log(.info, context.id, "\(spool.count) notification(s) from the previous run still to deliver") }
            context.metrics.setGauge("notifications_spooled", Double(spool.count))
            let stream = wake.stream
            let spool = self.spool, channel = self.channel, stopping = self.stopping
            let context = self.context, channelName = self.channelName
            let backoff = (initial: Double(config.retryInitial.milliseconds), max: Double(config.retryMax.milliseconds))
            worker = Task.detached {
                await Runner.deliverLoop(spool: spool, channel: channel, channelName: channelName, backoff: backoff, context: context,
                                         stopping: stopping, wake: stream)
            }
            wake.continuation.yield()
        }

        func write(_ batch: Batch) async throws {
            guard case .events(_, let events) = batch.payload else {
                batch.acks.release()
                return
            }
            var accepted: [Notification] = []
            var suppressed = 0
            for event in events {
                var notification = Notification(event)
                notification.dedupeKey = notification.expand(config.dedupeKey ?? notification.defaultDedupeKey)
                if !config.states.isEmpty && !config.states.contains(notification.state) { continue }
                if memory.keys[notification.dedupeKey] != nil { continue }
                memory.keys[notification.dedupeKey] = notification.time
                if !pass(notification) { suppressed += 1; continue }
                accepted.append(notification)
            }
            do {
                try spool.append(accepted)
                memory.forget(olderThan: (events.map(\.timestamp).max() ?? 0) - config.dedupeWindow.milliseconds)
                try StageStateFile.writeDurably(try JSONEncoder().encode(memory), to: memoryPath)
            } catch {
                batch.acks.release(success: false)
                throw error
            }
            if suppressed > 0 { context.metrics.addToGauge("notifications_suppressed", Double(suppressed)) }
            context.metrics.recordOut(events: accepted.count, bytes: batch.payload.byteCount)
            context.metrics.setGauge("notifications_spooled", Double(spool.count))
            batch.acks.release()
            if !accepted.isEmpty { wake.continuation.yield() }
        }

        /// The cooldown, on event time: a firing notification within `cooldown` of the subject's last
        /// one is held back, and so is the clear that follows a held-back one.
        private func pass(_ n: Notification) -> Bool {
            if n.clears { return !memory.suppressed.contains(n.subject) }
            if config.cooldown.milliseconds > 0, let last = memory.lastFiring[n.subject], n.time - last < config.cooldown.milliseconds {
                memory.suppressed.insert(n.subject)
                return false
            }
            memory.lastFiring[n.subject] = n.time
            memory.suppressed.remove(n.subject)
            return true
        }

        func finish() async throws {
            if context.once {
                // A batch run waits for its notifications to go out (up to drain_timeout); the rest stay spooled.
                let deadline = MonotonicClock.wallMillis() + config.drainTimeout.milliseconds
                while spool.count > 0 && MonotonicClock.wallMillis() < deadline {
                    try? await Task.sleep(for: .milliseconds(20))
                }
            }
            stopping.stop()
            wake.continuation.yield()
            await worker?.value
            if spool.count > 0 {
                context.log.log(.warning, context.id, "\(spool.count) notification(s) not delivered yet; kept in \(spool.directory) for the next run")
            }
        }

        static func deliverLoop(spool: NotificationSpool, channel: any NotificationChannel, channelName: String,
                                backoff: (initial: Double, max: Double), context: StageContext, stopping: StopFlag, wake: AsyncStream<Void>) async {
            var attempt = 0
            var iterator = wake.makeAsyncIterator()
            while !stopping.isSet {
                guard let entry = spool.first else {
                    _ = await iterator.next()
                    continue
                }
                let outcome = await channel.deliver(entry.notification)
                switch outcome {
                case .delivered:
                    spool.delivered(entry)
                    attempt = 0
                    context.metrics.addToGauge("notifications_delivered", 1)
                case .refused(let why):
                    spool.refused(entry)
                    attempt = 0
                    context.metrics.addToGauge("notifications_refused", 1)
                    context.log.log(.error, context.id, "\(channelName) refused a notification for \(entry.notification.subject) (\(why)); kept in \(spool.failedDirectory)")
                case .retry(let why, let after):
                    attempt += 1
                    context.metrics.addToGauge("sink_retries", 1)
                    // Exponential backoff, capped, with jitter (a random half of the step) so many notifiers do
                    // not retry in lockstep; a receiver's Retry-After wins.
                    let cap = min(backoff.max, backoff.initial * pow(2, Double(min(attempt - 1, 30))))
                    let delay = after.map { $0 * 1000 } ?? Double.random(in: cap / 2...cap)
                    context.log.log(.warning, context.id, "\(channelName): \(why); attempt \(attempt), retrying in \(Int(delay))ms")
                    var waited = 0.0
                    while waited < delay && !stopping.isSet {
                        try? await Task.sleep(for: .milliseconds(min(50, Int(delay - waited) + 1)))
                        waited += 50
                    }
                }
                context.metrics.setGauge("notifications_spooled", Double(spool.count))
            }
        }
    }
}

/// A flag one task sets and another polls.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func stop() { flag.store(true, ordering: .relaxed) }
}
