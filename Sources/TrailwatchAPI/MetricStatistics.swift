import AWSWire
import TrailwatchStore

/// A CloudWatch statistic: the five basic ones and the extended, sample-based ones
/// (`p99`, `p99.9`, `tm90`, `TM(10%:90%)`, `IQM`, `wm95`, `tc90`, `ts90`).
enum MetricStatistic: Equatable {
    case sampleCount, sum, average, minimum, maximum
    case percentile(Double)
    /// Trimmed mean/count/sum and winsorized mean between two percentiles.
    case trimmedMean(Double, Double), trimmedCount(Double, Double), trimmedSum(Double, Double), winsorizedMean(Double, Double)

    init?(_ text: String) {
        switch text {
        case "SampleCount": self = .sampleCount
        case "Sum": self = .sum
        case "Average": self = .average
        case "Minimum": self = .minimum
        case "Maximum": self = .maximum
        case "IQM", "iqm": self = .trimmedMean(25, 75)
        default:
            let lower = text.lowercased()
            if lower.hasPrefix("p"), let p = Double(lower.dropFirst()), p >= 0, p <= 100 {
                self = .percentile(p)
                return
            }
            guard lower.count > 2 else { return nil }
            let kind = lower.prefix(2)
            let rest = lower.dropFirst(2)
            let bounds: (Double, Double)
            if let upper = Double(rest), upper > 0, upper <= 100 {
                bounds = (0, upper)
            } else if rest.hasPrefix("("), rest.hasSuffix(")") {
                let inner = rest.dropFirst().dropLast().split(separator: ":", omittingEmptySubsequences: false)
                guard inner.count == 2, inner[0].hasSuffix("%"), inner[1].hasSuffix("%"),
                      let a = Double(inner[0].dropLast()), let b = Double(inner[1].dropLast()), a >= 0, b <= 100, a < b else { return nil }
                bounds = (a, b)
            } else {
                return nil
            }
            switch kind {
            case "tm": self = .trimmedMean(bounds.0, bounds.1)
            case "tc": self = .trimmedCount(bounds.0, bounds.1)
            case "ts": self = .trimmedSum(bounds.0, bounds.1)
            case "wm": self = .winsorizedMean(bounds.0, bounds.1)
            default: return nil
            }
        }
    }

    var isBasic: Bool {
        switch self {
        case .sampleCount, .sum, .average, .minimum, .maximum: true
        default: false
        }
    }
}

/// The datapoints of one period, merged: statistic sets, plus the samples behind them while
/// every row is a single value (a row with min == max), which makes the sample statistics exact.
struct PeriodAggregate {
    var count = 0.0
    var sum = 0.0
    var minimum = Double.infinity
    var maximum = -Double.infinity
    /// (value, weight) while exact.
    var samples: [(Double, Double)] = []
    var exact = true

    mutating func add(_ d: StoredDatapoint, keepSamples: Bool) {
        count += d.sampleCount
        sum += d.sum
        minimum = min(minimum, d.minimum)
        maximum = max(maximum, d.maximum)
        guard keepSamples, exact else { return }
        if d.minimum == d.maximum { samples.append((d.minimum, d.sampleCount)) } else { exact = false; samples = [] }
    }

    /// The statistic's value; nil when it has none (no samples, or percentiles over statistic sets
    /// that hold several values, which CloudWatch cannot answer either).
    func value(_ statistic: MetricStatistic) -> Double? {
        guard count > 0 else { return nil }
        switch statistic {
        case .sampleCount: return count
        case .sum: return sum
        case .average: return sum / count
        case .minimum: return minimum
        case .maximum: return maximum
        case .percentile(let p):
            if p == 0 { return minimum }
            if p == 100 { return maximum }
            guard exact else { return nil }
            let sorted = samples.sorted { $0.0 < $1.0 }
            let rank = (p / 100 * count).rounded(.up)
            var seen = 0.0
            for (value, weight) in sorted {
                seen += weight
                if seen >= rank { return value }
            }
            return sorted.last?.0
        case .trimmedMean(let a, let b), .trimmedCount(let a, let b), .trimmedSum(let a, let b), .winsorizedMean(let a, let b):
            guard exact else { return nil }
            let sorted = samples.sorted { $0.0 < $1.0 }
            let low = a / 100 * count, high = b / 100 * count
            var seen = 0.0, n = 0.0, total = 0.0
            var lowValue: Double?, highValue: Double?
            for (value, weight) in sorted {
                // The part of this value's weight inside (low, high].
                let from = max(seen, low), to = min(seen + weight, high)
                if to > from { n += to - from; total += value * (to - from); if lowValue == nil { lowValue = value }; highValue = value }
                seen += weight
            }
            switch statistic {
            case .trimmedCount: return n
            case .trimmedSum: return total
            case .trimmedMean: return n > 0 ? total / n : nil
            default:
                // Winsorized: values below/above the bounds count as the bounds.
                guard let lo = lowValue, let hi = highValue else { return nil }
                var winsorized = 0.0
                for (value, weight) in sorted { winsorized += min(max(value, lo), hi) * weight }
                return winsorized / count
            }
        }
    }
}

/// A time series: period starts (seconds) to values, in ascending time.
struct Series {
    var points: [(time: Int64, value: Double)]

    static func aggregate(_ rows: [StoredDatapoint], period: Int64, statistic: MetricStatistic) -> Series {
        var buckets: [Int64: PeriodAggregate] = [:]
        let keep = !statistic.isBasic
        for row in rows {
            let seconds = row.timestamp >= 0 ? row.timestamp / 1000 : (row.timestamp - 999) / 1000
            let start = seconds >= 0 ? seconds / period * period : (seconds - period + 1) / period * period
            buckets[start, default: PeriodAggregate()].add(row, keepSamples: keep)
        }
        return Series(points: buckets.keys.sorted().compactMap { t in buckets[t]!.value(statistic).map { (t, $0) } })
    }
}
