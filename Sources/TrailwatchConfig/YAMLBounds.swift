import Yams

/// What loading a YAML document may cost, checked before the document can cost it: its size, and
/// aliases (`*name`), which can make a small text stand for an exponentially large tree ("billion
/// laughs"). Aliases stay allowed as values, where the loaded tree shares them, and are counted as
/// they would expand; as mapping keys (or inside complex keys) they are refused, because the YAML
/// library hashes keys in full while it reads them.
public enum YAMLBounds {
    /// Largest document read (a pipeline of 85,000 components is about 3 MiB).
    public static let maximumDocumentBytes = 16 << 20
    /// Most nodes the document may have once every alias is expanded.
    public static let maximumExpandedNodes = 1_000_000

    /// Composes `text` within the bounds: the node tree, or the diagnostic saying why it was not
    /// loaded (too large, or aliases expanding past the limit). YAML syntax errors are thrown.
    public static func compose(_ text: String, file: String) throws -> (node: Node?, refused: ConfigDiagnostic?) {
        if let refused = checkText(text, file: file) { return (nil, refused) }
        guard let node = try Yams.compose(yaml: text) else { return (nil, nil) }
        // Only a document with an alias ('*') can expand beyond its own size.
        if text.utf8.contains(UInt8(ascii: "*")), let refused = checkExpansion(node, file: file) { return (nil, refused) }
        return (node, nil)
    }

    /// Checks the raw text; returns a diagnostic when it must not be loaded.
    public static func checkText(_ text: String, file: String) -> ConfigDiagnostic? {
        let bytes = Array(text.utf8)
        if bytes.count > maximumDocumentBytes {
            return ConfigDiagnostic(location: SourceLocation(file: file, line: 1, column: 1),
                                    message: "the document is larger than \(maximumDocumentBytes >> 20) MiB",
                                    expected: "a smaller pipeline file")
        }
        // Fast path: no '*' at all means no alias.
        guard bytes.contains(UInt8(ascii: "*")) || bytes.contains(UInt8(ascii: "?")) else { return nil }
        var scanner = KeyScanner(bytes: bytes, file: file)
        return scanner.scan()
    }

    /// Counts the nodes of `root` as if every alias were expanded, stopping at the limit. An alias
    /// loads as the anchored node itself, position included, and no two nodes of one kind start at
    /// the same position: sizes are remembered by (kind, position), so each anchored subtree is
    /// walked once and a billion-laughs document costs a few hundred steps.
    public static func checkExpansion(_ root: Node, file: String) -> ConfigDiagnostic? {
        struct Position: Hashable { var line: Int, column: Int, kind: Int }
        func key(_ node: Node) -> Position? {
            guard let mark = node.mark else { return nil }
            let kind: Int
            switch node {
            case .scalar: kind = 0
            case .mapping: kind = 1
            case .sequence: kind = 2
            case .alias: kind = 3
            }
            return Position(line: mark.line, column: mark.column, kind: kind)
        }
        func children(_ node: Node) -> [Node] {
            switch node {
            case .mapping(let mapping): return mapping.flatMap { [$0.key, $0.value] }
            case .sequence(let sequence): return Array(sequence)
            case .scalar, .alias: return []
            }
        }
        var sizes: [Position: Int] = [:]
        var stack: [(node: Node, children: [Node], next: Int, total: Int)] = []
        var result = 0
        func add(_ size: Int) -> Bool {
            if stack.isEmpty { result += size } else { stack[stack.count - 1].total += size }
            return (stack.last?.total ?? result) <= maximumExpandedNodes
        }
        func enter(_ node: Node) -> Bool {
            if let k = key(node), let known = sizes[k] { return add(known) }
            stack.append((node, children(node), 0, 1))
            return true
        }
        var ok = enter(root)
        while ok, let top = stack.last {
            if top.next < top.children.count {
                stack[stack.count - 1].next += 1
                ok = enter(top.children[top.next])
            } else {
                stack.removeLast()
                if let k = key(top.node) { sizes[k] = top.total }
                ok = add(top.total)
            }
        }
        guard !ok else { return nil }
        let mark = stack.last?.node.mark
        return ConfigDiagnostic(location: SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1),
                                message: "the document expands to more than \(maximumExpandedNodes) nodes through its aliases",
                                expected: "fewer or smaller aliased (*name) values")
    }

    /// A small YAML lexer that knows just enough — quotes, comments, block scalars, flow brackets,
    /// token starts — to find aliases used as keys and complex keys.
    struct KeyScanner {
        let bytes: [UInt8]
        let file: String
        var i = 0
        var line = 1
        var lineStart = 0

        init(bytes: [UInt8], file: String) {
            self.bytes = bytes
            self.file = file
        }

        func diagnostic(_ at: Int, _ message: String, _ expected: String) -> ConfigDiagnostic {
            ConfigDiagnostic(location: SourceLocation(file: file, line: line, column: at - lineStart + 1), message: message, expected: expected)
        }

        func peek(_ k: Int) -> UInt8? { k < bytes.count ? bytes[k] : nil }

        static func isBlank(_ c: UInt8?) -> Bool { c == nil || c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D }
        static func isNameByte(_ c: UInt8) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x5F || c >= 0x80
        }

        mutating func newline() {
            line += 1
            lineStart = i
        }

        /// Indentation of the line that starts at `start`.
        func indentation(from start: Int) -> Int {
            var k = start
            while k < bytes.count && bytes[k] == 0x20 { k += 1 }
            return k - start
        }

        mutating func scan() -> ConfigDiagnostic? {
            var atTokenStart = true
            var flowDepth = 0
            while i < bytes.count {
                let c = bytes[i]
                switch c {
                case 0x0A:
                    i += 1
                    newline()
                    atTokenStart = true
                    continue
                case 0x20, 0x09, 0x0D:
                    i += 1
                    continue
                case UInt8(ascii: "#") where i == lineStart || KeyScanner.isBlank(i > 0 ? bytes[i - 1] : nil):
                    while i < bytes.count && bytes[i] != 0x0A { i += 1 }
                    continue
                default:
                    break
                }
                if atTokenStart {
                    switch c {
                    case UInt8(ascii: "'"), UInt8(ascii: "\""):
                        skipQuoted(c)
                        atTokenStart = false
                        continue
                    case UInt8(ascii: "*"):
                        let start = i
                        i += 1
                        while i < bytes.count && KeyScanner.isNameByte(bytes[i]) { i += 1 }
                        var k = i
                        while k < bytes.count && (bytes[k] == 0x20 || bytes[k] == 0x09) { k += 1 }
                        if k < bytes.count && bytes[k] == UInt8(ascii: ":") && (KeyScanner.isBlank(peek(k + 1)) || flowDepth > 0) {
                            return diagnostic(start, "an alias (\(String(decoding: bytes[start..<i], as: UTF8.self))) cannot be a mapping key",
                                              "a plain key; aliases may only be values")
                        }
                        atTokenStart = false
                        continue
                    case UInt8(ascii: "&"), UInt8(ascii: "!"):
                        // Anchors and tags precede a node: what follows still starts a token.
                        i += 1
                        while i < bytes.count && !KeyScanner.isBlank(bytes[i]) && bytes[i] != UInt8(ascii: ",") { i += 1 }
                        continue
                    case UInt8(ascii: "?") where KeyScanner.isBlank(peek(i + 1)):
                        return diagnostic(i, "complex mapping keys ('? …') are not supported", "plain keys")
                    case UInt8(ascii: "|"), UInt8(ascii: ">"):
                        skipBlockScalar()
                        atTokenStart = true
                        continue
                    case UInt8(ascii: "-") where KeyScanner.isBlank(peek(i + 1)):
                        i += 1
                        continue
                    default:
                        break
                    }
                }
                switch c {
                case UInt8(ascii: "["), UInt8(ascii: "{"):
                    flowDepth += 1
                    atTokenStart = true
                case UInt8(ascii: "]"), UInt8(ascii: "}"):
                    flowDepth = max(0, flowDepth - 1)
                    var k = i + 1
                    while k < bytes.count && (bytes[k] == 0x20 || bytes[k] == 0x09) { k += 1 }
                    if k < bytes.count && bytes[k] == UInt8(ascii: ":") && (KeyScanner.isBlank(peek(k + 1)) || flowDepth > 0) {
                        return diagnostic(i, "a list or mapping cannot be a mapping key", "plain keys")
                    }
                    atTokenStart = false
                case UInt8(ascii: ","):
                    atTokenStart = flowDepth > 0
                case UInt8(ascii: ":") where KeyScanner.isBlank(peek(i + 1)) || flowDepth > 0:
                    atTokenStart = true
                default:
                    atTokenStart = false
                }
                i += 1
            }
            return nil
        }

        mutating func skipQuoted(_ quote: UInt8) {
            i += 1
            while i < bytes.count {
                let c = bytes[i]
                if c == 0x0A { i += 1; newline(); continue }
                if quote == UInt8(ascii: "\"") && c == UInt8(ascii: "\\") { i += 2; continue }
                if c == quote {
                    if quote == UInt8(ascii: "'") && peek(i + 1) == quote { i += 2; continue }
                    i += 1
                    return
                }
                i += 1
            }
        }

        /// `|` or `>` starting a block scalar: the rest of the line, then every line indented more
        /// than the line the scalar started on.
        mutating func skipBlockScalar() {
            let parentIndent = indentation(from: lineStart)
            while i < bytes.count && bytes[i] != 0x0A { i += 1 }
            while i < bytes.count {
                // At a newline: look at the next line.
                i += 1
                newline()
                let indent = indentation(from: i)
                let k = i + indent
                if k < bytes.count && bytes[k] != 0x0A && indent <= parentIndent {
                    return
                }
                while i < bytes.count && bytes[i] != 0x0A { i += 1 }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

extension YAMLBounds {
    /// Why a configuration file could not be read.
    public struct ReadError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Reads a configuration file of at most ``maximumDocumentBytes``: a larger file, or one that
    /// never ends (`/dev/zero`), is refused before it fills memory.
    public static func readDocument(atPath path: String) throws(ReadError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ReadError(description: "cannot read the file: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ReadError(description: "cannot read the file: \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            guard bytes.count + n <= maximumDocumentBytes else {
                throw ReadError(description: "the file is larger than \(maximumDocumentBytes >> 20) MiB")
            }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
