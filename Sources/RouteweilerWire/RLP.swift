/// Recursive Length Prefix encoding (Ethereum yellow paper, appendix B).
public enum RLP: Sendable, Hashable {
    /// A byte string.
    case bytes([UInt8])
    /// A list of items.
    indirect case list([RLP])

    /// An unsigned integer: minimal big-endian bytes, zero as the empty string.
    public static func uint(_ value: UInt64) -> RLP { .bytes(minimalBigEndian(value)) }

    /// An unsigned integer given as big-endian bytes (leading zeros are stripped).
    public static func uint(bigEndian bytes: [UInt8]) -> RLP { .bytes(Array(bytes.drop { $0 == 0 })) }

    /// The encoding.
    public var encoded: [UInt8] {
        switch self {
        case .bytes(let b):
            if b.count == 1, b[0] < 0x80 { return b }
            return Self.header(b.count, offset: 0x80) + b
        case .list(let items):
            let payload = items.flatMap(\.encoded)
            return Self.header(payload.count, offset: 0xC0) + payload
        }
    }

    static func header(_ length: Int, offset: UInt8) -> [UInt8] {
        if length <= 55 { return [offset + UInt8(length)] }
        let len = minimalBigEndian(UInt64(length))
        return [offset + 55 + UInt8(len.count)] + len
    }

    static func minimalBigEndian(_ value: UInt64) -> [UInt8] {
        var v = value
        var out: [UInt8] = []
        while v > 0 {
            out.insert(UInt8(v & 0xFF), at: 0)
            v >>= 8
        }
        return out
    }

    /// Why bytes are not valid RLP.
    public struct DecodingError: Error, Sendable, Hashable {
        public var message: String
    }

    /// Decodes exactly one item spanning all of `bytes`.
    public static func decode(_ bytes: [UInt8]) throws(DecodingError) -> RLP {
        var i = 0
        let item = try decodeItem(bytes, &i)
        guard i == bytes.count else { throw DecodingError(message: "trailing bytes after RLP item") }
        return item
    }

    private static func decodeItem(_ b: [UInt8], _ i: inout Int) throws(DecodingError) -> RLP {
        guard i < b.count else { throw DecodingError(message: "truncated RLP") }
        let p = b[i]
        i += 1
        func length(_ n: Int) throws(DecodingError) -> Int {
            guard n <= 8, i + n <= b.count else { throw DecodingError(message: "truncated RLP length") }
            var l = 0
            for k in 0..<n { l = l << 8 | Int(b[i + k]) }
            i += n
            return l
        }
        func take(_ n: Int) throws(DecodingError) -> [UInt8] {
            guard n >= 0, i + n <= b.count else { throw DecodingError(message: "truncated RLP payload") }
            defer { i += n }
            return Array(b[i..<i + n])
        }
        switch p {
        case 0..<0x80: return .bytes([p])
        case 0x80...0xB7: return .bytes(try take(Int(p - 0x80)))
        case 0xB8...0xBF: return .bytes(try take(try length(Int(p - 0xB7))))
        default:
            let n: Int
            if p <= 0xF7 { n = Int(p - 0xC0) } else { n = try length(Int(p - 0xF7)) }
            let end = i + n
            guard end <= b.count else { throw DecodingError(message: "truncated RLP list") }
            var items: [RLP] = []
            while i < end { items.append(try decodeItem(b, &i)) }
            guard i == end else { throw DecodingError(message: "RLP list overruns its length") }
            return .list(items)
        }
    }

    /// The byte string, if this is one.
    public var byteString: [UInt8]? {
        if case .bytes(let b) = self { return b }
        return nil
    }

    /// The items, if this is a list.
    public var items: [RLP]? {
        if case .list(let l) = self { return l }
        return nil
    }
}
