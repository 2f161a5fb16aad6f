import Foundation
import Testing
@testable import RouteweilerWire

/// The whole of `shared/vectors/mpp-aperture-vectors.json` (lightninglabs/aperture `mpp/testdata/vectors.json`).
@Suite("MPP Aperture vectors")
struct MPPApertureVectorTests {
    nonisolated(unsafe) static let file: [String: Any] = {
        guard let data = try? Vectors.load("mpp-aperture-vectors.json"),
            let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { return [:] }
        return json
    }()

    static func group(_ name: String) -> [[String: Any]] { file[name] as? [[String: Any]] ?? [] }

    @Test func fileIsPresentAndComplete() {
        for g in ["canonicalization", "base64url", "challengeHeaders", "challengeLists", "challengeIds", "credentials",
                  "receipts"] {
            #expect(!Self.group(g).isEmpty, "vector group \(g)")
        }
    }

    @Test func canonicalization() throws {
        for v in Self.group("canonicalization") {
            let name = v["name"] as! String
            let input = v["input"] as! String
            if v["error"] as? Bool == true {
                #expect(throws: JSONParseError.self, "\(name)") { try JSONValue.parse(input) }
                continue
            }
            let value = try JSONValue.parse(input)
            #expect(value.canonicalString == v["canonical"] as! String, "\(name)")
        }
    }

    @Test func base64url() {
        for v in Self.group("base64url") {
            let name = v["name"] as! String
            let encoded = v["encoded"] as! String
            if v["error"] as? Bool == true {
                #expect(Base64.decode(encoded, alphabet: .url) == nil, "\(name)")
                continue
            }
            let bytes = Hex.decode(v["decodedHex"] as? String ?? "") ?? []
            #expect(Base64.decode(encoded, alphabet: .url) == bytes, "\(name)")
            if v["canonical"] as? Bool == true { #expect(Base64.encodeURL(bytes) == encoded, "\(name)") }
        }
    }

    @Test func challengeHeaders() throws {
        for v in Self.group("challengeHeaders") {
            let name = v["name"] as! String
            let params = v["params"] as! [String: String]
            let header = v["header"] as! String
            let parsed = try AuthChallenge.parse(header)
            #expect(parsed.count == 1, "\(name)")
            let c = try MPPChallenge(parsed[0])
            #expect(c.id == params["id"] && c.realm == params["realm"] && c.method == params["method"], "\(name)")
            #expect(c.intent == params["intent"] && c.request == params["request"], "\(name)")
            #expect(c.expires == params["expires"] && c.digest == params["digest"], "\(name)")
            #expect(c.description == params["description"] && c.opaque == params["opaque"], "\(name)")
            // Our serialisation reads back to the same parameters.
            let again = try MPPChallenge(try AuthChallenge.parse(c.headerValue)[0])
            #expect(again == c, "\(name)")
        }
    }

    @Test func challengeLists() throws {
        for v in Self.group("challengeLists") {
            let name = v["name"] as! String
            let header = v["header"] as! String
            if v["error"] as? Bool == true {
                #expect(throws: ChallengeParseError.self, "\(name)") { try MPPChallenge.parseAll([header]) }
                continue
            }
            let expected = v["challenges"] as! [[String: String]]
            let got = try MPPChallenge.parseAll([header])
            #expect(got.count == expected.count, "\(name)")
            for (g, e) in zip(got, expected) {
                for (k, value) in e { #expect(g[k] == value, "\(name): \(k)") }
            }
        }
    }

    @Test func challengeIDs() throws {
        let secret = try #require(Hex.decode(Self.file["hmacSecretHex"] as! String))
        for v in Self.group("challengeIds") {
            let name = v["name"] as! String
            let p = v["params"] as! [String: String]
            let c = MPPChallengeParts(p)
            #expect(c.bindingInput == v["hmacInput"] as! String, "\(name)")
            #expect(MPPChallenge.boundID(secret: secret, input: c.bindingInput) == p["id"], "\(name)")
        }
    }

    /// A challenge built from raw parameters (the request here is not always JSON).
    struct MPPChallengeParts {
        var p: [String: String]
        init(_ p: [String: String]) { self.p = p }
        var bindingInput: String {
            ["realm", "method", "intent", "request", "expires", "digest", "opaque"].map { p[$0] ?? "" }
                .joined(separator: "|")
        }
    }

    @Test func challengeIDMatchesOurBindingInput() throws {
        let secret = try #require(Hex.decode(Self.file["hmacSecretHex"] as! String))
        let v = Self.group("challengeIds")[1]
        let p = v["params"] as! [String: String]
        let header = "Payment " + p.sorted { $0.key < $1.key }.map { "\($0.key)=\"\($0.value)\"" }.joined(separator: ", ")
        let c = try MPPChallenge(try AuthChallenge.parse(header)[0])
        #expect(c.idBindingInput == v["hmacInput"] as! String)
        #expect(MPPChallenge.boundID(secret: secret, input: c.idBindingInput) == c.id)
    }

    @Test func credentials() throws {
        for v in Self.group("credentials") {
            let name = v["name"] as! String
            let header = v["header"] as! String
            if v["error"] as? Bool == true {
                #expect(throws: ChallengeParseError.self, "\(name)") { try MPPCredential(authorization: header) }
                continue
            }
            let credential = try MPPCredential(authorization: header)
            let expected = try JSONValue.parse(v["credentialJson"] as! String)
            #expect(credential.challenge == expected["challenge"], "\(name)")
            #expect(credential.payload == expected["payload"], "\(name)")
            #expect(credential.source == expected["source"]?.stringValue, "\(name)")
            // The header is base64url of the credential JSON exactly as given.
            let token = String(header.split(separator: " ", maxSplits: 1)[1])
            #expect(Base64.decode(token, alphabet: .url) == Array((v["credentialJson"] as! String).utf8), "\(name)")
            // Our canonical encoding reads back to the same credential.
            let again = try MPPCredential(authorization: credential.authorizationValue)
            #expect(again.challenge.canonical == credential.challenge.canonical, "\(name)")
            #expect(again.payload.canonical == credential.payload.canonical, "\(name)")
        }
    }

    @Test func receipts() throws {
        for v in Self.group("receipts") {
            let name = v["name"] as! String
            let header = v["header"] as! String
            let json = v["receiptJson"] as! String
            let bytes = try #require(Base64.decode(header, alphabet: .url), "\(name)")
            #expect(bytes == Array(json.utf8), "\(name)")
            let value = try JSONValue.parse(bytes)
            if value["status"] == nil {
                // Session top-up events are not receipts.
                #expect(throws: MPPReceiptError.self, "\(name)") { try MPPReceipt(headerValue: header) }
                // …but their integers survive exactly.
                if case .number(let n)? = value["balanceRequired"] { #expect(UInt64(n) != nil, "\(name)") }
                continue
            }
            let receipt = try MPPReceipt(headerValue: header)
            #expect(receipt.status == "success" && receipt.method == "lightning", "\(name)")
            #expect(receipt.reference == value["reference"]?.stringValue, "\(name)")
            #expect(receipt.challengeID == value["challengeId"]?.stringValue, "\(name)")
            if case .number(let n)? = value["refundSats"] {
                #expect(receipt.json["refundSats"] == .number(n), "\(name)")
                #expect(Int64(n) != nil, "\(name): exact int64")
            }
        }
    }
}

@Suite("MPP challenge, credential and receipt")
struct MPPWireTests {
    func challenge(_ params: String) throws -> MPPChallenge {
        try MPPChallenge(try AuthChallenge.parse("Payment " + params)[0])
    }

    @Test func missingIDOrRequest() throws {
        let err1 = #expect(throws: ChallengeParseError.self) {
            try challenge(#"realm="r", method="tempo", intent="charge", request="e30""#)
        }
        #expect(err1?.kind == .missingParameter && err1?.message.contains("'id'") == true)
        let err2 = #expect(throws: ChallengeParseError.self) {
            try challenge(#"id="a", realm="r", method="tempo", intent="charge""#)
        }
        #expect(err2?.message.contains("'request'") == true)
    }

    @Test func undecodableRequest() throws {
        for request in ["!!!", Base64.encodeURL(Array("{\"a\":".utf8)), Base64.encodeURL(Array("[1]".utf8))] {
            let err = #expect(throws: ChallengeParseError.self) {
                try challenge(#"id="a", method="tempo", request="\#(request)""#)
            }
            #expect(err?.kind == .invalidParameter && err?.message.contains("failed to decode 'request'") == true)
        }
    }

    @Test func credentialIsCanonicalBase64URL() throws {
        let c = MPPChallenge(id: "abc", realm: "api", method: "tempo", request: .members(["amount": .string("1")]),
                             expires: "2030-01-01T00:00:00Z", description: "")
        let cred = MPPCredential(challenge: c.echo, payload: .members(["type": .string("transaction"),
                                                                      "signature": .string("0x76")]),
                                 source: "did:pkh:eip155:42431:0x01")
        let json = String(decoding: Base64.decode(cred.token, alphabet: .url)!, as: UTF8.self)
        #expect(json == #"{"challenge":{"expires":"2030-01-01T00:00:00Z","id":"abc","intent":"charge","method":"tempo","realm":"api","request":"eyJhbW91bnQiOiIxIn0"},"payload":{"signature":"0x76","type":"transaction"},"source":"did:pkh:eip155:42431:0x01"}"#)
        #expect(!cred.token.contains("="))
    }

    /// pympp's `Credential.to_authorization()` for the same echo and payload is byte-identical to ours.
    @Test func credentialMatchesPympp() throws {
        let request = try JSONValue.parse(PymppCredentialVector.requestJSON)
        #expect(Base64.encodeURL(request.canonical) == PymppCredentialVector.requestB64)
        let c = MPPChallenge(id: PymppCredentialVector.challengeID, realm: "api.example.com", method: "tempo",
                             request: request, expires: PymppCredentialVector.expires)
        #expect(MPPChallenge.boundID(secret: Array(PymppCredentialVector.secret.utf8), input: c.idBindingInput)
                == PymppCredentialVector.challengeID)
        let cred = MPPCredential(challenge: c.echo,
                                 payload: .members(["type": .string("transaction"), "signature": .string("0x76abcd")]),
                                 source: "did:pkh:eip155:42431:0x0000000000000000000000000000000000000001")
        #expect(cred.authorizationValue == PymppCredentialVector.authorization)
    }

    @Test func receiptRoundTripAndErrors() throws {
        let r = MPPReceipt(method: "tempo", timestamp: "2026-01-01T00:00:00Z", reference: "0xabc", challengeID: "id1",
                           amount: "1000", currency: "0x20c0")
        let back = try MPPReceipt(headerValue: r.headerValue)
        #expect(back.json.canonical == r.json.canonical && back.method == r.method && back.reference == r.reference)
        #expect(back.amount == "1000" && back.challengeID == "id1")
        #expect(throws: MPPReceiptError.self) { try MPPReceipt(headerValue: "%%%") }
        #expect(throws: MPPReceiptError.self) { try MPPReceipt(headerValue: Base64.encodeURL(Array("[]".utf8))) }
    }

    @Test func problemDetails() throws {
        let body = Array(#"{"type":"https://paymentauth.org/problems/verification-failed","title":"Verification failed","status":402,"detail":"bad signature"}"#.utf8)
        let p = try #require(ProblemDetails(body: body))
        #expect(p.code == "verification-failed" && p.status == 402 && p.detail == "bad signature")
        #expect(ProblemDetails(body: Array("nope".utf8)) == nil)
        #expect(ProblemDetails(body: Array("{}".utf8)) == nil)
    }
}

@Suite("Tempo 0x76 transactions")
struct TempoTransactionTests {
    @Test func rlpBasics() throws {
        #expect(RLP.uint(0).encoded == [0x80])
        #expect(RLP.uint(15).encoded == [0x0F])
        #expect(RLP.uint(1024).encoded == [0x82, 0x04, 0x00])
        #expect(RLP.bytes(Array("dog".utf8)).encoded == [0x83] + Array("dog".utf8))
        #expect(RLP.list([]).encoded == [0xC0])
        let long = RLP.bytes(Array(repeating: 0x61, count: 56)).encoded
        #expect(long.prefix(2) == [0xB8, 56])
        let nested = RLP.list([.list([]), .list([.list([])]), .list([.list([]), .list([.list([])])])])
        #expect(nested.encoded == [0xC7, 0xC0, 0xC1, 0xC0, 0xC3, 0xC0, 0xC1, 0xC0])
        let decodedList = try RLP.decode(nested.encoded)
        #expect(decodedList == nested)
    }

    /// Byte-identical to pytempo for the same inputs (fixture from scripts/tempo-vectors.py).
    @Test(arguments: tempoVectors.map(\.name)) func matchesPytempo(_ name: String) throws {
        let v = try #require(tempoVectors.first { $0.name == name })
        let signer = try EVMSigner(hexKey: v.privateKey)
        #expect(signer.address.checksummed == v.sender)
        let tx = TempoTransaction.transfer(
            chainID: v.chainID, token: try EVMAddress(hex: v.token), recipient: try EVMAddress(hex: v.recipient),
            amount: v.amount, nonce: v.nonce, validBefore: v.validBefore, validAfter: 0,
            feeToken: try v.feeToken.map { try EVMAddress(hex: $0) })
        #expect(tx.signingHash.hexString == v.signingHash)
        let ethereumV = try tx.signed(by: signer)
        let parityV = try tx.signed(by: signer, recovery: .parity)
        #expect(ethereumV.hexString == v.signedEthereumV)
        #expect(parityV.hexString == v.signedParityV)
        // Decoding gives the transaction back, and the sender recovers.
        let (decoded, sig) = try TempoTransaction.decode(Hex.decode(v.signedParityV)!)
        #expect(decoded.signingPayload == tx.signingPayload)
        let sender = try TempoTransaction.recoverSender(of: decoded, signature: sig)
        #expect(sender == signer.address)
        let transfer = try #require(TempoTransaction.decodeTransfer(decoded.calls[0].input))
        let expectedRecipient = try EVMAddress(hex: v.recipient)
        #expect(transfer.amount == v.amount && transfer.recipient == expectedRecipient)
    }
}
