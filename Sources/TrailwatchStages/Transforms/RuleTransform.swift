import ByteJSON
import EventPatterns
import Foundation
import TrailwatchCore
import TrailwatchConfig
import TrailwatchRuntime

/// `rule`: EventBridge-style rules. Each rule has an event pattern (AWS's pattern language) and,
/// optionally, what its target receives (`input_transformer`, `input`, `input_path`). Every event
/// is matched against every rule through one index (see ``RuleSet``):
///
/// - `ID.RULE` (one output per rule) carries rule events (kind `rule`): what the rule's target
///   would receive for each match, with the rule's name, the event's time and id;
/// - `ID` (the main output) carries the matched events themselves, unchanged, in their own kinds;
/// - `ID._unmatched` carries the events no rule matched.
///
/// Log events are matched as JSON (CloudTrail records inside EventBridge's envelope, see
/// `envelope`); alarm events as EventBridge's "CloudWatch Alarm State Change" events; insight
/// events as CloudTrail Insights events; pattern events as they are.
struct RuleTransform: TransformKind {
    static let unmatched = "_unmatched"

    enum Envelope: String, ConfigEnum { case auto, none }

    struct Rule: Sendable {
        var name: String
        /// Nil until a file pattern is loaded (`event_pattern_file`).
        var pattern: EventPattern?
        var patternFile: String?
        var target: TargetInput
        var enabled: Bool
    }

    struct Config: StageConfig {
        var rules: [Rule] = []
        var envelope: Envelope = .auto
        var account = "000000000000"
        var region = "us-east-1"

        static let settings = SettingsSchema<Config>(
            .custom("rules", type: "mapping of names to rules", "`NAME: {…}`; names are 1–64 letters, digits, `_`, `-` (not starting with `_`). "
                    + "Each rule is its own output, `ID.NAME`.", required: true, storedAt: \Config.rules,
                    nested: { RuleSettings.settings.reference(prefix: "rules.NAME.") }) { config, c, key in
                let nested = try c.nestedContainer(keyedBy: AnyCodingKey.self, forKey: key)
                for name in nested.allKeys {
                    let text = name.stringValue
                    guard !text.isEmpty, text.count <= 64, !text.hasPrefix("_"),
                          text.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
                        throw SettingError(codingPath: c.codingPath + [key, name], message: "'\(text)' is not a rule name",
                                           expected: "1 to 64 letters, digits, '_' and '-', not starting with '_'")
                    }
                    var rule = try nested.decode(RuleSettings.self, forKey: name).rule
                    rule.name = text
                    config.rules.append(rule)
                }
                guard !config.rules.isEmpty else {
                    throw SettingError(codingPath: c.codingPath + [key], message: "is empty", expected: "at least one NAME: {event_pattern: …}")
                }
            },
            .setting("envelope", \.envelope, "`auto`: CloudTrail records and alarm events are matched as EventBridge delivers them; "
                     + "`none`: every event as it is."),
            .setting("account", \.account, "Used where EventBridge would put the account: alarm event envelopes, rule ARNs.",
                     check: { $0.count == 12 && $0.allSatisfy(\.isNumber) ? nil : SettingIssue("'\($0)' is not an AWS account id", expected: "12 digits") }),
            .setting("region", \.region, "Used where EventBridge would put the region: alarm event envelopes, rule ARNs.")
        )
    }

    /// One rule of `rules:`.
    struct RuleSettings: SettingsSection {
        var pattern: EventPattern?
        var patternFile: String?
        var target = TargetInput.event
        /// The setting that gave the target, when one did.
        var targetKey: AnyCodingKey?
        var enabled = true

        var rule: Rule { Rule(name: "", pattern: pattern, patternFile: patternFile, target: target, enabled: enabled) }

        static let settings = SettingsSchema<RuleSettings>(
            .custom("event_pattern", type: "mapping or string", "The pattern as a YAML mapping or as JSON text.", storedAt: \RuleSettings.pattern) { config, c, key in
                let path = c.codingPath + [key]
                if let text = try? c.decode(String.self, forKey: key) {
                    config.pattern = try EventPattern.decoded(text, codingPath: path)
                } else {
                    let tree = try c.decode(YAMLPatternNode.self, forKey: key).node
                    do throws(EventPatternError) { config.pattern = try EventPattern(tree: tree) } catch {
                        throw SettingError(codingPath: path.map(\.stringValue).map(AnyCodingKey.init(stringValue:)) + error.path.map(AnyCodingKey.init(stringValue:)),
                                           message: "invalid event pattern: \(error.message)", expected: "an EventBridge event pattern")
                    }
                }
            },
            .setting("event_pattern_file", \.patternFile, "A JSON file holding the pattern (relative to the pipeline file). Exactly one of the two."),
            target("input_transformer", type: "mapping", "`{InputPathsMap: {name: JSON path}, InputTemplate: \"…\"}`, AWS's keys.") { c, key in
                .transformer(try c.decode(TransformerSettings.self, forKey: key).transformer)
            },
            target("input", type: "string", "Constant JSON the target receives instead of the event (EventBridge's `Input`).") { c, key in
                try TargetInput.constant(try c.decode(String.self, forKey: key))
            },
            target("input_path", type: "string", "A JSON path; the target receives that part of the event (`InputPath`; no match is sent "
                   + "when it reaches nothing). At most one of the three target settings.") { c, key in
                try TargetInput.inputPath(try c.decode(String.self, forKey: key))
            },
            .setting("enabled", \.enabled, "`false` keeps the rule in the file but off.")
        )

        /// One of the settings that say what the rule's target receives (at most one is given).
        static func target(_ key: String, type: String, _ doc: String,
                           _ decode: @escaping @Sendable (Setting<RuleSettings>.Container, AnyCodingKey) throws -> TargetInput) -> Setting<RuleSettings> {
            .custom(key, type: type, doc) { config, c, key in
                if config.targetKey != nil {
                    throw SettingError(codingPath: c.codingPath + [key], message: "a rule's target takes one of input_transformer, input and input_path",
                                       expected: "at most one of them")
                }
                config.targetKey = key
                do { config.target = try decode(c, key) } catch let error as EventPatternError {
                    throw SettingError(codingPath: c.codingPath + [key] + error.path.map(AnyCodingKey.init(stringValue:)),
                                       message: error.message, expected: "a target input EventBridge would accept")
                }
            }
        }

        mutating func validate(at codingPath: [any CodingKey]) throws {
            guard (pattern == nil) != (patternFile == nil) else {
                throw SettingError(codingPath: codingPath, message: "give exactly one of 'event_pattern' and 'event_pattern_file'",
                                   expected: "event_pattern: {source: [aws.signin], …} or event_pattern_file: rules/name.json")
            }
        }
    }

    struct TransformerSettings: Decodable {
        var transformer: InputTransformer

        enum CodingKeys: String, CodingKey, CaseIterable { case InputPathsMap, InputTemplate }

        init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            var paths: [(String, String)] = []
            if c.contains(.InputPathsMap) {
                let map = try c.nestedContainer(keyedBy: AnyCodingKey.self, forKey: .InputPathsMap)
                for key in map.allKeys { paths.append((key.stringValue, try map.decode(String.self, forKey: key))) }
            }
            let template = try c.decode(String.self, forKey: .InputTemplate)
            transformer = try InputTransformer(pathsMap: paths, template: template)
        }
    }

    static let type = "rule"
    static let summary = "EventBridge-style rules: event patterns over CloudTrail records, alarm, insight and JSON log events, each rule to its own output."
    static func accepts(_ config: Config) -> Set<EventKind> { [.log, .alarm, .insight, .pattern] }
    static func produces(_ config: Config, fedWith inputs: Set<EventKind>) -> Set<EventKind> { inputs.union([.rule]) }
    static func produces(_ config: Config, fedWith inputs: Set<EventKind>, at port: String?) -> Set<EventKind> {
        port == nil || port == unmatched ? inputs : [.rule]
    }
    static func ports(_ config: Config) -> [String] { config.rules.map(\.name) + [unmatched] }

    static func check(_ config: Config, _ context: ValidationContext) -> [ConfigDiagnostic] {
        var diagnostics: [ConfigDiagnostic] = []
        for rule in config.rules {
            guard let file = rule.patternFile else { continue }
            do { _ = try loadPattern(file, pipelineDirectory: context.pipelineDirectory) } catch {
                diagnostics.append(ConfigDiagnostic(location: context.location, component: context.component,
                                                    setting: "rules.\(rule.name).event_pattern_file", message: "\(error)",
                                                    expected: "a file holding an EventBridge event pattern (JSON)"))
            }
        }
        return diagnostics
    }

    struct PatternFileError: Error, CustomStringConvertible { var description: String }

    static func loadPattern(_ file: String, pipelineDirectory: String) throws -> EventPattern {
        let path = file.hasPrefix("/") ? file : pipelineDirectory + "/" + file
        guard let data = FileManager.default.contents(atPath: path) else { throw PatternFileError(description: "\(path): cannot read the file") }
        do { return try EventPattern(String(decoding: data, as: UTF8.self)) } catch {
            throw PatternFileError(description: "\(path): invalid event pattern \(error)")
        }
    }

    static func make(_ config: Config, _ context: StageContext) throws -> any Transform {
        var rules = config.rules
        for index in rules.indices where rules[index].pattern == nil {
            do { rules[index].pattern = try loadPattern(rules[index].patternFile!, pipelineDirectory: context.pipelineDirectory) } catch {
                throw StageError("\(error)")
            }
        }
        return Runner(rules: rules.filter(\.enabled), config: config)
    }

    /// One match: the event, the rule, what the rule's target receives.
    struct Match {
        var event: Int
        var rule: Int
        var body: [UInt8]
        var time: Int64
    }

    /// What a rule's target receives, per match.
    struct Targets: Sendable {
        let rules: [Rule]
        let account: String
        let region: String
        /// Per rule, the start of its rule events: `{"rule":NAME,"ruleArn":ARN,"time":` (written once, not per match).
        let heads: [[UInt8]]

        init(rules: [Rule], account: String, region: String) {
            self.rules = rules
            self.account = account
            self.region = region
            heads = rules.map { rule in
                var out: [UInt8] = []
                out += Array("{\"rule\":".utf8)
                JSONWriter.appendString(rule.name, to: &out)
                out += Array(",\"ruleArn\":".utf8)
                JSONWriter.appendString(Targets.ruleARN(rule.name, region: region, account: account), to: &out)
                out += Array(",\"time\":".utf8)
                return out
            }
        }

        static func ruleARN(_ name: String, region: String, account: String) -> String { "arn:aws:events:\(region):\(account):rule/\(name)" }

        /// The rule event for one match: `{"rule", "ruleArn", "time", "id", "input"}`. `time` is
        /// the event's time as ISO 8601 text; the ingestion time is only formatted for templates that use it.
        func ruleEventBody(rule: Int, event: [UInt8], id: String, time: String, ingestion: Int64) -> [UInt8]? {
            let input: [UInt8]
            if case .event = rules[rule].target {
                input = event
            } else {
                let name = rules[rule].name
                let context = RuleContext(ruleName: name, ruleARN: Targets.ruleARN(name, region: region, account: account), ingestionTime: Timestamps.iso8601(ingestion))
                guard let rendered = rules[rule].target.render(event: event, context: context) else { return nil }
                input = rendered
            }
            var out: [UInt8] = []
            out.reserveCapacity(heads[rule].count + input.count + 96)
            out += heads[rule]
            JSONWriter.appendString(time, to: &out)
            out += Array(",\"id\":".utf8)
            JSONWriter.appendString(id, to: &out)
            out += Array(",\"input\":".utf8)
            if case .transformer(let t) = rules[rule].target, !t.producesJSON {
                JSONWriter.appendString(input, to: &out)
            } else {
                out += input
            }
            out.append(UInt8(ascii: "}"))
            return out
        }
    }

    /// Rules keep nothing across batches (no counters, no rate limits): instances may run in parallel (`workers:`).
    static let instancesAreIndependent = true

    final class Runner: Transform {
        let rules: [Rule]
        let config: Config
        let targets: Targets
        /// The rule index and this instance's working memory.
        let matcher: EventMatcher
        private var matches: [Match] = []
        private var matchedAny: [Int] = []

        init(rules: [Rule], config: Config) {
            self.rules = rules
            self.config = config
            targets = Targets(rules: rules, account: config.account, region: config.region)
            matcher = EventMatcher(RuleSet(rules.map { $0.pattern! }), cloudTrailEnvelope: config.envelope == .auto)
        }

        func process(_ batch: Batch, into output: inout TransformOutput) throws {
            switch batch.payload {
            case .logs(let logs): processLogs(logs, into: &output)
            case .events(let kind, let events): processEvents(kind, events, into: &output)
            case .metrics: break
            }
        }

        func processLogs(_ logs: LogBatch, into output: inout TransformOutput) {
            let count = logs.count
            // Working arrays kept across batches for their capacity, held in locals while in use.
            var matches = self.matches, matchedAny = self.matchedAny
            self.matches = []
            self.matchedAny = []
            defer {
                matches.removeAll(keepingCapacity: true)
                matchedAny.removeAll(keepingCapacity: true)
                self.matches = matches
                self.matchedAny = matchedAny
            }
            // Messages by pointer: the batch's storage outlives this loop (no reference counting per event).
            let base = UnsafeRawPointer(logs.storage.mutableBase)
            let matcher = self.matcher
            logs.starts.withUnsafeBufferPointer { starts in
                logs.lengths.withUnsafeBufferPointer { lengths in
                    for i in 0..<count {
                        let message = UnsafeRawBufferPointer(start: base + Int(starts[i]), count: Int(lengths[i]))
                        guard matcher.matchesAny(message) else { continue }
                        matchedAny.append(i)
                        let event = matcher.event(for: message)
                        let id = matcher.lastWasCloudTrail ? (matcher.recordID ?? "") : StableID.uuid(of: Array(message))
                        let time = logs.timestamp(i), timeText = Timestamps.iso8601(time)
                        for rule in matcher.matched {
                            if let body = targets.ruleEventBody(rule: rule, event: event, id: id, time: timeText, ingestion: logs.ingestionTime) {
                                matches.append(Match(event: i, rule: rule, body: body, time: time))
                            }
                        }
                    }
                }
            }
            var byRule = [[StructuredEvent]](repeating: [], count: rules.count)
            for m in matches {
                byRule[m.rule].append(StructuredEvent(kind: .rule, timestamp: m.time, key: rules[m.rule].name, body: m.body))
            }
            emitRuleEvents(byRule, into: &output)
            if matchedAny.count == count {
                output.emit(Batch(.logs(logs)))
            } else if !matchedAny.isEmpty {
                output.emit(Batch(.logs(logs.selecting(matchedAny))))
            }
            if matchedAny.count < count {
                var rest: [Int] = []
                rest.reserveCapacity(count - matchedAny.count)
                var k = 0
                for i in 0..<count {
                    if k < matchedAny.count && matchedAny[k] == i { k += 1 } else { rest.append(i) }
                }
                output.emit(Batch(.logs(rest.count == count ? logs : logs.selecting(rest))), port: RuleTransform.unmatched)
            }
        }

        func processEvents(_ kind: EventKind, _ events: [StructuredEvent], into output: inout TransformOutput) {
            var byRule = [[StructuredEvent]](repeating: [], count: rules.count)
            var matched: [StructuredEvent] = []
            var unmatched: [StructuredEvent] = []
            for event in events {
                var document = event.body
                if kind == .alarm, config.envelope == .auto {
                    document = AlarmStateChangeEnvelope.wrap(body: event.body, account: config.account, region: config.region) ?? event.body
                }
                let found = matcher.matches(document)
                guard !found.isEmpty else { unmatched.append(event); continue }
                matched.append(event)
                let shaped = document.withUnsafeBytes { matcher.event(for: $0) }
                let id = matcher.lastWasCloudTrail ? (matcher.recordID ?? "") : StableID.uuid(of: event.body)
                let timeText = Timestamps.iso8601(event.timestamp)
                for rule in found {
                    if let body = targets.ruleEventBody(rule: rule, event: shaped, id: id, time: timeText, ingestion: event.timestamp) {
                        byRule[rule].append(StructuredEvent(kind: .rule, timestamp: event.timestamp, key: rules[rule].name, body: body))
                    }
                }
            }
            emitRuleEvents(byRule, into: &output)
            if !matched.isEmpty { output.emit(Batch(.events(kind, matched))) }
            if !unmatched.isEmpty { output.emit(Batch(.events(kind, unmatched)), port: RuleTransform.unmatched) }
        }

        func emitRuleEvents(_ byRule: [[StructuredEvent]], into output: inout TransformOutput) {
            for (rule, events) in byRule.enumerated() where !events.isEmpty {
                output.emit(Batch(.events(.rule, events)), port: rules[rule].name)
            }
        }
    }
}

extension EventPattern {
    /// Compiles pattern text from a setting, turning an error into a setting error inside the value.
    static func decoded(_ text: String, codingPath: [any CodingKey]) throws -> EventPattern {
        do { return try EventPattern(text) } catch {
            let singleLine = !text.contains("\n")
            let located = error.location.isKnown
            let place = located ? (singleLine ? " at column \(error.location.column)" : " at line \(error.location.line), column \(error.location.column) of the pattern") : ""
            throw SettingError(codingPath: codingPath, message: "invalid event pattern\(place): \(error.message)",
                               expected: "an EventBridge event pattern (JSON)", columnInValue: located && singleLine ? error.location.column : nil)
        }
    }
}

/// An event pattern written as YAML: mappings, lists and scalars read as JSON would read them —
/// a plain scalar is a number, `true`, `false` or `null` only when JSON would spell it so, and a
/// string otherwise (`No` and `on` stay strings, unlike YAML 1.1's booleans).
struct YAMLPatternNode: Decodable {
    var node: PatternNode

    init(from decoder: any Decoder) throws {
        if let keyed = try? decoder.container(keyedBy: AnyCodingKey.self) {
            var members: [(key: String, keyLocation: PatternLocation, value: PatternNode)] = []
            for key in keyed.allKeys {
                members.append((key.stringValue, .unknown, try keyed.decode(YAMLPatternNode.self, forKey: key).node))
            }
            node = PatternNode(.object(members))
        } else if var list = try? decoder.unkeyedContainer() {
            var elements: [PatternNode] = []
            while !list.isAtEnd { elements.append(try list.decode(YAMLPatternNode.self).node) }
            node = PatternNode(.array(elements))
        } else {
            let single = try decoder.singleValueContainer()
            let text = (try? single.decode(String.self)) ?? ""
            if single.decodeNil() {
                node = PatternNode(.null)
            } else if (try? single.decode(Double.self)) != nil, YAMLPatternNode.isJSONNumber(text), let value = Double(text) {
                node = PatternNode(.number(value, text: text))
            } else if (try? single.decode(Bool.self)) != nil, text == "true" || text == "false" {
                node = PatternNode(.bool(text == "true"))
            } else {
                node = PatternNode(.string(text))
            }
        }
    }

    static func isJSONNumber(_ text: String) -> Bool {
        var t = text
        return t.withUTF8 { buf in
            guard let base = buf.baseAddress, buf.count > 0 else { return false }
            return JSONNumberParsing.scan(base, 0, buf.count) == buf.count
        }
    }
}
