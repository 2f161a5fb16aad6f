import Foundation
import HTTPTypes
import LNDClient
import Logging
import Routeweiler
import RouteweilerL402
import RouteweilerMPP
import RouteweilerSQLite
import RouteweilerTesting
import RouteweilerX402
import RouteweilerWire
import Synchronization
import Testing

let testKey = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318"

func tempoSource(_ rpc: String?, maxAmount: UInt64? = nil) throws -> TempoFundingSource {
    Funding.tempoModeratoPathUSD(wallet: try EVMSigner(hexKey: testKey), rpcURL: rpc ?? "", maxAmount: maxAmount)
}

func client(_ funding: [any FundingSource], sink: (any TraceSink)? = nil, transport: (any HTTPTransport)? = nil,
            policy: Policy? = nil, logger: Logger? = nil) throws -> RouteweilerClient.Configuration {
    var config = RouteweilerClient.Configuration(funding: funding)
    config.traceSink = sink
    if let transport { config.transport = transport }
    if let policy { config.policy = policy }
    if let logger { config.logger = logger }
    config.paidRetry.backoff = .milliseconds(5)
    return config
}

/// Collects every log record for secret-leak checks.
final class LogCollector: LogHandler {
    let lines: Mutex<[String]> = Mutex([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
             function: String, line: UInt) {
        let all = self.metadata.merging(metadata ?? [:]) { $1 }
        lines.withLock { $0.append("\(message) \(all)") }
    }
}

/// The first error of a typed kind inside a client error (directly or among a NoFeasibleRailError's rejections).
func find<E: RouteweilerError>(_ type: E.Type, in error: any Error) -> E? {
    if let e = error as? E { return e }
    if let n = error as? NoFeasibleRailError { return n.rejections.lazy.compactMap { $0.error as? E }.first }
    return nil
}

func paywallConfig(_ methods: [FakeMPPPaywall.Method], _ change: (inout FakeMPPPaywall.Configuration) -> Void = { _ in })
    -> FakeMPPPaywall.Configuration
{
    var c = FakeMPPPaywall.Configuration()
    c.methods = methods
    change(&c)
    return c
}

@Suite(.serialized) struct MPPTempoTests {
    @Test func paysTheLocalPaywallWithASignedTempoTransaction() async throws {
        try await FakeTempoRPC.withRPC(chainID: 42431) { rpc in
            try await FakeMPPPaywall.withPaywall(configuration: paywallConfig([.tempo]), tempo: rpc) { paywall in
                let source = try tempoSource(rpc.url)
                rpc.setNonce(5, for: source.wallet.address.lowercased)
                let sink = InMemoryTraceSink()
                let response = try await RouteweilerClient.withClient(configuration: try client([source], sink: sink)) {
                    try await $0.get(paywall.url("/protected"))
                }
                #expect(response.status == .ok)
                #expect(response.text == #"{"result":"ok","rail":"mpp-tempo"}"#)
                let payment = try #require(response.payment)
                #expect(payment.rail == .mppTempo)
                #expect(payment.proofType == .txid)
                #expect(payment.amountNative == 10_000)
                #expect(payment.amountNativeCurrency == "0x20c0000000000000000000000000000000000000-tip20")
                #expect(payment.proofValue == rpc.stats.broadcast.first)
                #expect(payment.settlement?.success == true)
                #expect(payment.settlement?.transactionHash == rpc.stats.broadcast.first)
                #expect(payment.settlement?.amountPaid == 10_000)
                #expect(payment.settlement?.facilitator == "tempo")
                #expect(payment.settlement?.network == "tempo-moderato")
                #expect(paywall.stats.paidByMethod == ["tempo": 1])
                // The nonce came from the chain's JSON-RPC, for our address, "pending".
                #expect(rpc.stats.transactionCountParams == [#"["\#(source.wallet.address.lowercased)","pending"]"#])
                #expect(rpc.nonce(of: source.wallet.address.lowercased) == 6)
                // The credential echoes the challenge and carries the 0x76 transaction.
                let credential = try MPPCredential(authorization: paywall.stats.authorizations[0])
                #expect(credential.payload["type"]?.stringValue == "transaction")
                #expect(credential.source == "did:pkh:eip155:42431:\(source.wallet.address.checksummed)")
                let raw = try #require(credential.payload["signature"]?.stringValue.flatMap { Hex.decode($0.dropFirst(2)) })
                let (tx, _) = try TempoTransaction.decode(raw)
                #expect(tx.nonce == 5 && tx.chainID == 42431 && tx.gasLimit == 350_000)
                // One trace row with the rail, proof and receipt.
                let events = await sink.events
                #expect(events.count == 1)
                let event = try #require(events.first)
                #expect(event.selectedRail == .mppTempo)
                #expect(event.facilitator == "tempo")
                #expect(event.fundingSource == "mpp-tempo:tempo-moderato:pathusd")
                #expect(event.payment?.proofType == .txid)
                #expect(event.payment?.settlement?.transactionHash == payment.proofValue)
                #expect(event.challenge?.raw["chargeId"] == credential.challengeID)
            }
        }
    }

    @Test func aTempoRPCThatIsDownPaysNothing() async throws {
        let down = try FakeTempoRPC.closedPortURL()
        try await FakeMPPPaywall.withPaywall(configuration: paywallConfig([.tempo])) { paywall in
            let sink = InMemoryTraceSink()
            var source = try tempoSource(down)
            source.rpcTimeout = .seconds(1)  // AsyncHTTPClient retries a refused connect until the deadline
            let config = try client([source], sink: sink)
            let error = await #expect(throws: (any Error).self) {
                try await RouteweilerClient.withClient(configuration: config) { try await $0.get(paywall.url("/protected")) }
            }
            let failed = try #require(error.flatMap { find(MppChargeFailedError.self, in: $0) })
            #expect(failed.code == .rpcUnavailable)
            #expect(!failed.mayHaveMovedFunds)
            #expect(paywall.stats.paidTotal == 0)
            #expect(paywall.stats.authorizations.isEmpty)
            #expect(await sink.events.count == 1)
        }
    }

    @Test func rpcErrorIsTyped() async throws {
        try await FakeTempoRPC.withRPC { rpc in
            rpc.setMode(.rpcError)
            let rail = MPPTempoRail()
            let offer = try tempoOffer()
            await #expect(throws: MppChargeFailedError.self) {
                try await rail.pay(offer, with: try tempoSource(rpc.url),
                                   context: PaymentContext(requestID: "r", logger: Logger(label: "t"), now: Date()))
            }
        }
    }

    func tempoOffer(chainID: UInt64 = 42431, amount: String = "1000") throws -> PaymentOffer {
        let c = MPPChallenge(id: "c1", realm: "r", method: "tempo", request: .members([
            "amount": .string(amount), "currency": .string("0x20c0000000000000000000000000000000000000"),
            "recipient": .string("0x742d35cc6634c0532925a3b844bc454e4438f44e"),
            "methodDetails": .members(["chainId": .number(String(chainID))]),
        ]))
        let results = MPPTempoRail().offers(in: context([c.headerValue]))
        guard case .offer(let offer)? = results.first else { throw ChallengeError("no offer") }
        return offer
    }

    @Test func checksChainAssetAndLimitBeforeSigning() throws {
        let rail = MPPTempoRail()
        let source = try tempoSource(nil, maxAmount: 500)
        let mainnetOffer = try tempoOffer(chainID: 4217)
        let moderatoOffer = try tempoOffer()
        #expect(throws: NoFundingForRailError.self) { try rail.check(mainnetOffer, with: source, now: Date()) }
        let tooMuch = #expect(throws: InvalidChallengeError.self) { try rail.check(moderatoOffer, with: source, now: Date()) }
        #expect(tooMuch?.code == .amountTooHigh)
        let usdc = Funding.tempoUSDC(wallet: try EVMSigner(hexKey: testKey), rpcURL: "")
        #expect(usdc.chain.chainID == 4217 && usdc.label == "mpp-tempo:tempo:usdc")
        #expect(throws: NoFundingForRailError.self) { try rail.check(moderatoOffer, with: usdc, now: Date()) }
    }

    @Test func signsWithNonceZeroWithoutRPCAndMatchesTheTransactionFormat() async throws {
        let offer = try tempoOffer()
        let proof = try await MPPTempoRail().pay(offer, with: try tempoSource(nil),
                                                 context: PaymentContext(requestID: "r", logger: Logger(label: "t"), now: Date()))
        let credential = try MPPCredential(authorization: proof.headerValue.value)
        let raw = try #require(credential.payload["signature"]?.stringValue.flatMap { Hex.decode($0.dropFirst(2)) })
        let (tx, sig) = try TempoTransaction.decode(raw)
        #expect(tx.nonce == 0 && sig[64] >= 27)
        #expect(proof.proofValue == "0x" + Keccak256.hash(raw).hexString)
        let sender = try TempoTransaction.recoverSender(of: tx, signature: sig)
        let signer = try EVMSigner(hexKey: testKey)
        #expect(sender == signer.address)
        #expect(tx.validBefore == UInt64(offer.challenge.expiresAt.timeIntervalSince1970))
    }
}

func context(_ headers: [String], status: Int = 402, now: Date = Date()) -> ChallengeContext {
    var fields = HTTPFields()
    for h in headers { fields.append(HTTPField(name: .wwwAuthenticate, value: h)) }
    return ChallengeContext(request: RouteweilerRequest(url: URL(string: "http://127.0.0.1:9/p")!),
                            response: TransportResponse(status: .init(code: status), headerFields: fields, body: []),
                            now: now)
}

@Suite struct MPPChallengeParsingTests {
    let b64 = Base64.encodeURL(Array(#"{"amount":"1000","currency":"0x20c0000000000000000000000000000000000000","recipient":"0x742d35cc6634c0532925a3b844bc454e4438f44e","methodDetails":{"chainId":42431}}"#.utf8))

    func rejection(_ header: String, now: Date = Date()) -> (any RouteweilerError)? {
        let results = MPPTempoRail().offers(in: context([header], now: now))
        guard case .rejected(let e)? = results.first else { return nil }
        return e
    }

    @Test func missingIDOrRequest() {
        let e1 = rejection(#"Payment realm="r", method="tempo", intent="charge", request="\#(b64)""#)
        #expect((e1 as? ChallengeError)?.message.contains("'id'") == true)
        let e2 = rejection(#"Payment id="x", realm="r", method="tempo", intent="charge""#)
        #expect((e2 as? ChallengeError)?.message.contains("'request'") == true)
    }

    @Test func undecodableRequestJSON() {
        let bad = Base64.encodeURL(Array(#"{"amount":"#.utf8))
        let e = rejection(#"Payment id="x", realm="r", method="tempo", intent="charge", request="\#(bad)""#)
        #expect((e as? ChallengeError)?.message.contains("failed to decode 'request'") == true)
        let e2 = rejection(#"Payment id="x", method="tempo", request="not base64!""#)
        #expect(e2 is ChallengeError)
    }

    @Test func expiredChallenge() {
        let e = rejection(#"Payment id="x", realm="r", method="tempo", intent="charge", request="\#(b64)", expires="2020-01-01T00:00:00Z""#)
        #expect(e is ChallengeExpiredError)
        let e2 = rejection(#"Payment id="x", method="tempo", request="\#(b64)", expires="yesterday""#)
        #expect((e2 as? ChallengeError)?.message.contains("expires") == true)
    }

    @Test func theEchoKeepsTheParametersExactlyAsSent() throws {
        let header = #"Payment id="x", method="Tempo", request="\#(b64)", opaque="eyJhIjoiYiJ9""#
        guard case .offer(let offer)? = MPPTempoRail().offers(in: context([header])).first,
            let details = offer.details as? MPPTempoOffer
        else { Issue.record("expected an offer"); return }
        let echo = details.charge.challenge.echo
        #expect(echo.canonicalString == #"{"id":"x","method":"Tempo","opaque":"eyJhIjoiYiJ9","request":"\#(b64)"}"#)
        #expect(offer.challenge.raw["intent"] == "charge")
    }

    @Test func unsupportedIntent() {
        let e = rejection(#"Payment id="x", realm="r", method="tempo", intent="session", request="\#(b64)""#)
        #expect((e as? InvalidChallengeError)?.code == .unsupportedIntent)
    }

    @Test func missingRequestFields() {
        let noAmount = Base64.encodeURL(Array(#"{"currency":"usd"}"#.utf8))
        #expect((rejection(#"Payment id="x", method="tempo", request="\#(noAmount)""#) as? ChallengeError)?.message
                    .contains("'amount'") == true)
        let noChain = Base64.encodeURL(Array(#"{"amount":"1","currency":"0x20c0000000000000000000000000000000000000","recipient":"0x742d35cc6634c0532925a3b844bc454e4438f44e"}"#.utf8))
        #expect((rejection(#"Payment id="x", method="tempo", request="\#(noChain)""#) as? ChallengeError)?.message
                    .contains("chainId") == true)
    }

    @Test func unsupportedMethodIsNotSupported() async throws {
        let header = #"Payment id="x", realm="r", method="solana", intent="charge", request="\#(b64)""#
        let transport = ScriptedTransport([.respond(ScriptedTransport.challenge([header]))])
        let config = try client([try tempoSource(nil)], transport: transport)
        await #expect(throws: RailNotSupportedError.self) {
            try await RouteweilerClient.withClient(configuration: config) { try await $0.get("http://127.0.0.1:9/p") }
        }
    }

    @Test func severalChallengesAcrossFieldsAndInOneField() {
        let tempo = #"Payment id="a", realm="r", method="tempo", intent="charge", request="\#(b64)""#
        let stripeReq = Base64.encodeURL(Array(#"{"amount":"100","currency":"usd","methodDetails":{"networkId":"profile_x"}}"#.utf8))
        let stripe = #"Payment id="b", realm="r", method="stripe", intent="charge", request="\#(stripeReq)""#
        let ctx = context(["Basic realm=\"x\", " + tempo + ", " + stripe, tempo.replacingOccurrences(of: "id=\"a\"", with: "id=\"c\"")])
        #expect(MPPTempoRail().offers(in: ctx).count == 2)
        let spt = MPPSPTRail().offers(in: ctx)
        #expect(spt.count == 1)
        guard case .offer(let o)? = spt.first else { Issue.record("no SPT offer"); return }
        #expect(o.challenge.price.humanAmount == "$1.00" && o.challenge.price.currency == "usd-fiat")
        #expect(o.challenge.nonce == "b")
    }

    @Test func stripeMinimumAndCurrency() {
        func sptRejection(_ json: String) -> (any RouteweilerError)? {
            let req = Base64.encodeURL(Array(json.utf8))
            guard case .rejected(let e)? = MPPSPTRail().offers(in: context([#"Payment id="b", method="card", request="\#(req)""#])).first
            else { return nil }
            return e
        }
        #expect(sptRejection(#"{"amount":"49","currency":"usd","recipient":"acct"}"#) is ChallengeError)
        #expect((sptRejection(#"{"amount":"100","currency":"us$","recipient":"acct"}"#) as? ChallengeError)?.message.contains("ISO-4217") == true)
        #expect(sptRejection(#"{"amount":"100","currency":"jpy","recipient":"acct"}"#) == nil)
    }
}

@Suite(.serialized) struct MPPStripeTests {
    @Test func paysWithASharedPaymentTokenAndNeverLeaksTheKey() async throws {
        try await FakeStripe.withStripe { stripe in
            try await FakeMPPPaywall.withPaywall(configuration: paywallConfig([.stripe]), stripe: stripe) { paywall in
                let source = StripeFundingSource(apiKey: stripe.apiKey, customer: "cus_test", paymentMethod: "pm_card_visa",
                                                 apiBaseURL: stripe.baseURL)
                let sink = InMemoryTraceSink()
                let logs = LogCollector()
                let config = try client([source], sink: sink, logger: Logger(label: "t", factory: { _ in logs }))
                let response = try await RouteweilerClient.withClient(configuration: config) {
                    try await $0.get(paywall.url("/protected"))
                }
                #expect(response.status == .ok)
                let payment = try #require(response.payment)
                #expect(payment.rail == .mppSPT && payment.proofType == .sptID)
                #expect(payment.amountNative == 100 && payment.amountNativeCurrency == "usd-fiat")
                #expect(payment.settlement?.facilitator == "stripe" && payment.settlement?.success == true)
                #expect(payment.settlement?.transactionHash?.hasPrefix("pi_fake_") == true)
                #expect(paywall.stats.paidByMethod == ["stripe": 1])
                // The token is bound to the challenge's amount, currency and expiry, with an explicit Stripe-Version.
                let token = try #require(stripe.stats.issued.first)
                #expect(payment.proofValue == token.id)
                #expect(token.maxAmount == 100 && token.currency == "usd" && token.paymentMethod == "pm_card_visa")
                #expect(token.customer == "cus_test")
                #expect(token.sellerDetails == ["network_business_profile": "profile_test_routeweiler"])
                let issued = try #require(MPPCredential(authorization: paywall.stats.authorizations[0]).challenge["expires"]?.stringValue)
                #expect(token.expiresAt == UInt64(Timestamp.parse(issued)!.timeIntervalSince1970))
                #expect(stripe.stats.stripeVersions == [StripeFundingSource.defaultStripeVersion])
                // The API key appears nowhere: trace, logs, descriptions.
                let events = await sink.events
                #expect(events.count == 1)
                let traced = String(decoding: try JSONEncoder().encode(events[0]), as: UTF8.self)
                #expect(!traced.contains(stripe.apiKey))
                #expect(events[0].selectedRail == .mppSPT && events[0].facilitator == "stripe")
                #expect(!logs.lines.withLock { $0 }.joined().contains(stripe.apiKey))
                #expect(!"\(source)".contains(stripe.apiKey) && !String(reflecting: source).contains(stripe.apiKey))
                var dumped = ""
                dump(source, to: &dumped)
                #expect(!dumped.contains(stripe.apiKey))
            }
        }
    }

    func sptOffer() throws -> PaymentOffer {
        let c = MPPChallenge(id: "c2", realm: "r", method: "stripe", request: .members([
            "amount": .string("250"), "currency": .string("usd"),
            "methodDetails": .members(["networkId": .string("profile_x")]),
        ]))
        guard case .offer(let offer)? = MPPSPTRail().offers(in: context([c.headerValue])).first else {
            throw ChallengeError("no offer")
        }
        return offer
    }

    @Test func cardDeclinedIsATypedErrorWithStripesCode() async throws {
        try await FakeStripe.withStripe { stripe in
            stripe.setMode(.cardDeclined)
            let source = Funding.stripe(apiKey: stripe.apiKey, customer: nil, paymentMethod: "pm_card_chargeDeclined",
                                        apiBaseURL: stripe.baseURL)
            let error = await #expect(throws: SptCreationError.self) {
                try await MPPSPTRail().pay(try sptOffer(), with: source,
                                           context: PaymentContext(requestID: "r", logger: Logger(label: "t"), now: Date()))
            }
            #expect(error?.code == "card_declined" && error?.type == "card_error")
            #expect(error?.declineCode == "generic_decline" && error?.httpStatus == 402)
            #expect(error?.mayHaveMovedFunds == false)
        }
    }

    @Test func badKeyIsATypedErrorAndTheKeyIsNotQuoted() async throws {
        try await FakeStripe.withStripe { stripe in
            let wrong = "sk_test_wrong_key_abcdefghijklmnop"
            let source = Funding.stripe(apiKey: wrong, customer: nil, paymentMethod: "pm_card_visa",
                                        apiBaseURL: stripe.baseURL)
            let error = await #expect(throws: SptCreationError.self) {
                try await MPPSPTRail().pay(try sptOffer(), with: source,
                                           context: PaymentContext(requestID: "r", logger: Logger(label: "t"), now: Date()))
            }
            #expect(error?.httpStatus == 401 && error?.type == "invalid_request_error")
            #expect(error?.message.contains(wrong) == false)
            #expect(error.map { "\($0)" }?.contains(wrong) == false)
        }
    }

    @Test func aDeclinedCardThroughTheClientPaysNothing() async throws {
        try await FakeStripe.withStripe { stripe in
            stripe.setMode(.cardDeclined)
            try await FakeMPPPaywall.withPaywall(configuration: paywallConfig([.stripe]), stripe: stripe) { paywall in
                let source = Funding.stripe(apiKey: stripe.apiKey, customer: nil, paymentMethod: "pm_x",
                                            apiBaseURL: stripe.baseURL)
                let error = await #expect(throws: (any Error).self) {
                    try await RouteweilerClient.withClient(configuration: try client([source])) {
                        try await $0.get(paywall.url("/protected"))
                    }
                }
                #expect(error.flatMap { find(SptCreationError.self, in: $0) }?.code == "card_declined")
                #expect(paywall.stats.paidTotal == 0)
            }
        }
    }

    @Test func currencyMismatchIsNoFunding() throws {
        let eur = Funding.stripe(apiKey: "sk_test_x", customer: nil, paymentMethod: "pm", currency: "EUR")
        let offer = try sptOffer()
        #expect(throws: NoFundingForRailError.self) { try MPPSPTRail().check(offer, with: eur, now: Date()) }
    }
}

@Suite(.serialized) struct MPPReceiptAndProblemTests {
    @Test func aReceiptForAnotherChallengeFailsTheCallWithoutPayingAgain() async throws {
        try await FakeTempoRPC.withRPC { rpc in
            let config = paywallConfig([.tempo]) { $0.receiptForOtherChallenge = true }
            try await FakeMPPPaywall.withPaywall(configuration: config, tempo: rpc) { paywall in
                let sink = InMemoryTraceSink()
                let error = await #expect(throws: MppReceiptVerificationError.self) {
                    try await RouteweilerClient.withClient(configuration: try client([try tempoSource(rpc.url)], sink: sink)) {
                        try await $0.get(paywall.url("/protected"))
                    }
                }
                #expect(error?.message.contains("challengeId") == true)
                #expect(error?.mayHaveMovedFunds == true)
                #expect(paywall.stats.paidTotal == 1)
                #expect(rpc.stats.broadcast.count == 1)
                let event = try #require(await sink.events.first)
                #expect(event.outcome.error?.code == "MppReceiptVerificationError")
                #expect(event.payment?.proofType == .txid)
            }
        }
    }

    @Test func receiptChecksMethodAndAmount() throws {
        let c = MPPChallenge(id: "c9", realm: "r", method: "tempo", request: .members([
            "amount": .string("1000"), "currency": .string("0x20c0000000000000000000000000000000000000"),
            "recipient": .string("0x742d35cc6634c0532925a3b844bc454e4438f44e"),
            "methodDetails": .members(["chainId": .number("42431")]),
        ]))
        guard case .offer(let offer)? = MPPTempoRail().offers(in: context([c.headerValue])).first else {
            Issue.record("no offer"); return
        }
        let proof = PaymentProof(headerName: "Authorization", headerValue: Redacted(""), proofType: .txid,
                                 proofValue: "0xabc", amountNative: 1000, settlementLatencyMs: 0)
        func response(_ receipt: MPPReceipt?, status: Int = 200) -> TransportResponse {
            var f = HTTPFields()
            if let receipt { f[HTTPField.Name("Payment-Receipt")!] = receipt.headerValue }
            return TransportResponse(status: .init(code: status), headerFields: f, body: [])
        }
        let ok = try MPPTempoRail().settlement(for: offer, proof: proof, response: response(
            MPPReceipt(method: "tempo", timestamp: "2026-01-01T00:00:00Z", reference: "0xdef", challengeID: "c9", amount: "1000")))
        #expect(ok?.success == true && ok?.transactionHash == "0xdef" && ok?.amountPaid == 1000)
        let absent = try MPPTempoRail().settlement(for: offer, proof: proof, response: response(nil))
        #expect(absent?.transactionHash == "0xabc" && absent?.success == true)
        #expect(throws: MppReceiptVerificationError.self) {
            try MPPTempoRail().settlement(for: offer, proof: proof, response: response(
                MPPReceipt(method: "stripe", timestamp: "t", reference: "x", challengeID: "c9")))
        }
        #expect(throws: MppReceiptVerificationError.self) {
            try MPPTempoRail().settlement(for: offer, proof: proof, response: response(
                MPPReceipt(method: "tempo", timestamp: "t", reference: "x", challengeID: "c9", amount: "999")))
        }
        var garbage = HTTPFields()
        garbage[HTTPField.Name("Payment-Receipt")!] = "%%%"
        #expect(throws: MppReceiptVerificationError.self) {
            try MPPTempoRail().settlement(for: offer, proof: proof,
                                          response: TransportResponse(status: .ok, headerFields: garbage, body: []))
        }
    }

    @Test func aProblemDetailsAnswerIsATypedError() async throws {
        try await FakeTempoRPC.withRPC { rpc in
            let config = paywallConfig([.tempo]) { $0.failPaidRetryWithProblem = true }
            try await FakeMPPPaywall.withPaywall(configuration: config, tempo: rpc) { paywall in
                let error = await #expect(throws: MppChargeFailedError.self) {
                    try await RouteweilerClient.withClient(configuration: try client([try tempoSource(rpc.url)])) {
                        try await $0.get(paywall.url("/protected"))
                    }
                }
                #expect(error?.code == .problem)
                #expect(error?.problem?.code == "verification-failed")
                #expect(error?.problem?.status == 400)
                #expect(error?.mayHaveMovedFunds == true)
            }
        }
    }
}

/// MPP over Lightning through a real gRPC FakeLND, and L402 next to it.
@Suite(.serialized) struct MPPLightningTests {
    static func run<R: Sendable>(_ config: FakeMPPPaywall.Configuration,
                                 _ body: (FakeMPPPaywall, FakeLND, LightningFundingSource) async throws -> R) async throws -> R {
        let network = FakeLightningNetwork()
        return try await FakeLND.withFakeLND(network: network) { lnd in
            try await FakeMPPPaywall.withPaywall(network: network, configuration: config) { paywall in
                try await LNDClient.withClient(configuration: lnd.clientConfiguration) { lndClient in
                    let source = try await LightningFundingSource.create(lnd: lndClient, network: .bitcoinRegtest)
                    return try await body(paywall, lnd, source)
                }
            }
        }
    }

    @Test func paysTheLightningMethodWithThePreimage() async throws {
        try await Self.run(paywallConfig([.lightning])) { paywall, lnd, source in
            let sink = InMemoryTraceSink()
            let response = try await RouteweilerClient.withClient(configuration: try client([source.withMPP()], sink: sink)) {
                try await $0.get(paywall.url("/protected"))
            }
            #expect(response.status == .ok)
            let payment = try #require(response.payment)
            #expect(payment.rail == .mppLightning && payment.proofType == .preimage && payment.amountNative == 10)
            #expect(payment.settlement?.facilitator == "lightning" && payment.settlement?.amountPaid == 10)
            #expect(lnd.paymentCount == 1)
            #expect(paywall.stats.paidByMethod == ["lightning": 1])
            let credential = try MPPCredential(authorization: paywall.stats.authorizations[0])
            #expect(credential.payload["preimage"]?.stringValue == payment.proofValue)
            #expect(await sink.events.first?.selectedRail == .mppLightning)
        }
    }

    @Test func withoutWithMPPTheLightningMethodIsNotSupported() async throws {
        try await Self.run(paywallConfig([.lightning])) { paywall, lnd, source in
            await #expect(throws: RailNotSupportedError.self) {
                try await RouteweilerClient.withClient(configuration: try client([source])) {
                    try await $0.get(paywall.url("/protected"))
                }
            }
            #expect(lnd.paymentCount == 0)
        }
    }

    @Test func l402AndMPPLightningForDifferentInvoicesPayOne() async throws {
        try await Self.run(paywallConfig([.lightning]) { $0.offerL402 = true }) { paywall, lnd, source in
            let response = try await RouteweilerClient.withClient(configuration: try client([source.withMPP()])) {
                try await $0.get(paywall.url("/protected"))
            }
            #expect(response.status == .ok)
            #expect(lnd.paymentCount == 1)
            #expect(paywall.stats.paidTotal == 1)
            #expect(response.payment?.rail == .l402)  // registration order breaks the tie
            // With a policy preferring MPP, the other one is paid, still once.
            let policy = Policy(defaultRail: .mppLightning)
            let again = try await RouteweilerClient.withClient(configuration: try client([source.withMPP()], policy: policy)) {
                try await $0.get(paywall.url("/protected"))
            }
            #expect(again.payment?.rail == .mppLightning)
            #expect(lnd.paymentCount == 2)
            #expect(paywall.stats.paidTotal == 2)
        }
    }

    @Test func theInvoiceMustMatchTheRequest() {
        let c = MPPChallenge(id: "l1", realm: "r", method: "lightning", request: .members([
            "amount": .string("11"), "currency": .string("sat"),
            "methodDetails": .members(["invoice": .string("lnbcrt1notaninvoice")]),
        ]))
        guard case .rejected(let e)? = MPPLightningRail().offers(in: context([c.headerValue])).first else {
            Issue.record("expected a rejection"); return
        }
        #expect(e is ChallengeError)
    }
}

@Suite(.serialized) struct MPPMixedTests {
    /// One 402 offering every MPP method and L402: paid exactly once, on the rail the policy picks.
    @Test func aMixed402PaysOnceOnThePolicysRail() async throws {
        let network = FakeLightningNetwork()
        try await FakeLND.withFakeLND(network: network) { lnd in
            try await FakeStripe.withStripe { stripe in
                try await FakeTempoRPC.withRPC { rpc in
                    let config = paywallConfig([.tempo, .stripe, .lightning]) { $0.offerL402 = true }
                    try await FakeMPPPaywall.withPaywall(network: network, configuration: config, stripe: stripe,
                                                         tempo: rpc) { paywall in
                        try await LNDClient.withClient(configuration: lnd.clientConfiguration) { lndClient in
                            let lightning = try await LightningFundingSource.create(lnd: lndClient, network: .bitcoinRegtest)
                            let funding: [any FundingSource] = [
                                lightning.withMPP(), try tempoSource(rpc.url),
                                Funding.stripe(apiKey: stripe.apiKey, customer: nil, paymentMethod: "pm_card_visa",
                                               apiBaseURL: stripe.baseURL),
                            ]
                            for (preferred, method) in [(RailID.mppSPT, "stripe"), (.mppTempo, "tempo"),
                                                        (.mppLightning, "lightning"), (.l402, "l402")] {
                                let before = paywall.stats.paidTotal
                                let response = try await RouteweilerClient.withClient(
                                    configuration: try client(funding, policy: Policy(defaultRail: preferred))
                                ) { try await $0.get(paywall.url("/protected")) }
                                #expect(response.status == .ok)
                                #expect(response.payment?.rail == preferred)
                                #expect(paywall.stats.paidTotal == before + 1)
                                #expect(paywall.stats.paidByMethod[method] == 1)
                            }
                            #expect(lnd.paymentCount == 2)
                            #expect(stripe.stats.issued.count == 1)
                            #expect(rpc.stats.broadcast.count == 1)
                        }
                    }
                }
            }
        }
    }

    /// x402, L402 and two MPP methods in one 402: one payment, on the rail that funding (then policy) allows.
    @Test func x402L402AndMPPTogetherPayOnceByFunding() async throws {
        let tempoReq = Base64.encodeURL(Array(#"{"amount":"1000","currency":"0x20c0000000000000000000000000000000000000","recipient":"0x742d35cc6634c0532925a3b844bc454e4438f44e","methodDetails":{"chainId":42431}}"#.utf8))
        let sptReq = Base64.encodeURL(Array(#"{"amount":"100","currency":"usd","methodDetails":{"networkId":"p"}}"#.utf8))
        let x402 = Base64.encode(Array(#"{"x402Version":2,"accepts":[{"scheme":"exact","network":"eip155:8453","amount":"1000","asset":"0x833589fcd6edb6e08f4c7c32d4f71b54bda02913","payTo":"0x742d35cc6634c0532925a3b844bc454e4438f44e","maxTimeoutSeconds":60,"extra":{"name":"USD Coin","version":"2"}}]}"#.utf8))
        var fields = HTTPFields()
        fields.append(HTTPField(name: .wwwAuthenticate, value: #"L402 macaroon="AgEEbHNhdAJCAAA=", invoice="lnbcrt1x""#))
        fields.append(HTTPField(name: .wwwAuthenticate,
                                value: #"Payment id="t1", realm="r", method="tempo", intent="charge", request="\#(tempoReq)", Payment id="s1", realm="r", method="stripe", intent="charge", request="\#(sptReq)""#))
        fields.append(HTTPField(name: HTTPField.Name("PAYMENT-REQUIRED")!, value: x402))
        let wallet = try EVMSigner(hexKey: testKey)
        // The EVM wallet is on Base Sepolia, the x402 offer on Base: funding leaves Tempo.
        let transport = ScriptedTransport([
            .respond(TransportResponse(status: .init(code: 402), headerFields: fields, body: [])),
            .respond(ScriptedTransport.status(200, "ok")),
        ])
        let response = try await RouteweilerClient.withClient(
            configuration: try client([Funding.baseSepoliaUSDC(wallet: wallet), try tempoSource(nil)], transport: transport)
        ) { try await $0.get("http://127.0.0.1:9/p") }
        #expect(response.payment?.rail == .mppTempo)
        #expect(transport.requests.count == 2)
        let credential = try MPPCredential(authorization: try #require(transport.requests[1].headerFields[.authorization]))
        #expect(credential.challengeID == "t1")
        #expect(transport.requests[1].headerFields[HTTPField.Name("PAYMENT-SIGNATURE")!] == nil)

        // With a Base wallet both are payable; the default policy (x402) picks x402, still one payment.
        let transport2 = ScriptedTransport([
            .respond(TransportResponse(status: .init(code: 402), headerFields: fields, body: [])),
            .respond(ScriptedTransport.status(200, "ok")),
        ])
        let response2 = try await RouteweilerClient.withClient(
            configuration: try client([Funding.baseUSDC(wallet: wallet), try tempoSource(nil)], transport: transport2)
        ) { try await $0.get("http://127.0.0.1:9/p") }
        #expect(response2.payment?.rail == .x402)
        #expect(transport2.requests.count == 2)
        #expect(transport2.requests[1].headerFields[HTTPField.Name("PAYMENT-SIGNATURE")!] != nil)
        #expect(transport2.requests[1].headerFields[.authorization] == nil)
    }

    @Test func acceptPaymentPreferencesAreSentWhenConfigured() async throws {
        try await FakeTempoRPC.withRPC { rpc in
            try await FakeMPPPaywall.withPaywall(configuration: paywallConfig([.tempo]), tempo: rpc) { paywall in
                let prefs = AcceptPayment([.init(method: "tempo"), .init(method: "stripe", quality: 0.5)])
                #expect(prefs.headerValue == "tempo, stripe;q=0.5")
                let response = try await RouteweilerClient.withClient(configuration: try client([try tempoSource(rpc.url)])) {
                    try await $0.get(paywall.url("/protected"), headers: prefs.headerFields)
                }
                #expect(response.status == .ok)
                #expect(paywall.stats.acceptPaymentHeaders == ["tempo, stripe;q=0.5", "tempo, stripe;q=0.5"])
                // Without preferences, no header.
                _ = try await RouteweilerClient.withClient(configuration: try client([try tempoSource(rpc.url)])) {
                    try await $0.get(paywall.url("/protected"))
                }
                #expect(paywall.stats.acceptPaymentHeaders.count == 2)
            }
        }
    }
}

/// The MPP rails in the SQLite trace: one row per call, rail, proof type and receipt, no Stripe key.
@Suite(.serialized) struct MPPSQLiteTraceTests {
    @Test func eachMethodLandsInTheSQLiteTraceWithItsProofAndReceipt() async throws {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("rw-mpp-\(UUID().uuidString).db").path
        defer {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        }
        let sink = try SQLiteTraceSink(path: path)
        try await FakeStripe.withStripe { stripe in
            try await FakeTempoRPC.withRPC { rpc in
                let config = paywallConfig([.tempo, .stripe])
                try await FakeMPPPaywall.withPaywall(configuration: config, stripe: stripe, tempo: rpc) { paywall in
                    let funding: [any FundingSource] = [
                        try tempoSource(rpc.url),
                        Funding.stripe(apiKey: stripe.apiKey, customer: "cus_1", paymentMethod: "pm_card_visa",
                                       apiBaseURL: stripe.baseURL),
                    ]
                    for rail in [RailID.mppTempo, .mppSPT] {
                        _ = try await RouteweilerClient.withClient(
                            configuration: try client(funding, sink: sink, policy: Policy(defaultRail: rail))
                        ) { try await $0.get(paywall.url("/protected")) }
                    }
                }
            }
            #expect(try await sink.count() == 2)
            let events = try await sink.events()
            let byRail = Dictionary(uniqueKeysWithValues: events.compactMap { e in e.selectedRail.map { ($0, e) } })
            #expect(byRail[.mppTempo]?.payment?.proofType == .txid)
            #expect(byRail[.mppTempo]?.payment?.settlement?.facilitator == "tempo")
            #expect(byRail[.mppTempo]?.payment?.amountNativeCurrency == "0x20c0000000000000000000000000000000000000-tip20")
            #expect(byRail[.mppSPT]?.payment?.proofType == .sptID)
            #expect(byRail[.mppSPT]?.payment?.settlement?.transactionHash?.hasPrefix("pi_fake_") == true)
            #expect(byRail[.mppSPT]?.fundingSource == "stripe:usd:pm_card_visa")
            for file in [path, path + "-wal"] where FileManager.default.fileExists(atPath: file) {
                #expect(!(try String(contentsOfFile: file, encoding: .isoLatin1)).contains(stripe.apiKey))
            }
        }
    }
}

@Suite(.serialized) struct FakeMPPDemoTests {
    @Test func theDemoStackIsPaidOverTempoAndStripe() async throws {
        try await FakeMPPDemo.run(configuration: paywallConfig([.tempo, .stripe])) { demo in
            let tempo = Funding.tempoModeratoPathUSD(wallet: try EVMSigner(hexKey: FakeMPPDemo.tempoTestKey),
                                                     rpcURL: demo.tempo.url)
            let stripe = Funding.stripe(apiKey: demo.stripe.apiKey, customer: "cus_demo", paymentMethod: "pm_card_visa",
                                        apiBaseURL: demo.stripe.baseURL)
            for rail in [RailID.mppTempo, .mppSPT] {
                let r = try await RouteweilerClient.withClient(
                    configuration: try client([tempo, stripe], policy: Policy(defaultRail: rail))
                ) { try await $0.get(demo.paywall.url("/protected")) }
                #expect(r.payment?.rail == rail)
            }
            #expect(demo.paywall.stats.paidByMethod == ["tempo": 1, "stripe": 1])
        }
    }
}
