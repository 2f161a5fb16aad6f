import ArgumentParser
import Foundation
import HTTPTypes
import LNDClient
import Logging
import MCP
import Routeweiler
import RouteweilerL402
import RouteweilerSQLite
import RouteweilerWire

/// `routeweiler mcp`: the Model Context Protocol over stdio, with four narrow tools. The agent fetches and looks;
/// it cannot name a payee, an amount or a cap, so it cannot raise its own limits: those come from the flags.
struct MCPCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mcp",
        abstract: "Serve the Model Context Protocol over stdio: paid_fetch, quote, budget_status, history.",
        discussion: """
            Limits come from the flags only (--budget, --policy, --max-sats, --max-usdc-units); no tool takes a \
            payee, an amount or a cap. stdout carries JSON-RPC only; logs go to stderr.
            """
    )

    @OptionGroup var lnd: LNDOptions
    @OptionGroup var evm: EVMOptions

    @Option(name: .customLong("trace-db"), help: "SQLite trace database (default ./routeweiler-traces.db).")
    var traceDB: String = "./routeweiler-traces.db"

    @Option(name: .customLong("budget"), help: "Budget envelope id that caps what the agent can spend.")
    var budget: String?

    @Option(name: .customLong("policy"), help: "Payment policy file (JSON or YAML).")
    var policy: String?

    @Option(name: .customLong("keystore"), help: "Directory of envelope signing keys (default ~/.routeweiler/keys).")
    var keystore: String?

    @Option(name: .customLong("max-sats"), help: "Refuse invoices dearer than this many sats.")
    var maxSats: UInt64?

    @Option(name: .customLong("btc-price"), help: "Use a fixed BTC price instead of CoinGecko, e.g. usd=60000.")
    var btcPrice: String?

    @Option(name: .customLong("max-body-bytes"), help: "Longest response body handed to the agent.")
    var maxBodyBytes: Int = 65_536

    func validate() throws {
        if let btcPrice, StoreOptions.parsePrice(btcPrice) == nil {
            throw ValidationError("--btc-price must look like usd=60000")
        }
    }

    @OptionGroup var telemetry: TelemetryOptions

    func run() async throws {
        try await telemetry.run { try await runCommand() }
    }

    func runCommand() async throws {
        var funding: [any FundingSource] = []
        if let wallet = try evm.fundingSource() { funding.append(wallet) }
        if lnd.isConfigured {
            try await LNDClient.withClient(configuration: try lnd.clientConfiguration()) { client in
                let network: LightningNetwork
                if let n = lnd.parsedNetwork {
                    network = n
                } else if let n = try await client.nodeInfo().network {
                    network = n
                } else {
                    throw ValidationError("the node did not report its network; pass --network")
                }
                let node = try await LightningFundingSource.create(lnd: client, network: network,
                                                                   maxAmountMsat: maxSats.map { $0 * 1000 })
                try await serve(funding: funding + [node])
            }
        } else {
            try await serve(funding: funding)
        }
    }

    func serve(funding: [any FundingSource]) async throws {
        var config = RouteweilerClient.Configuration(funding: funding)
        try config.useSQLite(path: traceDB, keystore: keystore.map { EnvelopeKeystore(directory: $0) } ?? EnvelopeKeystore())
        if let budget { config.budget = .envelope(id: budget) }
        if let policy { config.policy = try Policy(contentsOfFile: policy) }
        if let btcPrice, let (currency, price) = StoreOptions.parsePrice(btcPrice) {
            config.fmvProvider = StaticFmvProvider(btcPrices: [currency: price])
        }
        config.agentID = "mcp"
        config.logger = Logger(label: "routeweiler.mcp")  // stderr: stdout carries JSON-RPC only
        let tools = RouteweilerMCPTools(maxBodyBytes: maxBodyBytes, envelopeID: budget)
        let settings = config
        try await RouteweilerClient.withClient(configuration: config) { rw in
            try await rw.start()
            let server = Server(
                name: "routeweiler", version: "0.3.0",
                instructions: "Fetch paywalled HTTP APIs. paid_fetch pays a 402 within the operator's budget and policy; quote shows what a URL would cost without paying.",
                capabilities: .init(tools: .init(listChanged: false)))
            await server.withMethodHandler(ListTools.self) { _ in .init(tools: RouteweilerMCPTools.definitions) }
            await server.withMethodHandler(CallTool.self) { params in
                await tools.call(params.name, arguments: params.arguments ?? [:], client: rw, config: settings)
            }
            try await server.start(transport: StdioTransport())
            await server.waitUntilCompleted()
        }
    }
}

/// The four tools and their handlers.
struct RouteweilerMCPTools: Sendable {
    var maxBodyBytes: Int
    var envelopeID: String?

    static let definitions: [Tool] = [
        Tool(name: "paid_fetch",
             description: "Fetch an HTTP(S) URL. If the server answers 402 Payment Required, pay it on the best rail within the operator's budget and policy, then return the paid response. Returns status, headers, body and what was paid.",
             inputSchema: .object([
                "type": "object",
                "properties": .object([
                    "url": .object(["type": "string", "description": "Absolute http(s) URL"]),
                    "method": .object(["type": "string", "description": "HTTP method, default GET"]),
                    "headers": .object(["type": "object", "description": "Extra request headers",
                                        "additionalProperties": .object(["type": "string"])]),
                    "body": .object(["type": "string", "description": "Request body (UTF-8)"]),
                ]),
                "required": .array(["url"]),
                "additionalProperties": false,
             ])),
        Tool(name: "quote",
             description: "Show what fetching a URL would cost without paying: every offer with its price and cost in the budget currency, the policy and budget verdicts, and the rail that would be chosen and why.",
             inputSchema: .object([
                "type": "object",
                "properties": .object([
                    "url": .object(["type": "string", "description": "Absolute http(s) URL"]),
                    "method": .object(["type": "string", "description": "HTTP method, default GET"]),
                ]),
                "required": .array(["url"]),
                "additionalProperties": false,
             ])),
        Tool(name: "budget_status",
             description: "The budget envelope's cap, reserved, settled and remaining amounts.",
             inputSchema: .object(["type": "object", "properties": .object([:]), "additionalProperties": false])),
        Tool(name: "history",
             description: "The most recent calls (newest first): URL, rail, amount, status, error.",
             inputSchema: .object([
                "type": "object",
                "properties": .object(["limit": .object(["type": "integer", "minimum": 1, "maximum": 100])]),
                "additionalProperties": false,
             ])),
    ]

    static let allowedArguments: [String: Set<String>] = [
        "paid_fetch": ["url", "method", "headers", "body"], "quote": ["url", "method"], "budget_status": [],
        "history": ["limit"],
    ]

    func call(_ name: String, arguments: [String: Value], client: RouteweilerClient,
              config: RouteweilerClient.Configuration) async -> CallTool.Result {
        guard let allowed = Self.allowedArguments[name] else { return Self.failure("unknown tool '\(name)'") }
        if let extra = arguments.keys.first(where: { !allowed.contains($0) }) {
            return Self.failure("\(name) takes no argument '\(extra)'")
        }
        do {
            switch name {
            case "paid_fetch": return try await fetch(arguments, client: client)
            case "quote":
                guard let url = arguments["url"]?.stringValue else { return Self.failure("quote needs a 'url'") }
                let method = HTTPRequest.Method((arguments["method"]?.stringValue ?? "GET").uppercased()) ?? .get
                return try Self.result(try await client.quote(url, method: method))
            case "budget_status":
                guard let envelopeID, let store = config.budgetStore else {
                    return Self.success(["budget": .null, "note": "no budget envelope is configured"])
                }
                let b = try await store.balance(envelopeID: envelopeID)
                return Self.success([
                    "envelopeId": .string(b.envelopeID), "currency": .string(b.currency.code),
                    "capMinorUnits": .int(Int(b.capMinorUnits)), "reservedMinorUnits": .int(Int(b.reservedMinorUnits)),
                    "settledMinorUnits": .int(Int(b.settledMinorUnits)),
                    "remainingMinorUnits": .int(Int(b.remainingMinorUnits)),
                ])
            default:  // history
                let limit = min(100, max(1, arguments["limit"]?.intValue ?? 20))
                let events = try await config.traceSink?.recentEvents(limit: limit) ?? []
                return Self.success(["calls": .array(events.map(Self.summary))])
            }
        } catch let error as any RouteweilerError {
            var object: [String: Value] = [
                "error": .string(error.errorName), "message": .string(error.message),
                "mayHaveMovedFunds": .bool(error.mayHaveMovedFunds),
            ]
            if error.mayHaveMovedFunds { object["note"] = "funds may have moved; do not retry this purchase blindly" }
            return Self.success(object, isError: true)
        } catch {
            return Self.failure("\(error)")
        }
    }

    func fetch(_ arguments: [String: Value], client: RouteweilerClient) async throws -> CallTool.Result {
        guard let url = arguments["url"]?.stringValue else { return Self.failure("paid_fetch needs a 'url'") }
        let method = HTTPRequest.Method((arguments["method"]?.stringValue ?? "GET").uppercased()) ?? .get
        var fields = HTTPFields()
        if case .object(let headers)? = arguments["headers"] {
            for (key, value) in headers {
                guard let name = HTTPField.Name(key), let text = value.stringValue else {
                    return Self.failure("bad header '\(key)'")
                }
                fields.append(HTTPField(name: name, value: text))
            }
        }
        let body = arguments["body"]?.stringValue.map { Array($0.utf8) }
        let response = try await client.request(method, url, headers: fields, body: body)
        var headers: [String: Value] = [:]
        for f in response.headerFields { headers[f.name.canonicalName] = .string(f.value) }
        let truncated = response.body.count > maxBodyBytes
        var object: [String: Value] = [
            "status": .int(Int(response.status.code)), "headers": .object(headers),
            "body": .string(String(decoding: response.body.prefix(maxBodyBytes), as: UTF8.self)),
            "bodyTruncated": .bool(truncated), "requestId": .string(response.requestID), "payment": .null,
        ]
        if let p = response.payment {
            object["payment"] = .object([
                "rail": .string(p.rail.rawValue), "amountNative": .int(Int(p.amountNative)),
                "amountNativeCurrency": .string(p.amountNativeCurrency),
                "amountEnvelope": p.amountEnvelope.map { .double($0) } ?? .null,
                "amountEnvelopeCurrency": p.amountEnvelopeCurrency.map { .string($0) } ?? .null,
                "proofType": .string(p.proofType.rawValue),
                "transactionHash": p.settlement?.transactionHash.map { .string($0) } ?? .null,
            ])
        }
        return Self.success(object, isError: response.status.code >= 400)
    }

    static func summary(_ e: TraceEvent) -> Value {
        .object([
            "requestId": .string(e.requestId), "time": .string(Timestamp.rfc3339Z(e.timestampStart)),
            "method": e.method.map { .string($0) } ?? .null, "url": e.url.map { .string($0) } ?? .null,
            "rail": e.selectedRail.map { .string($0.rawValue) } ?? .null,
            "amountNative": e.payment.map { .int(Int($0.amountNative)) } ?? .null,
            "amountNativeCurrency": e.payment.map { .string($0.amountNativeCurrency) } ?? .null,
            "httpStatus": e.outcome.httpStatus.map { .int($0) } ?? .null,
            "error": e.outcome.error.map { .string($0.code) } ?? .null,
        ])
    }

    static func result(_ quote: PaymentQuote) throws -> CallTool.Result {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let text = String(decoding: try encoder.encode(quote), as: UTF8.self)
        return try CallTool.Result(content: [.text(text)], structuredContent: quote, isError: false)
    }

    static func success(_ object: [String: Value], isError: Bool = false) -> CallTool.Result {
        let value = Value.object(object)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let text = (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return (try? CallTool.Result(content: [.text(text)], structuredContent: value, isError: isError))
            ?? CallTool.Result(content: [.text(text)], isError: isError)
    }

    static func failure(_ message: String) -> CallTool.Result {
        CallTool.Result(content: [.text(message)], isError: true)
    }
}
