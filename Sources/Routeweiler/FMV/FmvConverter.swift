import Foundation

/// What a rail's `price.currency` string denotes, for valuation.
public enum RailAsset: Hashable, Sendable, CustomStringConvertible {
    /// Satoshis (`btc-lightning`, or anything mentioning `sats`/`btc`).
    case satoshi
    /// Minor units of a fiat currency (`usd-fiat`: cents, `jpy-fiat`: yen).
    case fiat(Currency)
    /// Base units of a pegged stablecoin (`eip155:8453/erc20:0x8335…`, `0x20c0…-tip20`).
    case stablecoin(PeggedStablecoin)

    /// Classifies a `NormalizedChallenge.Price.currency` string (SPEC §3.1 formats, case-insensitive).
    ///
    /// An ERC-20 currency whose network prefix names another network than the table's token is refused
    /// (the same address on another chain is another contract). TIP-20 currencies carry no network and are
    /// looked up by address only, as in SPEC §10.6.1.
    /// - Throws: ``FmvUnavailableError`` (`unknown_asset`) for anything else.
    public init(parsing currency: String) throws(FmvUnavailableError) {
        // Lightning's currency string on every L402 call: skip the string searches below.
        if currency == "btc-lightning" || currency == "sats" {
            self = .satoshi
            return
        }
        let lower = currency.trimmingCharacters(in: .whitespaces).lowercased()
        if lower.hasSuffix("-fiat") {
            let code = String(lower.dropLast("-fiat".count))
            guard let c = try? Currency(code: code) else {
                throw FmvUnavailableError(code: .unknownAsset, "unknown currency '\(code)' in '\(currency)'")
            }
            self = .fiat(c)
            return
        }
        if let range = lower.range(of: "/erc20:", options: .backwards) {
            let network = String(lower[..<range.lowerBound])
            let address = String(lower[range.upperBound...])
            guard let token = PeggedStablecoin.byAddress(address) else {
                throw FmvUnavailableError(code: .unknownAsset, "no fair-market value for unknown ERC-20 token '\(currency)'")
            }
            if !network.isEmpty, !KnownNetworks.same(network, token.network) {
                throw FmvUnavailableError(
                    code: .unknownAsset,
                    "ERC-20 token \(address) is \(token.symbol) on \(token.network), not on '\(network)': no fair-market value")
            }
            self = .stablecoin(token)
            return
        }
        if lower.hasSuffix("-tip20") {
            guard let token = PeggedStablecoin.byAddress(String(lower.dropLast("-tip20".count))) else {
                throw FmvUnavailableError(code: .unknownAsset, "no fair-market value for unknown TIP-20 token '\(currency)'")
            }
            self = .stablecoin(token)
            return
        }
        if lower.contains("sats") || lower.contains("btc") {
            self = .satoshi
            return
        }
        throw FmvUnavailableError(code: .unknownAsset, "no fair-market value for currency '\(currency)'")
    }

    public var description: String {
        switch self {
        case .satoshi: "sats"
        case .fiat(let c): "\(c.code)-fiat"
        case .stablecoin(let t): t.description
        }
    }
}

/// The value of one rail amount in envelope (or policy) currency minor units.
///
/// ``capMinorUnits`` is what cap checks (budget draws, `max_per_call`) use: buffered by 5 % on every conversion
/// that needs a market rate, and always rounded **up** (in the payer's favour). ``fairMinorUnits`` is the exact,
/// unbuffered value; ``traceAmountEnvelope`` is the same as a `Double` for the trace only.
public struct FmvQuote: Sendable, Hashable {
    /// The rail amount in its base unit (sats, token base units, fiat minor units).
    public var amountNative: UInt64
    /// The rail's currency string as given.
    public var nativeCurrency: String
    /// What the currency string denotes.
    public var asset: RailAsset
    /// The currency of ``capMinorUnits``.
    public var envelopeCurrency: Currency
    /// Buffered, rounded-up value in minor units: compare this with caps.
    public var capMinorUnits: Int64
    /// Exact value in minor units, without buffer or rounding.
    public var fairMinorUnits: Decimal
    /// The market rate used; `nil` for identity and same-peg conversions.
    public var rate: FmvRate?
    /// `stablecoin_peg` for identity and same-peg conversions, else the rate's quality.
    public var quality: FmvQuality
    /// `identity`, `peg`, or the rate's source (`coingecko`, `ecb:2024-05-17`, `static`).
    public var source: String
    /// Whether the 5 % buffer was applied.
    public var bufferApplied: Bool

    /// ``capMinorUnits`` as money.
    public var capAmount: Money { Money(capMinorUnits, envelopeCurrency) }

    /// The trace's `amountEnvelope`: the unbuffered value in **minor** units of ``envelopeCurrency``, for every
    /// asset. (The reference mixed minor units for fiat with major units for crypto, SPEC §10.6.2/§16.7; here
    /// 5 000 sats at 0.00065 USD/sat is `325.0` cents, not `3.25`.) Never used for money decisions.
    public var traceAmountEnvelope: Double { FmvConverter.double(fairMinorUnits) }
}

/// Converts rail amounts into envelope minor units for cap checks (SPEC §10.6.1), with the reference's bugs fixed.
///
/// Pure: no I/O and no clock. Ask ``requiredRate(for:in:)`` which rate a price needs, fetch it from an
/// ``FmvProvider``, then call ``quote(amount:currency:in:rate:)`` — or let
/// ``quote(_:in:provider:)`` do both.
///
/// | rail currency | rule |
/// |---|---|
/// | `btc-lightning` (sats) | `ceil(sats × rate(sats→env) × 1.05 × minorPerMajor(env))` |
/// | `<iso>-fiat`, same currency | identity |
/// | `<iso>-fiat`, other currency | `ceil(amount / minorPerMajor(src) × rate(src→env) × 1.05 × minorPerMajor(env))` |
/// | pegged stablecoin, peg = env | `ceil(amount × minorPerMajor(env) / 10^decimals)`, exact integers, no buffer |
/// | pegged stablecoin, other peg | `ceil(amount / 10^decimals × rate(peg→env) × 1.05 × minorPerMajor(env))` |
///
/// Fix of SPEC §16.7: cross-fiat conversions respect each currency's minor-unit scale, so 500 JPY is ≈ 343 US
/// cents (at 0.00652) where the reference computed 4. All arithmetic is `Decimal` with explicit rounding up.
public struct FmvConverter: Sendable {
    /// The 5 % safety buffer applied to every conversion that uses a market rate.
    public static let defaultBuffer = Decimal(string: "1.05")!

    /// The multiplier applied to market-rate conversions (≥ 1).
    public var buffer: Decimal

    public init(buffer: Decimal = FmvConverter.defaultBuffer) {
        self.buffer = buffer
    }

    /// The market rate needed to value `currency` in `envelope`, or `nil` when none is needed (identity, same peg).
    /// - Throws: ``FmvUnavailableError`` for an unknown asset.
    public func requiredRate(for currency: String, in envelope: Currency) throws(FmvUnavailableError) -> FmvRateKey? {
        switch try RailAsset(parsing: currency) {
        case .satoshi: return FmvRateKey(base: .satoshi, quote: envelope)
        case .fiat(let c): return c == envelope ? nil : FmvRateKey(base: .currency(c), quote: envelope)
        case .stablecoin(let t): return t.peg == envelope ? nil : FmvRateKey(base: .currency(t.peg), quote: envelope)
        }
    }

    /// Values `amount` of `currency` in minor units of `envelope`.
    /// - Parameter rate: The rate named by ``requiredRate(for:in:)``; ignored when none is needed.
    /// - Throws: ``FmvUnavailableError`` for an unknown asset, a missing or mismatched rate, or an overflow.
    public func quote(amount: UInt64, currency: String, in envelope: Currency, rate: FmvRate?)
        throws(FmvUnavailableError) -> FmvQuote
    {
        let asset = try RailAsset(parsing: currency)
        let mpm = Decimal(envelope.minorUnitsPerMajor)
        func make(cap: Int64, fair: Decimal, rate: FmvRate?, quality: FmvQuality, source: String, buffered: Bool)
            -> FmvQuote
        {
            FmvQuote(amountNative: amount, nativeCurrency: currency, asset: asset, envelopeCurrency: envelope,
                     capMinorUnits: cap, fairMinorUnits: fair, rate: rate, quality: quality, source: source,
                     bufferApplied: buffered)
        }
        func viaRate(_ key: FmvRateKey, majorUnits: Decimal) throws(FmvUnavailableError) -> FmvQuote {
            let r = try checked(rate, key: key)
            let fair = majorUnits * r.rate * mpm
            let cap = try Self.roundUp(fair * buffer, what: "\(amount) \(currency)")
            return make(cap: cap, fair: fair, rate: r, quality: r.quality, source: r.source, buffered: true)
        }
        switch asset {
        case .satoshi:
            return try viaRate(FmvRateKey(base: .satoshi, quote: envelope), majorUnits: Decimal(amount))
        case .fiat(let c) where c == envelope:
            guard let cap = Int64(exactly: amount) else {
                throw FmvUnavailableError(code: .overflow, "\(amount) \(currency) does not fit a cap check")
            }
            return make(cap: cap, fair: Decimal(amount), rate: nil, quality: .stablecoinPeg, source: "identity",
                        buffered: false)
        case .fiat(let c):
            return try viaRate(FmvRateKey(base: .currency(c), quote: envelope),
                               majorUnits: Decimal(amount) / Decimal(c.minorUnitsPerMajor))
        case .stablecoin(let t) where t.peg == envelope:
            let scale = Self.powerOfTen(t.decimals)
            let (hi, lo) = amount.multipliedFullWidth(by: UInt64(envelope.minorUnitsPerMajor))
            guard let scale, hi < scale else {
                throw FmvUnavailableError(code: .overflow, "\(amount) \(currency) does not fit a cap check")
            }
            let (q, r) = scale.dividingFullWidth((hi, lo))
            let up = r == 0 ? q : q + 1
            guard let cap = Int64(exactly: up) else {
                throw FmvUnavailableError(code: .overflow, "\(amount) \(currency) does not fit a cap check")
            }
            let fair = Decimal(amount) * mpm / Decimal(scale)
            return make(cap: cap, fair: fair, rate: nil, quality: .stablecoinPeg, source: "peg", buffered: false)
        case .stablecoin(let t):
            guard let scale = Self.powerOfTen(t.decimals) else {
                throw FmvUnavailableError(code: .overflow, "\(t.symbol) has too many decimals")
            }
            return try viaRate(FmvRateKey(base: .currency(t.peg), quote: envelope),
                               majorUnits: Decimal(amount) / Decimal(scale))
        }
    }

    /// Fetches the needed rate from `provider` and quotes.
    /// - Throws: ``FmvUnavailableError`` (from the converter or the provider), or cancellation.
    public func quote(amount: UInt64, currency: String, in envelope: Currency, provider: any FmvProvider)
        async throws -> FmvQuote
    {
        let rate: FmvRate? =
            if let key = try requiredRate(for: currency, in: envelope) { try await provider.rate(for: key) } else { nil }
        return try quote(amount: amount, currency: currency, in: envelope, rate: rate)
    }

    /// Quotes a challenge's price (see ``quote(amount:currency:in:provider:)``).
    public func quote(_ price: NormalizedChallenge.Price, in envelope: Currency, provider: any FmvProvider)
        async throws -> FmvQuote
    {
        try await quote(amount: price.amount, currency: price.currency, in: envelope, provider: provider)
    }

    /// The trace's `amountEnvelope` and `fmvQuality`: never throws; `(nil, unavailable)` when no value can be given.
    /// Minor units throughout (see ``FmvQuote/traceAmountEnvelope``).
    public func traceAmount(amount: UInt64, currency: String, in envelope: Currency, rate: FmvRate?)
        -> (amountEnvelope: Double?, quality: FmvQuality)
    {
        guard let q = try? quote(amount: amount, currency: currency, in: envelope, rate: rate) else {
            return (nil, .unavailable)
        }
        return (q.traceAmountEnvelope, q.quality)
    }

    // MARK: - Helpers

    private func checked(_ rate: FmvRate?, key: FmvRateKey) throws(FmvUnavailableError) -> FmvRate {
        guard let rate else {
            throw FmvUnavailableError(code: .unsupportedPair, "no \(key) rate available")
        }
        guard rate.base == key.base, rate.quote == key.quote else {
            throw FmvUnavailableError(code: .unsupportedPair, "rate \(rate.key) given where \(key) is needed")
        }
        guard rate.rate > 0 else {
            throw FmvUnavailableError(code: .badResponse, "rate \(rate.key) is not positive")
        }
        return rate
    }

    /// Rounds a non-negative value up to a whole number of minor units.
    static func roundUp(_ value: Decimal, what: @autoclosure () -> String) throws(FmvUnavailableError) -> Int64 {
        // (NSDecimalRound was seen returning a rounded-down value under concurrent use on Linux, so the ceiling is
        // taken by hand: from the mantissa and exponent when the mantissa fits 64 bits, else from the exact text.)
        guard !value.isNaN, value >= 0 else {
            throw FmvUnavailableError(code: .overflow, "\(what()) does not fit a cap check")
        }
        if let (mantissa, exponent) = smallParts(value) {
            if exponent >= 0 {
                var whole = mantissa
                for _ in 0..<exponent where whole != 0 {
                    let (product, o) = whole.multipliedReportingOverflow(by: 10)
                    guard !o else { throw FmvUnavailableError(code: .overflow, "\(what()) does not fit a cap check") }
                    whole = product
                }
                guard let result = Int64(exactly: whole) else {
                    throw FmvUnavailableError(code: .overflow, "\(what()) does not fit a cap check")
                }
                return result
            }
            // A mantissa below 2^64 < 10^20 divided by 10^20 or more is a fraction: its ceiling is 1 (or 0).
            guard let divisor = powerOfTen(-exponent) else { return mantissa == 0 ? 0 : 1 }
            let (q, r) = mantissa.quotientAndRemainder(dividingBy: divisor)
            guard let result = Int64(exactly: r == 0 ? q : q + 1) else {
                throw FmvUnavailableError(code: .overflow, "\(what()) does not fit a cap check")
            }
            return result
        }
        return try roundUpFromText(value, what: what())
    }

    /// The exact value as `mantissa × 10^exponent` when it is non-negative and its mantissa fits 64 bits.
    ///
    /// Decimal's mantissa is not public API on Linux, and its text form costs microseconds, so the value's bytes
    /// are read: exponent (`Int8`), then length (high nibble) and sign (bit 3), two reserved bytes, then eight
    /// little-endian 16-bit mantissa words. ``decimalLayoutHolds`` checks that layout on known values once; if a
    /// Foundation ever stores it differently, every caller falls back to the text.
    static func smallParts(_ value: Decimal) -> (mantissa: UInt64, exponent: Int)? {
        guard decimalLayoutHolds else { return nil }
        return rawParts(value)
    }

    private static func rawParts(_ value: Decimal) -> (mantissa: UInt64, exponent: Int)? {
        guard MemoryLayout<Decimal>.size == 20 else { return nil }
        return withUnsafeBytes(of: value) { b -> (UInt64, Int)? in
            let length = b[1] >> 4
            guard b[1] & 0x08 == 0 || length == 0, length <= 4 else { return nil }  // negative, NaN, or > 64 bits
            var mantissa: UInt64 = 0
            for word in 0..<Int(length) {
                mantissa |= UInt64(b[4 + 2 * word]) << (16 * word) | UInt64(b[5 + 2 * word]) << (16 * word + 8)
            }
            return (mantissa, Int(Int8(bitPattern: b[0])))
        }
    }

    /// Whether ``rawParts(_:)`` reads this Foundation's `Decimal` correctly (checked once against known values).
    static let decimalLayoutHolds: Bool = {
        let samples: [(String, UInt64, Int)] = [
            ("12345", 12345, 0), ("1.5", 15, -1), ("65536.001", 65_536_001, -3), ("1e10", 1, 10), ("0", 0, 0),
            ("18446744073709551615", .max, 0), ("0.000000000000000000000000000123", 123, -30),
        ]
        for (text, mantissa, exponent) in samples {
            guard let value = Decimal(string: text), let parts = rawParts(value),
                Decimal(sign: .plus, exponent: parts.exponent, significand: Decimal(parts.mantissa)) == value,
                parts.mantissa == 0 || (parts.mantissa, parts.exponent) == (mantissa, exponent)
            else { return false }
        }
        for text in ["-1", "18446744073709551616", "-0.5"] {
            guard let value = Decimal(string: text), rawParts(value) == nil else { return false }
        }
        return true
    }()

    private static let exactPowersOfTen: [Double] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
        1e20, 1e21, 1e22,
    ]

    /// The `Double` nearest to `value`, as `Double(value.description)` gives it: with a mantissa below 2^53 and
    /// a power of ten up to 10^22 (both exact doubles) one multiplication or division is correctly rounded;
    /// anything else goes through the text.
    static func double(_ value: Decimal) -> Double {
        if let (mantissa, exponent) = smallParts(value), mantissa < (1 << 53), (-22...22).contains(exponent) {
            let m = Double(mantissa)
            return exponent >= 0 ? m * exactPowersOfTen[exponent] : m / exactPowersOfTen[-exponent]
        }
        return Double(value.description) ?? 0
    }

    private static func roundUpFromText(_ value: Decimal, what: String) throws(FmvUnavailableError) -> Int64 {
        // The exact text ("341.25"), read as bytes: the integer part, and whether any fraction digit is non-zero.
        let overflow = FmvUnavailableError(code: .overflow, "\(what) does not fit a cap check")
        var whole: Int64 = 0
        var sawDigit = false, inFraction = false, fraction = false
        for byte in value.description.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"):
                if inFraction {
                    if byte != UInt8(ascii: "0") { fraction = true }
                } else {
                    let (product, o1) = whole.multipliedReportingOverflow(by: 10)
                    let (sum, o2) = product.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
                    guard !o1, !o2 else { throw overflow }
                    whole = sum
                    sawDigit = true
                }
            case UInt8(ascii: ".") where !inFraction:
                inFraction = true
            default:
                throw overflow  // an exponent or anything unexpected
            }
        }
        guard sawDigit else { throw overflow }
        if fraction {
            let (sum, o) = whole.addingReportingOverflow(1)
            guard !o else { throw overflow }
            whole = sum
        }
        return whole
    }

    static func powerOfTen(_ n: Int) -> UInt64? {
        guard n >= 0, n <= 19 else { return nil }
        var v: UInt64 = 1
        for _ in 0..<n { v *= 10 }
        return v
    }
}
