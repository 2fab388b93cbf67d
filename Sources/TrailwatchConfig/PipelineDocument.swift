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

/// Pipeline-wide settings: the top-level keys of a pipeline file besides its components,
/// `name`, `dashboards` and `tests`. Declared once in ``settings`` (decoding, "did you mean" for
/// unknown keys and the reference in `trailwatch stages` read it).
public struct GlobalSettings: SettingsSection {
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

    public init() {}

    public static let settings = SettingsSchema<GlobalSettings>(
        .setting("data_dir", \.dataDir, "Where state lives: positions, detector and alarm state, spools (`<data_dir>/state/<id>/`)."),
        .setting("buffer_batches", \.bufferBatches, "Batches each stage's input buffer holds before upstream waits (backpressure).",
                 check: SettingIssue.outside(1...4096, expected: "a whole number from 1 to 4096")),
        .setting("batch_timeout", \.batchTimeout, "Live mode: the longest a partial batch waits before it is sent on."),
        .setting("shutdown_timeout", \.shutdownTimeout,
                 "After SIGINT or SIGTERM, the longest draining and flushing may take before trailwatch exits anyway (exit 3; what was not acknowledged is read again at the next start)."),
        .setting("query_timeout", \.queryTimeout, "The longest one Logs Insights query from the dashboards or `/query` pages served by `run` may run.",
                 check: { $0.milliseconds >= 1 && $0.milliseconds <= 3_600_000 ? nil : SettingIssue("\($0) is out of range",
                          expected: "a duration from 1ms to 60m (as Logs Insights, which stops queries after 60 minutes)") }),
        .section("http", \.http, "Serve `/metrics`, `/health`, the dashboards (with `store`) and the AWS APIs of the API sources while running; off unless given.")
    )
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
/// the API sources (`cloudwatch_logs_api`). Declared once in ``settings``.
public struct HTTPSettings: SettingsSection {
    public var host = "127.0.0.1"
    public var port = 9598
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

    public struct TLS: SettingsSection {
        public var certificate: String
        public var key: String

        public init(certificate: String, key: String) {
            self.certificate = certificate
            self.key = key
        }

        public init() { self.init(certificate: "", key: "") }

        public static let settings = SettingsSchema<TLS>(
            .required("certificate", \.certificate, "The server's certificate chain, a PEM file."),
            .required("key", \.key, "Its private key, a PEM file (keep it mode 0600).")
        )
    }

    public init() {}

    public init(host: String, port: Int, authTokenEnv: String?, store: String?) {
        self.host = host
        self.port = port
        self.authTokenEnv = authTokenEnv
        self.store = store
    }

    public var isLoopback: Bool { host == "127.0.0.1" || host == "::1" || host == "localhost" }

    /// Timeouts shorter than this would cut off every real client.
    private static let atLeast100ms: @Sendable (ConfigDuration) -> SettingIssue? = {
        $0.milliseconds < 100 ? SettingIssue("\($0) is too short", expected: "at least 100ms") : nil
    }

    public static let settings = SettingsSchema<HTTPSettings>(
        .custom("listen", type: "HOST:PORT", "The address to listen on (`0.0.0.0:9598` for every interface, port 0 for any free one).",
                default: "127.0.0.1:9598") { config, c, key in
            let listen = try c.decode(String.self, forKey: key)
            guard let colon = listen.lastIndex(of: ":"), let port = Int(listen[listen.index(after: colon)...]), (0...65535).contains(port) else {
                throw SettingError(codingPath: c.codingPath + [key], message: "'\(listen)' is not HOST:PORT", expected: "an address like 127.0.0.1:9598")
            }
            config.host = String(listen[..<colon].filter { $0 != "[" && $0 != "]" })
            config.port = port
        },
        .setting("auth_token_env", \.authTokenEnv,
                 "An environment variable holding the token clients present (`Authorization: Bearer`, or Basic with any user) for `/metrics`, `/health`, `/tap` and the dashboards. Required unless `listen` is a loopback address; the AWS APIs use SigV4 instead.",
                 default: "no token (loopback only)"),
        .setting("store", \.store, "A store to serve the dashboards, `/query` and `/api/query` from (an SQLite file or `postgres://…`).", default: "no dashboards"),
        .section("tls", \.tls, "Serve HTTPS with these PEM files."),
        .setting("access_keys_file", \.accessKeysFile,
                 "SigV4 access keys for the AWS APIs: a file in the AWS credentials format, or `ID SECRET` lines (mode 0600; secrets are never printed)."),
        .setting("access_key_id_env", \.accessKeyIDEnv, "One more access key: the environment variable holding its id (with `secret_access_key_env`)."),
        .setting("secret_access_key_env", \.secretAccessKeyEnv, "The environment variable holding that key's secret (with `access_key_id_env`)."),
        .setting("access_policies_file", \.accessPoliciesFile,
                 "IAM-style policies for the access keys (and `anonymous`, `token`): a YAML file of policy documents and attachments.",
                 default: "every authenticated caller may do everything"),
        .setting("anonymous_on_loopback", \.anonymousOnLoopback, "Serve unsigned AWS API requests from loopback addresses, as an anonymous principal."),
        .setting("max_connections", \.maxConnections, "Connections open at once; past it the server stops accepting until one closes.",
                 check: SettingIssue.outside(1...1_000_000, expected: "1 to 1000000")),
        .setting("max_body", \.maxBody, "One request body (413 beyond).",
                 check: { $0.bytes >= 1024 && $0.bytes <= 1 << 30 ? nil : SettingIssue("\($0) is out of range", expected: "1KiB to 1GiB") }),
        .setting("idle_timeout", \.idleTimeout, "A connection without a request in progress is closed after this long.", check: atLeast100ms),
        .setting("request_read_timeout", \.requestReadTimeout, "A request must arrive completely (head and body) within this long of its first byte; a client trickling bytes is cut off.",
                 check: atLeast100ms),
        .setting("request_timeout", \.requestTimeout, "The longest a handler may take to answer (503 beyond).", check: atLeast100ms),
        .setting("query_timeout", \.queryTimeout, "The longest a store query (dashboards, `/api/query`, the AWS APIs' queries) may run (503 with a message beyond).", check: atLeast100ms)
    )

    public func validate(at codingPath: [any CodingKey]) throws {
        if !isLoopback && authTokenEnv == nil {
            throw SettingError(codingPath: codingPath + [Self.key(\HTTPSettings.authTokenEnv)], message: "is required when listening on \(host)",
                               expected: "the name of an environment variable holding a token, or a loopback address")
        }
        if (accessKeyIDEnv == nil) != (secretAccessKeyEnv == nil) {
            throw SettingError(codingPath: codingPath + [Self.key(accessKeyIDEnv == nil ? \HTTPSettings.accessKeyIDEnv : \HTTPSettings.secretAccessKeyEnv)],
                               message: "access_key_id_env and secret_access_key_env go together", expected: "both variable names, or neither")
        }
    }
}
