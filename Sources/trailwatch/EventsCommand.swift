import ArgumentParser
import Foundation
import TrailwatchCore
import TrailwatchStore

/// `trailwatch events`: CloudTrail event history from the store, like `aws cloudtrail lookup-events`.
struct EventsCommand: AsyncParsableCommand {
    @OptionGroup var logging: LoggingOptions

    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "Look up stored CloudTrail events by one attribute, newest first (like aws cloudtrail lookup-events).")

    @Argument(help: "The store: an SQLite file (the store sink's path) or a postgres:// URL.")
    var store: String

    @Option(help: "ATTRIBUTE=VALUE with ATTRIBUTE one of \(StoreConventions.lookupAttributes.joined(separator: ", ")).")
    var lookup: String

    @Option(help: "Earliest event time (RFC 3339, e.g. 2026-11-24T00:00:00Z).")
    var start: String?

    @Option(help: "Latest event time, exclusive (RFC 3339).")
    var end: String?

    @Option(help: "Most events to return.")
    var maxResults = 50

    @Option(name: [.customLong("format"), .customLong("output")], help: "Output format: text or json (the records as CloudTrail writes them).")
    var format: OutputFormat = .text

    func run() async throws {
        let parts = lookup.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, StoreConventions.lookupAttributes.contains(parts[0]) else {
            throw ValidationError("--lookup: expected ATTRIBUTE=VALUE with ATTRIBUTE one of \(StoreConventions.lookupAttributes.joined(separator: ", "))")
        }
        func time(_ text: String?, _ name: String) throws -> Int64? {
            guard let text else { return nil }
            guard let ms = Array(text.utf8).withUnsafeBytes({ Timestamps.parseISO8601($0) }) else {
                throw ValidationError("--\(name): '\(text)' is not an RFC 3339 time")
            }
            return ms
        }
        let request = LookupEventsRequest(attribute: parts[0], value: parts[1], start: try time(start, "start"),
                                          end: try time(end, "end"), maxResults: max(1, maxResults))
        let opened = try await StoreCommandSupport.open(store)
        let records: [String]
        do {
            records = try await opened.lookupEvents(request).records
            await opened.close()
        } catch {
            await opened.close()
            CLILog.error("\(error)")
            throw ExitStatus.failure
        }
        switch format {
        case .json:
            print("{\"Records\":[" + records.joined(separator: ",") + "]}")
        case .text:
            var rows = [["EVENT TIME", "EVENT NAME", "USER NAME", "EVENT SOURCE", "EVENT ID"]]
            for record in records {
                let object = (try? JSONSerialization.jsonObject(with: Data(record.utf8))) as? [String: Any] ?? [:]
                let identity = object["userIdentity"] as? [String: Any] ?? [:]
                let issuer = ((identity["sessionContext"] as? [String: Any])?["sessionIssuer"] as? [String: Any])?["userName"] as? String
                let user = identity["userName"] as? String ?? issuer ?? (identity["arn"] as? String)?.split(separator: "/").last.map(String.init) ?? ""
                rows.append([object["eventTime"] as? String ?? "", object["eventName"] as? String ?? "", user,
                             object["eventSource"] as? String ?? "", object["eventID"] as? String ?? ""])
            }
            print(rows.map { $0.joined(separator: "\t") }.joined(separator: "\n"))
        }
    }
}
