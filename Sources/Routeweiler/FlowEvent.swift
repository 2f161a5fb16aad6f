/// A step of a call, reported live to ``RouteweilerClient/Configuration/onEvent`` (for progress displays and
/// demos). Events carry no secrets.
public enum FlowEvent: Sendable {
    /// The server answered the original request with a 402 and these `WWW-Authenticate`/payment headers.
    case challenged(status: Int, challengeHeaders: [String])
    /// The offer about to be paid: the router chose it and it passed the budget reservation and every pre-payment
    /// check (an offer refused at that point is reported as ``offerRejected(_:)`` instead, and the next is tried).
    case offerSelected(NormalizedChallenge, fundingSource: String)
    /// An offer was not used (rejected before any money moved, or its payment failed before funds moved).
    case offerRejected(RailRejection)
    /// The payment succeeded; the proof is about to be sent.
    case paid(rail: RailID, proofType: ProofType, proofValue: String?, amountNative: UInt64, latencyMs: Int)
    /// The request is sent again with the proof (attempt 1, 2, …).
    case retrying(attempt: Int, headerName: String)
    /// The final response arrived.
    case completed(status: Int)
}
