import Testing
import EventPatterns

/// Conformance table from AWS's documented event-pattern examples (EventBridge User Guide,
/// "Content filtering in event patterns", "Arrays in event patterns", "Null values and empty
/// strings"): the events and patterns as AWS shows them, with AWS's answers.
struct ConformanceTests {
    static let ec2Event = """
    {"version":"0","id":"6a7e8feb-b491-4cf7-a9f1-bf3703467718","detail-type":"EC2 Instance State-change Notification",
     "source":"aws.ec2","account":"111122223333","time":"2017-12-22T18:43:48Z","region":"us-west-1",
     "resources":["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
     "detail":{"instance-id":"i-1234567890abcdef0","state":"terminated"}}
    """

    static let numbersEvent = """
    {"version":"0","id":"3e3c153a-8339-4e30-8c35-687ebef853fe","detail-type":"EC2 Instance Launch Successful",
     "source":"aws.autoscaling","account":"123456789012","time":"2015-11-11T21:31:47Z","region":"us-east-1",
     "resources":["arn:aws:autoscaling:us-east-1:123456789012:autoScalingGroup:eb56d16b","arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f"],
     "detail":{"eventVersion":"","responseElements":null,"c-count":5,"d-count":3,"x-limit":301.8,
               "source-ip":"10.0.0.123","sourceIPAddress":"10.0.0.255","ipv6":"2001:db8:85a3::8a2e:370:7334",
               "filename":"image.png","FilePath":"dir/lib/file.so","name":"Alice","location":"EuRoPe-west",
               "EventBusArn":"arn:aws:events:us-east-1:123456789012:event-bus/myEventBus",
               "items":[{"x":1},{"x":2,"tags":["a","b"]}],"nested":{"deep":{"flag":true}}}}
    """

    static let matching: [(String, String, Bool, String)] = [
        // (pattern, event, AWS's answer, what it shows)
        (#"{"source":["aws.ec2"],"detail-type":["EC2 Instance State-change Notification"],"detail":{"state":["terminated"]}}"#, ec2Event, true, "exact values, nested"),
        (#"{"source":["aws.ec2"],"detail":{"state":["running","pending"]}}"#, ec2Event, false, "values in a list are alternatives"),
        (#"{"source":["aws.s3"]}"#, ec2Event, false, "exact miss"),
        (#"{"time":[{"prefix":"2017-12-22"}]}"#, ec2Event, true, "prefix"),
        (#"{"time":[{"prefix":"2017-10-02"}]}"#, ec2Event, false, "prefix miss"),
        (#"{"detail":{"state":[{"prefix":{"equals-ignore-case":"TER"}}]}}"#, ec2Event, true, "prefix ignoring case"),
        (#"{"detail":{"state":[{"suffix":"ated"}]}}"#, ec2Event, true, "suffix"),
        (#"{"detail":{"filename":[{"suffix":{"equals-ignore-case":".PNG"}}]}}"#, numbersEvent, true, "suffix ignoring case"),
        (#"{"detail":{"state":[{"anything-but":"initializing"}]}}"#, ec2Event, true, "anything-but a string"),
        (#"{"detail":{"state":[{"anything-but":"terminated"}]}}"#, ec2Event, false, "anything-but the value itself"),
        (#"{"detail":{"state":[{"anything-but":["stopped","overloaded"]}]}}"#, ec2Event, true, "anything-but a list"),
        (#"{"detail":{"c-count":[{"anything-but":[5,6]}]}}"#, numbersEvent, false, "anything-but numbers"),
        (#"{"detail":{"c-count":[{"anything-but":100}]}}"#, numbersEvent, true, "anything-but a number"),
        (#"{"detail":{"state":[{"anything-but":{"prefix":"init"}}]}}"#, ec2Event, true, "anything-but prefix"),
        (#"{"detail":{"state":[{"anything-but":{"prefix":"term"}}]}}"#, ec2Event, false, "anything-but prefix miss"),
        (#"{"detail":{"filename":[{"anything-but":{"suffix":".txt"}}]}}"#, numbersEvent, true, "anything-but suffix"),
        (#"{"detail":{"state":[{"anything-but":{"equals-ignore-case":["Stopped","OverLoaded"]}}]}}"#, ec2Event, true, "anything-but ignoring case"),
        (#"{"detail":{"state":[{"anything-but":{"equals-ignore-case":"TERMINATED"}}]}}"#, ec2Event, false, "anything-but ignoring case miss"),
        (#"{"detail":{"FilePath":[{"anything-but":{"wildcard":"*/lib/*"}}]}}"#, numbersEvent, false, "anything-but wildcard"),
        (#"{"detail":{"FilePath":[{"anything-but":{"wildcard":["*/bin/*","*.txt"]}}]}}"#, numbersEvent, true, "anything-but wildcards"),
        (#"{"detail":{"c-count":[{"numeric":[">",0,"<=",5]}],"d-count":[{"numeric":["<",10]}],"x-limit":[{"numeric":["=",3.018e2]}]}}"#, numbersEvent, true, "numeric ranges"),
        (#"{"detail":{"c-count":[{"numeric":[">",5]}]}}"#, numbersEvent, false, "numeric bound exclusive"),
        (#"{"detail":{"c-count":[{"numeric":[">=",5]}]}}"#, numbersEvent, true, "numeric bound inclusive"),
        (#"{"detail":{"source-ip":[{"numeric":[">",0]}]}}"#, numbersEvent, false, "numeric never matches a string"),
        (#"{"detail":{"c-count":[5]}}"#, numbersEvent, true, "exact number"),
        (#"{"detail":{"x-limit":[3.018e2]}}"#, numbersEvent, true, "exact number by value"),
        (#"{"detail":{"c-count":["5"]}}"#, numbersEvent, false, "a string is not a number"),
        (#"{"detail":{"sourceIPAddress":[{"cidr":"10.0.0.0/24"}]}}"#, numbersEvent, true, "cidr"),
        (#"{"detail":{"sourceIPAddress":[{"cidr":"10.0.1.0/24"}]}}"#, numbersEvent, false, "cidr miss"),
        (#"{"detail":{"ipv6":[{"cidr":"2001:db8::/32"}]}}"#, numbersEvent, true, "cidr IPv6"),
        (#"{"detail":{"state":[{"exists":true}]}}"#, ec2Event, true, "exists true"),
        (#"{"detail":{"c-count":[{"exists":false}]}}"#, ec2Event, true, "exists false on an absent field"),
        (#"{"detail":{"state":[{"exists":false}]}}"#, ec2Event, false, "exists false on a present field"),
        (#"{"detail":{"nested":[{"exists":false}]}}"#, numbersEvent, true, "exists works on leaves only: an object is no leaf"),
        (#"{"detail":{"nested":[{"exists":true}]}}"#, numbersEvent, false, "exists true on an object"),
        (#"{"detail":{"responseElements":[null]}}"#, numbersEvent, true, "null"),
        (#"{"detail":{"eventVersion":[""]}}"#, numbersEvent, true, "empty string"),
        (#"{"detail":{"responseElements":[""]}}"#, numbersEvent, false, "null is not the empty string"),
        (#"{"detail":{"responseElements":[{"exists":true}]}}"#, numbersEvent, true, "null is a value"),
        (#"{"detail":{"name":[{"equals-ignore-case":"alice"}]}}"#, numbersEvent, true, "equals-ignore-case"),
        (#"{"detail":{"name":[{"equals-ignore-case":"bob"}]}}"#, numbersEvent, false, "equals-ignore-case miss"),
        (#"{"detail":{"EventBusArn":[{"wildcard":"arn:aws:events:us-east-1:*:event-bus/*"}]}}"#, numbersEvent, true, "wildcard"),
        (#"{"detail":{"EventBusArn":[{"wildcard":"arn:aws:events:us-west-2:*:event-bus/*"}]}}"#, numbersEvent, false, "wildcard miss"),
        (#"{"detail":{"FilePath":[{"wildcard":"dir/*/file.so"}]}}"#, numbersEvent, true, "wildcard in the middle"),
        (#"{"detail":{"FilePath":[{"wildcard":"dir/lib/file.so"}]}}"#, numbersEvent, true, "wildcard without star is exact"),
        (#"{"detail":{"$or":[{"c-count":[{"numeric":[">",0,"<=",5]}]},{"d-count":[{"numeric":["<",10]}]},{"x-limit":[{"numeric":["=",3.018e2]}]}]}}"#, numbersEvent, true, "$or in detail"),
        (#"{"source":["aws.autoscaling"],"$or":[{"detail":{"c-count":[99]}},{"detail":{"d-count":[3]}}]}"#, numbersEvent, true, "$or at the top"),
        (#"{"source":["aws.autoscaling"],"$or":[{"detail":{"c-count":[99]}},{"detail":{"d-count":[98]}}]}"#, numbersEvent, false, "$or with no branch"),
        (#"{"resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f","arn:aws:ec2:us-east-1:111122223333:instance/i-b188560f"]}"#, numbersEvent, true, "arrays: any element against any value"),
        (#"{"resources":["arn:aws:ec2:us-east-1:444455556666:instance/i-b188560f"]}"#, numbersEvent, false, "arrays: no common value"),
        (#"{"detail":{"items":{"x":[2]}}}"#, numbersEvent, true, "arrays of objects"),
        (#"{"detail":{"items":{"x":[2],"tags":["b"]}}}"#, numbersEvent, true, "fields of array elements"),
        (#"{"detail":{"items":{"tags":[{"prefix":"a"}]}}}"#, numbersEvent, true, "nested arrays"),
        (#"{"detail":{"nested":{"deep":{"flag":[true]}}}}"#, numbersEvent, true, "booleans"),
        (#"{"detail":{"nested":{"deep":{"flag":["true"]}}}}"#, numbersEvent, false, "a string is not a boolean"),
        (#"{"detail":{"location":[{"prefix":{"equals-ignore-case":"europe"}}]}}"#, numbersEvent, true, "prefix ignoring case"),
        (#"{"detail":{"location":[{"prefix":"europe"}]}}"#, numbersEvent, false, "prefix is case-sensitive"),
    ]

    @Test("AWS's documented matching examples", arguments: matching.indices)
    func documentedExamples(_ index: Int) throws {
        let (text, event, expected, note) = Self.matching[index]
        let pattern = try EventPattern(text)
        #expect(pattern.matches(json: event) == expected, "\(note): \(text)")
    }

    static let invalid: [(String, String, Int, Int)] = [
        // (pattern, message fragment, line, column)
        (#"{"source": "aws.ec2"}"#, #""source" must be an object or an array"#, 1, 12),
        (#"{"detail": {"state": []}}"#, "Empty arrays are not allowed", 1, 22),
        (#"{"detail": {}}"#, "Empty objects are not allowed", 1, 12),
        (#"{}"#, "Empty objects are not allowed", 1, 1),
        (#"["aws.ec2"]"#, "must be a JSON object", 1, 1),
        (#"{"a": [["x"]]}"#, "Match value must be String, number, true, false, or null", 1, 8),
        (#"{"a": [{"foo": "x"}]}"#, "Unrecognized match type foo", 1, 8),
        (#"{"a": [{"prefix": "a", "suffix": "b"}]}"#, "Only one key allowed in match expression", 1, 34),
        (#"{"a": [{"prefix": 1}]}"#, "prefix match pattern must be a string", 1, 19),
        (#"{"a": [{"exists": "yes"}]}"#, "exists match pattern must be either true or false", 1, 19),
        (#"{"a": [{"numeric": [">", 0, "<", "five"]}]}"#, "Value of < must be numeric", 1, 34),
        (#"{"a": [{"numeric": [">", 5, "<", 1]}]}"#, "Bottom must be less than top", 1, 20),
        (#"{"a": [{"numeric": ["~", 5]}]}"#, "Unrecognized numeric range operator: ~", 1, 21),
        (#"{"a": [{"numeric": [">", 6e9]}]}"#, "between -5.0E9 and 5.0E9", 1, 26),
        (#"{"a": [{"numeric": "5"}]}"#, "Value of numeric must be an array.", 1, 20),
        (#"{"a": [{"cidr": "10.0.0.0/33"}]}"#, "is not a valid CIDR", 1, 17),
        (#"{"a": [{"cidr": "10.0.0/8"}]}"#, "is not a valid CIDR", 1, 17),
        (#"{"a": [{"wildcard": "a**b"}]}"#, "consecutive wildcard characters", 1, 21),
        (#"{"a": [{"wildcard": "a\\qb"}]}"#, "invalid escape", 1, 21),
        (#"{"a": [{"anything-but": ["a", 1]}]}"#, "all the values must be of the same type", 1, 31),
        (#"{"a": [{"anything-but": [true]}]}"#, "anything-but list", 1, 26),
        (#"{"a": [{"anything-but": {"foo": "x"}}]}"#, "Unsupported anything-but pattern: foo", 1, 25),
        (#"{"a": [{"anything-but": null}]}"#, "Value of anything-but must be an array or single string/number value.", 1, 25),
        (#"{"$or": [{"a": ["x"]}]}"#, "$or must be an array of at least two patterns", 1, 9),
        (#"{"$or": [{"a": ["x"]}, "b"]}"#, "each element of $or must be an object", 1, 24),
        (#"{"a": ["x"], "a": ["y"]}"#, "duplicate key \"a\"", 1, 14),
        (#"{"a": ["x"]"#, "unexpected end of the text", 1, 12),
        (#"{"a": ["x",]}"#, "expected a JSON value", 1, 12),
        ("{\"a\":\n  [{\"equals-ignore-case\": 5}]}", "equals-ignore-case match pattern must be a string", 2, 27),
    ]

    @Test("Invalid patterns are rejected with a located message", arguments: invalid.indices)
    func invalidPatterns(_ index: Int) {
        let (text, fragment, line, column) = Self.invalid[index]
        do {
            _ = try EventPattern(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.message.contains(fragment), "\(text): \(error.message)")
            #expect(error.location.line == line && error.location.column == column, "\(text): at \(error.location), expected \(line):\(column)")
            #expect(error.awsMessage.hasPrefix("Event pattern is not valid. Reason: "))
        }
    }

    @Test func patternLengthLimit() {
        let long = "{\"a\":[\"" + String(repeating: "x", count: 4100) + "\"]}"
        #expect(throws: EventPatternError.self) { try EventPattern(long) }
    }

    @Test func errorPathsNameTheOffendingValue() throws {
        do {
            _ = try EventPattern(#"{"detail": {"state": [{"prefix": 1}]}}"#)
        } catch {
            #expect(error.path == ["detail", "state", "Index 0", "prefix"])
        }
    }
}
