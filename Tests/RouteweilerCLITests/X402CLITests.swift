import Foundation
import GRDB
import RouteweilerTesting
import RouteweilerWire
import Testing

@Suite(.serialized) struct X402CLITests {
    static let key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
    static let merchant = try! EVMAddress(hex: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C")

    @Test(arguments: ["1", "2"]) func demoPaysOverX402(version: String) async throws {
        let db = temporaryPath("demo-x402.db")
        let run = try await CLIRun.run(["demo", "--rail", "x402", "--x402-version", version, "--trace-db", db])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("HTTP 200"))
        #expect(run.stdout.contains(version == "2" ? "PAYMENT-SIGNATURE" : "X-PAYMENT"))
        #expect(run.stdout.contains("the ledger moved 0.01 USDC"))
        let rail = try await DatabaseQueue(path: db).read {
            try String.fetchOne($0, sql: "SELECT selected_rail FROM trace_events")
        }
        #expect(rail == "x402")
    }

    func keyFile(mode: Int) throws -> String {
        let path = temporaryPath("evm.key")
        FileManager.default.createFile(atPath: path, contents: Data(Self.key.utf8),
                                       attributes: [.posixPermissions: mode])
        return path
    }

    func paywall() -> FakePaywall.Configuration {
        var c = FakePaywall.Configuration()
        c.schemes = []
        c.x402 = .baseSepoliaUSDC(payTo: Self.merchant, amount: 2_500)
        return c
    }

    @Test func getPaysWithAKeyFile() async throws {
        let key = try keyFile(mode: 0o600)
        try await FakePaywall.withPaywall(network: FakeLightningNetwork(), configuration: paywall()) { paywall in
            let signer = try EVMSigner(hexKey: Self.key)
            paywall.ledger.mint(10_000, to: signer.address)
            let run = try await CLIRun.run(["get", paywall.url("/protected"), "--evm-key-file", key,
                                            "--evm-network", "base-sepolia", "--json"])
            #expect(run.status == 0, "\(run.stderr)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
            let payment = try #require(json["payment"] as? [String: Any])
            #expect(payment["rail"] as? String == "x402")
            #expect(payment["amountNative"] as? Int == 2_500)
            let settlement = try #require(payment["settlement"] as? [String: Any])
            #expect(settlement["payer"] as? String == signer.address.checksummed)
            #expect(paywall.ledger.balance(of: Self.merchant) == 2_500)
            #expect(!run.stdout.contains(String(Self.key.dropFirst(2))) && !run.stderr.contains(String(Self.key.dropFirst(2))))
        }
    }

    @Test func getReadsTheKeyFromTheEnvironment() async throws {
        try await FakePaywall.withPaywall(network: FakeLightningNetwork(), configuration: paywall()) { paywall in
            paywall.ledger.mint(10_000, to: try EVMSigner(hexKey: Self.key).address)
            let run = try await CLIRun.run(["get", paywall.url("/protected"), "--evm-network", "base-sepolia"],
                                           environment: ["ROUTEWEILER_EVM_KEY": Self.key])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stderr.contains("via x402"))
            #expect(paywall.ledger.transfers.count == 1)
        }
    }

    @Test func aKeyFileReadableByOthersIsRefusedWithoutPrintingIt() async throws {
        let key = try keyFile(mode: 0o644)
        let run = try await CLIRun.run(["get", "http://127.0.0.1:9/x", "--evm-key-file", key])
        #expect(run.status != 0)
        #expect(run.stderr.contains("permission") || run.stderr.contains("0644") || run.stderr.contains("644"),
                "\(run.stderr)")
        #expect(!run.stderr.contains(String(Self.key.dropFirst(2))))
    }

    @Test func theWrongNetworkPaysNothing() async throws {
        let key = try keyFile(mode: 0o600)
        try await FakePaywall.withPaywall(network: FakeLightningNetwork(), configuration: paywall()) { paywall in
            paywall.ledger.mint(10_000, to: try EVMSigner(hexKey: Self.key).address)
            let run = try await CLIRun.run(["get", paywall.url("/protected"), "--evm-key-file", key,
                                            "--evm-network", "base", "--json"])
            #expect(run.status != 0)
            #expect(run.stdout.contains("NoFundingForRailError"), "\(run.stdout)")
            #expect(paywall.ledger.transfers.isEmpty)
            #expect(paywall.stats.x402PaymentsReceived == 0)
        }
    }
}

@Suite(.serialized) struct DryRunCLITests {
    @Test func dryRunShowsTheOffersAndPaysNothing() async throws {
        let key = temporaryPath("evm.key")
        FileManager.default.createFile(atPath: key, contents: Data(X402CLITests.key.utf8),
                                       attributes: [.posixPermissions: 0o600])
        var config = FakePaywall.Configuration()
        config.schemes = []
        config.x402 = .baseSepoliaUSDC(payTo: X402CLITests.merchant, amount: 2_500)
        try await FakePaywall.withPaywall(network: FakeLightningNetwork(), configuration: config) { paywall in
            paywall.ledger.mint(10_000, to: try EVMSigner(hexKey: X402CLITests.key).address)
            let text = try await CLIRun.run(["get", paywall.url("/protected"), "--dry-run", "--evm-key-file", key,
                                             "--evm-network", "base-sepolia"])
            #expect(text.status == 0, "\(text.stderr)")
            #expect(text.stdout.contains("* x402  0.0025 USDC"), "\(text.stdout)")
            #expect(text.stdout.contains("would pay: x402"))
            let json = try await CLIRun.run(["get", paywall.url("/protected"), "--dry-run", "--json",
                                             "--evm-key-file", key, "--evm-network", "base"])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            #expect(object["chosenRail"] is NSNull || object["chosenRail"] == nil)
            let offers = try #require(object["offers"] as? [[String: Any]])
            #expect((offers.first?["rejection"] as? [String: Any])?["code"] as? String == "NoFundingForRailError")
            #expect(paywall.ledger.transfers.isEmpty)
            #expect(paywall.stats.x402PaymentsReceived == 0)
        }
    }
}

@Suite(.serialized) struct MPPDemoCLITests {
    @Test func demoPaysEachMPPMethod() async throws {
        let db = temporaryPath("demo-mpp.db")
        let run = try await CLIRun.run(["demo", "--rail", "mpp", "--trace-db", db])
        #expect(run.status == 0, "\(run.stderr)")
        let rails = try await DatabaseQueue(path: db).read {
            try String.fetchAll($0, sql: "SELECT selected_rail FROM trace_events ORDER BY ts_start")
        }
        #expect(Set(rails) == ["mpp-tempo", "mpp-spt", "mpp-lightning"])
        #expect(!run.stdout.contains("sk_test_routeweiler_fake"))
    }
}

@Suite(.serialized) struct MPPGetCLITests {
    @Test func getPaysStripeAndTempoChargesWithoutPrintingTheKey() async throws {
        var config = FakeMPPPaywall.Configuration()
        config.methods = [.stripe]
        try await FakeMPPDemo.run(configuration: config) { demo in
            let keyFile = temporaryPath("stripe.key")
            FileManager.default.createFile(atPath: keyFile, contents: Data(demo.stripe.apiKey.utf8),
                                           attributes: [.posixPermissions: 0o600])
            let run = try await CLIRun.run(["get", demo.paywall.url("/protected"), "--stripe-key-file", keyFile,
                                            "--stripe-payment-method", "pm_card_visa", "--stripe-customer", "cus_1",
                                            "--stripe-api-base", demo.stripe.baseURL, "--json"])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains("\"mpp-spt\""))
            #expect(!run.stdout.contains(demo.stripe.apiKey) && !run.stderr.contains(demo.stripe.apiKey))
            #expect(demo.stripe.stats.issued.count == 1)
        }
        config.methods = [.tempo]
        try await FakeMPPDemo.run(configuration: config) { demo in
            let run = try await CLIRun.run(["get", demo.paywall.url("/protected"), "--tempo-network", "tempo-moderato",
                                            "--tempo-rpc", demo.tempo.url],
                                           environment: ["ROUTEWEILER_TEMPO_KEY": FakeMPPDemo.tempoTestKey])
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stderr.contains("via mpp-tempo"))
        }
    }
}
