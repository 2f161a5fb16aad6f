public import RouteweilerWire

/// What a Lightning node tells about itself.
public struct LightningNodeInfo: Sendable, Hashable {
    /// The node's identity key, 66 hex characters.
    public var pubkey: String
    /// The chain the node runs on, if it said.
    public var network: LightningNetwork?
    public init(pubkey: String, network: LightningNetwork?) {
        self.pubkey = pubkey
        self.network = network
    }
}

/// A settled Lightning payment.
public struct LightningPayment: Sendable, Hashable {
    public var paymentHash: [UInt8]
    public var preimage: [UInt8]
    /// Routing fees paid, in millisatoshi.
    public var feeMsat: UInt64
    public init(paymentHash: [UInt8], preimage: [UInt8], feeMsat: UInt64) {
        self.paymentHash = paymentHash
        self.preimage = preimage
        self.feeMsat = feeMsat
    }
}

/// The outcome of a payment looked up by hash (after a crash or a broken stream).
public enum LightningPaymentStatus: Sendable, Hashable {
    case succeeded(LightningPayment)
    case failed(reason: String)
    case inFlight
    case notFound
}

/// The few things Routeweiler needs from a Lightning node. ``LNDClient`` conforms; so can any other node client.
public protocol LightningNode: Sendable {
    /// The node's identity and network.
    func nodeInfo() async throws -> LightningNodeInfo
    /// Pays `invoice` with a fee cap and a timeout and returns the preimage.
    /// - Throws: ``InvoicePaymentError``; `mayHaveMovedFunds` says whether the payment may still complete.
    func pay(invoice: Bolt11Invoice, maxFeeMsat: UInt64, timeout: Duration) async throws -> LightningPayment
    /// What the node knows of the payment of `paymentHash`.
    func paymentStatus(paymentHash: [UInt8]) async throws -> LightningPaymentStatus
}
