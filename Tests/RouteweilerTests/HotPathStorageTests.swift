import Foundation
import GRDB
import Routeweiler
import RouteweilerTesting
import RouteweilerPostgres
import RouteweilerSQLite
import Synchronization
import Testing

/// What the hot-path storage changes must not break: running totals equal the draws, the intent and the
/// reservation commit or roll back together, and write-behind trace rows all land exactly once.
@Suite struct HotPathStorageTests {
    final class RunCounter: Sendable { let runs = Atomic<Int>(0) }

    private static let t0 = Date(timeIntervalSince1970: 1_780_000_000.25)

    private static func envelope(_ id: String = "env-1", cap: Int64 = 1_000) -> BudgetEnvelope {
        BudgetEnvelope(id: id, capMinorUnits: cap, capCurrency: .usd, allowedRails: [.l402, .x402], ttlSeconds: 3600)
    }

    /// Sums the draws by hand, the way the store did before it kept totals.
    private static func handSums(_ draws: [DrawRecord]) -> (reserved: Int64, settled: Int64) {
        (draws.filter { $0.state == .reserved }.reduce(0) { $0 + $1.amountReservedMinorUnits },
         draws.filter { $0.state == .settled }.reduce(0) { $0 + ($1.amountSettledMinorUnits ?? 0) })
    }

    @Test(arguments: Backend.available) func runningTotalsEqualTheDrawsAfterEveryKindOfTransition(_ backend: Backend)
        async throws
    {
        let backing = try await StoreUnderTest(backend, name: "totals")
        let store = try backing.budgetStore()
        _ = try await store.createEnvelope(Self.envelope(), now: Self.t0)
        _ = try await store.createEnvelope(Self.envelope("env-2"), now: Self.t0)
        var generator = SystemRandomNumberGenerator()
        var open: [String] = []
        for step in 0..<120 {
            let envelope = step % 3 == 0 ? "env-2" : "env-1"
            switch Int.random(in: 0..<5, using: &generator) {
            case 0, 1:
                let r = try? await store.reserve(
                    envelopeID: envelope, requestID: "r\(step)", idempotencyKey: "k\(step)",
                    amountMinorUnits: Int64.random(in: 1...30, using: &generator), rail: .l402,
                    lease: .seconds(step % 4 == 0 ? 1 : 600), now: Self.t0)
                if let r { open.append(r.receiptId) }
            case 2 where !open.isEmpty:
                let id = open.removeFirst()
                try await store.settle(drawID: id, amountMinorUnits: Int64.random(in: 0...30, using: &generator),
                                       now: Self.t0)
            case 3 where !open.isEmpty:
                try await store.release(drawID: open.removeLast(), now: Self.t0)
            default:
                _ = try await store.sweepExpired(now: Self.t0.addingTimeInterval(5))
            }
            for id in ["env-1", "env-2"] {
                let balance = try await store.balance(envelopeID: id)
                let sums = Self.handSums(try await store.draws(envelopeID: id))
                #expect(balance.reservedMinorUnits == sums.reserved && balance.settledMinorUnits == sums.settled,
                        "step \(step), \(id): totals \(balance.reservedMinorUnits)/\(balance.settledMinorUnits), draws \(sums)")
            }
        }
        // A settled draw revived after a sweep and a hand-deleted row are counted too.
        try await backing.sql("DELETE FROM draws WHERE state = 'rolled_back'")
        for id in ["env-1", "env-2"] {
            let balance = try await store.balance(envelopeID: id)
            let sums = Self.handSums(try await store.draws(envelopeID: id))
            #expect(balance.reservedMinorUnits == sums.reserved && balance.settledMinorUnits == sums.settled)
        }
    }

    /// Settlements, releases, sweeps and reservations racing on one envelope: every writer takes the envelope row
    /// before the draws (PostgreSQL would otherwise abort one side of a deadlock), and the totals still add up.
    @Test(arguments: Backend.available) func racingWritersNeitherDeadlockNorMiscount(_ backend: Backend) async throws {
        let backing = try await StoreUnderTest(backend, name: "race")
        let store = try backing.budgetStore()
        _ = try await store.createEnvelope(Self.envelope(cap: 1_000_000), now: Self.t0)
        var ids: [String] = []
        for i in 0..<60 {
            ids.append(try await store.reserve(envelopeID: "env-1", requestID: "r\(i)", idempotencyKey: "k\(i)",
                                               amountMinorUnits: 10, rail: .l402, lease: .seconds(1), now: Self.t0)
                .receiptId)
        }
        let later = Self.t0.addingTimeInterval(5)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (i, id) in ids.enumerated() {
                group.addTask {
                    if i % 2 == 0 {
                        try await store.settle(drawID: id, amountMinorUnits: 7, now: later)
                    } else if i % 3 == 0 {
                        try await store.release(drawID: id, now: later)
                    } else {
                        _ = try await store.reserve(envelopeID: "env-1", requestID: "n\(i)", idempotencyKey: "n\(i)",
                                                    amountMinorUnits: 3, rail: .l402, lease: .seconds(600), now: later)
                    }
                }
                if i % 10 == 0 { group.addTask { _ = try await store.sweepExpired(now: later) } }
            }
            try await group.waitForAll()
        }
        let balance = try await store.balance(envelopeID: "env-1")
        let sums = Self.handSums(try await store.draws(envelopeID: "env-1"))
        #expect(balance.reservedMinorUnits == sums.reserved && balance.settledMinorUnits == sums.settled,
                "totals \(balance.reservedMinorUnits)/\(balance.settledMinorUnits), draws \(sums)")
        #expect(sums.settled == 30 * 7)
    }

    /// A database file migrated up to `migration` only, with envelope `old` (cap 100 USD) and `rows` inserted;
    /// returns its path and the keystore directory next to it.
    static func olderDatabase(_ name: String, upTo migration: String, rows: String) async throws
        -> (path: String, keys: String)
    {
        let path = temporaryDatabasePath(name)
        let keys = (URL(fileURLWithPath: path).deletingLastPathComponent().path as NSString)
            .appendingPathComponent("keys")
        let old = try DatabasePool(path: path)
        try RouteweilerDatabase.migrator.migrate(old, upTo: migration)
        try await old.write { db in
            try db.execute(sql: """
                    INSERT INTO envelopes(id, cap_minor_units, cap_currency, allowed_rails, allowed_origins_glob, status,
                      created_at, expires_at, counter_public_key) VALUES
                      ('old', 100, 'USD', '["l402"]', '[]', 'active', '2026-01-01T00:00:00.000000+00:00',
                       '2099-01-01T00:00:00.000000+00:00', 'k');
                """ + rows)
        }
        return (path, keys)
    }

    @Test func theMigrationBackfillsTotalsForDrawsWrittenBeforeIt() async throws {
        let (path, keys) = try await Self.olderDatabase("backfill", upTo: "v3-intent-details", rows: """
                    INSERT INTO draws(id, envelope_id, request_id, idempotency_key, amount_reserved_minor_units,
                      amount_settled_minor_units, rail_quoted, state, issued_at, expires_at) VALUES
                      ('d1', 'old', 'r1', 'k1', 10, NULL, 'l402', 'reserved', 'x', 'y'),
                      ('d2', 'old', 'r2', 'k2', 20, 17, 'l402', 'settled', 'x', 'y'),
                      ('d3', 'old', 'r3', 'k3', 40, NULL, 'l402', 'rolled_back', 'x', 'y');
                    """)
        let store = try SQLiteBudgetStore(path: path, keystore: EnvelopeKeystore(directory: keys))
        let balance = try await store.balance(envelopeID: "old")
        #expect(balance.reservedMinorUnits == 10 && balance.settledMinorUnits == 17 && balance.remainingMinorUnits == 73)
    }

    /// Migration v8 rebuilds `draws` and `payment_intents` as WITHOUT ROWID tables: every row, the totals, the
    /// triggers that keep them and the pending intents come through; the `(state, expires_at)` index is gone and the
    /// sweeper still releases exactly the expired, unjournalled reservations.
    @Test func theWithoutRowidMigrationKeepsEveryRowAndTheTotals() async throws {
        let (path, keys) = try await Self.olderDatabase("v8", upTo: "v7-credentials-origin-recent", rows: """
                    INSERT INTO draws(id, envelope_id, request_id, idempotency_key, amount_reserved_minor_units,
                      amount_settled_minor_units, rail_quoted, state, issued_at, expires_at, settled_at, signature) VALUES
                      ('d1', 'old', 'r1', 'k1', 10, NULL, 'l402', 'reserved', '2026-01-01T00:00:00.000000+00:00',
                       '2026-01-01T00:10:00.000000+00:00', NULL, 'sig1'),
                      ('d2', 'old', 'r2', 'k2', 20, 17, 'l402', 'settled', '2026-01-01T00:00:01.000000+00:00',
                       '2026-01-01T00:10:01.000000+00:00', '2026-01-01T00:00:02.000000+00:00', 'sig2'),
                      ('d3', 'old', 'r3', 'k3', 5, NULL, 'l402', 'reserved', '2026-01-01T00:00:03.000000+00:00',
                       '2026-01-01T00:10:03.000000+00:00', NULL, 'sig3');
                    INSERT INTO payment_intents(id, request_id, rail, origin, envelope_id, draw_id, state, created_at,
                      details_json) VALUES ('i3', 'r3', 'l402', 'http://127.0.0.1:1', 'old', 'd3', 'pending',
                      '2026-01-01T00:00:03.000000+00:00', '{}');
                    """)
        let store = try SQLiteBudgetStore(path: path, keystore: EnvelopeKeystore(directory: keys))
        let draws = try await store.draws(envelopeID: "old")
        #expect(draws.map(\.id) == ["d1", "d2", "d3"])
        #expect(draws.map(\.state) == [.reserved, .settled, .reserved])
        #expect(draws[1].amountSettledMinorUnits == 17 && draws[1].idempotencyKey == "k2")
        var balance = try await store.balance(envelopeID: "old")
        #expect(balance.reservedMinorUnits == 15 && balance.settledMinorUnits == 17)
        #expect(try await SQLitePaymentJournal(path: path).pending().map(\.drawID) == ["d3"])

        let schema = try await otherConnection(path).read { db in
            try Row.fetchAll(db, sql: "SELECT name, sql FROM sqlite_master WHERE tbl_name IN ('draws', 'payment_intents')")
                .map { ($0["name"] as String, ($0["sql"] as String?) ?? "") }
        }
        #expect(schema.contains { $0.0 == "draws" && $0.1.contains("WITHOUT ROWID") }, "\(schema)")
        #expect(schema.contains { $0.0 == "payment_intents" && $0.1.contains("WITHOUT ROWID") }, "\(schema)")
        #expect(!schema.contains { $0.0 == "draws_state_expires" })
        #expect(Set(schema.map(\.0)).isSuperset(of: ["draws_envelope_state", "draws_totals_insert", "draws_totals_update",
                                                   "draws_totals_delete", "payment_intents_pending"]), "\(schema)")

        // The triggers still keep the totals; the sweep releases d1 (expired) and keeps d3 (its intent is pending).
        try await store.settle(drawID: "d2", amountMinorUnits: 99, now: Date())  // already settled: unchanged
        #expect(try await store.sweepExpired(now: Date()) == 1)
        balance = try await store.balance(envelopeID: "old")
        #expect(balance.reservedMinorUnits == 5 && balance.settledMinorUnits == 17)
        #expect(try await store.draws(envelopeID: "old").map(\.state) == [.rolledBack, .settled, .reserved])

        // The sweep reads the reserved draws of each envelope through draws_envelope_state, not the whole table.
        let plan = try await otherConnection(path).read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + SQLiteBudgetStore.sweepSQL, arguments: ["x"])
                .map { $0["detail"] as String }
        }
        #expect(plan.contains { $0.contains("draws_envelope_state") }, "\(plan)")
        #expect(!plan.contains { $0.hasPrefix("SCAN draws") }, "\(plan)")
    }

    /// A budget store and a payment journal on one database, as the client configures them, with
    /// ``envelope(_:cap:)`` created (cap 50).
    private static func storeAndJournal(_ backend: Backend, name: String) async throws
        -> (backing: StoreUnderTest, store: any InspectableBudgetStore, journal: any PaymentJournal)
    {
        let backing = try await StoreUnderTest(backend, name: name)
        var config = RouteweilerClient.Configuration(funding: [])
        try backing.configure(&config)
        let store = try #require(config.budgetStore as? any InspectableBudgetStore)
        let journal = try #require(config.paymentJournal)
        _ = try await store.createEnvelope(envelope(cap: 50), now: t0)
        return (backing, store, journal)
    }

    /// A pending intent against `env-1`.
    private static func intent(_ id: String) -> PaymentIntent {
        PaymentIntent(id: id, requestID: "req-" + id, rail: .l402, origin: "http://127.0.0.1:1", url: "http://127.0.0.1:1/p",
                      envelopeID: "env-1", drawID: nil, settleMinorUnits: 7, paymentHash: "ab", invoice: "lnbc",
                      credentialPrefix: Redacted("L402 mac"), credentialScope: "services:x", credentialExpiresAt: nil,
                      createdAt: t0)
    }

    @Test(arguments: Backend.available) func theReservationAndTheIntentCommitTogether(_ backend: Backend) async throws {
        let (_, store, journal) = try await Self.storeAndJournal(backend, name: "atomic")
        let intent = Self.intent

        let receipt = try await store.reserve(envelopeID: "env-1", requestID: "req-a", idempotencyKey: "a",
                                              amountMinorUnits: 9, rail: .l402, lease: .seconds(600), now: Self.t0,
                                              recording: intent("intent-a"), in: journal)
        let pending = try await journal.pending()
        #expect(pending.map(\.id) == ["intent-a"] && pending.first?.drawID == receipt.receiptId)

        // The intent cannot be written (its id is taken): the reservation is rolled back with it.
        await #expect(throws: JournalWriteError.self) {
            _ = try await store.reserve(envelopeID: "env-1", requestID: "req-b", idempotencyKey: "b",
                                        amountMinorUnits: 5, rail: .l402, lease: .seconds(600), now: Self.t0,
                                        recording: intent("intent-a"), in: journal)
        }
        #expect(try await store.draws(envelopeID: "env-1").count == 1)
        #expect(try await store.balance(envelopeID: "env-1").reservedMinorUnits == 9)

        // Over the cap: neither a draw nor an intent.
        await #expect(throws: BudgetExceededError.self) {
            _ = try await store.reserve(envelopeID: "env-1", requestID: "req-c", idempotencyKey: "c",
                                        amountMinorUnits: 42, rail: .l402, lease: .seconds(600), now: Self.t0,
                                        recording: intent("intent-c"), in: journal)
        }
        #expect(try await journal.pending().map(\.id) == ["intent-a"])

        // Settling resolves the intent in the same transaction.
        try await store.settle(drawID: receipt.receiptId, amountMinorUnits: 7, now: Self.t0, resolving: "intent-a",
                               proof: "cafe", in: journal)
        #expect(try await journal.pending().isEmpty)
        let balance = try await store.balance(envelopeID: "env-1")
        #expect(balance.settledMinorUnits == 7 && balance.reservedMinorUnits == 0)
        let all: [(id: String, state: String, proof: String?)]
        if let sqlite = journal as? SQLitePaymentJournal { all = try await sqlite.all() }
        else { all = try await (journal as? PostgresPaymentJournal)?.all() ?? [] }
        #expect(all.map(\.state) == ["succeeded"] && all.first?.proof == "cafe")

        // A journal on another file gets the two-step fallback, with the same outcome.
        let other = try SQLitePaymentJournal(path: temporaryDatabasePath("other-journal"))
        let r2 = try await store.reserve(envelopeID: "env-1", requestID: "req-d", idempotencyKey: "d",
                                         amountMinorUnits: 3, rail: .l402, lease: .seconds(600), now: Self.t0,
                                         recording: intent("intent-d"), in: other)
        #expect(try await other.pending().first?.drawID == r2.receiptId)
        try await other.begin(intent("intent-e"))
        await #expect(throws: JournalWriteError.self) {
            _ = try await store.reserve(envelopeID: "env-1", requestID: "req-e", idempotencyKey: "e",
                                        amountMinorUnits: 4, rail: .l402, lease: .seconds(600), now: Self.t0,
                                        recording: intent("intent-e"), in: other)
        }
        #expect(try await store.balance(envelopeID: "env-1").reservedMinorUnits == 3)
    }

    /// The client's reservation may leave the receipt's Ed25519 signature for later (SQLite does: it is made while
    /// the paid retry is on the wire). Whatever happens to the draw next — settled, released, swept, replayed,
    /// settled by another store after a restart — its stored receipt is signed and verifies before it leaves
    /// `reserved`, a replay stays byte-identical, and a key that does not match the envelope still refuses the
    /// reservation before anything is written.
    /// The offer's deferred check gates the reservation's commit: a failing check leaves no draw, no intent and no
    /// reserved amount, and its error wins over the store's own refusal (over the cap); a passing one commits, run
    /// once. On SQLite also when the transaction has to wait in the writer's queue behind another connection's lock
    /// (the check then runs on the calling thread while it waits).
    @Test(arguments: Backend.available) func theOffersCheckGatesTheReservationsCommit(_ backend: Backend) async throws {
        let (backing, store, journal) = try await Self.storeAndJournal(backend, name: "gate")
        let counter = RunCounter()
        func check(passing: Bool, start: Bool) -> DeferredOfferCheck {
            let check = DeferredOfferCheck {
                        counter.runs.add(1, ordering: .relaxed)
                Thread.sleep(forTimeInterval: 0.03)
                guard passing else { throw ChallengeError("Invalid BOLT-11 invoice: invalidSignature", rail: .l402) }
                return "02ab"
            }
            if start { check.start() }
            return check
        }
        func reserve(_ key: String, amount: Int64 = 3, _ check: DeferredOfferCheck) async throws -> DrawReceipt {
            try await store.reserveSigningLater(envelopeID: "env-1", requestID: "req-" + key, idempotencyKey: key,
                                                amountMinorUnits: amount, rail: .l402, lease: .seconds(600),
                                                now: Self.t0, recording: Self.intent("intent-" + key), in: journal,
                                                committingOnlyIf: check)
        }
        func expectNothingWritten(_ comment: Comment) async throws {
            #expect(try await store.draws(envelopeID: "env-1").isEmpty, comment)
            #expect(try await journal.pending().isEmpty, comment)
            let balance = try await store.balance(envelopeID: "env-1")
            #expect(balance.reservedMinorUnits == 0 && balance.settledMinorUnits == 0, comment)
        }

        for start in [true, false] {
            await #expect(throws: ChallengeError.self, "started: \(start)") {
                _ = try await reserve("bad-\(start)", check(passing: false, start: start))
            }
            try await expectNothingWritten("failed check, started: \(start)")
        }
        // Over the cap (50) and a failing check: the check's error is the reason.
        await #expect(throws: ChallengeError.self) { _ = try await reserve("over", amount: 60, check(passing: false, start: true)) }
        try await expectNothingWritten("over the cap")

        counter.runs.store(0, ordering: .relaxed)
        let good = try await reserve("good", check(passing: true, start: true))
        #expect(counter.runs.load(ordering: .relaxed) == 1)
        #expect(try await store.draws(envelopeID: "env-1").map(\.id) == [good.receiptId])
        #expect(try await journal.pending().map(\.drawID) == [good.receiptId])

        guard backend == .sqlite else { return }
        // The write lock held by another connection: the reservation waits in the queue, and is still gated.
        var lockConfig = Configuration()
        lockConfig.allowsUnsafeTransactions = true
        let other = try DatabaseQueue(path: backing.path, configuration: lockConfig)
        for passing in [false, true] {
            try await other.writeWithoutTransaction { try $0.execute(sql: "BEGIN IMMEDIATE") }
            counter.runs.store(0, ordering: .relaxed)
            let key = "queued-\(passing)"
            let gate = check(passing: passing, start: false)
            let reservation = Task { [store, journal] in
                try await store.reserveSigningLater(
                    envelopeID: "env-1", requestID: "req-" + key, idempotencyKey: key, amountMinorUnits: 3, rail: .l402,
                    lease: .seconds(600), now: Self.t0, recording: Self.intent("intent-" + key), in: journal,
                    committingOnlyIf: gate)
            }
            // The check runs (on the calling thread) while the transaction waits for the lock: it is done before
            // the lock is let go, and nothing is committed yet.
            let deadline = ContinuousClock.now + .seconds(8)
            while counter.runs.load(ordering: .relaxed) == 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(counter.runs.load(ordering: .relaxed) == 1, "the check ran while the transaction waited")
            #expect(try await store.draws(envelopeID: "env-1").map(\.id) == [good.receiptId])
            try await other.writeWithoutTransaction { try $0.execute(sql: "COMMIT") }
            let outcome = await reservation.result
            #expect(counter.runs.load(ordering: .relaxed) == 1)
            let draws = try await store.draws(envelopeID: "env-1").map(\.id)
            if passing {
                let receipt = try outcome.get()
                #expect(Set(draws) == [good.receiptId, receipt.receiptId])
            } else {
                #expect(throws: ChallengeError.self) { try outcome.get() }
                #expect(draws == [good.receiptId])
            }
        }
    }

    @Test(arguments: Backend.available) func aReceiptSignedLaterIsStoredBeforeTheDrawLeavesReserved(_ backend: Backend)
        async throws
    {
        let (backing, store, journal) = try await Self.storeAndJournal(backend, name: "sign-later")
        let intent = Self.intent
        func reserve(_ key: String, lease: Duration = .seconds(600)) async throws -> DrawReceipt {
            try await store.reserveSigningLater(envelopeID: "env-1", requestID: "req-" + key, idempotencyKey: key,
                                                amountMinorUnits: 3, rail: .l402, lease: lease, now: Self.t0,
                                                recording: intent("intent-" + key), in: journal,
                                                committingOnlyIf: nil)
        }
        func replay(_ key: String) async throws -> DrawReceipt {
            try await store.reserve(envelopeID: "env-1", requestID: "req-" + key, idempotencyKey: key,
                                    amountMinorUnits: 3, rail: .l402, lease: .seconds(600), now: Self.t0)
        }
        func expectAllSigned(_ comment: Comment) async throws {
            let unverified = try await store.unverifiedDraws(envelopeID: "env-1")
            #expect(unverified.isEmpty, comment)
        }

        // Settled: the signature is stored with the settlement.
        let a = try await reserve("a")
        #expect(try await journal.pending().first { $0.id == "intent-a" }?.drawID == a.receiptId)
        if backend == .sqlite {
            #expect(a.signature.isEmpty)
            let unverified = try await store.unverifiedDraws(envelopeID: "env-1")
            #expect(unverified.map(\.drawID) == [a.receiptId])
            #expect(unverified.first?.reason.contains("not signed yet") == true)
        }
        try await store.settle(drawID: a.receiptId, amountMinorUnits: 3, now: Self.t0, resolving: "intent-a",
                               proof: "cafe", in: journal)
        try await expectAllSigned("after the settlement")
        let storedA = try #require(try await store.receipt(drawID: a.receiptId))
        try await store.verify(storedA)
        #expect(storedA.canonicalJSON == a.canonicalJSON)
        #expect(try await replay("a") == storedA)

        // Released (the payment did not happen).
        let b = try await reserve("b")
        try await store.release(drawID: b.receiptId, now: Self.t0)
        try await journal.resolve(id: "intent-b", state: .failed, proof: nil, now: Self.t0)
        try await expectAllSigned("after the release")

        // Replayed before it settles: the replay's receipt is the one stored, byte for byte, after the settlement.
        let c = try await reserve("c")
        let replayedC = try await replay("c")
        try await store.verify(replayedC)
        try await store.settle(drawID: c.receiptId, amountMinorUnits: 3, now: Self.t0, resolving: "intent-c",
                               proof: nil, in: journal)
        #expect(try await store.receipt(drawID: c.receiptId) == replayedC)

        // Swept (the call died and its intent was resolved as failed).
        let d = try await reserve("d", lease: .seconds(10))
        try await journal.resolve(id: "intent-d", state: .failed, proof: nil, now: Self.t0)
        #expect(try await store.sweepExpired(now: Self.t0.addingTimeInterval(60)) == 1)
        #expect(try await store.draws(envelopeID: "env-1").first { $0.id == d.receiptId }?.state == .rolledBack)
        try await expectAllSigned("after the sweep")

        // Settled after a restart, by a store that never saw the reservation.
        let e = try await reserve("e")
        let restarted = try backing.budgetStore()
        try await restarted.settle(drawID: e.receiptId, amountMinorUnits: 3, now: Self.t0)
        try await expectAllSigned("after a settlement by another store")
        try await store.verify(try #require(try await restarted.receipt(drawID: e.receiptId)))

        // The envelope's key no longer matches the key file: refused before anything is written.
        let before = try await store.draws(envelopeID: "env-1").count
        try await backing.sql("UPDATE envelopes SET counter_public_key = ? WHERE id = 'env-1'",
                              [EnvelopeSigningKey.generate().publicKeyBase64])
        await #expect(throws: ReceiptVerificationError.self) { _ = try await reserve("f") }
        #expect(try await store.draws(envelopeID: "env-1").count == before)
        #expect(try await journal.pending().contains { $0.id == "intent-f" } == false)
    }

    /// A budget store on a fresh file (its keys beside it) with ``envelope(_:cap:)`` created.
    private static func storeWithEnvelope(_ name: String) async throws -> (path: String, store: SQLiteBudgetStore) {
        let path = temporaryDatabasePath(name)
        let keys = (URL(fileURLWithPath: path).deletingLastPathComponent().path as NSString)
            .appendingPathComponent("keys")
        let store = try SQLiteBudgetStore(path: path, keystore: EnvelopeKeystore(directory: keys))
        _ = try await store.createEnvelope(envelope(), now: t0)
        return (path, store)
    }

    /// The receipt is signed off the write lock from the envelope as last decoded; a row changed since then (here
    /// its currency, which the receipt carries) must get a receipt signed for the row as it is now.
    @Test func aReceiptSignedAheadIsUsedOnlyForTheEnvelopeAsItIs() async throws {
        let (path, store) = try await Self.storeWithEnvelope("presign")
        var receipts: [DrawReceipt] = []
        for i in 0..<3 {
            receipts.append(try await store.reserve(envelopeID: "env-1", requestID: "r\(i)", idempotencyKey: "k\(i)",
                                                    amountMinorUnits: 5, rail: .l402, lease: .seconds(60), now: Self.t0))
        }
        // A replay returns the first receipt, whichever way it was signed.
        let replay = try await store.reserve(envelopeID: "env-1", requestID: "r1", idempotencyKey: "k1",
                                             amountMinorUnits: 5, rail: .l402, lease: .seconds(60), now: Self.t0)
        #expect(replay == receipts[1])
        for receipt in receipts {
            try await store.verify(receipt)
            #expect(try await store.receipt(drawID: receipt.receiptId) == receipt)  // as stored, byte for byte
        }

        // The row changes under the store (by hand: the currency is part of every receipt of the envelope).
        try await otherConnection(path).write { db in try db.execute(sql: "UPDATE envelopes SET cap_currency = 'EUR' WHERE id = 'env-1'") }
        let after = try await store.reserve(envelopeID: "env-1", requestID: "r3", idempotencyKey: "k3",
                                            amountMinorUnits: 5, rail: .l402, lease: .seconds(60), now: Self.t0)
        #expect(after.amountReservedCurrency == .eur)
        try await store.verify(after)
        #expect(try await store.receipt(drawID: after.receiptId) == after)
        // The earlier receipts were signed for USD: re-verifying the stored draws shows the edit.
        let flagged = try await store.unverifiedDraws(envelopeID: "env-1").map(\.drawID)
        #expect(Set(flagged) == Set(receipts.map(\.receiptId)))
    }

    /// A call cancelled after it paid must still record the settlement (and the trace row): the store's writes are
    /// not given up on cancellation.
    @Test func writesStartedByACancelledTaskStillLand() async throws {
        let (path, store) = try await Self.storeWithEnvelope("cancelled")
        let receipt = try await store.reserve(envelopeID: "env-1", requestID: "r", idempotencyKey: "k",
                                              amountMinorUnits: 9, rail: .l402, lease: .seconds(60), now: Self.t0)
        let sink = try SQLiteTraceSink(path: path)
        let task = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            #expect(Task.isCancelled)
            try await store.settle(drawID: receipt.receiptId, amountMinorUnits: 8, now: Self.t0)
            try await sink.record(self.event("cancelled-call"))
            try await sink.flush()
        }
        try await task.value
        let balance = try await store.balance(envelopeID: "env-1")
        #expect(balance.settledMinorUnits == 8 && balance.reservedMinorUnits == 0)
        #expect(try await sink.count() == 1)
    }

    /// The credential lookup that starts every call reads the origin's newest tokens from an index in that order.
    /// The lookup skips the SELECT while the file has not changed, and sees every commit of another connection (as
    /// another process's would be: both go through the WAL index): a credential stored, removed, or written by hand.
    @Test func theCredentialLookupSeesEveryCommitOfAnotherConnection() async throws {
        let path = temporaryDatabasePath("lookup-stamp")
        let store = try SQLiteCredentialStore(path: path)
        let other = try SQLiteCredentialStore(path: path)
        let url = try #require(URL(string: "http://127.0.0.1:9/paid"))
        let now = Date()
        func credential(_ id: String) -> StoredCredential {
            StoredCredential(id: id, rail: .l402, origin: "http://127.0.0.1:9", scope: "services:x",
                             headerName: "Authorization", headerValue: Redacted("L402 token-" + id), expiresAt: nil,
                             requestID: "req-" + id, challengeURL: url.absoluteString)
        }
        #expect(try await store.credential(for: url, now: now) == nil)
        let reads = store.databaseReads
        for _ in 0..<50 { #expect(try await store.credential(for: url, now: now) == nil) }
        #expect(store.databaseReads == reads, "nothing was committed: no lookup reads the file")

        try await other.store(credential("c1"))
        #expect(try await store.credential(for: url, now: now)?.id == "c1")
        #expect(store.databaseReads == reads + 1)
        try await other.remove(id: "c1")
        #expect(try await store.credential(for: url, now: now) == nil)

        // A commit that is not a credential still makes the next lookup read (any commit changes the stamp).
        let before = store.databaseReads
        try await otherConnection(path).write { db in
            try db.execute(sql: "CREATE TABLE unrelated(x)")
        }
        #expect(try await store.credential(for: url, now: now) == nil)
        #expect(store.databaseReads == before + 1)

        // Rows written by hand through another connection, and a checkpoint that restarts the WAL.
        try await other.store(credential("c2"))
        _ = try await store.credential(for: url, now: now)
        try await otherConnection(path).write { db in
            try db.execute(sql: "UPDATE credentials SET state = 'revoked' WHERE credential_id = 'c2'")
        }
        try await otherConnection(path).writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
        }
        #expect(try await store.credential(for: url, now: now) == nil)
        try await other.store(credential("c3"))
        #expect(try await store.credential(for: url, now: now)?.id == "c3")
    }

    @Test func theCredentialLookupNeedsNoSort() async throws {
        let path = temporaryDatabasePath("lookup-plan")
        _ = try SQLiteCredentialStore(path: path)
        let plan = try await otherConnection(path).read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + SQLiteCredentialStore.lookupSQL, arguments: ["x"])
                .map { $0["detail"] as String }
        }
        #expect(plan.contains { $0.contains("credentials_origin_recent") }, "\(plan)")
        #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "\(plan)")
    }

    @Test func identifiersStayUniqueAndWellFormedAcrossPoolRefills() {
        // 2,000 ids draw 32 KB of random bits: several refills of the 4 KiB pool.
        let ids = (0..<2_000).map { _ in UUIDv7.make() }
        #expect(Set(ids).count == ids.count)
        for id in ids {
            let hex = Array(id.replacingOccurrences(of: "-", with: ""))
            #expect(id.count == 36 && hex.count == 32 && hex[12] == "7" && "89ab".contains(hex[16]), "\(id)")
        }
    }

    private func event(_ id: String, status: Int = 200) -> TraceEvent {
        TraceEvent(requestId: id, agentId: "agent", envelopeId: nil, policyHash: RouteweilerClient.defaultPolicyHash,
                   method: "GET", url: "http://127.0.0.1:1/free", challenge: nil, selectedRail: nil, fallbackFrom: nil,
                   facilitator: nil, fundingSource: nil, payment: nil,
                   outcome: .init(httpStatus: status, serviceDelivered: true, serviceLatencyMs: 1),
                   timestampStart: Date(), timestampEnd: Date())
    }

    @Test func writeBehindRowsAllLandExactlyOnceAndReadsSeeThem() async throws {
        let path = temporaryDatabasePath("behind")
        let sink = try SQLiteTraceSink(path: path)
        #expect(sink.writeMode == .writeBehind)
        let ids = (0..<500).map { _ in UUIDv7.make() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for chunk in stride(from: 0, to: ids.count, by: 50) {
                group.addTask {
                    for id in ids[chunk..<min(chunk + 50, ids.count)] { try await sink.record(self.event(id)) }
                    try await sink.record(self.event(ids[chunk]))  // a duplicate keeps one row
                }
            }
            try await group.waitForAll()
        }
        #expect(try await sink.count() == 500)  // reads wait for the queue
        try await sink.flush()
        // Another connection sees every row once flushed.
        let other = try otherConnection(path)
        let stored = try await other.read { try String.fetchSet($0, sql: "SELECT request_id FROM trace_events") }
        #expect(stored == Set(ids))
    }

    @Test func immediateRowsAreInTheFileWhenRecordReturns() async throws {
        let path = temporaryDatabasePath("immediate")
        let sink = try SQLiteTraceSink(path: path, writeMode: .immediate)
        try await sink.record(event("one"))
        let other = try otherConnection(path)
        #expect(try await other.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM trace_events") } == 1)
    }

    @Test func rowsThatCannotBeWrittenAreReportedByFlush() async throws {
        let path = temporaryDatabasePath("lost")
        let sink = try SQLiteTraceSink(path: path)
        let other = try otherConnection(path)
        try await other.write { try $0.execute(sql: "DROP TABLE trace_events") }
        try await sink.record(event("a"))
        try await sink.record(event("b"))
        do {
            try await sink.flush()
            Issue.record("expected TraceWriteError")
        } catch let error as TraceWriteError {
            #expect(error.lostRows == 2 && error.path == path)
        }
        try await sink.flush()  // reported once
    }

    @Test func theClientFlushesItsSinkOnShutdown() async throws {
        let path = temporaryDatabasePath("shutdown")
        try await FakePaywall.withPaywall(network: FakeLightningNetwork()) { paywall in
            var config = RouteweilerClient.Configuration(funding: [])
            config.traceSink = try SQLiteTraceSink(path: path)
            try await RouteweilerClient.withClient(configuration: config) { rw in
                for _ in 0..<20 { _ = try await rw.get(paywall.url("/free")) }
            }
        }
        let other = try otherConnection(path)
        #expect(try await other.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM trace_events") } == 20)
    }
}
