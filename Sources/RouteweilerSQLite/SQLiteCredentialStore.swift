import Foundation
import GRDB
import GRDBSQLite
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

    private let lookupConnection: LookupConnection?

    private static func openLookupConnection(path: String) -> LookupConnection? {
        LookupConnection(path: path, sql: lookupSQL, busyTimeoutMilliseconds: 10_000)
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
    /// This lookup starts every call, so it is kept cheap: one SELECT run synchronously on a reader connection of
    /// the store's own (in WAL mode a read never waits for a writer; no hop to a reader queue and back), each row's
    /// JSON payload decoded once (rows are cached by id and payload text), and no SELECT at all while the database
    /// has not changed since the origin was last looked up: any commit to the file, by any connection or process,
    /// changes its WAL-index header (see ``LookupConnection/changeStamp()``), and the origin is read again.
    public func credential(for url: URL, now: Date) async throws -> StoredCredential? {
        try await credential(for: url, origin: url.routeweilerOrigin, now: now)
    }

    public func credential(for url: URL, origin: String, now: Date) async throws -> StoredCredential? {
        for credential in try credentials(origin: origin) where credential.applies(to: url, now: now) {
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
        // Stamped before reading: a commit landing meanwhile changes the stamp, so the next lookup reads again.
        let stamp = lookupConnection?.changeStamp()
        if let stamp, let hit = unchanged.withLock({ $0[origin] }), hit.stamp == stamp { return hit.credentials }
        let found = try readCredentials(origin: origin)
        if let stamp {
            unchanged.withLock { cache in
                if cache.count >= 256 { cache.removeAll() }  // bounded; refilled on demand
                cache[origin] = (stamp, found)
            }
        }
        return found
    }

    /// Each origin's usable credentials as last read, with the database's change stamp at that time.
    private let unchanged = Mutex<[String: (stamp: LookupConnection.ChangeStamp, credentials: [StoredCredential])]>([:])

    /// How many lookups read the database (the others were answered from ``unchanged``).
    package var databaseReads: Int { reads.withLock { $0 } }
    private let reads = Mutex(0)

    private func readCredentials(origin: String) throws -> [StoredCredential] {
        reads.withLock { $0 += 1 }
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
        let rows = try lookupConnection.map { connection in
            try connection.rows(binding: origin) { statement in
                (RawStatement.text(statement, 0) ?? "",
                 CachedText(payload: RawStatement.text(statement, 4), rail: RawStatement.text(statement, 2),
                            expiresAt: RawStatement.text(statement, 5), requestID: RawStatement.text(statement, 1),
                            challengeURL: RawStatement.text(statement, 3)))
            }
        } ?? pool.unsafeRead(select)
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
                                   traceWrites: SQLiteTraceSink.WriteMode = .writeBehind,
                                   traceGatherWindow: Duration = SQLiteTraceSink.defaultGatherWindow) throws {
        let pool: DatabasePool
        do {
            pool = try RouteweilerDatabase.open(path: path)
        } catch let error as DatabaseError where SQLiteBudgetStore.isBusy(error) {
            throw SQLiteBudgetStore.busyError(path: path, timeout: 10)
        }
        traceSink = SQLiteTraceSink(pool: pool, path: path, urlMode: urlMode, writeMode: traceWrites,
                                    gatherWindow: traceGatherWindow)
        budgetStore = SQLiteBudgetStore(pool: pool, path: path, keystore: keystore)
        credentialStore = SQLiteCredentialStore(pool: pool)
        paymentJournal = SQLitePaymentJournal(pool: pool)
    }
}

/// A read-only SQLite connection with one prepared statement, driven through the C API under a lock.
///
/// The credential lookup starts every call. Through GRDB's `DatabaseQueue` (a `DispatchQueue.sync` per access) it
/// took 30–40 µs of wall time in a call for ~5 µs of CPU; a lock around the statement does not wait on a queue.
/// Autocommit: each lookup reads the last committed state, as a new read transaction.
final class LookupConnection: @unchecked Sendable {  // the handles are only touched under `lock`
    private let lock = Mutex(())
    private let connection: OpaquePointer
    private let statement: OpaquePointer

    /// `nil` when the file cannot be opened read-only or the statement does not prepare (the caller falls back).
    init?(path: String, sql: String, busyTimeoutMilliseconds: Int32) {
        var handle: OpaquePointer?
        guard sqlite3_open_v2(path, &handle, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK,
            let handle
        else {
            if let handle { sqlite3_close_v2(handle) }
            return nil
        }
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
        var prepared: OpaquePointer?
        guard sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &prepared, nil) == SQLITE_OK,
            let prepared
        else {
            sqlite3_close_v2(handle)
            return nil
        }
        connection = handle
        statement = prepared
        // The change stamp is the WAL index's: for a database in another journal mode there is none to read.
        shmPath = Self.journalMode(handle) == "wal" ? path + "-shm" : ""
        _ = try? rows(binding: "") { _ in () }  // opens the WAL index, and maps it
    }

    private static func journalMode(_ handle: OpaquePointer) -> String? {
        var pragma: OpaquePointer?
        guard sqlite3_prepare_v2(handle, "PRAGMA journal_mode", -1, &pragma, nil) == SQLITE_OK, let pragma else {
            return nil
        }
        defer { sqlite3_finalize(pragma) }
        guard sqlite3_step(pragma) == SQLITE_ROW, let text = sqlite3_column_text(pragma, 0) else { return nil }
        return String(cString: text).lowercased()
    }

    deinit {
        if let walIndex { munmap(UnsafeMutableRawPointer(mutating: walIndex), 4096) }
        sqlite3_finalize(statement)
        sqlite3_close_v2(connection)
    }

    /// What identifies the database's last commit: the WAL-index header (documented in SQLite's "WAL-mode file
    /// format"; its `iChange` counter goes up with every transaction, and a WAL restart changes the salts). Equal
    /// stamps mean that no transaction was committed in between, by any connection or process.
    struct ChangeStamp: Equatable, Sendable {
        var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
        static func == (a: Self, b: Self) -> Bool {
            a.words.0 == b.words.0 && a.words.1 == b.words.1 && a.words.2 == b.words.2 && a.words.3 == b.words.3
                && a.words.4 == b.words.4 && a.words.5 == b.words.5
        }
    }

    /// The `-shm` file's first page, mapped read-only once a lookup has opened it (this connection keeps it open,
    /// so SQLite neither truncates nor removes it while it is mapped); `nil` before, or when the database is not in
    /// WAL mode.
    private nonisolated(unsafe) var walIndex: UnsafeRawPointer?
    private let shmPath: String

    /// The current stamp, or `nil` when it cannot be read (no WAL index mapped yet, or a writer is updating the
    /// header right now): then the caller reads the database.
    func changeStamp() -> ChangeStamp? {
        lock.withLock { _ in
            guard let header = walIndex else { return nil }
            // As SQLite's readers do: the header is kept twice, written second copy first; the first copy, a
            // barrier, then the second, and equal copies are a consistent header.
            let first = Self.words(header)
            atomicMemoryFence(ordering: .acquiringAndReleasing)
            let second = Self.words(header + 48)
            guard first == second else { return nil }
            return first
        }
    }

    private static func words(_ p: UnsafeRawPointer) -> ChangeStamp {
        ChangeStamp(words: (p.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                            p.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                            p.loadUnaligned(fromByteOffset: 16, as: UInt64.self),
                            p.loadUnaligned(fromByteOffset: 24, as: UInt64.self),
                            p.loadUnaligned(fromByteOffset: 32, as: UInt64.self),
                            p.loadUnaligned(fromByteOffset: 40, as: UInt64.self)))
    }

    /// Maps the WAL index, after a read on this connection has opened it.
    private func mapWALIndex() {
        guard walIndex == nil, !shmPath.isEmpty else { return }
        let fd = open(shmPath, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_size >= 136 else { return }
        let mapped = mmap(nil, 4096, PROT_READ, MAP_SHARED, fd, 0)
        guard let mapped, mapped != MAP_FAILED else { return }
        walIndex = UnsafeRawPointer(mapped)
    }

    /// Binds `text` to the statement's one parameter and maps every row.
    func rows<T>(binding text: String, _ map: (OpaquePointer) -> T) throws -> [T] {
        try lock.withLock { _ in
            defer {
                sqlite3_reset(statement)
                sqlite3_clear_bindings(statement)
                mapWALIndex()
            }
            var text = text
            text.withUTF8 { bytes in
                bytes.withMemoryRebound(to: CChar.self) {
                    _ = sqlite3_bind_text(statement, 1, $0.baseAddress, Int32($0.count), RawStatement.transient)
                }
            }
            var rows: [T] = []
            while true {
                let code = sqlite3_step(statement)
                if code == SQLITE_DONE { return rows }
                guard code == SQLITE_ROW else {
                    throw DatabaseError(resultCode: ResultCode(rawValue: code),
                                        message: String(cString: sqlite3_errmsg(connection)))
                }
                rows.append(map(statement))
            }
        }
    }
}
