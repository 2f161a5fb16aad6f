import Foundation
import Testing
@testable import RouteweilerWire

// MARK: - Vector file model (shared/vectors/macaroons.json)

struct MacaroonVectorFile: Decodable, Sendable {
    struct Encodings: Decodable, Sendable {
        let hex: String
        let base64Std: String
        let base64UrlNoPad: String
    }

    struct ChainStep: Decodable, Sendable {
        let after: String
        let signatureHex: String
    }

    struct L402ID: Decodable, Sendable {
        let version: Int
        let paymentPreimageHex: String
        let paymentHashHex: String
        let tokenIdHex: String
    }

    struct MacaroonVector: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let rootKeyHex: String
        let location: String
        let identifierHex: String
        let l402Identifier: L402ID?
        let caveats: [String]
        let derivedKeyHex: String
        let signatureChain: [ChainStep]
        let signatureHex: String
        let v2: Encodings
        let v2GoEncoding: Encodings?
        var testDescription: String { name }
    }

    struct V1Example: Decodable, Sendable {
        struct NoCaveats: Decodable, Sendable {
            let hex: String
            let base64Std: String
            let base64UrlNoPad: String
            let signatureHex: String
        }

        let name: String
        let rootKeyHex: String
        let location: String
        let identifierHex: String
        let caveats: [String]
        let signatureChain: [ChainStep]
        let signatureHex: String
        let v1NoCaveats: NoCaveats
        let v1: Encodings
        let sameMacaroonV2: Encodings
    }

    struct Attenuation: Decodable, Sendable, CustomTestStringConvertible {
        struct Base: Decodable, Sendable {
            let v2Base64Std: String
            let signatureHex: String
        }

        let name: String
        let base: Base
        let addFirstPartyCaveat: String
        let expectedSignatureHex: String
        let expected: Encodings
        let rootKeyHex: String
        var testDescription: String { name }
    }

    struct Malformed: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let hex: String
        let base64Std: String
        let base64UrlNoPad: String
        let errorCategory: String
        var testDescription: String { name }
    }

    struct VerificationFailure: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let hex: String
        let base64Std: String
        let base64UrlNoPad: String
        let errorCategory: String
        let rootKeyHex: String
        var testDescription: String { name }
    }

    struct L402ChallengeVector: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let macaroon: String
        let invoice: String
        let paymentHashHex: String
        let paymentPreimageHex: String
        let wwwAuthenticateL402: String
        let wwwAuthenticateLSAT: String
        let authorizationL402: String
        let authorizationLSAT: String
        var testDescription: String { name }
    }

    let macaroons: [MacaroonVector]
    let v1Examples: [V1Example]
    let attenuation: [Attenuation]
    let malformed: [Malformed]
    let verificationFailures: [VerificationFailure]
    let l402Challenges: [L402ChallengeVector]

    static func load() throws -> MacaroonVectorFile {
        try JSONDecoder().decode(MacaroonVectorFile.self, from: Vectors.load("macaroons.json"))
    }
}

/// Hex-decodes a vector field, recording a failure (and returning []) if it is not hex.
func hex(_ s: String, sourceLocation: SourceLocation = #_sourceLocation) -> [UInt8] {
    guard let bytes = Hex.decode(s) else {
        Issue.record("vector field is not hex: \(s.prefix(40))", sourceLocation: sourceLocation)
        return []
    }
    return bytes
}

/// The caveat identifiers as UTF-8 text.
func caveatTexts(_ m: Macaroon) -> [String] {
    m.caveats.map { String(decoding: $0.identifier, as: UTF8.self) }
}

// MARK: - Decoding and encoding

@Suite("Macaroon vectors")
struct MacaroonVectorTests {
    @Test("decodes from hex bytes, standard and URL-safe base64; re-encodes byte-identically",
          arguments: try MacaroonVectorFile.load().macaroons)
    func decodeEveryEncoding(_ v: MacaroonVectorFile.MacaroonVector) throws {
        let v2 = hex(v.v2.hex)
        let decoded = [
            try Macaroon(binary: v2),
            try Macaroon(base64: v.v2.base64Std),
            try Macaroon(base64: v.v2.base64UrlNoPad),
        ]
        for m in decoded {
            #expect(m == decoded[0])
            #expect(m.location == v.location)
            #expect(m.identifier == hex(v.identifierHex))
            #expect(caveatTexts(m) == v.caveats)
            #expect(m.caveats.allSatisfy { $0.isFirstParty && $0.location == nil && $0.verificationId == nil })
            #expect(m.signature == hex(v.signatureHex))
            #expect(m.serializedV2 == v2)
            #expect(m.base64 == v.v2.base64Std)
            #expect(m.base64URL == v.v2.base64UrlNoPad)
        }
    }

    @Test("go-macaroon encoding (location omitted) decodes to the same macaroon and round-trips",
          arguments: try MacaroonVectorFile.load().macaroons.filter { $0.v2GoEncoding != nil })
    func goEncoding(_ v: MacaroonVectorFile.MacaroonVector) throws {
        let go = try #require(v.v2GoEncoding)
        let py = try Macaroon(base64: v.v2.base64Std)
        let fromGo = try Macaroon(base64: go.base64Std)
        #expect(try Macaroon(base64: go.base64UrlNoPad) == fromGo)
        #expect(fromGo.location == nil)
        #expect(py.location == "")
        #expect(fromGo.identifier == py.identifier)
        #expect(fromGo.caveats == py.caveats)
        #expect(fromGo.signature == py.signature)
        #expect(fromGo.serializedV2 == hex(go.hex))
        #expect(fromGo.verifySignature(rootKey: hex(v.rootKeyHex)))
    }

    @Test("derived key and HMAC chain match every step", arguments: try MacaroonVectorFile.load().macaroons)
    func hmacChain(_ v: MacaroonVectorFile.MacaroonVector) throws {
        let rootKey = hex(v.rootKeyHex)
        #expect(Macaroon.derivedKey(rootKey: rootKey) == hex(v.derivedKeyHex))
        let m = try Macaroon(base64: v.v2.base64Std)
        let chain = m.signatureChain(rootKey: rootKey)
        #expect(chain.map(\.hexString) == v.signatureChain.map(\.signatureHex))
        #expect(v.signatureChain.map(\.after) == ["identifier"] + v.caveats)
        #expect(m.verifySignature(rootKey: rootKey))
    }

    @Test("mint + first-party caveats reproduce each signature and the V2 bytes",
          arguments: try MacaroonVectorFile.load().macaroons)
    func mint(_ v: MacaroonVectorFile.MacaroonVector) throws {
        var m = Macaroon.mint(rootKey: hex(v.rootKeyHex), identifier: hex(v.identifierHex), location: v.location)
        #expect(m.signature.hexString == v.signatureChain[0].signatureHex)
        for (i, caveat) in v.caveats.enumerated() {
            m = m.addingFirstPartyCaveat(caveat)
            #expect(m.signature.hexString == v.signatureChain[i + 1].signatureHex, "after \(caveat)")
        }
        #expect(m.signature.hexString == v.signatureHex)
        #expect(m.serializedV2.hexString == v.v2.hex)
        #expect(m.base64 == v.v2.base64Std)
    }

    @Test("L402 identifier: version, payment hash = sha256(preimage), token id",
          arguments: try MacaroonVectorFile.load().macaroons.filter { $0.l402Identifier != nil })
    func l402Identifier(_ v: MacaroonVectorFile.MacaroonVector) throws {
        let expected = try #require(v.l402Identifier)
        let m = try Macaroon(base64: v.v2.base64Std)
        let id = try #require(m.l402Identifier)
        #expect(Int(id.version) == expected.version)
        #expect(id.paymentHash.hexString == expected.paymentHashHex)
        #expect(id.tokenID.hexString == expected.tokenIdHex)
        #expect(L402Identifier.paymentHash(forPreimage: hex(expected.paymentPreimageHex)).hexString == expected.paymentHashHex)
        #expect(id.isPaid(byPreimage: hex(expected.paymentPreimageHex)))
        #expect(!id.isPaid(byPreimage: hex(expected.paymentHashHex)))
        #expect(id.bytes == m.identifier)
    }

    @Test("a non-L402 identifier has no L402 identifier")
    func textIdentifierIsNotL402() throws {
        let v = try #require(try MacaroonVectorFile.load().macaroons.first { $0.l402Identifier == nil })
        #expect(try Macaroon(base64: v.v2.base64Std).l402Identifier == nil)
    }

    @Test("libmacaroons README V1 example decodes, verifies and re-encodes")
    func v1Example() throws {
        for v in try MacaroonVectorFile.load().v1Examples {
            let rootKey = hex(v.rootKeyHex)
            let fromHex = try Macaroon(binary: hex(v.v1.hex))
            #expect(try Macaroon(base64: v.v1.base64Std) == fromHex)
            #expect(try Macaroon(base64: v.v1.base64UrlNoPad) == fromHex)
            #expect(fromHex.location == v.location)
            #expect(fromHex.identifier == hex(v.identifierHex))
            #expect(caveatTexts(fromHex) == v.caveats)
            #expect(fromHex.signature.hexString == v.signatureHex)
            #expect(fromHex.signatureChain(rootKey: rootKey).map(\.hexString) == v.signatureChain.map(\.signatureHex))
            #expect(fromHex.verifySignature(rootKey: rootKey))
            #expect(try fromHex.serializedV1().hexString == v.v1.hex)
            // The same macaroon in V2.
            #expect(fromHex.serializedV2.hexString == v.sameMacaroonV2.hex)
            #expect(try Macaroon(base64: v.sameMacaroonV2.base64Std) == fromHex)

            let bare = try Macaroon(base64: v.v1NoCaveats.base64UrlNoPad)
            #expect(try Macaroon(base64: v.v1NoCaveats.base64Std) == bare)
            #expect(bare.caveats.isEmpty)
            #expect(bare.signature.hexString == v.v1NoCaveats.signatureHex)
            #expect(try bare.serializedV1().hexString == v.v1NoCaveats.hex)
            #expect(bare.verifySignature(rootKey: rootKey))
        }
    }

    @Test("attenuation: adding a caveat needs no root key and verifies", arguments: try MacaroonVectorFile.load().attenuation)
    func attenuation(_ v: MacaroonVectorFile.Attenuation) throws {
        let base = try Macaroon(base64: v.base.v2Base64Std)
        #expect(base.signature.hexString == v.base.signatureHex)
        let attenuated = base.addingFirstPartyCaveat(v.addFirstPartyCaveat)
        #expect(attenuated.signature.hexString == v.expectedSignatureHex)
        #expect(attenuated.serializedV2.hexString == v.expected.hex)
        #expect(attenuated.base64 == v.expected.base64Std)
        #expect(attenuated.base64URL == v.expected.base64UrlNoPad)
        #expect(attenuated.verifySignature(rootKey: hex(v.rootKeyHex)))
        #expect(try Macaroon(base64: v.expected.base64UrlNoPad) == attenuated)
        #expect(base.caveats.count + 1 == attenuated.caveats.count)
    }

    static func matches(_ error: MacaroonError, category: String) -> Bool {
        switch (category, error) {
        case ("truncated", .truncated), ("bad_version", .unsupportedVersion), ("bad_varint", .badVarint),
             ("bad_signature_length", .wrongSignatureLength):
            return true
        default:
            return false
        }
    }

    @Test("malformed encodings throw the expected kind of error", arguments: try MacaroonVectorFile.load().malformed)
    func malformed(_ v: MacaroonVectorFile.Malformed) throws {
        let attempts: [(String, () throws(MacaroonError) -> Macaroon)] = [
            ("hex", { () throws(MacaroonError) in try Macaroon(binary: hex(v.hex)) }),
            ("base64Std", { () throws(MacaroonError) in try Macaroon(base64: v.base64Std) }),
            ("base64UrlNoPad", { () throws(MacaroonError) in try Macaroon(base64: v.base64UrlNoPad) }),
        ]
        for (label, attempt) in attempts {
            do {
                let m = try attempt()
                Issue.record("\(label): decoded instead of failing: \(m)")
            } catch {
                #expect(Self.matches(error, category: v.errorCategory), "\(label): got \(error) (\(error.description)), expected \(v.errorCategory)")
            }
        }
    }

    @Test("verification failures decode but do not verify", arguments: try MacaroonVectorFile.load().verificationFailures)
    func verificationFailure(_ v: MacaroonVectorFile.VerificationFailure) throws {
        #expect(v.errorCategory == "signature_mismatch")
        for m in [try Macaroon(binary: hex(v.hex)), try Macaroon(base64: v.base64Std), try Macaroon(base64: v.base64UrlNoPad)] {
            #expect(!m.verifySignature(rootKey: hex(v.rootKeyHex)))
        }
    }

    @Test("L402 challenge vector: parse, bind to the macaroon, build Authorization", arguments: try MacaroonVectorFile.load().l402Challenges)
    func l402Challenge(_ v: MacaroonVectorFile.L402ChallengeVector) throws {
        let file = try MacaroonVectorFile.load()
        let macaroonVector = try #require(file.macaroons.first { $0.name == v.macaroon })

        let l402 = try L402Challenge(#require(AuthChallenge.parse([v.wwwAuthenticateL402]).first))
        #expect(l402.scheme == .l402)
        #expect(l402.macaroon == macaroonVector.v2.base64Std)
        #expect(l402.invoice == v.invoice)
        #expect(l402.version == nil)
        #expect(l402.authorization(preimageHex: v.paymentPreimageHex) == v.authorizationL402)
        #expect(l402.authorization(preimage: hex(v.paymentPreimageHex)) == v.authorizationL402)
        let macaroon = try #require(l402.decodedMacaroon)
        #expect(macaroon.l402Identifier?.paymentHash.hexString == v.paymentHashHex)
        #expect(macaroon.l402Identifier?.isPaid(byPreimage: hex(v.paymentPreimageHex)) == true)

        let lsat = try L402Challenge(#require(AuthChallenge.parse([v.wwwAuthenticateLSAT]).first))
        #expect(lsat.scheme == .lsat)
        #expect(lsat.authorization(preimageHex: v.paymentPreimageHex) == v.authorizationLSAT)

        // Both offered (one line or two): de-duplicated to one L402 challenge.
        for fields in [[v.wwwAuthenticateLSAT, v.wwwAuthenticateL402], [v.wwwAuthenticateLSAT + ", " + v.wwwAuthenticateL402]] {
            let all = L402Challenge.all(in: try AuthChallenge.parse(fields))
            #expect(all == [l402])
        }
    }
}

// MARK: - Caveat helpers, identifiers, edge cases

@Suite("Macaroon behaviour")
struct MacaroonBehaviourTests {
    static let rootKey = Array("a root key for tests".utf8)

    func weather() throws -> Macaroon {
        let file = try MacaroonVectorFile.load()
        let v = try #require(file.macaroons.first { $0.name == "l402_weather" })
        return try Macaroon(base64: v.v2.base64Std)
    }

    /// `firstPartyCaveat`, `expiry` and `expiredCaveat` read the caveats without building the pair list; they agree
    /// with answers derived from ``Macaroon/firstPartyCaveats`` on caveats with whitespace, duplicates, no `=`,
    /// invalid UTF-8, third-party ones and unparseable values.
    @Test func caveatQueriesAgreeWithTheListedPairs() {
        var m = Macaroon.mint(rootKey: Self.rootKey, identifier: Array("id".utf8), location: nil)
        for predicate in [" services = a:0,b:1 ", "valid_until=1700000000", "api_valid_until = 1600000000",
                          "valid_until=abc", "novalue", "x_valid_until=1650000000", "valid_until=1750000000",
                          "services=second", "xvalid_until=1000", "api_valid_until=1550000000 "] {
            m = m.addingFirstPartyCaveat(predicate)
        }
        m = m.addingFirstPartyCaveat([0xff, 0x3d, 0x31])  // invalid UTF-8 with "=1"
        m.caveats.append(.init(location: "https://third.party", identifier: Array("valid_until=1".utf8),
                               verificationId: [1, 2, 3]))
        let pairs = m.firstPartyCaveats
        for key in ["services", "valid_until", "novalue", "api_valid_until", "missing", "Services"] {
            #expect(m.firstPartyCaveat(key) == pairs.first { $0.key == key }?.value, "\(key)")
        }
        for service in [nil, "api", "x", "none"] as [String?] {
            let keys = ["valid_until"] + (service.map { ["\($0)_valid_until"] } ?? [])
            let expected = pairs.filter { keys.contains($0.key) }.compactMap { UInt64($0.value) }.min()
            #expect(m.expiry(service: service) == expected, "\(service ?? "nil")")
        }
        #expect(m.expiry(service: "api") == 1_550_000_000)
        for now: UInt64 in [0, 1_000, 1_549_999_999, 1_550_000_000, 1_600_000_000, 1_650_000_000, 1_800_000_000] {
            let expected = pairs.first { c in
                (c.key == "valid_until" || c.key.hasSuffix("_valid_until")) && UInt64(c.value).map { $0 <= now } == true
            }?.key
            #expect(m.expiredCaveat(now: now) == expected, "\(now)")
        }
        #expect(m.expiredCaveat(now: 1_600_000_000) == "api_valid_until")
        // Keys compare as Strings do: the Kelvin sign is canonically a K.
        let kelvin = Macaroon.mint(rootKey: Self.rootKey, identifier: Array("id".utf8), location: nil)
            .addingFirstPartyCaveat("\u{212A}ey=1").addingFirstPartyCaveat("\u{212A}_valid_until=5")
        #expect(kelvin.firstPartyCaveat("Key") == "1")
        #expect(kelvin.expiry(service: "K") == 5)
    }

    @Test func firstPartyCaveatsAndExpiry() throws {
        let m = try weather()
        #expect(m.firstPartyCaveats.map(\.key) == ["services", "weather_valid_until"])
        #expect(m.firstPartyCaveats.map(\.value) == ["weather:0", "1900000000"])
        #expect(m.firstPartyCaveat("services") == "weather:0")
        #expect(m.firstPartyCaveat("Services") == nil)
        #expect(m.expiry(service: "weather") == 1_900_000_000)
        #expect(m.expiry(service: "news") == nil)
        #expect(m.expiry(service: nil) == nil)
        #expect(m.expiredCaveat(now: 1_899_999_999) == nil)
        #expect(m.expiredCaveat(now: 1_900_000_000) == "weather_valid_until")

        let tighter = m.addingFirstPartyCaveat("valid_until=1800000000")
        #expect(tighter.expiry(service: "weather") == 1_800_000_000)
        #expect(tighter.expiry(service: nil) == 1_800_000_000)
        #expect(tighter.expiredCaveat(now: 1_850_000_000) == "valid_until")
        #expect(tighter.expiredCaveat(now: 1_950_000_000) == "weather_valid_until")
    }

    @Test func caveatParsingTrimsAndSkips() {
        let m = Macaroon.mint(rootKey: Self.rootKey, identifier: [1, 2, 3], location: nil)
            .addingFirstPartyCaveat(" account = 3735928559 ")
            .addingFirstPartyCaveat("time < 2020-01-01T00:00")
            .addingFirstPartyCaveat("a=b=c")
            .addingFirstPartyCaveat([0xFF, 0x3D, 0x41])
            .addingFirstPartyCaveat("valid_until=soon")
        #expect(m.firstPartyCaveats.map(\.key) == ["account", "a", "valid_until"])
        #expect(m.firstPartyCaveat("a") == "b=c")
        #expect(m.firstPartyCaveat("account") == "3735928559")
        #expect(m.expiry(service: nil) == nil)
        #expect(m.expiredCaveat(now: .max) == nil)
        #expect(m.verifySignature(rootKey: Self.rootKey))
        #expect(!m.verifySignature(rootKey: Self.rootKey + [0]))
    }

    @Test func tamperingBreaksVerification() throws {
        let file = try MacaroonVectorFile.load()
        let v = try #require(file.macaroons.first { $0.name == "l402_weather" })
        let rootKey = hex(v.rootKeyHex)
        let m = try Macaroon(base64: v.v2.base64Std)
        #expect(m.verifySignature(rootKey: rootKey))
        var dropped = m
        dropped.caveats.removeLast()
        #expect(!dropped.verifySignature(rootKey: rootKey))
        var shortSignature = m
        shortSignature.signature = Array(m.signature.dropLast())
        #expect(!shortSignature.verifySignature(rootKey: rootKey))
        var flipped = m
        flipped.signature[31] ^= 1
        #expect(!flipped.verifySignature(rootKey: rootKey))
        var otherIdentifier = m
        otherIdentifier.identifier[2] ^= 1
        #expect(!otherIdentifier.verifySignature(rootKey: rootKey))
        #expect(otherIdentifier.l402Identifier?.paymentHash != m.l402Identifier?.paymentHash)
        // The location is not covered by the signature.
        var moved = m
        moved.location = "elsewhere"
        #expect(moved.verifySignature(rootKey: rootKey))
    }

    @Test func l402IdentifierValidation() throws {
        let hash = [UInt8](repeating: 0xAB, count: 32), token = [UInt8](repeating: 0xCD, count: 32)
        let id = L402Identifier(paymentHash: hash, tokenID: token)
        #expect(id.bytes.count == 66)
        #expect(try L402Identifier(bytes: id.bytes) == id)
        #expect(throws: MacaroonError.invalidL402Identifier("65 bytes, expected 66")) {
            try L402Identifier(bytes: Array(id.bytes.dropLast()))
        }
        #expect(throws: MacaroonError.invalidL402Identifier("version 1, expected 0")) {
            try L402Identifier(bytes: [0, 1] + hash + token)
        }
    }

    @Test func thirdPartyCaveatRoundTrips() throws {
        var m = Macaroon.mint(rootKey: Self.rootKey, identifier: Array("id".utf8), location: "https://a")
            .addingFirstPartyCaveat("x=1")
        let third = Macaroon.Caveat(location: "https://tp", identifier: Array("tp-id".utf8), verificationId: Array(repeating: 7, count: 72))
        m.caveats.append(third)
        m.signature = Macaroon.chain(m.signature, third)
        #expect(!third.isFirstParty)
        let decoded = try Macaroon(binary: m.serializedV2)
        #expect(decoded == m)
        #expect(try Macaroon(binary: m.serializedV1()) == m)
        #expect(try Macaroon(base64: m.base64URL) == m)
        #expect(decoded.verifySignature(rootKey: Self.rootKey))
        #expect(decoded.firstPartyCaveats.map(\.key) == ["x"])
    }

    static func caseName(_ error: MacaroonError) -> String {
        switch error {
        case .invalidBase64: "invalidBase64"
        case .truncated: "truncated"
        case .unsupportedVersion: "unsupportedVersion"
        case .badVarint: "badVarint"
        case .unknownField: "unknownField"
        case .fieldsOutOfOrder: "fieldsOutOfOrder"
        case .missingIdentifier: "missingIdentifier"
        case .missingSignature: "missingSignature"
        case .wrongSignatureLength: "wrongSignatureLength"
        case .trailingData: "trailingData"
        case .invalidV1Packet: "invalidV1Packet"
        case .invalidUTF8: "invalidUTF8"
        case .packetTooLarge: "packetTooLarge"
        case .invalidL402Identifier: "invalidL402Identifier"
        }
    }

    static let v1Signature = "303032667369676e617475726520" + String(repeating: "00", count: 32) + "0a"
    static let zeroSignature = "0620" + String(repeating: "00", count: 32)

    @Test("structural errors", arguments: [
        // header: identifier (2) then location (1)
        ("0202016101016100", "fieldsOutOfOrder"),
        // header with unknown field type 3
        ("020301610000", "unknownField"),
        // vid (4) is not allowed in the header
        ("02020161040161000000" + zeroSignature, "unknownField"),
        // header with only a location
        ("02010161000000" + zeroSignature, "missingIdentifier"),
        // caveat section with only a vid
        ("02020161000401610000" + zeroSignature, "missingIdentifier"),
        // an identifier where the signature should be
        ("020201610000020161", "missingSignature"),
        // a bytes left after the signature
        ("0202016100000620" + String(repeating: "00", count: 32) + "99", "trailingData"),
        // varint of 10 bytes whose last byte carries more than bit 63
        ("0201ffffffffffffffffff02", "badVarint"),
        // location not UTF-8
        ("020101ff0202016100" + "00" + zeroSignature, "invalidUTF8"),
        // V1: packet without a trailing newline
        ("303030386b657920", "invalidV1Packet"),
        // V1: non-hex length
        ("30307a386b65790a", "invalidV1Packet"),
        // V1: packet longer than the data
        ("303066666b657920", "truncated"),
        // V1: no signature packet
        ("303031316964656e74696669657220780a", "missingSignature"),
        // V1: unknown key
        ("303031316964656e74696669657220780a" + "303030636f6f70732078790a" + v1Signature, "invalidV1Packet"),
        // V1: signature of 31 bytes
        ("303031316964656e74696669657220780a" + "303032657369676e617475726520" + String(repeating: "00", count: 31) + "0a", "wrongSignatureLength"),
    ])
    func structuralErrors(_ input: String, _ expected: String) {
        do {
            let m = try Macaroon(binary: hex(input))
            Issue.record("decoded \(m)")
        } catch {
            #expect(Self.caseName(error) == expected, "got \(error.description)")
        }
    }

    @Test func invalidBase64() {
        #expect(throws: MacaroonError.invalidBase64) { try Macaroon(base64: "AgEE*") }
        #expect(throws: MacaroonError.invalidBase64) { try Macaroon(base64: "AgEEb") }  // 4n+1 characters
    }

    @Test func base64Codec() {
        #expect(Base64.encode([0xFB, 0xFF, 0xBF, 0x03, 0xEF, 0xFF]) == "+/+/A+//")
        #expect(Base64.encodeURL([0xFB, 0xFF, 0xBF, 0x03, 0xEF, 0xFF]) == "-_-_A-__")
        #expect(Base64.encode(Array("hello".utf8)) == "aGVsbG8=")
        #expect(Base64.encodeURL(Array("hello".utf8)) == "aGVsbG8")
        #expect(Base64.encode([]) == "")
        #expect(Base64.decode("aGVsbG8=") == Array("hello".utf8))
        #expect(Base64.decode("aGVsbG8") == Array("hello".utf8))
        #expect(Base64.decode("__4") == [0xFF, 0xFE])
        #expect(Base64.decode("//4=") == [0xFF, 0xFE])
        #expect(Base64.decode("__4", alphabet: .standard) == nil)
        #expect(Base64.decode("//4", alphabet: .url) == nil)
        #expect(Base64.decode("AB") == nil)        // non-zero trailing bits
        #expect(Base64.decode("aGVs\nbG8") == nil) // embedded newline
        #expect(Base64.decode("aGVsbG8==") == nil) // too much padding
        #expect(Base64.decode("A") == nil)
        #expect(Base64.decode("") == [])
    }
}
