import Foundation
import GRDB
import Logging
import PostgresNIO
import Routeweiler
import RouteweilerPostgres
import RouteweilerSQLite
import Testing

/// The storage engines the store tests run against. SQLite always; PostgreSQL when `ROUTEWEILER_TEST_POSTGRES_URL`
/// names a server (CI starts one). With the variable set, an unreachable server fails the PostgreSQL cases.
enum Backend: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case sqlite, postgres

    var testDescription: String { rawValue }

    static var postgresURL: String? {
        guard let url = ProcessInfo.processInfo.environment["ROUTEWEILER_TEST_POSTGRES_URL"], !url.isEmpty else {
            return nil
        }
        return url
    }

    static var available: [Backend] { postgresURL == nil ? [.sqlite] : [.sqlite, .postgres] }

    static let skipNote: Comment = "ROUTEWEILER_TEST_POSTGRES_URL is not set: the PostgreSQL cases of the store tests are skipped (scripts/start-test-postgres.sh starts a server)"

    /// A fresh, empty schema in the test database, so parallel tests never see each other's rows.
    static func openPostgres(lockTimeout: TimeInterval = 10, maximumConnections: Int = 8) async throws
        -> PostgresStoreDatabase
    {
        guard let text = postgresURL else { throw ConfigurationError("ROUTEWEILER_TEST_POSTGRES_URL is not set") }
        var url = try PostgresURL(text)
        url.schema = "rwtest_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        return try await PostgresStoreDatabase.open(url: url, lockTimeout: lockTimeout,
                                               maximumConnections: maximumConnections)
    }

    /// A direct connection to the schema of `database` (for holding locks in tests).
    static func directConnection(to database: PostgresStoreDatabase) async throws -> PostgresConnection {
        let url = database.url
        var config = PostgresConnection.Configuration(host: url.host, port: url.port, username: url.username,
                                                      password: url.password?.value, database: url.database,
                                                      tls: .disable)
        config.options.additionalStartupParameters = [("search_path", url.schema)]
        return try await PostgresConnection.connect(configuration: config, id: 1,
                                                    logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
    }
}

/// The budget store methods beyond the protocol that both engines offer.
protocol InspectableBudgetStore: BudgetStore {
    func receipt(drawID: String) async throws -> DrawReceipt?
    func unverifiedDraws(envelopeID: String) async throws -> [(drawID: String, reason: String)]
}
extension SQLiteBudgetStore: InspectableBudgetStore {}
extension PostgresBudgetStore: InspectableBudgetStore {}

/// A trace sink that can be read back.
protocol InspectableTraceSink: TraceSink {
    func events(limit: Int) async throws -> [TraceEvent]
    func count() async throws -> Int
}
extension SQLiteTraceSink: InspectableTraceSink {}
extension PostgresTraceSink: InspectableTraceSink {}

/// One isolated store of either engine: an SQLite file in a temp directory, or a fresh PostgreSQL schema; plus a
/// keystore directory.
struct StoreUnderTest: Sendable {
    let backend: Backend
    /// The SQLite file (SQLite only).
    let path: String
    let keys: String
    let postgres: PostgresStoreDatabase?

    init(_ backend: Backend, name: String = "store", lockTimeout: TimeInterval = 10) async throws {
        self.backend = backend
        path = temporaryDatabasePath(name)
        keys = (URL(fileURLWithPath: path).deletingLastPathComponent().path as NSString).appendingPathComponent("keys")
        switch backend {
        case .sqlite: postgres = nil
        case .postgres: postgres = try await Backend.openPostgres(lockTimeout: lockTimeout)
        }
    }

    var keystore: EnvelopeKeystore { EnvelopeKeystore(directory: keys) }

    func budgetStore(busyTimeout: TimeInterval = 10) throws -> any InspectableBudgetStore {
        if let postgres { return PostgresBudgetStore(database: postgres, keystore: keystore) }
        return try SQLiteBudgetStore(path: path, keystore: keystore, busyTimeout: busyTimeout)
    }

    func traceSink(dropQueries: Bool = false) throws -> any InspectableTraceSink {
        if let postgres { return PostgresTraceSink(database: postgres, urlMode: dropQueries ? .drop : .raw) }
        return try SQLiteTraceSink(path: path, urlMode: dropQueries ? .drop : .raw)
    }

    func credentialStore() throws -> any CredentialStore {
        if let postgres { return PostgresCredentialStore(database: postgres) }
        return try SQLiteCredentialStore(path: path)
    }

    func paymentJournal() throws -> any PaymentJournal {
        if let postgres { return PostgresPaymentJournal(database: postgres) }
        return try SQLitePaymentJournal(path: path)
    }

    /// Trace, budget, credentials and journal of a client configuration in this store.
    func configure(_ config: inout RouteweilerClient.Configuration) throws {
        if let postgres {
            config.usePostgres(database: postgres, keystore: keystore)
        } else {
            try config.useSQLite(path: path, keystore: keystore)
        }
    }

    /// Runs a hand-written statement with `?` placeholders (string arguments) on a second connection.
    func sql(_ statement: String, _ arguments: [String] = []) async throws {
        if let postgres {
            var numbered = ""
            var n = 0
            for ch in statement {
                if ch == "?" { n += 1; numbered += "$\(n)" } else { numbered.append(ch) }
            }
            try await postgres.execute(sql: numbered, arguments: arguments)
        } else {
            let queue = try otherConnection(path)
            try await queue.write { try $0.execute(sql: statement, arguments: StatementArguments(arguments)) }
        }
    }
}

@Suite struct PostgresBackendTests {
    @Test(.disabled(if: Backend.postgresURL == nil, Backend.skipNote))
    func theTestServerIsReachableAndMigrated() async throws {
        let db = try await Backend.openPostgres()
        #expect(try await db.migrationVersions() == [1, 2])
        // Opening again (as every process does on start) applies nothing twice.
        var url = db.url
        url.schema = db.url.schema
        let again = try await PostgresStoreDatabase.open(url: url)
        #expect(try await again.migrationVersions() == [1, 2])
    }

    @Test(.disabled(if: Backend.postgresURL == nil, Backend.skipNote))
    func concurrentStartsMigrateOnce() async throws {
        guard let text = Backend.postgresURL else { return }
        var url = try PostgresURL(text)
        url.schema = "rwtest_mig_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(12)
        let shared = url
        let opened = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<8 {
                group.addTask { try await PostgresStoreDatabase.open(url: shared, maximumConnections: 2).migrationVersions() }
            }
            return try await group.reduce(into: [[Int]]()) { $0.append($1) }
        }
        #expect(opened.allSatisfy { $0 == [1, 2] })
    }

    @Test func urlsParseAndNeverShowThePassword() throws {
        let url = try PostgresURL("postgres://rw:s%40cret@db.internal:6543/routeweiler?sslmode=require&schema=fleet")
        #expect(url.host == "db.internal" && url.port == 6543 && url.username == "rw" && url.database == "routeweiler")
        #expect(url.password?.value == "s@cret" && url.tls == .require && url.schema == "fleet")
        #expect(url.description == "postgres://rw:***@db.internal:6543/routeweiler?sslmode=require&schema=fleet")
        #expect(!"\(url)".contains("cret") && !String(reflecting: url).contains("cret"))
        do {
            _ = try PostgresURL("postgres://rw:topsecret@db.internal/x?bogus=1")
            Issue.record("expected ConfigurationError")
        } catch let error as ConfigurationError {
            #expect(!error.message.contains("topsecret") && error.message.contains("***"))
        }
        #expect(try StoreLocation("postgresql://a@h/d").isPostgres)
        #expect(try StoreLocation("sqlite:///tmp/x.db") == .sqlite(path: "/tmp/x.db"))
        #expect(try StoreLocation("./rw.db") == .sqlite(path: "./rw.db"))
        #expect(throws: ConfigurationError.self) { try StoreLocation("mysql://u:p@h/d") }
        #expect(PostgresURL.redact("postgres://u:hunter2@h/d") == "postgres://u:***@h/d")
    }

    @Test func anUnreachableServerIsAClearErrorWithoutThePassword() async throws {
        // Port 1 on loopback: nothing listens there.
        do {
            _ = try await PostgresStoreDatabase.open(url: "postgres://rw:hunter2@127.0.0.1:1/rw", connectTimeout: .seconds(5))
            Issue.record("expected PostgresStoreError")
        } catch let error as PostgresStoreError {
            #expect(error.message.contains("127.0.0.1:1") && !error.message.contains("hunter2"))
        }
    }

    @Test(.disabled(if: Backend.postgresURL == nil, Backend.skipNote))
    func aWrongPasswordIsRefusedWithoutEchoingIt() async throws {
        guard let text = Backend.postgresURL else { return }
        var url = try PostgresURL(text)
        url.password = Redacted("definitely-wrong-pw")
        do {
            _ = try await PostgresStoreDatabase.open(url: url)
            Issue.record("expected PostgresStoreError")
        } catch let error as PostgresStoreError {
            #expect(!error.message.contains("definitely-wrong-pw"))
        }
    }
}
