import ByteJSON
import LinearRegex
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `multiline:` — joins physical lines into one event (stack traces, wrapped messages).
struct MultilineConfig: Decodable, Sendable {
    enum Mode: String, ConfigEnum {
        /// A line matching `start_pattern` begins a new event; other lines join the current one.
        case start
        /// A line matching `start_pattern` continues the previous event (e.g. `^[[:space:]]`); other lines begin one.
        case continuation
    }

    var startPattern: RegularExpression
    var mode: Mode = .start
    /// Most lines one event may join; the next line then begins a new event.
    var maxLines: Int = 500
    /// Live mode: a pending event is sent after this long without a next line. `--once` never
    /// uses it: the last event is sent at the end of the input.
    var timeout: ConfigDuration = ConfigDuration(milliseconds: 1000)

    enum CodingKeys: String, CodingKey, CaseIterable {
        case startPattern = "start_pattern", mode, maxLines = "max_lines", timeout
    }

    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        startPattern = try UserRegex.compile(try c.decode(String.self, forKey: .startPattern),
                                             codingPath: c.codingPath + [CodingKeys.startPattern])
        mode = try c.decodeIfPresent(Mode.self, forKey: .mode) ?? mode
        maxLines = try c.decodeIfPresent(Int.self, forKey: .maxLines) ?? maxLines
        timeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .timeout) ?? timeout
        guard maxLines >= 1 && maxLines <= 100_000 else {
            throw SettingError(codingPath: c.codingPath + [CodingKeys.maxLines], message: "\(maxLines) is out of range",
                               expected: "a whole number from 1 to 100000")
        }
    }
}

/// `timestamp:` — where an event's time comes from, instead of the time it was read.
struct TimestampConfig: Decodable, Sendable {
    enum OnError: String, ConfigEnum {
        /// Keep the event with the time it was read (flagged `timestamp_fallback`).
        case ingestTime = "ingest_time"
        /// Keep the event with the previous event's time (flagged `timestamp_fallback`).
        case previous
        /// Drop the event (counted as an error).
        case reject
    }

    /// A JSON path (`$.time`) into messages that are JSON objects.
    var field: String?
    /// A regular expression; the first group (or the whole match) is the time text.
    var regex: RegularExpression?
    var formats: [String] = []
    /// Offset for formats that carry no zone: `UTC` (default) or `+hh:mm` / `-hh:mm`.
    var timezone: String = "UTC"
    var onError: OnError = .ingestTime

    enum CodingKeys: String, CodingKey, CaseIterable {
        case field, regex, format, formats, timezone, onError = "on_error"
    }

    init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        field = try c.decodeIfPresent(String.self, forKey: .field)
        regex = try c.decodeIfPresent(String.self, forKey: .regex).map {
            try UserRegex.compile($0, codingPath: c.codingPath + [CodingKeys.regex])
        }
        if field != nil && regex != nil {
            throw SettingError(codingPath: c.codingPath + [CodingKeys.regex], message: "is given together with 'field'",
                               expected: "either field or regex")
        }
        if field == nil && regex == nil {
            throw SettingError(codingPath: c.codingPath, message: "says nowhere to find the time", expected: "field or regex")
        }
        if let single = try c.decodeIfPresent(String.self, forKey: .format) { formats = [single] }
        formats += try c.decodeIfPresent([String].self, forKey: .formats) ?? []
        timezone = try c.decodeIfPresent(String.self, forKey: .timezone) ?? timezone
        onError = try c.decodeIfPresent(OnError.self, forKey: .onError) ?? onError
        if let field {
            do { _ = try JSONPath(field) } catch {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.field], message: "invalid JSON path: \(error.message)",
                                   expected: "a path like $.time or $.request.time")
            }
        }
        for format in formats {
            do { _ = try TimestampFormat(format) } catch {
                throw SettingError(codingPath: c.codingPath + [CodingKeys.formats], message: "invalid format '\(format)': \(error.message)",
                                   expected: "rfc3339, unix, unix_ms or a strftime pattern such as %Y-%m-%d %H:%M:%S")
            }
        }
        guard TimestampConfig.zoneOffset(timezone) != nil else {
            throw SettingError(codingPath: c.codingPath + [CodingKeys.timezone], message: "unknown time zone '\(timezone)'",
                               expected: "UTC or an offset like +02:00")
        }
    }

    /// Seconds east of UTC for `UTC`, `Z`, `+hh:mm`, `-hhmm`.
    static func zoneOffset(_ text: String) -> Int? {
        if text == "UTC" || text == "Z" || text == "GMT" { return 0 }
        let bytes = Array(text.utf8.filter { $0 != UInt8(ascii: ":") })
        guard bytes.count == 5, bytes[0] == UInt8(ascii: "+") || bytes[0] == UInt8(ascii: "-"),
              bytes[1...].allSatisfy({ $0 >= 48 && $0 <= 57 }) else { return nil }
        let digits = bytes[1...].map { Int($0) - 48 }
        let hours = digits[0] * 10 + digits[1], minutes = digits[2] * 10 + digits[3]
        guard hours <= 14 && minutes < 60 else { return nil }
        let seconds = hours * 3600 + minutes * 60
        return bytes[0] == UInt8(ascii: "-") ? -seconds : seconds
    }
}

/// Groups framed lines into multiline events. Lines are regrouped from the start of a held
/// group each time more input arrives, so the grouper keeps no state between chunks.
final class MultilineGrouper {
    let matcher: RegexMatcher
    let mode: MultilineConfig.Mode
    let maxLines: Int
    let maxBytes: Int
    let timeoutMillis: Int64

    init(_ config: MultilineConfig, maxBytes: Int) throws {
        matcher = config.startPattern.makeMatcher()
        mode = config.mode
        maxLines = config.maxLines
        self.maxBytes = maxBytes
        timeoutMillis = config.timeout.milliseconds
    }

    private func beginsEvent(_ message: UnsafeRawBufferPointer) -> Bool {
        let hit = matcher.matches(message)
        return mode == .start ? hit : !hit
    }

    /// Joins `lines` into events. When `holdLast`, the last group may still grow: it is not
    /// emitted and its first byte is returned, so the caller keeps it for the next read.
    func group(_ lines: LogBatch, holdLast: Bool) -> (events: LogBatch, heldFrom: Int?) {
        var events = LogBatch(storage: lines.storage, defaultTimestamp: lines.defaultTimestamp,
                              ingestionTime: lines.ingestionTime, origin: lines.origins[0])
        var first = -1
        var joined = 0
        func close(through last: Int) {
            let start = Int(lines.starts[first])
            let end = Int(lines.starts[last]) + Int(lines.lengths[last])
            var flags: EventFlags = []
            for i in first...last { flags.formUnion(lines.flags(i)) }
            events.append(start: start, length: end - start, flags: flags)
        }
        for i in 0..<lines.count {
            if first >= 0 {
                let end = Int(lines.starts[i]) + Int(lines.lengths[i])
                if beginsEvent(lines.message(i)) || joined >= maxLines || end - Int(lines.starts[first]) > maxBytes {
                    close(through: i - 1)
                    first = -1
                }
            }
            if first < 0 { first = i; joined = 0 }
            joined += 1
        }
        guard first >= 0 else { return (events, nil) }
        if holdLast { return (events, Int(lines.starts[first])) }
        close(through: lines.count - 1)
        return (events, nil)
    }
}

/// Sets event times from message text. Keeps a count of texts it could not parse.
final class TimestampExtractor {
    /// The field's lookup, built once (building one is far dearer than using it).
    private let fieldLookup: JSONMultiLookup?
    private var found: [JSONLookup] = []
    let regex: RegexMatcher?
    let formats: [TimestampFormat]
    let zoneOffset: Int
    let onError: TimestampConfig.OnError
    private var previous: Int64?
    /// Events whose time could not be found or parsed.
    private(set) var failures = 0

    init(_ config: TimestampConfig) throws {
        fieldLookup = try config.field.map { JSONMultiLookup([try JSONPath($0)]) }
        regex = config.regex?.makeMatcher()
        formats = config.formats.isEmpty ? TimestampFormat.defaults : try config.formats.map { try TimestampFormat($0) }
        zoneOffset = TimestampConfig.zoneOffset(config.timezone) ?? 0
        onError = config.onError
    }

    /// Assigns times to every event of `batch`; with `on_error: reject`, removes the events
    /// whose time could not be read.
    func apply(to batch: inout LogBatch) {
        var rejected: [Int] = []
        var keep: [Int] = []
        for i in 0..<batch.count {
            if let time = parse(batch.message(i), reference: batch.ingestionTime) {
                batch.setTimestamp(time, at: i)
                previous = time
                if onError == .reject { keep.append(i) }
                continue
            }
            failures += 1
            switch onError {
            case .ingestTime:
                batch.insertFlags(.timestampFallback, at: i)
            case .previous:
                if let previous { batch.setTimestamp(previous, at: i) }
                batch.insertFlags(.timestampFallback, at: i)
            case .reject:
                rejected.append(i)
            }
        }
        if !rejected.isEmpty { batch = batch.selecting(keep) }
    }

    private func parse(_ message: UnsafeRawBufferPointer, reference: Int64) -> Int64? {
        var text = message
        if let fieldLookup {
            fieldLookup.resolve(in: message, into: &found)
            guard let scalar = found[0].scalarText(in: message) else { return nil }
            return scalar.withUnsafeBytes { parseText($0, reference: reference) }
        }
        if let regex {
            guard let range = UserRegex.firstGroup(regex, in: message) else { return nil }
            text = UnsafeRawBufferPointer(rebasing: message[range])
        }
        return parseText(text, reference: reference)
    }

    private func parseText(_ text: UnsafeRawBufferPointer, reference: Int64) -> Int64? {
        for format in formats {
            if let time = format.parse(text, zoneOffsetSeconds: zoneOffset, referenceMillis: reference) { return time }
        }
        return nil
    }
}

/// `multiline:` and `timestamp:` settings shared by the line sources.
struct EventShapingConfig: Sendable {
    var multiline: MultilineConfig?
    var timestamp: TimestampConfig?
}

/// What a line source does to framed lines before it emits them.
final class EventShaper {
    let grouper: MultilineGrouper?
    let timestamps: TimestampExtractor?
    private let metrics: ComponentMetrics?
    private var reportedFailures = 0

    init(_ config: EventShapingConfig, maxLineBytes: Int, metrics: ComponentMetrics?) throws {
        grouper = try config.multiline.map { try MultilineGrouper($0, maxBytes: maxLineBytes) }
        timestamps = try config.timestamp.map { try TimestampExtractor($0) }
        self.metrics = metrics
    }

    var isIdentity: Bool { grouper == nil && timestamps == nil }

    func finishBatch(_ batch: inout LogBatch) {
        guard let timestamps else { return }
        timestamps.apply(to: &batch)
        let failures = timestamps.failures
        if failures != reportedFailures {
            metrics?.addToGauge("timestamp_parse_failures", Double(failures - reportedFailures))
            if timestamps.onError == .reject { metrics?.recordError(failures - reportedFailures) }
            reportedFailures = failures
        }
    }
}

extension KeyedDecodingContainer {
    /// Decodes the `multiline` and `timestamp` blocks a line source accepts.
    func decodeShaping(multiline: Key, timestamp: Key) throws -> EventShapingConfig {
        EventShapingConfig(multiline: try decodeIfPresent(MultilineConfig.self, forKey: multiline),
                           timestamp: try decodeIfPresent(TimestampConfig.self, forKey: timestamp))
    }
}
