import Foundation
import HTTPTypes
import LNDClient
import Logging
import Routeweiler
import RouteweilerL402
import RouteweilerSQLite
import RouteweilerTesting
import RouteweilerWire
import RouteweilerX402
import Synchronization
import Testing

/// x402 against a real paywall on 127.0.0.1 that checks every EIP-712 signature and settles on an in-memory
/// USDC ledger; and 402s offering both x402 and L402, paid exactly once.
@Suite(.serialized) struct X402PaywallTests {
    static let wallet = X402Fixture.signer
    static let merchant = try! EVMAddress(hex: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C")

    func paywallConfig(versions: [Int] = [2], lightning: Bool = false, amount: UInt64 = 1_000)
        -> FakePaywall.Configuration
    {
        var c = FakePaywall.Configuration()
        var offering = FakeX402Offering.baseSepoliaUSDC(payTo: Self.merchant, amount: amount)
        offering.versions = versions
        c.x402 = offering
        c.schemes = lightning ? ["L402"] : []
        return c
    }

    func config(_ stack: Stack, sink: (any TraceSink)? = nil, lightning: Bool = false,
                wallet: any EVMWallet = X402PaywallTests.wallet) -> RouteweilerClient.Configuration {
        var funding: [any FundingSource] = [Funding.baseSepoliaUSDC(wallet: wallet)]
        if lightning { funding.append(stack.source) }
        return stack.configuration(sink: sink, funding: funding)
    }

    @Test(arguments: [2, 1]) func paysAndRecordsTheSettlementReceipt(version: Int) async throws {
        try await Stack.run(paywall: paywallConfig(versions: [version])) { stack in
            stack.paywall.ledger.mint(5_000, to: Self.wallet.address)
            let sink = try SQLiteTraceSink(path: temporaryDatabasePath("x402"))
            let response = try await RouteweilerClient.withClient(configuration: config(stack, sink: sink)) { rw in
                try await rw.get(stack.paywall.url("/protected"))
            }
            #expect(response.status == .ok)
            #expect(response.text == #"{"result":"ok","rail":"x402"}"#)
            let transfers = stack.paywall.ledger.transfers
            try #require(transfers.count == 1)
            #expect(stack.paywall.ledger.balance(of: Self.wallet.address) == 4_000)
            #expect(stack.paywall.ledger.balance(of: Self.merchant) == 1_000)
            let payment = try #require(response.payment)
            #expect(payment.rail == .x402)
            #expect(payment.proofType == .txid)
            #expect(payment.proofValue == transfers[0].transactionHash)
            #expect(payment.settlement?.transactionHash == transfers[0].transactionHash)
            #expect(payment.settlement?.payer == Self.wallet.address.checksummed)
            #expect(payment.settlement?.network == (version == 2 ? "eip155:84532" : "base-sepolia"))
            #expect(payment.settlement?.success == true)

            let event = try #require(try await sink.events(limit: 1).first)
            #expect(event.selectedRail == .x402)
            #expect(event.payment?.proofValue == transfers[0].transactionHash)
            #expect(event.payment?.settlement?.transactionHash == transfers[0].transactionHash)
            #expect(event.payment?.settlement?.payer == Self.wallet.address.checksummed)
            #expect(event.payment?.amountNative == 1_000)
            #expect(event.challenge?.raw["x402Version"] == String(version))
            let payload = try event.payloadJSON()
            #expect(payload.contains(#""transactionHash":"\#(transfers[0].transactionHash)""#))
            #expect(!payload.contains("ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"))
        }
    }

    @Test func v1AndV2OfferedTogetherArePaidOnce() async throws {
        try await Stack.run(paywall: paywallConfig(versions: [1, 2])) { stack in
            stack.paywall.ledger.mint(5_000, to: Self.wallet.address)
            _ = try await RouteweilerClient.withClient(configuration: config(stack)) { rw in
                try await rw.get(stack.paywall.url("/protected"))
            }
            #expect(stack.paywall.ledger.transfers.count == 1)
            #expect(stack.paywall.stats.x402PaymentsReceived == 1)
        }
    }

    @Test func aRejectedSignatureIsATypedErrorAndIsNotSignedAgain() async throws {
        // No balance: the ledger refuses the transfer and the paywall answers 402 with a fresh requirement.
        try await Stack.run(paywall: paywallConfig()) { stack in
            await #expect(throws: ProofRejectedError.self) {
                _ = try await RouteweilerClient.withClient(configuration: config(stack)) { rw in
                    try await rw.get(stack.paywall.url("/protected"))
                }
            }
            #expect(stack.paywall.stats.x402PaymentsReceived == 1)
            #expect(stack.paywall.stats.x402Refusals == ["insufficient_funds"])
            #expect(stack.paywall.ledger.transfers.isEmpty)
        }
    }

    @Test func aResentRetryCarriesTheSameAuthorisation() async throws {
        var paywall = paywallConfig()
        paywall.dropPaidRetries = 1
        try await Stack.run(paywall: paywall) { stack in
            stack.paywall.ledger.mint(5_000, to: Self.wallet.address)
            let response = try await RouteweilerClient.withClient(configuration: config(stack)) { rw in
                try await rw.get(stack.paywall.url("/protected"))
            }
            #expect(response.status == .ok)
            let headers = stack.paywall.stats.x402PaymentHeaders
            #expect(headers.count == 2)
            #expect(Set(headers).count == 1, "one purchase, one signature")
            #expect(stack.paywall.ledger.transfers.count == 1)
        }
    }

    @Test func aContradictedDomainIsRefusedBeforeSigning() async throws {
        var paywall = paywallConfig()
        paywall.x402?.advertisedDomainName = "USD Coin"  // Base mainnet's name on Base Sepolia
        try await Stack.run(paywall: paywall) { stack in
            stack.paywall.ledger.mint(5_000, to: Self.wallet.address)
            do {
                _ = try await RouteweilerClient.withClient(configuration: config(stack)) { rw in
                    try await rw.get(stack.paywall.url("/protected"))
                }
                Issue.record("expected InvalidChallengeError")
            } catch let error as InvalidChallengeError {
                #expect(error.code == .domainMismatch)
            }
            #expect(stack.paywall.stats.x402PaymentsReceived == 0)
        }
    }

    @Test func aBudgetBelowThePriceStopsTheSignature() async throws {
        try await Stack.run(paywall: paywallConfig(amount: 2_000_000)) { stack in  // 2 USDC
            stack.paywall.ledger.mint(5_000_000, to: Self.wallet.address)
            let db = temporaryDatabasePath("x402-budget")
            var config = config(stack)
            try config.useSQLite(path: db, keystore: EnvelopeKeystore(
                directory: URL(fileURLWithPath: db).deletingLastPathComponent().appendingPathComponent("keys").path))
            config.fmvProvider = StaticFmvProvider()
            config.budget = .create(BudgetEnvelope(id: "usd-1", capMinorUnits: 100, capCurrency: .usd, allowedRails: [.x402], ttlSeconds: 600))
            await #expect(throws: BudgetExceededError.self) {
                _ = try await RouteweilerClient.withClient(configuration: config) { rw in
                    try await rw.get(stack.paywall.url("/protected"))
                }
            }
            #expect(stack.paywall.stats.x402PaymentsReceived == 0)
            #expect(stack.paywall.ledger.transfers.isEmpty)
        }
    }

    // MARK: x402 and L402 in one 402

    /// Payments made on both rails together.
    func paymentsMade(_ stack: Stack) -> Int { stack.paywall.ledger.transfers.count + stack.lnd.paymentCount }

    @Test func aMixedChallengeIsPaidOnceOnTheCheaperRail() async throws {
        // 1 000 units of USDC = 0.1 US cent; 10 sats at 60 000 USD/BTC = 0.6 cent: x402 is cheaper.
        try await Stack.run(paywall: paywallConfig(lightning: true)) { stack in
            stack.paywall.ledger.mint(5_000, to: Self.wallet.address)
            var config = config(stack, lightning: true)
            config.policy = Policy(defaultRail: .l402, currency: .usd)
            config.fmvProvider = StaticFmvProvider()
            let response = try await RouteweilerClient.withClient(configuration: config) { rw in
                try await rw.get(stack.paywall.url("/protected"))
            }
            #expect(response.payment?.rail == .x402)
            #expect(paymentsMade(stack) == 1)
            #expect(stack.paywall.ledger.transfers.count == 1)
        }
    }

    @Test func aMixedChallengeFollowsTheDefaultRailWhenPricesAreNotComparable() async throws {
        try await Stack.run(paywall: paywallConfig(lightning: true)) { stack in
            stack.paywall.ledger.mint(5_000, to: Self.wallet.address)
            var config = config(stack, lightning: true)
            config.policy = Policy(defaultRail: .l402)
            let response = try await RouteweilerClient.withClient(configuration: config) { rw in
                try await rw.get(stack.paywall.url("/protected"))
            }
            #expect(response.payment?.rail == .l402)
            #expect(paymentsMade(stack) == 1)
            #expect(stack.lnd.paymentCount == 1)
            #expect(stack.paywall.stats.x402PaymentsReceived == 0)
        }
    }

    struct RefusingWallet: EVMWallet {
        var address: EVMAddress { X402PaywallTests.wallet.address }
        func signDigest(_ digest32: [UInt8]) async throws -> [UInt8] {
            throw CancellationError()  // e.g. a hardware signer whose user said no
        }
    }

    @Test func aFailureBeforeMoneyMovesFailsOverToTheOtherRail() async throws {
        try await Stack.run(paywall: paywallConfig(lightning: true)) { stack in
            let sink = try SQLiteTraceSink(path: temporaryDatabasePath("failover"))
            let config = config(stack, sink: sink, lightning: true, wallet: RefusingWallet())
            let response = try await RouteweilerClient.withClient(configuration: config) { rw in
                try await rw.get(stack.paywall.url("/protected"))
            }
            #expect(response.payment?.rail == .l402)
            #expect(response.payment?.fallbackFrom == .x402)
            #expect(paymentsMade(stack) == 1)
            let event = try #require(try await sink.events(limit: 1).first)
            #expect(event.selectedRail == .l402)
            #expect(event.fallbackFrom == .x402)
            #expect(try await sink.count() == 1)
        }
    }

    @Test func anOriginStaysOnTheRailThatPaidIt() async throws {
        // First the origin offers only L402; later it adds a cheaper x402 offer. The client stays on L402
        // (sticky routing, SPEC §5.2), while a fresh client takes the cheaper x402 offer.
        var paywall = paywallConfig(lightning: true)
        paywall.x402 = nil
        try await Stack.run(paywall: paywall) { stack in
            stack.paywall.ledger.mint(5_000, to: Self.wallet.address)
            var config = config(stack, lightning: true)
            config.policy = Policy(currency: .usd)
            config.fmvProvider = StaticFmvProvider()
            config.reuseCredentials = false
            let rails = try await RouteweilerClient.withClient(configuration: config) { rw in
                var rails: [RailID?] = []
                rails.append(try await rw.get(stack.paywall.url("/protected")).payment?.rail)
                stack.paywall.configure { $0.x402 = FakeX402Offering.baseSepoliaUSDC(payTo: Self.merchant) }
                rails.append(try await rw.get(stack.paywall.url("/protected")).payment?.rail)
                return rails
            }
            #expect(rails == [.l402, .l402])
            let fresh = try await RouteweilerClient.withClient(configuration: config) { rw in
                try await rw.get(stack.paywall.url("/protected")).payment?.rail
            }
            #expect(fresh == .x402)
            #expect(stack.lnd.paymentCount == 2)
            #expect(stack.paywall.ledger.transfers.count == 1)
        }
    }
}
