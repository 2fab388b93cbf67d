// trailwatch-fuzz: fuzz targets for the code that reads untrusted bytes.
//
//   trailwatch-fuzz --list
//   trailwatch-fuzz TARGET [LIBFUZZER OPTIONS] [CORPUS_DIR...]     (built by `make fuzz`, with libFuzzer)
//   trailwatch-fuzz TARGET [--seconds N] [--seed N] [CORPUS_DIR...] (any build: replay, then random mutation)
//
// `make fuzz` builds this target with `-sanitize=fuzzer -D LIBFUZZER`: libFuzzer's coverage-guided
// engine drives the chosen target. In an ordinary build (what `make test` uses) a small built-in
// harness replays the corpus and mutates it at random for a few seconds, so every target keeps
// compiling and running in CI without a second, instrumented build.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
if arguments.count < 2 || arguments[1] == "--list" || arguments[1] == "--help" {
    print("usage: trailwatch-fuzz TARGET [options] [CORPUS_DIR...]\ntargets:")
    // Names are padded, never cut: scripts/fuzz.sh takes the first word of each line as a target.
    let width = fuzzTargets.map(\.name.count).max() ?? 0
    for target in fuzzTargets { print("  \(target.name.padding(toLength: width, withPad: " ", startingAt: 0)) \(target.summary)") }
    exit(arguments.count < 2 ? 2 : 0)
}
guard let target = fuzzTargets.first(where: { $0.name == arguments[1] }) else {
    FileHandle.standardError("unknown target '\(arguments[1])' (trailwatch-fuzz --list)")
    exit(2)
}
FuzzState.target = target

#if LIBFUZZER
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

// libFuzzer sees the program name and everything after the target name.
var driverArguments = [arguments[0]] + arguments.dropFirst(2)
var cArguments: [UnsafeMutablePointer<CChar>?] = driverArguments.map { strdup($0) } + [nil]
var argc = Int32(driverArguments.count)
let status = cArguments.withUnsafeMutableBufferPointer { buffer -> Int32 in
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = buffer.baseAddress
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        FuzzState.target!.run(size == 0 ? [] : Array(UnsafeBufferPointer(start: data, count: size)))
        return 0
    }
}
exit(status)
#else
exit(BuiltinHarness(target: target, arguments: Array(arguments.dropFirst(2))).run())
#endif
