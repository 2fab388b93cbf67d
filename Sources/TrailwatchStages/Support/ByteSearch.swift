#if canImport(Glibc)
import Glibc
#endif
import FilterPatterns
import TrailwatchCore
import TrailwatchConfig
import LinearRegex
import CShims

/// Finds which events of a batch contain a byte string, searching the batch's storage in one
/// pass with memmem instead of once per line (lines are laid out in ascending order).
enum ByteSearch {
    /// Sets `mask[i] = true` for each event `i` whose message contains `needle`.
    static func markContaining(_ needle: [UInt8], in batch: LogBatch, mask: inout [Bool]) {
        let count = batch.count
        guard count > 0 else { return }
        if needle.isEmpty {
            for i in 0..<count { mask[i] = true }
            return
        }
        let base = UnsafeRawPointer(batch.storage.mutableBase)
        let n = needle.count
        let ascending = zip(batch.starts, batch.starts.dropFirst()).allSatisfy { $0 <= $1 }
        needle.withUnsafeBytes { needleBytes in
            guard ascending else {
                for i in 0..<count where !mask[i] {
                    let m = batch.message(i)
                    if m.count >= n, tw_memmem(m.baseAddress, m.count, needleBytes.baseAddress, n) != nil { mask[i] = true }
                }
                return
            }
            let regionEnd = Int(batch.starts[count - 1]) + Int(batch.lengths[count - 1])
            var position = Int(batch.starts[0])
            var line = 0
            while position < regionEnd, line < count {
                guard let hit = tw_memmem(base + position, regionEnd - position, needleBytes.baseAddress, n) else { break }
                let offset = base.distance(to: UnsafeRawPointer(hit))
                while line < count && Int(batch.starts[line]) + Int(batch.lengths[line]) < offset + n { line += 1 }
                guard line < count else { break }
                if Int(batch.starts[line]) <= offset {
                    mask[line] = true
                    position = Int(batch.starts[line]) + Int(batch.lengths[line])
                    line += 1
                } else {
                    // The hit straddles a line boundary: look again from inside the next line.
                    position = Int(batch.starts[line])
                }
            }
        }
    }
}

/// Compiles the regular expressions of stage settings (filter `regex`, parse, multiline and timestamp
/// patterns) with the project's linear-time engine, turning a refusal into a located setting error.
enum UserRegex {
    static let expected = "a regular expression (see Regular expressions in the README)"

    /// Stands in for a required expression until it is decoded (the empty expression always compiles).
    static let placeholder = try! RegularExpression("")

    /// A setting holding a user regular expression, compiled (and its errors located) as it decodes.
    static func setting<C: SettingsSection>(_ key: String, _ keyPath: WritableKeyPath<C, RegularExpression> & Sendable, _ doc: String) -> Setting<C> {
        .custom(key, type: "regular expression", doc, required: true, storedAt: keyPath) { config, c, key in
            config[keyPath: keyPath] = try compile(try c.decode(String.self, forKey: key), codingPath: c.codingPath + [key])
        }
    }

    static func setting<C: SettingsSection>(_ key: String, _ keyPath: WritableKeyPath<C, RegularExpression?> & Sendable, _ doc: String) -> Setting<C> {
        .custom(key, type: "regular expression", doc, storedAt: keyPath) { config, c, key in
            if let text = try c.decodeIfPresent(String.self, forKey: key) {
                config[keyPath: keyPath] = try compile(text, codingPath: c.codingPath + [key])
            }
        }
    }

    static func compile(_ pattern: String, codingPath: [any CodingKey]) throws -> RegularExpression {
        do { return try RegularExpression(pattern) } catch {
            let column = FilterPattern.column(ofByte: error.offset, in: Array(pattern.utf8))
            throw SettingError(codingPath: codingPath, message: "invalid regular expression at column \(column): \(error.message)",
                               expected: error.expected ?? expected, columnInValue: column)
        }
    }

    /// The first group's range in `message` (the whole match when the expression has no group), or nil.
    static func firstGroup(_ matcher: RegexMatcher, in message: UnsafeRawBufferPointer) -> Range<Int>? {
        guard let match = matcher.firstMatch(in: message) else { return nil }
        return matcher.groupCount > 0 ? match.range(1) : match.range
    }
}
