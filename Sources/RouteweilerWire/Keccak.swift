/// Keccak-256 as used by Ethereum: the original Keccak submission with multi-rate padding
/// `0x01 … 0x80` (not the FIPS 202 SHA3-256 domain byte `0x06`).
///
/// Pure and allocation-light; rate 136 bytes, capacity 512 bits, 32-byte output.
public enum Keccak256 {
    /// The sponge rate in bytes (1088 bits).
    static let rate = 136

    private static let roundConstants: [UInt64] = [
        0x0000_0000_0000_0001, 0x0000_0000_0000_8082, 0x8000_0000_0000_808A, 0x8000_0000_8000_8000,
        0x0000_0000_0000_808B, 0x0000_0000_8000_0001, 0x8000_0000_8000_8081, 0x8000_0000_0000_8009,
        0x0000_0000_0000_008A, 0x0000_0000_0000_0088, 0x0000_0000_8000_8009, 0x0000_0000_8000_000A,
        0x0000_0000_8000_808B, 0x8000_0000_0000_008B, 0x8000_0000_0000_8089, 0x8000_0000_0000_8003,
        0x8000_0000_0000_8002, 0x8000_0000_0000_0080, 0x0000_0000_0000_800A, 0x8000_0000_8000_000A,
        0x8000_0000_8000_8081, 0x8000_0000_0000_8080, 0x0000_0000_8000_0001, 0x8000_0000_8000_8008,
    ]

    /// Rotation offsets indexed by lane `x + 5y`.
    private static let rotations: [UInt64] = [
        0, 1, 62, 28, 27,
        36, 44, 6, 55, 20,
        3, 10, 43, 25, 39,
        41, 45, 15, 21, 8,
        18, 2, 61, 56, 14,
    ]

    /// Returns the 32-byte Keccak-256 digest of `bytes`.
    public static func hash(_ bytes: [UInt8]) -> [UInt8] {
        var state = [UInt64](repeating: 0, count: 25)
        var padded = bytes
        padded.append(0x01)
        while padded.count % rate != 0 { padded.append(0) }
        padded[padded.count - 1] |= 0x80

        var offset = 0
        while offset < padded.count {
            for lane in 0..<(rate / 8) {
                var word: UInt64 = 0
                for k in 0..<8 {
                    word |= UInt64(padded[offset + lane * 8 + k]) << (8 * UInt64(k))
                }
                state[lane] ^= word
            }
            permute(&state)
            offset += rate
        }

        var out = [UInt8]()
        out.reserveCapacity(32)
        for lane in 0..<4 {
            for k in 0..<8 {
                out.append(UInt8(truncatingIfNeeded: state[lane] >> (8 * UInt64(k))))
            }
        }
        return out
    }

    @inline(__always)
    private static func rotl(_ x: UInt64, _ n: UInt64) -> UInt64 {
        n == 0 ? x : (x << n) | (x >> (64 - n))
    }

    /// The Keccak-f[1600] permutation (24 rounds).
    private static func permute(_ a: inout [UInt64]) {
        var b = [UInt64](repeating: 0, count: 25)
        var c = [UInt64](repeating: 0, count: 5)
        for round in 0..<24 {
            // θ
            for x in 0..<5 {
                c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20]
            }
            for x in 0..<5 {
                let d = c[(x + 4) % 5] ^ rotl(c[(x + 1) % 5], 1)
                for y in stride(from: 0, to: 25, by: 5) {
                    a[x + y] ^= d
                }
            }
            // ρ and π
            for x in 0..<5 {
                for y in 0..<5 {
                    let src = x + 5 * y
                    let dst = y + 5 * ((2 * x + 3 * y) % 5)
                    b[dst] = rotl(a[src], rotations[src])
                }
            }
            // χ
            for y in stride(from: 0, to: 25, by: 5) {
                for x in 0..<5 {
                    a[x + y] = b[x + y] ^ (~b[(x + 1) % 5 + y] & b[(x + 2) % 5 + y])
                }
            }
            // ι
            a[0] ^= roundConstants[round]
        }
    }
}
