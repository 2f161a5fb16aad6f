import ArgumentParser
import Foundation
import LNDClient
import Routeweiler
import RouteweilerL402
import RouteweilerMPP
import RouteweilerSQLite
import RouteweilerTesting
import RouteweilerWire
import RouteweilerX402

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a local paywall (and a simulated LND node) on 127.0.0.1 and pay one URL end to end.",
        discussion: """
            --rail l402 (default): an L402 paywall and a fake LND node speaking LND's gRPC over TLS.
            --rail x402: an x402 paywall that verifies EIP-3009 signatures with EIP-712 and settles on an \
            in-memory USDC ledger; --x402-version 1 or 2.
            """
    )

    enum DemoRail: String, ExpressibleByArgument, CaseIterable {
        case l402, x402, mpp
    }

    @Option(name: .customLong("rail"), help: "Which paywall to run: l402, x402 or mpp (Tempo, Stripe SPT and Lightning).")
    var rail: DemoRail = .l402

    @Option(name: .customLong("trace-db"), help: "SQLite trace database (default: a fresh temporary file).")
    var traceDB: String?

    @Option(name: .customLong("price-sats"), help: "Price of the protected resource in sats (l402).")
    var priceSats: UInt64 = 21

    @Option(name: .customLong("price-usdc-units"), help: "Price in USDC base units, 6 decimals (x402).")
    var priceUnits: UInt64 = 10_000

    @Option(name: .customLong("x402-version"), help: "x402 protocol version the paywall speaks: 1 or 2.")
    var x402Version: Int = 2

    func validate() throws {
        guard [1, 2].contains(x402Version) else { throw ValidationError("--x402-version must be 1 or 2") }
    }

    @OptionGroup var telemetry: TelemetryOptions

    func run() async throws {
        try await telemetry.run { try await runCommand() }
    }

    func runCommand() async throws {
        let dbPath = traceDB ?? NSTemporaryDirectory() + "routeweiler-demo-\(UUID().uuidString.prefix(8)).db"
        switch rail {
        case .l402: try await runL402(dbPath: dbPath)
        case .x402: try await runX402(dbPath: dbPath)
        case .mpp: try await runMPP(dbPath: dbPath)
        }
        step("done. Inspect the trace again with: routeweiler trace --trace-db \(dbPath)")
    }

    func runL402(dbPath: String) async throws {
        let network = FakeLightningNetwork()
        var paywallConfig = FakePaywall.Configuration()
        paywallConfig.priceMsat = priceSats * 1000
        paywallConfig.caveats = ["services=demo:0"]
        step("Routeweiler demo: an L402 paywall and a simulated LND node on 127.0.0.1, paid end to end")

        try await FakeLND.withFakeLND(network: network) { lnd in
            try await FakePaywall.withPaywall(network: network, configuration: paywallConfig) { paywall in
                step("1. started the paywall at \(paywall.baseURL) and a fake LND (gRPC over TLS) at 127.0.0.1:\(lnd.port)")
                try await LNDClient.withClient(configuration: lnd.clientConfiguration) { client in
                    let source = try await LightningFundingSource.create(lnd: client, network: .bitcoinRegtest)
                    step("2. connected to LND over gRPC, TLS pinned to its tls.cert; GetInfo pubkey \(abbreviate(source.nodePubkey, 10)) on \(source.network)")
                    let response = try await pay(paywall.url("/protected"), funding: source, dbPath: dbPath)
                    if let preimage = response.payment?.proofValue.flatMap({ Hex.decode($0) }),
                        let invoice = await network.invoice(paymentHash: Bolt11Invoice.sha256(preimage)), invoice.settled
                    {
                        step("10. the simulated Lightning network shows the invoice settled (\(invoice.amountMsat / 1000) sats)")
                    }
                }
            }
        }
    }

    func runX402(dbPath: String) async throws {
        // A throwaway key, generated for this run and never printed.
        var key: Secp256k1.PrivateKey?
        while key == nil {
            key = try? Secp256k1.PrivateKey(bytes: (0..<32).map { _ in UInt8.random(in: 0...255) })
        }
        let wallet = EVMSigner(privateKey: key!)
        let merchant = EVMSigner(privateKey: try Secp256k1.PrivateKey(bytes: [UInt8](repeating: 0x42, count: 32))).address
        var paywallConfig = FakePaywall.Configuration()
        paywallConfig.schemes = []
        var offering = FakeX402Offering.baseSepoliaUSDC(payTo: merchant, amount: priceUnits)
        offering.versions = [x402Version]
        paywallConfig.x402 = offering
        step("Routeweiler demo: an x402 v\(x402Version) paywall on 127.0.0.1 settling EIP-3009 USDC authorisations on an in-memory ledger")
        try await FakePaywall.withPaywall(network: FakeLightningNetwork(), configuration: paywallConfig) { paywall in
            paywall.ledger.mint(1_000_000, to: wallet.address)
            step("1. started the paywall at \(paywall.baseURL); it asks \(X402Asset.baseSepoliaUSDC.humanAmount(priceUnits)) on Base Sepolia (eip155:84532) to \(merchant)")
            step("2. a fresh local key \(wallet.address) holds \(X402Asset.baseSepoliaUSDC.humanAmount(paywall.ledger.balance(of: wallet.address))) on the paywall's ledger")
            _ = try await pay(paywall.url("/protected"), funding: Funding.baseSepoliaUSDC(wallet: wallet), dbPath: dbPath)
            if let transfer = paywall.ledger.transfers.last {
                step("10. the ledger moved \(X402Asset.baseSepoliaUSDC.humanAmount(transfer.value)) from \(transfer.from) to \(transfer.to) in \(abbreviate(transfer.transactionHash, 18)); balance now \(X402Asset.baseSepoliaUSDC.humanAmount(paywall.ledger.balance(of: wallet.address)))")
            }
        }
    }

    func runMPP(dbPath: String) async throws {
        step("Routeweiler demo: an MPP paywall (WWW-Authenticate: Payment) on 127.0.0.1 with a fake Stripe API, a fake Tempo RPC and a fake LND")
        let network = FakeLightningNetwork()
        try await FakeLND.withFakeLND(network: network) { lnd in
            try await LNDClient.withClient(configuration: lnd.clientConfiguration) { client in
                let node = try await LightningFundingSource.create(lnd: client, network: .bitcoinRegtest).withMPP()
                for method in FakeMPPPaywall.Method.allCases {
                    var config = FakeMPPPaywall.Configuration()
                    config.methods = [method]
                    try await FakeMPPDemo.run(network: network, configuration: config) { demo in
                        step("== method=\(method.rawValue): paywall \(demo.paywall.baseURL), Stripe \(demo.stripe.baseURL), Tempo RPC \(demo.tempo.url)")
                        let funding: any FundingSource
                        switch method {
                        case .tempo:
                            funding = TempoFundingSource(wallet: try EVMSigner(hexKey: FakeMPPDemo.tempoTestKey),
                                                         chain: .moderato, token: .pathUSD, rpcURL: demo.tempo.url)
                        case .stripe:
                            funding = Funding.stripe(apiKey: demo.stripe.apiKey, customer: "cus_demo",
                                                     paymentMethod: "pm_card_visa", apiBaseURL: demo.stripe.baseURL)
                        default:
                            funding = node
                        }
                        _ = try await pay(demo.paywall.url("/protected"), funding: funding, dbPath: dbPath)
                    }
                }
            }
        }
    }

    /// Pays `url` with one funding source, narrating each step, and prints the trace row.
    func pay(_ url: String, funding: any FundingSource, dbPath: String) async throws -> RouteweilerResponse {
        var config = RouteweilerClient.Configuration(funding: [funding])
        let sink = try SQLiteTraceSink(path: dbPath)
        config.traceSink = sink
        config.agentID = "routeweiler-demo"
        config.logger = cliLogger
        config.onEvent = { event in Self.show(event) }
        step("3. GET \(url)")
        let response = try await RouteweilerClient.withClient(configuration: config) { rw in
            try await rw.get(url)
        }
        step("8. response: HTTP \(response.status.code) \(response.text)")
        if let p = response.payment {
            let unit = p.rail == .l402 ? "sats" : "token units"
            step("   paid \(p.amountNative) \(unit) via \(p.rail); proof \(p.proofType) \(p.proofValue ?? "-")")
            if let s = p.settlement {
                step("   settlement receipt: \(s.success ? "success" : "not confirmed") on \(s.network ?? "?"), payer \(s.payer ?? "-")")
            }
        }
        let events = try await sink.events(limit: 1)
        step("9. trace row in \(dbPath) (trace_events, \(try await sink.count()) row):")
        if let e = events.first {
            print(try Self.prettyJSON(e.payloadJSON()))
        }
        return response
    }

    func step(_ s: String) { print(s) }

    static func show(_ event: FlowEvent) {
        switch event {
        case .challenged(let status, let headers):
            print("4. server answered \(status) Payment Required with:")
            for h in headers { print("     \(abbreviateQuoted(abbreviateLong(h)))") }
            if headers.isEmpty { print("     (no challenge header: x402 v1 requirements in the JSON body)") }
        case .offerSelected(let c, let source):
            if c.rail == .l402 {
                print("5. chose rail \(c.rail): invoice for \(c.price.humanAmount) on \(c.raw["network"] ?? "?"), payment hash \(abbreviate(c.nonce, 12)), funded by \(source)")
                if let invoice = c.raw["invoice"] { print("     invoice \(abbreviate(invoice, 40))") }
            } else {
                print("5. chose rail \(c.rail) (v\(c.raw["x402Version"] ?? "?")): \(c.price.humanAmount) on \(c.raw["network"] ?? "?") to \(c.payee.identifier), funded by \(source)")
            }
        case .offerRejected(let r):
            print("   offer rejected: \(r)")
        case .paid(let rail, let proofType, let proofValue, let amount, let ms):
            if rail == .l402 {
                print("6. paid \(amount) sats over \(rail) through LND SendPaymentV2 in \(ms) ms; \(proofType) \(proofValue ?? "-") (sha256 checked against the payment hash)")
            } else {
                print("6. signed an EIP-3009 TransferWithAuthorization for \(amount) token units under the pinned EIP-712 domain in \(ms) ms (fresh 32-byte nonce)")
            }
        case .retrying(let attempt, let name):
            print("7. retry #\(attempt) with \(name)\(name == "Authorization" ? ": L402 <macaroon>:<preimage>" : ": base64 JSON payload with the signature")")
        case .completed(let status):
            print("   retry answered \(status)")
        }
    }

    static func prettyJSON(_ s: String) throws -> String {
        let obj = try JSONSerialization.jsonObject(with: Data(s.utf8))
        let data = try JSONSerialization.data(withJSONObject: obj, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }
}

/// Shortens every long quoted value of a header (`macaroon="AgEM…"`) for display.
func abbreviateQuoted(_ header: String) -> String {
    let parts = header.split(separator: "\"", omittingEmptySubsequences: false)
    return parts.enumerated().map { i, part in
        i % 2 == 1 ? abbreviate(String(part), 16) : String(part)
    }.joined(separator: "\"")
}

/// Shortens an unquoted long header value (a base64 `PAYMENT-REQUIRED`) for display.
func abbreviateLong(_ header: String) -> String {
    guard !header.contains("\""), let colon = header.firstIndex(of: ":") else { return header }
    let value = header[header.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    return value.count > 60 ? "\(header[..<colon]): \(abbreviate(value, 40))" : header
}
