import AccessPolicies
import Yams

/// `access_policies_file:` of `http:` — which IAM-style policies each access key holds:
///
/// ```yaml
/// policies:
///   shipper:                       # a policy document inline, in IAM's shape
///     Version: "2012-10-17"
///     Statement:
///       - Effect: Allow
///         Action: [logs:PutLogEvents, logs:CreateLogStream, logs:DescribeLogStreams]
///         Resource: "arn:aws:logs:*:*:log-group:*"
///   app-reader: app-reader.json    # or an IAM JSON policy file beside this one
/// attach:
///   AKIASHIPPER01: [shipper]
///   AKIAREADER001: [app-reader]
///   anonymous: []                  # unsigned requests from loopback (anonymous_on_loopback)
///   token: [app-reader]            # requests presenting the auth_token
/// ```
///
/// Reading the files is the caller's (``parse(_:file:readPolicy:)`` takes a reader), so this
/// stays testable without a disk.
public enum AccessPolicyFile {
    public struct LoadError: Error, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    public static func parse(_ text: String, file: String, readPolicy: (String) throws -> String) throws(LoadError) -> AccessPolicySet {
        func fail(_ node: Node?, _ message: String) -> LoadError {
            if let mark = node?.mark { return LoadError(message: "\(file):\(mark.line): \(message)") }
            return LoadError(message: "\(file): \(message)")
        }
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: text) else { throw fail(nil, "empty: expected policies: and attach:") }
            root = node
        } catch let error as LoadError {
            throw error
        } catch {
            throw fail(nil, "not valid YAML or JSON: \(error)")
        }
        guard let top = root.mapping else { throw fail(root, "expected a mapping with policies: and attach:") }
        for (key, _) in top where key.string != "policies" && key.string != "attach" {
            throw fail(key, "unknown key '\(key.string ?? "?")' (expected policies: and attach:)")
        }
        var documents: [String: PolicyDocument] = [:]
        if let policies = top["policies"] {
            guard let mapping = policies.mapping else { throw fail(policies, "policies: maps names to policy documents or policy files") }
            for (key, value) in mapping {
                guard let name = key.string, !name.isEmpty else { throw fail(key, "a policy needs a name") }
                do {
                    if let path = value.string {
                        let json: String
                        do { json = try readPolicy(path) } catch { throw fail(value, "policy \(name): cannot read \(path): \(error)") }
                        documents[name] = try PolicyDocument(json: Array(json.utf8), source: path)
                    } else {
                        documents[name] = try PolicyDocument(object: plain(value), source: "policy \(name)")
                    }
                } catch let error as PolicyDocument.ParseError {
                    throw fail(value, error.description)
                } catch let error as LoadError {
                    throw error
                } catch {
                    throw fail(value, "\(error)")
                }
            }
        }
        var attachments: [String: [PolicyDocument]] = [:]
        guard let attach = top["attach"] else { throw fail(root, "attach: is missing: map access key ids (and anonymous, token) to policy names") }
        guard let mapping = attach.mapping else { throw fail(attach, "attach: maps access key ids (and anonymous, token) to lists of policy names") }
        for (key, value) in mapping {
            guard let subject = key.string, !subject.isEmpty else { throw fail(key, "expected an access key id") }
            let names: [Node]
            if let sequence = value.sequence { names = Array(sequence) } else if value.string != nil { names = [value] } else {
                throw fail(value, "\(subject): expected a list of policy names")
            }
            var list: [PolicyDocument] = []
            for node in names {
                guard let name = node.string else { throw fail(node, "\(subject): expected a policy name") }
                guard let document = documents[name] else {
                    throw fail(node, "\(subject): no policy named '\(name)' (policies: \(documents.keys.sorted().joined(separator: ", ")))")
                }
                list.append(document)
            }
            attachments[subject, default: []] += list
        }
        return AccessPolicySet(attachments: attachments)
    }

    /// A YAML node as the plain tree policy documents are read from (scalars stay text, as in JSON
    /// policies where numbers in conditions are strings).
    static func plain(_ node: Node) -> Any {
        switch node {
        case .scalar(let scalar): return scalar.string
        case .sequence(let sequence): return sequence.map(plain)
        case .mapping(let mapping):
            var out: [String: Any] = [:]
            for (key, value) in mapping { out[key.string ?? ""] = plain(value) }
            return out
        case .alias: return ""
        }
    }
}
