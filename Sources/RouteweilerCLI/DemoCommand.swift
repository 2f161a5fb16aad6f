import ArgumentParser
import Foundation
import LNDClient
import Routeweiler
import RouteweilerL402
import RouteweilerSQLite
import RouteweilerTesting
import RouteweilerWire

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a local L402 paywall and a simulated LND node, and pay one URL end to end."
    )

    @Option(name: .customLong("trace-db"), help: "SQLite trace database (default: a fresh temporary file).")
    var traceDB: String?

    @Option(name: .customLong("price-sats"), help: "Price of the protected resource in sats.")
    var priceSats: UInt64 = 21

    func run() async throws {
        let dbPath = traceDB ?? NSTemporaryDirectory() + "routeweiler-demo-\(UUID().uuidString.prefix(8)).db"
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

                    var config = RouteweilerClient.Configuration(funding: [source])
                    let sink = try SQLiteTraceSink(path: dbPath)
                    config.traceSink = sink
                    config.agentID = "routeweiler-demo"
                    config.onEvent = { event in Self.show(event) }
                    let url = paywall.url("/protected")
                    step("3. GET \(url)")
                    let response = try await RouteweilerClient.withClient(configuration: config) { rw in
                        try await rw.get(url)
                    }
                    step("8. response: HTTP \(response.status.code) \(response.text)")
                    if let p = response.payment {
                        step("   paid \(p.amountNative) sats via \(p.rail); proof \(p.proofType) \(p.proofValue ?? "-")")
                    }
                    let events = try await sink.events(limit: 1)
                    step("9. trace row in \(dbPath) (trace_events, \(try await sink.count()) row):")
                    if let e = events.first {
                        print(try Self.prettyJSON(e.payloadJSON()))
                    }
                    if let preimage = response.payment?.proofValue.flatMap({ Hex.decode($0) }),
                        let invoice = await network.invoice(paymentHash: Bolt11Invoice.sha256(preimage)), invoice.settled
                    {
                        step("10. the simulated Lightning network shows the invoice settled (\(invoice.amountMsat / 1000) sats)")
                    }
                }
            }
        }
        step("done. Inspect the trace again with: routeweiler trace --trace-db \(dbPath)")
    }

    func step(_ s: String) { print(s) }

    static func show(_ event: FlowEvent) {
        switch event {
        case .challenged(let status, let headers):
            print("4. server answered \(status) Payment Required with:")
            for h in headers { print("     \(abbreviateQuoted(h))") }
        case .offerSelected(let c, let source):
            print("5. chose rail \(c.rail): invoice for \(c.price.humanAmount) on \(c.raw["network"] ?? "?"), payment hash \(abbreviate(c.nonce, 12)), funded by \(source)")
            if let invoice = c.raw["invoice"] { print("     invoice \(abbreviate(invoice, 40))") }
        case .offerRejected(let r):
            print("   offer rejected: \(r)")
        case .paid(let rail, let proofType, let proofValue, let amount, let ms):
            print("6. paid \(amount) sats over \(rail) through LND SendPaymentV2 in \(ms) ms; \(proofType) \(proofValue ?? "-") (sha256 checked against the payment hash)")
        case .retrying(let attempt, let name):
            print("7. retry #\(attempt) with \(name): L402 <macaroon>:<preimage>")
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
