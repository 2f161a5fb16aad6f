/// Lower-case hexadecimal encoding and decoding for byte arrays.
public enum Hex {

    /// Encodes bytes as lower-case hex without a prefix.
    @inlinable
    public static func encode<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        if let fast = bytes.withContiguousStorageIfAvailable({ encode(buffer: $0) }) { return fast }
        return encode(buffer: UnsafeBufferPointer(start: nil, count: 0), slow: Array(bytes))
    }

    @inlinable @usableFromInline
    static func encode(buffer: UnsafeBufferPointer<UInt8>, slow: [UInt8]? = nil) -> String {
        if let slow { return slow.withUnsafeBufferPointer { encode(buffer: $0) } }
        @inline(__always) func digit(_ n: UInt8) -> UInt8 { n < 10 ? 0x30 + n : 0x57 + n }
        return String(unsafeUninitializedCapacity: buffer.count * 2) { out in
            var i = 0
            for b in buffer {
                out[i] = digit(b >> 4)
                out[i + 1] = digit(b & 0x0f)
                i += 2
            }
            return i
        }
    }

    /// Decodes hex (either case, optional `0x` prefix). Returns `nil` on odd length or a non-hex character.
    public static func decode(_ string: some StringProtocol) -> [UInt8]? {
        var utf8 = Array(string.utf8)
        if utf8.count >= 2, utf8[0] == UInt8(ascii: "0"), utf8[1] == UInt8(ascii: "x") || utf8[1] == UInt8(ascii: "X") {
            utf8.removeFirst(2)
        }
        guard utf8.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}

extension Sequence where Element == UInt8 {
    /// The bytes as lower-case hex.
    public var hexString: String { Hex.encode(self) }
}
