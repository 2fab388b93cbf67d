import Foundation
import TrailwatchCore

/// One notification derived from a detector event (alarm state change, insight, pattern event):
/// what it is about, which state it reports, and the event itself.
struct Notification: Codable, Equatable, Sendable {
    var kind: String
    /// Alarm name, insight key or template id.
    var subject: String
    /// ALARM/OK/INSUFFICIENT_DATA for alarms, Start/End for insights, the pattern event type.
    var state: String
    var previousState: String?
    /// Whether this reports that something cleared (an alarm back to OK, an insight's End).
    var clears: Bool
    /// Event time (ms).
    var time: Int64
    var summary: String
    var dedupeKey: String
    /// The detector event's JSON.
    var event: String
    /// The matched event's id (rule matches), for dedupe keys: `{id}`.
    var id: String?

    /// The dedupe key used when the notifier sets none: a rule notifies once per matched event,
    /// other kinds once per subject, state and time.
    var defaultDedupeKey: String { kind == EventKind.rule.rawValue ? "{kind}/{subject}/{id}" : "{kind}/{subject}/{state}/{time}" }

    init(_ event: StructuredEvent) {
        kind = event.kind.rawValue
        subject = event.key
        time = event.timestamp
        self.event = String(decoding: event.body, as: UTF8.self)
        let object = (try? JSONSerialization.jsonObject(with: Data(event.body))) as? [String: Any] ?? [:]
        switch event.kind {
        case .alarm:
            let current = object["state"] as? [String: Any]
            state = current?["value"] as? String ?? "ALARM"
            previousState = (object["previousState"] as? [String: Any])?["value"] as? String
            clears = state == "OK"
            let reason = current?["reason"] as? String
            summary = "\(subject) is \(state)" + (previousState.map { " (was \($0))" } ?? "") + (reason.map { ": \($0)" } ?? "")
        case .insight:
            let details = object["insightDetails"] as? [String: Any]
            state = details?["state"] as? String ?? "Start"
            previousState = nil
            clears = state == "End"
            let type = details?["insightType"] as? String ?? "Insight"
            let name = details?["eventName"] as? String ?? subject
            summary = "\(type) \(state) for \(name)"
        case .rule:
            // A rule match: the target input is the news; a text input (a template) is the summary.
            state = "MATCHED"
            previousState = nil
            clears = false
            id = object["id"] as? String
            if let text = object["input"] as? String {
                summary = text
            } else {
                let input = object["input"] as? [String: Any]
                let detail = input?["detail"] as? [String: Any]
                let what = (detail?["eventName"] as? String) ?? (input?["detail-type"] as? String) ?? "an event"
                summary = "rule \(subject) matched \(what)"
            }
        default:
            state = object["kind"] as? String ?? event.kind.rawValue
            previousState = nil
            clears = false
            let template = object["template"] as? String ?? subject
            summary = "\(state): \(template)"
        }
        dedupeKey = ""
    }

    /// Fills a `{kind}`, `{subject}`, `{state}`, `{time}` template (the dedupe key, command arguments).
    func expand(_ template: String) -> String {
        var out = ""
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            guard let close = rest[open...].firstIndex(of: "}") else { break }
            let name = rest[rest.index(after: open)..<close]
            switch name {
            case "kind": out += kind
            case "subject": out += subject
            case "state": out += state
            case "time": out += Timestamps.iso8601(time)
            case "summary": out += summary
            case "id": out += id ?? ""
            default: out += rest[open...close]
            }
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }

    /// The documented webhook body: the notification's fields plus the event itself.
    func jsonBody() -> Data {
        var object: [String: Any] = [
            "source": "trailwatch", "kind": kind, "subject": subject, "state": state, "clears": clears,
            "time": Timestamps.iso8601(time), "summary": summary, "dedupeKey": dedupeKey,
        ]
        if let previousState { object["previousState"] = previousState }
        object["event"] = (try? JSONSerialization.jsonObject(with: Data(event.utf8))) ?? event
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    }

    /// Slack's incoming-webhook body.
    func slackBody() -> Data {
        let icon = clears ? ":white_check_mark:" : state == "INSUFFICIENT_DATA" ? ":grey_question:" : ":rotating_light:"
        let text = "\(icon) *\(Self.slackEscaped(subject))* \(Self.slackEscaped(state)) at \(Timestamps.iso8601(time))\n\(Self.slackEscaped(summary))"
        return (try? JSONSerialization.data(withJSONObject: ["text": text], options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    }

    /// Slack treats `&`, `<` and `>` as markup.
    static func slackEscaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// One line for people (console channel).
    var line: String { "\(Timestamps.iso8601(time)) \(kind) \(summary)" }
}
