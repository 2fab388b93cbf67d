/// CloudWatch alarm evaluation: comparison operators, M-out-of-N and TreatMissingData, as the
/// CloudWatch documentation describes them (see the README's alarm notes). Pure: no clocks, no I/O.
public enum AlarmState: String, Sendable, Codable, CaseIterable {
    case ok = "OK"
    case alarm = "ALARM"
    case insufficientData = "INSUFFICIENT_DATA"
}

public enum ComparisonOperator: String, Sendable, Codable, CaseIterable {
    case greaterThanOrEqualToThreshold = "GreaterThanOrEqualToThreshold"
    case greaterThanThreshold = "GreaterThanThreshold"
    case lessThanThreshold = "LessThanThreshold"
    case lessThanOrEqualToThreshold = "LessThanOrEqualToThreshold"
    case lessThanLowerOrGreaterThanUpperThreshold = "LessThanLowerOrGreaterThanUpperThreshold"
    case lessThanLowerThreshold = "LessThanLowerThreshold"
    case greaterThanUpperThreshold = "GreaterThanUpperThreshold"

    /// Whether the operator compares against an anomaly band rather than a fixed threshold.
    public var usesBand: Bool {
        switch self {
        case .lessThanLowerOrGreaterThanUpperThreshold, .lessThanLowerThreshold, .greaterThanUpperThreshold: true
        default: false
        }
    }

    /// Whether `value` breaches: against `threshold`, or against the band (`lower`, `upper`) for the
    /// band operators. A value exactly on a band edge does not breach.
    public func breaches(_ value: Double, threshold: Double = 0, lower: Double = -.infinity, upper: Double = .infinity) -> Bool {
        switch self {
        case .greaterThanOrEqualToThreshold: value >= threshold
        case .greaterThanThreshold: value > threshold
        case .lessThanThreshold: value < threshold
        case .lessThanOrEqualToThreshold: value <= threshold
        case .lessThanLowerOrGreaterThanUpperThreshold: value < lower || value > upper
        case .lessThanLowerThreshold: value < lower
        case .greaterThanUpperThreshold: value > upper
        }
    }
}

public enum TreatMissingData: String, Sendable, Codable, CaseIterable {
    case missing, notBreaching, breaching, ignore
}

/// One evaluation of an alarm over its evaluation range.
public enum AlarmEvaluation {
    /// The state an alarm moves to.
    ///
    /// - Parameters:
    ///   - range: the evaluation range, oldest first: `true` breaching, `false` not breaching,
    ///     `nil` missing. It is usually `evaluationPeriods + 2` periods long.
    ///   - datapointsToAlarm: M.
    ///   - evaluationPeriods: N.
    ///   - current: the alarm's state before this evaluation (kept when the rules say "retain").
    public static func state(range: [Bool?], datapointsToAlarm m: Int, evaluationPeriods n: Int,
                             treatMissingData treat: TreatMissingData, current: AlarmState) -> AlarmState {
        let real = range.compactMap { $0 }
        // 1. Enough real points: the N most recent decide; missing data is irrelevant.
        if real.count >= n {
            return real.suffix(n).filter { $0 }.count >= m ? .alarm : .ok
        }
        // 3. No real point at all.
        if real.isEmpty {
            switch treat {
            case .missing: return .insufficientData
            case .ignore: return current
            case .breaching: return .alarm
            case .notBreaching: return .ok
            }
        }
        // 2. Some real points: all of them, plus fillers for what is missing among the N.
        let breaching = real.filter { $0 }.count
        let fillers = n - real.count
        switch treat {
        case .breaching:
            return breaching + fillers >= m ? .alarm : .ok
        case .notBreaching:
            return breaching >= m ? .alarm : .ok
        case .ignore:
            if breaching >= m { return .alarm }
            return real.contains(false) ? .ok : current
        case .missing:
            if breaching >= m || prematureAlarm(range, m) { return .alarm }
            return real.contains(false) ? .ok : current
        }
    }

    /// The "premature alarm" rule for `missing`: every real point in the range breaches and the
    /// oldest of them is at least M periods old (the newest period has age 1).
    static func prematureAlarm(_ range: [Bool?], _ m: Int) -> Bool {
        guard let oldest = range.firstIndex(where: { $0 != nil }), !range.contains(false) else { return false }
        return range.count - oldest >= m
    }
}
