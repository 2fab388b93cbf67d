import Foundation
import TrailwatchCore

/// The pipeline's own counters in Prometheus' text exposition format.
public enum PrometheusExposition {
    static func escape(_ value: String) -> String {
        var out = ""
        for c in value {
            switch c {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(c)
            }
        }
        return out
    }

    static func metricName(_ gauge: String) -> String {
        "trailwatch_" + String(gauge.map { $0.isLetter || $0.isNumber || $0 == "_" ? $0 : "_" })
    }

    public static func render(_ metrics: [ComponentMetrics], reloads: ReloadStatus? = nil) -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ value: (ComponentMetrics) -> Double?) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for m in metrics {
                guard let v = value(m) else { continue }
                out += "\(name){component=\"\(escape(m.id))\",type=\"\(escape(m.type))\",kind=\"\(escape(m.section))\"} \(format(v))\n"
            }
        }
        family("trailwatch_events_in_total", "counter", "Events a component received.") { $0.section == "source" ? nil : Double($0.eventsIn) }
        family("trailwatch_events_out_total", "counter", "Events a component emitted or wrote.") { Double($0.eventsOut) }
        family("trailwatch_bytes_in_total", "counter", "Bytes a component received.") { $0.section == "source" ? nil : Double($0.bytesIn) }
        family("trailwatch_bytes_out_total", "counter", "Bytes a component emitted or wrote.") { Double($0.bytesOut) }
        family("trailwatch_errors_total", "counter", "Errors a component reported.") { Double($0.errors) }
        family("trailwatch_component_seconds", "gauge", "Seconds since the component started.") { $0.seconds }
        let gauges = Set(metrics.flatMap { $0.gaugeValues.keys }).sorted()
        for gauge in gauges {
            family(metricName(gauge), "gauge", "Component gauge \(gauge).") { $0.gaugeValues[gauge] }
        }
        // Metric-filter metrics: the newest closed period of each, one series per statistic.
        let data = metrics.flatMap { m in m.datapoints.map { (m, $0) } }
            .sorted { ($0.1.metric.namespace, $0.1.metric.name, "\($0.1.metric.dimensions)") < ($1.1.metric.namespace, $1.1.metric.name, "\($1.1.metric.dimensions)") }
        if !data.isEmpty {
            let statistics: [(name: String, help: String, value: (MetricDatum) -> Double)] = [
                ("sum", "Sum", \.sum), ("sample_count", "SampleCount", \.sampleCount), ("minimum", "Minimum", \.minimum), ("maximum", "Maximum", \.maximum),
            ]
            for (stat, help, value) in statistics {
                let name = "trailwatch_metric_\(stat)"
                out += "# HELP \(name) \(help) of the newest closed period of each metric a stage emits (metric filters).\n# TYPE \(name) gauge\n"
                for (m, d) in data {
                    var labels = "component=\"\(escape(m.id))\",namespace=\"\(escape(d.metric.namespace))\",metric_name=\"\(escape(d.metric.name))\",period=\"\(d.period)\""
                    for dimension in d.metric.dimensions { labels += ",dim_\(labelName(dimension.name))=\"\(escape(dimension.value))\"" }
                    out += "\(name){\(labels)} \(format(value(d)))\n"
                }
            }
        }
        if let reloads { out += render(reloads) }
        return out
    }

    /// Configuration reloads (SIGHUP, `--watch-config`), named after Prometheus' own.
    static func render(_ reloads: ReloadStatus) -> String {
        let label = "pipeline=\"\(escape(reloads.file))\""
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ value: Double, extra: String = "") {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n\(name){\(label)\(extra)} \(format(value))\n"
        }
        family("trailwatch_config_reloads_total", "counter", "Reloads of the pipeline file applied.", Double(reloads.succeeded))
        family("trailwatch_config_reload_failures_total", "counter", "Reloads refused because the new file had errors.", Double(reloads.failed))
        family("trailwatch_config_last_reload_successful", "gauge", "Whether the newest reload was applied (1 also before any reload).",
               reloads.lastError == nil ? 1 : 0)
        family("trailwatch_config_last_reload_timestamp_seconds", "gauge", "When the newest reload was attempted (0: never).",
               Double(reloads.lastAttemptMillis) / 1000)
        if let error = reloads.lastError {
            let first = error.split(separator: "\n").first.map(String.init) ?? error
            family("trailwatch_config_last_reload_error", "gauge", "The newest refused reload's first error.", 1,
                   extra: ",error=\"\(escape(first))\"")
        }
        return out
    }

    /// A dimension name as a Prometheus label name (letters, digits and underscores).
    static func labelName(_ name: String) -> String {
        String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
    }

    static func format(_ v: Double) -> String {
        if v.isNaN { return "NaN" }
        if v.isInfinite { return v > 0 ? "+Inf" : "-Inf" }
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        return String(v)
    }

    /// `/health`: per-component status; healthy when no component failed.
    public static func health(_ metrics: [ComponentMetrics], failures: [String], reloads: ReloadStatus? = nil) -> (ok: Bool, body: String) {
        let failed = Set(failures.compactMap { $0.split(separator: ":").first.map(String.init) })
        var components: [[String: Any]] = []
        for m in metrics {
            components.append(["id": m.id, "type": m.type, "kind": m.section, "status": failed.contains(m.id) ? "failed" : "running",
                               "errors": m.errors, "eventsOut": m.eventsOut])
        }
        let ok = failed.isEmpty
        var body: [String: Any] = ["status": ok ? "ok" : "failed", "components": components]
        if let reloads {
            // A refused reload leaves the old pipeline running: reported, not unhealthy.
            var reload: [String: Any] = ["succeeded": reloads.succeeded, "failed": reloads.failed]
            if let error = reloads.lastError { reload["lastError"] = error }
            body["reloads"] = reload
        }
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
        return (ok, String(decoding: data, as: UTF8.self))
    }
}
