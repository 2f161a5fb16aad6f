import Foundation

/// The durable record of an intent to pay, written before any money moves (crash safety).
///
/// If the process dies between paying and settling, the next start finds the intent still `pending`, asks the
/// wallet what happened (LND `TrackPaymentV2`), and settles or releases the reservation; a succeeded payment's
/// credential is kept so it can still be used.
public struct PaymentIntent: Sendable, Hashable {
    public enum State: String, Sendable, Hashable { case pending, succeeded, failed }

    public var id: String
    public var requestID: String
    public var rail: RailID
    public var origin: String
    public var url: String
    public var envelopeID: String?
    public var drawID: String?
    /// The amount to settle on the envelope if the payment succeeded (minor units).
    public var settleMinorUnits: Int64?
    /// Lightning: the payment hash (hex) to track.
    public var paymentHash: String?
    public var invoice: String?
    /// The credential to rebuild once the payment is known to have succeeded (e.g. `L402 <macaroon>`), a secret.
    public var credentialPrefix: Redacted<String>?
    public var credentialScope: String?
    public var credentialExpiresAt: Date?
    public var state: State
    /// The proof once known (preimage hex).
    public var proof: String?
    public var createdAt: Date

    public init(id: String, requestID: String, rail: RailID, origin: String, url: String, envelopeID: String?,
                drawID: String?, settleMinorUnits: Int64?, paymentHash: String?, invoice: String?,
                credentialPrefix: Redacted<String>?, credentialScope: String?, credentialExpiresAt: Date?,
                state: State = .pending, proof: String? = nil, createdAt: Date) {
        self.id = id
        self.requestID = requestID
        self.rail = rail
        self.origin = origin
        self.url = url
        self.envelopeID = envelopeID
        self.drawID = drawID
        self.settleMinorUnits = settleMinorUnits
        self.paymentHash = paymentHash
        self.invoice = invoice
        self.credentialPrefix = credentialPrefix
        self.credentialScope = credentialScope
        self.credentialExpiresAt = credentialExpiresAt
        self.state = state
        self.proof = proof
        self.createdAt = createdAt
    }
}

/// Stores payment intents. The SQLite implementation shares the budget's database file.
public protocol PaymentJournal: Sendable {
    /// Records an intent as `pending`. Called before the payment starts.
    func begin(_ intent: PaymentIntent) async throws
    /// Marks an intent succeeded (with its proof) or failed.
    func resolve(id: String, state: PaymentIntent.State, proof: String?, now: Date) async throws
    /// Intents still pending (their payment's outcome is not known).
    func pending() async throws -> [PaymentIntent]
}

/// An in-memory journal (no crash safety: for tests and for clients without a database).
public actor InMemoryPaymentJournal: PaymentJournal {
    private var intents: [String: PaymentIntent] = [:]
    public init() {}
    public func begin(_ intent: PaymentIntent) async throws { intents[intent.id] = intent }
    public func resolve(id: String, state: PaymentIntent.State, proof: String?, now: Date) async throws {
        intents[id]?.state = state
        intents[id]?.proof = proof
    }
    public func pending() async throws -> [PaymentIntent] {
        intents.values.filter { $0.state == .pending }.sorted { $0.createdAt < $1.createdAt }
    }
}
