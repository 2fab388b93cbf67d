import Testing
import FilterPatterns

/// One row of the conformance table: a pattern, an event, whether it matches, and (optionally)
/// values the match extracts (`name=value`, space-delimited fields or JSON selectors).
struct Case: CustomTestStringConvertible, Sendable {
    var pattern: String
    var event: String
    var match: Bool
    var extracted: [String: String]? = nil
    var testDescription: String { "\(pattern)  ⟵  \(event)" }
}

func c(_ pattern: String, _ event: String, _ match: Bool, _ extracted: [String: String]? = nil) -> Case {
    Case(pattern: pattern, event: event, match: match, extracted: extracted)
}

let apache = #"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /apache_pb.gif HTTP/1.0" 200 1534"#
let apache404 = #"127.0.0.1 - frank [10/Oct/2000:13:25:15 -0700] "GET /index.html HTTP/1.0" 404 2326"#
let trail = #"{"eventVersion":"1.08","eventType":"AwsApiCall","eventName":"UpdateTrail","eventSource":"cloudtrail.amazonaws.com","sourceIPAddress":"111.111.111.111","errorCode":"AccessDenied","userIdentity":{"type":"Root","arn":"arn:aws:iam::123456789012:root"},"requestParameters":{"instanceType":"m5.8xlarge"},"readOnly":false}"#
let doc = #"{"eventType":"UpdateTrail","sourceIPAddress":"123.123.123.123","arrayKey":["value","another value"],"objectList":[{"name":"a","id":1},{"name":"b","id":2}],"SomeObject":null,"cluster.name":"prod","ThisFlag":true,"ThatFlag":false,"bandwidth":75,"latency":50,"refCount":11,"number":[0.001,10000],"users":[1,2,3],"nested":{"deep":{"value":"x"}},"code":"404","empty":""}"#

/// AWS's documented examples (FilterAndPatternSyntax, metric filter examples, CloudTrail/CIS
/// patterns) and the decisions recorded in the README where AWS is silent.
let conformance: [Case] = [
    // Match everything
    c("", "anything at all", true),
    c("", "", true),
    c("\" \"", "no-spaces-here", true),
    c("   ", "anything", true),
    // Terms: case-sensitive substrings, AND
    c("ERROR", "Exiting with ERRORCODE: -1", true),
    c("ERROR", "[ERROR] Caught IllegalArgumentException", true),
    c("ERROR", "error: lower case", false),
    c("ERROR", "", false),
    c("ERROR Exception", "[ERROR] Caught IllegalArgumentException", true),
    c("ERROR Exception", "[ERROR] Unhandled", false),
    c("goodbye world", "goodbye cruel world", true),
    c("\"hello cruel\"", "hello cruela", true),
    c("\"hello cruel\"", "hello, cruel", false),
    c("\"[ERROR]\"", "[ERROR] x", true),
    c("\"[ERROR]\"", "ERROR x", false),
    c("\"say \\\"hi\\\"\"", "they say \"hi\" here", true),
    c("Exception\\", "Exception\\ trailing", true),
    c("a.b", "x a.b y", true),
    c("key=value", "x key=value", true),
    c("ERROR\tWARN", "ERROR and WARN", true),
    // Exclusion
    c("ERROR -ARGUMENTS", "[ERROR 400] BAD REQUEST", true),
    c("ERROR -ARGUMENTS", "[ERROR 419] MISSING ARGUMENTS", false),
    c("ERROR -ARGUMENTS", "[INFO] ok", false),
    c("-DEBUG", "INFO ok", true),
    c("-DEBUG", "DEBUG noise", false),
    c("ERROR -\"not found\"", "ERROR file not found", false),
    c("ERROR -\"not found\"", "ERROR disk full", true),
    // Optional terms
    c("?ERROR ?WARN", "[WARN] slow", true),
    c("?ERROR ?WARN", "[ERROR] bad", true),
    c("?ERROR ?WARN", "[INFO] fine", false),
    c("?Error ?fatal", "a fatal thing", true),
    c("?ERROR ?ARGUMENTS REQUEST", "BAD REQUEST", true),
    c("?ERROR ?ARGUMENTS REQUEST", "[ERROR] ARGUMENTS", false),
    c("?ERROR -DEBUG", "just text", true),
    c("?\"clean up\" ?xyz", "we clean up now", true),
    c("?\"clean up\" ?xyz", "clean and up", false),
    // Regex in term patterns
    c("%AUTHORIZED%", "UNAUTHORIZED access", true),
    c("%^starting|^initializing|^shutting down%", "initializing cache", true),
    c("%^starting|^initializing|^shutting down%", "we are starting", false),
    c("%gra|ey%", "grey", true),
    c("%gra|ey%", "gray", true),
    c("%gra|ey%", "gr", false),
    c("%\\d{3}%", "code 404", true),
    c("%\\d{3}%", "code 40", false),
    c("%[abc]x%", "zbx", true),
    c("%[^abc]x%", "bx", false),
    c("%[a-c]+z$%", "xaabbz", true),
    c("%10.10.0.1%", "10010,051", true),
    c("%10\\.10\\.0\\.1%", "10010,051", false),
    c("%10\\.10\\.0\\.1%", "from 10.10.0.1", true),
    c("%a{2,}%", "baab", true),
    c("%a{2,}%", "bab", false),
    c("%a{,1}b$%", "ab", true),
    c("%\\x3A%", "key: value", true),
    c("%\\x28%", "f(x)", true),
    c("%colou?r%", "color", true),
    c("%\\s\\w+\\s%", "a word here", true),
    c("%\\S+@\\S+%", "mail me@example.com", true),
    c("%^$%", "", true),
    c("%ERROR% -%DEBUG%", "ERROR x", true),
    c("%ERROR% -%DEBUG%", "ERROR DEBUG", false),
    c("\"%bar%\"", "foo %bar% baz", true),
    c("\"%bar%\"", "foo bar baz", false),
    // JSON patterns: strings, wildcards, regex
    c("{ $.eventType = \"UpdateTrail\" }", doc, true, ["$.eventType": "UpdateTrail"]),
    c("{ $.eventType = UpdateTrail }", doc, true),
    c("{ $.eventType = \"updatetrail\" }", doc, false),
    c("{ $.eventType = %Trail% }", doc, true),
    c("{ $.eventType != %Trail% }", doc, false),
    c("{ $.sourceIPAddress != 123.123.* }", doc, false),
    c("{ $.sourceIPAddress != 123.124.* }", doc, true),
    c("{ $.sourceIPAddress = 123.123.* }", doc, true),
    c("{ $.sourceIPAddress = \"*.123\" }", doc, true),
    c("{ $.sourceIPAddress = \"*.12*\" }", doc, true),
    c("{ $.eventType = \"Update*Trail\" }", doc, false),
    c("{ $.eventType = \"*\" }", doc, true),
    c("{ $.missing = * }", doc, false),
    c("{ $.arrayKey[0] = \"value\" }", doc, true),
    c("{ $.arrayKey[1] = \"another value\" }", doc, true),
    c("{ $.arrayKey[2] = \"value\" }", doc, false),
    c("{ $.objectList[1].id = 2 }", doc, true),
    c("{ $.objectList[0].id = 2 }", doc, false),
    c("{ $.['cluster.name'] = \"prod\" }", doc, true),
    c("{ $.nested.deep.value = \"x\" }", doc, true),
    c("{ $.nested.deep = \"x\" }", doc, false),
    c("{ $.empty = \"\" }", doc, true),
    // JSON patterns: IS / NOT EXISTS
    c("{ $.SomeObject IS NULL }", doc, true),
    c("{ $.eventType IS NULL }", doc, false),
    c("{ $.missing IS NULL }", doc, false),
    c("{ $.SomeOtherObject NOT EXISTS }", doc, true),
    c("{ $.SomeObject NOT EXISTS }", doc, false),
    c("{ $.ThisFlag IS TRUE }", doc, true),
    c("{ $.ThatFlag IS FALSE }", doc, true),
    c("{ $.ThatFlag IS TRUE }", doc, false),
    c("{ $.eventType IS TRUE }", doc, false),
    // JSON patterns: numbers
    c("{ $.bandwidth > 75 }", doc, false),
    c("{ $.bandwidth >= 75 }", doc, true),
    c("{ $.latency < 50 }", doc, false),
    c("{ $.latency <= 50 }", doc, true),
    c("{ $.refCount > 10 }", doc, true),
    c("{ $.refCount != 10 }", doc, true),
    c("{ $.refCount = 11 }", doc, true),
    c("{ $.refCount = 11.0 }", doc, true),
    c("{ $.number[0] = 1e-3 }", doc, true),
    c("{ $.number[1] = 10e3 }", doc, true),
    c("{ $.number[1] > +1000 }", doc, true),
    c("{ $.code = 404 }", doc, false),
    c("{ $.code = \"404\" }", doc, true),
    c("{ $.eventType > 5 }", doc, false),
    c("{ $.missing < 5 }", doc, false),
    c("{ $.missing != 5 }", doc, false),
    c("{ $.users = 1 }", doc, false),
    c("{ $.users != 1 }", doc, false),
    c("{ $.objectList = \"x\" }", doc, false),
    // JSON patterns: wildcard selectors (existential)
    c("{ $.* = \"prod\" }", doc, true),
    c("{ $.users[*] = 3 }", doc, true),
    c("{ $.users[*] > 5 }", doc, false),
    c("{ $.objectList[*].name = \"b\" }", doc, true),
    c("{ $.* = %111\\.111\\.111\\.1[0-9]{1,2}% }", trail, true),
    // JSON patterns: compound
    c("{ $.eventType = \"UpdateTrail\" && $.bandwidth = 75 }", doc, true),
    c("{ $.eventType = \"UpdateTrail\" && $.bandwidth = 76 }", doc, false),
    c("{ $.eventType = \"x\" || $.bandwidth = 75 }", doc, true),
    c("{ $.eventType = \"x\" || $.bandwidth = 76 && $.latency = 50 }", doc, false),
    c("{ $.eventType = \"UpdateTrail\" || $.bandwidth = 76 && $.latency = 49 }", doc, true),
    c("{ ($.eventType = \"x\" || $.bandwidth = 75) && $.latency = 50 }", doc, true),
    c("{ ($.errorCode = \"*UnauthorizedOperation\") || ($.errorCode = \"AccessDenied*\") }", trail, true),
    c("{ $.errorCode = \"*UnauthorizedOperation\" }", trail, false),
    c("{($.eventName=DeleteGroupPolicy)||($.eventName=UpdateTrail)}", trail, true),
    c("{ $.userIdentity.type = \"Root\" && $.userIdentity.invokedBy NOT EXISTS && $.eventType != \"AwsServiceEvent\" }", trail, true),
    c("{ $.requestParameters.instanceType = *.8xlarge }", trail, true),
    c("{ $.readOnly IS FALSE }", trail, true),
    c("{ $.eventSource = s3.amazonaws.com }", trail, false),
    c("{ $.eventSource = cloudtrail.amazonaws.com }", trail, true),
    // JSON pattern against events that are not JSON objects
    c("{ $.a NOT EXISTS }", "plain text", false),
    c("{ $.a NOT EXISTS }", "[1,2,3]", false),
    c("{ $.a = 1 }", "{\"a\":1", false),
    c("{ $.a = 1 }", "{\"a\":1} trailing", false),
    c("{ $.a = 1 }", "{\"a\":1}", true),
    c("{ $.a = \"é\" }", "{\"a\":\"\\u00e9\"}", true),
    // Space-delimited patterns
    c("[ip, user, username, timestamp, request, status_code, bytes]", apache, true,
      ["$ip": "127.0.0.1", "$user": "-", "$username": "frank", "$timestamp": "10/Oct/2000:13:25:15 -0700",
       "$request": "GET /apache_pb.gif HTTP/1.0", "$status_code": "200", "$bytes": "1534"]),
    c("[ip, user, username, timestamp, request, status_code = 404, bytes]", apache, false),
    c("[ip, user, username, timestamp, request, status_code = 404, bytes]", apache404, true),
    c("[ip, user, username, timestamp, request, status_code = 4*, bytes]", apache404, true),
    c("[..., status_code = 404, bytes]", apache404, true, ["$1": "127.0.0.1", "$5": "GET /index.html HTTP/1.0", "$status_code": "404", "$bytes": "2326"]),
    c("[ip, ..., status_code, bytes]", apache, true, ["$ip": "127.0.0.1", "$status_code": "200"]),
    c("[ip, user, ...]", apache, true),
    c("[...]", "", true),
    c("[..., request=*.html*, status_code=4*,]", apache404, true,
      ["$1": "127.0.0.1", "$2": "-", "$3": "frank", "$4": "10/Oct/2000:13:25:15 -0700", "$request": "GET /index.html HTTP/1.0", "$status_code": "404", "$7": "2326"]),
    c("[..., request=*.html*, status_code=4*,]", apache, false),
    c("[ip=%127\\.0\\.0\\.[1-9]%, ...]", apache, true),
    c("[ip=%127\\.0\\.0\\.[2-9]%, ...]", apache, false),
    c("[..., status_code = 404 || status_code = 410, bytes]", apache404, true),
    c("[..., status_code = 404 || status_code = 410, bytes]", apache, false),
    c("[..., status_code != 200 && status_code != 304, bytes]", apache404, true),
    c("[..., bytes > 1000]", apache, true),
    c("[..., bytes > 2000]", apache, false),
    c("[..., bytes >= 1534]", apache, true),
    c("[..., bytes > 1000]", "GET / 200 -", false),
    c("[w1=ERROR, w2]", "ERROR the disk is full", true, ["$w1": "ERROR", "$w2": "the disk is full"]),
    c("[w1=ERROR, w2]", "WARN the disk is full", false),
    c("[w1=ERROR, w2]", "ERROR", false),
    c("[w1!=ERROR && w1!=WARN, w2]", "INFO all good", true),
    c("[w1!=ERROR && w1!=WARN, w2]", "WARN careful", false),
    c("[timestamp=*Z, request_id=\"*-*\", event]", "2026-11-25T10:00:00.000Z\tabc-123\tINFO\tstarted handler", true,
      ["$timestamp": "2026-11-25T10:00:00.000Z", "$request_id": "abc-123", "$event": "INFO\tstarted handler"]),
    c("[timestamp=*Z, request_id=\"*-*\", event]", "START RequestId: abc Version: 1", false),
    c("[a, b, c]", "one two", false),
    c("[a, b]", "  padded   words  ", true, ["$a": "padded", "$b": "words"]),
    c("[a, b=\"x y\"]", "one \"x y\"", true),
    c("[, , status=5*]", "a b 503", true, ["$1": "a", "$2": "b", "$status": "503"]),
    c("[level=ERROR, ...]", "ERROR x", true),
    c("[level=ERROR, ...]", "ERRORS x", false),
    c("[level=ERR*, ...]", "ERRORS x", true),
    c("[a, b=%^[0-9]+$%]", "x 123", true),
    c("[a, b=%^[0-9]+$%]", "x 12a", false),
]

/// Patterns AWS rejects, with the column of the problem (1-based) and a word of the message.
let invalidPatterns: [(pattern: String, column: Int, says: String)] = [
    ("\"unterminated", 1, "unterminated"),
    ("ERROR \"half", 7, "unterminated"),
    ("%(a|b)%", 2, "parentheses"),
    ("%something!%", 11, "not allowed"),
    ("%é%", 2, "multi-byte"),
    ("%%", 2, "empty"),
    ("%abc", 1, "unterminated"),
    ("?", 2, "followed by a term"),
    ("ERROR -", 8, "followed by a term"),
    ("{ $.a = }", 9, "missing value"),
    ("{ $.a }", 7, "comparison"),
    ("{ $.a IS NOT NULL }", 10, "IS NOT"),
    ("{ $.a EXISTS }", 7, "EXISTS"),
    ("{ $.a > \"x\" }", 9, "need a number"),
    ("{ $.a = 1", 10, "not closed"),
    ("{ $.a = 1 } x", 13, "after the closing"),
    ("{ a = 1 }", 3, "selector"),
    ("{ ($.a = 1 }", 12, "parenthesis"),
    ("{ $.a = %x% && $.b = %y% && $.c = %z% }", 1, "at most 2"),
    ("{ $.*.* = 1 }", 3, "one wildcard"),
    ("{ $.a.* = 1 && $.b.* = 1 && $.c.* = 1 && $.d.* = 1 }", 1, "at most 3"),
    ("[a = 4* && b > 1]", 12, "names field 'b'"),
    ("[a, a]", 5, "named twice"),
    ("[a,", 4, "not closed"),
    ("[..., b, ...]", 10, "only once"),
    ("[a > x]", 6, "need a number"),
    ("[a] x", 5, "after the closing"),
    ("[a = ]", 6, "missing value"),
    ("[a b]", 4, "expected a comparison after field 'a'"),
    ("[a=%x%, b=%y%, c=%z%]", 1, "at most 2"),
    (String(repeating: "x", count: 1025), 1025, "longer than 1024"),
]

@Suite("Filter pattern conformance")
struct ConformanceTests {
    @Test("documented examples", arguments: conformance)
    func conformanceCase(_ row: Case) throws {
        let pattern = try FilterPattern(row.pattern)
        let bytes = Array(row.event.utf8)
        let matched = bytes.withUnsafeBytes { pattern.matches($0) }
        #expect(matched == row.match)
        let extracted = bytes.withUnsafeBytes { pattern.extractedValues($0) }
        #expect((extracted != nil) == row.match, "extractedValues disagrees with matches")
        if let expected = row.extracted, let extracted {
            var got: [String: String] = [:]
            for (name, value) in extracted { got[name] = String(decoding: value, as: UTF8.self) }
            for (name, value) in expected { #expect(got[name] == value, "\(name)") }
        }
    }

    @Test("rejected patterns name the column and what was expected", arguments: invalidPatterns.indices)
    func rejected(_ index: Int) {
        let row = invalidPatterns[index]
        do {
            _ = try FilterPattern(row.pattern)
            Issue.record("accepted \(row.pattern)")
        } catch {
            #expect(error.column == row.column, "\(error)")
            #expect(error.message.contains(row.says), "\(error)")
        }
    }

    @Test("the pattern kind follows the first non-blank character")
    func kinds() throws {
        #expect(try FilterPattern("").kind == .everything)
        #expect(try FilterPattern("\" \"").kind == .everything)
        #expect(try FilterPattern("ERROR").kind == .terms)
        #expect(try FilterPattern("  { $.a = 1 }").kind == .json)
        #expect(try FilterPattern("[ERROR]").kind == .delimited)
        #expect(try FilterPattern("[ERROR]").matches("[ERROR] x") == true)   // one field named ERROR: any one-token-or-more line
        #expect(try FilterPattern("\"[ERROR]\"").matches("ERROR") == false)
    }
}
