import Dispatch

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
            tokens.append(contentsOf: masker.tokens)
            segments.append(contentsOf: masker.segments)
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
    /// Masks messages `0..<count` (`message(i)` gives the bytes of message `i`) in up to `parts` parts run
    /// concurrently, replacing what `premasked` held. `message` is called from several threads at once; the bytes
    /// must stay valid until the miner has taken the messages.
    public func premask(_ premasked: inout PremaskedMessages, count: Int, parts requested: Int,
                        message: (Int) -> UnsafeRawBufferPointer) {
        let maxTokens = max(configuration.maxTokens, 1)
        // Parts of fewer than a few hundred messages cost more to hand out than they save.
        let partCount = max(1, min(requested, count / 256))
        let partSize = max(1, (count + partCount - 1) / partCount)
        premasked.count = count
        premasked.partSize = partSize
        while premasked.parts.count < partCount { premasked.parts.append(.init()) }
        withoutActuallyEscaping(message) { message in
            premasked.parts.withUnsafeMutableBufferPointer { buffer in
                // Each part touches only its own buffers; the closure is shared for the duration of the call.
                nonisolated(unsafe) let parts = buffer
                nonisolated(unsafe) let message = message
                let work = { (k: Int) in
                    let first = k * partSize
                    parts[k].reset(first: first)
                    for i in first..<min(count, first + partSize) { parts[k].append(message(i), maxTokens: maxTokens) }
                }
                if partCount == 1 {
                    work(0)
                } else {
                    nonisolated(unsafe) let run = work
                    DispatchQueue.concurrentPerform(iterations: partCount) { run($0) }
                }
            }
        }
    }
}
