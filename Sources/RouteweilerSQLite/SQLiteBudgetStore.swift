import Foundation
import GRDB
public import Routeweiler
import Synchronization

/// Budget envelopes and their draws in SQLite (SPEC §10, §13), in the same file as the trace unless told otherwise.
///
/// ```swift
/// let store = try SQLiteBudgetStore(path: "./routeweiler-traces.db")
/// _ = try await store.createEnvelope(BudgetEnvelope(id: "agent-42", capMinorUnits: 500, capCurrency: .usd,
///                                                   allowedRails: [.l402], ttlSeconds: 3600), now: Date())
/// let receipt = try await store.reserve(envelopeID: "agent-42", requestID: rid, idempotencyKey: rid,
///                                       amountMinorUnits: 21, rail: .l402, lease: .seconds(150), now: Date())
/// try await store.settle(drawID: receipt.receiptId, amountMinorUnits: 21, now: Date())
/// ```
///
/// Every reservation is one `BEGIN IMMEDIATE` transaction: the envelope checks, the idempotency lookup, the cap
/// arithmetic, the signing key's check and the insert all happen under SQLite's write lock, so the cap holds across
/// tasks and across processes sharing the file. The receipt's signature is stored in the draw row, so a replay
/// returns the first receipt byte for byte and a failure to load the key leaves no reservation behind. The client's
/// reservation (``reserveSigningLater(envelopeID:requestID:idempotencyKey:amountMinorUnits:rail:lease:now:recording:in:)``)
/// stores the signature with the settlement instead, so the Ed25519 signature is made while the paid retry is on
/// the wire rather than before the payment.
///
/// Timestamps are written fixed-width (`2026-01-02T03:04:05.000000+00:00`, always six fraction digits) so that the
/// sweeper's string comparison `expires_at < now` is a correct time comparison.
///
/// A lock held by another process for longer than `busyTimeout` surfaces as ``StoreBusyError``.
public final class SQLiteBudgetStore: BudgetStore {
    /// The database file.
    public let path: String
    /// Where the envelope signing keys are.
    public let keystore: EnvelopeKeystore
    /// How long a transaction waits for another connection's lock.
    public let busyTimeout: TimeInterval
    private let pool: DatabasePool
    /// Loaded signing keys by envelope id (keys never rotate; each use re-checks the public key on the row).
    private let keys = Mutex<[String: EnvelopeSigningKey]>([:])
    /// Decoded envelope rows by id, with the row's text they came from: a reservation re-reads the row under the
    /// write lock every time, and decodes it again only when a column changed.
    private let decodedEnvelopes = Mutex<[String: (source: EnvelopeRowText, record: EnvelopeRecord)]>([:])
    /// Receipts of draws reserved by ``reserveSigningLater(envelopeID:requestID:idempotencyKey:amountMinorUnits:rail:lease:now:recording:in:)``
    /// and not signed yet, with their (checked) key, by draw id: signed when the draw is settled or released.
    private let unsignedReceipts = Mutex<[String: (receipt: DrawReceipt, key: EnvelopeSigningKey)]>([:])

    /// Opens (or creates) the database at `path` and runs the migrations.
    /// - Parameters:
    ///   - keystore: where signing keys are created and loaded (default `~/.routeweiler/keys`).
    ///   - busyTimeout: seconds to wait for a lock held by another connection (default 10).
    /// - Throws: ``StoreBusyError`` when the file stays locked; GRDB errors for an unreadable file.
    public init(path: String = "./routeweiler-traces.db", keystore: EnvelopeKeystore = EnvelopeKeystore(),
                busyTimeout: TimeInterval = 10) throws {
        self.path = path
        self.keystore = keystore
        self.busyTimeout = busyTimeout
        do {
            self.pool = try RouteweilerDatabase.open(path: path, busyTimeout: busyTimeout)
        } catch let error as DatabaseError where Self.isBusy(error) {
            throw Self.busyError(path: path, timeout: busyTimeout)
        }
    }

    /// A store on an open pool (shared with the other stores of the same file, see `useSQLite`).
    init(pool: DatabasePool, path: String, keystore: EnvelopeKeystore, busyTimeout: TimeInterval = 10) {
        self.path = path
        self.keystore = keystore
        self.busyTimeout = busyTimeout
        self.pool = pool
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

    /// Creates the key file and the row under the write lock, so no other process can interleave between the two
    /// (SPEC §16.15). A key file this call created is removed again if the row is not committed.
    private func create(_ spec: BudgetEnvelope, now: Date, ifAbsent: Bool) async throws -> EnvelopeRecord? {
        try spec.validate()
        let keystore = self.keystore
        let createdKey = KeyCreationFlag()
        let created = BudgetTime.text(now)
        let expires = BudgetTime.text(now.addingTimeInterval(TimeInterval(spec.ttlSeconds)))
        let rails = try Self.jsonArray(spec.allowedRails.map(\.rawValue))
        let globs = try Self.jsonArray(spec.allowedOriginsGlob)
        do {
            return try await write { db -> EnvelopeRecord? in
                if try Bool.fetchOne(db, sql: "SELECT 1 FROM envelopes WHERE id = ?", arguments: [spec.id]) == true {
                    if ifAbsent { return nil }
                    throw EnvelopeExistsError(envelopeID: spec.id)
                }
                let key = try keystore.create(envelopeID: spec.id)
                createdKey.set()
                try db.execute(
                    sql: """
                        INSERT INTO envelopes(id, cap_minor_units, cap_currency, allowed_rails, allowed_origins_glob,
                          status, created_at, expires_at, counter_public_key, owner_agent_id)
                        VALUES (?,?,?,?,?,?,?,?,?,?)
                        """,
                    arguments: [spec.id, spec.capMinorUnits, spec.capCurrency.code, rails, globs,
                                EnvelopeStatus.active.rawValue, created, expires, key.publicKeyBase64,
                                spec.ownerAgentID])
                return EnvelopeRecord(
                    id: spec.id, capMinorUnits: spec.capMinorUnits, capCurrency: spec.capCurrency,
                    allowedRails: spec.allowedRails, allowedOriginsGlob: spec.allowedOriginsGlob, status: .active,
                    createdAt: try BudgetTime.date(created), expiresAt: try BudgetTime.date(expires),
                    counterPublicKey: key.publicKeyBase64, ownerAgentID: spec.ownerAgentID)
            }
        } catch {
            if createdKey.isSet { try? keystore.delete(envelopeID: spec.id) }
            if let db = error as? DatabaseError, db.resultCode == .SQLITE_CONSTRAINT {
                throw EnvelopeExistsError(envelopeID: spec.id)
            }
            throw error
        }
    }

    public func envelope(id: String) async throws -> EnvelopeRecord? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM envelopes WHERE id = ?", arguments: [id]).map(Self.envelope(from:))
        }
    }

    public func envelopes() async throws -> [EnvelopeRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM envelopes ORDER BY created_at, id").map(Self.envelope(from:))
        }
    }

    public func balance(envelopeID: String) async throws -> EnvelopeBalance {
        try await read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM envelopes WHERE id = ?", arguments: [envelopeID])
            else { throw EnvelopeNotFoundError(envelopeID: envelopeID) }
            let envelope = try Self.envelope(from: row)
            let (reserved, settled) = Self.sums(row)
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
        return try await reserve(
            Reservation(envelopeID: envelopeID, requestID: requestID, idempotencyKey: idempotencyKey,
                        amountMinorUnits: amountMinorUnits, rail: rail, now: now, leaseSeconds: leaseSeconds),
            intent: nil, signNow: true)
    }

    /// Reserves and journals the intent in one transaction when `journal` is an ``SQLitePaymentJournal`` on this
    /// store's database (as `useSQLite` sets up); otherwise reserves, then begins the intent.
    public func reserve(envelopeID: String, requestID: String, idempotencyKey: String, amountMinorUnits: Int64,
                        rail: RailID, lease: Duration, now: Date, recording intent: PaymentIntent,
                        in journal: any PaymentJournal) async throws -> DrawReceipt {
        try await reserveRecording(envelopeID: envelopeID, requestID: requestID, idempotencyKey: idempotencyKey,
                                   amountMinorUnits: amountMinorUnits, rail: rail, lease: lease, now: now,
                                   intent: intent, journal: journal, signNow: true)
    }

    /// Reserves and journals the intent in one transaction like
    /// ``reserve(envelopeID:requestID:idempotencyKey:amountMinorUnits:rail:lease:now:recording:in:)``, with the
    /// signing key checked against the envelope's row, but returns the receipt unsigned: its signature is made
    /// outside the write lock when the draw is settled or released, and stored with that change (a replay, the
    /// sweeper or ``receipt(drawID:)`` sign a row still without one).
    ///
    /// `check` runs inside the transaction, after its statements and before the commit (when the transaction waits
    /// in the writer's queue, on the calling thread meanwhile): if it throws, the transaction rolls back and its
    /// error is thrown, also when the store itself refused the reservation.
    public func reserveSigningLater(envelopeID: String, requestID: String, idempotencyKey: String,
                                    amountMinorUnits: Int64, rail: RailID, lease: Duration, now: Date,
                                    recording intent: PaymentIntent, in journal: any PaymentJournal,
                                    committingOnlyIf check: DeferredOfferCheck?) async throws -> DrawReceipt
    {
        do {
            return try await reserveRecording(
                envelopeID: envelopeID, requestID: requestID, idempotencyKey: idempotencyKey,
                amountMinorUnits: amountMinorUnits, rail: rail, lease: lease, now: now, intent: intent,
                journal: journal, signNow: false, check: check)
        } catch {
            try check?.run()  // the offer's failure is the reason, whatever else refused it
            throw error
        }
    }

    /// The two above: one transaction with a journal on this database, else the two-step fallback (signed at once).
    private func reserveRecording(envelopeID: String, requestID: String, idempotencyKey: String,
                                  amountMinorUnits: Int64, rail: RailID, lease: Duration, now: Date,
                                  intent: PaymentIntent, journal: any PaymentJournal, signNow: Bool,
                                  check: DeferredOfferCheck? = nil) async throws -> DrawReceipt
    {
        guard let sqliteJournal = journal as? SQLitePaymentJournal, sqliteJournal.pool === pool else {
            try check?.run()
            return try await reserveThenBegin(envelopeID: envelopeID, requestID: requestID,
                                              idempotencyKey: idempotencyKey, amountMinorUnits: amountMinorUnits,
                                              rail: rail, lease: lease, now: now, recording: intent, in: journal)
        }
        let leaseSeconds = try Self.checkedReservation(amountMinorUnits: amountMinorUnits, lease: lease,
                                                       idempotencyKey: idempotencyKey)
        return try await reserve(
            Reservation(envelopeID: envelopeID, requestID: requestID, idempotencyKey: idempotencyKey,
                        amountMinorUnits: amountMinorUnits, rail: rail, now: now, leaseSeconds: leaseSeconds),
            intent: (intent, try SQLitePaymentJournal.detailsJSON(intent)), signNow: signNow, check: check)
    }

    /// Settles and resolves the intent in one transaction when `journal` is an ``SQLitePaymentJournal`` on this
    /// store's database.
    public func settle(drawID: String, amountMinorUnits: Int64, now: Date, resolving intentID: String, proof: String?,
                       in journal: any PaymentJournal) async throws {
        guard let sqliteJournal = journal as? SQLitePaymentJournal, sqliteJournal.pool === pool else {
            return try await settleThenResolve(drawID: drawID, amountMinorUnits: amountMinorUnits, now: now,
                                               resolving: intentID, proof: proof, in: journal)
        }
        try Self.checkedSettlement(amountMinorUnits: amountMinorUnits)
        let settledAt = BudgetTime.text(now)
        let signature = signatureMadeLater(drawID: drawID)
        try await write { db in
            try self.settle(db, drawID: drawID, amountMinorUnits: amountMinorUnits, settledAt: settledAt,
                            signature: signature)
            try SQLitePaymentJournal.resolve(id: intentID, state: .succeeded, proof: proof, now: now, db)
        }
    }

    /// One `BEGIN IMMEDIATE` transaction: the reservation and, when given, the payment intent that names its draw.
    ///
    /// With `signNow`, the calling thread signs the receipt before the transaction, or while the writer's queue
    /// opens it when the transaction is queued behind others (whichever of the two gets to the receipt first signs
    /// it: the writer takes the caller's signature if the envelope row is still the one it was made for). So the
    /// Ed25519 signature is made once, and in the common case not under the write lock. Without, the new draw's
    /// receipt waits in ``unsignedReceipts`` for its settlement or release.
    private func reserve(_ reservation: Reservation, intent: (PaymentIntent, details: String)?, signNow: Bool,
                         check: DeferredOfferCheck? = nil) async throws -> DrawReceipt
    {
        let presigned = signNow ? ReceiptPresigning() : nil
        let (receipt, signLaterWith) = try await write({ db in
            let made = try self.reserve(db, reservation, presigned: presigned)
            if var (intent, details) = intent {
                intent.drawID = made.receipt.receiptId
                do {
                    try SQLitePaymentJournal.insert(intent, details: details, db)
                } catch {
                    throw JournalWriteError(cause: error)  // rolls the reservation back with it
                }
            }
            try check?.run()  // an offer that fails it rolls everything back
            return made
        }, whileQueued: {
            presigned?.presign { presignedReceipt(reservation) }
        }, onlyIfQueued: {
            _ = try? check?.run()  // not on the writer's thread, under the lock
        })
        if let signLaterWith {
            unsignedReceipts.withLock { $0[receipt.receiptId] = (receipt, signLaterWith) }
        }
        return receipt
    }

    /// The signature of a draw reserved unsigned by this store, made now (outside any transaction) and forgotten
    /// here; `nil` when this store holds no unsigned receipt for it.
    private func signatureMadeLater(drawID: String) -> String? {
        guard let (receipt, key) = unsignedReceipts.withLock({ $0.removeValue(forKey: drawID) }) else { return nil }
        return try? key.signature(for: receipt)
    }

    /// Stores the signature of a draw whose row has none: `made` when given, otherwise one made now from the row
    /// (after a restart, or for a draw reserved by another process). Best effort: a key that cannot be loaded
    /// leaves the row unsigned (``unverifiedDraws(envelopeID:)`` reports it) rather than failing the settlement or
    /// release that carries it.
    private func storeMissingSignature(_ db: Database, drawID: String, made: String?) throws {
        if let made {
            try db.execute(sql: "UPDATE draws SET signature = ? WHERE id = ? AND signature IS NULL",
                           arguments: [made, drawID])
            return
        }
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM draws WHERE id = ? AND signature IS NULL",
                                         arguments: [drawID]),
            let envelopeRow = try Row.fetchOne(db, sql: "SELECT * FROM envelopes WHERE id = ?",
                                               arguments: [row["envelope_id"] as String])
        else { return }
        let envelope = try Self.envelope(from: envelopeRow)
        let receipt = Self.receipt(for: try Self.draw(from: row), envelope: envelope)
        guard let signature = try? self.signingKey(for: envelope).signature(for: receipt) else { return }
        try db.execute(sql: "UPDATE draws SET signature = ? WHERE id = ?", arguments: [signature, drawID])
    }

    /// The new draw's receipt, signed, as it will be if the envelope row has not changed since it was last decoded;
    /// `nil` when this envelope was not used yet by this store.
    private func presignedReceipt(_ reservation: Reservation) -> DrawReceipt? {
        guard let envelope = decodedEnvelopes.withLock({ $0[reservation.envelopeID]?.record }),
            let key = keys.withLock({ $0[envelope.id] })
        else { return nil }
        var receipt = reservation.receipt(envelope: envelope)
        guard let signature = try? key.signature(for: receipt) else { return nil }
        receipt.signature = signature
        return receipt
    }

    /// The reservation itself, inside the caller's write transaction (SPEC §10.3). Without `presigned` the new
    /// draw is inserted unsigned and its key is returned with its receipt, to sign it later.
    ///
    /// The idempotency lookup is the insert's own UNIQUE conflict: a key already used inserts nothing and is
    /// answered with the stored receipt. A reservation the rail or the cap would refuse looks the key up first, so
    /// a replay is answered whatever the envelope says now.
    private func reserve(_ db: Database, _ r: Reservation, presigned: ReceiptPresigning?) throws
        -> (receipt: DrawReceipt, signLaterWith: EnvelopeSigningKey?)
    {
        let select = try RawStatement(db, EnvelopeRowText.select)
        select.bind(1, r.envelopeID)
        guard try select.step() else {
            select.reset()
            throw EnvelopeNotFoundError(envelopeID: r.envelopeID)
        }
        let text = EnvelopeRowText(select)
        let (reserved, settled) = (select.int64(10), select.int64(11))
        select.reset()
        let envelope = try self.envelope(cachedFrom: text, db)
        guard envelope.status == .active else {
            throw EnvelopeFrozenError(envelopeID: r.envelopeID, status: envelope.status)
        }
        guard r.now < envelope.expiresAt else { throw EnvelopeExpiredError(envelopeID: r.envelopeID) }

        let available = envelope.capMinorUnits - reserved - settled
        guard envelope.allowedRails.contains(r.rail), r.amountMinorUnits <= available else {
            let existing = try RawStatement(db, "SELECT 1 FROM draws WHERE envelope_id = ? AND idempotency_key = ?")
            existing.bind(1, r.envelopeID)
            existing.bind(2, r.idempotencyKey)
            let isReplay = try existing.step()
            existing.reset()
            if isReplay { return (try replay(db, r, envelope: envelope), nil) }
            guard envelope.allowedRails.contains(r.rail) else {
                throw RailNotAllowedError(envelopeID: r.envelopeID, rail: r.rail)
            }
            // A revived draw can settle above its reservation, so `available` may be negative; report 0.
            throw BudgetExceededError(envelopeID: r.envelopeID, requestedMinorUnits: r.amountMinorUnits,
                                      availableMinorUnits: max(0, available))
        }
        // The key is checked against the envelope's public key when it is loaded: a swapped key file refuses the
        // reservation before anything is written, signed now or later.
        let key = try self.signingKey(for: envelope)
        var receipt = r.receipt(envelope: envelope)
        if let presigned {
            if let signed = presigned.take(), signed.withSignature("") == receipt {
                receipt.signature = signed.signature
            } else {
                receipt.signature = try key.signature(for: receipt)
            }
        }
        let insert = try RawStatement(db, """
            INSERT INTO draws(id, envelope_id, request_id, idempotency_key, amount_reserved_minor_units,
              amount_settled_minor_units, rail_quoted, state, issued_at, expires_at, settled_at, signature)
            VALUES (?,?,?,?,?,NULL,?,'reserved',?,?,NULL,?)
            ON CONFLICT(envelope_id, idempotency_key) DO NOTHING
            """)
        insert.bind(1, r.drawID)
        insert.bind(2, r.envelopeID)
        insert.bind(3, r.requestID)
        insert.bind(4, r.idempotencyKey)
        insert.bind(5, r.amountMinorUnits)
        insert.bind(6, r.rail.rawValue)
        insert.bind(7, r.issuedText)
        insert.bind(8, r.expiresText)
        insert.bind(9, presigned == nil ? nil : receipt.signature)
        try insert.run()
        if db.changesCount == 0 { return (try replay(db, r, envelope: envelope), nil) }
        return (receipt, presigned == nil ? key : nil)
    }

    /// Idempotent replay: whatever the existing row's state, its receipt (a released key stays burned).
    private func replay(_ db: Database, _ r: Reservation, envelope: EnvelopeRecord) throws -> DrawReceipt {
        guard let existing = try Row.fetchOne(
            db, sql: "SELECT * FROM draws WHERE envelope_id = ? AND idempotency_key = ?",
            arguments: [r.envelopeID, r.idempotencyKey])
        else { throw DrawNotFoundError(drawID: r.idempotencyKey) }
        let draw = try Self.draw(from: existing)
        var receipt = Self.receipt(for: draw, envelope: envelope)
        if let signature: String = existing["signature"], !signature.isEmpty {
            receipt.signature = signature
        } else {
            // Reserved to be signed later, or a row from before signatures were stored: sign once and keep it.
            receipt.signature = try signatureMadeLater(drawID: draw.id)
                ?? self.signingKey(for: envelope).signature(for: receipt)
            try db.execute(sql: "UPDATE draws SET signature = ? WHERE id = ?", arguments: [receipt.signature, draw.id])
        }
        return receipt
    }

    /// Settles a draw at the amount actually paid.
    ///
    /// A `reserved` draw becomes `settled`. A `rolled_back` draw (the sweeper released it while its payment was in
    /// flight) is settled too, because the money moved (SPEC §16.6): the spend is recorded even if that takes the
    /// envelope over its cap. A `settled` draw is left alone (the first amount stays).
    /// - Throws: ``DrawNotFoundError`` for an unknown id; ``ConfigurationError`` for a negative amount.
    public func settle(drawID: String, amountMinorUnits: Int64, now: Date) async throws {
        try Self.checkedSettlement(amountMinorUnits: amountMinorUnits)
        let settledAt = BudgetTime.text(now)
        let signature = signatureMadeLater(drawID: drawID)
        try await write { db in
            try self.settle(db, drawID: drawID, amountMinorUnits: amountMinorUnits, settledAt: settledAt,
                            signature: signature)
        }
    }

    /// The settlement inside a write transaction, storing the receipt's signature if the row has none yet (the one
    /// made ahead, `signature`, or one made from the row).
    private func settle(_ db: Database, drawID: String, amountMinorUnits: Int64, settledAt: String,
                        signature: String?) throws {
        guard let row = try Row.fetchOne(
            db.cachedStatement(sql: "SELECT state, signature IS NULL AS unsigned FROM draws WHERE id = ?"),
            arguments: [drawID])
        else { throw DrawNotFoundError(drawID: drawID) }
        let state: String = row["state"]
        let unsigned: Bool = row["unsigned"]
        if state != DrawState.settled.rawValue {
            try db.cachedStatement(sql: """
                UPDATE draws SET state = 'settled', amount_settled_minor_units = ?, settled_at = ?,
                  signature = coalesce(signature, ?) WHERE id = ?
                """).execute(arguments: [amountMinorUnits, settledAt, signature, drawID])
            if unsigned, signature == nil { try storeMissingSignature(db, drawID: drawID, made: nil) }
        } else if unsigned {
            try storeMissingSignature(db, drawID: drawID, made: signature)
        }
    }

    /// Releases a `reserved` draw (its payment did not happen). No-op for a settled or already released draw.
    /// - Throws: ``DrawNotFoundError`` for an unknown id.
    public func release(drawID: String, now: Date) async throws {
        let signature = signatureMadeLater(drawID: drawID)
        try await write { db in
            try db.execute(sql: "UPDATE draws SET state = 'rolled_back' WHERE id = ? AND state = 'reserved'",
                           arguments: [drawID])
            if db.changesCount == 0,
                try Bool.fetchOne(db, sql: "SELECT 1 FROM draws WHERE id = ?", arguments: [drawID]) != true
            {
                throw DrawNotFoundError(drawID: drawID)
            }
            try self.storeMissingSignature(db, drawID: drawID, made: signature)
        }
    }

    /// Releases `reserved` draws whose lease ended before `now`, except those referenced by a `pending` payment
    /// intent (a payment whose outcome is unknown keeps its reservation until recovery resolves it).
    public func sweepExpired(now: Date) async throws -> Int {
        let cutoff = BudgetTime.text(now)
        return try await write { db in
            // Swept draws reserved to be signed later get their signature now (a no-op for signed rows). The ids
            // only: on SQLite 3.40 this RETURNING clause gave `signature IS NULL` as 0 for an unsigned row.
            let swept = try String.fetchAll(db, sql: Self.sweepSQL + " RETURNING id", arguments: [cutoff])
            for id in swept {
                try self.storeMissingSignature(db, drawID: id, made: self.signatureMadeLater(drawID: id))
            }
            return swept.count
        }
    }

    /// The sweep: envelope by envelope through `draws_envelope_state`, so it reads the reserved draws only.
    package static let sweepSQL = """
        UPDATE draws SET state = 'rolled_back'
        WHERE envelope_id IN (SELECT id FROM envelopes) AND state = 'reserved' AND expires_at < ?
          AND id NOT IN (SELECT draw_id FROM payment_intents WHERE state = 'pending' AND draw_id IS NOT NULL)
        """

    public func draws(envelopeID: String) async throws -> [DrawRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM draws WHERE envelope_id = ? ORDER BY issued_at, id",
                             arguments: [envelopeID]).map(Self.draw(from:))
        }
    }

    /// The stored receipt of a draw (rebuilt from its row, with the stored signature), or `nil` for an unknown id.
    public func receipt(drawID: String) async throws -> DrawReceipt? {
        let unsigned = try await read { db in
            try Bool.fetchOne(db, sql: "SELECT signature IS NULL FROM draws WHERE id = ?", arguments: [drawID])
        }
        if unsigned == true {
            // Reserved to be signed later: sign it now, once, so every later read returns the same bytes.
            let made = signatureMadeLater(drawID: drawID)
            try await write { db in try self.storeMissingSignature(db, drawID: drawID, made: made) }
        }
        return try await read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM draws WHERE id = ?", arguments: [drawID]),
                let envelopeRow = try Row.fetchOne(db, sql: "SELECT * FROM envelopes WHERE id = ?",
                                                   arguments: [row["envelope_id"] as String])
            else { return nil }
            var receipt = Self.receipt(for: try Self.draw(from: row), envelope: try Self.envelope(from: envelopeRow))
            receipt.signature = row["signature"] ?? ""
            return receipt
        }
    }

    /// Re-verifies the stored signature of every draw of the envelope against the envelope's key; returns the
    /// draws that fail, with the reason (empty when all verify). Detects rows edited by hand.
    /// - Throws: ``EnvelopeNotFoundError``.
    public func unverifiedDraws(envelopeID: String) async throws -> [(drawID: String, reason: String)] {
        let (envelope, rows) = try await read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM envelopes WHERE id = ?", arguments: [envelopeID])
            else { throw EnvelopeNotFoundError(envelopeID: envelopeID) }
            let draws = try Row.fetchAll(db, sql: "SELECT * FROM draws WHERE envelope_id = ? ORDER BY issued_at, id",
                                         arguments: [envelopeID])
            return (try Self.envelope(from: row), draws.map { StoredDraw(row: $0) })
        }
        var failures: [(drawID: String, reason: String)] = []
        for stored in rows {
            do {
                let draw = try stored.record()
                var receipt = Self.receipt(for: draw, envelope: envelope)
                guard let signature = stored.signature, !signature.isEmpty else {
                    throw ReceiptVerificationError(draw.state == .reserved
                        ? "draw \(draw.id) is reserved and not signed yet (its payment is in flight, or stopped before it settled)"
                        : "draw \(draw.id) has no stored signature")
                }
                receipt.signature = signature
                try receipt.verifySignature(publicKeyBase64: envelope.counterPublicKey)
            } catch let error as any RouteweilerError {
                failures.append((stored.id, error.message))
            } catch {
                failures.append((stored.id, "\(error)"))
            }
        }
        return failures
    }

    /// Verifies a receipt against the public key stored with its envelope (not the key inside the receipt).
    /// - Throws: ``ReceiptVerificationError`` when the envelope is unknown, the key differs, or the signature does
    ///   not cover the receipt's contents.
    public func verify(_ receipt: DrawReceipt) async throws {
        let key = try await read { db in
            try String.fetchOne(db, sql: "SELECT counter_public_key FROM envelopes WHERE id = ?",
                                arguments: [receipt.envelopeId])
        }
        guard let key else {
            throw ReceiptVerificationError(
                "receipt \(receipt.receiptId) names envelope '\(receipt.envelopeId)', which does not exist in \(path)")
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

    /// The envelope's running totals (kept by triggers on `draws`, migration v4): O(1) however many draws it has.
    private static func sums(_ envelopeRow: Row) -> (reserved: Int64, settled: Int64) {
        (envelopeRow["reserved_minor_units"] ?? 0, envelopeRow["settled_minor_units"] ?? 0)
    }

    /// ``envelope(from:)`` through ``decodedEnvelopes``: the row is decoded again (read through GRDB) only when one
    /// of its columns changed.
    private func envelope(cachedFrom text: EnvelopeRowText, _ db: Database) throws -> EnvelopeRecord {
        if let hit = decodedEnvelopes.withLock({ $0[text.id] }), hit.source == text { return hit.record }
        guard let row = try Row.fetchOne(db, sql: EnvelopeRowText.select, arguments: [text.id]) else {
            throw EnvelopeNotFoundError(envelopeID: text.id)
        }
        let record = try Self.envelope(from: row)
        decodedEnvelopes.withLock { $0[text.id] = (text, record) }
        return record
    }

    private static func envelope(from row: Row) throws -> EnvelopeRecord {
        let id: String = row["id"]
        let code: String = row["cap_currency"]
        let currency: Currency
        do { currency = try Currency(code: code) } catch {
            throw ConfigurationError("envelope '\(id)' has an unknown currency '\(code)' in the database")
        }
        return EnvelopeRecord(
            id: id, capMinorUnits: row["cap_minor_units"], capCurrency: currency,
            allowedRails: try jsonStrings(row["allowed_rails"], what: "allowed_rails of envelope '\(id)'").map { RailID($0) },
            allowedOriginsGlob: try jsonStrings(row["allowed_origins_glob"], what: "allowed_origins_glob of envelope '\(id)'"),
            status: EnvelopeStatus(row["status"]), createdAt: try BudgetTime.date(row["created_at"]),
            expiresAt: try BudgetTime.date(row["expires_at"]), counterPublicKey: row["counter_public_key"],
            ownerAgentID: row["owner_agent_id"])
    }

    fileprivate static func draw(from row: Row) throws -> DrawRecord {
        let id: String = row["id"]
        let stateText: String = row["state"]
        guard let state = DrawState(rawValue: stateText) else {
            throw ConfigurationError("draw \(id) has an unknown state '\(stateText)' in the database")
        }
        let settledAt: String? = row["settled_at"]
        let rail: String = row["rail_quoted"]
        return DrawRecord(
            id: id, envelopeID: row["envelope_id"], requestID: row["request_id"],
            idempotencyKey: row["idempotency_key"], amountReservedMinorUnits: row["amount_reserved_minor_units"],
            amountSettledMinorUnits: row["amount_settled_minor_units"], railQuoted: RailID(rail),
            state: state, issuedAt: try BudgetTime.date(row["issued_at"]), expiresAt: try BudgetTime.date(row["expires_at"]),
            settledAt: try settledAt.map(BudgetTime.date))
    }

    private static func jsonArray(_ values: [String]) throws -> String {
        String(decoding: try JSONEncoder().encode(values), as: UTF8.self)
    }

    private static func jsonStrings(_ text: String, what: String) throws -> [String] {
        guard let values = try? JSONDecoder().decode([String].self, from: Data(text.utf8)) else {
            throw ConfigurationError("\(what) is not a JSON array of strings in the database")
        }
        return values
    }

    // MARK: - Lock errors

    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T,
                                    whileQueued: () -> Void = {}, onlyIfQueued: () -> Void = {}) async throws -> T {
        do {
            return try await pool.immediateWrite(body, whileQueued: whileQueued, onlyIfQueued: onlyIfQueued)
        } catch let error as DatabaseError where Self.isBusy(error) {
            throw Self.busyError(path: path, timeout: busyTimeout)
        }
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.read(body) } catch let error as DatabaseError where Self.isBusy(error) {
            throw Self.busyError(path: path, timeout: busyTimeout)
        }
    }

    static func isBusy(_ error: DatabaseError) -> Bool {
        error.resultCode == .SQLITE_BUSY || error.resultCode == .SQLITE_LOCKED
    }

    static func busyError(path: String, timeout: TimeInterval) -> StoreBusyError {
        StoreBusyError(
            "the budget database \(path) is locked by another process or connection; gave up after waiting \(timeout) s")
    }
}

/// A draw row read for verification, decoded on its own so one unreadable row does not hide the others.
private struct StoredDraw: Sendable {
    var id: String
    var signature: String?
    var decoded: Result<DrawRecord, any Error>
    init(row: Row) {
        self.id = row["id"] ?? ""
        self.signature = row["signature"]
        self.decoded = Result { try SQLiteBudgetStore.draw(from: row) }
    }
    func record() throws -> DrawRecord { try decoded.get() }
}

/// The columns an ``EnvelopeRecord`` is decoded from, as stored (the running totals are not part of it), read by
/// position from a row of ``select``.
private struct EnvelopeRowText: Equatable, Sendable {
    /// The envelope row for a reservation: the decoded columns first (in this order), then the running totals.
    static let select = """
        SELECT id, cap_minor_units, cap_currency, allowed_rails, allowed_origins_glob, status, created_at, expires_at,
          counter_public_key, owner_agent_id, reserved_minor_units, settled_minor_units
        FROM envelopes WHERE id = ?
        """
    var id: String
    var cap: Int64
    var texts: [String?]
    init(_ statement: RawStatement) {
        id = statement.text(0) ?? ""
        cap = statement.int64(1)
        texts = (2...9).map { statement.text($0) }
    }
}

extension DrawReceipt {
    fileprivate func withSignature(_ signature: String) -> DrawReceipt {
        var copy = self
        copy.signature = signature
        return copy
    }
}

/// A reservation's arguments, and what its draw row will hold (computed before the transaction).
private struct Reservation: Sendable {
    var envelopeID: String
    var requestID: String
    var idempotencyKey: String
    var amountMinorUnits: Int64
    var rail: RailID
    var now: Date
    var drawID: String
    var issuedText: String
    var expiresText: String
    var issuedAt: Date
    var expiresAt: Date

    init(envelopeID: String, requestID: String, idempotencyKey: String, amountMinorUnits: Int64, rail: RailID,
         now: Date, leaseSeconds: Double) throws {
        self.envelopeID = envelopeID
        self.requestID = requestID
        self.idempotencyKey = idempotencyKey
        self.amountMinorUnits = amountMinorUnits
        self.rail = rail
        self.now = now
        drawID = UUIDv7.make(now: now)
        issuedText = BudgetTime.text(now)
        expiresText = BudgetTime.text(now.addingTimeInterval(leaseSeconds))
        // As the row will read back (microseconds), so that a receipt rebuilt from the row is the same.
        issuedAt = try BudgetTime.date(issuedText)
        expiresAt = try BudgetTime.date(expiresText)
    }

    /// The unsigned receipt of the new draw.
    func receipt(envelope: EnvelopeRecord) -> DrawReceipt {
        DrawReceipt(receiptId: drawID, envelopeId: envelopeID, requestId: requestID, idempotencyKey: idempotencyKey,
                    amountReservedMinorUnits: amountMinorUnits, amountReservedCurrency: envelope.capCurrency,
                    railQuoted: rail, issuedAt: issuedAt, expiresAt: expiresAt,
                    counterPublicKey: envelope.counterPublicKey, signature: "")
    }
}

/// Set once a key file was created inside a transaction, so the caller can remove it if the row is not committed.
private final class KeyCreationFlag: Sendable {
    private let flag = Mutex(false)
    func set() { flag.withLock { $0 = true } }
    var isSet: Bool { flag.withLock { $0 } }
}

/// The timestamp text of the budget tables and the payment journal: fixed-width ISO 8601 with `+00:00` and always
/// six fraction digits, so string order is time order.
enum BudgetTime {
    static func text(_ date: Date) -> String { Timestamp.isoFixedWidth(date) }

    static func date(_ text: String) throws -> Date {
        guard let date = Timestamp.parse(text) else {
            throw ConfigurationError("unreadable timestamp '\(text)' in the budget database")
        }
        return date
    }
}

/// Who signs a reservation's receipt: the calling thread, while the writer's queue opens the transaction, or the
/// writer, when it gets to the receipt before the caller has started (the caller may be running an offer's check).
/// Exactly one of them signs.
final class ReceiptPresigning: Sendable {
    private enum State: Sendable {
        case open
        case callerSigning
        case writerSigns
        case signed(DrawReceipt?)
    }
    private let state = Mutex<State>(.open)
    private let ready = DispatchSemaphore(value: 0)

    /// The caller: makes the receipt unless the writer has already claimed it.
    func presign(_ make: () -> DrawReceipt?) {
        let mine = state.withLock { state -> Bool in
            guard case .open = state else { return false }
            state = .callerSigning
            return true
        }
        guard mine else { return }
        let receipt = make()
        state.withLock { $0 = .signed(receipt) }
        ready.signal()
    }

    /// The writer: the caller's receipt (waiting while it is being made), or `nil` when the writer signs itself,
    /// either because it got there first or because the caller could not make one.
    func take() -> DrawReceipt? {
        let wait = state.withLock { state -> Bool in
            switch state {
            case .open:
                state = .writerSigns
                return false
            case .callerSigning:
                return true
            case .writerSigns, .signed:
                return false
            }
        }
        if wait { ready.wait() }
        return state.withLock { state in
            if case .signed(let receipt) = state { return receipt }
            return nil
        }
    }
}
