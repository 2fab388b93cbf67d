/// An EventBridge event pattern, validated and compiled: the JSON pattern language as AWS
/// documents it — exact values, `prefix`, `suffix`, `anything-but`, `numeric`, `exists`,
/// `wildcard`, `cidr`, `equals-ignore-case`, `$or`, nested fields, arrays.
///
/// A pattern is a set of alternatives (one unless `$or` is used); an alternative is a set of field
/// conditions that must all hold; a condition holds when any leaf value of its field satisfies any
/// of its matchers (arrays in events are looked through, so a field may have several leaves), or —
/// for `exists: false` — when the field has no leaf at all.
public struct EventPattern: Sendable, Equatable {
    /// A field path (keys from the event's root) and what one of its leaves must be.
    public struct Condition: Sendable, Equatable {
        public var path: [String]
        public var matchers: [ValueMatcher]

        /// True when `exists: false` is among the matchers: an absent field satisfies the condition.
        var acceptsAbsence: Bool { matchers.contains(.exists(false)) }

        /// The exact values of a condition made only of exact values (what the rule index keys on).
        var exactValues: [ExactValue]? {
            var out: [ExactValue] = []
            for m in matchers {
                guard case .exact(let v) = m else { return nil }
                out.append(v)
            }
            return out
        }
    }

    public var alternatives: [[Condition]]
    /// The pattern as it was written, compact.
    public var text: String

    /// AWS's limit on an event pattern's length (characters).
    public static let maximumLength = 4096
    /// How many alternatives `$or` may expand a pattern into.
    public static let maximumAlternatives = 1024

    /// Parses and validates pattern text (JSON).
    public init(_ text: String) throws(EventPatternError) {
        guard text.count <= EventPattern.maximumLength else {
            throw EventPatternError("the pattern is \(text.count) characters long; AWS accepts at most \(EventPattern.maximumLength)")
        }
        try self.init(tree: try PatternJSONParser.parse(text))
    }

    /// Validates and compiles a pattern tree (built from JSON text, or from YAML by a pipeline).
    public init(tree: PatternNode) throws(EventPatternError) {
        guard case .object = tree.value else {
            throw EventPatternError("the event pattern must be a JSON object, not \(tree.kindName)", at: tree.location)
        }
        alternatives = try Compiler().object(tree, fieldPath: [], errorPath: [])
        text = tree.json
        guard text.count <= EventPattern.maximumLength else {
            throw EventPatternError("the pattern is \(text.count) characters long; AWS accepts at most \(EventPattern.maximumLength)")
        }
    }

    /// Every field path the pattern reads.
    public var fieldPaths: [[String]] {
        var seen = Set<[String]>()
        var out: [[String]] = []
        for alternative in alternatives { for c in alternative where seen.insert(c.path).inserted { out.append(c.path) } }
        return out
    }
}

/// Turns a pattern tree into alternatives, validating as AWS does.
struct Compiler {
    typealias Alternatives = [[EventPattern.Condition]]

    func fail(_ message: String, _ node: PatternNode, _ path: [String]) -> EventPatternError {
        EventPatternError(message, at: node.location, path: path)
    }

    /// An object: every member must hold (cross product of the members' alternatives).
    func object(_ node: PatternNode, fieldPath: [String], errorPath: [String]) throws(EventPatternError) -> Alternatives {
        guard case .object(let members) = node.value else { throw fail("expected an object", node, errorPath) }
        guard !members.isEmpty else { throw fail("Empty objects are not allowed", node, errorPath) }
        var result: Alternatives = [[]]
        for member in members {
            let memberPath = errorPath + [member.key]
            let part: Alternatives
            if member.key == "$or" {
                part = try or(member.value, fieldPath: fieldPath, errorPath: memberPath)
            } else {
                switch member.value.value {
                case .object:
                    part = try object(member.value, fieldPath: fieldPath + [member.key], errorPath: memberPath)
                case .array(let elements):
                    guard !elements.isEmpty else { throw fail("Empty arrays are not allowed", member.value, memberPath) }
                    var matchers: [ValueMatcher] = []
                    for (k, element) in elements.enumerated() {
                        matchers.append(try matcher(element, errorPath: memberPath + ["Index \(k)"]))
                    }
                    part = [[EventPattern.Condition(path: fieldPath + [member.key], matchers: matchers)]]
                default:
                    throw fail("\"\(member.key)\" must be an object or an array", member.value, memberPath)
                }
            }
            var combined: Alternatives = []
            for a in result {
                for b in part {
                    combined.append(a + b)
                    guard combined.count <= EventPattern.maximumAlternatives else {
                        throw fail("the pattern expands to more than \(EventPattern.maximumAlternatives) alternatives through $or", node, errorPath)
                    }
                }
            }
            result = combined
        }
        return result
    }

    /// `"$or": [pattern, pattern, ...]`: any of them, each read at the current field path.
    func or(_ node: PatternNode, fieldPath: [String], errorPath: [String]) throws(EventPatternError) -> Alternatives {
        guard case .array(let elements) = node.value, elements.count >= 2 else {
            throw fail("$or must be an array of at least two patterns", node, errorPath)
        }
        var result: Alternatives = []
        for (k, element) in elements.enumerated() {
            guard case .object = element.value else {
                throw fail("each element of $or must be an object (a pattern), not \(element.kindName)", element, errorPath + ["Index \(k)"])
            }
            result += try object(element, fieldPath: fieldPath, errorPath: errorPath + ["Index \(k)"])
            guard result.count <= EventPattern.maximumAlternatives else {
                throw fail("the pattern expands to more than \(EventPattern.maximumAlternatives) alternatives through $or", node, errorPath)
            }
        }
        return result
    }

    /// One element of a field's array.
    func matcher(_ node: PatternNode, errorPath: [String]) throws(EventPatternError) -> ValueMatcher {
        switch node.value {
        case .string(let s): return .exact(.string(Array(s.utf8)))
        case .number(let d, _): return .exact(.number(d))
        case .bool(let b): return .exact(.bool(b))
        case .null: return .exact(.null)
        case .array: throw fail("Match value must be String, number, true, false, or null", node, errorPath)
        case .object(let members):
            guard !members.isEmpty else { throw fail("Empty objects are not allowed", node, errorPath) }
            guard members.count == 1 else { throw fail("Only one key allowed in match expression", members[1].value, errorPath + [members[1].key]) }
            let (key, _, value) = members[0]
            let path = errorPath + [key]
            switch key {
            case "prefix", "suffix":
                let (text, ignoringCase) = try textOrIgnoreCase(value, matchType: key, errorPath: path)
                let bytes = ignoringCase ? CaseFolding.fold(text) : Array(text.utf8)
                return key == "prefix" ? .prefix(bytes, ignoringCase: ignoringCase) : .suffix(bytes, ignoringCase: ignoringCase)
            case "equals-ignore-case":
                guard case .string(let s) = value.value else { throw fail("equals-ignore-case match pattern must be a string", value, path) }
                return .equalsIgnoreCase(CaseFolding.fold(s))
            case "wildcard":
                guard case .string(let s) = value.value else { throw fail("wildcard match pattern must be a string", value, path) }
                return .wildcard(try wildcard(s, value, path))
            case "exists":
                guard case .bool(let b) = value.value else { throw fail("exists match pattern must be either true or false", value, path) }
                return .exists(b)
            case "numeric":
                return .numeric(try numeric(value, errorPath: path))
            case "cidr":
                guard case .string(let s) = value.value else { throw fail("cidr match pattern must be a string", value, path) }
                guard let range = CIDRRange.parse(s) else {
                    throw fail("'\(s)' is not a valid CIDR (expected an IPv4 or IPv6 network such as 10.0.0.0/24 or 2001:db8::/32)", value, path)
                }
                return .cidr(range)
            case "anything-but":
                return .anythingBut(try anythingBut(value, errorPath: path))
            default:
                throw fail("Unrecognized match type \(key)", node, path)
            }
        }
    }

    /// `"prefix": "x"` or `"prefix": {"equals-ignore-case": "x"}` (also for suffix).
    func textOrIgnoreCase(_ node: PatternNode, matchType: String, errorPath: [String]) throws(EventPatternError) -> (String, Bool) {
        switch node.value {
        case .string(let s): return (s, false)
        case .object(let members) where members.count == 1 && members[0].key == "equals-ignore-case":
            guard case .string(let s) = members[0].value.value else {
                throw fail("equals-ignore-case match pattern must be a string", members[0].value, errorPath + ["equals-ignore-case"])
            }
            return (s, true)
        default:
            throw fail("\(matchType) match pattern must be a string or {\"equals-ignore-case\": string}", node, errorPath)
        }
    }

    func wildcard(_ text: String, _ node: PatternNode, _ path: [String]) throws(EventPatternError) -> Wildcard {
        switch Wildcard.parse(text) {
        case .success(let w): return w
        case .failure(let error): throw fail(error.message, node, path)
        }
    }

    /// `[">", 0, "<=", 5]`, `["=", 3.018e2]`, `["<", 10]`.
    func numeric(_ node: PatternNode, errorPath: [String]) throws(EventPatternError) -> NumericRange {
        guard case .array(let items) = node.value else { throw fail("Value of numeric must be an array.", node, errorPath) }
        guard !items.isEmpty else { throw fail("Empty arrays are not allowed", node, errorPath) }
        guard items.count == 2 || items.count == 4 else {
            throw fail("numeric match expects one comparison (\"<\", 10) or a range (\">\", 0, \"<=\", 5), not \(items.count) elements", node, errorPath)
        }
        var range = NumericRange()
        var sawEquals = false
        for pair in stride(from: 0, to: items.count, by: 2) {
            let opNode = items[pair], valueNode = items[pair + 1]
            let opPath = errorPath + ["Index \(pair)"], valuePath = errorPath + ["Index \(pair + 1)"]
            guard case .string(let op) = opNode.value else { throw fail("Invalid member in numeric match: expected an operator (<, <=, =, >=, >)", opNode, opPath) }
            guard case .number(let v, _) = valueNode.value else { throw fail("Value of \(op) must be numeric", valueNode, valuePath) }
            guard abs(v) <= NumericRange.limit else {
                throw fail("Value of \(op) must be between -5.0E9 and 5.0E9 inclusive", valueNode, valuePath)
            }
            switch op {
            case "=":
                guard items.count == 2 else { throw fail("\"=\" cannot be combined with another comparison", opNode, opPath) }
                sawEquals = true
                range = NumericRange(lower: v, lowerInclusive: true, upper: v, upperInclusive: true)
            case ">", ">=":
                guard range.lower == nil else { throw fail("the range has two lower bounds", opNode, opPath) }
                range.lower = v
                range.lowerInclusive = op == ">="
            case "<", "<=":
                guard range.upper == nil else { throw fail("the range has two upper bounds", opNode, opPath) }
                range.upper = v
                range.upperInclusive = op == "<="
            default:
                throw fail("Unrecognized numeric range operator: \(op)", opNode, opPath)
            }
        }
        if !sawEquals, let lower = range.lower, let upper = range.upper, lower >= upper {
            throw fail("Bottom must be less than top", node, errorPath)
        }
        return range
    }

    /// `anything-but`: a string, a number, a list of strings or of numbers, or an object with one
    /// of `prefix`, `suffix`, `equals-ignore-case`, `wildcard` (each a string or a list of strings).
    func anythingBut(_ node: PatternNode, errorPath: [String]) throws(EventPatternError) -> AnythingBut {
        switch node.value {
        case .string(let s): return .strings([Array(s.utf8)])
        case .number(let d, _): return .numbers([d])
        case .array(let items):
            guard !items.isEmpty else { throw fail("Empty arrays are not allowed", node, errorPath) }
            var strings = Set<[UInt8]>(), numbers: [Double] = []
            for (k, item) in items.enumerated() {
                switch item.value {
                case .string(let s): strings.insert(Array(s.utf8))
                case .number(let d, _): numbers.append(d)
                default:
                    throw fail("Inside anything-but list, start|null|boolean is not supported.", item, errorPath + ["Index \(k)"])
                }
                if !strings.isEmpty && !numbers.isEmpty {
                    throw fail("Inside anything but list, all the values must be of the same type (strings or numbers)", item, errorPath + ["Index \(k)"])
                }
            }
            return numbers.isEmpty ? .strings(strings) : .numbers(numbers)
        case .object(let members):
            guard members.count == 1 else {
                throw fail(members.isEmpty ? "Empty objects are not allowed" : "Only one key allowed in match expression", node, errorPath)
            }
            let (key, _, value) = members[0]
            let path = errorPath + [key]
            var texts: [String] = []
            switch value.value {
            case .string(let s): texts = [s]
            case .array(let items) where !items.isEmpty:
                for (k, item) in items.enumerated() {
                    guard case .string(let s) = item.value else {
                        throw fail("anything-but/\(key) values must be strings", item, path + ["Index \(k)"])
                    }
                    texts.append(s)
                }
            default:
                throw fail("anything-but/\(key) must be a string or a non-empty list of strings", value, path)
            }
            switch key {
            case "prefix":
                guard !texts.contains("") else { throw fail("anything-but/prefix must not be empty", value, path) }
                return .prefixes(texts.map { Array($0.utf8) })
            case "suffix":
                guard !texts.contains("") else { throw fail("anything-but/suffix must not be empty", value, path) }
                return .suffixes(texts.map { Array($0.utf8) })
            case "equals-ignore-case": return .ignoringCase(Set(texts.map(CaseFolding.fold)))
            case "wildcard":
                var wildcards: [Wildcard] = []
                for t in texts { wildcards.append(try wildcard(t, value, path)) }
                return .wildcards(wildcards)
            default:
                throw fail("Unsupported anything-but pattern: \(key)", node, path)
            }
        default:
            throw fail("Value of anything-but must be an array or single string/number value.", node, errorPath)
        }
    }
}
