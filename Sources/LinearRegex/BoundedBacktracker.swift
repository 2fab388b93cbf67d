/// Finds capture positions by depth-first search in priority order, remembering every (instruction,
/// position) pair it has tried so none is tried twice (RE2's "BitState"): O(text × program) like the
/// Pike VM, but it follows one path at a time without copying capture slots between threads, so it
/// is several times faster on the short texts it is used for (a log line, a field). Texts whose
/// visited set would exceed ``maximumVisitedBits`` go to the Pike VM.
final class BoundedBacktracker {
    static let maximumVisitedBits = 1 << 22

    private let instructions: UnsafeMutableBufferPointer<RegexInstruction>
    private let sets: [ByteBitmap]
    private let start: Int32
    private let anchored: Bool
    private let slotCount: Int
    private var visited: [UInt64] = []
    private var slots: [Int]
    /// Work: explore `pc` at `pos`, or (pc < 0) restore slot `-pc - 1` to `pos`.
    private var stack: [(pc: Int32, pos: Int)] = []

    init(program: RegexProgram) {
        instructions = .allocate(capacity: max(program.instructions.count, 1))
        _ = instructions.initialize(from: program.instructions)
        sets = program.sets
        start = program.start
        anchored = program.anchoredAtStart
        slotCount = program.slotCount
        slots = [Int](repeating: -1, count: program.slotCount)
    }

    deinit { instructions.deallocate() }

    /// Whether a text of `count` bytes fits the visited set.
    func accepts(count: Int) -> Bool { instructions.count * (count + 1) <= BoundedBacktracker.maximumVisitedBits }

    /// The capture slots of the leftmost-first match, or nil.
    func search(_ text: UnsafeRawBufferPointer) -> [Int]? {
        let n = text.count
        let width = n + 1
        let words = (instructions.count * width + 63) / 64
        let bytes = text.baseAddress?.assumingMemoryBound(to: UInt8.self)
        // The work stack, slots and visited set are taken out of the object for the search: in
        // the loop, a stored property of a class costs a dynamic exclusivity check per access
        // (measured: half the time of a timestamp regex's capture), a local costs none.
        var stack = self.stack, slots = self.slots, visited = self.visited
        self.stack = []; self.slots = []; self.visited = []
        defer { self.stack = stack; self.slots = slots; self.visited = visited }
        if visited.count < words { visited = [UInt64](repeating: 0, count: words) } else {
            visited.withUnsafeMutableBufferPointer { seen in
                for k in 0..<words { seen[k] = 0 }
            }
        }
        let found = visited.withUnsafeMutableBufferPointer { seen -> Bool in
            for first in 0...n {
                if anchored && first > 0 { break }
                for k in 0..<slotCount { slots[k] = -1 }
                if run(from: first, bytes, n, width, seen, &stack, &slots) { return true }
            }
            return false
        }
        return found ? slots : nil
    }

    private func run(from first: Int, _ bytes: UnsafePointer<UInt8>?, _ n: Int, _ width: Int, _ seen: UnsafeMutableBufferPointer<UInt64>,
                     _ stack: inout [(pc: Int32, pos: Int)], _ slots: inout [Int]) -> Bool {
        stack.removeAll(keepingCapacity: true)
        stack.append((start, first))
        let program = instructions.baseAddress!
        while let frame = stack.popLast() {
            if frame.pc < 0 {
                slots[Int(-frame.pc - 1)] = frame.pos
                continue
            }
            var pc = frame.pc
            var pos = frame.pos
            while true {
                let bit = Int(pc) * width + pos
                let word = bit >> 6, mask = UInt64(1) << UInt64(bit & 63)
                if seen[word] & mask != 0 { break }
                seen[word] |= mask
                let inst = program[Int(pc)]
                switch inst.kind {
                case .byteRange:
                    guard pos < n else { break }
                    let b = bytes![pos]
                    guard b >= UInt8(inst.a) && b <= UInt8(inst.b) else { break }
                    pc = inst.next; pos += 1; continue
                case .byteSet:
                    guard pos < n, sets[Int(inst.a)].contains(bytes![pos]) else { break }
                    pc = inst.next; pos += 1; continue
                case .split:
                    stack.append((inst.b, pos))
                    pc = inst.a; continue
                case .jump:
                    pc = inst.a; continue
                case .save:
                    let slot = Int(inst.a)
                    stack.append((Int32(-slot - 1), slots[slot]))
                    slots[slot] = pos
                    pc = inst.next; continue
                case .assert:
                    let previous = pos > 0 ? Int(bytes![pos - 1]) : -1
                    let next = pos < n ? Int(bytes![pos]) : -1
                    guard assertionHolds(RegexAssertion(rawValue: UInt8(inst.a))!, previous: previous, next: next) else { break }
                    pc = inst.next; continue
                case .match:
                    return true
                case .fail:
                    break
                }
                break
            }
        }
        return false
    }
}
