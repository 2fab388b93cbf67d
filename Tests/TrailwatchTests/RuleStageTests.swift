import Foundation
import Testing
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStages
import TrailwatchTestSupport

@Suite("rule: EventBridge-style rules over CloudTrail records, alarm events and JSON logs")
struct RuleStageTests {
    static let login = #"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice","userName":"alice"},"eventTime":"2026-11-24T10:00:00Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.9","eventType":"AwsConsoleSignIn","eventID":"e-1","recipientAccountId":"111122223333","additionalEventData":{"MFAUsed":"No"},"responseElements":{"ConsoleLogin":"Success"}}"#
    static let mfaLogin = #"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/bob","userName":"bob"},"eventTime":"2026-11-24T10:00:01Z","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"203.0.113.10","eventType":"AwsConsoleSignIn","eventID":"e-2","recipientAccountId":"111122223333","additionalEventData":{"MFAUsed":"Yes"},"responseElements":{"ConsoleLogin":"Success"}}"#
    static let denied = #"{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/alice"},"eventTime":"2026-11-24T10:00:02Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","sourceIPAddress":"10.0.0.5","eventType":"AwsApiCall","eventID":"e-3","recipientAccountId":"111122223333","errorCode":"AccessDenied"}"#
    static let appLog = #"{"level":"ERROR","service":"api","msg":"boom"}"#

    /// A CloudTrail delivery file holding the records.
    func trail(_ dir: TemporaryDirectory) -> String {
        dir.write("trail/111122223333_CloudTrail_us-east-1_20261124T1000Z_a.json", #"{"Records":["# + [Self.login, Self.mfaLogin, Self.denied].joined(separator: ",") + "]}")
    }

    @Test("each rule to its own output, matched events on the main output, input transformers, YAML patterns that keep 'No' a string")
    func rulesAndOutputs() async throws {
        let dir = TemporaryDirectory()
        let path = trail(dir)
        let app = dir.write("app.log", Self.appLog + "\n" + #"{"level":"INFO"}"# + "\nnot json\n")
        _ = try await runOnce("""
            sources:
              trail: { type: cloudtrail, include: \(path) }
              app: { type: file, include: \(app) }
            transforms:
              rules:
                type: rule
                inputs: [trail, app]
                account: "111122223333"
                rules:
                  login-without-mfa:
                    event_pattern:
                      source: [aws.signin]
                      detail-type: [AWS Console Sign In via CloudTrail]
                      detail: { additionalEventData: { MFAUsed: [No] } }
                    input_transformer:
                      InputPathsMap: { user: $.detail.userIdentity.arn, ip: $.detail.sourceIPAddress }
                      InputTemplate: 'Console login without MFA by <user> from <ip>'
                  denied:
                    event_pattern: '{"detail": {"errorCode": [{"prefix": "AccessDenied"}]}}'
                    input_transformer:
                      InputPathsMap: { name: $.detail.eventName }
                      InputTemplate: '{"api": <name>, "rule": <aws.events.rule-name>, "event": <aws.events.event.json>}'
                  app-errors:
                    event_pattern: { level: [ERROR] }
            sinks:
              mfa: { type: file, inputs: [rules.login-without-mfa], path: \(dir.file("mfa.jsonl")) }
              denied: { type: file, inputs: [rules.denied], path: \(dir.file("denied.jsonl")) }
              apperr: { type: file, inputs: [rules.app-errors], path: \(dir.file("apperr.jsonl")) }
              matched: { type: file, inputs: [rules], path: \(dir.file("matched.log")), format: raw }
              rest: { type: file, inputs: [rules._unmatched], path: \(dir.file("rest.log")), format: raw }
            """)
        let mfa = lines(dir.read("mfa.jsonl"))
        #expect(mfa.count == 1)
        let body = try #require(try JSONSerialization.jsonObject(with: Data(mfa[0].utf8)) as? [String: Any])
        #expect(body["rule"] as? String == "login-without-mfa")
        #expect(body["ruleArn"] as? String == "arn:aws:events:us-east-1:111122223333:rule/login-without-mfa")
        #expect(body["input"] as? String == "Console login without MFA by arn:aws:iam::111122223333:user/alice from 203.0.113.9")
        #expect(body["id"] as? String == "e-1")
        #expect(body["time"] as? String == "2026-11-24T10:00:00.000Z")

        let denied = lines(dir.read("denied.jsonl"))
        #expect(denied.count == 1)
        let input = try #require((try JSONSerialization.jsonObject(with: Data(denied[0].utf8)) as? [String: Any])?["input"] as? [String: Any])
        #expect(input["api"] as? String == "GetObject")
        #expect(input["rule"] as? String == "denied")
        let event = try #require(input["event"] as? [String: Any])
        #expect(event["source"] as? String == "aws.s3")
        #expect(event["detail-type"] as? String == "AWS API Call via CloudTrail")
        #expect((event["detail"] as? [String: Any])?["eventID"] as? String == "e-3")

        // A rule without a target setting delivers the event itself.
        let appErrors = lines(dir.read("apperr.jsonl"))
        #expect(appErrors.count == 1)
        #expect(appErrors[0].contains(#""input":{"level":"ERROR","service":"api","msg":"boom"}"#), "\(appErrors)")

        #expect(Set(lines(dir.read("matched.log"))) == [Self.login, Self.denied, Self.appLog])
        #expect(Set(lines(dir.read("rest.log"))) == [Self.mfaLogin, #"{"level":"INFO"}"#, "not json"])
    }

    @Test("an alarm going to ALARM reaches a command through a rule, with the template as the summary")
    func alarmRuleToCommand() async throws {
        let dir = TemporaryDirectory()
        var log = ""
        for minute in 0..<6 {
            for second in 0..<(minute >= 2 ? 5 : 1) {
                log += #"{"time":"2026-11-24T10:0\#(minute):\#(10 + second)Z","level":"ERROR"}"# + "\n"
            }
        }
        let app = dir.write("app.log", log)
        let recorder = dir.write("record.sh", "#!/bin/sh\nprintf '%s|%s\\n' \"$1\" \"$2\" >> \(dir.file("calls.txt"))\ncat >> \(dir.file("stdin.jsonl"))\necho >> \(dir.file("stdin.jsonl"))\n")
        chmod(recorder, 0o755)
        _ = try await runOnce("""
            data_dir: \(dir.file("state"))
            sources:
              app: { type: file, include: \(app), timestamp: { field: $.time } }
            transforms:
              errors: { type: metric_filter, inputs: [app], pattern: '{ $.level = "ERROR" }', metric_namespace: App, metric_name: Errors, metric_value: 1 }
              alarm:
                type: alarm
                inputs: [errors]
                definition: { AlarmName: HighErrors, Namespace: App, MetricName: Errors, Statistic: Sum, Period: 60, Threshold: 3,
                              ComparisonOperator: GreaterThanThreshold, EvaluationPeriods: 1 }
              rules:
                type: rule
                inputs: [alarm]
                rules:
                  to-alarm:
                    event_pattern: { source: [aws.cloudwatch], detail-type: [CloudWatch Alarm State Change], detail: { state: { value: [ALARM] } } }
                    input_transformer:
                      InputPathsMap: { alarm: $.detail.alarmName, reason: $.detail.state.reason }
                      InputTemplate: '<alarm> went to ALARM'
            sinks:
              page: { type: notifier, inputs: [rules.to-alarm], command: [\(recorder), "{subject}", "{summary}"] }
              all: { type: file, inputs: [rules], path: \(dir.file("alarms.jsonl")) }
            """)
        #expect(lines(dir.read("calls.txt")) == ["to-alarm|HighErrors went to ALARM"])
        let stdin = lines(dir.read("stdin.jsonl"))
        #expect(stdin.count == 1)
        #expect(stdin.first?.contains(#""kind":"rule""#) == true)
        #expect(stdin.first?.contains(#""state":"MATCHED""#) == true)
        // The main output carries the matched alarm events themselves.
        #expect(lines(dir.read("alarms.jsonl")).count == 1)
        #expect(dir.read("alarms.jsonl").contains(#""alarmName":"HighErrors""#))
    }

    @Test("pattern errors are located: inside a YAML mapping by its path, inside a JSON string by column")
    func locatedErrors() {
        let found = diagnostics("""
            sources:
              app: { type: stdin }
            transforms:
              r:
                type: rule
                inputs: [app]
                rules:
                  a:
                    event_pattern:
                      detail:
                        state: [{ prefix: 5 }]
                  b: { event_pattern: '{"source": "aws.ec2"}' }
                  c: { event_pattern: { x: [1] }, input_path: 'detail' }
                  _d: { event_pattern: { x: [1] } }
            sinks:
              out: { type: console, inputs: [r.a] }
            """)
        #expect(found.contains { $0.hasPrefix("p.yaml:11:") && $0.contains("setting 'rules.a.event_pattern.detail.state[0].prefix': invalid event pattern: prefix match pattern must be a string") }, "\(found)")
        // One rule at a time, so each problem is the one reported.
        for (rule, expected) in [
            (#"b: { event_pattern: '{"source": "aws.ec2"}' }"#, "p.yaml:4:76: component 'r': setting 'rules.b.event_pattern': invalid event pattern at column 12: \"source\" must be an object or an array"),
            ("c: { event_pattern: { x: [1] }, input_path: 'detail' }", "setting 'rules.c.input_path': 'detail' is not a JSON path"),
            ("_d: { event_pattern: { x: [1] } }", "'_d' is not a rule name"),
        ] {
            let reported = diagnostics("""
                sources:
                  app: { type: stdin }
                transforms:
                  r: { type: rule, inputs: [app], rules: { \(rule) } }
                sinks:
                  out: { type: console, inputs: [r] }
                """)
            #expect(reported.contains { $0.contains(expected) }, "\(reported)")
        }
    }

    @Test("trailwatch test-event-pattern answers like aws events test-event-pattern")
    func testEventPatternCommand() async throws {
        func run(_ arguments: [String]) async throws -> (Int32, String, String) {
            let result = try await Child.trailwatch(["test-event-pattern"] + arguments)
            return (result.status, result.output, result.errors)
        }
        let pattern = #"{"source":["aws.signin"],"detail":{"additionalEventData":{"MFAUsed":["No"]}}}"#
        var (status, out, _) = try await run([pattern, Self.login])
        #expect(status == 0 && out == "true\n")
        (status, out, _) = try await run(["--format", "json", pattern, Self.mfaLogin])
        #expect(status == 1)
        #expect(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Bool] == ["Result": false])
        let dir = TemporaryDirectory()
        let file = dir.write("p.json", pattern)
        (status, out, _) = try await run(["file://" + file, Self.login, "--envelope", "none"])
        #expect(status == 1 && out == "false\n")
        var err: String
        (status, _, err) = try await run([#"{"detail": {"state": []}}"#, "{}"])
        #expect(status == 2)
        #expect(err.contains("InvalidEventPatternException") && err.contains("Empty arrays are not allowed at line 1, column 22"), "\(err)")
        (status, _, err) = try await run([pattern, "[1]"])
        #expect(status == 2 && err.contains("Event is not valid"))
    }

    @Test("real CloudTrail records: a Stratus Red Team console login without MFA is caught", .enabled(if: TestPaths.hasSharedData))
    func stratusConsoleLogin() async throws {
        let dir = TemporaryDirectory()
        let source = TestPaths.sharedData.appendingPathComponent("cloudtrail/stratus_red_team_detonation_logs/aws.initial-access.console-login-without-mfa.json")
        let records = try JSONSerialization.jsonObject(with: Data(contentsOf: source)) as? [Any] ?? []
        let file = dir.write("t/111_CloudTrail_eu_20240802T0853Z_x.json",
                             String(decoding: try JSONSerialization.data(withJSONObject: ["Records": records]), as: UTF8.self))
        _ = try await runOnce("""
            sources:
              trail: { type: cloudtrail, include: \(file) }
            transforms:
              rules:
                type: rule
                inputs: [trail]
                rules:
                  no-mfa: { event_pattern_file: \(TestPaths.repositoryRoot.path)/pipelines/rules/console-login-without-mfa.json }
            sinks:
              out: { type: file, inputs: [rules.no-mfa], path: \(dir.file("hits.jsonl")) }
            """)
        #expect(lines(dir.read("hits.jsonl")).count == records.count)
    }
}
