import DataProtection
import FilterPatterns
import Foundation
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `mask`: CloudWatch Logs data protection. A data protection policy (the JSON AWS writes) names
/// managed data identifiers and custom ones; every match in a log event's message (and in its
/// extracted fields) is replaced by `*`s before anything downstream sees it. The Audit statement
/// counts log events with findings per identifier as the metric `LogEventsWithFindings`
/// (`metrics` output) and, when it names a FindingsDestination, sends one findings event per
/// event with findings to the `findings` output.
struct MaskTransform: TransformKind {
    static let findingsPort = "findings"
    static let metricsPort = "metrics"
    static let metricName = "LogEventsWithFindings"

    struct Config: StageConfig {
        var policy: DataProtectionPolicy?
        var policyFile: String?
        var metricNamespace = "AWS/Logs"

        static let settings = SettingsSchema<Config>(
            .custom("policy", type: "mapping", "A CloudWatch Logs data protection policy, the JSON AWS writes for `PutDataProtectionPolicy` "
                    + "(JSON is YAML), inline.", storedAt: \Config.policy) { config, c, key in
                config.policy = try c.decode(PolicyEnvelope.self, forKey: key).policy
            },
            .setting("policy_file", \.policyFile, "A file holding the policy (relative to the pipeline file). Exactly one of `policy` and `policy_file`."),
            .setting("metric_namespace", \.metricNamespace, "Namespace of the `LogEventsWithFindings` metric on the `metrics` output.")
        )

        mutating func validate(at codingPath: [any CodingKey]) throws {
            guard (policy == nil) != (policyFile == nil) else {
                throw SettingError(codingPath: codingPath, message: "give exactly one of 'policy' and 'policy_file'",
                                   expected: "policy: {Version: \"2021-06-01\", Statement: [...]} or policy_file: policies/pii.json")
            }
        }

        /// The inline policy, or the file's (relative to the pipeline file).
        func loadPolicy(pipelineDirectory: String) -> Result<DataProtectionPolicy, ConfigError> {
            if let policy { return .success(policy) }
            let file = policyFile!
            let path = file.hasPrefix("/") ? file : pipelineDirectory + "/" + file
            guard let data = FileManager.default.contents(atPath: path) else {
                return .failure(ConfigError([ConfigDiagnostic(location: SourceLocation(file: path, line: 1, column: 1),
                                                              message: "cannot read the data protection policy file")]))
            }
            return ConfigDecoding.decode(PolicyEnvelope.self, yaml: String(decoding: data, as: UTF8.self), file: path).map(\.policy)
        }
    }

    /// Decodes a policy, turning its ``PolicyError``s into located setting errors.
    struct PolicyEnvelope: Decodable {
        var policy: DataProtectionPolicy
        init(from decoder: any Decoder) throws {
            do { policy = try DataProtectionPolicy(from: decoder) } catch let error as PolicyError {
                throw SettingError(codingPath: error.codingPath.map { AnyCodingKey(stringValue: $0) }, message: error.message,
                                   expected: error.expected, suggestion: error.suggestion, columnInValue: error.columnInValue)
            }
        }
    }

    static let type = "mask"
    static let summary = "CloudWatch Logs data protection policies: masks sensitive data, counts findings, reports them."
    static func accepts(_ config: Config) -> Set<EventKind> { [.log] }
    static func produces(_ config: Config, fedWith inputs: Set<EventKind>) -> Set<EventKind> { [.log, .metric] }
    static func produces(_ config: Config, fedWith inputs: Set<EventKind>, at port: String?) -> Set<EventKind> {
        port == metricsPort ? [.metric] : [.log]
    }
    static func ports(_ config: Config) -> [String] { [findingsPort, metricsPort] }

    static func check(_ config: Config, _ context: ValidationContext) -> [ConfigDiagnostic] {
        if case .failure(let error) = config.loadPolicy(pipelineDirectory: context.pipelineDirectory) {
            return error.diagnostics.map { diagnostic in
                var d = diagnostic
                d.component = context.component
                if d.setting == nil { d.setting = "policy_file" }
                return d
            }
        }
        return []
    }

    /// Masking is per event; the audit's counting into metric periods, which must see the
    /// batches in order, is the sequencer's: instances may run in parallel (`workers:`).
    static let instancesAreIndependent = true

    static func make(_ config: Config, _ context: StageContext) throws -> any Transform {
        switch config.loadPolicy(pipelineDirectory: context.pipelineDirectory) {
        case .success(let policy): return Runner(policy: policy, config: config, context: context)
        case .failure(let error): throw StageError(error.description)
        }
    }

    static func makeSequencer(_ config: Config, _ context: StageContext) throws -> (any TransformSequencer)? {
        Audit(metrics: context.metrics)
    }

    /// Masks one batch at a time. What the audit counts leaves on the `metrics` output as one
    /// datapoint per log group, identifier and period for this batch alone; ``Audit`` folds those
    /// into the periods it emits.
    final class Runner: Transform {
        let scanner: DataProtectionScanner
        let audit: DataProtectionPolicy.AuditOperation
        let namespace: String
        let metrics: ComponentMetrics
        /// Only for its period arithmetic (the periods themselves are the audit's).
        let periods = MetricAggregator(periodSeconds: 60, latenessMillis: 60_000)
        private var identities: [String: [MetricIdentity]] = [:]
        /// The current event's findings, for its findings event.
        private var findings: [Finding] = []
        private var scratch: [UInt8] = []
        private var scan = BatchScan()

        init(policy: DataProtectionPolicy, config: Config, context: StageContext) {
            scanner = DataProtectionScanner(policy: policy)
            audit = policy.audit
            namespace = config.metricNamespace
            metrics = context.metrics
        }

        /// `LogEventsWithFindings` per identifier for one log group, built once.
        private func identities(for logGroup: String) -> [MetricIdentity] {
            if let known = identities[logGroup] { return known }
            let built = scanner.identifierNames.map {
                MetricIdentity(namespace: namespace, name: MaskTransform.metricName,
                               dimensions: [Dimension(name: "LogGroupName", value: logGroup), Dimension(name: "DataIdentifier", value: $0)])
            }
            if identities.count < 10_000 { identities[logGroup] = built }
            return built
        }

        func process(_ batch: Batch, into output: inout TransformOutput) throws {
            guard case .logs(let logs) = batch.payload else { return }
            let identifierCount = scanner.identifierNames.count
            var masked: MaskedBatchBuilder?
            var findingsBatch: FindingsBatchBuilder?
            // Events with findings per (origin, identifier, period).
            var counts: [CountKey: Int] = [:]
            var seen = [Bool](repeating: false, count: identifierCount)
            var findingsTotal = 0
            scan.scan(logs, scanner)
            for i in 0..<logs.count {
                let message = logs.message(i)
                let found = scan.findings(of: i)
                var fields = logs.fields(i)
                var fieldsChanged = false
                if fields != nil { fieldsChanged = maskFields(&fields!) }
                guard !found.isEmpty || fieldsChanged else {
                    masked?.appendOriginal(i)
                    continue
                }
                if masked == nil { masked = MaskedBatchBuilder(logs, upTo: i) }
                if found.isEmpty {
                    masked!.appendOriginal(i)
                } else {
                    scratch.removeAll(keepingCapacity: true)
                    DataProtectionScanner.mask(message, findings: found, into: &scratch)
                    masked!.append(scratch, for: i)
                }
                if fieldsChanged { masked!.setFields(fields, for: i) }
                guard !found.isEmpty else { continue }
                findingsTotal += found.count
                let time = logs.timestamp(i)
                let period = periods.periodStart(time)
                for k in seen.indices { seen[k] = false }
                for finding in found where !seen[finding.identifier] {
                    seen[finding.identifier] = true
                    counts[CountKey(origin: logs.originIndices.isEmpty ? 0 : Int(logs.originIndices[i]), identifier: finding.identifier, period: period),
                           default: 0] += 1
                }
                if audit.hasDestination {
                    findings = Array(found)
                    let origin = logs.origin(i)
                    if findingsBatch == nil { findingsBatch = FindingsBatchBuilder(ingestionTime: logs.ingestionTime) }
                    findingsBatch!.append(findingsEvent(time: time, origin: origin), timestamp: time,
                                          origin: Origin(logGroup: audit.logGroup ?? origin.logGroup, logStream: origin.logStream))
                }
            }
            if findingsTotal > 0 { metrics.addToGauge("findings", Double(findingsTotal)) }
            output.emit(Batch(.logs(masked?.build() ?? logs)), port: nil)
            if let found = findingsBatch?.build() { output.emit(Batch(.logs(found)), port: MaskTransform.findingsPort) }
            if !counts.isEmpty {
                let counted = counts.map { key, count in
                    MetricDatum(metric: identities(for: logs.origins[key.origin].logGroup)[key.identifier], unit: "Count", timestamp: key.period,
                                period: periods.periodSeconds, sampleCount: 1, sum: Double(count), minimum: Double(count), maximum: Double(count))
                }
                output.emit(Batch(.metrics(counted)), port: MaskTransform.metricsPort)
            }
        }

        struct CountKey: Hashable {
            var origin: Int
            var identifier: Int
            var period: Int64
        }

        /// Masks string and JSON field values; true when any changed.
        private func maskFields(_ fields: inout Fields) -> Bool {
            var changed = false
            for k in fields.entries.indices {
                let bytes: [UInt8]
                switch fields.entries[k].value {
                case .string(let s): bytes = Array(s.utf8)
                case .json(let j): bytes = j
                default: continue
                }
                var found: [Finding] = []
                bytes.withUnsafeBytes { scanner.scan($0, into: &found) }
                guard !found.isEmpty else { continue }
                var out: [UInt8] = []
                bytes.withUnsafeBytes { DataProtectionScanner.mask($0, findings: found, into: &out) }
                if case .string = fields.entries[k].value {
                    fields.entries[k].value = .string(String(decoding: out, as: UTF8.self))
                } else {
                    fields.entries[k].value = .json(out)
                }
                changed = true
            }
            return changed
        }

        /// The findings event for one log event, shaped like CloudWatch's audit findings.
        private func findingsEvent(time: Int64, origin: Origin) -> [UInt8] {
            var out = ByteBuffer(reservingCapacity: 256)
            out.append(#"{"auditTimestamp":""#)
            out.append(Timestamps.iso8601(time))
            out.append(#"","logGroup":"#)
            JSONEscaping.appendString(origin.logGroup, to: &out)
            out.append(#","logStream":"#)
            JSONEscaping.appendString(origin.logStream, to: &out)
            out.append(#","dataIdentifiers":["#)
            var first = true
            for identifier in 0..<scanner.identifierNames.count {
                let mine = findings.filter { $0.identifier == identifier }
                guard !mine.isEmpty else { continue }
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                out.append(#"{"name":"#)
                JSONEscaping.appendString(scanner.identifierNames[identifier], to: &out)
                out.append(#","count":"#)
                out.appendDecimal(Int64(mine.count))
                out.append(#","detections":["#)
                for (k, finding) in mine.enumerated() {
                    if k > 0 { out.append(UInt8(ascii: ",")) }
                    out.append(#"{"start":"#)
                    out.appendDecimal(Int64(finding.range.lowerBound))
                    out.append(#","end":"#)
                    out.appendDecimal(Int64(finding.range.upperBound))
                    out.append(UInt8(ascii: "}"))
                }
                out.append("]}")
            }
            out.append("]}")
            return out.bytes
        }
    }

    /// The audit's counting, in input order for every instance: folds each batch's counts into
    /// `LogEventsWithFindings` per minute and emits a period once it closes (by event time, or
    /// by the wall clock in live mode). Each batch's acknowledgements travel with what was
    /// emitted for it, and its own claim waits for the periods it counted into.
    final class Audit: TransformSequencer {
        let metrics: ComponentMetrics
        var aggregator = MetricAggregator(periodSeconds: 60, latenessMillis: 60_000)
        /// Input acknowledgements waiting for the metric periods they counted into.
        private var pending = PeriodAcknowledgements()

        init(metrics: ComponentMetrics) { self.metrics = metrics }

        var holdsAcknowledgements: Bool { true }

        func sequence(_ batch: Batch, _ output: inout TransformOutput) throws {
            var newest: Int64?
            for counted in output.take(port: MaskTransform.metricsPort) {
                guard case .metrics(let data) = counted.payload else { continue }
                for datum in data {
                    aggregator.add(datum.sum, metric: datum.metric, unit: datum.unit, at: datum.timestamp)
                    if newest.map({ datum.timestamp > $0 }) ?? true { newest = datum.timestamp }
                }
            }
            // Every batch that leaves carries a claim on the input; the input's own claim waits for its metric periods.
            output.shareAcknowledgements(batch.acks)
            pending.hold(batch.acks, newestPeriod: newest)
            emitMetrics(aggregator.closeByWatermark(), into: &output)
        }

        func tick(nowMillis: Int64, into output: inout TransformOutput) throws {
            emitMetrics(aggregator.closePeriods(before: nowMillis), into: &output)
        }

        func finish(into output: inout TransformOutput) throws {
            emitMetrics(aggregator.closeAll(), into: &output)
        }

        /// Sends closed datapoints with the claims of every batch whose counts are all in closed periods.
        private func emitMetrics(_ data: [MetricDatum], into output: inout TransformOutput) {
            let acks = pending.takeSettled(oldestOpen: aggregator.oldestOpenPeriod)
            if data.isEmpty {
                acks.release()
            } else {
                metrics.recordDatapoints(data)
                output.emit(Batch(.metrics(data), acks: acks), port: MaskTransform.metricsPort)
            }
        }
    }
}

/// The findings of every event of a batch (arrays kept from batch to batch for their capacity).
struct BatchScan {
    private var found: [Finding] = []
    /// Where each event's findings start in `found`, plus the end.
    private var offsets: [Int] = []
    private var one: [Finding] = []
    private var scratch: [Range<Int>] = []

    mutating func scan(_ logs: LogBatch, _ scanner: DataProtectionScanner) {
        found.removeAll(keepingCapacity: true)
        offsets.removeAll(keepingCapacity: true)
        offsets.reserveCapacity(logs.count + 1)
        offsets.append(0)
        for i in 0..<logs.count {
            scanner.scan(logs.message(i), into: &one, scratch: &scratch)
            found.append(contentsOf: one)
            offsets.append(found.count)
        }
    }

    func findings(of event: Int) -> ArraySlice<Finding> { found[offsets[event]..<offsets[event + 1]] }
}

/// Builds the masked copy of a batch: every message packed into one new block (newline-separated,
/// so raw writers still write runs of lines at once), masked where there were findings.
struct MaskedBatchBuilder {
    let source: LogBatch
    private var bytes: [UInt8] = []
    private var starts: [UInt32] = []
    private var lengths: [UInt32] = []
    private var fields: [Int: Fields?] = [:]

    /// Starts with the events before `index` copied as they are.
    init(_ source: LogBatch, upTo index: Int) {
        self.source = source
        bytes.reserveCapacity(source.messageBytes + source.count)
        for i in 0..<index { appendOriginal(i) }
    }

    mutating func appendOriginal(_ i: Int) {
        starts.append(UInt32(truncatingIfNeeded: bytes.count))
        let message = source.message(i)
        bytes.append(contentsOf: message.assumingMemoryBound(to: UInt8.self))
        lengths.append(UInt32(truncatingIfNeeded: message.count))
        bytes.append(0x0A)
    }

    mutating func append(_ message: [UInt8], for i: Int) {
        starts.append(UInt32(truncatingIfNeeded: bytes.count))
        bytes.append(contentsOf: message)
        lengths.append(UInt32(truncatingIfNeeded: message.count))
        bytes.append(0x0A)
    }

    mutating func setFields(_ value: Fields?, for i: Int) { fields[i] = value }

    func build() -> LogBatch {
        var out = source
        out.storage = ByteStorage.copying(bytes)
        out.starts = starts
        out.lengths = lengths
        for (i, value) in fields { out.setFields(value, at: i) }
        return out
    }
}

/// Findings events of one batch, packed into one block.
struct FindingsBatchBuilder {
    let ingestionTime: Int64
    private var bytes: [UInt8] = []
    private var events: [(start: Int, length: Int, timestamp: Int64, origin: Origin)] = []

    init(ingestionTime: Int64) { self.ingestionTime = ingestionTime }

    mutating func append(_ body: [UInt8], timestamp: Int64, origin: Origin) {
        events.append((bytes.count, body.count, timestamp, origin))
        bytes += body
        bytes.append(0x0A)
    }

    func build() -> LogBatch? {
        guard let first = events.first else { return nil }
        var batch = LogBatch(storage: ByteStorage.copying(bytes), defaultTimestamp: first.timestamp, ingestionTime: ingestionTime, origin: first.origin)
        for event in events {
            batch.append(start: event.start, length: event.length, timestamp: event.timestamp, originIndex: batch.originIndex(for: event.origin))
        }
        return batch
    }
}

extension ByteStorage {
    /// A block holding `bytes`, copied with one memcpy (the generic initializer copies byte by byte).
    static func copying(_ bytes: [UInt8]) -> ByteStorage {
        let storage = ByteStorage(capacity: bytes.count)
        bytes.withUnsafeBytes { raw in
            if let base = raw.baseAddress, raw.count > 0 { storage.mutableBase.copyMemory(from: base, byteCount: raw.count) }
        }
        return storage
    }
}
