import Testing
@testable import RouteweilerWire

@Suite("Bech32")
struct Bech32Tests {
    /// BIP-173 valid bech32 strings (including one past the old 90-character limit).
    @Test("BIP-173 valid strings decode and re-encode", arguments: [
        "A12UEL5L",
        "a12uel5l",
        "an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
        "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
        "11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
        "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w",
        "?1ezyfcl",
    ])
    func validStrings(_ string: String) throws {
        let decoded = try Bech32.decode(string)
        #expect(decoded.humanReadablePart == decoded.humanReadablePart.lowercased())
        #expect(try Bech32.encode(humanReadablePart: decoded.humanReadablePart, words: decoded.words) == string.lowercased())
    }

    @Test func decodedContents() throws {
        let decoded = try Bech32.decode("abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw")
        #expect(decoded.humanReadablePart == "abcdef")
        #expect(decoded.words == Array(0...31))
        let empty = try Bech32.decode("A12UEL5L")
        #expect(empty.humanReadablePart == "a")
        #expect(empty.words.isEmpty)
    }

    @Test("BIP-173 invalid strings are rejected", arguments: [
        ("\u{20}1nwldj5", Bech32Error.invalidHumanReadablePart),
        ("\u{7F}1axkwrx", .invalidHumanReadablePart),
        ("pzry9x0s0muk", .missingSeparator),
        ("1pzry9x0s0muk", .missingSeparator),
        ("x1b4n0q5v", .invalidCharacter("b")),
        ("li1dgmt3", .tooShort),
        ("A1G7SGD8", .badChecksum),
        ("10a06t8", .missingSeparator),
        ("1qzzfhee", .missingSeparator),
        ("a12UEL5L", .mixedCase),
        ("a12uel5m", .badChecksum),
    ])
    func invalidStrings(_ string: String, _ expected: Bech32Error) {
        #expect(throws: expected) { try Bech32.decode(string) }
    }

    @Test func noLengthLimit() throws {
        let words = (0..<2000).map { UInt8($0 % 32) }
        let encoded = try Bech32.encode(humanReadablePart: "lnbc", words: words)
        #expect(encoded.count == 4 + 1 + 2000 + 6)
        #expect(try Bech32.decode(encoded).words == words)
        #expect(try Bech32.decode(encoded.uppercased()).words == words)
    }

    @Test func everySingleSubstitutionIsDetected() throws {
        let valid = "split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w"
        let alphabet = Array("qpzry9x8gf2tvdw0s3jn54khce6mua7l")
        var chars = Array(valid)
        for i in 6..<chars.count {
            let original = chars[i]
            for replacement in alphabet where replacement != original {
                chars[i] = replacement
                #expect(throws: Bech32Error.badChecksum) { try Bech32.decode(String(chars)) }
            }
            chars[i] = original
        }
    }

    @Test func encoderRejectsBadInput() throws {
        #expect(throws: Bech32Error.invalidWord(32)) { try Bech32.encode(humanReadablePart: "a", words: [32]) }
        #expect(throws: Bech32Error.missingSeparator) { try Bech32.encode(humanReadablePart: "", words: []) }
        #expect(throws: Bech32Error.invalidHumanReadablePart) { try Bech32.encode(humanReadablePart: "a b", words: []) }
        // Output is lower-case even for an upper-case hrp.
        #expect(try Bech32.encode(humanReadablePart: "LN", words: [1]) == Bech32.encode(humanReadablePart: "ln", words: [1]))
    }

    @Test func regrouping() throws {
        let bytes: [UInt8] = [0x00, 0x01, 0xff, 0x80, 0x7f, 0x42, 0xde, 0xad, 0xbe, 0xef, 0x11]
        let words = Bech32.bytesToWords(bytes)
        #expect(words.count == (bytes.count * 8 + 4) / 5)
        #expect(words.allSatisfy { $0 < 32 })
        #expect(try Bech32.convertBits(words, from: 5, to: 8, pad: false) == bytes)
        #expect(Bech32.wordsToBytesTruncating(words) == bytes)
        #expect(Bech32.bytesToWords([0xff]) == [31, 28])
        #expect(Bech32.bytesToWords([]) == [])

        // Strict mode: non-zero padding bits, or a whole extra group of padding, are rejected.
        #expect(throws: Bech32Error.invalidPadding) { try Bech32.convertBits([31, 29], from: 5, to: 8, pad: false) }
        #expect(throws: Bech32Error.invalidPadding) { try Bech32.convertBits([31, 28, 0], from: 5, to: 8, pad: false) }
        #expect(throws: Bech32Error.invalidWord(32)) { try Bech32.convertBits([32], from: 5, to: 8, pad: false) }
        // Truncating mode drops the leftover bits.
        #expect(Bech32.wordsToBytesTruncating([31, 29]) == [0xff])
        #expect(Bech32.wordsToBytesTruncating([31, 28, 0]) == [0xff])
        #expect(Bech32.wordsToBytesTruncating([1]) == [])
    }
}
