import Foundation
public import RouteweilerWire

/// An EIP-3009 token the x402 rail may sign for, with its pinned EIP-712 domain.
///
/// The domain (`name`, `version`) is pinned here rather than taken from the challenge: a requirement whose
/// `extra.name`/`extra.version` contradicts the pinned domain is refused, never signed.
public struct X402Asset: Sendable, Hashable {
    /// The EIP-155 chain id (8453 for Base).
    public var chainId: UInt64
    /// The token contract.
    public var address: EVMAddress
    /// The EIP-712 domain name, e.g. `"USD Coin"`.
    public var domainName: String
    /// The EIP-712 domain version, e.g. `"2"`.
    public var domainVersion: String
    /// The display symbol, e.g. `USDC`.
    public var symbol: String
    /// The token's decimals (6 for USDC).
    public var decimals: Int

    /// Creates an asset description.
    public init(chainId: UInt64, address: EVMAddress, domainName: String, domainVersion: String,
                symbol: String, decimals: Int = 6) {
        self.chainId = chainId
        self.address = address
        self.domainName = domainName
        self.domainVersion = domainVersion
        self.symbol = symbol
        self.decimals = decimals
    }

    /// USDC on Base mainnet (EIP-712 domain `"USD Coin"`, version `"2"`).
    public static let baseUSDC = X402Asset(
        chainId: 8453, address: try! EVMAddress(hex: "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913"),
        domainName: "USD Coin", domainVersion: "2", symbol: "USDC")
    /// USDC on Base Sepolia (EIP-712 domain `"USDC"`, version `"2"`).
    public static let baseSepoliaUSDC = X402Asset(
        chainId: 84532, address: try! EVMAddress(hex: "0x036cbd53842c5426634e7929541ec2318f3dcf7e"),
        domainName: "USDC", domainVersion: "2", symbol: "USDC")

    /// The built-in table of pinned assets.
    public static let pinned: [X402Asset] = [.baseUSDC, .baseSepoliaUSDC]

    /// The CAIP-2 network id, `eip155:<chainId>`.
    public var caip2: String { "eip155:\(chainId)" }

    /// The EIP-712 domain of the token.
    public var domain: EIP712Domain {
        EIP712Domain(name: domainName, version: domainVersion, chainId: chainId, verifyingContract: address)
    }

    /// The normalised currency, `eip155:<id>/erc20:<lower-case address>`.
    public var currency: String { "\(caip2)/erc20:\(address.lowercased)" }

    /// `raw / 10^decimals` with six significant digits (C `%g`) and the symbol: `0.001 USDC` (SPEC §8.3).
    public func humanAmount(_ raw: UInt64) -> String {
        var divisor = 1.0
        for _ in 0..<max(0, decimals) { divisor *= 10 }
        return String(format: "%g", Double(raw) / divisor) + " " + symbol
    }
}

/// EVM chains the x402 rail knows: legacy (v1) names and CAIP-2 ids (SPEC §8.1).
public enum X402Networks {
    /// Legacy network name → chain id.
    public static let chainIds: [String: UInt64] = [
        "base": 8453, "base-sepolia": 84532, "polygon": 137, "arbitrum": 42161, "world": 480, "ethereum": 1,
    ]

    /// The chain id of a network spelled `eip155:<id>` or by its legacy name, if it is a known chain.
    public static func chainId(of network: String) -> UInt64? {
        let lower = network.lowercased()
        if let id = chainIds[lower] { return id }
        if lower.hasPrefix("eip155:"), let id = UInt64(lower.dropFirst("eip155:".count)),
            chainIds.values.contains(id)
        {
            return id
        }
        return nil
    }
}
