/// What `GetInfo` says about the node.
public struct NodeInfo: Sendable, Hashable {
    /// The node's identity public key, 66 lower-case hex characters.
    public var identityPubkey: String
    /// The node's alias.
    public var alias: String
    /// The chain the node is on (usually `"bitcoin"`).
    public var chain: String
    /// The network: `"mainnet"`, `"testnet"`, `"signet"`, `"regtest"` or `"simnet"`.
    public var network: String
    /// Whether the node's wallet is synced to the chain.
    public var syncedToChain: Bool
    /// The node's current block height.
    public var blockHeight: UInt32
    /// The LND version string.
    public var version: String
    /// The number of active channels.
    public var numActiveChannels: UInt32
    /// The node's color, e.g. `"#3399ff"`.
    public var color: String

    /// Creates a node description.
    public init(
        identityPubkey: String,
        alias: String,
        chain: String = "bitcoin",
        network: String,
        syncedToChain: Bool,
        blockHeight: UInt32,
        version: String,
        numActiveChannels: UInt32 = 0,
        color: String = ""
    ) {
        self.identityPubkey = identityPubkey
        self.alias = alias
        self.chain = chain
        self.network = network
        self.syncedToChain = syncedToChain
        self.blockHeight = blockHeight
        self.version = version
        self.numActiveChannels = numActiveChannels
        self.color = color
    }
}

/// The state of a payment as reported by LND's router.
public struct PaymentOutcome: Sendable, Hashable {
    /// LND's payment status.
    public enum Status: String, Sendable, Hashable {
        /// The payment settled; ``PaymentOutcome/preimage`` is set.
        case succeeded
        /// The payment failed; ``PaymentOutcome/failureReason`` is set. No money left the node.
        case failed
        /// HTLCs are in flight: the payment may still succeed or fail.
        case inFlight
        /// The payment is created but no HTLC was attempted yet (LND 0.18+).
        case initiated
    }

    /// The status.
    public var status: Status
    /// The payment hash (32 bytes).
    public var paymentHash: [UInt8]
    /// The preimage (32 bytes) when ``status`` is ``Status/succeeded``.
    public var preimage: [UInt8]?
    /// The amount paid to the destination, in millisatoshis.
    public var valueMsat: Int64
    /// The routing fee, in millisatoshis.
    public var feeMsat: Int64
    /// When ``status`` is ``Status/failed``: LND's `PaymentFailureReason` name, e.g.
    /// `"FAILURE_REASON_NO_ROUTE"`.
    public var failureReason: String?

    /// Creates an outcome.
    public init(
        status: Status,
        paymentHash: [UInt8],
        preimage: [UInt8]? = nil,
        valueMsat: Int64 = 0,
        feeMsat: Int64 = 0,
        failureReason: String? = nil
    ) {
        self.status = status
        self.paymentHash = paymentHash
        self.preimage = preimage
        self.valueMsat = valueMsat
        self.feeMsat = feeMsat
        self.failureReason = failureReason
    }

    /// Whether the status is final (succeeded or failed).
    public var isTerminal: Bool {
        self.status == .succeeded || self.status == .failed
    }
}

/// LND's `PaymentFailureReason` enum names.
package enum PaymentFailureReasonName {
    package static let names: [Int: String] = [
        0: "FAILURE_REASON_NONE",
        1: "FAILURE_REASON_TIMEOUT",
        2: "FAILURE_REASON_NO_ROUTE",
        3: "FAILURE_REASON_ERROR",
        4: "FAILURE_REASON_INCORRECT_PAYMENT_DETAILS",
        5: "FAILURE_REASON_INSUFFICIENT_BALANCE",
    ]

    /// The LND name for a raw enum value (`FAILURE_REASON_<n>` for values unknown to this build).
    package static func name(forRawValue rawValue: Int) -> String {
        Self.names[rawValue] ?? "FAILURE_REASON_\(rawValue)"
    }

    /// The raw enum value for an LND name, if known.
    package static func rawValue(forName name: String) -> Int? {
        Self.names.first { $0.value == name }?.key
    }
}

extension PaymentOutcome {
    /// Converts an `lnrpc.Payment` update.
    package init(_ payment: Lnrpc_Payment) {
        let status: Status
        switch payment.status {
        case .succeeded: status = .succeeded
        case .failed: status = .failed
        case .initiated: status = .initiated
        case .inFlight, .unknown, .UNRECOGNIZED: status = .inFlight
        }
        let hash = HexEncoding.decode(payment.paymentHash) ?? []
        var preimage: [UInt8]? = nil
        if status == .succeeded, let bytes = HexEncoding.decode(payment.paymentPreimage), !bytes.isEmpty,
            bytes.contains(where: { $0 != 0 })
        {
            preimage = bytes
        }
        if status == .succeeded, preimage == nil {
            // Fall back to the preimage of a settled HTLC.
            preimage = payment.htlcs.first { $0.status == .succeeded && !$0.preimage.isEmpty }
                .map { Array($0.preimage) }
        }
        self.init(
            status: status,
            paymentHash: hash,
            preimage: preimage,
            valueMsat: payment.valueMsat,
            feeMsat: payment.feeMsat,
            failureReason: status == .failed
                ? PaymentFailureReasonName.name(forRawValue: payment.failureReason.rawValue) : nil
        )
    }
}
