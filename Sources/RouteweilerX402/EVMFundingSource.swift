public import Routeweiler
public import RouteweilerWire

/// An EVM account that signs 32-byte digests: a local key (``EVMSigner``), a KMS, a hardware wallet.
public protocol EVMWallet: Sendable {
    /// The account address.
    var address: EVMAddress { get }
    /// Signs a 32-byte digest, returning 65 bytes `r ‖ s ‖ v` with `v` ∈ {27, 28}.
    func signDigest(_ digest32: [UInt8]) async throws -> [UInt8]
    /// Whether every signature this wallet returns is known to recover to ``address`` (it signs in process with the
    /// key behind that address), so the rail need not recover each one to check (a secp256k1 recovery, ~0.1 ms).
    /// `false` by default: a remote or hardware wallet's answer is checked before it is sent.
    var signaturesRecoverToAddress: Bool { get }
}

extension EVMWallet {
    public var signaturesRecoverToAddress: Bool { false }
}

extension EVMSigner: EVMWallet {
    /// `true`: libsecp256k1 signs with this key and computes the recovery id itself.
    public var signaturesRecoverToAddress: Bool { true }
}

/// Signing an x402 authorisation failed. Nothing was sent, so no funds moved.
public struct SigningError: RouteweilerError {
    public var errorName: String { "SigningError" }
    public var message: String
    public var cause: (any Error & Sendable)?
    public init(_ message: String, cause: (any Error & Sendable)? = nil) {
        self.message = message
        self.cause = cause
    }
}

/// Pays x402 `exact` challenges with EIP-3009 `TransferWithAuthorization` signatures for one token on one chain.
///
/// ```swift
/// let wallet = try EVMSigner.fromEnvironment("EVM_PRIVATE_KEY")
/// var config = RouteweilerClient.Configuration(funding: [Funding.baseUSDC(wallet: wallet)])
/// ```
public struct EVMFundingSource: FundingSource {
    /// The signing account.
    public let wallet: any EVMWallet
    /// The token, with its pinned EIP-712 domain.
    public let token: X402Asset
    /// Requirements dearer than this (in token base units) are refused before signing; `nil` means no limit.
    public var maxAmount: UInt64?

    /// The EIP-155 chain id the source pays on.
    public var chainId: UInt64 { token.chainId }
    /// The token contract the source pays with.
    public var asset: EVMAddress { token.address }

    /// A funding source for `token` (use ``X402Asset/baseUSDC`` and friends, or describe another EIP-3009 token).
    public init(wallet: any EVMWallet, token: X402Asset, maxAmount: UInt64? = nil) {
        self.wallet = wallet
        self.token = token
        self.maxAmount = maxAmount
    }

    /// A funding source for any EIP-3009 token: its chain, contract and EIP-712 domain.
    public init(wallet: any EVMWallet, chainId: UInt64, asset: EVMAddress, domainName: String,
                domainVersion: String, symbol: String, decimals: Int = 6, maxAmount: UInt64? = nil) {
        self.init(wallet: wallet,
                  token: X402Asset(chainId: chainId, address: asset, domainName: domainName,
                                   domainVersion: domainVersion, symbol: symbol, decimals: decimals),
                  maxAmount: maxAmount)
    }

    /// The x402 rail, knowing the pinned assets plus this source's token.
    public var rails: [any Rail] {
        var assets = X402Asset.pinned
        if !assets.contains(where: { $0.chainId == token.chainId && $0.address == token.address }) {
            assets.append(token)
        }
        return [X402Rail(assets: assets)]
    }

    /// `evm:eip155:<chain>:<asset>`.
    public var label: String { "evm:\(token.caip2):\(token.address.lowercased)" }
}

extension Funding {
    /// USDC on Base mainnet (chain 8453).
    public static func baseUSDC(wallet: any EVMWallet, maxAmount: UInt64? = nil) -> EVMFundingSource {
        EVMFundingSource(wallet: wallet, token: .baseUSDC, maxAmount: maxAmount)
    }

    /// USDC on Base Sepolia (chain 84532).
    public static func baseSepoliaUSDC(wallet: any EVMWallet, maxAmount: UInt64? = nil) -> EVMFundingSource {
        EVMFundingSource(wallet: wallet, token: .baseSepoliaUSDC, maxAmount: maxAmount)
    }
}
