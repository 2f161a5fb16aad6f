import Foundation

/// An ordered pair of currencies, e.g. `usd->eur`.
public struct CurrencyPair: Hashable, Sendable, CustomStringConvertible {
    public var from: Currency
    public var to: Currency
    public init(_ from: Currency, _ to: Currency) {
        self.from = from
        self.to = to
    }
    public var description: String { "\(from.code)->\(to.code)" }
}

/// Fixed rates for tests and offline use; every rate it hands out has quality `static`, so traces say so.
///
/// ```swift
/// let fmv = StaticFmvProvider()                                   // 1 BTC = 60 000 USD
/// let offline = StaticFmvProvider(fxRates: StaticFmvProvider.referenceOfflineFX)
/// ```
///
/// It never derives a rate it was not given (no inverse, no triangulation): a missing entry throws
/// ``FmvUnavailableError``.
public struct StaticFmvProvider: FmvProvider {
    /// Price of **one bitcoin** in major units of each currency. Default `[usd: 60000]`.
    public var btcPrices: [Currency: Decimal]
    /// Major units of `to` per major unit of `from`.
    public var fxRates: [CurrencyPair: Decimal]
    /// The timestamp put on every rate.
    public var now: @Sendable () -> Date

    /// The reference implementation's offline FX table (SPEC §10.6.1), for explicit offline use only.
    public static let referenceOfflineFX: [CurrencyPair: Decimal] = [
        CurrencyPair(.usd, .eur): Decimal(string: "0.92")!,
        CurrencyPair(.eur, .usd): Decimal(string: "1.087")!,
        CurrencyPair(.usd, .gbp): Decimal(string: "0.79")!,
        CurrencyPair(.gbp, .usd): Decimal(string: "1.266")!,
        CurrencyPair(.usd, .jpy): Decimal(string: "153.5")!,
        CurrencyPair(.jpy, .usd): Decimal(string: "0.00652")!,
        CurrencyPair(.eur, .gbp): Decimal(string: "0.858")!,
        CurrencyPair(.gbp, .eur): Decimal(string: "1.166")!,
    ]

    public init(btcPrices: [Currency: Decimal] = [.usd: 60_000], fxRates: [CurrencyPair: Decimal] = [:],
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.btcPrices = btcPrices
        self.fxRates = fxRates
        self.now = now
    }

    /// `btcPrices[currency] / 100 000 000`, quality `static`.
    /// - Throws: ``FmvUnavailableError`` when no (positive) price is configured for `currency`.
    public func btcRate(in currency: Currency) async throws -> FmvRate {
        guard let price = btcPrices[currency], price > 0 else {
            throw FmvUnavailableError(code: .unsupportedPair, "static FMV table has no BTC price in \(currency.code)")
        }
        return FmvRate(base: .satoshi, quote: currency, rate: satoshiRate(btcPrice: price), fetchedAt: now(),
                       quality: .staticTable, source: "static")
    }

    /// `fxRates[from->to]` (1 for a currency with itself), quality `static`.
    /// - Throws: ``FmvUnavailableError`` when the pair is not in the table.
    public func fiatRate(from: Currency, to: Currency) async throws -> FmvRate {
        let rate: Decimal
        if from == to {
            rate = 1
        } else if let r = fxRates[CurrencyPair(from, to)], r > 0 {
            rate = r
        } else {
            throw FmvUnavailableError(code: .unsupportedPair, "static FMV table has no rate \(from.code)->\(to.code)")
        }
        return FmvRate(base: .currency(from), quote: to, rate: rate, fetchedAt: now(), quality: .staticTable,
                       source: "static")
    }
}
