import Foundation
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A local stand-in for CoinGecko and the ECB over real HTTP on 127.0.0.1 (port 0), answering with the real
/// services' JSON and XML shapes, with scriptable faults.
///
/// Routes: `GET /api/v3/simple/price?ids=bitcoin&vs_currencies=usd,eur` → `{"bitcoin":{"usd":65000.12}}`, and
/// `GET /stats/eurofxref/eurofxref-daily.xml` → the ECB daily envelope.
///
/// ```swift
/// try await FakeRatesServer.withServer { server in
///     var config = CoinGeckoProvider.Configuration()
///     config.baseURL = server.baseURL
///     server.configure { $0.coinGecko = .down }
/// }
/// ```
public final class FakeRatesServer: Sendable {
    /// How one endpoint answers.
    public enum Mode: Sendable, Hashable {
        /// The real shape with the configured data.
        case normal
        /// HTTP 500 with a short text body.
        case down
        /// Waits this long before answering normally (use more than the client's timeout).
        case slow(Duration)
        /// HTTP 200 with this body verbatim.
        case garbage(String)
    }

    /// The scriptable state.
    public struct Configuration: Sendable {
        /// CoinGecko's behaviour.
        public var coinGecko: Mode = .normal
        /// The ECB's behaviour.
        public var ecb: Mode = .normal
        /// Bitcoin prices as JSON number text, by lower-case currency: `["usd": "65000.12"]`.
        public var btcPrices: [String: String] = ["usd": "65000.12", "eur": "60000", "jpy": "10000000", "gbp": "51000.5"]
        /// ECB rates as text, by upper-case currency (units per 1 EUR).
        public var ecbRates: [(currency: String, rate: String)] = [
            ("USD", "1.0856"), ("JPY", "169.04"), ("GBP", "0.8558"), ("CHF", "0.9833"),
        ]
        /// The `time` attribute of the ECB file.
        public var ecbDate = "2024-05-17"
        public init() {}
    }

    /// What the server has seen.
    public struct Stats: Sendable, Hashable {
        /// Requests to the CoinGecko route.
        public var coinGeckoRequests = 0
        /// Requests to the ECB route.
        public var ecbRequests = 0
        /// `User-Agent` of every request, in order.
        public var userAgents: [String] = []
        /// Query strings of CoinGecko requests, in order.
        public var coinGeckoQueries: [String] = []
    }

    private let state: Mutex<(config: Configuration, stats: Stats, port: Int?)>
    private let server = LocalHTTPServer()

    /// Creates a server; call ``start()`` (or use ``withServer(configuration:_:)``).
    public init(configuration: Configuration = .init()) {
        state = Mutex((configuration, Stats(), nil))
    }

    /// The bound port; valid after ``start()``.
    public var port: Int { state.withLock { $0.port ?? 0 } }
    /// `http://127.0.0.1:<port>`: the `baseURL` for both providers.
    public var baseURL: String { "http://127.0.0.1:\(port)" }
    public var stats: Stats { state.withLock { $0.stats } }
    /// Changes the behaviour of the running server.
    public func configure(_ change: (inout Configuration) -> Void) { state.withLock { change(&$0.config) } }

    /// Runs `body` with a started server and stops it afterwards.
    public static func withServer<R: Sendable>(
        configuration: Configuration = .init(), _ body: (FakeRatesServer) async throws -> R
    ) async throws -> R {
        let server = FakeRatesServer(configuration: configuration)
        return try await withStarted(server, start: server.start, shutdown: server.shutdown, body)
    }

    /// Starts listening on 127.0.0.1 (port 0) and returns once the port is known.
    public func start() async throws {
        let router = Router()
        router.get("/api/v3/simple/price") { request, _ in try await self.simplePrice(request) }
        router.get("/stats/eurofxref/eurofxref-daily.xml") { request, _ in try await self.ecbDaily(request) }
        let port = try await server.start(router, label: "fake-rates")
        state.withLock { $0.port = port }
    }

    /// Stops the server.
    public func shutdown() async { await server.shutdown() }

    private func simplePrice(_ request: Request) async throws -> Response {
        let query = request.uri.query ?? ""
        let (mode, prices) = state.withLock { s -> (Mode, [String: String]) in
            s.stats.coinGeckoRequests += 1
            s.stats.userAgents.append(request.headers[.userAgent] ?? "")
            s.stats.coinGeckoQueries.append(query)
            return (s.config.coinGecko, s.config.btcPrices)
        }
        if let early = try await fault(mode) { return early }
        let ids = (request.uri.queryParameters.get("ids") ?? "").split(separator: ",").map(String.init)
        let currencies = (request.uri.queryParameters.get("vs_currencies") ?? "").lowercased().split(separator: ",")
        guard ids.contains("bitcoin") else { return Self.response(.ok, "{}", type: "application/json") }
        let entries = currencies.compactMap { c in prices[String(c)].map { "\"\(c)\":\($0)" } }
        return Self.response(.ok, "{\"bitcoin\":{\(entries.joined(separator: ","))}}", type: "application/json")
    }

    private func ecbDaily(_ request: Request) async throws -> Response {
        let (mode, rates, date) = state.withLock { s -> (Mode, [(currency: String, rate: String)], String) in
            s.stats.ecbRequests += 1
            s.stats.userAgents.append(request.headers[.userAgent] ?? "")
            return (s.config.ecb, s.config.ecbRates, s.config.ecbDate)
        }
        if let early = try await fault(mode) { return early }
        return Self.response(.ok, Self.ecbXML(rates: rates, date: date), type: "text/xml")
    }

    private func fault(_ mode: Mode) async throws -> Response? {
        switch mode {
        case .normal: return nil
        case .down: return Self.response(.internalServerError, "internal error", type: "text/plain")
        case .slow(let delay):
            try await Task.sleep(for: delay)
            return nil
        case .garbage(let body): return Self.response(.ok, body, type: "application/json")
        }
    }

    /// The ECB daily file as the ECB writes it.
    public static func ecbXML(rates: [(currency: String, rate: String)], date: String) -> String {
        let cubes = rates.map { "\t\t\t<Cube currency='\($0.currency)' rate='\($0.rate)'/>" }.joined(separator: "\n")
        return """
            <?xml version="1.0" encoding="UTF-8"?>
            <gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01" xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
            \t<gesmes:subject>Reference rates</gesmes:subject>
            \t<gesmes:Sender>
            \t\t<gesmes:name>European Central Bank</gesmes:name>
            \t</gesmes:Sender>
            \t<Cube>
            \t\t<Cube time='\(date)'>
            \(cubes)
            \t\t</Cube>
            \t</Cube>
            </gesmes:Envelope>
            """
    }

    private static func response(_ status: HTTPResponse.Status, _ body: String, type: String) -> Response {
        Response(status: status, headers: [.contentType: type], body: .init(byteBuffer: ByteBuffer(string: body)))
    }
}

/// The rates server could not start.
public struct FakeRatesServerError: Error, Sendable {
    public var message: String
}
