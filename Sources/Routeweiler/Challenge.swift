import Foundation
import Synchronization

/// A rail's offer normalised into one shape (SPEC §3.1), as it appears in traces.
public struct NormalizedChallenge: Sendable, Codable, Hashable {
    public struct Resource: Sendable, Codable, Hashable {
        public var method: String
        public var url: String
        public var urlEncoding: String
        public var originalStatus: Int
        public init(method: String, url: String, urlEncoding: String = "raw", originalStatus: Int = 402) {
            self.method = method
            self.url = url
            self.urlEncoding = urlEncoding
            self.originalStatus = originalStatus
        }
    }
    public struct Price: Sendable, Codable, Hashable {
        /// The amount in the rail's base unit (sats for L402, token units for x402).
        public var amount: UInt64
        /// `btc-lightning`, `<caip2>/erc20:<address>`, `<address>-tip20` or `<iso>-fiat`.
        public var currency: String
        public var humanAmount: String
        public init(amount: UInt64, currency: String, humanAmount: String) {
            self.amount = amount
            self.currency = currency
            self.humanAmount = humanAmount
        }
    }
    public struct Payee: Sendable, Codable, Hashable {
        public var identifier: String
        public var metadata: [String: String]
        public init(identifier: String, metadata: [String: String] = [:]) {
            self.identifier = identifier
            self.metadata = metadata
        }
    }

    public var rail: RailID
    public var resource: Resource
    public var price: Price
    public var payee: Payee
    public var scheme: String
    public var nonce: String
    public var expiresAt: Date
    /// Rail-specific public facts (never a bearer secret: an L402 macaroon appears only as a fingerprint).
    public var raw: [String: String]

    public init(rail: RailID, resource: Resource, price: Price, payee: Payee, scheme: String = "exact",
                nonce: String, expiresAt: Date, raw: [String: String]) {
        self.rail = rail
        self.resource = resource
        self.price = price
        self.payee = payee
        self.scheme = scheme
        self.nonce = nonce
        self.expiresAt = expiresAt
        self.raw = raw
    }

    enum CodingKeys: String, CodingKey { case rail, resource, price, payee, scheme, nonce, expiresAt, raw }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(rail, forKey: .rail)
        try c.encode(resource, forKey: .resource)
        try c.encode(price, forKey: .price)
        try c.encode(payee, forKey: .payee)
        try c.encode(scheme, forKey: .scheme)
        try c.encode(nonce, forKey: .nonce)
        try c.encode(Timestamp.rfc3339Z(expiresAt), forKey: .expiresAt)
        try c.encode(raw, forKey: .raw)
    }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        rail = try c.decode(RailID.self, forKey: .rail)
        resource = try c.decode(Resource.self, forKey: .resource)
        price = try c.decode(Price.self, forKey: .price)
        payee = try c.decode(Payee.self, forKey: .payee)
        scheme = try c.decode(String.self, forKey: .scheme)
        nonce = try c.decode(String.self, forKey: .nonce)
        let s = try c.decode(String.self, forKey: .expiresAt)
        guard let d = Timestamp.parse(s) else {
            throw DecodingError.dataCorruptedError(forKey: .expiresAt, in: c, debugDescription: "bad date \(s)")
        }
        expiresAt = d
        raw = try c.decode([String: String].self, forKey: .raw)
    }
}

/// One payable offer found in a 402 response: the normalised challenge plus the rail's own parsed form.
public struct PaymentOffer: Sendable {
    public var rail: RailID
    public var challenge: NormalizedChallenge
    /// The rail's parsed challenge (e.g. the L402 token and its decoded invoice); opaque to the router.
    public var details: any Sendable
    /// A check that must pass before this offer is paid, which the rail leaves for later because it is dear (the
    /// BOLT-11 signature); see ``DeferredOfferCheck``.
    public var deferredCheck: DeferredOfferCheck?
    public init(rail: RailID, challenge: NormalizedChallenge, details: any Sendable,
                deferredCheck: DeferredOfferCheck? = nil) {
        self.rail = rail
        self.challenge = challenge
        self.details = details
        self.deferredCheck = deferredCheck
    }

    /// ``challenge`` with what the deferred check learned filled in (the payee's key, once the signature that names
    /// it has been verified).
    public var checkedChallenge: NormalizedChallenge {
        guard let payee = deferredCheck?.payeeIdentifier else { return challenge }
        var c = challenge
        c.payee.identifier = payee
        return c
    }
}

/// A pre-payment check that a rail hands over with an offer instead of running it while parsing: verifying an
/// invoice's signature (and recovering the payee's key from it) is the dearest step of routing an L402 challenge.
///
/// The check runs once; its outcome is kept. It must pass before any money moves: the rail runs it again (for free)
/// before paying. A rail may ``start()`` it on another thread as soon as it has what the check needs (the L402 rail
/// does, once the invoice is decoded), and the router starts it otherwise. With a budget envelope, the client waits
/// for its outcome just before reserving, so it overlaps the rest of routing and a bad offer still changes nothing
/// (no reservation, no intent). Otherwise the router waits for it at once, and a failure rejects the offer as if the
/// rail had found it while parsing.
public final class DeferredOfferCheck: Sendable {
    private let body: @Sendable () throws -> String?
    private let outcome = Mutex<Result<String?, any Error>?>(nil)
    private let started = Atomic<Bool>(false)

    /// - Parameter body: throws a ``RouteweilerError`` when the offer must not be paid; returns the payee
    ///   identifier it established, if any.
    public init(_ body: @escaping @Sendable () throws -> String?) {
        self.body = body
    }

    /// Starts the check on another thread, so that it is done (or under way) by the time ``run()`` needs it.
    ///
    /// The background run takes the check only if nobody else is running it; a ``run()`` that comes first runs it
    /// itself, and one that comes while the background run is under way waits for its outcome.
    /// Starting it again does nothing.
    public func start() {
        guard !started.exchange(true, ordering: .relaxed) else { return }
        Task.detached(priority: Task.currentPriority) { [self] in
            _ = outcome.withLockIfAvailable { state in
                if state == nil { state = Result { try body() } }
            }
        }
    }

    /// Runs the check, or returns the outcome of its first run.
    public func run() throws {
        _ = try outcome.withLock { state in
            if state == nil { state = Result { try body() } }
            return state!
        }.get()
    }

    /// The payee identifier the check established, once it has passed.
    public var payeeIdentifier: String? {
        outcome.withLock { state in
            if case .success(let payee)? = state { return payee }
            return nil
        }
    }
}

/// What a rail hands back after paying: the header for the retry, and the proof for the trace.
public struct PaymentProof: Sendable {
    /// The header field name for the retry (`Authorization`, `PAYMENT-SIGNATURE`, …).
    public var headerName: String
    /// The header value; a bearer secret, never logged or traced.
    public var headerValue: Redacted<String>
    public var proofType: ProofType
    /// The proof for the trace (preimage hex, transaction hash, SPT id).
    public var proofValue: String?
    /// The amount paid in the rail's base unit, fees excluded.
    public var amountNative: UInt64
    /// Routing or network fees paid on top, in the rail's base unit (msat for Lightning).
    public var feeNative: UInt64?
    public var settlementLatencyMs: Int
    public init(headerName: String, headerValue: Redacted<String>, proofType: ProofType, proofValue: String?,
                amountNative: UInt64, feeNative: UInt64? = nil, settlementLatencyMs: Int) {
        self.headerName = headerName
        self.headerValue = headerValue
        self.proofType = proofType
        self.proofValue = proofValue
        self.amountNative = amountNative
        self.feeNative = feeNative
        self.settlementLatencyMs = settlementLatencyMs
    }
}

/// The receipt of a payment made by the client, as returned on ``RouteweilerResponse/payment``.
public struct PaymentReceipt: Sendable, Codable, Hashable {
    public var rail: RailID
    public var amountNative: UInt64
    public var amountNativeCurrency: String
    public var amountEnvelope: Double?
    public var amountEnvelopeCurrency: String?
    public var proofType: ProofType
    public var proofValue: String?
    public var fmvQuality: FmvQuality
    public var settlementLatencyMs: Int
    public var fallbackFrom: RailID?
    /// The id of the call's trace row.
    public var requestID: String
    /// The server's settlement receipt, when it sent one.
    public var settlement: SettlementReceipt?
    public init(rail: RailID, amountNative: UInt64, amountNativeCurrency: String, amountEnvelope: Double? = nil,
                amountEnvelopeCurrency: String? = nil, proofType: ProofType, proofValue: String?,
                fmvQuality: FmvQuality, settlementLatencyMs: Int, fallbackFrom: RailID? = nil, requestID: String,
                settlement: SettlementReceipt? = nil) {
        self.settlement = settlement
        self.rail = rail
        self.amountNative = amountNative
        self.amountNativeCurrency = amountNativeCurrency
        self.amountEnvelope = amountEnvelope
        self.amountEnvelopeCurrency = amountEnvelopeCurrency
        self.proofType = proofType
        self.proofValue = proofValue
        self.fmvQuality = fmvQuality
        self.settlementLatencyMs = settlementLatencyMs
        self.fallbackFrom = fallbackFrom
        self.requestID = requestID
    }
}
