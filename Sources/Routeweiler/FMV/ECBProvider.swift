import AsyncHTTPClient
import Foundation

#if canImport(FoundationXML)
import FoundationXML
#endif

/// Fiat exchange rates from the European Central Bank's daily reference rates (SPEC §10.6.3).
///
/// Fetches `eurofxref-daily.xml` (units of each currency per 1 EUR), keeps the table for the rest of the UTC
/// calendar day, and computes any pair as `perEUR[to] / perEUR[from]` with quality `fx_leg`. When a refresh fails
/// the previous table is used while it is younger than ``Configuration/maxStaleness`` and refused after that.
///
/// ```swift
/// let ecb = ECBProvider()
/// let r = try await ecb.fiatRate(from: .jpy, to: .usd)   // ≈ 0.0065 USD per JPY
/// ```
///
/// Like ``CoinGeckoProvider`` it borrows an `HTTPClient` (default `HTTPClient.shared`) and never shuts it down.
public final class ECBProvider: FmvProvider {
    /// Settings; the defaults match the live service.
    public struct Configuration: Sendable {
        /// Scheme, host and optional port, without a trailing slash. Default `https://www.ecb.europa.eu`.
        public var baseURL = "https://www.ecb.europa.eu"
        /// Deadline for one request. Default 5 s.
        public var timeout: Duration = .seconds(5)
        /// How old a table may get (when refreshes fail) before it is refused. Default 4 days: the ECB publishes
        /// on working days only, so a long weekend must not stop payments, but a week-old rate does.
        public var maxStaleness: Duration = .seconds(4 * 86_400)
        /// Default `routeweiler/ecb-provider`.
        public var userAgent = "routeweiler/ecb-provider"
        /// Largest accepted response body. Default 256 KiB.
        public var maxResponseBytes = 256 * 1024
        public init() {}
    }

    /// One parsed daily file: units per 1 EUR (EUR itself included as 1) and the file's reference date.
    struct Table: Sendable {
        var perEUR: [String: Decimal]
        var referenceDate: String?
    }

    /// The XML namespace of the `Cube` elements.
    static let namespace = "http://www.ecb.int/vocabulary/2002-08-01/eurofxref"

    public let configuration: Configuration
    private let http: RateHTTP
    private let cache: RateCache<String, Table>
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
                             maxResponseBytes: configuration.maxResponseBytes, serviceName: "ECB")
        self.cache = RateCache(maxStaleness: configuration.maxStaleness, now: now) { fetchedAt, now in
            Self.utcDay(fetchedAt) == Self.utcDay(now)
        }
    }

    /// The ECB does not price bitcoin.
    /// - Throws: ``FmvUnavailableError`` (`unsupported_pair`) always.
    public func btcRate(in currency: Currency) async throws -> FmvRate {
        throw FmvUnavailableError(code: .unsupportedPair,
                                  "ECB provider does not quote bitcoin (sats->\(currency.code)); use CoinGeckoProvider")
    }

    /// The value of one major unit of `from` in major units of `to`, quality `fx_leg`.
    /// - Throws: ``FmvUnavailableError`` when the ECB file cannot be fetched or parsed (and no table younger than
    ///   the staleness limit is cached), or when the ECB does not publish one of the currencies.
    public func fiatRate(from: Currency, to: Currency) async throws -> FmvRate {
        if from == to { return identityRate(from, at: now(), source: "ecb") }
        let (table, fetchedAt) = try await cache.value(for: "daily", label: "ECB \(from.code)->\(to.code)") {
            try await fetchTable()
        }
        guard let src = table.perEUR[from.code] else {
            throw FmvUnavailableError(code: .unsupportedPair, "ECB publishes no rate for \(from.code.uppercased())")
        }
        guard let dst = table.perEUR[to.code] else {
            throw FmvUnavailableError(code: .unsupportedPair, "ECB publishes no rate for \(to.code.uppercased())")
        }
        let source = table.referenceDate.map { "ecb:\($0)" } ?? "ecb"
        return FmvRate(base: .currency(from), quote: to, rate: dst / src, fetchedAt: fetchedAt, quality: .fxLeg,
                       source: source)
    }

    /// Forgets the cached table.
    public func clearCache() { cache.removeAll() }

    private func fetchTable() async throws(FmvUnavailableError) -> Table {
        let body = try await http.get("\(configuration.baseURL)/stats/eurofxref/eurofxref-daily.xml",
                                      accept: "application/xml, text/xml")
        return try Self.parse(body)
    }

    /// Parses the daily XML: every `Cube` element in the eurofxref namespace with `currency` and `rate` attributes.
    /// Malformed entries are skipped; fewer than two valid ones is an error.
    static func parse(_ body: [UInt8]) throws(FmvUnavailableError) -> Table {
        let delegate = CubeCollector()
        let parser = XMLParser(data: Data(body))
        parser.shouldProcessNamespaces = true
        parser.delegate = delegate
        guard parser.parse() else {
            let reason = parser.parserError.map { "\($0)" } ?? "parse error"
            throw FmvUnavailableError(code: .badResponse,
                                      "ECB XML fetch failed: the answer is not well-formed XML (\(reason))")
        }
        guard delegate.perEUR.count >= 2 else {
            throw FmvUnavailableError(code: .badResponse, "ECB XML fetch failed: no valid exchange rates")
        }
        var perEUR = delegate.perEUR
        perEUR["eur"] = 1
        return Table(perEUR: perEUR, referenceDate: delegate.referenceDate)
    }

    static func utcDay(_ date: Date) -> Int { Int((date.timeIntervalSince1970 / 86_400).rounded(.down)) }

    /// A positive decimal written as digits with at most one point (`1.0856`, `163.45`).
    static func parseRate(_ text: String) -> Decimal? {
        var sawDigit = false, sawPoint = false
        for ch in text.utf8 {
            switch ch {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): sawDigit = true
            case UInt8(ascii: "."): if sawPoint { return nil } else { sawPoint = true }
            default: return nil
            }
        }
        guard sawDigit, let d = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")), d > 0 else {
            return nil
        }
        return d
    }

    private final class CubeCollector: NSObject, XMLParserDelegate {
        var perEUR: [String: Decimal] = [:]
        var referenceDate: String?

        func parser(_ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?,
                    qualifiedName qName: String?, attributes attributeDict: [String: String] = [:]) {
            let local = elementName.split(separator: ":").last.map(String.init) ?? elementName
            guard local == "Cube", namespaceURI == ECBProvider.namespace else { return }
            if let time = attributeDict["time"], referenceDate == nil { referenceDate = time }
            guard let code = attributeDict["currency"], let rateText = attributeDict["rate"] else { return }
            let lower = code.lowercased()
            guard lower.count == 3, lower.allSatisfy({ $0.isASCII && $0.isLetter }),
                let rate = ECBProvider.parseRate(rateText.trimmingCharacters(in: .whitespaces))
            else { return }
            perEUR[lower] = rate
        }
    }
}
