extension AnomalyBandModel {
    /// The trained values of the training window grouped by their slot of a seasonal cycle (hour of the day or of the
    /// week), each slot's in ascending order — kept between refits, so the hourly refit reads the seasonal profile's
    /// slot medians off sorted arrays instead of selecting them afresh from two weeks of residuals.
    ///
    /// Successive refits' windows overlap but for the hour that arrived and the hour that aged out (both mostly in one
    /// slot), so the window is updated by binary search, as ``SortedWindow`` does. Whatever else changes the history's
    /// values (a level shift trains a run's values as they came) must ``invalidate()`` it; a value that cannot be
    /// found on the way out, or a jump of the window, rebuilds it.
    ///
    /// Why the medians come out the same, to the bit, as ``slotMedians(_:_:slots:)`` over the residuals: where a
    /// residual is the value minus one constant (no trend, no level shift inside the window), subtracting it is a
    /// monotone map in floating point too (rounding is monotone), so the k-th smallest residual is the k-th smallest
    /// value minus the constant, and the median interpolates between the same two order statistics as
    /// ``Stats/quantile(inPlace:_:)`` does. Order statistics are unique Doubles unless +0 and −0 tie, so the window
    /// counts its negative zeros and the caller takes the straightforward path while there are any.
    struct SlotWindow: Sendable {
        let slots: Int
        /// Per slot, the values of the window in ascending order.
        private(set) var sorted: [[Double]]
        /// The window, as indices counted from the first datapoint the model held (`dropped` + index in the history).
        private var from = 0
        private var to = 0
        /// Whether `sorted` holds exactly the history's values in `from..<to`.
        private var valid = false
        /// How many of the window's values are −0.0.
        private(set) var negativeZeros = 0

        init(slots: Int) {
            self.slots = slots
            sorted = Array(repeating: [], count: slots)
        }

        /// The history's values changed other than by arriving or ageing out: rebuild at the next update.
        mutating func invalidate() { valid = false }

        /// Brings the window to the values from `start` on, `dropped` datapoints having left the history's front;
        /// `slotOf` holds each datapoint's slot (below `slots`), parallel to `values`.
        mutating func update(values: [Double], slotOf: [UInt8], from start: Int, dropped: Int) {
            let newFrom = dropped + start, newTo = dropped + values.count
            let changes = (newFrom - from) + (newTo - to)
            var updated = valid && from >= dropped && newFrom >= from && newTo >= to && newFrom <= to
                && changes <= 64 + (to - from) / 4
            if updated {
                for i in from..<newFrom where !remove(values[i - dropped], slot: Int(slotOf[i - dropped])) {
                    updated = false
                    break
                }
            }
            if updated {
                for i in to..<newTo { insert(values[i - dropped], slot: Int(slotOf[i - dropped])) }
            } else {
                rebuild(values: values, slotOf: slotOf, from: start)
            }
            from = newFrom
            to = newTo
            valid = true
        }

        private mutating func rebuild(values: [Double], slotOf: [UInt8], from start: Int) {
            for s in 0..<slots { sorted[s].removeAll(keepingCapacity: true) }
            negativeZeros = 0
            for i in start..<values.count {
                sorted[Int(slotOf[i])].append(values[i])
                if Self.isNegativeZero(values[i]) { negativeZeros += 1 }
            }
            for s in 0..<slots { sorted[s].sort() }
        }

        @inline(__always)
        static func isNegativeZero(_ v: Double) -> Bool { v == 0 && v.sign == .minus }

        private mutating func insert(_ value: Double, slot: Int) {
            let at = AnomalyBandModel.lowerBound(sorted[slot], value)
            sorted[slot].insert(value, at: at)
            if Self.isNegativeZero(value) { negativeZeros += 1 }
        }

        /// Removes one value equal to `value` (the same Double: ±0 are told apart) from `slot`; false when there is none.
        private mutating func remove(_ value: Double, slot: Int) -> Bool {
            var i = AnomalyBandModel.lowerBound(sorted[slot], value)
            while i < sorted[slot].count && sorted[slot][i] == value {
                if sorted[slot][i].sign == value.sign {
                    sorted[slot].remove(at: i)
                    if Self.isNegativeZero(value) { negativeZeros -= 1 }
                    return true
                }
                i += 1
            }
            return false
        }

        /// The median of each slot's values minus `offset` (0 where a slot has none), equal to
        /// ``slotMedians(_:_:slots:)`` over residuals `value - offset`.
        func medians(minus offset: Double) -> [Double] {
            var medians = [Double](repeating: 0, count: slots)
            for s in 0..<slots where !sorted[s].isEmpty {
                medians[s] = sorted[s].withUnsafeBufferPointer { a in
                    Stats.median(count: a.count) { a[$0] - offset }
                }
            }
            return medians
        }

        /// The median of each slot's values minus `offset` leaving out `excluded` (values of the window, with their
        /// slots: the newest day, for the out-of-sample trial profile) — each slot's remaining order statistics found
        /// by walking its sorted values past the excluded ones (equal values are the same Double: no negative zeros).
        func medians(minus offset: Double, excluding excluded: ArraySlice<Double>, slotOf: ArraySlice<UInt8>) -> [Double] {
            // The excluded values grouped by slot, each group then sorted (a few per slot).
            let (starts, byslot) = AnomalyBandModel.groupedBySlot(excluded, slotOf, slots: slots)
            var grouped = byslot
            var medians = [Double](repeating: 0, count: slots)
            grouped.withUnsafeMutableBufferPointer { grouped in
                for s in 0..<slots {
                    var out = UnsafeMutableBufferPointer(rebasing: grouped[starts[s]..<starts[s + 1]])
                    out.sort()
                    let count = sorted[s].count - out.count
                    guard count > 0 else { continue }
                    medians[s] = sorted[s].withUnsafeBufferPointer { all in
                        let position = 0.5 * Double(count - 1)
                        let below = Int(position.rounded(.down))
                        // The order statistics `below` and `below + 1` of the slot's values without the excluded ones
                        // (a sorted subset): a merge-like walk that skips each excluded value where it meets it.
                        var kept = 0, skip = 0
                        var low = 0.0, high = 0.0
                        for v in all {
                            if skip < out.count && v == out[skip] {
                                skip += 1
                                continue
                            }
                            if kept == below { low = v } else if kept == below + 1 { high = v; break }
                            kept += 1
                        }
                        return Stats.median(count: count) { $0 == below ? low - offset : high - offset }
                    }
                }
            }
            return medians
        }
    }
}
