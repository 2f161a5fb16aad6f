import Foundation
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
public import Routeweiler

/// A parsed `postgres://user:password@host:port/database?sslmode=…&schema=…` connection URL.
///
/// The password never appears in ``description`` or in any error: it prints as `***`.
public struct PostgresURL: Sendable, Hashable, CustomStringConvertible {
    public enum TLSMode: String, Sendable, Hashable { case disable, prefer, require }

    public var host: String
    public var port: Int
    public var username: String
    public var password: Redacted<String>?
    public var database: String
    public var tls: TLSMode
    /// The schema the tables live in (`public` by default); created by the migrations if missing.
    public var schema: String

    /// Parses `postgres://` or `postgresql://` URLs; `sslmode` is `disable` (default), `prefer` or `require`.
    /// - Throws: ``ConfigurationError`` (without the password) for anything else.
    public init(_ text: String) throws {
        guard let components = URLComponents(string: text),
            let scheme = components.scheme?.lowercased(), scheme == "postgres" || scheme == "postgresql"
        else { throw ConfigurationError("not a postgres:// URL: \(Self.redact(text))") }
        guard let host = components.host, !host.isEmpty else {
            throw ConfigurationError("the PostgreSQL URL \(Self.redact(text)) has no host")
        }
        self.host = host
        self.port = components.port ?? 5432
        self.username = components.user?.removingPercentEncoding ?? components.user ?? "postgres"
        if let pw = components.password { self.password = Redacted(pw.removingPercentEncoding ?? pw) }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        self.database = path.isEmpty ? self.username : (path.removingPercentEncoding ?? path)
        var tls = TLSMode.disable
        var schema = "public"
        for item in components.queryItems ?? [] {
            switch item.name.lowercased() {
            case "sslmode":
                switch item.value?.lowercased() ?? "" {
                case "disable", "allow": tls = .disable
                case "prefer": tls = .prefer
                case "require", "verify-ca", "verify-full": tls = .require
                default: throw ConfigurationError("unknown sslmode '\(item.value ?? "")' in \(Self.redact(text))")
                }
            case "schema", "search_path":
                guard let value = item.value, Self.isIdentifier(value) else {
                    throw ConfigurationError("the schema in \(Self.redact(text)) must be letters, digits and '_'")
                }
                schema = value
            default:
                throw ConfigurationError("unknown parameter '\(item.name)' in \(Self.redact(text))")
            }
        }
        self.tls = tls
        self.schema = schema
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.host == b.host && a.port == b.port && a.username == b.username && a.password?.value == b.password?.value
            && a.database == b.database && a.tls == b.tls && a.schema == b.schema
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(host)
        hasher.combine(port)
        hasher.combine(username)
        hasher.combine(database)
        hasher.combine(schema)
    }

    /// The URL with the password replaced by `***`.
    public var description: String {
        var text = "postgres://\(username)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)"
        var params: [String] = []
        if tls != .disable { params.append("sslmode=\(tls.rawValue)") }
        if schema != "public" { params.append("schema=\(schema)") }
        if !params.isEmpty { text += "?" + params.joined(separator: "&") }
        return text
    }

    /// Whether `text` names a PostgreSQL store.
    public static func isPostgres(_ text: String) -> Bool {
        let lower = text.lowercased()
        return lower.hasPrefix("postgres://") || lower.hasPrefix("postgresql://")
    }

    /// `text` with any `user:password@` password replaced by `***` (for messages about unparseable URLs).
    public static func redact(_ text: String) -> String {
        guard let schemeEnd = text.range(of: "://"), let at = text.range(of: "@", range: schemeEnd.upperBound..<text.endIndex)
        else { return text }
        let userInfo = text[schemeEnd.upperBound..<at.lowerBound]
        guard let colon = userInfo.firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":***" + String(text[at.lowerBound...])
    }

    static func isIdentifier(_ s: String) -> Bool {
        !s.isEmpty && s.count <= 63 && s.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("0"..."9").contains($0) || $0 == "_" }
            && !("0"..."9").contains(s.unicodeScalars.first!)
    }
}

/// The database could not be reached or answered with an unexpected error. The message never holds the password.
public struct PostgresStoreError: RouteweilerError {
    public var errorName: String { "PostgresStoreError" }
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// A connection pool to one PostgreSQL database, with Routeweiler's tables migrated (SPEC §13 tables, versioned).
///
/// ```swift
/// let db = try await PostgresStoreDatabase.open(url: "postgres://rw:secret@db.internal:5432/routeweiler")
/// let budget = PostgresBudgetStore(database: db)
/// ```
///
/// Opening connects once directly (so an unreachable server is an immediate ``PostgresStoreError``), runs the
/// migrations under `pg_advisory_xact_lock` (several processes may start at once), then starts the pool's `run()`
/// in a background task that ``close()`` (or deinit) cancels.
public final class PostgresStoreDatabase: Sendable {
    public let url: PostgresURL
    /// How long a statement waits for a row lock held by another connection before failing with ``StoreBusyError``.
    public let lockTimeout: TimeInterval
    let client: PostgresClient
    private let runTask: Task<Void, Never>
    static let logger = Logger(label: "routeweiler.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Migrations in order; each version's statements run in one transaction and are recorded in
    /// `routeweiler_migrations(version, name, applied_at)`.
    static let migrations: [(version: Int, name: String, statements: [String])] = [
        (1, "v1-schema", [
            // Timestamps are fixed-width ISO text compared as text, so their columns use the bytewise "C" collation.
            """
            CREATE TABLE IF NOT EXISTS envelopes(
              id TEXT PRIMARY KEY, cap_minor_units BIGINT NOT NULL, cap_currency TEXT NOT NULL,
              allowed_rails TEXT NOT NULL, allowed_origins_glob TEXT NOT NULL,
              status TEXT NOT NULL, created_at TEXT COLLATE "C" NOT NULL, expires_at TEXT COLLATE "C" NOT NULL,
              counter_public_key TEXT NOT NULL DEFAULT '', owner_agent_id TEXT)
            """,
            """
            CREATE TABLE IF NOT EXISTS draws(
              id TEXT COLLATE "C" PRIMARY KEY, envelope_id TEXT NOT NULL REFERENCES envelopes(id),
              request_id TEXT NOT NULL, idempotency_key TEXT NOT NULL,
              amount_reserved_minor_units BIGINT NOT NULL, amount_settled_minor_units BIGINT,
              rail_quoted TEXT NOT NULL, state TEXT NOT NULL, issued_at TEXT COLLATE "C" NOT NULL,
              expires_at TEXT COLLATE "C" NOT NULL, settled_at TEXT COLLATE "C", signature TEXT, UNIQUE(envelope_id, idempotency_key))
            """,
            "CREATE INDEX IF NOT EXISTS draws_envelope_state ON draws(envelope_id, state)",
            "CREATE INDEX IF NOT EXISTS draws_state_expires ON draws(state, expires_at)",
            """
            CREATE TABLE IF NOT EXISTS envelope_fmv_snapshots(
              envelope_id TEXT PRIMARY KEY REFERENCES envelopes(id), captured_at TEXT COLLATE "C" NOT NULL,
              rates_json TEXT NOT NULL, quality_json TEXT NOT NULL)
            """,
            """
            CREATE TABLE IF NOT EXISTS credentials(
              credential_id TEXT PRIMARY KEY, request_id TEXT NOT NULL, rail TEXT NOT NULL,
              challenge_url TEXT NOT NULL, payload_json TEXT NOT NULL, state TEXT NOT NULL,
              manual_hold_reason TEXT, persisted_at TEXT COLLATE "C" NOT NULL, redeemed_at TEXT COLLATE "C",
              last_transition_at TEXT COLLATE "C" NOT NULL, expires_at TEXT COLLATE "C", seq BIGSERIAL NOT NULL)
            """,
            "CREATE INDEX IF NOT EXISTS credentials_state ON credentials(state)",
            "CREATE INDEX IF NOT EXISTS credentials_request ON credentials(request_id)",
            "CREATE UNIQUE INDEX IF NOT EXISTS credentials_request_rail ON credentials(request_id, rail)",
            """
            CREATE TABLE IF NOT EXISTS trace_events(
              request_id TEXT PRIMARY KEY, envelope_id TEXT, selected_rail TEXT, fallback_from TEXT,
              facilitator TEXT, http_status INTEGER, service_delivered INTEGER NOT NULL,
              amount_native TEXT, amount_native_currency TEXT, amount_envelope DOUBLE PRECISION,
              amount_envelope_currency TEXT, fmv_quality TEXT, ts_start TEXT COLLATE "C" NOT NULL, ts_end TEXT COLLATE "C" NOT NULL,
              shipped_at TEXT COLLATE "C", payload TEXT NOT NULL, seq BIGSERIAL NOT NULL)
            """,
            "CREATE INDEX IF NOT EXISTS trace_events_envelope_ts ON trace_events(envelope_id, ts_start DESC)",
            """
            CREATE TABLE IF NOT EXISTS payment_intents(
              id TEXT PRIMARY KEY, request_id TEXT NOT NULL, rail TEXT NOT NULL, origin TEXT NOT NULL,
              envelope_id TEXT, draw_id TEXT, payment_hash TEXT, invoice TEXT, credential_scope TEXT,
              state TEXT NOT NULL, proof TEXT, created_at TEXT COLLATE "C" NOT NULL, resolved_at TEXT COLLATE "C", details_json TEXT)
            """,
            "CREATE INDEX IF NOT EXISTS payment_intents_state ON payment_intents(state)",
            "CREATE INDEX IF NOT EXISTS payment_intents_draw ON payment_intents(draw_id)",
        ]),
        // Running totals per envelope, kept by a trigger on `draws` (every writer keeps them, whatever its code):
        // the cap check reads two columns of the envelope row it locks instead of summing the envelope's draws,
        // which grew with its history. Writers that change draws lock the envelope row first (as a reservation
        // does), so the trigger's update of it never waits in the other order.
        (2, "v2-envelope-totals", [
            "ALTER TABLE envelopes ADD COLUMN IF NOT EXISTS reserved_minor_units BIGINT NOT NULL DEFAULT 0",
            "ALTER TABLE envelopes ADD COLUMN IF NOT EXISTS settled_minor_units BIGINT NOT NULL DEFAULT 0",
            """
            UPDATE envelopes SET
              reserved_minor_units = COALESCE((SELECT SUM(amount_reserved_minor_units) FROM draws
                WHERE draws.envelope_id = envelopes.id AND state = 'reserved'), 0),
              settled_minor_units = COALESCE((SELECT SUM(amount_settled_minor_units) FROM draws
                WHERE draws.envelope_id = envelopes.id AND state = 'settled'), 0)
            """,
            """
            CREATE OR REPLACE FUNCTION routeweiler_draw_totals() RETURNS trigger LANGUAGE plpgsql
            SET search_path FROM CURRENT AS $$
            BEGIN
              IF TG_OP <> 'INSERT' THEN
                UPDATE envelopes SET
                  reserved_minor_units = reserved_minor_units
                    - CASE WHEN OLD.state = 'reserved' THEN OLD.amount_reserved_minor_units ELSE 0 END,
                  settled_minor_units = settled_minor_units
                    - CASE WHEN OLD.state = 'settled' THEN COALESCE(OLD.amount_settled_minor_units, 0) ELSE 0 END
                WHERE id = OLD.envelope_id;
              END IF;
              IF TG_OP <> 'DELETE' THEN
                UPDATE envelopes SET
                  reserved_minor_units = reserved_minor_units
                    + CASE WHEN NEW.state = 'reserved' THEN NEW.amount_reserved_minor_units ELSE 0 END,
                  settled_minor_units = settled_minor_units
                    + CASE WHEN NEW.state = 'settled' THEN COALESCE(NEW.amount_settled_minor_units, 0) ELSE 0 END
                WHERE id = NEW.envelope_id;
              END IF;
              RETURN NULL;
            END
            $$
            """,
            "DROP TRIGGER IF EXISTS draws_totals ON draws",
            """
            CREATE TRIGGER draws_totals
            AFTER INSERT OR DELETE OR UPDATE OF state, amount_reserved_minor_units, amount_settled_minor_units, envelope_id
            ON draws FOR EACH ROW EXECUTE FUNCTION routeweiler_draw_totals()
            """,
        ]),
    ]

    private init(url: PostgresURL, lockTimeout: TimeInterval, client: PostgresClient) {
        self.url = url
        self.lockTimeout = lockTimeout
        self.client = client
        self.runTask = Task { await client.run() }
    }

    deinit { runTask.cancel() }

    /// Stops the pool. Queries afterwards fail.
    public func close() { runTask.cancel() }

    /// Connects to `url`, runs the migrations, and starts the connection pool.
    /// - Parameters:
    ///   - lockTimeout: seconds a statement waits for another connection's row lock (PostgreSQL `lock_timeout`).
    ///   - maximumConnections: the pool's size.
    /// - Throws: ``ConfigurationError`` for a bad URL, ``PostgresStoreError`` when the server is unreachable or
    ///   refuses the login.
    public static func open(url text: String, lockTimeout: TimeInterval = 10, maximumConnections: Int = 20,
                            connectTimeout: Duration = .seconds(10)) async throws -> PostgresStoreDatabase {
        try await open(url: try PostgresURL(text), lockTimeout: lockTimeout, maximumConnections: maximumConnections,
                       connectTimeout: connectTimeout)
    }

    public static func open(url: PostgresURL, lockTimeout: TimeInterval = 10, maximumConnections: Int = 20,
                            connectTimeout: Duration = .seconds(10)) async throws -> PostgresStoreDatabase {
        let lockMillis = max(1, Int((lockTimeout * 1000).rounded()))
        let startup: [(String, String)] = [
            ("application_name", "routeweiler"), ("lock_timeout", "\(lockMillis)"),
            ("search_path", url.schema == "public" ? "public" : "\(url.schema),public"),
        ]
        let tls: PostgresConnection.Configuration.TLS
        switch url.tls {
        case .disable: tls = .disable
        case .prefer: tls = .prefer(try NIOSSLContext(configuration: Self.tlsConfiguration()))
        case .require: tls = .require(try NIOSSLContext(configuration: Self.tlsConfiguration()))
        }
        var direct = PostgresConnection.Configuration(host: url.host, port: url.port, username: url.username,
                                                      password: url.password?.value, database: url.database, tls: tls)
        direct.options.connectTimeout = .init(connectTimeout)
        direct.options.additionalStartupParameters = startup
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(configuration: direct, id: 0, logger: logger)
        } catch {
            throw PostgresStoreError("cannot connect to PostgreSQL at \(url): \(describe(error))")
        }
        do {
            try await migrate(connection, schema: url.schema)
            try? await connection.close()
        } catch {
            try? await connection.close()
            throw mapError(error, url: url, lockTimeout: lockTimeout)
        }

        let clientTLS: PostgresClient.Configuration.TLS
        switch url.tls {
        case .disable: clientTLS = .disable
        case .prefer: clientTLS = .prefer(Self.tlsConfiguration())
        case .require: clientTLS = .require(Self.tlsConfiguration())
        }
        var config = PostgresClient.Configuration(host: url.host, port: url.port, username: url.username,
                                                  password: url.password?.value, database: url.database, tls: clientTLS)
        config.options.connectTimeout = connectTimeout
        config.options.additionalStartupParameters = startup
        config.options.maximumConnections = max(1, maximumConnections)
        let client = PostgresClient(configuration: config, backgroundLogger: logger)
        return PostgresStoreDatabase(url: url, lockTimeout: lockTimeout, client: client)
    }

    private static func tlsConfiguration() -> TLSConfiguration { TLSConfiguration.makeClientConfiguration() }

    /// Applies the missing migrations under a database-wide advisory lock, so processes starting together queue up
    /// and each version is applied exactly once.
    static func migrate(_ connection: PostgresConnection, schema: String) async throws {
        try await execute(connection, "BEGIN")
        try await execute(connection, "SET LOCAL lock_timeout = 0")  // wait for other starting processes
        do {
            try await execute(connection, "SELECT pg_advisory_xact_lock(hashtext(\("routeweiler-migrations:" + schema)))")
            try await execute(connection, PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(schema)"))
            try await execute(connection, PostgresQuery(unsafeSQL: """
                CREATE TABLE IF NOT EXISTS \(schema).routeweiler_migrations(
                  version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                """))
            var applied: Set<Int> = []
            for try await version in try await connection.query(
                PostgresQuery(unsafeSQL: "SELECT version FROM \(schema).routeweiler_migrations"), logger: logger
            ).decode(Int.self) {
                applied.insert(version)
            }
            try await execute(connection, PostgresQuery(unsafeSQL: "SET LOCAL search_path TO \(schema)"))
            for migration in migrations where !applied.contains(migration.version) {
                for statement in migration.statements {
                    try await execute(connection, PostgresQuery(unsafeSQL: statement))
                }
                try await execute(
                    connection,
                    "INSERT INTO routeweiler_migrations(version, name) VALUES (\(migration.version), \(migration.name))")
            }
            try await execute(connection, "COMMIT")
        } catch {
            _ = try? await execute(connection, "ROLLBACK")
            throw error
        }
    }

    /// The applied migration versions, in order.
    public func migrationVersions() async throws -> [Int] {
        try await run { connection in
            var versions: [Int] = []
            for try await v in try await connection.query(
                "SELECT version FROM routeweiler_migrations ORDER BY version", logger: Self.logger
            ).decode(Int.self) { versions.append(v) }
            return versions
        }
    }

    // MARK: - Running statements

    /// Runs `body` on a pooled connection, mapping driver errors to Routeweiler errors.
    func run<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await client.withConnection { connection in try await body(connection) }
        } catch let error as any RouteweilerError {
            throw error
        } catch {
            throw Self.mapError(error, url: url, lockTimeout: lockTimeout)
        }
    }

    /// Runs `body` in a transaction (READ COMMITTED; callers lock the rows they depend on with `FOR UPDATE`).
    /// The transaction is rolled back if `body` throws; the original error is rethrown.
    func transaction<T: Sendable>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await run { connection in
            // Every statement's rows are consumed (`execute`), so a failure surfaces at that statement and not later.
            try await Self.execute(connection, "BEGIN")
            let value: T
            do {
                value = try await body(connection)
            } catch {
                _ = try? await Self.execute(connection, "ROLLBACK")
                throw error
            }
            try await Self.execute(connection, "COMMIT")
            return value
        }
    }

    /// Runs `query` and collects its rows.
    static func rows(_ connection: PostgresConnection, _ query: PostgresQuery) async throws -> [PostgresRandomAccessRow] {
        var rows: [PostgresRandomAccessRow] = []
        for try await row in try await connection.query(query, logger: logger) { rows.append(row.makeRandomAccess()) }
        return rows
    }

    /// Runs a statement and returns the number of rows it returned (use `RETURNING` to count changed rows).
    @discardableResult
    static func execute(_ connection: PostgresConnection, _ query: PostgresQuery) async throws -> Int {
        var count = 0
        for try await _ in try await connection.query(query, logger: logger) { count += 1 }
        return count
    }

    /// Runs raw SQL with `$n` placeholders bound to `arguments` (for tools and tests).
    public func execute(sql: String, arguments: [String?] = []) async throws {
        var binds = PostgresBindings()
        for argument in arguments {
            if let argument { binds.append(argument) } else { binds.appendNull() }
        }
        let query = PostgresQuery(unsafeSQL: sql, binds: binds)
        _ = try await run { connection in try await Self.execute(connection, query) }
    }

    static func sqlState(_ error: any Error) -> String? {
        (error as? PSQLError)?.serverInfo?[.sqlState]
    }

    static func describe(_ error: any Error) -> String {
        guard let psql = error as? PSQLError else { return "\(error)" }
        if let info = psql.serverInfo {
            let state = info[.sqlState].map { " (SQLSTATE \($0))" } ?? ""
            return (info[.message] ?? "server error") + state
        }
        if let underlying = psql.underlying { return "\(psql.code): \(underlying)" }
        return "\(psql.code)"
    }

    static func mapError(_ error: any Error, url: PostgresURL, lockTimeout: TimeInterval) -> any Error {
        if error is any RouteweilerError { return error }
        switch sqlState(error) {
        case "55P03", "40P01":  // lock_not_available (lock_timeout), deadlock_detected
            return StoreBusyError(
                "the budget database \(url) is locked by another process or connection; gave up after waiting \(lockTimeout) s")
        default:
            return PostgresStoreError("PostgreSQL at \(url): \(describe(error))")
        }
    }
}
