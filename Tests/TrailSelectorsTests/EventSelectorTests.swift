import Foundation
import Testing
import ByteJSON
import TrailSelectors

/// Trail event selectors in AWS's shape, applied to records as a trail applies them.
struct EventSelectorTests {
    static let getObject = #"{"eventVersion":"1.09","eventSource":"s3.amazonaws.com","eventName":"GetObject","readOnly":true,"eventType":"AwsApiCall","managementEvent":false,"eventCategory":"Data","resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::logs-bucket/app/2026/a.gz"},{"accountId":"111122223333","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::logs-bucket"}]}"#
    static let putObject = #"{"eventVersion":"1.09","eventSource":"s3.amazonaws.com","eventName":"PutObject","readOnly":false,"eventType":"AwsApiCall","managementEvent":false,"eventCategory":"Data","resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::other-bucket/x"},{"type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::other-bucket"}]}"#
    static let invoke = #"{"eventVersion":"1.09","eventSource":"lambda.amazonaws.com","eventName":"Invoke","readOnly":false,"eventType":"AwsApiCall","managementEvent":false,"eventCategory":"Data","resources":[{"type":"AWS::Lambda::Function","ARN":"arn:aws:lambda:us-east-1:111122223333:function:helloworld"}]}"#
    static let describe = #"{"eventVersion":"1.08","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","readOnly":true,"eventType":"AwsApiCall","managementEvent":true,"eventCategory":"Management"}"#
    static let runInstances = #"{"eventVersion":"1.08","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","readOnly":false,"eventType":"AwsApiCall","managementEvent":true,"eventCategory":"Management","errorCode":"UnauthorizedOperation"}"#
    static let decrypt = #"{"eventVersion":"1.08","eventSource":"kms.amazonaws.com","eventName":"Decrypt","readOnly":true,"eventType":"AwsApiCall","managementEvent":true}"#
    static let insight = #"{"eventVersion":"1.08","eventTime":"2026-11-24T10:00:00Z","eventType":"AwsCloudTrailInsight","eventCategory":"Insight","insightDetails":{"state":"Start"}}"#
    static let all = [getObject, putObject, invoke, describe, runInstances, decrypt, insight]

    func selected(_ json: String) throws -> [Int] {
        let selectors = try JSONDecoder().decode(TrailEventSelectors.self, from: Data(json.utf8))
        let reader = RecordFacts.Reader(withResources: selectors.needsResources)
        return Self.all.indices.filter { i in
            Array(Self.all[i].utf8).withUnsafeBytes { reader.facts($0).map(selectors.selects) ?? false }
        }
    }

    @Test func basicSelectorsAsGetEventSelectorsPrintsThem() throws {
        // The default trail: all management events, read and write.
        #expect(try selected(#"{"TrailARN":"arn:aws:cloudtrail:us-east-1:111122223333:trail/t","EventSelectors":[{"ReadWriteType":"All","IncludeManagementEvents":true,"DataResources":[],"ExcludeManagementEventSources":[]}]}"#) == [3, 4, 5, 6])
        #expect(try selected(#"{"EventSelectors":[{"ReadWriteType":"WriteOnly","IncludeManagementEvents":true}]}"#) == [4, 6])
        #expect(try selected(#"{"EventSelectors":[{"ReadWriteType":"ReadOnly","IncludeManagementEvents":true,"ExcludeManagementEventSources":["kms.amazonaws.com"]}]}"#) == [3, 6])
        // S3 data events for one bucket prefix, Lambda for all functions; no management events.
        #expect(try selected(#"{"EventSelectors":[{"ReadWriteType":"All","IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3:::logs-bucket/app/"]},{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda"]}]}]}"#) == [0, 2, 6])
        #expect(try selected(#"{"EventSelectors":[{"IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}]}]}"#) == [0, 1, 6])
        #expect(try selected(#"{"EventSelectors":[{"IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::Lambda::Function","Values":["arn:aws:lambda:us-east-1:111122223333:function:hello"]}]}]}"#) == [6],
                "a function ARN names one function exactly")
        // Several selectors: any of them.
        #expect(try selected(#"{"EventSelectors":[{"ReadWriteType":"WriteOnly","IncludeManagementEvents":true},{"ReadWriteType":"ReadOnly","IncludeManagementEvents":false,"DataResources":[{"Type":"AWS::S3::Object","Values":["arn:aws:s3"]}]}]}"#) == [0, 4, 6])
    }

    @Test func advancedSelectors() throws {
        #expect(try selected(#"{"AdvancedEventSelectors":[{"Name":"Management events","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]}]}"#) == [3, 4, 5, 6])
        #expect(try selected(#"{"AdvancedEventSelectors":[{"Name":"Writes but not KMS","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"readOnly","Equals":["false"]},{"Field":"eventSource","NotEquals":["kms.amazonaws.com"]}]}]}"#) == [4, 6])
        #expect(try selected(#"{"AdvancedEventSelectors":[{"Name":"S3 objects under a prefix","FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"resources.ARN","StartsWith":["arn:aws:s3:::logs-bucket/"]}]}]}"#) == [0, 6])
        #expect(try selected(#"{"AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"resources.ARN","NotStartsWith":["arn:aws:s3:::logs-bucket/"]},{"Field":"eventName","NotEndsWith":["Object"]}]}]}"#) == [6])
        #expect(try selected(#"{"AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]},{"Field":"readOnly","Equals":["false"]}]}]}"#) == [1, 6])
        // The type and the ARN conditions must hold for the same resource.
        #expect(try selected(#"{"AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Bucket"]},{"Field":"resources.ARN","EndsWith":["/a.gz"]}]}]}"#) == [6])
        #expect(try selected(#"{"AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"errorCode","Equals":["UnauthorizedOperation"]}]},{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"eventName","StartsWith":["Desc"]}]}]}"#) == [3, 4, 6])
        // A record without eventCategory is categorised by managementEvent.
        #expect(try selected(#"{"AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"eventSource","Equals":["kms.amazonaws.com"]}]}]}"#) == [5, 6])
    }

    @Test func invalidSelectorsAreRejectedWithTheirPlace() {
        for (json, fragment) in [
            (#"{"EventSelectors":[{"ReadWriteType":"Sometimes"}]}"#, "is not ReadOnly, WriteOnly or All"),
            (#"{"EventSelectors":[{"ReadWriteTyp":"All"}]}"#, "unknown key"),
            (#"{"AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventName","Equals":["GetObject"]}]}]}"#, "no eventCategory field selector"),
            (#"{"AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]}]}]}"#, "without a resources.type"),
            (#"{"AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"color","Equals":["x"]}]}]}"#, "is not a field"),
            (#"{"AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Managment"]}]}]}"#, "is not an event category"),
            (#"{"AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventCategory"}]}]}"#, "has no operator"),
            (#"{"AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"readOnly","StartsWith":["t"]}]}]}"#, "readOnly takes Equals"),
            (#"{"EventSelectors":[{}],"AdvancedEventSelectors":[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]}]}]}"#, "not both"),
            (#"{"TrailARN":"x"}"#, "no EventSelectors"),
        ] {
            do {
                _ = try JSONDecoder().decode(TrailEventSelectors.self, from: Data(json.utf8))
                Issue.record("accepted \(json)")
            } catch let error as SelectorError {
                #expect(error.message.contains(fragment) || (error.expected ?? "").contains(fragment), "\(json): \(error.message)")
            } catch {
                Issue.record("\(json): \(error)")
            }
        }
    }

    @Test("real records: Stratus Red Team detonations through a write-only management trail", .enabled(if: FileManager.default.fileExists(atPath: EventSelectorTests.stratus)))
    func realRecords() throws {
        let selectors = try JSONDecoder().decode(TrailEventSelectors.self, from: Data(#"{"AdvancedEventSelectors":[{"Name":"writes","FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"readOnly","Equals":["false"]}]}]}"#.utf8))
        let reader = RecordFacts.Reader(withResources: false)
        var total = 0, kept = 0
        for name in try FileManager.default.contentsOfDirectory(atPath: Self.stratus) where name.hasSuffix(".json") {
            let records = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.stratus + "/" + name))) as? [[String: Any]] ?? []
            for record in records {
                let bytes = [UInt8](try JSONSerialization.data(withJSONObject: record))
                let facts = try #require(bytes.withUnsafeBytes { reader.facts($0) })
                total += 1
                let expected = (record["readOnly"] as? Bool) == false && (record["eventCategory"] as? String ?? "Management") == "Management"
                #expect(selectors.selects(facts) == expected, "\(record["eventName"] ?? "?")")
                if expected { kept += 1 }
            }
        }
        #expect(total > 100 && kept > 0 && kept < total, "\(kept) of \(total)")
    }

    static let stratus: String = {
        var dir = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { dir.deleteLastPathComponent() }
        return dir.appendingPathComponent("shared/data/cloudtrail/stratus_red_team_detonation_logs").path
    }()
}
