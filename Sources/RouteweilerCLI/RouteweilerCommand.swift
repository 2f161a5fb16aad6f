import ArgumentParser
import Foundation
import Logging

@main
struct RouteweilerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routeweiler",
        abstract: "Call paywalled HTTP APIs as if they were free: pays HTTP 402 challenges: L402 through your LND node, x402 from a local EVM key.",
        discussion: "Logs go to stderr at the level of ROUTEWEILER_LOG_LEVEL (trace, debug, info, notice, warning (default), error).",
        subcommands: [GetCommand.self, DecodeCommand.self, TraceCommand.self, DemoCommand.self, BudgetCommand.self, MCPCommand.self]
    )

    /// The library never bootstraps a logging backend; the command-line tool does: stderr, level from the environment.
    static func main() async {
        let level = ProcessInfo.processInfo.environment["ROUTEWEILER_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) }
            ?? .warning
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        await main(nil)
    }
}

/// The logger the tool hands to the library.
let cliLogger = Logger(label: "routeweiler")
