import Alarms
import Foundation
import TrailwatchConfig
import Yams

/// Reads alarm definitions from a file: PutMetricAlarm JSON (or the same keys in YAML) holding
/// one definition, a list of them, or `aws cloudwatch describe-alarms` output (`MetricAlarms`).
public enum AlarmDefinitionFile {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    private struct DescribeAlarms: Decodable {
        var MetricAlarms: [AlarmDefinition]
    }

    public static func load(_ path: String) throws(Failure) -> [AlarmDefinition] {
        let text: String
        do { text = try YAMLBounds.readDocument(atPath: path) } catch {
            throw Failure(description: "\(path): \(error)")
        }
        let definitions: [AlarmDefinition]
        do {
            definitions = try decode(Data(text.utf8), path: path)
        } catch let error as DecodingError {
            throw Failure(description: "\(path): \(describe(error))")
        } catch {
            throw Failure(description: "\(path): \(error)")
        }
        guard !definitions.isEmpty else { throw Failure(description: "\(path): no alarm definitions") }
        for definition in definitions {
            do { try definition.validate() } catch {
                throw Failure(description: "\(path): alarm '\(definition.alarmName)': \(error)")
            }
        }
        return definitions
    }

    static func decode(_ data: Data, path: String = "definition") throws -> [AlarmDefinition] {
        let text = String(decoding: data, as: UTF8.self)
        let first = text.first(where: { !$0.isWhitespace })
        if first == "{" || first == "[" {
            let decoder = JSONDecoder()
            if first == "[" { return try decoder.decode([AlarmDefinition].self, from: data) }
            if let described = try? decoder.decode(DescribeAlarms.self, from: data) { return described.MetricAlarms }
            return [try decoder.decode(AlarmDefinition.self, from: data)]
        }
        // YAML may hide a billion-laughs tree behind aliases: bounded before anything expands it.
        let (composed, refused) = try YAMLBounds.compose(text, file: path)
        if let refused { throw Failure(description: refused.message) }
        guard let node = composed else { return [] }
        let decoder = YAMLDecoder(encoding: .utf8)
        if let list = try? decoder.decode([AlarmDefinition].self, from: node) { return list }
        if let described = try? decoder.decode(DescribeAlarms.self, from: node) { return described.MetricAlarms }
        return [try decoder.decode(AlarmDefinition.self, from: node)]
    }

    /// "EvaluationPeriods: missing" rather than Foundation's debug text.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])): missing"
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): expected \(type == String.self ? "a string" : type == Int.self ? "a whole number" : type == Double.self ? "a number" : "\(type)")"
        case .dataCorrupted(let context):
            let underlying = (context.underlyingError as NSError?)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return "\(path(context.codingPath)): \(underlying ?? context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}
