import Foundation
import Testing
@testable import RouteweilerWire

/// The parsed `eip712_eip3009.json` vector file.
private struct EIP3009Vectors: Decodable {
    struct SignerKey: Decodable { let privateKeyHex: String; let address: String }
    struct KeccakCase: Decodable { let name: String; let inputHex: String; let keccak256: String }
    struct Domain: Decodable { let name: String; let version: String; let chainId: UInt64; let verifyingContract: String }
    struct Message: Decodable {
        let from: String, to: String, value: String, validAfter: String, validBefore: String, nonce: String
    }
    struct Signature: Decodable { let hex: String; let r: String; let s: String; let v: Int; let yParity: Int }
    struct TransferCase: Decodable {
        let name: String
        let network: String
        let domain: Domain
        let message: Message
        let encodedDomainHex: String
        let domainSeparator: String
        let encodedMessageHex: String
        let structHash: String
        let digest: String
        let signature: Signature
        let signer: String
    }
    struct Types: Decodable {
        let EIP712Domain: [EIP712.Field]
        let TransferWithAuthorization: [EIP712.Field]
        let typeStrings: [String: String]
        let typeHashes: [String: String]
    }
    struct HeaderCase: Decodable {
        let name: String
        let x402Version: Int
        let requestHeaderName: String
        let headerValue: String
        let digest: String
        let signer: String
    }
    let signerKey: SignerKey
    let conventions: [String: String]
    let domains: [String: Domain]
    let types: Types
    let transferWithAuthorization: [TransferCase]
    let keccak256: [KeccakCase]
    let x402Headers: [HeaderCase]

    static func load() throws -> EIP3009Vectors {
        try JSONDecoder().decode(EIP3009Vectors.self, from: Vectors.load("eip712_eip3009.json"))
    }
}

private func bytes(_ hex: String) -> [UInt8] { Hex.decode(hex) ?? [0xde, 0xad] }
private func hex0x(_ b: [UInt8]) -> String { "0x" + b.hexString }

// MARK: - Keccak

@Suite("Keccak256")
struct KeccakTests {
    @Test func vectorFile() throws {
        let v = try EIP3009Vectors.load()
        #expect(v.keccak256.count >= 8)
        for c in v.keccak256 {
            #expect(hex0x(Keccak256.hash(bytes(c.inputHex))) == c.keccak256, "\(c.name)")
        }
    }

    @Test func isNotSHA3() {
        // SHA3-256("") = a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a.
        let empty = Keccak256.hash([])
        #expect(empty.hexString == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470")
        #expect(empty.hexString != "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a")
    }

    @Test func multiBlockInputs() {
        // Every length around the 136-byte rate boundaries hashes without trapping and distinctly.
        var seen = Set<[UInt8]>()
        for n in [0, 1, 135, 136, 137, 271, 272, 273, 1000] {
            let h = Keccak256.hash([UInt8](repeating: 0x61, count: n))
            #expect(h.count == 32)
            seen.insert(h)
        }
        #expect(seen.count == 9)
        // keccak256 of one million 'a' would be slow in debug; 1000 'a' is a cheap sanity value.
    }
}

// MARK: - Addresses and signer

@Suite("EVM addresses and signer")
struct EVMTests {
    static let eip55Cases = [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        "0x52908400098527886E0F7030069857D2E4169EE7",
        "0x8617E340B3D01FA5F11F306F4090FD50E238070D",
        "0xde709f2102306220921060314715629080e2fb77",
        "0x27b1fdb04752bbc536007a920d24acb045561c26",
        "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
        "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913",
    ]

    @Test("EIP-55 checksums", arguments: eip55Cases)
    func eip55(_ text: String) throws {
        let lower = try EVMAddress(hex: text.lowercased())
        let upper = try EVMAddress(hex: "0x" + text.dropFirst(2).uppercased())
        let mixed = try EVMAddress(hex: text)
        #expect(lower == upper)
        #expect(lower == mixed)
        let allSame = text.dropFirst(2) == text.dropFirst(2).lowercased() || text.dropFirst(2) == text.dropFirst(2).uppercased()
        if !allSame {
            #expect(mixed.checksummed == text)
            #expect(mixed.description == text)
        }
        #expect(mixed.lowercased == text.lowercased())
        #expect(try EVMAddress(hex: String(text.dropFirst(2))) == mixed)
    }

    @Test func badChecksumRejected() throws {
        // Flip the case of one letter in a valid checksummed address.
        let good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
        let bad = "0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
        #expect(throws: EVMAddressError.badChecksum) { try EVMAddress(hex: bad) }
        #expect(throws: Never.self) { try EVMAddress(hex: good) }
    }

    @Test func malformedAddressesRejected() {
        #expect(throws: EVMAddressError.invalidLength(38)) { try EVMAddress(hex: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA") }
        #expect(throws: EVMAddressError.invalidLength(42)) { try EVMAddress(hex: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed00") }
        #expect(throws: EVMAddressError.invalidLength(0)) { try EVMAddress(hex: "0x") }
        #expect(throws: EVMAddressError.invalidHex) { try EVMAddress(hex: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg") }
        #expect(throws: EVMAddressError.invalidLength(19)) { try EVMAddress(bytes: [UInt8](repeating: 1, count: 19)) }
    }

    @Test func addressCodableUsesChecksum() throws {
        let a = try EVMAddress(hex: "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266")
        let json = try JSONEncoder().encode([a])
        #expect(String(decoding: json, as: UTF8.self) == #"["0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"]"#)
        #expect(try JSONDecoder().decode([EVMAddress].self, from: json) == [a])
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode([EVMAddress].self, from: Data(#"["0xF39fd6e51aad88F6F4ce6aB8827279cffFb92266"]"#.utf8))
        }
    }

    @Test func publicTestKeyAddress() throws {
        let v = try EIP3009Vectors.load()
        let signer = try EVMSigner(hexKey: v.signerKey.privateKeyHex)
        #expect(signer.address.checksummed == v.signerKey.address)
        // Without prefix, with surrounding whitespace.
        let again = try EVMSigner(hexKey: "  " + v.signerKey.privateKeyHex.dropFirst(2) + "\n")
        #expect(again.address == signer.address)
        // Private key 1 → the generator's address.
        let one = try EVMSigner(hexKey: String(repeating: "0", count: 63) + "1")
        #expect(one.address.checksummed == "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf")
    }

    @Test func invalidKeysRejected() {
        #expect(throws: EVMKeyError.invalidEncoding) { try EVMSigner(hexKey: "0x1234") }
        #expect(throws: EVMKeyError.invalidEncoding) { try EVMSigner(hexKey: String(repeating: "z", count: 64)) }
        #expect(throws: EVMKeyError.invalidKey) { try EVMSigner(hexKey: String(repeating: "0", count: 64)) }
        #expect(throws: EVMKeyError.invalidKey) { try EVMSigner(hexKey: String(repeating: "f", count: 64)) }
    }

    @Test func signDigestShapeAndRecovery() throws {
        let v = try EIP3009Vectors.load()
        let signer = try EVMSigner(hexKey: v.signerKey.privateKeyHex)
        for i in 0..<16 {
            let digest = Keccak256.hash(Array("digest \(i)".utf8))
            let sig = try signer.signDigest(digest)
            #expect(sig.count == 65)
            #expect(sig[64] == 27 || sig[64] == 28)
            let rs = try Secp256k1.RecoverableSignature(compact: Array(sig[0..<64]), recoveryId: Int(sig[64]) - 27)
            #expect(rs.isLowS)
            #expect(try EVMAddress.recover(digest32: digest, signature65: sig) == signer.address)
            // v as 0/1 is accepted too.
            var raw = sig
            raw[64] -= 27
            #expect(try EVMAddress.recover(digest32: digest, signature65: raw) == signer.address)
            #expect(try signer.signDigest(digest) == sig)
        }
        #expect(throws: Secp256k1Error.invalidDigestLength(31)) { try signer.signDigest([UInt8](repeating: 1, count: 31)) }
        #expect(throws: EVMSignatureError.invalidLength(64)) {
            try EVMAddress.recover(digest32: [UInt8](repeating: 1, count: 32), signature65: [UInt8](repeating: 1, count: 64))
        }
        #expect(throws: EVMSignatureError.invalidV(29)) {
            try EVMAddress.recover(digest32: [UInt8](repeating: 1, count: 32), signature65: [UInt8](repeating: 1, count: 64) + [29])
        }
    }

    static func assertNoKey(_ text: String, _ keyHex: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let bare = keyHex.hasPrefix("0x") ? String(keyHex.dropFirst(2)) : keyHex
        #expect(!text.lowercased().contains(bare.lowercased()), "\(text)", sourceLocation: sourceLocation)
        #expect(!text.lowercased().contains(String(bare.prefix(8)).lowercased()), "\(text)", sourceLocation: sourceLocation)
        let raw = bytes(bare)
        #expect(!text.contains("\(raw[0]), \(raw[1]), \(raw[2])"), "\(text)", sourceLocation: sourceLocation)
    }

    @Test func keyNeverPrinted() throws {
        let v = try EIP3009Vectors.load()
        let keyHex = v.signerKey.privateKeyHex
        let signer = try EVMSigner(hexKey: keyHex)
        var dumped = ""
        dump(signer, to: &dumped)
        var dumpedArray = ""
        dump([signer], to: &dumpedArray)
        let texts = [
            signer.description, signer.debugDescription, "\(signer)", String(reflecting: signer),
            String(describing: [signer]), dumped, dumpedArray,
        ]
        for text in texts {
            Self.assertNoKey(text, keyHex)
            #expect(text.contains(v.signerKey.address) || text.contains("EVMSigner"), "\(text)")
        }
        #expect(dumped.contains("<redacted>"))
    }

    @Test func errorsNeverCarryKey() throws {
        let keyHex = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
        // An over-long key (one extra byte) is rejected without echoing the input.
        do {
            _ = try EVMSigner(hexKey: keyHex + "00")
            Issue.record("expected a throw")
        } catch {
            Self.assertNoKey(error.description, keyHex)
            Self.assertNoKey(String(reflecting: error), keyHex)
            Self.assertNoKey("\(error)", keyHex)
        }
        // A world-readable key file.
        let path = try KeyFile.create(keyHex, mode: 0o644)
        defer { unlink(path) }
        do {
            _ = try EVMSigner.fromFile(path: path)
            Issue.record("expected a throw")
        } catch {
            Self.assertNoKey(error.description, keyHex)
            Self.assertNoKey(String(reflecting: error), keyHex)
        }
    }

    enum KeyFile {
        static func create(_ contents: String, mode: mode_t) throws -> String {
            let path = NSTemporaryDirectory() + "routeweiler-evm-key-\(UUID().uuidString)"
            let fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0o600)
            guard fd >= 0 else { throw POSIXError(.EIO) }
            let data = Array(contents.utf8)
            _ = data.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            guard chmod(path, mode) == 0 else { throw POSIXError(.EPERM) }
            return path
        }
    }

    @Test func keyFilePermissions() throws {
        let v = try EIP3009Vectors.load()
        let keyText = v.signerKey.privateKeyHex + "\n"

        let worldReadable = try KeyFile.create(keyText, mode: 0o644)
        defer { unlink(worldReadable) }
        #expect(throws: EVMKeyError.insecurePermissions(path: worldReadable, mode: 0o644)) {
            try EVMSigner.fromFile(path: worldReadable)
        }
        let groupReadable = try KeyFile.create(keyText, mode: 0o640)
        defer { unlink(groupReadable) }
        #expect(throws: EVMKeyError.insecurePermissions(path: groupReadable, mode: 0o640)) {
            try EVMSigner.fromFile(path: groupReadable)
        }

        let owner = try KeyFile.create(keyText, mode: 0o600)
        defer { unlink(owner) }
        #expect(try EVMSigner.fromFile(path: owner).address.checksummed == v.signerKey.address)
        let readOnly = try KeyFile.create(keyText, mode: 0o400)
        defer { unlink(readOnly) }
        #expect(try EVMSigner.fromFile(path: readOnly).address.checksummed == v.signerKey.address)

        let missing = NSTemporaryDirectory() + "routeweiler-evm-missing-\(UUID().uuidString)"
        #expect(throws: EVMKeyError.fileNotFound(path: missing)) { try EVMSigner.fromFile(path: missing) }
        #expect(throws: EVMKeyError.notARegularFile(path: "/tmp")) { try EVMSigner.fromFile(path: "/tmp") }

        let garbage = try KeyFile.create("not a key\n", mode: 0o600)
        defer { unlink(garbage) }
        #expect(throws: EVMKeyError.invalidEncoding) { try EVMSigner.fromFile(path: garbage) }
    }

    @Test func environmentLoader() throws {
        let v = try EIP3009Vectors.load()
        let name = "ROUTEWEILER_TEST_EVM_KEY_\(UUID().uuidString.replacingOccurrences(of: "-", with: "_"))"
        #expect(throws: EVMKeyError.environmentVariableMissing(name)) { try EVMSigner.fromEnvironment(name) }
        setenv(name, v.signerKey.privateKeyHex, 1)
        defer { unsetenv(name) }
        #expect(try EVMSigner.fromEnvironment(name).address.checksummed == v.signerKey.address)
    }
}

// MARK: - EIP-712

@Suite("EIP712")
struct EIP712Tests {
    @Test func conventionsAreTheOnesImplemented() throws {
        let v = try EIP3009Vectors.load()
        #expect(v.conventions["digest"] == "keccak256(0x19 0x01 || domainSeparator || structHash)")
        #expect(v.conventions["signature.hex"]?.hasPrefix("65 bytes r || s || v with v in {27, 28}") == true)
        #expect(v.conventions["message numbers"]?.contains("decimal strings") == true)
    }

    @Test func typeStringsAndHashes() throws {
        let v = try EIP3009Vectors.load()
        #expect(v.types.EIP712Domain == EIP712Domain.fields)
        #expect(v.types.TransferWithAuthorization == TransferWithAuthorization.fields)
        #expect(EIP712Domain.typeString == v.types.typeStrings["EIP712Domain"])
        #expect(TransferWithAuthorization.typeString == v.types.typeStrings["TransferWithAuthorization"])
        #expect(hex0x(EIP712Domain.typeHash) == v.types.typeHashes["EIP712Domain"])
        #expect(hex0x(TransferWithAuthorization.typeHash) == v.types.typeHashes["TransferWithAuthorization"])

        let td = EIP712.TypedData(
            types: ["EIP712Domain": v.types.EIP712Domain, "TransferWithAuthorization": v.types.TransferWithAuthorization],
            primaryType: "TransferWithAuthorization", domain: .object([:]), message: .object([:])
        )
        #expect(try td.encodeType("TransferWithAuthorization") == v.types.typeStrings["TransferWithAuthorization"])
        #expect(try td.encodeType("EIP712Domain") == v.types.typeStrings["EIP712Domain"])
        #expect(try hex0x(td.typeHash("EIP712Domain")) == v.types.typeHashes["EIP712Domain"])
    }

    @Test func domainTable() throws {
        let v = try EIP3009Vectors.load()
        #expect(v.domains["eip155:8453"]?.chainId == 8453)
        for (_, d) in v.domains {
            #expect(try EVMAddress(hex: d.verifyingContract).checksummed == d.verifyingContract)
        }
    }

    @Test func transferWithAuthorizationVectors() throws {
        let v = try EIP3009Vectors.load()
        #expect(v.transferWithAuthorization.count == 4)
        let signer = try EVMSigner(hexKey: v.signerKey.privateKeyHex)
        for c in v.transferWithAuthorization {
            let domain = EIP712Domain(
                name: c.domain.name, version: c.domain.version, chainId: c.domain.chainId,
                verifyingContract: try EVMAddress(hex: c.domain.verifyingContract)
            )
            #expect(c.domain.chainId == v.domains[c.network]?.chainId, "\(c.name)")
            let m = c.message
            let message = try TransferWithAuthorization(
                from: EVMAddress(hex: m.from), to: EVMAddress(hex: m.to),
                value: m.value, validAfter: m.validAfter, validBefore: m.validBefore, nonce: bytes(m.nonce)
            )
            // Specialised path.
            #expect(hex0x(domain.encoded) == c.encodedDomainHex, "\(c.name)")
            #expect(hex0x(domain.separator) == c.domainSeparator, "\(c.name)")
            #expect(hex0x(message.encoded) == c.encodedMessageHex, "\(c.name)")
            #expect(hex0x(message.structHash) == c.structHash, "\(c.name)")
            let digest = message.digest(domain: domain)
            #expect(hex0x(digest) == c.digest, "\(c.name)")

            // Generic path, from the specialised conversion and from the raw vector strings.
            let generic = message.typedData(domain: domain)
            #expect(try generic.domainSeparator() == domain.separator, "\(c.name)")
            #expect(try generic.structHash() == message.structHash, "\(c.name)")
            #expect(try generic.digest() == digest, "\(c.name)")
            let raw = EIP712.TypedData(
                types: ["EIP712Domain": v.types.EIP712Domain, "TransferWithAuthorization": v.types.TransferWithAuthorization],
                primaryType: "TransferWithAuthorization",
                domain: .object([
                    "name": .string(c.domain.name), "version": .string(c.domain.version),
                    "chainId": .number(String(c.domain.chainId)), "verifyingContract": .string(c.domain.verifyingContract),
                ]),
                message: .object([
                    "from": .string(m.from), "to": .string(m.to), "value": .string(m.value),
                    "validAfter": .string(m.validAfter), "validBefore": .string(m.validBefore), "nonce": .string(m.nonce),
                ])
            )
            #expect(try hex0x(raw.encodeData("EIP712Domain", raw.domain)) == c.encodedDomainHex, "\(c.name)")
            #expect(try hex0x(raw.encodeData("TransferWithAuthorization", raw.message)) == c.encodedMessageHex, "\(c.name)")
            #expect(try hex0x(raw.digest()) == c.digest, "\(c.name)")
            // EIP712Domain inferred when omitted from `types`.
            var inferred = raw
            inferred.types["EIP712Domain"] = nil
            #expect(try hex0x(inferred.domainSeparator()) == c.domainSeparator, "\(c.name)")

            // Signature: deterministic, byte for byte.
            let sig = try signer.signDigest(digest)
            #expect(hex0x(sig) == c.signature.hex, "\(c.name)")
            #expect(hex0x(Array(sig[0..<32])) == c.signature.r, "\(c.name)")
            #expect(hex0x(Array(sig[32..<64])) == c.signature.s, "\(c.name)")
            #expect(Int(sig[64]) == c.signature.v, "\(c.name)")
            #expect(c.signature.yParity == c.signature.v - 27)
            #expect(try EVMAddress.recover(digest32: digest, signature65: bytes(c.signature.hex)).checksummed == c.signer, "\(c.name)")
            #expect(signer.address.checksummed == c.signer)
        }
    }

    /// Decodes an x402 payment header and checks its embedded EIP-3009 signature.
    @Test func x402PaymentHeaders() throws {
        let v = try EIP3009Vectors.load()
        #expect(v.x402Headers.count == 2)
        let signer = try EVMSigner(hexKey: v.signerKey.privateKeyHex)
        let v1Networks: [String: String] = ["base": "eip155:8453", "base-sepolia": "eip155:84532"]
        var seenNames: Set<String> = []
        for h in v.x402Headers {
            seenNames.insert(h.requestHeaderName)
            guard let decoded = Base64.decode(h.headerValue),
                  let json = try JSONSerialization.jsonObject(with: Data(decoded)) as? [String: Any],
                  let payload = json["payload"] as? [String: Any],
                  let auth = payload["authorization"] as? [String: String],
                  let signatureHex = payload["signature"] as? String
            else {
                Issue.record("\(h.name): header does not decode")
                continue
            }
            #expect(json["x402Version"] as? Int == h.x402Version)

            // Domain: v2 carries it in `accepted`; v1 names the network and the asset comes from the
            // payment requirements (here: the vector's domain table).
            let caip2: String
            var tokenName: String
            var tokenVersion: String
            let asset: String
            if h.x402Version == 2 {
                let accepted = try #require(json["accepted"] as? [String: Any])
                caip2 = try #require(accepted["network"] as? String)
                let extra = try #require(accepted["extra"] as? [String: String])
                tokenName = try #require(extra["name"])
                tokenVersion = try #require(extra["version"])
                asset = try #require(accepted["asset"] as? String)
            } else {
                let network = try #require(json["network"] as? String)
                caip2 = try #require(v1Networks[network])
                let d = try #require(v.domains[caip2])
                tokenName = d.name
                tokenVersion = d.version
                asset = d.verifyingContract
            }
            let table = try #require(v.domains[caip2])
            #expect(tokenName == table.name)
            #expect(tokenVersion == table.version)
            let domain = EIP712Domain(
                name: tokenName, version: tokenVersion, chainId: table.chainId,
                verifyingContract: try EVMAddress(hex: asset)
            )
            let fromText = try #require(auth["from"]), toText = try #require(auth["to"])
            let value = try #require(auth["value"]), nonce = try #require(auth["nonce"])
            let validAfter = try #require(auth["validAfter"]), validBefore = try #require(auth["validBefore"])
            let from = try EVMAddress(hex: fromText)
            let message = try TransferWithAuthorization(
                from: from, to: EVMAddress(hex: toText),
                value: value, validAfter: validAfter, validBefore: validBefore, nonce: bytes(nonce)
            )
            let digest = message.digest(domain: domain)
            #expect(hex0x(digest) == h.digest, "\(h.name)")
            let signature = bytes(signatureHex)
            #expect(signature.count == 65)
            let recovered = try EVMAddress.recover(digest32: digest, signature65: signature)
            #expect(recovered == from, "\(h.name)")
            #expect(recovered.checksummed == h.signer, "\(h.name)")
            // Our signer reproduces the client's signature exactly.
            #expect(try signer.signDigest(digest) == signature, "\(h.name)")
            // A tampered authorization no longer verifies.
            var tampered = message
            tampered.value = try UInt256BE.fromDecimal("1000000")
            #expect(try EVMAddress.recover(digest32: tampered.digest(domain: domain), signature65: signature) != from)
        }
        #expect(seenNames == ["PAYMENT-SIGNATURE", "X-PAYMENT"])
    }

    /// The example from the EIP-712 specification (`Example.js`): nested structs.
    @Test func specificationMailExample() throws {
        let td = EIP712.TypedData(
            types: [
                "EIP712Domain": [
                    .init(name: "name", type: "string"), .init(name: "version", type: "string"),
                    .init(name: "chainId", type: "uint256"), .init(name: "verifyingContract", type: "address"),
                ],
                "Person": [.init(name: "name", type: "string"), .init(name: "wallet", type: "address")],
                "Mail": [
                    .init(name: "from", type: "Person"), .init(name: "to", type: "Person"),
                    .init(name: "contents", type: "string"),
                ],
            ],
            primaryType: "Mail",
            domain: .object([
                "name": .string("Ether Mail"), "version": .string("1"), "chainId": .number("1"),
                "verifyingContract": .string("0xCcCCccccCCCCcCCCCCCcCcCccCcCCCcCcccccccC"),
            ]),
            message: .object([
                "from": .object(["name": .string("Cow"), "wallet": .string("0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826")]),
                "to": .object(["name": .string("Bob"), "wallet": .string("0xbBbBBBBbbBBBbbbBbbBbbbbBBbBbbbbBbBbbBBbB")]),
                "contents": .string("Hello, Bob!"),
            ])
        )
        #expect(try td.encodeType("Mail") == "Mail(Person from,Person to,string contents)Person(string name,address wallet)")
        #expect(try td.typeHash("Mail").hexString == "a0cedeb2dc280ba39b857546d74f5549c3a1d7bdc2dd96bf881f76108e23dac2")
        #expect(try td.domainSeparator().hexString == "f2cee375fa42b42143804025fc449deafd50cc031ca257e0b194a650a912090f")
        #expect(try td.structHash().hexString == "c52c0ee5d84264471806290a3f2c4cecfc5490626bf912d01f240d7a274b371e")
        let digest = try td.digest()
        #expect(digest.hexString == "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2")

        let cow = try EVMSigner(privateKey: Secp256k1.PrivateKey(bytes: Keccak256.hash(Array("cow".utf8))))
        #expect(cow.address.checksummed == "0xCD2a3d9F938E13CD947Ec05AbC7FE734Df8DD826")
        let sig = try cow.signDigest(digest)
        #expect(sig[64] == 28)
        #expect(Array(sig[0..<32]).hexString == "4355c47d63924e8a72e509b65029052eb6c299d53a04e167c5775fd466751c9d")
        #expect(Array(sig[32..<64]).hexString == "07299936d304c153f6443dfa05f40ff007d72911b6f72307f996231605b91562")

        // JSON round trip (eth_signTypedData_v4 shape).
        let json = try JSONEncoder().encode(td)
        let back = try JSONDecoder().decode(EIP712.TypedData.self, from: json)
        #expect(try back.digest() == digest)
    }

    @Test func referencedTypesAreSortedAndDeduplicated() throws {
        let td = EIP712.TypedData(
            types: [
                "Z": [.init(name: "b", type: "B[]"), .init(name: "a", type: "A")],
                "A": [.init(name: "b", type: "B"), .init(name: "x", type: "uint8")],
                "B": [.init(name: "a", type: "A[2]"), .init(name: "s", type: "string")],
            ],
            primaryType: "Z", domain: .object([:]), message: .object([:])
        )
        // Recursive reference A ↔ B terminates; primary first, then the rest alphabetically.
        #expect(try td.encodeType("Z") == "Z(B[] b,A a)A(B b,uint8 x)B(A[2] a,string s)")
        #expect(try td.encodeType("A") == "A(B b,uint8 x)B(A[2] a,string s)")
        #expect(throws: EIP712Error.unknownType("Nope")) { try td.encodeType("Nope") }
    }

    @Test func arraysAndAtomicTypes() throws {
        let td = EIP712.TypedData(
            types: [
                "Item": [.init(name: "id", type: "uint8"), .init(name: "tag", type: "bytes4")],
                "Bag": [
                    .init(name: "items", type: "Item[]"),
                    .init(name: "flags", type: "bool[2]"),
                    .init(name: "blob", type: "bytes"),
                    .init(name: "delta", type: "int16"),
                    .init(name: "matrix", type: "uint256[][]"),
                    .init(name: "owner", type: "address"),
                ],
            ],
            primaryType: "Bag", domain: .object([:]),
            message: .object([
                "items": .array([
                    .object(["id": .number("1"), "tag": .string("0x01020304")]),
                    .object(["id": .string("0xff"), "tag": .bytes([9, 9, 9, 9])]),
                ]),
                "flags": .array([.bool(true), .bool(false)]),
                "blob": .string("0xdeadbeef"),
                "delta": .number("-2"),
                "matrix": .array([.array([.number("1"), .number("2")]), .array([])]),
                "owner": .string("0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
            ])
        )
        func word(_ n: UInt64) -> [UInt8] { UInt256BE.from(n) }
        let itemType = "Item(uint8 id,bytes4 tag)"
        let itemHash: ([UInt8], [UInt8]) -> [UInt8] = { id, tag in
            Keccak256.hash(Keccak256.hash(Array(itemType.utf8)) + id + tag + [UInt8](repeating: 0, count: 28))
        }
        let items = Keccak256.hash(itemHash(word(1), [1, 2, 3, 4]) + itemHash(word(255), [9, 9, 9, 9]))
        let flags = Keccak256.hash(word(1) + word(0))
        let blob = Keccak256.hash([0xde, 0xad, 0xbe, 0xef])
        let delta = [UInt8](repeating: 0xff, count: 31) + [0xfe]
        let matrix = Keccak256.hash(Keccak256.hash(word(1) + word(2)) + Keccak256.hash([]))
        let owner = [UInt8](repeating: 0, count: 12) + bytes("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")
        #expect(try td.encodeType("Bag")
            == "Bag(Item[] items,bool[2] flags,bytes blob,int16 delta,uint256[][] matrix,address owner)" + itemType)
        let expected = try td.typeHash("Bag") + items + flags + blob + delta + matrix + owner
        #expect(try td.encodeData("Bag", td.message) == expected)
        #expect(try td.hashStruct("Bag", td.message) == Keccak256.hash(expected))
    }

    @Test func atomicRangeChecks() throws {
        func enc(_ type: String, _ value: EIP712.Value) throws(EIP712Error) -> [UInt8] {
            try EIP712.encodeAtomic(type, value)
        }
        #expect(try enc("uint8", .number("255")) == UInt256BE.from(255))
        #expect(throws: EIP712Error.self) { try enc("uint8", .number("256")) }
        #expect(throws: EIP712Error.self) { try enc("uint256", .number("-1")) }
        #expect(try enc("int8", .number("127")) == UInt256BE.from(127))
        #expect(throws: EIP712Error.self) { try enc("int8", .number("128")) }
        #expect(try enc("int8", .number("-128")) == [UInt8](repeating: 0xff, count: 31) + [0x80])
        #expect(throws: EIP712Error.self) { try enc("int8", .number("-129")) }
        #expect(try enc("int256", .number("-0")) == UInt256BE.zero)
        #expect(try enc("int", .number("-1")) == [UInt8](repeating: 0xff, count: 32))
        #expect(throws: EIP712Error.invalidTypeName("uint7")) { try enc("uint7", .number("1")) }
        #expect(throws: EIP712Error.invalidTypeName("bytes33")) { try enc("bytes33", .string("0x00")) }
        #expect(throws: EIP712Error.self) { try enc("bytes2", .string("0x010203")) }
        #expect(throws: EIP712Error.self) { try enc("bool", .string("true")) }
        #expect(throws: EIP712Error.self) { try enc("address", .string("0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed")) }
        #expect(throws: EIP712Error.unknownType("float")) { try enc("float", .number("1")) }
        let missing = EIP712.TypedData(
            types: ["T": [.init(name: "a", type: "uint256")]], primaryType: "T", domain: .object([:]), message: .object([:])
        )
        #expect(throws: EIP712Error.missingField(type: "T", field: "a")) { try missing.structHash() }
    }

    @Test func decimalToUInt256() throws {
        #expect(try UInt256BE.fromDecimal("0") == UInt256BE.zero)
        #expect(try UInt256BE.fromDecimal("1764547500") == UInt256BE.from(1_764_547_500))
        #expect(try UInt256BE.fromDecimal("18446744073709551616") == [UInt8](repeating: 0, count: 23) + [1] + [UInt8](repeating: 0, count: 8))
        let max = "115792089237316195423570985008687907853269984665640564039457584007913129639935"
        #expect(try UInt256BE.fromDecimal(max) == [UInt8](repeating: 0xff, count: 32))
        #expect(throws: UInt256Error.overflow) {
            try UInt256BE.fromDecimal("115792089237316195423570985008687907853269984665640564039457584007913129639936")
        }
        #expect(throws: UInt256Error.invalidDigits) { try UInt256BE.fromDecimal("") }
        #expect(throws: UInt256Error.invalidDigits) { try UInt256BE.fromDecimal("12a") }
        #expect(throws: UInt256Error.invalidDigits) { try UInt256BE.fromDecimal("-1") }
        #expect(throws: UInt256Error.invalidDigits) { try UInt256BE.fromDecimal(" 1") }
        #expect(try UInt256BE.parse("0x3e8") == UInt256BE.from(1000))
        #expect(try UInt256BE.parse("0x" + String(repeating: "0", count: 70) + "1") == UInt256BE.from(1))
        #expect(throws: UInt256Error.overflow) { try UInt256BE.parse("0x1" + String(repeating: "0", count: 64)) }
        #expect(throws: EIP712Error.self) {
            try TransferWithAuthorization(
                from: EVMAddress(bytes: [UInt8](repeating: 1, count: 20)), to: EVMAddress(bytes: [UInt8](repeating: 2, count: 20)),
                value: "1", validAfter: "0", validBefore: "1", nonce: [1, 2, 3]
            )
        }
    }
}
