import Foundation
import GRDB
import HTTPTypes
import Routeweiler
import RouteweilerL402
import RouteweilerSQLite
import RouteweilerTesting
import RouteweilerWire

struct MicroResult: Codable, Sendable {
    var name: String
    var iterations: Int
    /// Per operation, in microseconds.
    var us: Summary
    var note: String
}

/// Micro-benchmarks of Routeweiler's own work on a paid L402 call, each on real inputs minted by the built-in
/// paywall and a real trace event from a paid call.
struct Micro {
    let iterations: Int
    /// Only the client-level free-call benchmarks (`--micro-client-only`).
    var clientOnly = false
    let log: @Sendable (String) -> Void

    func time(_ name: String, _ n: Int, note: String, _ body: () throws -> Void) rethrows -> MicroResult {
        for _ in 0..<min(n, 200) { try body() }
        var samples = [UInt64]()
        samples.reserveCapacity(n)
        for _ in 0..<n {
            let s = nowNanos()
            try body()
            samples.append(nowNanos() - s)
        }
        return MicroResult(name: name, iterations: n, us: .us(samples), note: note)
    }

    func timeAsync(_ name: String, _ n: Int, note: String, perOperation: Int = 1, _ body: () async throws -> Void)
        async rethrows -> MicroResult
    {
        for _ in 0..<min(n, 50) { try await body() }
        var samples = [UInt64]()
        samples.reserveCapacity(n)
        for _ in 0..<n {
            let s = nowNanos()
            try await body()
            samples.append((nowNanos() - s) / UInt64(perOperation))
        }
        return MicroResult(name: name, iterations: n * perOperation, us: .us(samples), note: note)
    }

    func run() async throws -> [MicroResult] {
        if clientOnly { return try await clientFreeCalls(n: iterations) }
        let network = FakeLightningNetwork()
        let paywall = FakePaywall(network: network, configuration: BenchTargets.paywallConfiguration(rail: .l402, priceSats: 10))
        let headers = try await paywall.mintChallenge()
        let header = headers[0]
        let challenges = try AuthChallenge.parse(header)
        let l402 = try L402Challenge(challenges[0])
        let url = URL(string: "http://127.0.0.1:8080/protected")!
        var fields = HTTPFields()
        fields.append(HTTPField(name: .wwwAuthenticate, value: header))
        let context = ChallengeContext(
            request: RouteweilerRequest(url: url),
            response: TransportResponse(status: .init(code: 402), headerFields: fields, body: Array(#"{"error":"payment required"}"#.utf8)),
            now: Date())
        guard case .offer(let offer)? = L402Rail().offers(in: context).first else {
            throw BenchFailure("the minted challenge gave no L402 offer")
        }
        let engine = try PolicyEngine(policy: try Policy(json: Data(BenchConfig.policyJSON.utf8)))
        let n = iterations
        var results: [MicroResult] = []
        log("micro: codecs")
        results.append(try time("bolt11_decode_and_signature_check", n,
                                note: "Bolt11Invoice(parsing:): bech32, fields, secp256k1 signature recovery/verify") {
            _ = try Bolt11Invoice(parsing: l402.invoice)
        })
        results.append(try time("macaroon_decode", n, note: "Macaroon(base64:) of the paywall's token (one caveat)") {
            _ = try Macaroon(base64: l402.macaroon)
        })
        results.append(try time("challenge_parse", n, note: "AuthChallenge.parse + L402Challenge of WWW-Authenticate") {
            _ = try L402Challenge(try AuthChallenge.parse(header)[0])
        })
        results.append(time("l402_offer", n, note: "L402Rail.offers: parse, BOLT-11 decode and check, macaroon decode, normalise") {
            _ = L402Rail().offers(in: context)
        })
        results.append(time("policy_evaluate", n, note: "PolicyEngine.evaluate, two rules (glob host, host match)") {
            _ = engine.evaluate(challenge: offer.challenge, requestURL: url)
        })
        results.append(time("uuidv7", n, note: "UUIDv7.make (request and intent ids)") { _ = UUIDv7.make() })
        let receipt = DrawReceipt(
            receiptId: UUIDv7.make(), envelopeId: "micro", requestId: UUIDv7.make(),
            idempotencyKey: String(repeating: "ab", count: 32), amountReservedMinorUnits: 1, amountReservedCurrency: .usd,
            railQuoted: .l402, issuedAt: Date(), expiresAt: Date().addingTimeInterval(60), counterPublicKey: "",
            signature: "")
        let signingKey = EnvelopeSigningKey.generate()
        results.append(time("receipt_canonical_json", n, note: "DrawReceipt.canonicalJSON (the bytes a receipt signs)") {
            _ = receipt.canonicalJSON
        })
        results.append(try time("receipt_sign", n, note: "EnvelopeSigningKey.signature(for:): canonical JSON + Ed25519 + base64") {
            _ = try signingKey.signature(for: receipt)
        })

        // A real trace event of a paid call.
        let event = try await Self.samplePaidEvent()
        results.append(try time("trace_event_json", n, note: "TraceEvent.payloadJSON (sorted keys)") {
            _ = try event.payloadJSON()
        })

        let dir = try BenchConfig.freshDirectory("micro")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/routeweiler.db"
        let store = try SQLiteBudgetStore(path: db, keystore: EnvelopeKeystore(directory: dir + "/keys"))
        _ = try await store.createEnvelope(BudgetEnvelope(id: "micro", capMinorUnits: 1_000_000_000, capCurrency: .usd,
                                                          allowedRails: [.l402], ttlSeconds: 86_400), now: Date())
        let sqliteN = max(100, n / 5)
        log("micro: SQLite budget, journal, trace, credentials (\(sqliteN) each)")
        results.append(try await timeAsync("budget_reserve_and_settle", sqliteN,
                                           note: "SQLiteBudgetStore.reserve (BEGIN IMMEDIATE, cap check, signed receipt) + settle") {
            let rid = UUIDv7.make()
            let receipt = try await store.reserve(envelopeID: "micro", requestID: rid, idempotencyKey: rid,
                                                  amountMinorUnits: 1, rail: .l402, lease: .seconds(600), now: Date())
            try await store.settle(drawID: receipt.receiptId, amountMinorUnits: 1, now: Date())
        })
        var shared = RouteweilerClient.Configuration(funding: [])
        try shared.useSQLite(path: db, keystore: EnvelopeKeystore(directory: dir + "/keys"))
        guard let sharedStore = shared.budgetStore, let sharedJournal = shared.paymentJournal else {
            throw BenchFailure("useSQLite set no stores")
        }
        func intent(_ id: String) -> PaymentIntent {
            PaymentIntent(
                id: id, requestID: id, rail: .l402, origin: "http://127.0.0.1:8080", url: url.absoluteString,
                envelopeID: "micro", drawID: nil, settleMinorUnits: 1, paymentHash: String(repeating: "ab", count: 32),
                invoice: l402.invoice, credentialPrefix: Redacted("L402 " + l402.macaroon), credentialScope: "service:bench",
                credentialExpiresAt: nil, createdAt: Date())
        }
        results.append(try await timeAsync(
            "reserve_with_intent_and_settle_with_resolve", sqliteN,
            note: "what a paid call writes (useSQLite): reserve + intent in one transaction, settle + resolve in one"
        ) {
            let rid = UUIDv7.make()
            let receipt = try await sharedStore.reserve(
                envelopeID: "micro", requestID: rid, idempotencyKey: rid, amountMinorUnits: 1, rail: .l402,
                lease: .seconds(600), now: Date(), recording: intent(rid), in: sharedJournal)
            try await sharedStore.settle(drawID: receipt.receiptId, amountMinorUnits: 1, now: Date(), resolving: rid,
                                         proof: String(repeating: "cd", count: 32), in: sharedJournal)
        })
        let journal = try SQLitePaymentJournal(path: db)
        results.append(try await timeAsync("journal_begin_and_resolve", sqliteN,
                                           note: "SQLitePaymentJournal.begin (before paying) + resolve") {
            let id = UUIDv7.make()
            try await journal.begin(PaymentIntent(
                id: id, requestID: id, rail: .l402, origin: "http://127.0.0.1:8080", url: url.absoluteString,
                envelopeID: "micro", drawID: nil, settleMinorUnits: 1, paymentHash: String(repeating: "ab", count: 32),
                invoice: l402.invoice, credentialPrefix: nil, credentialScope: nil, credentialExpiresAt: nil,
                createdAt: Date()))
            try await journal.resolve(id: id, state: .succeeded, proof: String(repeating: "cd", count: 32), now: Date())
        })
        let sink = try SQLiteTraceSink(path: db, writeMode: .immediate)
        results.append(try await timeAsync("trace_write_per_call", sqliteN,
                                           note: "SQLiteTraceSink(.immediate).record: JSON, one row, one transaction") {
            var e = event
            e.requestId = UUIDv7.make()
            try await sink.record(e)
        })
        let behind = try SQLiteTraceSink(path: db)
        results.append(try await timeAsync("trace_record_write_behind", sqliteN,
                                           note: "SQLiteTraceSink(.writeBehind).record, the default: queue the event (the call's share)") {
            var e = event
            e.requestId = UUIDv7.make()
            try await behind.record(e)
        })
        try await behind.flush()
        let batch = 100
        results.append(try await timeAsync("trace_write_batched", max(10, sqliteN / batch), note: "SQLiteTraceSink.record(contentsOf:) of \(batch) rows in one transaction, per row",
                                           perOperation: batch) {
            var events: [TraceEvent] = []
            events.reserveCapacity(batch)
            for _ in 0..<batch {
                var e = event
                e.requestId = UUIDv7.make()
                events.append(e)
            }
            try await sink.record(contentsOf: events)
        })
        // What one write transaction costs by itself, through GRDB's async API (a hop to the writer queue and
        // back) and its synchronous one (run on the calling thread).
        let pool = try DatabasePool(path: db)
        results.append(try await timeAsync("sqlite_async_write_hop_only", sqliteN,
                                           note: "DatabasePool.writeWithoutTransaction { _ in } (async): the hop alone") {
            try await pool.writeWithoutTransaction { _ in }
        })
        results.append(try await timeAsync("sqlite_async_write_txn", sqliteN,
                                           note: "async BEGIN IMMEDIATE; UPDATE one row; COMMIT") {
            try await pool.writeWithoutTransaction { db in try Self.touch(db) }
        })
        results.append(try time("sqlite_sync_write_txn", sqliteN, note: "the same transaction, synchronous on this thread") {
            try pool.writeWithoutTransaction { db in try Self.touch(db) }
        })
        let credentials = try SQLiteCredentialStore(path: db)
        try await credentials.store(StoredCredential(
            id: UUIDv7.make(), rail: .l402, origin: "http://127.0.0.1:8080", scope: "service:bench", headerName: "Authorization",
            headerValue: Redacted("L402 " + l402.macaroon + ":" + String(repeating: "cd", count: 32)), expiresAt: nil,
            requestID: UUIDv7.make(), challengeURL: url.absoluteString))
        results.append(try await timeAsync("credential_lookup", sqliteN, note: "SQLiteCredentialStore.credential(for:) with one stored token (start of every call when reuse is on)") {
            _ = try await credentials.credential(for: url, now: Date())
        })
        results += try await clientFreeCalls(n: n)
        return results
    }

    /// A whole free call through the client, with the network replaced by a transport that answers at once:
    /// what the client itself does around a request, bare and with the SQLite trace, budget and reuse check on.
    private func clientFreeCalls(n: Int) async throws -> [MicroResult] {
        log("micro: free calls through the client, no network (\(n) each)")
        var results: [MicroResult] = []
        try await Self.withBuiltInL402Target { target in
            let answer = ImmediateTransport(response: TransportResponse(
                status: .ok, headerFields: [.contentType: "application/json", .contentLength: "13"],
                body: Array(#"{"free":true}"#.utf8)))
            let url = "http://127.0.0.1:8080/free"
            var bareConfig = BenchConfig.bare(target: target)
            bareConfig.transport = answer
            let dir = try BenchConfig.freshDirectory("micro-free")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            var fullConfig = try BenchConfig.full(target: target, directory: dir, reuse: true, probe: false)
            fullConfig.transport = answer
            try await RouteweilerClient.withClient(configuration: bareConfig) { bare in
                results.append(try await timeAsync("client_free_call_bare", n,
                                                   note: "RouteweilerClient.get, no trace sink or budget; the transport answers 200 at once") {
                    _ = try await bare.get(url)
                })
            }
            try await RouteweilerClient.withClient(configuration: fullConfig) { full in
                results.append(try await timeAsync("client_free_call_traced", n,
                                                   note: "the same with the SQLite trace (written behind), budget, policy and reuse check") {
                    _ = try await full.get(url)
                })
                try await full.configuration.traceSink?.flush()
            }
        }
        return results
    }

    static func touch(_ db: Database) throws {
        try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
        try db.cachedStatement(sql: "UPDATE envelopes SET status = status WHERE id = 'micro'").execute()
        try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
    }

    /// Runs `body` against the built-in L402 paywall and fake LND, in this process (10 sats a call).
    static func withBuiltInL402Target(_ body: (BenchTarget) async throws -> Void) async throws {
        try await BenchTargets.with(url: nil, freeURL: nil, rail: .l402, lnd: try BenchLNDOptions.parse([]),
                                    evm: try BenchEVMOptions.parse([]), priceSats: 10, placement: .inProcess, body)
    }

    /// One paid call through the built-in doubles, recorded in memory.
    static func samplePaidEvent() async throws -> TraceEvent {
        let sink = InMemoryTraceSink()
        try await Self.withBuiltInL402Target { target in
            var config = try BenchConfig.full(target: target, directory: try BenchConfig.freshDirectory("sample"),
                                              reuse: false, probe: false)
            config.traceSink = sink
            _ = try await RouteweilerClient.withClient(configuration: config) { rw in try await rw.get(target.paidURL) }
        }
        guard let event = await sink.events.first, event.payment != nil else {
            throw BenchFailure("no paid trace event")
        }
        return event
    }
}

/// Answers every request with the same response, at once: the client's own work without the network.
struct ImmediateTransport: HTTPTransport {
    let response: TransportResponse
    func send(_ request: RouteweilerRequest, timeout: Duration) async throws -> TransportResponse { response }
}
