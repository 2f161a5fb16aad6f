import ArgumentParser
import Foundation
import LNDClient
import Routeweiler
import RouteweilerL402
import RouteweilerSQLite
import RouteweilerTesting
import RouteweilerWire

/// How to reach an LND node: the same flags and `POLAR_*` variables as `routeweiler get`.
struct BenchLNDOptions: ParsableArguments {
    @Option(name: .customLong("lnd-host"), help: "LND gRPC address HOST:PORT (env POLAR_LND_HOST).")
    var lndHost: String?

    @Option(name: .customLong("tls-cert"), help: "Path to the node's tls.cert (env POLAR_LND_TLS_CERT).")
    var tlsCert: String?

    @Option(name: .customLong("macaroon"), help: "Path to an admin or payment macaroon (env POLAR_LND_MACAROON).")
    var macaroon: String?

    @Option(name: .customLong("network"),
            help: "bitcoin, bitcoin-testnet, bitcoin-signet or bitcoin-regtest (default: the node's own network).")
    var network: String?

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    func validate() throws {
        if let network, LightningNetwork(rawValue: network) == nil {
            throw ValidationError("unknown network '\(network)'")
        }
    }

    var isConfigured: Bool { (lndHost ?? environment["POLAR_LND_HOST"]) != nil }

    func clientConfiguration() throws -> LNDClient.Configuration {
        guard let hostPort = lndHost ?? environment["POLAR_LND_HOST"] else {
            throw ValidationError("no LND node: pass --lnd-host HOST:PORT or set POLAR_LND_HOST")
        }
        guard let cert = tlsCert ?? environment["POLAR_LND_TLS_CERT"] else {
            throw ValidationError("no TLS certificate: pass --tls-cert PATH or set POLAR_LND_TLS_CERT")
        }
        guard let mac = macaroon ?? environment["POLAR_LND_MACAROON"] else {
            throw ValidationError("no macaroon: pass --macaroon PATH or set POLAR_LND_MACAROON")
        }
        var v = hostPort
        if let r = v.range(of: "://") { v = String(v[r.upperBound...]) }
        var host = v
        var port = 10009
        if let colon = v.lastIndex(of: ":"), let p = Int(v[v.index(after: colon)...]) {
            host = String(v[..<colon])
            port = p
        }
        return LNDClient.Configuration(host: host, port: port, tlsCertificate: .file(cert), macaroon: .file(mac))
    }
}

/// What the benchmark drives: a paid URL, maybe a free URL, and a Lightning node (all real, or the built-in doubles).
struct BenchTarget: Sendable {
    var paidURL: String
    var freeURL: String?
    var source: LightningFundingSource
    var description: String
    /// The fake node, when the built-in doubles run (its payment count checks the money).
    var fakeLND: FakeLND?
}

enum BenchTargets {
    /// The paywall settings of the built-in target: 10 sats a call, a token scoped to one service.
    static func paywallConfiguration(priceSats: UInt64) -> FakePaywall.Configuration {
        var config = FakePaywall.Configuration()
        config.priceMsat = priceSats * 1000
        config.caveats = ["services=bench:0"]
        return config
    }

    /// Runs `body` against the URL and node given by flags, or against a built-in paywall and fake LND.
    static func with<R: Sendable>(
        url: String?, freeURL: String?, lnd: BenchLNDOptions, priceSats: UInt64,
        _ body: (BenchTarget) async throws -> R
    ) async throws -> R {
        if let url {
            guard lnd.isConfigured else {
                throw ValidationError("--url needs an LND node: pass --lnd-host/--tls-cert/--macaroon or set POLAR_LND_*")
            }
            return try await LNDClient.withClient(configuration: try lnd.clientConfiguration()) { client in
                let network: LightningNetwork
                if let n = lnd.network.flatMap(LightningNetwork.init(rawValue:)) {
                    network = n
                } else if let n = try await client.nodeInfo().network {
                    network = n
                } else {
                    throw ValidationError("the node did not report its network; pass --network")
                }
                let plain = try await LightningFundingSource.create(lnd: client, network: network)
                let source = try LightningFundingSource(node: TimedNode(inner: client), network: network,
                                                        nodePubkey: plain.nodePubkey)
                return try await body(BenchTarget(paidURL: url, freeURL: freeURL, source: source,
                                                  description: "\(url) paid through LND at \(client)", fakeLND: nil))
            }
        }
        if lnd.isConfigured {
            throw ValidationError("an LND node without --url: the built-in paywall's invoices are payable only by the fake LND")
        }
        let network = FakeLightningNetwork()
        return try await FakeLND.withFakeLND(network: network) { fake in
            try await FakePaywall.withPaywall(network: network,
                                              configuration: paywallConfiguration(priceSats: priceSats)) { paywall in
                try await LNDClient.withClient(configuration: fake.clientConfiguration) { client in
                    let plain = try await LightningFundingSource.create(lnd: client, network: .bitcoinRegtest)
                    let source = try LightningFundingSource(node: TimedNode(inner: client), network: .bitcoinRegtest,
                                                            nodePubkey: plain.nodePubkey)
                    return try await body(BenchTarget(
                        paidURL: paywall.url("/protected"), freeURL: paywall.url("/free"), source: source,
                        description: "built-in FakePaywall (\(paywall.baseURL), \(priceSats) sats/call) and FakeLND (gRPC over TLS, 127.0.0.1:\(fake.port))",
                        fakeLND: fake))
                }
            }
        }
    }
}

/// The client set-ups the benchmark measures.
enum BenchConfig {
    /// A policy with two rules, so that policy evaluation is on the hot path as in a real deployment.
    static let policyJSON = """
        {"default_rail": "l402", "currency": "usd", "rules": [
          {"name": "no-trackers", "when": {"host": "*.tracking.io"}, "deny": true, "reason": "no trackers"},
          {"name": "local", "when": {"host": "127.0.0.1"}, "max_per_call_minor_units": 100}
        ]}
        """
    /// 60 000 USD/BTC: 10 sats is 0.6 cents, reserved and settled as 1 cent.
    static let fmv = StaticFmvProvider(btcPrices: [.usd: 60_000])

    /// A fresh directory for one run's database and envelope keys.
    static func freshDirectory(_ label: String) throws -> String {
        let dir = NSTemporaryDirectory() + "routeweiler-bench-\(label)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        return dir
    }

    /// The full set-up: SQLite trace, budget, credentials and payment journal in one file, a policy, a budget
    /// envelope, static FMV.
    static func full(target: BenchTarget, directory: String, reuse: Bool, capMinorUnits: Int64 = 1_000_000_000,
                     probe: Bool) throws -> RouteweilerClient.Configuration {
        var config = RouteweilerClient.Configuration(funding: [target.source])
        try config.useSQLite(path: directory + "/routeweiler.db",
                             keystore: EnvelopeKeystore(directory: directory + "/keys"))
        config.fmvProvider = fmv
        config.policy = try Policy(json: Data(policyJSON.utf8))
        config.budget = .create(BudgetEnvelope(id: "bench", capMinorUnits: capMinorUnits, capCurrency: .usd,
                                               allowedRails: [.l402], ttlSeconds: 86_400))
        config.reuseCredentials = reuse
        config.agentID = "routeweiler-bench"
        if probe { config.onEvent = CallProbe.onEvent }
        return config
    }

    /// No trace, no budget, in-memory credentials: the client alone.
    static func bare(target: BenchTarget) -> RouteweilerClient.Configuration {
        var config = RouteweilerClient.Configuration(funding: [target.source])
        config.fmvProvider = fmv
        return config
    }
}
