import Foundation
import Testing
@testable import RouteweilerWire

@Suite("secp256k1")
struct Secp256k1Tests {
    static let generatorCompressed = "0279be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
    static let generatorUncompressed =
        "0479be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798"
        + "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"
    static let curveOrder = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"

    static func bytes(_ hex: String) -> [UInt8] { Hex.decode(hex) ?? [] }

    @Test func privateKeyOneIsTheGenerator() throws {
        let one = try Secp256k1.PrivateKey(bytes: [UInt8](repeating: 0, count: 31) + [1])
        #expect(one.publicKey.compressed.hexString == Self.generatorCompressed)
        #expect(one.publicKey.uncompressed.hexString == Self.generatorUncompressed)
    }

    @Test func documentedTestKeys() throws {
        // bolt11.json generatedKey: sha256("routeweiler-swift test vectors: bolt11 payee key").
        let derived = Bolt11Invoice.sha256(Array("routeweiler-swift test vectors: bolt11 payee key".utf8))
        #expect(derived.hexString == "1f923ae3dda795752b6e47a0c7bd348794a0402ebf125a8ea6c4bc8eebf9813a")
        let key = try Secp256k1.PrivateKey(bytes: derived)
        #expect(key.publicKey.compressed.hexString == "03a065f393be506fe03c3f1fe05ce1f989e89b06b5b19c107cd727fd12450fc984")
        // The BOLT #11 spec key.
        let spec = try Secp256k1.PrivateKey(bytes: Self.bytes("e126f68f7eafcc8b74f54d269fe206be715000f94dac067d1c04a8ca3b2db734"))
        #expect(spec.publicKey.compressed.hexString == "03e7156ae33b0a208d0744199163177e909e80176e55d97a2f221ede0f934dd9ad")
    }

    @Test("invalid private keys are rejected", arguments: [
        String(repeating: "00", count: 32),
        curveOrder,
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364142",
        String(repeating: "ff", count: 32),
        String(repeating: "01", count: 31),
        String(repeating: "01", count: 33),
    ])
    func invalidPrivateKeys(_ hex: String) {
        #expect(throws: Secp256k1Error.invalidPrivateKey) { try Secp256k1.PrivateKey(bytes: Self.bytes(hex)) }
    }

    @Test func privateKeyIsRedacted() throws {
        let raw = Self.bytes("1f923ae3dda795752b6e47a0c7bd348794a0402ebf125a8ea6c4bc8eebf9813a")
        let key = try Secp256k1.PrivateKey(bytes: raw)
        var dumped = ""
        dump(key, to: &dumped)
        for text in [key.description, key.debugDescription, "\(key)", String(reflecting: key), dumped] {
            #expect(text.contains("<redacted>"), "\(text)")
            #expect(!text.contains(raw.hexString))
            #expect(!text.contains("1f923ae3"))
            #expect(!text.contains("31, 146"))
        }
        #expect(key.rawRepresentation == raw)
    }

    @Test func signRecoverVerifyRoundTrip() throws {
        for seed in 1...8 {
            let key = try Secp256k1.PrivateKey(bytes: Bolt11Invoice.sha256([UInt8(seed)]))
            let digest = Bolt11Invoice.sha256(Array("message \(seed)".utf8))
            let sig = try key.signRecoverable(digest32: digest)
            #expect(sig.r.count == 32)
            #expect(sig.s.count == 32)
            #expect(sig.compact == sig.r + sig.s)
            #expect((0...3).contains(sig.recoveryId))
            #expect(sig.isLowS)
            #expect(try sig.recoverPublicKey(digest32: digest) == key.publicKey)
            #expect(key.publicKey.verify(signature64: sig.compact, digest32: digest))
            #expect(key.publicKey.verify(signature64: sig.compact, digest32: digest, requireLowS: true))

            var otherDigest = digest
            otherDigest[0] ^= 1
            #expect(!key.publicKey.verify(signature64: sig.compact, digest32: otherDigest))
            #expect(try sig.recoverPublicKey(digest32: otherDigest) != key.publicKey)
            let otherKey = try Secp256k1.PrivateKey(bytes: Bolt11Invoice.sha256([UInt8(seed), 0]))
            #expect(!otherKey.publicKey.verify(signature64: sig.compact, digest32: digest))

            // Deterministic (RFC 6979).
            #expect(try key.signRecoverable(digest32: digest) == sig)
        }
    }

    @Test func specSignatureIsReproduced() throws {
        // BOLT #11 "donation" example: signing hash, signature and recovery id from the spec.
        let key = try Secp256k1.PrivateKey(bytes: Self.bytes("e126f68f7eafcc8b74f54d269fe206be715000f94dac067d1c04a8ca3b2db734"))
        let digest = Self.bytes("6daf4d488be41ce7cbb487cab1ef2975e5efcea879b20d421f0ef86b07cbb987")
        let sig = try key.signRecoverable(digest32: digest)
        #expect(sig.compact.hexString == "8d3ce9e28357337f62da0162d9454df827f83cfe499aeb1c1db349d4d81127425e434ca29929406c23bba1ae8ac6ca32880b38d4bf6ff874024cac34ba9625f1")
        #expect(sig.recoveryId == 1)
    }

    @Test func highSSignatures() throws {
        // The spec's high-S example: same r, s' = n - s of a valid signature.
        let digest = Self.bytes("6daf4d488be41ce7cbb487cab1ef2975e5efcea879b20d421f0ef86b07cbb987")
        let compact = Self.bytes("8d3ce9e28357337f62da0162d9454df827f83cfe499aeb1c1db349d4d8112742a1bcb35d66d6bf93dc445e51753935cc32a3a411efd8a7c7bd85b25815a01b50")
        let sig = try Secp256k1.RecoverableSignature(compact: compact, recoveryId: 1)
        #expect(!sig.isLowS)
        let recovered = try sig.recoverPublicKey(digest32: digest)
        #expect(recovered.compressed.hexString == "02d0139ce7427d6dfffd26a326c18be754ef1e64672b42694ba5b23ef6e6e7803d")
        #expect(recovered.verify(signature64: compact, digest32: digest))
        #expect(!recovered.verify(signature64: compact, digest32: digest, requireLowS: true))
    }

    @Test func publicKeyParsing() throws {
        let g = try Secp256k1.PublicKey(bytes: Self.bytes(Self.generatorCompressed))
        let gu = try Secp256k1.PublicKey(bytes: Self.bytes(Self.generatorUncompressed))
        #expect(g == gu)
        #expect(g.hashValue == gu.hashValue)
        #expect(gu.compressed.hexString == Self.generatorCompressed)
        #expect(g.uncompressed.hexString == Self.generatorUncompressed)
        #expect(g.description.contains(Self.generatorCompressed))

        var badPrefix = Self.bytes(Self.generatorCompressed)
        badPrefix[0] = 0x05
        var notOnCurve = Self.bytes(Self.generatorUncompressed)
        notOnCurve[64] ^= 1
        for bad in [badPrefix, notOnCurve, [], [UInt8](repeating: 2, count: 32), Array(Self.bytes(Self.generatorCompressed).prefix(32))] {
            #expect(throws: Secp256k1Error.invalidPublicKey) { try Secp256k1.PublicKey(bytes: bad) }
        }
    }

    @Test func malformedInputs() throws {
        let key = try Secp256k1.PrivateKey(bytes: [UInt8](repeating: 0, count: 31) + [7])
        #expect(throws: Secp256k1Error.invalidDigestLength(31)) { try key.signRecoverable(digest32: [UInt8](repeating: 1, count: 31)) }
        let digest = [UInt8](repeating: 9, count: 32)
        let sig = try key.signRecoverable(digest32: digest)
        #expect(throws: Secp256k1Error.invalidRecoveryId(4)) { try Secp256k1.RecoverableSignature(compact: sig.compact, recoveryId: 4) }
        #expect(throws: Secp256k1Error.invalidSignature) { try Secp256k1.RecoverableSignature(compact: Array(sig.compact.prefix(63)), recoveryId: 0) }
        // r = 0 or s >= n are not valid scalars.
        #expect(throws: Secp256k1Error.self) {
            try Secp256k1.RecoverableSignature(compact: [UInt8](repeating: 0, count: 64), recoveryId: 0).recoverPublicKey(digest32: digest)
        }
        #expect(throws: Secp256k1Error.invalidSignature) {
            try Secp256k1.RecoverableSignature(compact: [UInt8](repeating: 0xff, count: 64), recoveryId: 0)
        }
        #expect(!key.publicKey.verify(signature64: Array(sig.compact.prefix(63)), digest32: digest))
        #expect(!key.publicKey.verify(signature64: sig.compact, digest32: Array(digest.prefix(31))))
        #expect(throws: Secp256k1Error.invalidDigestLength(33)) { try sig.recoverPublicKey(digest32: digest + [0]) }
    }

    @Test func concurrentUseOfSharedContext() async throws {
        let key = try Secp256k1.PrivateKey(bytes: [UInt8](repeating: 0, count: 31) + [42])
        let expected = key.publicKey
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for i in 0..<16 {
                group.addTask {
                    let digest = Bolt11Invoice.sha256([UInt8(i)])
                    let sig = try key.signRecoverable(digest32: digest)
                    return try sig.recoverPublicKey(digest32: digest) == expected
                        && expected.verify(signature64: sig.compact, digest32: digest)
                }
            }
            for try await ok in group { #expect(ok) }
        }
    }
}
