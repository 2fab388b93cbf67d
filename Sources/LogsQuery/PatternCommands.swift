import PatternMining

/// Columns of the `pattern`, `diff` and `anomaly` commands.
public enum PatternColumns {
    public static let pattern = ["@pattern", "@ratio", "@sampleCount", "@severityLabel", "@patternId", "@logSamples"]
    public static let diff = ["@pattern", "@changeType", "@sampleCount", "@previousSampleCount", "@ratio", "@previousRatio",
                              "@change", "@severityLabel", "@patternId"]
    public static let anomaly = ["@pattern", "@anomalyType", "@priority", "@description", "@anomalyStart", "@anomalyEnd",
                                 "@peakCount", "@usualCount", "@sampleCount", "@severityLabel", "@patternId", "@logSamples"]
}

/// The state of one `pattern` command: every row's text goes through the template miner (PatternMining's
/// ``TemplateMiner``, its default configuration); counts, a few samples and, for `anomaly`, counts per
/// time bucket are kept per template. Memory is bounded by the miner's template cap.
final class PatternState {
    struct Entry {
        var count = 0
        var previous = 0
        var samples: [String] = []
        var buckets: [Int64: Int] = [:]
    }

    static let maximumSamples = 3
    static let maximumSampleBytes = 1024
    /// Buckets of the anomaly series kept per template before they are merged pairwise.
    static let maximumBuckets: Int64 = 240

    private var miner = TemplateMiner()
    private var entries: [UInt64: Entry] = [:]
    private var total = 0
    private var previousTotal = 0
    private var bucketWidth: Int64 = 60_000
    private var firstBucket = Int64.max
    private var lastBucket = Int64.min

    func add(_ value: QueryValue, time: QueryValue, previous: Bool) {
        guard let text = value.stringValue else { return }
        let mined = miner.add(text)
        var entry = entries[mined.templateID] ?? Entry()
        entries[mined.templateID] = nil
        if previous {
            entry.previous += 1
            previousTotal += 1
        } else {
            entry.count += 1
            total += 1
            if entry.samples.count < PatternState.maximumSamples {
                entry.samples.append(text.utf8.count <= PatternState.maximumSampleBytes ? text
                                     : String(decoding: Array(text.utf8.prefix(PatternState.maximumSampleBytes)), as: UTF8.self))
            }
            if case .timestamp(let t) = time { addToBucket(&entry, t) }
        }
        entries[mined.templateID] = entry
        if entries.count > 2 * miner.configuration.maxTemplates {
            entries = entries.filter { miner.template(id: $0.key) != nil }
        }
    }

    private func addToBucket(_ entry: inout Entry, _ t: Int64) {
        let bucket = QueryTime.floorDiv(t, bucketWidth)
        entry.buckets[bucket, default: 0] += 1
        firstBucket = min(firstBucket, bucket)
        lastBucket = max(lastBucket, bucket)
        if lastBucket - firstBucket >= PatternState.maximumBuckets {
            // Coarser buckets: merge pairs everywhere (the entry being added too).
            bucketWidth *= 2
            entry.buckets = PatternState.merged(entry.buckets)
            for key in Array(entries.keys) { entries[key]!.buckets = PatternState.merged(entries[key]!.buckets) }
            firstBucket = QueryTime.floorDiv(firstBucket, 2)
            lastBucket = QueryTime.floorDiv(lastBucket, 2)
        }
    }

    private static func merged(_ buckets: [Int64: Int]) -> [Int64: Int] {
        var out: [Int64: Int] = [:]
        for (k, v) in buckets { out[QueryTime.floorDiv(k, 2), default: 0] += v }
        return out
    }

    private func text(of id: UInt64) -> String { miner.template(id: id)?.text ?? "" }

    /// The entries by the template each id stands for now: the miner merges a family of templates that differ only
    /// in a variable position into one, and the rows show the final groups.
    private func resolvedEntries() -> [UInt64: Entry] {
        var out: [UInt64: Entry] = [:]
        out.reserveCapacity(entries.count)
        for (id, entry) in entries {
            let final = miner.resolve(id)
            guard var into = out[final] else { out[final] = entry; continue }
            into.count += entry.count
            into.previous += entry.previous
            into.samples += entry.samples.prefix(max(PatternState.maximumSamples - into.samples.count, 0))
            for (bucket, n) in entry.buckets { into.buckets[bucket, default: 0] += n }
            out[final] = into
        }
        return out
    }

    private func ratio(_ n: Int, _ of: Int) -> QueryValue { of == 0 ? .null : .number((Double(n) / Double(of) * 1e6).rounded() / 1e6) }

    private func samples(_ entry: Entry) -> QueryValue {
        .json(.array(entry.samples.map { .string($0) }))
    }

    /// `pattern`: one row per template, most frequent first.
    func patternRows() -> [[String: QueryValue]] {
        resolvedEntries().filter { $0.value.count > 0 }.map { id, entry in (id, entry, text(of: id)) }
            .sorted { $0.1.count != $1.1.count ? $0.1.count > $1.1.count : Evaluator.compareBytes($0.2, $1.2) < 0 }
            .map { id, entry, pattern in
                ["@pattern": .string(pattern), "@ratio": ratio(entry.count, total), "@sampleCount": .number(Double(entry.count)),
                 "@severityLabel": .string(Severity.label(pattern, entry.samples.first)),
                 "@patternId": .string(TemplateMiner.idString(id)), "@logSamples": samples(entry)]
            }
    }

    /// `diff`: every template of either range with its count in both and how it changed.
    func diffRows() -> [[String: QueryValue]] {
        resolvedEntries().filter { $0.value.count > 0 || $0.value.previous > 0 }.map { id, entry in (id, entry, text(of: id)) }
            .sorted { a, b in
                let da = abs(a.1.count - a.1.previous), db = abs(b.1.count - b.1.previous)
                return da != db ? da > db : Evaluator.compareBytes(a.2, b.2) < 0
            }
            .map { id, entry, pattern in
                let change: String
                if entry.previous == 0 {
                    change = "new"
                } else if entry.count == 0 {
                    change = "gone"
                } else {
                    let now = Double(entry.count) / Double(max(total, 1)), before = Double(entry.previous) / Double(max(previousTotal, 1))
                    change = now >= before * 1.5 ? "increased" : now <= before / 1.5 ? "decreased" : "unchanged"
                }
                let percent: QueryValue = entry.previous == 0 ? .null
                    : .number((Double(entry.count - entry.previous) / Double(entry.previous) * 1000).rounded() / 10)
                return ["@pattern": .string(pattern), "@changeType": .string(change), "@sampleCount": .number(Double(entry.count)),
                        "@previousSampleCount": .number(Double(entry.previous)), "@ratio": ratio(entry.count, total),
                        "@previousRatio": ratio(entry.previous, previousTotal), "@change": percent,
                        "@severityLabel": .string(Severity.label(pattern, entry.samples.first)),
                        "@patternId": .string(TemplateMiner.idString(id))]
            }
    }

    /// `anomaly`: templates whose count per bucket spikes far above their own median (median + 4 robust
    /// standard deviations, at least 5 events), or that first appear after the first quarter of the range.
    func anomalyRows(range: Range<Int64>?) -> [[String: QueryValue]] {
        guard total > 0 else { return [] }
        let first = range.map { QueryTime.floorDiv($0.lowerBound, bucketWidth) } ?? firstBucket
        let last = range.map { QueryTime.floorDiv(max($0.lowerBound, $0.upperBound - 1), bucketWidth) } ?? lastBucket
        let count = Int(min(max(last - first + 1, 1), 10_000))
        var rows: [(priority: Int, peak: Int, row: [String: QueryValue])] = []
        for (id, entry) in resolvedEntries() where entry.count > 0 {
            var series = [Int](repeating: 0, count: count)
            for (bucket, n) in entry.buckets where bucket >= first && bucket - first < Int64(count) { series[Int(bucket - first)] += n }
            let sortedSeries = series.sorted()
            let median = Double(sortedSeries[count / 2])
            let deviations = series.map { abs(Double($0) - median) }.sorted()
            let spread = max(1.4826 * deviations[count / 2], max(median, 1).squareRoot())
            let threshold = median + 4 * spread
            let firstSeen = series.firstIndex { $0 > 0 } ?? 0
            let spikes = series.indices.filter { Double(series[$0]) >= threshold && series[$0] >= 5 }
            let pattern = text(of: id)
            let severity = Severity.label(pattern, entry.samples.first)
            let kind: String
            let window: [Int]
            if count >= 4, firstSeen >= count / 4, entry.count >= 3 {
                kind = "new"
                window = [firstSeen, series.lastIndex { $0 > 0 } ?? firstSeen]
            } else if count >= 4, let a = spikes.first, let b = spikes.last {
                kind = "spike"
                window = [a, b]
            } else {
                continue
            }
            let peak = series[window[0]...window[1]].max() ?? 0
            let start = (first + Int64(window[0])) * bucketWidth, end = (first + Int64(window[1]) + 1) * bucketWidth
            let usual = median
            var priority = peak >= 10 * Int(max(usual, 1)) ? 2 : peak >= 4 * Int(max(usual, 1)) || kind == "new" ? 1 : 0
            if severity == "Error" { priority = 2 }
            let minutes = bucketWidth / 60_000
            let description = kind == "new"
                ? "new pattern: first seen \(QueryTime.format(milliseconds: start)), \(entry.count) events"
                : "\(peak) events per \(minutes) min at its peak, against a usual \(QueryValue.formatNumber(usual))"
            rows.append((priority, peak, [
                "@pattern": .string(pattern), "@anomalyType": .string(kind),
                "@priority": .string(["LOW", "MEDIUM", "HIGH"][priority]), "@description": .string(description),
                "@anomalyStart": QueryTime.checkedTimestamp(start), "@anomalyEnd": QueryTime.checkedTimestamp(end),
                "@peakCount": .number(Double(peak)), "@usualCount": .number(usual), "@sampleCount": .number(Double(entry.count)),
                "@severityLabel": .string(severity), "@patternId": .string(TemplateMiner.idString(id)), "@logSamples": samples(entry),
            ]))
        }
        return rows.sorted { a, b in
            if a.priority != b.priority { return a.priority > b.priority }
            if a.peak != b.peak { return a.peak > b.peak }
            return Evaluator.compareBytes(a.row["@pattern"]?.stringValue ?? "", b.row["@pattern"]?.stringValue ?? "") < 0
        }.map(\.row)
    }
}

/// A severity hint for a pattern: the first log-level word in its template (or, when the template
/// masked it, its first sample); failing that, words such as "exception" or "failed" mean Error.
enum Severity {
    static let levels: [String: String] = [
        "FATAL": "Error", "CRITICAL": "Error", "CRIT": "Error", "EMERG": "Error", "ALERT": "Error", "PANIC": "Error",
        "SEVERE": "Error", "ERROR": "Error", "ERR": "Error",
        "WARN": "Warn", "WARNING": "Warn",
        "INFO": "Info", "NOTICE": "Info",
        "DEBUG": "Debug", "TRACE": "Debug", "FINE": "Debug",
    ]
    static let errorWords: Set<String> = ["EXCEPTION", "FAILED", "FAILURE", "FAIL", "TIMEOUT", "REFUSED", "DENIED"]

    static func label(_ template: String, _ sample: String?) -> String {
        for text in [template, sample ?? ""] {
            for word in words(text) { if let level = levels[word] { return level } }
        }
        for word in words(template) where errorWords.contains(word) { return "Error" }
        return "Unknown"
    }

    private static func words(_ text: String) -> [String] {
        text.utf8.split { !(($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122)) }.map { String(decoding: $0, as: UTF8.self).uppercased() }
    }
}
