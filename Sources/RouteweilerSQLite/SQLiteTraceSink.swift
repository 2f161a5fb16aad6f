import Foundation
import GRDB
public import Routeweiler
import Synchronization

/// Trace rows queued by a write-behind ``SQLiteTraceSink`` could not be written (they are lost; no money data is).
public struct TraceWriteError: Error, CustomStringConvertible {
    public var lostRows: Int
    public var path: String
    public var cause: (any Error)?
    public var description: String {
        "\(lostRows) trace row(s) could not be written to \(path): \(cause.map { "\($0)" } ?? "unknown error")"
    }
}

/// Stores each finished call as one row of `trace_events` in an SQLite file (SPEC §12.3, §13).
///
/// Rows are inserted with `INSERT OR IGNORE` keyed by `request_id`, so recording the same event twice keeps one
/// row. The file is created with mode 0600 and opened in WAL mode; several processes may share it.
///
/// By default rows are written behind the call (``WriteMode/writeBehind``): ``record(_:)`` queues the event and
/// returns, and one background task writes whatever was queued over its ``gatherWindow`` (25 ms by default) in one
/// transaction, then the next batch. A trace row is not money data (draws and payment intents are written before paying, in the
/// budget store and the journal), so this takes the trace write off the call's latency without weakening what a
/// crash can lose of money state.
/// ``flush()`` (called by ``RouteweilerClient/shutdown()``) and every read wait for the queue first.
public final class SQLiteTraceSink: TraceSink {
    /// How URLs are written: as sent, or without query and fragment.
    public enum URLMode: String, Sendable { case raw, drop }

    /// When a recorded event reaches the file.
    public enum WriteMode: Sendable, Hashable {
        /// ``record(_:)`` writes the row (one transaction) before it returns.
        case immediate
        /// ``record(_:)`` queues the row; a background task writes the rows queued over the sink's
        /// ``gatherWindow`` in one transaction. A process killed before ``flush()`` loses the rows still queued.
        case writeBehind
    }

    public let path: String
    public let urlMode: URLMode
    public let writeMode: WriteMode
    /// How long write-behind rows gather before the background task writes them (one transaction for all the calls
    /// that finished meanwhile).
    public let gatherWindow: Duration
    private let pool: DatabasePool
    private let queue = Mutex(Queue())
    /// Above this many queued rows, ``record(_:)`` waits for the writer (bounded memory under overload).
    private let maxQueued = 4096

    private struct Queue: Sendable {
        var events: [TraceEvent] = []
        var writer: Task<Void, Never>?
        var lostRows = 0
        var firstError: (any Error)?
    }

    /// The default ``gatherWindow``: a transaction per 25 ms of calls. (With 5 ms, the background writes cost the
    /// free calls around them about a point more of latency, measured; a crash loses at most this much of the
    /// trace, never money state.)
    public static let defaultGatherWindow: Duration = .milliseconds(25)

    /// Opens (or creates) the database at `path` and runs the migrations.
    public init(path: String = "./routeweiler-traces.db", urlMode: URLMode = .raw,
                writeMode: WriteMode = .writeBehind, gatherWindow: Duration = defaultGatherWindow) throws {
        self.path = path
        self.urlMode = urlMode
        self.writeMode = writeMode
        self.gatherWindow = gatherWindow
        self.pool = try RouteweilerDatabase.open(path: path)
    }

    /// A sink on an open pool (shared with the other stores of the same file, see `useSQLite`).
    init(pool: DatabasePool, path: String, urlMode: URLMode, writeMode: WriteMode, gatherWindow: Duration) {
        self.path = path
        self.urlMode = urlMode
        self.writeMode = writeMode
        self.gatherWindow = gatherWindow
        self.pool = pool
    }

    public func record(_ event: TraceEvent) async throws {
        switch writeMode {
        case .immediate:
            let row = try Self.row(for: prepared(event))
            try await pool.immediateWrite { db in try Self.insert(row, db) }
        case .writeBehind:
            let queued = queue.withLock { q -> Int in
                q.events.append(event)
                if q.writer == nil { q.writer = Task.detached { await self.drain() } }
                return q.events.count
            }
            if queued >= maxQueued { await waitForQueue() }
        }
    }

    /// Records several finished calls in one transaction (one commit instead of one per row); each event still
    /// gets exactly one row.
    public func record(contentsOf events: [TraceEvent]) async throws {
        guard !events.isEmpty else { return }
        try await write(events)
    }

    /// Waits until every queued row is written.
    /// - Throws: ``TraceWriteError`` when rows queued since the last flush could not be written (they are lost;
    ///   the error is reported once).
    public func flush() async throws {
        await waitForQueue(now: true)
        let (lost, error) = queue.withLock { q in
            defer { q.lostRows = 0; q.firstError = nil }
            return (q.lostRows, q.firstError)
        }
        if lost > 0 { throw TraceWriteError(lostRows: lost, path: path, cause: error) }
    }

    /// Waits until the background writer has written everything queued and stopped; with `now`, it stops waiting
    /// for more rows to gather (its task is cancelled, which only ends its sleeps).
    private func waitForQueue(now: Bool = false) async {
        while let writer = queue.withLock({ $0.writer }) {
            if now { writer.cancel() }
            await writer.value
        }
    }

    /// The background writer: waits ``gatherWindow`` (not once cancelled by ``flush()``), takes everything queued,
    /// writes it in one transaction, until the queue is empty. (One transaction for every call that finished
    /// meanwhile instead of one per call: a row costs about a third as much in a batch.)
    private func drain() async {
        while true {
            if !Task.isCancelled { try? await Task.sleep(for: gatherWindow) }
            let batch = queue.withLock { q -> [TraceEvent] in
                if q.events.isEmpty {
                    q.writer = nil
                    return []
                }
                var batch: [TraceEvent] = []
                swap(&batch, &q.events)
                return batch
            }
            if batch.isEmpty { return }
            do {
                try await write(batch)
            } catch {
                queue.withLock { q in
                    q.lostRows += batch.count
                    if q.firstError == nil { q.firstError = error }
                }
            }
        }
    }

    private func write(_ events: [TraceEvent]) async throws {
        let rows = try events.map { try Self.row(for: prepared($0)) }
        try await pool.immediateWrite { db in
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

    /// One `trace_events` row, as bound to ``insertSQL``.
    private struct Row: Sendable {
        var texts: [String?]  // parameters 1...5
        var httpStatus: Int?
        var serviceDelivered: Bool
        var amountNative: String?
        var amountNativeCurrency: String?
        var amountEnvelope: Double?
        var tail: [String?]  // parameters 11...15

        init(_ e: TraceEvent) throws {
            texts = [e.requestId, e.envelopeId, e.selectedRail?.rawValue, e.fallbackFrom?.rawValue, e.facilitator]
            httpStatus = e.outcome.httpStatus
            serviceDelivered = e.outcome.serviceDelivered
            amountNative = e.payment.map { String($0.amountNative) }
            amountNativeCurrency = e.payment?.amountNativeCurrency
            amountEnvelope = e.payment?.amountEnvelope
            tail = [e.payment?.amountEnvelopeCurrency, e.payment?.fmvQuality.rawValue, Timestamp.iso(e.timestampStart),
                    Timestamp.iso(e.timestampEnd), try e.payloadJSON()]
        }
    }

    private static func row(for e: TraceEvent) throws -> Row { try Row(e) }

    /// Inserts with the connection's cached prepared statement (compiled once per connection), bound through the C
    /// API.
    private static func insert(_ row: Row, _ db: Database) throws {
        let insert = try RawStatement(db, insertSQL)
        for (index, text) in row.texts.enumerated() { insert.bind(Int32(index + 1), text) }
        insert.bind(6, row.httpStatus.map(Int64.init))
        insert.bind(7, row.serviceDelivered ? 1 : 0)
        insert.bind(8, row.amountNative)
        insert.bind(9, row.amountNativeCurrency)
        insert.bind(10, row.amountEnvelope)
        for (index, text) in row.tail.enumerated() { insert.bind(Int32(index + 11), text) }
        try insert.run()
    }

    /// The most recent events, newest first (after the queued rows are written).
    public func events(limit: Int = 100) async throws -> [TraceEvent] {
        await waitForQueue()
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
        await waitForQueue()
        return try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM trace_events") ?? 0 }
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
                              urlMode: SQLiteTraceSink.URLMode = .raw,
                              writeMode: SQLiteTraceSink.WriteMode = .writeBehind) throws -> SQLiteTraceSink {
        try SQLiteTraceSink(path: path, urlMode: urlMode, writeMode: writeMode)
    }
}
