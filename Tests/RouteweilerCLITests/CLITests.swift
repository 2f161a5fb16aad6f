import Foundation
import GRDB
import LNDClient
import RouteweilerTesting
import Testing

/// Runs the built `routeweiler` binary and captures its output through files (no pipe deadlocks).
struct CLIRun: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String

    static var binary: URL {
        // The test bundle and the executable share the build directory.
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var dir = exe.deletingLastPathComponent()
        while dir.path != "/" {
            let candidate = dir.appendingPathComponent("routeweiler")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        return URL(fileURLWithPath: "routeweiler")
    }

    static func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> CLIRun {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rw-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let out = dir.appendingPathComponent("out"), err = dir.appendingPathComponent("err")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        FileManager.default.createFile(atPath: err.path, contents: nil)
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for key in env.keys where key.hasPrefix("POLAR_") { env[key] = nil }
        env.merge(environment) { $1 }
        process.environment = env
        process.standardOutput = try FileHandle(forWritingTo: out)
        process.standardError = try FileHandle(forWritingTo: err)
        process.standardInput = FileHandle.nullDevice
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch { continuation.resume(throwing: error) }
        }
        return CLIRun(status: status, stdout: try String(contentsOf: out, encoding: .utf8),
                      stderr: try String(contentsOf: err, encoding: .utf8))
    }
}

func temporaryPath(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("rw-cli-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir.appendingPathComponent(name).path
}

@Suite(.serialized) struct CLITests {
    @Test func demoPaysEndToEndAndWritesOneTraceRow() async throws {
        let db = temporaryPath("demo.db")
        let run = try await CLIRun.run(["demo", "--trace-db", db])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stdout.contains("HTTP 200"))
        #expect(run.stdout.contains("\"proofType\" : \"preimage\""))
        #expect(run.stdout.contains("settled"))
        let count = try await DatabaseQueue(path: db).read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM trace_events") }
        #expect(count == 1)
        let traced = try await CLIRun.run(["trace", "--trace-db", db])
        #expect(traced.status == 0)
        #expect(traced.stdout.contains("rail=l402"))
        #expect(traced.stdout.contains("status=200"))
    }

    @Test func decodeVerifiesAnInvoice() async throws {
        let vectors = try JSONSerialization.jsonObject(with: try Self.vectorData("bolt11.json")) as! [String: Any]
        let spec = try #require(vectors["specValid"] as? [[String: Any]] ?? vectors["spec"] as? [[String: Any]])
        let first = try #require(spec.first)
        let invoice = try #require(first["invoice"] as? String)
        let run = try await CLIRun.run(["decode", invoice, "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any])
        #expect(json["network"] as? String == "bitcoin")
        #expect((json["paymentHash"] as? String)?.count == 64)
        let bad = try await CLIRun.run(["decode", String(invoice.dropLast()) + (invoice.hasSuffix("q") ? "p" : "q")])
        #expect(bad.status == 3)
        #expect(bad.stderr.contains("checksum"))
    }

    @Test func getPaysThroughAnLNDNodeGivenByFlagsOrPolarVariables() async throws {
        let network = FakeLightningNetwork()
        try await FakeLND.withFakeLND(network: network) { lnd in
            try await FakePaywall.withPaywall(network: network) { paywall in
                let cert = temporaryPath("tls.cert"), mac = temporaryPath("admin.macaroon"), db = temporaryPath("t.db")
                try lnd.certificatePEM.write(toFile: cert, atomically: true, encoding: .utf8)
                try Data(lnd.macaroonBytes).write(to: URL(fileURLWithPath: mac))
                let byFlags = try await CLIRun.run([
                    "get", paywall.url("/protected"), "--lnd-host", "127.0.0.1:\(lnd.port)", "--tls-cert", cert,
                    "--macaroon", mac, "--network", "bitcoin-regtest", "--trace-db", db,
                ])
                #expect(byFlags.status == 0, "\(byFlags.stderr)")
                #expect(byFlags.stdout == #"{"result":"ok","rail":"l402"}"#)
                #expect(byFlags.stderr.contains("paid 10 sats via l402"))

                let byEnv = try await CLIRun.run(
                    ["get", paywall.url("/protected"), "--json", "--trace-db", db],
                    environment: ["POLAR_LND_HOST": "127.0.0.1:\(lnd.port)", "POLAR_LND_TLS_CERT": cert,
                                  "POLAR_LND_MACAROON": mac])
                #expect(byEnv.status == 0, "\(byEnv.stderr)")
                let json = try #require(try JSONSerialization.jsonObject(with: Data(byEnv.stdout.utf8)) as? [String: Any])
                #expect(json["status"] as? Int == 200)
                // The token bought by the first process is in the shared database: reused, not paid again.
                #expect(json["payment"] is NSNull)
                #expect(lnd.paymentCount == 1)

                let paidAgain = try await CLIRun.run(
                    ["get", paywall.url("/protected"), "--json", "--no-reuse", "--trace-db", db],
                    environment: ["POLAR_LND_HOST": "127.0.0.1:\(lnd.port)", "POLAR_LND_TLS_CERT": cert,
                                  "POLAR_LND_MACAROON": mac])
                #expect(paidAgain.status == 0, "\(paidAgain.stderr)")
                let paidJSON = try #require(try JSONSerialization.jsonObject(with: Data(paidAgain.stdout.utf8)) as? [String: Any])
                let payment = try #require(paidJSON["payment"] as? [String: Any])
                #expect(payment["proofType"] as? String == "preimage")
                #expect(lnd.paymentCount == 2)

                let tooDear = try await CLIRun.run([
                    "get", paywall.url("/protected"), "--lnd-host", "127.0.0.1:\(lnd.port)", "--tls-cert", cert,
                    "--macaroon", mac, "--max-sats", "5", "--no-reuse", "--trace-db", db,
                ])
                #expect(tooDear.status == 3)
                #expect(tooDear.stderr.contains("InvalidChallengeError"))
                #expect(lnd.paymentCount == 2)
                let count = try await DatabaseQueue(path: db).read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM trace_events") }
                #expect(count == 4)
            }
        }
    }

    @Test func getWithoutANodeRefusesToPay() async throws {
        let network = FakeLightningNetwork()
        try await FakePaywall.withPaywall(network: network) { paywall in
            let run = try await CLIRun.run(["get", paywall.url("/protected")])
            #expect(run.status == 3)
            #expect(run.stderr.contains("RailNotSupportedError"))
            let free = try await CLIRun.run(["get", paywall.url("/free")])
            #expect(free.status == 0)
            #expect(free.stdout == #"{"free":true}"#)
        }
    }

    static func vectorData(_ name: String) throws -> Data {
        var candidates: [URL] = []
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        for _ in 0..<4 {
            dir = dir.deletingLastPathComponent()
            candidates.append(dir.appendingPathComponent("shared/vectors/\(name)"))
            candidates.append(dir.appendingPathComponent("../shared/vectors/\(name)"))
        }
        candidates.append(URL(fileURLWithPath: "/work/shared/vectors/\(name)"))
        for c in candidates where FileManager.default.fileExists(atPath: c.path) { return try Data(contentsOf: c) }
        throw CocoaError(.fileNoSuchFile)
    }
}

@Suite(.serialized) struct TelemetryCLITests {
    @Test func theDemoExportsItsSpansAndMetricsOverOTLP() async throws {
        try await FakeOTLPCollector.withCollector { collector in
            let run = try await CLIRun.run(["demo", "--otel-endpoint", collector.endpoint])
            #expect(run.status == 0, "\(run.stderr)")
            let traces = collector.exports.filter { $0.path == "/v1/traces" }
            #expect(!traces.isEmpty)
            #expect(traces.allSatisfy { $0.contentType == "application/x-protobuf" })
            for name in ["routeweiler.call", "routeweiler.challenge", "routeweiler.pay", "routeweiler.retry"] {
                #expect(traces.contains { $0.contains(name) }, "no span \(name) exported")
            }
            let metrics = collector.exports.filter { $0.path == "/v1/metrics" }
            #expect(metrics.contains { $0.contains("routeweiler_payments_total") })
            // The exported telemetry carries no credential.
            #expect(!collector.exports.contains { $0.contains("L402 ") || $0.contains("AgEM") })
        }
    }
}
