import ByteJSON
import LinearRegex
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `multiline:` — joins physical lines into one event (stack traces, wrapped messages).
struct MultilineConfig: SettingsSection {
    enum Mode: String, ConfigEnum {
        /// A line matching `start_pattern` begins a new event; other lines join the current one.
        case start
        /// A line matching `start_pattern` continues the previous event (e.g. `^[[:space:]]`); other lines begin one.
        case continuation
    }

    var startPattern = UserRegex.placeholder
    var mode: Mode = .start
    var maxLines = 500
    var timeout = ConfigDuration(milliseconds: 1000)

    static let settings = SettingsSchema<MultilineConfig>(
        UserRegex.setting("start_pattern", \.startPattern, "A [regular expression](#regular-expressions) lines are tested with."),
        .setting("mode", \.mode, "`start`: a matching line begins an event, other lines join it; `continuation`: a matching line "
                 + "continues the previous event (e.g. `^[[:space:]]`), other lines begin one."),
        .setting("max_lines", \.maxLines, "Most lines one event joins; the next line then begins a new event (`max_line_bytes` caps its size). 1–100000.",
                 check: SettingIssue.outside(1...100_000, expected: "a whole number from 1 to 100000")),
        .setting("timeout", \.timeout, "Live mode: a held event is sent after this long without a next line. `--once` never uses it: "
                 + "the last event is sent at the end of the input.")
    )

    init() {}
}

/// `timestamp:` — where an event's time comes from, instead of the time it was read.
struct TimestampConfig: SettingsSection {
    enum OnError: String, ConfigEnum {
        /// Keep the event with the time it was read (flagged `timestamp_fallback`).
        case ingestTime = "ingest_time"
        /// Keep the event with the previous event's time (flagged `timestamp_fallback`).
        case previous
        /// Drop the event (counted as an error).
        case reject
    }

    var field: String?
    var regex: RegularExpression?
    var formats: [String] = []
    var timezone = "UTC"
    var onError: OnError = .ingestTime

    static let settings = SettingsSchema<TimestampConfig>(
        .setting("field", \.field, "A JSON path (`$.time`, `$.request.time`) into messages that are JSON objects.",
                 check: { (field: String) -> SettingIssue? in
                     do throws(JSONPathError) { _ = try JSONPath(field); return nil } catch {
                         return SettingIssue("invalid JSON path: \(error.message)", expected: "a path like $.time or $.request.time")
                     }
                 }),
        UserRegex.setting("regex", \.regex, "A [regular expression](#regular-expressions) searched in the message; its first group "
                          + "(or the whole match) is the time text. Exactly one of `field` and `regex`."),
        .custom("format", type: "string", "One format (see `formats`).") { config, c, key in
            if let single = try c.decodeIfPresent(String.self, forKey: key) { config.formats = [single] + config.formats }
        },
        .custom("formats", type: "list of strings", "Formats tried in order: `rfc3339`, `unix`, `unix_ms` or strftime-style patterns "
                + "(`%Y %y %m %d %e %H %M %S %f %b %z %Z %T %F %s %%`; a space matches runs of spaces; formats without a year take "
                + "the year of the ingestion time).", note: "a list of common formats") { config, c, key in
            config.formats += try c.decodeIfPresent([String].self, forKey: key) ?? []
        },
        .setting("timezone", \.timezone, "Offset for formats that carry no zone: `UTC` or `+hh:mm` / `-hh:mm`.",
                 check: { TimestampConfig.zoneOffset($0) == nil ? SettingIssue("unknown time zone '\($0)'", expected: "UTC or an offset like +02:00") : nil }),
        .setting("on_error", \.onError, "Events whose time cannot be read keep the read time (`ingest_time`) or the previous event's "
                 + "time (`previous`), both flagged `timestamp_fallback`, or are dropped (`reject`, counted as errors).")
    )

    init() {}

    mutating func validate(at codingPath: [any CodingKey]) throws {
        if field != nil && regex != nil {
            throw SettingError(codingPath: codingPath + [Self.key(\TimestampConfig.regex)], message: "is given together with 'field'",
                               expected: "either field or regex")
        }
        if field == nil && regex == nil {
            throw SettingError(codingPath: codingPath, message: "says nowhere to find the time", expected: "field or regex")
        }
        for format in formats {
            do { _ = try TimestampFormat(format) } catch {
                throw SettingError(codingPath: codingPath + [Self.key("formats")], message: "invalid format '\(format)': \(error.message)",
                                   expected: "rfc3339, unix, unix_ms or a strftime pattern such as %Y-%m-%d %H:%M:%S")
            }
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

extension EventShapingConfig {
    /// `multiline:`, the same on every source that reads lines.
    static func multilineSetting<C: SettingsSection>(_ keyPath: WritableKeyPath<C, MultilineConfig?> & Sendable) -> Setting<C> {
        .section("multiline", keyPath, "Joins lines into events; see [multiline events](#multiline-events).")
    }

    /// `timestamp:`, the same on every source that reads lines.
    static func timestampSetting<C: SettingsSection>(_ keyPath: WritableKeyPath<C, TimestampConfig?> & Sendable) -> Setting<C> {
        .section("timestamp", keyPath, "Takes event times from the messages; see [event times](#event-times).")
    }
}
