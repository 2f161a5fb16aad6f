import Foundation
import RouteweilerTesting
import Synchronization
import Testing
@testable import Routeweiler

/// Namespace so `swift test --filter FMVTests` selects these suites.
@Suite enum FMVTests {}

/// Exact decimal from text (a float literal would go through `Double`).
private func dec(_ s: String) -> Decimal { Decimal(string: s)! }

private func rate(_ base: FmvAsset, _ quote: Currency, _ r: String, quality: FmvQuality = .fxLeg) -> FmvRate {
    FmvRate(base: base, quote: quote, rate: dec(r), fetchedAt: Date(timeIntervalSince1970: 0), quality: quality,
            source: "test")
}

private let baseUSDC = "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913"
private let baseEURC = "0x60a3e35cc302bfa44cb288bc5a4f316fdb1adb42"

/// A clock tests move by hand.
final class ManualClock: Sendable {
    private let time: Mutex<Date>
    init(_ start: Date = Date(timeIntervalSince1970: 1_715_940_000)) { time = Mutex(start) }  // 2024-05-17 10:00Z
    var now: Date { time.withLock { $0 } }
    func advance(seconds: TimeInterval) { time.withLock { $0 += seconds } }
    var function: @Sendable () -> Date { { self.now } }
}

extension FMVTests {
    @Suite struct MoneyTests {
        @Test func envelopeCurrenciesAndMinorUnits() throws {
            #expect(try Currency(code: "USD") == .usd)
            #expect(try Currency(code: " jpy ") == .jpy)
            #expect(Currency.usd.minorUnitsPerMajor == 100)
            #expect(Currency.jpy.minorUnitsPerMajor == 1)
            #expect(Currency.envelopeCurrencies.map(\.code) == ["usd", "eur", "jpy", "gbp"])
            #expect(try Currency(code: "chf").minorUnitsPerMajor == 100)
            #expect(try Currency(code: "krw").minorUnitsPerMajor == 1)
        }

        @Test(arguments: ["xyz", "", "usdc", "btc", "us"])
        func unknownCurrencyIsRefused(code: String) {
            let error = #expect(throws: UnknownCurrencyError.self) { try Currency(code: code) }
            #expect(error?.errorName == "UnknownCurrencyError")
            #expect(error?.mayHaveMovedFunds == false)
        }

        @Test func envelopeCodeRejectsNonEnvelopeCurrencies() throws {
            #expect(try Currency(envelopeCode: "EUR") == .eur)
            let error = #expect(throws: UnknownCurrencyError.self) { try Currency(envelopeCode: "chf") }
            #expect(error?.message.contains("usd, eur, jpy, gbp") == true)
        }

        @Test func currencyCodable() throws {
            let data = try JSONEncoder().encode([Currency.usd, .jpy])
            #expect(String(decoding: data, as: UTF8.self) == #"["usd","jpy"]"#)
            #expect(try JSONDecoder().decode([Currency].self, from: data) == [.usd, .jpy])
            #expect(throws: DecodingError.self) { try JSONDecoder().decode([Currency].self, from: Data(#"["zzz"]"#.utf8)) }
        }

        @Test func moneyDescription() {
            #expect(Money.usd(cents: 6825).description == "68.25 USD")
            #expect(Money.usd(cents: 5).description == "0.05 USD")
            #expect(Money.jpy(500).description == "500 JPY")
            #expect(Money.eur(cents: -1).description == "-0.01 EUR")
            #expect(Money.usd(cents: 342).majorUnits == dec("3.42"))
        }
    }
}

extension FMVTests {
    @Suite struct FmvConverterTests {
        let converter = FmvConverter()

        // SPEC §10.6.1 vectors (USD envelope unless noted).

        @Test func satsVectors() throws {
            let r = rate(.satoshi, .usd, "0.00065", quality: .coingeckoSimple)
            let q1 = try converter.quote(amount: 100_000, currency: "btc-lightning", in: .usd, rate: r)
            #expect(q1.capMinorUnits == 6825)  // exact product: no extra round-up
            #expect(q1.quality == .coingeckoSimple)
            #expect(q1.bufferApplied)
            let q2 = try converter.quote(amount: 5_000, currency: "btc-lightning", in: .usd, rate: r)
            #expect(q2.capMinorUnits == 342)  // 341.25 → 342
            #expect(q2.fairMinorUnits == dec("325"))
            // Fixed §10.6.2: the trace amount is in minor units (reference: 3.25 major units).
            #expect(q2.traceAmountEnvelope == 325.0)
        }

        @Test func satsToYenUsesYenMinorUnits() throws {
            // 1 sat = 0.1 JPY: 1 000 sats = 100 yen; × 1.05 = 105 yen (1 minor unit per yen).
            let q = try converter.quote(amount: 1_000, currency: "btc-lightning", in: .jpy, rate: rate(.satoshi, .jpy, "0.1"))
            #expect(q.capMinorUnits == 105)
        }

        @Test(arguments: [(UInt64(10_000), Int64(1)), (1_000, 1), (1_000_000, 100), (1, 1), (0, 0), (10_001, 2)])
        func usdcSamePegIsExactIntegerMath(amount: UInt64, cents: Int64) throws {
            let q = try converter.quote(amount: amount, currency: "eip155:8453/erc20:\(baseUSDC)", in: .usd, rate: nil)
            #expect(q.capMinorUnits == cents)
            #expect(q.quality == .stablecoinPeg)
            #expect(!q.bufferApplied)
            #expect(q.rate == nil)
        }

        @Test func eurcInEUR() throws {
            let q = try converter.quote(amount: 10_000, currency: "base/erc20:\(baseEURC)", in: .eur, rate: nil)
            #expect(q.capMinorUnits == 1)
            #expect(q.quality == .stablecoinPeg)
        }

        @Test func usdcInEURUsesFXLegWithBuffer() throws {
            let q = try converter.quote(amount: 1_000_000, currency: "eip155:8453/erc20:\(baseUSDC)", in: .eur,
                                        rate: rate(.currency(.usd), .eur, "0.92"))
            #expect(q.capMinorUnits == 97)  // 1 × 0.92 × 1.05 = 0.966 → 97 cents
            #expect(q.fairMinorUnits == dec("92"))
            #expect(q.quality == .fxLeg)
        }

        @Test func requiredRateNamesTheLeg() throws {
            #expect(try converter.requiredRate(for: "eip155:8453/erc20:\(baseUSDC)", in: .eur)
                == FmvRateKey(base: .currency(.usd), quote: .eur))
            #expect(try converter.requiredRate(for: "eip155:8453/erc20:\(baseUSDC)", in: .usd) == nil)
            #expect(try converter.requiredRate(for: "btc-lightning", in: .gbp) == FmvRateKey(base: .satoshi, quote: .gbp))
            #expect(try converter.requiredRate(for: "usd-fiat", in: .usd) == nil)
        }

        @Test func fiatVectors() throws {
            let sameCurrency = try converter.quote(amount: 500, currency: "usd-fiat", in: .usd, rate: nil)
            #expect(sameCurrency.capMinorUnits == 500)
            #expect(sameCurrency.quality == .stablecoinPeg)
            #expect(try converter.quote(amount: 500, currency: "usd-fiat", in: .eur, rate: rate(.currency(.usd), .eur, "0.92"))
                .capMinorUnits == 483)
            #expect(try converter.quote(amount: 100, currency: "eur-fiat", in: .usd, rate: rate(.currency(.eur), .usd, "1.087"))
                .capMinorUnits == 115)
            #expect(try converter.quote(amount: 200, currency: "usd-fiat", in: .eur, rate: rate(.currency(.usd), .eur, "0.90"))
                .capMinorUnits == 189)
        }

        /// Deliberately differs from the reference (SPEC §10.6.1 [REF-BUG], §16.7): minor-unit scales are respected.
        @Test func crossFiatRespectsMinorUnitScales() throws {
            // 500 JPY × 0.00652 = 3.26 USD × 1.05 = 3.423 USD → 343 cents (reference: 4 cents).
            let jpy = try converter.quote(amount: 500, currency: "jpy-fiat", in: .usd, rate: rate(.currency(.jpy), .usd, "0.00652"))
            #expect(jpy.capMinorUnits == 343)
            #expect(jpy.fairMinorUnits == dec("326"))
            // 500 cents × 153.5 = 767.5 JPY × 1.05 = 805.875 → 806 yen (reference: 80 588).
            let usd = try converter.quote(amount: 500, currency: "usd-fiat", in: .jpy, rate: rate(.currency(.usd), .jpy, "153.5"))
            #expect(usd.capMinorUnits == 806)
        }

        @Test func tip20ByAddress() throws {
            let q = try converter.quote(amount: 1_000_000, currency: "0x833589FCD6EDB6E08F4C7C32D4F71B54BDA02913-TIP20",
                                        in: .usd, rate: nil)
            #expect(q.capMinorUnits == 100)
            let path = try converter.quote(amount: 10_000, currency: "0x20c0000000000000000000000000000000000000-tip20",
                                           in: .usd, rate: nil)
            #expect(path.capMinorUnits == 1)
            guard case .stablecoin(let token) = path.asset else { Issue.record("asset"); return }
            #expect(token.symbol == "PathUSD")
        }

        @Test(arguments: [
            "eip155:8453/erc20:0x0000000000000000000000000000000000000001",  // unknown ERC-20
            "0x0000000000000000000000000000000000000001-tip20",
            "eip155:1/erc20:\(baseUSDC)",  // Base's USDC address on another chain is another contract
            "eip155:99999/erc20:\(baseUSDC)",
            "xyz-fiat",
            "doge",
        ])
        func unknownAssetsAreRefused(currency: String) {
            let error = #expect(throws: FmvUnavailableError.self) {
                try converter.quote(amount: 1, currency: currency, in: .usd, rate: rate(.satoshi, .usd, "1"))
            }
            #expect(error?.code == .unknownAsset)
            #expect(error?.errorName == "FmvUnavailableError")
            #expect(error?.mayHaveMovedFunds == false)
        }

        @Test func satsWithoutRateIsRefused() {
            let error = #expect(throws: FmvUnavailableError.self) {
                try converter.quote(amount: 5_000, currency: "btc-lightning", in: .usd, rate: nil)
            }
            #expect(error?.message.contains("sats->usd") == true)
        }

        @Test func mismatchedRateIsRefused() {
            // A EUR rate handed in for a USD envelope must not be used.
            #expect(throws: FmvUnavailableError.self) {
                try converter.quote(amount: 5_000, currency: "btc-lightning", in: .usd, rate: rate(.satoshi, .eur, "0.0006"))
            }
            #expect(throws: FmvUnavailableError.self) {
                try converter.quote(amount: 5_000, currency: "btc-lightning", in: .usd, rate: rate(.satoshi, .usd, "0"))
            }
        }

        @Test func overflowIsRefusedNotWrapped() {
            let error = #expect(throws: FmvUnavailableError.self) {
                try converter.quote(amount: .max, currency: "btc-lightning", in: .usd, rate: rate(.satoshi, .usd, "1000"))
            }
            #expect(error?.code == .overflow)
            #expect(throws: FmvUnavailableError.self) {
                try converter.quote(amount: .max, currency: "usd-fiat", in: .usd, rate: nil)
            }
        }

        @Test func traceAmountNeverThrows() {
            let ok = converter.traceAmount(amount: 5_000, currency: "btc-lightning", in: .usd,
                                           rate: rate(.satoshi, .usd, "0.00065", quality: .coingeckoSimple))
            #expect(ok.amountEnvelope == 325.0)
            #expect(ok.quality == .coingeckoSimple)
            let fiat = converter.traceAmount(amount: 500, currency: "usd-fiat", in: .usd, rate: nil)
            #expect(fiat.amountEnvelope == 500.0)
            let missing = converter.traceAmount(amount: 5_000, currency: "btc-lightning", in: .usd, rate: nil)
            #expect(missing.amountEnvelope == nil)
            #expect(missing.quality == .unavailable)
        }

        @Test func quoteThroughStaticProvider() async throws {
            let fmv = StaticFmvProvider()  // 1 BTC = 60 000 USD → 0.0006 USD/sat
            let price = NormalizedChallenge.Price(amount: 5_000, currency: "btc-lightning", humanAmount: "5000 sats")
            let q = try await converter.quote(price, in: .usd, provider: fmv)
            #expect(q.capMinorUnits == 315)  // 3 USD × 1.05
            #expect(q.quality == .staticTable)
            #expect(q.rate?.rate == dec("0.0006"))
            await #expect(throws: FmvUnavailableError.self) { try await converter.quote(price, in: .jpy, provider: fmv) }
        }
    }
}

extension FMVTests {
    @Suite struct StaticFmvProviderTests {
        @Test func fixedTablesWithStaticQuality() async throws {
            let fmv = StaticFmvProvider(btcPrices: [.usd: 60_000, .eur: dec("55000.5")], fxRates: StaticFmvProvider.referenceOfflineFX)
            let btc = try await fmv.btcRate(in: .eur)
            #expect(btc.rate == dec("0.000550005"))
            #expect(btc.quality == .staticTable)
            #expect(btc.key == "sats->eur")
            let fx = try await fmv.fiatRate(from: .jpy, to: .usd)
            #expect(fx.rate == dec("0.00652"))
            #expect(fx.quality == .staticTable)
            #expect(try await fmv.fiatRate(from: .gbp, to: .gbp).rate == 1)
        }

        @Test func missingEntriesThrowAndAreNotDerived() async {
            let fmv = StaticFmvProvider(fxRates: [CurrencyPair(.usd, .eur): dec("0.92")])
            await #expect(throws: FmvUnavailableError.self) { try await fmv.btcRate(in: .gbp) }
            // The inverse is not guessed.
            await #expect(throws: FmvUnavailableError.self) { try await fmv.fiatRate(from: .eur, to: .usd) }
        }

        @Test func combinedProviderRoutesByKind() async throws {
            let btc = StaticFmvProvider(btcPrices: [.usd: 70_000])
            let fiat = StaticFmvProvider(btcPrices: [:], fxRates: [CurrencyPair(.eur, .usd): dec("1.1")])
            let both = CombinedFmvProvider(btc: btc, fiat: fiat)
            #expect(try await both.btcRate(in: .usd).rate == dec("0.0007"))
            #expect(try await both.fiatRate(from: .eur, to: .usd).rate == dec("1.1"))
            #expect(try await both.rate(for: FmvRateKey(base: .satoshi, quote: .usd)).rate == dec("0.0007"))
        }
    }
}

extension FMVTests {
    @Suite struct CoinGeckoProviderTests {
        func provider(_ server: FakeRatesServer, clock: ManualClock = ManualClock(),
                      _ change: (inout CoinGeckoProvider.Configuration) -> Void = { _ in }) -> CoinGeckoProvider {
            var config = CoinGeckoProvider.Configuration()
            config.baseURL = server.baseURL
            config.timeout = .seconds(15)
            change(&config)
            return CoinGeckoProvider(configuration: config, now: clock.function)
        }

        @Test func fetchesThePricePerSatoshiExactly() async throws {
            try await FakeRatesServer.withServer { server in
                server.configure { $0.btcPrices["usd"] = "65000.123456789012345678" }
                let rate = try await provider(server).btcRate(in: .usd)
                #expect(rate.rate == dec("0.00065000123456789012345678"))
                #expect(rate.quality == .coingeckoSimple)
                #expect(rate.source == "coingecko")
                #expect(rate.base == .satoshi && rate.quote == .usd)
                #expect(server.stats.coinGeckoQueries == ["ids=bitcoin&vs_currencies=usd"])
                #expect(server.stats.userAgents == ["routeweiler/fmv-provider"])
            }
        }

        @Test func quotesAgainstTheLiveShape() async throws {
            try await FakeRatesServer.withServer { server in
                server.configure { $0.btcPrices["usd"] = "65000" }
                let q = try await FmvConverter().quote(amount: 100_000, currency: "btc-lightning", in: .usd,
                                                        provider: provider(server))
                #expect(q.capMinorUnits == 6825)
                #expect(q.quality == .coingeckoSimple)
            }
        }

        @Test func serviceDownIsUnavailable() async throws {
            try await FakeRatesServer.withServer { server in
                server.configure { $0.coinGecko = .down }
                let error = await #expect(throws: FmvUnavailableError.self) { try await provider(server).btcRate(in: .usd) }
                #expect(error?.code == .fetchFailed)
                #expect(error?.message.contains("500") == true)
            }
        }

        @Test func slowServiceTimesOut() async throws {
            // A listener that never answers (no Hummingbird handler left sleeping at shutdown).
            let silent = try SilentServer()
            var config = CoinGeckoProvider.Configuration()
            config.baseURL = silent.baseURL
            config.timeout = .milliseconds(100)
            let p = CoinGeckoProvider(configuration: config)
            let error = await #expect(throws: FmvUnavailableError.self) { try await p.btcRate(in: .usd) }
            #expect(error?.code == .fetchFailed)
        }

        @Test(arguments: [
            "<html>rate limited</html>",
            "[]",
            #"{"bitcoin":{"usd":"65000"}}"#,
            #"{"bitcoin":{"usd":-1}}"#,
            #"{"bitcoin":{"usd":0}}"#,
            #"{"bitcoin":{"eur":60000}}"#,
            #"{"ethereum":{"usd":3000}}"#,
            #"{"bitcoin":{"usd":null}}"#,
        ])
        func garbageIsUnavailable(body: String) async throws {
            try await FakeRatesServer.withServer { server in
                server.configure { $0.coinGecko = .garbage(body) }
                let error = await #expect(throws: FmvUnavailableError.self) { try await provider(server).btcRate(in: .usd) }
                #expect(error?.code == .badResponse)
            }
        }

        @Test func currencyMissingFromAnswerIsUnavailable() async throws {
            try await FakeRatesServer.withServer { server in
                server.configure { $0.btcPrices = ["usd": "65000"] }
                let error = await #expect(throws: FmvUnavailableError.self) { try await provider(server).btcRate(in: .gbp) }
                #expect(error?.message.contains("gbp") == true)
            }
        }

        @Test func cachesPerCurrencyForTheTTL() async throws {
            try await FakeRatesServer.withServer { server in
                let clock = ManualClock()
                let p = provider(server, clock: clock)
                _ = try await p.btcRate(in: .usd)
                server.configure { $0.btcPrices["usd"] = "70000" }
                clock.advance(seconds: 59)
                #expect(try await p.btcRate(in: .usd).rate == dec("0.0006500012"))  // cached
                _ = try await p.btcRate(in: .eur)  // another currency: its own entry
                #expect(server.stats.coinGeckoRequests == 2)
                clock.advance(seconds: 2)  // 61 s: past the TTL
                #expect(try await p.btcRate(in: .usd).rate == dec("0.0007"))
                #expect(server.stats.coinGeckoRequests == 3)
            }
        }

        @Test func usesARecentRateWhileDownAndRefusesAStaleOne() async throws {
            try await FakeRatesServer.withServer { server in
                let clock = ManualClock()
                let p = provider(server, clock: clock)
                let first = try await p.btcRate(in: .usd)
                server.configure { $0.coinGecko = .down }
                clock.advance(seconds: 300)  // past the TTL, within the 10 min limit
                let fallback = try await p.btcRate(in: .usd)
                #expect(fallback.rate == first.rate)
                #expect(fallback.fetchedAt == first.fetchedAt)
                #expect(server.stats.coinGeckoRequests == 2)  // it did try to refresh
                clock.advance(seconds: 301)  // 601 s old
                let error = await #expect(throws: FmvUnavailableError.self) { try await p.btcRate(in: .usd) }
                #expect(error?.code == .stale)
                server.configure { $0.coinGecko = .normal }
                #expect(try await p.btcRate(in: .usd).fetchedAt == clock.now)  // recovers once the service is back
            }
        }

        @Test func doesNotQuoteFiatPairs() async throws {
            let p = CoinGeckoProvider(configuration: .init())
            #expect(try await p.fiatRate(from: .usd, to: .usd).rate == 1)
            await #expect(throws: FmvUnavailableError.self) { try await p.fiatRate(from: .usd, to: .eur) }
        }
    }
}

extension FMVTests {
    @Suite struct ECBProviderTests {
        func provider(_ server: FakeRatesServer, clock: ManualClock = ManualClock(),
                      _ change: (inout ECBProvider.Configuration) -> Void = { _ in }) -> ECBProvider {
            var config = ECBProvider.Configuration()
            config.baseURL = server.baseURL
            config.timeout = .seconds(15)
            change(&config)
            return ECBProvider(configuration: config, now: clock.function)
        }

        @Test func crossRatesFromTheDailyFile() async throws {
            try await FakeRatesServer.withServer { server in
                let p = provider(server)
                let eurUSD = try await p.fiatRate(from: .eur, to: .usd)
                #expect(eurUSD.rate == dec("1.0856"))
                #expect(eurUSD.quality == .fxLeg)
                #expect(eurUSD.source == "ecb:2024-05-17")
                #expect(try await p.fiatRate(from: .usd, to: .eur).rate == 1 / dec("1.0856"))
                #expect(try await p.fiatRate(from: .usd, to: .jpy).rate == dec("169.04") / dec("1.0856"))
                let chf = try Currency(code: "chf")
                #expect(try await p.fiatRate(from: chf, to: .gbp).rate == dec("0.8558") / dec("0.9833"))
                #expect(server.stats.ecbRequests == 1)
                #expect(server.stats.userAgents == ["routeweiler/ecb-provider"])
            }
        }

        @Test func quotesJPYInUSDThroughECB() async throws {
            try await FakeRatesServer.withServer { server in
                server.configure { $0.ecbRates = [("USD", "1.25"), ("JPY", "125")] }  // 1 JPY = 0.01 USD
                let q = try await FmvConverter().quote(amount: 500, currency: "jpy-fiat", in: .usd, provider: provider(server))
                // 500 JPY = 5 USD × 1.05 = 525 cents (the reference's scale bug would give 6).
                #expect(q.capMinorUnits == 525)
                #expect(q.quality == .fxLeg)
            }
        }

        @Test func currencyTheECBDoesNotPublish() async throws {
            try await FakeRatesServer.withServer { server in
                let error = await #expect(throws: FmvUnavailableError.self) {
                    try await provider(server).fiatRate(from: Currency(code: "aud"), to: .usd)
                }
                #expect(error?.code == .unsupportedPair)
                #expect(error?.message.contains("AUD") == true)
            }
        }

        @Test func malformedEntriesAreSkipped() async throws {
            try await FakeRatesServer.withServer { server in
                server.configure {
                    $0.ecbRates = [("USD", "1.0856"), ("JPY", "abc"), ("GBP", "1.2.3"), ("CHF", "-1"), ("XX1", "2"),
                                   ("SEK", "11.5x"), ("NOK", "11.6")]
                }
                let p = provider(server)
                let nok = try Currency(code: "nok")
                #expect(try await p.fiatRate(from: .eur, to: nok).rate == dec("11.6"))
                await #expect(throws: FmvUnavailableError.self) { try await p.fiatRate(from: .eur, to: .jpy) }
                await #expect(throws: FmvUnavailableError.self) { try await p.fiatRate(from: .eur, to: .gbp) }
            }
        }

        @Test func fewerThanTwoValidRatesIsUnavailable() async throws {
            try await FakeRatesServer.withServer { server in
                server.configure { $0.ecbRates = [("USD", "1.0856"), ("JPY", "n/a")] }
                let error = await #expect(throws: FmvUnavailableError.self) {
                    try await provider(server).fiatRate(from: .eur, to: .usd)
                }
                #expect(error?.message.contains("no valid exchange rates") == true)
            }
        }

        @Test func cubesOutsideTheECBNamespaceAreIgnored() async throws {
            try await FakeRatesServer.withServer { server in
                let xml = """
                    <?xml version="1.0" encoding="UTF-8"?>
                    <Envelope><Cube><Cube currency='USD' rate='1.1'/><Cube currency='JPY' rate='160'/></Cube></Envelope>
                    """
                server.configure { $0.ecb = .garbage(xml) }
                let error = await #expect(throws: FmvUnavailableError.self) {
                    try await provider(server).fiatRate(from: .eur, to: .usd)
                }
                #expect(error?.message.contains("no valid exchange rates") == true)
            }
        }

        @Test(arguments: [FakeRatesServer.Mode.down, .garbage("{\"not\":\"xml\"}"), .garbage("<gesmes:Envelope><Cube")])
        func downOrGarbageIsUnavailable(mode: FakeRatesServer.Mode) async throws {
            try await FakeRatesServer.withServer { server in
                server.configure { $0.ecb = mode }
                await #expect(throws: FmvUnavailableError.self) { try await provider(server).fiatRate(from: .usd, to: .jpy) }
            }
        }

        @Test func slowServiceTimesOut() async throws {
            let silent = try SilentServer()
            var config = ECBProvider.Configuration()
            config.baseURL = silent.baseURL
            config.timeout = .milliseconds(100)
            let p = ECBProvider(configuration: config)
            let error = await #expect(throws: FmvUnavailableError.self) { try await p.fiatRate(from: .usd, to: .eur) }
            #expect(error?.code == .fetchFailed)
        }

        @Test func cachedForTheUTCDayThenStalenessLimit() async throws {
            try await FakeRatesServer.withServer { server in
                let clock = ManualClock()  // 10:00Z
                let p = provider(server, clock: clock)
                _ = try await p.fiatRate(from: .eur, to: .usd)
                clock.advance(seconds: 13 * 3600)  // 23:00Z, same day
                _ = try await p.fiatRate(from: .usd, to: .jpy)
                #expect(server.stats.ecbRequests == 1)
                clock.advance(seconds: 2 * 3600)  // 01:00Z next day
                server.configure { $0.ecbRates = [("USD", "1.2"), ("JPY", "170")] }
                #expect(try await p.fiatRate(from: .eur, to: .usd).rate == dec("1.2"))
                #expect(server.stats.ecbRequests == 2)
                server.configure { $0.ecb = .down }
                clock.advance(seconds: 3 * 86_400)  // within 4 days of the last fetch: still served
                #expect(try await p.fiatRate(from: .eur, to: .usd).rate == dec("1.2"))
                clock.advance(seconds: 86_400 + 1)  // 4 days + 1 s
                let error = await #expect(throws: FmvUnavailableError.self) { try await p.fiatRate(from: .eur, to: .usd) }
                #expect(error?.code == .stale)
            }
        }

        @Test func doesNotQuoteBitcoin() async {
            await #expect(throws: FmvUnavailableError.self) { try await ECBProvider().btcRate(in: .usd) }
        }
    }
}

/// `FmvConverter.roundUp` works on the decimal's mantissa and exponent; it must agree with ceiling the exact
/// decimal text, and refuse what does not fit.
@Suite struct RoundUpTests {
    /// The reference: ceil of the exact text form.
    private func reference(_ d: Decimal) -> Int64? {
        let text = d.description
        let parts = text.split(separator: ".", maxSplits: 1)
        guard let whole = parts.first, !text.contains("e"), var v = Int64(whole) else { return nil }
        if parts.count == 2, parts[1].contains(where: { $0 != "0" }) { v += 1 }
        return v
    }

    @Test func agreesWithTheExactTextOnManyValues() throws {
        var generator = SystemRandomNumberGenerator()
        var values: [Decimal] = ["0", "1", "0.1", "0.000001", "1.5", "2.0", "341.25", "999999.999", "100", "1e3", "12e-2",
                                 "9223372036854775807", "9223372036854775806.5"].map { Decimal(string: $0)! }
        for _ in 0..<2000 {
            let mantissa = UInt64.random(in: 0...999_999_999_999, using: &generator)
            let exponent = Int16.random(in: -12...4, using: &generator)
            values.append(Decimal(sign: .plus, exponent: Int(exponent), significand: Decimal(mantissa)))
        }
        values.append(Decimal(string: "0.6")! * Decimal(string: "1.05")!)
        values.append(Decimal(10) / Decimal(3))
        for value in values {
            let expected = reference(value)
            let got = try? FmvConverter.roundUp(value, what: "test")
            #expect(got == expected, "\(value)")
        }
        #expect(throws: FmvUnavailableError.self) { try FmvConverter.roundUp(Decimal(string: "9223372036854775807.1")!, what: "x") }
        #expect(throws: FmvUnavailableError.self) { try FmvConverter.roundUp(Decimal(string: "1e30")!, what: "x") }
        #expect(throws: FmvUnavailableError.self) { try FmvConverter.roundUp(Decimal(string: "-1")!, what: "x") }
    }

    /// The trace's `amountEnvelope` is computed from the mantissa and exponent when both are small enough for one
    /// correctly rounded operation; it must be the double that parsing the exact text gives.
    @Test func traceDoubleMatchesParsingTheText() {
        #expect(FmvConverter.decimalLayoutHolds, "the fast paths read Decimal's bytes; this Foundation lays them out otherwise")
        var generator = SystemRandomNumberGenerator()
        var values: [Decimal] = ["0", "325", "325.0", "0.1", "0.3", "1e22", "1e23", "123456789012345678", "9007199254740993",
                                 "0.000000000000000000001", "4.35"].map { Decimal(string: $0)! }
        for _ in 0..<3000 {
            let mantissa = UInt64.random(in: 0...(1 << 54), using: &generator)
            let exponent = Int.random(in: -25...24, using: &generator)
            values.append(Decimal(sign: .plus, exponent: exponent, significand: Decimal(mantissa)))
        }
        values.append(Decimal(5000) * Decimal(string: "0.00065")!)
        values.append(Decimal(10) / Decimal(3))
        for value in values {
            #expect(FmvConverter.double(value) == Double(value.description), "\(value)")
        }
    }
}
