/// One instruction of the byte-level automaton (a Thompson NFA laid out as a program, as in RE2).
struct RegexInstruction: Sendable {
    enum Kind: UInt8, Sendable {
        /// Consume one byte in `a...b`, go to `next`.
        case byteRange
        /// Consume one byte of `sets[a]`, go to `next`.
        case byteSet
        /// Try `a` first, then `b` (priority matters for captures and lazy repetition only).
        case split
        /// Go to `a`.
        case jump
        /// Record the position in capture slot `a`, go to `next`.
        case save
        /// Go to `next` when the assertion `a` holds here.
        case assert
        case match
        /// Never matches (an empty class).
        case fail
    }

    var kind: Kind
    var a: Int32
    var b: Int32
    var next: Int32
}

/// A set of bytes as a 256-bit bitmap.
struct ByteBitmap: Sendable, Hashable {
    var w0: UInt64 = 0, w1: UInt64 = 0, w2: UInt64 = 0, w3: UInt64 = 0

    init() {}

    mutating func insert(_ b: UInt8) {
        let bit = UInt64(1) << UInt64(b & 63)
        switch b >> 6 {
        case 0: w0 |= bit
        case 1: w1 |= bit
        case 2: w2 |= bit
        default: w3 |= bit
        }
    }

    mutating func insert(_ r: ClosedRange<UInt8>) { for b in r { insert(b) } }

    @inline(__always)
    func contains(_ b: UInt8) -> Bool {
        let bit = UInt64(1) << UInt64(b & 63)
        switch b >> 6 {
        case 0: return w0 & bit != 0
        case 1: return w1 & bit != 0
        case 2: return w2 & bit != 0
        default: return w3 & bit != 0
        }
    }

    var isEmpty: Bool { w0 | w1 | w2 | w3 == 0 }
}

/// A compiled expression: instructions, byte sets, and what the matchers need to know about them.
struct RegexProgram: Sendable {
    var instructions: [RegexInstruction] = []
    var sets: [ByteBitmap] = []
    var start: Int32 = 0
    /// Capture slots: two per group, group 0 being the whole match.
    var slotCount = 2
    /// Every match must begin at the start of the text (`^` / `\A` lead every alternative).
    var anchoredAtStart = false
    /// Which look-behind facts the assertions need (so the DFA can ignore the others).
    var needsNewlineContext = false
    var needsWordContext = false
    /// Byte → equivalence class: bytes no instruction tells apart share a class.
    var byteClasses = [UInt8](repeating: 0, count: 256)
    var classCount = 1

    static func isWordByte(_ b: UInt8) -> Bool {
        (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || b == 0x5F || (b >= 0x61 && b <= 0x7A)
    }

    /// Splits the bytes into classes every consuming instruction (and every assertion) treats alike.
    mutating func computeByteClasses() {
        // A boundary after byte b means b and b+1 may differ.
        var boundary = [Bool](repeating: false, count: 256)
        func cut(_ low: Int, _ high: Int) {
            if low > 0 { boundary[low - 1] = true }
            boundary[high] = true
        }
        for inst in instructions {
            switch inst.kind {
            case .byteRange: cut(Int(inst.a), Int(inst.b))
            case .byteSet:
                let set = sets[Int(inst.a)]
                for b in 0..<255 where set.contains(UInt8(b)) != set.contains(UInt8(b + 1)) { boundary[b] = true }
            default: break
            }
        }
        if needsNewlineContext { cut(0x0A, 0x0A) }
        if needsWordContext {
            for b in 0..<255 where RegexProgram.isWordByte(UInt8(b)) != RegexProgram.isWordByte(UInt8(b + 1)) { boundary[b] = true }
        }
        var cls: UInt8 = 0
        for b in 0..<256 {
            byteClasses[b] = cls
            if boundary[b] && b < 255 { cls += 1 }
        }
        classCount = Int(cls) + 1
    }
}

/// Turns a ``RegexNode`` into a ``RegexProgram`` by Thompson's construction over bytes: UTF-8
/// characters become byte sequences, `{m,n}` is expanded (bounded by ``maximumInstructions``).
struct RegexCompiler {
    /// Largest program; with the 1000 cap on each bound this keeps per-byte work bounded.
    static let maximumInstructions = 20_000

    var program = RegexProgram()
    let byteMode: Bool
    /// Where the outermost repetition being expanded is, for the size error (-1: none).
    private var currentOffset = -1

    init(byteMode: Bool) { self.byteMode = byteMode }

    /// A piece of program with dangling exits.
    struct Fragment {
        var start: Int32
        var exits: [Exit]
    }

    /// A field of an instruction still to be pointed somewhere.
    struct Exit {
        var instruction: Int32
        var field: UInt8   // 0: next, 1: a, 2: b
    }

    static func compile(_ node: RegexNode, groupCount: Int, byteMode: Bool) throws(RegexSyntaxError) -> RegexProgram {
        var compiler = RegexCompiler(byteMode: byteMode)
        // Whole match = group 0: save 0, body, save 1, match.
        let open = try compiler.emit(RegexInstruction(kind: .save, a: 0, b: 0, next: -1))
        let body = try compiler.compile(node)
        let close = try compiler.emit(RegexInstruction(kind: .save, a: 1, b: 0, next: -1))
        let done = try compiler.emit(RegexInstruction(kind: .match, a: 0, b: 0, next: -1))
        compiler.program.instructions[Int(open)].next = body.start
        compiler.patch(body.exits, to: close)
        compiler.program.instructions[Int(close)].next = done
        compiler.program.start = open
        compiler.program.slotCount = 2 * (groupCount + 1)
        compiler.program.anchoredAtStart = RegexCompiler.isAnchoredAtStart(node)
        for inst in compiler.program.instructions where inst.kind == .assert {
            switch RegexAssertion(rawValue: UInt8(inst.a))! {
            case .lineStart, .lineEnd: compiler.program.needsNewlineContext = true
            case .wordBoundary, .notWordBoundary: compiler.program.needsWordContext = true
            case .textStart, .textEnd: break
            }
        }
        compiler.program.computeByteClasses()
        return compiler.program
    }

    /// True when every way through `node` starts with a start-of-text assertion.
    static func isAnchoredAtStart(_ node: RegexNode) -> Bool {
        switch node {
        case .assertion(let a): return a == .textStart
        case .group(let inner, _): return isAnchoredAtStart(inner)
        case .concat(let items):
            for item in items {
                if isAnchoredAtStart(item) { return true }
                // Zero-width items before the anchor keep it leading.
                switch item {
                case .assertion, .empty: continue
                case .group(let inner, _) where isZeroWidth(inner): continue
                default: return false
                }
            }
            return false
        case .alternate(let alternatives): return alternatives.allSatisfy(isAnchoredAtStart)
        case .repetition(let inner, let min, _, _, _): return min >= 1 && isAnchoredAtStart(inner)
        default: return false
        }
    }

    static func isZeroWidth(_ node: RegexNode) -> Bool {
        switch node {
        case .empty, .assertion: return true
        case .group(let inner, _): return isZeroWidth(inner)
        case .concat(let items): return items.allSatisfy(isZeroWidth)
        default: return false
        }
    }

    private mutating func emit(_ inst: RegexInstruction) throws(RegexSyntaxError) -> Int32 {
        guard program.instructions.count < RegexCompiler.maximumInstructions else {
            throw RegexSyntaxError(max(currentOffset, 0), "the expression is too large once repetitions are expanded (more than \(RegexCompiler.maximumInstructions) steps)",
                                   expected: "smaller {m,n} bounds or fewer nested repetitions")
        }
        program.instructions.append(inst)
        return Int32(program.instructions.count - 1)
    }

    private mutating func patch(_ exits: [Exit], to target: Int32) {
        for exit in exits {
            switch exit.field {
            case 0: program.instructions[Int(exit.instruction)].next = target
            case 1: program.instructions[Int(exit.instruction)].a = target
            default: program.instructions[Int(exit.instruction)].b = target
            }
        }
    }

    private mutating func compile(_ node: RegexNode) throws(RegexSyntaxError) -> Fragment {
        switch node {
        case .empty:
            let j = try emit(RegexInstruction(kind: .jump, a: -1, b: 0, next: -1))
            return Fragment(start: j, exits: [Exit(instruction: j, field: 1)])
        case .literal(let c):
            if byteMode || c < 0x80 {
                let k = try emit(RegexInstruction(kind: .byteRange, a: Int32(c), b: Int32(c), next: -1))
                return Fragment(start: k, exits: [Exit(instruction: k, field: 0)])
            }
            var previous: Fragment?
            var first: Int32 = -1
            for byte in RegexCompiler.utf8(c) {
                let k = try emit(RegexInstruction(kind: .byteRange, a: Int32(byte), b: Int32(byte), next: -1))
                if let previous { patch(previous.exits, to: k) } else { first = k }
                previous = Fragment(start: k, exits: [Exit(instruction: k, field: 0)])
            }
            return Fragment(start: first, exits: previous!.exits)
        case .charClass(let cls):
            return try compileClass(cls)
        case .assertion(let a):
            let k = try emit(RegexInstruction(kind: .assert, a: Int32(a.rawValue), b: 0, next: -1))
            return Fragment(start: k, exits: [Exit(instruction: k, field: 0)])
        case .group(let inner, let capture):
            guard let capture else { return try compile(inner) }
            let open = try emit(RegexInstruction(kind: .save, a: Int32(2 * capture), b: 0, next: -1))
            let body = try compile(inner)
            let close = try emit(RegexInstruction(kind: .save, a: Int32(2 * capture + 1), b: 0, next: -1))
            program.instructions[Int(open)].next = body.start
            patch(body.exits, to: close)
            return Fragment(start: open, exits: [Exit(instruction: close, field: 0)])
        case .concat(let items):
            var result: Fragment?
            for item in items {
                let f = try compile(item)
                if let r = result {
                    patch(r.exits, to: f.start)
                    result = Fragment(start: r.start, exits: f.exits)
                } else {
                    result = f
                }
            }
            if let result { return result }
            return try compile(.empty)
        case .alternate(let alternatives):
            return try alternation(alternatives.map { .node($0) })
        case .repetition(let inner, let minimum, let maximum, let greedy, let offset):
            let saved = currentOffset
            if saved < 0 { currentOffset = offset }
            defer { currentOffset = saved }
            return try repetition(inner, minimum: minimum, maximum: maximum, greedy: greedy)
        }
    }

    /// What one alternative compiles from.
    enum Piece {
        case node(RegexNode)
        case byteSet(ByteBitmap)
        case sequence(ByteSequence)
    }

    private mutating func build(_ piece: Piece) throws(RegexSyntaxError) -> Fragment {
        switch piece {
        case .node(let node): return try compile(node)
        case .byteSet(let set): return try byteSet(set)
        case .sequence(let sequence): return try byteSequence(sequence)
        }
    }

    /// Alternatives in priority order, joined by a chain of splits.
    private mutating func alternation(_ builders: [Piece]) throws(RegexSyntaxError) -> Fragment {
        precondition(!builders.isEmpty)
        if builders.count == 1 { return try build(builders[0]) }
        var exits: [Exit] = []
        var start: Int32 = -1
        var pendingSplit: Int32 = -1
        for (k, build) in builders.enumerated() {
            let isLast = k == builders.count - 1
            var split: Int32 = -1
            if !isLast { split = try emit(RegexInstruction(kind: .split, a: -1, b: -1, next: -1)) }
            let f = try self.build(build)
            exits.append(contentsOf: f.exits)
            let entry = isLast ? f.start : split
            if !isLast { program.instructions[Int(split)].a = f.start }
            if pendingSplit >= 0 { program.instructions[Int(pendingSplit)].b = entry } else { start = entry }
            pendingSplit = split
        }
        return Fragment(start: start, exits: exits)
    }

    private mutating func star(_ inner: RegexNode, greedy: Bool) throws(RegexSyntaxError) -> Fragment {
        let split = try emit(RegexInstruction(kind: .split, a: -1, b: -1, next: -1))
        let body = try compile(inner)
        patch(body.exits, to: split)
        if greedy {
            program.instructions[Int(split)].a = body.start
            return Fragment(start: split, exits: [Exit(instruction: split, field: 2)])
        }
        program.instructions[Int(split)].b = body.start
        return Fragment(start: split, exits: [Exit(instruction: split, field: 1)])
    }

    private mutating func optional(_ inner: RegexNode, greedy: Bool) throws(RegexSyntaxError) -> Fragment {
        let split = try emit(RegexInstruction(kind: .split, a: -1, b: -1, next: -1))
        let body = try compile(inner)
        if greedy {
            program.instructions[Int(split)].a = body.start
            return Fragment(start: split, exits: body.exits + [Exit(instruction: split, field: 2)])
        }
        program.instructions[Int(split)].b = body.start
        return Fragment(start: split, exits: body.exits + [Exit(instruction: split, field: 1)])
    }

    private mutating func repetition(_ inner: RegexNode, minimum: Int, maximum: Int?, greedy: Bool) throws(RegexSyntaxError) -> Fragment {
        var pieces: [Fragment] = []
        func chain(_ pieces: [Fragment]) -> Fragment {
            var result = pieces[0]
            for f in pieces.dropFirst() {
                patch(result.exits, to: f.start)
                result = Fragment(start: result.start, exits: f.exits)
            }
            return result
        }
        if maximum == nil {
            if minimum == 0 { return try star(inner, greedy: greedy) }
            for _ in 0..<(minimum - 1) { pieces.append(try compile(inner)) }
            // x+ : x then a loop back.
            let body = try compile(inner)
            let split = try emit(RegexInstruction(kind: .split, a: -1, b: -1, next: -1))
            patch(body.exits, to: split)
            if greedy { program.instructions[Int(split)].a = body.start } else { program.instructions[Int(split)].b = body.start }
            pieces.append(Fragment(start: body.start, exits: [Exit(instruction: split, field: greedy ? 2 : 1)]))
            return chain(pieces)
        }
        let maximum = maximum!
        if maximum == 0 { return try compile(.empty) }
        for _ in 0..<minimum { pieces.append(try compile(inner)) }
        if maximum > minimum {
            // (x(x(x)?)?)? : each optional copy's skip leaves the whole repetition.
            var skips: [Exit] = []
            var optionalPieces: [Fragment] = []
            for _ in minimum..<maximum {
                let split = try emit(RegexInstruction(kind: .split, a: -1, b: -1, next: -1))
                let body = try compile(inner)
                if greedy {
                    program.instructions[Int(split)].a = body.start
                    skips.append(Exit(instruction: split, field: 2))
                } else {
                    program.instructions[Int(split)].b = body.start
                    skips.append(Exit(instruction: split, field: 1))
                }
                optionalPieces.append(Fragment(start: split, exits: body.exits))
            }
            var nested = chain(optionalPieces)
            nested.exits.append(contentsOf: skips)
            pieces.append(nested)
        }
        return chain(pieces)
    }

    // MARK: classes over bytes

    static func utf8(_ c: UInt32) -> [UInt8] {
        switch c {
        case 0..<0x80: return [UInt8(c)]
        case 0x80..<0x800: return [UInt8(0xC0 | (c >> 6)), UInt8(0x80 | (c & 0x3F))]
        case 0x800..<0x10000: return [UInt8(0xE0 | (c >> 12)), UInt8(0x80 | ((c >> 6) & 0x3F)), UInt8(0x80 | (c & 0x3F))]
        default: return [UInt8(0xF0 | (c >> 18)), UInt8(0x80 | ((c >> 12) & 0x3F)), UInt8(0x80 | ((c >> 6) & 0x3F)), UInt8(0x80 | (c & 0x3F))]
        }
    }

    /// A byte sequence as a list of byte ranges (one per position).
    typealias ByteSequence = [ClosedRange<UInt8>]

    /// The UTF-8 byte sequences of the scalars in `low...high` (both ≥ 0x80), as in RE2's and Rust's
    /// UTF-8 range compilers: split by encoded length, then at continuation-byte boundaries.
    static func utf8Sequences(_ low: UInt32, _ high: UInt32) -> [ByteSequence] {
        var out: [ByteSequence] = []
        var stack: [(UInt32, UInt32)] = [(low, high)]
        while let (lo, hi) = stack.popLast() {
            if lo > hi { continue }
            // Surrogates are not scalars.
            if lo <= 0xDFFF && hi >= 0xD800 {
                if hi > 0xDFFF { stack.append((0xE000, hi)) }
                if lo < 0xD800 { stack.append((lo, 0xD7FF)) }
                continue
            }
            // Split by encoded length.
            var split = false
            for boundary: UInt32 in [0x7F, 0x7FF, 0xFFFF] where lo <= boundary && hi > boundary {
                stack.append((boundary + 1, hi))
                stack.append((lo, boundary))
                split = true
                break
            }
            if split { continue }
            let length = utf8(lo).count
            // Split until every continuation position spans a whole 0x80-0xBF range or a single value.
            var didSplit = false
            for k in 1..<length {
                let m: UInt32 = (1 << (6 * UInt32(k))) - 1
                if lo & ~m != hi & ~m {
                    if lo & m != 0 {
                        stack.append(((lo | m) + 1, hi))
                        stack.append((lo, lo | m))
                        didSplit = true
                        break
                    }
                    if hi & m != m {
                        stack.append((hi & ~m, hi))
                        stack.append((lo, (hi & ~m) - 1))
                        didSplit = true
                        break
                    }
                }
            }
            if didSplit { continue }
            let a = utf8(lo), b = utf8(hi)
            out.append(zip(a, b).map { $0...$1 })
        }
        // The stack produced them in ascending order already (low pushed last, popped first).
        return out
    }

    private mutating func compileClass(_ cls: CharClass) throws(RegexSyntaxError) -> Fragment {
        var ascii = ByteBitmap()
        var sequences: [ByteSequence] = []
        var allNonASCII = false
        for r in cls.set.ranges {
            let asciiLimit: UInt32 = byteMode ? 0xFF : 0x7F
            if r.lowerBound <= asciiLimit {
                for b in r.lowerBound...min(r.upperBound, asciiLimit) { ascii.insert(UInt8(b)) }
            }
            if !byteMode && r.upperBound >= 0x80 {
                let low = max(r.lowerBound, 0x80)
                if low == 0x80 && r.upperBound == CharRanges.maxScalar { allNonASCII = true; continue }
                sequences.append(contentsOf: RegexCompiler.utf8Sequences(low, r.upperBound))
            }
        }
        var builders: [Piece] = []
        if !ascii.isEmpty { builders.append(.byteSet(ascii)) }
        if allNonASCII {
            // Any non-ASCII character: a lead byte and its continuation bytes (not checking for overlong
            // forms, which the invalid-byte branch below accepts anyway).
            for (lead, count) in [(UInt8(0xC0)...0xDF, 1), (0xE0...0xEF, 2), (0xF0...0xF7, 3)] {
                builders.append(.sequence([lead] + Array(repeating: 0x80...0xBF, count: count)))
            }
        } else {
            for sequence in sequences { builders.append(.sequence(sequence)) }
        }
        if cls.matchesInvalidBytes && !byteMode {
            // Lowest priority: one byte that is not (part of) valid UTF-8.
            builders.append(.sequence([0x80...0xFF]))
        }
        if builders.isEmpty {
            let k = try emit(RegexInstruction(kind: .fail, a: 0, b: 0, next: -1))
            return Fragment(start: k, exits: [])
        }
        return try alternation(builders)
    }

    private mutating func byteSet(_ set: ByteBitmap) throws(RegexSyntaxError) -> Fragment {
        // A single contiguous range needs no bitmap.
        var runs: [ClosedRange<UInt8>] = []
        var b = 0
        while b < 256 {
            if set.contains(UInt8(b)) {
                let start = b
                while b + 1 < 256 && set.contains(UInt8(b + 1)) { b += 1 }
                runs.append(UInt8(start)...UInt8(b))
            }
            b += 1
        }
        if runs.count == 1 { return try byteSequence([runs[0]]) }
        let index: Int32
        if let existing = program.sets.firstIndex(of: set) { index = Int32(existing) } else {
            program.sets.append(set)
            index = Int32(program.sets.count - 1)
        }
        let k = try emit(RegexInstruction(kind: .byteSet, a: index, b: 0, next: -1))
        return Fragment(start: k, exits: [Exit(instruction: k, field: 0)])
    }

    private mutating func byteSequence(_ sequence: ByteSequence) throws(RegexSyntaxError) -> Fragment {
        var first: Int32 = -1
        var previous: Int32 = -1
        for r in sequence {
            let k = try emit(RegexInstruction(kind: .byteRange, a: Int32(r.lowerBound), b: Int32(r.upperBound), next: -1))
            if previous >= 0 { program.instructions[Int(previous)].next = k } else { first = k }
            previous = k
        }
        return Fragment(start: first, exits: [Exit(instruction: previous, field: 0)])
    }
}
