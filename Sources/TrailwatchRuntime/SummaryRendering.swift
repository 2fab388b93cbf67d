import Foundation

extension RunSummary {
    /// A one-screen table: events and bytes in/out per component, seconds, errors.
    public func renderTable() -> String {
        var rows: [[String]] = [["COMPONENT", "TYPE", "EVENTS IN", "EVENTS OUT", "BYTES IN", "BYTES OUT", "SECONDS", "ERRORS"]]
        for c in components {
            rows.append([c.id, "\(c.section) \(c.type)",
                         c.section == "source" ? "-" : "\(c.eventsIn)",
                         "\(c.eventsOut)",
                         c.section == "source" ? "-" : Self.bytes(c.bytesIn),
                         Self.bytes(c.bytesOut), String(format: "%.2f", c.seconds), "\(c.errors)"])
        }
        var text = TextTable.render(rows, rightAligned: Set(2...7))
        text += String(format: "total %.2f s", seconds)
        if !failures.isEmpty { text += "\nfailures:\n" + failures.map { "  " + $0 }.joined(separator: "\n") }
        let damaged = components.filter { $0.damaged > 0 }
        if !damaged.isEmpty {
            text += "\ndamaged input or failed writes: " + damaged.map { "\($0.id) (\($0.damaged))" }.joined(separator: ", ")
        }
        return text + "\n"
    }

    public func renderJSON() -> String {
        struct Body: Encodable {
            var seconds: Double
            var components: [RunSummary.Component]
            var failures: [String]
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(Body(seconds: seconds, components: components, failures: failures))) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    public static func bytes(_ n: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(n)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit])
    }
}

/// Plain-text tables for people.
public enum TextTable {
    public static func render(_ rows: [[String]], rightAligned: Set<Int> = []) -> String {
        guard let first = rows.first else { return "" }
        var widths = Array(repeating: 0, count: first.count)
        for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
        var out = ""
        for row in rows {
            var line = ""
            for (i, cell) in row.enumerated() where i < widths.count {
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                line += rightAligned.contains(i) ? pad + cell : cell + pad
                if i < row.count - 1 { line += "  " }
            }
            while line.hasSuffix(" ") { line.removeLast() }
            out += line + "\n"
        }
        return out
    }
}

/// The one-line progress report `run --status-every` prints, and the drain reports after a stop.
public struct StatusLine {
    private var previous: [String: (events: Int, nanos: Int64)] = [:]

    public init() {}

    /// `app: 1.2M out (310k/s) lag 0 B ckpt 0.4s | out: 1.2M in (309k/s) 0 errors`: events per
    /// component since the start and their rate since the last line, with notable gauges.
    public mutating func render(_ metrics: [ComponentMetrics], reloads: ReloadStatus? = nil) -> String {
        let now = MonotonicClock.nanos()
        var parts: [String] = []
        for m in metrics {
            let events = m.section == "source" ? m.eventsOut : m.eventsIn
            let rate: String
            if let last = previous[m.id], now > last.nanos {
                rate = " (" + Self.count(Double(events - last.events) / (Double(now - last.nanos) / 1e9)) + "/s)"
            } else {
                rate = ""
            }
            previous[m.id] = (events, now)
            var text = "\(m.id): \(Self.count(Double(events))) \(m.section == "source" ? "out" : "in")\(rate)"
            let gauges = m.gaugeValues
            if let lag = gauges["file_lag_bytes"] { text += " lag " + RunSummary.bytes(Int(lag)) }
            if let age = gauges["checkpoint_age_seconds"] { text += String(format: " checkpoint %.1fs", age) }
            if let dropped = gauges["dropped_events"], dropped > 0 { text += " dropped \(Self.count(dropped))" }
            if m.errors > 0 { text += " \(m.errors) errors" }
            parts.append(text)
        }
        if let reloads, reloads.attempts > 0 {
            var text = "reloads: \(reloads.succeeded)"
            if reloads.failed > 0 { text += ", \(reloads.failed) refused" }
            if let error = reloads.lastError { text += " (last: " + (error.split(separator: "\n").first.map(String.init) ?? error) + ")" }
            parts.append(text)
        }
        return parts.joined(separator: " | ")
    }

    static func count(_ value: Double) -> String {
        switch value {
        case 1e9...: String(format: "%.1fG", value / 1e9)
        case 1e6...: String(format: "%.1fM", value / 1e6)
        case 1e4...: String(format: "%.0fk", value / 1e3)
        default: String(format: "%.0f", value)
        }
    }
}
