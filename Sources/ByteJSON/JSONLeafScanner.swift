#if canImport(Glibc)
import Glibc
#endif

/// Receives the scalar leaves a ``JSONLeafScanner`` finds.
public protocol JSONLeafVisitor {
    /// A scalar (`string`, `number`, `bool` or `null` lookup; ranges index the scanned buffer) at the
    /// watched path `path` (an index into the scanner's paths).
    mutating func leaf(path: Int, value: JSONLookup)
}

/// Collects the scalar leaves of JSON documents at a fixed set of key paths in one forward scan,
/// looking through arrays: a path `a.b` reaches `{"a": {"b": 1}}`, `{"a": [{"b": 1}, {"b": [2, 3]}]}`
/// (three leaves) and so on — the way EventBridge flattens an event before matching patterns.
///
/// Objects and arrays are never reported (only scalars are leaves). Subtrees no path enters are
/// skipped at byte level; the whole document is still validated, so a scan agrees with
/// ``JSONValue/parse(_:)`` about what is JSON. Nothing is allocated per document.
public final class JSONLeafScanner: @unchecked Sendable {
    /// The watched paths, as given (keys as UTF-8 bytes).
    public let paths: [[[UInt8]]]

    /// The trie of keys: node 0 is the document root. Immutable after init.
    @usableFromInline let nodes: UnsafeMutablePointer<Node>
    let nodeCount: Int
    @usableFromInline let edges: UnsafeMutablePointer<Edge>
    @usableFromInline let keyBytes: UnsafeMutablePointer<UInt8>
    /// Open-addressing tables from (key length, first word) to an edge, for nodes with many keys.
    @usableFromInline let tables: UnsafeMutablePointer<Int32>

    @usableFromInline
    struct Node {
        /// The path that ends here, or -1.
        @usableFromInline var path: Int32
        @usableFromInline var firstEdge: Int32
        @usableFromInline var edgeCount: Int32
        /// Start of this node's table in ``tables`` and its size − 1 (0: no table, scan the edges).
        @usableFromInline var tableStart: Int32 = 0
        @usableFromInline var tableMask: Int32 = 0
    }

    /// Nodes with more keys than this get a hash table (a record's root watches a dozen or more).
    static let tableThreshold = 4

    @inlinable @inline(__always)
    static func slot(_ length: Int, _ head: UInt64, _ mask: Int32) -> Int {
        Int(truncatingIfNeeded: ((head ^ UInt64(truncatingIfNeeded: length)) &* 0x9E37_79B9_7F4A_7C15) >> 40) & Int(mask)
    }

    @usableFromInline
    struct Edge {
        @usableFromInline var length: Int
        @usableFromInline var head: UInt64
        @usableFromInline var offset: Int
        @usableFromInline var child: Int32
    }

    public init(paths: [[[UInt8]]]) {
        self.paths = paths
        // Build the trie with Swift arrays, then lay it out flat.
        var children: [[(key: [UInt8], child: Int)]] = [[]]
        var ends: [Int32] = [-1]
        for (index, path) in paths.enumerated() {
            var node = 0
            for key in path {
                if let existing = children[node].first(where: { $0.key == key }) {
                    node = existing.child
                } else {
                    children.append([])
                    ends.append(-1)
                    children[node].append((key, children.count - 1))
                    node = children.count - 1
                }
            }
            if ends[node] < 0 { ends[node] = Int32(index) }
        }
        var flatEdges: [Edge] = []
        var block: [UInt8] = []
        var flatNodes: [Node] = []
        for (node, list) in children.enumerated() {
            flatNodes.append(Node(path: ends[node], firstEdge: Int32(flatEdges.count), edgeCount: Int32(list.count)))
            for (key, child) in list {
                let head = key.withUnsafeBufferPointer { KeyTable.head($0.baseAddress ?? UnsafePointer(bitPattern: 1)!, key.count) }
                flatEdges.append(Edge(length: key.count, head: head, offset: block.count, child: Int32(child)))
                block += key
            }
        }
        var table: [Int32] = [-1]
        for n in flatNodes.indices where Int(flatNodes[n].edgeCount) > Self.tableThreshold {
            var size = 8
            while size < Int(flatNodes[n].edgeCount) * 4 { size *= 2 }
            let start = table.count
            table += Array(repeating: -1, count: size)
            for e in Int(flatNodes[n].firstEdge)..<Int(flatNodes[n].firstEdge + flatNodes[n].edgeCount) {
                var s = Self.slot(flatEdges[e].length, flatEdges[e].head, Int32(size - 1))
                while table[start + s] >= 0 { s = (s + 1) & (size - 1) }
                table[start + s] = Int32(e)
            }
            flatNodes[n].tableStart = Int32(start)
            flatNodes[n].tableMask = Int32(size - 1)
        }
        tables = .allocate(capacity: table.count)
        tables.initialize(from: table, count: table.count)
        nodeCount = flatNodes.count
        nodes = .allocate(capacity: flatNodes.count)
        nodes.initialize(from: flatNodes, count: flatNodes.count)
        edges = .allocate(capacity: max(1, flatEdges.count))
        edges.initialize(from: flatEdges, count: flatEdges.count)
        keyBytes = .allocate(capacity: max(1, block.count + 8))
        keyBytes.initialize(repeating: 0, count: block.count + 8)
        for (i, b) in block.enumerated() { keyBytes[i] = b }
    }

    deinit {
        tables.deallocate()
        nodes.deallocate()
        edges.deallocate()
        keyBytes.deallocate()
    }

    /// Scans `bytes`, reporting every leaf at a watched path to `visitor` in document order.
    /// Returns the kind of the top-level value, or nil when the input is not JSON (leaves reported
    /// before the error was found have still been visited: callers discard them).
    @inlinable @discardableResult
    public func scan<V: JSONLeafVisitor>(_ bytes: UnsafeRawBufferPointer, into visitor: inout V) -> JSONRootKind? {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return nil }
        var scanner = LeafScan(p: base.assumingMemoryBound(to: UInt8.self), end: bytes.count,
                               nodes: nodes, edges: edges, keyBytes: keyBytes, tables: tables)
        scanner.skipWhitespace()
        guard scanner.i < scanner.end else { return nil }
        let first = scanner.p[scanner.i]
        let root: JSONRootKind = first == UInt8(ascii: "{") ? .object : first == UInt8(ascii: "[") ? .array : .scalar
        guard scanner.value(node: 0, depth: 0, visitor: &visitor) else { return nil }
        scanner.skipWhitespace()
        return scanner.i == scanner.end ? root : nil
    }
}

/// One scan's state (see ``JSONLeafScanner``). Node -1 means "no watched path below here".
/// Inlinable, so the scan is specialised for each visitor in the module that uses it (a generic
/// scan would reach the visitor through a witness table for every leaf).
@usableFromInline
struct LeafScan {
    @usableFromInline let p: UnsafePointer<UInt8>
    @usableFromInline let end: Int
    @usableFromInline let nodes: UnsafeMutablePointer<JSONLeafScanner.Node>
    @usableFromInline let edges: UnsafeMutablePointer<JSONLeafScanner.Edge>
    @usableFromInline let keyBytes: UnsafeMutablePointer<UInt8>
    @usableFromInline let tables: UnsafeMutablePointer<Int32>
    @usableFromInline var i = 0

    @inlinable
    init(p: UnsafePointer<UInt8>, end: Int, nodes: UnsafeMutablePointer<JSONLeafScanner.Node>,
         edges: UnsafeMutablePointer<JSONLeafScanner.Edge>, keyBytes: UnsafeMutablePointer<UInt8>, tables: UnsafeMutablePointer<Int32>) {
        self.p = p
        self.end = end
        self.nodes = nodes
        self.edges = edges
        self.keyBytes = keyBytes
        self.tables = tables
    }

    /// Compact JSON has no whitespace between tokens: one comparison decides that.
    @inlinable @inline(__always)
    mutating func skipWhitespace() {
        if i < end && p[i] > 0x20 { return }
        i = JSONByteScan.skipWhitespace(p, i, end)
    }

    /// The first eight bytes of the key `p[ks..<ke]`, zero-padded, as one word (one load when the
    /// document goes on for eight bytes, as it does after all but its last few keys).
    @inlinable @inline(__always)
    func keyHead(_ ks: Int, _ length: Int) -> UInt64 {
        if length >= 8 { return UnsafeRawPointer(p + ks).loadUnaligned(as: UInt64.self) }
        if ks &+ 8 <= end {
            return UnsafeRawPointer(p + ks).loadUnaligned(as: UInt64.self) & ((1 &<< UInt64(8 &* length)) &- 1)
        }
        var word: UInt64 = 0
        for k in 0..<length { word |= UInt64(p[ks &+ k]) &<< UInt64(8 &* k) }
        return word
    }

    /// The child of `node` reached through the key `p[ks..<ke]`, or -1.
    @inlinable @inline(__always)
    func child(of node: Int, _ ks: Int, _ ke: Int, escaped: Bool) -> Int {
        let n = nodes[node]
        guard n.edgeCount > 0 else { return -1 }
        if escaped { return escapedChild(of: node, ks, ke) }
        let length = ke &- ks
        let head = keyHead(ks, length)
        if n.tableMask > 0 {
            var s = JSONLeafScanner.slot(length, head, n.tableMask)
            while true {
                let e = tables[Int(n.tableStart) &+ s]
                if e < 0 { return -1 }
                let edge = edges[Int(e)]
                if edge.length == length && edge.head == head
                    && (length <= 8 || LazyScanner.equalBytes(p + (ks &+ 8), keyBytes + (edge.offset &+ 8), length &- 8)) {
                    return Int(edge.child)
                }
                s = (s &+ 1) & Int(n.tableMask)
            }
        }
        for e in Int(n.firstEdge)..<Int(n.firstEdge &+ n.edgeCount) {
            let edge = edges[e]
            if edge.length == length && edge.head == head
                && (length <= 8 || LazyScanner.equalBytes(p + (ks &+ 8), keyBytes + (edge.offset &+ 8), length &- 8)) {
                return Int(edge.child)
            }
        }
        return -1
    }

    /// ``child(of:_:_:escaped:)`` for a key with escapes: decoded first (rare).
    @usableFromInline
    func escapedChild(of node: Int, _ ks: Int, _ ke: Int) -> Int {
        let n = nodes[node]
        var decoded: [UInt8] = []
        JSONStringDecoding.appendDecoded(p, ks, ke, to: &decoded)
        for e in Int(n.firstEdge)..<Int(n.firstEdge + n.edgeCount) {
            let edge = edges[e]
            if edge.length == decoded.count,
               decoded.withUnsafeBufferPointer({ edge.length == 0 || memcmp($0.baseAddress!, keyBytes + edge.offset, edge.length) == 0 }) {
                return Int(edge.child)
            }
        }
        return -1
    }

    /// Reports the leaf at `node`, if a watched path ends there.
    @inlinable @inline(__always)
    func report<V: JSONLeafVisitor>(_ node: Int, _ value: JSONLookup, _ visitor: inout V) {
        if node >= 0 {
            let path = nodes[node].path
            if path >= 0 { visitor.leaf(path: Int(path), value: value) }
        }
    }

    /// Scans a string value starting at its opening quote.
    @inlinable @inline(__always)
    mutating func stringValue<V: JSONLeafVisitor>(node: Int, visitor: inout V) -> Bool {
        let (k, escaped) = JSONByteScan.stringEnd(p, from: i &+ 1, end)
        guard k < end else { return false }
        let start = i &+ 1
        i = k &+ 1
        report(node, .string(start..<k, escaped: escaped), &visitor)
        return true
    }

    /// Scans one value; `node` is the trie node the path so far reached (-1: none).
    @inlinable
    mutating func value<V: JSONLeafVisitor>(node: Int, depth: Int, visitor: inout V) -> Bool {
        guard i < end else { return false }
        let start = i
        switch p[i] {
        case UInt8(ascii: "\""):
            return stringValue(node: node, visitor: &visitor)
        case UInt8(ascii: "{"):
            guard depth < JSONValue.maximumDepth else { return false }
            i &+= 1
            skipWhitespace()
            if i < end && p[i] == UInt8(ascii: "}") { i &+= 1; return true }
            let watched = node >= 0 && nodes[node].edgeCount > 0
            while true {
                skipWhitespace()
                guard i < end, p[i] == UInt8(ascii: "\"") else { return false }
                let keyStart = i &+ 1
                let (keyEnd, escaped) = JSONByteScan.stringEnd(p, from: keyStart, end)
                guard keyEnd < end else { return false }
                i = keyEnd &+ 1
                skipWhitespace()
                guard i < end, p[i] == UInt8(ascii: ":") else { return false }
                i &+= 1
                skipWhitespace()
                let next = watched ? child(of: node, keyStart, keyEnd, escaped: escaped) : -1
                guard i < end else { return false }
                // String members (most of them) without a call.
                if p[i] == UInt8(ascii: "\"") {
                    guard stringValue(node: next, visitor: &visitor) else { return false }
                } else {
                    guard value(node: next, depth: depth &+ 1, visitor: &visitor) else { return false }
                }
                skipWhitespace()
                guard i < end else { return false }
                if p[i] == UInt8(ascii: ",") { i &+= 1; continue }
                if p[i] == UInt8(ascii: "}") { i &+= 1; return true }
                return false
            }
        case UInt8(ascii: "["):
            guard depth < JSONValue.maximumDepth else { return false }
            i &+= 1
            skipWhitespace()
            if i < end && p[i] == UInt8(ascii: "]") { i &+= 1; return true }
            while true {
                skipWhitespace()
                // Arrays are transparent: elements stand where the array stands.
                guard value(node: node, depth: depth &+ 1, visitor: &visitor) else { return false }
                skipWhitespace()
                guard i < end else { return false }
                if p[i] == UInt8(ascii: ",") { i &+= 1; continue }
                if p[i] == UInt8(ascii: "]") { i &+= 1; return true }
                return false
            }
        case UInt8(ascii: "t"):
            guard i &+ 4 <= end, p[i &+ 1] == 0x72, p[i &+ 2] == 0x75, p[i &+ 3] == 0x65 else { return false }
            i &+= 4
            report(node, .bool(true), &visitor)
        case UInt8(ascii: "f"):
            guard i &+ 5 <= end, p[i &+ 1] == 0x61, p[i &+ 2] == 0x6C, p[i &+ 3] == 0x73, p[i &+ 4] == 0x65 else { return false }
            i &+= 5
            report(node, .bool(false), &visitor)
        case UInt8(ascii: "n"):
            guard i &+ 4 <= end, p[i &+ 1] == 0x75, p[i &+ 2] == 0x6C, p[i &+ 3] == 0x6C else { return false }
            i &+= 4
            report(node, .null, &visitor)
        default:
            guard let stop = JSONNumberParsing.scan(p, i, end) else { return false }
            i = stop
            report(node, .number(start..<stop), &visitor)
        }
        return true
    }
}
