/// Answers "is there a match?" with a DFA built lazily from the program, one state at a time as the
/// text needs it (as RE2 does). A state is a set of program positions plus what the previous byte
/// was (start, newline, word character) — enough to settle every assertion once the next byte is
/// known, so `^ $ \b \B` stay inside the automaton. Each byte costs one table look-up once its
/// transition is cached; a new transition costs O(program). The cache is bounded: when it is full it
/// is cleared and rebuilt as needed, so memory is bounded and time stays linear in the text.
///
/// Two things keep the byte loop short. States are numbered by their offset in the transition table
/// (premultiplied), so a step is one add and one load. And the state "no match started" of an
/// unanchored search — where the text usually is — gets a table of the bytes that keep it there,
/// scanned in a tight loop with no dependency between bytes; for an anchored search that state is
/// dead and ends the search at once.
struct LazyDFA {
    let program: RegexProgram
    private let stride: Int
    /// transitions[offset + byteClass]: the next state's offset, ``unknown`` or ``matched``.
    private var transitions: [Int32] = []
    /// Per state: whether the end of the text right after it completes a match (-1 not computed yet).
    private var matchesAtEnd: [Int8] = []
    private var keys: [StateKey] = []
    private var ids: [StateKey: Int32] = [:]
    private var closure: SparseThreadList
    private var stack: [Int32] = []
    private var targets: [Int32] = []
    /// Offset of the start state, and of the "nothing started" state (-1: not known yet).
    private var startOffset: Int32 = -1
    private var idleOffset: Int32 = -1
    /// For the idle state: bytes that keep the search idle (valid when `idleOffset >= 0`).
    private var staysIdle = [Bool](repeating: false, count: 256)
    /// Times the cache was cleared (for tests and tuning).
    private(set) var resets = 0

    static let unknown: Int32 = -1
    static let matched: Int32 = -2
    /// Most states kept at once.
    static let maximumStates = 4096

    struct StateKey: Hashable {
        /// Bit 0: at the start of the text; bit 1: previous byte was `\n`; bit 2: previous byte was a word byte.
        var flags: UInt8
        var pcs: [Int32]
    }

    init(program: RegexProgram) {
        self.program = program
        stride = program.classCount
        closure = SparseThreadList(capacity: program.instructions.count, slotCount: 0)
    }

    private var initialKey: StateKey {
        StateKey(flags: 1 | 2, pcs: program.anchoredAtStart ? [program.start] : [])
    }

    /// The state that means "no match under way": nothing pending, and (for an unanchored search)
    /// a previous byte that no assertion cares about.
    private static let idleKey = StateKey(flags: 0, pcs: [])

    /// Offset of `key`'s state, adding it (and clearing a full cache first).
    private mutating func intern(_ key: StateKey) -> Int32 {
        if let id = ids[key] { return id }
        if keys.count >= LazyDFA.maximumStates {
            keys.removeAll(keepingCapacity: true)
            ids.removeAll(keepingCapacity: true)
            transitions.removeAll(keepingCapacity: true)
            matchesAtEnd.removeAll(keepingCapacity: true)
            startOffset = -1
            idleOffset = -1
            resets += 1
        }
        let offset = Int32(keys.count * stride)
        keys.append(key)
        ids[key] = offset
        transitions.append(contentsOf: repeatElement(LazyDFA.unknown, count: stride))
        matchesAtEnd.append(-1)
        return offset
    }

    private mutating func start() -> Int32 {
        if startOffset < 0 { startOffset = intern(initialKey) }
        return startOffset
    }

    /// Makes sure the idle state and its byte table exist; returns its offset (or -1 when it cannot
    /// be cached right now because the cache filled up while computing it).
    private mutating func prepareIdle() -> Int32 {
        if idleOffset >= 0 { return idleOffset }
        let resetsBefore = resets
        let idle = intern(LazyDFA.idleKey)
        var stays = [Bool](repeating: false, count: 256)
        for byte in 0..<256 {
            let slot = Int(idle) + Int(program.byteClasses[byte])
            var t = transitions[slot]
            if t == LazyDFA.unknown {
                t = step(idle, byte: UInt8(byte))
                guard resets == resetsBefore else { return -1 }
                transitions[slot] = t
            }
            stays[byte] = t == idle
        }
        staysIdle = stays
        idleOffset = idle
        return idle
    }

    /// True when the expression matches somewhere in `text`.
    mutating func matches(_ text: UnsafeRawBufferPointer) -> Bool {
        var state = start()
        guard let base = text.baseAddress?.assumingMemoryBound(to: UInt8.self), text.count > 0 else {
            return endMatches(state)
        }
        let n = text.count
        let anchored = program.anchoredAtStart
        var i = 0
        while i < n {
            // The hot loop: cached transitions only.
            let idle = idleOffset
            let (stoppedAt, reached) = program.byteClasses.withUnsafeBufferPointer { classes -> (Int, Int32) in
                transitions.withUnsafeBufferPointer { table -> (Int, Int32) in
                    staysIdle.withUnsafeBufferPointer { stays -> (Int, Int32) in
                        var s = state
                        var k = i
                        while k < n {
                            if s == idle {
                                if anchored { return (n, s) }
                                while k < n && stays[Int(base[k])] { k &+= 1 }
                                if k >= n { break }
                            }
                            let t = table[Int(s) &+ Int(classes[Int(base[k])])]
                            if t < 0 { return (k, s) }
                            s = t
                            k &+= 1
                        }
                        return (k, s)
                    }
                }
            }
            i = stoppedAt
            state = reached
            if i >= n { break }
            let slot = Int(state) + Int(program.byteClasses[Int(base[i])])
            var t = transitions[slot]
            if t == LazyDFA.unknown {
                let resetsBefore = resets
                t = step(state, byte: base[i])
                // `step` may have cleared the cache; only remember the edge if its source survived.
                if resets == resetsBefore { transitions[slot] = t }
            }
            if t == LazyDFA.matched { return true }
            state = t
            i += 1
            // Landing in the idle state the first time builds its byte table.
            if idleOffset < 0 && keys[Int(state) / stride] == LazyDFA.idleKey {
                let idle = prepareIdle()
                if idle >= 0 { state = idle } else { state = intern(LazyDFA.idleKey) }
            }
            if anchored && keys[Int(state) / stride].pcs.isEmpty { return false }
        }
        if anchored && keys[Int(state) / stride].pcs.isEmpty { return false }
        return endMatches(state)
    }

    /// Whether the text ending right after `state` completes a match.
    private mutating func endMatches(_ state: Int32) -> Bool {
        let index = Int(state) / stride
        let cached = matchesAtEnd[index]
        if cached >= 0 { return cached == 1 }
        let key = keys[index]
        let result = expand(key, next: -1)
        matchesAtEnd[index] = result ? 1 : 0
        return result
    }

    /// Follows empty edges from the state's positions (and from the start, when unanchored) with the
    /// next byte known. Returns true when a match is reachable; fills `closure` with the positions.
    private mutating func expand(_ key: StateKey, next: Int) -> Bool {
        closure.clear()
        let previous: Int
        if key.flags & 1 != 0 { previous = -1 } else if key.flags & 2 != 0 { previous = 0x0A } else if key.flags & 4 != 0 { previous = 0x61 } else { previous = 0x20 }
        stack.removeAll(keepingCapacity: true)
        if !program.anchoredAtStart { stack.append(program.start) }
        for pc in key.pcs.reversed() { stack.append(pc) }
        var found = false
        while let top = stack.popLast() {
            var pc = top
            while !closure.contains(pc) {
                _ = closure.insert(pc)
                let inst = program.instructions[Int(pc)]
                switch inst.kind {
                case .jump: pc = inst.a; continue
                case .split: stack.append(inst.b); pc = inst.a; continue
                case .save: pc = inst.next; continue
                case .assert:
                    if assertionHolds(RegexAssertion(rawValue: UInt8(inst.a))!, previous: previous, next: next) { pc = inst.next; continue }
                case .match: found = true
                case .byteRange, .byteSet, .fail: break
                }
                break
            }
            if found { return true }
        }
        return false
    }

    /// Computes the transition from the state at `offset` on `byte`: the next state's offset or ``matched``.
    private mutating func step(_ offset: Int32, byte: UInt8) -> Int32 {
        let key = keys[Int(offset) / stride]
        if expand(key, next: Int(byte)) { return LazyDFA.matched }
        targets.removeAll(keepingCapacity: true)
        for k in 0..<closure.count {
            let inst = program.instructions[Int(closure.dense[k])]
            switch inst.kind {
            case .byteRange: if byte >= UInt8(inst.a) && byte <= UInt8(inst.b) { targets.append(inst.next) }
            case .byteSet: if program.sets[Int(inst.a)].contains(byte) { targets.append(inst.next) }
            default: break
            }
        }
        targets.sort()
        var pcs: [Int32] = []
        pcs.reserveCapacity(targets.count)
        for t in targets where pcs.last != t { pcs.append(t) }
        var flags: UInt8 = 0
        if program.needsNewlineContext && byte == 0x0A { flags |= 2 }
        if program.needsWordContext && RegexProgram.isWordByte(byte) { flags |= 4 }
        return intern(StateKey(flags: flags, pcs: pcs))
    }
}
