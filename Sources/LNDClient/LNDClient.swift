import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCProtobuf
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// A client for the user's own LND node, over gRPC with TLS pinned to the node's `tls.cert`
/// and the macaroon sent with every call.
///
/// One long-lived HTTP/2 connection is reused by all calls. The connection is driven by
/// ``run()`` (for long-lived apps) or by ``withClient(configuration:_:)``: calls made
/// while neither is running wait until it runs (or until their deadline).
///
/// ```swift
/// let outcome = try await LNDClient.withClient(configuration: config) { lnd in
///     try await lnd.sendPayment(paymentRequest: invoice, feeLimitMsat: 10_000, timeoutSeconds: 60)
/// }
/// ```
public final class LNDClient: Sendable, CustomStringConvertible, CustomReflectable {
    typealias Transport = HTTP2ClientTransport.Posix

    let loaded: LoadedConfiguration
    private let grpc: GRPCClient<Transport>
    private let lightning: Lnrpc_Lightning.Client<Transport>
    private let router: Routerrpc_Router.Client<Transport>

    /// `host:port`, for messages.
    var endpoint: String {
        self.loaded.host.contains(":") ? "[\(self.loaded.host)]:\(self.loaded.port)" : "\(self.loaded.host):\(self.loaded.port)"
    }

    /// Creates a client: loads and validates the certificate and macaroon and sets up the
    /// gRPC channel. No connection is made until ``run()`` runs.
    ///
    /// - Throws: ``LNDError`` with code ``LNDError/Code/invalidConfiguration``.
    public init(configuration: Configuration) throws {
        let loaded = try LoadedConfiguration(configuration)
        self.loaded = loaded

        let target: any ResolvableTarget
        if PinnedCertificate.isIPv6Literal(loaded.host) {
            target = ResolvableTargets.IPv6.ipv6(address: loaded.host.trimmingBrackets, port: loaded.port)
        } else if PinnedCertificate.isIPv4Literal(loaded.host) {
            target = ResolvableTargets.IPv4.ipv4(address: loaded.host, port: loaded.port)
        } else {
            target = ResolvableTargets.DNS.dns(host: loaded.host, port: loaded.port)
        }

        let tls = HTTP2ClientTransport.Posix.TransportSecurity.TLS(
            certificateChain: [],
            privateKey: nil,
            serverCertificateVerification: loaded.verifyHostname ? .fullVerification : .noHostnameVerification,
            // Exactly the node's certificate: never the system trust store.
            trustRoots: .certificates([.bytes(Array(loaded.certificatePEM.utf8), format: .pem)])
        )

        let transport: Transport
        do {
            transport = try HTTP2ClientTransport.Posix(
                target: target,
                transportSecurity: .tls(tls),
                config: .defaults { config in
                    if let serverHostname = loaded.serverHostname {
                        // Used for the TLS SNI, hostname verification and `:authority`.
                        config.http2.authority = serverHostname
                    }
                    // LND payment streams can be long and quiet: keep the connection alive.
                    config.connection.keepalive = .init(time: .seconds(30), timeout: .seconds(20), allowWithoutCalls: false)
                    config.backoff = .init(initial: .milliseconds(250), max: .seconds(5), multiplier: 1.6, jitter: 0.2)
                }
            )
        } catch {
            throw LNDError(
                code: .invalidConfiguration,
                message: "Cannot set up the gRPC transport to LND at \(loaded.host):\(loaded.port).",
                cause: error
            )
        }

        self.grpc = GRPCClient(
            transport: transport,
            interceptors: [MacaroonInterceptor(macaroonHex: loaded.macaroonHex)]
        )
        self.lightning = Lnrpc_Lightning.Client(wrapping: self.grpc)
        self.router = Routerrpc_Router.Client(wrapping: self.grpc)
    }

    /// Creates a client from LND's files (`tls.cert` and a binary macaroon such as `admin.macaroon`).
    ///
    /// - Throws: ``LNDError`` with code ``LNDError/Code/invalidConfiguration``.
    public convenience init(
        grpcHost: String,
        grpcPort: Int = 10009,
        tlsCertPath: String,
        macaroonPath: String
    ) throws {
        try self.init(
            configuration: Configuration(
                host: grpcHost,
                port: grpcPort,
                tlsCertificate: .file(tlsCertPath),
                macaroon: .file(macaroonPath)
            )
        )
    }

    /// Creates a client from the certificate's PEM text and the macaroon's hex.
    ///
    /// - Throws: ``LNDError`` with code ``LNDError/Code/invalidConfiguration``.
    public convenience init(
        grpcHost: String,
        grpcPort: Int = 10009,
        tlsCertPEM: String,
        macaroonHex: String
    ) throws {
        try self.init(
            configuration: Configuration(
                host: grpcHost,
                port: grpcPort,
                tlsCertificate: .pem(tlsCertPEM),
                macaroon: .hex(macaroonHex)
            )
        )
    }

    /// Creates a client, runs its connection while `body` runs, then shuts it down
    /// (waiting for in-flight calls), whether `body` returns or throws.
    public static func withClient<R: Sendable>(
        configuration: Configuration,
        _ body: (LNDClient) async throws -> R
    ) async throws -> R {
        let client = try LNDClient(configuration: configuration)
        return try await withThrowingTaskGroup(of: Void.self, returning: R.self) { group in
            group.addTask {
                try await client.run()
            }
            let result: Result<R, any Error>
            do {
                result = .success(try await body(client))
            } catch {
                result = .failure(error)
            }
            client.shutdown()
            do {
                try await group.waitForAll()
            } catch {
                if case .success = result { throw error }
            }
            return try result.get()
        }
    }

    /// Runs the client's connection until ``shutdown()`` is called (and in-flight calls
    /// finish) or the calling task is cancelled. Call it at most once.
    public func run() async throws {
        do {
            try await self.grpc.runConnections()
        } catch {
            throw LNDError(
                code: .unexpected,
                message: "The gRPC client for LND at \(self.endpoint) stopped with an error (run() may be called only once).",
                cause: error
            )
        }
    }

    /// Begins shutting down: new calls fail, in-flight calls finish, then ``run()`` returns.
    public func shutdown() {
        self.grpc.beginGracefulShutdown()
    }

    /// `LNDClient(host:port)`: never the macaroon.
    public var description: String {
        "LNDClient(\(self.endpoint))"
    }

    /// A mirror that hides the macaroon.
    public var customMirror: Mirror {
        Mirror(self, children: ["endpoint": self.endpoint], displayStyle: .class)
    }

    // MARK: - GetInfo

    /// Calls `lnrpc.Lightning/GetInfo`.
    ///
    /// - Throws: ``LNDError``.
    public func getInfo() async throws -> NodeInfo {
        let response: Lnrpc_GetInfoResponse
        do {
            response = try await Self.withDeadline(self.loaded.timeout) {
                try await self.lightning.getInfo(Lnrpc_GetInfoRequest(), options: self.callOptions())
            }
        } catch {
            throw self.mapError(error, method: "GetInfo")
        }
        let chain = response.chains.first
        let network: String
        if let chainNetwork = chain?.network, !chainNetwork.isEmpty {
            network = chainNetwork
        } else {
            network = response.testnet ? "testnet" : "mainnet"
        }
        return NodeInfo(
            identityPubkey: response.identityPubkey.lowercased(),
            alias: response.alias,
            chain: chain?.chain ?? "bitcoin",
            network: network,
            syncedToChain: response.syncedToChain,
            blockHeight: response.blockHeight,
            version: response.version,
            numActiveChannels: response.numActiveChannels,
            color: response.color
        )
    }

    // MARK: - Payments

    /// Pays a BOLT-11 invoice with `routerrpc.Router/SendPaymentV2` (self-payments not allowed)
    /// and returns once LND reports a final status.
    ///
    /// Money safety: if the update stream breaks or ends before a final status, the client
    /// does not guess; it asks `TrackPaymentV2` for the payment hash (from the first update, or
    /// `paymentHash` if no update arrived). Only when LND confirms it never saw the payment is
    /// the error marked ``LNDError/paymentMayHaveBeenSent`` `false`.
    ///
    /// - Parameters:
    ///   - paymentRequest: The BOLT-11 invoice.
    ///   - feeLimitMsat: The maximum routing fee, in millisatoshis.
    ///   - timeoutSeconds: How long LND may keep trying routes. The RPC deadline is this plus
    ///     the configured ``Configuration/timeout``.
    ///   - paymentHash: The invoice's payment hash, if the caller decoded the invoice; used to
    ///     settle the outcome when the stream breaks before the first update.
    /// - Returns: The outcome, with status ``PaymentOutcome/Status/succeeded`` and the preimage.
    ///   The caller should check that the preimage hashes to the payment hash.
    /// - Throws: ``LNDError``: ``LNDError/Code/paymentFailed`` (with the failure reason) when
    ///   LND reports `FAILED`; ``LNDError/Code/paymentStatusUnknown`` or
    ///   ``LNDError/Code/timeout`` when the outcome could not be settled; others per mapping.
    public func sendPayment(
        paymentRequest: String,
        feeLimitMsat: Int64,
        timeoutSeconds: Int32,
        paymentHash: [UInt8]? = nil
    ) async throws -> PaymentOutcome {
        guard !paymentRequest.isEmpty else {
            throw LNDError(code: .invalidRequest, message: "The payment request is empty.")
        }
        guard timeoutSeconds > 0 else {
            throw LNDError(code: .invalidRequest, message: "The payment timeout must be positive (LND requires it).")
        }
        guard feeLimitMsat >= 0 else {
            throw LNDError(code: .invalidRequest, message: "The fee limit must not be negative.")
        }

        var request = Routerrpc_SendPaymentRequest()
        request.paymentRequest = paymentRequest
        request.feeLimitMsat = feeLimitMsat
        request.timeoutSeconds = timeoutSeconds
        request.allowSelfPayment = false
        request.noInflightUpdates = false

        let deadline = self.loaded.timeout + .seconds(Int64(timeoutSeconds))
        let progress = StreamProgress()
        do {
            let message = request
            try await self.readPayments(deadline: deadline, into: progress) { options, handler in
                try await self.router.sendPaymentV2(request: ClientRequest(message: message), options: options,
                                                    onResponse: handler)
            }
        } catch {
            progress.fail(error)
        }

        let state = progress.snapshot
        if let terminal = state.terminal {
            return try self.finish(terminal, method: "SendPaymentV2")
        }

        // No final status. Errors that LND returns before starting a payment need no tracking.
        let streamError = state.error
        if state.updates == 0, let streamError {
            let mapped = self.mapError(streamError, method: "SendPaymentV2")
            if Self.rejectedBeforePaying(mapped, streamError) {
                throw mapped
            }
        }

        // The call was sent and its outcome is unknown: settle it with TrackPaymentV2.
        guard let hash = state.paymentHash ?? paymentHash, !hash.isEmpty else {
            throw self.unsettledError(
                streamError: streamError,
                detail: "no payment hash is known to track it (pass paymentHash:)",
                cause: streamError
            )
        }
        return try await self.settle(paymentHash: hash, streamError: streamError, updatesSeen: state.updates)
    }

    /// Looks up a payment with `routerrpc.Router/TrackPaymentV2`.
    ///
    /// Returns the first final status (``PaymentOutcome/Status/succeeded`` or
    /// ``PaymentOutcome/Status/failed``, which is returned, not thrown), or the last
    /// in-flight state if the stream ends (or the deadline passes) without one.
    ///
    /// - Throws: ``LNDError``; ``LNDError/Code/paymentNotFound`` if LND has no such payment.
    public func trackPayment(paymentHash: [UInt8]) async throws -> PaymentOutcome {
        let track = await self.track(paymentHash: paymentHash)
        if let last = track.last {
            return last
        }
        let error = track.error ?? RPCError(code: .unknown, message: "TrackPaymentV2 ended without an update.")
        if Self.isNotFound(error) {
            throw LNDError(
                code: .paymentNotFound,
                message: "LND has no payment with hash \(HexEncoding.encode(paymentHash)).",
                cause: error
            )
        }
        throw self.mapError(error, method: "TrackPaymentV2")
    }

    // MARK: - Internals

    /// Runs a payment-update stream (SendPaymentV2 or TrackPaymentV2) under `deadline`, recording each update in
    /// `progress` until a final one.
    private func readPayments(
        deadline: Duration, into progress: StreamProgress,
        _ rpc: @escaping @Sendable (
            CallOptions, @escaping @Sendable (StreamingClientResponse<Lnrpc_Payment>) async throws -> Void
        ) async throws -> Void
    ) async throws {
        let options = self.callOptions()
        try await Self.withDeadline(deadline) {
            try await rpc(options) { response in
                for try await payment in response.messages {
                    if progress.record(PaymentOutcome(payment)) {
                        return
                    }
                }
            }
        }
    }

    /// No gRPC deadline: ``withDeadline(_:_:)`` enforces it (see there).
    private func callOptions() -> CallOptions {
        var options = CallOptions.defaults
        options.timeout = nil
        options.waitForReady = false
        return options
    }

    /// Runs one RPC with a deadline; past it, the RPC is cancelled and this throws
    /// `RPCError(code: .deadlineExceeded)`, as a gRPC deadline would.
    ///
    /// gRPC's own deadline is a `Task.sleep` that is cancelled when the RPC ends; on Linux a cancelled sleep keeps
    /// its timer (about 1.7 KB) until the deadline would have passed, so a client making hundreds of calls a second
    /// with a 60-120 s deadline held tens of MiB of dead timers (measured: RSS grew 1.9 KB per payment). A NIO
    /// scheduled task is removed from its event loop's queue when cancelled.
    static func withDeadline<T: Sendable>(
        _ timeout: Duration, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let expired = Atomic<Bool>(false)
        let task = Task { try await body() }
        let nanos = timeout.components.seconds * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000
        let timer = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .nanoseconds(nanos)) {
            expired.store(true, ordering: .sequentiallyConsistent)
            task.cancel()
        }
        defer { timer.cancel() }
        do {
            return try await withTaskCancellationHandler {
                try await task.value
            } onCancel: {
                task.cancel()
            }
        } catch {
            if expired.load(ordering: .sequentiallyConsistent) {
                throw RPCError(code: .deadlineExceeded, message: "RPC timed out before completing")
            }
            throw error
        }
    }

    /// Returns a succeeded outcome, throws for a failed one.
    private func finish(_ outcome: PaymentOutcome, method: String) throws -> PaymentOutcome {
        switch outcome.status {
        case .succeeded:
            return outcome
        case .failed:
            let reason = outcome.failureReason ?? "FAILURE_REASON_NONE"
            throw LNDError(
                code: .paymentFailed,
                message: "LND reports the payment \(HexEncoding.encode(outcome.paymentHash)) as failed: \(reason).",
                failureReason: reason,
                paymentMayHaveBeenSent: false
            )
        case .inFlight, .initiated:
            throw LNDError(
                code: .paymentStatusUnknown,
                message: "The payment \(HexEncoding.encode(outcome.paymentHash)) is still in flight.",
                paymentMayHaveBeenSent: true
            )
        }
    }

    /// Whether LND rejected the call before starting a payment, or the call never left this
    /// process, so nothing was sent.
    private static func rejectedBeforePaying(_ mapped: LNDError, _ error: any Error) -> Bool {
        switch mapped.code {
        case .macaroonRejected, .invalidRequest, .alreadyPaid, .invalidConfiguration:
            // Answers from LND before it starts a payment.
            return true
        case .unreachable, .certificateRejected:
            // Only when no stream was opened; a stream dropped mid-call may have reached LND.
            return ErrorClassifier.isPreSendFailure(error)
        default:
            return false
        }
    }

    private static func isNotFound(_ error: any Error) -> Bool {
        guard let rpcError = error as? RPCError else { return false }
        if rpcError.code == .notFound { return true }
        let message = rpcError.message.lowercased()
        return message.contains("payment isn't initiated") || message.contains("payment not initiated")
            || message.contains("not found")
    }

    private struct TrackResult: Sendable {
        var last: PaymentOutcome?
        var error: (any Error)?
    }

    /// Reads TrackPaymentV2 until a final status, the end of the stream or an error.
    private func track(paymentHash: [UInt8]) async -> TrackResult {
        var request = Routerrpc_TrackPaymentRequest()
        request.paymentHash = .init(paymentHash)
        request.noInflightUpdates = false
        let progress = StreamProgress()
        do {
            let message = request
            try await self.readPayments(deadline: self.loaded.timeout, into: progress) { options, handler in
                try await self.router.trackPaymentV2(request: ClientRequest(message: message), options: options,
                                                     onResponse: handler)
            }
        } catch {
            progress.fail(error)
        }
        let state = progress.snapshot
        return TrackResult(last: state.terminal ?? state.last, error: state.error)
    }

    /// Settles the outcome of a payment whose SendPaymentV2 stream ended without a final status.
    private func settle(paymentHash: [UInt8], streamError: (any Error)?, updatesSeen: Int) async throws -> PaymentOutcome {
        var result = await self.track(paymentHash: paymentHash)
        if result.last == nil, updatesSeen == 0, let error = result.error, Self.isNotFound(error) {
            // LND may still be registering a payment whose request just arrived: ask once more.
            try? await Task.sleep(for: .milliseconds(500))
            result = await self.track(paymentHash: paymentHash)
        }

        if let outcome = result.last, outcome.isTerminal {
            return try self.finish(outcome, method: "TrackPaymentV2")
        }
        if result.last == nil, let error = result.error, Self.isNotFound(error) {
            if updatesSeen == 0 {
                // LND confirms it never started this payment.
                if let streamError {
                    var mapped = self.mapError(streamError, method: "SendPaymentV2")
                    mapped.paymentMayHaveBeenSent = false
                    if mapped.code == .timeout || mapped.code == .unexpected {
                        mapped.code = .paymentFailed
                        mapped.message += " LND has no record of the payment, so it was not sent."
                    }
                    throw mapped
                }
                throw LNDError(
                    code: .paymentFailed,
                    message: "LND ended the payment stream without any update and has no record of the payment; it was not sent.",
                    paymentMayHaveBeenSent: false
                )
            }
            throw self.unsettledError(
                streamError: streamError,
                detail: "LND reported updates for it but TrackPaymentV2 cannot find it",
                cause: error
            )
        }
        let detail: String
        if let outcome = result.last {
            detail = "TrackPaymentV2 still reports it as \(outcome.status)"
        } else {
            detail = "TrackPaymentV2 failed too"
        }
        throw self.unsettledError(streamError: streamError, detail: detail, cause: result.error ?? streamError)
    }

    private func unsettledError(streamError: (any Error)?, detail: String, cause: (any Error)?) -> LNDError {
        let deadline = (streamError as? RPCError)?.code == .deadlineExceeded
        let what = deadline ? "The payment RPC to LND at \(self.endpoint) timed out" : "The payment stream from LND at \(self.endpoint) ended without a final status"
        return LNDError(
            code: deadline ? .timeout : .paymentStatusUnknown,
            message: "\(what) and the outcome is unknown: \(detail). The payment may have been sent; reconcile with trackPayment(paymentHash:).",
            paymentMayHaveBeenSent: true,
            cause: cause
        )
    }

    /// Maps a gRPC error to an ``LNDError`` (with `paymentMayHaveBeenSent == false`).
    func mapError(_ error: any Error, method: String) -> LNDError {
        if let lndError = error as? LNDError {
            return lndError
        }
        guard let rpcError = error as? RPCError else {
            if ErrorClassifier.isTLSFailure(error) {
                return self.certificateError(cause: error)
            }
            return LNDError(
                code: .unexpected,
                message: "\(method) to LND at \(self.endpoint) failed: \(self.redact(String(describing: error)))",
                cause: error
            )
        }
        let message = self.redact(rpcError.message)
        let lower = message.lowercased()

        if ErrorClassifier.isPreSendFailure(rpcError) {
            if ErrorClassifier.isTLSFailure(rpcError) {
                return self.certificateError(cause: rpcError)
            }
            return LNDError(
                code: .unreachable,
                message: "LND unreachable at \(self.endpoint): \(ErrorClassifier.rootCauseDescription(rpcError, redact: self.redact))",
                cause: rpcError
            )
        }
        if rpcError.code == .permissionDenied || rpcError.code == .unauthenticated
            || lower.contains("verification failed") || lower.contains("macaroon")
            || lower.contains("permission denied")
        {
            return LNDError(
                code: .macaroonRejected,
                message: "LND at \(self.endpoint) rejected the macaroon: \(message)",
                cause: rpcError
            )
        }
        if lower.contains("already paid") || (rpcError.code == .alreadyExists && !lower.contains("in transition")) {
            return LNDError(
                code: .alreadyPaid,
                message: "LND at \(self.endpoint) says the invoice is already paid: \(message)",
                cause: rpcError
            )
        }
        if rpcError.code == .deadlineExceeded {
            return LNDError(
                code: .timeout,
                message: "\(method) to LND at \(self.endpoint) timed out: \(message)",
                cause: rpcError
            )
        }
        if rpcError.code == .invalidArgument || lower.contains("invoice expired")
            || lower.contains("invalid payment request") || lower.contains("checksum failed")
            || lower.contains("amount must be specified") || lower.contains("invalid bech32")
        {
            return LNDError(
                code: .invalidRequest,
                message: "LND at \(self.endpoint) refused the request: \(message)",
                cause: rpcError
            )
        }
        if rpcError.code == .unavailable {
            return LNDError(
                code: .unreachable,
                message: "LND unreachable at \(self.endpoint) (\(method) was interrupted): \(message)",
                cause: rpcError
            )
        }
        return LNDError(
            code: .unexpected,
            message: "\(method) to LND at \(self.endpoint) failed (\(rpcError.code)): \(message)",
            cause: rpcError
        )
    }

    private func certificateError(cause: any Error) -> LNDError {
        if ErrorClassifier.isHostnameMismatch(cause) {
            let name = self.loaded.serverHostname ?? self.loaded.host
            return LNDError(
                code: .certificateRejected,
                message: "TLS handshake with LND at \(self.endpoint) failed: the node's certificate is not valid for"
                    + " \(name) (it names other hosts). Set serverHostname to a name in the node's tls.cert"
                    + " (LND's tlsextradomain/tlsextraip), or disable verifyHostname: the certificate stays pinned.",
                cause: cause
            )
        }
        return LNDError(
            code: .certificateRejected,
            message: "TLS handshake with LND at \(self.endpoint) failed: the node's certificate did not match the pinned tls.cert"
                + " (\(ErrorClassifier.rootCauseDescription(cause, redact: self.redact))).",
            cause: cause
        )
    }

    /// Removes the macaroon from text that goes into an error.
    func redact(_ text: String) -> String {
        let hex = self.loaded.macaroonHex
        guard !hex.isEmpty else { return text }
        var text = text.replacingOccurrences(of: hex, with: "<redacted>")
        text = text.replacingOccurrences(of: hex.uppercased(), with: "<redacted>")
        return text
    }
}

/// What a payment update stream delivered so far. Shared with the response handler.
final class StreamProgress: Sendable {
    struct State: Sendable {
        var updates = 0
        var paymentHash: [UInt8]?
        var last: PaymentOutcome?
        var terminal: PaymentOutcome?
        var error: (any Error)?
    }

    private let state = Mutex(State())

    /// Records an update; returns `true` when it is final.
    func record(_ outcome: PaymentOutcome) -> Bool {
        self.state.withLock { state in
            state.updates += 1
            if state.paymentHash == nil, !outcome.paymentHash.isEmpty {
                state.paymentHash = outcome.paymentHash
            }
            state.last = outcome
            if outcome.isTerminal {
                state.terminal = outcome
                return true
            }
            return false
        }
    }

    func fail(_ error: any Error) {
        self.state.withLock { $0.error = error }
    }

    var snapshot: State {
        self.state.withLock { $0 }
    }
}

/// Puts the macaroon, as lower-case hex, in the `macaroon` metadata of every call.
struct MacaroonInterceptor: ClientInterceptor {
    let macaroonHex: String

    func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        var request = request
        request.metadata.replaceOrAddString(self.macaroonHex, forKey: "macaroon")
        return try await next(request, context)
    }
}

extension String {
    fileprivate var trimmingBrackets: String {
        if self.hasPrefix("[") && self.hasSuffix("]") {
            return String(self.dropFirst().dropLast())
        }
        return self
    }
}
