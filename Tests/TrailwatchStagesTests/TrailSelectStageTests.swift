import Foundation
import Testing
import TrailwatchCore
import TrailwatchRuntime
import TrailwatchStages
import TrailwatchTestSupport

@Suite("Trail event selectors on the cloudtrail source and the trail_select transform")
struct TrailSelectStageTests {
    @Test("a trail's advanced selectors, pasted as get-event-selectors prints them, select the samples' records")
    func cloudtrailSourceSelects() async throws {
        let dir = TemporaryDirectory()
        let samples = TestPaths.repositoryRoot.appendingPathComponent("samples/cloudtrail").path
        let selectors = dir.write("selectors.json", """
            {
                "TrailARN": "arn:aws:cloudtrail:us-east-1:111122223333:trail/management-writes",
                "AdvancedEventSelectors": [
                    {
                        "Name": "Management writes except KMS",
                        "FieldSelectors": [
                            { "Field": "eventCategory", "Equals": ["Management"] },
                            { "Field": "readOnly", "Equals": ["false"] },
                            { "Field": "eventSource", "NotEquals": ["kms.amazonaws.com"] }
                        ]
                    }
                ]
            }
            """)
        _ = try await runOnce("""
            sources:
              all: { type: cloudtrail, include: "\(samples)/**/*.json.gz" }
              writes: { type: cloudtrail, include: "\(samples)/**/*.json.gz", event_selectors_file: \(selectors) }
              reads:
                type: cloudtrail
                include: "\(samples)/**/*.json.gz"
                event_selectors:
                  EventSelectors:
                    - { ReadWriteType: ReadOnly, IncludeManagementEvents: true, ExcludeManagementEventSources: [kms.amazonaws.com] }
            transforms:
              again: { type: trail_select, inputs: [all], event_selectors_file: \(selectors) }
            sinks:
              a: { type: file, inputs: [all], path: \(dir.file("all.log")), format: raw }
              w: { type: file, inputs: [writes], path: \(dir.file("writes.log")), format: raw }
              r: { type: file, inputs: [reads], path: \(dir.file("reads.log")), format: raw }
              t: { type: file, inputs: [again], path: \(dir.file("again.log")), format: raw }
              u: { type: file, inputs: [again._unselected], path: \(dir.file("unselected.log")), format: raw }
            """)
        let all = lines(dir.read("all.log"))
        func record(_ line: String) -> [String: Any] { (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:] }
        let expectedWrites = all.filter { r in
            let o = record(r)
            return o["readOnly"] as? Bool == false && o["eventSource"] as? String != "kms.amazonaws.com" && (o["eventCategory"] as? String ?? "Management") == "Management"
        }
        let expectedReads = all.filter { r in
            let o = record(r)
            return o["readOnly"] as? Bool == true && o["eventSource"] as? String != "kms.amazonaws.com"
        }
        #expect(all.count > 500)
        #expect(!expectedWrites.isEmpty && expectedWrites.count < all.count)
        #expect(Set(lines(dir.read("writes.log"))) == Set(expectedWrites))
        #expect(Set(lines(dir.read("reads.log"))) == Set(expectedReads))
        #expect(Set(lines(dir.read("again.log"))) == Set(expectedWrites))
        #expect(lines(dir.read("unselected.log")).count == all.count - expectedWrites.count)
    }

    @Test("selector errors are located in the pipeline")
    func locatedErrors() {
        let found = diagnostics("""
            sources:
              trail:
                type: cloudtrail
                include: x
                event_selectors:
                  AdvancedEventSelectors:
                    - Name: no category
                      FieldSelectors:
                        - { Field: eventName, Equals: [GetObject] }
            sinks:
              out: { type: console, inputs: [trail] }
            """)
        #expect(found.contains { $0.hasPrefix("p.yaml:9:13:") && $0.contains("setting 'event_selectors.AdvancedEventSelectors[0].FieldSelectors': has no eventCategory field selector") }, "\(found)")
        let typo = diagnostics("""
            sources:
              trail: { type: cloudtrail, include: x, event_selectors: { EventSelectors: [{ ReadWriteType: Al }] } }
            sinks:
              out: { type: console, inputs: [trail] }
            """)
        #expect(typo.contains { $0.contains("'Al' is not ReadOnly, WriteOnly or All") }, "\(typo)")
    }
}
