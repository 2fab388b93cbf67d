import Foundation
import Testing
import TrailwatchTestSupport
@testable import TrailwatchHTTP

/// gzip bytes made by the system's gzip (a real encoder, not ours).
func gzipped(_ data: [UInt8]) throws -> [UInt8] {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["gzip", "-c"]
    let input = Pipe(), output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    try launchProcess(process)
    let writer = Thread { input.fileHandleForWriting.write(Data(data)); try? input.fileHandleForWriting.close() }
    writer.start()
    let result = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Array(result)
}

@Suite("Content-Encoding: gzip request bodies")
struct ContentEncodingTests {
    @Test("inflates gzip and concatenated members; refuses bombs, truncation and garbage")
    func gunzip() throws {
        let text = Array(String(repeating: "PutMetricData ", count: 2000).utf8)
        let packed = try gzipped(text)
        #expect(try ContentEncoding.gunzip(packed, limit: 1 << 20) == text)
        #expect(try ContentEncoding.gunzip(packed + packed, limit: 1 << 20) == text + text)
        // 4 MB of zeros packs into a few KB: refused at a 1 MB limit without inflating it all.
        let bomb = try gzipped([UInt8](repeating: 0, count: 4 << 20))
        #expect(bomb.count < 10_000)
        #expect(throws: ContentEncoding.TooLarge.self) { try ContentEncoding.gunzip(bomb, limit: 1 << 20) }
        for cut in [1, 10, packed.count / 2, packed.count - 1] {
            #expect(throws: (any Error).self) { try ContentEncoding.gunzip(Array(packed[..<cut]), limit: 1 << 20) }
        }
        #expect(throws: (any Error).self) { try ContentEncoding.gunzip(Array("not gzip at all".utf8), limit: 1 << 20) }
        #expect(throws: (any Error).self) { try ContentEncoding.gunzip(packed + [1, 2, 3], limit: 1 << 20) }
    }
}
