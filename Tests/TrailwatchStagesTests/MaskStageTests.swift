import Foundation
import Testing
import TrailwatchConfig
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStages
import TrailwatchTestSupport

@Suite("mask transform (data protection policies)")
struct MaskStageTests {
    static let policy = """
        {"Name": "pii", "Version": "2021-06-01",
         "Configuration": {"CustomDataIdentifier": [{"Name": "EmployeeId", "Regex": "EMP-\\\\d{6}"}]},
         "Statement": [
          {"Sid": "audit", "DataIdentifier": ["arn:aws:dataprotection::aws:data-identifier/EmailAddress",
                                              "arn:aws:dataprotection::aws:data-identifier/CreditCardNumber", "EmployeeId"],
           "Operation": {"Audit": {"FindingsDestination": {"CloudWatchLogs": {"LogGroup": "/audit/findings"}}}}},
          {"Sid": "redact", "DataIdentifier": ["arn:aws:dataprotection::aws:data-identifier/EmailAddress",
                                               "arn:aws:dataprotection::aws:data-identifier/CreditCardNumber", "EmployeeId"],
           "Operation": {"Deidentify": {"MaskConfig": {}}}}]}
        """

    @Test("sinks see masked data; findings and LogEventsWithFindings go to their outputs")
    func masksBeforeSinks() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("policy.json", Self.policy)
        _ = dir.write("in.log", """
            {"time":"2026-11-24T10:00:01Z","msg":"order by ann@example.com card 4111 1111 1111 1111"}
            {"time":"2026-11-24T10:00:02Z","msg":"nothing here, card 4111 1111 1111 1112 fails Luhn"}
            {"time":"2026-11-24T10:01:05Z","msg":"EMP-123456 wrote to bob@example.org"}

            """)
        _ = try await runOnce("""
            sources:
              app: { type: file, include: ["\(dir.path)/in.log"], log_group: /app, timestamp: { field: $.time } }
            transforms:
              pii: { type: mask, inputs: [app], policy_file: "\(dir.path)/policy.json" }
            sinks:
              out: { type: file, inputs: [pii], path: "\(dir.path)/out.log", format: raw }
              findings: { type: file, inputs: [pii.findings], path: "\(dir.path)/findings.jsonl", format: json }
              metrics: { type: file, inputs: [pii.metrics], path: "\(dir.path)/metrics.jsonl" }
            """)
        #expect(dir.read("out.log") == """
            {"time":"2026-11-24T10:00:01Z","msg":"order by *************** card *******************"}
            {"time":"2026-11-24T10:00:02Z","msg":"nothing here, card 4111 1111 1111 1112 fails Luhn"}
            {"time":"2026-11-24T10:01:05Z","msg":"********** wrote to ***************"}

            """)
        let findings = dir.read("findings.jsonl").split(separator: "\n")
        #expect(findings.count == 2)
        #expect(findings.first?.contains(#"/audit/findings"#) == true)
        #expect(findings.first?.contains(#"{\"name\":\"EmailAddress\",\"count\":1,\"detections\":[{\"start\":47,\"end\":62}]}"#) == true)
        let metrics = dir.read("metrics.jsonl")
        #expect(metrics.split(separator: "\n").count == 4)   // email and card in the first minute, id and email in the second
        #expect(metrics.contains("LogEventsWithFindings") && metrics.contains(#""DataIdentifier":"EmployeeId""#))
    }

    @Test("large batches are scanned in parts and put back together in order")
    func largeBatches() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("policy.json", Self.policy)
        let lines = (0..<10_000).map { i in i % 3 == 0 ? "line \(i) from user\(i)@example.com" : "line \(i) has nothing" }
        _ = dir.write("in.log", lines.joined(separator: "\n") + "\n")
        _ = try await runOnce("""
            sources:
              app: { type: file, include: ["\(dir.path)/in.log"] }
            transforms:
              pii: { type: mask, inputs: [app], policy_file: "\(dir.path)/policy.json" }
            sinks:
              out: { type: file, inputs: [pii], path: "\(dir.path)/out.log", format: raw }
            """)
        let expected = lines.map { line -> String in
            guard let at = line.range(of: "user") else { return line }
            return line[..<at.lowerBound] + String(repeating: "*", count: line[at.lowerBound...].count)
        }
        #expect(dir.read("out.log") == expected.joined(separator: "\n") + "\n")
    }

    @Test("policy errors are located in the pipeline and in policy files")
    func locatedPolicyErrors() throws {
        let dir = TemporaryDirectory()
        _ = dir.write("bad.json", Self.policy.replacingOccurrences(of: "EMP-\\\\d{6}", with: "EMP-(\\\\d)"))
        let (_, fileDiagnostics) = PipelinePlanner(registry: BuiltinStages.registry, environment: [:]).plan(text: """
            sources: { app: { type: stdin } }
            transforms: { pii: { type: mask, inputs: [app], policy_file: "\(dir.path)/bad.json" } }
            sinks: { out: { type: console, inputs: [pii] } }
            """, file: "p.yaml", pipelineDirectory: ".")
        let fileError = fileDiagnostics.first { $0.severity == .error }
        #expect(fileError?.location.file.hasSuffix("bad.json") == true)
        #expect(fileError?.location.line == 2)
        #expect(fileError?.message.contains("parentheses") == true)

        let (_, inlineDiagnostics) = PipelinePlanner(registry: BuiltinStages.registry, environment: [:]).plan(text: """
            sources: { app: { type: stdin } }
            transforms:
              pii:
                type: mask
                inputs: [app]
                policy:
                  Version: "2021-06-01"
                  Statement:
                    - DataIdentifier: ["arn:aws:dataprotection::aws:data-identifier/CreditCardNumbr"]
                      Operation: { Audit: { FindingsDestination: {} } }
                    - DataIdentifier: ["arn:aws:dataprotection::aws:data-identifier/CreditCardNumbr"]
                      Operation: { Deidentify: { MaskConfig: {} } }
            sinks: { out: { type: console, inputs: [pii] } }
            """, file: "p.yaml", pipelineDirectory: ".")
        let inline = inlineDiagnostics.first { $0.severity == .error }
        #expect(inline?.location.line == 9)
        #expect(inline?.setting == "policy.Statement[0].DataIdentifier[0]")
        #expect(inline?.suggestion == "arn:aws:dataprotection::aws:data-identifier/CreditCardNumber")
    }
}
