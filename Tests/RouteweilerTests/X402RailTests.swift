import Foundation
import HTTPTypes
import Logging
import Routeweiler
import RouteweilerTesting
import RouteweilerWire
import RouteweilerX402
import Testing

/// Builds x402 v1/v2 challenges and decodes the payment headers the client sends back.
enum X402Fixture {
    static let anvilKey = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
    static let signer = try! EVMSigner(hexKey: anvilKey)
    static let payTo = "0x209693bc6afc0c5328ba36faf03c514ef312287c"
    static let sepoliaUSDC = "0x036cbd53842c5426634e7929541ec2318f3dcf7e"
    static let baseUSDC = "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913"
    static let url = "http://127.0.0.1:9/weather"

    static func accept(scheme: String = "exact", network: String = "eip155:84532", amount: String = "1000",
                       payTo: String = payTo, asset: String = sepoliaUSDC, name: String? = "USDC",
                       version: String? = "2", timeout: Int = 60, resource: String? = nil,
                       v1: Bool = false) -> X402JSON {
        var extra: [String: X402JSON] = [:]
        if let name { extra["name"] = .string(name) }
        if let version { extra["version"] = .string(version) }
        var o: [String: X402JSON] = [
            "scheme": .string(scheme), "network": .string(network), v1 ? "maxAmountRequired" : "amount": .string(amount),
            "payTo": .string(payTo), "maxTimeoutSeconds": .number(String(timeout)), "asset": .string(asset),
            "extra": .object(extra), "description": .string("weather"),
        ]
        if let resource { o["resource"] = .string(resource) }
        return .object(o)
    }

    static func v2Header(_ accepts: [X402JSON], resource: X402JSON? = nil) -> String {
        var doc: [String: X402JSON] = ["x402Version": .number("2"), "accepts": .array(accepts)]
        if let resource { doc["resource"] = resource }
        return Base64.encode(Array(X402JSON.object(doc).compactText.utf8))
    }

    static func v1Body(_ accepts: [X402JSON]) -> [UInt8] {
        Array(X402JSON.object(["x402Version": .number("1"), "error": .string("payment required"),
                               "accepts": .array(accepts)]).compactText.utf8)
    }

    static func response(header: String? = nil, body: [UInt8] = []) -> TransportResponse {
        var fields = HTTPFields()
        if let header { fields[HTTPField.Name("PAYMENT-REQUIRED")!] = header }
        return TransportResponse(status: .init(code: 402), headerFields: fields, body: body)
    }

    static func context(_ response: TransportResponse, url: String = url, now: Date = Date()) -> ChallengeContext {
        ChallengeContext(request: RouteweilerRequest(url: URL(string: url)!), response: response, now: now)
    }

    static func offers(header: String? = nil, body: [UInt8] = [], url: String = url) -> [OfferResult] {
        X402Rail().offers(in: context(response(header: header, body: body), url: url))
    }

    static func decode(_ headerValue: String) throws -> X402JSON {
        try X402JSON.parse(try #require(Base64.decode(headerValue)))
    }

    /// Checks a decoded payment payload: the authorisation's EIP-712 digest recovers to the wallet.
    static func verify(_ document: X402JSON, asset: X402Asset, amount: String, payTo: String = payTo) throws {
        let auth = try #require(document["payload"]?["authorization"])
        func text(_ v: X402JSON?) throws -> String { try #require(v?.stringValue) }
        #expect(auth["to"]?.stringValue == payTo)
        #expect(auth["value"]?.stringValue == amount)
        let nonce = try #require(Hex.decode(try text(auth["nonce"])))
        let message = try TransferWithAuthorization(
            from: try EVMAddress(hex: try text(auth["from"])), to: try EVMAddress(hex: try text(auth["to"])),
            value: try text(auth["value"]), validAfter: try text(auth["validAfter"]),
            validBefore: try text(auth["validBefore"]), nonce: nonce)
        let signature = try #require(Hex.decode(try text(document["payload"]?["signature"])))
        let recovered = try EVMAddress.recover(digest32: message.digest(domain: asset.domain), signature65: signature)
        #expect(recovered == signer.address)
        #expect(message.from == signer.address)
        let now = UInt64(Date().timeIntervalSince1970)
        let after = try #require(UInt64(try text(auth["validAfter"])))
        let before = try #require(UInt64(try text(auth["validBefore"])))
        #expect(after <= now - 590 && after >= now - 610)
        #expect(before > now)
    }
}

@Suite struct X402RailTests {
    typealias F = X402Fixture

    func client(_ transport: ScriptedTransport, funding: EVMFundingSource) throws -> RouteweilerClient {
        var config = RouteweilerClient.Configuration(funding: [funding])
        config.transport = transport
        config.paidRetry.backoff = .milliseconds(1)
        return try RouteweilerClient(configuration: config)
    }

    func single(_ results: [OfferResult]) throws -> PaymentOffer {
        try #require(results.count == 1)
        guard case .offer(let offer) = results[0] else {
            Issue.record("expected an offer, got \(results[0])")
            throw CancellationError()
        }
        return offer
    }

    func rejection(_ results: [OfferResult]) throws -> any RouteweilerError {
        try #require(results.count == 1)
        guard case .rejected(let error) = results[0] else {
            Issue.record("expected a rejection")
            throw CancellationError()
        }
        return error
    }

    @Test func parsesV2Header() throws {
        let now = Date()
        let rail = X402Rail()
        let results = rail.offers(in: F.context(F.response(header: F.v2Header([F.accept()])), now: now))
        let offer = try single(results)
        #expect(offer.rail == .x402)
        #expect(offer.challenge.price.amount == 1000)
        #expect(offer.challenge.price.currency == "eip155:84532/erc20:\(F.sepoliaUSDC)")
        #expect(offer.challenge.price.humanAmount == "0.001 USDC")
        #expect(offer.challenge.payee.identifier == F.payTo)
        #expect(offer.challenge.expiresAt == now.addingTimeInterval(60))
        #expect(offer.challenge.resource.url == F.url)
        #expect((offer.details as? X402Offer)?.version == 2)
    }

    @Test func parsesV1Body() throws {
        let now = Date()
        let body = F.v1Body([F.accept(network: "base", amount: "123456789", asset: F.baseUSDC, name: "USD Coin",
                                      timeout: 300, resource: F.url, v1: true)])
        let offer = try single(X402Rail().offers(in: F.context(F.response(body: body), now: now)))
        #expect(offer.challenge.price.amount == 123_456_789)
        #expect(offer.challenge.price.currency == "eip155:8453/erc20:\(F.baseUSDC)")
        #expect(offer.challenge.price.humanAmount == "123.457 USDC")
        #expect(offer.challenge.expiresAt == now.addingTimeInterval(300))
        #expect((offer.details as? X402Offer)?.version == 1)
    }

    @Test func nonX402ResponsesYieldNothing() {
        #expect(F.offers(body: Array("{\"error\":\"pay\"}".utf8)).isEmpty)
        #expect(F.offers(body: Array("not json".utf8)).isEmpty)
        let ok = TransportResponse(status: .init(code: 200), headerFields: [:], body: [])
        #expect(X402Rail().offers(in: F.context(ok)).isEmpty)
    }

    @Test func malformedHeadersAreRejected() throws {
        for header in ["!!!not base64", Base64.encode(Array("{not json".utf8)), Base64.encode(Array("[1]".utf8)),
                       Base64.encode(Array("{\"x402Version\":1,\"accepts\":[]}".utf8)),
                       Base64.encode(Array("{\"x402Version\":2}".utf8)),
                       Base64.encode(Array("{\"x402Version\":2,\"accepts\":[]}".utf8))]
        {
            let error = try rejection(F.offers(header: header))
            #expect(error is ChallengeError, "\(header): \(error)")
        }
    }

    @Test func unknownNetworkAssetOrSchemeIsRejected() throws {
        let cases: [(X402JSON, InvalidChallengeError.Code)] = [
            (F.accept(network: "eip155:999999"), .unknownNetwork),
            (F.accept(network: "solana"), .unknownNetwork),
            (F.accept(asset: "0x1111111111111111111111111111111111111111"), .unknownAsset),
            (F.accept(network: "eip155:8453"), .unknownAsset),  // Sepolia USDC address on Base mainnet
            (F.accept(scheme: "upto"), .unsupportedScheme),
            (F.accept(scheme: "bogus"), .unsupportedScheme),
            (F.accept(amount: "18446744073709551616"), .amountOutOfRange),
        ]
        for (accept, code) in cases {
            let error = try rejection(F.offers(header: F.v2Header([accept])))
            #expect((error as? InvalidChallengeError)?.code == code, "\(error)")
        }
    }

    @Test func badPayToOrAmountIsRejected() throws {
        for accept in [F.accept(payTo: "0x1234"), F.accept(payTo: "alice.eth"),
                       F.accept(payTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287c"),  // bad EIP-55 checksum
                       F.accept(amount: "-5"), F.accept(amount: "1.5")]
        {
            let error = try rejection(F.offers(header: F.v2Header([accept])))
            #expect(error is ChallengeError, "\(error)")
        }
    }

    @Test func pinnedDomainMismatchIsRefused() throws {
        for accept in [F.accept(name: "USD Coin"), F.accept(version: "1"),
                       F.accept(network: "eip155:8453", asset: F.baseUSDC, name: "USDC")]
        {
            let error = try rejection(F.offers(header: F.v2Header([accept])))
            #expect((error as? InvalidChallengeError)?.code == .domainMismatch, "\(error)")
        }
        // Without extra, the pinned domain is used.
        _ = try single(F.offers(header: F.v2Header([F.accept(name: nil, version: nil)])))
    }

    @Test func anExpiredRequirementIsRefused() throws {
        var accept = F.accept()
        guard case .object(var o) = accept, case .object(var extra)? = o["extra"] else { throw CancellationError() }
        extra["validBefore"] = .number(String(Int(Date().timeIntervalSince1970) - 5))
        o["extra"] = .object(extra)
        accept = .object(o)
        #expect(try rejection(F.offers(header: F.v2Header([accept]))) is ChallengeExpiredError)
        // A bound in the future shortens the offer's lifetime to it.
        let soon = Int(Date().timeIntervalSince1970) + 30
        extra["validBefore"] = .string(String(soon))
        o["extra"] = .object(extra)
        let offer = try single(F.offers(header: F.v2Header([.object(o)])))
        #expect(offer.challenge.expiresAt == Date(timeIntervalSince1970: TimeInterval(soon)))
    }

    @Test func resourceMustMatchTheRequest() throws {
        let bad = F.offers(header: F.v2Header([F.accept()], resource: .object(["url": .string("https://evil.example/weather")])))
        #expect((try rejection(bad) as? InvalidChallengeError)?.code == .resourceMismatch)
        let badV1 = F.offers(body: F.v1Body([F.accept(network: "base-sepolia", resource: "http://127.0.0.1:9/other", v1: true)]))
        #expect((try rejection(badV1) as? InvalidChallengeError)?.code == .resourceMismatch)
        _ = try single(F.offers(header: F.v2Header([F.accept()], resource: .object(["url": .string(F.url)]))))
        _ = try single(F.offers(header: F.v2Header([F.accept(resource: "/weather")])))
    }

    @Test func v1AndV2OfTheSamePaymentGiveOneOffer() throws {
        let header = F.v2Header([F.accept()])
        let body = F.v1Body([F.accept(network: "base-sepolia", resource: F.url, v1: true)])
        let offer = try single(F.offers(header: header, body: body))
        #expect((offer.details as? X402Offer)?.version == 2)
        // A different amount in v1 is a different offer.
        let other = F.v1Body([F.accept(network: "base-sepolia", amount: "2000", v1: true)])
        #expect(F.offers(header: header, body: other).count == 2)
    }

    @Test func paysV2EndToEnd() async throws {
        let resource = X402JSON.object(["url": .string(F.url), "description": .string("weather")])
        let accept = F.accept(amount: "2500")
        let transport = ScriptedTransport([
            .respond(F.response(header: F.v2Header([accept], resource: resource))),
            .respond(ScriptedTransport.status(200, "sunny")),
        ])
        let response = try await client(transport, funding: Funding.baseSepoliaUSDC(wallet: F.signer))
            .get(F.url)
        #expect(response.text == "sunny")
        #expect(response.payment?.rail == .x402)
        #expect(response.payment?.amountNative == 2500)
        #expect(response.payment?.proofType == .txid)
        #expect(transport.requests.count == 2)
        let retry = transport.requests[1]
        #expect(retry.headerFields[HTTPField.Name("X-PAYMENT")!] == nil)
        let document = try F.decode(try #require(retry.headerFields[HTTPField.Name("PAYMENT-SIGNATURE")!]))
        #expect(document["x402Version"] == .number("2"))
        #expect(document["payload"]?["authorization"]?["from"] == .string("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"))
        #expect(document["accepted"] == accept)
        #expect(document["resource"] == resource)
        try F.verify(document, asset: .baseSepoliaUSDC, amount: "2500")
    }

    @Test func paysV1EndToEnd() async throws {
        let body = F.v1Body([F.accept(network: "base-sepolia", amount: "700", resource: F.url, v1: true)])
        let transport = ScriptedTransport([.respond(F.response(body: body)), .respond(ScriptedTransport.status(200))])
        let response = try await client(transport, funding: Funding.baseSepoliaUSDC(wallet: F.signer)).get(F.url)
        #expect(response.payment?.amountNative == 700)
        let retry = transport.requests[1]
        #expect(retry.headerFields[HTTPField.Name("PAYMENT-SIGNATURE")!] == nil)
        let document = try F.decode(try #require(retry.headerFields[HTTPField.Name("X-PAYMENT")!]))
        #expect(document["x402Version"] == .number("1"))
        #expect(document["scheme"] == .string("exact"))
        #expect(document["network"] == .string("base-sepolia"))
        try F.verify(document, asset: .baseSepoliaUSDC, amount: "700")
    }

    @Test func v1AndV2TogetherPayOnceWithV2() async throws {
        let transport = ScriptedTransport([
            .respond(F.response(header: F.v2Header([F.accept()]),
                                body: F.v1Body([F.accept(network: "base-sepolia", v1: true)]))),
            .respond(ScriptedTransport.status(200)),
        ])
        _ = try await client(transport, funding: Funding.baseSepoliaUSDC(wallet: F.signer)).get(F.url)
        #expect(transport.requests.count == 2)
        #expect(transport.requests[1].headerFields[HTTPField.Name("PAYMENT-SIGNATURE")!] != nil)
        #expect(transport.requests[1].headerFields[HTTPField.Name("X-PAYMENT")!] == nil)
    }

    @Test func mainnetBaseUSDCSignsUnderItsOwnDomain() async throws {
        let accept = F.accept(network: "eip155:8453", asset: F.baseUSDC, name: "USD Coin")
        let transport = ScriptedTransport([.respond(F.response(header: F.v2Header([accept]))),
                                           .respond(ScriptedTransport.status(200))])
        _ = try await client(transport, funding: Funding.baseUSDC(wallet: F.signer)).get(F.url)
        let document = try F.decode(try #require(transport.requests[1].headerFields[HTTPField.Name("PAYMENT-SIGNATURE")!]))
        try F.verify(document, asset: .baseUSDC, amount: "1000")
    }

    @Test func wrongNetworkFundingIsRefused() async throws {
        let transport = ScriptedTransport([.respond(F.response(header: F.v2Header([F.accept()])))])
        do {
            _ = try await client(transport, funding: Funding.baseUSDC(wallet: F.signer)).get(F.url)
            Issue.record("expected NoFundingForRailError")
        } catch let error as NoFundingForRailError {
            #expect(error.code == .networkMismatch)
            #expect(!error.mayHaveMovedFunds)
        }
        #expect(transport.requests.count == 1)
    }

    @Test func amountAboveTheLimitIsRefused() throws {
        let offer = try single(F.offers(header: F.v2Header([F.accept(amount: "5000")])))
        let funding = Funding.baseSepoliaUSDC(wallet: F.signer, maxAmount: 4999)
        #expect(throws: InvalidChallengeError.self) { try X402Rail().check(offer, with: funding, now: Date()) }
        try X402Rail().check(offer, with: Funding.baseSepoliaUSDC(wallet: F.signer, maxAmount: 5000), now: Date())
    }

    struct BrokenWallet: EVMWallet {
        var address: EVMAddress { F.signer.address }
        func signDigest(_ digest32: [UInt8]) async throws -> [UInt8] { throw CancellationError() }
    }

    @Test func signingFailureMovesNoFunds() async throws {
        let offer = try single(F.offers(header: F.v2Header([F.accept()])))
        let context = PaymentContext(requestID: "r", logger: Logger(label: "test"), now: Date())
        do {
            _ = try await X402Rail().pay(offer, with: Funding.baseSepoliaUSDC(wallet: BrokenWallet()), context: context)
            Issue.record("expected SigningError")
        } catch let error as SigningError {
            #expect(error.errorName == "SigningError")
            #expect(!error.mayHaveMovedFunds)
        }
    }

    /// Claims one address and signs with another key: a wallet the rail cannot vouch for is checked.
    struct ImpostorWallet: EVMWallet {
        var address: EVMAddress { F.signer.address }
        func signDigest(_ digest32: [UInt8]) async throws -> [UInt8] {
            try EVMSigner(hexKey: String(repeating: "11", count: 32)).signDigest(digest32)
        }
    }

    @Test func aSignatureThatDoesNotRecoverToTheWalletIsRefusedBeforeSending() async throws {
        let offer = try single(F.offers(header: F.v2Header([F.accept()])))
        let context = PaymentContext(requestID: "r", logger: Logger(label: "test"), now: Date())
        #expect(!ImpostorWallet().signaturesRecoverToAddress && F.signer.signaturesRecoverToAddress)
        do {
            _ = try await X402Rail().pay(offer, with: Funding.baseSepoliaUSDC(wallet: ImpostorWallet()), context: context)
            Issue.record("expected SigningError")
        } catch let error as SigningError {
            #expect(error.message.contains("does not recover"), "\(error.message)")
            #expect(!error.mayHaveMovedFunds)
        }
        // The built-in signer's proof carries a signature that recovers to its address.
        let proof = try await X402Rail().pay(offer, with: Funding.baseSepoliaUSDC(wallet: F.signer), context: context)
        #expect(!proof.headerValue.value.isEmpty)
    }

    @Test func customTokenSourceTeachesTheRailItsAsset() throws {
        let token = try EVMAddress(hex: "0x60a3e35cc302bfa44cb288bc5a4f316fdb1adb42")
        let source = EVMFundingSource(wallet: F.signer, chainId: 8453, asset: token, domainName: "EURC",
                                      domainVersion: "2", symbol: "EURC")
        let rail = try #require(source.rails.first as? X402Rail)
        let header = F.v2Header([F.accept(network: "eip155:8453", amount: "10000", asset: token.lowercased, name: "EURC")])
        let offer = try single(rail.offers(in: F.context(F.response(header: header))))
        #expect(offer.challenge.price.humanAmount == "0.01 EURC")
        try rail.check(offer, with: source, now: Date())
        #expect(throws: NoFundingForRailError.self) {
            try rail.check(offer, with: Funding.baseUSDC(wallet: F.signer), now: Date())
        }
    }

    @Test func aSecondSourcesCustomTokenIsPayable() async throws {
        // USDC first, then a custom token: the client's one x402 rail knows both.
        let token = try EVMAddress(hex: "0x60a3e35cc302bfa44cb288bc5a4f316fdb1adb42")
        let eurc = EVMFundingSource(wallet: F.signer, chainId: 8453, asset: token, domainName: "EURC",
                                    domainVersion: "2", symbol: "EURC")
        let header = F.v2Header([F.accept(network: "eip155:8453", amount: "10000", asset: token.lowercased, name: "EURC")])
        let transport = ScriptedTransport([.respond(F.response(header: header)), .respond(ScriptedTransport.status(200))])
        var config = RouteweilerClient.Configuration(funding: [Funding.baseUSDC(wallet: F.signer), eurc])
        config.transport = transport
        let response = try await RouteweilerClient(configuration: config).get(F.url)
        #expect(response.payment?.amountNativeCurrency == "eip155:8453/erc20:\(token.lowercased)")
        let merged = try #require(Funding.baseUSDC(wallet: F.signer).rails[0].merged(with: eurc.rails[0]) as? X402Rail)
        #expect(merged.assets.count == X402Asset.pinned.count + 1)
    }

    @Test func jsonRoundTripKeepsNumbersAndEscapes() throws {
        let text = #"{"a":[1,-2.5e3,true,false,null],"b":"q\"\\\n\u00e9"}"#
        let value = try X402JSON.parse(Array(text.utf8))
        #expect(value["a"] == .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null]))
        #expect(value["b"] == .string("q\"\\\né"))
        #expect(try X402JSON.parse(Array(value.compactText.utf8)) == value)
        // Written compactly: keys sorted, the escapes JSON needs and no others (non-ASCII and "/" as they are).
        let written = X402JSON.object(["b": .string("q\"\\\n\r\t\u{01}\u{1F}é/☃"), "a": .number("1"),
                                       "c": .ordered([.init("z", .null), .init("y", .string(""))])]).compactText
        #expect(written == #"{"a":1,"b":"q\"\\\n\r\t\u0001\u001fé/☃","c":{"z":null,"y":""}}"#)
        #expect(try X402JSON.parse(Array(written.utf8))["b"] == .string("q\"\\\n\r\t\u{01}\u{1F}é/☃"))
        for bad in ["{", "{\"a\":1,}", "[01]", "{\"a\":1}x", "{\"a\":1,\"a\":2}", "\"a\u{01}b\"", "\"abc"] {
            #expect(throws: (any Error).self) { try X402JSON.parse(Array(bad.utf8)) }
        }
    }
}
