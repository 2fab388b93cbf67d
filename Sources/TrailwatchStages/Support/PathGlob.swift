#if canImport(Glibc)
import Glibc
#endif

/// Shell-style path globbing (`*`, `?`, `[...]`, `**` for any depth) without a shell.
enum PathGlob {
    /// Regular files matching any of `include` and none of `exclude`, sorted, without duplicates.
    static func expand(include: [String], exclude: [String]) -> [String] {
        var seen = Set<String>()
        var out: [String] = []
        for pattern in include {
            for path in matches(pattern) where !seen.contains(path) {
                if exclude.contains(where: { matchesPattern($0, path) }) { continue }
                var st = stat()
                guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { continue }
                seen.insert(path)
                out.append(path)
            }
        }
        return out.sorted()
    }

    /// Paths matching one pattern. `**` segments recurse into subdirectories.
    static func matches(_ pattern: String) -> [String] {
        if pattern.contains("**") {
            let parts = pattern.components(separatedBy: "**")
            let root = parts[0].isEmpty ? "." : String(parts[0].dropLast(parts[0].hasSuffix("/") ? 1 : 0))
            var results: [String] = []
            walk(root.isEmpty ? "/" : root) { path in
                if matchesPattern(pattern, path) { results.append(path) }
            }
            return results
        }
        var g = glob_t()
        defer { globfree(&g) }
        guard glob(pattern, 0, nil, &g) == 0 else { return [] }
        var results: [String] = []
        for i in 0..<Int(g.gl_pathc) {
            if let p = g.gl_pathv[i] { results.append(String(cString: p)) }
        }
        return results
    }

    /// fnmatch with `**` allowed to cross directories.
    static func matchesPattern(_ pattern: String, _ path: String) -> Bool {
        if pattern.contains("**") {
            // Let `**/` match zero or more directories, then a plain fnmatch without FNM_PATHNAME.
            let relaxed = pattern.replacingOccurrences(of: "**/", with: "*")
            return fnmatch(relaxed, path, 0) == 0 || fnmatch(pattern.replacingOccurrences(of: "**", with: "*"), path, 0) == 0
        }
        return fnmatch(pattern, path, FNM_PATHNAME) == 0
    }

    /// The directory part of `path` (`.` when it has none).
    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// The last component of `path`.
    static func baseName(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return path }
        return String(path[path.index(after: slash)...])
    }

    /// The deepest directory of `pattern` without glob characters: where new matches appear.
    static func staticPrefixDirectory(of pattern: String) -> String {
        var directory = directory(of: pattern)
        while directory.contains(where: { $0 == "*" || $0 == "?" || $0 == "[" }) {
            directory = self.directory(of: directory)
        }
        return directory
    }

    /// Names in `directory` (without `.` and `..`).
    static func entries(of directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    private static func walk(_ directory: String, _ visit: (String) -> Void) {
        guard let dir = opendir(directory) else { return }
        defer { closedir(dir) }
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name == "." || name == ".." { continue }
            let path = directory == "/" ? "/" + name : directory + "/" + name
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            if (st.st_mode & S_IFMT) == S_IFDIR { walk(path, visit) } else { visit(path) }
        }
    }
}

extension String {
    fileprivate func components(separatedBy separator: String) -> [String] {
        var parts: [String] = []
        var rest = Substring(self)
        while let r = rest.firstRange(of: separator) {
            parts.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }

    fileprivate func replacingOccurrences(of target: String, with replacement: String) -> String {
        components(separatedBy: target).joined(separator: replacement)
    }
}
