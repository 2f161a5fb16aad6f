import Foundation
import Testing
@testable import RouteweilerWire

// MARK: - Vector model (shared/vectors/bolt11.json)

struct Bolt11VectorFile: Decodable, Sendable {
    struct Fallback: Decodable, Sendable {
        let address: String
        let version: UInt8
        let type: String
        let programHex: String
    }

    struct Hop: Decodable, Sendable {
        let pubkey: String
        let shortChannelId: String
        let shortChannelIdU64: UInt64
        let feeBaseMsat: UInt32
        let feeProportionalMillionths: UInt32
        let cltvExpiryDelta: UInt16
    }

    struct Expected: Decodable, Sendable {
        let hrp: String
        let network: String
        let networkName: String
        let amountMsat: UInt64?
        let timestamp: UInt64
        let paymentHash: String
        let paymentSecret: String?
        let description: String?
        let descriptionHash: String?
        let descriptionPreimage: String?
        let expirySeconds: UInt64
        let expiryFieldPresent: Bool
        let minFinalCltvExpiry: UInt64
        let minFinalCltvExpiryFieldPresent: Bool
        let fallbackAddresses: [Fallback]
        let routeHints: [[Hop]]
        let featureBits: [Int]
        let metadata: String?
        let payeePubkey: String
        let payeeFromNField: Bool
        let expiresAt: UInt64
    }

    struct Signature: Decodable, Sendable {
        let rsHex: String
        let recoveryId: UInt8
        let signingDataHex: String
        let signingHashHex: String
    }

    struct Valid: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let invoice: String
        let expected: Expected
        let signature: Signature
        var testDescription: String { name }
    }

    struct Invalid: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let invoice: String
        let errorCategory: String
        let reason: String
        var testDescription: String { name }
    }

    struct Inputs: Decodable, Sendable {
        let network: String
        let amountMsat: UInt64?
        let timestamp: UInt64
        let paymentHashHex: String
        let paymentPreimageHex: String
        let paymentSecretHex: String
        let description: String?
        let descriptionHashPreimage: String?
        let expirySeconds: UInt64?
        let minFinalCltvExpiry: UInt64?
        let featureBits: [Int]
        let tagOrder: [String]
        let hrpAmountOverride: String?
    }

    struct Generated: Decodable, Sendable, CustomTestStringConvertible {
        let name: String
        let invoice: String
        let inputs: Inputs
        let expected: Expected
        let signature: Signature
        var testDescription: String { name }
    }

    struct GeneratedKey: Decodable, Sendable {
        let privateKeyHex: String
        let publicKeyHex: String
        let paymentSecretHex: String
    }

    struct SpecInfo: Decodable, Sendable {
        let signingPrivateKeyHex: String
        let signingPublicKeyHex: String
    }

    let spec: SpecInfo
    let specValid: [Valid]
    let specInvalid: [Invalid]
    let generatedKey: GeneratedKey
    let generated: [Generated]
    let generatedInvalid: [Invalid]

    static func load() throws -> Bolt11VectorFile {
        try JSONDecoder().decode(Bolt11VectorFile.self, from: Vectors.load("bolt11.json"))
    }
}

// MARK: - Helpers

fileprivate func hex(_ string: String) -> [UInt8] {
    guard let bytes = Hex.decode(string) else {
        Issue.record("bad hex in vector: \(string)")
        return []
    }
    return bytes
}

fileprivate func network(fromCode code: String) -> LightningNetwork? {
    switch code {
    case "bc": return .bitcoin
    case "tb": return .bitcoinTestnet
    case "tbs": return .bitcoinSignet
    case "bcrt": return .bitcoinRegtest
    default: return nil
    }
}

/// Asserts every field of a decoded invoice against the vector's `expected` block.
fileprivate func assertMatches(_ invoice: Bolt11Invoice, _ e: Bolt11VectorFile.Expected, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(invoice.humanReadablePart == e.hrp, sourceLocation: sourceLocation)
    #expect(invoice.network == network(fromCode: e.network), sourceLocation: sourceLocation)
    #expect(invoice.amountMsat == e.amountMsat, sourceLocation: sourceLocation)
    #expect(invoice.timestamp == e.timestamp, sourceLocation: sourceLocation)
    #expect(invoice.paymentHash.hexString == e.paymentHash, sourceLocation: sourceLocation)
    #expect(invoice.paymentSecret.hexString == e.paymentSecret, sourceLocation: sourceLocation)
    #expect(invoice.description == e.description, sourceLocation: sourceLocation)
    #expect(invoice.descriptionHash?.hexString == e.descriptionHash, sourceLocation: sourceLocation)
    if let preimage = e.descriptionPreimage {
        #expect(invoice.descriptionHash == Bolt11Invoice.sha256(Array(preimage.utf8)), sourceLocation: sourceLocation)
    }
    #expect(invoice.expirySeconds == e.expirySeconds, sourceLocation: sourceLocation)
    #expect(invoice.expiresAt == e.expiresAt, sourceLocation: sourceLocation)
    #expect(invoice.minFinalCltvExpiry == e.minFinalCltvExpiry, sourceLocation: sourceLocation)
    #expect(invoice.features.bits == e.featureBits, sourceLocation: sourceLocation)
    #expect(invoice.metadata?.hexString == e.metadata, sourceLocation: sourceLocation)
    #expect(invoice.payeePublicKey.hexString == e.payeePubkey, sourceLocation: sourceLocation)
    #expect(invoice.payeePublicKeyFromNField == e.payeeFromNField, sourceLocation: sourceLocation)

    #expect(invoice.fallbackAddresses.count == e.fallbackAddresses.count, sourceLocation: sourceLocation)
    for (got, want) in zip(invoice.fallbackAddresses, e.fallbackAddresses) {
        #expect(got.version == want.version, sourceLocation: sourceLocation)
        #expect(got.program.hexString == want.programHex, sourceLocation: sourceLocation)
    }

    #expect(invoice.routeHints.count == e.routeHints.count, sourceLocation: sourceLocation)
    for (gotHint, wantHint) in zip(invoice.routeHints, e.routeHints) {
        #expect(gotHint.count == wantHint.count, sourceLocation: sourceLocation)
        for (got, want) in zip(gotHint, wantHint) {
            #expect(got.pubkey.hexString == want.pubkey, sourceLocation: sourceLocation)
            #expect(got.shortChannelId == want.shortChannelIdU64, sourceLocation: sourceLocation)
            #expect(got.shortChannelIdString == want.shortChannelId, sourceLocation: sourceLocation)
            #expect(got.feeBaseMsat == want.feeBaseMsat, sourceLocation: sourceLocation)
            #expect(got.feeProportionalMillionths == want.feeProportionalMillionths, sourceLocation: sourceLocation)
            #expect(got.cltvExpiryDelta == want.cltvExpiryDelta, sourceLocation: sourceLocation)
        }
    }
}

fileprivate func assertSignature(_ invoice: Bolt11Invoice, _ raw: String, _ s: Bolt11VectorFile.Signature, sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(invoice.signature.hexString == s.rsHex, sourceLocation: sourceLocation)
    #expect(invoice.signatureRecoveryId == s.recoveryId, sourceLocation: sourceLocation)
    let decoded = try Bech32.decode(raw)
    let body = Array(decoded.words.dropLast(104))
    let packed = try Bech32.convertBits(body, from: 5, to: 8, pad: true)
    #expect((Array(decoded.humanReadablePart.utf8) + packed).hexString == s.signingDataHex, sourceLocation: sourceLocation)
    let digest = Bolt11Invoice.signingHash(humanReadablePart: decoded.humanReadablePart, dataWords: body)
    #expect(digest.hexString == s.signingHashHex, sourceLocation: sourceLocation)
}

/// Whether `error` is the failure a vector's `errorCategory` describes.
fileprivate func bolt11Error(_ error: Bolt11Error, matches category: String) -> Bool {
    switch (category, error) {
    case ("bad_checksum", .badChecksum): return true
    case ("malformed_bech32", .invalidBech32(.missingSeparator)): return true
    case ("mixed_case", .invalidBech32(.mixedCase)): return true
    case ("bad_signature", .invalidSignature): return true
    case ("too_short", .truncatedData): return true
    case ("invalid_amount", .invalidAmount), ("invalid_amount", .subMillisatoshiAmount): return true
    case ("missing_payment_secret", .missingPaymentSecret): return true
    case ("unknown_required_feature", .unknownRequiredFeature): return true
    case ("unknown_prefix", .unknownNetwork): return true
    default: return false
    }
}

/// Re-signs an invoice body under a new hrp with `key` (to build otherwise-valid invoices with
/// unusual human-readable parts).
fileprivate func resign(hrp: String, body: [UInt8], key: Secp256k1.PrivateKey) throws -> String {
    let digest = Bolt11Invoice.signingHash(humanReadablePart: hrp, dataWords: body)
    let sig = try key.signRecoverable(digest32: digest)
    return try Bech32.encode(humanReadablePart: hrp, words: body + Bech32.bytesToWords(sig.compact + [UInt8(sig.recoveryId)]))
}

/// Decodes without the signature check and re-encodes after `transform` changes the words.
fileprivate func tamper(_ invoice: String, _ transform: (inout [UInt8]) -> Void) throws -> String {
    let decoded = try Bech32.decode(invoice)
    var words = decoded.words
    transform(&words)
    return try Bech32.encode(humanReadablePart: decoded.humanReadablePart, words: words)
}

fileprivate func expectBolt11Error(_ invoice: String, sourceLocation: SourceLocation = #_sourceLocation, _ check: (Bolt11Error) -> Bool) {
    do throws(Bolt11Error) {
        let parsed = try Bolt11Invoice(parsing: invoice)
        Issue.record("expected an error, decoded \(parsed.paymentHash.hexString)", sourceLocation: sourceLocation)
    } catch {
        #expect(check(error), "unexpected error: \(error)", sourceLocation: sourceLocation)
    }
}

// MARK: - Tests

@Suite("BOLT #11")
struct Bolt11Tests {
    static let vectors: Bolt11VectorFile? = try? Bolt11VectorFile.load()

    static func file() throws -> Bolt11VectorFile {
        try #require(vectors, "bolt11.json not found: \(Vectors.candidates("bolt11.json"))")
    }

    @Test func vectorFileHasExpectedShape() throws {
        let v = try Self.file()
        #expect(v.specValid.count == 16)
        #expect(v.specInvalid.count == 10)
        #expect(v.generated.count == 18)
        #expect(v.generatedInvalid.count == 3)
    }

    @Test("spec examples decode", arguments: try Bolt11VectorFile.load().specValid)
    func specValid(_ vector: Bolt11VectorFile.Valid) throws {
        let invoice = try Bolt11Invoice(parsing: vector.invoice)
        assertMatches(invoice, vector.expected)
        try assertSignature(invoice, vector.invoice, vector.signature)
        #expect(invoice.paymentRequest == vector.invoice.lowercased())
    }

    @Test("spec invalid examples are rejected", arguments: try Bolt11VectorFile.load().specInvalid)
    func specInvalid(_ vector: Bolt11VectorFile.Invalid) {
        expectBolt11Error(vector.invoice) { bolt11Error($0, matches: vector.errorCategory) }
    }

    @Test("generated invalid invoices are rejected", arguments: try Bolt11VectorFile.load().generatedInvalid)
    func generatedInvalid(_ vector: Bolt11VectorFile.Invalid) {
        expectBolt11Error(vector.invoice) { bolt11Error($0, matches: vector.errorCategory) }
    }

    @Test("generated invoices decode to the generated key", arguments: try Bolt11VectorFile.load().generated)
    func generated(_ vector: Bolt11VectorFile.Generated) throws {
        let file = try Self.file()
        let invoice = try Bolt11Invoice(parsing: vector.invoice)
        assertMatches(invoice, vector.expected)
        try assertSignature(invoice, vector.invoice, vector.signature)
        #expect(invoice.payeePublicKey.hexString == file.generatedKey.publicKeyHex)
        let key = try Secp256k1.PrivateKey(bytes: hex(file.generatedKey.privateKeyHex))
        #expect(invoice.payeePublicKey == key.publicKey.compressed)
        #expect(Bolt11Invoice.sha256(hex(vector.inputs.paymentPreimageHex)) == invoice.paymentHash)
        #expect(invoice.amountSats == vector.inputs.amountMsat.map { $0 / 1000 })
    }

    @Test("encoder re-creates generated invoices", arguments: try Bolt11VectorFile.load().generated)
    func encoderRecreates(_ vector: Bolt11VectorFile.Generated) throws {
        let file = try Self.file()
        let key = try Secp256k1.PrivateKey(bytes: hex(file.generatedKey.privateKeyHex))
        let inputs = vector.inputs
        let net = try #require(network(fromCode: inputs.network))
        let made = try Bolt11Invoice.sign(
            network: net,
            amountMsat: inputs.amountMsat,
            timestamp: inputs.timestamp,
            paymentHash: hex(inputs.paymentHashHex),
            paymentSecret: hex(inputs.paymentSecretHex),
            description: inputs.description,
            descriptionHash: inputs.descriptionHashPreimage.map { Bolt11Invoice.sha256(Array($0.utf8)) },
            expirySeconds: inputs.expirySeconds,
            minFinalCltvExpiry: inputs.minFinalCltvExpiry,
            featureBits: inputs.featureBits,
            privateKey: key
        )
        let original = try Bolt11Invoice(parsing: vector.invoice)
        if inputs.hrpAmountOverride == nil {
            // Same inputs, same tag order, RFC 6979: byte-identical.
            #expect(made.paymentRequest == vector.invoice)
            #expect(made == original)
        } else {
            // The vector's hrp was written by hand (e.g. 25000p); ours is the shortest form.
            #expect(made.paymentRequest != vector.invoice)
            #expect(made.amountMsat == original.amountMsat)
            #expect(made.humanReadablePart.count < original.humanReadablePart.count)
        }
        assertMatches(made, vector.expected.withHRP(made.humanReadablePart))
    }

    @Test func spec_signatureKeyMatchesSpec() throws {
        let file = try Self.file()
        let key = try Secp256k1.PrivateKey(bytes: hex(file.spec.signingPrivateKeyHex))
        #expect(key.publicKey.compressed.hexString == file.spec.signingPublicKeyHex)
        // Every spec example except the high-S one recovers the spec's key.
        for vector in file.specValid where vector.name != "high_s_signature_recovery" {
            let invoice = try Bolt11Invoice(parsing: vector.invoice)
            #expect(invoice.payeePublicKey == key.publicKey.compressed, "\(vector.name)")
        }
    }

    @Test func encoderReproducesSpecSignature() throws {
        // Re-signing the spec's first example body with the spec key gives the spec's signature.
        let file = try Self.file()
        let vector = try #require(file.specValid.first { $0.name == "donation_no_amount" })
        let key = try Secp256k1.PrivateKey(bytes: hex(file.spec.signingPrivateKeyHex))
        let decoded = try Bech32.decode(vector.invoice)
        let again = try resign(hrp: decoded.humanReadablePart, body: Array(decoded.words.dropLast(104)), key: key)
        #expect(again == vector.invoice)
    }

    @Test("a flipped character fails the checksum", arguments: [20, 60, 120, 200])
    func flippedCharacter(position: Int) throws {
        let file = try Self.file()
        for vector in file.generated.prefix(4) {
            var chars = Array(vector.invoice)
            let index = min(position, chars.count - 1)
            chars[index] = chars[index] == "q" ? "p" : "q"
            expectBolt11Error(String(chars)) { $0 == .badChecksum }
        }
    }

    @Test func corruptedSignatureFailsWithPayeeField() throws {
        let file = try Self.file()
        let key = try Secp256k1.PrivateKey(bytes: hex(file.generatedKey.privateKeyHex))
        let invoice = try Bolt11Invoice.sign(
            network: .bitcoinRegtest, amountMsat: 10_000, timestamp: 1_764_547_200,
            paymentHash: [UInt8](repeating: 0xab, count: 32), paymentSecret: [UInt8](repeating: 0x11, count: 32),
            description: "with n", descriptionHash: nil, includePayeePublicKey: true, privateKey: key
        )
        #expect(invoice.payeePublicKeyFromNField)
        #expect(invoice.payeePublicKey == key.publicKey.compressed)

        // Flip bits inside r (word 20 of the 104 signature words).
        let badSig = try tamper(invoice.paymentRequest) { words in words[words.count - 84] ^= 0x01 }
        expectBolt11Error(badSig) { $0 == .invalidSignature }

        // Change the signed body (the timestamp) and keep the signature.
        let badBody = try tamper(invoice.paymentRequest) { words in words[6] ^= 0x01 }
        expectBolt11Error(badBody) { $0 == .invalidSignature }
    }

    @Test func corruptedSignatureWithoutPayeeFieldFailsOrChangesPayee() throws {
        let file = try Self.file()
        for vector in file.generated {
            // s-part corruption: either no key recovers, or a different key does — never ours.
            let bad = try tamper(vector.invoice) { words in words[words.count - 30] ^= 0x04 }
            do throws(Bolt11Error) {
                let parsed = try Bolt11Invoice(parsing: bad)
                #expect(parsed.payeePublicKey.hexString != file.generatedKey.publicKeyHex)
            } catch {
                #expect(error == .invalidSignature)
            }
            // An out-of-range recovery id (the 65th byte) is always an invalid signature.
            let badRecid = try tamper(vector.invoice) { words in
                // The 104 words pack 520 bits exactly; the last two words carry the 65th byte
                // (and two low bits of s): all ones gives recovery id 255.
                words[words.count - 1] = 0x1f
                words[words.count - 2] = 0x1f
            }
            expectBolt11Error(badRecid) { $0 == .invalidSignature }
        }
    }

    @Test func networkDetection() throws {
        let file = try Self.file()
        for vector in file.generated {
            let invoice = try Bolt11Invoice(parsing: vector.invoice)
            let expected: LightningNetwork = vector.name.hasPrefix("regtest") ? .bitcoinRegtest : .bitcoin
            #expect(invoice.network == expected, "\(vector.name)")
            #expect(invoice.paymentRequest.hasPrefix(expected.bolt11Prefix))
        }
        // Testnet versus signet: lntb versus lntbs, both round-trip through the encoder.
        let key = try Secp256k1.PrivateKey(bytes: hex(file.generatedKey.privateKeyHex))
        for net in LightningNetwork.allKnown {
            let invoice = try Bolt11Invoice.sign(
                network: net, amountMsat: 1000, timestamp: 1_764_547_200,
                paymentHash: [UInt8](repeating: 1, count: 32), paymentSecret: [UInt8](repeating: 2, count: 32),
                description: "net", descriptionHash: nil, privateKey: key
            )
            #expect(invoice.network == net)
            #expect(invoice.humanReadablePart == net.bolt11Prefix + "10n")
            #expect(try Bolt11Invoice(parsing: invoice.paymentRequest).network == net)
        }
        // An unknown currency with a valid checksum and signature.
        let vector = try #require(file.generatedInvalid.first { $0.name == "unknown_currency_prefix" })
        expectBolt11Error(vector.invoice) { $0 == .unknownNetwork("xy") }
        // A non-"ln" hrp.
        let body = Array(try Bech32.decode(file.generated[0].invoice).words.dropLast(104))
        expectBolt11Error(try resign(hrp: "bc10n", body: body, key: key)) { if case .unknownNetwork = $0 { true } else { false } }
        expectBolt11Error(try resign(hrp: "lnsb10n", body: body, key: key)) { $0 == .unknownNetwork("sb") }
    }

    @Test func lightningNetworkNames() throws {
        #expect(LightningNetwork(rawValue: "bitcoin") == .bitcoin)
        #expect(LightningNetwork(rawValue: "mainnet") == .bitcoin)
        #expect(LightningNetwork(rawValue: "testnet") == .bitcoinTestnet)
        #expect(LightningNetwork(rawValue: "bitcoin-signet") == .bitcoinSignet)
        #expect(LightningNetwork(rawValue: "regtest") == .bitcoinRegtest)
        #expect(LightningNetwork(rawValue: "litecoin") == nil)
        #expect(LightningNetwork.bitcoinRegtest.description == "bitcoin-regtest")
        #expect(LightningNetwork.bitcoinSignet.bolt11Prefix == "lntbs")
        let json = try JSONEncoder().encode([LightningNetwork.bitcoinTestnet])
        #expect(String(decoding: json, as: UTF8.self) == "[\"bitcoin-testnet\"]")
        #expect(try JSONDecoder().decode([LightningNetwork].self, from: Data("[\"regtest\"]".utf8)) == [.bitcoinRegtest])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([LightningNetwork].self, from: Data("[\"dogecoin\"]".utf8))
        }
    }

    @Test func amountParsingRules() throws {
        let file = try Self.file()
        let key = try Secp256k1.PrivateKey(bytes: hex(file.generatedKey.privateKeyHex))
        let body = Array(try Bech32.decode(file.generated[0].invoice).words.dropLast(104))
        func parse(_ hrp: String) throws -> Bolt11Invoice { try Bolt11Invoice(parsing: resign(hrp: hrp, body: body, key: key)) }

        #expect(try parse("lnbcrt25010p").amountMsat == 2501)
        #expect(try parse("lnbcrt25000p").amountMsat == 2500)
        #expect(try parse("lnbcrt2500u").amountMsat == 250_000_000)
        #expect(try parse("lnbcrt1").amountMsat == 100_000_000_000)
        #expect(try parse("lnbcrt").amountMsat == nil)
        #expect(try parse("lnbcrt").amountSats == nil)

        // Sub-millisatoshi: a p amount whose last digit is not 0.
        expectBolt11Error(try resign(hrp: "lnbcrt25001p", body: body, key: key)) { $0 == .subMillisatoshiAmount }
        expectBolt11Error(try resign(hrp: "lnbcrt1p", body: body, key: key)) { $0 == .subMillisatoshiAmount }
        // Leading zeros, zero, bad multiplier, no digits, overflow.
        for hrp in ["lnbcrt0100n", "lnbcrt0n", "lnbcrt0", "lnbcrt10x", "lnbcrtm", "lnbcrt99999999999999999999m",
                    "lnbcrt200000000000000000m", "lnbcrt1000000000"] {
            expectBolt11Error(try resign(hrp: hrp, body: body, key: key)) {
                if case .invalidAmount = $0 { true } else { false }
            }
        }
    }

    @Test("shortest amount encoding", arguments: [
        (UInt64(1_000), "10n"), (10_000, "100n"), (2_500, "25n"), (2_501, "25010p"), (1, "10p"),
        (100_000_000, "1m"), (100_000_000_000, "1"), (250_000_000, "2500u"), (150_000, "1500n"),
        (2_000_000_000, "20m"),
    ])
    func shortestAmount(msat: UInt64, text: String) throws {
        #expect(try Bolt11Invoice.encodeAmount(msat: msat) == text)
    }

    @Test func amountlessInvoices() throws {
        let file = try Self.file()
        for vector in file.generated where vector.name.hasSuffix("no_amount") {
            let invoice = try Bolt11Invoice(parsing: vector.invoice)
            #expect(invoice.amountMsat == nil)
            #expect(invoice.amountSats == nil)
            #expect(invoice.minFinalCltvExpiry == 18)
        }
        let donation = try #require(file.specValid.first { $0.name == "donation_no_amount" })
        #expect(try Bolt11Invoice(parsing: donation.invoice).amountMsat == nil)
        let withAmount = try Bolt11Invoice(parsing: file.generated[1].invoice)
        #expect(withAmount.amountMsat == 10_000)
        #expect(withAmount.amountSats == 10)
    }

    @Test func expiry() throws {
        let file = try Self.file()
        let vector = try #require(file.generated.first { $0.name == "regtest_expiry60" })
        let invoice = try Bolt11Invoice(parsing: vector.invoice)
        #expect(invoice.expirySeconds == 60)
        #expect(invoice.expiresAt == 1_764_547_260)
        #expect(!invoice.isExpired(now: 1_764_547_200))
        #expect(!invoice.isExpired(now: 1_764_547_259))
        #expect(invoice.isExpired(now: 1_764_547_260))
        let defaultExpiry = try Bolt11Invoice(parsing: file.generated[0].invoice)
        #expect(defaultExpiry.expirySeconds == 3600)
        #expect(!defaultExpiry.isExpired(now: 1_764_547_260))
    }

    @Test func prefixAndCase() throws {
        let file = try Self.file()
        let raw = file.generated[1].invoice
        let expected = try Bolt11Invoice(parsing: raw)
        for form in ["lightning:" + raw, "LIGHTNING:" + raw.uppercased(), "Lightning:" + raw, "  \(raw)\n", raw.uppercased()] {
            let parsed = try Bolt11Invoice(parsing: form)
            #expect(parsed == expected)
            #expect(parsed.paymentRequest == raw)
        }
        // Mixed case is rejected.
        var mixed = Array(raw)
        let letter = try #require(mixed.indices.first { $0 > 20 && mixed[$0].isLetter })
        mixed[letter] = Character(mixed[letter].uppercased())
        expectBolt11Error(String(mixed)) { $0 == .invalidBech32(.mixedCase) }
        expectBolt11Error("lightning:") { if case .invalidBech32 = $0 { true } else { false } }
        expectBolt11Error("") { if case .invalidBech32 = $0 { true } else { false } }
        // Whitespace other than ASCII is trimmed too; a combining mark on the prefix's colon is not part of it.
        #expect(try Bolt11Invoice(parsing: "\u{2003}lightning:" + raw + "\u{00A0}") == expected)
        expectBolt11Error("lightning:\u{301}" + raw) { $0 == .invalidBech32(.invalidHumanReadablePart) }
        expectBolt11Error("lightning" + raw) { _ in true }
    }

    @Test func missingFieldsAndTruncation() throws {
        let file = try Self.file()
        let key = try Secp256k1.PrivateKey(bytes: hex(file.generatedKey.privateKeyHex))
        // Timestamp only: no p field.
        let timestampOnly = Array(try Bech32.decode(file.generated[0].invoice).words.prefix(7))
        expectBolt11Error(try resign(hrp: "lnbcrt10n", body: timestampOnly, key: key)) { $0 == .missingPaymentHash }
        // A p field of the wrong length is skipped, so the hash is missing.
        let shortP = timestampOnly + [1, 1, 19] + [UInt8](repeating: 3, count: 51)
        expectBolt11Error(try resign(hrp: "lnbcrt10n", body: shortP, key: key)) { $0 == .missingPaymentHash }
        // A field header claiming more data than is present.
        let truncated = timestampOnly + [1, 1, 20] + [UInt8](repeating: 3, count: 10)
        expectBolt11Error(try resign(hrp: "lnbcrt10n", body: truncated, key: key)) {
            if case .truncatedData = $0 { true } else { false }
        }
        // Not even room for the signature.
        let tiny = try Bech32.encode(humanReadablePart: "lnbcrt10n", words: [UInt8](repeating: 0, count: 100))
        expectBolt11Error(tiny) { if case .truncatedData = $0 { true } else { false } }
    }

    @Test func firstValidFieldWins() throws {
        let file = try Self.file()
        let key = try Secp256k1.PrivateKey(bytes: hex(file.generatedKey.privateKeyHex))
        func field(_ tag: UInt8, _ bytes: [UInt8]) -> [UInt8] {
            let words = Bech32.bytesToWords(bytes)
            return [tag, UInt8(words.count >> 5), UInt8(words.count & 31)] + words
        }
        let a = [UInt8](repeating: 0xaa, count: 32)
        let b = [UInt8](repeating: 0xbb, count: 32)
        let timestamp = Array(try Bech32.decode(file.generated[0].invoice).words.prefix(7))
        let body = timestamp
            + field(1, Array(b.prefix(31)))          // p of the wrong length: skipped
            + field(1, a) + field(1, b)              // two valid p: the first wins
            + field(16, b) + field(16, a)            // two s
            + field(13, Array("first".utf8)) + field(13, Array("second".utf8))
            + field(23, Array(b.prefix(20))) + field(23, a)  // short h skipped, then a
            + field(6, [0x01, 0x00]) + field(6, [0x02])       // x as bytes: 2 words, 0x01 0x00 -> 16 bits
        let invoice = try Bolt11Invoice(parsing: resign(hrp: "lnbcrt10n", body: body, key: key))
        #expect(invoice.paymentHash == a)
        #expect(invoice.paymentSecret == b)
        #expect(invoice.description == "first")
        #expect(invoice.descriptionHash == a)
        #expect(invoice.expirySeconds == 0x0100 << 4)  // 16 bits packed into 4 words, zero-padded
        #expect(invoice.payeePublicKey == key.publicKey.compressed)
    }

    @Test func featureRules() throws {
        let file = try Self.file()
        let key = try Secp256k1.PrivateKey(bytes: hex(file.generatedKey.privateKeyHex))
        func make(_ bits: [Int]) throws -> Bolt11Invoice {
            try Bolt11Invoice.sign(
                network: .bitcoinRegtest, amountMsat: 1000, timestamp: 1_764_547_200,
                paymentHash: [UInt8](repeating: 1, count: 32), paymentSecret: [UInt8](repeating: 2, count: 32),
                description: "f", descriptionHash: nil, featureBits: bits, privateKey: key
            )
        }
        #expect(try make([8, 14, 17]).features.bits == [8, 14, 17])
        #expect(try make([8, 14, 99]).features.contains(99))
        #expect(try make([8, 14, 99]).features.contains(14))
        #expect(try !make([8, 14, 99]).features.contains(17))
        #expect(throws: Bolt11Error.unknownRequiredFeature(100)) { try make([8, 14, 100]) }
        #expect(throws: Bolt11Error.unknownRequiredFeature(40)) { try make([40]) }
        #expect(Bolt11Invoice.Features(bits: [8, 14, 17]).words == [4, 16, 8, 0])
    }

    @Test func encoderWritesAllFields() throws {
        let file = try Self.file()
        let key = try Secp256k1.PrivateKey(bytes: hex(file.generatedKey.privateKeyHex))
        let hop = Bolt11Invoice.RouteHintHop(
            pubkey: hex("029e03a901b85534ff1e92c43c74431f7ce72046060fcf7a95c37e148f78c77255"),
            shortChannelId: 72_623_859_790_382_856, feeBaseMsat: 1, feeProportionalMillionths: 20, cltvExpiryDelta: 3
        )
        let fallback = Bolt11Invoice.FallbackAddress(version: 0, program: hex("751e76e8199196d454941c45d1b3a323f1433bd6"))
        let invoice = try Bolt11Invoice.sign(
            network: .bitcoinSignet, amountMsat: 967_878_534, timestamp: 1_572_468_703,
            paymentHash: [UInt8](repeating: 0x42, count: 32), paymentSecret: [UInt8](repeating: 0x24, count: 32),
            description: "ナンセンス 1杯", descriptionHash: nil, expirySeconds: 604_800, minFinalCltvExpiry: 0,
            featureBits: [8, 14, 48], includePayeePublicKey: true, routeHints: [[hop, hop]],
            fallbackAddresses: [fallback], metadata: [0x01, 0xfa, 0xfa, 0xf0], privateKey: key
        )
        #expect(invoice.humanReadablePart == "lntbs9678785340p")
        #expect(invoice.network == .bitcoinSignet)
        #expect(invoice.amountMsat == 967_878_534)
        #expect(invoice.timestamp == 1_572_468_703)
        #expect(invoice.description == "ナンセンス 1杯")
        #expect(invoice.expirySeconds == 604_800)
        #expect(invoice.minFinalCltvExpiry == 0)
        #expect(invoice.routeHints == [[hop, hop]])
        #expect(invoice.routeHints[0][0].shortChannelIdString == "66051x263430x1800")
        #expect(invoice.fallbackAddresses == [fallback])
        #expect(invoice.metadata == [0x01, 0xfa, 0xfa, 0xf0])
        #expect(invoice.features.bits == [8, 14, 48])
        #expect(invoice.payeePublicKeyFromNField)
        #expect(invoice.unknownFields.isEmpty)
        #expect(try Bolt11Invoice(parsing: invoice.paymentRequest) == invoice)
    }

    @Test func encoderRejectsBadInputs() throws {
        let file = try Self.file()
        let key = try Secp256k1.PrivateKey(bytes: hex(file.generatedKey.privateKeyHex))
        let hash = [UInt8](repeating: 1, count: 32)
        #expect(throws: Bolt11Error.missingPaymentSecret) {
            try Bolt11Invoice.sign(network: .bitcoin, amountMsat: nil, timestamp: 1, paymentHash: hash,
                                   paymentSecret: nil, description: "x", descriptionHash: nil, privateKey: key)
        }
        #expect(throws: Bolt11Error.self) {
            try Bolt11Invoice.sign(network: .bitcoin, amountMsat: nil, timestamp: 1, paymentHash: hash,
                                   paymentSecret: hash, description: "x", descriptionHash: hash, privateKey: key)
        }
        #expect(throws: Bolt11Error.self) {
            try Bolt11Invoice.sign(network: .bitcoin, amountMsat: nil, timestamp: 1, paymentHash: [1, 2],
                                   paymentSecret: hash, description: "x", descriptionHash: nil, privateKey: key)
        }
        #expect(throws: Bolt11Error.self) {
            try Bolt11Invoice.sign(network: .bitcoin, amountMsat: nil, timestamp: 1 << 35, paymentHash: hash,
                                   paymentSecret: hash, description: "x", descriptionHash: nil, privateKey: key)
        }
        #expect(throws: Bolt11Error.self) {
            try Bolt11Invoice.sign(network: .bitcoin, amountMsat: 0, timestamp: 1, paymentHash: hash,
                                   paymentSecret: hash, description: "x", descriptionHash: nil, privateKey: key)
        }
    }

    @Test func ignoredFieldsAreKeptAsUnknown() throws {
        let file = try Self.file()
        let vector = try #require(file.specValid.first { $0.name == "ignored_unknown_and_wrong_length_fields" })
        let invoice = try Bolt11Invoice(parsing: vector.invoice)
        // Tag '2' is word 10 in the bech32 alphabet.
        #expect(invoice.unknownFields.contains { $0.tag == 10 })
        #expect(invoice.fallbackAddresses.isEmpty)
        #expect(!invoice.payeePublicKeyFromNField)
    }

    @Test func errorMessagesAreReadable() {
        #expect(Bolt11Error.badChecksum.description.contains("checksum"))
        #expect(Bolt11Error.unknownNetwork("xy").description.contains("'xy'"))
        #expect(Bolt11Error.subMillisatoshiAmount.description.contains("millisatoshi"))
        #expect(Bolt11Error.invalidBech32(.mixedCase).description.contains("case"))
    }
}

extension Bolt11VectorFile.Expected {
    /// The same expectations with another hrp (for invoices written with a different amount form).
    func withHRP(_ hrp: String) -> Self {
        Self(hrp: hrp, network: network, networkName: networkName, amountMsat: amountMsat, timestamp: timestamp,
             paymentHash: paymentHash, paymentSecret: paymentSecret, description: description,
             descriptionHash: descriptionHash, descriptionPreimage: descriptionPreimage, expirySeconds: expirySeconds,
             expiryFieldPresent: expiryFieldPresent, minFinalCltvExpiry: minFinalCltvExpiry,
             minFinalCltvExpiryFieldPresent: minFinalCltvExpiryFieldPresent, fallbackAddresses: fallbackAddresses,
             routeHints: routeHints, featureBits: featureBits, metadata: metadata, payeePubkey: payeePubkey,
             payeeFromNField: payeeFromNField, expiresAt: expiresAt)
    }
}
