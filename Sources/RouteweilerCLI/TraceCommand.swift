import ArgumentParser
import Foundation
import Routeweiler
import RouteweilerSQLite

struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace", abstract: "Show the rows of a trace database, newest first.")

    @Option(name: .customLong("trace-db"), help: "The SQLite trace database.")
    var traceDB: String = "./routeweiler-traces.db"

    @Option(name: .customLong("store"), help: StoreOptions.storeHelp)
    var store: String?

    @Option(name: .customLong("limit"), help: "How many rows.")
    var limit: Int = 50

    @Flag(name: .customLong("json"), help: "One JSON payload per line.")
    var json = false

    func run() async throws {
        let location = try StoreOptions.location(store: store, sqlitePath: traceDB) ?? .sqlite(path: traceDB)
        let sink = try await StoreOptions.openTrace(location)
        let events = try await StoreOptions.guardedAsync { try await sink.events(limit: limit) }
        for e in events {
            if json {
                print(try e.payloadJSON())
            } else {
                print(Self.line(e))
            }
        }
        if !json { printError("\(events.count) row(s)") }
    }

    static func line(_ e: TraceEvent) -> String {
        let status = e.outcome.httpStatus.map(String.init) ?? "-"
        let rail = e.selectedRail?.rawValue ?? "-"
        let amount = e.payment.map { "\($0.amountNative) \($0.amountNativeCurrency)" } ?? "free"
        let error = e.outcome.error.map { " error=\($0.code)" } ?? ""
        var decision = e.policy.map { " decision=\($0.verdict)\($0.ruleName.map { "(\($0))" } ?? "")" } ?? ""
        if e.credentialState == "reused" { decision += " credential=reused" }
        var envelope = ""
        if let r = e.reservation {
            let settled = r.settledMinorUnits.map(String.init) ?? "-"
            envelope = " envelope=\(r.envelopeId) \(r.state) settled=\(settled) \(r.currency) minor"
        }
        return "\(Timestamp.rfc3339Z(e.timestampStart))  \(e.requestId)  \(e.method ?? "-") \(e.url ?? "-")  status=\(status) rail=\(rail) amount=\(amount)\(decision)\(envelope)\(error)"
    }
}
