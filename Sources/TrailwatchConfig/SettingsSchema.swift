// Each setting of a stage kind is declared once, as one entry of its config's `settings` schema:
// the key a pipeline file writes, the property it lands in (whose initial value is the default),
// the checks its value must pass, and the sentence the reference prints. Decoding, the rejection
// of unknown keys and `trailwatch stages` (and so the README's stage reference) all read it.

/// A group of settings decoded from one YAML mapping: a stage kind's config, or a nested section
/// such as `multiline:` or a sink's `buffer:`.
///
/// Conformers give `init()` (every property at its default) and ``settings``; decoding is
/// provided. Checks that involve several settings go in ``validate(at:)``.
public protocol SettingsSection: Decodable, Sendable {
    /// Every property at its default.
    init()
    /// Every setting, in the order the reference lists them (and decoding runs).
    static var settings: SettingsSchema<Self> { get }
    /// Checks across settings, after each setting decoded (`codingPath`: where the section is).
    mutating func validate(at codingPath: [any CodingKey]) throws
    /// Whether decoding rejects unknown keys itself: true for nested sections; false for a stage's
    /// top-level settings, whose unknown keys the loader reports (every one, with `type` and
    /// `inputs` among the expected keys, before decoding).
    static var reportsUnknownKeysItself: Bool { get }
}

extension SettingsSection {
    public mutating func validate(at codingPath: [any CodingKey]) throws {}
    public static var reportsUnknownKeysItself: Bool { true }

    public init(from decoder: any Decoder) throws {
        self.init()
        try Self.settings.decode(into: &self, from: decoder, rejectingUnknownKeys: Self.reportsUnknownKeysItself)
    }

    /// The coding key of the setting stored at `keyPath`, for errors ``validate(at:)`` throws.
    public static func key(_ keyPath: AnyKeyPath) -> AnyCodingKey { settings.key(for: keyPath) }

    /// The coding key of the setting named `name` (one without a property of its own).
    public static func key(_ name: String) -> AnyCodingKey {
        precondition(settings.keys.contains(name), "\(Self.self) has no setting '\(name)'")
        return AnyCodingKey(stringValue: name)
    }
}

/// The typed, Decodable settings of one stage kind (see ``SettingsSection``).
///
/// The loader rejects keys the schema does not list with a "did you mean" hint before decoding.
/// Checks (a setting's `check`, ``SettingsSection/validate(at:)``) throw ``SettingError`` for
/// problems Decodable cannot see (ranges, patterns that do not compile, settings that exclude
/// each other); every error is reported at the setting's place in the file.
public protocol StageConfig: SettingsSection {}

extension StageConfig {
    public static var reportsUnknownKeysItself: Bool { false }
}

/// A setting's value that the reference can name and print: `duration`, `5s`.
public protocol SettingValue: Decodable, Sendable {
    /// What the setting takes, for the reference: "duration", "size", "`json` or `raw`".
    static var settingType: String { get }
    /// The value as a pipeline file writes it (defaults in the reference).
    var settingText: String { get }
}

/// A problem with one setting's value, found by a setting's `check`.
public struct SettingIssue: Error, Sendable {
    public var message: String
    public var expected: String?

    public init(_ message: String, expected: String? = nil) {
        self.message = message
        self.expected = expected
    }

    /// `N is out of range (expected EXPECTED)` unless `range` holds the value.
    public static func outside<V: Comparable & CustomStringConvertible & Sendable>(_ range: ClosedRange<V>, expected: String) -> @Sendable (V) -> SettingIssue? {
        { range.contains($0) ? nil : SettingIssue("\($0) is out of range", expected: expected) }
    }
}

/// What the reference prints about one setting.
public struct SettingReference: Sendable, Encodable, Equatable {
    /// The key as written in a pipeline file (`max_line_bytes`); nested ones are written `multiline.mode`.
    public var key: String
    public var type: String
    public var required: Bool
    /// The default as a pipeline file would write it (`5s`); nil when ``defaultNote`` says it or there is none.
    public var defaultValue: String?
    /// What applies when the setting is not given, when no value says it ("the component id").
    public var defaultNote: String?
    public var doc: String
    /// The settings of a nested section (`multiline`, `buffer`).
    public var settings: [SettingReference]

    enum CodingKeys: String, CodingKey { case key, type, required, defaultValue = "default", defaultNote, doc, settings }

    /// The same with `prefix` before its key and its nested settings' keys (`http.` + `tls.key`).
    func prefixed(_ prefix: String) -> SettingReference {
        guard !prefix.isEmpty else { return self }
        var copy = self
        copy.key = prefix + key
        copy.settings = settings.map { $0.prefixed(prefix) }
        return copy
    }
}

/// One setting of `Config`: its key, how it decodes and what the reference says about it.
public struct Setting<Config: SettingsSection>: Sendable {
    public typealias Container = KeyedDecodingContainer<AnyCodingKey>

    public let key: String
    public let type: String
    public let required: Bool
    public let doc: String
    /// The property the setting decodes into, when it has one of its own.
    let keyPath: (AnyKeyPath & Sendable)?
    /// The default, read from a default config (nil: none).
    let defaultValue: @Sendable (Config) -> String?
    let defaultNote: String?
    let nested: @Sendable () -> [SettingReference]
    /// Runs when the key is given (for a required setting: also when it is not, to report it).
    let decode: @Sendable (inout Config, Container, AnyCodingKey) throws -> Void

    init(key: String, type: String, required: Bool, doc: String, keyPath: (AnyKeyPath & Sendable)?,
         defaultValue: @escaping @Sendable (Config) -> String? = { _ in nil }, defaultNote: String? = nil, nested: @escaping @Sendable () -> [SettingReference] = { [] },
         decode: @escaping @Sendable (inout Config, Container, AnyCodingKey) throws -> Void) {
        self.key = key
        self.type = type
        self.required = required
        self.doc = doc
        self.keyPath = keyPath
        self.defaultValue = defaultValue
        self.defaultNote = defaultNote
        self.nested = nested
        self.decode = decode
    }

    static func checked<V>(_ value: V, _ check: (@Sendable (V) -> SettingIssue?)?, _ c: Container, _ key: AnyCodingKey) throws -> V {
        if let issue = check?(value) {
            throw SettingError(codingPath: c.codingPath + [key], message: issue.message, expected: issue.expected)
        }
        return value
    }

    /// A setting with a default: the property's initial value.
    public static func setting<V: SettingValue>(_ key: String, _ keyPath: WritableKeyPath<Config, V> & Sendable, _ doc: String,
                                                check: (@Sendable (V) -> SettingIssue?)? = nil) -> Setting {
        Setting(key: key, type: V.settingType, required: false, doc: doc, keyPath: keyPath,
                defaultValue: { $0[keyPath: keyPath].settingText }) { config, c, key in
            if let value = try c.decodeIfPresent(V.self, forKey: key) { config[keyPath: keyPath] = try checked(value, check, c, key) }
        }
    }

    /// A setting without a default (nil until given); `default` says what applies then.
    public static func setting<V: SettingValue>(_ key: String, _ keyPath: WritableKeyPath<Config, V?> & Sendable, _ doc: String,
                                                default note: String? = nil,
                                                check: (@Sendable (V) -> SettingIssue?)? = nil) -> Setting {
        Setting(key: key, type: V.settingType, required: false, doc: doc, keyPath: keyPath, defaultNote: note) { config, c, key in
            if let value = try c.decodeIfPresent(V.self, forKey: key) { config[keyPath: keyPath] = try checked(value, check, c, key) }
        }
    }

    /// A setting every component of the kind must give.
    public static func required<V: SettingValue>(_ key: String, _ keyPath: WritableKeyPath<Config, V> & Sendable, _ doc: String,
                                                 check: (@Sendable (V) -> SettingIssue?)? = nil) -> Setting {
        Setting(key: key, type: V.settingType, required: true, doc: doc, keyPath: keyPath) { config, c, key in
            config[keyPath: keyPath] = try checked(try c.decode(V.self, forKey: key), check, c, key)
        }
    }

    /// A list of strings that may also be written as one string (`include: app.log`).
    public static func strings(_ key: String, _ keyPath: WritableKeyPath<Config, [String]> & Sendable, _ doc: String,
                               required: Bool = false, check: (@Sendable ([String]) -> SettingIssue?)? = nil) -> Setting {
        Setting(key: key, type: "string or list of strings", required: required, doc: doc, keyPath: keyPath,
                defaultValue: { required ? nil : $0[keyPath: keyPath].settingText }) { config, c, key in
            config[keyPath: keyPath] = try checked(try c.decodeStringList(key), check, c, key)
        }
    }

    /// ``strings(_:_:_:required:check:)`` for a property that stays nil unless given.
    public static func strings(_ key: String, _ keyPath: WritableKeyPath<Config, [String]?> & Sendable, _ doc: String) -> Setting {
        Setting(key: key, type: "string or list of strings", required: false, doc: doc, keyPath: keyPath) { config, c, key in
            if c.contains(key) { config[keyPath: keyPath] = try c.decodeStringList(key) }
        }
    }

    /// A nested mapping of settings (`multiline: {start_pattern: …}`), absent unless given.
    public static func section<S: SettingsSection>(_ key: String, _ keyPath: WritableKeyPath<Config, S?> & Sendable, _ doc: String) -> Setting {
        Setting(key: key, type: "mapping", required: false, doc: doc, keyPath: keyPath,
                nested: { S.settings.reference(prefix: key + ".") }) { config, c, key in
            config[keyPath: keyPath] = try c.decodeIfPresent(S.self, forKey: key)
        }
    }

    /// A nested mapping of settings with defaults of its own (`buffer:`).
    public static func section<S: SettingsSection>(_ key: String, _ keyPath: WritableKeyPath<Config, S> & Sendable, _ doc: String) -> Setting {
        Setting(key: key, type: "mapping", required: false, doc: doc, keyPath: keyPath,
                nested: { S.settings.reference(prefix: key + ".") }) { config, c, key in
            if let value = try c.decodeIfPresent(S.self, forKey: key) { config[keyPath: keyPath] = value }
        }
    }

    /// A list of mappings, each a section of its own (`widgets: [{type: metric, …}, …]`); the
    /// reference lists the entries' settings as `key[].setting`.
    public static func sections<S: SettingsSection>(_ key: String, _ keyPath: WritableKeyPath<Config, [S]> & Sendable, _ doc: String,
                                                    required: Bool = false) -> Setting {
        Setting(key: key, type: "list of mappings", required: required, doc: doc, keyPath: keyPath,
                defaultValue: { required ? nil : $0[keyPath: keyPath].isEmpty ? "[]" : nil },
                nested: { S.settings.reference(prefix: key + "[].") }) { config, c, key in
            config[keyPath: keyPath] = try c.decode([S].self, forKey: key)
        }
    }

    /// A setting whose decoding is the kind's own (several spellings, values compiled on the way,
    /// settings that land in one property together): `decode` runs when the key is given, and for
    /// a required setting a missing key is reported before it runs.
    /// `default` is the default as a pipeline file writes it; `note` says what applies otherwise.
    /// `storedAt` names the property it lands in, when one does (for ``SettingsSection/key(_:)-(AnyKeyPath)``).
    public static func custom(_ key: String, type: String, _ doc: String, required: Bool = false, default value: String? = nil,
                              note: String? = nil, storedAt keyPath: (AnyKeyPath & Sendable)? = nil, nested: @escaping @Sendable () -> [SettingReference] = { [] },
                              decode: @escaping @Sendable (inout Config, Container, AnyCodingKey) throws -> Void) -> Setting {
        Setting(key: key, type: type, required: required, doc: doc, keyPath: keyPath, defaultValue: { _ in value }, defaultNote: note,
                nested: nested, decode: decode)
    }
}

/// Every setting of one ``SettingsSection``, in order.
public struct SettingsSchema<Config: SettingsSection>: Sendable {
    public let settings: [Setting<Config>]

    public init(_ settings: Setting<Config>...) { self.init(settings) }

    public init(_ settings: [Setting<Config>]) {
        self.settings = settings
        var seen = Set<String>()
        for setting in settings { precondition(seen.insert(setting.key).inserted, "\(Config.self): setting '\(setting.key)' declared twice") }
    }

    /// The keys a pipeline file may write here.
    public var keys: [String] { settings.map(\.key) }

    /// The coding key of the setting stored at `keyPath`.
    public func key(for keyPath: AnyKeyPath) -> AnyCodingKey {
        guard let setting = settings.first(where: { $0.keyPath.map { $0 as AnyKeyPath } == keyPath }) else {
            preconditionFailure("\(Config.self): no setting is stored at \(keyPath)")
        }
        return AnyCodingKey(stringValue: setting.key)
    }

    /// Decodes every setting into `config` (which holds the defaults), then validates it.
    public func decode(into config: inout Config, from decoder: any Decoder, rejectingUnknownKeys: Bool) throws {
        if rejectingUnknownKeys { try decoder.rejectUnknownKeys(keys) }
        let c = try decoder.container(keyedBy: AnyCodingKey.self)
        for setting in settings {
            let key = AnyCodingKey(stringValue: setting.key)
            if c.contains(key) {
                try setting.decode(&config, c, key)
            } else if setting.required {
                throw DecodingError.keyNotFound(key, DecodingError.Context(codingPath: c.codingPath, debugDescription: "missing"))
            }
        }
        try config.validate(at: c.codingPath)
    }

    /// What the reference prints, defaults read from `Config()`.
    public func reference(prefix: String = "") -> [SettingReference] {
        let defaults = Config()
        return settings.map { setting in
            SettingReference(key: prefix + setting.key, type: setting.type, required: setting.required,
                             defaultValue: setting.required ? nil : setting.defaultValue(defaults),
                             defaultNote: setting.required ? nil : setting.defaultNote, doc: setting.doc,
                             settings: setting.nested().map { $0.prefixed(prefix) })
        }
    }
}

extension KeyedDecodingContainer {
    /// A list of strings that may also be written as a single string.
    public func decodeStringList(_ key: Key) throws -> [String] {
        if let single = try? decode(String.self, forKey: key) { return [single] }
        return try decode([String].self, forKey: key)
    }

    public func decodeStringListIfPresent(_ key: Key) throws -> [String]? {
        guard contains(key) else { return nil }
        return try decodeStringList(key)
    }
}

// MARK: - Values the reference can print

extension String: SettingValue {
    public static var settingType: String { "string" }
    public var settingText: String { isEmpty ? "\"\"" : self }
}

extension Int: SettingValue {
    public static var settingType: String { "whole number" }
    public var settingText: String { String(self) }
}

extension Double: SettingValue {
    public static var settingType: String { "number" }
    public var settingText: String {
        self == rounded() && abs(self) < 1e15 ? String(Int64(self)) : String(self)
    }
}

extension Bool: SettingValue {
    public static var settingType: String { "true or false" }
    public var settingText: String { self ? "true" : "false" }
}

extension ConfigDuration: SettingValue {
    public static var settingType: String { "duration" }
    public var settingText: String { description }
}

extension ByteSize: SettingValue {
    public static var settingType: String { "size" }
    public var settingText: String { description }
}

extension Array: SettingValue where Element: SettingValue {
    public static var settingType: String { "list of " + Element.settingType + (Element.settingType.contains(" or ") ? "" : "s") }
    public var settingText: String { "[" + map(\.settingText).joined(separator: ", ") + "]" }
}

extension Dictionary: SettingValue where Key == String, Value: SettingValue {
    public static var settingType: String { "mapping of names to " + Value.settingType + (Value.settingType.contains(" or ") ? "" : "s") }
    public var settingText: String {
        "{" + sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.settingText)" }.joined(separator: ", ") + "}"
    }
}

extension ConfigEnum {
    public static var settingType: String {
        let names = allCases.map(\.rawValue)
        return names.count == 2 ? "\(names[0]) or \(names[1])" : "one of " + names.joined(separator: ", ")
    }
    public var settingText: String { rawValue }
}
