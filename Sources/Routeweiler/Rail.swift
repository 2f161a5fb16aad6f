import Foundation
public import Logging

/// The 402 response a rail inspects, with the request that produced it.
public struct ChallengeContext: Sendable {
    public var request: RouteweilerRequest
    public var response: TransportResponse
    public var now: Date
    public init(request: RouteweilerRequest, response: TransportResponse, now: Date) {
        self.request = request
        self.response = response
        self.now = now
    }
}

/// Per-payment context handed to ``Rail/pay(_:with:context:)``.
public struct PaymentContext: Sendable {
    public var requestID: String
    public var logger: Logger
    public var now: Date
    public init(requestID: String, logger: Logger, now: Date) {
        self.requestID = requestID
        self.logger = logger
        self.now = now
    }
}

/// A payment protocol over HTTP 402: it spots its challenges, checks them against a funding source, and pays.
///
/// A rail is a stateless codec; money comes from a ``FundingSource``. Rails report failures as
/// ``RouteweilerError``s whose `mayHaveMovedFunds` tells the router whether failing over is safe.
public protocol Rail: Sendable {
    /// The rail's id, as in traces.
    var id: RailID { get }

    /// Every offer of this rail in a 402 response: each parsed offer, or the typed error that makes it unusable.
    /// An empty array means the response carries no challenge of this rail.
    func offers(in context: ChallengeContext) -> [OfferResult]

    /// Checks, before any money moves, that `funding` can and may pay `offer`.
    /// - Throws: a ``RouteweilerError`` saying why not (wrong network, expired, amount over a limit, …).
    func check(_ offer: PaymentOffer, with funding: any FundingSource, now: Date) throws

    /// Pays `offer` from `funding` and returns the proof for the retry.
    /// - Throws: a ``RouteweilerError``. If its `mayHaveMovedFunds` is `false`, nothing was paid; otherwise the
    ///   payment may have happened and must not be attempted again on any rail.
    func pay(_ offer: PaymentOffer, with funding: any FundingSource, context: PaymentContext) async throws
        -> PaymentProof

    /// Facts about an offer the client records before paying (crash recovery) and uses for credential reuse.
    func plan(for offer: PaymentOffer, request: RouteweilerRequest) -> PaymentPlan

    /// Settles the outcome of a payment whose process died before recording it (asks the wallet).
    func resolvePending(_ intent: PaymentIntent, with funding: any FundingSource) async throws -> PendingResolution

    /// Reads the server's settlement receipt from the answer to the paid retry (x402 `PAYMENT-RESPONSE`,
    /// MPP `Payment-Receipt`). `nil` when the rail has none or the server sent none.
    /// - Throws: a ``RouteweilerError`` when a receipt is present but contradicts the payment (another
    ///   challenge, another method); the money has moved, so the call fails without paying again.
    func settlement(for offer: PaymentOffer, proof: PaymentProof, response: TransportResponse) throws
        -> SettlementReceipt?

    /// The rail to register when two funding sources bring a rail with the same id (e.g. x402 rails that each
    /// know another token). The default keeps `self`.
    func merged(with other: any Rail) -> any Rail
}

extension Rail {
    public func plan(for offer: PaymentOffer, request: RouteweilerRequest) -> PaymentPlan { PaymentPlan() }
    public func resolvePending(_ intent: PaymentIntent, with funding: any FundingSource) async throws
        -> PendingResolution
    { .unknown }
    public func settlement(for offer: PaymentOffer, proof: PaymentProof, response: TransportResponse) throws
        -> SettlementReceipt?
    { nil }
    public func merged(with other: any Rail) -> any Rail { self }
}

/// What a server's settlement receipt says about a payment, as recorded in the trace.
public struct SettlementReceipt: Sendable, Codable, Hashable {
    /// Whether the server says the payment settled.
    public var success: Bool
    /// The on-chain transaction hash or the processor's reference.
    public var transactionHash: String?
    /// The network it settled on, as the server spells it (`eip155:8453`, `base`, `tempo`).
    public var network: String?
    /// The paying address, when the server names it.
    public var payer: String?
    /// The amount the server says it received, in the rail's base unit.
    public var amountPaid: UInt64?
    /// Who settled it (an x402 facilitator, `tempo`, `stripe`).
    public var facilitator: String?

    public init(success: Bool, transactionHash: String? = nil, network: String? = nil, payer: String? = nil,
                amountPaid: UInt64? = nil, facilitator: String? = nil) {
        self.success = success
        self.transactionHash = transactionHash
        self.network = network
        self.payer = payer
        self.amountPaid = amountPaid
        self.facilitator = facilitator
    }

    enum CodingKeys: String, CodingKey { case success, transactionHash, network, payer, amountPaid, facilitator }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(success, forKey: .success)
        try c.encode(transactionHash, forKey: .transactionHash)
        try c.encode(network, forKey: .network)
        try c.encode(payer, forKey: .payer)
        try c.encode(amountPaid, forKey: .amountPaid)
        try c.encode(facilitator, forKey: .facilitator)
    }
}

/// What a rail tells the client about an offer before paying it.
public struct PaymentPlan: Sendable {
    /// Lightning: the payment hash (hex), the key to track the payment after a crash.
    public var paymentHash: String?
    public var invoice: String?
    /// A reusable credential without its proof (`L402 <macaroon>`); the proof is appended as `:<proof>`.
    public var credentialPrefix: Redacted<String>?
    /// The header that carries the credential.
    public var credentialHeaderName: String?
    /// Where the credential applies on its origin (`services:<caveat>` or `path:<prefix>`); `nil`: not reusable.
    public var credentialScope: String?
    public var credentialExpiresAt: Date?
    public init(paymentHash: String? = nil, invoice: String? = nil, credentialPrefix: Redacted<String>? = nil,
                credentialHeaderName: String? = nil, credentialScope: String? = nil, credentialExpiresAt: Date? = nil) {
        self.paymentHash = paymentHash
        self.invoice = invoice
        self.credentialPrefix = credentialPrefix
        self.credentialHeaderName = credentialHeaderName
        self.credentialScope = credentialScope
        self.credentialExpiresAt = credentialExpiresAt
    }
}

/// What the wallet says about a payment left pending by a crash.
public enum PendingResolution: Sendable {
    /// It was paid; here is the proof (e.g. the preimage hex).
    case succeeded(proof: String)
    /// It definitely failed (or was never sent): release the reservation.
    case failed(reason: String)
    /// Still unknown (in flight): keep the reservation.
    case unknown
}

/// One challenge found by a rail: a payable offer, or the typed error that makes it unusable.
public enum OfferResult: Sendable {
    case offer(PaymentOffer)
    case rejected(any RouteweilerError)
}

/// A wallet that can fund one or more rails (a Lightning node, an EVM key, a Stripe customer).
public protocol FundingSource: Sendable {
    /// The rails this source can pay on; the client registers each rail once.
    var rails: [any Rail] { get }
    /// A short public label for traces, e.g. `lightning:bitcoin-regtest`.
    var label: String { get }
}

/// Namespace for funding-source factories; each rail module adds its own (`Funding.lightningLND(…)`).
public enum Funding {}
