import TrailwatchCore

/// Input acknowledgements of stages that aggregate into metric periods (`metric_filter`, `mask`):
/// each batch's claim waits until every period its samples went into has closed, then travels
/// with the datapoints of those periods, so a checkpoint never passes samples still in memory.
struct PeriodAcknowledgements {
    private var waiting: [(acks: Acknowledgements, newestPeriod: Int64?)] = []

    /// Holds a batch's claim; `newestPeriod` is the newest period it added to (nil: none).
    mutating func hold(_ acks: Acknowledgements, newestPeriod: Int64?) {
        waiting.append((acks, newestPeriod))
    }

    /// The claims of every batch whose periods all lie before `oldestOpen` (everything when nil).
    mutating func takeSettled(oldestOpen: Int64?) -> Acknowledgements {
        var ready: [AckToken] = []
        waiting.removeAll { entry in
            if let newest = entry.newestPeriod, let oldestOpen, newest >= oldestOpen { return false }
            ready.append(contentsOf: entry.acks.tokens)
            return true
        }
        return Acknowledgements(ready)
    }
}
