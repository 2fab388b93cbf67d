import Dispatch
import Synchronization

/// Messages tokenized and masked ahead of mining, on several cores.
///
/// Masking is most of a miner's work per message, and it depends on the message alone; only the grouping that
/// follows needs the miner's state. So a batch is masked in parts on all cores (``TemplateMiner/premask(_:count:parts:message:)``)
/// and the miner then takes the messages in order (``TemplateMiner/add(_:premasked:at:parameterRanges:)``) — with
/// the same results as masking each message as it comes.
///
/// The buffers are kept from batch to batch: keep one value and pass it again, so masking allocates nothing once
/// the buffers have grown to the size of a batch.
public struct PremaskedMessages: @unchecked Sendable {
    /// One part of a batch, masked by one thread.
    struct Part {
        var masker = TokenMasker()
        /// The first message of the part.
        var first = 0
        var tokens: [MaskedToken] = []
        var segments: [ValueSegment] = []
        /// Per message of the part: where its tokens and its segments end (they start where the previous end).
        var tokenEnds: [Int32] = []
        var segmentEnds: [Int32] = []

        mutating func reset(first: Int) {
            self.first = first
            tokens.removeAll(keepingCapacity: true)
            segments.removeAll(keepingCapacity: true)
            tokenEnds.removeAll(keepingCapacity: true)
            segmentEnds.removeAll(keepingCapacity: true)
        }

        /// Masks one message and appends its tokens (segment indices relative to the message's own segments).
        mutating func append(_ message: UnsafeRawBufferPointer, maxTokens: Int) {
            masker.mask(message)
            masker.truncate(to: maxTokens)
            // Through buffer pointers: appending the arrays themselves retains and releases them for every message.
            masker.tokens.withUnsafeBufferPointer { tokens.append(contentsOf: $0) }
            masker.segments.withUnsafeBufferPointer { segments.append(contentsOf: $0) }
            tokenEnds.append(Int32(tokens.count))
            segmentEnds.append(Int32(segments.count))
        }
    }

    var parts: [Part] = []
    /// Messages per part (the last part may have fewer).
    var partSize = 1
    /// Number of messages masked.
    public internal(set) var count = 0

    public init() {}

    /// Copies message `index`'s tokens into `masker`, as if it had masked the message itself.
    func load(_ index: Int, into masker: inout TokenMasker) {
        let part = index / partSize
        let local = index - part * partSize
        // Through a pointer to the part: calling a method on `parts[part]` would copy the part (and retain its
        // buffers) for every message.
        parts.withUnsafeBufferPointer { Part.load(local, of: $0.baseAddress! + part, into: &masker) }
    }
}

extension PremaskedMessages.Part {
    static func load(_ local: Int, of part: UnsafePointer<Self>, into masker: inout TokenMasker) {
        let tokenEnd = Int(part.pointee.tokenEnds[local])
        let segmentEnd = Int(part.pointee.segmentEnds[local])
        let tokenStart = local == 0 ? 0 : Int(part.pointee.tokenEnds[local - 1])
        let segmentStart = local == 0 ? 0 : Int(part.pointee.segmentEnds[local - 1])
        masker.tokens.removeAll(keepingCapacity: true)
        masker.segments.removeAll(keepingCapacity: true)
        part.pointee.tokens.withUnsafeBufferPointer {
            masker.tokens.append(contentsOf: UnsafeBufferPointer(rebasing: $0[tokenStart..<tokenEnd]))
        }
        part.pointee.segments.withUnsafeBufferPointer {
            masker.segments.append(contentsOf: UnsafeBufferPointer(rebasing: $0[segmentStart..<segmentEnd]))
        }
    }
}

extension TemplateMiner {
    /// Prepares `premasked` for `count` messages in up to `requested` parts; returns the number of parts.
    private func layOut(_ premasked: inout PremaskedMessages, count: Int, parts requested: Int) -> Int {
        // Parts of fewer than a few hundred messages cost more to hand out than they save.
        let partCount = max(1, min(requested, count / 256, 64))
        premasked.count = count
        premasked.partSize = max(1, (count + partCount - 1) / partCount)
        while premasked.parts.count < partCount { premasked.parts.append(.init()) }
        return partCount
    }

    /// Masks messages `0..<count` (`message(i)` gives the bytes of message `i`) in up to `parts` parts run
    /// concurrently, replacing what `premasked` held. `message` is called from several threads at once; the bytes
    /// must stay valid until the miner has taken the messages.
    public func premask(_ premasked: inout PremaskedMessages, count: Int, parts requested: Int,
                        message: (Int) -> UnsafeRawBufferPointer) {
        let maxTokens = max(configuration.maxTokens, 1)
        let partCount = layOut(&premasked, count: count, parts: requested)
        let partSize = premasked.partSize
        withoutActuallyEscaping(message) { message in
            premasked.parts.withUnsafeMutableBufferPointer { buffer in
                // Each part touches only its own buffers; the closure is shared for the duration of the call.
                nonisolated(unsafe) let parts = buffer
                nonisolated(unsafe) let message = message
                let work = { (k: Int) in parts[k].mask(k, partSize: partSize, count: count, maxTokens: maxTokens, message) }
                if partCount == 1 {
                    work(0)
                } else {
                    nonisolated(unsafe) let run = work
                    DispatchQueue.concurrentPerform(iterations: partCount) { run($0) }
                }
            }
        }
    }

    /// Masks and groups messages `0..<count` (`message(i)` gives the bytes of message `i`): the same as
    /// ``add(_:premasked:at:parameterRanges:)`` on every message in order after
    /// ``premask(_:count:parts:message:)``, but the grouping overlaps the masking — a part is grouped as soon as it
    /// and the parts before it are masked, while the other cores mask the parts after it.
    ///
    /// `assigned(i, assignment, &parameterRanges)` is called for every message in order, right after the ranges of
    /// its values were appended to `parameterRanges`. It may be called from different threads, but never from two at once, and
    /// every call has returned when this method returns. `message` is called from several threads at once.
    public mutating func mine(_ premasked: inout PremaskedMessages, count: Int, parts requested: Int,
                              message: (Int) -> UnsafeRawBufferPointer, parameterRanges: inout [Range<Int>],
                              assigned: (_ index: Int, _ assignment: Assignment, _ parameterRanges: inout [Range<Int>]) -> Void) {
        let maxTokens = max(configuration.maxTokens, 1)
        let partCount = layOut(&premasked, count: count, parts: requested)
        let partSize = premasked.partSize
        guard partCount > 1 else {
            premask(&premasked, count: count, parts: 1, message: message)
            for i in 0..<count {
                let a = add(message(i), premasked: premasked, at: i, parameterRanges: &parameterRanges)
                assigned(i, a, &parameterRanges)
            }
            return
        }
        let progress = BatchProgress()
        withoutActuallyEscaping(message) { message in
            withoutActuallyEscaping(assigned) { assigned in
                withUnsafeMutablePointer(to: &self) { miner in
                    withUnsafeMutablePointer(to: &parameterRanges) { ranges in
                        premasked.parts.withUnsafeMutableBufferPointer { buffer in
                            // Parts are masked by whichever worker claims them, each touching only its own
                            // part; the grouping (the miner, the ranges, `assigned`) is done by one worker at a
                            // time, holding `progress.grouper`.
                            nonisolated(unsafe) let parts = buffer
                            nonisolated(unsafe) let message = message
                            nonisolated(unsafe) let assigned = assigned
                            nonisolated(unsafe) let miner = miner
                            nonisolated(unsafe) let ranges = ranges
                            let mask = { (k: Int) in
                                parts[k].mask(k, partSize: partSize, count: count, maxTokens: maxTokens, message)
                            }
                            let group = { (k: Int) in
                                for i in (k * partSize)..<min(count, (k + 1) * partSize) {
                                    let part = parts.baseAddress! + k
                                    let a = miner.pointee.add(message(i), loading: {
                                        PremaskedMessages.Part.load(i - k * partSize, of: part, into: &$0)
                                    }, parameterRanges: &ranges.pointee)
                                    assigned(i, a, &ranges.pointee)
                                }
                            }
                            nonisolated(unsafe) let run = { progress.work(parts: partCount, mask: mask, group: group) }
                            DispatchQueue.concurrentPerform(iterations: min(partCount, 8)) { _ in run() }
                            // Every part is grouped by the time the workers are done (see `BatchProgress`);
                            // this only guards that reasoning.
                            progress.work(parts: partCount, mask: mask, group: group)
                        }
                    }
                }
            }
        }
    }
}

/// Who masks and who groups which part of a batch, shared by the workers of ``TemplateMiner/mine(_:count:parts:message:parameterRanges:assigned:)``.
///
/// A worker groups the next part when it is masked and no one else groups (the grouping is the critical path);
/// otherwise it claims the next part to mask; with nothing left to claim it leaves. Nothing is lost when a worker
/// leaves: a worker that masks a part then tries to group it, and a grouper that lets go re-checks whether the next
/// part became ready meanwhile (all atomics are sequentially consistent, so a part marked masked before a failed
/// attempt to group is seen by the re-check).
final class BatchProgress: Sendable {
    private let nextToMask = Atomic<Int>(0)
    private let masked = Atomic<UInt64>(0)
    private let nextToGroup = Atomic<Int>(0)
    private let grouper = Atomic<Bool>(false)

    private func isMasked(_ k: Int) -> Bool { masked.load(ordering: .sequentiallyConsistent) & (1 << UInt64(k)) != 0 }

    func work(parts: Int, mask: (Int) -> Void, group: (Int) -> Void) {
        while true {
            if tryGrouping(parts: parts, group) { continue }
            let k = nextToMask.wrappingAdd(1, ordering: .sequentiallyConsistent).oldValue
            guard k < parts else { return }
            mask(k)
            masked.bitwiseOr(1 << UInt64(k), ordering: .sequentiallyConsistent)
        }
    }

    /// Groups the parts that are ready, in order, if no one else does; returns whether it grouped any.
    private func tryGrouping(parts: Int, _ group: (Int) -> Void) -> Bool {
        var grouped = false
        while true {
            let next = nextToGroup.load(ordering: .sequentiallyConsistent)
            guard next < parts, isMasked(next),
                  grouper.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged
            else { return grouped }
            var k = nextToGroup.load(ordering: .sequentiallyConsistent)
            while k < parts && isMasked(k) {
                group(k)
                k += 1
                nextToGroup.store(k, ordering: .sequentiallyConsistent)
                grouped = true
            }
            grouper.store(false, ordering: .sequentiallyConsistent)
            // Loop: the next part may have been masked while this worker held the grouping.
        }
    }
}

extension PremaskedMessages.Part {
    /// Masks part `k` of a batch: messages `k * partSize ..< min(count, (k + 1) * partSize)`.
    mutating func mask(_ k: Int, partSize: Int, count: Int, maxTokens: Int, _ message: (Int) -> UnsafeRawBufferPointer) {
        let first = k * partSize
        reset(first: first)
        for i in first..<min(count, first + partSize) { append(message(i), maxTokens: maxTokens) }
    }
}
