import RouteweilerWire

/// Every error the client throws conforms to this protocol.
///
/// `errorName` is the SPEC name that lands in `outcome.error.code` of the trace; `mayHaveMovedFunds` tells
/// whether money may have left the wallet before the error (never fail over, never pay again when it is `true`).
public protocol RouteweilerError: Error, Sendable, CustomStringConvertible {
    /// The SPEC error name, e.g. `InvoicePaymentError`.
    var errorName: String { get }
    /// A human-readable message without secrets.
    var message: String { get }
    /// Whether funds may have left the wallet before this error was raised.
    var mayHaveMovedFunds: Bool { get }
}

extension RouteweilerError {
    public var description: String { "\(errorName): \(message)" }
    public var mayHaveMovedFunds: Bool { false }
}

/// A challenge could not be parsed (malformed header, bad invoice, undecodable payload). Nothing was paid.
public struct ChallengeError: RouteweilerError {
    public var errorName: String { "ChallengeParseError" }
    public var message: String
    public var rail: RailID?
    public var cause: (any Error & Sendable)?
    public init(_ message: String, rail: RailID? = nil, cause: (any Error & Sendable)? = nil) {
        self.message = message
        self.rail = rail
        self.cause = cause
    }
}

/// The challenge, its invoice or one of its caveats has expired. Nothing was paid.
public struct ChallengeExpiredError: RouteweilerError {
    public var errorName: String { "ChallengeExpiredError" }
    public var message: String
    public var rail: RailID?
    public init(_ message: String, rail: RailID? = nil) {
        self.message = message
        self.rail = rail
    }
}

/// A challenge parsed but is unsafe to pay (an amountless invoice, a payment hash that does not match the
/// token, an amount above a configured limit). Nothing was paid.
public struct InvalidChallengeError: RouteweilerError {
    /// What was wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        public static let amountlessInvoice = Code("amountless_invoice")
        public static let paymentHashMismatch = Code("payment_hash_mismatch")
        public static let amountTooHigh = Code("amount_too_high")
        public static let unsupported = Code("unsupported")
    }
    public var errorName: String { "InvalidChallengeError" }
    public var code: Code
    public var message: String
    public var rail: RailID?
    public init(code: Code, message: String, rail: RailID? = nil) {
        self.code = code
        self.message = message
        self.rail = rail
    }
}

/// No funding source can pay this offer (for example the invoice is for another network). Nothing was paid.
public struct NoFundingForRailError: RouteweilerError {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        public static let networkMismatch = Code("network_mismatch")
        public static let noSource = Code("no_source")
    }
    public var errorName: String { "NoFundingForRailError" }
    public var code: Code
    public var message: String
    public var rail: RailID
    public init(code: Code, message: String, rail: RailID) {
        self.code = code
        self.message = message
        self.rail = rail
    }
}

/// The server answered 402 but no configured rail understands any of its challenges. Nothing was paid.
public struct RailNotSupportedError: RouteweilerError {
    public var errorName: String { "RailNotSupportedError" }
    public var message: String
    public init(_ message: String) { self.message = message }
}

/// Why one offer or one rail was not used.
public struct RailRejection: Sendable, CustomStringConvertible {
    public var rail: RailID
    public var error: any RouteweilerError
    /// The offer that was refused, when it could be parsed.
    public var challenge: NormalizedChallenge?
    public init(rail: RailID, error: any RouteweilerError, challenge: NormalizedChallenge? = nil) {
        self.rail = rail
        self.error = error
        self.challenge = challenge
    }
    public var description: String { "\(rail): \(error)" }
}

/// No offer could be paid: each was rejected or failed before money moved. `rejections` says why, per rail.
public struct NoFeasibleRailError: RouteweilerError {
    public var errorName: String { "NoFeasibleRailError" }
    public var rejections: [RailRejection]
    public var message: String
    public init(rejections: [RailRejection]) {
        self.rejections = rejections
        self.message =
            rejections.isEmpty
            ? "no rail could pay this challenge"
            : "no rail could pay this challenge: " + rejections.map(\.description).joined(separator: "; ")
    }
}

/// The payment policy refused to pay. Nothing was paid.
public struct PolicyDeniedError: RouteweilerError {
    public var errorName: String { "PolicyDeniedError" }
    public var message: String
    public var ruleName: String?
    public init(_ message: String, ruleName: String? = nil) {
        self.message = message
        self.ruleName = ruleName
    }
}

/// The Lightning payment failed or its outcome is unknown.
///
/// When `mayHaveMovedFunds` is `false` the node reported a definite failure and nothing left the wallet; when
/// it is `true` the node may still complete the payment and the router will neither fail over nor pay again.
public struct InvoicePaymentError: RouteweilerError {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// The node reported the payment FAILED (see `failureReason`).
        public static let paymentFailed = Code("payment_failed")
        /// The node could not be reached.
        public static let nodeUnreachable = Code("node_unreachable")
        /// The node rejected our macaroon.
        public static let macaroonRejected = Code("macaroon_rejected")
        /// The node's TLS certificate did not match the pinned `tls.cert`.
        public static let certificateMismatch = Code("certificate_mismatch")
        /// The payment was sent but its outcome could not be learned.
        public static let outcomeUnknown = Code("outcome_unknown")
        /// The node refused the request (expired invoice, already paid, bad request).
        public static let rejected = Code("rejected")
        /// The node did not answer in time.
        public static let timeout = Code("timeout")
    }
    public var errorName: String { "InvoicePaymentError" }
    public var code: Code
    public var message: String
    /// LND's failure reason, e.g. `FAILURE_REASON_NO_ROUTE`.
    public var failureReason: String?
    public var mayHaveMovedFunds: Bool
    public var paymentHash: String?
    public init(code: Code, message: String, failureReason: String? = nil, mayHaveMovedFunds: Bool,
                paymentHash: String? = nil) {
        self.code = code
        self.message = message
        self.failureReason = failureReason
        self.mayHaveMovedFunds = mayHaveMovedFunds
        self.paymentHash = paymentHash
    }
}

/// The node paid but the preimage it returned does not hash to the invoice's payment hash. Funds left the wallet.
public struct PreimageMismatchError: RouteweilerError {
    public var errorName: String { "PreimageMismatchError" }
    public var message: String
    public var mayHaveMovedFunds: Bool { true }
    public var paymentHash: String
    public init(paymentHash: String) {
        self.paymentHash = paymentHash
        self.message = "the preimage returned by the node does not hash to payment hash \(paymentHash)"
    }
}

/// The server refused the proof of a payment that was made (it answered 402 or 401 again). Nothing was paid a
/// second time; the proof is kept in the trace and the payment receipt so it can be disputed or reused.
public struct ProofRejectedError: RouteweilerError {
    public var errorName: String { "ProofRejectedError" }
    public var message: String
    public var mayHaveMovedFunds: Bool { true }
    public var status: Int
    public var payment: PaymentReceipt
    public init(status: Int, payment: PaymentReceipt) {
        self.status = status
        self.payment = payment
        self.message =
            "the server answered \(status) to the paid retry: it refused the \(payment.rail) proof; nothing was paid again"
    }
}

/// The paid retry could not be delivered (network failure on every attempt). The payment was made; the proof is
/// in the trace and the receipt, and sending it again later does not pay again.
public struct PaidRetryFailedError: RouteweilerError {
    public var errorName: String { "PaidRetryFailedError" }
    public var message: String
    public var mayHaveMovedFunds: Bool { true }
    public var payment: PaymentReceipt
    public var attempts: Int
    public var cause: (any Error & Sendable)?
    public init(payment: PaymentReceipt, attempts: Int, cause: (any Error & Sendable)?) {
        self.payment = payment
        self.attempts = attempts
        self.cause = cause
        self.message =
            "paid on \(payment.rail) but the retry with the proof failed \(attempts) time(s): \(cause.map { String(describing: $0) } ?? "unknown")"
    }
}

/// The configuration is invalid (raised at creation, before any request).
public struct ConfigurationError: RouteweilerError {
    public var errorName: String { "ConfigurationError" }
    public var message: String
    public init(_ message: String) { self.message = message }
}

extension ChallengeParseError: RouteweilerError {
    public var errorName: String { "ChallengeParseError" }
}

/// The intent to pay could not be recorded in the payment journal, so nothing was paid (and nothing reserved).
public struct JournalWriteError: RouteweilerError {
    public var errorName: String { "JournalWriteError" }
    public var message: String
    /// What the journal threw.
    public var cause: any Error
    public init(cause: any Error) {
        self.cause = cause
        self.message = "could not record the payment intent: \(cause)"
    }
}
