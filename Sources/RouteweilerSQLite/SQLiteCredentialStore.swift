import Foundation
import GRDB
public import Routeweiler
import Synchronization

/// Keeps paid credentials in the `credentials` table of the shared 0600 database, for reuse across calls and
/// processes. A credential is a bearer secret; it is never written to the trace.
public final class SQLiteCredentialStore: CredentialStore {
    private let pool: DatabasePool
    /// Decoded credentials by id, with the row text they came from (the secrets stay in this process's memory,
    /// as they do once read).
    private let decoded = Mutex<[String: (source: CachedText, credential: StoredCredential)]>([:])

    public init(path: String) throws {
        self.pool = try RouteweilerDatabase.open(path: path)
        self.lookupConnection = Self.openLookupConnection(path: path)
    }

    /// A store on an open pool (shared with the other stores of the same file, see `useSQLite`).
    init(pool: DatabasePool) {
        self.pool = pool
        self.lookupConnection = Self.openLookupConnection(path: pool.path)
    }

    private let lookupConnection: DatabaseQueue?

    private static func openLookupConnection(path: String) -> DatabaseQueue? {
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(10)
        return try? DatabaseQueue(path: path, configuration: config)
    }

    struct Payload: Codable {
        var origin: String
        var scope: String
        var headerName: String
        var headerValue: String
    }

    public func store(_ credential: StoredCredential) async throws {
        let payload = Payload(origin: credential.origin, scope: credential.scope, headerName: credential.headerName,
                              headerValue: credential.headerValue.value)
        let json = String(decoding: try JSONEncoder().encode(payload), as: UTF8.self)
        let now = Timestamp.iso(Date())
        try await pool.immediateWrite { db in
            try db.cachedStatement(
                sql: """
                    INSERT OR REPLACE INTO credentials(credential_id, request_id, rail, challenge_url, payload_json, state,
                      manual_hold_reason, persisted_at, redeemed_at, last_transition_at, expires_at, origin)
                    VALUES (?, ?, ?, ?, ?, 'redeemed', NULL, ?, ?, ?, ?, ?)
                    """
            ).execute(
                arguments: [credential.id, credential.requestID, credential.rail.rawValue, credential.challengeURL, json,
                            now, now, now, credential.expiresAt.map(Timestamp.iso), credential.origin])
        }
    }

    /// Looks up by the indexed `origin` column (rows written before it existed were backfilled by the migration).
    ///
    /// This lookup starts every call, so it is kept cheap: one SELECT run synchronously on a reader connection (in
    /// WAL mode a read never waits for a writer; no hop to a reader queue and back), and each row's JSON payload
    /// decoded once (rows are cached by id and payload text).
    public func credential(for url: URL, now: Date) async throws -> StoredCredential? {
        for credential in try credentials(origin: url.routeweilerOrigin) where credential.applies(to: url, now: now) {
            return credential
        }
        return nil
    }

    /// An origin's usable credentials, newest first.
    package static let lookupSQL = """
        SELECT credential_id, request_id, rail, challenge_url, payload_json, expires_at FROM credentials
        WHERE origin = ? AND state IN ('persisted', 'redeemed') ORDER BY persisted_at DESC, rowid DESC
        """

    private func credentials(origin: String) throws -> [StoredCredential] {
        let select = { (db: Database) throws -> [(id: String, text: CachedText)] in
            let statement = try RawStatement(db, Self.lookupSQL)
            defer { statement.reset() }
            statement.bind(1, origin)
            var rows: [(id: String, text: CachedText)] = []
            while try statement.step() {
                rows.append((statement.text(0) ?? "",
                             CachedText(payload: statement.text(4), rail: statement.text(2), expiresAt: statement.text(5),
                                        requestID: statement.text(1), challengeURL: statement.text(3))))
            }
            return rows
        }
        // A read-only connection of the store's own, used in autocommit mode (each SELECT sees the last commit):
        // no pool checkout, no read transaction, no schema-version query per lookup.
        let rows = try lookupConnection.map { try $0.inDatabase(select) } ?? pool.unsafeRead(select)
        guard !rows.isEmpty else { return [] }
        return rows.compactMap { (id, text) -> StoredCredential? in
            if let hit = decoded.withLock({ $0[id] }), hit.source == text { return hit.credential }
            guard let json = text.payload, let payload = try? JSONDecoder().decode(Payload.self, from: Data(json.utf8))
            else { return nil }
            let credential = StoredCredential(
                id: id, rail: RailID(text.rail ?? ""), origin: payload.origin, scope: payload.scope,
                headerName: payload.headerName, headerValue: Redacted(payload.headerValue),
                expiresAt: text.expiresAt.flatMap(Timestamp.parse), requestID: text.requestID ?? "",
                challengeURL: text.challengeURL ?? "")
            decoded.withLock { cache in
                if cache.count >= 1024 { cache.removeAll() }  // bounded; rebuilt from the rows on demand
                cache[id] = (text, credential)
            }
            return credential
        }
    }

    /// A row's stored text, to tell whether a cached decoding is still the row's.
    private struct CachedText: Equatable {
        var payload: String?
        var rail: String?
        var expiresAt: String?
        var requestID: String?
        var challengeURL: String?
    }

    public func remove(id: String) async throws {
        try await pool.immediateWrite { db in
            try db.execute(sql: "DELETE FROM credentials WHERE credential_id = ?", arguments: [id])
        }
    }
}

/// Records each intent to pay in `payment_intents` before paying, so that a crash can be recovered.
public final class SQLitePaymentJournal: PaymentJournal {
    let pool: DatabasePool

    public init(path: String) throws {
        self.pool = try RouteweilerDatabase.open(path: path)
    }

    /// A journal on an open pool (shared with the other stores of the same file, see `useSQLite`).
    init(pool: DatabasePool) {
        self.pool = pool
    }

    struct Details: Codable {
        var url: String
        var settleMinorUnits: Int64?
        var credentialPrefix: String?
        var credentialExpiresAt: String?
    }

    public func begin(_ intent: PaymentIntent) async throws {
        let json = try Self.detailsJSON(intent)
        try await pool.immediateWrite { db in try Self.insert(intent, details: json, db) }
    }

    public func resolve(id: String, state: PaymentIntent.State, proof: String?, now: Date) async throws {
        try await pool.immediateWrite { db in try Self.resolve(id: id, state: state, proof: proof, now: now, db) }
    }

    /// The intent's recovery details as JSON (the URL, the settle amount, the credential to rebuild).
    /// Written by hand (it is on every paid call, and JSONEncoder costs tens of microseconds); read back with
    /// JSONDecoder into ``Details``.
    static func detailsJSON(_ intent: PaymentIntent) throws -> String {
        var fields: [String] = []
        if let expires = intent.credentialExpiresAt {
            fields.append(#""credentialExpiresAt":"# + JSONString.quoted(Timestamp.iso(expires)))
        }
        if let prefix = intent.credentialPrefix {
            fields.append(#""credentialPrefix":"# + JSONString.quoted(prefix.value))
        }
        if let amount = intent.settleMinorUnits { fields.append(#""settleMinorUnits":"# + String(amount)) }
        fields.append(#""url":"# + JSONString.quoted(intent.url))
        return "{" + fields.joined(separator: ",") + "}"
    }

    /// Inserts a pending intent inside the caller's write transaction.
    static func insert(_ intent: PaymentIntent, details: String, _ db: Database) throws {
        let insert = try RawStatement(db, """
            INSERT INTO payment_intents(id, request_id, rail, origin, envelope_id, draw_id, payment_hash, invoice,
              credential_scope, state, proof, created_at, resolved_at, details_json)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', NULL, ?, NULL, ?)
            """)
        for (index, value) in [intent.id, intent.requestID, intent.rail.rawValue, intent.origin, intent.envelopeID,
                               intent.drawID, intent.paymentHash, intent.invoice, intent.credentialScope,
                               BudgetTime.text(intent.createdAt), details].enumerated() {
            insert.bind(Int32(index + 1), value)
        }
        try insert.run()
    }

    /// Resolves an intent inside the caller's write transaction.
    static func resolve(id: String, state: PaymentIntent.State, proof: String?, now: Date, _ db: Database) throws {
        try db.cachedStatement(
            sql: "UPDATE payment_intents SET state = ?, proof = COALESCE(?, proof), resolved_at = ? WHERE id = ?"
        ).execute(arguments: [state.rawValue, proof, BudgetTime.text(now), id])
    }

    public func pending() async throws -> [PaymentIntent] {
        let rows = try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM payment_intents WHERE state = 'pending' ORDER BY created_at")
        }
        let decoder = JSONDecoder()
        return rows.map { row in
            let details = (row["details_json"] as String?).flatMap { try? decoder.decode(Details.self, from: Data($0.utf8)) }
            return PaymentIntent(
                id: row["id"], requestID: row["request_id"], rail: RailID(row["rail"] as String), origin: row["origin"],
                url: details?.url ?? "", envelopeID: row["envelope_id"], drawID: row["draw_id"],
                settleMinorUnits: details?.settleMinorUnits, paymentHash: row["payment_hash"], invoice: row["invoice"],
                credentialPrefix: details?.credentialPrefix.map(Redacted.init), credentialScope: row["credential_scope"],
                credentialExpiresAt: details?.credentialExpiresAt.flatMap(Timestamp.parse),
                state: PaymentIntent.State(rawValue: row["state"]) ?? .pending, proof: row["proof"],
                createdAt: (row["created_at"] as String?).flatMap(Timestamp.parse) ?? Date())
        }
    }

    /// All intents (for inspection and tests), oldest first.
    public func all() async throws -> [(id: String, state: String, proof: String?)] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT id, state, proof FROM payment_intents ORDER BY created_at").map {
                (id: $0["id"], state: $0["state"], proof: $0["proof"])
            }
        }
    }
}

extension RouteweilerClient.Configuration {
    /// Keeps the trace, the budget, paid credentials and the payment journal in one SQLite file (mode 0600),
    /// through one connection pool: in this process, writes queue on its single writer connection instead of
    /// contending for SQLite's file lock (and sleeping in the busy handler); other processes still share the file.
    ///
    /// ```swift
    /// var config = RouteweilerClient.Configuration(funding: [lightning])
    /// try config.useSQLite(path: "routeweiler.db")
    /// config.budget = .envelope(id: "agent-42")
    /// ```
    ///
    /// Trace rows are written behind the call by default (see ``SQLiteTraceSink/WriteMode``); draws and payment
    /// intents are always written before the payment, the intent in the reservation's transaction.
    public mutating func useSQLite(path: String, keystore: EnvelopeKeystore = EnvelopeKeystore(),
                                   urlMode: SQLiteTraceSink.URLMode = .raw,
                                   traceWrites: SQLiteTraceSink.WriteMode = .writeBehind) throws {
        let pool: DatabasePool
        do {
            pool = try RouteweilerDatabase.open(path: path)
        } catch let error as DatabaseError where SQLiteBudgetStore.isBusy(error) {
            throw SQLiteBudgetStore.busyError(path: path, timeout: 10)
        }
        traceSink = SQLiteTraceSink(pool: pool, path: path, urlMode: urlMode, writeMode: traceWrites)
        budgetStore = SQLiteBudgetStore(pool: pool, path: path, keystore: keystore)
        credentialStore = SQLiteCredentialStore(pool: pool)
        paymentJournal = SQLitePaymentJournal(pool: pool)
    }
}
