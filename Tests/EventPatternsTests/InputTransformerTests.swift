import Testing
import EventPatterns

/// EventBridge's input transformer, with the examples AWS gives.
struct InputTransformerTests {
    static let event = Array(#"{"version":"0","id":"7bf73129","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","account":"123456789012","time":"2015-11-11T21:29:54Z","region":"us-east-1","resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],"detail":{"instance-id":"i-0123456789","state":"RUNNING","note":"say \"hi\"","tags":{"a":1}}}"#.utf8)
    static let context = RuleContext(ruleName: "r1", ruleARN: "arn:aws:events:us-east-1:123456789012:rule/r1", ingestionTime: "2015-11-11T21:30:00.000Z")
    static let paths = [("instance", "$.detail.instance-id"), ("state", "$.detail.state"), ("note", "$.detail.note"),
                        ("tags", "$.detail.tags"), ("missing", "$.detail.nothing"), ("first", "$.resources[0]")]

    func render(_ template: String) throws -> String {
        let t = try InputTransformer(pathsMap: Self.paths, template: template)
        return String(decoding: t.render(event: Self.event, context: Self.context), as: UTF8.self)
    }

    @Test func textTemplates() throws {
        #expect(try render("<instance> is in state <state>") == "i-0123456789 is in state RUNNING")
        #expect(try render("\"<instance> is in state <state>\"") == "\"i-0123456789 is in state RUNNING\"")
        #expect(try render("The instance <instance> is in state \"<state>\"") == "The instance i-0123456789 is in state \"RUNNING\"")
        #expect(try render("missing: [<missing>]") == "missing: []")
        #expect(try render("rule <aws.events.rule-name> at <aws.events.event.ingestion-time>") == "rule r1 at 2015-11-11T21:30:00.000Z")
        #expect(try render("<b>bold</b> <instance>") == "<b>bold</b> i-0123456789", "undefined placeholders stay as written")
    }

    @Test func jsonTemplates() throws {
        #expect(try render(#"{"myInstance": <instance>, "myStatus": "<instance> is in state \"<state>\""}"#)
                == #"{"myInstance": "i-0123456789", "myStatus": "i-0123456789 is in state \"RUNNING\""}"#)
        #expect(try render(#"{"note": "<note>", "raw": <note>}"#) == #"{"note": "say \"hi\"", "raw": "say \"hi\""}"#)
        #expect(try render(#"{"tags": <tags>, "text": "<tags>", "gone": <missing>, "empty": "<missing>"}"#)
                == #"{"tags": {"a":1}, "text": "{\"a\":1}", "gone": null, "empty": ""}"#)
        #expect(try render(#"{"arn": <first>, "rule": <aws.events.rule-arn>}"#)
                == #"{"arn": "arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111", "rule": "arn:aws:events:us-east-1:123456789012:rule/r1"}"#)
        let whole = try render(#"{"event": <aws.events.event.json>}"#)
        #expect(whole == "{\"event\": " + String(decoding: Self.event, as: UTF8.self) + "}")
        #expect(try render(#"{"event": <aws.events.event>}"#).contains("\"detail\"") == false)
    }

    @Test func invalidTransformersAreRejected() {
        for (paths, template, fragment) in [
            ([("bad key", "$.detail")], "<x>", "not a valid InputPathsMap key"),
            ([("k", "detail.state")], "<k>", "is not a JSON path"),
            ([("k", "$.detail[*]")], "<k>", "wildcards"),
            ([("k", "$.detail")], #"{"a": <k>"#, "not valid JSON"),
            ([("k", "$.detail")], #"{<k>: 1}"#, "cannot be used as an object key"),
            ([("k", "$.detail")], #"{"<k>": 1}"#, "cannot be used as an object key"),
            ([("k", "$.detail")], #"{"a": "<aws.events.event.json>"}"#, "only be used as a JSON value"),
            ([("k", "$.detail")], "", "1 to 8192"),
        ] as [([(String, String)], String, String)] {
            do {
                _ = try InputTransformer(pathsMap: paths, template: template)
                Issue.record("accepted \(template)")
            } catch {
                #expect(error.message.contains(fragment), "\(template): \(error.message)")
            }
        }
    }

    @Test func targetInputs() throws {
        #expect(try TargetInput.inputPath("$.detail.state").render(event: Self.event, context: Self.context).map { String(decoding: $0, as: UTF8.self) } == "\"RUNNING\"")
        #expect(try TargetInput.inputPath("$.detail.nothing").render(event: Self.event, context: Self.context) == nil)
        #expect(try TargetInput.constant(#"{"page": true}"#).render(event: Self.event, context: Self.context) == Array(#"{"page": true}"#.utf8))
        #expect(throws: EventPatternError.self) { try TargetInput.constant("{not json") }
    }
}
