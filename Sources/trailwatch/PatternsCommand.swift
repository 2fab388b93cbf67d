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
        discussion: """
            With --assign, prints one `TEMPLATE_ID<TAB>TEMPLATE` line per input line instead (for evaluation \
            harnesses): the template each line belongs to once the whole input is mined (templates merged later \
            included), so the ids of the lines are kept in a temporary file, 8 bytes per line, not in memory.
            """)

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

    @Option(help: "Share of a template's constant positions a line must match to join its family (default: the miner's).")
    var similarity: Double?

    @Option(help: "Distinct plain words before a position becomes a variable (default: the miner's).")
    var distinctWords: Int?

    @Option(help: "Distinct value-shaped words before a position becomes a variable (default: the miner's).")
    var distinctValues: Int?

    @Option(help: "Least share of distinct values among a position's messages for it to become a variable; 0 turns the test off (default: the miner's).")
    var distinctShare: Double?

    func validate() throws {
        if let similarity, !(similarity > 0 && similarity <= 1) { throw ValidationError("--similarity must be in (0, 1]") }
        if let distinctWords, distinctWords < 2 { throw ValidationError("--distinct-words must be at least 2") }
        if let distinctValues, distinctValues < 2 { throw ValidationError("--distinct-values must be at least 2") }
        if let distinctShare, !(0...1).contains(distinctShare) { throw ValidationError("--distinct-share must be in [0, 1]") }
        if maxTemplates < 1 { throw ValidationError("--max-templates must be at least 1") }
    }

    /// Lines per chunk masked at once, and parts of a chunk handed to the cores (more than there are cores, so a
    /// core that is busy elsewhere for a while only delays its own parts).
    static let chunkLines = 16_384
    static let chunkBytes = 4 << 20
    static let parts = 8

    func run() throws {
        var settings = TemplateMiner.Configuration(maxTemplates: maxTemplates)
        if let similarity { settings.similarityThreshold = similarity }
        if let distinctWords { settings.distinctWordsForVariable = distinctWords }
        if let distinctValues { settings.distinctValuesForVariable = distinctValues }
        if let distinctShare { settings.distinctShareForVariable = distinctShare }
        var miner = TemplateMiner(configuration: settings)
        var samples: [UInt64: String] = [:]
        var lines = 0
        // --assign: the id of every line, spilled to a scratch file and resolved once the input is mined.
        var assigned: FileHandle?
        var scratchPath = ""
        var pending: [UInt64] = []
        if assign {
            scratchPath = FileManager.default.temporaryDirectory.appendingPathComponent("trailwatch-assign-\(ProcessInfo.processInfo.processIdentifier)-\(UInt64.random(in: 0...UInt64.max))").path
            guard FileManager.default.createFile(atPath: scratchPath, contents: nil, attributes: [.posixPermissions: 0o600]),
                  let handle = FileHandle(forUpdatingAtPath: scratchPath) else {
                CLILog.error("cannot create a scratch file in \(FileManager.default.temporaryDirectory.path)")
                throw ExitStatus.failure
            }
            assigned = handle
        }
        defer { if assign { try? FileManager.default.removeItem(atPath: scratchPath) } }
        func flush() {
            guard let assigned, !pending.isEmpty else { return }
            pending.withUnsafeBytes { assigned.write(Data($0)) }
            pending.removeAll(keepingCapacity: true)
        }
        // Lines are mined in chunks: a chunk is masked on all cores, then grouped in order (the same result as
        // one line at a time).
        var chunk: [UInt8] = []
        var lineEnds: [Int] = []
        var premasked = PremaskedMessages()
        var ranges: [Range<Int>] = []
        chunk.reserveCapacity(Self.chunkBytes + 4096)
        func mineChunk() {
            guard !lineEnds.isEmpty else { return }
            chunk.withUnsafeBytes { raw in
                let ends = lineEnds
                func line(_ i: Int) -> UnsafeRawBufferPointer {
                    UnsafeRawBufferPointer(rebasing: raw[(i == 0 ? 0 : ends[i - 1])..<ends[i]])
                }
                // The grouping of a part overlaps the masking of the parts after it.
                miner.mine(&premasked, count: ends.count, parts: Self.parts, message: { line($0) },
                           parameterRanges: &ranges) { i, mined, ranges in
                    ranges.removeAll(keepingCapacity: true)
                    lines += 1
                    if assign {
                        pending.append(mined.templateID)
                        if pending.count >= 1 << 14 { flush() }
                    } else if samples[mined.templateID] == nil {
                        samples[mined.templateID] = String(decoding: line(i), as: UTF8.self)
                    }
                }
            }
            // Samples of evicted templates go (bounded by a multiple of the cap, checked once per chunk).
            if samples.count > 4 * maxTemplates { samples = samples.filter { miner.template(id: $0.key) != nil } }
            chunk.removeAll(keepingCapacity: true)
            lineEnds.removeAll(keepingCapacity: true)
        }
        func handle(_ line: UnsafeRawBufferPointer) {
            chunk.append(contentsOf: line)
            lineEnds.append(chunk.count)
            if chunk.count >= Self.chunkBytes || lineEnds.count >= Self.chunkLines { mineChunk() }
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
        mineChunk()
        if let assigned {
            flush()
            try assigned.seek(toOffset: 0)
            let output = FileHandle.standardOutput
            var text = ""
            while let chunk = try assigned.read(upToCount: 8 << 14), !chunk.isEmpty {
                chunk.withUnsafeBytes { raw in
                    for k in 0..<(raw.count / 8) {
                        let id = miner.resolve(raw.loadUnaligned(fromByteOffset: k * 8, as: UInt64.self))
                        text += TemplateMiner.idString(id) + "\t" + (miner.template(id: id)?.text ?? "") + "\n"
                    }
                }
                output.write(Data(text.utf8))
                text = ""
            }
            try assigned.close()
            return
        }
        // Counts are the templates' own (merged siblings included); samples follow merges.
        var resolvedSamples: [UInt64: String] = [:]
        for (id, sample) in samples {
            let target = miner.resolve(id)
            if resolvedSamples[target] == nil || id == target { resolvedSamples[target] = sample }
        }
        let ranked = miner.allTemplates.sorted { $0.count != $1.count ? $0.count > $1.count : $0.id < $1.id }
        let shown = limit > 0 ? Array(ranked.prefix(limit)) : ranked
        switch format {
        case .json:
            let rows: [[String: Any]] = shown.map { t in
                ["templateId": TemplateMiner.idString(t.id), "template": t.text, "count": t.count,
                 "ratio": lines > 0 ? Double(t.count) / Double(lines) : 0, "sample": resolvedSamples[t.id] ?? ""]
            }
            let data = try JSONSerialization.data(withJSONObject: ["lines": lines, "templates": miner.templateCount, "patterns": rows],
                                                  options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        case .text:
            print("\(lines) lines, \(miner.templateCount) templates")
            for t in shown {
                print(String(t.count).leftPadded(8) + "  " + TemplateMiner.idString(t.id) + "  " + t.text)
            }
        }
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
