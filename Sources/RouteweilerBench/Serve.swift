import ArgumentParser
import Foundation
import Routeweiler
import RouteweilerTesting
import RouteweilerWire

/// Runs the built-in paywall and fake LND until stdin closes, for other clients (the Python reference SDK).
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the built-in L402 paywall and fake LND; print one JSON line with their addresses; stop when stdin closes."
    )

    @Option(name: .customLong("price-sats"), help: "Price of one call in sats.")
    var priceSats: UInt64 = 10

    @Option(name: .customLong("rail"), help: "l402 (paywall + fake LND) or x402 (paywall settling on an in-memory USDC ledger).")
    var rail: String = "l402"

    @Option(name: .customLong("mint-to"), help: "x402: the address credited on the ledger (the client's wallet).")
    var mintTo: String?

    @Option(name: .customLong("dir"), help: "Directory for tls.cert and admin.macaroon (default: a fresh temporary one).")
    var dir: String?

    func run() async throws {
        let directory = try dir ?? BenchConfig.freshDirectory("serve")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let network = FakeLightningNetwork()
        let lnd = try await FakeLND.start(network: network)
        let paywall = FakePaywall(network: network,
                                  configuration: BenchTargets.paywallConfiguration(rail: RailID(rail), priceSats: priceSats))
        try await paywall.start()
        if let mintTo { paywall.ledger.mint(UInt64.max / 2, to: try EVMAddress(hex: mintTo)) }
        let cert = directory + "/tls.cert", macaroon = directory + "/admin.macaroon"
        try lnd.certificatePEM.write(toFile: cert, atomically: true, encoding: .utf8)
        try Data(lnd.macaroonBytes).write(to: URL(fileURLWithPath: macaroon))
        let info: [String: Any] = [
            "paid_url": paywall.url("/protected"), "free_url": paywall.url("/free"),
            "lnd_host": "\(lnd.host):\(lnd.port)", "tls_cert": cert, "macaroon": macaroon,
            "macaroon_hex": lnd.macaroonHex, "network": "bitcoin-regtest", "price_sats": Int(priceSats),
        ]
        let json = try JSONSerialization.data(withJSONObject: info, options: [.sortedKeys, .withoutEscapingSlashes])
        FileHandle.standardOutput.write(json + Data("\n".utf8))
        // Wait for stdin to close (the driving script exits or closes the pipe).
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                while readLine() != nil {}
                c.resume()
            }
        }
        FileHandle.standardError.write(Data("serve: \(lnd.paymentCount) LND payments, \(paywall.ledger.transfers.count) ledger transfers, \(paywall.stats.paidRequestsServed) paid requests served, peak RSS \(Memory.peakMiB.map { fmt($0, 1) } ?? "?") MiB\n".utf8))
        await paywall.shutdown()
        await lnd.shutdown()
    }
}
