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
/// arithmetic, the insert and the receipt signature all happen under SQLite's write lock, so the cap holds across
/// tasks and across processes sharing the file. The signature is stored in the draw row, so a replay returns the
/// first receipt byte for byte and a failure to load the key leaves no reservation behind.
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
        let leaseSeconds = try Self.checkedLease(amountMinorUnits: amountMinorUnits, lease: lease,
                                                 idempotencyKey: idempotencyKey)
        return try await write { db in
            try self.reserve(db, envelopeID: envelopeID, requestID: requestID, idempotencyKey: idempotencyKey,
                             amountMinorUnits: amountMinorUnits, rail: rail, leaseSeconds: leaseSeconds, now: now)
        }
    }

    /// Reserves and journals the intent in one transaction when `journal` is an ``SQLitePaymentJournal`` on this
    /// store's database (as `useSQLite` sets up); otherwise reserves, then begins the intent.
    public func reserve(envelopeID: String, requestID: String, idempotencyKey: String, amountMinorUnits: Int64,
                        rail: RailID, lease: Duration, now: Date, recording intent: PaymentIntent,
                        in journal: any PaymentJournal) async throws -> DrawReceipt {
        guard let sqliteJournal = journal as? SQLitePaymentJournal, sqliteJournal.pool === pool else {
            return try await reserveThenBegin(envelopeID: envelopeID, requestID: requestID,
                                              idempotencyKey: idempotencyKey, amountMinorUnits: amountMinorUnits,
                                              rail: rail, lease: lease, now: now, recording: intent, in: journal)
        }
        let leaseSeconds = try Self.checkedLease(amountMinorUnits: amountMinorUnits, lease: lease,
                                                 idempotencyKey: idempotencyKey)
        let details = try SQLitePaymentJournal.detailsJSON(intent)
        return try await write { db in
            let receipt = try self.reserve(db, envelopeID: envelopeID, requestID: requestID,
                                           idempotencyKey: idempotencyKey, amountMinorUnits: amountMinorUnits,
                                           rail: rail, leaseSeconds: leaseSeconds, now: now)
            var intent = intent
            intent.drawID = receipt.receiptId
            do {
                try SQLitePaymentJournal.insert(intent, details: details, db)
            } catch {
                throw JournalWriteError(cause: error)  // rolls the reservation back with it
            }
            return receipt
        }
    }

    /// Settles and resolves the intent in one transaction when `journal` is an ``SQLitePaymentJournal`` on this
    /// store's database.
    public func settle(drawID: String, amountMinorUnits: Int64, now: Date, resolving intentID: String, proof: String?,
                       in journal: any PaymentJournal) async throws {
        guard let sqliteJournal = journal as? SQLitePaymentJournal, sqliteJournal.pool === pool else {
            return try await settleThenResolve(drawID: drawID, amountMinorUnits: amountMinorUnits, now: now,
                                               resolving: intentID, proof: proof, in: journal)
        }
        guard amountMinorUnits >= 0 else {
            throw ConfigurationError("a settled amount cannot be negative, got \(amountMinorUnits) minor units")
        }
        let settledAt = BudgetTime.text(now)
        try await write { db in
            try Self.settle(db, drawID: drawID, amountMinorUnits: amountMinorUnits, settledAt: settledAt)
            try SQLitePaymentJournal.resolve(id: intentID, state: .succeeded, proof: proof, now: now, db)
        }
    }

    /// Checks a reservation's arguments; returns the lease in seconds.
    private static func checkedLease(amountMinorUnits: Int64, lease: Duration, idempotencyKey: String) throws -> Double {
        guard amountMinorUnits > 0 else {
            throw ConfigurationError("a reservation must be positive, got \(amountMinorUnits) minor units")
        }
        let leaseSeconds = Double(lease.components.seconds) + Double(lease.components.attoseconds) / 1e18
        guard leaseSeconds > 0 else { throw ConfigurationError("a reservation lease must be positive, got \(lease)") }
        guard !idempotencyKey.isEmpty else { throw ConfigurationError("a reservation needs an idempotency key") }
        return leaseSeconds
    }

    /// The reservation itself, inside the caller's write transaction.
    private func reserve(_ db: Database, envelopeID: String, requestID: String, idempotencyKey: String,
                         amountMinorUnits: Int64, rail: RailID, leaseSeconds: Double, now: Date) throws -> DrawReceipt {
            guard let row = try Row.fetchOne(db.cachedStatement(sql: EnvelopeRowText.select), arguments: [envelopeID])
            else { throw EnvelopeNotFoundError(envelopeID: envelopeID) }
            let envelope = try self.envelope(cachedFrom: row)
            guard envelope.status == .active else {
                throw EnvelopeFrozenError(envelopeID: envelopeID, status: envelope.status)
            }
            guard now < envelope.expiresAt else { throw EnvelopeExpiredError(envelopeID: envelopeID) }

            // Idempotent replay: whatever the row's state, return its receipt (a released key stays burned).
            if let existing = try Row.fetchOne(
                db.cachedStatement(sql: "SELECT * FROM draws WHERE envelope_id = ? AND idempotency_key = ?"),
                arguments: [envelopeID, idempotencyKey])
            {
                let draw = try Self.draw(from: existing)
                var receipt = Self.receipt(for: draw, envelope: envelope)
                if let signature: String = existing["signature"], !signature.isEmpty {
                    receipt.signature = signature
                } else {
                    // A row from before signatures were stored: sign once and keep it.
                    receipt.signature = try self.signingKey(for: envelope).signature(for: receipt)
                    try db.execute(sql: "UPDATE draws SET signature = ? WHERE id = ?",
                                   arguments: [receipt.signature, draw.id])
                }
                return receipt
            }

            guard envelope.allowedRails.contains(rail) else {
                throw RailNotAllowedError(envelopeID: envelopeID, rail: rail)
            }
            let (reserved, settled) = Self.sums(row)
            let available = envelope.capMinorUnits - reserved - settled
            guard amountMinorUnits <= available else {
                // A revived draw can settle above its reservation, so `available` may be negative; report 0.
                throw BudgetExceededError(envelopeID: envelopeID, requestedMinorUnits: amountMinorUnits,
                                          availableMinorUnits: max(0, available))
            }
            let issued = BudgetTime.text(now)
            let expires = BudgetTime.text(now.addingTimeInterval(leaseSeconds))
            let draw = DrawRecord(
                id: UUIDv7.make(now: now), envelopeID: envelopeID, requestID: requestID, idempotencyKey: idempotencyKey,
                amountReservedMinorUnits: amountMinorUnits, amountSettledMinorUnits: nil, railQuoted: rail,
                state: .reserved, issuedAt: try BudgetTime.date(issued), expiresAt: try BudgetTime.date(expires), settledAt: nil)
            var receipt = Self.receipt(for: draw, envelope: envelope)
            // The key was checked against the envelope's public key when it was loaded.
            receipt.signature = try self.signingKey(for: envelope).signature(for: receipt)
            try db.cachedStatement(
                sql: """
                    INSERT INTO draws(id, envelope_id, request_id, idempotency_key, amount_reserved_minor_units,
                      amount_settled_minor_units, rail_quoted, state, issued_at, expires_at, settled_at, signature)
                    VALUES (?,?,?,?,?,NULL,?,?,?,?,NULL,?)
                    """
            ).execute(
                arguments: [draw.id, envelopeID, requestID, idempotencyKey, amountMinorUnits, rail.rawValue,
                            DrawState.reserved.rawValue, issued, expires, receipt.signature])
            return receipt
    }

    /// Settles a draw at the amount actually paid.
    ///
    /// A `reserved` draw becomes `settled`. A `rolled_back` draw (the sweeper released it while its payment was in
    /// flight) is settled too, because the money moved (SPEC §16.6): the spend is recorded even if that takes the
    /// envelope over its cap. A `settled` draw is left alone (the first amount stays).
    /// - Throws: ``DrawNotFoundError`` for an unknown id; ``ConfigurationError`` for a negative amount.
    public func settle(drawID: String, amountMinorUnits: Int64, now: Date) async throws {
        guard amountMinorUnits >= 0 else {
            throw ConfigurationError("a settled amount cannot be negative, got \(amountMinorUnits) minor units")
        }
        let settledAt = BudgetTime.text(now)
        try await write { db in
            try Self.settle(db, drawID: drawID, amountMinorUnits: amountMinorUnits, settledAt: settledAt)
        }
    }

    private static func settle(_ db: Database, drawID: String, amountMinorUnits: Int64, settledAt: String) throws {
        guard let state = try String.fetchOne(db.cachedStatement(sql: "SELECT state FROM draws WHERE id = ?"),
                                              arguments: [drawID])
        else { throw DrawNotFoundError(drawID: drawID) }
        guard state != DrawState.settled.rawValue else { return }
        try db.cachedStatement(
            sql: "UPDATE draws SET state = 'settled', amount_settled_minor_units = ?, settled_at = ? WHERE id = ?"
        ).execute(arguments: [amountMinorUnits, settledAt, drawID])
    }

    /// Releases a `reserved` draw (its payment did not happen). No-op for a settled or already released draw.
    /// - Throws: ``DrawNotFoundError`` for an unknown id.
    public func release(drawID: String, now: Date) async throws {
        try await write { db in
            try db.execute(sql: "UPDATE draws SET state = 'rolled_back' WHERE id = ? AND state = 'reserved'",
                           arguments: [drawID])
            if db.changesCount == 0,
                try Bool.fetchOne(db, sql: "SELECT 1 FROM draws WHERE id = ?", arguments: [drawID]) != true
            {
                throw DrawNotFoundError(drawID: drawID)
            }
        }
    }

    /// Releases `reserved` draws whose lease ended before `now`, except those referenced by a `pending` payment
    /// intent (a payment whose outcome is unknown keeps its reservation until recovery resolves it).
    public func sweepExpired(now: Date) async throws -> Int {
        let cutoff = BudgetTime.text(now)
        return try await write { db in
            try db.execute(
                sql: """
                    UPDATE draws SET state = 'rolled_back'
                    WHERE state = 'reserved' AND expires_at < ?
                      AND id NOT IN (SELECT draw_id FROM payment_intents WHERE state = 'pending' AND draw_id IS NOT NULL)
                    """,
                arguments: [cutoff])
            return db.changesCount
        }
    }

    public func draws(envelopeID: String) async throws -> [DrawRecord] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM draws WHERE envelope_id = ? ORDER BY issued_at, id",
                             arguments: [envelopeID]).map(Self.draw(from:))
        }
    }

    /// The stored receipt of a draw (rebuilt from its row, with the stored signature), or `nil` for an unknown id.
    public func receipt(drawID: String) async throws -> DrawReceipt? {
        try await read { db in
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
                    throw ReceiptVerificationError("draw \(draw.id) has no stored signature")
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

    /// ``envelope(from:)`` through ``decodedEnvelopes``.
    private func envelope(cachedFrom row: Row) throws -> EnvelopeRecord {
        let text = EnvelopeRowText(row)
        if let hit = decodedEnvelopes.withLock({ $0[text.id] }), hit.source == text { return hit.record }
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

    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do { return try await pool.immediateWrite(body) } catch let error as DatabaseError where Self.isBusy(error) {
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
    init(_ row: Row) {
        id = row[0] ?? ""
        cap = row[1] ?? 0
        texts = (2...9).map { row[$0] }
    }
}

/// Set once a key file was created inside a transaction, so the caller can remove it if the row is not committed.
private final class KeyCreationFlag: Sendable {
    private let flag = Mutex(false)
    func set() { flag.withLock { $0 = true } }
    var isSet: Bool { flag.withLock { $0 } }
}

/// The budget tables' timestamp text: fixed-width ISO 8601 with `+00:00` and always six fraction digits, so string
/// order is time order.
enum BudgetTime {
    static func text(_ date: Date) -> String { Timestamp.isoFixedWidth(date) }

    static func date(_ text: String) throws -> Date {
        guard let date = Timestamp.parse(text) else {
            throw ConfigurationError("unreadable timestamp '\(text)' in the budget database")
        }
        return date
    }
}
