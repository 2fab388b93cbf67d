import AWSWire
import Foundation

/// The metric math GetMetricData evaluates: arithmetic (`+ - * / ^`, parentheses, unary minus)
/// between query ids and numbers, and `ANOMALY_DETECTION_BAND(id[, k])` at the top of an
/// expression. Any other function is an explicit error naming it.
indirect enum MetricExpression: Equatable {
    case number(Double)
    case reference(String)
    case unary(Character, MetricExpression)
    case binary(Character, MetricExpression, MetricExpression)
    case band(String, Double)

    struct ParseError: Error {
        var message: String
    }

    static func parse(_ text: String) throws(ParseError) -> MetricExpression {
        var parser = Parser(chars: Array(text))
        let expression = try parser.sum()
        parser.skip()
        guard parser.index == parser.chars.count else { throw ParseError(message: "unexpected '\(parser.chars[parser.index])' at \(parser.index + 1)") }
        if case .band = expression { return expression }
        if expression.containsBand { throw ParseError(message: "ANOMALY_DETECTION_BAND must be the whole expression") }
        return expression
    }

    var isBand: Bool {
        if case .band = self { return true }
        return false
    }

    var containsBand: Bool {
        switch self {
        case .band: true
        case .number, .reference: false
        case .unary(_, let e): e.containsBand
        case .binary(_, let a, let b): a.containsBand || b.containsBand
        }
    }

    /// The query ids the expression reads.
    var references: [String] {
        switch self {
        case .number: []
        case .reference(let id), .band(let id, _): [id]
        case .unary(_, let e): e.references
        case .binary(_, let a, let b): a.references + b.references
        }
    }

    struct Parser {
        let chars: [Character]
        var index = 0

        mutating func skip() { while index < chars.count, chars[index].isWhitespace { index += 1 } }

        mutating func sum() throws(ParseError) -> MetricExpression {
            var left = try product()
            while true {
                skip()
                guard index < chars.count, chars[index] == "+" || chars[index] == "-" else { return left }
                let op = chars[index]
                index += 1
                left = .binary(op, left, try product())
            }
        }

        mutating func product() throws(ParseError) -> MetricExpression {
            var left = try power()
            while true {
                skip()
                guard index < chars.count, chars[index] == "*" || chars[index] == "/" else { return left }
                let op = chars[index]
                index += 1
                left = .binary(op, left, try power())
            }
        }

        mutating func power() throws(ParseError) -> MetricExpression {
            let base = try unary()
            skip()
            if index < chars.count, chars[index] == "^" {
                index += 1
                return .binary("^", base, try power())
            }
            return base
        }

        mutating func unary() throws(ParseError) -> MetricExpression {
            skip()
            if index < chars.count, chars[index] == "-" {
                index += 1
                return .unary("-", try unary())
            }
            return try primary()
        }

        mutating func primary() throws(ParseError) -> MetricExpression {
            skip()
            guard index < chars.count else { throw ParseError(message: "the expression ends early") }
            let c = chars[index]
            if c == "(" {
                index += 1
                let inner = try sum()
                skip()
                guard index < chars.count, chars[index] == ")" else { throw ParseError(message: "missing ')'") }
                index += 1
                return inner
            }
            if c.isNumber || c == "." {
                let start = index
                while index < chars.count, chars[index].isNumber || chars[index] == "." { index += 1 }
                guard let value = Double(String(chars[start..<index])) else { throw ParseError(message: "invalid number at \(start + 1)") }
                return .number(value)
            }
            guard c.isLetter || c == "_" else { throw ParseError(message: "unexpected '\(c)' at \(index + 1)") }
            let start = index
            while index < chars.count, chars[index].isLetter || chars[index].isNumber || chars[index] == "_" { index += 1 }
            let name = String(chars[start..<index])
            skip()
            guard index < chars.count, chars[index] == "(" else { return .reference(name) }
            guard name == "ANOMALY_DETECTION_BAND" else {
                throw ParseError(message: "the function \(name) is not supported (trailwatch evaluates arithmetic and ANOMALY_DETECTION_BAND)")
            }
            index += 1
            skip()
            let idStart = index
            while index < chars.count, chars[index].isLetter || chars[index].isNumber || chars[index] == "_" { index += 1 }
            let id = String(chars[idStart..<index])
            guard !id.isEmpty else { throw ParseError(message: "ANOMALY_DETECTION_BAND needs a query id") }
            skip()
            var width = 2.0
            if index < chars.count, chars[index] == "," {
                index += 1
                skip()
                let numberStart = index
                while index < chars.count, chars[index].isNumber || chars[index] == "." { index += 1 }
                guard let k = Double(String(chars[numberStart..<index])), k > 0 else { throw ParseError(message: "the band width must be a positive number") }
                width = k
                skip()
            }
            guard index < chars.count, chars[index] == ")" else { throw ParseError(message: "missing ')'") }
            index += 1
            return .band(id, width)
        }
    }

    enum Value {
        case scalar(Double)
        case series(Series)
    }

    /// Evaluates arithmetic; `lookup` gives a referenced query's series (nil: unknown id).
    func evaluate(_ lookup: (String) -> Series?) throws(ParseError) -> Value {
        switch self {
        case .number(let v): return .scalar(v)
        case .reference(let id):
            guard let series = lookup(id) else { throw ParseError(message: "unknown query id '\(id)'") }
            return .series(series)
        case .band: throw ParseError(message: "ANOMALY_DETECTION_BAND must be the whole expression")
        case .unary(_, let e):
            switch try e.evaluate(lookup) {
            case .scalar(let v): return .scalar(-v)
            case .series(let s): return .series(Series(points: s.points.map { ($0.time, -$0.value) }))
            }
        case .binary(let op, let a, let b):
            let left = try a.evaluate(lookup), right = try b.evaluate(lookup)
            func apply(_ x: Double, _ y: Double) -> Double? {
                let r: Double
                switch op {
                case "+": r = x + y
                case "-": r = x - y
                case "*": r = x * y
                case "/": r = x / y
                default: r = pow(x, y)
                }
                return r.isFinite ? r : nil
            }
            switch (left, right) {
            case (.scalar(let x), .scalar(let y)): return .scalar(apply(x, y) ?? .nan)
            case (.series(let s), .scalar(let y)): return .series(Series(points: s.points.compactMap { p in apply(p.value, y).map { (p.time, $0) } }))
            case (.scalar(let x), .series(let s)): return .series(Series(points: s.points.compactMap { p in apply(x, p.value).map { (p.time, $0) } }))
            case (.series(let s), .series(let t)):
                // Points present in both series (CloudWatch drops the others).
                let other = Dictionary(t.points.map { ($0.time, $0.value) }, uniquingKeysWith: { a, _ in a })
                return .series(Series(points: s.points.compactMap { p in other[p.time].flatMap { apply(p.value, $0) }.map { (p.time, $0) } }))
            }
        }
    }
}

