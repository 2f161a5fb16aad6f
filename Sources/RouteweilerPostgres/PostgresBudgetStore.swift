import Foundation
import PostgresNIO
public import Routeweiler
import Synchronization

/// Budget envelopes and their draws in PostgreSQL, with the same semantics as `SQLiteBudgetStore` (SPEC §10, §13),
/// for fleets of agents on several machines sharing one budget.
///
/// ```swift
/// let db = try await PostgresStoreDatabase.open(url: "postgres://rw:secret@db.internal/routeweiler")
/// let store = PostgresBudgetStore(database: db)
/// let receipt = try await store.reserve(envelopeID: "agent-42", requestID: rid, idempotencyKey: rid,
///                                       amountMinorUnits: 21, rail: .l402, lease: .seconds(150), now: Date())
/// ```
///
/// Every reservation is one transaction that first locks the envelope row (`SELECT … FOR UPDATE`): the envelope
/// checks, the idempotency lookup, the cap arithmetic, the insert and the receipt signature all happen while every
/// other reservation on that envelope, on any machine, waits. The signature is stored in the draw row, so a replay
/// returns the first receipt byte for byte. A row lock held longer than ``PostgresStoreDatabase/lockTimeout`` surfaces as
/// ``StoreBusyError``.
///
/// Timestamps are the same fixed-width ISO text as in SQLite (`2026-01-02T03:04:05.000000+00:00`), so receipts
/// rebuilt from rows are byte-identical and text order is time order.
///
/// Signing keys stay in the local ``EnvelopeKeystore``: every machine that reserves on an envelope needs its key file.
public final class PostgresBudgetStore: BudgetStore {
    public let database: PostgresStoreDatabase
    public let keystore: EnvelopeKeystore
    private let keys = Mutex<[String: EnvelopeSigningKey]>([:])

    public init(database: PostgresStoreDatabase, keystore: EnvelopeKeystore = EnvelopeKeystore()) {
        self.database = database
        self.keystore = keystore
    }

    // MARK: - Envelopes

    public func createEnvelope(_ spec: BudgetEnvelope, now: Date) async throws -> EnvelopeRecord {
        guard let record = try await create(spec, now: now, ifAbsent: false) else {
            throw EnvelopeExistsError(envelopeID: spec.id)
        }
        return record
    }

    public func createEnvelopeIfAbsent(_ spec: BudgetEnvelope, now: Date) async throws -> Bool {
        try await create(spec, now: now, ifAbsent: true) != nil
    }

    /// Creates the key file and the row while holding a per-envelope advisory lock, so no other process can
    /// interleave between the two. A key file this call created is removed again if the row is not committed.
    private func create(_ spec: BudgetEnvelope, now: Date, ifAbsent: Bool) async throws -> EnvelopeRecord? {
        try spec.validate()
        let keystore = self.keystore
        let createdKey = CreatedKeyFlag()
        let created = PGTime.text(now)
        let expires = PGTime.text(now.addingTimeInterval(TimeInterval(spec.ttlSeconds)))
        let rails = try Self.jsonArray(spec.allowedRails.map(\.rawValue))
        let globs = try Self.jsonArray(spec.allowedOriginsGlob)
        do {
            return try await database.transaction { c -> EnvelopeRecord? in
                try await PostgresStoreDatabase.execute(c, "SELECT pg_advisory_xact_lock(hashtext('routeweiler-envelope:' || current_schema() || ':' || \(spec.id)))")
                if try await !PostgresStoreDatabase.rows(c, "SELECT 1 FROM envelopes WHERE id = \(spec.id)").isEmpty {
                    if ifAbsent { return nil }
                    throw EnvelopeExistsError(envelopeID: spec.id)
                }
                let key = try keystore.create(envelopeID: spec.id)
                createdKey.set()
                try await PostgresStoreDatabase.execute(c, """
                    INSERT INTO envelopes(id, cap_minor_units, cap_currency, allowed_rails, allowed_origins_glob,
                      status, created_at, expires_at, counter_public_key, owner_agent_id)
                    VALUES (\(spec.id), \(spec.capMinorUnits), \(spec.capCurrency.code), \(rails), \(globs),
                      \(EnvelopeStatus.active.rawValue), \(created), \(expires), \(key.publicKeyBase64), \(spec.ownerAgentID))
                    """)
                return EnvelopeRecord(
                    id: spec.id, capMinorUnits: spec.capMinorUnits, capCurrency: spec.capCurrency,
                    allowedRails: spec.allowedRails, allowedOriginsGlob: spec.allowedOriginsGlob, status: .active,
                    createdAt: try PGTime.date(created), expiresAt: try PGTime.date(expires),
                    counterPublicKey: key.publicKeyBase64, ownerAgentID: spec.ownerAgentID)
            }
        } catch {
            if createdKey.isSet { try? keystore.delete(envelopeID: spec.id) }
            if let psql = error as? PostgresStoreError, psql.message.contains("SQLSTATE 23505") {
                throw EnvelopeExistsError(envelopeID: spec.id)
            }
            throw error
        }
    }

    public func envelope(id: String) async throws -> EnvelopeRecord? {
        try await database.run { c in
            try await PostgresStoreDatabase.rows(c, "SELECT * FROM envelopes WHERE id = \(id)").first.map(Self.envelope(from:))
        }
    }

    public func envelopes() async throws -> [EnvelopeRecord] {
        try await database.run { c in
            try await PostgresStoreDatabase.rows(c, "SELECT * FROM envelopes ORDER BY created_at, id").map(Self.envelope(from:))
        }
    }

    public func balance(envelopeID: String) async throws -> EnvelopeBalance {
        try await database.run { c in
            guard let row = try await PostgresStoreDatabase.rows(c, "SELECT * FROM envelopes WHERE id = \(envelopeID)").first
            else { throw EnvelopeNotFoundError(envelopeID: envelopeID) }
            let envelope = try Self.envelope(from: row)
            let (reserved, settled) = try Self.totals(row)
            return EnvelopeBalance(envelopeID: envelopeID, currency: envelope.capCurrency,
                                   capMinorUnits: envelope.capMinorUnits, reservedMinorUnits: reserved,
                                   settledMinorUnits: settled)
        }
    }

    // MARK: - Draws

    public func reserve(envelopeID: String, requestID: String, idempotencyKey: String, amountMinorUnits: Int64,
                        rail: RailID, lease: Duration, now: Date) async throws -> DrawReceipt {
        let leaseSeconds = try Self.checkedReservation(amountMinorUnits: amountMinorUnits, lease: lease,
                                                       idempotencyKey: idempotencyKey)
        return try await database.transaction { c in
            try await self.reserve(c, envelopeID: envelopeID, requestID: requestID, idempotencyKey: idempotencyKey,
                                   amountMinorUnits: amountMinorUnits, rail: rail, leaseSeconds: leaseSeconds, now: now)
        }
    }

    /// Reserves and journals the intent in one transaction when `journal` is a ``PostgresPaymentJournal`` on this
    /// store's database; otherwise reserves, then begins the intent.
    public func reserve(envelopeID: String, requestID: String, idempotencyKey: String, amountMinorUnits: Int64,
                        rail: RailID, lease: Duration, now: Date, recording intent: PaymentIntent,
                        in journal: any PaymentJournal) async throws -> DrawReceipt {
        guard let pgJournal = journal as? PostgresPaymentJournal, pgJournal.database === database else {
            return try await reserveThenBegin(envelopeID: envelopeID, requestID: requestID,
                                              idempotencyKey: idempotencyKey, amountMinorUnits: amountMinorUnits,
                                              rail: rail, lease: lease, now: now, recording: intent, in: journal)
        }
        let leaseSeconds = try Self.checkedReservation(amountMinorUnits: amountMinorUnits, lease: lease,
                                                       idempotencyKey: idempotencyKey)
        return try await database.transaction { c in
            let receipt = try await self.reserve(c, envelopeID: envelopeID, requestID: requestID,
                                                 idempotencyKey: idempotencyKey, amountMinorUnits: amountMinorUnits,
                                                 rail: rail, leaseSeconds: leaseSeconds, now: now)
            var intent = intent
            intent.drawID = receipt.receiptId
            do {
                try await PostgresPaymentJournal.insert(intent, c)
            } catch {
                throw JournalWriteError(cause: error)  // rolls the reservation back with it
            }
            return receipt
        }
    }

    /// Settles and resolves the intent in one transaction when `journal` is a ``PostgresPaymentJournal`` on this
    /// store's database.
    public func settle(drawID: String, amountMinorUnits: Int64, now: Date, resolving intentID: String, proof: String?,
                       in journal: any PaymentJournal) async throws {
        guard let pgJournal = journal as? PostgresPaymentJournal, pgJournal.database === database else {
            return try await settleThenResolve(drawID: drawID, amountMinorUnits: amountMinorUnits, now: now,
                                               resolving: intentID, proof: proof, in: journal)
        }
        try Self.checkedSettlement(amountMinorUnits: amountMinorUnits)
        try await database.transaction { c in
            try await Self.settle(c, drawID: drawID, amountMinorUnits: amountMinorUnits, settledAt: PGTime.text(now))
            try await PostgresPaymentJournal.resolve(id: intentID, state: .succeeded, proof: proof, now: now, c)
        }
    }

    /// The reservation itself, inside the caller's transaction (SPEC §10.3).
    private func reserve(_ c: PostgresConnection, envelopeID: String, requestID: String, idempotencyKey: String,
                         amountMinorUnits: Int64, rail: RailID, leaseSeconds: Double, now: Date) async throws
        -> DrawReceipt
    {
        // The row lock serialises every reservation on this envelope, across processes and machines.
        guard let row = try await PostgresStoreDatabase.rows(
            c, "SELECT * FROM envelopes WHERE id = \(envelopeID) FOR UPDATE").first
        else { throw EnvelopeNotFoundError(envelopeID: envelopeID) }
        let envelope = try Self.envelope(from: row)
        guard envelope.status == .active else {
            throw EnvelopeFrozenError(envelopeID: envelopeID, status: envelope.status)
        }
        guard now < envelope.expiresAt else { throw EnvelopeExpiredError(envelopeID: envelopeID) }

        // Idempotent replay: whatever the row's state, return its receipt (a released key stays burned).
        if let existing = try await PostgresStoreDatabase.rows(
            c, "SELECT * FROM draws WHERE envelope_id = \(envelopeID) AND idempotency_key = \(idempotencyKey)").first
        {
            let draw = try Self.draw(from: existing)
            var receipt = Self.receipt(for: draw, envelope: envelope)
            if let signature = try existing["signature"].decode(String?.self), !signature.isEmpty {
                receipt.signature = signature
            } else {
                receipt.signature = try self.signingKey(for: envelope).signature(for: receipt)
                try await PostgresStoreDatabase.execute(
                    c, "UPDATE draws SET signature = \(receipt.signature) WHERE id = \(draw.id)")
            }
            return receipt
        }

        guard envelope.allowedRails.contains(rail) else {
            throw RailNotAllowedError(envelopeID: envelopeID, rail: rail)
        }
        let (reserved, settled) = try Self.totals(row)  // kept by the draws trigger (migration 2)
        let available = envelope.capMinorUnits - reserved - settled
        guard amountMinorUnits <= available else {
            throw BudgetExceededError(envelopeID: envelopeID, requestedMinorUnits: amountMinorUnits,
                                      availableMinorUnits: max(0, available))
        }
        let issued = PGTime.text(now)
        let expires = PGTime.text(now.addingTimeInterval(leaseSeconds))
        let draw = DrawRecord(
            id: UUIDv7.make(now: now), envelopeID: envelopeID, requestID: requestID, idempotencyKey: idempotencyKey,
            amountReservedMinorUnits: amountMinorUnits, amountSettledMinorUnits: nil, railQuoted: rail,
            state: .reserved, issuedAt: try PGTime.date(issued), expiresAt: try PGTime.date(expires), settledAt: nil)
        var receipt = Self.receipt(for: draw, envelope: envelope)
        receipt.signature = try self.signingKey(for: envelope).signature(for: receipt)
        try receipt.verifySignature(publicKeyBase64: envelope.counterPublicKey)
        try await PostgresStoreDatabase.execute(c, """
            INSERT INTO draws(id, envelope_id, request_id, idempotency_key, amount_reserved_minor_units,
              amount_settled_minor_units, rail_quoted, state, issued_at, expires_at, settled_at, signature)
            VALUES (\(draw.id), \(envelopeID), \(requestID), \(idempotencyKey), \(amountMinorUnits), NULL,
              \(rail.rawValue), \(DrawState.reserved.rawValue), \(issued), \(expires), NULL, \(receipt.signature))
            """)
        return receipt
    }

    /// Settles a draw at the amount actually paid; revives a draw the sweeper released (the money moved, SPEC
    /// §16.6); leaves a settled draw alone.
    /// - Throws: ``DrawNotFoundError`` for an unknown id; ``ConfigurationError`` for a negative amount.
    public func settle(drawID: String, amountMinorUnits: Int64, now: Date) async throws {
        try Self.checkedSettlement(amountMinorUnits: amountMinorUnits)
        let settledAt = PGTime.text(now)
        try await database.transaction { c in
            try await Self.settle(c, drawID: drawID, amountMinorUnits: amountMinorUnits, settledAt: settledAt)
        }
    }

    private static func settle(_ c: PostgresConnection, drawID: String, amountMinorUnits: Int64, settledAt: String)
        async throws
    {
        try await lockEnvelope(ofDraw: drawID, c)
        let changed = try await PostgresStoreDatabase.execute(c, """
            UPDATE draws SET state = 'settled', amount_settled_minor_units = \(amountMinorUnits), settled_at = \(settledAt)
            WHERE id = \(drawID) AND state <> 'settled' RETURNING id
            """)
        if changed == 0, try await PostgresStoreDatabase.rows(c, "SELECT 1 FROM draws WHERE id = \(drawID)").isEmpty {
            throw DrawNotFoundError(drawID: drawID)
        }
    }

    /// Releases a `reserved` draw. No-op for a settled or already released draw.
    /// - Throws: ``DrawNotFoundError`` for an unknown id.
    public func release(drawID: String, now: Date) async throws {
        try await database.transaction { c in
            try await Self.lockEnvelope(ofDraw: drawID, c)
            let changed = try await PostgresStoreDatabase.execute(
                c, "UPDATE draws SET state = 'rolled_back' WHERE id = \(drawID) AND state = 'reserved' RETURNING id")
            if changed == 0, try await PostgresStoreDatabase.rows(c, "SELECT 1 FROM draws WHERE id = \(drawID)").isEmpty {
                throw DrawNotFoundError(drawID: drawID)
            }
        }
    }

    /// Releases `reserved` draws whose lease ended before `now`, except those referenced by a `pending` payment
    /// intent.
    public func sweepExpired(now: Date) async throws -> Int {
        let cutoff = PGTime.text(now)
        return try await database.transaction { c in
            // The envelopes first, in id order (as reservations and settlements take them), then their draws.
            let envelopes = try await PostgresStoreDatabase.rows(c, """
                SELECT id FROM envelopes WHERE id IN (
                  SELECT envelope_id FROM draws WHERE state = 'reserved' AND expires_at < \(cutoff))
                ORDER BY id FOR UPDATE
                """)
            var swept = 0
            for envelope in envelopes {
                let id = try envelope["id"].decode(String.self)
                swept += try await PostgresStoreDatabase.execute(c, """
                    UPDATE draws SET state = 'rolled_back'
                    WHERE envelope_id = \(id) AND state = 'reserved' AND expires_at < \(cutoff)
                      AND id NOT IN (SELECT draw_id FROM payment_intents WHERE state = 'pending' AND draw_id IS NOT NULL)
                    RETURNING id
                    """)
            }
            return swept
        }
    }

    public func draws(envelopeID: String) async throws -> [DrawRecord] {
        try await database.run { c in
            try await PostgresStoreDatabase.rows(
                c, "SELECT * FROM draws WHERE envelope_id = \(envelopeID) ORDER BY issued_at, id").map(Self.draw(from:))
        }
    }

    /// The stored receipt of a draw (rebuilt from its row, with the stored signature), or `nil` for an unknown id.
    public func receipt(drawID: String) async throws -> DrawReceipt? {
        try await database.run { c in
            guard let row = try await PostgresStoreDatabase.rows(c, "SELECT * FROM draws WHERE id = \(drawID)").first else {
                return nil
            }
            let envelopeID = try row["envelope_id"].decode(String.self)
            guard let envelopeRow = try await PostgresStoreDatabase.rows(
                c, "SELECT * FROM envelopes WHERE id = \(envelopeID)").first
            else { return nil }
            var receipt = Self.receipt(for: try Self.draw(from: row), envelope: try Self.envelope(from: envelopeRow))
            receipt.signature = try row["signature"].decode(String?.self) ?? ""
            return receipt
        }
    }

    /// Re-verifies the stored signature of every draw of the envelope; returns the draws that fail, with the reason.
    /// - Throws: ``EnvelopeNotFoundError``.
    public func unverifiedDraws(envelopeID: String) async throws -> [(drawID: String, reason: String)] {
        let (envelope, rows) = try await database.run { c -> (EnvelopeRecord, [PostgresRandomAccessRow]) in
            guard let row = try await PostgresStoreDatabase.rows(c, "SELECT * FROM envelopes WHERE id = \(envelopeID)").first
            else { throw EnvelopeNotFoundError(envelopeID: envelopeID) }
            let draws = try await PostgresStoreDatabase.rows(
                c, "SELECT * FROM draws WHERE envelope_id = \(envelopeID) ORDER BY issued_at, id")
            return (try Self.envelope(from: row), draws)
        }
        var failures: [(drawID: String, reason: String)] = []
        for row in rows {
            let id = (try? row["id"].decode(String.self)) ?? ""
            do {
                let draw = try Self.draw(from: row)
                var receipt = Self.receipt(for: draw, envelope: envelope)
                guard let signature = try row["signature"].decode(String?.self), !signature.isEmpty else {
                    throw ReceiptVerificationError("draw \(draw.id) has no stored signature")
                }
                receipt.signature = signature
                try receipt.verifySignature(publicKeyBase64: envelope.counterPublicKey)
            } catch let error as ReceiptVerificationError {
                failures.append((id, error.message))
            } catch let error as ConfigurationError {
                failures.append((id, error.message))
            } catch {
                failures.append((id, "\(error)"))
            }
        }
        return failures
    }

    /// Verifies a receipt against the public key stored with its envelope (not the key inside the receipt).
    public func verify(_ receipt: DrawReceipt) async throws {
        let key = try await database.run { c in
            try await PostgresStoreDatabase.rows(
                c, "SELECT counter_public_key FROM envelopes WHERE id = \(receipt.envelopeId)"
            ).first.map { try $0["counter_public_key"].decode(String.self) }
        }
        guard let key else {
            throw ReceiptVerificationError(
                "receipt \(receipt.receiptId) names envelope '\(receipt.envelopeId)', which does not exist in \(database.url)")
        }
        try receipt.verifySignature(publicKeyBase64: key)
    }

    // MARK: - Helpers

    private func signingKey(for envelope: EnvelopeRecord) throws -> EnvelopeSigningKey {
        if let cached = keys.withLock({ $0[envelope.id] }), cached.publicKeyBase64 == envelope.counterPublicKey {
            return cached
        }
        let key = try keystore.load(envelopeID: envelope.id)
        guard key.publicKeyBase64 == envelope.counterPublicKey else {
            throw ReceiptVerificationError(
                "the key file for envelope '\(envelope.id)' in \(keystore.directory) does not match the envelope's public key")
        }
        keys.withLock { $0[envelope.id] = key }
        return key
    }

    private static func receipt(for draw: DrawRecord, envelope: EnvelopeRecord) -> DrawReceipt {
        DrawReceipt(receiptId: draw.id, envelopeId: draw.envelopeID, requestId: draw.requestID,
                    idempotencyKey: draw.idempotencyKey, amountReservedMinorUnits: draw.amountReservedMinorUnits,
                    amountReservedCurrency: envelope.capCurrency, railQuoted: draw.railQuoted,
                    issuedAt: draw.issuedAt, expiresAt: draw.expiresAt,
                    counterPublicKey: envelope.counterPublicKey, signature: "")
    }

    /// The envelope row's running totals (kept by the `draws_totals` trigger): O(1) however many draws it has.
    private static func totals(_ envelopeRow: PostgresRandomAccessRow) throws -> (reserved: Int64, settled: Int64) {
        (try envelopeRow["reserved_minor_units"].decode(Int64.self), try envelopeRow["settled_minor_units"].decode(Int64.self))
    }

    /// Locks the envelope row of `drawID` (if the draw exists), so that the trigger's update of it cannot meet a
    /// reservation or a sweep holding it in the other order.
    private static func lockEnvelope(ofDraw drawID: String, _ c: PostgresConnection) async throws {
        _ = try await PostgresStoreDatabase.rows(
            c, "SELECT 1 FROM envelopes WHERE id = (SELECT envelope_id FROM draws WHERE id = \(drawID)) FOR UPDATE")
    }

    static func envelope(from row: PostgresRandomAccessRow) throws -> EnvelopeRecord {
        let id = try row["id"].decode(String.self)
        let code = try row["cap_currency"].decode(String.self)
        let currency: Currency
        do { currency = try Currency(code: code) } catch {
            throw ConfigurationError("envelope '\(id)' has an unknown currency '\(code)' in the database")
        }
        return EnvelopeRecord(
            id: id, capMinorUnits: try row["cap_minor_units"].decode(Int64.self), capCurrency: currency,
            allowedRails: try jsonStrings(try row["allowed_rails"].decode(String.self),
                                          what: "allowed_rails of envelope '\(id)'").map { RailID($0) },
            allowedOriginsGlob: try jsonStrings(try row["allowed_origins_glob"].decode(String.self),
                                                what: "allowed_origins_glob of envelope '\(id)'"),
            status: EnvelopeStatus(try row["status"].decode(String.self)),
            createdAt: try PGTime.date(try row["created_at"].decode(String.self)),
            expiresAt: try PGTime.date(try row["expires_at"].decode(String.self)),
            counterPublicKey: try row["counter_public_key"].decode(String.self),
            ownerAgentID: try row["owner_agent_id"].decode(String?.self))
    }

    static func draw(from row: PostgresRandomAccessRow) throws -> DrawRecord {
        let id = try row["id"].decode(String.self)
        let stateText = try row["state"].decode(String.self)
        guard let state = DrawState(rawValue: stateText) else {
            throw ConfigurationError("draw \(id) has an unknown state '\(stateText)' in the database")
        }
        let settledAt = try row["settled_at"].decode(String?.self)
        return DrawRecord(
            id: id, envelopeID: try row["envelope_id"].decode(String.self),
            requestID: try row["request_id"].decode(String.self),
            idempotencyKey: try row["idempotency_key"].decode(String.self),
            amountReservedMinorUnits: try row["amount_reserved_minor_units"].decode(Int64.self),
            amountSettledMinorUnits: try row["amount_settled_minor_units"].decode(Int64?.self),
            railQuoted: RailID(try row["rail_quoted"].decode(String.self)), state: state,
            issuedAt: try PGTime.date(try row["issued_at"].decode(String.self)),
            expiresAt: try PGTime.date(try row["expires_at"].decode(String.self)),
            settledAt: try settledAt.map(PGTime.date))
    }

    private static func jsonArray(_ values: [String]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(values), as: UTF8.self)
    }

    private static func jsonStrings(_ text: String, what: String) throws -> [String] {
        guard let values = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
            throw ConfigurationError("\(what) is not a JSON array of strings in the database")
        }
        return values
    }
}

/// The budget tables' timestamp text, identical to the SQLite store's: fixed-width ISO 8601 with `+00:00` and always
/// six fraction digits, so text order is time order.
enum PGTime {
    static func text(_ date: Date) -> String {
        let iso = Timestamp.iso(date)
        guard !iso.contains("."), iso.hasSuffix("+00:00") else { return iso }
        return String(iso.dropLast(6)) + ".000000+00:00"
    }

    static func date(_ text: String) throws -> Date {
        guard let date = Timestamp.parse(text) else {
            throw ConfigurationError("unreadable timestamp '\(text)' in the budget database")
        }
        return date
    }
}

/// Set once a key file was created inside a transaction, so the caller can remove it if the row is not committed.
private final class CreatedKeyFlag: Sendable {
    private let flag = Mutex(false)
    func set() { flag.withLock { $0 = true } }
    var isSet: Bool { flag.withLock { $0 } }
}
