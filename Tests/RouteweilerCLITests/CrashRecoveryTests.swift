import Foundation
import GRDB
import LNDClient
import Routeweiler
import RouteweilerL402
import RouteweilerPostgres
import RouteweilerSQLite
import RouteweilerTesting
import Testing

/// A child `routeweiler get` is SIGKILLed after LND accepted its payment and before it settled the draw; the next
/// start asks LND (TrackPaymentV2), settles the reservation, keeps the preimage and reuses the token.
@Suite(.serialized) struct CrashRecoveryTests {
    @Test(arguments: CLIBackend.available)
    func aProcessKilledMidPaymentIsRecoveredOnTheNextStart(_ backend: CLIBackend) async throws {
        let network = FakeLightningNetwork()
        try await FakeLND.withFakeLND(network: network) { lnd in
            try await FakePaywall.withPaywall(network: network) { paywall in
                let db = temporaryPath("crash.db")
                let keys = URL(fileURLWithPath: db).deletingLastPathComponent().appendingPathComponent("keys").path
                let cert = temporaryPath("tls.cert"), mac = temporaryPath("admin.macaroon")
                try lnd.certificatePEM.write(toFile: cert, atomically: true, encoding: .utf8)
                try Data(lnd.macaroonBytes).write(to: URL(fileURLWithPath: mac))
                // The store: the SQLite file, or a fresh PostgreSQL schema shared by the child and this process.
                let storeURL = backend == .sqlite ? db : backend.freshStore()
                let postgres: PostgresStoreDatabase? = backend == .postgres
                    ? try await PostgresStoreDatabase.open(url: storeURL) : nil
                let store: any BudgetStore = try postgres.map {
                    PostgresBudgetStore(database: $0, keystore: EnvelopeKeystore(directory: keys))
                } ?? SQLiteBudgetStore(path: db, keystore: EnvelopeKeystore(directory: keys))
                let journal: any PaymentJournal = try postgres.map { PostgresPaymentJournal(database: $0) }
                    ?? SQLitePaymentJournal(path: db)
                _ = try await store.createEnvelope(
                    BudgetEnvelope(id: "crash", capMinorUnits: 100, capCurrency: .usd, allowedRails: [.l402],
                                   ttlSeconds: 3600), now: Date())

                // LND accepts the payment, reports IN_FLIGHT, and completes it two seconds later.
                lnd.hangAfterInFlight(seconds: 2)
                let child = Process()
                child.executableURL = CLIRun.binary
                child.arguments = [
                    "get", paywall.url("/protected"), "--lnd-host", "127.0.0.1:\(lnd.port)", "--tls-cert", cert,
                    "--macaroon", mac, "--store", storeURL, "--budget", "crash", "--keystore", keys,
                    "--btc-price", "usd=60000",
                ]
                child.standardOutput = FileHandle.nullDevice
                child.standardError = FileHandle.nullDevice
                try child.run()
                // Wait until the node has the payment in flight, then kill the child before it can settle.
                var sawPayment = false
                for _ in 0..<300 {
                    if lnd.calls.contains(where: { $0.contains("SendPaymentV2") }) {
                        sawPayment = true
                        break
                    }
                    try await Task.sleep(for: .milliseconds(20))
                }
                kill(child.processIdentifier, SIGKILL)
                child.waitUntilExit()
                #expect(sawPayment)
                #expect(child.terminationReason == .uncaughtSignal)

                // The intent was written before paying, and the reservation is still held.
                #expect(try await journal.pending().count == 1)
                #expect(try await store.balance(envelopeID: "crash").reservedMinorUnits == 1)
                #expect(try await store.sweepExpired(now: Date().addingTimeInterval(86_400)) == 0)

                // Let LND finish the payment, then start a new client on the same database.
                for _ in 0..<300 where lnd.payments.first?.status != .succeeded {
                    try await Task.sleep(for: .milliseconds(20))
                }
                try await LNDClient.withClient(configuration: lnd.clientConfiguration) { client in
                    let source = try await LightningFundingSource.create(lnd: client, network: .bitcoinRegtest)
                    var config = RouteweilerClient.Configuration(funding: [source])
                    if let postgres {
                        config.usePostgres(database: postgres, keystore: EnvelopeKeystore(directory: keys))
                    } else {
                        try config.useSQLite(path: db, keystore: EnvelopeKeystore(directory: keys))
                    }
                    config.budget = .envelope(id: "crash")
                    config.fmvProvider = StaticFmvProvider(btcPrices: [.usd: 60_000])
                    try await RouteweilerClient.withClient(configuration: config) { rw in
                        // Recovered at start: settled, preimage kept, token reusable without paying again.
                        let balance = try await store.balance(envelopeID: "crash")
                        #expect(balance.reservedMinorUnits == 0)
                        #expect(balance.settledMinorUnits == 1)
                        let intents: [(id: String, state: String, proof: String?)]
                        if let postgres {
                            intents = try await PostgresPaymentJournal(database: postgres).all()
                        } else {
                            intents = try await SQLitePaymentJournal(path: db).all()
                        }
                        #expect(intents.first { $0.state == "succeeded" }?.proof?.count == 64)
                        let response = try await rw.get(paywall.url("/protected"))
                        #expect(response.status == .ok)
                        #expect(response.payment == nil)
                    }
                }
                #expect(lnd.paymentCount == 1)
                #expect(lnd.calls.contains { $0.contains("TrackPaymentV2") })
            }
        }
    }
}
