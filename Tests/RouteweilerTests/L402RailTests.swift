import Crypto
import Foundation
import HTTPTypes
import Routeweiler
@testable import RouteweilerL402
import RouteweilerTesting
import RouteweilerWire
import Synchronization
import Testing

/// An in-memory Lightning node that knows the preimages of the invoices the test minted.
final class TableNode: LightningNode {
    let preimages: Mutex<[String: [UInt8]]> = Mutex([:])
    let paid = Mutex(0)
    let pubkey: String
    init(pubkey: String = "02" + String(repeating: "ab", count: 32)) { self.pubkey = pubkey }
    func nodeInfo() async throws -> LightningNodeInfo { .init(pubkey: pubkey, network: .bitcoinRegtest) }
    func pay(invoice: Bolt11Invoice, maxFeeMsat: UInt64, timeout: Duration) async throws -> LightningPayment {
        guard let p = preimages.withLock({ $0[invoice.paymentHash.hexString] }) else {
            throw InvoicePaymentError(code: .paymentFailed, message: "unknown invoice",
                                      failureReason: "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS", mayHaveMovedFunds: false)
        }
        paid.withLock { $0 += 1 }
        return LightningPayment(paymentHash: invoice.paymentHash, preimage: p, feeMsat: 0)
    }
    func paymentStatus(paymentHash: [UInt8]) async throws -> LightningPaymentStatus { .notFound }
    var payments: Int { paid.withLock { $0 } }
}

/// Builds real signed invoices and real macaroons for scripted 402 responses.
struct ChallengeFactory {
    let key = try! Secp256k1.PrivateKey(bytes: Array(repeating: 0x11, count: 32))
    let rootKey = Array(repeating: UInt8(7), count: 32)

    struct Minted {
        var header: String
        var macaroon: String
        var invoice: String
        var preimage: [UInt8]
    }

    func mint(network: LightningNetwork = .bitcoinRegtest, amountMsat: UInt64? = 10_000, scheme: String = "L402",
              timestamp: UInt64 = UInt64(Date().timeIntervalSince1970), expiry: UInt64 = 3600,
              caveats: [String] = [], bindHash: [UInt8]? = nil, preimage: [UInt8]? = nil,
              includePayee: Bool = false) throws -> Minted {
        let preimage = preimage ?? (0..<32).map { _ in UInt8.random(in: 0...255) }
        let hash = Array(SHA256.hash(data: preimage))
        let invoice = try Bolt11Invoice.sign(
            network: network, amountMsat: amountMsat, timestamp: timestamp, paymentHash: hash,
            paymentSecret: Array(repeating: 1, count: 32), description: "test", descriptionHash: nil,
            expirySeconds: expiry, includePayeePublicKey: includePayee, privateKey: key)
        var mac = Macaroon.mint(rootKey: rootKey,
                                identifier: L402Identifier(paymentHash: bindHash ?? hash, tokenID: Array(repeating: 2, count: 32)).bytes,
                                location: "test")
        for c in caveats { mac = mac.addingFirstPartyCaveat(c) }
        return Minted(header: "\(scheme) macaroon=\"\(mac.base64)\", invoice=\"\(invoice.paymentRequest)\"",
                      macaroon: mac.base64, invoice: invoice.paymentRequest, preimage: preimage)
    }
}

@Suite struct L402RailTests {
    /// The offer's human-readable price: thousands grouped with commas, a millisatoshi part as up to three
    /// decimals without trailing zeros; checked on fixed cases and against a character-by-character formatter.
    @Test func theHumanPriceGroupsThousandsAndKeepsMillisatoshis() {
        #expect(L402Rail.humanSats(0, msat: 0) == "0 sats")
        #expect(L402Rail.humanSats(999, msat: 999_000) == "999 sats")
        #expect(L402Rail.humanSats(5_000, msat: 5_000_000) == "5,000 sats")
        #expect(L402Rail.humanSats(1_234_567, msat: 1_234_567_000) == "1,234,567 sats")
        #expect(L402Rail.humanSats(2, msat: 2_500) == "2.5 sats")
        #expect(L402Rail.humanSats(1, msat: 1_001) == "1.001 sats")
        #expect(L402Rail.humanSats(0, msat: 30) == "0.03 sats")
        #expect(L402Rail.humanSats(UInt64.max / 1000, msat: UInt64.max) == "18,446,744,073,709,551.615 sats")
        func reference(_ msat: UInt64) -> String {
            var digits = Array(String(msat / 1000))
            var out: [Character] = []
            while digits.count > 3 {
                out.insert(contentsOf: [","] + digits.suffix(3), at: 0)
                digits.removeLast(3)
            }
            out.insert(contentsOf: digits, at: 0)
            var s = String(out)
            if msat % 1000 != 0 {
                var frac = String(msat % 1000)
                while frac.count < 3 { frac = "0" + frac }
                while frac.hasSuffix("0") { frac.removeLast() }
                s += "." + frac
            }
            return s + " sats"
        }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            let msat = UInt64.random(in: 0...UInt64.max, using: &rng) >> UInt64.random(in: 0...63, using: &rng)
            #expect(L402Rail.humanSats(msat / 1000, msat: msat) == reference(msat))
        }
    }

    let factory = ChallengeFactory()

    func client(_ transport: ScriptedTransport, node: TableNode, network: LightningNetwork = .bitcoinRegtest,
                maxAmountMsat: UInt64? = nil, sink: InMemoryTraceSink? = nil) throws -> RouteweilerClient {
        var config = RouteweilerClient.Configuration(
            funding: [try LightningFundingSource(node: node, network: network, nodePubkey: node.pubkey,
                                                 maxAmountMsat: maxAmountMsat)])
        config.transport = transport
        config.traceSink = sink
        config.paidRetry.backoff = .milliseconds(1)
        return try RouteweilerClient(configuration: config)
    }

    /// The client keeps the last URL string it parsed: every call still goes to the URL it was given, and a string
    /// that is not an http(s) URL is refused whatever came before.
    @Test func eachCallGoesToItsOwnURL() async throws {
        let urls = ["http://127.0.0.1:9/a", "http://127.0.0.1:9/a", "HTTP://LocalHost:9/b?x=1", "http://127.0.0.1:9/a",
                    "https://user@127.0.0.1/c", "http://127.0.0.1:9/a"]
        let transport = ScriptedTransport(urls.map { _ in .respond(ScriptedTransport.status(200, "free")) })
        let rw = try client(transport, node: TableNode())
        for url in urls { _ = try await rw.get(url) }
        #expect(transport.requests.map(\.url.absoluteString) == urls)
        #expect(transport.requests.map(\.origin) == ["http://127.0.0.1:9", "http://127.0.0.1:9", "http://localhost:9",
                                                     "http://127.0.0.1:9", "https://127.0.0.1:443", "http://127.0.0.1:9"])
        await #expect(throws: ConfigurationError.self) { _ = try await rw.get("ftp://127.0.0.1:9/a") }
        await #expect(throws: ConfigurationError.self) { _ = try await rw.get("ftp://127.0.0.1:9/a") }
        #expect(transport.requests.count == urls.count)
    }

    @Test func paysAndRetriesWithTheMirroredScheme() async throws {
        for scheme in ["L402", "LSAT"] {
            let m = try factory.mint(scheme: scheme)
            let node = TableNode()
            node.preimages.withLock { $0[Bolt11Invoice.sha256(m.preimage).hexString] = m.preimage }
            let transport = ScriptedTransport([.respond(ScriptedTransport.challenge([m.header])),
                                               .respond(ScriptedTransport.status(200, "paid"))])
            let rw = try client(transport, node: node)
            let response = try await rw.get("http://127.0.0.1:9/protected")
            #expect(response.text == "paid")
            #expect(response.payment?.proofValue == m.preimage.hexString)
            #expect(response.payment?.amountNative == 10)
            #expect(node.payments == 1)
            let retry = transport.requests[1]
            #expect(retry.headerFields[.authorization] == "\(scheme) \(m.macaroon):\(m.preimage.hexString)")
        }
    }

    @Test func lsatAndL402ForTheSameTokenPayOnceAsL402() async throws {
        let m = try factory.mint()
        let lsat = m.header.replacingOccurrences(of: "L402 ", with: "LSAT ")
        let node = TableNode()
        node.preimages.withLock { $0[Bolt11Invoice.sha256(m.preimage).hexString] = m.preimage }
        let transport = ScriptedTransport([.respond(ScriptedTransport.challenge([lsat + ", " + m.header])),
                                           .respond(ScriptedTransport.status(200))])
        _ = try await client(transport, node: node).get("http://127.0.0.1:9/p")
        #expect(node.payments == 1)
        #expect(transport.requests[1].headerFields[.authorization]?.hasPrefix("L402 ") == true)
    }

    @Test func tokenParameterIsAccepted() async throws {
        let m = try factory.mint()
        let node = TableNode()
        node.preimages.withLock { $0[Bolt11Invoice.sha256(m.preimage).hexString] = m.preimage }
        let header = m.header.replacingOccurrences(of: "macaroon=", with: "token=") + ", version=\"0\""
        let transport = ScriptedTransport([.respond(ScriptedTransport.challenge([header])),
                                           .respond(ScriptedTransport.status(200))])
        let r = try await client(transport, node: node).get("http://127.0.0.1:9/p")
        #expect(r.payment != nil)
    }

    enum Bad: String, CaseIterable, Sendable {
        case truncated, badChecksum, badSignature, notAnInvoice, wrongNetwork, expired, amountless, hashMismatch,
            expiredCaveat, overLimit
    }

    @Test(arguments: Bad.allCases)
    func badChallengesAreTypedErrorsAndPayNothing(_ bad: Bad) async throws {
        let now = UInt64(Date().timeIntervalSince1970)
        var header: String
        var maxAmount: UInt64?
        switch bad {
        case .truncated:
            header = "L402 macaroon=\"AgEEbHNhdA"
        case .badChecksum:
            let m = try factory.mint()
            var chars = Array(m.invoice)
            chars[chars.count - 1] = chars[chars.count - 1] == "q" ? "p" : "q"
            header = m.header.replacingOccurrences(of: m.invoice, with: String(chars))
        case .badSignature:
            // Re-encode the same data with a corrupted signature word and a valid checksum; the `n` field
            // names the payee, so the signature must verify against it.
            let m = try factory.mint(includePayee: true)
            let decoded = try Bech32.decode(m.invoice)
            var w = decoded.words
            w[w.count - 10] ^= 1
            header = m.header.replacingOccurrences(
                of: m.invoice, with: try Bech32.encode(humanReadablePart: decoded.humanReadablePart, words: w))
        case .notAnInvoice:
            header = "L402 macaroon=\"AgEEbHNhdA==\", invoice=\"not-a-bolt11\""
        case .wrongNetwork:
            header = try factory.mint(network: .bitcoinTestnet).header
        case .expired:
            header = try factory.mint(timestamp: now - 7200, expiry: 60).header
        case .amountless:
            header = try factory.mint(amountMsat: nil).header
        case .hashMismatch:
            header = try factory.mint(bindHash: Array(repeating: 9, count: 32)).header
        case .expiredCaveat:
            header = try factory.mint(caveats: ["valid_until=\(now - 10)"]).header
        case .overLimit:
            header = try factory.mint(amountMsat: 50_000).header
            maxAmount = 20_000
        }
        let node = TableNode()
        let sink = InMemoryTraceSink()
        let transport = ScriptedTransport([.respond(ScriptedTransport.challenge([header]))])
        let rw = try client(transport, node: node, maxAmountMsat: maxAmount, sink: sink)
        do {
            _ = try await rw.get("http://127.0.0.1:9/p")
            Issue.record("expected an error for \(bad)")
        } catch let error as any RouteweilerError {
            #expect(!error.mayHaveMovedFunds)
            switch bad {
            case .truncated, .badChecksum, .badSignature, .notAnInvoice:
                #expect(error.errorName == "ChallengeParseError", "\(bad): \(error)")
            case .wrongNetwork:
                #expect((error as? NoFundingForRailError)?.code == .networkMismatch, "\(error)")
            case .expired, .expiredCaveat:
                #expect(error is ChallengeExpiredError, "\(error)")
            case .amountless:
                #expect((error as? InvalidChallengeError)?.code == .amountlessInvoice, "\(error)")
            case .hashMismatch:
                #expect((error as? InvalidChallengeError)?.code == .paymentHashMismatch, "\(error)")
            case .overLimit:
                #expect((error as? InvalidChallengeError)?.code == .amountTooHigh, "\(error)")
            }
        }
        #expect(node.payments == 0)
        #expect(transport.requests.count == 1)
        let events = await sink.events
        #expect(events.count == 1)
        #expect(events.first?.payment == nil)
        #expect(events.first?.outcome.error != nil)
    }

    @Test func aWrongPreimageIsAPostCommitError() async throws {
        let m = try factory.mint()
        let node = TableNode()
        node.preimages.withLock { $0[Bolt11Invoice.sha256(m.preimage).hexString] = Array(repeating: 0, count: 32) }
        let transport = ScriptedTransport([.respond(ScriptedTransport.challenge([m.header]))])
        await #expect(throws: PreimageMismatchError.self) { _ = try await client(transport, node: node).get("http://127.0.0.1:9/p") }
        #expect(node.payments == 1)
        #expect(transport.requests.count == 1)
    }

    @Test func anUnsupportedChallengeIsRailNotSupported() async throws {
        let transport = ScriptedTransport([.respond(ScriptedTransport.challenge(["Bearer realm=\"x\""]))])
        let sink = InMemoryTraceSink()
        await #expect(throws: RailNotSupportedError.self) {
            _ = try await client(transport, node: TableNode(), sink: sink).get("http://127.0.0.1:9/p")
        }
        #expect(await sink.events.first?.outcome.error?.code == "RailNotSupportedError")
        #expect(await sink.events.first?.outcome.httpStatus == 402)
    }

    @Test func theRequestBodyIsSentAgainOnThePaidRetry() async throws {
        let m = try factory.mint()
        let node = TableNode()
        node.preimages.withLock { $0[Bolt11Invoice.sha256(m.preimage).hexString] = m.preimage }
        let transport = ScriptedTransport([.respond(ScriptedTransport.challenge([m.header])),
                                           .fail("connection reset"), .respond(ScriptedTransport.status(201))])
        let r = try await client(transport, node: node).post(
            "http://127.0.0.1:9/p", headers: [.contentType: "application/json"], body: Array(#"{"q":1}"#.utf8))
        #expect(r.status.code == 201)
        #expect(node.payments == 1)
        #expect(transport.requests.count == 3)
        for req in transport.requests {
            #expect(req.body == Array(#"{"q":1}"#.utf8))
            #expect(req.method == .post)
            #expect(req.headerFields[.contentType] == "application/json")
        }
        #expect(transport.requests[1].headerFields[.authorization] == transport.requests[2].headerFields[.authorization])
    }
}
