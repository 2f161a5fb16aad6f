/// An error thrown by ``LNDClient``.
///
/// Errors never contain the macaroon: messages that come from the node are scrubbed of it
/// before they are stored, and the client never puts request metadata into an error.
public struct LNDError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// A stable category of ``LNDError``, suitable for matching.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Wrapped: String, Hashable, Sendable {
            case unreachable
            case certificateRejected
            case macaroonRejected
            case paymentFailed
            case paymentStatusUnknown
            case invalidRequest
            case alreadyPaid
            case timeout
            case invalidConfiguration
            case unexpected
            case paymentNotFound
        }

        private let wrapped: Wrapped

        private init(_ wrapped: Wrapped) {
            self.wrapped = wrapped
        }

        /// The node could not be reached (connection refused, DNS failure, node down).
        /// Nothing was sent to the node.
        public static let unreachable = Code(.unreachable)
        /// The TLS handshake failed: the node's certificate did not match the pinned `tls.cert`.
        public static let certificateRejected = Code(.certificateRejected)
        /// The node rejected the macaroon (`PERMISSION_DENIED`, `UNAUTHENTICATED`,
        /// "verification failed", "invalid macaroon").
        public static let macaroonRejected = Code(.macaroonRejected)
        /// LND reported the payment as `FAILED`; ``LNDError/failureReason`` holds the reason.
        /// No money left the node.
        public static let paymentFailed = Code(.paymentFailed)
        /// The payment may or may not have been made; its final state could not be determined.
        /// Treat the money as possibly spent and reconcile later with
        /// ``LNDClient/trackPayment(paymentHash:)``.
        public static let paymentStatusUnknown = Code(.paymentStatusUnknown)
        /// The node refused the request as invalid (bad or expired invoice, bad amount, ...).
        public static let invalidRequest = Code(.invalidRequest)
        /// The invoice was already paid by this node (by an earlier payment). This call sent nothing.
        public static let alreadyPaid = Code(.alreadyPaid)
        /// The RPC deadline was exceeded.
        public static let timeout = Code(.timeout)
        /// The client configuration is invalid (unreadable certificate or macaroon, bad host or port).
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// Any other error.
        public static let unexpected = Code(.unexpected)
        /// LND has no payment with the given hash (`TrackPaymentV2` answered "payment isn't
        /// initiated"): nothing was sent for it.
        public static let paymentNotFound = Code(.paymentNotFound)

        /// The name of the code, e.g. `"macaroonRejected"`.
        public var description: String { self.wrapped.rawValue }
    }

    /// The category of the error.
    public var code: Code
    /// A human-readable explanation. Never contains the macaroon.
    public var message: String
    /// For ``Code/paymentFailed``: LND's `PaymentFailureReason` name, e.g. `"FAILURE_REASON_NO_ROUTE"`.
    public var failureReason: String?
    /// Whether money may have left the node as a result of the call that threw this error.
    ///
    /// `false` only when the client knows for certain that no payment was attempted or that it
    /// failed. When `true`, the caller must not retry blindly; reconcile with
    /// ``LNDClient/trackPayment(paymentHash:)`` first.
    public var paymentMayHaveBeenSent: Bool
    /// The underlying error, typically a gRPC `RPCError`.
    public var cause: (any Error)?

    /// Creates an error.
    public init(
        code: Code,
        message: String,
        failureReason: String? = nil,
        paymentMayHaveBeenSent: Bool = false,
        cause: (any Error)? = nil
    ) {
        self.code = code
        self.message = message
        self.failureReason = failureReason
        self.paymentMayHaveBeenSent = paymentMayHaveBeenSent
        self.cause = cause
    }

    /// A one-line description: code, message, failure reason and whether a payment may have been sent.
    /// The underlying cause is not included (it may be verbose); it never contains the macaroon.
    public var description: String {
        var text = "LNDError(\(self.code)): \(self.message)"
        if let failureReason = self.failureReason {
            text += " [\(failureReason)]"
        }
        if self.paymentMayHaveBeenSent {
            text += " (payment may have been sent)"
        }
        return text
    }

    /// Same as ``description``.
    public var debugDescription: String { self.description }
}
