import Foundation
import HTTPTypes
import Routeweiler
import RouteweilerL402
import RouteweilerTesting
import RouteweilerWire
import Synchronization
import Testing

final class EventLog: Sendable {
    let events = Mutex<[FlowEvent]>([])
}

/// An offer's deferred check (the BOLT-11 signature) runs alongside routing, and must pass before anything is
/// reserved or recorded: a bad invoice still changes nothing, on either backend.
@Suite struct DeferredCheckTests {
    let factory = ChallengeFactory()
    static let fmv = StaticFmvProvider(btcPrices: [.usd: 60_000])

    /// An invoice whose signature does not verify against the payee its `n` field names (checksum still valid).
    func badSignatureHeader() throws -> String {
        let m = try factory.mint(includePayee: true)
        let decoded = try Bech32.decode(m.invoice)
        var w = decoded.words
        w[w.count - 10] ^= 1
        return m.header.replacingOccurrences(
            of: m.invoice, with: try Bech32.encode(humanReadablePart: decoded.humanReadablePart, words: w))
    }

    func client(_ backing: StoreUnderTest, transport: ScriptedTransport, node: TableNode, cap: Int64 = 100,
                events: EventLog? = nil) throws -> RouteweilerClient.Configuration {
        var config = RouteweilerClient.Configuration(
            funding: [try LightningFundingSource(node: node, network: .bitcoinRegtest, nodePubkey: node.pubkey)])
        config.transport = transport
        config.paidRetry.backoff = .milliseconds(1)
        try backing.configure(&config)
        config.fmvProvider = Self.fmv
        config.budget = .create(BudgetEnvelope(id: "env-d", capMinorUnits: cap, capCurrency: .usd,
                                               allowedRails: [.l402], ttlSeconds: 3600))
        config.reuseCredentials = false
        if let events { config.onEvent = { e in events.events.withLock { $0.append(e) } } }
        return config
    }

    @Test(arguments: Backend.available)
    func aBadSignatureLeavesNothingReservedOrRecorded(_ backend: Backend) async throws {
        let backing = try await StoreUnderTest(backend, name: "deferred-bad")
        let node = TableNode()
        let transport = ScriptedTransport([.respond(ScriptedTransport.challenge([try badSignatureHeader()]))])
        let events = EventLog()
        let config = try client(backing, transport: transport, node: node, events: events)
        try await RouteweilerClient.withClient(configuration: config) { rw in
            do {
                _ = try await rw.get("http://127.0.0.1:9/p")
                Issue.record("a bad invoice signature was accepted")
            } catch let error as any RouteweilerError {
                #expect(error.errorName == "ChallengeParseError", "\(error)")
                #expect(!error.mayHaveMovedFunds)
            }
        }
        #expect(node.payments == 0)
        #expect(transport.requests.count == 1)
        let store = try backing.budgetStore()
        #expect(try await store.draws(envelopeID: "env-d").isEmpty)
        let balance = try await store.balance(envelopeID: "env-d")
        #expect(balance.reservedMinorUnits == 0 && balance.settledMinorUnits == 0)
        #expect(try await backing.paymentJournal().pending().isEmpty)
        let traced = try await backing.traceSink().events(limit: 10)
        #expect(traced.count == 1)
        #expect(traced.first?.payment == nil)
        #expect(traced.first?.outcome.error?.code == "ChallengeParseError")
        #expect(traced.first?.reservation?.state == "none")
        // The refused offer is reported as rejected, never as selected.
        let seen = events.events.withLock { $0 }
        #expect(!seen.contains { if case .offerSelected = $0 { return true } else { return false } })
        #expect(seen.contains { if case .offerRejected(let r) = $0 { return r.error.errorName == "ChallengeParseError" } else { return false } })
    }

    @Test(arguments: Backend.available)
    func aPaidCallNamesThePayeeTheSignatureVerified(_ backend: Backend) async throws {
        let backing = try await StoreUnderTest(backend, name: "deferred-good")
        let m = try factory.mint()
        let node = TableNode()
        node.preimages.withLock { $0[Bolt11Invoice.sha256(m.preimage).hexString] = m.preimage }
        let transport = ScriptedTransport([.respond(ScriptedTransport.challenge([m.header])),
                                           .respond(ScriptedTransport.status(200, "paid"))])
        let events = EventLog()
        let config = try client(backing, transport: transport, node: node, events: events)
        let response = try await RouteweilerClient.withClient(configuration: config) { rw in
            try await rw.get("http://127.0.0.1:9/p")
        }
        #expect(response.payment != nil)
        #expect(node.payments == 1)
        let payee = factory.key.publicKey.compressed.hexString
        let traced = try await backing.traceSink().events(limit: 10)
        #expect(traced.first?.challenge?.payee.identifier == payee)
        #expect(traced.first?.reservation?.state == "settled")
        let selected = events.events.withLock { $0 }.compactMap { e -> NormalizedChallenge? in
            if case .offerSelected(let c, _) = e { return c } else { return nil }
        }
        #expect(selected.map(\.payee.identifier) == [payee])
    }

    /// A check started in the background and asked for from several threads runs once; a `run()` that comes while
    /// it is under way waits for its outcome; a failure is kept and given to every caller.
    @Test func aStartedCheckRunsOnceAndEveryCallerGetsItsOutcome() async throws {
        let runs = Atomic<Int>(0)
        func check(passing: Bool, delay: Double) -> DeferredOfferCheck {
            DeferredOfferCheck {
                runs.add(1, ordering: .relaxed)
                Thread.sleep(forTimeInterval: delay)
                guard passing else { throw ChallengeError("Invalid BOLT-11 invoice: invalidSignature", rail: .l402) }
                return "02ab"
            }
        }
        // Started, then awaited while the background run is (very likely) under way: one run, its payee.
        let slow = check(passing: true, delay: 0.05)
        #expect(slow.payeeIdentifier == nil)
        slow.start()
        try await Task.sleep(for: .milliseconds(10))
        try slow.run()
        #expect(slow.payeeIdentifier == "02ab")
        #expect(runs.load(ordering: .relaxed) == 1)

        // Many callers at once, some starting it, some running it: still one run, and all see the failure.
        runs.store(0, ordering: .relaxed)
        let failing = check(passing: false, delay: 0.02)
        let failures = await withTaskGroup(of: Bool.self) { group in
            for i in 0..<16 {
                group.addTask {
                    if i.isMultiple(of: 2) { failing.start() }
                    do { try failing.run(); return false } catch { return error is ChallengeError }
                }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(failures == 16)
        #expect(runs.load(ordering: .relaxed) == 1)
        #expect(failing.payeeIdentifier == nil)
    }

    /// Without a budget envelope the router runs the check at once, and a bad invoice is refused while
    /// routing, as a rejected offer.
    @Test func withoutABudgetTheCheckRunsWhileRouting() async throws {
        let node = TableNode()
        let transport = ScriptedTransport([.respond(ScriptedTransport.challenge([try badSignatureHeader()]))])
        var config = RouteweilerClient.Configuration(
            funding: [try LightningFundingSource(node: node, network: .bitcoinRegtest, nodePubkey: node.pubkey)])
        config.transport = transport
        let quote = try await RouteweilerClient.withClient(configuration: config) { rw in
            try await rw.quote("http://127.0.0.1:9/p")
        }
        #expect(quote.offers.count == 1)
        #expect(quote.offers.first?.payable == false)
        #expect(quote.offers.first?.rejection?.code == "ChallengeParseError")
        #expect(node.payments == 0)
    }

    @Test func anUnverifiedInvoiceHasEveryFieldButThePayee() throws {
        let m = try factory.mint(includePayee: false)
        let full = try Bolt11Invoice(parsing: m.invoice)
        let unverified = try UnverifiedBolt11Invoice(parsing: m.invoice)
        #expect(unverified.fields.payeePublicKey.isEmpty)
        #expect(unverified.fields.paymentHash == full.paymentHash)
        #expect(unverified.fields.amountMsat == full.amountMsat)
        #expect(try unverified.verified() == full)
        #expect(full.payeePublicKey == factory.key.publicKey.compressed)
        // A signature that does not verify passes decoding and fails verification.
        let header = try badSignatureHeader()
        let invoice = String(header.split(separator: "invoice=\"")[1].dropLast())
        let bad = try UnverifiedBolt11Invoice(parsing: invoice)
        #expect(throws: Bolt11Error.invalidSignature) { _ = try bad.verified() }
        #expect(throws: Bolt11Error.invalidSignature) { _ = try Bolt11Invoice(parsing: invoice) }
    }
}
