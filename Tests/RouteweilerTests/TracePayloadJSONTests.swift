import Foundation
import Routeweiler
import Testing

/// The hand-written trace payload must be byte for byte what JSONEncoder writes (the format on disk and in every
/// sink), for every shape of event.
@Suite struct TracePayloadJSONTests {
    static func challenge(url: String = "http://127.0.0.1:8080/p?q=1") -> NormalizedChallenge {
        NormalizedChallenge(
            rail: .l402, resource: .init(method: "GET", url: url),
            price: .init(amount: 21, currency: "btc-lightning", humanAmount: "21 sats"),
            payee: .init(identifier: "02ab", metadata: ["alias": "node é"]), nonce: "hash",
            expiresAt: Date(timeIntervalSince1970: 1_900_000_000.5), raw: ["kind": "l402"])
    }

    static func events() -> [TraceEvent] {
        let base = TraceEvent(
            requestId: UUIDv7.make(), agentId: nil, envelopeId: nil, policyHash: RouteweilerClient.defaultPolicyHash,
            method: "GET", url: "http://127.0.0.1:8080/free", challenge: nil, selectedRail: nil, fallbackFrom: nil,
            facilitator: nil, fundingSource: nil, payment: nil,
            outcome: .init(httpStatus: 200, serviceDelivered: true, serviceLatencyMs: 3),
            timestampStart: Date(timeIntervalSince1970: 1_780_000_000.000120), timestampEnd: Date(timeIntervalSince1970: 1_780_000_001))
        var paid = base
        paid.agentId = "agent-7"
        paid.envelopeId = "env/1"
        paid.challenge = challenge()
        paid.selectedRail = .l402
        paid.fallbackFrom = .x402
        paid.facilitator = "lightning"
        paid.fundingSource = "lightning:bitcoin-regtest"
        paid.payment = .init(proofType: .preimage, proofValue: "ab" + String(repeating: "c", count: 62), amountNative: 21,
                             amountNativeCurrency: "btc-lightning", amountEnvelope: 0.0126, amountEnvelopeCurrency: "USD",
                             fmvQuality: .coingeckoSimple, settlementLatencyMs: 12,
                             settlement: SettlementReceipt(success: true, transactionHash: "0xabc", network: "eip155:8453",
                                                           payer: "0x12", amountPaid: 10, facilitator: "x402.org"))
        paid.policy = .init(verdict: "allow", ruleName: "local")
        paid.reservation = .init(envelopeId: "env/1", drawId: "d-1", currency: "USD", reservedMinorUnits: 2,
                                 settledMinorUnits: 1, state: "settled")
        var failed = paid
        failed.payment = nil
        failed.outcome = .init(httpStatus: nil, serviceDelivered: false, serviceLatencyMs: 0,
                               error: .init(code: "PolicyDeniedError", message: "denied \"by\" rule\nline\ttab \\ é ☃ \u{7F} \u{2028} /x"))
        failed.policy = .init(verdict: "deny", ruleName: nil)
        failed.reservation = .init(envelopeId: "e", drawId: nil, currency: "EUR", reservedMinorUnits: nil,
                                   settledMinorUnits: nil, state: "none")
        var held = base
        held.credentialId = "cred-1"
        held.credentialState = "manual_hold"
        held.url = nil
        held.method = nil
        var onlyState = base
        onlyState.credentialState = "manual_hold"
        var controls = base
        controls.agentId = "a\u{01}b\u{1F}c"
        controls.url = "http://h/p?x=\"y\"&z=/w"
        controls.outcome = .init(httpStatus: -1, serviceDelivered: false, serviceLatencyMs: Int(Int32.max))
        controls.reconciliation = .init(taxCategory: "data_api", vatApplicable: true, invoiceReference: "INV/1")
        // The challenge and payment written by hand: integral and absent envelope amounts, no settlement receipt,
        // mixed-case and digit keys in the string maps, escapes in challenge fields.
        var plain = paid
        plain.challenge?.raw = ["payTo": "0xAB", "payee": "x", "maxAmountRequired": "10", "a10": "1", "a9": "2",
                                "Network": "base", "extra.name": "USD Coin", "q": "say \"hi\"\n"]
        plain.challenge?.payee.metadata = [:]
        plain.challenge?.resource = .init(method: "POST", url: "http://h/a b?é=1", urlEncoding: "drop", originalStatus: 401)
        plain.payment = .init(proofType: .preimage, proofValue: nil, amountNative: UInt64.max,
                              amountNativeCurrency: "btc-lightning", amountEnvelope: 3, amountEnvelopeCurrency: "JPY",
                              fmvQuality: .staticTable, settlementLatencyMs: 0)
        var noEnvelopeAmount = plain
        noEnvelopeAmount.payment?.amountEnvelope = nil
        noEnvelopeAmount.payment?.amountEnvelopeCurrency = nil
        var partialReceipt = plain
        partialReceipt.payment?.settlement = SettlementReceipt(success: false, transactionHash: nil, network: "base",
                                                               payer: nil, amountPaid: nil, facilitator: "f \"q\"")
        var bigAmount = plain
        bigAmount.payment?.amountEnvelope = 1e17
        var negativeAmount = plain
        negativeAmount.payment?.amountEnvelope = -2.5
        return [base, paid, failed, held, onlyState, controls, plain, noEnvelopeAmount, partialReceipt, bigAmount,
                negativeAmount]
    }

    @Test func handWrittenPayloadEqualsJSONEncoder() throws {
        for event in Self.events() {
            let fast = try event.payloadJSON()
            let reference = try event.payloadJSONViaEncoder()
            #expect(fast == reference)
            // And it reads back as the same event.
            let back = try JSONDecoder().decode(TraceEvent.self, from: Data(fast.utf8))
            #expect(try back.payloadJSON() == fast)
        }
    }
    /// Strings are escaped by hand too: every ASCII character, alone and inside text, and random mixes with
    /// non-ASCII, give JSONEncoder's bytes.
    @Test func everyCharacterIsEscapedAsJSONEncoderDoes() throws {
        var texts = (0...0x7F).map { String(UnicodeScalar(UInt8($0))) }
        texts += (0...0x7F).map { "a\(String(UnicodeScalar(UInt8($0))))b" }
        texts += ["", "L402 macaroon=\"AgE=\", invoice=\"lnbc1\"", "é\u{2028}😀\\\"\n", "\u{7F}\u{80}\u{FFFF}"]
        var rng = SystemRandomNumberGenerator()
        let pool: [Character] = ["a", "\"", "\\", "\n", "\u{1}", "\u{1F}", "é", "😀", "/", " ", "\t", "\u{2028}"]
        for _ in 0..<500 {
            texts.append(String((0..<Int.random(in: 0...16, using: &rng)).map { _ in pool.randomElement(using: &rng)! }))
        }
        for text in texts {
            var event = Self.events()[1]
            event.agentId = text
            event.challenge?.raw = ["www-authenticate": text, text: "x"]
            #expect(try event.payloadJSON() == event.payloadJSONViaEncoder(), "\(Array(text.utf8))")
        }
    }
}

