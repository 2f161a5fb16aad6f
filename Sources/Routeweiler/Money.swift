import Foundation

/// An ISO 4217 currency, spelled lower-case as in SPEC (`usd`, `eur`, `jpy`, `gbp`).
///
/// An open set (P7): the four envelope currencies are static members, and ``init(code:)`` accepts any code in
/// ``Currency/known`` (the envelope currencies plus those the ECB publishes), so `chf-fiat` offers can be priced.
/// Unknown codes are refused with ``UnknownCurrencyError`` rather than guessed.
///
/// ```swift
/// let cur = try Currency(code: "USD")   // .usd
/// cur.minorUnitsPerMajor                // 100
/// ```
public struct Currency: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    /// The lower-case ISO 4217 code.
    public let code: String
    /// Number of decimal digits of the minor unit (2 for cents, 0 for yen).
    public let minorUnitDigits: Int

    private init(uncheckedCode code: String, minorUnitDigits: Int) {
        self.code = code
        self.minorUnitDigits = minorUnitDigits
    }

    /// US dollar (minor unit: cent).
    public static let usd = Currency(uncheckedCode: "usd", minorUnitDigits: 2)
    /// Euro (minor unit: cent).
    public static let eur = Currency(uncheckedCode: "eur", minorUnitDigits: 2)
    /// Pound sterling (minor unit: penny).
    public static let gbp = Currency(uncheckedCode: "gbp", minorUnitDigits: 2)
    /// Japanese yen (no minor unit: 1 yen is the smallest unit).
    public static let jpy = Currency(uncheckedCode: "jpy", minorUnitDigits: 0)

    /// The currencies a budget envelope or a policy may be denominated in (SPEC §10.1).
    public static let envelopeCurrencies: [Currency] = [.usd, .eur, .jpy, .gbp]

    /// Every currency ``init(code:)`` accepts: the envelope currencies plus the ECB reference-rate currencies,
    /// with their ISO 4217 minor-unit digits.
    public static let known: [String: Currency] = {
        var table: [String: Currency] = [:]
        for c in envelopeCurrencies { table[c.code] = c }
        let twoDigits = [
            "aud", "bgn", "brl", "cad", "chf", "cny", "czk", "dkk", "hkd", "huf", "idr", "ils", "inr", "mxn", "myr",
            "nok", "nzd", "php", "pln", "ron", "sek", "sgd", "thb", "try", "zar",
        ]
        for code in twoDigits { table[code] = Currency(uncheckedCode: code, minorUnitDigits: 2) }
        for code in ["isk", "krw"] { table[code] = Currency(uncheckedCode: code, minorUnitDigits: 0) }
        return table
    }()

    /// Looks a currency up by its ISO code, case-insensitively.
    /// - Throws: ``UnknownCurrencyError`` when the code is not in ``known``.
    public init(code: String) throws(UnknownCurrencyError) {
        let lower = code.trimmingCharacters(in: .whitespaces).lowercased()
        guard let c = Self.known[lower] else { throw UnknownCurrencyError(code: code) }
        self = c
    }

    /// Looks up one of the four envelope currencies (`usd`, `eur`, `jpy`, `gbp`).
    /// - Throws: ``UnknownCurrencyError`` for any other code, known or not.
    public init(envelopeCode code: String) throws(UnknownCurrencyError) {
        let c = try Currency(code: code)
        guard c.isEnvelopeCurrency else { throw UnknownCurrencyError(code: code, envelopeOnly: true) }
        self = c
    }

    /// Whether budgets and policies may be denominated in this currency.
    public var isEnvelopeCurrency: Bool { Self.envelopeCurrencies.contains(self) }

    /// Minor units in one major unit: 100 for usd/eur/gbp, 1 for jpy.
    public var minorUnitsPerMajor: Int64 {
        var n: Int64 = 1
        for _ in 0..<minorUnitDigits { n *= 10 }
        return n
    }

    /// The lower-case code.
    public var description: String { code }

    public static func < (lhs: Currency, rhs: Currency) -> Bool { lhs.code < rhs.code }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let s = try c.decode(String.self)
        do { self = try Currency(code: s) } catch {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "unknown currency '\(s)'")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(code)
    }
}

/// An amount of money in integer minor units of a currency (cents, yen). No floating point anywhere.
public struct Money: Hashable, Sendable, Codable, CustomStringConvertible {
    /// The currency.
    public var currency: Currency
    /// The amount in minor units (may be negative for differences).
    public var minorUnits: Int64

    /// Creates an amount from minor units.
    public init(_ minorUnits: Int64, _ currency: Currency) {
        self.currency = currency
        self.minorUnits = minorUnits
    }

    /// US cents.
    public static func usd(cents: Int64) -> Money { Money(cents, .usd) }
    /// Euro cents.
    public static func eur(cents: Int64) -> Money { Money(cents, .eur) }
    /// Pence.
    public static func gbp(pence: Int64) -> Money { Money(pence, .gbp) }
    /// Yen.
    public static func jpy(_ yen: Int64) -> Money { Money(yen, .jpy) }

    /// The amount in major units as an exact `Decimal` (500 cents → 5).
    public var majorUnits: Decimal { Decimal(minorUnits) / Decimal(currency.minorUnitsPerMajor) }

    /// `5.00 USD`, `500 JPY`.
    public var description: String {
        let digits = currency.minorUnitDigits
        let sign = minorUnits < 0 ? "-" : ""
        let magnitude = minorUnits.magnitude
        guard digits > 0 else { return "\(sign)\(magnitude) \(currency.code.uppercased())" }
        let per = UInt64(currency.minorUnitsPerMajor)
        var fraction = String(magnitude % per)
        while fraction.count < digits { fraction = "0" + fraction }
        return "\(sign)\(magnitude / per).\(fraction) \(currency.code.uppercased())"
    }
}

/// A currency code that is not known (or not allowed where an envelope currency is required). Nothing was paid.
public struct UnknownCurrencyError: RouteweilerError {
    public var errorName: String { "UnknownCurrencyError" }
    /// The code as given.
    public var code: String
    public var message: String
    /// Creates the error; `envelopeOnly` says the code was refused because only envelope currencies are allowed.
    public init(code: String, envelopeOnly: Bool = false) {
        self.code = code
        self.message =
            envelopeOnly
            ? "currency '\(code)' cannot denominate a budget or policy (use one of usd, eur, jpy, gbp)"
            : "unknown currency '\(code)'"
    }
}
