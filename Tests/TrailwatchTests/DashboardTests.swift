import Foundation
import Glibc
import Testing
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchTestSupport

/// Starts `trailwatch ARGS…` and waits for its "serving … http://HOST:PORT…" line (other messages,
/// such as a warning about a missing file, may come first); returns the process and port.
func startServing(_ arguments: [String], environment: [String: String] = [:]) async throws -> (Process, Int) {
    let server = try await Child.serve(arguments, environment: environment)
    let port = server.port
    if port == 0 { Issue.record("trailwatch \(arguments.joined(separator: " ")) did not start serving:\n\(server.errors)") }
    return (server.process, port)
}

/// Six hours of per-minute JSON lines: steady latency, a slow spell at the end, some errors.
func dashboardLog() -> String {
    var out = ""
    let start: Int64 = 1_793_491_200_000   // 2026-11-01T00:00:00Z
    for minute in 0..<360 {
        let slow = minute >= 340 && minute < 350
        let latency = slow ? 950.0 : 100 + Double((minute * 7) % 11) - 5
        let level = minute % 17 == 0 || slow ? "ERROR" : "INFO"
        let time = Timestamps.iso8601(start + Int64(minute) * 60_000)
        out += #"{"time":"\#(time)","level":"\#(level)","endpoint":"ep-1","latency":\#(latency),"msg":"request \#(minute) served"}"# + "\n"
    }
    return out
}

/// ERROR lines in ``dashboardLog()``.
let dashboardErrors = (0..<360).filter { $0 % 17 == 0 || (340..<350).contains($0) }.count

let dashboardPipelineBody = """
    transforms:
      latency:
        type: metric_filter
        inputs: [app]
        pattern: '{ $.latency >= 0 }'
        metric_namespace: Shop
        metric_name: Latency
        metric_value: $.latency
        dimensions: { Endpoint: $.endpoint }
        period: 5m
        lateness: 1s
      errors:
        type: metric_filter
        inputs: [app]
        pattern: '{ $.level = "ERROR" }'
        metric_namespace: Shop
        metric_name: Errors
        metric_value: 1
        default_value: 0
        lateness: 1s
      slow:
        type: alarm
        inputs: [latency]
        definition:
          AlarmName: SlowCheckout
          Metrics:
            - { Id: m1, MetricStat: { Metric: { Namespace: Shop, MetricName: Latency, Dimensions: [{ Name: Endpoint, Value: ep-1 }] }, Period: 300, Stat: Average } }
            - { Id: band, Expression: "ANOMALY_DETECTION_BAND(m1, 3)" }
          ThresholdMetricId: band
          ComparisonOperator: GreaterThanUpperThreshold
          EvaluationPeriods: 1
    dashboards:
      shop:
        title: Shop
        range: 6h
        widgets:
          - { type: metric, title: Checkout latency, namespace: Shop, metric: Latency, dimensions: { Endpoint: ep-1 }, stat: Average }
          - { type: value, title: Errors, namespace: Shop, metric: Errors, stat: Sum }
          - { type: alarms, title: Alarm states }
          - { type: events, title: Alarm history, kinds: [alarm] }
          - { type: logs, title: Recent errors, query: 'filter level = "ERROR" | sort @timestamp desc | limit 5' }
    """

@Suite("Dashboard and self-monitoring over HTTP", .serialized)
struct DashboardTests {
    /// A store filled by a batch run: logs, metrics, the band and alarm state changes.
    func makeStore(_ dir: TemporaryDirectory) async throws -> (store: String, pipeline: String) {
        _ = dir.write("logs/app.log", dashboardLog())
        let yaml = """
            data_dir: \(dir.file("state"))
            sources:
              app: { type: file, include: \(dir.file("logs"))/app.log, timestamp: { field: $.time } }
            \(dashboardPipelineBody)
            sinks:
              store: { type: sqlite, inputs: [app, latency, errors, slow, slow.bands], path: \(dir.file("store.db")) }
            """
        let pipeline = dir.write("pipeline.yaml", yaml)
        _ = try await runOnce(yaml)
        return (dir.file("store.db"), pipeline)
    }

    @Test("every route of `trailwatch dashboard`: dashboards with charts, bands, alarms, events and logs; the query page and API")
    func routes() async throws {
        let dir = TemporaryDirectory()
        let (store, pipeline) = try await makeStore(dir)
        let (process, port) = try await startServing(["dashboard", store, "--listen", "127.0.0.1:0", "--pipeline", pipeline])
        defer { kill(process.processIdentifier, SIGTERM); process.waitUntilExit() }
        #expect(port > 0)

        let (status, page) = try #require(httpGet(port: port, path: "/dashboards/shop?range=7h"))
        #expect(status == 200)
        #expect(page.contains("<title>Shop · trailwatch</title>"))
        let points = try #require(page.firstMatch(of: /class="chart"[^>]*data-points="(\d+)" data-band-points="(\d+)"/))
        #expect(Int(points.1)! == 72)          // six hours of five-minute periods
        #expect(Int(points.2)! >= 30)          // the band, once the model had three hours
        #expect(page.contains("class=\"anomaly\""))
        #expect(page.contains("data-value=\"\(Double(dashboardErrors))\""), "errors over the range")
        #expect(page.contains("SlowCheckout") && page.contains("class=\"state ok\""))
        let segments = try #require(page.firstMatch(of: /data-segments="(\d+)"/))
        #expect(Int(segments.1)! >= 3)   // OK, ALARM during the slow spell, OK again
        #expect(page.contains("request 349 served"))

        #expect(httpGet(port: port, path: "/")?.0 == 200)
        #expect(httpGet(port: port, path: "/dashboards/nope")?.0 == 404)
        #expect(httpGet(port: port, path: "/elsewhere")?.0 == 404)

        let (queryStatus, queryPage) = try #require(httpGet(port: port, path: "/query?q=stats+count(*)+by+level&range=1d"))
        #expect(queryStatus == 200)
        #expect(queryPage.contains("<td>ERROR</td>") && queryPage.contains("<td>\(dashboardErrors)</td>"))
        let (badStatus, badPage) = try #require(httpGet(port: port, path: "/query?q=stats+count(*+by"))
        #expect(badStatus == 400 && badPage.contains("class=\"error\""))
        let (apiStatus, api) = try #require(httpGet(port: port, path: "/api/query?q=filter%20level%20%3D%20%22ERROR%22%20%7C%20stats%20count(*)%20as%20n&range=1d"))
        #expect(apiStatus == 200)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(api.utf8)) as? [String: Any])
        #expect((json["rows"] as? [[String: Any]])?.first?["n"] as? Double == Double(dashboardErrors))
    }

    @Test("without dashboards in a pipeline, one is made from the store")
    func defaultDashboard() async throws {
        let dir = TemporaryDirectory()
        let (store, _) = try await makeStore(dir)
        let (process, port) = try await startServing(["dashboard", store, "--listen", "127.0.0.1:0"])
        defer { kill(process.processIdentifier, SIGTERM); process.waitUntilExit() }
        let (status, page) = try #require(httpGet(port: port, path: "/"))
        #expect(status == 200)
        #expect(page.contains("Shop Latency") && page.contains("Shop Errors"))
        #expect(!page.contains("&quot;Band&quot;"), "band series are drawn with their metric, not on their own")
    }

    @Test("a token guards the pages: Bearer or basic auth; beyond loopback it is required")
    func auth() async throws {
        let dir = TemporaryDirectory()
        let (store, _) = try await makeStore(dir)
        let (process, port) = try await startServing(["dashboard", store, "--listen", "127.0.0.1:0", "--auth-token-env", "DASH_TOKEN"],
                                               environment: ["DASH_TOKEN": "s3cret"])
        defer { kill(process.processIdentifier, SIGTERM); process.waitUntilExit() }
        #expect(httpGet(port: port, path: "/")?.0 == 401)
        #expect(httpGet(port: port, path: "/", headers: ["Authorization: Bearer wrong"])?.0 == 401)
        #expect(httpGet(port: port, path: "/", headers: ["Authorization: Bearer s3cret"])?.0 == 200)
        let basic = Data("me:s3cret".utf8).base64EncodedString()
        #expect(httpGet(port: port, path: "/query", headers: ["Authorization: Basic \(basic)"])?.0 == 200)

        let (status, _, err) = try await runTool(trailwatchBinary(), ["dashboard", store, "--listen", "0.0.0.0:0"])
        #expect(status != 0 && err.contains("--auth-token-env is required"))
    }

    @Test("`run` with http.store serves the same pages live; /metrics carries the metric-filter metrics")
    func liveRun() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("logs/app.log", dashboardLog())
        let pipeline = dir.write("live.yaml", """
            data_dir: \(dir.file("state"))
            http: { listen: "127.0.0.1:0", store: \(dir.file("store.db")) }
            sources:
              app: { type: file, include: \(dir.file("logs"))/app.log, timestamp: { field: $.time } }
            \(dashboardPipelineBody)
            sinks:
              store: { type: sqlite, inputs: [app, latency, errors, slow, slow.bands], path: \(dir.file("store.db")) }
            """)
        let (process, port) = try await startServing(["run", pipeline, "--quiet"])
        defer { kill(process.processIdentifier, SIGTERM); process.waitUntilExit() }
        #expect(port > 0)
        #expect(await eventually {
            guard let (_, body) = httpGet(port: port, path: "/metrics"), let families = try? parsePrometheus(body) else { return false }
            return families["trailwatch_metric_sum"]?.contains { $0.labels["metric_name"] == "Latency" && $0.labels["dim_Endpoint"] == "ep-1" } == true
                && families["trailwatch_metric_sample_count"]?.contains { $0.labels["metric_name"] == "Errors" && $0.labels["namespace"] == "Shop" } == true
        })
        let (_, metrics) = try #require(httpGet(port: port, path: "/metrics"))
        let families = try parsePrometheus(metrics)
        #expect(families["trailwatch_metric_sample_count"]?.contains { $0.labels["metric_name"] == "Errors" && $0.labels["namespace"] == "Shop" } == true)
        #expect(families["trailwatch_events_out_total"]?.contains { $0.labels["component"] == "latency" } == true)
        let (healthStatus, health) = try #require(httpGet(port: port, path: "/health"))
        #expect(healthStatus == 200 && health.contains(#""id":"slow""#))
        #expect(await eventually { httpGet(port: port, path: "/dashboards/shop")?.1.contains("data-band-points=\"0\"") == false })
    }

    @Test("dashboard definitions are checked when the pipeline loads, with locations")
    func invalidDashboards() async throws {
        let dir = TemporaryDirectory()
        for (widget, expected) in [
            ("{ type: chart, namespace: A, metric: B }", "unknown widget type 'chart'"),
            ("{ type: metric, namespace: A }", "a metric widget needs namespace and metric"),
            ("{ type: value, namespace: A, metric: B, stat: p99 }", "unknown statistic 'p99'"),
            ("{ type: logs, query: 'stats count(* by x' }", "invalid query at column"),
            ("{ type: metric, namespace: A, metirc: B }", "did you mean 'metric'"),
            ("{ type: metrik, namespace: A, metric: B }", "did you mean 'metric'"),
        ] {
            let path = dir.write("p.yaml", """
                sources:
                  app: { type: stdin }
                sinks:
                  out: { type: console, inputs: [app] }
                dashboards:
                  main:
                    widgets:
                      - \(widget)
                """)
            let (status, out, err) = try await runTool(trailwatchBinary(), ["validate", path])
            #expect(status != 0)
            #expect((out + err).contains("p.yaml:8:"), "\(out)\(err)")
            #expect((out + err).contains(expected), "\(out)\(err)")
        }
    }

    @Test("the page renders in headless Chromium and its charts are drawn")
    func chromium() async throws {
        guard let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].first(where: { FileManager.default.isExecutableFile(atPath: $0) }) else {
            print("skipping: Chromium is not installed (make test installs Debian's chromium package when it can)")
            return
        }
        let dir = TemporaryDirectory()
        let (store, pipeline) = try await makeStore(dir)
        let (process, port) = try await startServing(["dashboard", store, "--listen", "127.0.0.1:0", "--pipeline", pipeline])
        defer { kill(process.processIdentifier, SIGTERM); process.waitUntilExit() }
        let (status, dom, err) = try await runTool(browser, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                                       "--user-data-dir=\(dir.file("chromium"))", "--virtual-time-budget=3000",
                                                       "--dump-dom", "http://127.0.0.1:\(port)/dashboards/shop"])
        #expect(status == 0, "\(err)")
        let drawn = try #require(dom.firstMatch(of: /data-charts-drawn="(\d+)"/), "\(dom.prefix(500))")
        #expect(Int(drawn.1)! >= 1)
        #expect(dom.contains("data-drawn=\"yes\""))
    }
}
