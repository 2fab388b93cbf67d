/// Per-minute rate statistics over a sliding window of whole hours, in bounded memory.
///
/// Each hour of the window keeps the sum and the sum of squares of its per-minute counts and how many of its
/// minutes were *excluded* (minutes that belonged to an insight episode, so the anomaly does not inflate its own
/// baseline). Minutes without any call are not stored: they are counted from elapsed time, which is what makes the
/// average a true per-minute mean including quiet minutes.
struct RollingBaseline: Sendable, Codable, Equatable {
    struct Hour: Sendable, Codable, Equatable {
        var hour: Int64 = -1
        var sum: Double = 0
        var sumOfSquares: Double = 0
        var excludedMinutes: Int32 = 0
    }

    private(set) var hours: [Hour]
    private(set) var sum: Double = 0
    private(set) var sumOfSquares: Double = 0
    private(set) var excludedMinutes: Int = 0
    /// Latest hour the window has been advanced to.
    private(set) var currentHour: Int64 = Int64.min

    init(windowHours: Int) {
        hours = Array(repeating: Hour(), count: max(windowHours, 1))
    }

    var windowHours: Int { hours.count }

    /// Moves the window so that it ends with `hour`, expiring hours that fall out of it.
    mutating func advance(toHour hour: Int64) {
        guard hour > currentHour else { return }
        let size = Int64(hours.count)
        let first = currentHour == Int64.min ? hour - size + 1 : max(currentHour + 1, hour - size + 1)
        var h = first
        while h <= hour {
            let slot = Int(((h % size) + size) % size)
            let old = hours[slot]
            if old.hour != h {
                if old.hour >= 0 {
                    sum -= old.sum
                    sumOfSquares -= old.sumOfSquares
                    excludedMinutes -= Int(old.excludedMinutes)
                }
                hours[slot] = Hour(hour: h)
            }
            h += 1
        }
        currentHour = hour
    }

    /// Adds one normal minute's count (the window must have been advanced to the minute's hour).
    mutating func add(count: Double, hour: Int64) {
        guard count != 0, let slot = slot(hour) else { return }
        hours[slot].sum += count
        hours[slot].sumOfSquares += count * count
        sum += count
        sumOfSquares += count * count
    }

    /// Marks one minute as excluded from the baseline (it was part of an insight).
    mutating func exclude(hour: Int64) {
        guard let slot = slot(hour) else { return }
        hours[slot].excludedMinutes += 1
        excludedMinutes += 1
    }

    private func slot(_ hour: Int64) -> Int? {
        let size = Int64(hours.count)
        let s = Int(((hour % size) + size) % size)
        return hours[s].hour == hour ? s : nil
    }

    /// Mean and standard deviation of the per-minute count over `minutes` minutes of history (quiet minutes
    /// included, excluded minutes removed).
    func statistics(historyMinutes minutes: Int) -> (mean: Double, deviation: Double, minutes: Int) {
        let n = minutes - excludedMinutes
        guard n > 0 else { return (0, 0, 0) }
        let mean = max(sum, 0) / Double(n)
        let variance = max(sumOfSquares / Double(n) - mean * mean, 0)
        return (mean, variance.squareRoot(), n)
    }
}
