import ArgumentParser
import Foundation
import LNDClient
import RouteweilerWire

/// Flags that say how to reach the user's LND node; each falls back to a `POLAR_*` variable.
struct LNDOptions: ParsableArguments {
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
            throw ValidationError("unknown network '\(network)'; use bitcoin, bitcoin-testnet, bitcoin-signet or bitcoin-regtest")
        }
    }

    var parsedNetwork: LightningNetwork? { network.flatMap(LightningNetwork.init(rawValue:)) }

    /// Whether any LND setting was given.
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
        let (host, port) = try Self.splitHostPort(hostPort)
        return LNDClient.Configuration(host: host, port: port, tlsCertificate: .file(cert), macaroon: .file(mac))
    }

    static func splitHostPort(_ value: String) throws -> (String, Int) {
        var v = value
        if let r = v.range(of: "://") { v = String(v[r.upperBound...]) }
        if v.hasPrefix("["), let close = v.firstIndex(of: "]") {
            let host = String(v[v.index(after: v.startIndex)..<close])
            let rest = v[v.index(after: close)...]
            if rest.hasPrefix(":"), let port = Int(rest.dropFirst()) { return (host, port) }
            return (host, 10009)
        }
        if let colon = v.lastIndex(of: ":") {
            guard let port = Int(v[v.index(after: colon)...]), (1...65535).contains(port) else {
                throw ValidationError("bad port in '\(value)'")
            }
            return (String(v[..<colon]), port)
        }
        return (v, 10009)
    }
}
