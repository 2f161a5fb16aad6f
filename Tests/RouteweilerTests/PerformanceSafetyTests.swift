import Foundation
import Routeweiler
import RouteweilerL402
import RouteweilerSQLite
import RouteweilerTesting
import Testing

/// The performance work must not loosen money safety: batched trace rows stay one per call, and the cap holds
/// exactly at 256 calls in flight through the shared SQLite connection pool. (No timings here: speed is measured by
/// `routeweiler-bench`, never by tests.)
@Suite(.serialized) struct PerformanceSafetyTests {
    /// The origin read from a URL string's bytes (the fast path of every call) is Foundation's, for every string
    /// it accepts; the rest goes through Foundation.
    @Test func theOriginReadFromTheBytesIsFoundations() throws {
        let accepted = [
            "http://example.com", "HTTP://Example.COM/", "https://API.example.com:8443/p?q=1#f", "http://127.0.0.1:8080/x",
            "https://h", "http://h:80", "https://h:443/", "http://h:0080/", "http://a-b_c~d.e/", "http://h?x=:1",
            "http://h#f:2", "https://xn--bcher-kva.example/a/b", "http://h.:81", "hTtPs://H:1/", "http://h/p:1@x",
        ]
        for text in accepted {
            let fast = try #require(URL.plainHTTPOrigin(text), "\(text)")
            let url = try #require(URL(string: text))
            #expect(fast == url.foundationOrigin, "\(text)")
            #expect(url.routeweilerOrigin == fast)
            // The trace writes such a URL's string as Foundation gives it: it has no user info to drop.
            #expect(url.user == nil && url.password == nil && RouteweilerClient.traceURL(url) == url.absoluteString, "\(text)")
            let policyView = try #require(PolicyEngine.MatchTarget.hostAndOrigin(text))
            let foundationView = PolicyEngine.MatchTarget.foundationHostAndOrigin(url)
            #expect(policyView.host == foundationView.host && policyView.origin == foundationView.origin, "\(text)")
        }
        let refused = ["http://user:pw@h/", "http://[::1]:80/", "http://h%41/", "ftp://h/", "http://h:/", "http://h:99999/",
                       "http:///p", "https://", "http:/h", "mailto:a@b", "http://h:8a/", "http://ex ample/", "http://é.fr/"]
        for text in refused { #expect(URL.plainHTTPOrigin(text) == nil, "\(text)") }
        #expect(URL(string: "http://User@Example.com:81/")?.routeweilerOrigin == "http://example.com:81")
        // The host the router matches envelope origins against is read back from the origin: Foundation's, lower-cased.
        for text in accepted + ["http://user:pw@H/", "http://[::1]:8080/", "https://[FE80::1]/x", "http://h%41/"] {
            let url = try #require(URL(string: text), "\(text)")
            #expect(RouteweilerRequest(url: url).originHost == (url.host ?? "").lowercased(), "\(text)")
        }

        // Random strings over URL-ish bytes: whatever the fast path accepts, Foundation parses to the same origin.
        var rng = SystemRandomNumberGenerator()
        let alphabet = Array("aZ09.-_~:/?#@%[]xX".utf8)
        var checked = 0
        for _ in 0..<20_000 {
            let tail = (0..<Int.random(in: 0...12, using: &rng)).map { _ in alphabet.randomElement(using: &rng)! }
            let text = (Bool.random(using: &rng) ? "http://" : "HTTPS://") + String(decoding: tail, as: UTF8.self)
            guard let fast = URL.plainHTTPOrigin(text) else { continue }
            checked += 1
            let url = try #require(URL(string: text), "\(text)")
            #expect(fast == url.foundationOrigin, "\(text)")
            #expect(url.user == nil && url.password == nil && RouteweilerClient.traceURL(url) == url.absoluteString, "\(text)")
            let policyView = try #require(PolicyEngine.MatchTarget.hostAndOrigin(text))
            let foundationView = PolicyEngine.MatchTarget.foundationHostAndOrigin(url)
            #expect(policyView.host == foundationView.host && policyView.origin == foundationView.origin, "\(text)")
        }
        #expect(checked > 1_000)
    }

    /// The x402 network prefix of a currency, found on the bytes, is what Foundation's case-insensitive backwards
    /// search finds.
    @Test func theNetworkPrefixIsFoundationsCaseInsensitiveSearch() {
        let currencies = ["eip155:8453/erc20:0xabc", "EIP155:1/ERC20:0xdef", "a/erc20:b/Erc20:c", "usd", "/erc20:", "/erc20",
                          "é/eRc20:x", "base-sepolia/erc20:0x1", "", "erc20:x", "x/erc20:"]
        for currency in currencies {
            let reference = currency.range(of: "/erc20:", options: [.caseInsensitive, .backwards])
                .map { String(currency[..<$0.lowerBound]) }
            #expect(PolicyEngine.networkPrefix(currency) == reference, "\(currency)")
        }
    }

    @Test func aBatchOfTraceEventsWritesOneRowPerEventAndReplaysAreIgnored() async throws {
        let path = temporaryDatabasePath("batch")
        let sink = try SQLiteTraceSink(path: path)
        let events = (0..<50).map { _ in SQLiteTraceSinkTests().event() }
        try await sink.record(contentsOf: events)
        try await sink.record(contentsOf: events)  // same request ids: ignored
        try await sink.record(contentsOf: [])
        try await sink.record(events[0])
        #expect(try await sink.count() == 50)
        let stored = Set(try await sink.events(limit: 100).map(\.requestId))
        #expect(stored == Set(events.map(\.requestId)))
    }

    @Test func theCapHoldsExactlyAt256InFlightWithEveryStoreInOneFile() async throws {
        try await Stack.run { stack in
            let db = temporaryDatabasePath("cap256")
            let keys = URL(fileURLWithPath: db).deletingLastPathComponent().appendingPathComponent("keys").path
            var config = stack.configuration()
            try config.useSQLite(path: db, keystore: EnvelopeKeystore(directory: keys))
            config.fmvProvider = StaticFmvProvider(btcPrices: [.usd: 60_000])
            config.budget = .create(BudgetEnvelope(id: "cap-64", capMinorUnits: 64, capCurrency: .usd,
                                                   allowedRails: [.l402], ttlSeconds: 3600))
            config.reuseCredentials = false
            let calls = 320
            let outcomes = try await RouteweilerClient.withClient(configuration: config) { rw in
                try await withThrowingTaskGroup(of: [String: Int].self) { group in
                    for worker in 0..<256 {
                        group.addTask {
                            var counts: [String: Int] = [:]
                            for _ in 0..<(calls / 256 + (worker < calls % 256 ? 1 : 0)) {
                                do {
                                    _ = try await rw.get(stack.paywall.url("/protected"))
                                    counts["paid", default: 0] += 1
                                } catch is BudgetExceededError {
                                    counts["exceeded", default: 0] += 1
                                } catch {
                                    counts["other: \(error)", default: 0] += 1
                                }
                            }
                            return counts
                        }
                    }
                    var all: [String: Int] = [:]
                    for try await c in group { all.merge(c, uniquingKeysWith: +) }
                    return all
                }
            }
            #expect(outcomes["paid"] == 64, "\(outcomes)")
            #expect(outcomes["exceeded"] == calls - 64, "\(outcomes)")
            #expect(stack.lnd.paymentCount == 64)
            let store = try SQLiteBudgetStore(path: db, keystore: EnvelopeKeystore(directory: keys))
            let balance = try await store.balance(envelopeID: "cap-64")
            #expect(balance.settledMinorUnits == 64)
            #expect(balance.reservedMinorUnits == 0)
            #expect(try await SQLiteTraceSink(path: db).count() == calls)
            let intents = try await SQLitePaymentJournal(path: db).all()
            #expect(intents.count == 64)
            #expect(intents.allSatisfy { $0.state == "succeeded" })
        }
    }
}
