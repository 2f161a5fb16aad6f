import Foundation
import GRDB
import Testing

/// `routeweiler budget …` through the built binary. Every run passes `--keystore` so nothing lands in `~`.
@Suite(.serialized) struct BudgetCLITests {
    struct Paths {
        let db = temporaryPath("budget.db")
        var keys: String { (URL(fileURLWithPath: db).deletingLastPathComponent().path as NSString).appendingPathComponent("keys") }
        func args(_ sub: String, _ rest: [String]) -> [String] { ["budget", sub, "--db", db, "--keystore", keys] + rest }
    }

    static func json(_ text: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    }

    @Test func createShowAndList() async throws {
        let p = Paths()
        let created = try await CLIRun.run(p.args("create", ["--id", "team-a", "--cap", "500", "--currency", "USD",
                                                             "--rails", "l402,x402", "--ttl", "3600", "--json"]))
        #expect(created.status == 0, "\(created.stderr)")
        let record = try Self.json(created.stdout)
        #expect(record["id"] as? String == "team-a" && record["capMinorUnits"] as? Int == 500)
        #expect(record["allowedRails"] as? [String] == ["l402", "x402"])
        let keyFile = (p.keys as NSString).appendingPathComponent("env_team-a.ed25519")
        let attributes = try FileManager.default.attributesOfItem(atPath: keyFile)
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)

        let shown = try await CLIRun.run(p.args("show", ["--id", "team-a"]))
        #expect(shown.status == 0, "\(shown.stderr)")
        #expect(shown.stdout.contains("cap        500 usd"))
        #expect(shown.stdout.contains("remaining  500 usd"))
        #expect(shown.stdout.contains("receipts   verified OK"))

        let listed = try await CLIRun.run(p.args("list", ["--json"]))
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(try Self.json(listed.stdout)["remaining"] as? Int == 500)

        let duplicate = try await CLIRun.run(p.args("create", ["--id", "team-a", "--cap", "5", "--currency", "usd",
                                                               "--rails", "l402", "--ttl", "60"]))
        #expect(duplicate.status == 2)
        #expect(duplicate.stderr.contains("already exists"))
    }

    @Test func badInputIsRefusedWithClearErrors() async throws {
        let p = Paths()
        let base = ["--id", "x", "--rails", "l402", "--ttl", "60"]
        let currency = try await CLIRun.run(p.args("create", base + ["--cap", "5", "--currency", "xyz"]))
        #expect(currency.status == 2)
        #expect(currency.stderr.contains("xyz"))
        let zero = try await CLIRun.run(p.args("create", base + ["--cap", "0", "--currency", "usd"]))
        #expect(zero.status == 2)
        #expect(zero.stderr.contains("cap must be positive"))
        let negative = try await CLIRun.run(p.args("create", base + ["--cap=-5", "--currency", "usd"]))
        #expect(negative.status == 2)
        let ttl = try await CLIRun.run(p.args("create", ["--id", "x", "--rails", "l402", "--ttl", "0", "--cap", "5",
                                                         "--currency", "usd"]))
        #expect(ttl.status == 2)
        #expect(ttl.stderr.contains("ttl must be positive"))
        let path = try await CLIRun.run(p.args("create", ["--id", "../x", "--rails", "l402", "--ttl", "9", "--cap", "5",
                                                          "--currency", "usd"]))
        #expect(path.status == 2)

        _ = try await CLIRun.run(p.args("create", ["--id", "real", "--cap", "5", "--currency", "usd", "--rails", "l402",
                                                   "--ttl", "60"]))
        let missing = try await CLIRun.run(p.args("show", ["--id", "nope"]))
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("'nope' does not exist"))
        let noDB = try await CLIRun.run(["budget", "list", "--db", temporaryPath("absent.db")])
        #expect(noDB.status == 2)
    }

    @Test func showDetectsAHandEditedDraw() async throws {
        let p = Paths()
        let created = try await CLIRun.run(p.args("create", ["--id", "e", "--cap", "100", "--currency", "eur",
                                                             "--rails", "l402", "--ttl", "3600"]))
        #expect(created.status == 0, "\(created.stderr)")
        let stress = try await CLIRun.run(p.args("stress", ["--id", "e", "--amount", "10", "--count", "3",
                                                            "--concurrency", "2"]))
        #expect(stress.status == 0, "\(stress.stderr)")
        let ok = try await CLIRun.run(p.args("show", ["--id", "e", "--json"]))
        #expect(ok.status == 0, "\(ok.stderr)")
        let before = try Self.json(ok.stdout)
        #expect(before["receiptsVerified"] as? Bool == true && before["draws"] as? Int == 3 && before["settled"] as? Int == 30)

        let queue = try DatabaseQueue(path: p.db)
        let edited = try await queue.write { db -> String in
            let id = try String.fetchOne(db, sql: "SELECT id FROM draws ORDER BY id LIMIT 1")!
            try db.execute(sql: "UPDATE draws SET amount_reserved_minor_units = 1 WHERE id = ?", arguments: [id])
            return id
        }
        let bad = try await CLIRun.run(p.args("show", ["--id", "e"]))
        #expect(bad.status != 0)
        #expect(bad.stdout.contains("receipts   FAILED for 1 draw(s)"))
        #expect(bad.stdout.contains(edited))
        #expect(bad.stderr.contains(edited))
        let badJSON = try Self.json(try await CLIRun.run(p.args("show", ["--id", "e", "--json"])).stdout)
        #expect(badJSON["receiptsVerified"] as? Bool == false)
        #expect((badJSON["failedDraws"] as? [[String: Any]])?.first?["id"] as? String == edited)
    }

    @Test func aLockedDatabaseWaitsThenFailsClearly() async throws {
        let p = Paths()
        _ = try await CLIRun.run(p.args("create", ["--id", "e", "--cap", "100", "--currency", "usd", "--rails", "l402",
                                                   "--ttl", "3600"]))
        var lockConfig = Configuration()
        lockConfig.allowsUnsafeTransactions = true  // keep the EXCLUSIVE transaction open across accesses
        let other = try DatabaseQueue(path: p.db, configuration: lockConfig)
        try await other.writeWithoutTransaction { try $0.execute(sql: "BEGIN EXCLUSIVE") }
        let run = try await CLIRun.run(p.args("stress", ["--id", "e", "--count", "1", "--busy-timeout", "0.3"]))
        try await other.writeWithoutTransaction { try $0.execute(sql: "ROLLBACK") }
        #expect(run.status != 0)
        #expect(run.stderr.contains("locked"), "\(run.stderr)")
    }

    /// Two processes reserving on one file: the cap holds exactly across them.
    @Test func twoProcessesNeverSettleMoreThanTheCap() async throws {
        let p = Paths()
        let created = try await CLIRun.run(p.args("create", ["--id", "shared", "--cap", "150", "--currency", "usd",
                                                             "--rails", "l402", "--ttl", "3600"]))
        #expect(created.status == 0, "\(created.stderr)")
        let stressArgs = p.args("stress", ["--id", "shared", "--amount", "1", "--count", "120", "--concurrency", "8"])
        async let a = CLIRun.run(stressArgs)
        async let b = CLIRun.run(stressArgs)
        let (ra, rb) = try await (a, b)
        #expect(ra.status == 0, "\(ra.stderr)")
        #expect(rb.status == 0, "\(rb.stderr)")
        let ja = try Self.json(ra.stdout), jb = try Self.json(rb.stdout)
        let succeeded = (ja["succeeded"] as? Int ?? 0) + (jb["succeeded"] as? Int ?? 0)
        let exceeded = (ja["exceeded"] as? Int ?? 0) + (jb["exceeded"] as? Int ?? 0)
        #expect(succeeded == 150)
        #expect(exceeded == 90)
        let shown = try Self.json(try await CLIRun.run(p.args("show", ["--id", "shared", "--json"])).stdout)
        #expect(shown["settled"] as? Int == 150 && shown["reserved"] as? Int == 0 && shown["remaining"] as? Int == 0)
        #expect(shown["draws"] as? Int == 150 && shown["receiptsVerified"] as? Bool == true)
    }
}
