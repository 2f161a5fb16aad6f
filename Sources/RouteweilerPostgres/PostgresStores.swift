import Foundation
import PostgresNIO
public import Routeweiler
public import RouteweilerSQLite

/// Stores each finished call as one row of `trace_events` in PostgreSQL (SPEC §12.3, §13), like `SQLiteTraceSink`.
///
/// Rows are inserted with `ON CONFLICT (request_id) DO NOTHING`, so recording the same event twice keeps one row.
public final class PostgresTraceSink: TraceSink {
    public enum URLMode: String, Sendable { case raw, drop }

    public let database: PostgresStoreDatabase
    public let urlMode: URLMode

    public init(database: PostgresStoreDatabase, urlMode: URLMode = .raw) {
        self.database = database
        self.urlMode = urlMode
    }

    public func record(_ event: TraceEvent) async throws {
        var e = event
        if urlMode == .drop {
            if var challenge = e.challenge {
                challenge.resource.url = Self.dropQuery(challenge.resource.url)
                challenge.resource.urlEncoding = "drop"
                e.challenge = challenge
            }
            e.url = e.url.map(Self.dropQuery)
        }
        let payload = try e.payloadJSON()
        let httpStatus = e.outcome.httpStatus
        let delivered = e.outcome.serviceDelivered ? 1 : 0
        let amountNative = e.payment.map { String($0.amountNative) }
        let tsStart = Timestamp.iso(e.timestampStart), tsEnd = Timestamp.iso(e.timestampEnd)
        try await database.run { c in
            try await PostgresStoreDatabase.execute(c, """
                INSERT INTO trace_events(request_id, envelope_id, selected_rail, fallback_from, facilitator,
                  http_status, service_delivered, amount_native, amount_native_currency, amount_envelope,
                  amount_envelope_currency, fmv_quality, ts_start, ts_end, shipped_at, payload)
                VALUES (\(e.requestId), \(e.envelopeId), \(e.selectedRail?.rawValue), \(e.fallbackFrom?.rawValue),
                  \(e.facilitator), \(httpStatus), \(delivered), \(amountNative), \(e.payment?.amountNativeCurrency),
                  \(e.payment?.amountEnvelope), \(e.payment?.amountEnvelopeCurrency), \(e.payment?.fmvQuality.rawValue),
                  \(tsStart), \(tsEnd), NULL, \(payload))
                ON CONFLICT (request_id) DO NOTHING
                """)
        }
    }

    /// The most recent events, newest first.
    public func events(limit: Int = 100) async throws -> [TraceEvent] {
        let payloads = try await database.run { c in
            try await PostgresStoreDatabase.rows(
                c, "SELECT payload FROM trace_events ORDER BY ts_start DESC, seq DESC LIMIT \(limit)"
            ).map { try $0["payload"].decode(String.self) }
        }
        let decoder = JSONDecoder()
        return try payloads.map { try decoder.decode(TraceEvent.self, from: Data($0.utf8)) }
    }

    /// The most recent calls, newest first (the `TraceSink.recentEvents(limit:)` of newer protocol versions).
    public func recentEvents(limit: Int) async throws -> [TraceEvent] { try await events(limit: limit) }

    /// The number of rows in `trace_events`.
    public func count() async throws -> Int {
        try await database.run { c in
            try await PostgresStoreDatabase.rows(c, "SELECT COUNT(*)::BIGINT AS n FROM trace_events").first
                .map { Int(try $0["n"].decode(Int64.self)) } ?? 0
        }
    }

    static func dropQuery(_ url: String) -> String {
        guard var c = URLComponents(string: url) else { return url }
        c.query = nil
        c.fragment = nil
        return c.string ?? url
    }
}

/// Keeps paid credentials in the `credentials` table, shared by every process using the database. A credential is a
/// bearer secret: restrict access to the database accordingly; it is never written to the trace.
public final class PostgresCredentialStore: CredentialStore {
    public let database: PostgresStoreDatabase

    public init(database: PostgresStoreDatabase) { self.database = database }

    struct Payload: Codable {
        var origin: String
        var scope: String
        var headerName: String
        var headerValue: String
    }

    public func store(_ credential: StoredCredential) async throws {
        let payload = Payload(origin: credential.origin, scope: credential.scope, headerName: credential.headerName,
                              headerValue: credential.headerValue.value)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(payload), as: UTF8.self)
        let now = Timestamp.iso(Date())
        let expires = credential.expiresAt.map(Timestamp.iso)
        try await database.transaction { c in
            // INSERT OR REPLACE: both unique keys (credential_id, and request_id+rail) give way to the new row.
            try await PostgresStoreDatabase.execute(c, """
                DELETE FROM credentials WHERE credential_id = \(credential.id)
                  OR (request_id = \(credential.requestID) AND rail = \(credential.rail.rawValue)) RETURNING 1
                """)
            try await PostgresStoreDatabase.execute(c, """
                INSERT INTO credentials(credential_id, request_id, rail, challenge_url, payload_json, state,
                  manual_hold_reason, persisted_at, redeemed_at, last_transition_at, expires_at)
                VALUES (\(credential.id), \(credential.requestID), \(credential.rail.rawValue), \(credential.challengeURL),
                  \(json), 'redeemed', NULL, \(now), \(now), \(now), \(expires))
                """)
        }
    }

    public func credential(for url: URL, now: Date) async throws -> StoredCredential? {
        let rows = try await database.run { c in
            try await PostgresStoreDatabase.rows(c, """
                SELECT credential_id, request_id, rail, challenge_url, payload_json, expires_at FROM credentials
                WHERE state IN ('persisted', 'redeemed') ORDER BY persisted_at DESC, seq DESC
                """)
        }
        let decoder = JSONDecoder()
        for row in rows {
            guard let json = try? row["payload_json"].decode(String.self),
                let payload = try? decoder.decode(Payload.self, from: Data(json.utf8))
            else { continue }
            let expires = try row["expires_at"].decode(String?.self)
            let credential = StoredCredential(
                id: try row["credential_id"].decode(String.self), rail: RailID(try row["rail"].decode(String.self)),
                origin: payload.origin, scope: payload.scope, headerName: payload.headerName,
                headerValue: Redacted(payload.headerValue), expiresAt: expires.flatMap(Timestamp.parse),
                requestID: try row["request_id"].decode(String.self),
                challengeURL: try row["challenge_url"].decode(String.self))
            if credential.applies(to: url, now: now) { return credential }
        }
        return nil
    }

    public func remove(id: String) async throws {
        try await database.run { c in
            try await PostgresStoreDatabase.execute(c, "DELETE FROM credentials WHERE credential_id = \(id) RETURNING 1")
        }
    }
}

/// Records each intent to pay in `payment_intents` before paying, so that a crash can be recovered (and the sweeper
/// keeps the reservation of a payment whose outcome is unknown).
public final class PostgresPaymentJournal: PaymentJournal {
    public let database: PostgresStoreDatabase

    public init(database: PostgresStoreDatabase) { self.database = database }

    struct Details: Codable {
        var url: String
        var settleMinorUnits: Int64?
        var credentialPrefix: String?
        var credentialExpiresAt: String?
    }

    public func begin(_ intent: PaymentIntent) async throws {
        try await database.run { c in try await Self.insert(intent, c) }
    }

    /// Inserts a pending intent on `c` (inside the caller's transaction, if any).
    static func insert(_ intent: PaymentIntent, _ c: PostgresConnection) async throws {
        let details = Details(url: intent.url, settleMinorUnits: intent.settleMinorUnits,
                              credentialPrefix: intent.credentialPrefix?.value,
                              credentialExpiresAt: intent.credentialExpiresAt.map(Timestamp.iso))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(details), as: UTF8.self)
        let created = PGTime.text(intent.createdAt)
        try await PostgresStoreDatabase.execute(c, """
            INSERT INTO payment_intents(id, request_id, rail, origin, envelope_id, draw_id, payment_hash, invoice,
              credential_scope, state, proof, created_at, resolved_at, details_json)
            VALUES (\(intent.id), \(intent.requestID), \(intent.rail.rawValue), \(intent.origin), \(intent.envelopeID),
              \(intent.drawID), \(intent.paymentHash), \(intent.invoice), \(intent.credentialScope), 'pending', NULL,
              \(created), NULL, \(json))
            """)
    }

    public func resolve(id: String, state: PaymentIntent.State, proof: String?, now: Date) async throws {
        try await database.run { c in try await Self.resolve(id: id, state: state, proof: proof, now: now, c) }
    }

    /// Resolves an intent on `c` (inside the caller's transaction, if any).
    static func resolve(id: String, state: PaymentIntent.State, proof: String?, now: Date, _ c: PostgresConnection)
        async throws
    {
        let resolved = PGTime.text(now)
        try await PostgresStoreDatabase.execute(c, """
            UPDATE payment_intents SET state = \(state.rawValue), proof = COALESCE(\(proof), proof),
              resolved_at = \(resolved) WHERE id = \(id) RETURNING 1
            """)
    }

    public func pending() async throws -> [PaymentIntent] {
        let rows = try await database.run { c in
            try await PostgresStoreDatabase.rows(c, "SELECT * FROM payment_intents WHERE state = 'pending' ORDER BY created_at")
        }
        let decoder = JSONDecoder()
        return try rows.map { row in
            let details = try row["details_json"].decode(String?.self)
                .flatMap { try? decoder.decode(Details.self, from: Data($0.utf8)) }
            return PaymentIntent(
                id: try row["id"].decode(String.self), requestID: try row["request_id"].decode(String.self),
                rail: RailID(try row["rail"].decode(String.self)), origin: try row["origin"].decode(String.self),
                url: details?.url ?? "", envelopeID: try row["envelope_id"].decode(String?.self),
                drawID: try row["draw_id"].decode(String?.self), settleMinorUnits: details?.settleMinorUnits,
                paymentHash: try row["payment_hash"].decode(String?.self),
                invoice: try row["invoice"].decode(String?.self),
                credentialPrefix: details?.credentialPrefix.map(Redacted.init),
                credentialScope: try row["credential_scope"].decode(String?.self),
                credentialExpiresAt: details?.credentialExpiresAt.flatMap(Timestamp.parse),
                state: PaymentIntent.State(rawValue: try row["state"].decode(String.self)) ?? .pending,
                proof: try row["proof"].decode(String?.self),
                createdAt: Timestamp.parse(try row["created_at"].decode(String.self)) ?? Date())
        }
    }

    /// All intents (for inspection and tests), oldest first.
    public func all() async throws -> [(id: String, state: String, proof: String?)] {
        let rows = try await database.run { c in
            try await PostgresStoreDatabase.rows(c, "SELECT id, state, proof FROM payment_intents ORDER BY created_at")
        }
        return try rows.map {
            (id: try $0["id"].decode(String.self), state: try $0["state"].decode(String.self),
             proof: try $0["proof"].decode(String?.self))
        }
    }
}

/// Where Routeweiler keeps its trace, budgets, credentials and payment journal: an SQLite file or a PostgreSQL
/// database, named by a URL.
public enum StoreLocation: Sendable, Hashable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(PostgresURL)

    /// `postgres://…` / `postgresql://…`, `sqlite:///abs/path`, `sqlite:relative/path`, or a plain file path.
    /// - Throws: ``ConfigurationError`` (without the password).
    public init(_ text: String) throws {
        if PostgresURL.isPostgres(text) {
            self = .postgres(try PostgresURL(text))
        } else if text.lowercased().hasPrefix("sqlite://") {
            let path = String(text.dropFirst("sqlite://".count))
            guard !path.isEmpty else { throw ConfigurationError("sqlite:// needs a path, e.g. sqlite:///var/lib/rw.db") }
            self = .sqlite(path: path)
        } else if text.lowercased().hasPrefix("sqlite:") {
            self = .sqlite(path: String(text.dropFirst("sqlite:".count)))
        } else if text.contains("://") {
            throw ConfigurationError("unsupported store URL \(PostgresURL.redact(text)): use postgres://… or sqlite:///path")
        } else {
            guard !text.isEmpty else { throw ConfigurationError("empty store path") }
            self = .sqlite(path: text)
        }
    }

    public var isPostgres: Bool { if case .postgres = self { true } else { false } }

    /// The location without secrets.
    public var description: String {
        switch self {
        case .sqlite(let path): "sqlite://\(path)"
        case .postgres(let url): url.description
        }
    }
}

extension RouteweilerClient.Configuration {
    /// Keeps the trace, the budget, paid credentials and the payment journal in one PostgreSQL database, shared by
    /// every process and machine that uses the same URL. Connects and runs the migrations first.
    ///
    /// ```swift
    /// var config = RouteweilerClient.Configuration(funding: [lightning])
    /// try await config.usePostgres(url: "postgres://rw:secret@db.internal:5432/routeweiler")
    /// config.budget = .envelope(id: "agent-42")
    /// ```
    /// - Returns: the database (keep it to close the pool, or to share it).
    @discardableResult
    public mutating func usePostgres(url: String, keystore: EnvelopeKeystore = EnvelopeKeystore(),
                                     urlMode: PostgresTraceSink.URLMode = .raw) async throws -> PostgresStoreDatabase {
        let database = try await PostgresStoreDatabase.open(url: url)
        usePostgres(database: database, keystore: keystore, urlMode: urlMode)
        return database
    }

    /// Uses an already open ``PostgresStoreDatabase`` for the trace, the budget, credentials and the payment journal.
    public mutating func usePostgres(database: PostgresStoreDatabase, keystore: EnvelopeKeystore = EnvelopeKeystore(),
                                     urlMode: PostgresTraceSink.URLMode = .raw) {
        traceSink = PostgresTraceSink(database: database, urlMode: urlMode)
        budgetStore = PostgresBudgetStore(database: database, keystore: keystore)
        credentialStore = PostgresCredentialStore(database: database)
        paymentJournal = PostgresPaymentJournal(database: database)
    }

    /// Picks the storage engine from a URL: `postgres://…` uses ``usePostgres(url:keystore:urlMode:)``; a path or
    /// `sqlite:///path` uses `useSQLite(path:keystore:urlMode:)`.
    public mutating func useStore(_ location: String, keystore: EnvelopeKeystore = EnvelopeKeystore(),
                                  dropURLQueries: Bool = false) async throws {
        switch try StoreLocation(location) {
        case .sqlite(let path):
            try useSQLite(path: path, keystore: keystore, urlMode: dropURLQueries ? .drop : .raw)
        case .postgres(let url):
            let database = try await PostgresStoreDatabase.open(url: url)
            usePostgres(database: database, keystore: keystore, urlMode: dropURLQueries ? .drop : .raw)
        }
    }
}
