/// No trustworthy fair-market value is available: the rate service is down, slow or answered garbage, the cached
/// rate is too old, or the asset is unknown. The client refuses to pay rather than guess; nothing was paid.
public struct FmvUnavailableError: RouteweilerError {
    /// Why no rate is available.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(_ rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// The service could not be reached, failed, or did not answer in time.
        public static let fetchFailed = Code("fetch_failed")
        /// The service answered with something that is not a usable rate.
        public static let badResponse = Code("bad_response")
        /// The service does not quote this currency or pair.
        public static let unsupportedPair = Code("unsupported_pair")
        /// The last known rate is older than the staleness limit.
        public static let stale = Code("stale")
        /// The rail's asset is not one the converter can value (unknown token, unknown currency string).
        public static let unknownAsset = Code("unknown_asset")
        /// The value does not fit in the integer range of the cap check.
        public static let overflow = Code("overflow")
    }

    public var errorName: String { "FmvUnavailableError" }
    /// Never `true`: FMV is looked up before anything is paid.
    public var mayHaveMovedFunds: Bool { false }
    public var code: Code
    public var message: String
    /// The underlying transport or decoding error, if any.
    public var cause: (any Error & Sendable)?

    public init(code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }
}
