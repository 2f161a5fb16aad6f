import Foundation
import GRDB
import LNDClient
import Routeweiler
import RouteweilerL402
import RouteweilerSQLite
import RouteweilerTesting
import Testing

/// A child `routeweiler get` is SIGKILLed after LND accepted its payment and before it settled the draw; the next
/// start asks LND (TrackPaymentV2), settles the reservation, keeps the preimage and reuses the token.
@Suite(.serialized) struct CrashRecoveryTests {
    @Test func aProcessKilledMidPaymentIsRecoveredOnTheNextStart() async throws {
        let network = FakeLightningNetwork()
        try await FakeLND.withFakeLND(network: network) { lnd in
            try await FakePaywall.withPaywall(network: network) { paywall in
                let db = temporaryPath("crash.db")
                let keys = URL(fileURLWithPath: db).deletingLastPathComponent().appendingPathComponent("keys").path
                let cert = temporaryPath("tls.cert"), mac = temporaryPath("admin.macaroon")
                try lnd.certificatePEM.write(toFile: cert, atomically: true, encoding: .utf8)
                try Data(lnd.macaroonBytes).write(to: URL(fileURLWithPath: mac))
                let store = try SQLiteBudgetStore(path: db, keystore: EnvelopeKeystore(directory: keys))
                _ = try await store.createEnvelope(
                    BudgetEnvelope(id: "crash", capMinorUnits: 100, capCurrency: .usd, allowedRails: [.l402],
                                   ttlSeconds: 3600), now: Date())

                // LND accepts the payment, reports IN_FLIGHT, and completes it two seconds later.
                lnd.hangAfterInFlight(seconds: 2)
                let child = Process()
                child.executableURL = CLIRun.binary
                child.arguments = [
                    "get", paywall.url("/protected"), "--lnd-host", "127.0.0.1:\(lnd.port)", "--tls-cert", cert,
                    "--macaroon", mac, "--trace-db", db, "--budget", "crash", "--keystore", keys,
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
                let dbq = try DatabaseQueue(path: db)
                let pendingBefore = try await dbq.read {
                    try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM payment_intents WHERE state = 'pending'")
                }
                #expect(pendingBefore == 1)
                #expect(try await store.balance(envelopeID: "crash").reservedMinorUnits == 1)
                #expect(try await store.sweepExpired(now: Date().addingTimeInterval(86_400)) == 0)

                // Let LND finish the payment, then start a new client on the same database.
                for _ in 0..<300 where lnd.payments.first?.status != .succeeded {
                    try await Task.sleep(for: .milliseconds(20))
                }
                try await LNDClient.withClient(configuration: lnd.clientConfiguration) { client in
                    let source = try await LightningFundingSource.create(lnd: client, network: .bitcoinRegtest)
                    var config = RouteweilerClient.Configuration(funding: [source])
                    try config.useSQLite(path: db, keystore: EnvelopeKeystore(directory: keys))
                    config.budget = .envelope(id: "crash")
                    config.fmvProvider = StaticFmvProvider(btcPrices: [.usd: 60_000])
                    try await RouteweilerClient.withClient(configuration: config) { rw in
                        // Recovered at start: settled, preimage kept, token reusable without paying again.
                        let balance = try await store.balance(envelopeID: "crash")
                        #expect(balance.reservedMinorUnits == 0)
                        #expect(balance.settledMinorUnits == 1)
                        let proof = try await dbq.read {
                            try String.fetchOne($0, sql: "SELECT proof FROM payment_intents WHERE state = 'succeeded'")
                        }
                        #expect(proof?.count == 64)
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
