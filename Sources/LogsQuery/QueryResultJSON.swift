import ByteJSON
import TrailwatchCore

extension QueryResult {
    /// The one JSON shape of a query's result, printed by `trailwatch query --format json` and
    /// served by `/api/query`: `{"columns":[NAME…],"rows":[{NAME: VALUE…}…]}`, the rows in the
    /// result's order. Numbers and booleans are JSON numbers and booleans, times RFC 3339 strings,
    /// maps and lists (from `jsonParse` and friends) JSON objects and arrays, missing values null.
    public func json() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + rows.count * columns.count * 16)
        out.append(contentsOf: #"{"columns":["#.utf8)
        for (i, column) in columns.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            JSONWriter.appendString(column, to: &out)
        }
        out.append(contentsOf: #"],"rows":["#.utf8)
        var time = ByteBuffer(reservingCapacity: 32)
        for (r, row) in rows.enumerated() {
            if r > 0 { out.append(UInt8(ascii: ",")) }
            out.append(UInt8(ascii: "{"))
            for (i, (column, value)) in zip(columns, row).enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                JSONWriter.appendString(column, to: &out)
                out.append(UInt8(ascii: ":"))
                switch value {
                case .null: out.append(contentsOf: "null".utf8)
                case .number(let n): JSONWriter.appendNumber(n, to: &out)
                case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
                case .string(let s): JSONWriter.appendString(s, to: &out)
                case .timestamp(let ms):
                    time.removeAll()
                    Timestamps.appendISO8601(ms, to: &time)
                    JSONWriter.appendString(time.bytes, to: &out)
                case .json(let nested): JSONWriter.append(nested, to: &out)
                }
            }
            out.append(UInt8(ascii: "}"))
        }
        out.append(contentsOf: "]}".utf8)
        return out
    }
}
