/// Expands `${NAME}` and `${NAME:-default}` in configuration scalars; `$$` is a literal `$`.
///
/// An unset variable without a default is an error: a pipeline silently running with an empty
/// URL or path is worse than one that refuses to start.
public struct EnvironmentInterpolation: Sendable {
    public var environment: [String: String]

    public init(environment: [String: String]) { self.environment = environment }

    public enum Failure: Error, Equatable, Sendable {
        case unset(name: String)
        case malformed(offset: Int, reason: String)
    }

    private static func isNameCharacter(_ c: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(c) || ("A"..."Z").contains(c) || ("0"..."9").contains(c) || c == "_"
    }

    /// Returns the expanded text, or nil when `text` contains no `$` at all (the common case).
    public func expand(_ text: String) throws(Failure) -> String? {
        guard text.utf8.contains(UInt8(ascii: "$")) else { return nil }
        let chars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < chars.count {
            let c = chars[i]
            guard c == "$" else { out.append(c); i += 1; continue }
            if i + 1 < chars.count && chars[i + 1] == "$" { out.append("$"); i += 2; continue }
            guard i + 1 < chars.count && chars[i + 1] == "{" else { out.append(c); i += 1; continue }
            var j = i + 2
            var name = ""
            while j < chars.count, Self.isNameCharacter(chars[j]) {
                name.unicodeScalars.append(chars[j])
                j += 1
            }
            guard !name.isEmpty, let first = name.unicodeScalars.first, !("0"..."9").contains(first) else {
                throw .malformed(offset: i, reason: "a variable name after '${'")
            }
            var fallback: String?
            if j + 1 < chars.count && chars[j] == ":" && chars[j + 1] == "-" {
                j += 2
                var value = String.UnicodeScalarView()
                while j < chars.count && chars[j] != "}" { value.append(chars[j]); j += 1 }
                fallback = String(value)
            }
            guard j < chars.count && chars[j] == "}" else {
                throw .malformed(offset: i, reason: "'}' to close '${\(name)'")
            }
            if let value = environment[name] {
                out.append(contentsOf: value.unicodeScalars)
            } else if let fallback {
                out.append(contentsOf: fallback.unicodeScalars)
            } else {
                throw .unset(name: name)
            }
            i = j + 1
        }
        return String(out)
    }
}
