#if canImport(Glibc)
import Glibc
#endif
import ByteJSON
import Foundation
import TrailwatchArchive
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `cloudtrail`: CloudTrail delivery files (`{"Records": [...]}`, plain or `.json.gz`). Each
/// record becomes one log event: the record's JSON as the message, `eventTime` as its time, log
/// stream `<recipientAccountId>_<awsRegion>`. A malformed file is reported and skipped.
/// With `event_selectors`, only the records a trail with those selectors would record are read.
struct CloudTrailSource: SourceKind {
    struct Config: StageConfig {
        var include: [String] = []
        var exclude: [String] = []
        var logGroup = "cloudtrail"
        var selection: TrailSelection?

        static let settings = SettingsSchema<Config>([
            .strings("include", \.include, "Paths or globs of CloudTrail delivery files (`**` for any depth); a single string or a list.",
                     required: true),
            .setting("exclude", \.exclude, "Globs of paths to skip."),
            .setting("log_group", \.logGroup, "Log group of the events (the stream is `<recipientAccountId>_<awsRegion>`)."),
        ] + TrailSelection.settings(\.selection))
    }

    static func check(_ config: Config, _ context: ValidationContext) -> [ConfigDiagnostic] {
        guard let selection = config.selection, selection.file != nil else { return [] }
        do { _ = try selection.resolved(pipelineDirectory: context.pipelineDirectory) } catch {
            return [ConfigDiagnostic(location: context.location, component: context.component, setting: "event_selectors_file",
                                     message: "\(error)", expected: "event selectors as `aws cloudtrail get-event-selectors` prints them")]
        }
        return []
    }

    static let type = "cloudtrail"
    static let summary = "CloudTrail delivery files ({\"Records\": [...]}, plain or gzip), one event per record."
    static func produces(_ config: Config) -> Set<EventKind> { [.log] }

    static func make(_ config: Config, _ context: StageContext) throws -> any Source {
        do {
            let selector = try config.selection.map { TrailSelector(try $0.resolved(pipelineDirectory: context.pipelineDirectory)) }
            return Runner(config: config, selector: selector, context: context)
        } catch {
            throw StageError("\(error)")
        }
    }

    /// Delivery files in time order: by the `YYYYMMDDTHHmmZ` stamp in their names, then by path.
    static func ordered(_ paths: [String]) -> [String] {
        func stamp(_ path: String) -> String {
            let name = (path as NSString).lastPathComponent
            return name.split(separator: "_").first { $0.count == 14 && $0.hasSuffix("Z") && $0.dropFirst(8).first == "T" }.map(String.init) ?? ""
        }
        return paths.map { (stamp($0), $0) }.sorted { $0 < $1 }.map(\.1)
    }

    final class Runner: TrailwatchRuntime.Source {
        let config: Config
        let context: StageContext
        let selector: TrailSelector?

        init(config: Config, selector: TrailSelector?, context: StageContext) {
            self.config = config
            self.selector = selector
            self.context = context
        }

        func run(_ output: SourceOutput) throws {
            let files = BatchInputFiles(include: config.include, exclude: config.exclude, context: context, order: CloudTrailSource.ordered)
            let progress = files.progress(context)
            var builder = LogBatchBuilder()
            for (path, size) in zip(files.paths, files.sizes) {
                if output.isStopping { break }
                do {
                    let (records, skipped) = try CloudTrailSource.records(in: path)
                    if skipped > 0 {
                        // The file is damaged, not empty: the good records go on, the rest is reported.
                        output.metrics.recordDamage()
                        context.log.log(.error, context.id, "\(path): \(skipped) of \(records.count + skipped) entries in \"Records\" are not JSON objects (skipped)")
                    }
                    let now = MonotonicClock.wallMillis()
                    for record in records {
                        if let selector, record.json.withUnsafeBytes({ selector.selects($0) }) != true { continue }
                        let finished = record.json.withUnsafeBytes {
                            builder.append($0, timestamp: record.time ?? now, ingestionTime: now,
                                           origin: Origin(logGroup: config.logGroup, logStream: record.stream),
                                           flags: record.time == nil ? [.timestampFallback] : [])
                        }
                        if let finished {
                            output.emit(Batch(.logs(finished)))
                            progress.advance(events: finished.count)
                        }
                    }
                } catch {
                    output.metrics.recordDamage()
                    context.log.log(.error, context.id, "skipping \(path): \(error)")
                }
                if let rest = builder.take() {
                    output.emit(Batch(.logs(rest)))
                    progress.advance(events: rest.count)
                }
                progress.advance(bytes: size, file: true)
            }
        }
    }

    struct Record {
        var json: [UInt8]
        var time: Int64?
        var stream: String
    }

    struct MalformedFile: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// Largest delivery file read, once decompressed (CloudTrail's own files are far smaller): a
    /// compression bomb is refused instead of filling memory.
    static let maximumFileBytes = 256 << 20

    /// The records of one delivery file, each as compact JSON, and how many entries were not objects.
    static func records(in path: String) throws -> (records: [Record], skipped: Int) {
        var bytes: [UInt8] = []
        try ArchiveReader(path: path).read { piece in
            guard bytes.count + piece.count <= maximumFileBytes else {
                throw MalformedFile(message: "larger than \(maximumFileBytes >> 20) MiB once decompressed")
            }
            bytes.append(contentsOf: piece)
        }
        return try records(from: bytes)
    }

    /// The records of a delivery file's (decompressed) bytes.
    static func records(from bytes: [UInt8]) throws -> (records: [Record], skipped: Int) {
        let root: JSONValue
        do { root = try JSONValue.parse(bytes) } catch {
            throw MalformedFile(message: "not JSON: \(error)")
        }
        guard case .object(let members) = root, let list = members.first(where: { $0.key == "Records" })?.value,
              case .array(let items) = list else {
            throw MalformedFile(message: "not a CloudTrail delivery file (no \"Records\" array)")
        }
        var skipped = 0
        let records = items.compactMap { item -> Record? in
            guard case .object(let fields) = item else { skipped += 1; return nil }
            var json: [UInt8] = []
            JSONWriter.append(item, to: &json)
            func text(_ key: String) -> String? { fields.first { $0.key == key }?.value.stringValue }
            let time = text("eventTime").flatMap { t -> Int64? in Array(t.utf8).withUnsafeBytes { Timestamps.parseISO8601($0) } }
            return Record(json: json, time: time, stream: "\(text("recipientAccountId") ?? "unknown")_\(text("awsRegion") ?? "unknown")")
        }
        return (records, skipped)
    }
}
