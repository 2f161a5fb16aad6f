import Foundation
import GRDB
import Logging
import PostgresNIO
import Routeweiler
import RouteweilerSQLite
import Testing

/// One isolated store per test (an SQLite file in a temp directory, or a fresh PostgreSQL schema) and a keystore
/// directory.
private struct BudgetFixture {
    let backing: StoreUnderTest
    let store: any InspectableBudgetStore
    var keys: String { backing.keys }

    init(_ backend: Backend, busyTimeout: TimeInterval = 10) async throws {
        backing = try await StoreUnderTest(backend, name: "budget", lockTimeout: busyTimeout)
        store = try backing.budgetStore(busyTimeout: busyTimeout)
    }

    /// A second connection to the same store, for hand edits (`?` placeholders).
    func sql(_ statement: String, _ arguments: [String] = []) async throws {
        try await backing.sql(statement, arguments)
    }

    func keyPath(_ id: String) -> String { (keys as NSString).appendingPathComponent("env_\(id).ed25519") }

    @discardableResult
    func create(_ id: String = "env-1", cap: Int64 = 100, rails: [RailID] = [.l402, .x402], ttl: Int64 = 3600,
                now: Date = t0) async throws -> EnvelopeRecord {
        try await store.createEnvelope(
            BudgetEnvelope(id: id, capMinorUnits: cap, capCurrency: .usd, allowedRails: rails, ttlSeconds: ttl), now: now)
    }

    func reserve(_ id: String = "env-1", key: String = UUIDv7.make(), amount: Int64 = 1, rail: RailID = .l402,
                 lease: Duration = .seconds(150), now: Date = t0) async throws -> DrawReceipt {
        try await store.reserve(envelopeID: id, requestID: "req-" + key, idempotencyKey: key, amountMinorUnits: amount,
                                rail: rail, lease: lease, now: now)
    }
}

private let t0 = Date(timeIntervalSince1970: 1_780_000_000.25)

private func mode(_ path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
}

@Suite struct BudgetStoreTests {
    // MARK: create / show

    @Test(arguments: Backend.available) func createStoresTheEnvelopeAndA0600Key(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend)
        let record = try await f.create(cap: 500, ttl: 60)
        #expect(record.capMinorUnits == 500 && record.capCurrency == .usd && record.status == .active)
        #expect(record.allowedRails == [.l402, .x402])
        #expect(record.expiresAt.timeIntervalSince(record.createdAt) == 60)
        #expect(try await f.store.envelope(id: "env-1") == record)
        #expect(try await f.store.envelopes() == [record])
        #expect(try await f.store.envelope(id: "nope") == nil)
        let balance = try await f.store.balance(envelopeID: "env-1")
        #expect(balance.capMinorUnits == 500 && balance.reservedMinorUnits == 0 && balance.remainingMinorUnits == 500)

        #expect(try mode(f.keyPath("env-1")) == 0o600)
        #expect(try mode(f.keys) == 0o700)
        let seed = try Data(contentsOf: URL(fileURLWithPath: f.keyPath("env-1")))
        #expect(seed.count == 32)
        #expect(try EnvelopeKeystore(directory: f.keys).publicKeyBase64(envelopeID: "env-1") == record.counterPublicKey)
        #expect(Data(base64Encoded: record.counterPublicKey)?.count == 32)
    }

    @Test(arguments: Backend.available) func duplicateIDIsRefusedAndKeepsTheFirstKey(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend)
        let first = try await f.create()
        await #expect(throws: EnvelopeExistsError.self) { try await f.create(cap: 5) }
        #expect(try EnvelopeKeystore(directory: f.keys).publicKeyBase64(envelopeID: "env-1") == first.counterPublicKey)
        #expect(try await f.store.envelope(id: "env-1")?.capMinorUnits == 100)

        let spec = BudgetEnvelope(id: "env-2", capMinorUnits: 7, capCurrency: .eur, allowedRails: [.l402], ttlSeconds: 9)
        #expect(try await f.store.createEnvelopeIfAbsent(spec, now: t0) == true)
        #expect(try await f.store.createEnvelopeIfAbsent(spec, now: t0) == false)
        #expect(try await f.store.envelopes().count == 2)
    }

    @Test(arguments: Backend.available) func anOrphanKeyFileRefusesCreationWithoutARow(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend)
        try EnvelopeKeystore(directory: f.keys).create(envelopeID: "orphan")
        await #expect(throws: KeystoreAlreadyExistsError.self) { try await f.create("orphan") }
        #expect(try await f.store.envelope(id: "orphan") == nil)
    }

    @Test(arguments: Backend.available) func createIfAbsentIsRaceFree(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend)
        let spec = BudgetEnvelope(id: "shared", capMinorUnits: 10, capCurrency: .usd, allowedRails: [.l402], ttlSeconds: 60)
        let created = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<20 { group.addTask { try await f.store.createEnvelopeIfAbsent(spec, now: t0) } }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(created == 1)
        let record = try #require(try await f.store.envelope(id: "shared"))
        #expect(try EnvelopeKeystore(directory: f.keys).publicKeyBase64(envelopeID: "shared") == record.counterPublicKey)
    }

    @Test(arguments: Backend.available) func badSpecsAreRejectedBeforeAnyKeyIsWritten(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend)
        #expect(throws: UnknownCurrencyError.self) { try Currency(envelopeCode: "xyz") }
        #expect(throws: UnknownCurrencyError.self) { try Currency(envelopeCode: "chf") }
        for (cap, ttl) in [(Int64(0), Int64(60)), (-5, 60), (10, 0), (10, -1)] {
            await #expect(throws: ConfigurationError.self) { try await f.create("bad", cap: cap, ttl: ttl) }
        }
        for id in ["../evil", "a/b", "", ".", ".."] {
            await #expect(throws: ConfigurationError.self) { try await f.create(id) }
            #expect(throws: ConfigurationError.self) { try EnvelopeKeystore(directory: f.keys).path(envelopeID: id) }
        }
        await #expect(throws: ConfigurationError.self) { try await f.create("norails", rails: []) }
        #expect(try await f.store.envelopes().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: f.keyPath("bad")))
    }

    // MARK: reserve

    @Test(arguments: Backend.available) func reserveUnderCapThenExceededWithTheSpecMessage(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend)
        try await f.create(cap: 100)
        let receipt = try await f.reserve(amount: 60)
        #expect(receipt.amountReservedMinorUnits == 60 && receipt.amountReservedCurrency == .usd)
        #expect(receipt.envelopeId == "env-1" && receipt.railQuoted == .l402)
        #expect(receipt.expiresAt.timeIntervalSince(receipt.issuedAt) == 150)
        do {
            _ = try await f.reserve(amount: 50)
            Issue.record("expected BudgetExceededError")
        } catch let error as BudgetExceededError {
            #expect(error.message == "Envelope 'env-1': requested 50 minor units but only 40 available.")
            #expect(error.availableMinorUnits == 40 && error.requestedMinorUnits == 50)
        }
        #expect(try await f.store.draws(envelopeID: "env-1").count == 1)
        let balance = try await f.store.balance(envelopeID: "env-1")
        #expect(balance.reservedMinorUnits == 60 && balance.remainingMinorUnits == 40)
        _ = try await f.reserve(amount: 40)  // exactly the rest fits
        #expect(try await f.store.balance(envelopeID: "env-1").remainingMinorUnits == 0)
    }

    @Test(arguments: Backend.available) func badReservationsAreRefused(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend)
        try await f.create(rails: [.l402])
        await #expect(throws: ConfigurationError.self) { try await f.reserve(amount: 0) }
        await #expect(throws: ConfigurationError.self) { try await f.reserve(amount: -3) }
        await #expect(throws: ConfigurationError.self) { try await f.reserve(lease: .zero) }
        await #expect(throws: EnvelopeNotFoundError.self) { try await f.reserve("missing") }
        await #expect(throws: EnvelopeNotFoundError.self) { try await f.store.balance(envelopeID: "missing") }
        await #expect(throws: RailNotAllowedError.self) { try await f.reserve(rail: .x402) }
        #expect(try await f.store.draws(envelopeID: "env-1").isEmpty)
    }

    @Test(arguments: Backend.available) func aMissingKeyLeavesNoReservation(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend)
        try await f.create()
        try FileManager.default.removeItem(atPath: f.keyPath("env-1"))
        await #expect(throws: KeystoreNotFoundError.self) { try await f.reserve(amount: 5) }
        #expect(try await f.store.draws(envelopeID: "env-1").isEmpty)
        #expect(try await f.store.balance(envelopeID: "env-1").reservedMinorUnits == 0)
    }

    @Test(arguments: Backend.available) func idempotentReplayIsByteIdenticalAlsoAfterRelease(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend)
        try await f.create()
        let first = try await f.reserve(key: "k1", amount: 7)
        let again = try await f.reserve(key: "k1", amount: 99, now: t0.addingTimeInterval(5))
        #expect(again == first)
        #expect(again.signature == first.signature && again.canonicalJSON == first.canonicalJSON)
        try await f.store.release(drawID: first.receiptId, now: t0)
        let afterRelease = try await f.reserve(key: "k1", amount: 7)
        #expect(afterRelease == first)
        let draws = try await f.store.draws(envelopeID: "env-1")
        #expect(draws.count == 1 && draws[0].state == .rolledBack)
        try await f.store.verify(afterRelease)
    }

    @Test(arguments: Backend.available) func concurrentReplaysOfOneKeyMakeOneRow(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend)
        try await f.create()
        let receipts = try await withThrowingTaskGroup(of: DrawReceipt.self) { group in
            for _ in 0..<200 { group.addTask { try await f.reserve(key: "same", amount: 3) } }
            return try await group.reduce(into: [DrawReceipt]()) { $0.append($1) }
        }
        #expect(Set(receipts).count == 1)
        #expect(try await f.store.draws(envelopeID: "env-1").count == 1)
        #expect(try await f.store.balance(envelopeID: "env-1").reservedMinorUnits == 3)
    }

    @Test(arguments: Backend.available) func hardCapHoldsUnder240ConcurrentReservations(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend)
        try await f.create(cap: 120)
        let results = await withTaskGroup(of: Result<DrawReceipt, any Error>.self) { group in
            for _ in 0..<240 {
                group.addTask {
                    do { return .success(try await f.reserve(amount: 1)) } catch { return .failure(error) }
                }
            }
            return await group.reduce(into: [Result<DrawReceipt, any Error>]()) { $0.append($1) }
        }
        let receipts = results.compactMap { try? $0.get() }
        let exceeded = results.filter {
            if case .failure(let e) = $0 { return e is BudgetExceededError } else { return false }
        }
        #expect(receipts.count == 120)
        #expect(exceeded.count == 120)
        let reserved = try await f.store.balance(envelopeID: "env-1")
        #expect(reserved.reservedMinorUnits == 120 && reserved.settledMinorUnits == 0)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for r in receipts { group.addTask { try await f.store.settle(drawID: r.receiptId, amountMinorUnits: 1, now: t0) } }
            try await group.waitForAll()
        }
        let settled = try await f.store.balance(envelopeID: "env-1")
        #expect(settled.settledMinorUnits == 120 && settled.reservedMinorUnits == 0 && settled.remainingMinorUnits == 0)
        await #expect(throws: BudgetExceededError.self) { try await f.reserve(amount: 1) }
    }

    // MARK: settle / release / sweep

    @Test(arguments: Backend.available) func sweepReleasesExpiredLeasesOnly(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend)
        try await f.create(cap: 100)
        let short = try await f.reserve(amount: 10, lease: .seconds(10))
        _ = try await f.reserve(amount: 20, lease: .seconds(100))
        #expect(try await f.store.sweepExpired(now: t0.addingTimeInterval(5)) == 0)
        #expect(try await f.store.sweepExpired(now: short.expiresAt) == 0)  // not strictly after
        #expect(try await f.store.sweepExpired(now: short.expiresAt.addingTimeInterval(0.000_001)) == 1)
        let draws = try await f.store.draws(envelopeID: "env-1")
        #expect(draws.first { $0.id == short.receiptId }?.state == .rolledBack)
        #expect(try await f.store.balance(envelopeID: "env-1").reservedMinorUnits == 20)
        // Whole-second and fractional timestamps compare correctly as text.
        #expect(try await f.store.sweepExpired(now: t0.addingTimeInterval(99.5)) == 0)
        #expect(try await f.store.sweepExpired(now: t0.addingTimeInterval(101)) == 1)
    }

    @Test(arguments: Backend.available) func sweepKeepsADrawWithAPendingPaymentIntent(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend)
        try await f.create()
        let held = try await f.reserve(amount: 5, lease: .seconds(10))
        let free = try await f.reserve(amount: 6, lease: .seconds(10))
        try await f.sql(
            """
            INSERT INTO payment_intents(id, request_id, rail, origin, envelope_id, draw_id, state, created_at)
            VALUES ('pi-1', 'r', 'l402', 'https://api.example', 'env-1', ?, 'pending', '2026-01-01T00:00:00.000000+00:00')
            """, [held.receiptId])
        let later = t0.addingTimeInterval(60)
        #expect(try await f.store.sweepExpired(now: later) == 1)
        var states = Dictionary(uniqueKeysWithValues: try await f.store.draws(envelopeID: "env-1").map { ($0.id, $0.state) })
        #expect(states[held.receiptId] == .reserved && states[free.receiptId] == .rolledBack)
        try await f.sql("UPDATE payment_intents SET state = 'failed' WHERE id = 'pi-1'")
        #expect(try await f.store.sweepExpired(now: later) == 1)
        states = Dictionary(uniqueKeysWithValues: try await f.store.draws(envelopeID: "env-1").map { ($0.id, $0.state) })
        #expect(states[held.receiptId] == .rolledBack)
    }

    @Test(arguments: Backend.available) func settleAfterSweepRevivesTheDraw(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend)
        try await f.create(cap: 10)
        let r = try await f.reserve(amount: 8, lease: .seconds(1))
        #expect(try await f.store.sweepExpired(now: t0.addingTimeInterval(2)) == 1)
        _ = try await f.reserve(amount: 9)  // the released 8 became available again
        try await f.store.settle(drawID: r.receiptId, amountMinorUnits: 8, now: t0.addingTimeInterval(3))
        let draw = try #require(try await f.store.draws(envelopeID: "env-1").first { $0.id == r.receiptId })
        #expect(draw.state == .settled && draw.amountSettledMinorUnits == 8 && draw.settledAt != nil)
        let balance = try await f.store.balance(envelopeID: "env-1")
        // The money moved: recorded even though it overshoots the cap.
        #expect(balance.settledMinorUnits == 8 && balance.reservedMinorUnits == 9 && balance.remainingMinorUnits == -7)
        do {
            _ = try await f.reserve(amount: 1)
            Issue.record("expected BudgetExceededError")
        } catch let error as BudgetExceededError {
            #expect(error.availableMinorUnits == 0)
        }
    }

    @Test(arguments: Backend.available) func settleAndReleaseTransitions(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend)
        try await f.create()
        let r = try await f.reserve(amount: 10)
        try await f.store.settle(drawID: r.receiptId, amountMinorUnits: 7, now: t0)
        try await f.store.settle(drawID: r.receiptId, amountMinorUnits: 9, now: t0)  // first amount kept
        try await f.store.release(drawID: r.receiptId, now: t0)  // no-op on settled
        let draw = try #require(try await f.store.draws(envelopeID: "env-1").first)
        #expect(draw.state == .settled && draw.amountSettledMinorUnits == 7)
        #expect(try await f.store.balance(envelopeID: "env-1").settledMinorUnits == 7)

        let other = try await f.reserve(amount: 4)
        try await f.store.release(drawID: other.receiptId, now: t0)
        try await f.store.release(drawID: other.receiptId, now: t0)
        #expect(try await f.store.balance(envelopeID: "env-1").reservedMinorUnits == 0)

        await #expect(throws: DrawNotFoundError.self) { try await f.store.settle(drawID: "nope", amountMinorUnits: 1, now: t0) }
        await #expect(throws: DrawNotFoundError.self) { try await f.store.release(drawID: "nope", now: t0) }
        await #expect(throws: ConfigurationError.self) {
            try await f.store.settle(drawID: other.receiptId, amountMinorUnits: -1, now: t0)
        }
    }

    // MARK: envelope state and clock

    @Test(arguments: Backend.available) func frozenAndRevokedEnvelopesRefuseDraws(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend)
        try await f.create()
        for status in ["frozen", "revoked", "expired"] {
            try await f.sql("UPDATE envelopes SET status = ? WHERE id = 'env-1'", [status])
            do {
                _ = try await f.reserve()
                Issue.record("expected EnvelopeFrozenError")
            } catch let error as EnvelopeFrozenError {
                #expect(error.status.rawValue == status)
            }
        }
        #expect(try await f.store.draws(envelopeID: "env-1").isEmpty)
    }

    @Test(arguments: Backend.available) func clockSkewAroundTheTTL(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend)
        let record = try await f.create(ttl: 60)
        _ = try await f.reserve(now: record.expiresAt.addingTimeInterval(-0.001))
        _ = try await f.reserve(now: record.createdAt.addingTimeInterval(-30))  // a clock behind creation still works
        await #expect(throws: EnvelopeExpiredError.self) { try await f.reserve(now: record.expiresAt) }
        await #expect(throws: EnvelopeExpiredError.self) { try await f.reserve(now: record.expiresAt.addingTimeInterval(1)) }
        #expect(try await f.store.draws(envelopeID: "env-1").count == 2)
    }

    // MARK: receipts

    @Test(arguments: Backend.available) func receiptsVerifyAndTamperingFailsLoudly(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend)
        try await f.create("env-1")
        try await f.create("env-2")
        let receipt = try await f.reserve(amount: 12)
        try await f.store.verify(receipt)
        #expect(receipt.canonicalJSON.hasPrefix(#"{"amount_reserved_currency":"usd","amount_reserved_minor_units":12,"envelope_id":"env-1","expires_at":""#))

        var amount = receipt
        amount.amountReservedMinorUnits = 1
        await #expect(throws: ReceiptVerificationError.self) { try await f.store.verify(amount) }

        var envelope = receipt
        envelope.envelopeId = "env-2"
        await #expect(throws: ReceiptVerificationError.self) { try await f.store.verify(envelope) }
        envelope.envelopeId = "ghost"
        await #expect(throws: ReceiptVerificationError.self) { try await f.store.verify(envelope) }

        var signature = receipt
        var bytes = try #require(Data(base64Encoded: receipt.signature))
        bytes[0] ^= 0x01
        signature.signature = bytes.base64EncodedString()
        await #expect(throws: ReceiptVerificationError.self) { try await f.store.verify(signature) }
        signature.signature = "not base64!"
        await #expect(throws: ReceiptVerificationError.self) { try await f.store.verify(signature) }

        // Key swap: altered and re-signed with another key that the receipt names.
        let attacker = EnvelopeSigningKey.generate()
        var swapped = amount
        swapped.counterPublicKey = attacker.publicKeyBase64
        swapped.signature = try attacker.signature(for: swapped)
        try swapped.verifySignature(publicKeyBase64: attacker.publicKeyBase64)  // valid under its own key…
        do {
            try await f.store.verify(swapped)  // …but not the envelope's
            Issue.record("expected ReceiptVerificationError")
        } catch let error as ReceiptVerificationError {
            #expect(error.message.contains("env-1"))
        }
        var resigned = amount
        resigned.signature = try attacker.signature(for: resigned)
        await #expect(throws: ReceiptVerificationError.self) { try await f.store.verify(resigned) }
    }

    @Test(arguments: Backend.available) func handEditedRowsAreDetected(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend)
        try await f.create()
        let good = try await f.reserve(amount: 2)
        let edited = try await f.reserve(amount: 50)
        #expect(try await f.store.unverifiedDraws(envelopeID: "env-1").isEmpty)
        try await f.sql("UPDATE draws SET amount_reserved_minor_units = 1 WHERE id = ?", [edited.receiptId])
        let failures = try await f.store.unverifiedDraws(envelopeID: "env-1")
        #expect(failures.map(\.drawID) == [edited.receiptId])
        #expect(try await f.store.receipt(drawID: good.receiptId) == good)
        let stored = try #require(try await f.store.receipt(drawID: edited.receiptId))
        await #expect(throws: ReceiptVerificationError.self) { try await f.store.verify(stored) }
    }

    @Test func canonicalBytesEscapeNonASCIIAndDropZeroFractions() throws {
        let receipt = DrawReceipt(
            receiptId: "r", envelopeId: "e", requestId: "q", idempotencyKey: "ké/✓",
            amountReservedMinorUnits: 5, amountReservedCurrency: .jpy, railQuoted: .l402,
            issuedAt: Date(timeIntervalSince1970: 1_700_000_000), expiresAt: Date(timeIntervalSince1970: 1_700_000_000.5),
            counterPublicKey: "", signature: "")
        #expect(receipt.canonicalJSON == #"{"amount_reserved_currency":"jpy","amount_reserved_minor_units":5,"envelope_id":"e","expires_at":"2023-11-14T22:13:20.500000Z","idempotency_key":"k\u00e9/\u2713","issued_at":"2023-11-14T22:13:20Z","rail_quoted":"l402","receipt_id":"r","request_id":"q"}"#)
    }

    // MARK: locking

    @Test(arguments: Backend.available)
    func aLockHeldBeyondTheBusyTimeoutIsAClearError(_ backend: Backend) async throws {
        let f = try await BudgetFixture(backend, busyTimeout: 0.2)
        try await f.create()
        switch backend {
        case .sqlite:
            var lockConfig = Configuration()
            lockConfig.allowsUnsafeTransactions = true  // keep the EXCLUSIVE transaction open across accesses
            let other = try DatabaseQueue(path: f.backing.path, configuration: lockConfig)
            try await other.writeWithoutTransaction { try $0.execute(sql: "BEGIN EXCLUSIVE") }
            try await expectBusy(f)
            try await other.writeWithoutTransaction { try $0.execute(sql: "ROLLBACK") }
        case .postgres:
            // Another machine holding the envelope row (a reservation in progress that does not finish).
            let other = try await Backend.directConnection(to: try #require(f.backing.postgres))
            try await other.query("BEGIN", logger: Self.logger)
            for try await _ in try await other.query("SELECT * FROM envelopes WHERE id = 'env-1' FOR UPDATE",
                                                     logger: Self.logger) {}
            try await expectBusy(f)
            try await other.query("ROLLBACK", logger: Self.logger)
            try await other.close()
        }
        _ = try await f.reserve(amount: 1)
        #expect(try await f.store.draws(envelopeID: "env-1").count == 1)
    }

    /// A write finding another process's lock on the file waits for it (off the calling thread) instead of failing,
    /// and goes through once the lock is let go within the busy timeout.
    @Test func aWriteWaitsForAnotherConnectionsLockWithinTheBusyTimeout() async throws {
        let f = try await BudgetFixture(.sqlite, busyTimeout: 5)
        try await f.create()
        var lockConfig = Configuration()
        lockConfig.allowsUnsafeTransactions = true
        let other = try DatabaseQueue(path: f.backing.path, configuration: lockConfig)
        try await other.writeWithoutTransaction { try $0.execute(sql: "BEGIN IMMEDIATE") }
        let started = ContinuousClock.now
        let reservation = Task { try await f.reserve(amount: 1) }
        try await Task.sleep(for: .milliseconds(150))
        #expect(try await f.store.draws(envelopeID: "env-1").isEmpty)
        try await other.writeWithoutTransaction { try $0.execute(sql: "COMMIT") }
        let receipt = try await reservation.value
        #expect(ContinuousClock.now - started >= .milliseconds(150))
        #expect(try await f.store.draws(envelopeID: "env-1").map(\.id) == [receipt.receiptId])
        // And the next write, with the lock free, runs at once.
        _ = try await f.reserve(amount: 1)
        #expect(try await f.store.draws(envelopeID: "env-1").count == 2)
    }

    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    private func expectBusy(_ f: BudgetFixture) async throws {
        do {
            _ = try await f.reserve(amount: 1)
            Issue.record("expected StoreBusyError")
        } catch let error as StoreBusyError {
            #expect(error.message.contains("locked"))
            #expect(!error.message.contains("routeweiler-test"))  // the test server's password
        }
        #expect(try await f.store.draws(envelopeID: "env-1").isEmpty)
    }
}
