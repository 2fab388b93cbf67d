#if canImport(Glibc)
import Glibc
#endif
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// How one delivery attempt ended.
enum DeliveryOutcome: Equatable {
    case delivered
    /// Worth trying again (timeouts, connection errors, 5xx, 408, 429); `after` is the
    /// receiver's Retry-After, when it gave one.
    case retry(String, after: Double?)
    /// Will never succeed as is (other 4xx): the notification is set aside.
    case refused(String)
}

/// Where notifications go.
protocol NotificationChannel: Sendable {
    func deliver(_ notification: Notification) async -> DeliveryOutcome
}

/// POSTs the notification as JSON (or Slack's `{"text": …}`). TLS is verified against the
/// system's trust store; there is no switch to turn verification off.
struct WebhookChannel: NotificationChannel {
    enum Format: String, Sendable { case json, slack }

    let url: URL
    let format: Format
    let headers: [(String, String)]
    let timeout: Double

    func deliver(_ notification: Notification) async -> DeliveryOutcome {
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.setValue("trailwatch", forHTTPHeaderField: "User-Agent")
        // Receivers that keep idempotency keys can drop the duplicates a crash may cause.
        request.setValue(notification.dedupeKey, forHTTPHeaderField: "Idempotency-Key")
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        request.httpBody = format == .slack ? notification.slackBody() : notification.jsonBody()
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.timeoutIntervalForResource = timeout
        let session = URLSession(configuration: configuration)
        defer { session.finishTasksAndInvalidate() }
        do {
            let (_, response) = try await session.data(for: request)
            guard let http = response as? HTTPURLResponse else { return .retry("no HTTP response", after: nil) }
            switch http.statusCode {
            case 200..<300: return .delivered
            case 408, 429, 500...:
                let retryAfter = (http.value(forHTTPHeaderField: "Retry-After")).flatMap(Double.init)
                return .retry("HTTP \(http.statusCode)", after: retryAfter)
            default: return .refused("HTTP \(http.statusCode)")
            }
        } catch {
            let code = (error as NSError).code
            return .retry(code == NSURLErrorTimedOut ? "timed out after \(timeout)s" : "request failed (\((error as NSError).localizedDescription))", after: nil)
        }
    }

    /// Where it posts, without the path or query (webhook URLs often embed secrets).
    var displayName: String { "\(url.scheme ?? "https")://\(url.host ?? "?")\(url.port.map { ":\($0)" } ?? "")" }
}

/// Runs a program (an argv list: no shell ever sees it) with the notification JSON on stdin.
/// Arguments may use `{subject}`, `{state}`, `{kind}`, `{time}`, `{summary}`; each expands inside its own argument.
struct CommandChannel: NotificationChannel {
    let argv: [String]
    let timeout: Double

    func deliver(_ notification: Notification) async -> DeliveryOutcome {
        let arguments = argv.map { notification.expand($0) }
        let input = notification.jsonBody() + Data("\n".utf8)  // one line: line-oriented programs (tee -a into .jsonl) see one record each
        return await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(returning: Self.run(arguments, input: input, timeout: timeout))
            }
        }
    }

    static func resolve(_ program: String) -> String? {
        if program.contains("/") { return access(program, X_OK) == 0 ? program : nil }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") where access("\(directory)/\(program)", X_OK) == 0 {
            return "\(directory)/\(program)"
        }
        return nil
    }

    static func run(_ arguments: [String], input: Data, timeout: Double) -> DeliveryOutcome {
        guard let executable = resolve(arguments[0]) else { return .retry("\(arguments[0]): not found or not executable", after: nil) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = Array(arguments.dropFirst())
        let stdin = Pipe()
        process.standardInput = stdin
        process.standardOutput = FileHandle.standardError
        do { try process.run() } catch {
            return .retry("\(arguments[0]): \(error.localizedDescription)", after: nil)
        }
        // A program that does not read its input must not block us: write, then close.
        signal(SIGPIPE, SIG_IGN)
        try? stdin.fileHandleForWriting.write(contentsOf: input)
        try? stdin.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning {
            process.terminate()
            usleep(200_000)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            return .retry("\(arguments[0]): timed out after \(timeout)s", after: nil)
        }
        process.waitUntilExit()
        return process.terminationStatus == 0 ? .delivered : .retry("\(arguments[0]) exited with status \(process.terminationStatus)", after: nil)
    }
}

/// One line per notification on standard output.
struct ConsoleChannel: NotificationChannel {
    func deliver(_ notification: Notification) async -> DeliveryOutcome {
        FileHandle.standardOutput.write(Data((notification.line + "\n").utf8))
        return .delivered
    }
}
