import Foundation
import MCP
import Routeweiler
import RouteweilerSQLite
import RouteweilerTesting
import RouteweilerWire
import SystemPackage
import Testing

/// `routeweiler mcp` driven by a real MCP client session over the child process's stdin and stdout.
@Suite(.serialized) struct MCPTests {
    func text(_ content: [Tool.Content]) -> String {
        content.compactMap { if case .text(let t, _, _) = $0 { return t } else { return nil } }.joined()
    }

    func json(_ content: [Tool.Content]) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(text(content).utf8)) as? [String: Any])
    }

    @Test func anAgentFetchesQuotesAndReadsItsBudgetButCannotRaiseIt() async throws {
        let db = temporaryPath("mcp.db")
        let keys = URL(fileURLWithPath: db).deletingLastPathComponent().appendingPathComponent("keys").path
        let store = try SQLiteBudgetStore(path: db, keystore: EnvelopeKeystore(directory: keys))
        _ = try await store.createEnvelope(BudgetEnvelope(id: "agent", capMinorUnits: 100, capCurrency: .usd,
                                                          allowedRails: [.x402], ttlSeconds: 3600), now: Date())
        let keyFile = temporaryPath("evm.key")
        FileManager.default.createFile(atPath: keyFile, contents: Data(X402CLITests.key.utf8),
                                       attributes: [.posixPermissions: 0o600])
        var paywallConfig = FakePaywall.Configuration()
        paywallConfig.schemes = []
        paywallConfig.x402 = .baseSepoliaUSDC(payTo: X402CLITests.merchant, amount: 250_000)  // 25 cents

        try await FakePaywall.withPaywall(network: FakeLightningNetwork(), configuration: paywallConfig) { paywall in
            paywall.ledger.mint(10_000_000, to: try EVMSigner(hexKey: X402CLITests.key).address)
            let toChild = Pipe(), fromChild = Pipe()
            let process = Process()
            process.executableURL = CLIRun.binary
            process.arguments = ["mcp", "--trace-db", db, "--keystore", keys, "--budget", "agent",
                                 "--evm-key-file", keyFile, "--evm-network", "base-sepolia"]
            process.standardInput = toChild
            process.standardOutput = fromChild
            process.standardError = FileHandle.nullDevice
            try process.run()
            defer { if process.isRunning { process.terminate() } }

            let transport = StdioTransport(
                input: FileDescriptor(rawValue: fromChild.fileHandleForReading.fileDescriptor),
                output: FileDescriptor(rawValue: toChild.fileHandleForWriting.fileDescriptor))
            let client = Client(name: "routeweiler-tests", version: "1.0")
            let initialized = try await client.connect(transport: transport)
            #expect(initialized.serverInfo.name == "routeweiler")
            #expect(initialized.capabilities.tools != nil)

            let (tools, _) = try await client.listTools()
            #expect(Set(tools.map(\.name)) == ["paid_fetch", "quote", "budget_status", "history"])
            for tool in tools {
                guard case .object(let schema) = tool.inputSchema, case .object(let properties)? = schema["properties"]
                else { continue }
                for forbidden in ["payee", "payTo", "amount", "cap", "max", "budget", "price"] {
                    #expect(properties[forbidden] == nil, "\(tool.name) takes \(forbidden)")
                }
            }

            let url = paywall.url("/protected")
            let quoted = try await client.callTool(name: "quote", arguments: ["url": .string(url)])
            #expect(quoted.isError != true)
            let quote = try json(quoted.content)
            #expect(quote["chosenRail"] as? String == "x402")
            #expect((quote["budget"] as? [String: Any])?["remainingMinorUnits"] as? Int == 100)
            #expect(paywall.ledger.transfers.isEmpty)

            let fetched = try await client.callTool(name: "paid_fetch", arguments: ["url": .string(url)])
            #expect(fetched.isError != true, "\(text(fetched.content))")
            let response = try json(fetched.content)
            #expect(response["status"] as? Int == 200)
            #expect((response["payment"] as? [String: Any])?["rail"] as? String == "x402")
            #expect(paywall.ledger.transfers.count == 1)

            let status = try json(try await client.callTool(name: "budget_status").content)
            #expect(status["settledMinorUnits"] as? Int == 25)
            #expect(status["remainingMinorUnits"] as? Int == 75)

            // The agent cannot name an amount or a payee.
            let smuggled = try await client.callTool(name: "paid_fetch",
                                                     arguments: ["url": .string(url), "amount": .int(1)])
            #expect(smuggled.isError == true)
            #expect(text(smuggled.content).contains("no argument 'amount'"))

            // Three more calls fit (75 cents left), the fourth is over the cap: refused, nothing paid.
            for _ in 0..<3 { _ = try await client.callTool(name: "paid_fetch", arguments: ["url": .string(url)]) }
            let refused = try await client.callTool(name: "paid_fetch", arguments: ["url": .string(url)])
            #expect(refused.isError == true)
            #expect(try json(refused.content)["error"] as? String == "BudgetExceededError")
            #expect(paywall.ledger.transfers.count == 4)

            let history = try json(try await client.callTool(name: "history", arguments: ["limit": .int(10)]).content)
            let calls = try #require(history["calls"] as? [[String: Any]])
            #expect(calls.count == 5)
            #expect(calls.first?["error"] as? String == "BudgetExceededError")

            await client.disconnect()
            try toChild.fileHandleForWriting.close()
        }
    }
}
