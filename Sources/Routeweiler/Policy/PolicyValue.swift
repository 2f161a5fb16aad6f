import Foundation
import Yams

/// A JSON-compatible document tree: what policy files (JSON or YAML) are parsed into before validation, and what
/// the canonical form for the policy hash is written from.
enum PolicyValue: Hashable, Sendable {
    case null
    case bool(Bool)
    case integer(Int64)
    /// A non-integer number, kept as its text.
    case number(String)
    case string(String)
    case array([PolicyValue])
    case object([String: PolicyValue])

    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer: "an integer"
        case .number: "a number"
        case .string: "a string"
        case .array: "a list"
        case .object: "an object"
        }
    }
}

extension PolicyValue: Codable {
    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let i = try? c.decode(Int64.self) {
            self = .integer(i)
        } else if let d = try? c.decode(Decimal.self) {
            self = .number(d.description)
        } else if let s = try? c.decode(String.self) {
            self = .string(s)
        } else if let a = try? c.decode([PolicyValue].self) {
            self = .array(a)
        } else if let o = try? c.decode([String: PolicyValue].self) {
            self = .object(o)
        } else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "unsupported JSON value")
        }
    }

    func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .integer(let i): try c.encode(i)
        case .number(let n): try c.encode(Decimal(string: n) ?? 0)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }
}

// MARK: - Parsing

extension PolicyValue {
    /// Parses JSON text.
    static func parseJSON(_ data: Data) throws(PolicyConfigurationError) -> PolicyValue {
        do {
            return try JSONDecoder().decode(PolicyValue.self, from: data)
        } catch {
            throw PolicyConfigurationError(code: .syntax, path: "", "not valid JSON (\(Self.describe(error)))")
        }
    }

    /// Parses one YAML document (core schema: `true`/`false`, integers, floats, `null`; everything else is text).
    static func parseYAML(_ text: String) throws(PolicyConfigurationError) -> PolicyValue {
        let node: Node?
        do {
            node = try Yams.compose(yaml: text)
        } catch {
            throw PolicyConfigurationError(code: .syntax, path: "", "not valid YAML (\(error))")
        }
        guard let node else { throw PolicyConfigurationError(code: .syntax, path: "", "the YAML document is empty") }
        return try fromYAML(node, path: "")
    }

    private static func fromYAML(_ node: Node, path: String) throws(PolicyConfigurationError) -> PolicyValue {
        switch node {
        case .scalar(let scalar):
            if scalar.style != .plain { return .string(scalar.string) }
            switch Resolver.default.resolveTag(of: node) {
            case .null: return .null
            case .bool:
                guard let b = node.bool else { return .string(scalar.string) }
                return .bool(b)
            case .int:
                guard let i = node.int else {
                    throw PolicyConfigurationError(code: .invalidValue, path: path,
                                                   "integer '\(scalar.string)' is out of range")
                }
                return .integer(Int64(i))
            case .float:
                return .number(scalar.string)
            default:
                return .string(scalar.string)
            }
        case .sequence(let seq):
            var out: [PolicyValue] = []
            for (i, n) in seq.enumerated() { out.append(try fromYAML(n, path: "\(path)[\(i)]")) }
            return .array(out)
        case .mapping(let map):
            var out: [String: PolicyValue] = [:]
            for (k, v) in map {
                guard case .scalar(let ks) = k else {
                    throw PolicyConfigurationError(code: .invalidValue, path: path, "mapping keys must be text")
                }
                let key = ks.string
                let childPath = path.isEmpty ? key : "\(path).\(key)"
                guard out[key] == nil else {
                    throw PolicyConfigurationError(code: .invalidValue, path: path, key: key, "duplicate key '\(key)'")
                }
                out[key] = try fromYAML(v, path: childPath)
            }
            return .object(out)
        case .alias:
            throw PolicyConfigurationError(code: .invalidValue, path: path, "YAML aliases are not supported")
        }
    }

    private static func describe(_ error: any Error) -> String {
        if let e = error as? DecodingError {
            switch e {
            case .dataCorrupted(let ctx): return ctx.underlyingError.map { "\($0)" } ?? ctx.debugDescription
            default: return "\(e)"
            }
        }
        return "\(error)"
    }
}

// MARK: - Canonical JSON (SPEC §9.3 / §17 flavour b)

extension PolicyValue {
    /// Compact JSON, keys sorted by code point at every level, `/` unescaped, every non-ASCII character written
    /// as `\uXXXX` (lower-case hex, UTF-16 surrogate pairs) — byte-identical to Python's
    /// `json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=True)`.
    var canonicalJSON: String {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    private func write(into out: inout [UInt8]) {
        switch self {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .integer(let i): out.append(contentsOf: String(i).utf8)
        case .number(let n): out.append(contentsOf: n.utf8)
        case .string(let s): Self.writeString(s, into: &out)
        case .array(let a):
            out.append(UInt8(ascii: "["))
            for (i, v) in a.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                v.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let o):
            out.append(UInt8(ascii: "{"))
            let keys = o.keys.sorted { $0.unicodeScalars.lexicographicallyPrecedes($1.unicodeScalars) }
            for (i, k) in keys.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(k, into: &out)
                out.append(UInt8(ascii: ":"))
                o[k]!.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// `s` as a JSON string literal, quotes included (the escaping of ``canonicalJSON``).
    static func jsonQuoted(_ s: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(s.utf8.count + 2)
        writeString(s, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// A JSON string: printable ASCII as is (the common case, copied in one go), `"` `\\` and the usual control
    /// characters escaped, everything else as `\uXXXX` of its UTF-16 units.
    private static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        let plain = s.withUTF8 { bytes -> Bool in
            guard bytes.allSatisfy({ $0 >= 0x20 && $0 <= 0x7E && $0 != 0x22 && $0 != 0x5C }) else { return false }
            out.append(contentsOf: bytes)
            return true
        }
        if !plain {
            for unit in s.utf16 {
                switch unit {
                case 0x22: out.append(contentsOf: "\\\"".utf8)
                case 0x5C: out.append(contentsOf: "\\\\".utf8)
                case 0x0A: out.append(contentsOf: "\\n".utf8)
                case 0x0D: out.append(contentsOf: "\\r".utf8)
                case 0x09: out.append(contentsOf: "\\t".utf8)
                case 0x08: out.append(contentsOf: "\\b".utf8)
                case 0x0C: out.append(contentsOf: "\\f".utf8)
                case 0x20...0x7E: out.append(UInt8(unit))
                default:
                    let hex = String(unit, radix: 16)
                    out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).utf8)
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

/// JSON string literals for the stores' hand-written JSON (the escaping of the canonical JSON).
package enum JSONString {
    /// `s` quoted and escaped as a JSON string.
    package static func quoted(_ s: String) -> String { PolicyValue.jsonQuoted(s) }
}
