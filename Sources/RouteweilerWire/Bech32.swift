/// Errors raised by ``Bech32``.
public enum Bech32Error: Error, Sendable, Hashable, CustomStringConvertible {
    /// The string mixes upper- and lower-case letters.
    case mixedCase
    /// There is no `1` separator, or the human-readable part is empty.
    case missingSeparator
    /// A human-readable-part character outside US-ASCII 33...126.
    case invalidHumanReadablePart
    /// A data character outside the bech32 alphabet.
    case invalidCharacter(Character)
    /// The data part is shorter than the 6-character checksum.
    case tooShort
    /// The checksum does not verify.
    case badChecksum
    /// A 5-bit word greater than 31 was given to the encoder.
    case invalidWord(UInt8)
    /// Regrouping left non-zero or excess padding bits.
    case invalidPadding

    public var description: String {
        switch self {
        case .mixedCase: return "bech32 string mixes upper and lower case"
        case .missingSeparator: return "bech32 string has no '1' separator or an empty human-readable part"
        case .invalidHumanReadablePart: return "bech32 human-readable part has an invalid character"
        case .invalidCharacter(let c): return "invalid bech32 character '\(c)'"
        case .tooShort: return "bech32 data part is shorter than the checksum"
        case .badChecksum: return "bech32 checksum is invalid"
        case .invalidWord(let w): return "5-bit word out of range: \(w)"
        case .invalidPadding: return "invalid padding when regrouping bits"
        }
    }
}

/// Bech32 (BIP-173; not bech32m) encoding and decoding, without the 90-character limit
/// (BOLT #11 invoices are longer).
public enum Bech32 {
    /// A decoded bech32 string.
    public struct Decoded: Sendable, Hashable {
        /// The human-readable part, lower-case.
        public var humanReadablePart: String
        /// The data part as 5-bit words, without the checksum.
        public var words: [UInt8]
    }

    private static let charset: [UInt8] = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l".utf8)

    private static let reverseCharset: [Int8] = {
        var table = [Int8](repeating: -1, count: 128)
        for (i, c) in charset.enumerated() { table[Int(c)] = Int8(i) }
        return table
    }()

    private static func polymod(_ values: [UInt8]) -> UInt32 {
        let generator: [UInt32] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3]
        var chk: UInt32 = 1
        for v in values {
            let top = chk >> 25
            chk = (chk & 0x1ff_ffff) << 5 ^ UInt32(v)
            for i in 0..<5 where (top >> i) & 1 == 1 {
                chk ^= generator[i]
            }
        }
        return chk
    }

    private static func expandHRP(_ hrp: [UInt8]) -> [UInt8] {
        hrp.map { $0 >> 5 } + [0] + hrp.map { $0 & 31 }
    }

    private static func checksum(hrp: [UInt8], words: [UInt8]) -> [UInt8] {
        let mod = polymod(expandHRP(hrp) + words + [0, 0, 0, 0, 0, 0]) ^ 1
        return (0..<6).map { UInt8((mod >> (5 * (5 - $0))) & 31) }
    }

    /// Encodes a human-readable part and 5-bit words, appending the checksum. Output is lower-case.
    public static func encode(humanReadablePart hrp: String, words: [UInt8]) throws(Bech32Error) -> String {
        let hrpBytes = Array(hrp.lowercased().utf8)
        guard !hrpBytes.isEmpty else { throw .missingSeparator }
        guard hrpBytes.allSatisfy({ (33...126).contains($0) }) else { throw .invalidHumanReadablePart }
        if let bad = words.first(where: { $0 > 31 }) { throw .invalidWord(bad) }
        var out = hrpBytes
        out.append(UInt8(ascii: "1"))
        for w in words + checksum(hrp: hrpBytes, words: words) { out.append(charset[Int(w)]) }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes a bech32 string and verifies its checksum. Either all upper or all lower case.
    public static func decode(_ string: String) throws(Bech32Error) -> Decoded {
        try decode(Substring(string))
    }

    /// Decodes a bech32 string and verifies its checksum. Either all upper or all lower case.
    public static func decode(_ string: Substring) throws(Bech32Error) -> Decoded {
        var text = string
        return try text.withUTF8 { decode(utf8: $0) }.get()
    }

    /// One step of the BCH checksum over a 5-bit value (BIP-173's `polymod` loop body, without branches).
    @inline(__always)
    private static func polymodStep(_ chk: UInt32, _ value: UInt8) -> UInt32 {
        let top = chk >> 25
        var c = (chk & 0x1ff_ffff) << 5 ^ UInt32(value)
        c ^= (0 &- (top & 1)) & 0x3b6a_57b2
        c ^= (0 &- (top >> 1 & 1)) & 0x2650_8e6d
        c ^= (0 &- (top >> 2 & 1)) & 0x1ea1_19fa
        c ^= (0 &- (top >> 3 & 1)) & 0x3d42_33dd
        c ^= (0 &- (top >> 4 & 1)) & 0x2a14_62b3
        return c
    }

    /// The decoder on the string's UTF-8 bytes: one pass to validate and find the separator, one to map the data
    /// characters to words while the checksum is computed.
    private static func decode(utf8 bytes: UnsafeBufferPointer<UInt8>) -> Result<Decoded, Bech32Error> {
        var hasLower = false, hasUpper = false
        var sep = -1
        for (i, b) in bytes.enumerated() {
            guard b >= 33, b <= 126 else { return .failure(.invalidHumanReadablePart) }
            if b >= UInt8(ascii: "a"), b <= UInt8(ascii: "z") { hasLower = true }
            if b >= UInt8(ascii: "A"), b <= UInt8(ascii: "Z") { hasUpper = true }
            if b == UInt8(ascii: "1") { sep = i }
        }
        guard !(hasLower && hasUpper) else { return .failure(.mixedCase) }
        guard sep > 0 else { return .failure(.missingSeparator) }
        let dataCount = bytes.count - sep - 1
        guard dataCount >= 6 else { return .failure(.tooShort) }
        @inline(__always) func lowered(_ b: UInt8) -> UInt8 {
            b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z") ? b + 32 : b
        }
        var chk: UInt32 = 1
        for i in 0..<sep { chk = polymodStep(chk, lowered(bytes[i]) >> 5) }
        chk = polymodStep(chk, 0)
        for i in 0..<sep { chk = polymodStep(chk, lowered(bytes[i]) & 31) }
        let hrp = String(unsafeUninitializedCapacity: sep) { out in
            for i in 0..<sep { out[i] = lowered(bytes[i]) }
            return sep
        }
        var bad: UInt8?
        let table = reverseCharset
        var words = [UInt8](unsafeUninitializedCapacity: dataCount) { out, count in
            table.withUnsafeBufferPointer { table in
                for j in 0..<dataCount {
                    let c = lowered(bytes[sep + 1 + j])
                    let v = table[Int(c & 0x7f)]  // every byte here is 33...126
                    guard v >= 0 else {
                        bad = c
                        return
                    }
                    out[j] = UInt8(v)
                    chk = polymodStep(chk, UInt8(v))
                    count = j + 1
                }
            }
        }
        if let bad { return .failure(.invalidCharacter(Character(Unicode.Scalar(bad)))) }
        guard chk == 1 else { return .failure(.badChecksum) }
        words.removeLast(6)
        return .success(Decoded(humanReadablePart: hrp, words: words))
    }

    /// Regroups bits, e.g. 8-bit bytes to 5-bit words (`from: 8, to: 5`) or back.
    ///
    /// With `pad`, a final partial group is zero-padded. Without it, leftover bits must be fewer
    /// than `from` and zero (BIP-173), unless `truncate` is set, in which case leftover bits are
    /// simply dropped (BOLT #11 field data is read this way).
    public static func convertBits(
        _ data: [UInt8], from: Int, to: Int, pad: Bool, truncate: Bool = false
    ) throws(Bech32Error) -> [UInt8] {
        precondition((1...8).contains(from) && (1...8).contains(to))
        var acc: UInt32 = 0
        var bits = 0
        let maxv: UInt32 = (1 << to) - 1
        var out = [UInt8]()
        out.reserveCapacity(data.count * from / to + 1)
        for value in data {
            guard value >> from == 0 else { throw .invalidWord(value) }
            acc = (acc << from) | UInt32(value)
            bits += from
            while bits >= to {
                bits -= to
                out.append(UInt8((acc >> bits) & maxv))
            }
            acc &= (1 << bits) - 1
        }
        if pad {
            if bits > 0 { out.append(UInt8((acc << (to - bits)) & maxv)) }
        } else if !truncate && (bits >= from || (acc << (to - bits)) & maxv != 0) {
            throw .invalidPadding
        }
        return out
    }

    /// 8-bit bytes to 5-bit words, zero-padded.
    public static func bytesToWords(_ bytes: [UInt8]) -> [UInt8] {
        // Cannot fail: every byte fits in 8 bits and padding is allowed.
        (try? convertBits(bytes, from: 8, to: 5, pad: true)) ?? []
    }

    /// 5-bit words to 8-bit bytes, dropping trailing bits that do not fill a byte.
    public static func wordsToBytesTruncating(_ words: [UInt8]) -> [UInt8] {
        (try? convertBits(words.map { $0 & 31 }, from: 5, to: 8, pad: false, truncate: true)) ?? []
    }
}
