#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// A real HTTP/1.1 server on 127.0.0.1 for webhook tests: each request gets the reply the
/// script gives for its number (0-based) — a status, or a hang longer than the client waits.
final class TestHTTPServer: @unchecked Sendable {
    enum Reply: Sendable {
        case status(Int)
        /// Reads the request, then waits this long before answering 200.
        case hang(Double)
    }

    struct Request: Sendable {
        var number: Int
        var headers: [String: String]
        var body: Data
        var reply: Reply
    }

    let port: Int
    private let listener: Int32
    private let script: @Sendable (Int) -> Reply
    private let state = Mutex<(count: Int, requests: [Request])>((0, []))
    private let stopped = Atomic<Bool>(false)

    init(script: @escaping @Sendable (Int) -> Reply) throws {
        self.script = script
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        self.listener = listener
        var yes: Int32 = 1
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(listener, 16) == 0 else { throw POSIXError(.EADDRINUSE) }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
        _ = port
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    var url: String { "http://127.0.0.1:\(port)/hook" }

    /// Every request received, in order.
    var requests: [Request] { state.withLock { $0.requests } }

    /// Requests answered with a 2xx status (what the receiver accepted).
    var accepted: [Request] {
        requests.filter { if case .status(let code) = $0.reply { return (200..<300).contains(code) } else { return false } }
    }

    func stop() {
        stopped.store(true, ordering: .relaxed)
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    private func acceptLoop() {
        while !stopped.load(ordering: .relaxed) {
            let client = accept(listener, nil, nil)
            if client < 0 { if stopped.load(ordering: .relaxed) { return }; continue }
            Thread.detachNewThread { [self] in serve(client) }
        }
    }

    private func serve(_ client: Int32) {
        defer { close(client) }
        var data = Data()
        var buffer = [UInt8](repeating: 0, count: 65536)
        var headerEnd: Range<Data.Index>?
        while headerEnd == nil {
            let n = read(client, &buffer, buffer.count)
            if n <= 0 { return }
            data.append(contentsOf: buffer[0..<n])
            headerEnd = data.range(of: Data("\r\n\r\n".utf8))
        }
        let head = String(decoding: data[..<headerEnd!.lowerBound], as: UTF8.self)
        var headers: [String: String] = [:]
        for line in head.split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        var body = data[headerEnd!.upperBound...]
        while body.count < length {
            let n = read(client, &buffer, buffer.count)
            if n <= 0 { break }
            body.append(contentsOf: buffer[0..<n])
        }
        let number = state.withLock { s in defer { s.count += 1 }; return s.count }
        let reply = script(number)
        state.withLock { $0.requests.append(Request(number: number, headers: headers, body: Data(body), reply: reply)) }
        let status: Int
        switch reply {
        case .status(let code): status = code
        case .hang(let seconds):
            Thread.sleep(forTimeInterval: seconds)
            status = 200
        }
        let response = "HTTP/1.1 \(status) X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        _ = response.withCString { send(client, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
    }
}
