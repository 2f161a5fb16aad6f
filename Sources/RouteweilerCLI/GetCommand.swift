import ArgumentParser
import Foundation
import HTTPTypes
import LNDClient
import Routeweiler
import RouteweilerL402
import RouteweilerMPP
import RouteweilerSQLite
import RouteweilerWire

struct GetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "get",
        abstract: "Fetch a URL, paying its 402 challenge (L402 through your LND node, x402 from an EVM key). Body to stdout, summary to stderr."
    )

    @Argument(help: "The URL to fetch.")
    var url: String

    @OptionGroup var lnd: LNDOptions

    @OptionGroup var evm: EVMOptions

    @OptionGroup var mpp: MPPOptions

    @Option(name: .customLong("trace-db"), help: "SQLite trace database (one row per call).")
    var traceDB: String?

    @Option(name: .customLong("store"), help: StoreOptions.storeHelp)
    var store: String?

    @Option(name: .customLong("max-sats"), help: "Refuse invoices dearer than this many sats.")
    var maxSats: UInt64?

    @Option(name: .customLong("budget"), help: "Budget envelope id (in the trace database) that caps spending.")
    var budget: String?

    @Option(name: .customLong("policy"), help: "Payment policy file (JSON or YAML).")
    var policy: String?

    @Option(name: .customLong("keystore"), help: "Directory of envelope signing keys (default ~/.routeweiler/keys).")
    var keystore: String?

    @Option(name: .customLong("btc-price"),
            help: "Use a fixed BTC price instead of CoinGecko, e.g. usd=60000 (offline use and tests).")
    var btcPrice: String?

    @Flag(name: .customLong("no-reuse"), help: "Do not reuse paid tokens; pay for every call.")
    var noReuse = false

    @Option(name: [.customShort("X"), .customLong("method")], help: "HTTP method (default GET).")
    var method: String = "GET"

    @Option(name: [.customShort("H"), .customLong("header")], help: "Extra header 'Name: value' (repeatable).")
    var headers: [String] = []

    @Option(name: [.customShort("d"), .customLong("data")], help: "Request body (sent again on the paid retry).")
    var data: String?

    @Flag(name: .customLong("json"), help: "Print one JSON object (status, headers, body, payment) to stdout.")
    var json = false

    @Flag(name: .customLong("dry-run"),
          help: "Do not pay: show every offer, its cost, the policy and budget verdicts, and the rail that would be chosen and why.")
    var dryRun = false

    func validate() throws {
        if let maxSats, maxSats == 0 { throw ValidationError("--max-sats must be positive") }
        if let btcPrice, StoreOptions.parsePrice(btcPrice) == nil {
            throw ValidationError("--btc-price must look like usd=60000")
        }
        for h in headers where !h.contains(":") { throw ValidationError("header '\(h)' is not 'Name: value'") }
    }

    @OptionGroup var telemetry: TelemetryOptions

    func run() async throws {
        try await telemetry.run { try await runCommand() }
    }

    func runCommand() async throws {
        var fields = HTTPFields()
        for h in headers {
            let idx = h.firstIndex(of: ":")!
            guard let name = HTTPField.Name(String(h[..<idx]).trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError("bad header name in '\(h)'")
            }
            fields.append(HTTPField(name: name, value: String(h[h.index(after: idx)...]).trimmingCharacters(in: .whitespaces)))
        }
        let method = HTTPRequest.Method(self.method.uppercased()) ?? .get
        let body = data.map { Array($0.utf8) }

        var funding: [any FundingSource] = []
        if let wallet = try evm.fundingSource() { funding.append(wallet) }
        funding += try mpp.fundingSources()
        if lnd.isConfigured {
            let lndConfig = try lnd.clientConfiguration()
            try await LNDClient.withClient(configuration: lndConfig) { client in
                let node = try await LightningFundingSource.create(
                    lnd: client, network: try await network(of: client),
                    maxAmountMsat: maxSats.map { $0 * 1000 }).withMPP()
                try await fetch(funding: funding + [node], method: method, fields: fields, body: body)
            }
        } else {
            try await fetch(funding: funding, method: method, fields: fields, body: body)
        }
    }

    func network(of client: LNDClient) async throws -> LightningNetwork {
        if let n = lnd.parsedNetwork { return n }
        let info = try await client.nodeInfo()
        guard let n = info.network else {
            throw ValidationError("the node did not report its network; pass --network")
        }
        return n
    }

    func fetch(funding: [any FundingSource], method: HTTPRequest.Method, fields: HTTPFields, body: [UInt8]?) async throws {
        var config = RouteweilerClient.Configuration(funding: funding)
        let database = traceDB ?? (budget != nil ? "./routeweiler-traces.db" : nil)
        if let location = try StoreOptions.location(store: store, sqlitePath: database) {
            try await StoreOptions.configure(&config, location: location, keystore: keystore)
        }
        if let budget { config.budget = .envelope(id: budget) }
        if let policy {
            do {
                config.policy = try Policy(contentsOfFile: policy)
            } catch {
                printError("error: \(error)")
                throw ExitCode(ExitCodes.configuration)
            }
        }
        if let btcPrice, let (currency, price) = StoreOptions.parsePrice(btcPrice) {
            config.fmvProvider = StaticFmvProvider(btcPrices: [currency: price])
        }
        config.reuseCredentials = !noReuse
        config.logger = cliLogger
        if dryRun {
            let quote = try await RouteweilerClient.withClient(configuration: config) { rw in
                try await rw.quote(url, method: method, headers: fields, body: body)
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                encoder.dateEncodingStrategy = .iso8601
                print(String(decoding: try encoder.encode(quote), as: UTF8.self))
            } else {
                print(Self.describe(quote))
            }
            return
        }
        do {
            let response = try await RouteweilerClient.withClient(configuration: config) { rw in
                try await rw.request(method, url, headers: fields, body: body)
            }
            if json {
                print(jsonText(Self.jsonObject(response)))
            } else {
                FileHandle.standardOutput.write(Data(response.body))
                if let p = response.payment {
                    printError("paid \(p.amountNative) \(p.amountNativeCurrency == "btc-lightning" ? "sats" : p.amountNativeCurrency) via \(p.rail) (\(p.proofType) \(p.proofValue ?? "-")) in \(p.settlementLatencyMs) ms; HTTP \(response.status.code); trace \(p.requestID)")
                    if let s = p.settlement {
                        printError("settlement: \(s.success ? "success" : "not confirmed") on \(s.network ?? "?") tx \(s.transactionHash ?? "-") payer \(s.payer ?? "-")")
                    }
                } else {
                    printError("free: HTTP \(response.status.code); nothing paid; trace \(response.requestID)")
                }
            }
            if response.status.code >= 400 { throw ExitCode(1) }
        } catch let error as any RouteweilerError {
            if json {
                var object: [String: Any] = ["error": ["code": error.errorName, "message": error.message,
                                                       "mayHaveMovedFunds": error.mayHaveMovedFunds]]
                if let rejected = error as? ProofRejectedError { object["payment"] = Self.paymentObject(rejected.payment) }
                if let failed = error as? PaidRetryFailedError { object["payment"] = Self.paymentObject(failed.payment) }
                print(jsonText(object))
            } else {
                printError("error: \(error)")
                if error.mayHaveMovedFunds { printError("note: funds may have moved; nothing will be paid again for this call") }
            }
            throw ExitCode(ExitCodes.code(for: error))
        }
    }

    static func describe(_ q: PaymentQuote) -> String {
        var lines = ["\(q.method) \(q.url): HTTP \(q.httpStatus)\(q.paymentRequired ? " Payment Required" : "")"]
        for o in q.offers {
            let mark = o.chosen ? "*" : (o.payable ? "+" : "-")
            var line = "  \(mark) \(o.rail)  \(o.price?.humanAmount ?? "?")"
            if let cost = o.costMinorUnits, let c = o.costCurrency { line += "  ≈ \(cost) \(c) minor units" }
            line += "  policy \(o.policyVerdict)\(o.policyRule.map { " (\($0))" } ?? "")"
            if let f = o.fundingSource { line += "  from \(f)" }
            if let r = o.rejection { line += "\n      not payable: \(r.code): \(r.message)" }
            lines.append(line)
        }
        if let b = q.budget {
            lines.append("  budget \(b.envelopeId): \(b.remainingMinorUnits) of \(b.capMinorUnits) \(b.currency) minor units left; would reserve \(b.wouldReserveMinorUnits.map(String.init) ?? "-"): \(b.fits ? "fits" : "does not fit")")
        }
        lines.append("would pay: \(q.chosenRail?.rawValue ?? "nothing") — \(q.explanation)")
        lines.append("(dry run: nothing was reserved, signed or paid)")
        return lines.joined(separator: "\n")
    }

    static func paymentObject(_ p: PaymentReceipt) -> [String: Any] {
        ["rail": p.rail.rawValue, "amountNative": p.amountNative, "amountNativeCurrency": p.amountNativeCurrency,
         "proofType": p.proofType.rawValue, "proofValue": p.proofValue ?? NSNull(),
         "settlementLatencyMs": p.settlementLatencyMs, "fmvQuality": p.fmvQuality.rawValue, "requestId": p.requestID,
         "settlement": p.settlement.map { s -> [String: Any] in
             ["success": s.success, "transactionHash": s.transactionHash ?? NSNull(), "network": s.network ?? NSNull(),
              "payer": s.payer ?? NSNull(), "facilitator": s.facilitator ?? NSNull()]
         } ?? NSNull()]
    }

    static func jsonObject(_ r: RouteweilerResponse) -> [String: Any] {
        var headers: [String: String] = [:]
        for f in r.headerFields { headers[f.name.canonicalName] = f.value }
        return ["status": Int(r.status.code), "headers": headers, "body": r.text,
                "payment": r.payment.map(paymentObject) ?? NSNull(), "requestId": r.requestID]
    }
}
