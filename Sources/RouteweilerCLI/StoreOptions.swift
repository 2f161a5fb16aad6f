import ArgumentParser
import Foundation
import Routeweiler
import RouteweilerPostgres
import RouteweilerSQLite

enum StoreOptions {
    /// Parses `usd=60000` into a currency and a price.
    static func parsePrice(_ text: String) -> (Currency, Decimal)? {
        let parts = text.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, let currency = try? Currency(envelopeCode: String(parts[0]).lowercased()),
            let price = Decimal(string: String(parts[1])), price > 0
        else { return nil }
        return (currency, price)
    }
}

// MARK: - Store location (`--store URL`: a PostgreSQL URL, `sqlite:///path`, or a path)

/// A budget store whose receipts the CLI can re-verify (`budget show`).
protocol CLIBudgetStore: BudgetStore {
    func unverifiedDraws(envelopeID: String) async throws -> [(drawID: String, reason: String)]
}
extension SQLiteBudgetStore: CLIBudgetStore {}
extension PostgresBudgetStore: CLIBudgetStore {}

/// A trace the CLI can read back (`trace`).
protocol CLITraceReader: TraceSink {
    func events(limit: Int) async throws -> [TraceEvent]
    func count() async throws -> Int
}
extension SQLiteTraceSink: CLITraceReader {}
extension PostgresTraceSink: CLITraceReader {}

extension StoreOptions {
    static let storeHelp: ArgumentHelp = ArgumentHelp(
        "Where the trace, budgets and credentials live: postgres://user:pass@host:port/db (shared by many "
            + "processes and machines), sqlite:///path, or a file path. Overrides the SQLite path option.",
        valueName: "url")

    /// `--store` if given, else the SQLite path; `nil` when neither.
    static func location(store: String?, sqlitePath: String?) throws -> StoreLocation? {
        if let store { return try guarded { try StoreLocation(store) } }
        return sqlitePath.map { .sqlite(path: $0) }
    }

    /// Opens the budget store at `location`; with `mustExist`, refuses to create a new SQLite file.
    static func openBudgetStore(_ location: StoreLocation, keystore: String?, busyTimeout: Double, mustExist: Bool)
        async throws -> any CLIBudgetStore
    {
        let keys = EnvelopeKeystore(directory: keystore)
        switch location {
        case .sqlite(let path):
            if mustExist, !FileManager.default.fileExists(atPath: path) {
                printError("error: no database at \(path)")
                throw ExitCode(ExitCodes.configuration)
            }
            return try guarded { try SQLiteBudgetStore(path: path, keystore: keys, busyTimeout: busyTimeout) }
        case .postgres(let url):
            let database = try await guardedAsync { try await PostgresStoreDatabase.open(url: url, lockTimeout: busyTimeout) }
            return PostgresBudgetStore(database: database, keystore: keys)
        }
    }

    /// Opens the trace at `location` for reading.
    static func openTrace(_ location: StoreLocation) async throws -> any CLITraceReader {
        switch location {
        case .sqlite(let path):
            guard FileManager.default.fileExists(atPath: path) else {
                printError("error: no trace database at \(path)")
                throw ExitCode(ExitCodes.configuration)
            }
            return try guarded { try SQLiteTraceSink(path: path) }
        case .postgres(let url):
            return PostgresTraceSink(database: try await guardedAsync { try await PostgresStoreDatabase.open(url: url) })
        }
    }

    /// Puts the trace, budget, credentials and journal of `config` at `location`.
    static func configure(_ config: inout RouteweilerClient.Configuration, location: StoreLocation,
                          keystore: String?) async throws {
        let keys = EnvelopeKeystore(directory: keystore)
        switch location {
        case .sqlite(let path):
            try config.useSQLite(path: path, keystore: keys)
        case .postgres(let url):
            let database = try await guardedAsync { try await PostgresStoreDatabase.open(url: url) }
            config.usePostgres(database: database, keystore: keys)
        }
    }

    /// Exit code for a store error: bad URL → 2; unreachable or locked database → 1.
    static func exitCode(for error: any Error) -> Int32 {
        switch error {
        case is ConfigurationError: ExitCodes.configuration
        case is PostgresStoreError, is StoreBusyError: 1
        default: ExitCodes.code(for: error)
        }
    }

    static func guarded<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as any RouteweilerError {
            printError("error: \(error.message) (\(error.errorName))")
            throw ExitCode(exitCode(for: error))
        }
    }

    static func guardedAsync<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as any RouteweilerError {
            printError("error: \(error.message) (\(error.errorName))")
            throw ExitCode(exitCode(for: error))
        }
    }
}
