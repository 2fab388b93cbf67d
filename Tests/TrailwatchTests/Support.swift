import Foundation
import Testing

/// Repository paths for tests.
enum TestPaths {
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let sharedData: URL = repositoryRoot.deletingLastPathComponent().appendingPathComponent("shared/data")
    static var hasSharedData: Bool { FileManager.default.fileExists(atPath: sharedData.path) }
}

/// A scratch directory removed when the value goes away.
final class TemporaryDirectory: @unchecked Sendable {   // immutable: one path
    let url: URL
    var path: String { url.path }

    init() {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("trailwatch-test-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { url.appendingPathComponent(name).path }

    func write(_ name: String, _ text: String) -> String {
        let path = file(name)
        try! FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    func write(_ name: String, bytes: [UInt8]) -> String {
        let path = file(name)
        FileManager.default.createFile(atPath: path, contents: Data(bytes))
        return path
    }

    func read(_ name: String) -> String {
        String(decoding: FileManager.default.contents(atPath: file(name)) ?? Data(), as: UTF8.self)
    }

    deinit { try? FileManager.default.removeItem(at: url) }
}
