import Crypto
import Foundation
public import Routeweiler
public import RouteweilerL402
public import RouteweilerWire

/// An MPP Lightning charge as parsed by ``MPPLightningRail``.
public struct MPPLightningOffer: Sendable {
    public var charge: MPPCharge
    /// `methodDetails.invoice`, decoded (signature and checksum verified).
    public var invoice: Bolt11Invoice
}

/// MPP `method="lightning"` charges (Lightning Labs' Aperture): pays the BOLT-11 invoice in
/// `request.methodDetails.invoice` from the Lightning funding source and retries with
/// `Authorization: Payment <credential>` whose payload is `{"preimage":"<hex>"}`.
///
/// The same checks as L402 before any money moves: the invoice's signature and checksum, its network against the
/// source, its expiry, that it carries an amount equal to `request.amount` (sats), that its payment hash is
/// `methodDetails.paymentHash` when given, the source's amount limit; after paying, the preimage must hash to the
/// payment hash.
///
/// A ``LightningFundingSource`` pays these charges once it lists this rail: use ``LightningFundingSource/withMPP()``.
public struct MPPLightningRail: Rail {
    public init() {}
    public var id: RailID { .mppLightning }
    static let methods: Set<String> = ["lightning"]

    public func offers(in context: ChallengeContext) -> [OfferResult] {
        MPP.offers(in: context, methods: Self.methods, rail: .mppLightning) { charge in offer(charge, context: context) }
    }

    func offer(_ charge: MPPCharge, context: ChallengeContext) -> OfferResult {
        guard let text = charge.methodDetails?["invoice"]?.stringValue, !text.isEmpty else {
            return .rejected(ChallengeError("'request' missing 'methodDetails.invoice'", rail: .mppLightning))
        }
        let invoice: Bolt11Invoice
        do {
            invoice = try Bolt11Invoice(parsing: text)
        } catch {
            return .rejected(ChallengeError("Invalid BOLT-11 invoice: \(error)", rail: .mppLightning))
        }
        guard let msat = invoice.amountMsat, msat > 0 else {
            return .rejected(InvalidChallengeError(code: .amountlessInvoice,
                                                   message: "the invoice carries no amount; amountless invoices are refused",
                                                   rail: .mppLightning))
        }
        let unit = charge.currency.lowercased()
        var requestMsat: UInt64?
        if unit == "sat" || unit == "sats" {
            let (v, overflow) = charge.amount.multipliedReportingOverflow(by: 1000)
            requestMsat = overflow ? nil : v
        } else if unit == "msat" {
            requestMsat = charge.amount
        }
        guard let requestMsat, requestMsat == msat else {
            return .rejected(InvalidChallengeError(
                code: .invoiceMismatch,
                message: "the invoice is for \(msat) msat but the request asks \(charge.amount) \(charge.currency)",
                rail: .mppLightning))
        }
        if let hash = charge.methodDetails?["paymentHash"]?.stringValue, hash.lowercased() != invoice.paymentHash.hexString {
            return .rejected(InvalidChallengeError(
                code: .paymentHashMismatch,
                message: "the invoice's payment hash is not methodDetails.paymentHash \(hash)", rail: .mppLightning))
        }
        let now = UInt64(max(0, context.now.timeIntervalSince1970))
        if invoice.isExpired(now: now) {
            return .rejected(ChallengeExpiredError("the invoice expired at \(invoice.expiresAt) (unix)", rail: .mppLightning))
        }
        let expiresAt = min(charge.expiresAt, Date(timeIntervalSince1970: TimeInterval(invoice.expiresAt)))
        let sats = msat / 1000
        var raw = MPP.baseRaw(charge, kind: .mppLightning)
        raw["invoice"] = invoice.paymentRequest
        raw["network"] = invoice.network.rawValue
        var metadata: [String: String] = [:]
        if let d = invoice.description { metadata["description"] = d }
        let challenge = NormalizedChallenge(
            rail: .mppLightning, resource: MPP.resource(context),
            price: .init(amount: sats, currency: "btc-lightning", humanAmount: Self.humanSats(sats)),
            payee: .init(identifier: invoice.payeePublicKey.hexString, metadata: metadata),
            nonce: invoice.paymentHash.hexString, expiresAt: expiresAt, raw: raw)
        var c = charge
        c.expiresAt = expiresAt
        return .offer(PaymentOffer(rail: .mppLightning, challenge: challenge,
                                   details: MPPLightningOffer(charge: c, invoice: invoice)))
    }

    static func humanSats(_ sats: UInt64) -> String {
        var digits = Array(String(sats))
        var out: [Character] = []
        while digits.count > 3 {
            out.insert(contentsOf: [","] + digits.suffix(3), at: 0)
            digits.removeLast(3)
        }
        out.insert(contentsOf: digits, at: 0)
        return String(out) + " sats"
    }

    public func check(_ offer: PaymentOffer, with funding: any FundingSource, now: Date) throws {
        guard let source = funding as? LightningFundingSource else {
            throw NoFundingForRailError(code: .noSource, message: "not a Lightning funding source", rail: .mppLightning)
        }
        guard let details = offer.details as? MPPLightningOffer else {
            throw ChallengeError("not an MPP Lightning offer", rail: .mppLightning)
        }
        let invoice = details.invoice
        guard invoice.network == source.network else {
            throw NoFundingForRailError(
                code: .networkMismatch,
                message: "the invoice is for \(invoice.network) but the Lightning funding source is on \(source.network)",
                rail: .mppLightning)
        }
        if invoice.isExpired(now: UInt64(max(0, now.timeIntervalSince1970))) || now >= details.charge.expiresAt {
            throw ChallengeExpiredError("the MPP Lightning charge expired", rail: .mppLightning)
        }
        if let limit = source.maxAmountMsat, let amount = invoice.amountMsat, amount > limit {
            throw InvalidChallengeError(
                code: .amountTooHigh,
                message: "the invoice asks \(amount) msat, above the limit of \(limit) msat", rail: .mppLightning)
        }
    }

    /// Pays the invoice. ``InvoicePaymentError`` says whether money may have moved; ``PreimageMismatchError`` means
    /// it did.
    public func pay(_ offer: PaymentOffer, with funding: any FundingSource, context: PaymentContext) async throws
        -> PaymentProof
    {
        try check(offer, with: funding, now: context.now)
        let source = funding as! LightningFundingSource
        let details = offer.details as! MPPLightningOffer
        let clock = ContinuousClock()
        let started = clock.now
        let payment = try await source.node.pay(invoice: details.invoice, maxFeeMsat: source.maxFeeMsat,
                                                timeout: source.paymentTimeout)
        guard Array(SHA256.hash(data: payment.preimage)) == details.invoice.paymentHash else {
            throw PreimageMismatchError(paymentHash: details.invoice.paymentHash.hexString)
        }
        let preimage = payment.preimage.hexString
        return MPP.proof(details.charge, payload: .members(["preimage": .string(preimage)]), source: nil,
                         proofType: .preimage, proofValue: preimage, amount: offer.challenge.price.amount,
                         fee: payment.feeMsat, latencyMs: MPP.ms(clock.now - started))
    }

    public func plan(for offer: PaymentOffer, request: RouteweilerRequest) -> PaymentPlan {
        guard let details = offer.details as? MPPLightningOffer else { return PaymentPlan() }
        return PaymentPlan(paymentHash: details.invoice.paymentHash.hexString,
                           invoice: details.invoice.paymentRequest)
    }

    /// Asks the node what became of a payment left pending by a crash (as L402 does).
    public func resolvePending(_ intent: PaymentIntent, with funding: any FundingSource) async throws
        -> PendingResolution
    {
        try await L402Rail().resolvePending(intent, with: funding)
    }

    public func settlement(for offer: PaymentOffer, proof: PaymentProof, response: TransportResponse) throws
        -> SettlementReceipt?
    {
        guard let details = offer.details as? MPPLightningOffer else { return nil }
        return try MPP.settlement(charge: details.charge, proof: proof, response: response, rail: .mppLightning,
                                  methods: Self.methods, network: details.invoice.network.rawValue,
                                  facilitator: "lightning")
    }
}

extension LightningFundingSource {
    /// This source, also paying MPP `method="lightning"` charges (``MPPLightningRail``) from the same node.
    public func withMPP() -> LightningFundingSource {
        var copy = self
        if !copy.additionalRails.contains(where: { $0.id == .mppLightning }) {
            copy.additionalRails.append(MPPLightningRail())
        }
        return copy
    }
}
