import ArgumentParser
import Foundation
import LNDClient
import RouteweilerTesting

/// Calls the fake LND over gRPC many times and prints the RSS as it goes: memory per RPC, without the rest of the
/// client (a diagnostic for the L402 path's memory).
struct LNDRSSCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lnd-rss", abstract: "Diagnostic: RSS while calling the fake LND's GetInfo over gRPC.",
        shouldDisplay: false)

    @Option(name: .customLong("count")) var count = 5000
    @Option(name: .customLong("per-connection")) var perConnection = Int.max
    @Option(name: .customLong("timeout-seconds")) var timeoutSeconds = 60

    func run() async throws {
        let child = try ServeChild.start(rail: .l402, priceSats: 10)
        defer { child.stop() }
        guard let host = child.info["lnd_host"] as? String, let cert = child.info["tls_cert"] as? String,
            let macaroon = child.info["macaroon"] as? String, let colon = host.lastIndex(of: ":"),
            let port = Int(host[host.index(after: colon)...])
        else { throw BenchFailure("serve printed no LND address") }
        let config = LNDClient.Configuration(host: String(host[..<colon]), port: port, tlsCertificate: .file(cert),
                                             macaroon: .file(macaroon), timeout: .seconds(Int64(timeoutSeconds)))
        var done = 0
        while done < count {
            // With --per-connection N, a new client (one new HTTP/2 connection) every N calls.
            try await LNDClient.withClient(configuration: config) { client in
                for _ in 0..<min(perConnection, count - done) {
                    _ = try await client.nodeInfo()
                    done += 1
                    if done % 1000 == 0 { print("getinfo \(done): RSS \(Memory.currentMiB.map { fmt($0, 1) } ?? "?") MiB") }
                }
            }
        }
    }
}
