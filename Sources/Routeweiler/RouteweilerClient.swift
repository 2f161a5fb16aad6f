import AsyncHTTPClient
import Crypto
import Foundation
public import HTTPTypes
public import Logging
import RouteweilerWire

/// Pays HTTP 402 challenges on your behalf: `try await rw.get(url)` returns the paid response.
///
/// ```swift
/// var config = RouteweilerClient.Configuration(funding: [lightning])
/// config.traceSink = try SQLiteTraceSink(path: "rw.db")
/// try await RouteweilerClient.withClient(configuration: config) { rw in
///     let response = try await rw.get("http://127.0.0.1:8080/protected")
///     print(response.status, response.payment?.amountNative ?? 0)
/// }
/// ```
///
/// Each call sends the request; on `402 Payment Required` it parses every challenge, picks one offer that a
/// funding source can pay, pays it once, sends the request again with the proof, and records exactly one
/// ``TraceEvent``. Once a payment may have moved funds, it never pays again for that call.
public final class RouteweilerClient: Sendable {
    /// Client settings; a plain value validated once, when the client is created.
    public struct Configuration: Sendable {
        /// Timeouts for the HTTP exchanges.
        public struct Timeouts: Sendable {
            /// One HTTP exchange (request and whole response). Default 30 s.
            public var request: Duration = .seconds(30)
            public init() {}
        }
        /// How a paid retry that fails on the network is sent again (always with the same proof).
        public struct PaidRetry: Sendable {
            /// Total attempts for the paid retry, the first included. Default 3.
            public var attempts: Int = 3
            /// Delay before the second attempt; doubles each time. Default 200 ms.
            public var backoff: Duration = .milliseconds(200)
            public init() {}
        }

        /// Wallets the client may pay from; each brings its rails. May be empty (free calls only).
        public var funding: [any FundingSource]
        /// Where each finished call is recorded; `nil` records nothing.
        public var traceSink: (any TraceSink)?
        /// Goes into every trace row.
        public var agentID: String?
        public var sessionID: String?
        public var timeouts = Timeouts()
        public var paidRetry = PaidRetry()
        /// Largest response body kept in memory. Default 32 MiB.
        public var maxResponseBytes = 32 * 1024 * 1024
        /// The library never bootstraps logging; pass a logger to see what it does. Secrets are never logged.
        public var logger = Logger(label: "routeweiler", factory: { _ in SwiftLogNoOpLogHandler() })
        /// Replaces the HTTP transport (defaults to AsyncHTTPClient without redirects).
        public var transport: (any HTTPTransport)?
        /// Called synchronously for each step of a call (see ``FlowEvent``); keep it fast.
        public var onEvent: (@Sendable (FlowEvent) -> Void)?
        /// The hash of the payment policy, written into every trace row.
        public var policyHash: String = RouteweilerClient.defaultPolicyHash

        public init(funding: [any FundingSource]) {
            self.funding = funding
        }
    }

    /// The hash of the empty default policy (`{"currency":null,"default_rail":"x402","rules":[]}`), SPEC §9.3.
    public static let defaultPolicyHash: String = {
        let canonical = #"{"currency":null,"default_rail":"x402","rules":[]}"#
        return "sha256:" + SHA256.hash(data: Array(canonical.utf8)).hexString
    }()

    public let configuration: Configuration
    private let transport: any HTTPTransport
    private let ownedHTTPClient: HTTPClient?
    private let router: Router

    /// Creates a client. Call ``shutdown()`` when done, or use ``withClient(configuration:_:)``.
    /// - Throws: ``ConfigurationError`` for invalid settings.
    public init(configuration: Configuration) throws {
        guard configuration.paidRetry.attempts >= 1 else {
            throw ConfigurationError("paidRetry.attempts must be at least 1")
        }
        guard configuration.maxResponseBytes > 0 else {
            throw ConfigurationError("maxResponseBytes must be positive")
        }
        self.configuration = configuration
        if let transport = configuration.transport {
            self.transport = transport
            self.ownedHTTPClient = nil
        } else {
            var ahc = HTTPClient.Configuration()
            ahc.redirectConfiguration = .disallow
            ahc.decompression = .enabled(limit: .ratio(50))
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: ahc)
            self.ownedHTTPClient = client
            self.transport = AsyncHTTPClientTransport(client: client, maxResponseBytes: configuration.maxResponseBytes)
        }
        var rails: [any Rail] = []
        for source in configuration.funding {
            for rail in source.rails where !rails.contains(where: { $0.id == rail.id }) { rails.append(rail) }
        }
        rails.sort { a, b in
            let ia = RailID.registrationOrder.firstIndex(of: a.id) ?? Int.max
            let ib = RailID.registrationOrder.firstIndex(of: b.id) ?? Int.max
            return ia < ib
        }
        self.router = Router(rails: rails, funding: configuration.funding)
    }

    /// Runs `body` with a new client and shuts it down however `body` exits.
    public static func withClient<Result: Sendable>(
        configuration: Configuration, _ body: (RouteweilerClient) async throws -> Result
    ) async throws -> Result {
        let client = try RouteweilerClient(configuration: configuration)
        do {
            let result = try await body(client)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// Closes the HTTP connections the client owns. Funding sources and trace sinks belong to the caller.
    public func shutdown() async throws {
        try await ownedHTTPClient?.shutdown()
    }

    // MARK: Verbs

    public func get(_ url: String, headers: HTTPFields = [:]) async throws -> RouteweilerResponse {
        try await request(.get, url, headers: headers)
    }
    public func delete(_ url: String, headers: HTTPFields = [:]) async throws -> RouteweilerResponse {
        try await request(.delete, url, headers: headers)
    }
    public func post(_ url: String, headers: HTTPFields = [:], body: [UInt8]? = nil) async throws -> RouteweilerResponse {
        try await request(.post, url, headers: headers, body: body)
    }
    public func put(_ url: String, headers: HTTPFields = [:], body: [UInt8]? = nil) async throws -> RouteweilerResponse {
        try await request(.put, url, headers: headers, body: body)
    }
    public func patch(_ url: String, headers: HTTPFields = [:], body: [UInt8]? = nil) async throws -> RouteweilerResponse {
        try await request(.patch, url, headers: headers, body: body)
    }

    /// Sends a request with any method, headers and body; the body is sent again on the paid retry.
    public func request(_ method: HTTPRequest.Method, _ url: String, headers: HTTPFields = [:], body: [UInt8]? = nil)
        async throws -> RouteweilerResponse
    {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), scheme == "http" || scheme == "https",
            parsed.host != nil
        else {
            throw ConfigurationError("not an absolute http(s) URL: \(url)")
        }
        return try await send(RouteweilerRequest(method: method, url: parsed, headerFields: headers, body: body))
    }

    /// Sends `request`, paying a 402 challenge if needed, and returns the final response.
    ///
    /// - Throws: a ``RouteweilerError``. Errors raised before paying (``RailNotSupportedError``,
    ///   ``NoFeasibleRailError``, ``ChallengeExpiredError``, ``InvalidChallengeError``, ``NoFundingForRailError``,
    ///   ``InvoicePaymentError`` with `mayHaveMovedFunds == false`) mean nothing was paid. ``PreimageMismatchError``,
    ///   ``ProofRejectedError``, ``PaidRetryFailedError`` and an ``InvoicePaymentError`` with
    ///   `mayHaveMovedFunds == true` mean the payment was (or may have been) made; it is in the trace and is
    ///   never made a second time. A network failure of the first send is a ``TransportError``.
    public func send(_ request: RouteweilerRequest) async throws -> RouteweilerResponse {
        let requestID = UUIDv7.make()
        var logger = configuration.logger
        logger[metadataKey: "rw.call_id"] = "\(requestID)"
        let start = Date()
        let clock = ContinuousClock()
        let startInstant = clock.now
        var flow = PaymentFlow(maxRetryAttempts: configuration.paidRetry.attempts,
                               retryBackoff: configuration.paidRetry.backoff)
        var action = flow.start()
        var lastResponse: TransportResponse?
        var retryStart = startInstant

        while true {
            switch action {
            case .sendOriginal:
                do {
                    let response = try await transport.send(request, timeout: configuration.timeouts.request)
                    lastResponse = response
                    action = flow.originalResponse(response)
                } catch {
                    action = flow.originalFailed(Self.asTransportError(error))
                }

            case .route:
                guard let response = lastResponse else { preconditionFailure("route without response") }
                logger.debug("402 received, routing", metadata: ["rw.url_origin": "\(request.origin)"])
                if let onEvent = configuration.onEvent {
                    let headers = response.headerFields.filter {
                        $0.name == .wwwAuthenticate || $0.name.canonicalName.hasPrefix("payment-")
                    }.map { "\($0.name): \($0.value)" }
                    onEvent(.challenged(status: Int(response.status.code), challengeHeaders: headers))
                }
                let decision = router.route(ChallengeContext(request: request, response: response, now: Date()))
                if let onEvent = configuration.onEvent {
                    decision.rejections.forEach { onEvent(.offerRejected($0)) }
                }
                action = flow.routed(decision.result, rejections: decision.rejections)

            case .pay(let candidate):
                try Task.checkCancellation()  // never start paying for a cancelled call
                configuration.onEvent?(.offerSelected(candidate.offer.challenge, fundingSource: candidate.funding.label))
                logger.debug("paying", metadata: ["rw.rail": "\(candidate.offer.rail)",
                                                  "rw.amount_native": "\(candidate.offer.challenge.price.amount)"])
                do {
                    let proof = try await candidate.rail.pay(
                        candidate.offer, with: candidate.funding,
                        context: PaymentContext(requestID: requestID, logger: logger, now: Date()))
                    retryStart = clock.now
                    configuration.onEvent?(.paid(rail: candidate.offer.rail, proofType: proof.proofType,
                                                 proofValue: proof.proofValue, amountNative: proof.amountNative,
                                                 latencyMs: proof.settlementLatencyMs))
                    action = flow.paymentSucceeded(proof)
                } catch let error as any RouteweilerError {
                    logger.notice("payment attempt failed", metadata: ["rw.rail": "\(candidate.offer.rail)",
                                                                       "rw.error": "\(error.errorName)",
                                                                       "rw.may_have_moved_funds": "\(error.mayHaveMovedFunds)"])
                    if !error.mayHaveMovedFunds {
                        configuration.onEvent?(.offerRejected(RailRejection(rail: candidate.offer.rail, error: error)))
                    }
                    action = flow.paymentFailed(error)
                } catch {
                    // An error of unknown provenance after `pay` started: assume money may have moved.
                    action = flow.paymentFailed(
                        InvoicePaymentError(code: .outcomeUnknown, message: "payment failed with \(error)",
                                            mayHaveMovedFunds: true))
                }

            case .sendPaidRetry(let proof, let attempt):
                var retry = request
                if let name = HTTPField.Name(proof.headerName) {
                    retry.headerFields[name] = proof.headerValue.value
                }
                configuration.onEvent?(.retrying(attempt: attempt, headerName: proof.headerName))
                do {
                    let response = try await transport.send(retry, timeout: configuration.timeouts.request)
                    lastResponse = response
                    configuration.onEvent?(.completed(status: Int(response.status.code)))
                    action = flow.retryResponse(response)
                } catch {
                    logger.notice("paid retry failed on the network; resending the same proof",
                                  metadata: ["rw.attempt": "\(attempt)"])
                    action = flow.retryFailed(Self.asTransportError(error))
                }

            case .backoff(let delay, let proof, let attempt):
                // Sleep without honouring cancellation: the payment is made, the proof must be delivered.
                try? await Task.sleep(for: delay)
                action = .sendPaidRetry(proof, attempt: attempt)

            case .complete(let completion):
                let end = Date()
                let elapsedMs = Self.ms(clock.now - startInstant)
                let settlementMs = Self.ms(clock.now - retryStart)
                return try await finish(completion, flow: flow, request: request, requestID: requestID, start: start,
                                        end: end, elapsedMs: elapsedMs, settlementMs: settlementMs, logger: logger)
            }
        }
    }

    private func finish(_ completion: PaymentFlow.Completion, flow: PaymentFlow, request: RouteweilerRequest,
                        requestID: String, start: Date, end: Date, elapsedMs: Int, settlementMs: Int,
                        logger: Logger) async throws -> RouteweilerResponse
    {
        var event = TraceEvent(
            requestId: requestID, agentId: configuration.agentID, envelopeId: nil,
            policyHash: configuration.policyHash, method: request.method.rawValue,
            url: Self.traceURL(request.url), challenge: nil, selectedRail: nil, fallbackFrom: nil, facilitator: nil,
            fundingSource: nil, payment: nil,
            outcome: .init(httpStatus: nil, serviceDelivered: false, serviceLatencyMs: elapsedMs),
            timestampStart: start, timestampEnd: end)

        func receipt(_ proof: PaymentProof, _ candidate: PaymentCandidate) -> PaymentReceipt {
            PaymentReceipt(
                rail: candidate.offer.rail, amountNative: proof.amountNative,
                amountNativeCurrency: candidate.offer.challenge.price.currency, proofType: proof.proofType,
                proofValue: proof.proofValue, fmvQuality: .unavailable, settlementLatencyMs: proof.settlementLatencyMs,
                fallbackFrom: flow.fallbackFrom, requestID: requestID)
        }
        func fill(_ proof: PaymentProof?, _ candidate: PaymentCandidate?) {
            guard let candidate else { return }
            event.challenge = candidate.offer.challenge
            event.selectedRail = candidate.offer.rail
            event.fallbackFrom = flow.fallbackFrom
            event.fundingSource = candidate.funding.label
            if let proof {
                event.facilitator = candidate.offer.rail == .l402 ? "lightning" : nil
                event.payment = .init(
                    proofType: proof.proofType, proofValue: proof.proofValue, amountNative: proof.amountNative,
                    amountNativeCurrency: candidate.offer.challenge.price.currency, amountEnvelope: nil,
                    amountEnvelopeCurrency: nil, fmvQuality: .unavailable, settlementLatencyMs: proof.settlementLatencyMs)
            }
        }

        switch completion {
        case .passthrough(let response):
            event.outcome = .init(httpStatus: Int(response.status.code), serviceDelivered: response.status.code < 400,
                                  serviceLatencyMs: elapsedMs)
            await record(event, logger: logger)
            return RouteweilerResponse(status: response.status, headerFields: response.headerFields,
                                       body: response.body, payment: nil, requestID: requestID)

        case .paid(let response, let proof, let candidate):
            fill(proof, candidate)
            event.outcome = .init(httpStatus: Int(response.status.code), serviceDelivered: response.status.code < 400,
                                  serviceLatencyMs: settlementMs)
            await record(event, logger: logger)
            return RouteweilerResponse(status: response.status, headerFields: response.headerFields,
                                       body: response.body, payment: receipt(proof, candidate), requestID: requestID)

        case .failed(let error, let candidate, let proof, let httpStatus):
            fill(proof, candidate)
            var thrown: any RouteweilerError = error
            if let proof, let candidate {
                if let rejected = error as? ProofRejectedPlaceholder {
                    thrown = ProofRejectedError(status: rejected.status, payment: receipt(proof, candidate))
                } else if let failed = error as? PaidRetryFailedPlaceholder {
                    thrown = PaidRetryFailedError(payment: receipt(proof, candidate), attempts: failed.attempts,
                                                  cause: failed.cause)
                }
            }
            event.outcome = .init(httpStatus: httpStatus, serviceDelivered: false, serviceLatencyMs: elapsedMs,
                                  error: .init(code: thrown.errorName, message: thrown.message))
            await record(event, logger: logger)
            throw thrown
        }
    }

    private func record(_ event: TraceEvent, logger: Logger) async {
        guard let sink = configuration.traceSink else { return }
        do {
            try await sink.record(event)
        } catch {
            // Tracing never turns a finished call into an error.
            logger.error("trace sink failed", metadata: ["rw.error": "\(String(describing: type(of: error)))"])
        }
    }

    static func asTransportError(_ error: any Error) -> any RouteweilerError {
        if let e = error as? any RouteweilerError { return e }
        return TransportError(String(describing: error), cause: error)
    }

    static func ms(_ d: Duration) -> Int {
        Int(d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000)
    }

    /// The URL for the trace, without user info.
    static func traceURL(_ url: URL) -> String {
        guard var c = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return url.absoluteString }
        c.user = nil
        c.password = nil
        return c.string ?? url.absoluteString
    }
}
