import Foundation
import Testing
import TrailwatchTestSupport

@Suite("trailwatch test (command line)")
struct TestCommandTests {
    func run(_ arguments: [String], in directory: String) async throws -> (status: Int32, output: String, errors: String) {
        let result = try await Child.trailwatch(arguments, in: directory)
        return (result.status, result.output, result.errors)
    }

    @Test("exit 0 when every test passes, 1 on a failure (with JUnit XML), 2 on broken tests")
    func exitStatuses() async throws {
        let dir = TemporaryDirectory()
        _ = dir.write("p.yaml", """
            sources: { app: { type: stdin } }
            transforms: { errors: { type: filter, inputs: [app], contains: ERROR } }
            sinks: { out: { type: console, inputs: [errors] } }
            tests:
              - name: errors pass
                inputs: [{ insert_at: app, lines: ["ERROR a", "INFO b"] }]
                outputs: [{ from: out, messages: ["ERROR a"] }]
            """)
        let passing = try await run(["test", "p.yaml"], in: dir.path)
        #expect(passing.status == 0)
        #expect(passing.output == "PASS  errors pass  (p.yaml:5)\n1 passed, 0 failed\n")

        _ = dir.write("p.tests.yaml", """
            tests:
              - name: info is not an error
                inputs: [{ insert_at: app, lines: ["INFO b"] }]
                outputs: [{ from: errors, count: 1 }]
            """)
        let failing = try await run(["test", "p.yaml", "--junit", "junit.xml"], in: dir.path)
        #expect(failing.status == 1)
        #expect(failing.output.contains("FAIL  info is not an error  (p.tests.yaml:2)"))
        #expect(failing.output.contains("p.tests.yaml:4: from 'errors': expected exactly 1 event"))
        #expect(failing.output.hasSuffix("1 passed, 1 failed\n"))
        #expect(dir.read("junit.xml").contains(#"<testsuites name="trailwatch test" tests="2" failures="1""#))

        let json = try await run(["test", "p.yaml", "--format", "json", "--filter", "info"], in: dir.path)
        let object = try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any]
        #expect(object?["failed"] as? Int == 1 && object?["passed"] as? Int == 0)

        _ = dir.write("p.tests.yaml", "tests:\n  - name: x\n    inputs: [{ insert_at: nowhere, lines: [a] }]\n    outputs: [{ from: out }]\n")
        let broken = try await run(["test", "p.yaml"], in: dir.path)
        #expect(broken.status == 2)
        #expect(broken.errors.contains("p.tests.yaml:3:27: setting 'insert_at': 'nowhere' is not a component of this pipeline"))
    }
}
