import Foundation

/// A spending limit shared by every call that names it: a cap in one currency, the rails it may pay on, and a
/// lifetime (SPEC §10).
///
/// ```swift
/// config.budget = .create(BudgetEnvelope(id: "agent-42", capMinorUnits: 500, capCurrency: .usd,
///                                        allowedRails: [.l402], ttlSeconds: 3600))
/// ```
public struct BudgetEnvelope: Sendable, Hashable, Codable {
    public var id: String
    /// The cap in minor units of `capCurrency` (cents, or yen). Must be positive.
    public var capMinorUnits: Int64
    public var capCurrency: Currency
    /// Rails the envelope may pay on; any other rail is refused before paying.
    public var allowedRails: [RailID]
    /// Origin globs (`https://*.example.com`) the envelope may pay; default `["*"]`.
    public var allowedOriginsGlob: [String]
    /// Lifetime from creation, in seconds. Must be positive.
    public var ttlSeconds: Int64
    public var ownerAgentID: String?

    public init(id: String, capMinorUnits: Int64, capCurrency: Currency, allowedRails: [RailID],
                allowedOriginsGlob: [String] = ["*"], ttlSeconds: Int64, ownerAgentID: String? = nil) {
        self.id = id
        self.capMinorUnits = capMinorUnits
        self.capCurrency = capCurrency
        self.allowedRails = allowedRails
        self.allowedOriginsGlob = allowedOriginsGlob
        self.ttlSeconds = ttlSeconds
        self.ownerAgentID = ownerAgentID
    }

    /// Checks the spec: a safe id, a positive cap and TTL, an envelope currency, at least one rail.
    /// - Throws: ``ConfigurationError``.
    public func validate() throws {
        guard !id.isEmpty, id.count <= 128,
            id.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0) }),
            id != ".", id != ".."
        else {
            throw ConfigurationError("envelope id must be 1–128 characters of letters, digits, '-', '_' or '.'")
        }
        guard capMinorUnits > 0 else { throw ConfigurationError("envelope cap must be positive, got \(capMinorUnits)") }
        guard ttlSeconds > 0 else { throw ConfigurationError("envelope ttl must be positive, got \(ttlSeconds)") }
        guard Currency.envelopeCurrencies.contains(capCurrency) else {
            throw ConfigurationError("envelope currency must be one of usd, eur, jpy, gbp; got \(capCurrency)")
        }
        guard !allowedRails.isEmpty else { throw ConfigurationError("an envelope needs at least one allowed rail") }
    }
}

/// The lifecycle state of an envelope.
public struct EnvelopeStatus: OpenStringValue {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public static let active = EnvelopeStatus("active")
    public static let frozen = EnvelopeStatus("frozen")
    public static let expired = EnvelopeStatus("expired")
    public static let revoked = EnvelopeStatus("revoked")
}

/// A stored envelope.
public struct EnvelopeRecord: Sendable, Hashable, Codable {
    public var id: String
    public var capMinorUnits: Int64
    public var capCurrency: Currency
    public var allowedRails: [RailID]
    public var allowedOriginsGlob: [String]
    public var status: EnvelopeStatus
    public var createdAt: Date
    public var expiresAt: Date
    /// Base64 of the raw 32-byte Ed25519 public key that signs this envelope's receipts.
    public var counterPublicKey: String
    public var ownerAgentID: String?

    public init(id: String, capMinorUnits: Int64, capCurrency: Currency, allowedRails: [RailID],
                allowedOriginsGlob: [String], status: EnvelopeStatus, createdAt: Date, expiresAt: Date,
                counterPublicKey: String, ownerAgentID: String?) {
        self.id = id
        self.capMinorUnits = capMinorUnits
        self.capCurrency = capCurrency
        self.allowedRails = allowedRails
        self.allowedOriginsGlob = allowedOriginsGlob
        self.status = status
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.counterPublicKey = counterPublicKey
        self.ownerAgentID = ownerAgentID
    }
}

/// The state of one draw (reservation) on an envelope.
public enum DrawState: String, Sendable, Hashable, Codable {
    case reserved
    case settled
    case rolledBack = "rolled_back"
}

/// A stored draw.
public struct DrawRecord: Sendable, Hashable, Codable {
    public var id: String
    public var envelopeID: String
    public var requestID: String
    public var idempotencyKey: String
    public var amountReservedMinorUnits: Int64
    public var amountSettledMinorUnits: Int64?
    public var railQuoted: RailID
    public var state: DrawState
    public var issuedAt: Date
    public var expiresAt: Date
    public var settledAt: Date?

    public init(id: String, envelopeID: String, requestID: String, idempotencyKey: String,
                amountReservedMinorUnits: Int64, amountSettledMinorUnits: Int64?, railQuoted: RailID, state: DrawState,
                issuedAt: Date, expiresAt: Date, settledAt: Date?) {
        self.id = id
        self.envelopeID = envelopeID
        self.requestID = requestID
        self.idempotencyKey = idempotencyKey
        self.amountReservedMinorUnits = amountReservedMinorUnits
        self.amountSettledMinorUnits = amountSettledMinorUnits
        self.railQuoted = railQuoted
        self.state = state
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.settledAt = settledAt
    }
}

/// A signed receipt for a reservation (SPEC §10.1, §10.5).
public struct DrawReceipt: Sendable, Hashable, Codable {
    public var receiptId: String
    public var envelopeId: String
    public var requestId: String
    public var idempotencyKey: String
    public var amountReservedMinorUnits: Int64
    public var amountReservedCurrency: Currency
    public var railQuoted: RailID
    public var issuedAt: Date
    public var expiresAt: Date
    /// Base64 raw 32-byte Ed25519 public key.
    public var counterPublicKey: String
    /// Base64 64-byte Ed25519 signature over ``signedBytes``.
    public var signature: String

    public init(receiptId: String, envelopeId: String, requestId: String, idempotencyKey: String,
                amountReservedMinorUnits: Int64, amountReservedCurrency: Currency, railQuoted: RailID, issuedAt: Date,
                expiresAt: Date, counterPublicKey: String, signature: String) {
        self.receiptId = receiptId
        self.envelopeId = envelopeId
        self.requestId = requestId
        self.idempotencyKey = idempotencyKey
        self.amountReservedMinorUnits = amountReservedMinorUnits
        self.amountReservedCurrency = amountReservedCurrency
        self.railQuoted = railQuoted
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.counterPublicKey = counterPublicKey
        self.signature = signature
    }
}

/// What an envelope has left.
public struct EnvelopeBalance: Sendable, Hashable, Codable {
    public var envelopeID: String
    public var currency: Currency
    public var capMinorUnits: Int64
    public var reservedMinorUnits: Int64
    public var settledMinorUnits: Int64
    public var remainingMinorUnits: Int64 { capMinorUnits - reservedMinorUnits - settledMinorUnits }
    public init(envelopeID: String, currency: Currency, capMinorUnits: Int64, reservedMinorUnits: Int64,
                settledMinorUnits: Int64) {
        self.envelopeID = envelopeID
        self.currency = currency
        self.capMinorUnits = capMinorUnits
        self.reservedMinorUnits = reservedMinorUnits
        self.settledMinorUnits = settledMinorUnits
    }
}

/// Durable money state: envelopes and their draws. Every reservation is atomic against the cap, also across
/// processes sharing the store.
public protocol BudgetStore: Sendable {
    /// Creates an envelope and its signing key.
    /// - Throws: ``ConfigurationError`` for an invalid spec, ``KeystoreAlreadyExistsError`` or
    ///   ``EnvelopeExistsError`` when the id is taken.
    func createEnvelope(_ spec: BudgetEnvelope, now: Date) async throws -> EnvelopeRecord
    /// Creates the envelope unless one with its id exists; returns whether it created it.
    func createEnvelopeIfAbsent(_ spec: BudgetEnvelope, now: Date) async throws -> Bool
    func envelope(id: String) async throws -> EnvelopeRecord?
    func envelopes() async throws -> [EnvelopeRecord]
    func balance(envelopeID: String) async throws -> EnvelopeBalance
    /// Reserves `amountMinorUnits` against the cap before a payment, atomically.
    ///
    /// Idempotent on `(envelopeID, idempotencyKey)`: a replay returns the first receipt, byte for byte.
    /// - Throws: ``BudgetExceededError`` (nothing reserved), ``EnvelopeNotFoundError``, ``EnvelopeFrozenError``,
    ///   ``EnvelopeExpiredError``, ``ReceiptVerificationError``.
    func reserve(envelopeID: String, requestID: String, idempotencyKey: String, amountMinorUnits: Int64,
                 rail: RailID, lease: Duration, now: Date) async throws -> DrawReceipt
    /// Settles a draw at the amount actually paid. Settles a draw the sweeper released too (the money moved).
    func settle(drawID: String, amountMinorUnits: Int64, now: Date) async throws
    /// Releases a reservation whose payment did not happen. No-op on a settled draw.
    func release(drawID: String, now: Date) async throws
    /// Releases reservations whose lease expired (calls that died), except those held by a pending payment
    /// intent. Returns how many were released.
    func sweepExpired(now: Date) async throws -> Int
    func draws(envelopeID: String) async throws -> [DrawRecord]
    /// Verifies a receipt against the key stored with its envelope (not the key inside the receipt).
    /// - Throws: ``ReceiptVerificationError`` when the receipt was altered or signed by another key.
    func verify(_ receipt: DrawReceipt) async throws

    /// Reserves like ``reserve(envelopeID:requestID:idempotencyKey:amountMinorUnits:rail:lease:now:)`` and records
    /// `intent` (with ``PaymentIntent/drawID`` set to the new draw) as pending in `journal`, before any money moves.
    ///
    /// A store that shares its database with `journal` does both in one transaction: either both are written or
    /// neither. The default reserves, begins the intent, and releases the reservation if the intent cannot be
    /// recorded.
    /// - Throws: the reservation's errors, or ``JournalWriteError`` when the intent could not be recorded (then
    ///   nothing is reserved).
    func reserve(envelopeID: String, requestID: String, idempotencyKey: String, amountMinorUnits: Int64,
                 rail: RailID, lease: Duration, now: Date, recording intent: PaymentIntent,
                 in journal: any PaymentJournal) async throws -> DrawReceipt

    /// Settles a draw (as ``settle(drawID:amountMinorUnits:now:)``) and marks the intent `succeeded` with its
    /// proof; in one transaction when the store shares its database with `journal`.
    func settle(drawID: String, amountMinorUnits: Int64, now: Date, resolving intentID: String, proof: String?,
                in journal: any PaymentJournal) async throws

    /// The client's reservation before a payment: as
    /// ``reserve(envelopeID:requestID:idempotencyKey:amountMinorUnits:rail:lease:now:recording:in:)``, for a caller
    /// that does not need the receipt's signature before it pays.
    ///
    /// Everything that guards the money is done before it returns, exactly as there: the envelope checks, the cap,
    /// the intent, and the check that the envelope's signing key is the one on its row. Only the Ed25519 signature
    /// may be left for later: a store that does so returns the receipt with an empty `signature`, and makes and
    /// stores it when the draw is settled or released (off the caller's path, while the paid retry is on the wire),
    /// or when the sweeper or a replay finds the row without one. The default signs at once.
    ///
    /// `check` is the offer's deferred check (the invoice signature, started on another thread while routing): the
    /// reservation and the intent are written only if it passes, and its error wins over any refusal of the
    /// store's, so an offer that fails it changes nothing. A store may run it inside its transaction, just before
    /// the commit, so that it finishes while the statements run; the default runs it first.
    func reserveSigningLater(envelopeID: String, requestID: String, idempotencyKey: String, amountMinorUnits: Int64,
                             rail: RailID, lease: Duration, now: Date, recording intent: PaymentIntent,
                             in journal: any PaymentJournal, committingOnlyIf check: DeferredOfferCheck?)
        async throws -> DrawReceipt
}

extension BudgetStore {
    public func reserve(envelopeID: String, requestID: String, idempotencyKey: String, amountMinorUnits: Int64,
                        rail: RailID, lease: Duration, now: Date, recording intent: PaymentIntent,
                        in journal: any PaymentJournal) async throws -> DrawReceipt {
        try await reserveThenBegin(envelopeID: envelopeID, requestID: requestID, idempotencyKey: idempotencyKey,
                                   amountMinorUnits: amountMinorUnits, rail: rail, lease: lease, now: now,
                                   recording: intent, in: journal)
    }

    public func reserveSigningLater(envelopeID: String, requestID: String, idempotencyKey: String,
                                    amountMinorUnits: Int64, rail: RailID, lease: Duration, now: Date,
                                    recording intent: PaymentIntent, in journal: any PaymentJournal,
                                    committingOnlyIf check: DeferredOfferCheck?) async throws -> DrawReceipt
    {
        try check?.run()
        return try await reserve(envelopeID: envelopeID, requestID: requestID, idempotencyKey: idempotencyKey,
                                 amountMinorUnits: amountMinorUnits, rail: rail, lease: lease, now: now,
                                 recording: intent, in: journal)
    }

    public func settle(drawID: String, amountMinorUnits: Int64, now: Date, resolving intentID: String, proof: String?,
                       in journal: any PaymentJournal) async throws {
        try await settleThenResolve(drawID: drawID, amountMinorUnits: amountMinorUnits, now: now,
                                    resolving: intentID, proof: proof, in: journal)
    }

    /// The two-step form of ``reserve(envelopeID:requestID:idempotencyKey:amountMinorUnits:rail:lease:now:recording:in:)``
    /// for stores that cannot share a transaction with `journal`: reserve, begin the intent, and release the
    /// reservation if the intent cannot be recorded.
    public func reserveThenBegin(envelopeID: String, requestID: String, idempotencyKey: String,
                                 amountMinorUnits: Int64, rail: RailID, lease: Duration, now: Date,
                                 recording intent: PaymentIntent, in journal: any PaymentJournal) async throws
        -> DrawReceipt
    {
        let receipt = try await reserve(envelopeID: envelopeID, requestID: requestID, idempotencyKey: idempotencyKey,
                                        amountMinorUnits: amountMinorUnits, rail: rail, lease: lease, now: now)
        var intent = intent
        intent.drawID = receipt.receiptId
        do {
            try await journal.begin(intent)
        } catch {
            try? await release(drawID: receipt.receiptId, now: now)
            throw JournalWriteError(cause: error)
        }
        return receipt
    }

    /// Checks a reservation's arguments for a store; returns the lease in seconds.
    /// - Throws: ``ConfigurationError`` for a non-positive amount or lease, or an empty idempotency key.
    package static func checkedReservation(amountMinorUnits: Int64, lease: Duration, idempotencyKey: String) throws
        -> Double
    {
        guard amountMinorUnits > 0 else {
            throw ConfigurationError("a reservation must be positive, got \(amountMinorUnits) minor units")
        }
        let leaseSeconds = Double(lease.components.seconds) + Double(lease.components.attoseconds) / 1e18
        guard leaseSeconds > 0 else { throw ConfigurationError("a reservation lease must be positive, got \(lease)") }
        guard !idempotencyKey.isEmpty else { throw ConfigurationError("a reservation needs an idempotency key") }
        return leaseSeconds
    }

    /// Checks a settlement amount for a store.
    /// - Throws: ``ConfigurationError`` for a negative amount.
    package static func checkedSettlement(amountMinorUnits: Int64) throws {
        guard amountMinorUnits >= 0 else {
            throw ConfigurationError("a settled amount cannot be negative, got \(amountMinorUnits) minor units")
        }
    }

    /// The two-step form of ``settle(drawID:amountMinorUnits:now:resolving:proof:in:)``: settle, then resolve.
    public func settleThenResolve(drawID: String, amountMinorUnits: Int64, now: Date, resolving intentID: String,
                                  proof: String?, in journal: any PaymentJournal) async throws {
        try await settle(drawID: drawID, amountMinorUnits: amountMinorUnits, now: now)
        try await journal.resolve(id: intentID, state: .succeeded, proof: proof, now: now)
    }
}
