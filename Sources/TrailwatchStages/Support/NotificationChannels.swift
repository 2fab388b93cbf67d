#if canImport(Glibc)
import Glibc
#endif
import Foundation
import AsyncHTTPClient

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
        var headers: [(String, String)] = [("Content-Type", "application/json"), ("User-Agent", "trailwatch"),
                                           // Receivers that keep idempotency keys can drop the duplicates a crash may cause.
                                           ("Idempotency-Key", notification.dedupeKey)]
        for (name, value) in self.headers {
            headers.removeAll { $0.0.lowercased() == name.lowercased() }
            headers.append((name, value))
        }
        let body = Array(format == .slack ? notification.slackBody() : notification.jsonBody())
        do {
            // One shared client (async-http-client): connections are pooled and kept alive between deliveries.
            let answer = try await HTTPClientStack.send(HTTPClientStack.shared, url: url.absoluteString, headers: headers, body: body,
                                                        timeout: timeout, limit: 4096)
            switch answer.status {
            case 200..<300: return .delivered
            case 408, 429, 500...: return .retry("HTTP \(answer.status)", after: answer.retryAfter)
            default: return .refused("HTTP \(answer.status)")
            }
        } catch let error as HTTPClientError where error == .deadlineExceeded || error == .readTimeout || error == .connectTimeout {
            return .retry("timed out after \(timeout)s", after: nil)
        } catch {
            // Never the URL: it may hold a secret.
            return .retry("request failed (\(Self.describe(error)))", after: nil)
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return "\(error)" }
        return String(describing: type(of: error)) + ": \(error)"
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
