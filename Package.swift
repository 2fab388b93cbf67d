// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "trailwatch",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "trailwatch", targets: ["trailwatch"]),
        .executable(name: "trailwatch-fuzz", targets: ["TrailwatchFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        // The network edge: one HTTP server (Hummingbird on swift-nio), TLS, one HTTP client stack.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // C helpers glibc hides behind _GNU_SOURCE.
        .target(name: "CShims"),
        // System libraries: zstd for archives, zlib for reading .gz.
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),

        // Pure building blocks: no I/O.
        .target(name: "TrailwatchCore", swiftSettings: strict),

        // User regular expressions in linear time: a lazy DFA and a Pike VM over bytes (no I/O).
        .target(name: "LinearRegex", dependencies: ["CShims"], swiftSettings: strict),

        // Byte-level JSON: path lookups without building trees, a small value parser, a writer.
        .target(name: "ByteJSON", swiftSettings: strict),

        // CloudWatch filter patterns, metric transformations and per-period aggregation (no I/O).
        .target(name: "FilterPatterns", dependencies: ["ByteJSON", "TrailwatchCore", "CShims", "LinearRegex"], swiftSettings: strict),

        // CloudWatch Logs data protection: policies, managed data identifiers as byte-level matchers, masking (no I/O).
        .target(name: "DataProtection", dependencies: ["FilterPatterns"], swiftSettings: strict),

        // EventBridge event patterns, rule indexing and input transformers (no I/O).
        .target(name: "EventPatterns", dependencies: ["ByteJSON"], swiftSettings: strict),

        // CloudTrail trail event selectors (basic and advanced, AWS's JSON shape) over records (no I/O).
        .target(name: "TrailSelectors", dependencies: ["ByteJSON"], swiftSettings: strict),

        // Configuration language: YAML with locations, env interpolation, typed stage configs.
        .target(name: "TrailwatchConfig",
                dependencies: ["TrailwatchCore", "AccessPolicies", .product(name: "Yams", package: "Yams")],
                swiftSettings: strict),

        // The engine: graph, bounded channels, acknowledgements, stage protocols and registry.
        .target(name: "TrailwatchRuntime",
                dependencies: ["TrailwatchCore", "TrailwatchConfig", "AWSWire"],
                swiftSettings: strict),

        // Stage plug-ins: one file per kind, one registry line each.
        .target(name: "TrailwatchStages",
                dependencies: ["TrailwatchCore", "TrailwatchConfig", "TrailwatchRuntime", "ByteJSON", "FilterPatterns", "TrailwatchArchive", "LinearRegex",
                               "EventPatterns", "TrailSelectors", "PatternMining", "InsightsDetection", "Alarms", "TrailwatchStore", "TrailwatchPostgres", "CShims", "TrailwatchAPI", "AWSWire", "DataProtection",
                               .product(name: "AsyncHTTPClient", package: "async-http-client"),
                               .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                               .product(name: "NIOSSL", package: "swift-nio-ssl"),
                               .product(name: "Yams", package: "Yams")],
                swiftSettings: strict),

        // Online log template mining (Drain family) and pattern-rate shifts (no I/O).
        .target(name: "PatternMining", swiftSettings: strict),
        // CloudWatch alarm evaluation: operators, M of N, TreatMissingData (no I/O).
        .target(name: "Alarms", dependencies: ["TrailwatchCore"], swiftSettings: strict),
        // CloudTrail-Insights-style rate and error-rate detectors (no I/O).
        .target(name: "InsightsDetection", swiftSettings: strict),

        // Tamper-evident archives: streaming zstd, gzip reading, digests with SHA-256 chains and Ed25519.
        .target(name: "TrailwatchArchive",
                dependencies: ["TrailwatchCore", "ByteJSON", "CZstd", "CZlib", .product(name: "Crypto", package: "swift-crypto")],
                swiftSettings: strict),

        // The Logs-Insights-style query language: parser and evaluator (no I/O).
        .target(name: "LogsQuery", dependencies: ["TrailwatchCore", "CShims", "ByteJSON", "PatternMining", "LinearRegex"], swiftSettings: strict),

        // The SQLite store: schema and migrations, idempotent writes, retention, CloudTrail lookups.
        .target(name: "TrailwatchStore", dependencies: ["TrailwatchCore", "ByteJSON", "LogsQuery", "CSQLite", "CShims"], swiftSettings: strict),

        // The PostgreSQL store backend (its own module so SQLite-only code stays free of the driver).
        .target(name: "TrailwatchPostgres",
                dependencies: ["TrailwatchCore", "ByteJSON", "LogsQuery", "TrailwatchStore", "CShims", .product(name: "PostgresNIO", package: "postgres-nio"),
                               .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),

        // `trailwatch test`: pipeline unit tests run on the real stages with a virtual clock.
        .target(name: "PipelineTesting",
                dependencies: ["TrailwatchCore", "TrailwatchConfig", "TrailwatchRuntime", "FilterPatterns", "ByteJSON",
                               .product(name: "Yams", package: "Yams")],
                swiftSettings: strict),

        // Dashboard pages over the store: server-rendered HTML and SVG charts.
        .target(name: "TrailwatchDashboard", dependencies: ["TrailwatchCore", "TrailwatchConfig", "TrailwatchStore", "LogsQuery"],
                swiftSettings: strict),

        // The one HTTP server of a process (Hummingbird 2): limits, timeouts, TLS, queries off the event loop.
        .target(name: "TrailwatchHTTP",
                dependencies: ["AWSWire", "AccessPolicies", "TrailwatchCore", "CZlib",
                               .product(name: "HummingbirdCore", package: "hummingbird"),
                               .product(name: "HummingbirdTLS", package: "hummingbird"),
                               .product(name: "NIOCore", package: "swift-nio"),
                               .product(name: "NIOPosix", package: "swift-nio"),
                               .product(name: "NIOHTTP1", package: "swift-nio"),
                               .product(name: "NIOSSL", package: "swift-nio-ssl"),
                               .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),

        // AWS wire protocols (no I/O): SigV4 signing and verification, the awsJson envelopes, AWS error shapes.
        .target(name: "AWSWire", dependencies: ["AccessPolicies", "ByteJSON", .product(name: "Crypto", package: "swift-crypto")], swiftSettings: strict),

        // IAM-style policies for access keys: documents, wildcards, conditions, explicit-deny-wins evaluation (no I/O).
        .target(name: "AccessPolicies", swiftSettings: strict),

        // The CloudWatch Logs API (JSON 1.1), the CloudWatch metrics and alarms API (RPC v2 CBOR, JSON 1.0, query) and
        // CloudTrail's LookupEvents over the store protocols; the cloudwatch_logs_api and cloudwatch_api sources are thin stages over them.
        .target(name: "TrailwatchAPI",
                dependencies: ["AWSWire", "AccessPolicies", "TrailwatchCore", "ByteJSON", "FilterPatterns", "LogsQuery", "TrailwatchStore", "Alarms"],
                swiftSettings: strict),

        // Thin command line.
        .executableTarget(name: "trailwatch",
                          dependencies: ["TrailwatchStages", "TrailwatchRuntime", "TrailwatchConfig", "FilterPatterns", "TrailwatchArchive", "PatternMining", "TrailwatchStore", "LogsQuery", "Alarms", "TrailwatchDashboard", "EventPatterns", "TrailwatchHTTP", "AWSWire", "AccessPolicies", "PipelineTesting",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         "ByteJSON", .product(name: "Logging", package: "swift-log")],
                          swiftSettings: strict, plugins: ["VersionStamp"]),

        // `trailwatch --version` names the commit it was built from.
        .plugin(name: "VersionStamp", capability: .buildTool()),

        .testTarget(name: "AccessPoliciesTests", dependencies: ["AccessPolicies"], swiftSettings: strict),
        // Fuzz targets for the code that reads untrusted bytes (`make fuzz`: libFuzzer; `make test`: a few seconds each).
        .executableTarget(name: "TrailwatchFuzz",
                          dependencies: ["LinearRegex", "FilterPatterns", "DataProtection", "EventPatterns", "LogsQuery", "ByteJSON", "TrailwatchConfig", "TrailwatchCore",
                                         "TrailwatchRuntime", "TrailwatchStages", "AWSWire", "TrailwatchDashboard", "TrailwatchAPI"],
                          swiftSettings: strict),

        .testTarget(name: "LinearRegexTests", dependencies: ["LinearRegex"], swiftSettings: strict),
        .testTarget(name: "AWSWireTests", dependencies: ["AWSWire"], resources: [.copy("Vectors")], swiftSettings: strict),
        .testTarget(name: "TrailwatchHTTPTests", dependencies: ["TrailwatchHTTP", "AWSWire", "AccessPolicies", "TrailwatchTestSupport",
                                                                 .product(name: "AsyncHTTPClient", package: "async-http-client")],
                    swiftSettings: strict),
        .testTarget(name: "TrailwatchAPITests", dependencies: ["TrailwatchAPI", "AWSWire", "TrailwatchCore", "TrailwatchStore", "Alarms"], swiftSettings: strict),
        .testTarget(name: "PatternMiningTests", dependencies: ["PatternMining"], swiftSettings: strict),
        .testTarget(name: "InsightsDetectionTests", dependencies: ["InsightsDetection", "TrailwatchTestSupport"], swiftSettings: strict),
        .testTarget(name: "AlarmsTests", dependencies: ["Alarms", "TrailwatchCore"], swiftSettings: strict),
        .testTarget(name: "DataProtectionTests", dependencies: ["DataProtection", "FilterPatterns"], swiftSettings: strict),
        .testTarget(name: "EventPatternsTests", dependencies: ["EventPatterns", "ByteJSON"], swiftSettings: strict),
        .testTarget(name: "TrailSelectorsTests", dependencies: ["TrailSelectors", "ByteJSON"], swiftSettings: strict),
        .testTarget(name: "FilterPatternsTests", dependencies: ["FilterPatterns", "TrailwatchCore", "ByteJSON"], swiftSettings: strict),

        .testTarget(name: "PipelineTestingTests",
                    dependencies: ["PipelineTesting", "TrailwatchConfig", "TrailwatchRuntime", "TrailwatchStages", "TrailwatchCore"],
                    swiftSettings: strict),

        // Helpers the test targets share: scratch directories, repository paths, in-process pipelines, polling.
        .target(name: "TrailwatchTestSupport",
                dependencies: ["TrailwatchCore", "TrailwatchConfig", "TrailwatchRuntime", "TrailwatchStages", "TrailwatchStore", "LogsQuery"],
                path: "Tests/TrailwatchTestSupport", swiftSettings: strict),
        .testTarget(name: "TrailwatchCoreTests", dependencies: ["TrailwatchCore"], swiftSettings: strict),
        // Located diagnostics of the configuration language, through the planner and the built-in stage kinds.
        .testTarget(name: "TrailwatchConfigTests",
                    dependencies: ["TrailwatchConfig", "TrailwatchRuntime", "TrailwatchStages", "TrailwatchTestSupport"], swiftSettings: strict),
        .testTarget(name: "TrailwatchRuntimeTests",
                    dependencies: ["TrailwatchCore", "TrailwatchConfig", "TrailwatchRuntime", "TrailwatchStages", "TrailwatchDashboard", "TrailwatchTestSupport"],
                    swiftSettings: strict),
        // The SQLite store and the Logs Insights query conformance tables (PostgreSQL runs them in the integration target).
        .testTarget(name: "TrailwatchStoreTests",
                    dependencies: ["TrailwatchCore", "TrailwatchStore", "LogsQuery", "ByteJSON", "TrailwatchTestSupport"], swiftSettings: strict),
        .testTarget(name: "TrailwatchStagesTests",
                    dependencies: ["Alarms", "TrailwatchCore", "TrailwatchConfig", "TrailwatchRuntime", "TrailwatchStages", "TrailwatchTestSupport"],
                    swiftSettings: strict),

        // Integration: whole pipelines and the `trailwatch` binary (commands, servers, stores, clients).
        .testTarget(name: "TrailwatchTests",
                    dependencies: ["TrailwatchCore", "TrailwatchConfig", "TrailwatchRuntime", "TrailwatchStages", "FilterPatterns", "ByteJSON", "TrailwatchArchive", "TrailwatchStore", "TrailwatchPostgres", "TrailwatchDashboard", "LogsQuery",
                                   "TrailwatchAPI", "AWSWire", "TrailwatchTestSupport"],
                    swiftSettings: strict),
    ]
)
