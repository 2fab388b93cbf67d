#if canImport(Glibc)
import Glibc
#endif
import ByteJSON

/// Many event patterns compiled together and indexed by field and exact value, so an event is
/// checked only against the rules one of its values can satisfy — not against every rule.
///
/// Each alternative of each pattern is indexed under one of its conditions made of exact values
/// (the field whose values are the most varied across all rules, so the candidate lists stay
/// short). For an event, every leaf of an indexed field is looked up in one hash table; the
/// alternatives found, plus the few that have no exact-value condition, are then checked in full.
/// Immutable once built: share one between threads, give each thread its own ``RuleMatchScratch``.
public final class RuleSet: @unchecked Sendable {
    /// Every field path some rule reads; field ids index this list.
    public let fieldPaths: [[String]]
    public let ruleCount: Int
    let flat: FlatAlternatives
    /// Alternatives with no exact-value condition: checked for every event.
    let unindexed: [Int32]
    let index: ExactIndex
    /// Fields that have entries in the index.
    let indexedFields: [Int]

    struct Alternative: Sendable {
        var rule: Int
        var conditions: [(field: Int, matchers: [ValueMatcher], acceptsAbsence: Bool)]
        /// The condition the index already proved (skipped when checking), or -1.
        var indexedCondition: Int
    }

    public init(_ patterns: [EventPattern]) {
        ruleCount = patterns.count
        var fieldIds: [[String]: Int] = [:]
        var paths: [[String]] = []
        func id(_ path: [String]) -> Int {
            if let known = fieldIds[path] { return known }
            paths.append(path)
            fieldIds[path] = paths.count - 1
            return paths.count - 1
        }
        // How varied each field's exact values are across all rules: the index prefers varied fields.
        var distinct: [[String]: Set<ExactValue>] = [:]
        for pattern in patterns {
            for alternative in pattern.alternatives {
                for condition in alternative { if let values = condition.exactValues { distinct[condition.path, default: []].formUnion(values) } }
            }
        }
        var alternatives: [Alternative] = []
        var unindexed: [Int32] = []
        var entries: [(field: Int, value: ExactValue, alternative: Int32)] = []
        for (rule, pattern) in patterns.enumerated() {
            for conditions in pattern.alternatives {
                var best = -1
                var bestScore = (0, 0)
                for (k, condition) in conditions.enumerated() {
                    guard let values = condition.exactValues else { continue }
                    let score = (distinct[condition.path]?.count ?? 0, -values.count)
                    if best < 0 || score > bestScore { best = k; bestScore = score }
                }
                let compiled = Alternative(
                    rule: rule,
                    conditions: conditions.map { (id($0.path), $0.matchers, $0.acceptsAbsence) },
                    indexedCondition: best)
                let number = Int32(alternatives.count)
                alternatives.append(compiled)
                if best < 0 {
                    unindexed.append(number)
                } else {
                    for value in Set(conditions[best].exactValues!) { entries.append((compiled.conditions[best].field, value, number)) }
                }
            }
        }
        fieldPaths = paths
        flat = FlatAlternatives(alternatives)
        self.unindexed = unindexed
        index = ExactIndex(entries)
        indexedFields = Array(Set(entries.map(\.field))).sorted()
    }

    /// Field ids as slots of ``EventValues`` (the identity map).
    public var identitySlots: [Int] { Array(fieldPaths.indices) }

    /// The rules `values` satisfies, in rule order, written to `scratch.matched`. `slots[f]` is the
    /// slot of `values` holding field `f`'s leaves (so one scan can serve several views of an event).
    public func match(_ values: EventValues, slots: [Int], scratch: inout RuleMatchScratch) {
        scratch.prepare(alternatives: flat.alternativeCount, rules: ruleCount)
        let stamp = scratch.stamp
        // Locals, so the loops below take no reference per access.
        let flat = self.flat, index = self.index, indexedFields = self.indexedFields, unindexed = self.unindexed
        index.candidates.withUnsafeBufferPointer { candidates in
        values.arena.withUnsafeBytes { arena in
            values.records.withUnsafeBufferPointer { records in
                values.head.withUnsafeBufferPointer { head in
                    slots.withUnsafeBufferPointer { slots in
                        // Candidates from the index.
                        for field in indexedFields {
                            var k = head[slots[field]]
                            while k >= 0 {
                                let record = records[Int(k)]
                                let bytes = UnsafeRawBufferPointer(rebasing: arena[Int(record.start)..<Int(record.start + record.length)])
                                let range = index.lookup(field: field, kind: record.kind, bytes: bytes, number: record.number)
                                for c in range {
                                    let alternative = Int(candidates[c])
                                    if scratch.alternativeStamps[alternative] != stamp {
                                        scratch.alternativeStamps[alternative] = stamp
                                        scratch.candidates.append(Int32(alternative))
                                    }
                                }
                                k = record.next
                            }
                        }
                        let view = LeafView(arena: arena, records: records, head: head, slots: slots)
                        for alternative in unindexed { flat.check(Int(alternative), view, &scratch) }
                        for c in scratch.candidates.indices { flat.check(Int(scratch.candidates[c]), view, &scratch) }
                    }
                }
            }
        }
        }
        if scratch.matched.count > 1 { scratch.matched.sort() }
    }
}

/// An event's leaves as the checks read them (valid while the buffers are).
struct LeafView {
    let arena: UnsafeRawBufferPointer
    let records: UnsafeBufferPointer<EventValues.Record>
    let head: UnsafeBufferPointer<Int32>
    let slots: UnsafeBufferPointer<Int>
}

/// The alternatives laid out flat in memory that lives as long as the rule set, so checking one
/// touches no reference counts (this runs for every candidate of every event).
final class FlatAlternatives: @unchecked Sendable {
    let alternativeCount: Int
    let rule: UnsafeMutableBufferPointer<Int32>
    let firstCondition: UnsafeMutableBufferPointer<Int32>
    let conditionCount: UnsafeMutableBufferPointer<Int32>
    let indexedCondition: UnsafeMutableBufferPointer<Int32>
    let field: UnsafeMutableBufferPointer<Int32>
    let acceptsAbsence: UnsafeMutableBufferPointer<Bool>
    let firstMatcher: UnsafeMutableBufferPointer<Int32>
    let matcherCount: UnsafeMutableBufferPointer<Int32>
    let matchers: UnsafeMutableBufferPointer<ValueMatcher>

    init(_ alternatives: [RuleSet.Alternative]) {
        func buffer<T>(_ items: [T]) -> UnsafeMutableBufferPointer<T> {
            let b = UnsafeMutableBufferPointer<T>.allocate(capacity: max(1, items.count))
            _ = b.initialize(from: items)
            return UnsafeMutableBufferPointer(rebasing: b[0..<items.count])
        }
        alternativeCount = alternatives.count
        var rules: [Int32] = [], firsts: [Int32] = [], counts: [Int32] = [], indexed: [Int32] = []
        var fields: [Int32] = [], absence: [Bool] = [], firstMatchers: [Int32] = [], matcherCounts: [Int32] = []
        var matchers: [ValueMatcher] = []
        for alternative in alternatives {
            rules.append(Int32(alternative.rule))
            firsts.append(Int32(fields.count))
            counts.append(Int32(alternative.conditions.count))
            indexed.append(Int32(alternative.indexedCondition))
            for condition in alternative.conditions {
                fields.append(Int32(condition.field))
                absence.append(condition.acceptsAbsence)
                firstMatchers.append(Int32(matchers.count))
                matcherCounts.append(Int32(condition.matchers.count))
                matchers += condition.matchers
            }
        }
        rule = buffer(rules)
        firstCondition = buffer(firsts)
        conditionCount = buffer(counts)
        indexedCondition = buffer(indexed)
        field = buffer(fields)
        acceptsAbsence = buffer(absence)
        firstMatcher = buffer(firstMatchers)
        matcherCount = buffer(matcherCounts)
        self.matchers = buffer(matchers)
    }

    deinit {
        for b in [rule, firstCondition, conditionCount, indexedCondition, field, firstMatcher, matcherCount] {
            UnsafeMutableBufferPointer(start: b.baseAddress, count: max(1, b.count)).deallocate()
        }
        UnsafeMutableBufferPointer(start: acceptsAbsence.baseAddress, count: max(1, acceptsAbsence.count)).deallocate()
        matchers.deinitialize()
        UnsafeMutableBufferPointer(start: matchers.baseAddress, count: max(1, matchers.count)).deallocate()
    }

    @inline(__always)
    func check(_ number: Int, _ view: LeafView, _ scratch: inout RuleMatchScratch) {
        let ruleNumber = Int(rule[number])
        guard scratch.ruleStamps[ruleNumber] != scratch.stamp else { return }
        let first = Int(firstCondition[number]), skip = first + Int(indexedCondition[number])
        for c in first..<(first + Int(conditionCount[number])) where c != skip {
            if !holds(c, view) { return }
        }
        scratch.ruleStamps[ruleNumber] = scratch.stamp
        scratch.matched.append(ruleNumber)
    }

    @inline(__always)
    func holds(_ condition: Int, _ view: LeafView) -> Bool {
        var k = view.head[view.slots[Int(field[condition])]]
        if k < 0 { return acceptsAbsence[condition] }
        let m0 = Int(firstMatcher[condition]), m1 = m0 + Int(matcherCount[condition])
        while k >= 0 {
            let record = view.records[Int(k)]
            let leaf = Leaf(kind: record.kind,
                            bytes: UnsafeRawBufferPointer(rebasing: view.arena[Int(record.start)..<Int(record.start + record.length)]),
                            number: record.number)
            for m in m0..<m1 where matchers[m].matches(leaf) { return true }
            k = record.next
        }
        return false
    }
}

/// Per-thread working memory for ``RuleSet/match(_:scratch:)``; ``matched`` holds the result.
public struct RuleMatchScratch {
    public internal(set) var matched: [Int] = []
    var candidates: [Int32] = []
    var alternativeStamps: [UInt32] = []
    var ruleStamps: [UInt32] = []
    var stamp: UInt32 = 0

    public init() {}

    mutating func prepare(alternatives: Int, rules: Int) {
        if alternativeStamps.count != alternatives { alternativeStamps = Array(repeating: 0, count: alternatives) }
        if ruleStamps.count != rules { ruleStamps = Array(repeating: 0, count: rules) }
        stamp &+= 1
        if stamp == 0 {
            // Wrapped: old stamps could collide with new ones.
            for i in alternativeStamps.indices { alternativeStamps[i] = 0 }
            for i in ruleStamps.indices { ruleStamps[i] = 0 }
            stamp = 1
        }
        candidates.removeAll(keepingCapacity: true)
        matched.removeAll(keepingCapacity: true)
    }
}

/// A hash table from (field, exact value) to the alternatives indexed under it. Open addressing,
/// keys in one byte block; a lookup hashes the value's bytes once and allocates nothing.
struct ExactIndex: Sendable {
    struct Entry: Sendable {
        var hash: UInt64
        var field: Int32
        var tag: UInt8
        var keyStart: Int32
        var keyLength: Int32
        var candidatesStart: Int32
        var candidatesCount: Int32
    }

    let slots: [Int32]
    let mask: Int
    let entries: [Entry]
    let keys: [UInt8]
    let candidates: [Int32]

    init(_ items: [(field: Int, value: ExactValue, alternative: Int32)]) {
        var grouped: [Int: [ExactValue: [Int32]]] = [:]
        for item in items { grouped[item.field, default: [:]][item.value, default: []].append(item.alternative) }
        var entries: [Entry] = []
        var keys: [UInt8] = []
        var candidates: [Int32] = []
        for (field, byValue) in grouped.sorted(by: { $0.key < $1.key }) {
            for (value, alternatives) in byValue {
                let (tag, bytes) = value.indexKey
                let hash = bytes.withUnsafeBytes { ExactIndex.hash(field: field, tag: tag, $0) }
                entries.append(Entry(hash: hash, field: Int32(field), tag: tag, keyStart: Int32(keys.count), keyLength: Int32(bytes.count),
                                     candidatesStart: Int32(candidates.count), candidatesCount: Int32(alternatives.count)))
                keys += bytes
                candidates += alternatives.sorted()
            }
        }
        var size = 16
        while size < entries.count * 2 { size *= 2 }
        var slots = [Int32](repeating: -1, count: size)
        for (n, entry) in entries.enumerated() {
            var s = Int(truncatingIfNeeded: entry.hash) & (size - 1)
            while slots[s] >= 0 { s = (s + 1) & (size - 1) }
            slots[s] = Int32(n)
        }
        self.slots = slots
        self.mask = size - 1
        self.entries = entries
        self.keys = keys
        self.candidates = candidates
    }

    @inline(__always)
    static func hash(field: Int, tag: UInt8, _ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ (UInt64(truncatingIfNeeded: field) << 8 | UInt64(tag))
        var i = 0
        let n = bytes.count
        while i + 8 <= n {
            h = (h ^ bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 31
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < n {
            tail |= UInt64(bytes[i]) << shift
            shift += 8
            i += 1
        }
        h = (h ^ tail ^ UInt64(n) << 56) &* 0x94D0_49BB_1331_11EB
        return h ^ (h >> 29)
    }

    /// The candidates (a range of ``candidates``) for a leaf of `field`.
    @inline(__always)
    func lookup(field: Int, kind: LeafKind, bytes: UnsafeRawBufferPointer, number: Double) -> Range<Int> {
        if kind == .number {
            // Numbers are keyed by value, so 300 finds a rule written 3e2.
            guard number.isFinite else { return 0..<0 }
            var bits = (number == 0 ? 0.0 : number).bitPattern.littleEndian
            return withUnsafeBytes(of: &bits) { find(field: field, tag: LeafKind.number.rawValue, $0) }
        }
        if kind == .bool {
            var flag: UInt8 = bytes.count == 4 ? 1 : 0
            return withUnsafeBytes(of: &flag) { find(field: field, tag: LeafKind.bool.rawValue, $0) }
        }
        if kind == .null { return find(field: field, tag: LeafKind.null.rawValue, UnsafeRawBufferPointer(start: nil, count: 0)) }
        return find(field: field, tag: LeafKind.string.rawValue, bytes)
    }

    @inline(__always)
    func find(field: Int, tag: UInt8, _ bytes: UnsafeRawBufferPointer) -> Range<Int> {
        let hash = ExactIndex.hash(field: field, tag: tag, bytes)
        var s = Int(truncatingIfNeeded: hash) & mask
        while true {
            let n = slots[s]
            if n < 0 { return 0..<0 }
            let entry = entries[Int(n)]
            if entry.hash == hash && entry.field == Int32(field) && entry.tag == tag && Int(entry.keyLength) == bytes.count {
                let same = keys.withUnsafeBytes { k in
                    bytes.count == 0 || memcmp(k.baseAddress! + Int(entry.keyStart), bytes.baseAddress!, bytes.count) == 0
                }
                if same { return Int(entry.candidatesStart)..<Int(entry.candidatesStart + entry.candidatesCount) }
            }
            s = (s + 1) & mask
        }
    }
}

extension EventPattern {
    /// Whether `json` (an event as JSON text) matches this pattern, the event taken as it is. For
    /// one-off checks; hot paths hold an ``EventMatcher``.
    public func matches(json: String) -> Bool {
        var matcher = EventMatcher(RuleSet([self]), cloudTrailEnvelope: false)
        return !matcher.matches(Array(json.utf8)).isEmpty
    }
}
