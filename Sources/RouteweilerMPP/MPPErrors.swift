public import Routeweiler
public import RouteweilerWire

extension InvalidChallengeError.Code {
    /// The MPP challenge's intent is not `charge`.
    public static let unsupportedIntent = Self("unsupported_intent")
    /// A required field of the MPP `request` is missing or malformed.
    public static let invalidRequest = Self("invalid_request")
    /// The Lightning invoice does not match the challenge (amount, payment hash).
    public static let invoiceMismatch = Self("invoice_mismatch")
}

/// An MPP charge could not be made: the chain's RPC is down or refused, signing failed, or the server answered
/// the paid retry with an RFC 9457 problem. `mayHaveMovedFunds` says whether a transaction may have been handed
/// to the server (then never pay again).
public struct MppChargeFailedError: RouteweilerError {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// The chain's JSON-RPC could not be reached or timed out.
        public static let rpcUnavailable = Code("rpc_unavailable")
        /// The JSON-RPC answered with an error or an unreadable result.
        public static let rpcError = Code("rpc_error")
        /// The wallet could not sign.
        public static let signingFailed = Code("signing_failed")
        /// The server answered with an RFC 9457 problem-details body (see ``MppChargeFailedError/problem``).
        public static let problem = Code("problem")
    }
    public var errorName: String { "MppChargeFailedError" }
    public var code: Code
    public var message: String
    public var rail: RailID
    /// The server's problem details, when it sent some.
    public var problem: ProblemDetails?
    public var mayHaveMovedFunds: Bool
    public var cause: (any Error & Sendable)?
    public init(code: Code, message: String, rail: RailID, problem: ProblemDetails? = nil,
                mayHaveMovedFunds: Bool = false, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.rail = rail
        self.problem = problem
        self.mayHaveMovedFunds = mayHaveMovedFunds
        self.cause = cause
    }
}

/// Stripe refused to mint the shared payment token (card declined, bad API key, invalid parameters) or could not be
/// reached. Nothing was paid. `code` is Stripe's error code (`card_declined`, `api_key_expired`, …) when it sent one.
public struct SptCreationError: RouteweilerError {
    public var errorName: String { "SptCreationError" }
    /// Stripe's `error.code`, e.g. `card_declined`; `nil` when Stripe sent none (or was not reached).
    public var code: String?
    /// Stripe's `error.type`: `card_error`, `invalid_request_error`, `authentication_error`, `api_error`, …
    public var type: String?
    /// Stripe's `error.decline_code`, for card errors.
    public var declineCode: String?
    /// The HTTP status Stripe answered with (`nil`: not reached).
    public var httpStatus: Int?
    public var message: String
    public var cause: (any Error & Sendable)?
    public init(code: String?, type: String?, declineCode: String? = nil, httpStatus: Int?, message: String,
                cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.type = type
        self.declineCode = declineCode
        self.httpStatus = httpStatus
        self.message = message
        self.cause = cause
    }
}

/// The server's `Payment-Receipt` contradicts the payment (another challenge, another method, another amount) or
/// cannot be decoded. The money has moved: the call fails without paying again.
public struct MppReceiptVerificationError: RouteweilerError {
    public var errorName: String { "MppReceiptVerificationError" }
    public var message: String
    public var mayHaveMovedFunds: Bool { true }
    public init(_ message: String) { self.message = message }
}
