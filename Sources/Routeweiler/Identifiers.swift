/// A member of an open set spelled as a string on the wire (rail ids, proof types, …): encoded as that string,
/// printed as that string, compared by it. New members are static constants; no caller's `switch` breaks.
public protocol OpenStringValue: Hashable, Sendable, Codable, CustomStringConvertible {
    var rawValue: String { get }
    init(_ rawValue: String)
}

extension OpenStringValue {
    public init(from decoder: any Decoder) throws { self.init(try decoder.singleValueContainer().decode(String.self)) }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(rawValue)
    }
    public var description: String { rawValue }
}

/// Identifies a payment rail (a protocol over HTTP 402). Spelled exactly as in traces: `l402`, `x402`, `mpp-tempo`, `mpp-spt`.
public struct RailID: OpenStringValue, ExpressibleByStringLiteral {
    /// The wire and trace spelling.
    public let rawValue: String

    /// Creates a rail id from its wire spelling.
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }

    /// x402: EIP-3009 stablecoin authorisations.
    public static let x402 = RailID("x402")
    /// L402 (and legacy LSAT): macaroon plus a Lightning invoice.
    public static let l402 = RailID("l402")
    /// MPP over Tempo stablecoin transactions.
    public static let mppTempo = RailID("mpp-tempo")
    /// MPP over Stripe shared payment tokens.
    public static let mppSPT = RailID("mpp-spt")
    /// MPP `method="lightning"` charges (Lightning Labs' Aperture), paid from the Lightning funding source.
    public static let mppLightning = RailID("mpp-lightning")

    /// The fixed registration order that breaks routing ties.
    public static let registrationOrder: [RailID] = [.x402, .l402, .mppTempo, .mppSPT, .mppLightning]
}

/// The kind of proof a rail hands the server: a transaction id, a Lightning preimage, or a Stripe token id.
public struct ProofType: OpenStringValue {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }

    public static let txid = ProofType("txid")
    public static let preimage = ProofType("preimage")
    public static let sptID = ProofType("spt_id")
}

/// How an amount was converted into the envelope currency.
public struct FmvQuality: OpenStringValue {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }

    public static let stablecoinPeg = FmvQuality("stablecoin_peg")
    public static let coingeckoSimple = FmvQuality("coingecko_simple")
    public static let fxLeg = FmvQuality("fx_leg")
    public static let staticTable = FmvQuality("static")
    public static let unavailable = FmvQuality("unavailable")
}

/// A value that must never be printed, logged, traced or encoded: macaroons, keys, tokens, preimage-bearing headers.
public struct Redacted<Value: Sendable>: Sendable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    /// The secret itself. Read it only to put it on the wire.
    public let value: Value
    public init(_ value: Value) { self.value = value }
    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}

extension Redacted: Equatable where Value: Equatable {}
extension Redacted: Hashable where Value: Hashable {}
