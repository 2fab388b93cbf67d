import TrailwatchConfig
import TrailwatchRuntime
import Yams

// Typed access to stage kinds for code that rewrites a pipeline (`trailwatch backtest` replays
// an alarm's upstream transforms over archives): what it reads comes from the kinds' decoded
// configs and what it writes is keyed by their `CodingKeys`, so renaming a setting breaks this
// at compile time instead of a backtest at run time.

extension PlannedComponent {
    /// True for an `alarm` transform.
    public var isAlarmTransform: Bool { stage.config is AlarmTransform.Config }

    /// The AlarmName of every alarm an `alarm` transform evaluates (inline definitions, or its
    /// definition file's, relative to `pipelineDirectory`); empty for other components and
    /// when the definition file cannot be read.
    public func alarmNames(pipelineDirectory: String) -> [String] {
        guard let config = stage.config as? AlarmTransform.Config else { return [] }
        return ((try? config.loadDefinitions(pipelineDirectory: pipelineDirectory)) ?? []).map(\.alarmName)
    }

    /// The AES-256 key an `archive` sink encrypts with, as an `archive` source's decryption
    /// settings name it (an environment variable or a file); empty for other components and for
    /// X25519 (public-key) encryption, whose private key the pipeline does not hold.
    public var archiveDecryptionKeys: (environment: [String], files: [String]) {
        guard let config = stage.config as? ArchiveSink.Config, let encryption = config.encryption else { return ([], []) }
        switch encryption.source {
        case .symmetricEnv(let name): return ([name], [])
        case .symmetricFile(let path): return ([], [path])
        case .publicKey, .publicKeyFile: return ([], [])
        }
    }
}

extension ComponentDeclaration {
    /// An `archive` source replaying the files `include` matches; empty key lists are left out.
    public static func archiveSource(id: String, include: [String], decryptionKeyEnv: [String] = [], decryptionKeyFile: [String] = [],
                                     at location: SourceLocation) -> ComponentDeclaration {
        typealias Setting = ArchiveSource.Config.CodingKeys
        var settings: [(Setting, Node)] = [(.include, Node(include.map { Node($0) }))]
        if !decryptionKeyEnv.isEmpty { settings.append((.decryptionKeyEnv, Node(decryptionKeyEnv.map { Node($0) }))) }
        if !decryptionKeyFile.isEmpty { settings.append((.decryptionKeyFile, Node(decryptionKeyFile.map { Node($0) }))) }
        return declaration(ArchiveSource.type, .sources, id: id, inputs: [], settings: settings, at: location)
    }

    /// A `file` sink writing what `input` emits to `path` as JSON lines.
    public static func jsonFileSink(id: String, input: String, path: String, at location: SourceLocation) -> ComponentDeclaration {
        typealias Setting = FileSink.Config.CodingKeys
        return declaration(FileSink.type, .sinks, id: id, inputs: [InputReference(component: input, location: location)],
                           settings: [(Setting.path, Node(path)), (.format, Node(FileSink.LineFormatSetting.json.rawValue))], at: location)
    }

    private static func declaration<Setting: CodingKey>(_ type: String, _ section: ComponentSection, id: String, inputs: [InputReference],
                                                        settings: [(Setting, Node)], at location: SourceLocation) -> ComponentDeclaration {
        ComponentDeclaration(id: id, section: section, type: type, location: location, typeLocation: location, inputs: inputs,
                             settings: Node(settings.map { (Node($0.0.stringValue), $0.1) }))
    }
}
