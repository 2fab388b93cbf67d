import Yams

/// The three sections of a pipeline, in the order data flows.
public enum ComponentSection: String, Sendable, CaseIterable {
    case sources, transforms, sinks

    public var singular: String {
        switch self {
        case .sources: "source"
        case .transforms: "transform"
        case .sinks: "sink"
        }
    }
}

/// A reference from one component's `inputs:` to another component (or one named output of it,
/// written `component.output`).
public struct InputReference: Sendable, Hashable {
    public var component: String
    public var port: String?
    public var location: SourceLocation

    public var text: String { port.map { "\(component).\($0)" } ?? component }

    public init(component: String, port: String? = nil, location: SourceLocation) {
        self.component = component
        self.port = port
        self.location = location
    }
}

/// One component as written in the YAML, before its type-specific settings are decoded.
public struct ComponentDeclaration: @unchecked Sendable {
    public var id: String
    public var section: ComponentSection
    public var type: String
    public var location: SourceLocation
    public var typeLocation: SourceLocation
    public var inputs: [InputReference]
    /// The component's own settings (everything but `type` and `inputs`), as a YAML mapping.
    /// Yams' `Node` is a value type; it is only read after loading.
    public var settings: Node

    public init(id: String, section: ComponentSection, type: String, location: SourceLocation, typeLocation: SourceLocation,
                inputs: [InputReference], settings: Node) {
        self.id = id
        self.section = section
        self.type = type
        self.location = location
        self.typeLocation = typeLocation
        self.inputs = inputs
        self.settings = settings
    }
}

/// Pipeline-wide settings.
public struct GlobalSettings: Sendable, Decodable {
    /// Where state (checkpoints, detector state) lives. Relative paths are relative to the
    /// working directory, like every other path in a pipeline.
    public var dataDir: String = "var"
    /// Batches each stage's input buffer holds before upstream waits (backpressure).
    public var bufferBatches: Int = 8
    /// Longest time a partial batch waits before it is sent on (live mode).
    public var batchTimeout: ConfigDuration = ConfigDuration(milliseconds: 200)
    /// After SIGINT/SIGTERM, how long draining and flushing may take before trailwatch exits
    /// anyway (what was not acknowledged by then is read again at the next start).
    public var shutdownTimeout: ConfigDuration = ConfigDuration(milliseconds: 30_000)
    /// `http:`: serve `/metrics` and `/health` (and dashboards) while running.
    public var http: HTTPSettings?
    /// `query_timeout`: how long one Logs Insights query (dashboard, query page, API) may run.
    public var queryTimeout: ConfigDuration = ConfigDuration(milliseconds: 30_000)

    enum CodingKeys: String, CodingKey, CaseIterable {
        case dataDir = "data_dir", bufferBatches = "buffer_batches", batchTimeout = "batch_timeout"
        case shutdownTimeout = "shutdown_timeout", http
        case queryTimeout = "query_timeout"
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        dataDir = try c.decodeIfPresent(String.self, forKey: .dataDir) ?? dataDir
        bufferBatches = try c.decodeIfPresent(Int.self, forKey: .bufferBatches) ?? bufferBatches
        batchTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .batchTimeout) ?? batchTimeout
        shutdownTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .shutdownTimeout) ?? shutdownTimeout
        http = try c.decodeIfPresent(HTTPSettings.self, forKey: .http)
        queryTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .queryTimeout) ?? queryTimeout
        guard queryTimeout.milliseconds >= 1 && queryTimeout.milliseconds <= 3_600_000 else {
            throw SettingError(codingPath: c.codingPath + [CodingKeys.queryTimeout], message: "\(queryTimeout) is out of range",
                               expected: "a duration from 1ms to 60m (as Logs Insights, which stops queries after 60 minutes)")
        }
        guard bufferBatches >= 1 && bufferBatches <= 4096 else {
            throw SettingError(codingPath: c.codingPath + [CodingKeys.bufferBatches], message: "\(bufferBatches) is out of range",
                               expected: "a whole number from 1 to 4096")
        }
    }
}

/// A parsed pipeline file: its components with locations, ready for the registry to decode.
public struct PipelineDocument: @unchecked Sendable {
    public var file: String
    public var name: String?
    public var settings: GlobalSettings
    public var components: [ComponentDeclaration]
    /// Locations of scalars whose text came from the environment; their values are never printed.
    public var interpolatedLocations: Set<SourceLocation>
    /// The scalar text at each interpolated location, so messages can redact it.
    var interpolatedValues: [SourceLocation: String]
    /// The `tests:` section, as written (read by `trailwatch test`).
    public var tests: Node? = nil
    /// The `dashboards:` section, as written: the dashboard module decodes and checks it (the
    /// planner runs its check, see `PipelinePlanner.documentChecks`), so the configuration
    /// language need not know widgets or queries.
    public var dashboards: Node? = nil

    public func component(_ id: String) -> ComponentDeclaration? { components.first { $0.id == id } }

    /// Removes secret values from a message about `location`.
    public func redact(_ diagnostic: ConfigDiagnostic) -> ConfigDiagnostic {
        guard let value = interpolatedValues[diagnostic.location], !value.isEmpty else { return diagnostic }
        var d = diagnostic
        d.message = d.message.replacingAll(value, with: "<value from environment>")
        return d
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = Substring(self)
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        return result + rest
    }
}

extension Substring {
    fileprivate func range(of target: String) -> Range<Index>? {
        guard !target.isEmpty, count >= target.count else { return nil }
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(target) { return i..<index(i, offsetBy: target.count) }
            i = index(after: i)
        }
        return nil
    }
}

/// `http:` — the process's HTTP server: `/metrics`, `/health`, dashboards, and the AWS APIs of
/// the API sources (`cloudwatch_logs_api`).
public struct HTTPSettings: Sendable, Decodable {
    public var host: String
    public var port: Int
    /// Name of an environment variable holding a token clients must present (Bearer, or Basic
    /// with any user name) for `/metrics`, `/health` and the dashboards. Required unless bound to a
    /// loopback address. The AWS APIs authenticate with SigV4 instead.
    public var authTokenEnv: String?
    /// An SQLite store (the `sqlite` sink's file) to serve the dashboards from.
    public var store: String?
    /// `tls: { certificate: cert.pem, key: key.pem }`: serve HTTPS with these PEM files.
    public var tls: TLS?
    /// SigV4 access keys for the AWS APIs: a file (AWS credentials format, or `ID SECRET` lines)
    /// and/or one key from two environment variables. Secrets are never printed.
    public var accessKeysFile: String?
    public var accessKeyIDEnv: String?
    public var secretAccessKeyEnv: String?
    /// IAM-style policies for the access keys (and `anonymous`, `token`): a YAML file of policy
    /// documents and attachments (see ``AccessPolicyFile``); without it every authenticated caller
    /// may do everything.
    public var accessPoliciesFile: String?
    /// Serve unsigned AWS API requests from loopback addresses (as an anonymous principal).
    public var anonymousOnLoopback = false
    public var maxConnections = 1024
    public var maxBody = ByteSize(bytes: 8 * 1024 * 1024)
    public var idleTimeout = ConfigDuration(milliseconds: 60_000)
    public var requestReadTimeout = ConfigDuration(milliseconds: 30_000)
    public var requestTimeout = ConfigDuration(milliseconds: 60_000)
    /// Longest time a store query (dashboards, `/api/query`, the APIs' queries) may run.
    public var queryTimeout = ConfigDuration(milliseconds: 30_000)

    public struct TLS: Sendable, Decodable {
        public var certificate: String
        public var key: String
        enum CodingKeys: String, CodingKey, CaseIterable { case certificate, key }
        public init(certificate: String, key: String) {
            self.certificate = certificate
            self.key = key
        }
        public init(from decoder: any Decoder) throws {
            try decoder.rejectUnknownKeys(CodingKeys.self)
            let c = try decoder.container(keyedBy: CodingKeys.self)
            certificate = try c.decode(String.self, forKey: .certificate)
            key = try c.decode(String.self, forKey: .key)
        }
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case listen, authTokenEnv = "auth_token_env", store, tls
        case accessKeysFile = "access_keys_file", accessKeyIDEnv = "access_key_id_env", secretAccessKeyEnv = "secret_access_key_env"
        case anonymousOnLoopback = "anonymous_on_loopback", maxConnections = "max_connections", maxBody = "max_body"
        case idleTimeout = "idle_timeout", requestReadTimeout = "request_read_timeout", requestTimeout = "request_timeout"
        case queryTimeout = "query_timeout"
        case accessPoliciesFile = "access_policies_file"
    }

    public init(host: String, port: Int, authTokenEnv: String?, store: String?) {
        self.host = host
        self.port = port
        self.authTokenEnv = authTokenEnv
        self.store = store
    }

    public var isLoopback: Bool { host == "127.0.0.1" || host == "::1" || host == "localhost" }

    public init(from decoder: any Decoder) throws {
        try decoder.rejectUnknownKeys(CodingKeys.self)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let listen = try c.decodeIfPresent(String.self, forKey: .listen) ?? "127.0.0.1:9598"
        guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
            throw SettingError(codingPath: c.codingPath + [CodingKeys.listen], message: "'\(listen)' is not HOST:PORT", expected: "an address like 127.0.0.1:9598")
        }
        host = String(listen[..<colon].filter { $0 != "[" && $0 != "]" })
        self.port = port
        authTokenEnv = try c.decodeIfPresent(String.self, forKey: .authTokenEnv)
        store = try c.decodeIfPresent(String.self, forKey: .store)
        tls = try c.decodeIfPresent(TLS.self, forKey: .tls)
        accessKeysFile = try c.decodeIfPresent(String.self, forKey: .accessKeysFile)
        accessKeyIDEnv = try c.decodeIfPresent(String.self, forKey: .accessKeyIDEnv)
        secretAccessKeyEnv = try c.decodeIfPresent(String.self, forKey: .secretAccessKeyEnv)
        accessPoliciesFile = try c.decodeIfPresent(String.self, forKey: .accessPoliciesFile)
        anonymousOnLoopback = try c.decodeIfPresent(Bool.self, forKey: .anonymousOnLoopback) ?? false
        maxConnections = try c.decodeIfPresent(Int.self, forKey: .maxConnections) ?? maxConnections
        maxBody = try c.decodeIfPresent(ByteSize.self, forKey: .maxBody) ?? maxBody
        idleTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .idleTimeout) ?? idleTimeout
        requestReadTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .requestReadTimeout) ?? requestReadTimeout
        requestTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .requestTimeout) ?? requestTimeout
        queryTimeout = try c.decodeIfPresent(ConfigDuration.self, forKey: .queryTimeout) ?? queryTimeout
        if !isLoopback && authTokenEnv == nil {
            throw SettingError(codingPath: c.codingPath + [CodingKeys.authTokenEnv], message: "is required when listening on \(host)",
                               expected: "the name of an environment variable holding a token, or a loopback address")
        }
        if (accessKeyIDEnv == nil) != (secretAccessKeyEnv == nil) {
            throw SettingError(codingPath: c.codingPath + [accessKeyIDEnv == nil ? CodingKeys.accessKeyIDEnv : CodingKeys.secretAccessKeyEnv],
                               message: "access_key_id_env and secret_access_key_env go together", expected: "both variable names, or neither")
        }
        guard (1...1_000_000).contains(maxConnections) else {
            throw SettingError(codingPath: c.codingPath + [CodingKeys.maxConnections], message: "\(maxConnections) is out of range", expected: "1 to 1000000")
        }
        guard maxBody.bytes >= 1024 && maxBody.bytes <= 1 << 30 else {
            throw SettingError(codingPath: c.codingPath + [CodingKeys.maxBody], message: "\(maxBody) is out of range", expected: "1KiB to 1GiB")
        }
        for (key, value) in [(CodingKeys.idleTimeout, idleTimeout), (.requestReadTimeout, requestReadTimeout), (.requestTimeout, requestTimeout), (.queryTimeout, queryTimeout)]
            where value.milliseconds < 100 {
            throw SettingError(codingPath: c.codingPath + [key], message: "\(value) is too short", expected: "at least 100ms")
        }
    }
}
