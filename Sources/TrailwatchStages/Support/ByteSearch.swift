#if canImport(Glibc)
import Glibc
#endif
import TrailwatchCore
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

/// A POSIX extended regular expression matched directly against message bytes.
final class PosixRegex {
    private var regex = regex_t()

    /// Whether ``firstGroup(in:)`` can report capture ranges.
    let capturesGroups: Bool

    /// Compiles `pattern`, or throws the compiler's message. `captures` keeps subexpression
    /// positions (slower; only for extracting text).
    init(_ pattern: String, captures: Bool = false) throws(PosixRegexError) {
        capturesGroups = captures
        let rc = regcomp(&regex, pattern, REG_EXTENDED | (captures ? 0 : REG_NOSUB))
        guard rc == 0 else {
            var buffer = [CChar](repeating: 0, count: 256)
            regerror(rc, &regex, &buffer, buffer.count)
            let message = String(decoding: buffer.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
            regfree(&regex)
            throw PosixRegexError(message: message)
        }
    }

    deinit { regfree(&regex) }

    func matches(_ message: UnsafeRawBufferPointer) -> Bool {
        // REG_STARTEND matches the exact byte range: no NUL terminator or copy needed.
        guard let base = message.baseAddress?.assumingMemoryBound(to: CChar.self) else {
            return regexec(&regex, "", 0, nil, 0) == 0
        }
        var range = regmatch_t(rm_so: 0, rm_eo: regoff_t(message.count))
        return regexec(&regex, base, 1, &range, REG_STARTEND) == 0
    }

    /// The byte range of the first parenthesised group (or of the whole match when the pattern has
    /// none), or nil when the message does not match.
    func firstGroup(in message: UnsafeRawBufferPointer) -> Range<Int>? {
        precondition(capturesGroups)
        guard let base = message.baseAddress?.assumingMemoryBound(to: CChar.self) else { return nil }
        var matches = [regmatch_t](repeating: regmatch_t(rm_so: 0, rm_eo: regoff_t(message.count)), count: 2)
        guard regexec(&regex, base, 2, &matches, REG_STARTEND) == 0 else { return nil }
        let group = regex.re_nsub > 0 && matches[1].rm_so >= 0 ? matches[1] : matches[0]
        return Int(group.rm_so)..<Int(group.rm_eo)
    }
}

struct PosixRegexError: Error { var message: String }
