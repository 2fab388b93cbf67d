import TrailwatchCore

/// Renders test results: text for people, JSON (camelCase keys, numbers as numbers) for tools,
/// JUnit XML for CI systems.
public struct TestReport {
    public var results: [TestResult]

    public init(results: [TestResult]) { self.results = results }

    public var passed: Int { results.filter(\.passed).count }
    public var failed: Int { results.count - passed }

    /// One line per test; failures show expected against got with the expectation's file:line.
    public func text() -> String {
        var out = ""
        for result in results {
            let place = "\(result.test.location.file):\(result.test.location.line)"
            out += "\(result.passed ? "PASS" : "FAIL")  \(result.test.name)  (\(place))\n"
            for failure in result.failures {
                let at = "\(failure.location.file):\(failure.location.line)"
                out += "      \(at): \(failure.from.isEmpty ? "" : "from '\(failure.from)': ")expected \(failure.expected)\n"
                out += "      got \(failure.got)\(failure.events.isEmpty ? "" : ":")\n"
                for event in failure.events { out += "        \(event)\n" }
            }
        }
        out += "\(passed) passed, \(failed) failed\n"
        return out
    }

    public func json() -> String {
        var out = ByteBuffer()
        func string(_ s: String) { JSONEscaping.appendString(s, to: &out) }
        out.append(#"{"passed":"#)
        out.appendDecimal(Int64(passed))
        out.append(#","failed":"#)
        out.appendDecimal(Int64(failed))
        out.append(#","tests":["#)
        for (k, result) in results.enumerated() {
            if k > 0 { out.append(UInt8(ascii: ",")) }
            out.append(#"{"name":"#); string(result.test.name)
            out.append(#","file":"#); string(result.test.location.file)
            out.append(#","line":"#); out.appendDecimal(Int64(result.test.location.line))
            out.append(#","passed":"#); out.append(result.passed ? "true" : "false")
            out.append(#","seconds":"#); out.append(String(format3(result.seconds)))
            out.append(#","failures":["#)
            for (f, failure) in result.failures.enumerated() {
                if f > 0 { out.append(UInt8(ascii: ",")) }
                out.append(#"{"file":"#); string(failure.location.file)
                out.append(#","line":"#); out.appendDecimal(Int64(failure.location.line))
                out.append(#","column":"#); out.appendDecimal(Int64(failure.location.column))
                out.append(#","from":"#); string(failure.from)
                out.append(#","expected":"#); string(failure.expected)
                out.append(#","got":"#); string(failure.got)
                out.append(#","events":["#)
                for (e, event) in failure.events.enumerated() {
                    if e > 0 { out.append(UInt8(ascii: ",")) }
                    string(event)
                }
                out.append("]}")
            }
            out.append("]}")
        }
        out.append("]}\n")
        return String(decoding: out.bytes, as: UTF8.self)
    }

    /// JUnit XML: one test suite per file, one test case per test, failures with expected and got.
    public func junit() -> String {
        var files: [String] = []
        var byFile: [String: [TestResult]] = [:]
        for result in results {
            let file = result.test.location.file
            if byFile[file] == nil { files.append(file) }
            byFile[file, default: []].append(result)
        }
        let total = results.reduce(0) { $0 + $1.seconds }
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<testsuites name=\"trailwatch test\" tests=\"\(results.count)\" failures=\"\(failed)\" errors=\"0\" time=\"\(format3(total))\">\n"
        for file in files {
            let cases = byFile[file]!
            let failures = cases.filter { !$0.passed }.count
            out += "  <testsuite name=\"\(xml(file))\" tests=\"\(cases.count)\" failures=\"\(failures)\" errors=\"0\" skipped=\"0\" time=\"\(format3(cases.reduce(0) { $0 + $1.seconds }))\">\n"
            for result in cases {
                out += "    <testcase name=\"\(xml(result.test.name))\" classname=\"\(xml(file))\" file=\"\(xml(file))\" line=\"\(result.test.location.line)\" time=\"\(format3(result.seconds))\""
                if result.passed { out += "/>\n"; continue }
                out += ">\n"
                for failure in result.failures {
                    let message = "\(failure.location.file):\(failure.location.line): \(failure.from.isEmpty ? "" : "from '\(failure.from)': ")expected \(failure.expected); got \(failure.got)"
                    out += "      <failure message=\"\(xml(message))\" type=\"expectation\">\(xml(([message] + failure.events).joined(separator: "\n")))</failure>\n"
                }
                out += "    </testcase>\n"
            }
            out += "  </testsuite>\n"
        }
        out += "</testsuites>\n"
        return out
    }

    private func format3(_ seconds: Double) -> String {
        let ms = Int64((seconds * 1000).rounded())
        let fraction = String(ms % 1000)
        return "\(ms / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    /// Text escaped for XML attributes and content; characters XML 1.0 cannot carry become U+FFFD.
    private func xml(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&apos;"
            case "\n": out += "&#10;"
            case "\t", "\r": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF { out += "\u{FFFD}" } else { out.unicodeScalars.append(scalar) }
            }
        }
        return out
    }
}
