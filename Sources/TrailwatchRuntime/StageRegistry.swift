import TrailwatchCore
import TrailwatchConfig
import Yams

/// What `validate` may look at beyond the stage's own settings.
public struct ValidationContext: Sendable {
    public var file: String
    public var component: String
    /// Location of the component's id, for diagnostics about the whole component.
    public var location: SourceLocation
    public var pipelineDirectory: String
    public var environment: [String: String]
}

/// A source kind: one file implements it, one registry line adds it.
public protocol SourceKind: SendableMetatype {
    associatedtype Config: StageConfig
    static var type: String { get }
    /// One line for `trailwatch validate --list-types` and the README.
    static var summary: String { get }
    static func produces(_ config: Config) -> Set<EventKind>
    /// Checks that need more than decoding (files that must exist, definitions to load).
    static func check(_ config: Config, _ context: ValidationContext) -> [ConfigDiagnostic]
    static func make(_ config: Config, _ context: StageContext) throws -> any Source
}

/// A transform kind: one file implements it, one registry line adds it.
public protocol TransformKind: SendableMetatype {
    associatedtype Config: StageConfig
    static var type: String { get }
    static var summary: String { get }
    static func accepts(_ config: Config) -> Set<EventKind>
    /// What it emits, given what it is fed.
    static func produces(_ config: Config, fedWith inputs: Set<EventKind>) -> Set<EventKind>
    /// Named outputs (`route`), addressed as `component.port`; empty when only the main output exists.
    static func ports(_ config: Config) -> [String]
    /// What one output emits (`port` nil: the main output); by default everything the transform produces.
    static func produces(_ config: Config, fedWith inputs: Set<EventKind>, at port: String?) -> Set<EventKind>
    static func check(_ config: Config, _ context: ValidationContext) -> [ConfigDiagnostic]
    static func make(_ config: Config, _ context: StageContext) throws -> any Transform
}

/// A sink kind: one file implements it, one registry line adds it.
public protocol SinkKind: SendableMetatype {
    associatedtype Config: StageConfig
    static var type: String { get }
    static var summary: String { get }
    static func accepts(_ config: Config) -> Set<EventKind>
    static func check(_ config: Config, _ context: ValidationContext) -> [ConfigDiagnostic]
    static func make(_ config: Config, _ context: StageContext) throws -> any Sink
    /// Files the sink writes and nothing else may (setting name, path): two sinks naming the same
    /// file would interleave their records, so the planner refuses it.
    static func exclusiveFiles(_ config: Config) -> [(setting: String, path: String)]
}

extension SourceKind { public static func check(_ config: Config, _ context: ValidationContext) -> [ConfigDiagnostic] { [] } }
extension TransformKind {
    public static func check(_ config: Config, _ context: ValidationContext) -> [ConfigDiagnostic] { [] }
    public static func ports(_ config: Config) -> [String] { [] }
    public static func produces(_ config: Config, fedWith inputs: Set<EventKind>, at port: String?) -> Set<EventKind> {
        produces(config, fedWith: inputs)
    }
}
extension SinkKind {
    public static func check(_ config: Config, _ context: ValidationContext) -> [ConfigDiagnostic] { [] }
    public static func exclusiveFiles(_ config: Config) -> [(setting: String, path: String)] { [] }
}

/// How to build a stage instance once its config has decoded.
public enum StageFactory: Sendable {
    case source(@Sendable (StageContext) throws -> any Source)
    case transform(@Sendable (StageContext) throws -> any Transform)
    case sink(@Sendable (StageContext) throws -> any Sink)
}

/// A component whose settings decoded: everything the planner and runner need, type-erased.
public struct ResolvedStage: Sendable {
    public var accepts: Set<EventKind>
    /// What the output named by the port (nil: the main output) produces when the stage is fed
    /// the given kinds.
    public var produces: @Sendable (_ fedWith: Set<EventKind>, _ port: String?) -> Set<EventKind>
    public var ports: [String]
    public var check: @Sendable (ValidationContext) -> [ConfigDiagnostic]
    public var factory: StageFactory
    /// The settings as the kind decoded them: code that needs one kind's settings (`backtest`
    /// looks for alarm transforms) casts to that kind's config type instead of reading YAML.
    public var config: any StageConfig
    /// A sink's `buffer:` settings (defaults elsewhere).
    public var buffer = SinkBufferSettings()
    /// Files only this component may write (see ``SinkKind/exclusiveFiles(_:)``).
    public var exclusiveFiles: [(setting: String, path: String)] = []
}

/// A registered stage kind, type-erased.
public struct StageDescriptor: Sendable {
    public let type: String
    public let section: ComponentSection
    public let summary: String
    let decode: @Sendable (_ settings: Node, _ file: String, _ component: String) -> Result<ResolvedStage, ConfigError>
}

/// Every stage kind the binary knows, by section and type name.
public struct StageRegistry: Sendable {
    public private(set) var descriptors: [ComponentSection: [String: StageDescriptor]] = [:]

    public init() {}

    public func descriptor(section: ComponentSection, type: String) -> StageDescriptor? { descriptors[section]?[type] }

    public func types(in section: ComponentSection) -> [String] { (descriptors[section] ?? [:]).keys.sorted() }

    private mutating func add(_ descriptor: StageDescriptor) {
        precondition(descriptors[descriptor.section]?[descriptor.type] == nil, "\(descriptor.type) registered twice")
        descriptors[descriptor.section, default: [:]][descriptor.type] = descriptor
    }

    public mutating func register<K: SourceKind>(_ kind: K.Type) {
        add(StageDescriptor(type: K.type, section: .sources, summary: K.summary) { node, file, component in
            ConfigDecoding.decode(K.Config.self, from: node, file: file, component: component).map { config in
                ResolvedStage(accepts: [], produces: { _, _ in K.produces(config) }, ports: [],
                              check: { K.check(config, $0) }, factory: .source { try K.make(config, $0) }, config: config)
            }
        })
    }

    public mutating func register<K: TransformKind>(_ kind: K.Type) {
        add(StageDescriptor(type: K.type, section: .transforms, summary: K.summary) { node, file, component in
            ConfigDecoding.decode(K.Config.self, from: node, file: file, component: component).map { config in
                ResolvedStage(accepts: K.accepts(config), produces: { K.produces(config, fedWith: $0, at: $1) }, ports: K.ports(config),
                              check: { K.check(config, $0) }, factory: .transform { try K.make(config, $0) }, config: config)
            }
        })
    }

    public mutating func register<K: SinkKind>(_ kind: K.Type) {
        add(StageDescriptor(type: K.type, section: .sinks, summary: K.summary) { node, file, component in
            let (bufferNode, rest) = SinkBufferEnvelope.split(node)
            let buffer = ConfigDecoding.decode(SinkBufferEnvelope.self, from: bufferNode, file: file, component: component)
            let stage = ConfigDecoding.decode(K.Config.self, from: rest, file: file, component: component)
            switch (stage, buffer) {
            case (.success(let config), .success(let envelope)):
                var resolved = ResolvedStage(accepts: K.accepts(config), produces: { _, _ in [] }, ports: [],
                                             check: { K.check(config, $0) }, factory: .sink { try K.make(config, $0) }, config: config)
                resolved.buffer = envelope.buffer
                resolved.exclusiveFiles = K.exclusiveFiles(config)
                return .success(resolved)
            case (.failure(let a), .failure(let b)):
                return .failure(ConfigError(a.diagnostics + b.diagnostics))
            case (.failure(let error), _), (_, .failure(let error)):
                return .failure(error)
            }
        })
    }
}
