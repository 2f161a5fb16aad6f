import ArgumentParser
import Foundation
import LNDClient
import Routeweiler
import RouteweilerL402
import RouteweilerSQLite
import RouteweilerTesting
import RouteweilerWire
import RouteweilerX402

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

/// What the benchmark drives: a paid URL, maybe a free URL, and a wallet (all real, or the built-in doubles).
struct BenchTarget: Sendable {
    var paidURL: String
    var freeURL: String?
    var rail: RailID
    var source: any FundingSource
    var description: String
    /// Payments the payee side saw (the fake LND's payments, or the fake ledger's transfers), to check the money;
    /// `nil` for an external target.
    var payeePayments: (@Sendable () -> Int)?
}

/// Where the paywall and the wallet's counterpart run.
enum BenchPlacement: String, Sendable {
    /// In this process (client, paywall and fake LND share it).
    case inProcess = "in-process"
    /// In a child process (`routeweiler-bench serve`), so this process's memory and CPU are the client's alone.
    case isolated
}

enum BenchTargets {
    /// The paywall settings of the built-in target: 10 sats a call, a token scoped to one service; or, for x402,
    /// 6000 USDC base units (0.6 cents, as 10 sats at 60 000 USD/BTC) on Base Sepolia.
    static func paywallConfiguration(rail: RailID, priceSats: UInt64) -> FakePaywall.Configuration {
        var config = FakePaywall.Configuration()
        config.priceMsat = priceSats * 1000
        config.caveats = ["services=bench:0"]
        if rail == .x402 {
            config.schemes = []
            config.x402 = FakeX402Offering.baseSepoliaUSDC(payTo: merchant, amount: priceSats * 600)
        }
        return config
    }

    static let merchant = try! EVMAddress(bytes: [UInt8](repeating: 0x42, count: 20))

    /// A throwaway key for the built-in x402 ledger (never printed; the paywall is told its address only).
    static func throwawayWallet() -> EVMSigner {
        var key: Secp256k1.PrivateKey?
        while key == nil { key = try? Secp256k1.PrivateKey(bytes: (0..<32).map { _ in UInt8.random(in: 0...255) }) }
        return EVMSigner(privateKey: key!)
    }

    /// Runs `body` against the URL and wallet given by flags, or against a built-in paywall (and fake LND), in this
    /// process or in a child process.
    static func with<R: Sendable>(
        url: String?, freeURL: String?, rail: RailID, lnd: BenchLNDOptions, evm: BenchEVMOptions, priceSats: UInt64,
        placement: BenchPlacement, _ body: (BenchTarget) async throws -> R
    ) async throws -> R {
        if let url {
            return try await external(url: url, freeURL: freeURL, rail: rail, lnd: lnd, evm: evm, body)
        }
        if lnd.isConfigured {
            throw ValidationError("an LND node without --url: the built-in paywall's invoices are payable only by the fake LND")
        }
        switch placement {
        case .isolated:
            return try await isolated(rail: rail, priceSats: priceSats, body)
        case .inProcess:
            let network = FakeLightningNetwork()
            if rail == .x402 {
                let wallet = throwawayWallet()
                return try await FakePaywall.withPaywall(
                    network: network, configuration: paywallConfiguration(rail: .x402, priceSats: priceSats)
                ) { paywall in
                    paywall.ledger.mint(UInt64.max / 2, to: wallet.address)
                    let ledger = paywall.ledger
                    return try await body(BenchTarget(
                        paidURL: paywall.url("/protected"), freeURL: paywall.url("/free"), rail: .x402,
                        source: Funding.baseSepoliaUSDC(wallet: TimedWallet(inner: wallet)),
                        description: "built-in FakePaywall, x402 v2 (\(paywall.baseURL), \(priceSats * 600) USDC units/call, EIP-712 verified, in-memory ledger), in this process",
                        payeePayments: { ledger.transfers.count }))
                }
            }
            return try await FakeLND.withFakeLND(network: network) { fake in
                try await FakePaywall.withPaywall(
                    network: network, configuration: paywallConfiguration(rail: .l402, priceSats: priceSats)
                ) { paywall in
                    try await LNDClient.withClient(configuration: fake.clientConfiguration) { client in
                        let source = try await timedLightning(client, network: .bitcoinRegtest)
                        return try await body(BenchTarget(
                            paidURL: paywall.url("/protected"), freeURL: paywall.url("/free"), rail: .l402, source: source,
                            description: "built-in FakePaywall (\(paywall.baseURL), \(priceSats) sats/call) and FakeLND (gRPC over TLS, 127.0.0.1:\(fake.port)), in this process",
                            payeePayments: { fake.paymentCount }))
                    }
                }
            }
        }
    }

    /// A Lightning funding source whose node stamps the pay phase.
    static func timedLightning(_ client: LNDClient, network: LightningNetwork) async throws -> LightningFundingSource {
        let plain = try await LightningFundingSource.create(lnd: client, network: network)
        return try LightningFundingSource(node: TimedNode(inner: client), network: network, nodePubkey: plain.nodePubkey)
    }

    private static func external<R: Sendable>(
        url: String, freeURL: String?, rail: RailID, lnd: BenchLNDOptions, evm: BenchEVMOptions,
        _ body: (BenchTarget) async throws -> R
    ) async throws -> R {
        if rail == .x402 {
            let wallet = try evm.signer()
            let source = evm.network == "base"
                ? Funding.baseUSDC(wallet: TimedWallet(inner: wallet))
                : Funding.baseSepoliaUSDC(wallet: TimedWallet(inner: wallet))
            return try await body(BenchTarget(paidURL: url, freeURL: freeURL, rail: .x402, source: source,
                                              description: "\(url) paid over x402 from \(wallet.address)",
                                              payeePayments: nil))
        }
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
            let source = try await timedLightning(client, network: network)
            return try await body(BenchTarget(paidURL: url, freeURL: freeURL, rail: .l402, source: source,
                                              description: "\(url) paid through LND at \(client)", payeePayments: nil))
        }
    }

    /// Starts `routeweiler-bench serve` as a child process and drives it like an external target, so that this
    /// process holds the client only. The child's payment count is read back when it exits.
    private static func isolated<R: Sendable>(rail: RailID, priceSats: UInt64, _ body: (BenchTarget) async throws -> R)
        async throws -> R
    {
        let child = try ServeChild.start(rail: rail, priceSats: priceSats)
        defer { child.stop() }
        let info = child.info
        guard let paid = info["paid_url"] as? String else { throw BenchFailure("serve printed no paid_url") }
        let free = info["free_url"] as? String
        if rail == .x402 {
            guard let wallet = child.wallet else { throw BenchFailure("no wallet for the isolated x402 paywall") }
            return try await body(BenchTarget(
                paidURL: paid, freeURL: free, rail: .x402,
                source: Funding.baseSepoliaUSDC(wallet: TimedWallet(inner: wallet)),
                description: "FakePaywall x402 v2 in a child process (pid \(child.pid), \(paid))", payeePayments: nil))
        }
        guard let host = info["lnd_host"] as? String, let cert = info["tls_cert"] as? String,
            let macaroon = info["macaroon"] as? String
        else { throw BenchFailure("serve printed no LND address") }
        var v = host
        var port = 10009
        if let colon = v.lastIndex(of: ":"), let p = Int(v[v.index(after: colon)...]) {
            port = p
            v = String(v[..<colon])
        }
        let config = LNDClient.Configuration(host: v, port: port, tlsCertificate: .file(cert), macaroon: .file(macaroon))
        return try await LNDClient.withClient(configuration: config) { client in
            let source = try await timedLightning(client, network: .bitcoinRegtest)
            return try await body(BenchTarget(
                paidURL: paid, freeURL: free, rail: .l402, source: source,
                description: "FakePaywall (\(priceSats) sats/call) and FakeLND (gRPC over TLS, \(host)) in a child process (pid \(child.pid))",
                payeePayments: nil))
        }
    }
}

/// `routeweiler-bench serve` running as a child: started with a pipe on stdin (closing it stops the child).
final class ServeChild: @unchecked Sendable {
    let process: Process
    let stdin: Pipe
    let info: [String: Any]
    let wallet: EVMSigner?
    var pid: Int32 { process.processIdentifier }

    private init(process: Process, stdin: Pipe, info: [String: Any], wallet: EVMSigner?) {
        self.process = process
        self.stdin = stdin
        self.info = info
        self.wallet = wallet
    }

    static func start(rail: RailID, priceSats: UInt64) throws -> ServeChild {
        let wallet = rail == .x402 ? BenchTargets.throwawayWallet() : nil
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var arguments = ["serve", "--rail", rail.rawValue, "--price-sats", "\(priceSats)"]
        if let wallet { arguments += ["--mint-to", wallet.address.description] }
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        try process.run()
        // The first line of the child's output is its JSON description.
        var line = Data()
        let handle = stdout.fileHandleForReading
        while true {
            let byte = handle.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line.append(byte)
        }
        guard let info = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else {
            process.terminate()
            throw BenchFailure("routeweiler-bench serve did not start")
        }
        return ServeChild(process: process, stdin: stdin, info: info, wallet: wallet)
    }

    func stop() {
        try? stdin.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}

/// An x402 wallet that stamps the pay phase (the EIP-712 signature) on the current call's probe.
struct TimedWallet: EVMWallet {
    let inner: EVMSigner
    var address: EVMAddress { inner.address }
    var signaturesRecoverToAddress: Bool { inner.signaturesRecoverToAddress }
    func signDigest(_ digest32: [UInt8]) async throws -> [UInt8] {
        let probe = CallProbe.current
        probe?.payStart = nowNanos()
        defer { probe?.payEnd = nowNanos() }
        return try await inner.signDigest(digest32)
    }
}

/// The x402 key for an external target: the same flag and variable as `routeweiler get`.
struct BenchEVMOptions: ParsableArguments {
    @Option(name: .customLong("evm-key-file"), help: "File holding a hex secp256k1 key, mode 0600 (or ROUTEWEILER_EVM_KEY); --rail x402 with --url.")
    var keyFile: String?

    @Option(name: .customLong("evm-network"), help: "base or base-sepolia (default base-sepolia).")
    var network: String = "base-sepolia"

    func validate() throws {
        guard ["base", "base-sepolia"].contains(network) else { throw ValidationError("--evm-network: base or base-sepolia") }
    }

    func signer() throws -> EVMSigner {
        if let keyFile { return try EVMSigner.fromFile(path: keyFile) }
        if let hex = ProcessInfo.processInfo.environment["ROUTEWEILER_EVM_KEY"], !hex.isEmpty {
            return try EVMSigner(hexKey: hex)
        }
        throw ValidationError("--rail x402 with --url needs --evm-key-file PATH or ROUTEWEILER_EVM_KEY")
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
    /// How the SQLite trace sink writes (`--trace-writes`); set once at start.
    nonisolated(unsafe) static var traceWrites: SQLiteTraceSink.WriteMode = .writeBehind

    static func full(target: BenchTarget, directory: String, reuse: Bool, capMinorUnits: Int64 = 1_000_000_000,
                     probe: Bool) throws -> RouteweilerClient.Configuration {
        var config = RouteweilerClient.Configuration(funding: [target.source])
        try config.useSQLite(path: directory + "/routeweiler.db",
                             keystore: EnvelopeKeystore(directory: directory + "/keys"), traceWrites: traceWrites)
        config.fmvProvider = fmv
        config.policy = try Policy(json: Data(policyJSON.utf8))
        config.budget = .create(BudgetEnvelope(id: "bench", capMinorUnits: capMinorUnits, capCurrency: .usd,
                                               allowedRails: [target.rail], ttlSeconds: 86_400))
        config.reuseCredentials = reuse
        config.agentID = "routeweiler-bench"
        if probe {
            config.onEvent = CallProbe.onEvent
            config.budgetStore = config.budgetStore.map { TimedBudgetStore(inner: $0) }
        }
        return config
    }

    /// No trace, no budget, in-memory credentials: the client alone.
    static func bare(target: BenchTarget) -> RouteweilerClient.Configuration {
        var config = RouteweilerClient.Configuration(funding: [target.source])
        config.fmvProvider = fmv
        return config
    }
}
