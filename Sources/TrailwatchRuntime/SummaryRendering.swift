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
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data = (try? encoder.encode(Body(seconds: seconds, components: components, failures: failures))) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func bytes(_ n: Int) -> String {
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
