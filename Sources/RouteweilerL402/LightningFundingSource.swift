public import LNDClient
public import Routeweiler
public import RouteweilerWire

/// Pays Lightning invoices (L402) through the user's own node.
///
/// ```swift
/// let lightning = try await LightningFundingSource.create(lnd: lnd, network: .bitcoinRegtest)
/// ```
public struct LightningFundingSource: FundingSource {
    public let node: any LightningNode
    public let network: LightningNetwork
    /// The node's identity key (66 hex characters, compressed).
    public let nodePubkey: String
    /// Routing fee cap per payment, in millisatoshi. Default 1000 (1 sat).
    public var maxFeeMsat: UInt64
    /// Invoices dearer than this (in millisatoshi) are refused before paying; `nil` means no limit.
    public var maxAmountMsat: UInt64?
    /// How long the node may try to route one payment. Default 60 s.
    public var paymentTimeout: Duration
    /// Rails besides L402 this node pays (e.g. MPP `method="lightning"`, added by `RouteweilerMPP`'s `withMPP()`).
    public var additionalRails: [any Rail] = []

    /// A funding source over `node`, whose pubkey you already know.
    /// - Throws: ``ConfigurationError`` if `nodePubkey` is not a 66-hex compressed public key.
    public init(node: any LightningNode, network: LightningNetwork, nodePubkey: String, maxFeeMsat: UInt64 = 1000,
                maxAmountMsat: UInt64? = nil, paymentTimeout: Duration = .seconds(60)) throws {
        guard nodePubkey.utf8.count == 66, let bytes = Hex.decode(nodePubkey), bytes[0] == 2 || bytes[0] == 3 else {
            throw ConfigurationError("nodePubkey must be a 66-hex compressed secp256k1 public key (02… or 03…)")
        }
        self.node = node
        self.network = network
        self.nodePubkey = nodePubkey.lowercased()
        self.maxFeeMsat = maxFeeMsat
        self.maxAmountMsat = maxAmountMsat
        self.paymentTimeout = paymentTimeout
    }

    /// Asks the node for its pubkey (LND `GetInfo`) and checks that it runs on `network`.
    /// - Throws: ``ConfigurationError`` when the node is on another network; ``InvoicePaymentError`` when the node
    ///   cannot be reached or refuses the macaroon or certificate.
    public static func create(lnd: any LightningNode, network: LightningNetwork, maxFeeMsat: UInt64 = 1000,
                              maxAmountMsat: UInt64? = nil) async throws -> LightningFundingSource {
        let info = try await lnd.nodeInfo()
        if let nodeNetwork = info.network, nodeNetwork != network {
            throw ConfigurationError("the node runs on \(nodeNetwork), not \(network)")
        }
        return try LightningFundingSource(node: lnd, network: network, nodePubkey: info.pubkey, maxFeeMsat: maxFeeMsat,
                                          maxAmountMsat: maxAmountMsat)
    }

    public var rails: [any Rail] { [L402Rail()] + additionalRails }
    public var label: String { "lightning:\(network)" }
}

extension Funding {
    /// A Lightning funding source paying through LND.
    public static func lightningLND(client: LNDClient, network: LightningNetwork, nodePubkey: String,
                                    maxFeeMsat: UInt64 = 1000) throws -> LightningFundingSource {
        try LightningFundingSource(node: client, network: network, nodePubkey: nodePubkey, maxFeeMsat: maxFeeMsat)
    }
}
