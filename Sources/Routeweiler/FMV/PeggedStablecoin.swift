import Foundation

/// A stablecoin with a fiat peg that the FMV converter can value without a price feed (SPEC §8.2).
public struct PeggedStablecoin: Hashable, Sendable, CustomStringConvertible {
    /// Lower-case table name: `usdc`, `eurc`, `pathusd`.
    public var name: String
    /// Display symbol: `USDC`, `EURC`, `PathUSD`.
    public var symbol: String
    /// The currency one whole token is worth.
    public var peg: Currency
    /// Decimals of the token's base unit (6 for all of these).
    public var decimals: Int
    /// Short network name (`base`, `tempo`).
    public var network: String
    /// Lower-case contract address.
    public var address: String

    public init(name: String, symbol: String, peg: Currency, decimals: Int, network: String, address: String) {
        self.name = name
        self.symbol = symbol
        self.peg = peg
        self.decimals = decimals
        self.network = network
        self.address = address.lowercased()
    }

    public var description: String { "\(symbol) on \(network) (\(address))" }

    /// The SPEC §8.2 table.
    public static let known: [PeggedStablecoin] = [
        .init(name: "usdc", symbol: "USDC", peg: .usd, decimals: 6, network: "base",
              address: "0x833589fcd6edb6e08f4c7c32d4f71b54bda02913"),
        .init(name: "usdc", symbol: "USDC", peg: .usd, decimals: 6, network: "base-sepolia",
              address: "0x036cbd53842c5426634e7929541ec2318f3dcf7e"),
        .init(name: "usdc", symbol: "USDC", peg: .usd, decimals: 6, network: "polygon",
              address: "0x3c499c542cef5e3811e1192ce70d8cc03d5c3359"),
        .init(name: "usdc", symbol: "USDC", peg: .usd, decimals: 6, network: "arbitrum",
              address: "0xaf88d065e77c8cc2239327c5edb3a432268e5831"),
        .init(name: "eurc", symbol: "EURC", peg: .eur, decimals: 6, network: "base",
              address: "0x60a3e35cc302bfa44cb288bc5a4f316fdb1adb42"),
        .init(name: "pathusd", symbol: "PathUSD", peg: .usd, decimals: 6, network: "tempo-moderato",
              address: "0x20c0000000000000000000000000000000000000"),
        .init(name: "usdc", symbol: "USDC", peg: .usd, decimals: 6, network: "tempo",
              address: "0x20c000000000000000000000b9537d11c60e8b50"),
    ]

    /// The token at `address` (case-insensitive), if known.
    public static func byAddress(_ address: String) -> PeggedStablecoin? {
        let lower = address.lowercased()
        return known.first { $0.address == lower }
    }
}

/// Short EVM network names and their chain ids (SPEC §8.1), used to compare CAIP-2 ids with short names.
public enum KnownNetworks {
    /// `base` → 8453, …
    public static let chainIDs: [String: Int] = [
        "base": 8453, "base-sepolia": 84532, "polygon": 137, "arbitrum": 42161, "world": 480, "ethereum": 1,
        "tempo": 42430, "tempo-moderato": 42431,
    ]

    /// The canonical CAIP-2 form of a network name: `base`, `eip155:8453` and `tempo-chain-8453` all give
    /// `eip155:8453`. Unknown names come back lower-cased and unchanged.
    public static func canonical(_ network: String) -> String {
        let lower = network.trimmingCharacters(in: .whitespaces).lowercased()
        if let id = chainIDs[lower] { return "eip155:\(id)" }
        if lower.hasPrefix("tempo-chain-"), let id = Int(lower.dropFirst("tempo-chain-".count)) { return "eip155:\(id)" }
        if lower.hasPrefix("eip155:"), let id = Int(lower.dropFirst("eip155:".count)) { return "eip155:\(id)" }
        return lower
    }

    /// Whether two network spellings name the same network.
    public static func same(_ a: String, _ b: String) -> Bool { canonical(a) == canonical(b) }
}
