import Foundation
import Yams

/// `workers:` on transforms whose instances are independent (`filter`, `rule`, `mask`, …): how many
/// instances handle batches at once, each on its own thread. Outputs leave in input order either
/// way; `1` runs one instance, as a transform without the setting does.
public enum TransformWorkers: Sendable, Equatable, Decodable, SettingValue {
    /// One instance per CPU core, at most ``automaticMaximum``.
    case auto
    case count(Int)

    /// `auto` stops here: beyond it the batches in flight cost more memory than the cores win.
    public static let automaticMaximum = 8
    /// The most a pipeline may ask for.
    public static let maximum = 64

    public static var settingType: String { "`auto` or a whole number from 1 to \(maximum)" }
    public var settingText: String {
        switch self {
        case .auto: "auto"
        case .count(let n): String(n)
        }
    }

    /// How many instances to run on a machine with `cores` cores.
    public func resolved(cores: Int = ProcessInfo.processInfo.activeProcessorCount) -> Int {
        switch self {
        case .auto: min(max(1, cores), Self.automaticMaximum)
        case .count(let n): n
        }
    }

    public init(from decoder: any Decoder) throws {
        let single = try decoder.singleValueContainer()
        if let number = try? single.decode(Int.self) {
            guard (1...Self.maximum).contains(number) else {
                throw SettingError(codingPath: decoder.codingPath, message: "\(number) is out of range",
                                   expected: "auto or a whole number from 1 to \(Self.maximum)")
            }
            self = .count(number)
            return
        }
        guard (try? single.decode(String.self)) == "auto" else {
            throw SettingError(codingPath: decoder.codingPath, message: "is not a worker count",
                               expected: "auto or a whole number from 1 to \(Self.maximum)")
        }
        self = .auto
    }
}

/// The `workers` key of a transform, decoded on its own (like a sink's `buffer`) so every kind
/// that runs in parallel shares one definition of it.
public struct TransformWorkersEnvelope: StageConfig {
    public var workers = TransformWorkers.auto

    public static let settings = SettingsSchema<TransformWorkersEnvelope>(
        .setting("workers", \.workers, "How many instances handle batches at once, each on a thread of its own (`auto`: one per core, "
                 + "at most \(TransformWorkers.automaticMaximum)); outputs leave in input order either way.")
    )

    public init() {}

    /// Splits a transform's settings into its `workers` part and the rest.
    public static func split(_ settings: Node) -> (workers: Node, rest: Node) {
        let (selected, rest) = ConfigDecoding.split(settings, key: "workers")
        return (selected, rest)
    }
}

extension ConfigDecoding {
    /// Splits a component's settings (a mapping) into the entry named `key` and everything else,
    /// for settings that every kind of a family shares and that are decoded on their own.
    public static func split(_ settings: Node, key: String) -> (selected: Node, rest: Node) {
        guard let mapping = settings.mapping else { return (.mapping(Node.Mapping([])), settings) }
        var selected: [(Node, Node)] = []
        var rest: [(Node, Node)] = []
        for (name, value) in mapping {
            if name.string == key { selected.append((name, value)) } else { rest.append((name, value)) }
        }
        return (.mapping(Node.Mapping(selected, mapping.tag, mapping.style, mapping.mark)),
                .mapping(Node.Mapping(rest, mapping.tag, mapping.style, mapping.mark)))
    }
}
