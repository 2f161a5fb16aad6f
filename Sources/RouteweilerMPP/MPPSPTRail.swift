import Foundation
public import Routeweiler
import RouteweilerWire

/// An MPP Stripe charge as parsed by ``MPPSPTRail``.
public struct MPPSPTOffer: Sendable {
    public var charge: MPPCharge
    /// ISO 4217, lower-case.
    public var currency: String
    /// `seller_details[…]` for the token: `network_business_profile` from `methodDetails.networkId`, or
    /// `methodDetails.sellerDetails`, or `external_id` = the recipient.
    public var sellerDetails: [(String, String)]
    /// `methodDetails.paymentMethodHint` or the `payment_method_hint` auth-param.
    public var paymentMethodHint: String?
    /// `request.externalId`, echoed in the credential.
    public var externalID: String?
}

/// MPP `method="stripe"` (or `"card"`): mints a Stripe shared payment token bound to the charge's amount, currency
/// and expiry and retries with `Authorization: Payment <credential>` whose payload is `{"spt":"spt_…"}`.
public struct MPPSPTRail: Rail {
    public init() {}
    public var id: RailID { .mppSPT }
    static let methods: Set<String> = ["stripe", "card"]
    /// Stripe's minimum charge (50 minor units) applies to these currencies (SPEC §6.6).
    static let minimumFifty: Set<String> = ["usd", "eur", "gbp", "cad", "aud", "nzd", "chf", "sek", "dkk", "nok"]

    public func offers(in context: ChallengeContext) -> [OfferResult] {
        MPP.offers(in: context, methods: Self.methods, rail: .mppSPT) { charge in offer(charge, context: context) }
    }

    func offer(_ charge: MPPCharge, context: ChallengeContext) -> OfferResult {
        func reject(_ message: String) -> OfferResult { .rejected(ChallengeError(message, rail: .mppSPT)) }
        let iso = charge.currency.lowercased()
        guard (2...4).contains(iso.count), iso.allSatisfy({ ($0.isASCII && $0.isLetter) || $0 == "-" }) else {
            return reject("'request' field 'currency' is not an ISO-4217 code")
        }
        if Self.minimumFifty.contains(iso), charge.amount < 50 {
            return reject("the amount \(charge.amount) is below Stripe's minimum of 50 \(iso) minor units")
        }
        let details = charge.methodDetails
        var seller: [(String, String)] = []
        if let network = details?["networkId"]?.stringValue, !network.isEmpty {
            seller.append(("network_business_profile", network))
        } else if let members = details?["sellerDetails"]?.objectMembers {
            for m in members { if let v = m.value.stringValue { seller.append((m.key, v)) } }
        }
        if seller.isEmpty, let recipient = charge.recipient, !recipient.isEmpty {
            seller.append(("external_id", recipient))
        }
        guard !seller.isEmpty else {
            return reject("'request' names no seller (methodDetails.networkId, sellerDetails or recipient)")
        }
        let hint = details?["paymentMethodHint"]?.stringValue
        var raw = MPP.baseRaw(charge, kind: .mppSPT)
        raw["isoCurrency"] = iso
        if let hint { raw["paymentMethodHint"] = hint }
        var metadata = ["iso_currency": iso]
        for (k, v) in seller { metadata["seller_details." + k] = v }
        let challenge = NormalizedChallenge(
            rail: .mppSPT, resource: MPP.resource(context),
            price: .init(amount: charge.amount, currency: iso + "-fiat", humanAmount: Self.human(charge.amount, iso)),
            payee: .init(identifier: charge.recipient ?? seller[0].1, metadata: metadata),
            nonce: charge.challenge.id, expiresAt: charge.expiresAt, raw: raw)
        return .offer(PaymentOffer(rail: .mppSPT, challenge: challenge, details: MPPSPTOffer(
            charge: charge, currency: iso, sellerDetails: seller, paymentMethodHint: hint,
            externalID: charge.challenge.requestJSON["externalId"]?.stringValue)))
    }

    /// `$1.50`, `€0.50`, `£2.00`, `¥500`, or `CHF 1.00`.
    static func human(_ amount: UInt64, _ iso: String) -> String {
        if iso == "jpy" { return "¥\(amount)" }
        let cents = amount % 100
        let major = "\(amount / 100).\(cents < 10 ? "0" : "")\(cents)"
        switch iso {
        case "usd": return "$" + major
        case "eur": return "€" + major
        case "gbp": return "£" + major
        default: return iso.uppercased() + " " + major
        }
    }

    public func check(_ offer: PaymentOffer, with funding: any FundingSource, now: Date) throws {
        guard let source = funding as? StripeFundingSource else {
            throw NoFundingForRailError(code: .noSource, message: "not a Stripe funding source", rail: .mppSPT)
        }
        guard let details = offer.details as? MPPSPTOffer else { throw ChallengeError("not an MPP Stripe offer", rail: .mppSPT) }
        guard details.currency == source.currency else {
            throw NoFundingForRailError(
                code: .assetMismatch,
                message: "the charge is in \(details.currency.uppercased()) but the Stripe source pays in \(source.currency.uppercased())",
                rail: .mppSPT)
        }
        if now >= details.charge.expiresAt { throw ChallengeExpiredError("the MPP challenge expired", rail: .mppSPT) }
        if let limit = source.maxAmount, details.charge.amount > limit {
            throw InvalidChallengeError(
                code: .amountTooHigh,
                message: "the charge asks \(Self.human(details.charge.amount, details.currency)), above the limit of \(Self.human(limit, details.currency))",
                rail: .mppSPT)
        }
    }

    /// Mints the token and returns the credential. A token only lets the seller charge up to the challenge's
    /// amount until its expiry; errors thrown here (``SptCreationError``) mean no token exists and nothing was paid.
    public func pay(_ offer: PaymentOffer, with funding: any FundingSource, context: PaymentContext) async throws
        -> PaymentProof
    {
        try check(offer, with: funding, now: context.now)
        let source = funding as! StripeFundingSource
        let details = offer.details as! MPPSPTOffer
        let clock = ContinuousClock()
        let started = clock.now
        let spt = try await source.createSharedPaymentToken(
            maxAmount: details.charge.amount, currency: details.currency,
            expiresAt: MPP.unixSeconds(details.charge.expiresAt), sellerDetails: details.sellerDetails)
        var payload: [(key: String, value: JSONValue)] = [("spt", .string(spt))]
        if let external = details.externalID { payload.append(("externalId", .string(external))) }
        return MPP.proof(details.charge, payload: .object(payload),
                         source: source.customer.map { "stripe:customer:\($0)" }, proofType: .sptID,
                         proofValue: spt, amount: details.charge.amount, latencyMs: MPP.ms(clock.now - started))
    }

    public func settlement(for offer: PaymentOffer, proof: PaymentProof, response: TransportResponse) throws
        -> SettlementReceipt?
    {
        guard let details = offer.details as? MPPSPTOffer else { return nil }
        return try MPP.settlement(charge: details.charge, proof: proof, response: response, rail: .mppSPT,
                                  methods: Self.methods, network: "stripe", facilitator: "stripe")
    }
}
