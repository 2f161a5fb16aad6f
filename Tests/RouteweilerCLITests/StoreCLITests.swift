import Foundation
import LNDClient
import RouteweilerTesting
import Testing

/// The storage engines of the CLI tests: SQLite always; PostgreSQL when `ROUTEWEILER_TEST_POSTGRES_URL` is set (an
/// unreachable server then fails the PostgreSQL cases instead of skipping them).
enum CLIBackend: String, Sendable, CustomTestStringConvertible {
    case sqlite, postgres
    var testDescription: String { rawValue }

    static var postgresURL: String? {
        guard let url = ProcessInfo.processInfo.environment["ROUTEWEILER_TEST_POSTGRES_URL"], !url.isEmpty else {
            return nil
        }
        return url
    }

    static var available: [CLIBackend] { postgresURL == nil ? [.sqlite] : [.sqlite, .postgres] }

    /// `--store` for a fresh store: an SQLite file in a temp directory, or a fresh schema in the test database.
    func freshStore() -> String {
        switch self {
        case .sqlite:
            return "sqlite://" + temporaryPath("store.db")
        case .postgres:
            let base = CLIBackend.postgresURL ?? ""
            let schema = "rwcli_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
            return base + (base.contains("?") ? "&" : "?") + "schema=\(schema)"
        }
    }
}

/// `--store URL` through the built binary, on every backend.
@Suite(.serialized) struct StoreCLITests {
    struct Store {
        let url: String
        let keys = temporaryPath("keys")
        init(_ backend: CLIBackend) { url = backend.freshStore() }
        func budget(_ sub: String, _ rest: [String]) -> [String] {
            ["budget", sub, "--store", url, "--keystore", keys] + rest
        }
    }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test(arguments: CLIBackend.available) func budgetCommandsTakeAStoreURL(_ backend: CLIBackend) async throws {
        let s = Store(backend)
        let created = try await CLIRun.run(s.budget("create", ["--id", "team-a", "--cap", "500", "--currency", "usd",
                                                               "--rails", "l402,x402", "--ttl", "3600", "--json"]))
        #expect(created.status == 0, "\(created.stderr)")
        #expect(try Self.json(created.stdout)["capMinorUnits"] as? Int == 500)
        let stress = try await CLIRun.run(s.budget("stress", ["--id", "team-a", "--amount", "7", "--count", "3"]))
        #expect(stress.status == 0, "\(stress.stderr)")
        let shown = try await CLIRun.run(s.budget("show", ["--id", "team-a"]))
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.stdout.contains("settled    21 usd") && shown.stdout.contains("receipts   verified OK"))
        let listed = try await CLIRun.run(s.budget("list", ["--json"]))
        #expect(try Self.json(listed.stdout)["remaining"] as? Int == 479)
        let duplicate = try await CLIRun.run(s.budget("create", ["--id", "team-a", "--cap", "5", "--currency", "usd",
                                                                 "--rails", "l402", "--ttl", "60"]))
        #expect(duplicate.status == 2 && duplicate.stderr.contains("already exists"))
        let missing = try await CLIRun.run(s.budget("show", ["--id", "nope"]))
        #expect(missing.status == 2 && missing.stderr.contains("'nope' does not exist"))
    }

    @Test func aBadOrUnreachableStoreIsAClearErrorWithoutThePassword() async throws {
        let bad = try await CLIRun.run(["budget", "list", "--store", "mysql://u:hunter2@h/d"])
        #expect(bad.status == 2)
        #expect(!bad.stderr.contains("hunter2") && bad.stderr.contains("***"), "\(bad.stderr)")
        let down = try await CLIRun.run(["budget", "list", "--store", "postgres://rw:hunter2@127.0.0.1:1/rw"])
        #expect(down.status == 1)
        #expect(down.stderr.contains("PostgresStoreError") && !down.stderr.contains("hunter2"), "\(down.stderr)")
        let trace = try await CLIRun.run(["trace", "--store", "postgres://rw:hunter2@127.0.0.1:1/rw"])
        #expect(trace.status == 1 && !trace.stderr.contains("hunter2"))
    }

    /// Issue 7: four processes on this machine, 200 concurrent calls each, one envelope. The settled total never
    /// exceeds the cap and every call has exactly one trace row.
    @Test(arguments: CLIBackend.available) func fourProcessesShareOneEnvelope(_ backend: CLIBackend) async throws {
        let s = Store(backend)
        let cap = 500
        let created = try await CLIRun.run(s.budget("create", ["--id", "fleet", "--cap", "\(cap)", "--currency", "usd",
                                                               "--rails", "l402", "--ttl", "3600"]))
        #expect(created.status == 0, "\(created.stderr)")
        let args = s.budget("stress", ["--id", "fleet", "--amount", "1", "--count", "200", "--concurrency", "200",
                                       "--trace"])
        let runs = try await withThrowingTaskGroup(of: CLIRun.self) { group in
            for _ in 0..<4 { group.addTask { try await CLIRun.run(args) } }
            return try await group.reduce(into: [CLIRun]()) { $0.append($1) }
        }
        var succeeded = 0, exceeded = 0
        for run in runs {
            #expect(run.status == 0, "\(run.stderr)")
            let j = try Self.json(run.stdout)
            succeeded += j["succeeded"] as? Int ?? 0
            exceeded += j["exceeded"] as? Int ?? 0
            #expect(j["errors"] as? Int == 0)
        }
        #expect(succeeded == cap, "succeeded \(succeeded)")
        #expect(exceeded == 800 - cap)
        let shown = try Self.json(try await CLIRun.run(s.budget("show", ["--id", "fleet", "--json"])).stdout)
        #expect(shown["settled"] as? Int == succeeded)
        #expect((shown["settled"] as? Int ?? .max) <= cap)
        #expect(shown["reserved"] as? Int == 0 && shown["draws"] as? Int == succeeded)
        #expect(shown["receiptsVerified"] as? Bool == true)

        let trace = try await CLIRun.run(["trace", "--store", s.url, "--limit", "2000", "--json"])
        #expect(trace.status == 0, "\(trace.stderr)")
        let rows = trace.stdout.split(separator: "\n").map { try? Self.json(String($0)) }
        #expect(rows.count == 800)
        let ids = Set(rows.compactMap { $0?["requestId"] as? String })
        #expect(ids.count == 800)  // exactly one row per call
        let paid = rows.filter { ($0?["reservation"] as? [String: Any])?["state"] as? String == "settled" }
        #expect(paid.count == succeeded)
    }

    /// `get --store`: a paid call's token and trace row land in the shared store; a second process reuses the token.
    @Test(arguments: CLIBackend.available) func getUsesTheStoreAcrossProcesses(_ backend: CLIBackend) async throws {
        let network = FakeLightningNetwork()
        try await FakeLND.withFakeLND(network: network) { lnd in
            try await FakePaywall.withPaywall(network: network) { paywall in
                let s = Store(backend)
                let cert = temporaryPath("tls.cert"), mac = temporaryPath("admin.macaroon")
                try lnd.certificatePEM.write(toFile: cert, atomically: true, encoding: .utf8)
                try Data(lnd.macaroonBytes).write(to: URL(fileURLWithPath: mac))
                let created = try await CLIRun.run(s.budget("create", ["--id", "calls", "--cap", "100",
                                                                       "--currency", "usd", "--rails", "l402",
                                                                       "--ttl", "3600"]))
                #expect(created.status == 0, "\(created.stderr)")
                let get = [
                    "get", paywall.url("/protected"), "--lnd-host", "127.0.0.1:\(lnd.port)", "--tls-cert", cert,
                    "--macaroon", mac, "--network", "bitcoin-regtest", "--store", s.url, "--budget", "calls",
                    "--keystore", s.keys, "--btc-price", "usd=60000", "--json",
                ]
                let first = try await CLIRun.run(get)
                #expect(first.status == 0, "\(first.stderr)")
                let second = try await CLIRun.run(get)
                #expect(second.status == 0, "\(second.stderr)")
                #expect(try Self.json(second.stdout)["payment"] is NSNull)  // reused from the shared store
                #expect(lnd.paymentCount == 1)
                let shown = try Self.json(try await CLIRun.run(s.budget("show", ["--id", "calls", "--json"])).stdout)
                #expect(shown["settled"] as? Int == 1 && shown["receiptsVerified"] as? Bool == true)
                let trace = try await CLIRun.run(["trace", "--store", s.url, "--json"])
                #expect(trace.stdout.split(separator: "\n").count == 2, "\(trace.stdout)")
            }
        }
    }
}
