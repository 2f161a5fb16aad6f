import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RouteweilerWire
import Synchronization

/// An MPP paywall (the `Payment` HTTP authentication scheme) over real HTTP on 127.0.0.1, for tests and the
/// `routeweiler demo --rail mpp` offline demo.
///
/// A 402 offers one `Payment` challenge per configured method (HMAC-bound ids, base64url JCS `request`, an RFC
/// 9457 problem body), optionally an L402 challenge too. It verifies `Authorization: Payment <credential>`:
/// the echo must be the issued challenge exactly; `tempo`: a signed 0x76 TIP-20 transfer of the amount to the
/// recipient on the chain, with the sender's pending nonce (checked and bumped on the attached ``FakeTempoRPC``);
/// `stripe`: a shared payment token the attached ``FakeStripe`` minted for at least the amount, in the currency,
/// for this seller; `lightning`: the preimage of the invoice (registered on the ``FakeLightningNetwork`` so
/// ``FakeLND`` can pay it). A paid request gets `Payment-Receipt`.
///
/// ```swift
/// try await FakeMPPPaywall.withPaywall(configuration: config, stripe: stripe, tempo: rpc) { paywall in
///     let response = try await rw.get(paywall.url("/protected"))
/// }
/// ```
public final class FakeMPPPaywall: Sendable {
    public enum Method: String, Sendable, Hashable, CaseIterable {
        case tempo, stripe, lightning
    }

    public struct Configuration: Sendable {
        /// The methods offered, in order.
        public var methods: [Method] = [.tempo, .stripe, .lightning]
        /// Also offer an L402 challenge (macaroon + invoice) for the Lightning price.
        public var offerL402 = false
        public var realm = "fake-mpp-paywall"
        /// Tempo: chain id, token, recipient and amount (token base units). Default 0.01 pathUSD on Moderato.
        public var tempoChainID: UInt64 = 42431
        public var tempoToken = "0x20c0000000000000000000000000000000000000"
        public var tempoRecipient = "0x742d35cc6634c0532925a3b844bc454e4438f44e"
        public var tempoAmount: UInt64 = 10_000
        /// Stripe: amount in minor units, currency and the seller's network business profile.
        public var stripeAmount: UInt64 = 100
        public var stripeCurrency = "usd"
        public var stripeNetworkID = "profile_test_routeweiler"
        /// The method name for Stripe challenges: `stripe` or `card`.
        public var stripeMethodName = "stripe"
        /// Lightning price in millisatoshi (whole sats). Default 10 sats.
        public var lightningPriceMsat: UInt64 = 10_000
        public var lightningNetwork: LightningNetwork = .bitcoinRegtest
        /// Seconds until a challenge expires; negative mints expired challenges.
        public var expiresInSeconds: Int = 300
        /// The intent of issued challenges.
        public var intent = "charge"
        /// Send a receipt naming another challenge id.
        public var receiptForOtherChallenge = false
        /// Answer a valid proof with 400 and an RFC 9457 problem body (no receipt).
        public var failPaidRetryWithProblem = false
        public init() {}
    }

    public struct Stats: Sendable, Hashable {
        public var protectedRequests = 0
        public var challengesIssued = 0
        /// Paid requests served, by method (`tempo`, `stripe`, `lightning`, `l402`).
        public var paidByMethod: [String: Int] = [:]
        public var proofsRejected = 0
        /// Why proofs were rejected, in order.
        public var rejections: [String] = []
        /// `Accept-Payment` headers received, in order.
        public var acceptPaymentHeaders: [String] = []
        /// `Authorization` values received, in order.
        public var authorizations: [String] = []
        public var paidTotal: Int { paidByMethod.values.reduce(0, +) }
    }

    struct Issued: Sendable {
        var challenge: MPPChallenge
        var method: Method
        var expiresAt: Date
        var paymentHash: [UInt8]?
        var used = false
    }

    public let network: FakeLightningNetwork
    public let stripe: FakeStripe?
    public let tempo: FakeTempoRPC?
    private let state: Mutex<(config: Configuration, stats: Stats, issued: [String: Issued], port: Int?)>
    private let secret: [UInt8]
    private let nodeKey: Secp256k1.PrivateKey
    private let rootKey: [UInt8]
    private let server = LocalHTTPServer()

    public init(network: FakeLightningNetwork = FakeLightningNetwork(), configuration: Configuration = .init(),
                stripe: FakeStripe? = nil, tempo: FakeTempoRPC? = nil) {
        self.network = network
        self.stripe = stripe
        self.tempo = tempo
        state = Mutex((configuration, Stats(), [:], nil))
        secret = FakePaywall.randomBytes(32)
        rootKey = FakePaywall.randomBytes(32)
        var key: Secp256k1.PrivateKey?
        while key == nil { key = try? Secp256k1.PrivateKey(bytes: FakePaywall.randomBytes(32)) }
        nodeKey = key!
    }

    public var port: Int { state.withLock { $0.port ?? 0 } }
    public var baseURL: String { "http://127.0.0.1:\(port)" }
    public func url(_ path: String) -> String { baseURL + path }
    public var stats: Stats { state.withLock { $0.stats } }
    public func configure(_ change: (inout Configuration) -> Void) { state.withLock { change(&$0.config) } }
    /// The payee node's public key (66 hex), as found in the invoices.
    public var nodePubkey: String { nodeKey.publicKey.compressed.hexString }

    public static func withPaywall<R: Sendable>(
        network: FakeLightningNetwork = FakeLightningNetwork(), configuration: Configuration = .init(),
        stripe: FakeStripe? = nil, tempo: FakeTempoRPC? = nil, _ body: (FakeMPPPaywall) async throws -> R
    ) async throws -> R {
        let paywall = FakeMPPPaywall(network: network, configuration: configuration, stripe: stripe, tempo: tempo)
        try await paywall.start()
        do {
            let r = try await body(paywall)
            await paywall.shutdown()
            return r
        } catch {
            await paywall.shutdown()
            throw error
        }
    }

    public func start() async throws {
        let router = Router()
        for method in [HTTPRequest.Method.get, .post] {
            router.on("/protected", method: method) { request, _ in try await self.handle(request) }
            router.on("/protected/**", method: method) { request, _ in try await self.handle(request) }
        }
        let port = try await server.start(router, label: "fake-mpp-paywall")
        state.withLock { $0.port = port }
    }

    public func shutdown() async { await server.shutdown() }

    private func handle(_ request: Request) async throws -> Response {
        var request = request
        _ = try await request.collectBody(upTo: 1 << 20)
        let config = state.withLock { s -> Configuration in
            s.stats.protectedRequests += 1
            if let a = request.headers[HTTPField.Name("Accept-Payment")!] { s.stats.acceptPaymentHeaders.append(a) }
            if let a = request.headers[.authorization] { s.stats.authorizations.append(a) }
            return s.config
        }
        if let authorization = request.headers[.authorization] {
            switch await verify(authorization, config: config) {
            case .success(let (method, issued, reference)):
                state.withLock { $0.stats.paidByMethod[method, default: 0] += 1 }
                if config.failPaidRetryWithProblem {
                    return Self.problem(.badRequest, type: "verification-failed", title: "Payment verification failed",
                                        detail: "the payment could not be settled")
                }
                var response = Self.json(.ok, #"{"result":"ok","rail":"\#(method == "l402" ? "l402" : "mpp-" + method)"}"#)
                if let issued {
                    var amount = ""
                    var currency = ""
                    switch issued.method {
                    case .tempo: (amount, currency) = (String(config.tempoAmount), config.tempoToken)
                    case .stripe: (amount, currency) = (String(config.stripeAmount), config.stripeCurrency)
                    case .lightning: (amount, currency) = (String(config.lightningPriceMsat / 1000), "sat")
                    }
                    let receipt = MPPReceipt(
                        method: issued.challenge.method, timestamp: Self.rfc3339(Date()), reference: reference,
                        challengeID: config.receiptForOtherChallenge ? "another-challenge" : issued.challenge.id,
                        amount: amount, currency: currency)
                    response.headers[HTTPField.Name("Payment-Receipt")!] = receipt.headerValue
                }
                return response
            case .failure(let reason):
                state.withLock { s in
                    s.stats.proofsRejected += 1
                    s.stats.rejections.append(reason.message)
                }
            }
        }
        var response = Self.problem(.init(code: 402), type: "payment-required", title: "Payment Required",
                                    detail: "pay with one of the offered methods")
        for value in try await mintChallenges(config) {
            response.headers.append(HTTPField(name: .wwwAuthenticate, value: value))
        }
        state.withLock { $0.stats.challengesIssued += 1 }
        return response
    }

    /// Mints fresh challenges for every configured method; returns the `WWW-Authenticate` values.
    public func mintChallenges(_ config: Configuration? = nil) async throws -> [String] {
        let config = config ?? state.withLock { $0.config }
        let now = Date()
        let expiresAt = now.addingTimeInterval(TimeInterval(config.expiresInSeconds))
        let expires = Self.rfc3339(expiresAt)
        var values: [String] = []
        var issued: [Issued] = []
        for method in config.methods {
            var request: JSONValue
            var paymentHash: [UInt8]?
            switch method {
            case .tempo:
                request = .members([
                    "amount": .string(String(config.tempoAmount)), "currency": .string(config.tempoToken),
                    "recipient": .string(config.tempoRecipient),
                    "methodDetails": .members(["chainId": .number(String(config.tempoChainID))]),
                ])
            case .stripe:
                request = .members([
                    "amount": .string(String(config.stripeAmount)), "currency": .string(config.stripeCurrency),
                    "recipient": .string("acct_fake_seller"),
                    "methodDetails": .members([
                        "networkId": .string(config.stripeNetworkID), "paymentMethodTypes": .array([.string("card")]),
                    ]),
                ])
            case .lightning:
                let (invoice, _) = try await mintInvoice(config, now: now)
                paymentHash = invoice.paymentHash
                request = .members([
                    "amount": .string(String(config.lightningPriceMsat / 1000)), "currency": .string("sat"),
                    "description": .string("Routeweiler fake MPP paywall"),
                    "methodDetails": .members([
                        "invoice": .string(invoice.paymentRequest), "paymentHash": .string(invoice.paymentHash.hexString),
                        "network": .string("regtest"),
                    ]),
                ])
            }
            var challenge = MPPChallenge(
                id: "", realm: config.realm, method: method == .stripe ? config.stripeMethodName : method.rawValue,
                intent: config.intent, request: request, expires: expires, description: "fake \(method.rawValue) charge")
            challenge.id = MPPChallenge.boundID(secret: secret, input: challenge.idBindingInput)
            values.append(challenge.headerValue)
            issued.append(Issued(challenge: challenge, method: method, expiresAt: expiresAt, paymentHash: paymentHash))
        }
        if config.offerL402 {
            let (invoice, _) = try await mintInvoice(config, now: now)
            let macaroon = Macaroon.mint(
                rootKey: rootKey,
                identifier: L402Identifier(paymentHash: invoice.paymentHash, tokenID: FakePaywall.randomBytes(32)).bytes,
                location: "fake-mpp-paywall")
            values.append("L402 macaroon=\"\(macaroon.base64)\", invoice=\"\(invoice.paymentRequest)\"")
        }
        state.withLock { s in for i in issued { s.issued[i.challenge.id] = i } }
        return values
    }

    private func mintInvoice(_ config: Configuration, now: Date) async throws -> (Bolt11Invoice, [UInt8]) {
        let preimage = FakePaywall.randomBytes(32)
        let hash = Array(SHA256.hash(data: preimage))
        let invoice = try Bolt11Invoice.sign(
            network: config.lightningNetwork, amountMsat: config.lightningPriceMsat,
            timestamp: UInt64(now.timeIntervalSince1970), paymentHash: hash, paymentSecret: FakePaywall.randomBytes(32),
            description: "Routeweiler fake MPP paywall", descriptionHash: nil,
            expirySeconds: UInt64(max(60, config.expiresInSeconds)), privateKey: nodeKey)
        await network.addInvoice(paymentRequest: invoice.paymentRequest, paymentHash: hash, preimage: preimage,
                                 amountMsat: config.lightningPriceMsat, expiresAt: invoice.expiresAt)
        return (invoice, preimage)
    }

    struct Rejection: Error { var message: String }

    /// Checks a credential; returns the method, the issued challenge and the settlement reference.
    private func verify(_ authorization: String, config: Configuration) async
        -> Result<(String, Issued?, String), Rejection>
    {
        if authorization.lowercased().hasPrefix("l402 ") {
            return verifyL402(authorization).map { ("l402", Issued?.none, $0) }
        }
        let credential: MPPCredential
        do {
            credential = try MPPCredential(authorization: authorization)
        } catch {
            return .failure(Rejection(message: "undecodable credential: \(error.message)"))
        }
        guard let id = credential.challengeID,
            var issued = state.withLock({ $0.issued[id] })
        else { return .failure(Rejection(message: "unknown challenge id")) }
        guard credential.challenge.canonical == issued.challenge.echo.canonical else {
            return .failure(Rejection(message: "the echo differs from the issued challenge"))
        }
        guard MPPChallenge.boundID(secret: secret, input: issued.challenge.idBindingInput) == id else {
            return .failure(Rejection(message: "bad challenge id"))
        }
        guard !issued.used else { return .failure(Rejection(message: "challenge already used")) }
        guard Date() < issued.expiresAt else { return .failure(Rejection(message: "challenge expired")) }
        let reference: String
        switch issued.method {
        case .tempo:
            guard credential.payload["type"]?.stringValue == "transaction",
                let hex = credential.payload["signature"]?.stringValue, hex.hasPrefix("0x"),
                let raw = Hex.decode(hex.dropFirst(2)),
                let decoded = try? TempoTransaction.decode(raw),
                case let tx = decoded.transaction,
                let sender = try? TempoTransaction.recoverSender(of: tx, signature: decoded.signature),
                tx.chainID == config.tempoChainID, tx.calls.count == 1,
                tx.calls[0].to.lowercased == config.tempoToken.lowercased(),
                let transfer = TempoTransaction.decodeTransfer(tx.calls[0].input),
                transfer.recipient.lowercased == config.tempoRecipient.lowercased(),
                transfer.amount == config.tempoAmount,
                (tx.validBefore ?? .max) > UInt64(Date().timeIntervalSince1970)
            else { return .failure(Rejection(message: "invalid Tempo transaction")) }
            if let source = credential.source,
                source.lowercased() != "did:pkh:eip155:\(config.tempoChainID):\(sender.lowercased)"
            {
                return .failure(Rejection(message: "credential source is not the transaction's sender"))
            }
            if let tempo {
                guard let hash = tempo.accept(rawTransaction: raw) else {
                    return .failure(Rejection(message: "the Tempo node refused the transaction (nonce)"))
                }
                reference = hash
            } else {
                reference = "0x" + Keccak256.hash(raw).hexString
            }
        case .stripe:
            guard let spt = credential.payload["spt"]?.stringValue, spt.hasPrefix("spt_") else {
                return .failure(Rejection(message: "no shared payment token"))
            }
            if let stripe {
                guard let token = stripe.token(spt), token.currency == config.stripeCurrency,
                    token.maxAmount >= config.stripeAmount,
                    token.expiresAt >= UInt64(Date().timeIntervalSince1970),
                    token.sellerDetails["network_business_profile"] == config.stripeNetworkID
                else { return .failure(Rejection(message: "the shared payment token does not cover the charge")) }
            }
            reference = "pi_fake_" + String(spt.dropFirst(4).prefix(16))
        case .lightning:
            guard let hex = credential.payload["preimage"]?.stringValue, let preimage = Hex.decode(hex),
                preimage.count == 32, Array(SHA256.hash(data: preimage)) == issued.paymentHash
            else { return .failure(Rejection(message: "wrong preimage")) }
            reference = issued.paymentHash!.hexString
        }
        issued.used = true
        let done = issued
        state.withLock { $0.issued[id] = done }
        return .success((issued.method.rawValue, issued, reference))
    }

    private func verifyL402(_ authorization: String) -> Result<String, Rejection> {
        let credential = authorization.dropFirst(5).trimmingCharacters(in: .whitespaces)
        guard let colon = credential.lastIndex(of: ":"),
            let macaroon = try? Macaroon(base64: String(credential[..<colon])),
            let preimage = Hex.decode(credential[credential.index(after: colon)...]), preimage.count == 32,
            macaroon.verifySignature(rootKey: rootKey), let id = macaroon.l402Identifier,
            Array(SHA256.hash(data: preimage)) == id.paymentHash
        else { return .failure(Rejection(message: "invalid L402 credential")) }
        return .success(id.paymentHash.hexString)
    }

    static func rfc3339(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }

    static func json(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func problem(_ status: HTTPResponse.Status, type: String, title: String, detail: String) -> Response {
        let body = JSONValue.members([
            "type": .string("https://paymentauth.org/problems/" + type), "title": .string(title),
            "status": .number(String(status.code)), "detail": .string(detail),
        ])
        return Response(status: status, headers: [.contentType: "application/problem+json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: body.compact)))
    }
}
