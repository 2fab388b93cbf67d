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
/// alternatives found, plus the few that have no exact-value condition, are then checked in full
/// (cheap conditions first; the indexed one is already proven).
/// Immutable once built: share one between threads, give each thread its own ``EventMatcher``.
public final class RuleSet: @unchecked Sendable {
    /// Every field path some rule reads; field ids index this list.
    public let fieldPaths: [[String]]
    public let ruleCount: Int
    let flat: FlatAlternatives
    /// Alternatives with no exact-value condition: checked for every event.
    let unindexedList: UnsafeMutableBufferPointer<Int32>
    let index: ExactIndex
    /// Fields that have entries in the index.
    let indexedFieldList: UnsafeMutableBufferPointer<Int32>

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
        unindexedList = RuleSet.buffer(unindexed)
        index = ExactIndex(entries)
        indexedFieldList = RuleSet.buffer(Array(Set(entries.map { Int32($0.field) })).sorted())
    }

    /// A copy of `items` in plain memory (freed in deinit).
    static func buffer(_ items: [Int32]) -> UnsafeMutableBufferPointer<Int32> {
        let b = UnsafeMutablePointer<Int32>.allocate(capacity: max(1, items.count))
        b.initialize(from: items, count: items.count)
        return UnsafeMutableBufferPointer(start: b, count: items.count)
    }

    deinit {
        unindexedList.baseAddress!.deallocate()
        indexedFieldList.baseAddress!.deallocate()
    }

    /// Alternatives with no exact-value condition.
    var unindexed: [Int32] { Array(unindexedList) }
    var indexedFields: [Int] { indexedFieldList.map { Int($0) } }
    var alternativeCount: Int { flat.alternativeCount }

    /// The rules `values` satisfies, in rule order, written to `scratch`'s matched list. `slots[f]`
    /// is the slot of `values` holding field `f`'s leaves (so one scan can serve several views of an event).
    func match(_ values: UnsafePointer<EventValues>, slots: UnsafePointer<Int>, scratch: UnsafeMutablePointer<RuleMatchScratch>) {
        scratch.pointee.begin()
        let stamp = scratch.pointee.stamp
        let alternativeStamps = scratch.pointee.alternativeStamps
        let view = LeafView(records: values.pointee.records, head: values.pointee.head, slots: slots)
        let candidates = index.candidates
        // Candidates from the index, each checked when first found.
        for field in indexedFieldList {
            var k = view.head[slots[Int(field)]]
            while k >= 0 {
                let record = view.records[Int(k)]
                let range = index.lookup(field: Int(field), kind: record.kind,
                                         bytes: UnsafeRawBufferPointer(start: record.bytes, count: record.length), number: record.number)
                for c in range {
                    let alternative = Int(candidates[c])
                    if alternativeStamps[alternative] != stamp {
                        alternativeStamps[alternative] = stamp
                        flat.check(alternative, view, scratch)
                    }
                }
                k = record.next
            }
        }
        for alternative in unindexedList { flat.check(Int(alternative), view, scratch) }
        scratch.pointee.sortMatched()
    }
}

/// An event's leaves as the checks read them (valid while the values are).
struct LeafView {
    let records: UnsafeMutablePointer<EventValues.Record>
    let head: UnsafeMutablePointer<Int32>
    let slots: UnsafePointer<Int>
}

/// The alternatives laid out flat in memory that lives as long as the rule set, so checking one
/// touches no reference counts (this runs for every candidate of every event). Each alternative's
/// conditions are ordered cheapest first, and the one its index entry proved is left out.
final class FlatAlternatives: @unchecked Sendable {
    let alternativeCount: Int
    let rule: UnsafeMutablePointer<Int32>
    let firstCondition: UnsafeMutablePointer<Int32>
    let conditionCount: UnsafeMutablePointer<Int32>
    let field: UnsafeMutablePointer<Int32>
    let acceptsAbsence: UnsafeMutablePointer<Bool>
    let firstMatcher: UnsafeMutablePointer<Int32>
    let matcherCount: UnsafeMutablePointer<Int32>
    let matchers: FlatMatchers

    init(_ alternatives: [RuleSet.Alternative]) {
        func buffer<T>(_ items: [T]) -> UnsafeMutablePointer<T> {
            let b = UnsafeMutablePointer<T>.allocate(capacity: max(1, items.count))
            b.initialize(from: items, count: items.count)
            return b
        }
        alternativeCount = alternatives.count
        var rules: [Int32] = [], firsts: [Int32] = [], counts: [Int32] = []
        var fields: [Int32] = [], absence: [Bool] = [], firstMatchers: [Int32] = [], matcherCounts: [Int32] = []
        var matchers: [ValueMatcher] = []
        for alternative in alternatives {
            rules.append(Int32(alternative.rule))
            firsts.append(Int32(fields.count))
            var kept = alternative.conditions.enumerated().filter { $0.offset != alternative.indexedCondition }.map(\.element)
            kept = kept.enumerated().sorted { (FlatAlternatives.cost($0.element.matchers), $0.offset) < (FlatAlternatives.cost($1.element.matchers), $1.offset) }.map(\.element)
            counts.append(Int32(kept.count))
            for condition in kept {
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
        field = buffer(fields)
        acceptsAbsence = buffer(absence)
        firstMatcher = buffer(firstMatchers)
        matcherCount = buffer(matcherCounts)
        self.matchers = FlatMatchers(matchers)
    }

    deinit {
        for b in [rule, firstCondition, conditionCount, field, firstMatcher, matcherCount] { b.deallocate() }
        acceptsAbsence.deallocate()
    }

    /// How costly a condition is to check, roughly: exact values and `exists` first, case folding,
    /// wildcards, lists and IPv6 networks last. (All must hold, so the order changes only the time.)
    static func cost(_ matchers: [ValueMatcher]) -> Int {
        matchers.map { m -> Int in
            switch m {
            case .exact, .exists: return 0
            case .numeric, .prefix(_, ignoringCase: false), .suffix(_, ignoringCase: false): return 1
            case .cidr(let range): return range.network.count == 4 ? 2 : 5
            case .anythingBut(.strings), .anythingBut(.numbers), .anythingBut(.prefixes), .anythingBut(.suffixes): return 2
            case .prefix, .suffix, .equalsIgnoreCase, .wildcard: return 3
            case .anythingBut: return 4
            }
        }.max() ?? 0
    }

    @inline(__always)
    func check(_ number: Int, _ view: LeafView, _ scratch: UnsafeMutablePointer<RuleMatchScratch>) {
        let ruleNumber = Int(rule[number])
        guard scratch.pointee.ruleStamps[ruleNumber] != scratch.pointee.stamp else { return }
        let first = Int(firstCondition[number])
        for c in first..<(first + Int(conditionCount[number])) {
            if !holds(c, view) { return }
        }
        scratch.pointee.ruleStamps[ruleNumber] = scratch.pointee.stamp
        scratch.pointee.append(ruleNumber)
    }

    @inline(__always)
    func holds(_ condition: Int, _ view: LeafView) -> Bool {
        var k = view.head[view.slots[Int(field[condition])]]
        if k < 0 { return acceptsAbsence[condition] }
        let m0 = Int(firstMatcher[condition]), m1 = m0 + Int(matcherCount[condition])
        while k >= 0 {
            let record = view.records[Int(k)]
            let bytes = UnsafeRawBufferPointer(start: record.bytes, count: record.length)
            for m in m0..<m1 where matchers.matches(m, kind: record.kind, bytes, number: record.number) { return true }
            k = record.next
        }
        return false
    }
}

/// Per-matcher working memory for ``RuleSet/match(_:slots:scratch:)`` (plain memory; the owner
/// calls ``deallocate()``): stamps mark the alternatives and rules already seen for this event.
struct RuleMatchScratch {
    /// The rules matched, ``matchedCount`` of them.
    let matched: UnsafeMutablePointer<Int32>
    private(set) var matchedCount = 0
    let alternativeStamps: UnsafeMutablePointer<UInt32>
    let ruleStamps: UnsafeMutablePointer<UInt32>
    let alternativeCount: Int, ruleCount: Int
    private(set) var stamp: UInt32 = 0

    init(alternatives: Int, rules: Int) {
        alternativeCount = alternatives
        ruleCount = rules
        matched = .allocate(capacity: max(1, rules))
        alternativeStamps = .allocate(capacity: max(1, alternatives))
        alternativeStamps.initialize(repeating: 0, count: max(1, alternatives))
        ruleStamps = .allocate(capacity: max(1, rules))
        ruleStamps.initialize(repeating: 0, count: max(1, rules))
    }

    func deallocate() {
        matched.deallocate()
        alternativeStamps.deallocate()
        ruleStamps.deallocate()
    }

    mutating func begin() {
        matchedCount = 0
        stamp &+= 1
        if stamp == 0 {
            // Wrapped: old stamps could collide with new ones.
            alternativeStamps.update(repeating: 0, count: max(1, alternativeCount))
            ruleStamps.update(repeating: 0, count: max(1, ruleCount))
            stamp = 1
        }
    }

    /// Each rule is appended at most once per event (its stamp guards it), so `matched` never overflows.
    @inline(__always)
    mutating func append(_ rule: Int) {
        matched[matchedCount] = Int32(truncatingIfNeeded: rule)
        matchedCount += 1
    }

    /// Puts the matched rules in rule order (few: insertion sort).
    mutating func sortMatched() {
        guard matchedCount > 1 else { return }
        for i in 1..<matchedCount {
            let v = matched[i]
            var j = i
            while j > 0 && matched[j - 1] > v {
                matched[j] = matched[j - 1]
                j -= 1
            }
            matched[j] = v
        }
    }

    var matchedRules: [Int] { (0..<matchedCount).map { Int(matched[$0]) } }
}

/// A hash table from (field, exact value) to the alternatives indexed under it. Open addressing,
/// keys in one byte block, all in plain memory; a lookup hashes the value's bytes once and
/// allocates nothing.
final class ExactIndex: @unchecked Sendable {
    struct Entry {
        var hash: UInt64
        var field: Int32
        var tag: UInt8
        var keyStart: Int32
        var keyLength: Int32
        var candidatesStart: Int32
        var candidatesCount: Int32
    }

    let slots: UnsafeMutablePointer<Int32>
    let mask: Int
    let entries: UnsafeMutablePointer<Entry>
    let keys: UnsafeMutablePointer<UInt8>
    let candidates: UnsafeMutablePointer<Int32>

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
        var table = [Int32](repeating: -1, count: size)
        for (n, entry) in entries.enumerated() {
            var s = Int(truncatingIfNeeded: entry.hash) & (size - 1)
            while table[s] >= 0 { s = (s + 1) & (size - 1) }
            table[s] = Int32(n)
        }
        func buffer<T>(_ items: [T]) -> UnsafeMutablePointer<T> {
            let b = UnsafeMutablePointer<T>.allocate(capacity: max(1, items.count))
            b.initialize(from: items, count: items.count)
            return b
        }
        slots = buffer(table)
        mask = size - 1
        self.entries = buffer(entries)
        self.keys = buffer(keys)
        self.candidates = buffer(candidates)
    }

    deinit {
        slots.deallocate()
        entries.deallocate()
        keys.deallocate()
        candidates.deallocate()
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
            if entry.hash == hash && entry.field == Int32(field) && entry.tag == tag && Int(entry.keyLength) == bytes.count
                && (bytes.count == 0 || memcmp(keys + Int(entry.keyStart), bytes.baseAddress!, bytes.count) == 0) {
                return Int(entry.candidatesStart)..<Int(entry.candidatesStart + entry.candidatesCount)
            }
            s = (s + 1) & mask
        }
    }
}

extension EventPattern {
    /// Whether `json` (an event as JSON text) matches this pattern, the event taken as it is. For
    /// one-off checks; hot paths hold an ``EventMatcher``.
    public func matches(json: String) -> Bool {
        let matcher = EventMatcher(RuleSet([self]), cloudTrailEnvelope: false)
        return !matcher.matches(Array(json.utf8)).isEmpty
    }
}
