import Foundation
import Glibc
import Testing
import TrailwatchTestSupport

extension NetworkEdgeProcessTests {
/// IAM-style policies on access keys, enforced by a running trailwatch against real clients.
@Suite("Access policies with real clients (boto3, AWS CLI)", .serialized)
struct AccessPolicyTests {
    static let keys = [("AKIDADMIN0001", "admin/secret+1"), ("AKIDWRITER001", "writer/secret+2"), ("AKIDREADER001", "reader/secret+3")]

    /// Keys, policies (one inline, one in a JSON file beside them, as IAM exports it) and the pipeline.
    func setUp(_ dir: TemporaryDirectory) -> String {
        let keysFile = dir.write("keys", Self.keys.map { "\($0.0) \($0.1)" }.joined(separator: "\n") + "\n")
        let readerPolicy = dir.write("reader.json", """
            {"Version": "2012-10-17",
             "Statement": [
               {"Sid": "ReadApp", "Effect": "Allow",
                "Action": ["logs:Describe*", "logs:Get*", "logs:FilterLogEvents", "logs:StartQuery"],
                "Resource": "arn:aws:logs:*:*:log-group:/app/*"},
               {"Sid": "NotTheSecrets", "Effect": "Deny", "Action": "logs:*", "Resource": "arn:aws:logs:*:*:log-group:/app/secret:*"}]}
            """)
        let policies = dir.write("policies.yaml", """
            policies:
              admin:
                Statement:
                  - { Effect: Allow, Action: "*", Resource: "*" }
              shipper:
                Version: "2012-10-17"
                Statement:
                  - Effect: Allow
                    Action: [logs:PutLogEvents, logs:CreateLogStream, logs:DescribeLogStreams]
                    Resource: "arn:aws:logs:*:*:log-group:/app/*"
              app-reader: reader.json
            attach:
              AKIDADMIN0001: [admin]
              AKIDWRITER001: [shipper]
              AKIDREADER001: [app-reader]
            """)
        for file in [keysFile, readerPolicy, policies] { chmod(file, 0o600) }
        return dir.write("aggregator.yaml", """
            data_dir: \(dir.file("state"))
            http:
              listen: "127.0.0.1:0"
              store: \(dir.file("store.db"))
              access_keys_file: \(keysFile)
              access_policies_file: \(policies)
            sources:
              api: { type: cloudwatch_logs_api, store: \(dir.file("store.db")) }
            sinks:
              store: { type: sqlite, inputs: [api], path: \(dir.file("store.db")) }
            """)
    }

    func code(_ value: Any?) -> String? { (value as? [Any])?.first as? String }

    @Test("a writer that cannot read, a reader limited to /app/ with an explicit deny: AccessDeniedException in AWS's shape")
    func keysOfDifferentRights() async throws {
        guard haveAWSClients else { print("skipped: boto3/awscli not installed (pip install boto3 awscli)"); return }
        let dir = TemporaryDirectory()
        let (process, port) = try await startServing(["run", setUp(dir), "--quiet"])
        defer { kill(process.processIdentifier, SIGTERM); process.waitUntilExit() }
        try #require(port > 0)
        let script = TestPaths.repositoryRoot.appendingPathComponent("Tests/clients/access_policies_client.py").path
        let (status, output, errors) = try await runProgram(["python3", script, "http://127.0.0.1:\(port)"] + Self.keys.flatMap { [$0.0, $0.1] })
        #expect(status == 0, "\(errors)")
        let r = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], "\(output)\n\(errors)")

        #expect(r["writer_put"] as? String == "ok")
        let denied = try #require(r["writer_filter"] as? [Any])
        #expect(denied.first as? String == "AccessDeniedException")
        #expect(denied.dropFirst().first as? Int == 400)
        #expect(denied.last as? String == "User: arn:aws:iam::000000000000:user/AKIDWRITER001 is not authorized to perform: logs:FilterLogEvents on resource: arn:aws:logs:us-east-1:000000000000:log-group:/app/web because no identity-based policy allows the logs:FilterLogEvents action")
        for key in ["writer_put_ops", "writer_get", "writer_create_group", "writer_query_results"] {
            #expect(code(r[key]) == "AccessDeniedException", "\(key): \(String(describing: r[key]))")
        }
        #expect(r["writer_create_stream"] as? String == "ok")

        #expect(r["reader_filtered"] as? Int == 5)
        #expect(r["reader_get"] as? String == "ok")
        #expect(r["reader_by_arn"] as? String == "ok")
        #expect(r["reader_describe_app"] as? String == "ok")
        #expect(r["reader_query"] as? String == "Complete")
        for key in ["reader_filter_ops", "reader_put", "reader_describe_all", "reader_query_mixed"] {
            #expect(code(r[key]) == "AccessDeniedException", "\(key): \(String(describing: r[key]))")
        }
        let secret = try #require(r["reader_filter_secret"] as? [Any])
        #expect(secret.first as? String == "AccessDeniedException")
        #expect((secret.last as? String)?.hasSuffix("with an explicit deny in an identity-based policy") == true, "\(secret)")
        #expect(r["duplicate_keys"] as? String == "AccessDeniedException")

        // The dashboard's routes: Basic (key id and secret) or SigV4-signed GETs, the same policies.
        #expect(r["api_query_app_basic"] as? Int == 200)
        #expect(r["api_query_app_sigv4"] as? Int == 200)
        let all = try #require(r["api_query_all"] as? [Any])
        #expect(all.first as? Int == 403)
        #expect((all.last as? String)?.contains("AccessDeniedException") == true)
        #expect(r["api_query_admin"] as? Int == 200)
        #expect(r["api_query_wrong_secret"] as? Int == 401)
        #expect(r["metrics_reader"] as? Int == 403)
        #expect(r["metrics_admin"] as? Int == 200)
        // Nothing is attached to anonymous: refused; health probes need no policy.
        #expect(r["metrics_anonymous"] as? Int == 403)
        #expect(r["health_anonymous"] as? Int == 200)

        // The AWS CLI sees the same refusal.
        let (cliStatus, _, cliErrors) = try await runProgram(["aws", "logs", "filter-log-events", "--log-group-name", "/app/web",
                                                        "--endpoint-url", "http://127.0.0.1:\(port)"],
                                                       environment: ["AWS_ACCESS_KEY_ID": Self.keys[1].0, "AWS_SECRET_ACCESS_KEY": Self.keys[1].1,
                                                                     "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": "/dev/null",
                                                                     "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"])
        #expect(cliStatus != 0)
        #expect(cliErrors.contains("AccessDeniedException"), "\(cliErrors)")
    }

    @Test("policy files: open permissions, unknown keys and invalid documents are located startup errors")
    func configurationErrors() async throws {
        let dir = TemporaryDirectory()
        let pipeline = setUp(dir)
        func startupError() async throws -> String {
            let (status, _, errors) = try await runProgram([trailwatchBinary(), "run", pipeline, "--quiet"], timeout: 60)
            #expect(status != 0)
            return errors
        }
        chmod(dir.file("policies.yaml"), 0o644)
        #expect(try await startupError().contains("access_policies_file \(dir.file("policies.yaml")) is open to others (mode 644); chmod 600 it"))
        chmod(dir.file("policies.yaml"), 0o600)
        chmod(dir.file("reader.json"), 0o664)
        #expect(try await startupError().contains("reader.json is open to others"))
        chmod(dir.file("reader.json"), 0o600)
        chmod(dir.write("policies.yaml", "policies:\n  a: { Statement: [{ Effect: Allow, Action: '*', Resource: '*' }] }\nattach:\n  AKIDNOSUCHKEY: [a]\n"), 0o600)
        #expect(try await startupError().contains("attaches policies to AKIDNOSUCHKEY, which is not a configured access key"))
        chmod(dir.write("policies.yaml", "policies:\n  a:\n    Statement:\n      - { Effect: Permit, Action: '*', Resource: '*' }\nattach:\n  AKIDADMIN0001: [a]\n"), 0o600)
        let invalid = try await startupError()
        #expect(invalid.contains("policies.yaml:3: policy a: Statement[0].Effect: 'Permit' is neither \"Allow\" nor \"Deny\""), "\(invalid)")
        chmod(dir.write("policies.yaml", "policies: {}\nattach:\n  AKIDADMIN0001: [missing]\n"), 0o600)
        #expect(try await startupError().contains("policies.yaml:3: AKIDADMIN0001: no policy named 'missing'"))
    }
}
}
