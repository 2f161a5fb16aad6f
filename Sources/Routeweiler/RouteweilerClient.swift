public import AsyncHTTPClient
import Crypto
import Foundation
public import HTTPTypes
public import Logging
public import CoreMetrics
public import Tracing
import Instrumentation
import RouteweilerWire
import Synchronization

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
        /// Which budget envelope caps the client's spending.
        public enum Budget: Sendable {
            /// An envelope that must already exist in the budget store (checked at start).
            case envelope(id: String)
            /// An envelope created at start unless one with its id exists (an existing one is used untouched).
            case create(BudgetEnvelope)

            var id: String {
                switch self {
                case .envelope(let id): return id
                case .create(let spec): return spec.id
                }
            }
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
        /// HTTP/1.1 connections the built-in HTTP client keeps open per host (AsyncHTTPClient's soft limit, whose own
        /// default is 8). Default 32, so that many calls in flight to one API do not queue for a connection.
        public var connectionsPerHost = 32
        /// Largest response body kept in memory. Default 32 MiB.
        public var maxResponseBytes = 32 * 1024 * 1024
        /// The library never bootstraps logging; pass a logger to see what it does. Secrets are never logged.
        public var logger = Logger(label: "routeweiler", factory: { _ in SwiftLogNoOpLogHandler() })
        /// Replaces the HTTP transport (defaults to AsyncHTTPClient without redirects).
        public var transport: (any HTTPTransport)?
        /// An AsyncHTTPClient to send through (its connection pool and event loops shared with the rest of the
        /// application) instead of one made and owned by this client; ignored when ``transport`` is set. The client
        /// is not shut down by ``RouteweilerClient/shutdown()``. Its redirect configuration is used as it is: leave
        /// redirects disallowed, so that a 402 reaches Routeweiler from the URL that asked for payment.
        public var httpClient: HTTPClient?
        /// Called synchronously for each step of a call (see ``FlowEvent``); keep it fast.
        public var onEvent: (@Sendable (FlowEvent) -> Void)?
        /// Where metrics go; `nil` uses the process-wide `MetricsSystem` (a no-op until the application bootstraps it).
        public var metricsFactory: (any MetricsFactory)?
        /// Where spans go; `nil` uses the process-wide `InstrumentationSystem.tracer` (a no-op until bootstrapped).
        public var tracer: (any Tracer)?
        /// The payment policy (SPEC §9); its hash goes into every trace row.
        public var policy = Policy()
        /// The envelope that caps spending; needs ``budgetStore``.
        public var budget: Budget?
        /// Durable envelopes and draws (e.g. `SQLiteBudgetStore`, in the trace's database file).
        public var budgetStore: (any BudgetStore)?
        /// Records each intent to pay before paying, so a crash can be recovered (e.g. the SQLite journal).
        public var paymentJournal: (any PaymentJournal)?
        /// Fair-market-value rates for caps and routing. Default: CoinGecko for BTC, the ECB for fiat.
        public var fmvProvider: (any FmvProvider)?
        /// Keeps paid tokens for reuse (`nil`: an in-memory store).
        public var credentialStore: (any CredentialStore)?
        /// Reuse paid credentials for later requests to the same origin and scope. Default `true`.
        public var reuseCredentials = true
        /// How long a reservation is held before the sweeper may release it (a call that died). Default 10 min;
        /// reservations whose payment intent is still pending are never swept.
        public var reservationLease: Duration = .seconds(600)
        /// Resolve payments left pending by a crash when the client starts. Default `true`.
        public var recoverPendingPayments = true

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
    let transport: any HTTPTransport
    private let ownedHTTPClient: HTTPClient?
    let router: Router
    private let credentials: any CredentialStore
    let fmv: any FmvProvider
    private let policyHash: String
    private let singleFlight = SingleFlight()
    /// The last URL string parsed by ``request(_:_:headers:body:)``, with its URL and origin: an agent calls the same
    /// URLs over and over, and `URL(string:)` costs microseconds.
    private let lastParsedURL = Mutex<(text: String, url: URL, origin: String?)?>(nil)
    /// The rail that last paid each origin (SPEC §5.2).
    let sticky = StickyCache()
    let startup: StartupGate
    let observability: Observability

    /// Creates a client. Call ``shutdown()`` when done, or use ``withClient(configuration:_:)``.
    /// - Throws: ``ConfigurationError`` for invalid settings (for example a budget without a budget store, or a
    ///   `max_per_call` rule without a currency).
    public init(configuration: Configuration) throws {
        guard configuration.paidRetry.attempts >= 1 else {
            throw ConfigurationError("paidRetry.attempts must be at least 1")
        }
        guard configuration.connectionsPerHost >= 1 else {
            throw ConfigurationError("connectionsPerHost must be at least 1")
        }
        guard configuration.maxResponseBytes > 0 else {
            throw ConfigurationError("maxResponseBytes must be positive")
        }
        if configuration.budget != nil, configuration.budgetStore == nil {
            throw ConfigurationError("a budget envelope needs a budget store (for example SQLiteBudgetStore)")
        }
        if case .create(let spec) = configuration.budget { try spec.validate() }
        try configuration.policy.validate()
        if configuration.policy.rules.contains(where: { $0.maxPerCallMinorUnits != nil }),
            configuration.policy.currency == nil, configuration.budget == nil
        {
            throw ConfigurationError("a rule sets max_per_call_minor_units but the policy has no currency")
        }
        self.configuration = configuration
        self.observability = Observability(metrics: configuration.metricsFactory ?? MetricsSystem.factory,
                                           tracer: configuration.tracer ?? InstrumentationSystem.tracer)
        self.policyHash = configuration.policy.hash
        if let transport = configuration.transport {
            self.transport = transport
            self.ownedHTTPClient = nil
        } else if let client = configuration.httpClient {
            self.transport = AsyncHTTPClientTransport(client: client, maxResponseBytes: configuration.maxResponseBytes)
            self.ownedHTTPClient = nil
        } else {
            var ahc = HTTPClient.Configuration()
            ahc.redirectConfiguration = .disallow
            ahc.decompression = .enabled(limit: .ratio(50))
            ahc.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = configuration.connectionsPerHost
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: ahc)
            self.ownedHTTPClient = client
            self.transport = AsyncHTTPClientTransport(client: client, maxResponseBytes: configuration.maxResponseBytes)
        }
        var rails: [any Rail] = []
        for source in configuration.funding {
            for rail in source.rails {
                if let i = rails.firstIndex(where: { $0.id == rail.id }) {
                    rails[i] = rails[i].merged(with: rail)  // e.g. x402 learns every source's token
                } else {
                    rails.append(rail)
                }
            }
        }
        rails.sort { a, b in
            let ia = RailID.registrationOrder.firstIndex(of: a.id) ?? Int.max
            let ib = RailID.registrationOrder.firstIndex(of: b.id) ?? Int.max
            return ia < ib
        }
        self.router = Router(rails: rails, funding: configuration.funding, policy: configuration.policy)
        self.credentials = configuration.credentialStore ?? InMemoryCredentialStore()
        self.fmv = configuration.fmvProvider ?? CombinedFmvProvider(btc: CoinGeckoProvider(), fiat: ECBProvider())
        self.startup = StartupGate()
    }

    /// Runs `body` with a started client and shuts it down however `body` exits.
    public static func withClient<Result: Sendable>(
        configuration: Configuration, _ body: (RouteweilerClient) async throws -> Result
    ) async throws -> Result {
        let client = try RouteweilerClient(configuration: configuration)
        do {
            try await client.start()
            let result = try await body(client)
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// Prepares the budget (creates or checks the envelope), sweeps expired reservations and resolves payments
    /// left pending by a crash. Runs once; the first call runs it too if you did not.
    /// - Throws: ``EnvelopeNotFoundError`` when ``Configuration/Budget/envelope(id:)`` names no envelope.
    public func start() async throws {
        _ = try await startup.run { try await self.prepare() }
    }

    /// Stores what the trace sink still holds (see ``TraceSink/flush()``) and closes the HTTP connections the client
    /// owns. Funding sources, stores and sinks belong to the caller and stay open.
    public func shutdown() async throws {
        var flushError: (any Error)?
        do { try await configuration.traceSink?.flush() } catch { flushError = error }
        try await ownedHTTPClient?.shutdown()
        if let flushError { throw flushError }
    }

    /// The envelope binding, resolved at start.
    struct EnvelopeBinding: Sendable {
        var id: String
        var currency: Currency
        var allowedRails: [RailID]
        /// The envelope's allowed-origin globs, prepared for matching.
        var originGlobs: OriginGlobs
    }

    func prepare() async throws -> EnvelopeBinding? {
        var binding: EnvelopeBinding?
        if let budget = configuration.budget, let store = configuration.budgetStore {
            if case .create(let spec) = budget {
                _ = try await store.createEnvelopeIfAbsent(spec, now: Date())
            }
            guard let record = try await store.envelope(id: budget.id) else {
                throw EnvelopeNotFoundError(envelopeID: budget.id)
            }
            binding = EnvelopeBinding(id: record.id, currency: record.capCurrency, allowedRails: record.allowedRails,
                                      originGlobs: OriginGlobs(record.allowedOriginsGlob))
            _ = try await store.sweepExpired(now: Date())
        }
        if configuration.recoverPendingPayments, let journal = configuration.paymentJournal {
            try await recover(journal: journal)
        }
        return binding
    }

    /// Resolves pending payment intents by asking each rail's wallet, then settles or releases their reservations.
    /// Intents whose outcome is still unknown stay pending (their reservation is kept).
    /// - Returns: how many intents were resolved.
    @discardableResult
    public func recover(journal: any PaymentJournal) async throws -> Int {
        var resolved = 0
        let now = Date()
        for intent in try await journal.pending() {
            guard let rail = router.rails.first(where: { $0.id == intent.rail }) else { continue }
            let sources = configuration.funding.filter { $0.rails.contains { $0.id == intent.rail } }
            var outcome: PendingResolution = .unknown
            for source in sources {
                outcome = (try? await rail.resolvePending(intent, with: source)) ?? .unknown
                if case .unknown = outcome { continue }
                break
            }
            switch outcome {
            case .unknown:
                continue
            case .failed(let reason):
                // Never sent, or failed: nothing moved. Young intents may belong to a live process still sending.
                if reason == "not_found", now.timeIntervalSince(intent.createdAt) < 120 { continue }
                if let drawID = intent.drawID { try await configuration.budgetStore?.release(drawID: drawID, now: now) }
                try await journal.resolve(id: intent.id, state: .failed, proof: nil, now: now)
            case .succeeded(let proof):
                if let drawID = intent.drawID, let amount = intent.settleMinorUnits {
                    try await configuration.budgetStore?.settle(drawID: drawID, amountMinorUnits: amount, now: now)
                }
                try await journal.resolve(id: intent.id, state: .succeeded, proof: proof, now: now)
                if let prefix = intent.credentialPrefix, let scope = intent.credentialScope {
                    try? await credentials.store(StoredCredential(
                        id: intent.id, rail: intent.rail, origin: intent.origin, scope: scope, headerName: "Authorization",
                        headerValue: Redacted(prefix.value + ":" + proof), expiresAt: intent.credentialExpiresAt,
                        requestID: intent.requestID, challengeURL: intent.url))
                }
            }
            resolved += 1
        }
        return resolved
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
        // A plain http(s) URL is checked on its bytes; anything else through Foundation's accessors.
        let parsed: URL
        let plainOrigin: String?
        if let last = lastParsedURL.withLock({ last in last.flatMap { $0.text == url ? ($0.url, $0.origin) : nil } }) {
            (parsed, plainOrigin) = last
        } else {
            guard let fresh = URL(string: url) else { throw ConfigurationError("not an absolute http(s) URL: \(url)") }
            parsed = fresh
            plainOrigin = URL.plainHTTPOrigin(url)
            lastParsedURL.withLock { $0 = (url, fresh, plainOrigin) }
        }
        let rq: RouteweilerRequest
        if let origin = plainOrigin {
            rq = RouteweilerRequest(method: method, plainHTTPURL: parsed, origin: origin, headerFields: headers,
                                    body: body)
        } else {
            guard parsed.scheme.map({ ["http", "https"].contains($0.lowercased()) }) == true, parsed.host != nil else {
                throw ConfigurationError("not an absolute http(s) URL: \(url)")
            }
            rq = RouteweilerRequest(method: method, url: parsed, headerFields: headers, body: body)
        }
        return try await send(rq)
    }

    /// Per-call state outside the pure flow: reservation, intent, reused credential.
    private struct CallState {
        var reservation: TraceEvent.Reservation?
        var drawID: String?
        var intentID: String?
        var reusedCredential: StoredCredential?
        var policy: TraceEvent.PolicyVerdict?
        var scopeKey: String?
        var quote: FmvQuote?
        /// The writes after a successful payment (settle, resolve, credential), running during the paid retry;
        /// yields the settled amount, `nil` if the settlement could not be written.
        var postPayment: Task<Int64?, Never>?

        /// Waits for ``postPayment`` and records its outcome on the reservation.
        mutating func finishPostPayment() async {
            guard let task = postPayment else { return }
            postPayment = nil
            if let amount = await task.value {
                reservation?.settledMinorUnits = amount
                reservation?.state = "settled"
            }
        }
    }

    /// Sends `request`, paying a 402 challenge if needed, and returns the final response.
    ///
    /// - Throws: a ``RouteweilerError``. Errors raised before paying (``RailNotSupportedError``,
    ///   ``NoFeasibleRailError``, ``ChallengeExpiredError``, ``InvalidChallengeError``, ``NoFundingForRailError``,
    ///   ``PolicyDeniedError``, ``BudgetExceededError``, ``FmvUnavailableError``, ``InvoicePaymentError`` with
    ///   `mayHaveMovedFunds == false`) mean nothing was paid. ``PreimageMismatchError``, ``ProofRejectedError``,
    ///   ``PaidRetryFailedError`` and an ``InvoicePaymentError`` with `mayHaveMovedFunds == true` mean the payment
    ///   was (or may have been) made; it is in the trace and is never made a second time. A network failure of the
    ///   first send is a ``TransportError``.
    public func send(_ request: RouteweilerRequest) async throws -> RouteweilerResponse {
        try await observability.call(method: request.method.rawValue, origin: request.origin) {
            try await sendInSpan(request)
        }
    }

    private func sendInSpan(_ request: RouteweilerRequest) async throws -> RouteweilerResponse {
        let envelope = try await startup.run { try await self.prepare() }
        let requestID = UUIDv7.make()
        let stickyKey = StickyCache.Key(origin: request.origin, agentID: configuration.agentID)
        var logger = configuration.logger
        // The call's id on everything it logs; not made for a logger that would drop all of it (the default).
        if logger.logLevel <= .error { logger[metadataKey: "rw.call_id"] = "\(requestID)" }
        let start = Date()
        let clock = ContinuousClock()
        let startInstant = clock.now
        var flow = PaymentFlow(maxRetryAttempts: configuration.paidRetry.attempts,
                               retryBackoff: configuration.paidRetry.backoff)
        var call = CallState()
        var action = flow.start()
        var lastResponse: TransportResponse?
        var retryStart = startInstant
        let callerSentAuthorization = request.headerFields[.authorization] != nil
        let reuse = configuration.reuseCredentials && !callerSentAuthorization

        // A credential paid earlier for this origin and scope is presented first.
        if reuse, let credential = try? await credentials.credential(for: request.url, origin: request.origin, now: Date()) {
            var withToken = request
            if let name = HTTPField.Name(credential.headerName) { withToken.headerFields[name] = credential.headerValue.value }
            do {
                let response = try await transport.send(withToken, timeout: configuration.timeouts.request)
                if response.status.code != 402 && response.status.code != 401 {
                    return try await finishReuse(response, credential: credential, request: request, requestID: requestID,
                                                 start: start, elapsedMs: Self.ms(clock.now - startInstant), logger: logger)
                }
                // Refused: drop it and pay (once) for the fresh challenge in this answer.
                try? await credentials.remove(id: credential.id)
                lastResponse = response
                action = flow.originalResponse(response)
            } catch {
                action = flow.originalFailed(Self.asTransportError(error))
            }
        }

        defer {
            if let key = call.scopeKey { Task { await self.singleFlight.release(key) } }
        }

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
                let limits = Router.Limits(
                    referenceCurrency: envelope?.currency ?? configuration.policy.currency, envelopeID: envelope?.id,
                    envelopeRails: envelope?.allowedRails, envelopeOrigins: envelope?.originGlobs, fmv: fmv,
                    stickyRail: sticky.rail(for: stickyKey, now: Date()),
                    deferChecks: envelope != nil && configuration.budgetStore != nil)
                let challengeSpan = observability.child("routeweiler.challenge")
                let decision = await router.route(ChallengeContext(request: request, response: response, now: Date()),
                                                  limits: limits)
                if observability.tracing {
                    if case .candidates(let c) = decision.result {
                        challengeSpan.attributes["routeweiler.candidates"] = c.map(\.offer.rail.rawValue).joined(separator: ",")
                    }
                    challengeSpan.attributes["routeweiler.rejected_offers"] = decision.rejections.count
                }
                challengeSpan.end()
                if let onEvent = configuration.onEvent {
                    decision.rejections.forEach { onEvent(.offerRejected($0)) }
                }
                if case .failed(let error as PolicyDeniedError) = decision.result {
                    call.policy = .init(verdict: "deny", ruleName: error.ruleName)
                }
                action = flow.routed(decision.result, rejections: decision.rejections)

            case .pay(let candidate):
                try Task.checkCancellation()  // never start paying for a cancelled call
                call.policy = .init(verdict: "allow", ruleName: candidate.decision.ruleName)
                call.quote = candidate.quote
                let plan = candidate.rail.plan(for: candidate.offer, request: request)

                // One payment in flight per credential scope: later calls wait, then reuse what it bought. A call
                // that finds a credential lets go of the scope before presenting it, so the waiters present theirs
                // in parallel; only a call that finds none pays, holding the scope until it returns.
                if reuse, let scope = plan.credentialScope {
                    let key = request.origin + " " + scope
                    while true {
                        if call.scopeKey != key {
                            if let held = call.scopeKey { await singleFlight.release(held) }
                            await singleFlight.acquire(key)
                            call.scopeKey = key
                        }
                        guard let credential = try? await credentials.credential(for: request.url, now: Date()),
                            credential.id != call.reusedCredential?.id
                        else { break }
                        await singleFlight.release(key)
                        call.scopeKey = nil
                        var withToken = request
                        if let name = HTTPField.Name(credential.headerName) {
                            withToken.headerFields[name] = credential.headerValue.value
                        }
                        if let response = try? await transport.send(withToken, timeout: configuration.timeouts.request),
                            response.status.code != 402, response.status.code != 401
                        {
                            return try await finishReuse(response, credential: credential, request: request,
                                                         requestID: requestID, start: start,
                                                         elapsedMs: Self.ms(clock.now - startInstant), logger: logger)
                        }
                        // Refused: drop it, then take the scope again and look once more before paying.
                        try? await credentials.remove(id: credential.id)
                        call.reusedCredential = credential
                    }
                }

                // Reserve against the envelope and record the intent to pay before any money moves (in one
                // transaction when the budget store and the journal share a database).
                let intentID = UUIDv7.make()
                let journal = configuration.paymentJournal
                let intent = journal.map { _ in
                    PaymentIntent(
                        id: intentID, requestID: requestID, rail: candidate.offer.rail, origin: request.origin,
                        url: request.url.absoluteString, envelopeID: envelope?.id, drawID: nil,
                        settleMinorUnits: candidate.quote.map(Self.settleAmount), paymentHash: plan.paymentHash,
                        invoice: plan.invoice, credentialPrefix: plan.credentialPrefix,
                        credentialScope: plan.credentialScope, credentialExpiresAt: plan.credentialExpiresAt,
                        createdAt: Date())
                }
                if let envelope, let store = configuration.budgetStore {
                    guard let quote = candidate.quote else {
                        action = flow.paymentFailed(FmvUnavailableError(code: .unsupportedPair, "no quote for the envelope"))
                        continue
                    }
                    do {
                        let key = SHA256.hash(data: Array("\(requestID):\(flow.attempt)".utf8)).hexString
                        let receipt: DrawReceipt
                        // The offer's deferred check (the invoice signature), started while routing: nothing is
                        // reserved or recorded for an offer that fails it. The store runs it before it commits (a
                        // store writing on this thread, inside the transaction: it finishes on the other core
                        // while the statements run).
                        if let journal, let intent {
                            // The receipt's signature is not needed to pay: a store may make it after the payment.
                            receipt = try await store.reserveSigningLater(
                                envelopeID: envelope.id, requestID: requestID, idempotencyKey: key,
                                amountMinorUnits: quote.capMinorUnits, rail: candidate.offer.rail,
                                lease: configuration.reservationLease, now: Date(), recording: intent, in: journal,
                                committingOnlyIf: candidate.offer.deferredCheck)
                            call.intentID = intentID
                        } else {
                            try candidate.offer.deferredCheck?.run()
                            receipt = try await store.reserve(
                                envelopeID: envelope.id, requestID: requestID, idempotencyKey: key,
                                amountMinorUnits: quote.capMinorUnits, rail: candidate.offer.rail,
                                lease: configuration.reservationLease, now: Date())
                        }
                        call.drawID = receipt.receiptId
                        call.reservation = .init(envelopeId: envelope.id, drawId: receipt.receiptId,
                                                 currency: envelope.currency.code,
                                                 reservedMinorUnits: receipt.amountReservedMinorUnits,
                                                 settledMinorUnits: nil, state: "reserved")
                    } catch {
                        call.reservation = .init(envelopeId: envelope.id, drawId: nil, currency: envelope.currency.code,
                                                 reservedMinorUnits: nil, settledMinorUnits: nil, state: "none")
                        let failure = (error as? any RouteweilerError) ?? JournalWriteError(cause: error)
                        configuration.onEvent?(.offerRejected(RailRejection(rail: candidate.offer.rail, error: failure,
                                                                            challenge: candidate.offer.checkedChallenge)))
                        action = flow.paymentFailed(failure)
                        continue
                    }
                } else if let journal, let intent {
                    do {
                        try await journal.begin(intent)
                        call.intentID = intentID
                    } catch {
                        action = flow.paymentFailed(JournalWriteError(cause: error))
                        continue
                    }
                }
                configuration.onEvent?(.offerSelected(candidate.offer.checkedChallenge,
                                                      fundingSource: candidate.funding.label))
                logger.debug("paying", metadata: ["rw.rail": "\(candidate.offer.rail)",
                                                  "rw.amount_native": "\(candidate.offer.challenge.price.amount)"])
                let paySpan = observability.child("routeweiler.pay", attributes: [
                    "routeweiler.rail": candidate.offer.rail.rawValue,
                    "routeweiler.amount_native_currency": candidate.offer.challenge.price.currency,
                ])
                if observability.tracing {
                    paySpan.attributes["routeweiler.amount_native"] = Int64(clamping: candidate.offer.challenge.price.amount)
                }
                defer { paySpan.end() }
                do {
                    let proof = try await candidate.rail.pay(
                        candidate.offer, with: candidate.funding,
                        context: PaymentContext(requestID: requestID, logger: logger, now: Date()))
                    retryStart = clock.now
                    sticky.remember(candidate.offer.rail, for: stickyKey,
                                          challengeExpiresAt: candidate.offer.challenge.expiresAt, now: Date())
                    // Settle the draw, resolve the intent and keep the credential while the paid retry is on the
                    // wire; the call waits for these writes before it returns (or drops the credential).
                    var credential: StoredCredential?
                    if reuse, let scope = plan.credentialScope {
                        credential = StoredCredential(
                            id: intentID, rail: candidate.offer.rail, origin: request.origin, scope: scope,
                            headerName: proof.headerName, headerValue: proof.headerValue,
                            expiresAt: plan.credentialExpiresAt, requestID: requestID,
                            challengeURL: request.url.absoluteString)
                    }
                    let (drawID, quote, paidIntentID) = (call.drawID, call.quote, call.intentID)
                    let proofValue = proof.proofValue
                    call.postPayment = Task {
                        let settled = await self.settle(drawID: drawID, quote: quote, intentID: paidIntentID,
                                                        proof: proofValue)
                        if let credential { try? await self.credentials.store(credential) }
                        return settled
                    }
                    configuration.onEvent?(.paid(rail: candidate.offer.rail, proofType: proof.proofType,
                                                 proofValue: proof.proofValue, amountNative: proof.amountNative,
                                                 latencyMs: proof.settlementLatencyMs))
                    action = flow.paymentSucceeded(proof)
                } catch {
                    let failure: any RouteweilerError =
                        (error as? any RouteweilerError)
                        ?? InvoicePaymentError(code: .outcomeUnknown, message: "payment failed with \(error)",
                                               mayHaveMovedFunds: true)
                    sticky.forget(stickyKey)
                    logger.notice("payment attempt failed", metadata: ["rw.rail": "\(candidate.offer.rail)",
                                                                       "rw.error": "\(failure.errorName)",
                                                                       "rw.may_have_moved_funds": "\(failure.mayHaveMovedFunds)"])
                    if !failure.mayHaveMovedFunds {
                        await releaseDraw(&call)
                        if let id = call.intentID {
                            try? await configuration.paymentJournal?.resolve(id: id, state: .failed, proof: nil, now: Date())
                        }
                        configuration.onEvent?(.offerRejected(RailRejection(rail: candidate.offer.rail, error: failure)))
                    } else if failure is PreimageMismatchError {
                        // The money left: count it.
                        await settleDraw(&call, proof: nil)
                    }
                    // Otherwise the outcome is unknown: the reservation and the pending intent stay for recovery.
                    action = flow.paymentFailed(failure)
                }

            case .sendPaidRetry(let proof, let attempt):
                var retry = request
                if let name = HTTPField.Name(proof.headerName) {
                    retry.headerFields[name] = proof.headerValue.value
                }
                configuration.onEvent?(.retrying(attempt: attempt, headerName: proof.headerName))
                let retrySpan = observability.child("routeweiler.retry")
                retrySpan.attributes["routeweiler.attempt"] = attempt
                defer { retrySpan.end() }
                do {
                    let response = try await transport.send(retry, timeout: configuration.timeouts.request)
                    retrySpan.attributes["http.response.status_code"] = Int(response.status.code)
                    lastResponse = response
                    configuration.onEvent?(.completed(status: Int(response.status.code)))
                    if response.status.code == 402 || response.status.code == 401, let id = call.intentID {
                        await call.finishPostPayment()  // the credential is stored before it is dropped
                        try? await credentials.remove(id: id)  // the server refused what we bought
                    }
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
                await call.finishPostPayment()
                let end = Date()
                let elapsedMs = Self.ms(clock.now - startInstant)
                let settlementMs = Self.ms(clock.now - retryStart)
                return try await finish(completion, flow: flow, call: call, envelope: envelope, request: request,
                                        requestID: requestID, start: start, end: end, elapsedMs: elapsedMs,
                                        settlementMs: settlementMs, logger: logger)
            }
        }
    }

    /// The amount settled on the envelope for a paid offer: its fair value, rounded up (no safety buffer).
    static func settleAmount(_ quote: FmvQuote) -> Int64 {
        min(quote.capMinorUnits, (try? FmvConverter.roundUp(quote.fairMinorUnits, what: "settlement")) ?? quote.capMinorUnits)
    }

    /// Settles the call's draw and marks its payment intent succeeded (one transaction when the stores share a
    /// database). On failure both stay as they were: the reservation holds and recovery resolves the intent.
    private func settleDraw(_ call: inout CallState, proof: String?) async {
        if let amount = await settle(drawID: call.drawID, quote: call.quote, intentID: call.intentID, proof: proof) {
            call.reservation?.settledMinorUnits = amount
            call.reservation?.state = "settled"
        }
    }

    /// The settlement writes; returns the settled amount, or `nil` when there is no draw or it could not be written.
    private func settle(drawID: String?, quote: FmvQuote?, intentID: String?, proof: String?) async -> Int64? {
        let journal = configuration.paymentJournal
        guard let drawID, let store = configuration.budgetStore, let quote else {
            if let intentID {
                try? await journal?.resolve(id: intentID, state: .succeeded, proof: proof, now: Date())
            }
            return nil
        }
        let amount = Self.settleAmount(quote)
        do {
            if let journal, let intentID {
                try await store.settle(drawID: drawID, amountMinorUnits: amount, now: Date(), resolving: intentID,
                                       proof: proof, in: journal)
            } else {
                try await store.settle(drawID: drawID, amountMinorUnits: amount, now: Date())
            }
            return amount
        } catch {
            configuration.logger.error("could not settle a draw; it stays reserved",
                                       metadata: ["rw.draw_id": "\(drawID)"])
            return nil
        }
    }

    private func releaseDraw(_ call: inout CallState) async {
        guard let drawID = call.drawID, let store = configuration.budgetStore else { return }
        do {
            try await store.release(drawID: drawID, now: Date())
            call.reservation?.state = "rolled_back"
        } catch {
            configuration.logger.error("could not release a draw; the sweeper will",
                                       metadata: ["rw.draw_id": "\(drawID)"])
        }
        call.drawID = nil
    }

    private func finishReuse(_ response: TransportResponse, credential: StoredCredential, request: RouteweilerRequest,
                             requestID: String, start: Date, elapsedMs: Int, logger: Logger) async throws
        -> RouteweilerResponse
    {
        var event = baseEvent(request: request, requestID: requestID, start: start, elapsedMs: elapsedMs)
        event.selectedRail = credential.rail
        event.credentialId = credential.id
        event.credentialState = "reused"
        event.outcome = .init(httpStatus: Int(response.status.code), serviceDelivered: response.status.code < 400,
                              serviceLatencyMs: elapsedMs)
        await record(event, logger: logger)
        return RouteweilerResponse(status: response.status, headerFields: response.headerFields, body: response.body,
                                   payment: nil, requestID: requestID)
    }

    private func baseEvent(request: RouteweilerRequest, requestID: String, start: Date, elapsedMs: Int) -> TraceEvent {
        var envelopeID: String?
        if let budget = configuration.budget { envelopeID = budget.id }
        return TraceEvent(
            requestId: requestID, agentId: configuration.agentID, envelopeId: envelopeID, policyHash: policyHash,
            method: request.method.rawValue,
            url: request.isPlainHTTP ? request.url.absoluteString : Self.traceURL(request.url),  // no user info to drop
            challenge: nil, selectedRail: nil,
            fallbackFrom: nil, facilitator: nil, fundingSource: nil, payment: nil,
            outcome: .init(httpStatus: nil, serviceDelivered: false, serviceLatencyMs: elapsedMs),
            timestampStart: start, timestampEnd: Date())
    }

    private func finish(_ completion: PaymentFlow.Completion, flow: PaymentFlow, call: CallState,
                        envelope: EnvelopeBinding?, request: RouteweilerRequest, requestID: String, start: Date,
                        end: Date, elapsedMs: Int, settlementMs: Int, logger: Logger) async throws -> RouteweilerResponse
    {
        if case .passthrough(let response) = completion, configuration.traceSink == nil, !observability.tracing,
            !observability.counting
        {
            // A free call with nobody to tell: no trace event to build.
            return RouteweilerResponse(status: response.status, headerFields: response.headerFields,
                                       body: response.body, payment: nil, requestID: requestID)
        }
        var event = baseEvent(request: request, requestID: requestID, start: start, elapsedMs: elapsedMs)
        event.timestampEnd = end
        event.policy = call.policy
        event.reservation = call.reservation
        let quote = call.quote

        var settlement: SettlementReceipt?
        func receipt(_ proof: PaymentProof, _ candidate: PaymentCandidate) -> PaymentReceipt {
            PaymentReceipt(
                rail: candidate.offer.rail, amountNative: proof.amountNative,
                amountNativeCurrency: candidate.offer.challenge.price.currency,
                amountEnvelope: quote?.traceAmountEnvelope, amountEnvelopeCurrency: quote?.envelopeCurrency.code,
                proofType: proof.proofType, proofValue: proof.proofValue ?? settlement?.transactionHash,
                fmvQuality: quote?.quality ?? .unavailable, settlementLatencyMs: proof.settlementLatencyMs,
                fallbackFrom: flow.fallbackFrom, requestID: requestID, settlement: settlement)
        }
        func fill(_ proof: PaymentProof?, _ candidate: PaymentCandidate?) {
            guard let candidate else { return }
            event.challenge = candidate.offer.checkedChallenge
            event.selectedRail = candidate.offer.rail
            event.fallbackFrom = flow.fallbackFrom
            event.fundingSource = candidate.funding.label
            if let proof {
                event.facilitator = settlement?.facilitator ?? (candidate.offer.rail == .l402 ? "lightning" : nil)
                event.payment = .init(
                    proofType: proof.proofType, proofValue: proof.proofValue ?? settlement?.transactionHash,
                    amountNative: proof.amountNative, amountNativeCurrency: candidate.offer.challenge.price.currency,
                    amountEnvelope: quote?.traceAmountEnvelope, amountEnvelopeCurrency: quote?.envelopeCurrency.code,
                    fmvQuality: quote?.quality ?? .unavailable, settlementLatencyMs: proof.settlementLatencyMs,
                    settlement: settlement)
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
            do {
                settlement = try candidate.rail.settlement(for: candidate.offer, proof: proof, response: response)
            } catch {
                // The money moved but the receipt contradicts the payment: fail the call, never pay again.
                let failure = (error as? any RouteweilerError) ?? ChallengeError("\(error)", rail: candidate.offer.rail)
                fill(proof, candidate)
                event.outcome = .init(httpStatus: Int(response.status.code), serviceDelivered: false,
                                      serviceLatencyMs: elapsedMs,
                                      error: .init(code: failure.errorName, message: failure.message))
                await record(event, logger: logger)
                throw failure
            }
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
            if let denied = thrown as? PolicyDeniedError {
                event.policy = .init(verdict: "deny", ruleName: denied.ruleName)
            }
            event.outcome = .init(httpStatus: httpStatus, serviceDelivered: false, serviceLatencyMs: elapsedMs,
                                  error: .init(code: thrown.errorName, message: thrown.message))
            await record(event, logger: logger)
            throw thrown
        }
    }

    private func record(_ event: TraceEvent, logger: Logger) async {
        observability.observe(event, elapsed: .microseconds(Int64(event.timestampEnd.timeIntervalSince(event.timestampStart) * 1_000_000)))
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
    package static func traceURL(_ url: URL) -> String {
        let text = url.absoluteString
        // A plain http(s) URL has no user info (``URL/plainHTTPOrigin(_:)`` refuses any): no Foundation accessors.
        if URL.plainHTTPOrigin(text) != nil { return text }
        if url.user == nil && url.password == nil { return text }
        guard var c = URLComponents(url: url, resolvingAgainstBaseURL: false) else { return url.absoluteString }
        c.user = nil
        c.password = nil
        return c.string ?? url.absoluteString
    }
}

/// Runs the client's start-up once; concurrent callers wait for the same result. Once it succeeded, every call
/// reads the result under a lock (no actor hop on the call path).
final class StartupGate: Sendable {
    private enum State {
        case idle
        case running(Task<RouteweilerClient.EnvelopeBinding?, any Error>)
        case done(RouteweilerClient.EnvelopeBinding?)
    }
    private let state = Mutex<State>(.idle)

    func run(_ body: @escaping @Sendable () async throws -> RouteweilerClient.EnvelopeBinding?) async throws
        -> RouteweilerClient.EnvelopeBinding?
    {
        let task: Task<RouteweilerClient.EnvelopeBinding?, any Error>
        switch state.withLock({ state -> State in
            if case .idle = state { state = .running(Task { try await body() }) }
            return state
        }) {
        case .done(let value): return value
        case .running(let t): task = t
        case .idle: preconditionFailure("unreachable")
        }
        do {
            let value = try await task.value
            state.withLock { $0 = .done(value) }
            return value
        } catch {
            // A failed start may be retried by the next call.
            state.withLock { state in
                if case .running = state { state = .idle }
            }
            throw error
        }
    }
}

