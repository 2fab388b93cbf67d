import Foundation

extension AlarmDefinition {
    /// The definition as canonical JSON (sorted keys): saved alarm state is reused only by a
    /// definition with the same fingerprint, since a changed one would not mean the same thing.
    public var fingerprint: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }
}
