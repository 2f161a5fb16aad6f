import Foundation
import HTTPTypes
import LNDClient
import Routeweiler
import RouteweilerL402
import RouteweilerSQLite
import RouteweilerTesting
import RouteweilerWire
import Testing

/// Budget, policy, FMV and credential reuse wired into real paid calls (FakePaywall + FakeLND over TLS).
@Suite(.serialized) struct MoneyIntegrationTests {
    /// 10 sats at 60 000 USD/BTC is 0.6 cents: reserved as ceil(0.6 × 1.05) = 1 cent, settled as 1 cent.
    static let fmv = StaticFmvProvider(btcPrices: [.usd: 60_000])

    func sqliteConfig(_ stack: Stack, db: String, keys: String, envelope: BudgetEnvelope?) throws
        -> RouteweilerClient.Configuration
    {
        var config = stack.configuration()
        try config.useSQLite(path: db, keystore: EnvelopeKeystore(directory: keys))
        config.fmvProvider = Self.fmv
        if let envelope { config.budget = .create(envelope) }
        return config
    }

    func dirs() -> (db: String, keys: String) {
        let db = temporaryDatabasePath("money")
        return (db, URL(fileURLWithPath: db).deletingLastPathComponent().appendingPathComponent("keys").path)
    }

    @Test(arguments: Backend.available) func aBudgetCapsConcurrentPaidCallsExactly(_ backend: Backend) async throws {
        try await Stack.run { stack in
            let backing = try await StoreUnderTest(backend, name: "money")
            let envelope = BudgetEnvelope(id: "cap-50", capMinorUnits: 50, capCurrency: .usd, allowedRails: [.l402],
                                          ttlSeconds: 3600)
            var config = stack.configuration()
            try backing.configure(&config)
            config.fmvProvider = Self.fmv
            config.budget = .create(envelope)
            config.reuseCredentials = false
            let outcomes = try await RouteweilerClient.withClient(configuration: config) { rw in
                try await withThrowingTaskGroup(of: String.self) { group in
                    for _ in 0..<200 {
                        group.addTask {
                            do {
                                _ = try await rw.get(stack.paywall.url("/protected"))
                                return "paid"
                            } catch let e as BudgetExceededError {
                                return e.availableMinorUnits >= 0 ? "exceeded" : "bad"
                            } catch {
                                return "other: \(error)"
                            }
                        }
                    }
                    var counts: [String: Int] = [:]
                    for try await o in group { counts[o, default: 0] += 1 }
                    return counts
                }
            }
            #expect(outcomes["paid"] == 50, "\(outcomes)")
            #expect(outcomes["exceeded"] == 150, "\(outcomes)")
            #expect(stack.lnd.paymentCount == 50)
            let store = try backing.budgetStore()
            let balance = try await store.balance(envelopeID: "cap-50")
            #expect(balance.settledMinorUnits == 50)
            #expect(balance.reservedMinorUnits == 0)
            #expect(balance.remainingMinorUnits == 0)
            let sink = try backing.traceSink()
            #expect(try await sink.count() == 200)
            #expect(try await store.unverifiedDraws(envelopeID: "cap-50").isEmpty)
            let events = try await sink.events(limit: 200)
            let paid = events.filter { $0.payment != nil }
            #expect(paid.count == 50)
            #expect(paid.allSatisfy { $0.reservation?.state == "settled" && $0.reservation?.settledMinorUnits == 1 })
            #expect(paid.allSatisfy { $0.payment?.fmvQuality == .staticTable })
            let refused = events.filter { $0.outcome.error?.code == "BudgetExceededError" }
            #expect(refused.count == 150)
        }
    }

    @Test func aPaidTokenIsReusedForTheSameScopeAndPaidOnceUnderConcurrency() async throws {
        var paywall = FakePaywall.Configuration()
        paywall.caveats = ["services=demo:0"]
        try await Stack.run(paywall: paywall) { stack in
            let sink = InMemoryTraceSink()
            var config = stack.configuration(sink: sink)
            config.credentialStore = InMemoryCredentialStore()
            try await RouteweilerClient.withClient(configuration: config) { rw in
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<50 {
                        group.addTask { Int(try await rw.get(stack.paywall.url("/protected")).status.code) }
                    }
                    for try await status in group { #expect(status == 200) }
                }
                // Later calls on the same origin and service reuse it too.
                let again = try await rw.get(stack.paywall.url("/protected/other"))
                #expect(again.status == .ok)
                #expect(again.payment == nil)
            }
            #expect(stack.lnd.paymentCount == 1)
            let events = await sink.events
            #expect(events.count == 51)
            #expect(events.filter { $0.payment != nil }.count == 1)
            #expect(events.filter { $0.credentialState == "reused" }.count == 50)
        }
    }

    @Test func reuseCanBeTurnedOff() async throws {
        try await Stack.run { stack in
            var config = stack.configuration()
            config.reuseCredentials = false
            try await RouteweilerClient.withClient(configuration: config) { rw in
                _ = try await rw.get(stack.paywall.url("/protected"))
                _ = try await rw.get(stack.paywall.url("/protected"))
            }
            #expect(stack.lnd.paymentCount == 2)
        }
    }

    @Test func aRefusedTokenIsDroppedAndPaidAgainOnceNotInALoop() async throws {
        var paywall = FakePaywall.Configuration()
        paywall.singleUseTokens = true
        try await Stack.run(paywall: paywall) { stack in
            try await RouteweilerClient.withClient(configuration: stack.configuration()) { rw in
                let first = try await rw.get(stack.paywall.url("/protected"))
                #expect(first.status == .ok)
                // The stored token is refused now: one new payment, then success.
                let second = try await rw.get(stack.paywall.url("/protected"))
                #expect(second.status == .ok)
            }
            #expect(stack.lnd.paymentCount == 2)
            #expect(stack.paywall.stats.challengesIssued == 2)
        }
    }

    @Test func tokensNeverGoToAnotherOriginNorAcrossRedirects() async throws {
        try await Stack.run { stack in
            try await FakePaywall.withPaywall(network: stack.network) { other in
                try await RouteweilerClient.withClient(configuration: stack.configuration()) { rw in
                    _ = try await rw.get(stack.paywall.url("/protected"))
                    _ = try await rw.get(other.url("/free"))
                    // A redirect from the paid origin to another origin is returned, not followed.
                    let redirect = try await rw.get(stack.paywall.url("/redirect?to=\(other.url("/free"))"))
                    #expect(redirect.status.code == 302)
                }
                #expect(other.stats.authorizationHeadersSeen == 0)
            }
        }
    }

    @Test func aDeniedCallIsTracedWithTheRuleAndNeverPays() async throws {
        try await Stack.run { stack in
            let sink = InMemoryTraceSink()
            var config = stack.configuration(sink: sink)
            config.policy = try Policy(json: Data(#"""
                {"rules": [{"name": "no-local", "when": {"host": "127.0.0.1"}, "deny": true, "reason": "local paywalls are off limits"}]}
                """#.utf8))
            let error = await #expect(throws: PolicyDeniedError.self) {
                try await RouteweilerClient.withClient(configuration: config) { rw in
                    try await rw.get(stack.paywall.url("/protected"))
                }
            }
            #expect(error?.ruleName == "no-local")
            #expect(stack.lnd.paymentCount == 0)
            let events = await sink.events
            #expect(events.count == 1)
            #expect(events[0].policy?.verdict == "deny")
            #expect(events[0].policy?.ruleName == "no-local")
            #expect(events[0].policyHash == config.policy.hash)
            #expect(events[0].policyHash != RouteweilerClient.defaultPolicyHash)
        }
    }

    @Test func maxPerCallAndEnvelopeRailsAreEnforcedBeforePaying() async throws {
        try await Stack.run { stack in
            var config = stack.configuration()
            config.fmvProvider = Self.fmv
            config.policy = try Policy(json: Data(#"""
                {"currency": "usd", "rules": [{"name": "tiny", "when": {"url_matches": "*"}, "max_per_call_minor_units": 0}]}
                """#.utf8))
            let tooDear = await #expect(throws: PolicyMaxPerCallExceededError.self) {
                try await RouteweilerClient.withClient(configuration: config) { rw in
                    try await rw.get(stack.paywall.url("/protected"))
                }
            }
            #expect(tooDear?.limit == 0)

            let (db, keys) = dirs()
            let x402Only = BudgetEnvelope(id: "x402-only", capMinorUnits: 100, capCurrency: .usd, allowedRails: [.x402],
                                          ttlSeconds: 60)
            let railConfig = try sqliteConfig(stack, db: db, keys: keys, envelope: x402Only)
            await #expect(throws: RailNotAllowedError.self) {
                try await RouteweilerClient.withClient(configuration: railConfig) { rw in
                    try await rw.get(stack.paywall.url("/protected"))
                }
            }
            let (db2, keys2) = dirs()
            let elsewhere = BudgetEnvelope(id: "elsewhere", capMinorUnits: 100, capCurrency: .usd, allowedRails: [.l402],
                                           allowedOriginsGlob: ["https://*.example.com"], ttlSeconds: 60)
            let originConfig = try sqliteConfig(stack, db: db2, keys: keys2, envelope: elsewhere)
            await #expect(throws: OriginNotAllowedError.self) {
                try await RouteweilerClient.withClient(configuration: originConfig) { rw in
                    try await rw.get(stack.paywall.url("/protected"))
                }
            }
            #expect(stack.lnd.paymentCount == 0)
        }
    }

    @Test func anFmvOutageRefusesToPayInsteadOfGuessing() async throws {
        try await Stack.run { stack in
            var ratesConfig = FakeRatesServer.Configuration()
            ratesConfig.coinGecko = .down
            try await FakeRatesServer.withServer(configuration: ratesConfig) { rates in
                let (db, keys) = dirs()
                var config = try sqliteConfig(
                    stack, db: db, keys: keys,
                    envelope: BudgetEnvelope(id: "usd", capMinorUnits: 100, capCurrency: .usd, allowedRails: [.l402],
                                             ttlSeconds: 60))
                var cg = CoinGeckoProvider.Configuration()
                cg.baseURL = rates.baseURL
                config.fmvProvider = CoinGeckoProvider(configuration: cg)
                await #expect(throws: FmvUnavailableError.self) {
                    try await RouteweilerClient.withClient(configuration: config) { rw in
                        try await rw.get(stack.paywall.url("/protected"))
                    }
                }
                #expect(stack.lnd.paymentCount == 0)
            }
        }
    }

    @Test func anUnknownEnvelopeIdIsAnErrorAtStart() async throws {
        try await Stack.run { stack in
            let (db, keys) = dirs()
            var config = try sqliteConfig(stack, db: db, keys: keys, envelope: nil)
            config.budget = .envelope(id: "nope")
            await #expect(throws: EnvelopeNotFoundError.self) {
                try await RouteweilerClient.withClient(configuration: config) { _ in }
            }
            #expect(throws: ConfigurationError.self) {
                var c = stack.configuration()
                c.budget = .envelope(id: "x")  // no store
                _ = try RouteweilerClient(configuration: c)
            }
        }
    }
}
