import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What the process is fuzzing; read by libFuzzer's callback and the crash handler.
enum FuzzState {
    nonisolated(unsafe) static var target: FuzzTarget?
    /// The input being run, for the crash handler to save (raw memory: a signal handler cannot
    /// touch Swift arrays safely).
    nonisolated(unsafe) static var current = UnsafeMutablePointer<UInt8>.allocate(capacity: BuiltinHarness.maximumLength)
    nonisolated(unsafe) static var currentLength = 0
    nonisolated(unsafe) static var crashPath: UnsafeMutablePointer<CChar>?
}

extension FileHandle {
    static func standardError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}

/// Replays a corpus, then mutates it at random (bit flips, interesting bytes, insertions,
/// deletions, repeats, splices and tokens taken from the corpus) without coverage feedback. A crash
/// leaves the input in `crash-TARGET-…`; an input running longer than `--timeout` is saved as
/// `hang-TARGET-…` and the run fails.
struct BuiltinHarness {
    static let maximumLength = 1 << 16

    let target: FuzzTarget
    var seconds = 5.0
    var seed: UInt64 = 0x7261_696C_7761_7463
    var timeout = 10.0
    var corpusDirectories: [String] = []

    init(target: FuzzTarget, arguments: [String]) {
        self.target = target
        var k = 0
        while k < arguments.count {
            let argument = arguments[k]
            func value() -> String? { k + 1 < arguments.count ? arguments[k + 1] : nil }
            switch argument {
            case "--seconds": seconds = Double(value() ?? "") ?? seconds; k += 2
            case "--seed": seed = UInt64(value() ?? "") ?? seed; k += 2
            case "--timeout": timeout = Double(value() ?? "") ?? timeout; k += 2
            default:
                // libFuzzer-style options are accepted and ignored, so one command line works for both.
                if !argument.hasPrefix("-") { corpusDirectories.append(argument) }
                k += 1
            }
        }
    }

    func loadCorpus() -> [[UInt8]] {
        var inputs: [[UInt8]] = []
        for directory in corpusDirectories {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else { continue }
            let files = isDirectory.boolValue
                ? ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted().map { directory + "/" + $0 }
                : [directory]
            for file in files {
                if let data = FileManager.default.contents(atPath: file) { inputs.append(Array(data.prefix(BuiltinHarness.maximumLength))) }
            }
        }
        return inputs.isEmpty ? [[]] : inputs
    }

    func run() -> Int32 {
        installCrashHandlers()
        let watchdog = Watchdog(timeout: timeout, target: target.name)
        watchdog.start()
        var corpus = loadCorpus()
        var executions = 0
        let started = Date()
        for input in corpus { execute(input, watchdog); executions += 1 }
        let replayed = executions
        var random = Random(seed)
        var tokens: [[UInt8]] = []
        for input in corpus where !input.isEmpty {
            for _ in 0..<4 {
                let a = random.below(input.count), length = 1 + random.below(min(8, input.count - a))
                tokens.append(Array(input[a..<(a + length)]))
            }
        }
        while Date().timeIntervalSince(started) < seconds {
            var input = corpus[random.below(corpus.count)]
            for _ in 0...random.below(4) { mutate(&input, &random, corpus: corpus, tokens: tokens) }
            execute(input, watchdog)
            executions += 1
            // Keep a few mutants so mutations compound.
            if random.below(64) == 0 && corpus.count < 4096 { corpus.append(input) }
        }
        let elapsed = Date().timeIntervalSince(started)
        print("\(target.name): \(executions) executions (\(replayed) corpus inputs replayed) in \(String(format: "%.1f", elapsed)) s, "
              + "\(Int(Double(executions) / max(elapsed, 0.001))) exec/s, no crash or hang")
        return 0
    }

    func execute(_ input: [UInt8], _ watchdog: Watchdog) {
        let length = min(input.count, BuiltinHarness.maximumLength)
        input.withUnsafeBufferPointer { if let base = $0.baseAddress { FuzzState.current.update(from: base, count: length) } }
        FuzzState.currentLength = length
        watchdog.begin()
        target.run(Array(input.prefix(length)))
        watchdog.end()
    }

    func mutate(_ input: inout [UInt8], _ random: inout Random, corpus: [[UInt8]], tokens: [[UInt8]]) {
        let interesting: [UInt8] = [0, 0x0A, 0x22, 0x5C, 0x7B, 0x7D, 0x5B, 0x5D, 0x2A, 0x3F, 0x28, 0x29, 0x7C, 0x25, 0x24, 0x2E,
                                    0x7F, 0x80, 0xBF, 0xC3, 0xE2, 0xF0, 0xFF, 0x20, 0x3A, 0x2D, 0x30, 0x39]
        switch random.below(8) {
        case 0 where !input.isEmpty:
            input[random.below(input.count)] ^= UInt8(1 << random.below(8))
        case 1 where !input.isEmpty:
            input[random.below(input.count)] = interesting[random.below(interesting.count)]
        case 2:
            let at = random.below(input.count + 1)
            input.insert(contentsOf: (0..<(1 + random.below(8))).map { _ in interesting[random.below(interesting.count)] }, at: at)
        case 3 where !input.isEmpty:
            let a = random.below(input.count)
            input.removeSubrange(a..<min(input.count, a + 1 + random.below(16)))
        case 4 where !input.isEmpty:
            // Repeat a slice: long runs reach the limits and the slow paths.
            let a = random.below(input.count), length = 1 + random.below(min(32, input.count - a))
            let slice = Array(input[a..<(a + length)])
            var repeated: [UInt8] = []
            for _ in 0..<(1 + random.below(64)) { repeated += slice }
            input.insert(contentsOf: repeated, at: a)
        case 5 where !tokens.isEmpty:
            input.insert(contentsOf: tokens[random.below(tokens.count)], at: random.below(input.count + 1))
        case 6:
            let other = corpus[random.below(corpus.count)]
            if !other.isEmpty {
                let a = random.below(other.count)
                input.insert(contentsOf: other[a..<min(other.count, a + 1 + random.below(64))], at: random.below(input.count + 1))
            }
        default:
            if !input.isEmpty { input.removeLast(random.below(min(input.count, 4)) + 1) }
        }
        if input.count > BuiltinHarness.maximumLength { input.removeLast(input.count - BuiltinHarness.maximumLength) }
    }

    func installCrashHandlers() {
        FuzzState.crashPath = strdup("crash-\(target.name)")
        for number in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT, SIGFPE] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                // Async-signal-safe only: save the input, then die of the same signal.
                if let path = FuzzState.crashPath {
                    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                    if fd >= 0 {
                        _ = write(fd, FuzzState.current, FuzzState.currentLength)
                        close(fd)
                    }
                    let message: StaticString = "trailwatch-fuzz: crashed; the input is in crash-<target>\n"
                    _ = write(2, message.utf8Start, message.utf8CodeUnitCount)
                }
                signal(number, SIG_DFL)
                raise(number)
            }
            sigemptyset(&action.sa_mask)
            sigaction(number, &action, nil)
        }
    }
}

/// Fails the run when one input takes longer than `timeout`, saving it.
final class Watchdog: @unchecked Sendable {
    let timeout: Double
    let target: String
    private let lock = NSLock()
    private var startedAt: Date?

    init(timeout: Double, target: String) {
        self.timeout = timeout
        self.target = target
    }

    func begin() { lock.lock(); startedAt = Date(); lock.unlock() }
    func end() { lock.lock(); startedAt = nil; lock.unlock() }

    func start() {
        let thread = Thread { [self] in
            while true {
                usleep(100_000)
                lock.lock()
                let began = startedAt
                lock.unlock()
                if let began, Date().timeIntervalSince(began) > timeout {
                    let path = "hang-\(target)"
                    _ = FileManager.default.createFile(atPath: path, contents: Data(UnsafeBufferPointer(start: FuzzState.current, count: FuzzState.currentLength)))
                    FileHandle.standardError("trailwatch-fuzz: \(target): one input ran longer than \(timeout) s; it is in \(path)")
                    exit(1)
                }
            }
        }
        thread.start()
    }
}

/// A small deterministic generator (splitmix64), so a seed reproduces a run.
struct Random {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
}
