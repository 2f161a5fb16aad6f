import Foundation

/// What a rate prices: one satoshi, or one major unit of a currency.
public enum FmvAsset: Hashable, Sendable, CustomStringConvertible {
    /// One satoshi (10⁻⁸ BTC).
    case satoshi
    /// One major unit (1 USD, 1 JPY) of a currency.
    case currency(Currency)

    /// `sats` or the lower-case ISO code, as in SPEC snapshot keys (`sats->usd`, `eur->usd`).
    public var description: String {
        switch self {
        case .satoshi: "sats"
        case .currency(let c): c.code
        }
    }
}

/// A fair-market exchange rate: one unit of ``base`` is worth ``rate`` **major** units of ``quote``.
///
/// For BTC the base is one satoshi (`sats->usd` ≈ 0.00065); for fiat it is one major unit (`jpy->usd` ≈ 0.0065).
public struct FmvRate: Sendable, Hashable, CustomStringConvertible {
    /// What is priced.
    public var base: FmvAsset
    /// The currency the price is in.
    public var quote: Currency
    /// Major units of ``quote`` per unit of ``base``; always positive.
    public var rate: Decimal
    /// When the rate was fetched from its source (for static tables: when it was handed out).
    public var fetchedAt: Date
    /// How trustworthy the rate is (`coingecko_simple`, `fx_leg`, `static`).
    public var quality: FmvQuality
    /// Where the rate came from (`coingecko`, `ecb`, `static`), for traces.
    public var source: String

    public init(base: FmvAsset, quote: Currency, rate: Decimal, fetchedAt: Date, quality: FmvQuality, source: String) {
        self.base = base
        self.quote = quote
        self.rate = rate
        self.fetchedAt = fetchedAt
        self.quality = quality
        self.source = source
    }

    /// The SPEC snapshot key, e.g. `sats->usd`.
    public var key: String { "\(base)->\(quote.code)" }

    public var description: String { "\(key)=\(rate) (\(quality), \(source))" }
}

/// A source of fair-market values (SPEC §10.6.3).
///
/// Implementations throw ``FmvUnavailableError`` when they cannot answer — never a guessed or default value.
/// Shipped: ``CoinGeckoProvider`` (BTC), ``ECBProvider`` (fiat), ``StaticFmvProvider`` (tests and offline use) and
/// ``CombinedFmvProvider`` (BTC from one, fiat from another).
///
/// ```swift
/// let fmv = CombinedFmvProvider(btc: CoinGeckoProvider(), fiat: ECBProvider())
/// let perSat = try await fmv.btcRate(in: .usd)      // ≈ 0.00065 USD per sat
/// ```
public protocol FmvProvider: Sendable {
    /// The value of **one satoshi** in major units of `currency`.
    /// - Throws: ``FmvUnavailableError`` when no fresh rate is available.
    func btcRate(in currency: Currency) async throws -> FmvRate

    /// The value of one major unit of `from` in major units of `to`.
    /// - Throws: ``FmvUnavailableError`` when no fresh rate is available.
    func fiatRate(from: Currency, to: Currency) async throws -> FmvRate
}

extension FmvProvider {
    /// Fetches the rate a conversion needs (see ``FmvConverter/requiredRate(for:in:)``).
    public func rate(for key: FmvRateKey) async throws -> FmvRate {
        switch key.base {
        case .satoshi: try await btcRate(in: key.quote)
        case .currency(let c): try await fiatRate(from: c, to: key.quote)
        }
    }
}

/// Identifies a rate: its base asset and quote currency.
public struct FmvRateKey: Hashable, Sendable, CustomStringConvertible {
    public var base: FmvAsset
    public var quote: Currency
    public init(base: FmvAsset, quote: Currency) {
        self.base = base
        self.quote = quote
    }
    /// `sats->usd`, `eur->usd`.
    public var description: String { "\(base)->\(quote.code)" }
}

/// Answers BTC questions from one provider and fiat questions from another (e.g. CoinGecko + ECB).
public struct CombinedFmvProvider: FmvProvider {
    public let btc: any FmvProvider
    public let fiat: any FmvProvider
    public init(btc: any FmvProvider, fiat: any FmvProvider) {
        self.btc = btc
        self.fiat = fiat
    }
    public func btcRate(in currency: Currency) async throws -> FmvRate { try await btc.btcRate(in: currency) }
    public func fiatRate(from: Currency, to: Currency) async throws -> FmvRate {
        try await fiat.fiatRate(from: from, to: to)
    }
}

/// The identity rate (1) for a currency with itself.
func identityRate(_ c: Currency, at now: Date, source: String) -> FmvRate {
    FmvRate(base: .currency(c), quote: c, rate: 1, fetchedAt: now, quality: .stablecoinPeg, source: source)
}

/// The value of one satoshi from the price of one bitcoin: `price / 100 000 000`, exactly, by moving the decimal
/// exponent (a Decimal division costs microseconds on every quote).
func satoshiRate(btcPrice price: Decimal) -> Decimal {
    guard price.isFinite, !price.isZero else { return price / 100_000_000 }
    return Decimal(sign: price.sign, exponent: price.exponent - 8, significand: price.significand)
}
