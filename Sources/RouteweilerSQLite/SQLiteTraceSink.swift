import Foundation
import GRDB
public import Routeweiler

/// Stores each finished call as one row of `trace_events` in an SQLite file (SPEC §12.3, §13).
///
/// Rows are inserted with `INSERT OR IGNORE` keyed by `request_id`, so recording the same event twice keeps one
/// row. The file is created with mode 0600 and opened in WAL mode; several processes may share it.
public final class SQLiteTraceSink: TraceSink {
    /// How URLs are written: as sent, or without query and fragment.
    public enum URLMode: String, Sendable { case raw, drop }

    public let path: String
    public let urlMode: URLMode
    private let pool: DatabasePool

    /// Opens (or creates) the database at `path` and runs the migrations.
    public init(path: String = "./routeweiler-traces.db", urlMode: URLMode = .raw) throws {
        self.path = path
        self.urlMode = urlMode
        self.pool = try RouteweilerDatabase.open(path: path)
    }

    /// A sink on an open pool (shared with the other stores of the same file, see `useSQLite`).
    init(pool: DatabasePool, path: String, urlMode: URLMode) {
        self.path = path
        self.urlMode = urlMode
        self.pool = pool
    }

    public func record(_ event: TraceEvent) async throws {
        let row = try Self.row(for: prepared(event))
        try await pool.write { db in try Self.insert(row, db) }
    }

    /// Records several finished calls in one transaction (one commit instead of one per row); each event still
    /// gets exactly one row.
    public func record(contentsOf events: [TraceEvent]) async throws {
        guard !events.isEmpty else { return }
        let rows = try events.map { try Self.row(for: prepared($0)) }
        try await pool.write { db in
            for row in rows { try Self.insert(row, db) }
        }
    }

    private func prepared(_ event: TraceEvent) -> TraceEvent {
        guard urlMode == .drop else { return event }
        var event = event
        if var challenge = event.challenge {
            challenge.resource.url = Self.dropQuery(challenge.resource.url)
            challenge.resource.urlEncoding = "drop"
            event.challenge = challenge
        }
        event.url = event.url.map(Self.dropQuery)
        return event
    }

    private static let insertSQL = """
        INSERT OR IGNORE INTO trace_events(request_id, envelope_id, selected_rail, fallback_from, facilitator,
          http_status, service_delivered, amount_native, amount_native_currency, amount_envelope,
          amount_envelope_currency, fmv_quality, ts_start, ts_end, shipped_at, payload)
        VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL,?)
        """

    private static func row(for e: TraceEvent) throws -> StatementArguments {
        let payload = try e.payloadJSON()
        return [
            e.requestId, e.envelopeId, e.selectedRail?.rawValue, e.fallbackFrom?.rawValue, e.facilitator,
            e.outcome.httpStatus, e.outcome.serviceDelivered ? 1 : 0,
            e.payment.map { String($0.amountNative) }, e.payment?.amountNativeCurrency,
            e.payment?.amountEnvelope, e.payment?.amountEnvelopeCurrency, e.payment?.fmvQuality.rawValue,
            Timestamp.iso(e.timestampStart), Timestamp.iso(e.timestampEnd), payload,
        ]
    }

    /// Inserts with the connection's cached prepared statement (compiled once per connection).
    private static func insert(_ row: StatementArguments, _ db: Database) throws {
        try db.cachedStatement(sql: insertSQL).execute(arguments: row)
    }

    /// The most recent events, newest first.
    public func events(limit: Int = 100) async throws -> [TraceEvent] {
        let payloads = try await pool.read { db in
            try String.fetchAll(db, sql: "SELECT payload FROM trace_events ORDER BY ts_start DESC, rowid DESC LIMIT ?",
                                arguments: [limit])
        }
        let decoder = JSONDecoder()
        return try payloads.map { try decoder.decode(TraceEvent.self, from: Data($0.utf8)) }
    }

    public func recentEvents(limit: Int) async throws -> [TraceEvent] { try await events(limit: limit) }

    /// The number of rows in `trace_events`.
    public func count() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM trace_events") ?? 0 }
    }

    static func dropQuery(_ url: String) -> String {
        guard var c = URLComponents(string: url) else { return url }
        c.query = nil
        c.fragment = nil
        return c.string ?? url
    }
}

extension TraceSink where Self == SQLiteTraceSink {
    /// An SQLite trace sink at `path` (SPEC §12.3).
    public static func sqlite(_ path: String = "./routeweiler-traces.db",
                              urlMode: SQLiteTraceSink.URLMode = .raw) throws -> SQLiteTraceSink {
        try SQLiteTraceSink(path: path, urlMode: urlMode)
    }
}
