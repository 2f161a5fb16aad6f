import Foundation
import GRDB
import PostgresNIO
import Routeweiler
import RouteweilerSQLite
import Testing

func temporaryDatabasePath(_ name: String = "trace") -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rw-tests-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent("\(name).db").path
}

/// A second connection to a test database, the way any other user of the shared file opens it: waiting out a lock
/// (a store's background WAL checkpointer may be mid-checkpoint) instead of failing at once.
func otherConnection(_ path: String) throws -> DatabaseQueue {
    var config = Configuration()
    config.busyMode = .timeout(10)
    return try DatabaseQueue(path: path, configuration: config)
}

@Suite struct SQLiteTraceSinkTests {
    func event(id: String = UUIDv7.make(), url: String = "http://h/p?token=secret", paid: Bool = true) -> TraceEvent {
        let challenge = NormalizedChallenge(
            rail: .l402, resource: .init(method: "GET", url: url),
            price: .init(amount: 21, currency: "btc-lightning", humanAmount: "21 sats"),
            payee: .init(identifier: "02ab"), nonce: "hash", expiresAt: Date(timeIntervalSince1970: 1_900_000_000),
            raw: ["kind": "l402"])
        return TraceEvent(
            requestId: id, agentId: "agent", envelopeId: nil, policyHash: RouteweilerClient.defaultPolicyHash,
            method: "GET", url: url, challenge: paid ? challenge : nil, selectedRail: paid ? .l402 : nil,
            fallbackFrom: nil, facilitator: paid ? "lightning" : nil, fundingSource: "lightning:bitcoin-regtest",
            payment: paid
                ? .init(proofType: .preimage, proofValue: "aa", amountNative: 21, amountNativeCurrency: "btc-lightning",
                        amountEnvelope: nil, amountEnvelopeCurrency: nil, fmvQuality: .unavailable,
                        settlementLatencyMs: 12) : nil,
            outcome: .init(httpStatus: 200, serviceDelivered: true, serviceLatencyMs: 12),
            timestampStart: Date(timeIntervalSince1970: 1_700_000_000.000120), timestampEnd: Date(timeIntervalSince1970: 1_700_000_001))
    }

    @Test func writesOneRowWithTheSpecColumnsAndPayload() async throws {
        let path = temporaryDatabasePath()
        let sink = try SQLiteTraceSink(path: path)
        let e = event()
        try await sink.record(e)
        try await sink.record(e)  // duplicate request id: ignored
        #expect(try await sink.count() == 1)
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)

        let db = try otherConnection(path)
        let row = try db.read { db in try Row.fetchOne(db, sql: "SELECT * FROM trace_events") }
        let r = try #require(row)
        #expect(r["selected_rail"] as String? == "l402")
        #expect(r["amount_native"] as String? == "21")
        #expect(r["service_delivered"] as Int? == 1)
        #expect(r["shipped_at"] as String? == nil)
        #expect(r["ts_start"] as String? == "2023-11-14T22:13:20.000120+00:00")
        #expect(r["ts_end"] as String? == "2023-11-14T22:13:21+00:00")
        let payload = try #require(r["payload"] as String?)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(payload.utf8)) as? [String: Any])
        let payment = try #require(json["payment"] as? [String: Any])
        #expect(payment["proofType"] as? String == "preimage")
        #expect(payment["amountNative"] as? Int == 21)
        #expect(payment["fmvQuality"] as? String == "unavailable")
        #expect(payment.keys.contains("amountEnvelope"))  // nulls are present
        #expect(json["timestampStart"] as? String == "2023-11-14T22:13:20.000120Z")
        #expect(json["parentRequestId"] is NSNull)
        // All SPEC tables exist.
        let tables = try await db.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
        }
        for t in ["credentials", "draws", "envelope_fmv_snapshots", "envelopes", "trace_events"] {
            #expect(tables.contains(t))
        }
        // Round trip.
        let back = try await sink.events()
        let backJSON = try back.map { try $0.payloadJSON() }
        let original = try e.payloadJSON()
        #expect(backJSON == [original], "\(backJSON) vs \(original)")
    }

    @Test(arguments: Backend.available) func dropModeStripsQueries(_ backend: Backend) async throws {
        let sink = try await StoreUnderTest(backend).traceSink(dropQueries: true)
        try await sink.record(event())
        let back = try #require(try await sink.events(limit: 100).first)
        #expect(back.challenge?.resource.url == "http://h/p")
        #expect(back.challenge?.resource.urlEncoding == "drop")
        #expect(back.url == "http://h/p")
    }

    @Test(arguments: Backend.available) func manyConcurrentWritersKeepEveryRow(_ backend: Backend) async throws {
        let sink = try await StoreUnderTest(backend).traceSink()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<100 { group.addTask { try await sink.record(self.event(paid: false)) } }
            try await group.waitForAll()
        }
        #expect(try await sink.count() == 100)
    }

    @Test(.disabled(if: Backend.postgresURL == nil, Backend.skipNote))
    func postgresWritesOneRowWithTheSpecColumnsAndPayload() async throws {
        let store = try await StoreUnderTest(.postgres)
        let database = try #require(store.postgres)
        let sink = try store.traceSink()
        let e = event()
        try await sink.record(e)
        try await sink.record(e)  // duplicate request id: ignored
        #expect(try await sink.count() == 1)
        let connection = try await Backend.directConnection(to: database)
        defer { Task { try? await connection.close() } }
        let logger = BudgetStoreTests.logger
        var rows: [PostgresRandomAccessRow] = []
        for try await row in try await connection.query(
            "SELECT selected_rail, amount_native, service_delivered, shipped_at, ts_start, ts_end, payload FROM trace_events",
            logger: logger) { rows.append(row.makeRandomAccess()) }
        let r = try #require(rows.first)
        #expect(try r["selected_rail"].decode(String?.self) == "l402")
        #expect(try r["amount_native"].decode(String?.self) == "21")
        #expect(try r["service_delivered"].decode(Int32.self) == 1)
        #expect(try r["shipped_at"].decode(String?.self) == nil)
        #expect(try r["ts_start"].decode(String.self) == "2023-11-14T22:13:20.000120+00:00")
        #expect(try r["ts_end"].decode(String.self) == "2023-11-14T22:13:21+00:00")
        #expect(try r["payload"].decode(String.self) == (try e.payloadJSON()))
        var tables: [String] = []
        for try await name in try await connection.query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = \(database.url.schema)",
            logger: logger).decode(String.self) { tables.append(name) }
        for t in ["credentials", "draws", "envelope_fmv_snapshots", "envelopes", "payment_intents", "trace_events",
                  "routeweiler_migrations"] {
            #expect(tables.contains(t))
        }
        let back = try await sink.events(limit: 10)
        #expect(try back.map { try $0.payloadJSON() } == [try e.payloadJSON()])
    }

    @Test func timestampsFollowTheSpecFormats() {
        #expect(Timestamp.iso(Date(timeIntervalSince1970: 1_767_323_045)) == "2026-01-02T03:04:05+00:00")
        #expect(Timestamp.rfc3339Z(Date(timeIntervalSince1970: 1_767_323_045)) == "2026-01-02T03:04:05Z")
        #expect(Timestamp.rfc3339Z(Date(timeIntervalSince1970: 1_767_323_045.5)) == "2026-01-02T03:04:05.500000Z")
        #expect(RouteweilerClient.defaultPolicyHash
                == "sha256:89215a103d7244d092f99b00841dbbdb739cb60275fd5982c9d0d1f65411c6c7")
        let id = UUIDv7.make()
        #expect(id.count == 36)
        #expect(Array(id)[14] == "7")
    }
}
