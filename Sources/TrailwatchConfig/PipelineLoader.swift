import Yams

/// Reads a pipeline YAML file into a ``PipelineDocument``, collecting every structural problem
/// (bad YAML, unknown sections, malformed components, unset environment variables) with its
/// location instead of stopping at the first.
public struct PipelineLoader: Sendable {
    public var environment: [String: String]

    public init(environment: [String: String]) { self.environment = environment }

    static let topLevelKeys = ["name", "sources", "transforms", "sinks"] + GlobalSettings.settings.keys + ["dashboards", "tests"]

    /// Parses `text` (from `file`). Returns the document (nil when nothing usable was found) and
    /// the diagnostics found on the way.
    public func load(text: String, file: String) -> (PipelineDocument?, [ConfigDiagnostic]) {
        var diagnostics: [ConfigDiagnostic] = []
        func at(_ mark: Mark?) -> SourceLocation { SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1) }

        let parsed: Node?
        do {
            let composed = try YAMLBounds.compose(text, file: file)
            if let refused = composed.refused { return (nil, [refused]) }
            parsed = composed.node
        } catch let error as YamlError {
            diagnostics.append(Self.diagnostic(for: error, file: file))
            return (nil, diagnostics)
        } catch {
            diagnostics.append(ConfigDiagnostic(location: at(nil), message: "cannot read YAML: \(error)"))
            return (nil, diagnostics)
        }
        guard var root = parsed else {
            diagnostics.append(ConfigDiagnostic(location: at(nil), message: "the file is empty",
                                                expected: "a mapping with sources, transforms and sinks"))
            return (nil, diagnostics)
        }

        var interpolated: [SourceLocation: String] = [:]
        root = interpolate(root, file: file, diagnostics: &diagnostics, interpolated: &interpolated)

        guard let mapping = root.mapping else {
            diagnostics.append(ConfigDiagnostic(location: at(root.mark), message: "the top level is not a mapping",
                                                expected: "keys name, sources, transforms, sinks"))
            return (nil, diagnostics)
        }

        var document = PipelineDocument(file: file, name: nil, settings: GlobalSettings(), components: [],
                                        interpolatedLocations: Set(interpolated.keys), interpolatedValues: interpolated)
        var settingPairs: [(Node, Node)] = []
        var seen: [String: SourceLocation] = [:]

        for (keyNode, value) in mapping {
            guard let key = keyNode.string else {
                diagnostics.append(ConfigDiagnostic(location: at(keyNode.mark), message: "a top-level key is not a string"))
                continue
            }
            switch key {
            case "name":
                document.name = value.string
            case "tests":
                // Unit tests for `trailwatch test`; `run` and `validate` leave them alone.
                document.tests = value
            case "dashboards":
                document.dashboards = value
            case _ where GlobalSettings.settings.keys.contains(key):
                settingPairs.append((keyNode, value))
            case "sources", "transforms", "sinks":
                let section = ComponentSection(rawValue: key)!
                if let scalar = value.scalar, scalar.string.isEmpty || scalar.string == "~" || scalar.string == "null" { continue }
                guard let components = value.mapping else {
                    diagnostics.append(ConfigDiagnostic(location: at(value.mark), setting: key,
                                                        message: "is not a mapping", expected: "component ids mapped to their settings"))
                    continue
                }
                for (idNode, body) in components {
                    if let component = declaration(idNode: idNode, body: body, section: section, file: file,
                                                   seen: &seen, diagnostics: &diagnostics) {
                        document.components.append(component)
                    }
                }
            default:
                diagnostics.append(ConfigDiagnostic(location: at(keyNode.mark), setting: key, message: "unknown top-level key",
                                                    expected: "one of " + Self.topLevelKeys.joined(separator: ", "),
                                                    suggestion: Suggestions.closest(to: key, among: Self.topLevelKeys)))
            }
        }

        if !settingPairs.isEmpty {
            let node = Node.mapping(Node.Mapping(settingPairs, .implicit, .any, mapping.mark))
            do {
                document.settings = try ConfigDecoding.yamlDecoder.decode(GlobalSettings.self, from: node)
            } catch {
                diagnostics.append(ConfigDecoding.diagnostic(for: error, root: node, file: file, component: nil))
            }
        }
        diagnostics = diagnostics.map(document.redact)
        return (document, diagnostics)
    }

    private func declaration(idNode: Node, body: Node, section: ComponentSection, file: String,
                             seen: inout [String: SourceLocation], diagnostics: inout [ConfigDiagnostic]) -> ComponentDeclaration? {
        func at(_ mark: Mark?) -> SourceLocation { SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1) }
        let location = at(idNode.mark)
        guard let id = idNode.string, !id.isEmpty else {
            diagnostics.append(ConfigDiagnostic(location: location, message: "a component id is not a string"))
            return nil
        }
        guard id.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" }) else {
            diagnostics.append(ConfigDiagnostic(location: location, component: id, message: "the id has characters ids cannot have",
                                                expected: "letters, digits, '_' and '-' ('.' addresses a named output)"))
            return nil
        }
        if let previous = seen[id] {
            diagnostics.append(ConfigDiagnostic(location: location, component: id,
                                                message: "the id is already used at line \(previous.line)", expected: "unique component ids"))
            return nil
        }
        seen[id] = location
        guard let mapping = body.mapping else {
            diagnostics.append(ConfigDiagnostic(location: at(body.mark ?? idNode.mark), component: id, message: "is not a mapping",
                                                expected: "settings with at least 'type'"))
            return nil
        }
        var type: String?
        var typeLocation = location
        var inputs: [InputReference] = []
        var sawInputs = false
        var rest: [(Node, Node)] = []
        for (key, value) in mapping {
            switch key.string {
            case "type":
                typeLocation = at(value.mark)
                type = value.string
                if type == nil || type!.isEmpty {
                    diagnostics.append(ConfigDiagnostic(location: typeLocation, component: id, setting: "type",
                                                        message: "is not a word", expected: "a \(section.singular) type"))
                }
            case "inputs":
                sawInputs = true
                if section == .sources {
                    diagnostics.append(ConfigDiagnostic(location: at(key.mark), component: id, setting: "inputs",
                                                        message: "sources read from the outside world and take no inputs"))
                    continue
                }
                let items: [Node]
                if let list = value.sequence { items = Array(list) } else if value.scalar != nil { items = [value] } else {
                    diagnostics.append(ConfigDiagnostic(location: at(value.mark), component: id, setting: "inputs",
                                                        message: "is not a list", expected: "a list of component ids"))
                    continue
                }
                for item in items {
                    guard let text = item.string, !text.isEmpty else {
                        diagnostics.append(ConfigDiagnostic(location: at(item.mark), component: id, setting: "inputs",
                                                            message: "an input is not a component id", expected: "a component id"))
                        continue
                    }
                    let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
                    guard !parts[0].isEmpty, parts.count == 1 || !parts[1].isEmpty else {
                        diagnostics.append(ConfigDiagnostic(location: at(item.mark), component: id, setting: "inputs",
                                                            message: "'\(text)' is not a component id", expected: "a component id, or ID.OUTPUT for a named output"))
                        continue
                    }
                    inputs.append(InputReference(component: String(parts[0]), port: parts.count > 1 ? String(parts[1]) : nil,
                                                 location: at(item.mark)))
                }
            default:
                rest.append((key, value))
            }
        }
        guard let type else {
            if !diagnostics.contains(where: { $0.component == id && $0.setting == "type" }) {
                diagnostics.append(ConfigDiagnostic(location: location, component: id, setting: "type", message: "is missing",
                                                    expected: "a \(section.singular) type"))
            }
            return nil
        }
        if section != .sources && inputs.isEmpty {
            diagnostics.append(ConfigDiagnostic(location: location, component: id, setting: "inputs",
                                                message: sawInputs ? "is empty: the \(section.singular) is fed by nothing" : "is missing: the \(section.singular) is fed by nothing",
                                                expected: "a list of component ids"))
        }
        return ComponentDeclaration(id: id, section: section, type: type, location: location, typeLocation: typeLocation,
                                    inputs: inputs, settings: .mapping(Node.Mapping(rest, mapping.tag, mapping.style, mapping.mark)))
    }

    private func interpolate(_ node: Node, file: String, diagnostics: inout [ConfigDiagnostic],
                             interpolated: inout [SourceLocation: String]) -> Node {
        switch node {
        case .scalar(var scalar):
            let expander = EnvironmentInterpolation(environment: environment)
            let location = SourceLocation(file: file, line: scalar.mark?.line ?? 1, column: scalar.mark?.column ?? 1)
            do {
                if let expanded = try expander.expand(scalar.string) {
                    if expanded != scalar.string {
                        interpolated[location] = expanded
                        let style = scalar.style
                        scalar.string = expanded
                        scalar.style = style
                    }
                    return .scalar(scalar)
                }
            } catch {
                switch error {
                case .unset(let name):
                    diagnostics.append(ConfigDiagnostic(location: location, message: "environment variable '\(name)' is not set",
                                                        expected: "it set, or a default: ${\(name):-default}"))
                case .malformed(_, let reason):
                    diagnostics.append(ConfigDiagnostic(location: location, message: "malformed ${...} reference",
                                                        expected: reason + " (write $$ for a literal $)"))
                }
            }
            return node
        case .mapping(let mapping):
            let pairs = mapping.map { ($0.key, interpolate($0.value, file: file, diagnostics: &diagnostics, interpolated: &interpolated)) }
            return .mapping(Node.Mapping(pairs, mapping.tag, mapping.style, mapping.mark))
        case .sequence(let sequence):
            let items = sequence.map { interpolate($0, file: file, diagnostics: &diagnostics, interpolated: &interpolated) }
            return .sequence(Node.Sequence(items, sequence.tag, sequence.style, sequence.mark))
        case .alias:
            return node
        }
    }

    public static func diagnostic(for error: YamlError, file: String) -> ConfigDiagnostic {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _):
            var message = "invalid YAML: \(problem)"
            if let context { message += " (\(context.text))" }
            return ConfigDiagnostic(location: SourceLocation(file: file, line: mark.line, column: mark.column), message: message)
        default:
            return ConfigDiagnostic(location: SourceLocation(file: file, line: 1, column: 1), message: "invalid YAML: \(error)")
        }
    }
}
