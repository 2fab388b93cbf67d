/// Facts about the position between two bytes that assertions look at.
@inline(__always)
func assertionHolds(_ assertion: RegexAssertion, previous: Int, next: Int) -> Bool {
    // `previous`/`next` are the neighbouring bytes, or -1 at the start/end of the text.
    switch assertion {
    case .textStart: return previous < 0
    case .textEnd: return next < 0
    case .lineStart: return previous < 0 || previous == 0x0A
    case .lineEnd: return next < 0 || next == 0x0A
    case .wordBoundary, .notWordBoundary:
        let before = previous >= 0 && RegexProgram.isWordByte(UInt8(previous))
        let after = next >= 0 && RegexProgram.isWordByte(UInt8(next))
        return (before != after) == (assertion == .wordBoundary)
    }
}

/// A set of instruction indices with O(1) insert, membership and clear (Briggs–Torczon), keeping
/// insertion order, plus capture slots for each member. Storage is raw memory so the matchers'
/// inner loops pay no copy-on-write or exclusivity checks.
final class SparseThreadList {
    let dense: UnsafeMutablePointer<Int32>
    let sparse: UnsafeMutablePointer<Int32>
    let slots: UnsafeMutablePointer<Int>
    var count = 0
    let capacity: Int
    let slotCount: Int

    init(capacity: Int, slotCount: Int) {
        self.capacity = max(capacity, 1)
        self.slotCount = slotCount
        dense = .allocate(capacity: self.capacity)
        sparse = .allocate(capacity: self.capacity)
        sparse.initialize(repeating: 0, count: self.capacity)
        dense.initialize(repeating: 0, count: self.capacity)
        slots = .allocate(capacity: max(self.capacity * slotCount, 1))
        slots.initialize(repeating: -1, count: max(self.capacity * slotCount, 1))
    }

    deinit {
        dense.deallocate()
        sparse.deallocate()
        slots.deallocate()
    }

    @inline(__always)
    func contains(_ pc: Int32) -> Bool {
        let k = Int(sparse[Int(pc)])
        return k < count && dense[k] == pc
    }

    /// Inserts and returns the member's position.
    @inline(__always)
    func insert(_ pc: Int32) -> Int {
        let k = count
        dense[k] = pc
        sparse[Int(pc)] = Int32(k)
        count += 1
        return k
    }

    func clear() { count = 0 }
}

/// Runs a program over a text in lock step (Pike's VM): every thread advances one byte at a time, at
/// most one thread per instruction, so time is O(text × program) whatever the expression — no
/// backtracking. Threads keep their priority order, which gives Perl's leftmost-first matches and
/// capture positions, lazy repetition included.
final class PikeVM {
    let program: RegexProgram
    private let instructions: UnsafeMutableBufferPointer<RegexInstruction>
    private var current: SparseThreadList
    private var next: SparseThreadList
    private let slotCount: Int
    /// Depth-first work for following empty edges: instruction to explore, or a slot to restore.
    private var stack: [(pc: Int32, slot: Int32, value: Int)] = []
    private var scratch: [Int]
    /// Text positions `search` may still step through (each costs O(program)); when it runs out the
    /// search stops and returns nil with `exhausted` set. Unlimited unless a caller sets it.
    var stepBudget = Int.max
    private(set) var exhausted = false

    init(program: RegexProgram) {
        self.program = program
        let n = program.instructions.count
        current = SparseThreadList(capacity: n, slotCount: program.slotCount)
        next = SparseThreadList(capacity: n, slotCount: program.slotCount)
        scratch = [Int](repeating: -1, count: program.slotCount)
        slotCount = program.slotCount
        instructions = .allocate(capacity: max(program.instructions.count, 1))
        _ = instructions.initialize(from: program.instructions)
    }

    deinit { instructions.deallocate() }

    /// The capture slots of the leftmost-first match in `text[from...]`, or nil.
    /// With `longest`, the match is leftmost-longest instead (POSIX's rule, for masking): threads of
    /// the leftmost start run on and the longest end wins. With `nonEmpty`, empty matches do not count.
    func search(_ text: UnsafeRawBufferPointer, from: Int = 0, longest: Bool = false, nonEmpty: Bool = false) -> [Int]? {
        let n = text.count
        let bytes = text.baseAddress?.assumingMemoryBound(to: UInt8.self)
        current.clear()
        var matched: [Int]? = nil
        var pos = from
        exhausted = false
        while true {
            stepBudget -= 1
            if stepBudget < 0 { exhausted = true; return nil }
            if matched == nil && (pos == from || !program.anchoredAtStart) {
                for k in scratch.indices { scratch[k] = -1 }
                addThread(current, program.start, pos, bytes, n)
            }
            if current.count == 0 { break }
            next.clear()
            let byte: Int = pos < n ? Int(bytes![pos]) : -1
            var k = 0
            while k < current.count {
                let pc = current.dense[k]
                let inst = instructions[Int(pc)]
                let base = k * slotCount
                // Leftmost-longest: a thread that started after the best match's start cannot win.
                if longest, let best = matched, current.slots[base] > best[0] { k += 1; continue }
                switch inst.kind {
                case .match:
                    let start = current.slots[base]
                    if nonEmpty && start == pos { break }
                    if longest {
                        if matched == nil || start < matched![0] || (start == matched![0] && pos > matched![1]) {
                            matched = Array(UnsafeBufferPointer(start: current.slots + base, count: slotCount))
                        }
                        break
                    }
                    matched = Array(UnsafeBufferPointer(start: current.slots + base, count: slotCount))
                    // Lower-priority threads can no longer win.
                    k = current.count
                    continue
                case .byteRange:
                    if byte >= 0 && byte >= Int(inst.a) && byte <= Int(inst.b) { advance(k, to: inst.next, pos + 1, bytes, n) }
                case .byteSet:
                    if byte >= 0 && program.sets[Int(inst.a)].contains(UInt8(byte)) { advance(k, to: inst.next, pos + 1, bytes, n) }
                default:
                    break
                }
                k += 1
            }
            let finished = current
            current = next
            next = finished
            if pos >= n { break }
            pos += 1
        }
        return matched
    }

    /// Moves thread `k` of the current list past its byte into the next list.
    @inline(__always)
    private func advance(_ k: Int, to pc: Int32, _ pos: Int, _ bytes: UnsafePointer<UInt8>?, _ n: Int) {
        let base = k * slotCount
        for s in 0..<slotCount { scratch[s] = current.slots[base + s] }
        addThread(next, pc, pos, bytes, n)
    }

    /// Adds the threads reachable from `pc0` at `pos` over empty edges, in priority order, carrying
    /// `scratch` as their capture slots.
    private func addThread(_ list: SparseThreadList, _ pc0: Int32, _ pos: Int, _ bytes: UnsafePointer<UInt8>?, _ n: Int) {
        let previous = pos > 0 ? Int(bytes![pos - 1]) : -1
        let following = pos < n ? Int(bytes![pos]) : -1
        stack.append((pc0, -1, 0))
        while let frame = stack.popLast() {
            if frame.slot >= 0 {
                scratch[Int(frame.slot)] = frame.value
                continue
            }
            var pc = frame.pc
            while !list.contains(pc) {
                let k = list.insert(pc)
                let inst = instructions[Int(pc)]
                switch inst.kind {
                case .jump:
                    pc = inst.a
                    continue
                case .split:
                    stack.append((inst.b, -1, 0))
                    pc = inst.a
                    continue
                case .save:
                    let slot = Int(inst.a)
                    if slot < slotCount {
                        stack.append((-1, Int32(slot), scratch[slot]))
                        scratch[slot] = pos
                    }
                    pc = inst.next
                    continue
                case .assert:
                    if assertionHolds(RegexAssertion(rawValue: UInt8(inst.a))!, previous: previous, next: following) {
                        pc = inst.next
                        continue
                    }
                case .byteRange, .byteSet, .match:
                    let base = k * list.slotCount
                    for s in 0..<list.slotCount { list.slots[base + s] = scratch[s] }
                case .fail:
                    break
                }
                break
            }
        }
    }
}
