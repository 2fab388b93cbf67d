import Testing
import TrailwatchConfig
import TrailwatchRuntime
import TrailwatchStages
import TrailwatchTestSupport

struct BrokenConfig: CustomTestStringConvertible, Sendable {
    var name: String
    var yaml: String
    var expected: String
    var testDescription: String { name }
}

let validTail = """

sinks:
  out: { type: console, inputs: [app] }
"""

/// A valid pipeline (stdin to console) under the top-level `settings` given.
func topLevelBroken(_ name: String, _ settings: String, expected: String) -> BrokenConfig {
    BrokenConfig(name: name, yaml: settings + "sources:\n  app: { type: stdin }\n" + validTail, expected: expected)
}

/// Each broken pipeline must produce exactly this diagnostic (among possibly others).
let brokenConfigs: [BrokenConfig] = [
    BrokenConfig(name: "unknown source type with suggestion", yaml: """
        sources:
          app: { type: fiel, include: [a.log] }
        """ + validTail,
        expected: "p.yaml:2:16: component 'app': setting 'type': unknown source type 'fiel' (expected one of archive, cloudtrail, cloudwatch_api, cloudwatch_logs_api, file, stdin; did you mean 'file'?)"),
    BrokenConfig(name: "sink type used as transform", yaml: """
        sources:
          app: { type: stdin }
        transforms:
          t: { type: console, inputs: [app] }
        sinks:
          out: { type: console, inputs: [t] }
        """,
        expected: "p.yaml:4:14: component 't': setting 'type': unknown transform type 'console' ('console' is a sink type) (expected one of alarm, filter, insights, mask, metric_filter, parse, patterns, route, rule, trail_select)"),
    BrokenConfig(name: "missing type", yaml: """
        sources:
          app: { include: [a.log] }
        """ + validTail,
        expected: "p.yaml:2:3: component 'app': setting 'type': is missing (expected a source type)"),
    BrokenConfig(name: "unknown setting with suggestion", yaml: """
        sources:
          app: { type: file, includ: [a.log], include: [b.log] }
        """ + validTail,
        expected: "p.yaml:2:22: component 'app': setting 'includ': unknown setting (expected one of type, inputs, include, exclude, log_group, log_stream, max_line_bytes, start_at, ignore_older, rotate_wait, glob_interval, poll_interval, checkpoint_interval, close_idle, watch, multiline, timestamp; did you mean 'include'?)"),
    BrokenConfig(name: "missing required setting", yaml: """
        sources:
          app: { type: file }
        """ + validTail,
        expected: "p.yaml:2:8: component 'app': setting 'include': is missing (expected this setting to be given)"),
    BrokenConfig(name: "wrong type for a list", yaml: """
        sources:
          app: { type: file, include: { a: b } }
        """ + validTail,
        expected: "p.yaml:2:31: component 'app': setting 'include': found a mapping (expected a list)"),
    BrokenConfig(name: "empty include", yaml: """
        sources:
          app: { type: file, include: [] }
        """ + validTail,
        expected: "p.yaml:2:31: component 'app': setting 'include': is empty (expected at least one path or glob)"),
    BrokenConfig(name: "bad size", yaml: """
        sources:
          app: { type: file, include: [a.log], max_line_bytes: lots }
        """ + validTail,
        expected: "p.yaml:2:56: component 'app': setting 'max_line_bytes': 'lots' is not a size (expected a size like 256KiB, 1MiB or 64MB)"),
    BrokenConfig(name: "size out of range", yaml: """
        sources:
          app: { type: file, include: [a.log], max_line_bytes: 1GiB }
        """ + validTail,
        expected: "p.yaml:2:56: component 'app': setting 'max_line_bytes': 1024MiB is out of range (expected a size from 64B to 16MiB)"),
    BrokenConfig(name: "sources take no inputs", yaml: """
        sources:
          app: { type: stdin, inputs: [x] }
        """ + validTail,
        expected: "p.yaml:2:23: component 'app': setting 'inputs': sources read from the outside world and take no inputs"),
    BrokenConfig(name: "unknown input with suggestion", yaml: """
        sources:
          app: { type: stdin }
        sinks:
          out: { type: console, inputs: [ap] }
        """,
        expected: "p.yaml:4:34: component 'out': setting 'inputs': 'ap' is not a component of this pipeline (expected a source or transform id; did you mean 'app'?)"),
    BrokenConfig(name: "sink fed by nothing", yaml: """
        sources:
          app: { type: stdin }
        sinks:
          out: { type: console }
          other: { type: console, inputs: [app] }
        """,
        expected: "p.yaml:4:3: component 'out': setting 'inputs': is missing: the sink is fed by nothing (expected a list of component ids)"),
    BrokenConfig(name: "sink with empty inputs", yaml: """
        sources:
          app: { type: stdin }
        sinks:
          out: { type: console, inputs: [] }
          other: { type: console, inputs: [app] }
        """,
        expected: "p.yaml:4:3: component 'out': setting 'inputs': is empty: the sink is fed by nothing (expected a list of component ids)"),
    BrokenConfig(name: "input is a sink", yaml: """
        sources:
          app: { type: stdin }
        sinks:
          a: { type: console, inputs: [app] }
          b: { type: console, inputs: [a] }
        """,
        expected: "p.yaml:5:32: component 'b': setting 'inputs': 'a' is a sink and has no output (expected a source or transform id)"),
    BrokenConfig(name: "cycle", yaml: """
        sources:
          app: { type: stdin }
        transforms:
          a: { type: filter, inputs: [app, b], contains: x }
          b: { type: filter, inputs: [a], contains: y }
        sinks:
          out: { type: console, inputs: [b] }
        """,
        expected: "p.yaml:4:3: component 'a': setting 'inputs': inputs form a cycle: a -> b -> a (expected data to flow one way, from sources to sinks)"),
    BrokenConfig(name: "self input", yaml: """
        sources:
          app: { type: stdin }
        transforms:
          a: { type: filter, inputs: [a], contains: x }
        sinks:
          out: { type: console, inputs: [a] }
        """,
        expected: "p.yaml:4:31: component 'a': setting 'inputs': a component cannot feed itself"),
    BrokenConfig(name: "unknown port", yaml: """
        sources:
          app: { type: stdin }
        transforms:
          a: { type: filter, inputs: [app], contains: x }
        sinks:
          out: { type: console, inputs: [a.errors] }
        """,
        expected: "p.yaml:6:34: component 'out': setting 'inputs': 'a' has no output named 'errors' (expected 'a' alone)"),
    BrokenConfig(name: "duplicate id across sections", yaml: """
        sources:
          app: { type: stdin }
        sinks:
          app: { type: console, inputs: [app] }
        """,
        expected: "p.yaml:4:3: component 'app': the id is already used at line 2 (expected unique component ids)"),
    BrokenConfig(name: "unknown top-level key", yaml: """
        source:
          app: { type: stdin }
        """ + validTail,
        expected: "p.yaml:1:1: setting 'source': unknown top-level key (expected one of name, sources, transforms, sinks, data_dir, buffer_batches, batch_timeout, shutdown_timeout, query_timeout, http, dashboards, tests; did you mean 'sources'?)"),
    BrokenConfig(name: "section is not a mapping", yaml: """
        sources: [a, b]
        """ + validTail,
        expected: "p.yaml:1:10: setting 'sources': is not a mapping (expected component ids mapped to their settings)"),
    BrokenConfig(name: "component is not a mapping", yaml: """
        sources:
          app: stdin
        """ + validTail,
        expected: "p.yaml:2:8: component 'app': is not a mapping (expected settings with at least 'type')"),
    BrokenConfig(name: "bad YAML", yaml: """
        sources:
          app: { type: stdin
        sinks:
        """,
        expected: "p.yaml:3:6: invalid YAML: did not find expected ',' or '}' (while parsing a flow mapping)"),
    BrokenConfig(name: "tab indentation", yaml: "sources:\n\tapp: { type: stdin }\n",
        expected: "p.yaml:2:1: invalid YAML: found character that cannot start any token (while scanning for the next token)"),
    BrokenConfig(name: "unset environment variable", yaml: """
        sources:
          app: { type: file, include: ["${LOG_DIR}/*.log"] }
        """ + validTail,
        expected: "p.yaml:2:32: environment variable 'LOG_DIR' is not set (expected it set, or a default: ${LOG_DIR:-default})"),
    BrokenConfig(name: "malformed environment reference", yaml: """
        sources:
          app: { type: file, include: ["${LOG DIR}"] }
        """ + validTail,
        expected: "p.yaml:2:32: malformed ${...} reference (expected '}' to close '${LOG' (write $$ for a literal $))"),
    BrokenConfig(name: "bad enum with suggestion", yaml: """
        sources:
          app: { type: stdin }
        sinks:
          out: { type: console, inputs: [app], format: jsn }
        """,
        expected: "p.yaml:4:48: component 'out': setting 'format': 'jsn' is not allowed (expected one of json, text; did you mean 'json'?)"),
    BrokenConfig(name: "filter without condition", yaml: """
        sources:
          app: { type: stdin }
        transforms:
          f: { type: filter, inputs: [app] }
        sinks:
          out: { type: console, inputs: [f] }
        """,
        expected: "p.yaml:4:6: component 'f': has no condition (expected pattern, contains or regex)"),
    BrokenConfig(name: "invalid regex", yaml: """
        sources:
          app: { type: stdin }
        transforms:
          f: { type: filter, inputs: [app], regex: "a(b" }
        sinks:
          out: { type: console, inputs: [f] }
        """,
        expected: "p.yaml:4:46: component 'f': setting 'regex': invalid regular expression at column 2: unterminated group (expected ')')"),
    BrokenConfig(name: "regex needing backtracking", yaml: """
        sources:
          app: { type: stdin }
        transforms:
          f: { type: filter, inputs: [app], regex: '(a+)\\1' }
        sinks:
          out: { type: console, inputs: [f] }
        """,
        expected: "p.yaml:4:49: component 'f': setting 'regex': invalid regular expression at column 5: backreferences ('\\1') are not supported: they cannot run in linear time (expected an expression without backreferences)"),
    BrokenConfig(name: "file sink without path", yaml: """
        sources:
          app: { type: stdin }
        sinks:
          out: { type: file, inputs: [app] }
        """,
        expected: "p.yaml:4:8: component 'out': setting 'path': is missing (expected this setting to be given)"),
    BrokenConfig(name: "buffer size out of range", yaml: "buffer_batches: 0\n" + """
        sources:
          app: { type: stdin }
        """ + validTail,
        expected: "p.yaml:1:17: setting 'buffer_batches': 0 is out of range (expected a whole number from 1 to 4096)"),
    BrokenConfig(name: "bad duration", yaml: "batch_timeout: soon\n" + """
        sources:
          app: { type: stdin }
        """ + validTail,
        expected: "p.yaml:1:16: setting 'batch_timeout': 'soon' is not a duration (expected a duration like 500ms, 10s, 5m, 1h or 7d)"),
    BrokenConfig(name: "no sinks", yaml: """
        sources:
          app: { type: stdin }
        """,
        expected: "p.yaml:1:1: the pipeline has no sinks (expected at least one sink)"),
    BrokenConfig(name: "empty file", yaml: "",
        expected: "p.yaml:1:1: the file is empty (expected a mapping with sources, transforms and sinks)"),
    BrokenConfig(name: "bad component id", yaml: """
        sources:
          "my app": { type: stdin }
        """ + validTail,
        expected: "p.yaml:2:3: component 'my app': the id has characters ids cannot have (expected letters, digits, '_' and '-' ('.' addresses a named output))"),
    BrokenConfig(name: "wrong scalar type", yaml: """
        sources:
          app: { type: stdin, log_stream: [a, b] }
        """ + validTail,
        expected: "p.yaml:2:35: component 'app': setting 'log_stream': found a list (expected a single value)"),
    // Pipeline-level and `http:` settings come from one schema each, like the stages' settings.
    topLevelBroken("query_timeout out of range", "query_timeout: 2h\n",
        expected: "p.yaml:1:16: setting 'query_timeout': 2h is out of range (expected a duration from 1ms to 60m (as Logs Insights, which stops queries after 60 minutes))"),
    topLevelBroken("unknown http key with suggestion", "http: { lisen: 127.0.0.1:0 }\n",
        expected: "p.yaml:1:16: setting 'http.lisen': unknown setting (expected one of listen, auth_token_env, store, tls, access_keys_file, access_key_id_env, secret_access_key_env, access_policies_file, anonymous_on_loopback, max_connections, max_body, idle_timeout, request_read_timeout, request_timeout, query_timeout; did you mean 'listen'?)"),
    topLevelBroken("http listen is not HOST:PORT", "http:\n  listen: localhost\n",
        expected: "p.yaml:2:11: setting 'http.listen': 'localhost' is not HOST:PORT (expected an address like 127.0.0.1:9598)"),
    topLevelBroken("http max_body out of range", "http: { max_body: 10 }\n",
        expected: "p.yaml:1:19: setting 'http.max_body': 10B is out of range (expected 1KiB to 1GiB)"),
    topLevelBroken("http on all interfaces without a token", "http: { listen: 0.0.0.0:9598 }\n",
        expected: "p.yaml:1:7: setting 'http.auth_token_env': is required when listening on 0.0.0.0 (expected the name of an environment variable holding a token, or a loopback address)"),
    topLevelBroken("http tls without its key", "http: { tls: { certificate: c.pem } }\n",
        expected: "p.yaml:1:14: setting 'http.tls.key': is missing (expected this setting to be given)"),
    topLevelBroken("http access key id without its secret", "http: { access_key_id_env: KEY_ID }\n",
        expected: "p.yaml:1:7: setting 'http.secret_access_key_env': access_key_id_env and secret_access_key_env go together (expected both variable names, or neither)"),
]

@Suite("Configuration errors")
struct ConfigErrorTests {
    @Test("each broken config names its location and problem", arguments: brokenConfigs)
    func brokenConfig(_ config: BrokenConfig) {
        let found = diagnostics(config.yaml)
        #expect(found.contains(config.expected), "got:\n\(found.joined(separator: "\n"))")
    }

    @Test func tableIsLargeEnough() {
        #expect(brokenConfigs.count >= 25)
    }

    @Test("every problem is reported at once, in file order")
    func allProblemsAtOnce() {
        let found = diagnostics("""
            sources:
              app: { type: fiel }
              other: { type: file, include: [x], bogus: 1 }
            sinks:
              out: { type: console, inputs: [nope] }
            """)
        #expect(found.count >= 3)
        #expect(found[0].hasPrefix("p.yaml:2:"))
        #expect(found.contains { $0.contains("setting 'bogus': unknown setting") })
        #expect(found.contains { $0.contains("'nope' is not a component") })
    }

    @Test("secrets from the environment never appear in messages")
    func secretsAreRedacted() {
        let found = diagnostics("""
            sources:
              app: { type: stdin }
            sinks:
              out: { type: console, inputs: [app], format: "${SECRET_TOKEN}" }
            """)
        #expect(found.count == 1)
        #expect(!found[0].contains("hunter2"))
        #expect(found[0].contains("<value from environment>"))
    }

    @Test("environment defaults and escapes")
    func interpolation() throws {
        let env = EnvironmentInterpolation(environment: ["A": "1"])
        #expect(try env.expand("x${A}y") == "x1y")
        #expect(try env.expand("${B:-fallback}") == "fallback")
        #expect(try env.expand("$${A}") == "${A}")
        #expect(try env.expand("plain") == nil)
        #expect(throws: EnvironmentInterpolation.Failure.unset(name: "B")) { try env.expand("${B}") }
    }

    @Test("a valid pipeline plans cleanly, warning about unread outputs")
    func validPipeline() {
        let found = diagnostics("""
            sources:
              app: { type: stdin }
              unused: { type: stdin }
            transforms:
              errors: { type: filter, inputs: [app], contains: [ERROR, FATAL] }
            sinks:
              out: { type: file, inputs: [errors], path: "${HOME_DIR}/out.log", format: raw }
            """)
        #expect(found == ["p.yaml:3:3: warning: component 'unused': nothing reads this source's output (expected a sink or transform listing it in inputs)"])
    }
}
