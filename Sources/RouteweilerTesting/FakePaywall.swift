import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import RouteweilerWire
import Synchronization

/// An L402 and x402 paywall over real HTTP on 127.0.0.1, for tests and offline demos.
///
/// It mints real macaroons (HMAC chain, L402 identifier `version ‖ payment hash ‖ token id`) and real signed
/// BOLT-11 invoices, registers each invoice on a shared ``FakeLightningNetwork`` that ``FakeLND`` pays over, and
/// verifies `Authorization: L402 <macaroon>:<preimage>` (or `LSAT`) before serving the protected resource.
/// With ``Configuration/x402`` set it also (or only) asks for x402 v1/v2 payments, checks each EIP-3009
/// authorisation's EIP-712 signature and settles it on an in-memory ``FakeUSDCLedger``, answering with a
/// `PAYMENT-RESPONSE` receipt.
///
/// ```swift
/// try await FakePaywall.withPaywall(network: network) { paywall in
///     let response = try await rw.get(paywall.url("/protected"))
/// }
/// ```
public final class FakePaywall: Sendable {
    /// How the paywall behaves; change it to script faults.
    public struct Configuration: Sendable {
        /// Price of one call in millisatoshi. Default 10 000 (10 sats).
        public var priceMsat: UInt64 = 10_000
        /// Network of the invoices. Default regtest.
        public var network: LightningNetwork = .bitcoinRegtest
        /// Which challenges to send: `["L402"]`, `["LSAT"]`, or both (one token offered twice).
        public var schemes: [String] = ["L402"]
        /// Name of the token parameter: `macaroon` (default) or `token`.
        public var tokenParameter = "macaroon"
        /// Invoice expiry in seconds. Default 3600.
        public var invoiceExpirySeconds: UInt64 = 3600
        /// Seconds to back-date invoice timestamps (to mint expired invoices).
        public var invoiceBackdateSeconds: UInt64 = 0
        /// Extra first-party caveats on every macaroon, e.g. `services=demo:0`.
        public var caveats: [String] = []
        /// Mint invoices without an amount.
        public var amountless = false
        /// Put another payment hash in the macaroon than in the invoice.
        public var mismatchedPaymentHash = false
        /// Answer 402 even to a valid proof.
        public var refuseProofs = false
        /// Drop the connection of this many paid retries before answering (tests of retry with the same proof).
        public var dropPaidRetries = 0
        /// Accept each token once only (a later request with it gets a fresh 402).
        public var singleUseTokens = false
        /// The description of the invoices.
        public var invoiceDescription = "Routeweiler fake paywall"
        /// Also (or, with empty `schemes`, only) ask for an x402 payment, settled on the paywall's ``ledger``.
        public var x402: FakeX402Offering?
        public init() {}
    }

    /// What the paywall has seen.
    public struct Stats: Sendable, Hashable {
        /// Every request to a protected path.
        public var protectedRequests = 0
        /// Challenges (402) sent.
        public var challengesIssued = 0
        /// Requests served because their proof was valid.
        public var paidRequestsServed = 0
        /// Proofs refused.
        public var proofsRejected = 0
        /// Bodies of served paid requests, in order.
        public var servedBodies: [[UInt8]] = []
        /// Requests that carried an `Authorization` header (on any path).
        public var authorizationHeadersSeen = 0
        /// x402 payment headers received (`PAYMENT-SIGNATURE` or `X-PAYMENT`).
        public var x402PaymentsReceived = 0
        /// Every x402 payment header received, in order.
        public var x402PaymentHeaders: [String] = []
        /// x402 payments refused, with the facilitator-style reason.
        public var x402Refusals: [String] = []
    }

    public let network: FakeLightningNetwork
    /// The token ledger x402 payments settle on.
    public let ledger: FakeUSDCLedger
    private let state: Mutex<(config: Configuration, stats: Stats, dropped: Int, port: Int?, usedTokens: Set<String>)>
    private let rootKey: [UInt8]
    private let nodeKey: Secp256k1.PrivateKey
    private let server = LocalHTTPServer()

    /// Creates a paywall; call ``start()`` (or use ``withPaywall(network:configuration:_:)``).
    public init(network: FakeLightningNetwork, configuration: Configuration = .init(),
                ledger: FakeUSDCLedger = FakeUSDCLedger()) {
        self.network = network
        self.ledger = ledger
        self.state = Mutex((configuration, Stats(), 0, nil, []))
        self.rootKey = Self.randomBytes(32)
        var key: Secp256k1.PrivateKey?
        while key == nil { key = try? Secp256k1.PrivateKey(bytes: Self.randomBytes(32)) }
        self.nodeKey = key!
    }

    /// The payee node's public key (66 hex), as found in the invoices.
    public var nodePubkey: String { nodeKey.publicKey.compressed.hexString }
    /// The bound port; valid after ``start()``.
    public var port: Int { state.withLock { $0.port ?? 0 } }
    /// `http://127.0.0.1:<port>`.
    public var baseURL: String { "http://127.0.0.1:\(port)" }
    /// An absolute URL on the paywall.
    public func url(_ path: String) -> String { baseURL + path }
    public var stats: Stats { state.withLock { $0.stats } }
    /// Changes the behaviour of the running paywall.
    public func configure(_ change: (inout Configuration) -> Void) { state.withLock { change(&$0.config) } }

    /// Runs `body` with a started paywall and stops it afterwards.
    public static func withPaywall<R: Sendable>(
        network: FakeLightningNetwork, configuration: Configuration = .init(),
        ledger: FakeUSDCLedger = FakeUSDCLedger(),
        _ body: (FakePaywall) async throws -> R
    ) async throws -> R {
        let paywall = FakePaywall(network: network, configuration: configuration, ledger: ledger)
        return try await withStarted(paywall, start: paywall.start, shutdown: paywall.shutdown, body)
    }

    /// Starts listening on 127.0.0.1 (port 0) and returns once the port is known.
    public func start() async throws {
        let router = Router(context: PaywallRequestContext.self)
        router.get("/free") { request, _ in
            if request.headers[.authorization] != nil { self.state.withLock { $0.stats.authorizationHeadersSeen += 1 } }
            return Self.json(.ok, #"{"free":true}"#)
        }
        router.get("/redirect") { request, _ in
            if request.headers[.authorization] != nil { self.state.withLock { $0.stats.authorizationHeadersSeen += 1 } }
            let target = request.uri.queryParameters.get("to") ?? "/free"
            return Response(status: .found, headers: [.location: target])
        }
        for method in [HTTPRequest.Method.get, .post, .put, .patch, .delete] {
            router.on("/protected", method: method) { request, context in
                try await self.handleProtected(request, channel: context.channel)
            }
            router.on("/protected/**", method: method) { request, context in
                try await self.handleProtected(request, channel: context.channel)
            }
        }
        let port = try await server.start(router, label: "fake-paywall")
        state.withLock { $0.port = port }
    }

    /// Stops the server.
    public func shutdown() async { await server.shutdown() }

    private func handleProtected(_ request: Request, channel: any Channel) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 1 << 20)
        let config = state.withLock { s -> Configuration in
            s.stats.protectedRequests += 1
            if request.headers[.authorization] != nil { s.stats.authorizationHeadersSeen += 1 }
            return s.config
        }
        let url = baseURL + request.uri.path
        if let offering = config.x402 {
            let v2 = request.headers[Self.paymentSignature], v1 = request.headers[Self.xPayment]
            if let header = v2 ?? v1 {
                state.withLock { s in
                    s.stats.x402PaymentsReceived += 1
                    s.stats.x402PaymentHeaders.append(header)
                }
                try await dropIfScripted(channel)
                let version = v2 != nil ? 2 : 1
                do {
                    let receipt = try offering.settle(header: header, version: version, url: url, ledger: ledger)
                    state.withLock { s in
                        s.stats.paidRequestsServed += 1
                        s.stats.servedBodies.append(Array(buffer: body))
                    }
                    var response = Self.json(.ok, #"{"result":"ok","rail":"x402"}"#)
                    response.headers[version == 2 ? Self.paymentResponse : Self.xPaymentResponse] = receipt
                    return response
                } catch {
                    state.withLock { s in
                        s.stats.proofsRejected += 1
                        s.stats.x402Refusals.append(error.rawValue)
                    }
                    return try await challenge(config, url: url, x402Error: error.rawValue)
                }
            }
        }
        if let authorization = request.headers[.authorization] {
            let fresh = !config.singleUseTokens || state.withLock { $0.usedTokens.insert(authorization).inserted }
            if verify(authorization) && !config.refuseProofs && fresh {
                try await dropIfScripted(channel)
                state.withLock { s in
                    s.stats.paidRequestsServed += 1
                    s.stats.servedBodies.append(Array(buffer: body))
                }
                return Self.json(.ok, #"{"result":"ok","rail":"l402"}"#)
            }
            state.withLock { $0.stats.proofsRejected += 1 }
            if !config.refuseProofs && fresh {
                return Self.json(.unauthorized, #"{"error":"invalid L402 credential"}"#)
            }
        }
        return try await challenge(config, url: url, x402Error: nil)
    }

    /// Closes the connection without answering while `dropPaidRetries` says so: the client sees a network failure.
    private func dropIfScripted(_ channel: any Channel) async throws {
        let drop = state.withLock { s -> Bool in
            guard s.dropped < s.config.dropPaidRetries else { return false }
            s.dropped += 1
            return true
        }
        if drop {
            try? await channel.close()
            throw FakePaywallError(message: "dropped")
        }
    }

    static let paymentSignature = HTTPField.Name("PAYMENT-SIGNATURE")!
    static let xPayment = HTTPField.Name("X-PAYMENT")!
    static let paymentRequired = HTTPField.Name("PAYMENT-REQUIRED")!
    static let paymentResponse = HTTPField.Name("PAYMENT-RESPONSE")!
    static let xPaymentResponse = HTTPField.Name("X-PAYMENT-RESPONSE")!

    /// A 402 with every configured challenge: L402 in `WWW-Authenticate`, x402 v2 in `PAYMENT-REQUIRED`, x402 v1
    /// in the body.
    private func challenge(_ config: Configuration, url: String, x402Error: String?) async throws -> Response {
        let header = config.schemes.isEmpty ? [] : try await mintChallenge(config)
        state.withLock { $0.stats.challengesIssued += 1 }
        var body: [UInt8] = Array(#"{"error":"payment required"}"#.utf8)
        var extra: [HTTPField] = []
        if let offering = config.x402 {
            if offering.versions.contains(2) {
                extra.append(HTTPField(name: Self.paymentRequired, value: offering.headerValue(url: url, error: x402Error)))
            }
            if offering.versions.contains(1) { body = offering.body(url: url, error: x402Error) }
        }
        var response = Response(status: .init(code: 402), headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(bytes: body)))
        for value in header { response.headers.append(HTTPField(name: .wwwAuthenticate, value: value)) }
        for field in extra { response.headers.append(field) }
        return response
    }

    /// Mints a fresh token and invoice and registers the invoice on the network; returns the header values.
    public func mintChallenge(_ config: Configuration? = nil) async throws -> [String] {
        let config = config ?? state.withLock { $0.config }
        let preimage = Self.randomBytes(32)
        let paymentHash = Array(SHA256.hash(data: preimage))
        let now = UInt64(Date().timeIntervalSince1970) - config.invoiceBackdateSeconds
        let invoice = try Bolt11Invoice.sign(
            network: config.network, amountMsat: config.amountless ? nil : config.priceMsat, timestamp: now,
            paymentHash: paymentHash, paymentSecret: Self.randomBytes(32), description: config.invoiceDescription,
            descriptionHash: nil, expirySeconds: config.invoiceExpirySeconds, privateKey: nodeKey)
        let boundHash = config.mismatchedPaymentHash ? Self.randomBytes(32) : paymentHash
        var macaroon = Macaroon.mint(
            rootKey: rootKey, identifier: L402Identifier(paymentHash: boundHash, tokenID: Self.randomBytes(32)).bytes,
            location: "fake-paywall")
        for caveat in config.caveats { macaroon = macaroon.addingFirstPartyCaveat(caveat) }
        await network.addInvoice(paymentRequest: invoice.paymentRequest, paymentHash: paymentHash, preimage: preimage,
                                 amountMsat: config.priceMsat, expiresAt: invoice.expiresAt)
        let token = macaroon.base64
        return config.schemes.map { "\($0) \(config.tokenParameter)=\"\(token)\", invoice=\"\(invoice.paymentRequest)\"" }
    }

    private func verify(_ authorization: String) -> Bool {
        guard let space = authorization.firstIndex(of: " ") else { return false }
        let scheme = authorization[..<space].lowercased()
        guard scheme == "l402" || scheme == "lsat" else { return false }
        let credential = authorization[authorization.index(after: space)...].trimmingCharacters(in: .whitespaces)
        guard let colon = credential.lastIndex(of: ":") else { return false }
        guard let macaroon = try? Macaroon(base64: String(credential[..<colon])),
            let preimage = Hex.decode(credential[credential.index(after: colon)...]), preimage.count == 32,
            macaroon.verifySignature(rootKey: rootKey), let id = macaroon.l402Identifier
        else { return false }
        return Array(SHA256.hash(data: preimage)) == id.paymentHash
    }

    static func json(_ status: HTTPResponse.Status, _ body: String) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(string: body)))
    }

    static func randomBytes(_ n: Int) -> [UInt8] {
        var g = SystemRandomNumberGenerator()
        return (0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }
    }
}

/// A request context that keeps the connection, so a handler can drop it.
struct PaywallRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel
    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

/// The paywall could not start.
public struct FakePaywallError: Error, Sendable {
    public var message: String
}
