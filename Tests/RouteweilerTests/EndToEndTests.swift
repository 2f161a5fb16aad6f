import AsyncHTTPClient
import Foundation
import GRDB
import HTTPTypes
import LNDClient
import Logging
import Routeweiler
import RouteweilerL402
import RouteweilerSQLite
import RouteweilerTesting
import RouteweilerWire
import Synchronization
import Testing

/// The paywall, the fake node and a connected LND client, all on real sockets.
struct Stack: Sendable {
    let network: FakeLightningNetwork
    let lnd: FakeLND
    let paywall: FakePaywall
    let client: LNDClient
    let source: LightningFundingSource

    static func run<R: Sendable>(
        paywall paywallConfig: FakePaywall.Configuration = .init(),
        lnd lndConfig: FakeLND.Configuration = .init(),
        _ body: (Stack) async throws -> R
    ) async throws -> R {
        let network = FakeLightningNetwork()
        return try await FakeLND.withFakeLND(network: network, configuration: lndConfig) { lnd in
            try await FakePaywall.withPaywall(network: network, configuration: paywallConfig) { paywall in
                try await LNDClient.withClient(configuration: lnd.clientConfiguration) { client in
                    let source = try await LightningFundingSource.create(lnd: client, network: .bitcoinRegtest)
                    return try await body(Stack(network: network, lnd: lnd, paywall: paywall, client: client,
                                                source: source))
                }
            }
        }
    }

    func configuration(sink: (any TraceSink)? = nil, funding: [any FundingSource]? = nil) -> RouteweilerClient.Configuration {
        var config = RouteweilerClient.Configuration(funding: funding ?? [source])
        config.traceSink = sink
        config.paidRetry.backoff = .milliseconds(20)
        return config
    }
}

/// Collects every log record (message and metadata) for secret-leak checks.
final class CollectingLogHandler: LogHandler {
    let lines: Mutex<[String]> = Mutex([])
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
             function: String, line: UInt) {
        let all = self.metadata.merging(metadata ?? [:]) { $1 }
        lines.withLock { $0.append("\(message) \(all)") }
    }
}

@Suite(.serialized) struct EndToEndTests {
    @Test func paysTheFakePaywallThroughFakeLNDOverTLS() async throws {
        try await Stack.run { stack in
            let path = temporaryDatabasePath()
            let sink = try SQLiteTraceSink(path: path)
            var config = stack.configuration(sink: sink)
            let seenHeaders = Mutex<[String]>([])
            config.onEvent = { event in
                if case .challenged(_, let headers) = event { seenHeaders.withLock { $0 += headers } }
            }
            let handler = CollectingLogHandler()
            config.logger = Logger(label: "test", factory: { _ in handler })
            let response = try await RouteweilerClient.withClient(configuration: config) { rw in
                try await rw.get(stack.paywall.url("/protected"))
            }
            #expect(response.status == .ok)
            #expect(response.text == #"{"result":"ok","rail":"l402"}"#)
            let payment = try #require(response.payment)
            #expect(payment.rail == .l402)
            #expect(payment.amountNative == 10)
            #expect(payment.proofType == .preimage)
            #expect(stack.lnd.paymentCount == 1)
            #expect(stack.paywall.stats.paidRequestsServed == 1)
            #expect(stack.lnd.receivedMacaroons.allSatisfy { $0 == stack.lnd.macaroonHex })
            let preimage = try #require(payment.proofValue.flatMap { Hex.decode($0) })
            #expect(await stack.network.isSettled(paymentHash: Bolt11Invoice.sha256(preimage)))

            // Exactly one trace row, with the SPEC payload.
            #expect(try await sink.count() == 1)
            let event = try #require(try await sink.events().first)
            #expect(event.requestId == response.requestID)
            #expect(event.selectedRail == .l402)
            #expect(event.payment?.proofType == .preimage)
            #expect(event.payment?.proofValue == payment.proofValue)
            #expect(event.payment?.amountNative == 10)
            #expect(event.payment?.amountNativeCurrency == "btc-lightning")
            #expect(event.payment?.fmvQuality == .unavailable)
            #expect(event.outcome.httpStatus == 200)
            #expect(event.outcome.serviceDelivered)
            #expect(event.fundingSource == "lightning:bitcoin-regtest")
            #expect(event.policyHash == RouteweilerClient.defaultPolicyHash)

            // The macaroon (a bearer credential) is in neither the trace file nor the logs.
            let header = try #require(seenHeaders.withLock { $0.first })
            let macaroon = try #require(header.split(separator: "\"").dropFirst().first.map(String.init))
            #expect(macaroon.count > 40)
            let fileBytes = try Data(contentsOf: URL(fileURLWithPath: path))
            let wal = (try? Data(contentsOf: URL(fileURLWithPath: path + "-wal"))) ?? Data()
            #expect(fileBytes.range(of: Data(macaroon.utf8)) == nil)
            #expect(wal.range(of: Data(macaroon.utf8)) == nil)
            let logs = handler.lines.withLock { $0 }.joined(separator: "\n")
            #expect(!logs.isEmpty)
            #expect(!logs.contains(macaroon))
            #expect(!logs.contains(stack.lnd.macaroonHex))
            #expect(!logs.contains("L402 "))
        }
    }

    /// A client given an AsyncHTTPClient sends through it (the paid call and its retry included) and leaves it
    /// running when it shuts down: the application still owns it.
    @Test func aGivenHTTPClientCarriesTheCallsAndOutlivesTheClient() async throws {
        try await Stack.run { stack in
            var ahcConfig = HTTPClient.Configuration()
            ahcConfig.redirectConfiguration = .disallow
            let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: ahcConfig)
            var config = stack.configuration()
            config.httpClient = http
            let (paid, free) = try await RouteweilerClient.withClient(configuration: config) { rw in
                (try await rw.get(stack.paywall.url("/protected")), try await rw.get(stack.paywall.url("/free")))
            }
            #expect(paid.status == .ok && paid.payment != nil)
            #expect(free.text == #"{"free":true}"#)
            #expect(stack.lnd.paymentCount == 1)
            // Still usable after the Routeweiler client shut down.
            let again = try await http.execute(HTTPClientRequest(url: stack.paywall.url("/free")), timeout: .seconds(10))
            #expect(again.status == .ok)
            _ = try await again.body.collect(upTo: 1024)
            try await http.shutdown()
        }
    }

    @Test func aFreeCallIsPassedThroughAndTracedOnce() async throws {
        try await Stack.run { stack in
            let sink = InMemoryTraceSink()
            let response = try await RouteweilerClient.withClient(configuration: stack.configuration(sink: sink)) { rw in
                try await rw.get(stack.paywall.url("/free"))
            }
            #expect(response.text == #"{"free":true}"#)
            #expect(response.payment == nil)
            let events = await sink.events
            #expect(events.count == 1)
            #expect(events[0].selectedRail == nil)
            #expect(events[0].outcome.httpStatus == 200)
            #expect(stack.lnd.paymentCount == 0)
        }
    }

    @Test func aFailedPaymentIsAnInvoicePaymentErrorAndNothingMoved() async throws {
        try await Stack.run { stack in
            stack.lnd.failNextPayment(reason: "FAILURE_REASON_NO_ROUTE")
            let sink = InMemoryTraceSink()
            let error = await #expect(throws: InvoicePaymentError.self) {
                try await RouteweilerClient.withClient(configuration: stack.configuration(sink: sink)) { rw in
                    try await rw.get(stack.paywall.url("/protected"))
                }
            }
            #expect(error?.code == .paymentFailed)
            #expect(error?.failureReason == "FAILURE_REASON_NO_ROUTE")
            #expect(error?.mayHaveMovedFunds == false)
            #expect(stack.paywall.stats.paidRequestsServed == 0)
            let events = await sink.events
            #expect(events.count == 1)
            #expect(events[0].outcome.error?.code == "InvoicePaymentError")
            #expect(events[0].payment == nil)
        }
    }

    @Test func aStreamBrokenInFlightIsSettledWithTrackPaymentV2() async throws {
        try await Stack.run { stack in
            stack.lnd.breakStreamAfterInFlight()
            let response = try await RouteweilerClient.withClient(configuration: stack.configuration()) { rw in
                try await rw.get(stack.paywall.url("/protected"))
            }
            #expect(response.status == .ok)
            #expect(stack.lnd.calls.contains { $0.contains("TrackPaymentV2") })
            #expect(stack.lnd.paymentCount == 1)
        }
    }

    @Test func aWrongPreimageIsCaughtAfterPaymentAndNotRetried() async throws {
        try await Stack.run { stack in
            stack.lnd.returnWrongPreimage()
            let sink = InMemoryTraceSink()
            let error = await #expect(throws: PreimageMismatchError.self) {
                try await RouteweilerClient.withClient(configuration: stack.configuration(sink: sink)) { rw in
                    try await rw.get(stack.paywall.url("/protected"))
                }
            }
            #expect(error?.mayHaveMovedFunds == true)
            #expect(stack.lnd.paymentCount == 1)
            #expect(stack.paywall.stats.protectedRequests == 1)
            #expect(await sink.events.first?.outcome.error?.code == "PreimageMismatchError")
        }
    }

    @Test func aServerThatStillAnswers402AfterPaymentIsNotPaidAgain() async throws {
        var paywall = FakePaywall.Configuration()
        paywall.refuseProofs = true
        try await Stack.run(paywall: paywall) { stack in
            let sink = InMemoryTraceSink()
            let error = await #expect(throws: ProofRejectedError.self) {
                try await RouteweilerClient.withClient(configuration: stack.configuration(sink: sink)) { rw in
                    try await rw.get(stack.paywall.url("/protected"))
                }
            }
            #expect(error?.status == 402)
            #expect(error?.message.contains("refused") == true)
            #expect(stack.lnd.paymentCount == 1)
            #expect(stack.paywall.stats.challengesIssued == 2)
            let events = await sink.events
            #expect(events.count == 1)
            #expect(events[0].payment?.proofValue == error?.payment.proofValue)
            #expect(events[0].payment?.proofValue?.count == 64)
            #expect(events[0].outcome.error?.code == "ProofRejectedError")
        }
    }

    @Test func aPaidRetryLostOnTheNetworkIsResentWithTheSameProof() async throws {
        var paywall = FakePaywall.Configuration()
        paywall.dropPaidRetries = 1
        try await Stack.run(paywall: paywall) { stack in
            let response = try await RouteweilerClient.withClient(configuration: stack.configuration()) { rw in
                try await rw.post(stack.paywall.url("/protected"), body: Array("hello".utf8))
            }
            #expect(response.status == .ok)
            #expect(stack.lnd.paymentCount == 1)
            #expect(stack.paywall.stats.protectedRequests == 3)
            #expect(stack.paywall.stats.servedBodies == [Array("hello".utf8)])
        }
    }

    @Test func lsatAndL402ChallengesForOneTokenArePaidOnce() async throws {
        var paywall = FakePaywall.Configuration()
        paywall.schemes = ["LSAT", "L402"]
        try await Stack.run(paywall: paywall) { stack in
            let response = try await RouteweilerClient.withClient(configuration: stack.configuration()) { rw in
                try await rw.get(stack.paywall.url("/protected"))
            }
            #expect(response.status == .ok)
            #expect(stack.lnd.paymentCount == 1)
        }
    }

    @Test func anUnreachableNodeSaysSoAndNothingMoves() async throws {
        try await Stack.run { stack in
            // A port that was open a moment ago and is now closed.
            let closedPort = try await FakeLND.withFakeLND { $0.port }
            var lndConfig = stack.lnd.clientConfiguration
            lndConfig.port = closedPort
            lndConfig.timeout = .seconds(5)
            try await LNDClient.withClient(configuration: lndConfig) { dead in
                let source = try LightningFundingSource(node: dead, network: .bitcoinRegtest, nodePubkey: stack.source.nodePubkey)
                let error = await #expect(throws: InvoicePaymentError.self) {
                    try await RouteweilerClient.withClient(configuration: stack.configuration(funding: [source])) { rw in
                        try await rw.get(stack.paywall.url("/protected"))
                    }
                }
                #expect(error?.code == .nodeUnreachable)
                #expect(error?.mayHaveMovedFunds == false)
            }
        }
    }

    @Test func aRejectedMacaroonSaysSo() async throws {
        try await Stack.run { stack in
            var lndConfig = stack.lnd.clientConfiguration
            lndConfig.macaroon = .hex("0201036c6e64")
            try await LNDClient.withClient(configuration: lndConfig) { wrong in
                let created = await #expect(throws: InvoicePaymentError.self) {
                    _ = try await LightningFundingSource.create(lnd: wrong, network: .bitcoinRegtest)
                }
                #expect(created?.code == .macaroonRejected)
                let source = try LightningFundingSource(node: wrong, network: .bitcoinRegtest, nodePubkey: stack.source.nodePubkey)
                let error = await #expect(throws: InvoicePaymentError.self) {
                    try await RouteweilerClient.withClient(configuration: stack.configuration(funding: [source])) { rw in
                        try await rw.get(stack.paywall.url("/protected"))
                    }
                }
                #expect(error?.code == .macaroonRejected)
                #expect(error?.mayHaveMovedFunds == false)
                #expect(!(error?.message.contains("0201036c6e64") ?? true))
            }
            #expect(stack.lnd.paymentCount == 0)
        }
    }

    @Test func aCertificateThatIsNotThePinnedOneIsRefused() async throws {
        try await Stack.run { stack in
            var lndConfig = stack.lnd.clientConfiguration
            lndConfig.tlsCertificate = .pem(try SelfSignedCertificate().certificatePEM)
            try await LNDClient.withClient(configuration: lndConfig) { pinnedElsewhere in
                let source = try LightningFundingSource(node: pinnedElsewhere, network: .bitcoinRegtest,
                                                        nodePubkey: stack.source.nodePubkey)
                let error = await #expect(throws: InvoicePaymentError.self) {
                    try await RouteweilerClient.withClient(configuration: stack.configuration(funding: [source])) { rw in
                        try await rw.get(stack.paywall.url("/protected"))
                    }
                }
                #expect(error?.code == .certificateMismatch)
                #expect(error?.mayHaveMovedFunds == false)
            }
            #expect(stack.lnd.paymentCount == 0)
        }
    }

    @Test func theFundingSourceChecksTheNodesNetwork() async throws {
        try await Stack.run { stack in
            let error = await #expect(throws: ConfigurationError.self) {
                _ = try await LightningFundingSource.create(lnd: stack.client, network: .bitcoin)
            }
            #expect(error?.message.contains("regtest") == true)
            #expect(throws: ConfigurationError.self) {
                _ = try Funding.lightningLND(client: stack.client, network: .bitcoinRegtest, nodePubkey: "02abc")
            }
        }
    }

    @Test func concurrentCallsEachPayOnceAndTraceOnce() async throws {
        try await Stack.run { stack in
            let sink = try SQLiteTraceSink(path: temporaryDatabasePath())
            var config = stack.configuration(sink: sink)
            config.reuseCredentials = false  // every call pays
            try await RouteweilerClient.withClient(configuration: config) { rw in
                try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<16 {
                        group.addTask { Int(try await rw.get(stack.paywall.url("/protected")).status.code) }
                    }
                    for try await status in group { #expect(status == 200) }
                }
            }
            #expect(stack.lnd.paymentCount == 16)
            #expect(try await sink.count() == 16)
        }
    }
}
