/// A funding source chosen to pay one offer on one rail.
public struct PaymentCandidate: Sendable {
    public var offer: PaymentOffer
    public var rail: any Rail
    public var funding: any FundingSource
    /// The policy's verdict on this offer.
    public var decision: PolicyDecision = PolicyDecision()
    /// The offer's cost in the reference currency, when one is configured.
    public var quote: FmvQuote?
    public init(offer: PaymentOffer, rail: any Rail, funding: any FundingSource) {
        self.offer = offer
        self.rail = rail
        self.funding = funding
    }
}

/// The 402 state machine (request → challenge → route → pay → retry with proof → finish), with no I/O.
///
/// The client feeds it events and carries out the ``Action`` it returns. The money invariants live here:
/// - at most one payment per call: once a payment may have moved funds, no other candidate is tried;
/// - a failed paid retry is sent again with the same proof, never paid again;
/// - every call ends in exactly one ``Completion`` (one trace row).
struct PaymentFlow: Sendable {
    enum Action: Sendable {
        /// Send the caller's request as it is.
        case sendOriginal
        /// Parse the 402 response and route it to candidates.
        case route
        /// Pay with this candidate.
        case pay(PaymentCandidate)
        /// Send the request again with the proof (attempt 1, 2, …).
        case sendPaidRetry(PaymentProof, attempt: Int)
        /// Wait before the next retry attempt.
        case backoff(Duration, then: PaymentProof, attempt: Int)
        /// The call is over.
        case complete(Completion)
    }

    enum Completion: Sendable {
        /// A non-402 answer to the original request; nothing was paid.
        case passthrough(TransportResponse)
        /// Paid, and the retry answered (any status but 401/402).
        case paid(TransportResponse, PaymentProof, PaymentCandidate)
        /// The call failed. `candidate` and `proof` are set when known (a proof means money moved).
        case failed(any RouteweilerError, candidate: PaymentCandidate?, proof: PaymentProof?, httpStatus: Int?)
    }

    enum State: Sendable {
        case idle
        case awaitingOriginal
        case routing
        case paying(PaymentCandidate)
        case retrying(PaymentProof, PaymentCandidate, attempt: Int)
        case done
    }

    private(set) var state: State = .idle
    private(set) var queue: [PaymentCandidate] = []
    private(set) var rejections: [RailRejection] = []
    /// The rail that failed (before funds moved) just before the current candidate.
    private(set) var fallbackFrom: RailID?
    private(set) var originalStatus: Int?
    /// How many candidates have been handed out to pay (0 before the first).
    private(set) var attempt = 0
    let maxRetryAttempts: Int
    let retryBackoff: Duration

    init(maxRetryAttempts: Int, retryBackoff: Duration) {
        precondition(maxRetryAttempts >= 1)
        self.maxRetryAttempts = maxRetryAttempts
        self.retryBackoff = retryBackoff
    }

    mutating func start() -> Action {
        guard case .idle = state else { preconditionFailure("flow already started") }
        state = .awaitingOriginal
        return .sendOriginal
    }

    mutating func originalResponse(_ response: TransportResponse) -> Action {
        guard case .awaitingOriginal = state else { preconditionFailure("unexpected original response") }
        originalStatus = Int(response.status.code)
        if response.status.code != 402 {
            state = .done
            return .complete(.passthrough(response))
        }
        state = .routing
        return .route
    }

    mutating func originalFailed(_ error: any RouteweilerError) -> Action {
        guard case .awaitingOriginal = state else { preconditionFailure("unexpected original failure") }
        state = .done
        return .complete(.failed(error, candidate: nil, proof: nil, httpStatus: nil))
    }

    /// Routing produced ordered candidates (best first), or failed outright.
    mutating func routed(_ result: RouteResult, rejections: [RailRejection])
        -> Action
    {
        guard case .routing = state else { preconditionFailure("unexpected routing result") }
        self.rejections = rejections
        switch result {
        case .failed(let error):
            state = .done
            return .complete(.failed(error, candidate: nil, proof: nil, httpStatus: originalStatus))
        case .candidates(let candidates):
            queue = candidates
            return nextCandidate(lastError: nil, lastCandidate: nil)
        }
    }

    mutating func paymentSucceeded(_ proof: PaymentProof) -> Action {
        guard case .paying(let candidate) = state else { preconditionFailure("unexpected payment result") }
        state = .retrying(proof, candidate, attempt: 1)
        return .sendPaidRetry(proof, attempt: 1)
    }

    mutating func paymentFailed(_ error: any RouteweilerError) -> Action {
        guard case .paying(let candidate) = state else { preconditionFailure("unexpected payment failure") }
        if error.mayHaveMovedFunds {
            // Money may have left: never try another rail, never pay again.
            state = .done
            return .complete(.failed(error, candidate: candidate, proof: nil, httpStatus: originalStatus))
        }
        rejections.append(RailRejection(rail: candidate.offer.rail, error: error))
        fallbackFrom = candidate.offer.rail
        return nextCandidate(lastError: error, lastCandidate: candidate)
    }

    mutating func retryResponse(_ response: TransportResponse) -> Action {
        guard case .retrying(let proof, let candidate, _) = state else { preconditionFailure("unexpected retry response") }
        state = .done
        let code = Int(response.status.code)
        if code == 402 || code == 401 {
            return .complete(.failed(ProofRejectedPlaceholder(status: code), candidate: candidate, proof: proof,
                                     httpStatus: code))
        }
        return .complete(.paid(response, proof, candidate))
    }

    mutating func retryFailed(_ error: any RouteweilerError) -> Action {
        guard case .retrying(let proof, let candidate, let attempt) = state else {
            preconditionFailure("unexpected retry failure")
        }
        if attempt >= maxRetryAttempts {
            state = .done
            return .complete(.failed(PaidRetryFailedPlaceholder(attempts: attempt, cause: error), candidate: candidate,
                                     proof: proof, httpStatus: nil))
        }
        state = .retrying(proof, candidate, attempt: attempt + 1)
        let delay = retryBackoff * (1 << (attempt - 1))
        return .backoff(delay, then: proof, attempt: attempt + 1)
    }

    private mutating func nextCandidate(lastError: (any RouteweilerError)?, lastCandidate: PaymentCandidate?) -> Action {
        if queue.isEmpty {
            state = .done
            let error: any RouteweilerError
            if rejections.count == 1, let only = rejections.first {
                error = only.error
            } else {
                error = NoFeasibleRailError(rejections: rejections)
            }
            return .complete(.failed(error, candidate: lastCandidate, proof: nil, httpStatus: originalStatus))
        }
        let next = queue.removeFirst()
        attempt += 1
        state = .paying(next)
        return .pay(next)
    }
}

/// Marks a retry answered with 401/402; the client turns it into a ``ProofRejectedError`` with the receipt.
struct ProofRejectedPlaceholder: RouteweilerError {
    var status: Int
    var errorName: String { "ProofRejectedError" }
    var message: String { "the server answered \(status) to the paid retry" }
    var mayHaveMovedFunds: Bool { true }
}

/// Marks a paid retry that never got an answer; the client turns it into a ``PaidRetryFailedError``.
struct PaidRetryFailedPlaceholder: RouteweilerError {
    var attempts: Int
    var cause: any RouteweilerError
    var errorName: String { "PaidRetryFailedError" }
    var message: String { "the paid retry failed \(attempts) time(s): \(cause.message)" }
    var mayHaveMovedFunds: Bool { true }
}
