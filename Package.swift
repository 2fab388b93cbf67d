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

        // EventBridge event patterns, rule indexing and input transformers (no I/O).
        .target(name: "EventPatterns", dependencies: ["ByteJSON"], swiftSettings: strict),

        // CloudTrail trail event selectors (basic and advanced, AWS's JSON shape) over records (no I/O).
        .target(name: "TrailSelectors", dependencies: ["ByteJSON"], swiftSettings: strict),

        // Configuration language: YAML with locations, env interpolation, typed stage configs.
        .target(name: "TrailwatchConfig",
                dependencies: ["TrailwatchCore", "LogsQuery", .product(name: "Yams", package: "Yams")],
                swiftSettings: strict),

        // The engine: graph, bounded channels, acknowledgements, stage protocols and registry.
        .target(name: "TrailwatchRuntime",
                dependencies: ["TrailwatchCore", "TrailwatchConfig"],
                swiftSettings: strict),

        // Stage plug-ins: one file per kind, one registry line each.
        .target(name: "TrailwatchStages",
                dependencies: ["TrailwatchCore", "TrailwatchConfig", "TrailwatchRuntime", "ByteJSON", "FilterPatterns", "TrailwatchArchive", "LinearRegex",
                               "EventPatterns", "TrailSelectors", "PatternMining", "InsightsDetection", "Alarms", "TrailwatchStore", "CShims",
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

        // Dashboard pages over the store: server-rendered HTML and SVG charts.
        .target(name: "TrailwatchDashboard", dependencies: ["TrailwatchCore", "TrailwatchConfig", "TrailwatchStore", "LogsQuery"],
                swiftSettings: strict),

        // Thin command line.
        .executableTarget(name: "trailwatch",
                          dependencies: ["TrailwatchStages", "TrailwatchRuntime", "TrailwatchConfig", "FilterPatterns", "TrailwatchArchive", "PatternMining", "TrailwatchStore", "LogsQuery", "Alarms", "TrailwatchDashboard", "EventPatterns",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: strict),

        // Fuzz targets for the code that reads untrusted bytes (`make fuzz`: libFuzzer; `make test`: a few seconds each).
        .executableTarget(name: "TrailwatchFuzz",
                          dependencies: ["LinearRegex", "FilterPatterns", "LogsQuery", "ByteJSON", "TrailwatchConfig", "TrailwatchCore",
                                         "TrailwatchRuntime", "TrailwatchStages"],
                          swiftSettings: strict),

        .testTarget(name: "LinearRegexTests", dependencies: ["LinearRegex"], swiftSettings: strict),
        .testTarget(name: "PatternMiningTests", dependencies: ["PatternMining"], swiftSettings: strict),
        .testTarget(name: "InsightsDetectionTests", dependencies: ["InsightsDetection"], swiftSettings: strict),
        .testTarget(name: "AlarmsTests", dependencies: ["Alarms", "TrailwatchCore"], swiftSettings: strict),
        .testTarget(name: "EventPatternsTests", dependencies: ["EventPatterns", "ByteJSON"], swiftSettings: strict),
        .testTarget(name: "TrailSelectorsTests", dependencies: ["TrailSelectors", "ByteJSON"], swiftSettings: strict),
        .testTarget(name: "FilterPatternsTests", dependencies: ["FilterPatterns", "TrailwatchCore", "ByteJSON"], swiftSettings: strict),

        .testTarget(name: "TrailwatchTests",
                    dependencies: ["TrailwatchCore", "TrailwatchConfig", "TrailwatchRuntime", "TrailwatchStages", "FilterPatterns", "ByteJSON", "TrailwatchArchive", "TrailwatchStore", "LogsQuery"],
                    swiftSettings: strict),
    ]
)
