import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// Opens the shared Routeweiler database file (trace, budgets and credentials live in one file, SPEC §13).
///
/// WAL mode, `synchronous=NORMAL`, foreign keys on, and a 10 s busy timeout so that several processes can share
/// the file. The file is created with mode 0600.
package enum RouteweilerDatabase {
    /// Opens the file at `path` and runs the migrations.
    /// - Parameter busyTimeout: how long a statement waits for another connection's lock before failing with
    ///   `SQLITE_BUSY` (10 s by default, SPEC §13; tests shorten it).
    package static func open(path: String, busyTimeout: TimeInterval = 10) throws -> DatabasePool {
        let url = URL(fileURLWithPath: path)
        let dir = url.deletingLastPathComponent().path
        if !dir.isEmpty, !FileManager.default.fileExists(atPath: dir) {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        }
        if !FileManager.default.fileExists(atPath: path) {
            let fd = Foundation.open(path, O_CREAT | O_EXCL | O_WRONLY, 0o600)
            if fd >= 0 { close(fd) }
        }
        var config = Configuration()
        config.busyMode = .timeout(busyTimeout)
        config.foreignKeysEnabled = true
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous=NORMAL")
            // The background checkpointer (below) keeps the WAL short; this bound only applies if it falls behind.
            try db.execute(sql: "PRAGMA wal_autocheckpoint=\(walAutocheckpointPages)")
        }
        let pool = try DatabasePool(path: path, configuration: config)
        // GRDB reads the applied migrations outside the migration's transaction, so two processes opening a fresh
        // file at once can both try the same migration; the loser fails (duplicate column, unique identifier) and
        // simply finds it applied on the next pass.
        var attempt = 0
        while true {
            do {
                try migrator.migrate(pool)
                break
            } catch let error as DatabaseError where attempt < 3 && error.resultCode != .SQLITE_BUSY {
                attempt += 1
            }
        }
        // SQLite creates the -wal and -shm files with the main file's mode; keep them private too.
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            chmod(path + suffix, 0o600)
        }
        WALCheckpointer.start(path: path, busyTimeout: busyTimeout, for: pool)
        return pool
    }

    /// WAL pages after which a committing connection checkpoints by itself (SQLite's default is 1000).
    static let walAutocheckpointPages = 8000

    package static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1-schema") { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS envelopes(
                  id TEXT PRIMARY KEY, cap_minor_units INTEGER NOT NULL, cap_currency TEXT NOT NULL,
                  allowed_rails TEXT NOT NULL, allowed_origins_glob TEXT NOT NULL,
                  status TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL,
                  counter_public_key TEXT NOT NULL DEFAULT '');
                CREATE TABLE IF NOT EXISTS draws(
                  id TEXT PRIMARY KEY, envelope_id TEXT NOT NULL REFERENCES envelopes(id),
                  request_id TEXT NOT NULL, idempotency_key TEXT NOT NULL,
                  amount_reserved_minor_units INTEGER NOT NULL, amount_settled_minor_units INTEGER,
                  rail_quoted TEXT NOT NULL, state TEXT NOT NULL, issued_at TEXT NOT NULL,
                  expires_at TEXT NOT NULL, settled_at TEXT, UNIQUE(envelope_id, idempotency_key));
                CREATE INDEX IF NOT EXISTS draws_envelope_state ON draws(envelope_id, state);
                CREATE TABLE IF NOT EXISTS envelope_fmv_snapshots(
                  envelope_id TEXT PRIMARY KEY REFERENCES envelopes(id), captured_at TEXT NOT NULL,
                  rates_json TEXT NOT NULL, quality_json TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS credentials(
                  credential_id TEXT PRIMARY KEY, request_id TEXT NOT NULL, rail TEXT NOT NULL,
                  challenge_url TEXT NOT NULL, payload_json TEXT NOT NULL, state TEXT NOT NULL,
                  manual_hold_reason TEXT, persisted_at TEXT NOT NULL, redeemed_at TEXT,
                  last_transition_at TEXT NOT NULL, expires_at TEXT);
                CREATE INDEX IF NOT EXISTS credentials_state ON credentials(state);
                CREATE INDEX IF NOT EXISTS credentials_request ON credentials(request_id);
                CREATE UNIQUE INDEX IF NOT EXISTS credentials_request_rail ON credentials(request_id, rail);
                CREATE TABLE IF NOT EXISTS trace_events(
                  request_id TEXT PRIMARY KEY, envelope_id TEXT, selected_rail TEXT, fallback_from TEXT,
                  facilitator TEXT, http_status INTEGER, service_delivered INTEGER NOT NULL,
                  amount_native TEXT, amount_native_currency TEXT, amount_envelope REAL,
                  amount_envelope_currency TEXT, fmv_quality TEXT, ts_start TEXT NOT NULL, ts_end TEXT NOT NULL,
                  shipped_at TEXT, payload TEXT NOT NULL);
                CREATE INDEX IF NOT EXISTS trace_events_envelope_ts ON trace_events(envelope_id, ts_start DESC);
                """)
        }
        // Budget additions (SPEC §16 items 5, 6, 15, §17). Timestamps written by the budget store into
        // `draws`/`envelopes`/`payment_intents` are fixed-width ISO text (`YYYY-MM-DDTHH:MM:SS.ffffff+00:00`, always
        // six fraction digits) so SQLite's string comparison orders them correctly.
        m.registerMigration("v2-budget") { db in
            try db.execute(sql: """
                ALTER TABLE draws ADD COLUMN signature TEXT;
                ALTER TABLE envelopes ADD COLUMN owner_agent_id TEXT;
                CREATE INDEX IF NOT EXISTS draws_state_expires ON draws(state, expires_at);
                CREATE TABLE IF NOT EXISTS payment_intents(
                  id TEXT PRIMARY KEY, request_id TEXT NOT NULL, rail TEXT NOT NULL, origin TEXT NOT NULL,
                  envelope_id TEXT, draw_id TEXT, payment_hash TEXT, invoice TEXT, credential_scope TEXT,
                  state TEXT NOT NULL, proof TEXT, created_at TEXT NOT NULL, resolved_at TEXT);
                CREATE INDEX IF NOT EXISTS payment_intents_state ON payment_intents(state);
                CREATE INDEX IF NOT EXISTS payment_intents_draw ON payment_intents(draw_id);
                """)
        }
        // Payment-intent details for crash recovery: the URL, the settle amount and the credential to rebuild
        // (a secret; the file is 0600), as JSON.
        m.registerMigration("v3-intent-details") { db in
            try db.execute(sql: "ALTER TABLE payment_intents ADD COLUMN details_json TEXT")
        }
        // Running totals per envelope, kept by triggers on `draws` (so every writer keeps them, whatever its
        // code): the cap check reads two columns instead of summing every draw of the envelope.
        /// Adds (`+`) or takes away (`-`) one draw row (`NEW` or `OLD`) from its envelope's totals.
        @Sendable func totals(_ row: String, _ sign: String) -> String {
            """
            UPDATE envelopes SET
                reserved_minor_units = reserved_minor_units \(sign)
                  CASE WHEN \(row).state = 'reserved' THEN \(row).amount_reserved_minor_units ELSE 0 END,
                settled_minor_units = settled_minor_units \(sign)
                  CASE WHEN \(row).state = 'settled' THEN COALESCE(\(row).amount_settled_minor_units, 0) ELSE 0 END
              WHERE id = \(row).envelope_id;
            """
        }
        m.registerMigration("v4-envelope-totals") { db in
            try db.execute(sql: """
                ALTER TABLE envelopes ADD COLUMN reserved_minor_units INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE envelopes ADD COLUMN settled_minor_units INTEGER NOT NULL DEFAULT 0;
                UPDATE envelopes SET
                  reserved_minor_units = COALESCE((SELECT SUM(amount_reserved_minor_units) FROM draws
                    WHERE envelope_id = envelopes.id AND state = 'reserved'), 0),
                  settled_minor_units = COALESCE((SELECT SUM(amount_settled_minor_units) FROM draws
                    WHERE envelope_id = envelopes.id AND state = 'settled'), 0);
                CREATE TRIGGER IF NOT EXISTS draws_totals_insert AFTER INSERT ON draws BEGIN
                  \(totals("NEW", "+"))
                END;
                CREATE TRIGGER IF NOT EXISTS draws_totals_update
                AFTER UPDATE OF state, amount_reserved_minor_units, amount_settled_minor_units, envelope_id ON draws
                BEGIN
                  \(totals("OLD", "-"))
                  \(totals("NEW", "+"))
                END;
                CREATE TRIGGER IF NOT EXISTS draws_totals_delete AFTER DELETE ON draws BEGIN
                  \(totals("OLD", "-"))
                END;
                """)
        }
        // Credentials are looked up by origin at the start of every call: keep it in a column with an index.
        m.registerMigration("v5-credential-origin") { db in
            try db.execute(sql: """
                ALTER TABLE credentials ADD COLUMN origin TEXT;
                UPDATE credentials SET origin = json_extract(payload_json, '$.origin') WHERE json_valid(payload_json);
                CREATE INDEX IF NOT EXISTS credentials_origin ON credentials(origin, state);
                """)
        }
        // One partial index over the pending intents replaces the state and draw indexes: recovery lists the
        // pending intents and the sweeper looks up their draws; a resolved intent leaves the index, so it stays small
        // and an insert touches one index page fewer.
        m.registerMigration("v6-pending-intents-index") { db in
            try db.execute(sql: """
                CREATE INDEX IF NOT EXISTS payment_intents_pending ON payment_intents(draw_id, created_at)
                  WHERE state = 'pending';
                DROP INDEX IF EXISTS payment_intents_state;
                DROP INDEX IF EXISTS payment_intents_draw;
                """)
        }
        // The credential lookup at the start of every call returns an origin's newest usable tokens first: with the
        // index in that order (rowid, the tie-break, is its last column) SQLite walks it backwards instead of
        // sorting the rows in a temporary b-tree.
        m.registerMigration("v7-credentials-origin-recent") { db in
            try db.execute(sql: """
                CREATE INDEX IF NOT EXISTS credentials_origin_recent ON credentials(origin, persisted_at);
                DROP INDEX IF EXISTS credentials_origin;
                """)
        }
        // Fewer pages written per paid call (each is a WAL frame at commit). `draws` and `payment_intents` become
        // WITHOUT ROWID tables keyed by their (time-ordered) ids, so a row and its primary key are one b-tree
        // instead of a table plus an index; and the `(state, expires_at)` index goes: the sweeper finds expired
        // reservations per envelope through SPEC's `draws_envelope_state` instead. Rows, indexes and the
        // running-total triggers are carried over unchanged.
        m.registerMigration("v8-without-rowid") { db in
            try db.execute(sql: """
                CREATE TABLE draws_v8(
                  id TEXT PRIMARY KEY NOT NULL, envelope_id TEXT NOT NULL REFERENCES envelopes(id),
                  request_id TEXT NOT NULL, idempotency_key TEXT NOT NULL,
                  amount_reserved_minor_units INTEGER NOT NULL, amount_settled_minor_units INTEGER,
                  rail_quoted TEXT NOT NULL, state TEXT NOT NULL, issued_at TEXT NOT NULL,
                  expires_at TEXT NOT NULL, settled_at TEXT, signature TEXT,
                  UNIQUE(envelope_id, idempotency_key)) WITHOUT ROWID;
                INSERT INTO draws_v8(id, envelope_id, request_id, idempotency_key, amount_reserved_minor_units,
                  amount_settled_minor_units, rail_quoted, state, issued_at, expires_at, settled_at, signature)
                  SELECT id, envelope_id, request_id, idempotency_key, amount_reserved_minor_units,
                    amount_settled_minor_units, rail_quoted, state, issued_at, expires_at, settled_at, signature
                  FROM draws WHERE id IS NOT NULL;
                DROP TABLE draws;
                ALTER TABLE draws_v8 RENAME TO draws;
                CREATE INDEX draws_envelope_state ON draws(envelope_id, state);
                CREATE TRIGGER draws_totals_insert AFTER INSERT ON draws BEGIN
                  \(totals("NEW", "+"))
                END;
                CREATE TRIGGER draws_totals_update
                AFTER UPDATE OF state, amount_reserved_minor_units, amount_settled_minor_units, envelope_id ON draws
                BEGIN
                  \(totals("OLD", "-"))
                  \(totals("NEW", "+"))
                END;
                CREATE TRIGGER draws_totals_delete AFTER DELETE ON draws BEGIN
                  \(totals("OLD", "-"))
                END;

                CREATE TABLE payment_intents_v8(
                  id TEXT PRIMARY KEY NOT NULL, request_id TEXT NOT NULL, rail TEXT NOT NULL, origin TEXT NOT NULL,
                  envelope_id TEXT, draw_id TEXT, payment_hash TEXT, invoice TEXT, credential_scope TEXT,
                  state TEXT NOT NULL, proof TEXT, created_at TEXT NOT NULL, resolved_at TEXT,
                  details_json TEXT) WITHOUT ROWID;
                INSERT INTO payment_intents_v8 SELECT id, request_id, rail, origin, envelope_id, draw_id, payment_hash,
                  invoice, credential_scope, state, proof, created_at, resolved_at, details_json
                  FROM payment_intents WHERE id IS NOT NULL;
                DROP TABLE payment_intents;
                ALTER TABLE payment_intents_v8 RENAME TO payment_intents;
                CREATE INDEX payment_intents_pending ON payment_intents(draw_id, created_at) WHERE state = 'pending';
                """)
        }
        return m
    }
}

/// Checkpoints the WAL from a connection of its own, off the write path.
///
/// With `synchronous=NORMAL` a commit does not fsync, but the checkpoint that SQLite runs inside every ~1000th page of
/// commits does (copying the WAL into the database and syncing it): measured here, that was a third of the cost of
/// a small write transaction, paid by whichever call happened to commit. A PASSIVE checkpoint every 100 ms from
/// this task keeps the WAL short without blocking writers or readers; the task ends once its pool is released.
enum WALCheckpointer {
    static let interval: Duration = .milliseconds(100)

    static func start(path: String, busyTimeout: TimeInterval, for pool: DatabasePool) {
        var config = Configuration()
        config.busyMode = .timeout(busyTimeout)
        guard let connection = try? DatabaseQueue(path: path, configuration: config) else { return }
        Task.detached(priority: .utility) { [weak pool] in
            while true {
                try? await Task.sleep(for: interval)
                guard pool != nil else { return }
                _ = try? await connection.writeWithoutTransaction { db in try db.checkpoint(.passive) }
            }
        }
    }
}

/// How many of our write transactions are queued or running in this process (all databases): a write that finds
/// none runs on the calling thread instead of hopping to the writer's queue and back.
private let writesUnderWay = Atomic<Int>(0)

extension DatabasePool {
    /// One `BEGIN IMMEDIATE` … `COMMIT` write transaction (rolled back if `body` throws), with both statements
    /// prepared once per connection instead of parsed on every call.
    ///
    /// When no other write of ours is queued or running, the transaction runs right here on the calling thread: the
    /// writer's queue is idle, so taking it costs nothing, while handing the work to the queue's thread and back
    /// costs two thread wake-ups (measured at 0.1–0.15 ms per paid call on this VM, more than the transaction
    /// itself). It only takes the file's write lock if it is free at once: when another process holds it, the
    /// transaction goes to the queue instead, where it waits out the busy timeout off the caller's thread. A
    /// transaction that finds others of ours under way joins the queue behind them.
    ///
    /// It runs to the end even if the calling task is cancelled (GRDB's async `write` gives up with a
    /// `CancellationError` instead): these writes record money moving, or a trace row that must not be lost, and
    /// are not to be abandoned half-way through a call.
    /// - Parameters:
    ///   - whileQueued: runs on the calling thread before the transaction, in parallel with it when it goes to the
    ///     queue.
    ///   - onlyIfQueued: runs on the calling thread after the transaction went to the queue (not when it runs here).
    package func immediateWrite<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T,
                                             whileQueued: () -> Void = {},
                                             onlyIfQueued: () -> Void = {}) async throws -> T {
        if writesUnderWay.compareExchange(expected: 0, desired: 1, ordering: .acquiring).exchanged {
            let inline: T?
            do {
                defer { writesUnderWay.subtract(1, ordering: .releasing) }
                whileQueued()
                inline = try writeOnThisThread(body)
            }
            if let inline { return inline }
            return try await queuedWrite(body, whileQueued: onlyIfQueued)
        }
        return try await queuedWrite(body, whileQueued: { whileQueued(); onlyIfQueued() })
    }

    /// The transaction on the calling thread, or `nil` (nothing done) when another connection holds the write lock.
    private func writeOnThisThread<T>(_ body: (Database) throws -> T) throws -> T? {
        try writeWithoutTransaction { db -> T? in
            guard try db.beginImmediateIfFree() else { return nil }
            return try db.inBegunTransaction { try body(db) }
        }
    }

    private func queuedWrite<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T,
                                          whileQueued: () -> Void = {}) async throws -> T {
        writesUnderWay.add(1, ordering: .relaxed)
        return try await withCheckedThrowingContinuation { continuation in
            asyncWriteWithoutTransaction { db in
                defer { writesUnderWay.subtract(1, ordering: .releasing) }
                continuation.resume(with: Result { try db.inImmediateTransaction { try body(db) } })
            }
            whileQueued()
        }
    }
}

extension Database {
    /// Runs `body` in a `BEGIN IMMEDIATE` transaction (the write lock taken up front, so a read-then-write cannot
    /// fail half-way on another connection's lock), committed if it returns and rolled back if it throws.
    /// BEGIN and COMMIT are stepped through the C API on cached statements.
    func inImmediateTransaction<T>(_ body: () throws -> T) throws -> T {
        try RawStatement(self, "BEGIN IMMEDIATE TRANSACTION").run()
        return try inBegunTransaction(body)
    }

    /// `BEGIN IMMEDIATE` without waiting: `false` (and no transaction) when another connection holds the write lock.
    /// The busy timeout is lifted for this one statement and put back.
    func beginImmediateIfFree() throws -> Bool {
        guard case .timeout(let timeout) = configuration.busyMode else {
            try RawStatement(self, "BEGIN IMMEDIATE TRANSACTION").run()
            return true
        }
        sqlite3_busy_timeout(sqliteConnection, 0)
        defer { sqlite3_busy_timeout(sqliteConnection, Int32(clamping: Int((timeout * 1000).rounded(.up)))) }
        do {
            try RawStatement(self, "BEGIN IMMEDIATE TRANSACTION").run()
            return true
        } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
            return false
        }
    }

    /// Runs `body` in the transaction just begun: committed if it returns, rolled back if it throws.
    func inBegunTransaction<T>(_ body: () throws -> T) throws -> T {
        do {
            let value = try body()
            try RawStatement(self, "COMMIT TRANSACTION").run()
            return value
        } catch {
            if isInsideTransaction { try? execute(sql: "ROLLBACK TRANSACTION") }
            throw error
        }
    }
}
