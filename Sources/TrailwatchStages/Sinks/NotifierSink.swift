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
        /// Whether one of `webhook`, `command` and `console` gave ``channel``.
        var channelGiven = false
        /// Which states notify (empty: every state).
        var states: Set<String> = []
        var cooldown = ConfigDuration(milliseconds: 0)
        /// Nil: each notification's kind decides (see ``Notification/defaultDedupeKey``).
        var dedupeKey: String?
        var dedupeWindow = ConfigDuration(milliseconds: 7 * 86_400_000)
        var timeout = ConfigDuration(milliseconds: 10_000)
        var retryInitial = ConfigDuration(milliseconds: 1_000)
        var retryMax = ConfigDuration(milliseconds: 300_000)
        var drainTimeout = ConfigDuration(milliseconds: 30_000)

        static let settings = SettingsSchema<Config>(
            channel("webhook", type: "mapping", "POSTs each notification. `format: json` (default) sends the notification JSON; `format: "
                    + "slack` sends `{\"text\": …}` for a Slack incoming webhook. Every request carries `Idempotency-Key: <dedupe key>`. "
                    + "TLS certificates are verified against the system trust store (there is no switch to turn that off). The URL is never printed (logs name the host only).",
                    nested: { Webhook.settings.reference(prefix: "webhook.") }) { c, key in
                let hook = try c.decode(Webhook.self, forKey: key)
                return .webhook(url: hook.url, format: hook.format, headers: hook.headers.sorted { $0.key < $1.key })
            },
            channel("command", type: "list of strings", "`[PROGRAM, ARG...]`: runs the program directly — never through a shell — with the "
                    + "notification JSON on stdin (one line, ending with a newline). Arguments may contain `{subject}`, `{state}`, `{kind}`, "
                    + "`{time}`, `{summary}`, `{id}` (a rule match's event id); each is replaced inside its own argument, so whatever an "
                    + "alarm name contains stays one argument. Exit status 0 is success.") { c, key in
                let argv = try c.decode([String].self, forKey: key)
                guard let program = argv.first, !program.isEmpty else {
                    throw SettingError(codingPath: c.codingPath + [key], message: "empty command",
                                       expected: "an argument list such as [/usr/local/bin/page, --team, ops]")
                }
                return .command(argv)
            },
            channel("console", type: "true or false", "`true`: one line per notification on standard output. Exactly one of `webhook`, "
                    + "`command` and `console`.") { c, key in
                _ = try c.decode(Bool.self, forKey: key)
                return .console
            },
            .custom("states", type: "list of strings", "Which states notify, e.g. `[ALARM, OK]` (insights: `Start`, `End`; patterns: "
                    + "`NewPattern`, `RateIncrease`, `RateDecrease`; rules: `MATCHED`).", note: "all", storedAt: \Config.states) { config, c, key in
                config.states = Set(try c.decode([String].self, forKey: key))
            },
            .setting("cooldown", \.cooldown, "Per subject (alarm name, insight, template), on event time: a firing notification within "
                     + "this long of the last one sent is held back, and so is the clear that follows it. OK notifications are sent when an alarm clears."),
            .setting("dedupe_key", \.dedupeKey, "Notifications with a key seen in the last `dedupe_window` are dropped, so replays and "
                     + "restarts do not notify twice.", default: "`{kind}/{subject}/{state}/{time}` (rule matches: `{kind}/{subject}/{id}`)"),
            .setting("dedupe_window", \.dedupeWindow, "How long keys are remembered (at most 10,000)."),
            .setting("timeout", \.timeout, "Per attempt (HTTP request or command run; a command past it is killed). At least 100ms.",
                     check: { $0.milliseconds < 100 ? SettingIssue("\($0) is too short", expected: "at least 100ms") : nil }),
            .setting("retry_initial", \.retryInitial, "Failed attempts (connection errors, timeouts, HTTP 5xx, 408, 429, non-zero exits) are "
                     + "retried forever, in order, with exponential backoff from `retry_initial` up to `retry_max` and random jitter (half "
                     + "the step); a `Retry-After` header wins. Other HTTP 4xx answers will never succeed: the notification is moved to "
                     + "`<data_dir>/state/<id>/failed/` and logged."),
            .setting("retry_max", \.retryMax, "The longest backoff step; at least `retry_initial`."),
            .setting("drain_timeout", \.drainTimeout, "With `--once`, how long the end of the run waits for deliveries; what is left stays "
                     + "spooled for the next run.")
        )

        /// One of the settings that name the channel (exactly one is given).
        static func channel(_ key: String, type: String, _ doc: String, nested: @escaping @Sendable () -> [SettingReference] = { [] },
                            _ decode: @escaping @Sendable (Setting<Config>.Container, AnyCodingKey) throws -> Channel) -> Setting<Config> {
            .custom(key, type: type, doc, nested: nested) { config, c, key in
                if config.channelGiven { throw oneChannel(c.codingPath, "more than one channel") }
                config.channel = try decode(c, key)
                config.channelGiven = true
            }
        }

        static func oneChannel(_ codingPath: [any CodingKey], _ message: String) -> SettingError {
            SettingError(codingPath: codingPath, message: message, expected: "exactly one of webhook, command and console")
        }

        mutating func validate(at codingPath: [any CodingKey]) throws {
            if !channelGiven { throw Self.oneChannel(codingPath, "no channel") }
            guard retryInitial.milliseconds >= 10, retryMax.milliseconds >= retryInitial.milliseconds else {
                throw SettingError(codingPath: codingPath + [Self.key(\Config.retryMax)], message: "retry_max must be at least retry_initial (at least 10ms)",
                                   expected: "for example retry_initial: 1s, retry_max: 5m")
            }
        }

        /// `webhook:`.
        struct Webhook: SettingsSection {
            var url = ""
            var format = WebhookChannel.Format.json
            var headers: [String: String] = [:]

            static let settings = SettingsSchema<Webhook>(
                .required("url", \.url, "Where to POST; secrets belong in `${ENVIRONMENT}` variables.", check: { url in
                    guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "https" || scheme == "http", parsed.host != nil else {
                        // The URL may carry a secret: never repeat it.
                        return SettingIssue("not an http(s) URL", expected: "https://host/path")
                    }
                    return nil
                }),
                .custom("format", type: "json or slack", "The body: the notification JSON, or Slack's `{\"text\": …}`.", default: "json") { config, c, key in
                    let text = try c.decode(String.self, forKey: key)
                    guard let format = WebhookChannel.Format(rawValue: text) else {
                        throw SettingError(codingPath: c.codingPath + [key], message: "unknown format '\(text)'", expected: "json or slack")
                    }
                    config.format = format
                },
                .setting("headers", \.headers, "Extra request headers (`{ Authorization: \"Bearer ${PAGER_TOKEN}\" }`).")
            )
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
                let deadline = context.clock.nowMillis() + config.drainTimeout.milliseconds
                while spool.count > 0 && context.clock.nowMillis() < deadline {
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
                    // In steps, so a stop is noticed within 50 ms.
                    let until = context.clock.nowMillis() + Int64(delay)
                    while case let left = until - context.clock.nowMillis(), left > 0, !stopping.isSet {
                        guard await context.clock.sleep(milliseconds: min(50, left)) else { break }
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
