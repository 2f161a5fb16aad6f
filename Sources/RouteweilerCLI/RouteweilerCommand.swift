import ArgumentParser
import Foundation

@main
struct RouteweilerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routeweiler",
        abstract: "Call paywalled HTTP APIs as if they were free: pays HTTP 402 challenges: L402 through your LND node, x402 from a local EVM key.",
        subcommands: [GetCommand.self, DecodeCommand.self, TraceCommand.self, DemoCommand.self, BudgetCommand.self, MCPCommand.self]
    )
}
