import Foundation
import TrailwatchCore

/// Server-rendered SVG charts: no script is needed to draw them and nothing is fetched from the network.
enum SVGChart {
    static let width = 720.0
    static let height = 220.0
    static let left = 56.0
    static let right = 12.0
    static let top = 12.0
    static let bottom = 28.0

    struct Point {
        var time: Int64
        var value: Double
    }

    struct Band {
        var time: Int64
        var lower: Double
        var upper: Double
    }

    /// A line chart over [start, end) with an optional anomaly band behind the line.
    static func line(_ points: [Point], band: [Band], start: Int64, end: Int64, label: String) -> String {
        let values = points.map(\.value) + band.flatMap { [$0.lower, $0.upper] }
        var low = values.min() ?? 0
        var high = values.max() ?? 1
        if low > 0 && low < high * 0.5 { low = 0 }
        if high == low { high = low + 1 }
        let pad = (high - low) * 0.05
        high += pad
        if low != 0 { low -= pad }
        func x(_ t: Int64) -> Double { left + (width - left - right) * Double(t - start) / Double(max(1, end - start)) }
        func y(_ v: Double) -> Double { top + (height - top - bottom) * (1 - (v - low) / (high - low)) }
        var svg = "<svg class=\"chart\" role=\"img\" aria-label=\"\(HTML.escape(label))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" width=\"\(Int(width))\" height=\"\(Int(height))\" xmlns=\"http://www.w3.org/2000/svg\" data-points=\"\(points.count)\" data-band-points=\"\(band.count)\">"
        svg += axes(start: start, end: end, low: low, high: high, x: x, y: y)
        if band.count >= 2 {
            let upper = band.map { "\(fmt(x($0.time))),\(fmt(y($0.upper)))" }
            let lower = band.reversed().map { "\(fmt(x($0.time))),\(fmt(y($0.lower)))" }
            svg += "<polygon class=\"band\" points=\"\((upper + lower).joined(separator: " "))\" fill=\"#c9dcf5\" stroke=\"none\"><title>anomaly band</title></polygon>"
        }
        if points.count == 1 {
            svg += "<circle class=\"series\" cx=\"\(fmt(x(points[0].time)))\" cy=\"\(fmt(y(points[0].value)))\" r=\"3\" fill=\"#1f5fbf\"/>"
        } else if !points.isEmpty {
            svg += "<polyline class=\"series\" fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"1.5\" points=\""
                + points.map { "\(fmt(x($0.time))),\(fmt(y($0.value)))" }.joined(separator: " ") + "\"/>"
            // Points outside the band are marked, as CloudWatch colours them.
            let bandAt = Dictionary(band.map { ($0.time, $0) }, uniquingKeysWith: { a, _ in a })
            for p in points {
                guard let b = bandAt[p.time], p.value > b.upper || p.value < b.lower else { continue }
                svg += "<circle class=\"anomaly\" cx=\"\(fmt(x(p.time)))\" cy=\"\(fmt(y(p.value)))\" r=\"3\" fill=\"#d13212\"/>"
            }
        } else {
            svg += "<text x=\"\(fmt(width / 2))\" y=\"\(fmt(height / 2))\" text-anchor=\"middle\" fill=\"#777\">no data in this range</text>"
        }
        return svg + "</svg>"
    }

    /// A state timeline: one coloured segment per state interval.
    static func timeline(_ segments: [(start: Int64, end: Int64, state: String)], start: Int64, end: Int64, label: String) -> String {
        let h = 26.0
        func x(_ t: Int64) -> Double { left + (width - left - right) * Double(max(start, min(end, t)) - start) / Double(max(1, end - start)) }
        var svg = "<svg class=\"timeline\" role=\"img\" aria-label=\"\(HTML.escape(label))\" viewBox=\"0 0 \(Int(width)) \(Int(h + 18))\" width=\"\(Int(width))\" height=\"\(Int(h + 18))\" xmlns=\"http://www.w3.org/2000/svg\" data-segments=\"\(segments.count)\">"
        svg += "<rect x=\"\(fmt(left))\" y=\"2\" width=\"\(fmt(width - left - right))\" height=\"\(fmt(h))\" fill=\"#eee\"/>"
        for s in segments {
            let color = s.state == "ALARM" ? "#d13212" : s.state == "OK" ? "#1d8102" : "#aab7b8"
            svg += "<rect class=\"state\" x=\"\(fmt(x(s.start)))\" y=\"2\" width=\"\(fmt(max(1, x(s.end) - x(s.start))))\" height=\"\(fmt(h))\" fill=\"\(color)\"><title>\(HTML.escape(s.state)) \(Timestamps.iso8601(s.start))</title></rect>"
        }
        svg += timeLabels(start: start, end: end, y: h + 15, x: x)
        return svg + "</svg>"
    }

    /// Events as marks on a time axis, one row per kind.
    static func events(_ marks: [(time: Int64, row: Int, color: String, title: String)], rows: [String], start: Int64, end: Int64) -> String {
        let rowHeight = 22.0
        let h = Double(max(1, rows.count)) * rowHeight
        func x(_ t: Int64) -> Double { left + (width - left - right) * Double(max(start, min(end, t)) - start) / Double(max(1, end - start)) }
        var svg = "<svg class=\"events\" role=\"img\" aria-label=\"events\" viewBox=\"0 0 \(Int(width)) \(Int(h + 18))\" width=\"\(Int(width))\" height=\"\(Int(h + 18))\" xmlns=\"http://www.w3.org/2000/svg\" data-marks=\"\(marks.count)\">"
        for (i, row) in rows.enumerated() {
            let y = Double(i) * rowHeight + rowHeight / 2
            svg += "<line x1=\"\(fmt(left))\" x2=\"\(fmt(width - right))\" y1=\"\(fmt(y))\" y2=\"\(fmt(y))\" stroke=\"#ddd\"/>"
            svg += "<text x=\"\(fmt(left - 4))\" y=\"\(fmt(y + 4))\" text-anchor=\"end\" font-size=\"11\">\(HTML.escape(row))</text>"
        }
        for m in marks {
            let y = Double(m.row) * rowHeight + rowHeight / 2
            svg += "<circle class=\"mark\" cx=\"\(fmt(x(m.time)))\" cy=\"\(fmt(y))\" r=\"5\" fill=\"\(m.color)\"><title>\(HTML.escape(m.title))</title></circle>"
        }
        svg += timeLabels(start: start, end: end, y: h + 15, x: x)
        return svg + "</svg>"
    }

    private static func axes(start: Int64, end: Int64, low: Double, high: Double, x: (Int64) -> Double, y: (Double) -> Double) -> String {
        var svg = "<line x1=\"\(fmt(left))\" x2=\"\(fmt(left))\" y1=\"\(fmt(top))\" y2=\"\(fmt(height - bottom))\" stroke=\"#999\"/>"
        svg += "<line x1=\"\(fmt(left))\" x2=\"\(fmt(width - right))\" y1=\"\(fmt(height - bottom))\" y2=\"\(fmt(height - bottom))\" stroke=\"#999\"/>"
        for fraction in [0.0, 0.5, 1.0] {
            let v = low + (high - low) * fraction
            svg += "<text x=\"\(fmt(left - 4))\" y=\"\(fmt(y(v) + 4))\" text-anchor=\"end\" font-size=\"11\">\(HTML.escape(number(v)))</text>"
            svg += "<line x1=\"\(fmt(left))\" x2=\"\(fmt(width - right))\" y1=\"\(fmt(y(v)))\" y2=\"\(fmt(y(v)))\" stroke=\"#eee\"/>"
        }
        return svg + timeLabels(start: start, end: end, y: height - 8, x: x)
    }

    private static func timeLabels(start: Int64, end: Int64, y: Double, x: (Int64) -> Double) -> String {
        var svg = ""
        for fraction in [0.0, 0.5, 1.0] {
            let t = start + Int64(Double(end - start) * fraction)
            let text = String(Timestamps.iso8601(t).dropFirst(5).prefix(11)).replacingOccurrences(of: "T", with: " ")
            let anchor = fraction == 0 ? "start" : fraction == 1 ? "end" : "middle"
            svg += "<text x=\"\(fmt(x(t)))\" y=\"\(fmt(y))\" text-anchor=\"\(anchor)\" font-size=\"11\">\(text)</text>"
        }
        return svg
    }

    static func fmt(_ v: Double) -> String { String(format: "%.1f", v) }

    static func number(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e12 { return String(Int64(v)) }
        return String(format: abs(v) >= 100 ? "%.0f" : abs(v) >= 1 ? "%.2f" : "%.4g", v)
    }
}

/// HTML text escaping.
enum HTML {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}
