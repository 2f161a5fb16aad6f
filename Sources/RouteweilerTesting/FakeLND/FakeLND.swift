import Crypto
import Foundation
import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import LNDClient
import SwiftProtobuf
import Synchronization

/// A payment recorded by a ``FakeLND``.
public struct FakePayment: Sendable, Hashable {
    /// The payment hash.
    public var paymentHash: [UInt8]
    /// The payment request that was paid.
    public var paymentRequest: String
    /// The current status.
    public var status: PaymentOutcome.Status
    /// The preimage reported to the client (only when succeeded).
    public var preimage: [UInt8]?
    /// The amount paid, in millisatoshis.
    public var valueMsat: Int64
    /// The routing fee, in millisatoshis.
    public var feeMsat: Int64
    /// LND's failure reason name when failed.
    public var failureReason: String?
    /// The creation index (1, 2, ...).
    public var index: UInt64
    /// Creation time in UNIX nanoseconds.
    public var creationTimeNs: Int64

    /// Whether the status is final.
    public var isTerminal: Bool { self.status == .succeeded || self.status == .failed }
}

/// A fake LND node for tests and demos: a real gRPC server over TLS on 127.0.0.1 that
/// implements `lnrpc.Lightning/GetInfo` and `routerrpc.Router/SendPaymentV2` and
/// `TrackPaymentV2` against a shared ``FakeLightningNetwork``.
///
/// Every call must carry the node's macaroon (``macaroonHex``) in the `macaroon` metadata,
/// otherwise it fails with `UNAUTHENTICATED` "verification failed: signature mismatch after
/// caveat verification", as LND does.
///
/// Payment semantics: the invoice is looked up by its payment request string (no BOLT-11
/// decoding). Unknown → `FAILED` with `FAILURE_REASON_INCORRECT_PAYMENT_DETAILS`; expired →
/// `INVALID_ARGUMENT` "invoice expired"; already paid by this node → `ALREADY_EXISTS`
/// "invoice is already paid"; otherwise `IN_FLIGHT` then `SUCCEEDED` with the preimage, the
/// amount and a fee of `min(configuration.routingFeeMsat, fee limit)`, and the invoice is
/// settled in the network.
///
/// Faults (``failNextPayment(reason:)``, ``breakStreamAfterInFlight()``,
/// ``hangAfterInFlight(seconds:)``, ``returnWrongPreimage()``) apply to the next payment only.
public final class FakeLND: Sendable {
    /// Settings of a fake node.
    public struct Configuration: Sendable {
        /// The alias reported by GetInfo.
        public var alias: String
        /// The network reported by GetInfo (`chains[0].network`).
        public var network: String
        /// The identity pubkey (66 hex characters); generated when `nil`.
        public var identityPubkey: String?
        /// The version string reported by GetInfo.
        public var version: String
        /// The block height reported by GetInfo.
        public var blockHeight: UInt32
        /// The routing fee charged per payment (capped at the request's fee limit).
        public var routingFeeMsat: Int64
        /// The macaroon bytes; random when `nil`.
        public var macaroonBytes: [UInt8]?
        /// The TLS certificate; generated when `nil`.
        public var certificate: SelfSignedCertificate?
        /// The port to listen on (0 picks a free one).
        public var port: Int
        /// The RPC deadline put into ``FakeLND/clientConfiguration``.
        public var clientTimeout: Duration

        /// Creates a configuration.
        public init(
            alias: String = "fake-lnd",
            network: String = "regtest",
            identityPubkey: String? = nil,
            version: String = "0.17.0-beta commit=routeweiler-fake",
            blockHeight: UInt32 = 101,
            routingFeeMsat: Int64 = 1_000,
            macaroonBytes: [UInt8]? = nil,
            certificate: SelfSignedCertificate? = nil,
            port: Int = 0,
            clientTimeout: Duration = .seconds(10)
        ) {
            self.alias = alias
            self.network = network
            self.identityPubkey = identityPubkey
            self.version = version
            self.blockHeight = blockHeight
            self.routingFeeMsat = routingFeeMsat
            self.macaroonBytes = macaroonBytes
            self.certificate = certificate
            self.port = port
            self.clientTimeout = clientTimeout
        }
    }

    /// The network whose invoices this node pays.
    public let network: FakeLightningNetwork
    /// The settings.
    public let configuration: Configuration
    /// Always `127.0.0.1`.
    public let host: String
    /// The port the server listens on.
    public let port: Int
    /// The node's TLS certificate (its `tls.cert`).
    public let certificatePEM: String
    /// The macaroon the node accepts.
    public let macaroonBytes: [UInt8]
    /// The macaroon as lower-case hex, as clients send it.
    public let macaroonHex: String
    /// The node's identity pubkey (66 hex characters).
    public let identityPubkey: String

    let core: FakeLNDCore
    private let server: GRPCServer<HTTP2ServerTransport.Posix>
    private let serveTask: Mutex<Task<Void, any Error>?>

    private init(parts: Parts, port: Int, serveTask: Task<Void, any Error>?) {
        self.network = parts.core.network
        self.configuration = parts.core.configuration
        self.host = "127.0.0.1"
        self.port = port
        self.certificatePEM = parts.certificate.certificatePEM
        self.macaroonBytes = parts.core.macaroonBytes
        self.macaroonHex = parts.core.macaroonHex
        self.identityPubkey = parts.core.identityPubkey
        self.core = parts.core
        self.server = parts.server
        self.serveTask = Mutex(serveTask)
    }

    /// A client configuration that connects to this node (pinned certificate, right macaroon).
    public var clientConfiguration: LNDClient.Configuration {
        LNDClient.Configuration(
            host: self.host,
            port: self.port,
            tlsCertificate: .pem(self.certificatePEM),
            macaroon: .hex(self.macaroonHex),
            timeout: self.configuration.clientTimeout
        )
    }

    // MARK: Lifecycle

    /// Starts a fake node, runs `body` with it, and stops the node when `body` returns or throws.
    public static func withFakeLND<R: Sendable>(
        network: FakeLightningNetwork = FakeLightningNetwork(),
        configuration: Configuration = Configuration(),
        _ body: (FakeLND) async throws -> R
    ) async throws -> R {
        let parts = try Parts(network: network, configuration: configuration)
        return try await withThrowingTaskGroup(of: Void.self, returning: R.self) { group in
            group.addTask {
                try await parts.server.serve()
            }
            let fake: FakeLND
            do {
                let port = try await parts.listeningPort()
                fake = FakeLND(parts: parts, port: port, serveTask: nil)
            } catch {
                parts.server.beginGracefulShutdown()
                group.cancelAll()
                throw error
            }
            let result: Result<R, any Error>
            do {
                result = .success(try await body(fake))
            } catch {
                result = .failure(error)
            }
            parts.server.beginGracefulShutdown()
            group.cancelAll()
            while let next = await group.nextResult() {
                _ = next
            }
            return try result.get()
        }
    }

    /// Starts a long-lived fake node (for demos); stop it with ``shutdown()``.
    public static func start(
        network: FakeLightningNetwork = FakeLightningNetwork(),
        configuration: Configuration = Configuration()
    ) async throws -> FakeLND {
        let parts = try Parts(network: network, configuration: configuration)
        let server = parts.server
        let task = Task {
            try await server.serve()
        }
        do {
            let port = try await parts.listeningPort()
            return FakeLND(parts: parts, port: port, serveTask: task)
        } catch {
            server.beginGracefulShutdown()
            task.cancel()
            throw error
        }
    }

    /// Stops a node started with ``start(network:configuration:)``: in-flight calls are cancelled.
    public func shutdown() async {
        self.server.beginGracefulShutdown()
        let task = self.serveTask.withLock { task in
            defer { task = nil }
            return task
        }
        task?.cancel()
        _ = await task?.result
    }

    // MARK: Faults and inspection

    /// Makes the next payment fail with this LND failure reason (e.g. `"FAILURE_REASON_NO_ROUTE"`).
    public func failNextPayment(reason: String = "FAILURE_REASON_NO_ROUTE") {
        self.core.state.withLock { $0.faults.failReason = reason }
    }

    /// Makes the next payment succeed for real (the invoice is settled) but end the
    /// SendPaymentV2 stream with `UNAVAILABLE` right after `IN_FLIGHT`, before `SUCCEEDED`,
    /// so that the client has to ask `TrackPaymentV2`.
    public func breakStreamAfterInFlight() {
        self.core.state.withLock { $0.faults.breakStream = true }
    }

    /// Makes the next payment stay `IN_FLIGHT` for this long before it succeeds. The payment
    /// completes even if the client's call ends (as in LND).
    public func hangAfterInFlight(seconds: Double) {
        self.core.state.withLock { $0.faults.hang = .milliseconds(Int64(seconds * 1000)) }
    }

    /// Makes the next payment stay `IN_FLIGHT` until ``releaseHeldPayments()``: a test decides when it settles
    /// instead of a timer racing the client's deadlines (which, on a loaded machine, need not fire in order).
    public func holdAfterInFlight() {
        self.core.state.withLock { $0.faults.hold = true }
    }

    /// Settles every payment held by ``holdAfterInFlight()``; returns once they are `SUCCEEDED`.
    public func releaseHeldPayments() async {
        let held = self.core.state.withLock { state -> [@Sendable () async -> Void] in
            defer { state.heldPayments.removeAll() }
            return state.heldPayments
        }
        for pay in held { await pay() }
    }

    /// Makes the next payment report `SUCCEEDED` with a random (wrong) preimage.
    public func returnWrongPreimage() {
        self.core.state.withLock { $0.faults.wrongPreimage = true }
    }

    /// When `true`, every call is rejected as if the macaroon were wrong.
    public var rejectAllMacaroons: Bool {
        get { self.core.state.withLock { $0.rejectAllMacaroons } }
        set { self.core.state.withLock { $0.rejectAllMacaroons = newValue } }
    }

    /// Sets ``rejectAllMacaroons``.
    public func setRejectAllMacaroons(_ reject: Bool) {
        self.rejectAllMacaroons = reject
    }

    /// The payments recorded, oldest first.
    public var payments: [FakePayment] {
        self.core.state.withLock { state in
            state.paymentOrder.compactMap { state.payments[$0] }
        }
    }

    /// The number of payments recorded (including failed ones).
    public var paymentCount: Int {
        self.core.state.withLock { $0.paymentOrder.count }
    }

    /// The method names called, in order (e.g. `"GetInfo"`, `"SendPaymentV2"`), including rejected calls.
    public var calls: [String] {
        self.core.state.withLock { $0.calls }
    }

    /// The `macaroon` metadata values received, in call order (`nil` when absent).
    public var receivedMacaroons: [String?] {
        self.core.state.withLock { $0.receivedMacaroons }
    }

    /// The client address (`ipv4:127.0.0.1:<port>`) of every call, in order: one distinct
    /// value means the client reused one connection.
    public var remotePeers: [String] {
        self.core.state.withLock { $0.remotePeers }
    }

    /// The last SendPaymentV2 request's fee limit, timeout and self-payment flag.
    public var lastSendPaymentRequest: (feeLimitMsat: Int64, timeoutSeconds: Int32, allowSelfPayment: Bool)? {
        self.core.state.withLock { state in
            state.lastSendRequest.map { ($0.feeLimitMsat, $0.timeoutSeconds, $0.allowSelfPayment) }
        }
    }
}

// MARK: - Internals

extension FakeLND {
    /// The pieces built before the server starts listening.
    fileprivate struct Parts: Sendable {
        let core: FakeLNDCore
        let certificate: SelfSignedCertificate
        let transport: HTTP2ServerTransport.Posix
        let server: GRPCServer<HTTP2ServerTransport.Posix>

        init(network: FakeLightningNetwork, configuration: Configuration) throws {
            let certificate = try configuration.certificate ?? SelfSignedCertificate()
            let core = FakeLNDCore(network: network, configuration: configuration)
            let transport = HTTP2ServerTransport.Posix(
                address: .ipv4(host: "127.0.0.1", port: configuration.port),
                transportSecurity: .tls(
                    certificateChain: [.bytes(Array(certificate.certificatePEM.utf8), format: .pem)],
                    privateKey: .bytes(Array(certificate.privateKeyPEM.utf8), format: .pem)
                )
            )
            self.core = core
            self.certificate = certificate
            self.transport = transport
            self.server = GRPCServer(
                transport: transport,
                services: [FakeLightningService(core: core), FakeRouterService(core: core)],
                interceptors: [FakeMacaroonCheck(core: core)]
            )
        }

        func listeningPort() async throws -> Int {
            let address = try await self.transport.listeningAddress
            guard let ipv4 = address.ipv4 else {
                throw RPCError(code: .internalError, message: "fake LND is not listening on IPv4: \(address)")
            }
            return ipv4.port
        }
    }
}

/// Mutable state of a fake node.
struct FakeLNDState: Sendable {
    struct Faults: Sendable {
        var failReason: String?
        var breakStream = false
        var hang: Duration?
        var hold = false
        var wrongPreimage = false
    }

    struct SendRequest: Sendable {
        var feeLimitMsat: Int64
        var timeoutSeconds: Int32
        var allowSelfPayment: Bool
    }

    var faults = Faults()
    var rejectAllMacaroons = false
    var payments: [[UInt8]: FakePayment] = [:]
    var paymentOrder: [[UInt8]] = []
    var calls: [String] = []
    /// Payments held in flight by ``FakeLND/holdAfterInFlight()``, each settling when called.
    var heldPayments: [@Sendable () async -> Void] = []
    var receivedMacaroons: [String?] = []
    var remotePeers: [String] = []
    var lastSendRequest: SendRequest?
    var nextIndex: UInt64 = 1
}

/// What the services share.
final class FakeLNDCore: Sendable {
    let network: FakeLightningNetwork
    let configuration: FakeLND.Configuration
    let macaroonBytes: [UInt8]
    let macaroonHex: String
    let identityPubkey: String
    let state = Mutex(FakeLNDState())

    init(network: FakeLightningNetwork, configuration: FakeLND.Configuration) {
        self.network = network
        self.configuration = configuration
        let macaroon = configuration.macaroonBytes ?? Self.randomMacaroon()
        self.macaroonBytes = macaroon
        self.macaroonHex = HexEncoding.encode(macaroon)
        self.identityPubkey = configuration.identityPubkey
            ?? HexEncoding.encode(P256.Signing.PrivateKey().publicKey.compressedRepresentation)
    }

    /// Something shaped like a binary LND macaroon: version byte 0x02 then random bytes.
    private static func randomMacaroon() -> [UInt8] {
        var rng = SystemRandomNumberGenerator()
        return [0x02, 0x01] + (0..<96).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
    }

    enum BeginResult {
        case started(FakeLNDState.Faults, index: UInt64)
        case alreadyPaid
        case inTransition
    }

    /// Atomically checks the node's record of this hash and registers a new in-flight payment.
    func begin(hash: [UInt8], paymentRequest: String, valueMsat: Int64) -> BeginResult {
        self.state.withLock { state in
            if let existing = state.payments[hash] {
                switch existing.status {
                case .succeeded: return .alreadyPaid
                case .inFlight, .initiated: return .inTransition
                case .failed: break  // LND allows retrying a failed payment.
                }
            }
            let faults = state.faults
            state.faults = FakeLNDState.Faults()
            let index = state.nextIndex
            state.nextIndex += 1
            let payment = FakePayment(
                paymentHash: hash,
                paymentRequest: paymentRequest,
                status: .inFlight,
                preimage: nil,
                valueMsat: valueMsat,
                feeMsat: 0,
                failureReason: nil,
                index: index,
                creationTimeNs: Int64(Date().timeIntervalSince1970 * 1_000_000_000)
            )
            if state.payments[hash] == nil {
                state.paymentOrder.append(hash)
            }
            state.payments[hash] = payment
            return .started(faults, index: index)
        }
    }

    /// Records a final status.
    func complete(hash: [UInt8], status: PaymentOutcome.Status, preimage: [UInt8]?, feeMsat: Int64, failureReason: String?) {
        self.state.withLock { state in
            guard var payment = state.payments[hash] else { return }
            payment.status = status
            payment.preimage = preimage
            payment.feeMsat = feeMsat
            payment.failureReason = failureReason
            state.payments[hash] = payment
        }
    }

    /// Records a failed payment for an invoice the network does not know.
    func recordUnknown(hash: [UInt8], paymentRequest: String) -> FakePayment {
        self.state.withLock { state in
            let index = state.nextIndex
            state.nextIndex += 1
            let payment = FakePayment(
                paymentHash: hash,
                paymentRequest: paymentRequest,
                status: .failed,
                preimage: nil,
                valueMsat: 0,
                feeMsat: 0,
                failureReason: "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS",
                index: index,
                creationTimeNs: Int64(Date().timeIntervalSince1970 * 1_000_000_000)
            )
            if state.payments[hash] == nil {
                state.paymentOrder.append(hash)
            }
            state.payments[hash] = payment
            return payment
        }
    }

    func payment(hash: [UInt8]) -> FakePayment? {
        self.state.withLock { $0.payments[hash] }
    }

    /// Streams the payment's updates until it is final (or the RPC is cancelled).
    func streamUpdates(
        hash: [UInt8],
        after last: FakePayment?,
        includeInFlight: Bool,
        writer: RPCWriter<Lnrpc_Payment>
    ) async throws {
        var last = last
        while true {
            try Task.checkCancellation()
            if let current = self.payment(hash: hash), current != last {
                if current.isTerminal || includeInFlight {
                    try await writer.write(Self.message(current))
                }
                if current.isTerminal { return }
                last = current
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    static func message(_ payment: FakePayment) -> Lnrpc_Payment {
        var message = Lnrpc_Payment()
        message.paymentHash = HexEncoding.encode(payment.paymentHash)
        message.paymentRequest = payment.paymentRequest
        message.valueMsat = payment.valueMsat
        message.valueSat = payment.valueMsat / 1000
        message.feeMsat = payment.feeMsat
        message.feeSat = payment.feeMsat / 1000
        message.creationTimeNs = payment.creationTimeNs
        message.paymentIndex = payment.index
        message.paymentPreimage = HexEncoding.encode(payment.preimage ?? [UInt8](repeating: 0, count: 32))
        switch payment.status {
        case .succeeded: message.status = .succeeded
        case .failed: message.status = .failed
        case .inFlight: message.status = .inFlight
        case .initiated: message.status = .initiated
        }
        if let reason = payment.failureReason,
            let raw = PaymentFailureReasonName.rawValue(forName: reason)
        {
            message.failureReason = Lnrpc_PaymentFailureReason(rawValue: raw) ?? .failureReasonError
        } else if payment.status == .failed {
            message.failureReason = .failureReasonError
        }
        if payment.status != .failed {
            var htlc = Lnrpc_HTLCAttempt()
            htlc.attemptID = payment.index
            htlc.attemptTimeNs = payment.creationTimeNs
            switch payment.status {
            case .succeeded:
                htlc.status = .succeeded
                htlc.preimage = Data(payment.preimage ?? [])
                htlc.resolveTimeNs = Int64(Date().timeIntervalSince1970 * 1_000_000_000)
            default:
                htlc.status = .inFlight
            }
            message.htlcs = [htlc]
        }
        return message
    }
}

/// Checks the `macaroon` metadata of every call and logs the call.
struct FakeMacaroonCheck: ServerInterceptor {
    let core: FakeLNDCore

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let macaroon = request.metadata[stringValues: "macaroon"].first { _ in true }
        let reject = self.core.state.withLock { state in
            state.calls.append(context.descriptor.method)
            state.receivedMacaroons.append(macaroon)
            state.remotePeers.append(context.remotePeer)
            return state.rejectAllMacaroons
        }
        guard let macaroon else {
            throw RPCError(code: .unauthenticated, message: "expected 1 macaroon, got 0")
        }
        guard !reject, macaroon.lowercased() == self.core.macaroonHex else {
            throw RPCError(
                code: .unauthenticated,
                message: "verification failed: signature mismatch after caveat verification"
            )
        }
        return try await next(request, context)
    }
}

/// `lnrpc.Lightning` (GetInfo only).
struct FakeLightningService: Lnrpc_Lightning.SimpleServiceProtocol {
    let core: FakeLNDCore

    func getInfo(request: Lnrpc_GetInfoRequest, context: ServerContext) async throws -> Lnrpc_GetInfoResponse {
        let configuration = self.core.configuration
        var response = Lnrpc_GetInfoResponse()
        response.identityPubkey = self.core.identityPubkey
        response.alias = configuration.alias
        response.version = configuration.version
        response.color = "#3399ff"
        response.blockHeight = configuration.blockHeight
        response.syncedToChain = true
        response.numActiveChannels = 1
        response.testnet = configuration.network == "testnet"
        var chain = Lnrpc_Chain()
        chain.chain = "bitcoin"
        chain.network = configuration.network
        response.chains = [chain]
        return response
    }
}

/// `routerrpc.Router` (SendPaymentV2, TrackPaymentV2).
struct FakeRouterService: Routerrpc_Router.SimpleServiceProtocol {
    let core: FakeLNDCore

    func sendPaymentV2(
        request: Routerrpc_SendPaymentRequest,
        response: RPCWriter<Lnrpc_Payment>,
        context: ServerContext
    ) async throws {
        let core = self.core
        core.state.withLock {
            $0.lastSendRequest = .init(
                feeLimitMsat: request.feeLimitMsat,
                timeoutSeconds: request.timeoutSeconds,
                allowSelfPayment: request.allowSelfPayment
            )
        }
        guard !request.paymentRequest.isEmpty else {
            throw RPCError(code: .invalidArgument, message: "invalid payment request: empty")
        }
        guard request.timeoutSeconds > 0 else {
            throw RPCError(code: .invalidArgument, message: "timeout_seconds must be specified")
        }

        guard let invoice = await core.network.invoice(paymentRequest: request.paymentRequest) else {
            // The payee does not know the payment: LND reports incorrect payment details.
            let hash = Array(SHA256.hash(data: Array(request.paymentRequest.utf8)))
            let payment = core.recordUnknown(hash: hash, paymentRequest: request.paymentRequest)
            try await response.write(FakeLNDCore.message(payment))
            return
        }
        let now = UInt64(Date().timeIntervalSince1970)
        if invoice.expiresAt <= now {
            let date = Date(timeIntervalSince1970: TimeInterval(invoice.expiresAt))
            throw RPCError(code: .invalidArgument, message: "invoice expired. Valid until \(date)")
        }

        let hash = invoice.paymentHash
        let valueMsat = Int64(clamping: invoice.amountMsat)
        let faults: FakeLNDState.Faults
        switch core.begin(hash: hash, paymentRequest: request.paymentRequest, valueMsat: valueMsat) {
        case .alreadyPaid:
            throw RPCError(code: .alreadyExists, message: "invoice is already paid")
        case .inTransition:
            throw RPCError(code: .alreadyExists, message: "payment is in transition")
        case .started(let started, index: _):
            faults = started
        }

        let inFlight = core.payment(hash: hash)
        if let inFlight, !request.noInflightUpdates {
            try await response.write(FakeLNDCore.message(inFlight))
        }

        if invoice.settled {
            // Paid by another node: the payee rejects the HTLC.
            core.complete(hash: hash, status: .failed, preimage: nil, feeMsat: 0, failureReason: "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS")
            try await core.streamUpdates(hash: hash, after: inFlight, includeInFlight: false, writer: response)
            return
        }
        if let reason = faults.failReason {
            core.complete(hash: hash, status: .failed, preimage: nil, feeMsat: 0, failureReason: reason)
            try await core.streamUpdates(hash: hash, after: inFlight, includeInFlight: false, writer: response)
            return
        }

        var feeLimitMsat = request.feeLimitMsat
        if feeLimitMsat == 0, request.feeLimitSat > 0 {
            feeLimitMsat = request.feeLimitSat * 1000
        }
        let feeMsat = max(0, min(core.configuration.routingFeeMsat, feeLimitMsat))
        let preimage = faults.wrongPreimage ? (0..<32).map { _ in UInt8.random(in: .min ... .max) } : invoice.preimage
        let pay: @Sendable () async -> Void = {
            await core.network.settle(paymentHash: hash, by: core.identityPubkey)
            core.complete(hash: hash, status: .succeeded, preimage: preimage, feeMsat: feeMsat, failureReason: nil)
        }

        if faults.breakStream {
            await pay()
            throw RPCError(code: .unavailable, message: "fake LND: connection reset after IN_FLIGHT")
        }
        if faults.hold {
            core.state.withLock { $0.heldPayments.append(pay) }
        } else if let hang = faults.hang {
            // The payment lives on even if this call ends, as in LND.
            Task {
                try? await Task.sleep(for: hang)
                await pay()
            }
        } else {
            await pay()
        }
        try await core.streamUpdates(
            hash: hash,
            after: inFlight,
            includeInFlight: !request.noInflightUpdates,
            writer: response
        )
    }

    func trackPaymentV2(
        request: Routerrpc_TrackPaymentRequest,
        response: RPCWriter<Lnrpc_Payment>,
        context: ServerContext
    ) async throws {
        let hash = Array(request.paymentHash)
        guard let current = self.core.payment(hash: hash) else {
            throw RPCError(code: .notFound, message: "payment isn't initiated")
        }
        if current.isTerminal || !request.noInflightUpdates {
            try await response.write(FakeLNDCore.message(current))
        }
        if current.isTerminal { return }
        try await self.core.streamUpdates(
            hash: hash,
            after: current,
            includeInFlight: !request.noInflightUpdates,
            writer: response
        )
    }
}
