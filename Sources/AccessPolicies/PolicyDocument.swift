import Foundation

/// An identity-based IAM policy document, in AWS's JSON shape, so a policy written for AWS pastes
/// in unchanged:
///
/// ```json
/// {"Version": "2012-10-17",
///  "Statement": [{"Sid": "ReadApp", "Effect": "Allow",
///                 "Action": ["logs:FilterLogEvents", "logs:GetLogEvents"],
///                 "Resource": "arn:aws:logs:*:*:log-group:/app/*"}]}
/// ```
///
/// `Action`/`NotAction`, `Resource`/`NotResource` take a string or a list, with `*` and `?`
/// wildcards; `Condition` takes IAM's operators (see ``ConditionOperator``). `Principal` belongs
/// to resource policies and is refused here, as IAM refuses it in an identity policy.
public struct PolicyDocument: Sendable {
    public var version: String?
    public var id: String?
    public var statements: [PolicyStatement]
    /// Where the document came from (a file name, a policy name), for messages.
    public var source: String

    public init(statements: [PolicyStatement], version: String? = "2012-10-17", source: String = "policy") {
        self.statements = statements
        self.version = version
        self.source = source
    }

    /// A located error: which document, which statement, which element, and what is wrong.
    public struct ParseError: Error, Sendable, CustomStringConvertible, Equatable {
        public var source: String
        /// `Statement[2].Action` and the like; empty for the document itself.
        public var path: String
        public var message: String
        public var description: String { path.isEmpty ? "\(source): \(message)" : "\(source): \(path): \(message)" }
    }

    /// Parses the JSON text of a policy document.
    public init(json: [UInt8], source: String) throws(ParseError) {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(json), options: [])
        } catch {
            let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "not valid JSON"
            throw ParseError(source: source, path: "", message: "not valid JSON (\(detail))")
        }
        try self.init(object: parsed, source: source)
    }

    /// Builds a document from a decoded JSON (or YAML) tree: dictionaries, arrays, strings,
    /// numbers and booleans.
    public init(object: Any, source: String) throws(ParseError) {
        self.source = source
        func fail(_ path: String, _ message: String) -> ParseError { ParseError(source: source, path: path, message: message) }
        guard let document = object as? [String: Any] else { throw fail("", "a policy document is a JSON object with Version and Statement") }
        for key in document.keys where !["Version", "Id", "Statement"].contains(key) {
            throw fail(key, "unknown element (a policy document has Version, Id and Statement)")
        }
        if let raw = document["Version"] {
            guard let text = raw as? String, text == "2012-10-17" || text == "2008-10-17" else {
                throw fail("Version", "must be \"2012-10-17\" (or the older \"2008-10-17\")")
            }
            version = text
        } else {
            version = nil
        }
        if let raw = document["Id"] {
            guard let text = raw as? String else { throw fail("Id", "must be a string") }
            id = text
        } else {
            id = nil
        }
        guard let raw = document["Statement"] else { throw fail("", "missing Statement") }
        let list: [Any]
        if let one = raw as? [String: Any] { list = [one] } else if let many = raw as? [Any] { list = many } else {
            throw fail("Statement", "must be a statement object or a list of them")
        }
        guard !list.isEmpty else { throw fail("Statement", "must hold at least one statement") }
        var statements: [PolicyStatement] = []
        for (index, element) in list.enumerated() {
            let path = list.count == 1 && raw is [String: Any] ? "Statement" : "Statement[\(index)]"
            statements.append(try PolicyStatement(object: element, path: path, source: source))
        }
        self.statements = statements
    }
}

/// One statement: an effect for some actions on some resources, under conditions.
public struct PolicyStatement: Sendable {
    public enum Effect: String, Sendable { case allow = "Allow", deny = "Deny" }

    public var sid: String?
    public var effect: Effect
    /// The patterns of `Action`, or of `NotAction` when ``actionsNegated``.
    public var actions: [Wildcard]
    public var actionsNegated: Bool
    /// The patterns of `Resource`, or of `NotResource` when ``resourcesNegated``.
    public var resources: [Wildcard]
    public var resourcesNegated: Bool
    public var conditions: [PolicyCondition]

    public init(sid: String? = nil, effect: Effect, actions: [String], actionsNegated: Bool = false,
                resources: [String], resourcesNegated: Bool = false, conditions: [PolicyCondition] = []) {
        self.sid = sid
        self.effect = effect
        self.actions = actions.map { Wildcard($0, ignoreCase: true) }
        self.actionsNegated = actionsNegated
        self.resources = resources.map { Wildcard($0) }
        self.resourcesNegated = resourcesNegated
        self.conditions = conditions
    }

    static let elements: Set<String> = ["Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition", "Principal", "NotPrincipal"]

    init(object: Any, path: String, source: String) throws(PolicyDocument.ParseError) {
        func fail(_ element: String?, _ message: String) -> PolicyDocument.ParseError {
            PolicyDocument.ParseError(source: source, path: element.map { "\(path).\($0)" } ?? path, message: message)
        }
        guard let statement = object as? [String: Any] else { throw fail(nil, "a statement is a JSON object") }
        for key in statement.keys where !Self.elements.contains(key) {
            throw fail(key, "unknown element (a statement has Sid, Effect, Action or NotAction, Resource or NotResource, Condition)")
        }
        if statement["Principal"] != nil || statement["NotPrincipal"] != nil {
            throw fail(statement["Principal"] != nil ? "Principal" : "NotPrincipal",
                       "an identity policy names no principal: attach the policy to the access keys it is for")
        }
        if let raw = statement["Sid"] {
            guard let text = raw as? String else { throw fail("Sid", "must be a string") }
            sid = text
        } else {
            sid = nil
        }
        guard let effectText = statement["Effect"] as? String else { throw fail("Effect", "missing: \"Allow\" or \"Deny\"") }
        guard let effect = Effect(rawValue: effectText) else { throw fail("Effect", "'\(effectText)' is neither \"Allow\" nor \"Deny\"") }
        self.effect = effect

        func strings(_ key: String) throws(PolicyDocument.ParseError) -> [String]? {
            guard let raw = statement[key] else { return nil }
            let values: [String]
            if let one = raw as? String { values = [one] } else if let many = raw as? [Any], many.allSatisfy({ $0 is String }) {
                values = many.map { $0 as! String }
            } else {
                throw fail(key, "must be a string or a list of strings")
            }
            guard !values.isEmpty else { throw fail(key, "must not be empty") }
            if let empty = values.firstIndex(where: \.isEmpty) { throw fail("\(key)[\(empty)]", "must not be empty") }
            return values
        }
        switch (try strings("Action"), try strings("NotAction")) {
        case (let list?, nil): actions = list.map { Wildcard($0, ignoreCase: true) }; actionsNegated = false
        case (nil, let list?): actions = list.map { Wildcard($0, ignoreCase: true) }; actionsNegated = true
        case (nil, nil): throw fail(nil, "needs Action or NotAction")
        case (_?, _?): throw fail("NotAction", "a statement has Action or NotAction, not both")
        }
        for (index, action) in actions.enumerated() where action.pattern != "*" {
            let parts = action.pattern.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty, !parts[0].contains("*") || parts[0] == "*" else {
                throw fail("\(actionsNegated ? "NotAction" : "Action")[\(index)]", "'\(action.pattern)' is not SERVICE:ACTION (like logs:PutLogEvents or logs:Describe*)")
            }
        }
        switch (try strings("Resource"), try strings("NotResource")) {
        case (let list?, nil): resources = list.map { Wildcard($0) }; resourcesNegated = false
        case (nil, let list?): resources = list.map { Wildcard($0) }; resourcesNegated = true
        case (nil, nil): throw fail(nil, "needs Resource or NotResource (\"*\" for every resource)")
        case (_?, _?): throw fail("NotResource", "a statement has Resource or NotResource, not both")
        }
        for (index, resource) in resources.enumerated() where resource.pattern != "*" && !resource.pattern.hasPrefix("arn:") {
            throw fail("\(resourcesNegated ? "NotResource" : "Resource")[\(index)]", "'\(resource.pattern)' is neither \"*\" nor an ARN (arn:aws:logs:REGION:ACCOUNT:log-group:NAME)")
        }
        if let raw = statement["Condition"] {
            guard let block = raw as? [String: Any] else { throw fail("Condition", "must be an object of operators") }
            var conditions: [PolicyCondition] = []
            for (name, body) in block.sorted(by: { $0.key < $1.key }) {
                conditions.append(try PolicyCondition(operatorName: name, body: body, path: "\(path).Condition.\(name)", source: source))
            }
            self.conditions = conditions
        } else {
            conditions = []
        }
    }
}
