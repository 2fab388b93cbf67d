import PipelineTesting
import Testing
import TrailwatchConfig
import TrailwatchRuntime
import TrailwatchStages

@Suite("trailwatch test: transforms with workers")
struct ParallelTransformsInPipelineTests {
    @Test("trailwatch test runs transforms with workers the same way every time")
    func pipelineTestsStayDeterministic() throws {
        let (planned, diagnostics) = PipelinePlanner(registry: BuiltinStages.registry, environment: [:]).plan(text: """
            sources: { app: { type: stdin, log_group: /app } }
            transforms:
              pii:
                type: mask
                inputs: [app]
                workers: 4
                policy:
                  Version: "2021-06-01"
                  Statement:
                    - DataIdentifier: [arn:aws:dataprotection::aws:data-identifier/EmailAddress]
                      Operation: { Audit: { FindingsDestination: {} } }
                    - DataIdentifier: [arn:aws:dataprotection::aws:data-identifier/EmailAddress]
                      Operation: { Deidentify: { MaskConfig: {} } }
              watch: { type: rule, inputs: [pii], workers: 4, rules: { errors: { event_pattern: { level: [ERROR] } } } }
            sinks:
              out: { type: console, inputs: [watch] }
              counts: { type: console, inputs: [pii.metrics] }
            """, file: "p.yaml", pipelineDirectory: ".")
        let plan = try #require(planned, "\(diagnostics)")
        let (loaded, problems) = PipelineTestSuite.load(plan: plan, testsText: """
            tests:
              - name: masked errors match, counted per minute
                start: 2024-05-01T12:00:00Z
                inputs:
                  - insert_at: app
                    interval: 20s
                    lines: ['{"level":"ERROR","by":"ann@example.com"}', '{"level":"INFO","by":"bob@example.com"}', '{"level":"ERROR","by":"x"}', '{"level":"ERROR"}']
                outputs:
                  - from: out
                    messages: ['{"level":"ERROR","by":"***************"}', '{"level":"ERROR","by":"x"}', '{"level":"ERROR"}']
                  - from: watch.errors
                    count: 3
                  - from: counts
                    count: 1
                    fields: { sum: 2 }
            """, testsPath: "p.tests.yaml")
        #expect(problems.isEmpty, "\(problems)")
        let suite = try #require(loaded)
        for _ in 0..<3 {
            let results = suite.run()
            #expect(results.count == 1)
            #expect(results.allSatisfy { $0.failures.isEmpty }, "\(results.map(\.failures))")
        }
    }
}
