import ArgumentParser
import Foundation
import Routeweiler
import RouteweilerPostgres
import RouteweilerSQLite

/// `routeweiler budget create|show|list`: budget envelopes in the trace database or a PostgreSQL store (SPEC §10).
struct BudgetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "budget",
        abstract: "Create and inspect budget envelopes (spending caps shared by paid calls).",
        subcommands: [Create.self, Show.self, List.self, Stress.self]
    )

    /// Options every budget subcommand takes.
    struct BudgetStoreOptions: ParsableArguments {
        @Option(name: .customLong("db"), help: "The SQLite database (the trace database by default).")
        var db: String = "./routeweiler-traces.db"

        @Option(name: .customLong("store"), help: StoreOptions.storeHelp)
        var store: String?

        @Option(name: .customLong("keystore"), help: "Directory of envelope signing keys (default ~/.routeweiler/keys).")
        var keystore: String?

        @Option(name: .customLong("busy-timeout"), help: .hidden)
        var busyTimeout: Double = 10

        /// `--store`, or the `--db` SQLite file.
        func location() throws -> StoreLocation {
            try StoreOptions.location(store: store, sqlitePath: db) ?? .sqlite(path: db)
        }

        /// Opens the store; with `mustExist`, refuses to create a new SQLite database file.
        func open(mustExist: Bool) async throws -> any CLIBudgetStore {
            try await StoreOptions.openBudgetStore(try location(), keystore: keystore, busyTimeout: busyTimeout,
                                                   mustExist: mustExist)
        }
    }

    /// Exit code for a budget error: bad input → 2 (configuration), a locked database → 1, otherwise the shared table.
    static func exitCode(for error: any Error) -> Int32 {
        switch error {
        case is ConfigurationError, is UnknownCurrencyError, is EnvelopeNotFoundError, is EnvelopeExistsError,
            is KeystoreAlreadyExistsError, is KeystoreNotFoundError, is ValidationError:
            return ExitCodes.configuration
        case is StoreBusyError, is ReceiptVerificationError, is PostgresStoreError:
            return 1
        default:
            return ExitCodes.code(for: error)
        }
    }

    /// Runs `body`, printing a library error as `error: <message>` and exiting with ``exitCode(for:)``.
    static func run<T>(_ body: () async throws -> T) async throws -> T {
        do { return try await body() } catch let error as any RouteweilerError {
            printError("error: \(error.message) (\(error.errorName))")
            throw ExitCode(exitCode(for: error))
        }
    }

    static func runSync<T>(_ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as any RouteweilerError {
            printError("error: \(error.message) (\(error.errorName))")
            throw ExitCode(exitCode(for: error))
        }
    }

    static func recordJSON(_ r: EnvelopeRecord) -> [String: Any] {
        [
            "id": r.id, "capMinorUnits": r.capMinorUnits, "capCurrency": r.capCurrency.code,
            "allowedRails": r.allowedRails.map(\.rawValue), "allowedOriginsGlob": r.allowedOriginsGlob,
            "status": r.status.rawValue, "createdAt": Timestamp.rfc3339Z(r.createdAt),
            "expiresAt": Timestamp.rfc3339Z(r.expiresAt), "counterPublicKey": r.counterPublicKey,
            "ownerAgentId": r.ownerAgentID.map { $0 as Any } ?? NSNull(),
        ]
    }

    static func balanceJSON(_ b: EnvelopeBalance) -> [String: Any] {
        ["cap": b.capMinorUnits, "reserved": b.reservedMinorUnits, "settled": b.settledMinorUnits,
         "remaining": b.remainingMinorUnits, "currency": b.currency.code]
    }

    // MARK: create

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "create", abstract: "Create an envelope and its Ed25519 signing key.")

        @OptionGroup var store: BudgetStoreOptions

        @Option(name: .customLong("id"), help: "Envelope id (letters, digits, '-', '_', '.').")
        var id: String

        @Option(name: .customLong("cap"), help: "The cap in minor units (cents; yen for jpy). Must be positive.")
        var cap: Int64

        @Option(name: .customLong("currency"), help: "usd, eur, gbp or jpy.")
        var currency: String

        @Option(name: .customLong("rails"), help: "Comma-separated rails the envelope may pay on, e.g. l402,x402.")
        var rails: String

        @Option(name: .customLong("ttl"), help: "Lifetime in seconds. Must be positive.")
        var ttl: Int64

        @Option(name: .customLong("owner"), help: "Owner agent id (stored).")
        var owner: String?

        @Flag(name: .customLong("json"), help: "Print the envelope as JSON.")
        var json = false

        func run() async throws {
            let railList = rails.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
                .filter { !$0.isEmpty }.map { RailID($0) }
            let record = try await BudgetCommand.run { () async throws -> EnvelopeRecord in
                let spec = BudgetEnvelope(
                    id: id, capMinorUnits: cap, capCurrency: try Currency(envelopeCode: currency),
                    allowedRails: railList, ttlSeconds: ttl, ownerAgentID: owner)
                try spec.validate()
                let store = try await store.open(mustExist: false)
                return try await store.createEnvelope(spec, now: Date())
            }
            if json {
                print(jsonText(BudgetCommand.recordJSON(record)))
            } else {
                print("created envelope \(record.id): cap \(record.capMinorUnits) \(record.capCurrency) minor units, "
                      + "rails \(record.allowedRails.map(\.rawValue).joined(separator: ",")), "
                      + "expires \(Timestamp.rfc3339Z(record.expiresAt))")
                print("public key \(record.counterPublicKey)")
            }
        }
    }

    // MARK: show

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "show",
            abstract: "Show an envelope's cap, reserved, settled and remaining amounts, and re-verify every receipt.")

        @OptionGroup var store: BudgetStoreOptions

        @Option(name: .customLong("id"), help: "Envelope id.")
        var id: String

        @Flag(name: .customLong("json"), help: "Print one JSON object.")
        var json = false

        func run() async throws {
            let store = try await store.open(mustExist: true)
            let (record, balance, draws, failures) = try await BudgetCommand.run {
                () async throws -> (EnvelopeRecord, EnvelopeBalance, [DrawRecord], [(drawID: String, reason: String)]) in
                guard let record = try await store.envelope(id: id) else { throw EnvelopeNotFoundError(envelopeID: id) }
                return (record, try await store.balance(envelopeID: id), try await store.draws(envelopeID: id),
                        try await store.unverifiedDraws(envelopeID: id))
            }
            if json {
                var object = BudgetCommand.recordJSON(record).merging(BudgetCommand.balanceJSON(balance)) { $1 }
                object["draws"] = draws.count
                object["receiptsVerified"] = failures.isEmpty
                object["failedDraws"] = failures.map { ["id": $0.drawID, "reason": $0.reason] }
                print(jsonText(object))
            } else {
                let cur = record.capCurrency.code
                print("envelope   \(record.id) (\(record.status))")
                print("cap        \(balance.capMinorUnits) \(cur)")
                print("reserved   \(balance.reservedMinorUnits) \(cur)")
                print("settled    \(balance.settledMinorUnits) \(cur)")
                print("remaining  \(balance.remainingMinorUnits) \(cur)")
                print("rails      \(record.allowedRails.map(\.rawValue).joined(separator: ","))")
                print("expires    \(Timestamp.rfc3339Z(record.expiresAt))")
                print("draws      \(draws.count)")
                if failures.isEmpty {
                    print("receipts   verified OK")
                } else {
                    print("receipts   FAILED for \(failures.count) draw(s)")
                    for f in failures { print("  \(f.drawID): \(f.reason)") }
                }
            }
            if !failures.isEmpty {
                printError("error: \(failures.count) receipt(s) failed verification: "
                           + failures.map(\.drawID).joined(separator: ", "))
                throw ExitCode(1)
            }
        }
    }

    // MARK: list

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List envelopes with their balances.")

        @OptionGroup var store: BudgetStoreOptions

        @Flag(name: .customLong("json"), help: "One JSON object per line.")
        var json = false

        func run() async throws {
            let store = try await store.open(mustExist: true)
            let rows = try await BudgetCommand.run { () async throws -> [(EnvelopeRecord, EnvelopeBalance)] in
                var rows: [(EnvelopeRecord, EnvelopeBalance)] = []
                for record in try await store.envelopes() {
                    rows.append((record, try await store.balance(envelopeID: record.id)))
                }
                return rows
            }
            for (record, balance) in rows {
                if json {
                    print(jsonText(BudgetCommand.recordJSON(record).merging(BudgetCommand.balanceJSON(balance)) { $1 }))
                } else {
                    print("\(record.id)  \(record.status)  cap=\(balance.capMinorUnits) reserved=\(balance.reservedMinorUnits) "
                          + "settled=\(balance.settledMinorUnits) remaining=\(balance.remainingMinorUnits) \(record.capCurrency) "
                          + "rails=\(record.allowedRails.map(\.rawValue).joined(separator: ",")) "
                          + "expires=\(Timestamp.rfc3339Z(record.expiresAt))")
                }
            }
            if !json { printError("\(rows.count) envelope(s)") }
        }
    }

    // MARK: stress (hidden, for cross-process tests)

    /// Runs `count` reserve+settle cycles with `concurrency` tasks in flight; prints `{"exceeded":…,"succeeded":…}`.
    /// With `--trace`, every cycle also records one trace row (a call) in the same store.
    struct Stress: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "stress", abstract: "Reserve and settle concurrently (test helper).", shouldDisplay: false)

        @OptionGroup var store: BudgetStoreOptions

        @Option(name: .customLong("id")) var id: String
        @Option(name: .customLong("amount")) var amount: Int64 = 1
        @Option(name: .customLong("count")) var count: Int = 100
        @Option(name: .customLong("concurrency")) var concurrency: Int = 8
        @Option(name: .customLong("rail")) var rail: String = "l402"
        @Flag(name: .customLong("trace")) var trace = false

        enum Outcome: Sendable { case succeeded, exceeded, failed(String) }

        func run() async throws {
            let store = try await store.open(mustExist: true)
            let sink: (any TraceSink)? = trace ? try await StoreOptions.openTrace(try self.store.location()) : nil
            let amount = self.amount, id = self.id, rail = RailID(self.rail)
            var succeeded = 0, exceeded = 0
            var errors: [String] = []
            try await withThrowingTaskGroup(of: Outcome.self) { group in
                func add() {
                    group.addTask {
                        let key = UUIDv7.make()
                        let start = Date()
                        var outcome: Outcome
                        var drawID: String?
                        do {
                            let receipt = try await store.reserve(
                                envelopeID: id, requestID: key, idempotencyKey: key, amountMinorUnits: amount,
                                rail: rail, lease: .seconds(150), now: Date())
                            drawID = receipt.receiptId
                            try await store.settle(drawID: receipt.receiptId, amountMinorUnits: amount, now: Date())
                            outcome = .succeeded
                        } catch is BudgetExceededError {
                            outcome = .exceeded
                        } catch {
                            outcome = .failed("\(error)")
                        }
                        if let sink {
                            do {
                                try await sink.record(Self.event(key: key, envelope: id, rail: rail, amount: amount,
                                                                 drawID: drawID, outcome: outcome, start: start))
                            } catch {
                                outcome = .failed("trace: \(error)")
                            }
                        }
                        return outcome
                    }
                }
                var started = 0
                while started < min(concurrency, count) { add(); started += 1 }
                while let outcome = try await group.next() {
                    switch outcome {
                    case .succeeded: succeeded += 1
                    case .exceeded: exceeded += 1
                    case .failed(let message): errors.append(message)
                    }
                    if started < count { add(); started += 1 }
                }
            }
            do {
                try await sink?.flush()  // rows written behind the calls reach the store before the process exits
            } catch {
                errors.append("trace: \(error)")
            }
            print(jsonText(["succeeded": succeeded, "exceeded": exceeded, "errors": errors.count]))
            for e in errors.prefix(5) { printError("error: \(e)") }
            if !errors.isEmpty { throw ExitCode(1) }
        }

        /// One trace row for one stress call.
        static func event(key: String, envelope: String, rail: RailID, amount: Int64, drawID: String?,
                          outcome: Outcome, start: Date) -> TraceEvent {
            var paid = false, refused = false, failure = ""
            switch outcome {
            case .succeeded: paid = true
            case .exceeded: refused = true
            case .failed(let message): failure = message
            }
            var event = TraceEvent(
                requestId: key, agentId: "stress", envelopeId: envelope, policyHash: RouteweilerClient.defaultPolicyHash,
                method: "POST", url: "stress://\(envelope)", challenge: nil, selectedRail: paid ? rail : nil,
                fallbackFrom: nil, facilitator: nil, fundingSource: nil, payment: nil,
                outcome: .init(httpStatus: paid ? 200 : nil, serviceDelivered: paid, serviceLatencyMs: 0,
                               error: refused ? .init(code: "BudgetExceededError", message: "budget exceeded")
                                   : paid ? nil : .init(code: "StressError", message: failure)),
                timestampStart: start, timestampEnd: Date())
            event.reservation = .init(envelopeId: envelope, drawId: drawID, currency: "usd",
                                      reservedMinorUnits: drawID == nil ? nil : amount,
                                      settledMinorUnits: paid ? amount : nil, state: paid ? "settled" : "none")
            return event
        }
    }
}
