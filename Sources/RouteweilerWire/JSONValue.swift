/// A JSON value that keeps what a round trip through `Double` would lose: member order as received and each
/// number's literal text (so `9223372036854775807` reads back exactly).
///
/// ``canonical`` renders the RFC 8785 (JCS) form: members sorted by UTF-16 code units, no whitespace, minimal
/// string escapes, numbers in ECMAScript's shortest round-trip notation.
public indirect enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    /// A number as its literal text (already validated against the JSON grammar).
    case number(String)
    case string(String)
    case array([JSONValue])
    /// Members in the order received (duplicates are rejected by the parser).
    case object([(key: String, value: JSONValue)])

    public static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case (.null, .null): return true
        case (.bool(let x), .bool(let y)): return x == y
        case (.number(let x), .number(let y)): return x == y
        case (.string(let x), .string(let y)): return x == y
        case (.array(let x), .array(let y)): return x == y
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        default: return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let b): hasher.combine(b)
        case .number(let n): hasher.combine(n)
        case .string(let s): hasher.combine(s)
        case .array(let a): hasher.combine(a)
        case .object(let o):
            for (k, v) in o {
                hasher.combine(k)
                hasher.combine(v)
            }
        }
    }

    /// The member named `key` of an object, or `nil`.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let members) = self else { return nil }
        return members.first { $0.key == key }?.value
    }

    /// The string, if this is one.
    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// The members, if this is an object.
    public var objectMembers: [(key: String, value: JSONValue)]? {
        if case .object(let m) = self { return m }
        return nil
    }

    /// An integer from a JSON integer literal or a base-10 string (`"100"` and `100` both read as 100).
    public var uint64Value: UInt64? {
        switch self {
        case .number(let n): return UInt64(n)
        case .string(let s): return UInt64(s)
        default: return nil
        }
    }

    /// Builds an object from members in the given order.
    public static func members(_ pairs: KeyValuePairs<String, JSONValue>) -> JSONValue {
        .object(pairs.map { (key: $0.key, value: $0.value) })
    }
}

/// Why a JSON text could not be parsed.
public struct JSONParseError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public var offset: Int
    public init(_ message: String, offset: Int) {
        self.message = message
        self.offset = offset
    }
    public var description: String { "\(message) (at byte \(offset))" }
}

// MARK: - Parsing

extension JSONValue {
    /// Parses one JSON text (RFC 8259, strict: no trailing commas, no comments, no duplicate member names,
    /// nothing after the value but whitespace).
    public static func parse(_ bytes: some Collection<UInt8>) throws(JSONParseError) -> JSONValue {
        var p = JSONParser(Array(bytes))
        p.skipWhitespace()
        let v = try p.parseValue(depth: 0)
        p.skipWhitespace()
        guard p.i == p.b.count else { throw JSONParseError("trailing characters after the JSON value", offset: p.i) }
        return v
    }

    /// Parses one JSON text from a string.
    public static func parse(_ text: String) throws(JSONParseError) -> JSONValue { try parse(Array(text.utf8)) }
}

private struct JSONParser {
    let b: [UInt8]
    var i = 0
    init(_ b: [UInt8]) { self.b = b }

    mutating func skipWhitespace() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x09 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
    }

    mutating func parseValue(depth: Int) throws(JSONParseError) -> JSONValue {
        guard depth < 128 else { throw JSONParseError("nesting too deep", offset: i) }
        guard i < b.count else { throw JSONParseError("unexpected end of input", offset: i) }
        switch b[i] {
        case UInt8(ascii: "{"):
            i += 1
            var members: [(key: String, value: JSONValue)] = []
            var keys = Set<String>()
            skipWhitespace()
            if i < b.count, b[i] == UInt8(ascii: "}") {
                i += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw JSONParseError("expected a member name", offset: i) }
                let key = try parseString()
                guard keys.insert(key).inserted else { throw JSONParseError("duplicate member name \"\(key)\"", offset: i) }
                skipWhitespace()
                guard i < b.count, b[i] == UInt8(ascii: ":") else { throw JSONParseError("expected ':'", offset: i) }
                i += 1
                skipWhitespace()
                members.append((key, try parseValue(depth: depth + 1)))
                skipWhitespace()
                guard i < b.count else { throw JSONParseError("unterminated object", offset: i) }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return .object(members) }
                throw JSONParseError("expected ',' or '}'", offset: i)
            }
        case UInt8(ascii: "["):
            i += 1
            var items: [JSONValue] = []
            skipWhitespace()
            if i < b.count, b[i] == UInt8(ascii: "]") {
                i += 1
                return .array(items)
            }
            while true {
                skipWhitespace()
                items.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                guard i < b.count else { throw JSONParseError("unterminated array", offset: i) }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "]") { i += 1; return .array(items) }
                throw JSONParseError("expected ',' or ']'", offset: i)
            }
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        default:
            return .number(try parseNumber())
        }
    }

    mutating func literal(_ word: String) throws(JSONParseError) {
        let w = Array(word.utf8)
        guard i + w.count <= b.count, Array(b[i..<i + w.count]) == w else {
            throw JSONParseError("unexpected character", offset: i)
        }
        i += w.count
    }

    mutating func parseNumber() throws(JSONParseError) -> String {
        let start = i
        func digits(_ p: inout JSONParser) -> Int {
            let s = p.i
            while p.i < p.b.count, p.b[p.i] >= 0x30, p.b[p.i] <= 0x39 { p.i += 1 }
            return p.i - s
        }
        if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
        guard i < b.count else { throw JSONParseError("bad number", offset: start) }
        if b[i] == UInt8(ascii: "0") {
            i += 1
        } else if digits(&self) == 0 {
            throw JSONParseError("unexpected character", offset: start)
        }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            guard digits(&self) > 0 else { throw JSONParseError("bad fraction", offset: i) }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digits(&self) > 0 else { throw JSONParseError("bad exponent", offset: i) }
        }
        return String(decoding: b[start..<i], as: UTF8.self)
    }

    mutating func hex4() throws(JSONParseError) -> UInt16 {
        guard i + 4 <= b.count else { throw JSONParseError("bad \\u escape", offset: i) }
        var v: UInt16 = 0
        for _ in 0..<4 {
            let c = b[i]
            let d: UInt16
            switch c {
            case 0x30...0x39: d = UInt16(c - 0x30)
            case 0x61...0x66: d = UInt16(c - 0x61 + 10)
            case 0x41...0x46: d = UInt16(c - 0x41 + 10)
            default: throw JSONParseError("bad \\u escape", offset: i)
            }
            v = v << 4 | d
            i += 1
        }
        return v
    }

    mutating func parseString() throws(JSONParseError) -> String {
        i += 1  // opening quote
        var units: [UInt16] = []
        var run: [UInt8] = []
        func flush(_ run: inout [UInt8], _ units: inout [UInt16]) {
            if !run.isEmpty {
                units.append(contentsOf: String(decoding: run, as: UTF8.self).utf16)
                run.removeAll()
            }
        }
        while true {
            guard i < b.count else { throw JSONParseError("unterminated string", offset: i) }
            let c = b[i]
            if c == UInt8(ascii: "\"") {
                i += 1
                break
            }
            if c < 0x20 { throw JSONParseError("control character in string", offset: i) }
            if c == UInt8(ascii: "\\") {
                flush(&run, &units)
                i += 1
                guard i < b.count else { throw JSONParseError("unterminated escape", offset: i) }
                let e = b[i]
                i += 1
                switch e {
                case UInt8(ascii: "\""): units.append(0x22)
                case UInt8(ascii: "\\"): units.append(0x5C)
                case UInt8(ascii: "/"): units.append(0x2F)
                case UInt8(ascii: "b"): units.append(0x08)
                case UInt8(ascii: "f"): units.append(0x0C)
                case UInt8(ascii: "n"): units.append(0x0A)
                case UInt8(ascii: "r"): units.append(0x0D)
                case UInt8(ascii: "t"): units.append(0x09)
                case UInt8(ascii: "u"): units.append(try hex4())
                default: throw JSONParseError("bad escape", offset: i - 1)
                }
                continue
            }
            run.append(c)
            i += 1
        }
        flush(&run, &units)
        // Lone surrogates become U+FFFD (Swift strings are Unicode scalars).
        return String(decoding: units, as: UTF16.self)
    }
}

// MARK: - Serialisation

extension JSONValue {
    /// The RFC 8785 canonical form (JCS) as UTF-8 bytes.
    public var canonical: [UInt8] {
        var out: [UInt8] = []
        writeCanonical(&out)
        return out
    }

    /// The RFC 8785 canonical form as a string.
    public var canonicalString: String { String(decoding: canonical, as: UTF8.self) }

    /// Compact JSON keeping member order and number literals as they are (for echoing a value verbatim).
    public var compact: [UInt8] {
        var out: [UInt8] = []
        writeCompact(&out)
        return out
    }

    private func writeCompact(_ out: inout [UInt8]) {
        switch self {
        case .null: out += Array("null".utf8)
        case .bool(let v): out += Array((v ? "true" : "false").utf8)
        case .number(let n): out += Array(n.utf8)
        case .string(let s): JSONValue.writeString(s, &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (n, item) in items.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                item.writeCompact(&out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            out.append(UInt8(ascii: "{"))
            for (n, m) in members.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(m.key, &out)
                out.append(UInt8(ascii: ":"))
                m.value.writeCompact(&out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private func writeCanonical(_ out: inout [UInt8]) {
        switch self {
        case .null, .bool, .string: writeCompact(&out)
        case .number(let n): out += Array(JSONValue.canonicalNumber(n).utf8)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (n, item) in items.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                item.writeCanonical(&out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let members):
            let sorted = members.sorted { a, b in a.key.utf16.lexicographicallyPrecedes(b.key.utf16) }
            out.append(UInt8(ascii: "{"))
            for (n, m) in sorted.enumerated() {
                if n > 0 { out.append(UInt8(ascii: ",")) }
                JSONValue.writeString(m.key, &out)
                out.append(UInt8(ascii: ":"))
                m.value.writeCanonical(&out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// JCS string escaping: `\"`, `\\`, the five shorthands, `\u00xx` for other controls; everything else raw.
    static func writeString(_ s: String, _ out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for c in s.utf8 {
            switch c {
            case 0x22: out += [0x5C, 0x22]
            case 0x5C: out += [0x5C, 0x5C]
            case 0x08: out += [0x5C, UInt8(ascii: "b")]
            case 0x0C: out += [0x5C, UInt8(ascii: "f")]
            case 0x0A: out += [0x5C, UInt8(ascii: "n")]
            case 0x0D: out += [0x5C, UInt8(ascii: "r")]
            case 0x09: out += [0x5C, UInt8(ascii: "t")]
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out += Array("\\u00".utf8) + [hex[Int(c >> 4)], hex[Int(c & 15)]]
            default: out.append(c)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// ECMAScript `Number.prototype.toString` of the double nearest to `literal` (RFC 8785 §3.2.2.3).
    static func canonicalNumber(_ literal: String) -> String {
        guard let d = Double(literal), d.isFinite else { return literal }
        if d == 0 { return "0" }
        // Swift's description is the shortest round-trip digit string; re-lay it out per ECMAScript.
        var text = d.magnitude.description  // e.g. "1e-07", "1.7976931348623157e+308", "123.45", "1e+16"
        var exp10 = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            exp10 = Int(text[text.index(after: e)...])!
            text = String(text[..<e])
        }
        var intPart = text
        var fracPart = ""
        if let dot = text.firstIndex(of: ".") {
            intPart = String(text[..<dot])
            fracPart = String(text[text.index(after: dot)...])
        }
        var digits = intPart + fracPart
        var pointPos = intPart.count + exp10  // decimal point position relative to digits start
        // Strip leading zeros.
        while digits.count > 1, digits.first == "0" {
            digits.removeFirst()
            pointPos -= 1
        }
        while digits.count > 1, digits.last == "0" { digits.removeLast() }
        let k = digits.count
        let n = pointPos
        var result: String
        if k <= n && n <= 21 {
            result = digits + String(repeating: "0", count: n - k)
        } else if 0 < n && n <= 21 {
            let idx = digits.index(digits.startIndex, offsetBy: n)
            result = String(digits[..<idx]) + "." + String(digits[idx...])
        } else if -6 < n && n <= 0 {
            result = "0." + String(repeating: "0", count: -n) + digits
        } else {
            let e = n - 1
            let sign = e < 0 ? "-" : "+"
            let mant = k == 1 ? digits : String(digits.prefix(1)) + "." + String(digits.dropFirst())
            result = mant + "e" + sign + String(abs(e))
        }
        return (d < 0 ? "-" : "") + result
    }
}
