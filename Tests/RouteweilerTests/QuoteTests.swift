import Foundation
import Routeweiler
import RouteweilerL402
import RouteweilerSQLite
import RouteweilerTesting
import RouteweilerWire
import RouteweilerX402
import Testing

/// `quote(url)`: every offer, its cost, the policy and budget verdicts and the choice, with nothing paid.
@Suite(.serialized) struct QuoteTests {
    func mixed() -> FakePaywall.Configuration {
        var c = FakePaywall.Configuration()
        c.x402 = .baseSepoliaUSDC(payTo: X402PaywallTests.merchant, amount: 1_000)  // 0.1 US cent
        return c  // and L402 at 10 sats = 0.6 cent at 60 000 USD/BTC
    }

    func config(_ stack: Stack) -> RouteweilerClient.Configuration {
        var config = stack.configuration(funding: [Funding.baseSepoliaUSDC(wallet: X402PaywallTests.wallet), stack.source])
        config.policy = Policy(currency: .usd)
        config.fmvProvider = StaticFmvProvider()
        return config
    }

    func nothingPaid(_ stack: Stack) {
        #expect(stack.lnd.paymentCount == 0)
        #expect(stack.paywall.ledger.transfers.isEmpty)
        #expect(stack.paywall.stats.x402PaymentsReceived == 0)
        #expect(stack.paywall.stats.authorizationHeadersSeen == 0)
    }

    @Test func quotesEveryOfferAndExplainsTheChoiceWithoutPaying() async throws {
        try await Stack.run(paywall: mixed()) { stack in
            stack.paywall.ledger.mint(10_000, to: X402PaywallTests.wallet.address)
            let quote = try await RouteweilerClient.withClient(configuration: config(stack)) { rw in
                try await rw.quote(stack.paywall.url("/protected"))
            }
            #expect(quote.paymentRequired)
            #expect(quote.chosenRail == .x402)
            #expect(quote.explanation.contains("cheapest"), "\(quote.explanation)")
            #expect(quote.offers.count == 2)
            let x402 = try #require(quote.offers.first { $0.rail == .x402 })
            let l402 = try #require(quote.offers.first { $0.rail == .l402 })
            #expect(x402.chosen && !l402.chosen)
            #expect(x402.payable && l402.payable)
            #expect(x402.costMinorUnits == 1 && x402.costCurrency == "usd")  // 0.1 cent, rounded up
            #expect(l402.costMinorUnits == 1)  // 0.6 cent, rounded up
            #expect(l402.price?.amount == 10)
            #expect(x402.fundingSource?.hasPrefix("evm:") == true)
            nothingPaid(stack)
        }
    }

    @Test func showsAPolicyDenial() async throws {
        try await Stack.run(paywall: mixed()) { stack in
            var config = config(stack)
            config.policy = Policy(currency: .usd, rules: [
                PolicyRule(name: "lightning-only", when: RuleMatch(host: "127.0.0.1"), allowedRails: [.l402]),
            ])
            let quote = try await RouteweilerClient.withClient(configuration: config) { rw in
                try await rw.quote(stack.paywall.url("/protected"))
            }
            #expect(quote.chosenRail == .l402)
            let x402 = try #require(quote.offers.first { $0.rail == .x402 })
            #expect(x402.policyVerdict == "deny")
            #expect(x402.policyRule == "lightning-only")
            #expect(x402.rejection?.code == "PolicyDeniedError")
            #expect(x402.price?.amount == 1_000)
            #expect(!x402.payable)
            nothingPaid(stack)
        }
    }

    @Test func showsWhatTheBudgetAllows() async throws {
        try await Stack.run(paywall: mixed()) { stack in
            let db = temporaryDatabasePath("quote")
            var config = config(stack)
            try config.useSQLite(path: db, keystore: EnvelopeKeystore(
                directory: URL(fileURLWithPath: db).deletingLastPathComponent().appendingPathComponent("keys").path))
            config.policy = Policy()
            config.budget = .create(BudgetEnvelope(id: "tiny", capMinorUnits: 1, capCurrency: .usd,
                                                   allowedRails: [.l402], ttlSeconds: 600))
            let quote = try await RouteweilerClient.withClient(configuration: config) { rw in
                try await rw.quote(stack.paywall.url("/protected"))
            }
            let budget = try #require(quote.budget)
            #expect(budget.envelopeId == "tiny")
            #expect(budget.remainingMinorUnits == 1)
            #expect(quote.offers.first { $0.rail == .x402 }?.rejection?.code == "RailNotAllowedError")
            // 10 sats = 0.6 cent, reserved with the safety buffer as 1 cent: it fits exactly.
            #expect(quote.chosenRail == .l402)
            #expect(budget.wouldReserveMinorUnits == 1)
            #expect(budget.fits)
            nothingPaid(stack)
            #expect(try await SQLiteBudgetStore(path: db, keystore: EnvelopeKeystore(
                directory: URL(fileURLWithPath: db).deletingLastPathComponent().appendingPathComponent("keys").path))
                .draws(envelopeID: "tiny").isEmpty)
        }
    }

    @Test func aFreeURLNeedsNoPayment() async throws {
        try await Stack.run { stack in
            let quote = try await RouteweilerClient.withClient(configuration: stack.configuration()) { rw in
                try await rw.quote(stack.paywall.url("/free"))
            }
            #expect(!quote.paymentRequired)
            #expect(quote.httpStatus == 200)
            #expect(quote.offers.isEmpty && quote.chosenRail == nil)
        }
    }
}
