import Yams

/// The typed, Decodable settings of one stage kind.
///
/// `CodingKeys` lists every setting the kind accepts; the loader rejects others with a
/// "did you mean" hint before decoding. Throw ``SettingError`` from `init(from:)` for
/// problems Decodable cannot see (ranges, patterns that do not compile).
public protocol StageConfig: Decodable, Sendable {
    associatedtype CodingKeys: CodingKey & CaseIterable
}

/// Decodes stage configs from YAML nodes and turns decoding failures into located diagnostics.
public enum ConfigDecoding {
    /// One decoder for every setting: building a `YAMLDecoder` reads the whole process environment
    /// (its default encoding looks there), which made loading 85,000 components take minutes.
    /// Decoding from a node only reads the decoder's options, so sharing it is safe.
    nonisolated(unsafe) static let yamlDecoder = YAMLDecoder(encoding: .utf8)

    /// Decodes `T` from `settings` (a mapping), reporting unknown keys and the first decoding
    /// problem as diagnostics for `component`.
    public static func decode<T: StageConfig>(_ type: T.Type, from settings: Node, file: String,
                                              component: String) -> Result<T, ConfigError> {
        var diagnostics: [ConfigDiagnostic] = []
        let known = T.CodingKeys.allCases.map(\.stringValue)
        if let mapping = settings.mapping {
            for (key, _) in mapping {
                let name = key.string ?? "?"
                if !known.contains(name) {
                    diagnostics.append(ConfigDiagnostic(
                        location: location(of: key, file: file), component: component, setting: name,
                        message: "unknown setting",
                        expected: known.isEmpty ? "no settings for this type" : "one of type, inputs, " + known.joined(separator: ", "),
                        suggestion: Suggestions.closest(to: name, among: known)))
                }
            }
        }
        do {
            let value = try ConfigDecoding.yamlDecoder.decode(T.self, from: settings)
            if diagnostics.isEmpty { return .success(value) }
        } catch {
            diagnostics.append(diagnostic(for: error, root: settings, file: file, component: component))
        }
        return .failure(ConfigError(diagnostics))
    }

    /// Decodes a value of any Decodable type standing alone (an alarm definition file, say).
    public static func decode<T: Decodable>(_ type: T.Type, yaml: String, file: String) -> Result<T, ConfigError> {
        let node: Node?
        do {
            let composed = try YAMLBounds.compose(yaml, file: file)
            if let refused = composed.refused { return .failure(ConfigError([refused])) }
            node = composed.node
        } catch let error as YamlError {
            return .failure(ConfigError([PipelineLoader.diagnostic(for: error, file: file)]))
        } catch {
            return .failure(ConfigError([ConfigDiagnostic(location: SourceLocation(file: file, line: 1, column: 1), message: "\(error)")]))
        }
        guard let node else {
            return .failure(ConfigError([ConfigDiagnostic(location: SourceLocation(file: file, line: 1, column: 1), message: "the file is empty")]))
        }
        do { return .success(try ConfigDecoding.yamlDecoder.decode(T.self, from: node)) } catch {
            return .failure(ConfigError([diagnostic(for: error, root: node, file: file, component: nil)]))
        }
    }

    /// Where the setting at `path` (`["path"]`, `["buffer", "max_batches"]`) is written in a component's settings.
    public static func location(ofSetting path: [String], in settings: Node, file: String) -> SourceLocation {
        location(of: locate(path, in: settings).value, file: file)
    }

    /// Decodes any Decodable from a YAML node (types check their own keys), with the first problem
    /// as a located diagnostic.
    public static func decode<T: Decodable>(_ type: T.Type, node: Node, file: String) -> Result<T, ConfigError> {
        do { return .success(try ConfigDecoding.yamlDecoder.decode(T.self, from: node)) } catch {
            return .failure(ConfigError([diagnostic(for: error, root: node, file: file, component: nil)]))
        }
    }

    /// Decodes a top-level section kept as written (`dashboards:`) by the module that owns it, with
    /// its first problem located and named from the section's key (`dashboards.main.widgets[0].type`),
    /// as the loader names pipeline-wide settings.
    public static func decode<T: Decodable>(_ type: T.Type, section key: String, value: Node, file: String) -> Result<T, ConfigError> {
        decode(Section<T>.self, node: Node([(Node(key), value)]), file: file).map(\.value)
    }

    /// A mapping of one key (the section's) to a `T`.
    private struct Section<T: Decodable>: Decodable {
        var value: T
        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: AnyCodingKey.self)
            guard let key = c.allKeys.first else {
                throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "the section is missing"))
            }
            value = try c.decode(T.self, forKey: key)
        }
    }

    static func location(of node: Node?, file: String) -> SourceLocation {
        SourceLocation(file: file, line: node?.mark?.line ?? 1, column: node?.mark?.column ?? 1)
    }

    /// Where the setting at `path` stands: the deepest node that exists along it.
    static func locate(_ path: [String], in root: Node) -> (value: Node, key: Node?) {
        var node = root
        var keyNode: Node?
        for component in path {
            if let mapping = node.mapping, let pair = mapping.first(where: { $0.key.string == component }) {
                keyNode = pair.key
                node = pair.value
            } else if let sequence = node.sequence, let index = indexValue(component), index < sequence.count {
                keyNode = nil
                node = sequence[sequence.index(sequence.startIndex, offsetBy: index)]
            } else {
                break
            }
        }
        return (node, keyNode)
    }

    static func indexValue(_ component: String) -> Int? {
        if component.hasPrefix("Index ") { return Int(component.dropFirst(6)) }
        return Int(component)
    }

    /// `metric.dimensions`, `include[0]`.
    static func settingName(_ path: [String]) -> String? {
        guard !path.isEmpty else { return nil }
        var text = ""
        for component in path {
            if let index = indexValue(component) { text += "[\(index)]" } else { text += text.isEmpty ? component : ".\(component)" }
        }
        return text
    }

    static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type, is Int64.Type, is Int32.Type, is UInt.Type, is UInt64.Type: return "a whole number"
        case is Double.Type, is Float.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") || name.hasPrefix("[") || name.hasSuffix("Sequence") { return "a list" }
            if name.hasPrefix("Dictionary") || name.hasSuffix("Mapping") { return "a mapping" }
            if name.hasSuffix("Scalar") { return "a single value" }
            return "a \(name)"
        }
    }

    static func diagnostic(for error: any Error, root: Node, file: String, component: String?) -> ConfigDiagnostic {
        if let setting = error as? SettingError {
            let (node, key) = locate(setting.codingPath, in: root)
            var location = self.location(of: node, file: file)
            if setting.codingPath.isEmpty == false, locate(setting.codingPath, in: root).value == root, let key { location = self.location(of: key, file: file) }
            if let column = setting.columnInValue, let scalar = node.scalar {
                // Point into the value; quoted scalars start one column after the quote.
                let quoted = scalar.style == .singleQuoted || scalar.style == .doubleQuoted
                location.column += column - 1 + (quoted ? 1 : 0)
            }
            return ConfigDiagnostic(location: location, component: component, setting: settingName(setting.codingPath),
                                    message: setting.message, expected: setting.expected, suggestion: setting.suggestion)
        }
        if let decoding = error as? DecodingError {
            switch decoding {
            case .keyNotFound(let key, let context):
                let path = context.codingPath.map(\.stringValue)
                let (node, _) = locate(path, in: root)
                return ConfigDiagnostic(location: location(of: node, file: file), component: component,
                                        setting: settingName(path + [key.stringValue]), message: "is missing",
                                        expected: "this setting to be given")
            case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
                let path = context.codingPath.map(\.stringValue)
                let (node, _) = locate(path, in: root)
                let found: String
                switch node {
                case .mapping: found = "a mapping"
                case .sequence: found = "a list"
                case .scalar(let s): found = s.string.isEmpty ? "nothing" : "'\(s.string)'"
                case .alias: found = "an alias"
                }
                return ConfigDiagnostic(location: location(of: node, file: file), component: component,
                                        setting: settingName(path), message: "found \(found)", expected: describe(type))
            case .dataCorrupted(let context):
                let path = context.codingPath.map(\.stringValue)
                let (node, _) = locate(path, in: root)
                return ConfigDiagnostic(location: location(of: node, file: file), component: component,
                                        setting: settingName(path), message: context.debugDescription)
            @unknown default:
                break
            }
        }
        if let yaml = error as? YamlError {
            return PipelineLoader.diagnostic(for: yaml, file: file)
        }
        return ConfigDiagnostic(location: location(of: root, file: file), component: component, message: "\(error)")
    }
}
