import Foundation
import Testing

/// Repository paths for tests.
public enum TestPaths {
    public static let repositoryRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static let sharedData: URL = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/data")
    public static var hasSharedData: Bool { FileManager.default.fileExists(atPath: sharedData.path) }
}

/// A scratch directory removed when the value goes away.
public final class TemporaryDirectory: @unchecked Sendable {   // immutable: one path
    public let url: URL
    public var path: String { url.path }

    public init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("trailwatch-test-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    public func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    public func write(_ name: String, _ text: String) -> String {
        let path = file(name)
        try! FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        precondition(FileManager.default.createFile(atPath: path, contents: Data(text.utf8)), "cannot write \(path)")
        return path
    }

    public func write(_ name: String, bytes: [UInt8]) -> String {
        let path = file(name)
        precondition(FileManager.default.createFile(atPath: path, contents: Data(bytes)), "cannot write \(path)")
        return path
    }

    public func read(_ name: String) -> String {
        String(decoding: FileManager.default.contents(atPath: file(name)) ?? Data(), as: UTF8.self)
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}

/// Launches `process` with `Process.run()`, one launch at a time in the whole test process:
/// Foundation's `Process.run()` on Linux crashed (a bad read in its memcpy) when suites running
/// in parallel launched child processes at the same moment.
public func launchProcess(_ process: Process) throws {
    processLaunchLock.lock()
    defer { processLaunchLock.unlock() }
    try process.run()
}

private let processLaunchLock = NSLock()
