import Foundation
import HTTPTypes
import Testing
@testable import Routeweiler

/// A rail that never runs; the flow only carries candidates around.
struct InertRail: Rail {
    var id: RailID
    func offers(in context: ChallengeContext) -> [OfferResult] { [] }
    func check(_ offer: PaymentOffer, with funding: any FundingSource, now: Date) throws {}
    func pay(_ offer: PaymentOffer, with funding: any FundingSource, context: PaymentContext) async throws -> PaymentProof {
        fatalError("not used")
    }
}

struct InertFunding: FundingSource {
    var rails: [any Rail] { [InertRail(id: .l402)] }
    var label: String { "inert" }
}

func candidate(_ rail: RailID, amount: UInt64 = 10) -> PaymentCandidate {
    let challenge = NormalizedChallenge(
        rail: rail, resource: .init(method: "GET", url: "http://x/"),
        price: .init(amount: amount, currency: "btc-lightning", humanAmount: "\(amount) sats"),
        payee: .init(identifier: "p"), nonce: "n", expiresAt: Date(timeIntervalSinceNow: 60), raw: [:])
    return PaymentCandidate(offer: PaymentOffer(rail: rail, challenge: challenge, details: 0), rail: InertRail(id: rail),
                            funding: InertFunding())
}

let sampleProof = PaymentProof(headerName: "Authorization", headerValue: Redacted("L402 m:p"), proofType: .preimage,
                               proofValue: "p", amountNative: 10, settlementLatencyMs: 1)

struct MoneyMovedError: RouteweilerError {
    var errorName: String { "InvoicePaymentError" }
    var message: String { "unknown outcome" }
    var mayHaveMovedFunds: Bool { true }
}

@Suite struct PaymentFlowTests {
    @Test func nonPaymentResponseIsPassedThrough() {
        var flow = PaymentFlow(maxRetryAttempts: 3, retryBackoff: .milliseconds(1))
        guard case .sendOriginal = flow.start() else { Issue.record("expected sendOriginal"); return }
        guard case .complete(.passthrough(let r)) = flow.originalResponse(ScriptedResponses.ok) else {
            Issue.record("expected passthrough"); return
        }
        #expect(r.status.code == 200)
    }

    @Test func paysOnceAndRetriesWithTheProof() {
        var flow = PaymentFlow(maxRetryAttempts: 3, retryBackoff: .milliseconds(1))
        _ = flow.start()
        guard case .route = flow.originalResponse(ScriptedResponses.paymentRequired) else { Issue.record("route"); return }
        guard case .pay(let c) = flow.routed(.candidates([candidate(.l402)]), rejections: []) else {
            Issue.record("pay"); return
        }
        #expect(c.offer.rail == .l402)
        guard case .sendPaidRetry(_, let attempt) = flow.paymentSucceeded(sampleProof) else { Issue.record("retry"); return }
        #expect(attempt == 1)
        guard case .complete(.paid(let r, let proof, _)) = flow.retryResponse(ScriptedResponses.ok) else {
            Issue.record("paid"); return
        }
        #expect(r.status.code == 200)
        #expect(proof.proofValue == "p")
    }

    @Test func failsOverOnlyWhileNoMoneyMoved() {
        var flow = PaymentFlow(maxRetryAttempts: 3, retryBackoff: .milliseconds(1))
        _ = flow.start()
        _ = flow.originalResponse(ScriptedResponses.paymentRequired)
        _ = flow.routed(.candidates([candidate(.l402), candidate(.x402), candidate(.mppTempo)]), rejections: [])
        let definite = InvoicePaymentError(code: .paymentFailed, message: "no route", failureReason: "FAILURE_REASON_NO_ROUTE",
                                           mayHaveMovedFunds: false)
        guard case .pay(let second) = flow.paymentFailed(definite) else { Issue.record("expected failover"); return }
        #expect(second.offer.rail == .x402)
        #expect(flow.fallbackFrom == .l402)
        // The second rail's outcome is unknown: the third candidate must never be tried.
        guard case .complete(.failed(let error, _, let proof, _)) = flow.paymentFailed(MoneyMovedError()) else {
            Issue.record("expected completion"); return
        }
        #expect(error.mayHaveMovedFunds)
        #expect(proof == nil)
        #expect(flow.queue.count == 1)
    }

    @Test func networkFailuresOfThePaidRetryResendTheSameProofThenGiveUp() {
        var flow = PaymentFlow(maxRetryAttempts: 3, retryBackoff: .milliseconds(100))
        _ = flow.start()
        _ = flow.originalResponse(ScriptedResponses.paymentRequired)
        _ = flow.routed(.candidates([candidate(.l402)]), rejections: [])
        _ = flow.paymentSucceeded(sampleProof)
        guard case .backoff(let d1, let p1, let a1) = flow.retryFailed(TransportError("reset")) else {
            Issue.record("backoff 1"); return
        }
        #expect(d1 == .milliseconds(100))
        #expect(a1 == 2)
        #expect(p1.headerValue.value == "L402 m:p")
        guard case .backoff(let d2, _, let a2) = flow.retryFailed(TransportError("reset")) else {
            Issue.record("backoff 2"); return
        }
        #expect(d2 == .milliseconds(200))
        #expect(a2 == 3)
        guard case .complete(.failed(let error, _, let proof, _)) = flow.retryFailed(TransportError("reset")) else {
            Issue.record("gave up"); return
        }
        #expect(error.errorName == "PaidRetryFailedError")
        #expect(proof != nil)
    }

    @Test(arguments: [401, 402])
    func aRefusedProofEndsTheCallWithoutPayingAgain(status: Int) {
        var flow = PaymentFlow(maxRetryAttempts: 3, retryBackoff: .milliseconds(1))
        _ = flow.start()
        _ = flow.originalResponse(ScriptedResponses.paymentRequired)
        _ = flow.routed(.candidates([candidate(.l402), candidate(.x402)]), rejections: [])
        _ = flow.paymentSucceeded(sampleProof)
        guard case .complete(.failed(let error, _, let proof, let code)) = flow.retryResponse(
            TransportResponse(status: .init(code: status), headerFields: [:], body: []))
        else { Issue.record("expected failure"); return }
        #expect(error.errorName == "ProofRejectedError")
        #expect(proof != nil)
        #expect(code == status)
    }

    @Test func aSingleRejectionSurfacesItsOwnErrorAndSeveralBecomeNoFeasibleRail() {
        var flow = PaymentFlow(maxRetryAttempts: 1, retryBackoff: .milliseconds(1))
        _ = flow.start()
        _ = flow.originalResponse(ScriptedResponses.paymentRequired)
        _ = flow.routed(.candidates([candidate(.l402), candidate(.x402)]), rejections: [])
        let e1 = InvoicePaymentError(code: .paymentFailed, message: "a", mayHaveMovedFunds: false)
        _ = flow.paymentFailed(e1)
        guard case .complete(.failed(let error, _, _, _)) = flow.paymentFailed(e1) else { Issue.record("done"); return }
        let nf = try? #require(error as? NoFeasibleRailError)
        #expect(nf?.rejections.count == 2)

        var single = PaymentFlow(maxRetryAttempts: 1, retryBackoff: .milliseconds(1))
        _ = single.start()
        _ = single.originalResponse(ScriptedResponses.paymentRequired)
        _ = single.routed(.candidates([candidate(.l402)]), rejections: [])
        guard case .complete(.failed(let only, _, _, _)) = single.paymentFailed(e1) else { Issue.record("done"); return }
        #expect(only is InvoicePaymentError)
    }
}

enum ScriptedResponses {
    static let ok = TransportResponse(status: .ok, headerFields: [:], body: Array("ok".utf8))
    static let paymentRequired = TransportResponse(status: HTTPResponse.Status(code: 402), headerFields: [:], body: [])
}
