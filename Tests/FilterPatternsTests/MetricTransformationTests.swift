import Testing
import FilterPatterns
import TrailwatchCore

func sample(_ t: MetricTransformation, _ p: FilterPattern, _ event: String) -> (Double, [Dimension])? {
    Array(event.utf8).withUnsafeBytes { t.sample($0, pattern: p).map { ($0.value, $0.dimensions) } }
}

@Suite("Metric transformations")
struct MetricTransformationTests {
    @Test("values: literal, JSON selector, named and positional space-delimited fields")
    func values() throws {
        let json = try FilterPattern("{ $.latency_ms > 100 }")
        let byLatency = try MetricTransformation(namespace: "App", name: "Latency", value: "$.latency_ms", for: json)
        #expect(sample(byLatency, json, #"{"latency_ms":250}"#)?.0 == 250)
        #expect(sample(byLatency, json, #"{"latency_ms":50}"#) == nil)
        let count = try MetricTransformation(namespace: "App", name: "Slow", value: "1", for: json)
        #expect(sample(count, json, #"{"latency_ms":250}"#)?.0 == 1)

        let delimited = try FilterPattern("[ip, user, username, timestamp, request, status_code, bytes]")
        let bytes = try MetricTransformation(namespace: "Web", name: "Bytes", value: "$bytes", for: delimited)
        #expect(sample(bytes, delimited, apache)?.0 == 1534)
        let seventh = try MetricTransformation(namespace: "Web", name: "Bytes", value: "$7", for: delimited)
        #expect(sample(seventh, delimited, apache)?.0 == 1534)
        // A value that is missing or not a number publishes nothing.
        #expect(sample(bytes, delimited, #"1.2.3.4 - x [t] "GET /" 200 -"#) == nil)
        let selectorOnText = try MetricTransformation(namespace: "App", name: "L", value: "$.latency_ms",
                                                      for: try FilterPattern("{ $.level = \"INFO\" }"))
        #expect(sample(selectorOnText, try FilterPattern("{ $.level = \"INFO\" }"), #"{"level":"INFO"}"#) == nil)
        #expect(sample(selectorOnText, try FilterPattern("{ $.level = \"INFO\" }"), #"{"level":"INFO","latency_ms":"17"}"#)?.0 == 17)
    }

    @Test("default_value is published once per event the pattern does not match")
    func defaults() throws {
        let p = try FilterPattern("ERROR")
        let t = try MetricTransformation(namespace: "App", name: "Errors", value: "1", defaultValue: 0, for: p)
        #expect(sample(t, p, "ERROR x")?.0 == 1)
        #expect(sample(t, p, "INFO x")?.0 == 0)
        let noDefault = try MetricTransformation(namespace: "App", name: "Errors", value: "1", for: p)
        #expect(sample(noDefault, p, "INFO x") == nil)
    }

    @Test("dimensions come from fields; an absent field leaves its dimension out")
    func dimensions() throws {
        let p = try FilterPattern("{ $.status >= 500 }")
        let t = try MetricTransformation(namespace: "App", name: "ServerErrors", value: "1",
                                         dimensions: [("Service", "$.service"), ("Region", "$.region")], for: p)
        let (value, dims) = try #require(sample(t, p, #"{"status":503,"service":"checkout"}"#))
        #expect(value == 1)
        #expect(dims == [Dimension(name: "Service", value: "checkout")])
        let d = try FilterPattern("[ip, user, username, timestamp, request, status_code, bytes]")
        let byStatus = try MetricTransformation(namespace: "Web", name: "Requests", value: "1", dimensions: [("Status", "$status_code")], for: d)
        #expect(sample(byStatus, d, apache404)?.1 == [Dimension(name: "Status", value: "404")])
    }

    @Test("AWS's validation rules", arguments: [
        ("ERROR", "1", nil, [("Service", "$.service")], nil, "does not support dimensions"),
        ("{ $.a = 1 }", "1", 0.0, [("Service", "$.service")], nil, "cannot be combined with dimensions"),
        ("{ $.a = 1 }", "1", nil, [("A", "$.a"), ("B", "$.b"), ("C", "$.c"), ("D", "$.d")], nil, "at most 3"),
        ("[a, b]", "$.a", nil, [], nil, "not a JSON pattern"),
        ("{ $.a = 1 }", "$a", nil, [], nil, "not space-delimited"),
        ("[a, b]", "$c", nil, [], nil, "has no field 'c'"),
        ("ERROR", "many", nil, [], nil, "not a number"),
        ("ERROR", "1", nil, [], "Furlongs", "unknown unit"),
    ] as [(String, String, Double?, [(String, String)], String?, String)])
    func invalid(pattern: String, value: String, defaultValue: Double?, dimensions: [(String, String)], unit: String?, says: String) throws {
        let p = try FilterPattern(pattern)
        do {
            _ = try MetricTransformation(namespace: "N", name: "M", value: value, defaultValue: defaultValue,
                                         dimensions: dimensions.map { (name: $0.0, value: $0.1) }, unit: unit, for: p)
            Issue.record("accepted")
        } catch {
            #expect(error.description.contains(says), "\(error)")
        }
    }

    @Test("names with ':', '*' or '$' are rejected")
    func names() throws {
        let p = try FilterPattern("")
        #expect(throws: MetricTransformation.Invalid.self) { try MetricTransformation(namespace: "a:b", name: "M", value: "1", for: p) }
        #expect(throws: MetricTransformation.Invalid.self) { try MetricTransformation(namespace: "N", name: "M*", value: "1", for: p) }
    }
}

@Suite("Metric aggregation")
struct MetricAggregatorTests {
    let metric = MetricIdentity(namespace: "App", name: "Latency")

    @Test("samples aggregate per period: count, sum, min, max, average, percentiles")
    func statistics() {
        var a = MetricAggregator(periodSeconds: 60, latenessMillis: 0)
        for (i, v) in [5.0, 1, 9, 3, 7].enumerated() { a.add(v, metric: metric, unit: "Milliseconds", at: 60_000 + Int64(i) * 1000) }
        a.add(100, metric: metric, unit: "Milliseconds", at: 125_000)
        let data = a.closeAll()
        #expect(data.count == 2)
        #expect(data[0].timestamp == 60_000 && data[0].sampleCount == 5 && data[0].sum == 25)
        #expect(data[0].minimum == 1 && data[0].maximum == 9 && data[0].average == 5)
        #expect(data[0].percentile(50) == 5)
        #expect(data[0].percentile(90) == 9)
        #expect(data[1].timestamp == 120_000 && data[1].sum == 100)
    }

    @Test("periods close when event time (or the wall clock) is `lateness` past their end")
    func closing() {
        var a = MetricAggregator(periodSeconds: 60, latenessMillis: 30_000)
        a.add(1, metric: metric, unit: nil, at: 10_000)
        a.add(1, metric: metric, unit: nil, at: 70_000)
        #expect(a.closeByWatermark().isEmpty)           // watermark 70 s: period [0,60) closes at 90 s
        a.add(1, metric: metric, unit: nil, at: 95_000)
        let closed = a.closeByWatermark()
        #expect(closed.map(\.timestamp) == [0])
        #expect(a.oldestOpenPeriod == 60_000)
        #expect(a.closePeriods(before: 1_000_000).map(\.timestamp) == [60_000])
        // A late sample for a closed period goes out as another datapoint for that period.
        a.add(5, metric: metric, unit: nil, at: 20_000)
        #expect(a.closeByWatermark().map(\.sum) == [5])
    }

    @Test("dimension sets are separate metrics, emitted in a stable order")
    func dimensionsSeparate() {
        var a = MetricAggregator(periodSeconds: 60)
        let b = MetricIdentity(namespace: "App", name: "Latency", dimensions: [Dimension(name: "S", value: "b")])
        let x = MetricIdentity(namespace: "App", name: "Latency", dimensions: [Dimension(name: "S", value: "a")])
        a.add(1, metric: b, unit: nil, at: 0)
        a.add(2, metric: x, unit: nil, at: 0)
        a.add(3, metric: metric, unit: nil, at: 0)
        let data = a.closeAll()
        #expect(data.map(\.sum) == [3, 2, 1])
    }

    @Test("raw values are capped; the reservoir is deterministic")
    func reservoir() {
        func run() -> [Double] {
            var a = MetricAggregator(periodSeconds: 60, maximumValues: 100)
            for i in 0..<10_000 { a.add(Double(i), metric: metric, unit: nil, at: 0) }
            return a.closeAll()[0].values
        }
        let first = run()
        #expect(first.count == 100)
        #expect(first == run())
        #expect(first.contains { $0 >= 100 })
    }
}
