import AsyncHTTPClient
import Foundation

/// Bitcoin prices from CoinGecko's `simple/price` endpoint (SPEC §10.6.3); the default FMV source for L402.
///
/// Every answer is cached per currency for ``Configuration/cacheTTL`` (60 s). When a refresh fails the cached
/// price is still used while it is younger than ``Configuration/maxStaleness`` (10 min) and refused after that,
/// so a stale price never pays. Prices are parsed from the JSON number text into `Decimal` (no `Double`).
///
/// ```swift
/// let coingecko = CoinGeckoProvider()
/// let perSat = try await coingecko.btcRate(in: .usd)   // quality coingecko_simple
/// ```
///
/// The provider borrows an `HTTPClient` (by default `HTTPClient.shared`) and never shuts it down, so it has no
/// lifecycle of its own.
public final class CoinGeckoProvider: FmvProvider {
    /// Settings; the defaults match the live service.
    public struct Configuration: Sendable {
        /// Scheme, host and optional port, without a trailing slash. Default `https://api.coingecko.com`.
        public var baseURL = "https://api.coingecko.com"
        /// Deadline for one request, connection included. Default 5 s.
        public var timeout: Duration = .seconds(5)
        /// How long a fetched price is used without asking again. Default 60 s.
        public var cacheTTL: Duration = .seconds(60)
        /// How old a price may get (when refreshes fail) before it is refused. Default 10 min.
        public var maxStaleness: Duration = .seconds(600)
        /// Default `routeweiler/fmv-provider`.
        public var userAgent = "routeweiler/fmv-provider"
        /// Largest accepted response body. Default 64 KiB.
        public var maxResponseBytes = 64 * 1024
        public init() {}
    }

    public let configuration: Configuration
    private let http: RateHTTP
    private let cache: RateCache<Currency, Decimal>
    private let now: @Sendable () -> Date

    /// Creates a provider.
    /// - Parameters:
    ///   - httpClient: A client to borrow (never shut down by the provider). Default `HTTPClient.shared`.
    ///   - now: The clock for the cache (inject one in tests).
    public init(configuration: Configuration = .init(), httpClient: HTTPClient = .shared,
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.configuration = configuration
        self.now = now
        self.http = RateHTTP(client: httpClient, timeout: configuration.timeout, userAgent: configuration.userAgent,
                             maxResponseBytes: configuration.maxResponseBytes, serviceName: "CoinGecko")
        let ttl = configuration.cacheTTL.timeInterval
        self.cache = RateCache(maxStaleness: configuration.maxStaleness, now: now) { fetchedAt, now in
            now.timeIntervalSince(fetchedAt) < ttl
        }
    }

    /// The value of one satoshi in `currency` (`price of 1 BTC / 100 000 000`), quality `coingecko_simple`.
    /// - Throws: ``FmvUnavailableError`` when CoinGecko fails, is slow, answers garbage or a non-positive price,
    ///   and no cached price younger than the staleness limit exists.
    public func btcRate(in currency: Currency) async throws -> FmvRate {
        let (price, fetchedAt) = try await cache.value(for: currency, label: "CoinGecko BTC/\(currency.code)") {
            try await fetchPrice(currency)
        }
        return FmvRate(base: .satoshi, quote: currency, rate: satoshiRate(btcPrice: price), fetchedAt: fetchedAt,
                       quality: .coingeckoSimple, source: "coingecko")
    }

    /// CoinGecko only prices bitcoin: a currency with itself is 1, any other pair throws.
    /// - Throws: ``FmvUnavailableError`` (`unsupported_pair`) for a cross pair.
    public func fiatRate(from: Currency, to: Currency) async throws -> FmvRate {
        if from == to { return identityRate(from, at: now(), source: "coingecko") }
        throw FmvUnavailableError(code: .unsupportedPair,
                                  "CoinGecko provider does not quote fiat pairs (\(from.code)->\(to.code)); use ECBProvider")
    }

    /// Forgets cached prices.
    public func clearCache() { cache.removeAll() }

    private func fetchPrice(_ currency: Currency) async throws(FmvUnavailableError) -> Decimal {
        let url = "\(configuration.baseURL)/api/v3/simple/price?ids=bitcoin&vs_currencies=\(currency.code)"
        let body = try await http.get(url, accept: "application/json")
        return try Self.parsePrice(body, currency: currency)
    }

    /// Parses `{"bitcoin":{"<cur>": <number>}}`, keeping the number's digits exactly.
    static func parsePrice(_ body: [UInt8], currency: Currency) throws(FmvUnavailableError) -> Decimal {
        let parsed: SimplePrice
        do {
            parsed = try JSONDecoder().decode(SimplePrice.self, from: Data(body))
        } catch {
            throw FmvUnavailableError(code: .badResponse,
                                      "CoinGecko answered something that is not a simple/price JSON object", cause: error)
        }
        guard let bitcoin = parsed.bitcoin else {
            throw FmvUnavailableError(code: .badResponse, "CoinGecko answer has no 'bitcoin' entry")
        }
        guard let value = bitcoin.values[currency.code] else {
            throw FmvUnavailableError(code: .badResponse,
                                      "CoinGecko answer has no bitcoin price in '\(currency.code)'")
        }
        guard let price = value, price > 0 else {
            throw FmvUnavailableError(code: .badResponse,
                                      "CoinGecko bitcoin price in '\(currency.code)' is not a positive number")
        }
        return price
    }

    /// `{"bitcoin": {"usd": 65000.12, ...}}`; values that are not numbers decode as `nil`.
    private struct SimplePrice: Decodable {
        var bitcoin: Prices?

        struct Prices: Decodable {
            var values: [String: Decimal?]
            init(from decoder: any Decoder) throws {
                let c = try decoder.container(keyedBy: AnyKey.self)
                var values: [String: Decimal?] = [:]
                for key in c.allKeys { values[key.stringValue] = try? c.decode(Decimal.self, forKey: key) }
                self.values = values
            }
        }
    }
}

/// A coding key for any string.
struct AnyKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
