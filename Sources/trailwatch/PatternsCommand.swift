import ArgumentParser
import Foundation
import PatternMining
import TrailwatchArchive

/// `trailwatch patterns`: mine log templates from files, like Logs Insights' `pattern` command.
struct PatternsCommand: ParsableCommand {
    @OptionGroup var logging: LoggingOptions

    static let configuration = CommandConfiguration(
        commandName: "patterns",
        abstract: "Mine log templates from files (plain, .gz, .zst) and print them with counts.",
        discussion: "With --assign, prints one `TEMPLATE_ID<TAB>TEMPLATE` line per input line instead (for evaluation harnesses).")

    @Argument(help: "Log files; - reads standard input.")
    var files: [String] = ["-"]

    @Option(name: [.customLong("format"), .customLong("output")], help: "Output format: text or json.")
    var format: OutputFormat = .text

    @Flag(help: "Print each line's template instead of the summary.")
    var assign = false

    @Option(help: "Most templates kept (memory bound).")
    var maxTemplates = 10_000

    @Option(help: "How many templates to list (0: all).")
    var limit = 50

    func run() throws {
        var miner = TemplateMiner(configuration: .init(maxTemplates: maxTemplates))
        var counts: [UInt64: Int] = [:]
        var samples: [UInt64: String] = [:]
        var output = FileHandle.standardOutput
        var pending = ""
        func handle(_ line: UnsafeRawBufferPointer) {
            let mined = miner.add(line)
            counts[mined.templateID, default: 0] += 1
            if samples[mined.templateID] == nil { samples[mined.templateID] = String(decoding: line, as: UTF8.self) }
            if assign {
                pending += mined.templateIDString + "\t" + mined.template + "\n"
                if pending.utf8.count > 1 << 16 { output.write(Data(pending.utf8)); pending = "" }
            }
        }
        for file in files {
            if file == "-" {
                while let line = readLine(strippingNewline: true) {
                    var copy = line
                    copy.withUTF8 { handle(UnsafeRawBufferPointer($0)) }
                }
            } else {
                do { try ArchiveReader(path: file).lines(handle) } catch {
                    CLILog.error("\(file): \(error)")
                    throw ExitStatus.failure
                }
            }
        }
        if assign {
            output.write(Data(pending.utf8))
            return
        }
        let total = counts.values.reduce(0, +)
        let ranked = counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        let shown = limit > 0 ? Array(ranked.prefix(limit)) : ranked
        switch format {
        case .json:
            let rows: [[String: Any]] = shown.map { id, count in
                ["templateId": TemplateMiner.idString(id), "template": miner.template(id: id)?.text ?? "",
                 "count": count, "ratio": total > 0 ? Double(count) / Double(total) : 0, "sample": samples[id] ?? ""]
            }
            let data = try JSONSerialization.data(withJSONObject: ["lines": total, "templates": counts.count, "patterns": rows],
                                                  options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        case .text:
            print("\(total) lines, \(counts.count) templates")
            for (id, count) in shown {
                print(String(count).leftPadded(8) + "  " + TemplateMiner.idString(id) + "  " + (miner.template(id: id)?.text ?? ""))
            }
        }
        _ = output
        output = FileHandle.standardOutput
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
