import Synchronization
import TrailwatchCore

/// What a tap client reads: newline-delimited JSON (`application/x-ndjson`), one object per line,
/// each with a `type`:
///
///     {"type":"event","component":"errors","port":null,"kind":"log","event":{"timestamp":"…","group":"/app","stream":"web-1","message":"…"}}
///     {"type":"stats","component":"errors","seen":120000,"sent":100,"dropped":0}
///     {"type":"end","reason":"limit","component":"errors","seen":120000,"sent":100,"dropped":0}
///
/// `event` is the event as sinks write it; `stats` comes once a second (it doubles as a
/// heartbeat, so a client that went away is noticed); `end` says why the server ended the stream
/// (`limit`, or `stopping` when the pipeline shuts down). `seen` counts events that left the
/// tapped outputs since the tap was attached, `sent` the ones written to this client, `dropped`
/// sampled ones lost because the client read too slowly.
public final class TapStream: Sendable {
    public let subscription: TapSubscription
    private let isStopping: @Sendable () -> Bool
    private let detach: @Sendable () -> Void
    private let statsIntervalNanos: Int64
    private let pollNanos: UInt64 = 20_000_000
    private let state = Mutex(State())

    private struct State {
        var sent = 0
        var ended = false
        var detached = false
        var lastStats: Int64 = 0
    }

    /// - Parameters:
    ///   - isStopping: true once the pipeline or the server shuts down: the stream ends.
    ///   - detach: called once when the stream is done (``finish()``).
    public init(subscription: TapSubscription, statsInterval: Double = 1, isStopping: @escaping @Sendable () -> Bool,
                detach: @escaping @Sendable () -> Void) {
        self.subscription = subscription
        self.isStopping = isStopping
        self.detach = detach
        statsIntervalNanos = Int64(statsInterval * 1e9)
        state.withLock { $0.lastStats = MonotonicClock.nanos() }
    }

    /// The next chunk of lines: sampled events as soon as there are any, a `stats` line at least
    /// once per interval, `end` once; nil after `end` or when the task is cancelled.
    public func next() async -> [UInt8]? {
        while true {
            let (sent, ended, lastStats) = state.withLock { ($0.sent, $0.ended, $0.lastStats) }
            if ended || Task.isCancelled { return nil }
            let limit = subscription.options.limit
            var out = ByteBuffer(reservingCapacity: 4096)
            var added = 0
            while out.count < 64 * 1024, limit.map({ sent + added < $0 }) ?? true, let event = subscription.next() {
                appendEvent(event, to: &out)
                added += 1
            }
            if added > 0 {
                state.withLock { $0.sent += added }
                return out.bytes
            }
            if let limit, sent >= limit { return end("limit") }
            if isStopping() { return end("stopping") }
            let now = MonotonicClock.nanos()
            if now - lastStats >= statsIntervalNanos {
                state.withLock { $0.lastStats = now }
                appendCounters(type: "stats", reason: nil, sent: sent, to: &out)
                return out.bytes
            }
            do { try await Task.sleep(nanoseconds: pollNanos) } catch { return nil }
        }
    }

    /// Detaches the tap; call once the response is over, however it ended. Repeatable.
    public func finish() {
        let first = state.withLock { s in
            defer { s.detached = true }
            return !s.detached
        }
        if first { detach() }
    }

    private func end(_ reason: String) -> [UInt8] {
        let sent = state.withLock { s in
            s.ended = true
            return s.sent
        }
        var out = ByteBuffer()
        appendCounters(type: "end", reason: reason, sent: sent, to: &out)
        return out.bytes
    }

    private func appendEvent(_ event: TapEvent, to out: inout ByteBuffer) {
        out.append(#"{"type":"event","component":"#)
        JSONEscaping.appendString(subscription.component, to: &out)
        out.append(#","port":"#)
        if let port = event.port { JSONEscaping.appendString(port, to: &out) } else { out.append("null") }
        out.append(#","kind":""#)
        out.append(event.kind.rawValue)
        out.append(#"","event":"#)
        out.append(contentsOf: event.json)
        out.append("}\n")
    }

    private func appendCounters(type: String, reason: String?, sent: Int, to out: inout ByteBuffer) {
        out.append(#"{"type":""#)
        out.append(type)
        out.append("\"")
        if let reason {
            out.append(#","reason":"#)
            JSONEscaping.appendString(reason, to: &out)
        }
        out.append(#","component":"#)
        JSONEscaping.appendString(subscription.component, to: &out)
        out.append(#","seen":"#)
        out.appendDecimal(Int64(subscription.seen))
        out.append(#","sent":"#)
        out.appendDecimal(Int64(sent))
        out.append(#","dropped":"#)
        out.appendDecimal(Int64(subscription.dropped))
        out.append("}\n")
    }
}
