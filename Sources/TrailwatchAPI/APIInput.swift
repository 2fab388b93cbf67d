import AWSWire

/// A request document (any protocol) with typed accessors whose errors are CloudWatch's and
/// CloudTrail's: a missing member is MissingParameter, a wrong value InvalidParameterValue,
/// both naming the member by its path (`MetricData.member.1.Value`), as the query protocol does.
struct APIInput {
    let value: AWSValue
    /// The member's path is `base` plus the list index (1-based) when it is a list member: built
    /// only when an error names it, since PutMetricData walks thousands of members.
    let base: String
    let index: Int
    /// How errors name things: CloudWatch's codes or CloudTrail's.
    let errors: APIErrorStyle

    init(_ value: AWSValue, path: String = "", index: Int = 0, errors: APIErrorStyle = .cloudWatch) {
        self.value = value
        self.base = path
        self.index = index
        self.errors = errors
    }

    var path: String { index > 0 ? base + String(index) : base }

    func name(_ key: String) -> String { path.isEmpty ? key : path + "." + key }

    func invalid(_ key: String, _ message: String) -> AWSError { errors.invalid(name(key), message) }

    func missing(_ key: String) -> AWSError { errors.missing(name(key)) }

    func has(_ key: String) -> Bool { value[key] != nil }

    func string(_ key: String, required: Bool = false, min: Int = 1, max: Int = 1024) throws(AWSError) -> String? {
        guard let raw = value[key] else {
            if required { throw missing(key) }
            return nil
        }
        guard let text = raw.stringValue else { throw invalid(key, "must be a string") }
        guard text.count >= min, text.count <= max else {
            throw invalid(key, "'\(text.prefix(64))' must be between \(min) and \(max) characters long")
        }
        return text
    }

    func required(_ key: String, min: Int = 1, max: Int = 1024) throws(AWSError) -> String {
        try string(key, required: true, min: min, max: max)!
    }

    func double(_ key: String, required: Bool = false) throws(AWSError) -> Double? {
        guard let raw = value[key] else {
            if required { throw missing(key) }
            return nil
        }
        guard let number = raw.doubleValue else { throw invalid(key, "must be a number") }
        return number
    }

    func int(_ key: String, required: Bool = false, min: Int64 = .min, max: Int64 = .max) throws(AWSError) -> Int64? {
        guard let raw = value[key] else {
            if required { throw missing(key) }
            return nil
        }
        guard let number = raw.int64Value else { throw invalid(key, "must be an integer") }
        guard number >= min, number <= max else { throw invalid(key, "\(number) must be between \(min) and \(max)") }
        return number
    }

    func bool(_ key: String) throws(AWSError) -> Bool? {
        guard let raw = value[key] else { return nil }
        guard let flag = raw.boolValue else { throw invalid(key, "must be true or false") }
        return flag
    }

    /// Seconds since the epoch.
    func timestamp(_ key: String, required: Bool = false) throws(AWSError) -> Double? {
        guard let raw = value[key] else {
            if required { throw missing(key) }
            return nil
        }
        guard let seconds = raw.timestampValue, seconds.isFinite else { throw invalid(key, "is not a valid timestamp") }
        // Callers turn seconds into Int64 milliseconds and add periods to them: a time beyond the
        // years 1–9999 would trap the conversion or overflow the sums (found by fuzzing).
        guard seconds >= Self.earliestSeconds, seconds <= Self.latestSeconds else {
            throw invalid(key, "\(seconds) is outside the supported range (the years 1 to 9999)")
        }
        return seconds
    }

    /// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z, in seconds since the epoch.
    static let earliestSeconds = -62_135_596_800.0
    static let latestSeconds = 253_402_300_799.0

    func list(_ key: String, max: Int = .max) throws(AWSError) -> [APIInput] {
        guard let raw = value[key] else { return [] }
        guard let items = raw.listValue else { throw invalid(key, "must be a list") }
        guard items.count <= max else { throw errors.limit(name(key), "has \(items.count) members; at most \(max) are allowed") }
        let base = errors == .cloudWatch ? name(key) + ".member." : name(key) + "."
        return items.enumerated().map { APIInput($1, path: base, index: $0 + 1, errors: errors) }
    }

    func strings(_ key: String, max: Int = .max) throws(AWSError) -> [String] {
        var out: [String] = []
        for item in try list(key, max: max) {
            guard let text = item.value.stringValue else { throw errors.invalid(item.path, "must be a string") }
            out.append(text)
        }
        return out
    }

    func child(_ key: String, required: Bool = false) throws(AWSError) -> APIInput? {
        guard let raw = value[key] else {
            if required { throw missing(key) }
            return nil
        }
        guard case .map = raw else { throw invalid(key, "must be a structure") }
        return APIInput(raw, path: name(key), errors: errors)
    }

    /// Members this implementation does not support: an explicit error rather than silently ignoring them.
    func reject(_ keys: [String], _ why: String) throws(AWSError) {
        for key in keys where has(key) {
            if case .list(let items) = value[key]!, items.isEmpty { continue }
            throw invalid(key, "is not supported by trailwatch (\(why))")
        }
    }
}

enum APIErrorStyle: Equatable {
    case cloudWatch, cloudTrail

    func invalid(_ name: String, _ message: String) -> AWSError {
        switch self {
        case .cloudWatch: AWSError("InvalidParameterValue", "The parameter \(name) \(message).")
        case .cloudTrail: AWSError("InvalidParameterException", "\(name) \(message).")
        }
    }

    func missing(_ name: String) -> AWSError {
        switch self {
        case .cloudWatch: AWSError("MissingParameter", "The parameter \(name) is required.")
        case .cloudTrail: AWSError("InvalidParameterException", "\(name) is required.")
        }
    }

    func limit(_ name: String, _ message: String) -> AWSError {
        switch self {
        case .cloudWatch: AWSError("InvalidParameterValue", "The collection \(name) \(message).")
        case .cloudTrail: AWSError("InvalidParameterException", "\(name) \(message).")
        }
    }
}
